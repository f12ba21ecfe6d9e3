/* idx.c: IDX arrays (the MNIST distribution format), raw or gzip-compressed.
 *
 * Layout: 0x00 0x00 TYPE RANK, RANK big-endian u32 dimensions, then big-endian data. zlib's gzread
 * reads gzip and plain files alike (it looks at the magic bytes, not the name), so one path serves both.
 * u8 stays u8, i8 and i16 widen to i32, i32/f32/f64 are byte-swapped in place after a single read.
 * The header is read, and every size check made, before any data is decompressed (nnc_idx_read_header
 * stops there), and gzip failures (bad deflate data, CRC, a cut stream) are reported as such.
 * What it does not do: write IDX (nnc writes .npy), or run on a big-endian host (rejected at compile
 * time, since the swap below is unconditional).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* stat: the library is otherwise strict C99 */
#endif
#include "nnc_runtime.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "idx.c swaps big-endian data unconditionally; a big-endian host needs that made conditional"
#endif

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

/* The element types an IDX TYPE byte names: size in the file and the nnc dtype it becomes. */
typedef struct IdxType {
    unsigned char code;
    const char *name;
    size_t file_size;
    nnc_dtype dtype;
} IdxType;

static const IdxType idx_types_[] = {
    {0x08, "u8", 1, NNC_U8},  {0x09, "i8", 1, NNC_I32},  {0x0B, "i16", 2, NNC_I32},
    {0x0C, "i32", 4, NNC_I32}, {0x0D, "f32", 4, NNC_F32}, {0x0E, "f64", 8, NNC_F64},
};

static const IdxType *idx_find_type_(unsigned char code)
{
    for (size_t i = 0; i < sizeof idx_types_ / sizeof idx_types_[0]; i++)
        if (idx_types_[i].code == code)
            return &idx_types_[i];
    return NULL;
}

/* Read exactly n bytes. gzread takes an unsigned int count, so large payloads go in 1 GiB pieces. On a
 * short read *got says how far it came (for the "truncated" message). */
static int idx_gzread_all_(gzFile g, void *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t chunk = n - *got < (1u << 30) ? n - *got : (1u << 30);
        int r = gzread(g, (char *)buf + *got, (unsigned)chunk);
        if (r <= 0)
            return -1;
        *got += (size_t)r;
    }
    return 0;
}

/* zlib's reason ("unexpected end of file"), without the "PATH: " it prefixes, or our own wording when
 * the stream simply ended. */
static const char *idx_gz_reason_(gzFile g, const char *path)
{
    int code;
    const char *msg = gzerror(g, &code);
    size_t n = strlen(path);
    if (code == Z_OK || code == Z_STREAM_END)
        return "file ends early";
    return strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0 ? msg + n + 2 : msg;
}

/* A gzip-level failure (bad deflate data, CRC or length check, a cut stream) as its own message, rather
 * than as the IDX error it would otherwise turn into; 0 if zlib reports no error. */
static int idx_gz_failed_(gzFile g, const char *path, char *err, size_t errlen)
{
    int code;
    gzerror(g, &code);
    if (code == Z_OK || code == Z_STREAM_END)
        return 0;
    if (code == Z_BUF_ERROR) /* zlib's "unexpected end of file": the gzip stream is cut short */
        fail_(err, errlen, "%s: truncated gzip file (%s)", path, idx_gz_reason_(g, path));
    else
        fail_(err, errlen, "%s: corrupt gzip file (%s)", path, idx_gz_reason_(g, path));
    return 1;
}

/* After the payload of a gzip file: one more read makes zlib reach the end of the stream and check its
 * CRC and length (a read that stops exactly at the payload's end need not have). Bytes after the
 * payload are allowed and left unread. */
static int idx_gz_check_end_(gzFile g, const char *path, char *err, size_t errlen)
{
    unsigned char extra;
    if (gzdirect(g) || gzread(g, &extra, 1) == 1)
        return 0;
    return idx_gz_failed_(g, path, err, errlen) ? -1 : 0;
}

