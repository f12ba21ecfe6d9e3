/* pb2npy.c: one serialized ONNX TensorProto (.pb, as in ONNX's backend test data) to a .npy file.
 *
 *   pb2npy IN.pb OUT.npy
 *
 * Prints the tensor's name (the graph input or output it belongs to) on one line of stdout and writes
 * OUT.npy in a dtype that nnc's runtime reads: float -> <f4, double -> <f8, int64 -> <i8, int32 -> <i4,
 * bool and uint8 -> |u1. Types without such a dtype are widened where that loses nothing: int8, int16,
 * uint16 -> <i4; uint32, and uint64 whose values fit, -> <i8; float16 and bfloat16 -> <f4. Both raw_data
 * (little-endian) and the typed fields (float_data, int32_data, ...) are read.
 * Exit 0 on success; 1 for a file that is not a well-formed TensorProto or does not hold the data its
 * shape says (the file is untrusted: every count is checked before anything is allocated); 2 for bad
 * usage or an unwritable output; 3 for a tensor with no .npy form here (strings, complex, float8, rank
 * above NNC_MAX_RANK, external or segmented data, a uint64 above INT64_MAX).
 * What it does not do: read a ModelProto, or keep int8/float16 as such (nnc's runtime reads neither).
 */
#include "nnc_runtime.h"
#include "onnx.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PB2NPY_MAX_FILE = 1 << 28 }; /* the largest backend test tensor is a few MB */
enum { PB2NPY_BAD = 1, PB2NPY_USAGE = 2, PB2NPY_NO_FORM = 3 };

/* The dtype a TensorProto type becomes, and its element size in raw_data; size 0: no .npy form. */
typedef struct TypeMap {
    nnc_dtype to;
    int raw_size;
} TypeMap;

static TypeMap type_map_(int onnx_type)
{
    switch (onnx_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return (TypeMap){NNC_F32, 4};
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return (TypeMap){NNC_F64, 8};
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return (TypeMap){NNC_F32, 2};
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return (TypeMap){NNC_F32, 2};
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return (TypeMap){NNC_I64, 8};
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return (TypeMap){NNC_I64, 8};
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return (TypeMap){NNC_I64, 4};
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return (TypeMap){NNC_I32, 4};
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return (TypeMap){NNC_I32, 2};
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return (TypeMap){NNC_I32, 2};
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return (TypeMap){NNC_I32, 1};
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return (TypeMap){NNC_U8, 1};
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return (TypeMap){NNC_U8, 1};
    default: return (TypeMap){NNC_F32, 0};
    }
}

static double half_to_double_(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    double v = exp == 0 ? ldexp(man, -24) : exp == 31 ? (man ? NAN : INFINITY) : ldexp(man | 1024, exp - 25);
    return sign ? -v : v;
}

