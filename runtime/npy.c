/* npy.c: NumPy .npy arrays, read (versions 1.0, 2.0, 3.0) and written (1.0, byte-identical to np.save).
 *
 * Read: little-endian (or byte-order-free) <f4 <f8 <i4 <i8 |u1 kept as they are; <f2 widened to f32 and
 * <i1 <i2 <u2 widened to i32, because the compiler only knows the five nnc dtypes. The header dict is
 * parsed by a tiny literal parser, never evaluated.
 * What it does not do: structured or object dtypes, big-endian data, Fortran order (each is an error
 * naming the file), memory mapping, or byte swapping on big-endian hosts (rejected at compile time).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fileno, fstat: the library is otherwise strict C99 */
#endif
#include "nnc_runtime.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads little-endian data in place; a big-endian host needs byte swapping added"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_ALIGN 64      /* np.save aligns the data to 64 bytes */
#define NPY_HEAD_MAX 1024 /* preamble + dict (< 512 at rank 8) + padding */

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

/* How a read-only small type is widened after the fread. */
typedef enum NpyWiden { WIDEN_NONE, WIDEN_F2, WIDEN_I1, WIDEN_I2, WIDEN_U2 } NpyWiden;

/* A stored element type: its descr code without the byte-order character, the nnc dtype it becomes,
 * and its size in the file (smaller than the nnc dtype for the widened types). */
typedef struct NpyType {
    const char *code;
    nnc_dtype dtype;
    size_t file_size;
    NpyWiden widen;
} NpyType;

static const NpyType npy_types_[] = {
    {"f4", NNC_F32, 4, WIDEN_NONE}, {"f8", NNC_F64, 8, WIDEN_NONE}, {"i4", NNC_I32, 4, WIDEN_NONE},
    {"i8", NNC_I64, 8, WIDEN_NONE}, {"u1", NNC_U8, 1, WIDEN_NONE},  {"f2", NNC_F32, 2, WIDEN_F2},
    {"i1", NNC_I32, 1, WIDEN_I1},   {"i2", NNC_I32, 2, WIDEN_I2},   {"u2", NNC_I32, 2, WIDEN_U2},
};

/* What the header dict says. */
typedef struct NpyHeader {
    char descr[32];
    int fortran_order;
    int rank;
    int64_t shape[NNC_MAX_RANK];
} NpyHeader;

/* Python's repr of a shape tuple: "()", "(3,)", "(3, 4)". */
static void npy_format_shape_(char *buf, size_t cap, const int64_t *shape, int rank)
{
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, rank == 1 ? ",)" : ")");
}

/* ---- header parsing: a Python dict literal such as
 *      {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * Each parser advances *p and returns NULL, or a static message saying what is wrong. */

