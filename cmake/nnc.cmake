# nnc.cmake: nnc_add_model(), compiling a .nn model to a static library at build time.
#
#   nnc_add_model(NAME MODEL.nn [BATCH n] [INFERENCE] [TARGET c|mcu|cuda] [WEIGHTS file.safetensors]
#                 [OPT -O0|-O1|-O2] [MODEL name] [OUTPUT_NAME stem])
#
# runs `nnc MODEL.nn -o <stem>.c` into ${CMAKE_CURRENT_BINARY_DIR}/nnc_generated, again whenever MODEL.nn,
# the WEIGHTS file or the nnc executable changes, and makes NAME a STATIC library of <stem>.c whose users
# see <stem>.h on their include path (PUBLIC). The options are those of the nnc command line: BATCH n is
# `--batch n`, INFERENCE `--inference`, TARGET `--target` (default c), WEIGHTS `--weights` (the weights
# compiled into the C; a relative path is looked up in the calling directory's source, then its build
# directory, so it may be the OUTPUT of an add_custom_command there), OPT -O1 is `-O1` (`OPT 1` too; default:
# nnc's own, -O2), MODEL name `--model name` (a file with several models). <stem> defaults to the model name
# when MODEL is given, else to the file name without `.nn`; two models in one directory need different
# stems. A relative MODEL.nn is relative to the calling CMakeLists.txt. The project must enable C.
#
# By TARGET:
#   c     host C: compiled with -O3 -fno-math-errno (GCC/Clang, except Debug), linked with libm, and with
#         OpenBLAS when found (else built with NNC_NO_BLAS and the generated loops)
#   mcu   firmware C: the project's own flags only, libm linked as -lm (the toolchain picks the variant
#         for the CPU), no BLAS; for a cross build with cmake/arm-none-eabi.cmake (examples/firmware)
#   cuda  host C that launches its kernels through nnc's CUDA runtime: links nnc::cuda_runtime, which nnc
#         builds when CMake finds the CUDA toolkit (without it, TARGET cuda is an error); docs/cuda.md
#
# nnc comes from one of (each also provides nnc::nnc, and the first two nnc::nnc_runtime):
#   add_subdirectory(path/to/nnc)        # builds nnc first, then the model
#   find_package(nnc REQUIRED)           # an installed nnc (cmake --install)
#   -DNNC_EXECUTABLE=/path/to/nnc        # a host nnc program, made the imported executable nnc::nnc; when
#                                        # set, it is what runs, even beside find_package(nnc)
# A cross build (firmware) cannot run an nnc it builds itself: it needs the second or the third.
#
#   find_package(nnc REQUIRED)
#   nnc_add_model(ffn_model models/ffn.nn BATCH 64)
#   target_link_libraries(app PRIVATE ffn_model)            # app.c: #include "ffn.h"
#   nnc_add_model(cnn_fw models/fashion_cnn.nn TARGET mcu WEIGHTS cnn.safetensors INFERENCE)
#
# What it does not do: it links no nnc_runtime (generated code does not need it; link nnc::nnc_runtime
# yourself to read weights and data files on a host).

include_guard(GLOBAL)

set(NNC_EXECUTABLE "" CACHE FILEPATH "the host nnc program that nnc_add_model runs (empty: the nnc::nnc target)")

# Built from the source tree (add_subdirectory or nnc's own build): the names an installed package gives.
if(DEFINED nnc_SOURCE_DIR AND CMAKE_CURRENT_SOURCE_DIR STREQUAL nnc_SOURCE_DIR)
  if(TARGET nnc AND NOT TARGET nnc::nnc)
    add_executable(nnc::nnc ALIAS nnc)
  endif()
  if(TARGET nnc_runtime AND NOT TARGET nnc::nnc_runtime)
    add_library(nnc::nnc_runtime ALIAS nnc_runtime)
  endif()
endif()

