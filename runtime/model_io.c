/* model_io.c: a generated model's tensor table to and from safetensors.
 *
 * The table (M_tensors) gives each tensor's name, shape and byte offset in the model struct, so this
 * needs nothing model-specific. It does not know what the tensors mean: which kinds a caller requires is
 * its choice (flags). Floats are the generated default `float`; models built with NNC_REAL=double are
 * not saved through here.
 */
#include "nnc_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t table_count_(const nnc_tensor_info *t)
{
    int64_t n = 1;
    for (int k = 0; k < t->rank; k++) n *= t->shape[k];
    return n;
}

int nnc_model_save(const char *path, const void *model, const nnc_tensor_info *table, int count,
                   const nnc_st_tensor *extra, int nextra, char *err, size_t errlen)
{
    nnc_st_tensor *ts = calloc((size_t)(count + nextra) + 1, sizeof *ts);
    if (!ts) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        const nnc_tensor_info *t = &table[i];
        ts[i].name = (char *)t->name;
        ts[i].dtype = t->dtype ? NNC_I32 : NNC_F32;
        ts[i].rank = t->rank;
        for (int k = 0; k < t->rank; k++) ts[i].shape[k] = t->shape[k];
        ts[i].data = (char *)model + t->offset;
        ts[i].nbytes = (size_t)table_count_(t) * 4;
    }
    for (int i = 0; i < nextra; i++) ts[count + i] = extra[i];
    int rc = nnc_st_write(path, ts, count + nextra, err, errlen);
    free(ts);
    return rc;
}

static const char *kind_name_(int kind) { return kind == 0 ? "parameter" : kind == 1 ? "state tensor" : "optimizer tensor"; }

static int shape_matches_(const nnc_tensor_info *t, const nnc_st_tensor *f)
{
    if (f->rank != t->rank) {
        /* a scalar may be stored as [1] and [1] as a scalar */
        return table_count_(t) == 1 && (f->rank == 0 || (f->rank == 1 && f->shape[0] == 1));
    }
    for (int k = 0; k < t->rank; k++)
        if (f->shape[k] != t->shape[k]) return 0;
    return 1;
}

static void shape_text_(char *buf, size_t n, int rank, const int64_t *d)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)d[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int dtype_fits_(const nnc_st_tensor *f, const nnc_tensor_info *t, const char *path, char *err, size_t errlen)
{
    if (t->dtype == 0 ? f->dtype == NNC_F32 || f->dtype == NNC_F64 : f->dtype == NNC_I32 || f->dtype == NNC_I64) return 1;
    snprintf(err, errlen, "%s: tensor '%s' has dtype %s, expected %s", path, t->name, nnc_dtype_name(f->dtype),
             t->dtype == 0 ? "F32" : "I32");
    return 0;
}

static void copy_in_(const nnc_st_tensor *f, const nnc_tensor_info *t, void *dst)
{
    int64_t n = table_count_(t);
    if (t->dtype == 0) {
        float *d = dst;
        if (f->dtype == NNC_F32) memcpy(d, f->data, (size_t)n * 4);
        else
            for (int64_t i = 0; i < n; i++) d[i] = (float)((const double *)f->data)[i];
        return;
    }
    int32_t *d = dst;
    if (f->dtype == NNC_I32) memcpy(d, f->data, (size_t)n * 4);
    else
        for (int64_t i = 0; i < n; i++) d[i] = (int32_t)((const int64_t *)f->data)[i];
}

static int load_pass_(const nnc_safetensors *st, const char *path, void *model, const nnc_tensor_info *table,
                      int count, int flags, int copy, char *err, size_t errlen);

/* Every check first, then every copy: a file that does not fit leaves the model as it was. */
int nnc_model_load(const nnc_safetensors *st, const char *path, void *model, const nnc_tensor_info *table,
                   int count, int flags, int *loaded, int *unused, char *err, size_t errlen)
{
    for (int pass = 0; pass < 2; pass++) {
        int got = load_pass_(st, path, model, table, count, flags, pass == 1, err, errlen);
        if (got < 0) return -1;
        if (loaded) *loaded = got;
    }
    if (unused) {
        int u = 0;
        for (int i = 0; i < st->count; i++) {
            int known = 0;
            for (int k = 0; k < count && !known; k++) known = strcmp(st->tensors[i].name, table[k].name) == 0;
            u += !known;
        }
        *unused = u;
    }
    return 0;
}

static int load_pass_(const nnc_safetensors *st, const char *path, void *model, const nnc_tensor_info *table,
                      int count, int flags, int copy, char *err, size_t errlen)
{
    int got = 0;
    for (int i = 0; i < count; i++) {
        const nnc_tensor_info *t = &table[i];
        int required = (t->kind == 0 && (flags & NNC_LOAD_PARAMS)) || (t->kind == 1 && (flags & NNC_LOAD_STATE));
        const nnc_st_tensor *f = nnc_st_find(st, t->name);
        if (!f) {
            if (required) {
                snprintf(err, errlen, "%s: missing %s '%s'", path, kind_name_(t->kind), t->name);
                return -1;
            }
            continue;
        }
        if (!required && !(flags & NNC_LOAD_OPTIONAL)) continue;
        if (!shape_matches_(t, f)) {
            char want[128], have[128];
            int64_t d[8];
            for (int k = 0; k < t->rank; k++) d[k] = t->shape[k];
            shape_text_(want, sizeof want, t->rank, d);
            shape_text_(have, sizeof have, f->rank, f->shape);
            snprintf(err, errlen, "%s: tensor '%s' has shape %s, the model expects %s", path, t->name, have, want);
            return -1;
        }
        if (!dtype_fits_(f, t, path, err, errlen)) return -1;
        if (copy) copy_in_(f, t, (char *)model + t->offset);
        got++;
    }
    return got;
}
