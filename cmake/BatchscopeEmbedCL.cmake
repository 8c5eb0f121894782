# BatchscopeEmbedCL: embed OpenCL C sources into a library, a plugin or a test.
#
#   include(BatchscopeEmbedCL)
#   batchscope_embed_cl(<target> NAME <c_identifier> SOURCES <file.cl>...)
#
# Generates a C file, compiled into <target>, that defines
#
#   const char *<c_identifier>(const char *file);
#
# returning the NUL-terminated text of the embedded source whose base name is
# `file` ("conv.cl"), or NULL for any other name (NULL included). The
# function has hidden visibility, so it is never exported from a shared
# object and two plugins may embed files of the same name; declare it
# yourself in the file that calls it.
#
# Includes between the embedded files: a line `#include "x.cl"` that names
# another file of SOURCES (by base name) is replaced at build time by that
# file's text, each file at most once per embedded text (so include cycles
# end), with #line directives that keep compiler messages pointing at the
# right file and line. Any other #include line is left as it is: built
# through bsc_kernel_from_source, it resolves against the runtime's public
# OpenCL files (philox.cl; batchscope/device.h has the list) and fails, naming
# the file, for anything else.
#
# Rules: call it in the directory (CMakeLists.txt) that creates <target> (a
# custom command's output belongs to its directory); SOURCES are relative to
# the current source directory or absolute, with distinct base names free of
# quotes, backslashes and "*/" (they become C literals); editing a source
# regenerates the C file. Needs CMake 3.18 (string(HEX)).
#
# The module works from the source tree and from an installed CMake package
# alike: it finds its generator next to itself, never in a source tree.

include_guard(GLOBAL)

if(CMAKE_VERSION VERSION_LESS 3.18)
  message(FATAL_ERROR "BatchscopeEmbedCL needs CMake 3.18 or newer (string(HEX))")
endif()

function(batchscope_embed_cl target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "NAME" "SOURCES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "batchscope_embed_cl(${target}): unexpected arguments "
                        "'${arg_UNPARSED_ARGUMENTS}' (expected NAME <c_identifier> SOURCES <files...>)")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "batchscope_embed_cl: '${target}' is not a target")
  endif()
  if(NOT arg_NAME MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "batchscope_embed_cl(${target}): NAME '${arg_NAME}' is not a C identifier")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "batchscope_embed_cl(${target}): no SOURCES")
  endif()

  # The generator script lies next to the file that defined this function:
  # CMAKE_CURRENT_FUNCTION_LIST_DIR is that directory wherever the function
  # is called from, unlike a variable captured at include time, which a
  # sibling directory's scope would not see.
  set(script "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/BatchscopeEmbedCLGenerate.cmake")
  set(out "${CMAKE_CURRENT_BINARY_DIR}/batchscope_embed_cl/${target}_${arg_NAME}.c")

  # One -D per source: a list passed through a single -D would be split at
  # its semicolons on the way through the build tool.
  set(defs "")
  set(paths "")
  set(names "")
  set(i 0)
  foreach(src IN LISTS arg_SOURCES)
    get_filename_component(path "${src}" ABSOLUTE)
    get_filename_component(name "${src}" NAME)
    if(name MATCHES "[\"\\]|\\*/")
      message(FATAL_ERROR "batchscope_embed_cl(${target}): ${name}: a base name with a quote, "
                          "a backslash or */ cannot be embedded")
    endif()
    if(name IN_LIST names)
      message(FATAL_ERROR "batchscope_embed_cl(${target}): two SOURCES named ${name}; "
                          "files are looked up by base name")
    endif()
    list(APPEND names "${name}")
    list(APPEND paths "${path}")
    list(APPEND defs "-DBSC_EMBED_SOURCE_${i}=${path}")
    math(EXPR i "${i} + 1")
  endforeach()

  add_custom_command(
    OUTPUT "${out}"
    COMMAND "${CMAKE_COMMAND}" "-DBSC_EMBED_OUT=${out}" "-DBSC_EMBED_NAME=${arg_NAME}"
            "-DBSC_EMBED_COUNT=${i}" ${defs} -P "${script}"
    DEPENDS ${paths} "${script}"
    COMMENT "Embedding OpenCL C sources into ${target} (${arg_NAME})"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
