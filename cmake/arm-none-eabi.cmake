# arm-none-eabi.cmake: CMake toolchain file for bare-metal Cortex-M4F firmware with Debian's
# gcc-arm-none-eabi and libnewlib-arm-none-eabi (examples/firmware, docs/mcu.md).
#
#   cmake -S examples/firmware -B build-fw --toolchain $PWD/cmake/arm-none-eabi.cmake -DNNC_EXECUTABLE=$PWD/build/nnc
#
# Compiles for the Cortex-M4 with its single-precision FPU and the hard-float ABI (the flags nnc's
# `--target mcu` output is checked with). The flags are CMAKE_<LANG>_FLAGS_INIT: a -DCMAKE_C_FLAGS=... on
# the command line replaces them, so add flags with target_compile_options instead. Linking needs a
# linker script and start-up code of the program's own (examples/firmware/board), so the compiler checks
# build a static library instead of an executable. Programs (nnc, python3) are found on the host; headers,
# libraries and packages of the target only under the toolchain's own prefix, except that a package may
# also be a host tool's (find_package(nnc) finds the host nnc). Other Cortex-M parts: copy this file and
# change NNC_ARM_FLAGS.

set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy CACHE FILEPATH "objcopy of the toolchain")
set(CMAKE_SIZE arm-none-eabi-size CACHE FILEPATH "size of the toolchain")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(NNC_ARM_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(CMAKE_C_FLAGS_INIT "${NNC_ARM_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${NNC_ARM_FLAGS}")
set(CMAKE_ASM_FLAGS_INIT "${NNC_ARM_FLAGS}")

# The toolchain's own prefix (Debian: /usr/lib/arm-none-eabi, with newlib's include/ and lib/).
set(CMAKE_FIND_ROOT_PATH /usr/lib/arm-none-eabi)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
