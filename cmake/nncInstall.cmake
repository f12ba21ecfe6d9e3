# nncInstall.cmake: the CMake package of an installed nnc, so that a project can
#   find_package(nnc 0.1 REQUIRED)  ->  nnc::nnc (the compiler), nnc::nnc_runtime, nnc_add_model()
# Installed into <prefix>/lib/cmake/nnc: nncConfig.cmake, nncConfigVersion.cmake, nncTargets.cmake
# (the export set nncTargets of the top-level install() calls) and nnc.cmake.
# It installs no targets itself; the LLVM plugin, when built, installs itself and is not part of the
# package (nnc finds it at run time, no consumer links it).

include(CMakePackageConfigHelpers)

set(NNC_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/nnc" CACHE STRING
    "where the nnc CMake package goes, relative to the install prefix")
mark_as_advanced(NNC_INSTALL_CMAKEDIR)

install(EXPORT nncTargets NAMESPACE nnc:: FILE nncTargets.cmake DESTINATION "${NNC_INSTALL_CMAKEDIR}")

configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/nncConfig.cmake.in"
  "${CMAKE_CURRENT_BINARY_DIR}/nncConfig.cmake"
  INSTALL_DESTINATION "${NNC_INSTALL_CMAKEDIR}")
# 0.x: a new minor version may change the generated interface. The pointer-size check of a normal package
# applies except in a cross build: firmware (cmake/arm-none-eabi.cmake, 32-bit) finds the host's nnc to run
# it, and never links the host library nnc::nnc_runtime.
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/nncConfigVersion.base.cmake"
  VERSION "${PROJECT_VERSION}" COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
file(READ "${CMAKE_CURRENT_BINARY_DIR}/nncConfigVersion.base.cmake" _nnc_version_check)
string(PREPEND _nnc_version_check "\
if(NOT CMAKE_CROSSCOMPILING AND CMAKE_SIZEOF_VOID_P AND NOT CMAKE_SIZEOF_VOID_P STREQUAL \"${CMAKE_SIZEOF_VOID_P}\")
  set(PACKAGE_VERSION \"${PROJECT_VERSION} (${CMAKE_SIZEOF_VOID_P}-byte pointers)\")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
  return()
endif()
")
file(CONFIGURE OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/nncConfigVersion.cmake" CONTENT "${_nnc_version_check}" @ONLY)

install(FILES
  "${CMAKE_CURRENT_BINARY_DIR}/nncConfig.cmake"
  "${CMAKE_CURRENT_BINARY_DIR}/nncConfigVersion.cmake"
  "${CMAKE_CURRENT_LIST_DIR}/nnc.cmake"
  DESTINATION "${NNC_INSTALL_CMAKEDIR}")
