/* safetensors.c: weight files in the safetensors format (https://github.com/huggingface/safetensors).
 *
 * Layout: u64 little-endian N, N bytes of JSON {"name": {"dtype": "F32", "shape": [2, 3],
 * "data_offsets": [begin, end]}, ..., "__metadata__": {...}}, then the data, offsets relative to its
 * start. Reading trusts nothing in the header: every entry is checked against the file before any data
 * is read, and each tensor gets its own malloc'd (so aligned) buffer, read with one fread.
 * Writing follows the reference implementation: compact JSON, padded with spaces to a multiple of 8 so
 * the data starts aligned, header keys sorted by name; the data goes in the order the caller gives.
 * What it does not do: F16/BF16/BOOL/I8..U64 tensors (an error naming the tensor), memory mapping,
 * keeping "__metadata__" (skipped when read, never written), or big-endian hosts (rejected at compile
 * time).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fileno, fstat, fseeko: the library is otherwise strict C99 */
#endif
#include "nnc_runtime.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c copies little-endian data as is; a big-endian host needs byte swapping added"
#endif

#define ST_MAX_HEADER (100ull << 20) /* the reference rejects headers over 100 MB too */
#define ST_MAX_INT 9007199254740992.0 /* 2^53: JSON numbers are doubles in cJSON, exact up to here */

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

static const struct {
    const char *name;
    nnc_dtype dtype;
} st_dtypes_[] = {{"F32", NNC_F32}, {"F64", NNC_F64}, {"I32", NNC_I32}, {"I64", NNC_I64}, {"U8", NNC_U8}};

static const char *st_dtype_name_(nnc_dtype t)
{
    for (size_t i = 0; i < sizeof st_dtypes_ / sizeof st_dtypes_[0]; i++)
        if (st_dtypes_[i].dtype == t)
            return st_dtypes_[i].name;
    return NULL;
}

static int st_dtype_parse_(const char *s, nnc_dtype *t)
{
    for (size_t i = 0; i < sizeof st_dtypes_ / sizeof st_dtypes_[0]; i++)
        if (strcmp(st_dtypes_[i].name, s) == 0) {
            *t = st_dtypes_[i].dtype;
            return 0;
        }
    return -1;
}

