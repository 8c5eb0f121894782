# BatchscopeInstall: what `cmake --install build --prefix P` puts under P,
# beyond the install() rules that sit beside each target:
#
#   P/bin/batchscope                      RPATH $ORIGIN/<bin to lib>
#   P/lib/libbatchscope.so*
#   P/lib/batchscope/plugins/*.so         the built-in plugins, RPATH $ORIGIN/../..
#                                         (registry.c looks beside the library)
#   P/include/batchscope/*.h              every public header (installed by the
#                                         top-level CMakeLists.txt, layer by layer)
#   P/lib/pkgconfig/batchscope.pc         Cflags, Libs; plugindir, embed_cl, ...
#   P/lib/cmake/batchscope/               find_package(batchscope): the imported
#                                         target batchscope::batchscope,
#                                         batchscope_embed_cl() and
#                                         batchscope_add_plugin()
#   P/share/batchscope/pipelines/*.yaml   the ready pipelines
#   P/share/batchscope/template/          a plugin project to copy (templates/plugin)
#   P/share/man/man1/batchscope.1
#
# Every path an installed file records is relative to that file (RPATHs to
# $ORIGIN, the .pc file to ${pcfiledir}, the CMake package to its own
# directory), so an installed tree can be moved or packaged with DESTDIR as a
# whole. Included once, at the end of the top-level CMakeLists.txt, after
# every target it refers to exists.

include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BSC_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/batchscope)
set(BSC_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/batchscope/plugins)

# "$ORIGIN/<path from one install directory to another>"; GNUInstallDirs'
# directories are relative to the prefix, so any common root will do.
function(bsc_origin_rpath out from to)
  file(RELATIVE_PATH rel "/prefix/${from}" "/prefix/${to}")
  string(REGEX REPLACE "/$" "" rel "${rel}")
  if(rel STREQUAL "")
    set(${out} "$ORIGIN" PARENT_SCOPE)
  else()
    set(${out} "$ORIGIN/${rel}" PARENT_SCOPE)
  endif()
endfunction()

# ---- RPATHs: no LD_LIBRARY_PATH for the installed command or plugins
bsc_origin_rpath(bsc_rpath_bin ${CMAKE_INSTALL_BINDIR} ${CMAKE_INSTALL_LIBDIR})
set_target_properties(batchscope_cli PROPERTIES INSTALL_RPATH "${bsc_rpath_bin}")

# The built-in plugins are the MODULE libraries of the top-level directory
# that build into BSC_PLUGIN_BUILD_DIR (the tests' plugins live elsewhere).
bsc_origin_rpath(bsc_rpath_plugin ${BSC_INSTALL_PLUGINDIR} ${CMAKE_INSTALL_LIBDIR})
get_directory_property(bsc_targets DIRECTORY ${CMAKE_SOURCE_DIR} BUILDSYSTEM_TARGETS)
foreach(t IN LISTS bsc_targets)
  get_target_property(type ${t} TYPE)
  get_target_property(outdir ${t} LIBRARY_OUTPUT_DIRECTORY)
  if(type STREQUAL "MODULE_LIBRARY" AND outdir STREQUAL BSC_PLUGIN_BUILD_DIR)
    set_target_properties(${t} PROPERTIES INSTALL_RPATH "${bsc_rpath_plugin}")
  endif()
endforeach()

# ---- the CMake package
install(TARGETS batchscope EXPORT batchscopeTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT batchscopeTargets NAMESPACE batchscope:: FILE batchscopeTargets.cmake
        DESTINATION ${BSC_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/batchscopeConfig.cmake.in
  ${CMAKE_BINARY_DIR}/sdk/batchscopeConfig.cmake
  INSTALL_DESTINATION ${BSC_INSTALL_CMAKEDIR}
  PATH_VARS BSC_INSTALL_PLUGINDIR CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_DATADIR)
# 0.x: a minor release may change the API (the plugin ABI has its own check).
write_basic_package_version_file(${CMAKE_BINARY_DIR}/sdk/batchscopeConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_BINARY_DIR}/sdk/batchscopeConfig.cmake
  ${CMAKE_BINARY_DIR}/sdk/batchscopeConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/BatchscopeEmbedCL.cmake
  ${CMAKE_CURRENT_LIST_DIR}/BatchscopeEmbedCLGenerate.cmake
  ${CMAKE_CURRENT_LIST_DIR}/BatchscopeAddPlugin.cmake
  DESTINATION ${BSC_INSTALL_CMAKEDIR})

# ---- pkg-config: the prefix is found from the .pc file's own directory
file(RELATIVE_PATH bsc_pc_to_prefix "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" bsc_pc_to_prefix "${bsc_pc_to_prefix}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/batchscope.pc.in ${CMAKE_BINARY_DIR}/sdk/batchscope.pc
               @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/sdk/batchscope.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# ---- data: pipelines, the plugin template, the man page
install(DIRECTORY ${CMAKE_SOURCE_DIR}/pipelines/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/batchscope/pipelines
        FILES_MATCHING PATTERN "*.yaml")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/templates/plugin/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/batchscope/template
        PATTERN "build*" EXCLUDE)
install(FILES ${CMAKE_SOURCE_DIR}/tools/cli/batchscope.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
