/* fuzz_idx.c: libFuzzer target for the IDX reader (runtime/idx.c) on plain files: the input is the whole
 * file. (zlib picks plain or gzip by the magic bytes; fuzz_idx_gz aims at the gzip path.)
 * Build and run: docs/testing.md. */
#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_read_array(nnc_idx_read, nnc_idx_read_header, data, size);
    return 0;
}