static char *st_strdup_(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

/* Bytes a tensor of this dtype and shape needs, or -1 if the shape is invalid or absurd. */
static int64_t st_tensor_bytes_(nnc_dtype t, int rank, const int64_t *shape)
{
    nnc_array a;
    int64_t n;
    memset(&a, 0, sizeof a);
    a.dtype = t;
    a.rank = rank;
    if (rank >= 0 && rank <= NNC_MAX_RANK)
        memcpy(a.shape, shape, (size_t)rank * sizeof *shape);
    n = nnc_array_count(&a);
    if (n < 0 || n > INT64_MAX / 8)
        return -1;
    return n * (int64_t)nnc_dtype_size(t);
}

/* A tensor while reading: where its bytes lie in the data section. */
typedef struct StSlot {
    nnc_st_tensor *t;
    uint64_t begin, end;
} StSlot;

/* ---- reading: header ------------------------------------------------------------------------ */

/* The length prefix and the JSON text (NUL-terminated), checked against the file size first. */
static char *st_read_header_text_(FILE *f, const char *path, int64_t fsize, uint64_t *hlen, char *err,
                                  size_t errlen)
{
    unsigned char le[8];
    char *text;
    if (fsize < 8 || fread(le, 1, 8, f) != 8) {
        fail_(err, errlen, "%s: too short to be a safetensors file (%lld bytes)", path, (long long)fsize);
        return NULL;
    }
    *hlen = 0;
    for (int i = 7; i >= 0; i--)
        *hlen = *hlen << 8 | le[i];
    if (*hlen > ST_MAX_HEADER || *hlen > (uint64_t)(fsize - 8)) {
        if (*hlen > ST_MAX_HEADER)
            fail_(err, errlen, "%s: header length %" PRIu64 " exceeds the 100 MB limit (not a safetensors "
                  "file?)", path, *hlen);
        else
            fail_(err, errlen, "%s: header length %" PRIu64 " exceeds the file: only %lld bytes follow it "
                  "(truncated file?)", path, *hlen, (long long)(fsize - 8));
        return NULL;
    }
    text = malloc((size_t)*hlen + 1);
    if (!text || fread(text, 1, (size_t)*hlen, f) != *hlen) {
        fail_(err, errlen, "%s: cannot read the %" PRIu64 "-byte header: %s", path, *hlen,
              text ? strerror(errno) : "out of memory");
        free(text);
        return NULL;
    }
    text[*hlen] = 0;
    return text;
}

/* The header must be one JSON object, optionally followed by whitespace padding (as the reference
 * writer pads with spaces). */
static cJSON *st_parse_header_(const char *path, const char *text, uint64_t hlen, char *err, size_t errlen)
{
    const char *end = NULL, *jend;
    cJSON *root;
    if (text[0] != '{') {
        fail_(err, errlen, "%s: invalid JSON header: it does not start with '{'", path);
        return NULL;
    }
    root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
    if (!root) {
        fail_(err, errlen, "%s: invalid JSON header (error near byte %ld of %" PRIu64 ")", path,
              end ? (long)(end - text) : 0L, hlen);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        fail_(err, errlen, "%s: invalid JSON header: not a JSON object", path);
        cJSON_Delete(root);
        return NULL;
    }
    jend = end;
    while (end < text + hlen && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != text + hlen) {
        /* Text after the object: usually a header length that runs past the header into the data. */
        fail_(err, errlen, "%s: header length %" PRIu64 " runs past the end of the JSON header, which ends "
              "after %ld bytes (a wrong header length, or junk after the JSON object)", path, hlen,
              (long)(jend - text));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* A JSON number that is an integer in [0, 2^53]. */
static int st_json_uint_(const cJSON *j, uint64_t *v)
{
    double d;
    if (!cJSON_IsNumber(j))
        return -1;
    d = j->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != (double)(uint64_t)d)
        return -1;
    *v = (uint64_t)d;
    return 0;
}

static int st_parse_shape_(const cJSON *js, nnc_st_tensor *t)
{
    const cJSON *d;
    if (!cJSON_IsArray(js) || cJSON_GetArraySize(js) > NNC_MAX_RANK)
        return -1;
    t->rank = 0;
    cJSON_ArrayForEach(d, js) {
        uint64_t v;
        if (st_json_uint_(d, &v))
            return -1;
        t->shape[t->rank++] = (int64_t)v;
    }
    return 0;
}

static int st_parse_offsets_(const cJSON *jo, StSlot *s)
{
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || st_json_uint_(jo->child, &s->begin) ||
        st_json_uint_(jo->child->next, &s->end))
        return -1;
    return s->begin <= s->end ? 0 : -1;
}

/* "[2, 3]" for messages. */
static void st_format_shape_(const nnc_st_tensor *t, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

/* One header entry: the three fields, and data_offsets agreeing with shape*dtype and the data size. */
static int st_parse_entry_(const cJSON *e, StSlot *s, uint64_t data_size, const char *path, char *err,
                           size_t errlen)
{
    const char *name = e->string;
    const cJSON *jd;
    int64_t need;
    if (!cJSON_IsObject(e))
        return fail_(err, errlen, "%s: tensor '%s': header entry is not an object", path, name);
    jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(jd))
        return fail_(err, errlen, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    if (st_dtype_parse_(jd->valuestring, &s->t->dtype))
        return fail_(err, errlen, "%s: tensor '%s': unsupported dtype '%s' (nnc reads F32 F64 I32 I64 U8)",
                     path, name, jd->valuestring);
    if (st_parse_shape_(cJSON_GetObjectItemCaseSensitive(e, "shape"), s->t))
        return fail_(err, errlen, "%s: tensor '%s': missing or bad \"shape\" (a list of at most %d "
                     "non-negative integers)", path, name, NNC_MAX_RANK);
    if (st_parse_offsets_(cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), s))
        return fail_(err, errlen, "%s: tensor '%s': missing or bad \"data_offsets\" (two non-negative "
                     "integers, begin <= end)", path, name);
    need = st_tensor_bytes_(s->t->dtype, s->t->rank, s->t->shape);
    if (need < 0) {
        char shape[200];
        st_format_shape_(s->t, shape, sizeof shape);
        return fail_(err, errlen, "%s: tensor '%s': shape %s is too large (its size in bytes overflows)", path,
                     name, shape);
    }
    if ((uint64_t)need != s->end - s->begin)
        return fail_(err, errlen, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                     " bytes but its shape and dtype %s need %lld", path, name, s->begin, s->end,
                     s->end - s->begin, jd->valuestring, (long long)need);
    if (s->end > data_size)
        return fail_(err, errlen, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] run past the "
                     "end of the data (%" PRIu64 " bytes; truncated file?)", path, name, s->begin, s->end,
                     data_size);
    s->t->nbytes = (size_t)need;
    s->t->name = st_strdup_(name);
    return s->t->name ? 0 : fail_(err, errlen, "%s: out of memory", path);
}

