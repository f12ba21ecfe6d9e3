/* fuzz_reader.h: the shared body of the array-reader fuzz targets (npy, IDX, CSV). As nnc does (run.c), the
 * header is read first, and a file declaring more than FUZZ_MAX_BYTES of data is not read further (a
 * model's shape check refuses it there; a small .idx.gz may declare gigabytes). Then the whole file is
 * read; on success every byte of the result is touched and converted as `nnc train` does, so that
 * AddressSanitizer sees a buffer shorter than the shape says. Checked besides "no crash, no sanitizer
 * report, no hang": a failure always has a message, and a file that reads has a header that reads to the
 * same dtype and shape. */
#ifndef NNC_FUZZ_READER_H
#define NNC_FUZZ_READER_H

#include "fuzz_file.h"
#include "nnc_runtime.h"

#include <string.h>

typedef int (*fuzz_reader_fn)(const char *path, nnc_array *out, char *err, size_t errlen);

#define FUZZ_MAX_BYTES ((int64_t)256 << 20)

static volatile unsigned fuzz_sink_;

static void fuzz_touch_(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s += b[i];
    fuzz_sink_ += s;
}

/* A failure always says why, in a terminated message. */
static void fuzz_check_message_(const char *err, size_t cap)
{
    if (err[0] == '\0' || !memchr(err, '\0', cap)) abort();
}

static void fuzz_read_array(fuzz_reader_fn read, fuzz_reader_fn read_header, const uint8_t *data,
                            size_t size)
{
    char err[512];
    nnc_array a, h;
    const char *path = fuzz_file_path(data, size);
    err[0] = '\0';
    int hrc = read_header(path, &h, err, sizeof err);
    if (hrc != 0) fuzz_check_message_(err, sizeof err);
    else if (h.data != NULL) abort();
    else if (nnc_dtype_size(h.dtype) == 0 || nnc_array_count(&h) < 0)
        abort(); /* a header that succeeded has a dtype and a size */
    else if (nnc_array_count(&h) > FUZZ_MAX_BYTES / (int64_t)nnc_dtype_size(h.dtype))
        return; /* refused by the model's shape */
    err[0] = '\0';
    if (read(path, &a, err, sizeof err) != 0) {
        fuzz_check_message_(err, sizeof err);
        return;
    }
    int64_t n = nnc_array_count(&a);
    if (n < 0 || a.rank < 0 || a.rank > NNC_MAX_RANK) abort();
    /* the header said the same, and did not refuse a file that reads */
    if (hrc != 0 || h.dtype != a.dtype || h.rank != a.rank ||
        memcmp(h.shape, a.shape, sizeof h.shape[0] * (size_t)a.rank) != 0)
        abort();
    fuzz_touch_(a.data, (size_t)n * nnc_dtype_size(a.dtype));
    nnc_array_convert(&a, NNC_I32, "y", err, sizeof err); /* class labels; may fail (not integers) */
    nnc_array_convert(&a, NNC_F32, "x", err, sizeof err); /* what training does with its inputs */
    if (a.data) fuzz_touch_(a.data, (size_t)nnc_array_count(&a) * nnc_dtype_size(a.dtype));
    nnc_array_free(&a);
}

#endif
