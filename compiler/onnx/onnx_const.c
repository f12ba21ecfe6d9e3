/* onnx_const.c: constant tensors: TensorProto decoding (raw, typed or external data) and small helpers. Every
 * count is checked against the bytes present before anything is allocated: a TensorProto is untrusted. */
#include "onnx_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OX_MAX_CONST = 1 << 28 };

bool ox_is_float(int dtype) { return dtype == OX_FLOAT || dtype == OX_DOUBLE || dtype == OX_FLOAT16 || dtype == OX_BFLOAT16; }

int64_t ox_count(const int64_t *dims, int rank)
{
    int64_t n = 1;
    bool batch = false;
    for (int k = 0; k < rank; k++) {
        if (dims[k] == OX_BATCH) {
            batch = true;
            continue;
        }
        if (dims[k] < 0 || (dims[k] && n > INT64_MAX / dims[k])) return -2;
        n *= dims[k];
    }
    return batch ? -1 : n;
}

int64_t ox_span(const int64_t *dims, int rank)
{
    int64_t n = 1;
    for (int k = 0; k < rank; k++) {
        int64_t d = dims[k] == 0 || dims[k] == OX_BATCH ? 1 : dims[k];
        if (d < 0) return -1;
        if (n > INT64_MAX / d) return INT64_MAX;
        n *= d;
    }
    return n;
}

double ox_get(const OxConst *c, int64_t k)
{
    if (c->count < 0) return c->fill;
    return c->f ? (double)c->f[k] : (double)c->i[k];
}

void oxc_make(Imp *im, OxConst *c, int dtype, int rank, const int64_t *dims)
{
    memset(c, 0, sizeof *c);
    c->dtype = dtype;
    c->rank = rank;
    for (int k = 0; k < rank; k++) c->dims[k] = dims[k];
    c->count = ox_count(dims, rank);
    if (c->count < 0) return;
    size_t n = (size_t)c->count + 1;
    if (ox_is_float(dtype))
        c->f = arena_alloc(im->a, n * sizeof(float));
    else
        c->i = arena_alloc(im->a, n * sizeof(int64_t));
}

bool oxc_ints(const OxConst *c, int64_t *out, int max, int *count)
{
    if (c->rank > 1 || c->count < 0 || c->count > max || ox_is_float(c->dtype)) return false;
    for (int64_t k = 0; k < c->count; k++) out[k] = c->batch && c->batch[k] ? OX_BATCH : c->i[k];
    *count = (int)c->count;
    return true;
}

static float half_to_float_(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    float v = exp == 0 ? ldexpf((float)man, -24) : exp == 31 ? (man ? NAN : INFINITY) : ldexpf((float)(man | 1024), exp - 25);
    return sign ? -v : v;
}