/* ---- reading: cross-entry checks and data ----------------------------------------------------- */

static int st_cmp_name_(const void *a, const void *b)
{
    return strcmp(((const StSlot *)a)->t->name, ((const StSlot *)b)->t->name);
}

static int st_cmp_begin_(const void *a, const void *b)
{
    const StSlot *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Names unique and byte ranges disjoint; leaves the slots sorted by begin, for forward reads. */
static int st_check_layout_(StSlot *slots, int n, const char *path, char *err, size_t errlen)
{
    qsort(slots, (size_t)n, sizeof *slots, st_cmp_name_);
    for (int i = 1; i < n; i++)
        if (strcmp(slots[i - 1].t->name, slots[i].t->name) == 0)
            return fail_(err, errlen, "%s: tensor '%s' appears twice in the header", path, slots[i].t->name);
    qsort(slots, (size_t)n, sizeof *slots, st_cmp_begin_);
    for (int i = 1; i < n; i++)
        if (slots[i].begin < slots[i - 1].end)
            return fail_(err, errlen, "%s: tensors '%s' and '%s' overlap in the data", path,
                         slots[i - 1].t->name, slots[i].t->name);
    return 0;
}

static int st_read_data_(FILE *f, const StSlot *slots, int n, uint64_t data_start, const char *path,
                         char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        nnc_st_tensor *t = slots[i].t;
        t->data = malloc(t->nbytes ? t->nbytes : 1);
        if (!t->data)
            return fail_(err, errlen, "%s: tensor '%s': out of memory for %zu bytes", path, t->name, t->nbytes);
        if (fseeko(f, (off_t)(data_start + slots[i].begin), SEEK_SET) != 0 ||
            fread(t->data, 1, t->nbytes, f) != t->nbytes)
            return fail_(err, errlen, "%s: tensor '%s': read error: %s", path, t->name, strerror(errno));
    }
    return 0;
}

/* Every entry but "__metadata__" becomes a tensor, in header order; out->tensors has room for all
 * entries. out->count grows before each entry is parsed, so nnc_st_free releases what a failing entry
 * allocated. */
static int st_parse_entries_(const cJSON *root, nnc_safetensors *out, StSlot *slots, uint64_t data_size,
                             const char *path, char *err, size_t errlen)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        int i = out->count;
        if (strcmp(e->string, "__metadata__") == 0)
            continue;
        slots[i].t = &out->tensors[i];
        out->count++;
        if (st_parse_entry_(e, &slots[i], data_size, path, err, errlen))
            return -1;
    }
    return 0;
}

