/* array.c: dtype facts, the nnc_array helpers (count, free, dtype conversion) and nnc_data_read, which
 * picks a reader by magic bytes and file name.
 *
 * What it does not do: parse any file format itself (npy.c, idx.c, csv.c do), or convert silently:
 * a float that is not an integer, or an integer outside the target type, is an error, never a rounding
 * or a wrap-around, because a label file read as f32 by mistake must not quietly train on garbage.
 */
#include "nnc_runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail_(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

size_t nnc_dtype_size(nnc_dtype t)
{
    switch (t) {
    case NNC_F32: return 4;
    case NNC_F64: return 8;
    case NNC_I32: return 4;
    case NNC_I64: return 8;
    case NNC_U8: return 1;
    }
    return 0;
}

const char *nnc_dtype_name(nnc_dtype t)
{
    switch (t) {
    case NNC_F32: return "f32";
    case NNC_F64: return "f64";
    case NNC_I32: return "i32";
    case NNC_I64: return "i64";
    case NNC_U8: return "u8";
    }
    return "?";
}

/* Readers call this on shapes taken from files, so it must not overflow: -1 flags a bad shape. The
 * product of the non-zero dimensions must fit too, so that [0, 2^32, 2^32] is refused rather than
 * letting a caller's per-sample product (2^64) overflow. */
int64_t nnc_array_count(const nnc_array *a)
{
    int64_t nonzero = 1;
    int empty = 0;
    if (a->rank < 0 || a->rank > NNC_MAX_RANK)
        return -1;
    for (int i = 0; i < a->rank; i++) {
        int64_t d = a->shape[i];
        if (d < 0 || (d > 0 && nonzero > INT64_MAX / d))
            return -1;
        if (d == 0)
            empty = 1;
        else
            nonzero *= d;
    }
    return empty ? 0 : nonzero;
}