static float bfloat_to_float_(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int elem_size_(int dtype)
{
    switch (dtype) {
    case OX_FLOAT: case OX_INT32: case OX_UINT32: return 4;
    case OX_DOUBLE: case OX_INT64: case OX_UINT64: return 8;
    case OX_FLOAT16: case OX_BFLOAT16: case OX_INT16: case OX_UINT16: return 2;
    case OX_INT8: case OX_UINT8: case OX_BOOL: return 1;
    default: return 0;
    }
}

/* element k of little-endian raw bytes */
static void raw_elem_(const uint8_t *p, int dtype, float *f, int64_t *i)
{
    uint64_t u = 0;
    for (int b = elem_size_(dtype) - 1; b >= 0; b--) u = u << 8 | p[b];
    switch (dtype) {
    case OX_FLOAT: { uint32_t w = (uint32_t)u; memcpy(f, &w, 4); break; }
    case OX_DOUBLE: { double d; memcpy(&d, &u, 8); *f = (float)d; break; }
    case OX_FLOAT16: *f = half_to_float_((uint16_t)u); break;
    case OX_BFLOAT16: *f = bfloat_to_float_((uint16_t)u); break;
    case OX_INT32: *i = (int32_t)(uint32_t)u; break;
    case OX_INT16: *i = (int16_t)(uint16_t)u; break;
    case OX_INT8: *i = (int8_t)(uint8_t)u; break;
    case OX_INT64: *i = (int64_t)u; break;
    default: *i = (int64_t)u; break; /* unsigned and bool */
    }
}

/* how many values the typed field for `dtype` holds */
static size_t typed_count_(const Onnx__TensorProto *t, int dtype)
{
    switch (dtype) {
    case OX_FLOAT: return t->n_float_data;
    case OX_DOUBLE: return t->n_double_data;
    case OX_INT64: return t->n_int64_data;
    case OX_UINT32: case OX_UINT64: return t->n_uint64_data;
    default: return t->n_int32_data;
    }
}

/* the values from the typed field; its count was checked against c->count before c was allocated */
static void typed_fields_(const Onnx__TensorProto *t, OxConst *c)
{
    int64_t n = c->count;
    for (int64_t k = 0; k < n; k++) {
        switch (c->dtype) {
        case OX_FLOAT: c->f[k] = t->float_data[k]; break;
        case OX_DOUBLE: c->f[k] = (float)t->double_data[k]; break;
        case OX_FLOAT16: c->f[k] = half_to_float_((uint16_t)t->int32_data[k]); break;
        case OX_BFLOAT16: c->f[k] = bfloat_to_float_((uint16_t)t->int32_data[k]); break;
        case OX_INT64: c->i[k] = t->int64_data[k]; break;
        case OX_UINT32: case OX_UINT64: c->i[k] = (int64_t)t->uint64_data[k]; break;
        default: c->i[k] = t->int32_data[k]; break;
        }
    }
}

bool oxc_from_tensor(Imp *im, const Onnx__TensorProto *t, OxConst *c, char *err, size_t errlen)
{
    int dtype = t->has_data_type ? t->data_type : 0;
    if (!elem_size_(dtype)) {
        snprintf(err, errlen, "has data type %d, which nnc does not read (it reads float, double, float16, "
                              "bfloat16, integers and bool)", dtype);
        return false;
    }
    if (t->n_dims > OX_MAX_RANK) {
        snprintf(err, errlen, "has rank %zu; nnc reads up to %d", t->n_dims, OX_MAX_RANK);
        return false;
    }
    int64_t dims[OX_MAX_RANK];
    for (size_t k = 0; k < t->n_dims; k++) dims[k] = t->dims[k];
    int64_t n = ox_count(dims, (int)t->n_dims);
    if (n < 0 || n > OX_MAX_CONST || ox_span(dims, (int)t->n_dims) > OX_MAX_CONST) {
        snprintf(err, errlen, "has a negative or too large shape");
        return false;
    }
    if (t->segment) {
        snprintf(err, errlen, "is segmented, which nnc does not read");
        return false;
    }
    uint8_t *ext = NULL;
    size_t ext_len = (size_t)n * (size_t)elem_size_(dtype); /* the bytes the shape needs */
    bool external = t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (external && !onnx_tensor_external(im->path, t, &ext, &ext_len, err, errlen)) return false;
    const uint8_t *raw = external ? ext : t->has_raw_data ? t->raw_data.data : NULL;
    size_t raw_len = external ? ext_len : t->raw_data.len;
    int es = elem_size_(dtype);
    if (raw && raw_len != (size_t)n * (size_t)es) {
        snprintf(err, errlen, "holds %zu bytes of data for %lld elements of %d bytes", raw_len, (long long)n, es);
        free(ext);
        return false;
    }
    if (!raw && typed_count_(t, dtype) != (size_t)n) { /* before allocating: dims alone may claim 2^28 elements */
        snprintf(err, errlen, "holds %zu values for %lld elements", typed_count_(t, dtype), (long long)n);
        return false;
    }
    oxc_make(im, c, dtype, (int)t->n_dims, dims);
    if (raw)
        for (int64_t k = 0; k < n; k++) raw_elem_(raw + (size_t)k * (size_t)es, dtype, c->f ? &c->f[k] : NULL, c->i ? &c->i[k] : NULL);
    else
        typed_fields_(t, c);
    free(ext);
    return true;
}