static int st_read_file_(FILE *f, const char *path, nnc_safetensors *out, char *err, size_t errlen)
{
    struct stat sb;
    uint64_t hlen;
    char *text;
    cJSON *root;
    StSlot *slots = NULL;
    int rc = -1, n;
    if (fstat(fileno(f), &sb) != 0)
        return fail_(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
    if (!(text = st_read_header_text_(f, path, (int64_t)sb.st_size, &hlen, err, errlen)))
        return -1;
    root = st_parse_header_(path, text, hlen, err, errlen);
    free(text);
    if (!root)
        return -1;
    n = cJSON_GetArraySize(root);
    out->tensors = calloc(n > 0 ? (size_t)n : 1, sizeof *out->tensors);
    slots = calloc(n > 0 ? (size_t)n : 1, sizeof *slots);
    if (!out->tensors || !slots)
        fail_(err, errlen, "%s: out of memory for %d tensors", path, n);
    else if (!st_parse_entries_(root, out, slots, (uint64_t)sb.st_size - 8 - hlen, path, err, errlen) &&
             !st_check_layout_(slots, out->count, path, err, errlen))
        rc = st_read_data_(f, slots, out->count, 8 + hlen, path, err, errlen);
    free(slots);
    cJSON_Delete(root);
    return rc;
}

/* On failure *out is left zeroed. */
int nnc_st_read(const char *path, nnc_safetensors *out, char *err, size_t errlen)
{
    FILE *f;
    int rc;
    memset(out, 0, sizeof *out);
    f = fopen(path, "rb");
    if (!f)
        return fail_(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    rc = st_read_file_(f, path, out, err, errlen);
    fclose(f);
    if (rc)
        nnc_st_free(out);
    return rc;
}

const nnc_st_tensor *nnc_st_find(const nnc_safetensors *st, const char *name)
{
    for (int i = 0; st && i < st->count; i++)
        if (st->tensors[i].name && strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

void nnc_st_free(nnc_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; st->tensors && i < st->count; i++) {
        free(st->tensors[i].name);
        free(st->tensors[i].data);
    }
    free(st->tensors);
    memset(st, 0, sizeof *st);
}

/* ---- writing -------------------------------------------------------------------------------- */

static int st_check_tensor_(const nnc_st_tensor *t, const char *path, char *err, size_t errlen)
{
    const char *name = t->name ? t->name : "(null)";
    int64_t need;
    if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0)
        return fail_(err, errlen, "%s: cannot write a tensor named '%s'", path, name);
    if (!st_dtype_name_(t->dtype))
        return fail_(err, errlen, "%s: tensor '%s': invalid dtype %d", path, name, (int)t->dtype);
    need = st_tensor_bytes_(t->dtype, t->rank, t->shape);
    if (need < 0)
        return fail_(err, errlen, "%s: tensor '%s': invalid or too large shape (rank %d; its size in bytes "
                     "overflows)", path, name, t->rank);
    if ((uint64_t)need != (uint64_t)t->nbytes)
        return fail_(err, errlen, "%s: tensor '%s': nbytes is %zu but rank %d shape and %s need %lld", path,
                     name, t->nbytes, t->rank, st_dtype_name_(t->dtype), (long long)need);
    if (t->nbytes && !t->data)
        return fail_(err, errlen, "%s: tensor '%s': no data", path, name);
    return 0;
}

static int st_cmp_tensor_name_(const void *a, const void *b)
{
    return strcmp((*(const nnc_st_tensor *const *)a)->name, (*(const nnc_st_tensor *const *)b)->name);
}

/* JSON integers printed exactly (cJSON would print doubles, with exponents from 1e15 on). */
static cJSON *st_json_ints_(const int64_t *v, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v[i]);
        if (!cJSON_AddItemToArray(arr, cJSON_CreateRaw(buf))) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, the reference's field order. */
static cJSON *st_json_entry_(const nnc_st_tensor *t, int64_t begin)
{
    int64_t offs[2] = {begin, begin + (int64_t)t->nbytes};
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "dtype", st_dtype_name_(t->dtype)) ||
        !cJSON_AddItemToObject(e, "shape", st_json_ints_(t->shape, t->rank)) ||
        !cJSON_AddItemToObject(e, "data_offsets", st_json_ints_(offs, 2))) {
        cJSON_Delete(e); /* an array that failed to attach was already freed or never made */
        return NULL;
    }
    return e;
}

