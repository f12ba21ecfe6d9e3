/* fuzz_csv.c: libFuzzer target for the CSV reader (runtime/csv.c): the input is the whole file.
 * Build and run: docs/testing.md. */
#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_read_array(nnc_csv_read, nnc_csv_read_header, data, size);
    return 0;
}
