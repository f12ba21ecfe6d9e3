/* fuzz_npy.c: libFuzzer target for the .npy reader (runtime/npy.c): the input is the whole file.
 * Build and run: docs/testing.md. */
#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_read_array(nnc_npy_read, nnc_npy_read_header, data, size);
    return 0;
}