/* The compact JSON header, keys sorted by name; offsets follow the caller's order (found by summing
 * the sizes before each tensor: quadratic, but a model has tens or hundreds of tensors). */
static char *st_build_header_(const nnc_st_tensor **sorted, const nnc_st_tensor *tensors, int count)
{
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    for (int i = 0; root && i < count; i++) {
        int64_t begin = 0;
        for (const nnc_st_tensor *t = tensors; t < sorted[i]; t++)
            begin += (int64_t)t->nbytes;
        if (!cJSON_AddItemToObject(root, sorted[i]->name, st_json_entry_(sorted[i], begin)))
            goto done;
    }
    if (root)
        text = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return text;
}

/* Validates every tensor and returns them sorted by name (NULL on error, with err set). */
static const nnc_st_tensor **st_sorted_tensors_(const nnc_st_tensor *tensors, int count, const char *path,
                                                char *err, size_t errlen)
{
    const nnc_st_tensor **sorted = malloc((count > 0 ? (size_t)count : 1) * sizeof *sorted);
    uint64_t total = 0;
    if (!sorted) {
        fail_(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        sorted[i] = &tensors[i];
        if (st_check_tensor_(&tensors[i], path, err, errlen))
            goto bad;
        if (tensors[i].nbytes > (uint64_t)INT64_MAX - total) { /* the offsets are int64 sums */
            fail_(err, errlen, "%s: tensor '%s': the tensors hold more than 2^63 bytes together", path,
                  tensors[i].name);
            goto bad;
        }
        total += tensors[i].nbytes;
    }
    qsort(sorted, (size_t)count, sizeof *sorted, st_cmp_tensor_name_);
    for (int i = 1; i < count; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) {
            fail_(err, errlen, "%s: tensor '%s' is given twice", path, sorted[i]->name);
            goto bad;
        }
    return sorted;
bad:
    free(sorted);
    return NULL;
}

/* Length prefix, header padded with spaces to a multiple of 8, then the data in the caller's order. */
static char *st_assemble_(const char *json, const nnc_st_tensor *tensors, int count, size_t *size)
{
    size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8, total = 8 + hlen, at;
    char *buf;
    for (int i = 0; i < count; i++) {
        if (tensors[i].nbytes > SIZE_MAX - total)
            return NULL;
        total += tensors[i].nbytes;
    }
    if (!(buf = malloc(total)))
        return NULL;
    for (int i = 0; i < 8; i++)
        buf[i] = (char)((uint64_t)hlen >> (8 * i) & 0xff);
    memcpy(buf + 8, json, jlen);
    memset(buf + 8 + jlen, ' ', hlen - jlen);
    at = 8 + hlen;
    for (int i = 0; i < count; i++) {
        if (tensors[i].nbytes)
            memcpy(buf + at, tensors[i].data, tensors[i].nbytes);
        at += tensors[i].nbytes;
    }
    *size = total;
    return buf;
}

int nnc_st_write(const char *path, const nnc_st_tensor *tensors, int count, char *err, size_t errlen)
{
    const nnc_st_tensor **sorted;
    char *json, *buf = NULL;
    size_t size = 0;
    int rc = -1;
    if (count < 0 || (count > 0 && !tensors))
        return fail_(err, errlen, "%s: invalid tensor list (count %d)", path, count);
    if (!(sorted = st_sorted_tensors_(tensors, count, path, err, errlen)))
        return -1;
    json = st_build_header_(sorted, tensors, count);
    if (json)
        buf = st_assemble_(json, tensors, count, &size);
    if (!buf)
        fail_(err, errlen, "%s: out of memory building the file (or it exceeds the address space)", path);
    else
        rc = nnc_write_file_atomic(path, buf, size, err, errlen);
    free(buf);
    cJSON_free(json);
    free(sorted);
    return rc;
}