static void npy_skip_ws_(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

static const char *npy_parse_str_(const char **p, char *buf, size_t cap)
{
    char quote = **p;
    size_t n = 0;
    if (quote != '\'' && quote != '"')
        return "expected a quoted string";
    for ((*p)++; **p && **p != quote; (*p)++) {
        if (n + 1 >= cap)
            return "string too long";
        buf[n++] = **p;
    }
    if (**p != quote)
        return "unterminated string";
    (*p)++;
    buf[n] = 0;
    return NULL;
}

static const char *npy_parse_bool_(const char **p, int *out)
{
    if (strncmp(*p, "True", 4) == 0) {
        *out = 1;
        *p += 4;
    } else if (strncmp(*p, "False", 5) == 0) {
        *out = 0;
        *p += 5;
    } else {
        return "fortran_order is not True or False";
    }
    return NULL;
}

/* Python 2 era files may write dimensions as longs: (3L, 4L). */
static const char *npy_parse_shape_(const char **p, NpyHeader *h)
{
    if (**p != '(')
        return "shape is not a tuple";
    (*p)++;
    for (h->rank = 0;; h->rank++) {
        char *end;
        npy_skip_ws_(p);
        if (**p == ')') {
            (*p)++;
            return NULL;
        }
        if (h->rank == NNC_MAX_RANK)
            return "shape has more than 8 dimensions";
        if (!isdigit((unsigned char)**p))
            return "shape holds something other than a non-negative integer";
        errno = 0;
        h->shape[h->rank] = strtoll(*p, &end, 10);
        if (errno)
            return "shape dimension out of range";
        *p = end + (*end == 'L');
        npy_skip_ws_(p);
        if (**p == ',')
            (*p)++;
        else if (**p != ')')
            return "shape tuple is malformed";
    }
}

static const char *npy_parse_value_(const char **p, const char *key, NpyHeader *h, int *seen)
{
    if (strcmp(key, "descr") == 0) {
        *seen |= 1;
        if (**p == '[')
            return "structured dtypes (a list descr) are not supported";
        return npy_parse_str_(p, h->descr, sizeof h->descr);
    }
    if (strcmp(key, "fortran_order") == 0) {
        *seen |= 2;
        return npy_parse_bool_(p, &h->fortran_order);
    }
    if (strcmp(key, "shape") == 0) {
        *seen |= 4;
        return npy_parse_shape_(p, h);
    }
    return "unexpected key in header dict";
}

static const char *npy_parse_dict_(const char *s, NpyHeader *h)
{
    int seen = 0;
    npy_skip_ws_(&s);
    if (*s++ != '{')
        return "header is not a dict";
    for (;;) {
        char key[32];
        const char *msg;
        npy_skip_ws_(&s);
        if (*s == '}')
            break;
        if ((msg = npy_parse_str_(&s, key, sizeof key)) != NULL)
            return msg;
        npy_skip_ws_(&s);
        if (*s++ != ':')
            return "expected ':' after a key";
        npy_skip_ws_(&s);
        if ((msg = npy_parse_value_(&s, key, h, &seen)) != NULL)
            return msg;
        npy_skip_ws_(&s);
        if (*s == ',')
            s++;
        else if (*s != '}')
            return "expected ',' or '}' in header dict";
    }
    return seen == 7 ? NULL : "header lacks one of 'descr', 'fortran_order', 'shape'";
}

/* ---- reading -------------------------------------------------------------------------------- */

/* Magic, version and header length; leaves the file positioned at the header dict. */
static int npy_read_preamble_(FILE *f, const char *path, int64_t fsize, uint32_t *hlen, char *err,
                              size_t errlen)
{
    unsigned char pre[12];
    size_t lenbytes;
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, NPY_MAGIC, 6) != 0)
        return fail_(err, errlen, "%s: not a .npy file (no \\x93NUMPY magic)", path);
    if (pre[6] < 1 || pre[6] > 3)
        return fail_(err, errlen, "%s: unsupported .npy version %d.%d (nnc reads 1.0, 2.0, 3.0)", path,
                     pre[6], pre[7]);
    lenbytes = pre[6] == 1 ? 2 : 4;
    if (fread(pre + 8, 1, lenbytes, f) != lenbytes)
        return fail_(err, errlen, "%s: truncated .npy preamble", path);
    *hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    if (lenbytes == 4)
        *hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    if ((int64_t)*hlen > fsize - 8 - (int64_t)lenbytes)
        return fail_(err, errlen, "%s: truncated: header says %lu bytes, file has %lld after the preamble",
                     path, (unsigned long)*hlen, (long long)(fsize - 8 - (int64_t)lenbytes));
    return 0;
}

static int npy_read_header_(FILE *f, const char *path, int64_t fsize, NpyHeader *h, char *err,
                            size_t errlen)
{
    uint32_t hlen = 0;
    char *text;
    const char *msg;
    if (npy_read_preamble_(f, path, fsize, &hlen, err, errlen))
        return -1;
    text = malloc((size_t)hlen + 1);
    if (!text)
        return fail_(err, errlen, "%s: out of memory for a %lu-byte header", path, (unsigned long)hlen);
    if (fread(text, 1, hlen, f) != hlen) {
        free(text);
        return fail_(err, errlen, "%s: read error in header: %s", path, strerror(errno));
    }
    text[hlen] = 0;
    memset(h, 0, sizeof *h);
    msg = npy_parse_dict_(text, h);
    free(text);
    return msg ? fail_(err, errlen, "%s: bad .npy header: %s", path, msg) : 0;
}

