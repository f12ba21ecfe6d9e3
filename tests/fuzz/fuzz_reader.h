/* fuzz_reader.h: the shared body of the array-reader fuzz targets (npy, IDX, CSV): read the input with
 * one reader, and on success touch every byte of the result and convert it as `nnc train` does, so that
 * AddressSanitizer sees a buffer shorter than the shape says. An error message must be a terminated,
 * non-empty string. Every input must come back without a crash, a sanitizer report or a hang. */
#ifndef NNC_FUZZ_READER_H
#define NNC_FUZZ_READER_H

#include "fuzz_file.h"
#include "nnc_runtime.h"

#include <string.h>

typedef int (*fuzz_reader_fn)(const char *path, nnc_array *out, char *err, size_t errlen);

static volatile unsigned fuzz_sink_;

static void fuzz_touch_(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s += b[i];
    fuzz_sink_ += s;
}

static void fuzz_read_array(fuzz_reader_fn read, const uint8_t *data, size_t size)
{
    char err[512];
    nnc_array a;
    err[0] = '\0';
    if (read(fuzz_file_path(data, size), &a, err, sizeof err) != 0) {
        if (err[0] == '\0' || !memchr(err, '\0', sizeof err)) abort(); /* a failure always says why */
        return;
    }
    int64_t n = nnc_array_count(&a);
    if (n < 0 || a.rank < 0 || a.rank > NNC_MAX_RANK) abort();
    fuzz_touch_(a.data, (size_t)n * nnc_dtype_size(a.dtype));
    nnc_array_convert(&a, NNC_I32, "y", err, sizeof err); /* class labels; may fail (not integers) */
    nnc_array_convert(&a, NNC_F32, "x", err, sizeof err); /* what training does with its inputs */
    if (a.data) fuzz_touch_(a.data, (size_t)nnc_array_count(&a) * nnc_dtype_size(a.dtype));
    nnc_array_free(&a);
}

#endif