# Sets ${exe_var} to the command that runs nnc and ${dep_var} to what the generated files depend on.
function(_nnc_executable target exe_var dep_var)
  if(NNC_EXECUTABLE)
    if(NOT EXISTS "${NNC_EXECUTABLE}" OR IS_DIRECTORY "${NNC_EXECUTABLE}")
      message(FATAL_ERROR "nnc_add_model(${target}): NNC_EXECUTABLE '${NNC_EXECUTABLE}' is not a file")
    endif()
    if(NOT TARGET nnc::nnc)
      add_executable(nnc::nnc IMPORTED GLOBAL)
      set_target_properties(nnc::nnc PROPERTIES IMPORTED_LOCATION "${NNC_EXECUTABLE}")
    endif()
    set(${exe_var} "${NNC_EXECUTABLE}" PARENT_SCOPE)
    set(${dep_var} "${NNC_EXECUTABLE}" PARENT_SCOPE)
    return()
  endif()
  if(NOT TARGET nnc::nnc)
    message(FATAL_ERROR "nnc_add_model(${target}): no nnc executable; add_subdirectory(path/to/nnc) or "
                        "find_package(nnc) first, or set NNC_EXECUTABLE to the path of an nnc program")
  endif()
  # In the source tree nnc is a target: naming it in DEPENDS orders the builds and reruns the command
  # when nnc is relinked. Imported, it is a file, and depending on that file does the same.
  get_target_property(built nnc::nnc ALIASED_TARGET)
  if(built)
    if(CMAKE_CROSSCOMPILING)
      message(FATAL_ERROR "nnc_add_model(${target}): in a cross build nnc must be the host's: "
                          "find_package(nnc) of an installed nnc, or -DNNC_EXECUTABLE=/path/to/nnc")
    endif()
    set(${exe_var} "$<TARGET_FILE:${built}>" PARENT_SCOPE)
    set(${dep_var} "${built}" PARENT_SCOPE)
  else()
    set(${exe_var} "$<TARGET_FILE:nnc::nnc>" PARENT_SCOPE)
    set(${dep_var} "$<TARGET_FILE:nnc::nnc>" PARENT_SCOPE)
  endif()
endfunction()