static void idx_swap_(void *data, size_t size, int64_t n)
{
    unsigned char *p = data;
    for (int64_t i = 0; i < n; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* Big-endian file elements to host dtype, in place for the 4/8-byte types, through `raw` otherwise. */
static void idx_to_host_(const IdxType *t, const void *raw, void *dst, int64_t n)
{
    const unsigned char *s = raw;
    int32_t *d = dst;
    if (t->code == 0x09)
        for (int64_t i = 0; i < n; i++)
            d[i] = (int8_t)s[i];
    else if (t->code == 0x0B)
        for (int64_t i = 0; i < n; i++)
            d[i] = (int16_t)(uint16_t)(s[2 * i] << 8 | s[2 * i + 1]);
    else if (t->file_size > 1)
        idx_swap_(dst, t->file_size, n);
}

/* Magic and dimensions into out->rank/shape; returns the element type. */
static const IdxType *idx_read_header_(gzFile g, const char *path, nnc_array *out, char *err,
                                       size_t errlen)
{
    unsigned char m[4], d[4 * NNC_MAX_RANK];
    size_t got;
    const IdxType *t;
    if (idx_gzread_all_(g, m, 4, &got) && idx_gz_failed_(g, path, err, errlen))
        return NULL;
    if (got < 4 || m[0] || m[1] || !(t = idx_find_type_(m[2]))) {
        fail_(err, errlen, "%s: not an IDX file (magic %02x %02x %02x %02x; expected 00 00 TYPE RANK)", path,
              got > 0 ? m[0] : 0, got > 1 ? m[1] : 0, got > 2 ? m[2] : 0, got > 3 ? m[3] : 0);
        return NULL;
    }
    if (m[3] > NNC_MAX_RANK) {
        fail_(err, errlen, "%s: IDX rank %d exceeds the maximum of %d", path, m[3], NNC_MAX_RANK);
        return NULL;
    }
    out->rank = m[3];
    if (idx_gzread_all_(g, d, 4 * (size_t)out->rank, &got)) {
        int code;
        gzerror(g, &code);
        if (code == Z_OK || code == Z_STREAM_END || code == Z_BUF_ERROR)
            fail_(err, errlen, "%s: truncated: %d dimensions announced, %s", path, out->rank,
                  idx_gz_reason_(g, path));
        else
            idx_gz_failed_(g, path, err, errlen);
        return NULL;
    }
    for (int i = 0; i < out->rank; i++)
        out->shape[i] = (int64_t)((uint32_t)d[4 * i] << 24 | (uint32_t)d[4 * i + 1] << 16 |
                                  (uint32_t)d[4 * i + 2] << 8 | d[4 * i + 3]);
    return t;
}

/* A plain file's size bounds the payload before we allocate it; a gzip file's does not, so there an
 * absurd header costs a failed (or lazily committed) allocation and then a "truncated" error. */
static int idx_check_plain_size_(gzFile g, const char *path, size_t nbytes, int rank, char *err,
                                 size_t errlen)
{
    struct stat st;
    int64_t have;
    if (!gzdirect(g) || stat(path, &st) != 0)
        return 0;
    have = (int64_t)st.st_size - 4 - 4 * (int64_t)rank;
    if ((uint64_t)nbytes > (uint64_t)have)
        return fail_(err, errlen, "%s: truncated: the dimensions need %zu bytes of data, file has %lld", path,
                     nbytes, (long long)have);
    return 0;
}

/* The dimensions as "[a, b, c]" for messages. */
static void idx_format_shape_(const nnc_array *a, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < a->rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)a->shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

/* Header, then every check that needs no data: the element count and byte size representable, a plain
 * file long enough. Nothing is decompressed past the header. */
static const IdxType *idx_read_head_(gzFile g, const char *path, nnc_array *out, size_t *nbytes, char *err,
                                     size_t errlen)
{
    const IdxType *t = idx_read_header_(g, path, out, err, errlen);
    int64_t n;
    char shape[160];
    if (!t)
        return NULL;
    out->dtype = t->dtype;
    n = nnc_array_count(out);
    if (n < 0 || (uint64_t)n > SIZE_MAX / 8) {
        idx_format_shape_(out, shape, sizeof shape);
        fail_(err, errlen, "%s: IDX dimensions %s are too large (their product overflows)", path, shape);
        return NULL;
    }
    *nbytes = (size_t)n * t->file_size;
    return idx_check_plain_size_(g, path, *nbytes, out->rank, err, errlen) ? NULL : t;
}

static int idx_read_data_(gzFile g, const char *path, const IdxType *t, size_t nbytes, nnc_array *out,
                          char *err, size_t errlen)
{
    int64_t n = nnc_array_count(out);
    size_t got;
    int widen = t->file_size != nnc_dtype_size(t->dtype);
    void *raw;
    out->data = malloc(n ? (size_t)n * nnc_dtype_size(t->dtype) : 1);
    raw = widen ? malloc(nbytes ? nbytes : 1) : out->data;
    if (!out->data || !raw) {
        if (widen)
            free(raw);
        return fail_(err, errlen, "%s: out of memory for %lld elements", path, (long long)n);
    }
    if (idx_gzread_all_(g, raw, nbytes, &got) || idx_gz_check_end_(g, path, err, errlen)) {
        int code;
        gzerror(g, &code);
        if (got < nbytes && (code == Z_OK || code == Z_STREAM_END || code == Z_BUF_ERROR))
            fail_(err, errlen, "%s: truncated: the dimensions need %zu bytes of data, got %zu (%s)", path,
                  nbytes, got, idx_gz_reason_(g, path));
        else if (got < nbytes)
            idx_gz_failed_(g, path, err, errlen);
        if (widen)
            free(raw);
        return -1;
    }
    idx_to_host_(t, raw, out->data, n);
    if (widen)
        free(raw);
    return 0;
}

/* The whole array, or only its header (data NULL). On failure *out is left zeroed. */
static int idx_read_(const char *path, nnc_array *out, int with_data, char *err, size_t errlen)
{
    const IdxType *t;
    size_t nbytes = 0;
    int rc = -1;
    gzFile g;
    memset(out, 0, sizeof *out);
    errno = 0;
    g = gzopen(path, "rb");
    if (!g)
        return fail_(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(g, with_data ? 1u << 17 : 1u << 12); /* large reads for 47 MB MNIST images; small to peek */
    t = idx_read_head_(g, path, out, &nbytes, err, errlen);
    if (t)
        rc = with_data ? idx_read_data_(g, path, t, nbytes, out, err, errlen) : 0;
    gzclose(g);
    if (rc)
        nnc_array_free(out);
    return rc;
}

int nnc_idx_read(const char *path, nnc_array *out, char *err, size_t errlen)
{
    return idx_read_(path, out, 1, err, errlen);
}

int nnc_idx_read_header(const char *path, nnc_array *out, char *err, size_t errlen)
{
    return idx_read_(path, out, 0, err, errlen);
}