void nnc_array_free(nnc_array *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- conversion ------------------------------------------------------------------------------ */

static int dtype_is_int_(nnc_dtype t) { return t == NNC_I32 || t == NNC_I64 || t == NNC_U8; }

/* Element i as a double. Exact for every value the range check below needs: an i64 beyond 2^53 rounds,
 * but rounding is monotonic and the i32/u8 bounds are exact doubles, so "out of range" is unaffected. */
static double array_load_f64_(const void *p, nnc_dtype t, int64_t i)
{
    switch (t) {
    case NNC_F32: return ((const float *)p)[i];
    case NNC_F64: return ((const double *)p)[i];
    case NNC_I32: return ((const int32_t *)p)[i];
    case NNC_I64: return (double)((const int64_t *)p)[i];
    case NNC_U8: return ((const uint8_t *)p)[i];
    }
    return 0;
}

/* Whether v is an integer that `to` can hold. NaN fails the range test. */
static int array_fits_(double v, nnc_dtype to)
{
    double lo = 0, hi = 255;
    if (to == NNC_I32)
        lo = -2147483648.0, hi = 2147483647.0;
    if (to == NNC_I64)
        lo = -9223372036854775808.0, hi = 9223372036854775807.0; /* hi rounds to 2^63: excluded below */
    if (!(v >= lo && v <= hi) || (to == NNC_I64 && v >= 9223372036854775808.0))
        return 0;
    return (double)(int64_t)v == v;
}

/* First element that `to` cannot hold, or -1. Conversions that always fit skip the scan. */
static int64_t array_find_unfit_(const nnc_array *a, nnc_dtype to, int64_t n)
{
    if (!dtype_is_int_(to) || a->dtype == NNC_U8 || (a->dtype == NNC_I32 && to == NNC_I64))
        return -1;
    for (int64_t i = 0; i < n; i++)
        if (!array_fits_(array_load_f64_(a->data, a->dtype, i), to))
            return i;
    return -1;
}

/* One tight loop per (source, target) pair: a 47M-element u8 -> f32 conversion costs one cast each. */
#define CAST_LOOP_(ST, DT)                                                                              \
    do {                                                                                                \
        const ST *s_ = src;                                                                             \
        DT *d_ = dst;                                                                                   \
        for (int64_t i_ = 0; i_ < n; i_++)                                                              \
            d_[i_] = (DT)s_[i_];                                                                        \
    } while (0)

#define CAST_FROM_(DT)                                                                                  \
    switch (from) {                                                                                     \
    case NNC_F32: CAST_LOOP_(float, DT); break;                                                         \
    case NNC_F64: CAST_LOOP_(double, DT); break;                                                        \
    case NNC_I32: CAST_LOOP_(int32_t, DT); break;                                                       \
    case NNC_I64: CAST_LOOP_(int64_t, DT); break;                                                       \
    case NNC_U8: CAST_LOOP_(uint8_t, DT); break;                                                        \
    }

/* Requires every value to fit (array_find_unfit_ checked), so no cast below is undefined. */
static void array_cast_(void *dst, nnc_dtype to, const void *src, nnc_dtype from, int64_t n)
{
    switch (to) {
    case NNC_F32: CAST_FROM_(float); break;
    case NNC_F64: CAST_FROM_(double); break;
    case NNC_I32: CAST_FROM_(int32_t); break;
    case NNC_I64: CAST_FROM_(int64_t); break;
    case NNC_U8: CAST_FROM_(uint8_t); break;
    }
}

int nnc_array_convert(nnc_array *a, nnc_dtype to, const char *what, char *err, size_t errlen)
{
    int64_t n = nnc_array_count(a), bad;
    void *dst;
    if (!what)
        what = "array";
    if (n < 0 || nnc_dtype_size(a->dtype) == 0 || nnc_dtype_size(to) == 0)
        return fail_(err, errlen, "%s: invalid array (rank %d, dtype %d)", what, a->rank, (int)a->dtype);
    if (a->dtype == to)
        return 0;
    bad = array_find_unfit_(a, to, n);
    if (bad >= 0)
        return fail_(err, errlen, "%s: cannot convert %s to %s: element %lld (%.17g) is not an integer in "
                     "the range of %s", what, nnc_dtype_name(a->dtype), nnc_dtype_name(to), (long long)bad,
                     array_load_f64_(a->data, a->dtype, bad), nnc_dtype_name(to));
    if ((uint64_t)n > SIZE_MAX / nnc_dtype_size(to))
        return fail_(err, errlen, "%s: %lld elements are too many for memory", what, (long long)n);
    dst = malloc(n ? (size_t)n * nnc_dtype_size(to) : 1);
    if (!dst)
        return fail_(err, errlen, "%s: out of memory converting %lld elements to %s", what, (long long)n,
                     nnc_dtype_name(to));
    array_cast_(dst, to, a->data, a->dtype, n);
    free(a->data);
    a->data = dst;
    a->dtype = to;
    return 0;
}

/* ---- dispatch by kind ------------------------------------------------------------------------- */

typedef enum DataKind { KIND_UNKNOWN, KIND_NPY, KIND_IDX, KIND_CSV } DataKind;

static int ends_with_(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* IDX names: foo.idx, train-images-idx3-ubyte, foo.idx3-ubyte (all end in "-ubyte"), and their .gz. */
static DataKind data_kind_by_name_(const char *path)
{
    size_t n = strlen(path);
    if (ends_with_(path, n, ".npy"))
        return KIND_NPY;
    if (ends_with_(path, n, ".csv") || ends_with_(path, n, ".txt") || ends_with_(path, n, ".tsv"))
        return KIND_CSV;
    if (ends_with_(path, n, ".gz"))
        n -= 3;
    if (ends_with_(path, n, ".idx") || ends_with_(path, n, "-ubyte"))
        return KIND_IDX;
    return KIND_UNKNOWN;
}

/* Magic wins over the name for npy (an .npy saved as .bin is still an .npy); an unknown name with a
 * plausible IDX magic (0 0 TYPE RANK) is taken as IDX. */
static DataKind data_kind_by_magic_(const unsigned char *m, size_t n)
{
    if (n >= 6 && memcmp(m, "\x93NUMPY", 6) == 0)
        return KIND_NPY;
    if (n >= 4 && m[0] == 0 && m[1] == 0 && m[3] <= NNC_MAX_RANK &&
        (m[2] == 0x08 || m[2] == 0x09 || (m[2] >= 0x0B && m[2] <= 0x0E)))
        return KIND_IDX;
    return KIND_UNKNOWN;
}

/* The whole array, or only its header (data NULL). */
static int data_read_(const char *path, nnc_array *out, int with_data, char *err, size_t errlen)
{
    unsigned char magic[6];
    size_t got;
    DataKind kind;
    FILE *f = fopen(path, "rb");
    memset(out, 0, sizeof *out);
    if (!f)
        return fail_(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    kind = data_kind_by_magic_(magic, got);
    if (kind == KIND_UNKNOWN)
        kind = data_kind_by_name_(path);
    switch (kind) {
    case KIND_NPY: return (with_data ? nnc_npy_read : nnc_npy_read_header)(path, out, err, errlen);
    case KIND_IDX: return (with_data ? nnc_idx_read : nnc_idx_read_header)(path, out, err, errlen);
    case KIND_CSV: return (with_data ? nnc_csv_read : nnc_csv_read_header)(path, out, err, errlen);
    case KIND_UNKNOWN: break;
    }
    return fail_(err, errlen, "%s: unknown data file kind (expected .npy, .csv/.txt/.tsv, or IDX: .idx, "
                 "*-ubyte, optionally .gz)", path);
}

int nnc_data_read(const char *path, nnc_array *out, char *err, size_t errlen)
{
    return data_read_(path, out, 1, err, errlen);
}

int nnc_data_read_header(const char *path, nnc_array *out, char *err, size_t errlen)
{
    return data_read_(path, out, 0, err, errlen);
}