function(nnc_add_model target model)
  cmake_parse_arguments(PARSE_ARGV 2 arg "INFERENCE" "BATCH;MODEL;OPT;OUTPUT_NAME;TARGET;WEIGHTS" "")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nnc_add_model(${target}): unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  get_property(langs GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST langs)
    message(FATAL_ERROR "nnc_add_model(${target}): the generated model is C: enable it in project()")
  endif()
  _nnc_executable(${target} nnc_exe nnc_dep)

  get_filename_component(model "${model}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(args "${model}")
  set(deps "${model}" "${nnc_dep}")
  if(arg_MODEL)
    list(APPEND args --model "${arg_MODEL}")
    set(stem "${arg_MODEL}")
  else()
    get_filename_component(stem "${model}" NAME_WE)
  endif()
  if(arg_OUTPUT_NAME)
    set(stem "${arg_OUTPUT_NAME}")
  endif()
  if(DEFINED arg_BATCH)
    if(NOT arg_BATCH MATCHES "^[1-9][0-9]*$")
      message(FATAL_ERROR "nnc_add_model(${target}): BATCH needs a positive integer, not '${arg_BATCH}'")
    endif()
    list(APPEND args --batch ${arg_BATCH})
  endif()
  if(DEFINED arg_OPT)
    if(NOT arg_OPT MATCHES "^(-O)?[012]$")
      message(FATAL_ERROR "nnc_add_model(${target}): OPT is -O0, -O1 or -O2, not '${arg_OPT}'")
    endif()
    string(REGEX REPLACE "^-O" "" opt "${arg_OPT}")
    list(APPEND args -O${opt})
  endif()
  if(arg_INFERENCE)
    list(APPEND args --inference)
  endif()
  set(nnc_target c)
  if(DEFINED arg_TARGET)
    set(nnc_target "${arg_TARGET}")
    if(NOT nnc_target MATCHES "^(c|mcu|cuda)$")
      message(FATAL_ERROR "nnc_add_model(${target}): TARGET is c, mcu or cuda, not '${arg_TARGET}'")
    endif()
    if(nnc_target STREQUAL "cuda" AND NOT TARGET nnc::cuda_runtime)
      message(FATAL_ERROR "nnc_add_model(${target}): TARGET cuda needs nnc::cuda_runtime, which this nnc was "
                          "built without (CMake did not find the CUDA toolkit, or NNC_WITH_CUDA was OFF)")
    endif()
    list(APPEND args --target ${nnc_target})
  endif()
  if(DEFINED arg_WEIGHTS)
    # Like add_custom_command's DEPENDS: the calling directory's source file if there is one, else a
    # file of its build directory (which another custom command may write: the dependency orders them).
    set(weights "${arg_WEIGHTS}")
    if(NOT IS_ABSOLUTE "${weights}")
      if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${weights}")
        set(weights "${CMAKE_CURRENT_SOURCE_DIR}/${weights}")
      else()
        set(weights "${CMAKE_CURRENT_BINARY_DIR}/${weights}")
      endif()
    endif()
    list(APPEND args --weights "${weights}")
    list(APPEND deps "${weights}")
  endif()

  # Two calls writing the same file would race in a parallel build. The files go in their own directory
  # so that a source file of the project with the same name (app/ffn.c next to ffn.nn) is never confused
  # with the generated one.
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/nnc_generated")
  file(MAKE_DIRECTORY "${out_dir}")
  set(out_c "${out_dir}/${stem}.c")
  set(out_h "${out_dir}/${stem}.h")
  get_property(owner GLOBAL PROPERTY "_nnc_output:${out_c}")
  if(owner)
    message(FATAL_ERROR "nnc_add_model(${target}): ${stem}.c is already generated for ${owner} "
                        "in this directory; give one of them another OUTPUT_NAME")
  endif()
  set_property(GLOBAL PROPERTY "_nnc_output:${out_c}" "${target}")

  file(RELATIVE_PATH shown "${CMAKE_BINARY_DIR}" "${out_c}")
  add_custom_command(
    OUTPUT "${out_c}" "${out_h}"
    COMMAND "${nnc_exe}" ${args} -o "${stem}.c"
    DEPENDS ${deps}
    WORKING_DIRECTORY "${out_dir}"
    COMMENT "nnc: compiling ${model} to ${shown}"
    VERBATIM)

  add_library(${target} STATIC "${out_c}" "${out_h}")
  target_include_directories(${target} PUBLIC "${out_dir}")
  target_compile_features(${target} PRIVATE c_std_99)
  if(nnc_target STREQUAL "mcu")
    # The firmware's flags as they are; libm by name, so that the compiler driver links the multilib
    # variant for the CPU and float ABI (a path found by find_library would be one fixed variant).
    target_link_libraries(${target} PRIVATE -lm)
    return()
  endif()
  if(nnc_target STREQUAL "cuda")
    target_link_libraries(${target} PUBLIC nnc::cuda_runtime)
  endif()
  # The kernels are loops written for the compiler's vectorizer: GCC needs -O3 for that (its -O2 does not
  # vectorize these), and -fno-math-errno lets sqrt vectorize. Debug builds keep their flags.
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O3 -fno-math-errno>)
  endif()
  # libm by path, not by the name `m`, which could be a target of the project (even TARGET itself).
  find_library(NNC_MATH_LIBRARY m)
  mark_as_advanced(NNC_MATH_LIBRARY)
  if(NNC_MATH_LIBRARY)
    target_link_libraries(${target} PRIVATE "${NNC_MATH_LIBRARY}")
  endif()
  # Large matrix products call OpenBLAS when it is there; without it the generated loops are used.
  find_library(NNC_OPENBLAS_LIBRARY openblas)
  find_path(NNC_CBLAS_INCLUDE_DIR cblas.h)
  mark_as_advanced(NNC_OPENBLAS_LIBRARY NNC_CBLAS_INCLUDE_DIR)
  if(NNC_OPENBLAS_LIBRARY AND NNC_CBLAS_INCLUDE_DIR)
    target_include_directories(${target} PRIVATE "${NNC_CBLAS_INCLUDE_DIR}")
    target_link_libraries(${target} PUBLIC "${NNC_OPENBLAS_LIBRARY}")
  else()
    target_compile_definitions(${target} PRIVATE NNC_NO_BLAS)
  endif()
endfunction()
