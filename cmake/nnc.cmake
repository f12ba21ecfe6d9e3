# nnc.cmake: nnc_add_model(), compiling a .nn model to a static library at build time.
#
#   nnc_add_model(TARGET MODEL.nn [BATCH n] [INFERENCE] [MODEL name] [OPT 0|1|2] [OUTPUT_NAME stem])
#
# runs `nnc MODEL.nn -o <stem>.c` into ${CMAKE_CURRENT_BINARY_DIR}, again whenever MODEL.nn or the nnc
# executable changes, and makes TARGET a STATIC library of <stem>.c whose users see <stem>.h on their
# include path (PUBLIC) and get libm linked. The options are those of the nnc command line: BATCH n is
# `--batch n`, INFERENCE `--inference`, MODEL name `--model name` (a file with several models), OPT 1 is
# `-O1` (default: nnc's own, -O2). <stem> defaults to the model name when MODEL is given, else to the
# file name without `.nn`; two models in one directory need different stems. A relative MODEL.nn is
# relative to the calling CMakeLists.txt. The project must enable C.
#
# It works in both ways of getting nnc, which also both provide nnc::nnc and nnc::nnc_runtime:
#   add_subdirectory(path/to/nnc)                           # builds nnc first, then the model
#   find_package(nnc REQUIRED)                              # an installed nnc (cmake --install)
#   nnc_add_model(ffn_model models/ffn.nn BATCH 64)
#   target_link_libraries(app PRIVATE ffn_model)            # app.c: #include "ffn.h"
#
# What it does not do: it links no BLAS and no nnc_runtime (generated code needs neither; link
# nnc::nnc_runtime yourself to read weights and data files), and it does not handle --target cuda/mcu.

include_guard(GLOBAL)

# Built from the source tree (add_subdirectory or nnc's own build): the names an installed package gives.
if(DEFINED nnc_SOURCE_DIR AND CMAKE_CURRENT_SOURCE_DIR STREQUAL nnc_SOURCE_DIR)
  if(TARGET nnc AND NOT TARGET nnc::nnc)
    add_executable(nnc::nnc ALIAS nnc)
  endif()
  if(TARGET nnc_runtime AND NOT TARGET nnc::nnc_runtime)
    add_library(nnc::nnc_runtime ALIAS nnc_runtime)
  endif()
endif()

function(nnc_add_model target model)
  cmake_parse_arguments(PARSE_ARGV 2 arg "INFERENCE" "BATCH;MODEL;OPT;OUTPUT_NAME" "")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nnc_add_model(${target}): unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET nnc::nnc)
    message(FATAL_ERROR "nnc_add_model(${target}): no nnc executable; "
                        "add_subdirectory(path/to/nnc) or find_package(nnc) first")
  endif()
  get_property(langs GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST langs)
    message(FATAL_ERROR "nnc_add_model(${target}): the generated model is C: enable it in project()")
  endif()

  get_filename_component(model "${model}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(args "${model}")
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
    if(NOT arg_OPT MATCHES "^[012]$")
      message(FATAL_ERROR "nnc_add_model(${target}): OPT is 0, 1 or 2, not '${arg_OPT}'")
    endif()
    list(APPEND args -O${arg_OPT})
  endif()
  if(arg_INFERENCE)
    list(APPEND args --inference)
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

  # In the source tree nnc is a target: naming it in DEPENDS orders the builds and reruns the command
  # when nnc is relinked. Imported, it is a file, and depending on that file does the same.
  get_target_property(built nnc::nnc ALIASED_TARGET)
  if(built)
    set(nnc_exe "$<TARGET_FILE:${built}>")
    set(nnc_dep "${built}")
  else()
    set(nnc_exe "$<TARGET_FILE:nnc::nnc>")
    set(nnc_dep "$<TARGET_FILE:nnc::nnc>")
  endif()

  file(RELATIVE_PATH shown "${CMAKE_BINARY_DIR}" "${out_c}")
  add_custom_command(
    OUTPUT "${out_c}" "${out_h}"
    COMMAND "${nnc_exe}" ${args} -o "${stem}.c"
    DEPENDS "${model}" "${nnc_dep}"
    WORKING_DIRECTORY "${out_dir}"
    COMMENT "nnc: compiling ${model} to ${shown}"
    VERBATIM)

  add_library(${target} STATIC "${out_c}" "${out_h}")
  target_include_directories(${target} PUBLIC "${out_dir}")
  # The kernels are loops written for the compiler's vectorizer: GCC needs -O3 for that (its -O2 does not
  # vectorize these), and -fno-math-errno lets sqrt vectorize. Debug builds keep their flags.
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O3 -fno-math-errno>)
  endif()
  target_compile_features(${target} PRIVATE c_std_99)
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