static float bfloat_to_float_(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* One element's bits: `size` little-endian bytes of raw_data, or one entry of a typed field. */
typedef struct Elem {
    uint64_t bits;  /* integers, float16/bfloat16 and float32 bit patterns */
    double dbl;     /* double_data */
    float flt;      /* float_data */
} Elem;

/* Store element k of type `onnx_type` into the output array; 0, or -1 for a uint64 that int64 cannot hold. */
static int store_(nnc_array *a, int64_t k, int onnx_type, Elem e, int typed)
{
    switch (onnx_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        if (typed) ((float *)a->data)[k] = e.flt;
        else { uint32_t w = (uint32_t)e.bits; memcpy((float *)a->data + k, &w, 4); }
        return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        if (typed) ((double *)a->data)[k] = e.dbl;
        else memcpy((double *)a->data + k, &e.bits, 8);
        return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: ((float *)a->data)[k] = (float)half_to_double_((uint16_t)e.bits); return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: ((float *)a->data)[k] = bfloat_to_float_((uint16_t)e.bits); return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: ((int32_t *)a->data)[k] = (int16_t)(uint16_t)e.bits; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: ((int32_t *)a->data)[k] = (int8_t)(uint8_t)e.bits; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: ((int32_t *)a->data)[k] = (int32_t)(uint32_t)e.bits; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: ((int32_t *)a->data)[k] = (int32_t)(uint16_t)e.bits; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: ((int64_t *)a->data)[k] = (int64_t)e.bits; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: ((int64_t *)a->data)[k] = (int64_t)(uint32_t)e.bits; return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        if (e.bits > (uint64_t)INT64_MAX) return -1;
        ((int64_t *)a->data)[k] = (int64_t)e.bits;
        return 0;
    default: /* uint8, bool (0 or 1 in ONNX; the byte is kept as it is) */
        ((uint8_t *)a->data)[k] = (uint8_t)e.bits;
        return 0;
    }
}

static Elem raw_elem_(const uint8_t *p, int size)
{
    Elem e = {0, 0, 0};
    for (int b = size - 1; b >= 0; b--) e.bits = e.bits << 8 | p[b];
    return e;
}

/* How many values the typed field for `onnx_type` holds (the ONNX rules of TensorProto's comments). */
static size_t typed_count_(const Onnx__TensorProto *t, int onnx_type)
{
    switch (onnx_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return t->n_float_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return t->n_double_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return t->n_int64_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return t->n_uint64_data;
    default: return t->n_int32_data; /* int32, int16, int8, uint16, uint8, bool, float16, bfloat16 */
    }
}

static Elem typed_elem_(const Onnx__TensorProto *t, int onnx_type, size_t k)
{
    Elem e = {0, 0, 0};
    switch (onnx_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: e.flt = t->float_data[k]; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: e.dbl = t->double_data[k]; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: e.bits = (uint64_t)t->int64_data[k]; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: e.bits = t->uint64_data[k]; break;
    default: e.bits = (uint64_t)(uint32_t)t->int32_data[k]; break;
    }
    return e;
}

/* Rank and element count from dims, refusing negative extents and counts whose bytes overflow. */
static int shape_of_(const Onnx__TensorProto *t, nnc_array *a, const char *path, char *err, size_t errlen)
{
    if (t->n_dims > NNC_MAX_RANK) {
        snprintf(err, errlen, "%s: rank %zu; .npy files here hold up to %d", path, t->n_dims, NNC_MAX_RANK);
        return PB2NPY_NO_FORM;
    }
    a->rank = (int)t->n_dims;
    for (size_t k = 0; k < t->n_dims; k++) a->shape[k] = t->dims[k];
    int64_t n = nnc_array_count(a);
    if (n < 0 || (uint64_t)n > (uint64_t)PB2NPY_MAX_FILE) {
        snprintf(err, errlen, "%s: a negative or too large shape", path);
        return PB2NPY_BAD;
    }
    return 0;
}

/* Fill a->data (allocated here) from raw_data or the typed field, after checking the count against dims. */
static int fill_(const Onnx__TensorProto *t, int onnx_type, TypeMap m, nnc_array *a, const char *path, char *err, size_t errlen)
{
    int64_t n = nnc_array_count(a);
    int raw = t->has_raw_data;
    size_t have = raw ? t->raw_data.len : typed_count_(t, onnx_type);
    size_t want = raw ? (size_t)n * (size_t)m.raw_size : (size_t)n;
    if (have != want) {
        snprintf(err, errlen, "%s: holds %zu %s for %lld elements", path, have, raw ? "bytes of raw_data" : "typed values", (long long)n);
        return PB2NPY_BAD;
    }
    a->dtype = m.to;
    a->data = malloc((size_t)n * nnc_dtype_size(m.to) + 1);
    if (!a->data) {
        snprintf(err, errlen, "%s: out of memory for %lld elements", path, (long long)n);
        return PB2NPY_BAD;
    }
    for (int64_t k = 0; k < n; k++) {
        Elem e = raw ? raw_elem_(t->raw_data.data + (size_t)k * (size_t)m.raw_size, m.raw_size) : typed_elem_(t, onnx_type, (size_t)k);
        if (store_(a, k, onnx_type, e, !raw) != 0) {
            snprintf(err, errlen, "%s: uint64 element %lld is above INT64_MAX", path, (long long)k);
            return PB2NPY_NO_FORM;
        }
    }
    return 0;
}

static int tensor_to_array_(const Onnx__TensorProto *t, nnc_array *a, const char *path, char *err, size_t errlen)
{
    int onnx_type = t->has_data_type ? t->data_type : 0;
    TypeMap m = type_map_(onnx_type);
    if (!m.raw_size) {
        snprintf(err, errlen, "%s: data type %d has no .npy form here (strings, complex, float8, undefined)", path, onnx_type);
        return PB2NPY_NO_FORM;
    }
    if (t->segment || (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)) {
        snprintf(err, errlen, "%s: segmented or external data is not read", path);
        return PB2NPY_NO_FORM;
    }
    int rc = shape_of_(t, a, path, err, errlen);
    return rc ? rc : fill_(t, onnx_type, m, a, path, err, errlen);
}

/* The whole file, refused above PB2NPY_MAX_FILE before reading it. */
static uint8_t *read_file_(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return NULL;
    }
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    uint8_t *buf = size >= 0 && size <= PB2NPY_MAX_FILE ? malloc((size_t)size + 1) : NULL;
    if (!buf || fseek(f, 0, SEEK_SET) != 0 || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, errlen, "%s: cannot read (or larger than %d bytes)", path, PB2NPY_MAX_FILE);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: pb2npy IN.pb OUT.npy\n");
        return PB2NPY_USAGE;
    }
    char err[1024];
    size_t len = 0;
    uint8_t *buf = read_file_(argv[1], &len, err, sizeof err);
    Onnx__TensorProto *t = buf ? onnx__tensor_proto__unpack(NULL, len, buf) : NULL;
    if (buf && !t) snprintf(err, sizeof err, "%s: not a TensorProto", argv[1]);
    free(buf);
    if (!t) {
        fprintf(stderr, "pb2npy: %s\n", err);
        return PB2NPY_BAD;
    }
    nnc_array a = {0};
    int rc = tensor_to_array_(t, &a, argv[1], err, sizeof err);
    if (!rc && nnc_npy_write(argv[2], &a, err, sizeof err) != 0) rc = PB2NPY_USAGE;
    if (!rc) printf("%s\n", t->name ? t->name : "");
    else fprintf(stderr, "pb2npy: %s\n", err);
    nnc_array_free(&a);
    onnx__tensor_proto__free_unpacked(t, NULL);
    return rc;
}
