# prelude_warnings.cmake: cmake -DCC= -DPRELUDE= -DKERNELS= -DOUT= -P prelude_warnings.cmake
# Compiles the emulator's prelude followed by KERNELS as the emulator does, but with every warning an error.
file(READ ${PRELUDE} prelude)
file(READ ${KERNELS} kernels)
file(WRITE ${OUT}.c "${prelude}${kernels}")
execute_process(COMMAND ${CC} -std=c11 -Wall -Wextra -Werror -pedantic -fPIC -c ${OUT}.c -o ${OUT}.o
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${CC} rejects the prelude + ${KERNELS}:\n${out}")
endif()
