# BatchscopeAddPlugin: build a batchscope plugin out of tree, as the built-in
# ones are built. Part of the installed CMake package (find_package(batchscope)
# includes it).
#
#   batchscope_add_plugin(<name> SOURCES <file.c>... [CL <file.cl>...]
#                         [CL_NAME <c_identifier>])
#
# Creates the MODULE library target <name>, built as <name>.so (no "lib"
# prefix: `plugins: [build/<name>.so]` in a pipeline names the file), with
#   - hidden visibility: the module exports only bsc_plugin_entry (BSC_PLUGIN
#     marks it), so helpers of two plugins never clash;
#   - batchscope::batchscope linked (headers, libbatchscope, OpenCL);
#   - an RPATH (build and install) to the directory of the libbatchscope it
#     was built against, so the module loads without LD_LIBRARY_PATH in any
#     host, batchscope or a test;
#   - with CL: the .cl files embedded by batchscope_embed_cl(). The module
#     then has (hidden) the function
#
#         const char *<name>_cl_text(const char *file);
#
#     (<name> with every character outside [A-Za-z0-9_] turned into '_', or
#     the CL_NAME given) returning the text of the embedded file of that base
#     name, NULL for any other. Declare it in your source and build kernels
#     with bsc_kernel_from_source(ctx, "swish.cl", <name>_cl_text("swish.cl"),
#     NULL, "swish_forward", &k); `#include "philox.cl"` in a .cl file
#     resolves against the runtime's shared OpenCL files (device.h).
#
# Install the module where batchscope finds it with, for instance,
#   install(TARGETS <name> LIBRARY DESTINATION ${BATCHSCOPE_PLUGIN_DIR})
# or name it in a pipeline's `plugins:` list, --plugin or BATCHSCOPE_PLUGIN_PATH.

include_guard(GLOBAL)

function(batchscope_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "CL_NAME" "SOURCES;CL")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "batchscope_add_plugin(${name}): unexpected arguments "
                        "'${arg_UNPARSED_ARGUMENTS}' (expected SOURCES <files.c> [CL <files.cl>] "
                        "[CL_NAME <c_identifier>])")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "batchscope_add_plugin(${name}): no SOURCES")
  endif()
  if(arg_CL_NAME AND NOT arg_CL)
    message(FATAL_ERROR "batchscope_add_plugin(${name}): CL_NAME without CL files")
  endif()
  if(NOT TARGET batchscope::batchscope)
    message(FATAL_ERROR "batchscope_add_plugin(${name}): batchscope::batchscope is not "
                        "defined; call find_package(batchscope) first")
  endif()

  add_library(${name} MODULE ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE batchscope::batchscope)

  # This file lies in <libdir>/cmake/batchscope of the SDK, so the library's
  # directory is two levels up, wherever the SDK was installed or moved to.
  get_filename_component(libdir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../.." ABSOLUTE)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    # The same absolute RPATH in the build tree and installed: nothing to
    # rewrite at install time (and no padding in the build tree's copy).
    INSTALL_RPATH "${libdir}"
    BUILD_WITH_INSTALL_RPATH ON)

  if(arg_CL)
    set(id "${arg_CL_NAME}")
    if(NOT id)
      string(MAKE_C_IDENTIFIER "${name}_cl_text" id)
    endif()
    batchscope_embed_cl(${name} NAME ${id} SOURCES ${arg_CL})
  endif()
endfunction()