/* The descr must be byte-order + code, e.g. "<f4". '=' is native, which is little-endian here. */
static int npy_lookup_type_(const NpyHeader *h, const char *path, const NpyType **out, char *err,
                            size_t errlen)
{
    const char *d = h->descr;
    for (size_t i = 0; i < sizeof npy_types_ / sizeof npy_types_[0]; i++) {
        const NpyType *t = &npy_types_[i];
        if (strlen(d) != 3 || strcmp(d + 1, t->code) != 0)
            continue;
        if (d[0] == '<' || d[0] == '|' || d[0] == '=' || (d[0] == '>' && t->file_size == 1)) {
            *out = t;
            return 0;
        }
        if (d[0] == '>')
            return fail_(err, errlen, "%s: big-endian dtype '%s' is not supported (save it with "
                         "a.astype('<%s'))", path, d, t->code);
    }
    return fail_(err, errlen, "%s: unsupported dtype '%s' (nnc reads <f4 <f8 <i4 <i8 |u1, and <f2 <i1 <i2 "
                 "<u2 widened)", path, d);
}

/* IEEE binary16 to binary32; exact (every half is a float). */
static float npy_half_to_float_(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    float f;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24 */
        f = (float)mant * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    bits = sign | (exp == 31 ? 0x7f800000u : (exp + 112) << 23) | mant << 13;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Widen the read-only small types into the out array (f32 or i32). The source is the fread buffer,
 * malloc'd and so aligned for 2-byte loads. */
static void npy_widen_(NpyWiden w, const void *src, void *dst, int64_t n)
{
    float *f = dst;
    int32_t *d = dst;
    for (int64_t i = 0; i < n; i++) {
        switch (w) {
        case WIDEN_F2: f[i] = npy_half_to_float_(((const uint16_t *)src)[i]); break;
        case WIDEN_I1: d[i] = ((const int8_t *)src)[i]; break;
        case WIDEN_I2: d[i] = ((const int16_t *)src)[i]; break;
        case WIDEN_U2: d[i] = ((const uint16_t *)src)[i]; break;
        case WIDEN_NONE: break;
        }
    }
}

/* One fread of the whole payload; the widened types go through a temporary buffer. */
static int npy_read_data_(FILE *f, const char *path, const NpyType *t, nnc_array *out, size_t nbytes,
                          char *err, size_t errlen)
{
    int64_t n = nnc_array_count(out);
    int widen = t->widen != WIDEN_NONE;
    void *buf = malloc(nbytes ? nbytes : 1);
    out->data = widen ? malloc(n ? (size_t)n * nnc_dtype_size(t->dtype) : 1) : buf;
    if (!buf || !out->data) {
        if (widen)
            free(buf);
        return fail_(err, errlen, "%s: out of memory for %lld elements", path, (long long)n);
    }
    if (fread(buf, 1, nbytes, f) != nbytes) {
        if (widen)
            free(buf);
        return fail_(err, errlen, "%s: read error in data: %s", path, strerror(errno));
    }
    if (widen) {
        npy_widen_(t->widen, buf, out->data, n);
        free(buf);
    }
    return 0;
}

static int npy_read_file_(FILE *f, const char *path, nnc_array *out, int with_data, char *err,
                          size_t errlen)
{
    struct stat st;
    NpyHeader h;
    const NpyType *t = NULL;
    int64_t n, have;
    char shape[256];
    if (fstat(fileno(f), &st) != 0)
        return fail_(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
    if (npy_read_header_(f, path, (int64_t)st.st_size, &h, err, errlen) ||
        npy_lookup_type_(&h, path, &t, err, errlen))
        return -1;
    if (h.fortran_order)
        return fail_(err, errlen, "%s: fortran_order True is not supported (save it with "
                     "np.ascontiguousarray)", path);
    out->dtype = t->dtype;
    out->rank = h.rank;
    memcpy(out->shape, h.shape, sizeof h.shape);
    npy_format_shape_(shape, sizeof shape, h.shape, h.rank);
    n = nnc_array_count(out);
    have = (int64_t)st.st_size - (int64_t)ftell(f);
    if (n < 0 || (uint64_t)n > SIZE_MAX / t->file_size)
        return fail_(err, errlen, "%s: shape %s is too large", path, shape);
    if ((uint64_t)n * t->file_size > (uint64_t)have)
        return fail_(err, errlen, "%s: truncated: shape %s of '%s' needs %llu bytes of data, file has %lld",
                     path, shape, h.descr, (unsigned long long)n * t->file_size, (long long)have);
    return with_data ? npy_read_data_(f, path, t, out, (size_t)n * t->file_size, err, errlen) : 0;
}

/* Trailing bytes after the data are allowed, as np.load allows them (several arrays saved to one
 * stream). The whole array, or only its header (data NULL). On failure *out is left zeroed. */
static int npy_read_(const char *path, nnc_array *out, int with_data, char *err, size_t errlen)
{
    FILE *f;
    int rc;
    memset(out, 0, sizeof *out);
    f = fopen(path, "rb");
    if (!f)
        return fail_(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    rc = npy_read_file_(f, path, out, with_data, err, errlen);
    fclose(f);
    if (rc)
        nnc_array_free(out);
    return rc;
}

int nnc_npy_read(const char *path, nnc_array *out, char *err, size_t errlen)
{
    return npy_read_(path, out, 1, err, errlen);
}

int nnc_npy_read_header(const char *path, nnc_array *out, char *err, size_t errlen)
{
    return npy_read_(path, out, 0, err, errlen);
}

/* ---- writing -------------------------------------------------------------------------------- */

static const char *npy_descr_(nnc_dtype t)
{
    switch (t) {
    case NNC_F32: return "<f4";
    case NNC_F64: return "<f8";
    case NNC_I32: return "<i4";
    case NNC_I64: return "<i8";
    case NNC_U8: return "|u1";
    }
    return NULL;
}

/* The header exactly as np.save writes it: the dict, spaces and '\n', padded so the data starts on a
 * 64-byte boundary (1 to 64 spaces, as numpy computes it). np.save also reserves 21 - digits(shape[0])
 * spaces so shape[0] can grow in place; those never move the 64-byte boundary for a shape of at most 8
 * dimensions whose size fits in int64, so they are left implicit. Returns the total length, preamble
 * included (under NPY_HEAD_MAX). Always version 1.0: the contract's fallback to 2.0 is for headers over
 * 65535 bytes, which such a shape cannot produce. */
static size_t npy_format_header_(char *buf, const nnc_array *a)
{
    char shape[256], dict[512];
    size_t len, pad;
    npy_format_shape_(shape, sizeof shape, a->shape, a->rank);
    len = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                           npy_descr_(a->dtype), shape);
    pad = NPY_ALIGN - (10 + len + 1) % NPY_ALIGN;
    memcpy(buf, NPY_MAGIC "\x01\x00", 8);
    buf[8] = (char)((len + pad + 1) & 0xff);
    buf[9] = (char)((len + pad + 1) >> 8);
    memcpy(buf + 10, dict, len);
    memset(buf + 10 + len, ' ', pad);
    buf[10 + len + pad] = '\n';
    return 10 + len + pad + 1;
}

int nnc_npy_write(const char *path, const nnc_array *a, char *err, size_t errlen)
{
    char head[NPY_HEAD_MAX];
    size_t hsize, nbytes;
    int64_t n = nnc_array_count(a);
    char *buf;
    int rc;
    if (n < 0 || !npy_descr_(a->dtype) || (n > 0 && !a->data))
        return fail_(err, errlen, "%s: cannot write an invalid array (rank %d, dtype %d)", path, a->rank,
                     (int)a->dtype);
    if ((uint64_t)n > (SIZE_MAX - sizeof head) / nnc_dtype_size(a->dtype))
        return fail_(err, errlen, "%s: array of %lld elements is too large", path, (long long)n);
    nbytes = (size_t)n * nnc_dtype_size(a->dtype);
    hsize = npy_format_header_(head, a);
    buf = malloc(hsize + nbytes);
    if (!buf)
        return fail_(err, errlen, "%s: out of memory for %zu bytes", path, hsize + nbytes);
    memcpy(buf, head, hsize);
    if (nbytes)
        memcpy(buf + hsize, a->data, nbytes);
    rc = nnc_write_file_atomic(path, buf, hsize + nbytes, err, errlen);
    free(buf);
    return rc;
}
