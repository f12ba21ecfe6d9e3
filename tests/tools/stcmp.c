/* stcmp.c: compare a safetensors file written by nnc against a reference, the way the training tests need.
 *
 *   stcmp [--rtol R] [--atol A] [--no-extra PREFIX]... [-v] ACTUAL.safetensors EXPECTED.safetensors
 *
 * Passes (exit 0) when every tensor of EXPECTED is in ACTUAL under the same name, with the same shape and
 * the same kind of dtype (float: F32/F64; integer: I32/I64/U8), and every element satisfies
 * |actual - expected| <= atol + rtol * |expected| (floats; NaN only matches NaN, an infinity only the same
 * infinity) or is equal (integers). Defaults are the training tolerance of docs/kernels.md, rtol 1e-3 and atol 1e-4.
 * Tensors only in ACTUAL are ignored, except those whose name starts with a --no-extra PREFIX: those are
 * failures (e.g. `--no-extra opt.`: optimizer state for a frozen parameter). On failure it prints one line
 * per bad tensor (how many elements are off, the worst one: index, both values, difference, what was
 * allowed), then the worst tensor overall, and exits 1; exit 2 for bad usage or an unreadable file.
 * -v prints, on success too, the worst element relative to its allowance ("within 0.013 of the tolerance").
 * What it does not do: convert between float and integer data, broadcast, or compare metadata.
 */
#include "nnc_runtime.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Opts {
    double rtol, atol;
    const char *no_extra[16];
    int n_no_extra;
    int verbose;
} Opts;

/* the worst element seen so far: `ratio` is |diff| / allowance (inf for a NaN/Inf or integer mismatch) */
typedef struct Worst {
    const char *tensor;
    int64_t index;
    double got, want, ratio;
} Worst;

static int is_float_(nnc_dtype t) { return t == NNC_F32 || t == NNC_F64; }

static double get_(const nnc_st_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case NNC_F32: return ((const float *)t->data)[i];
    case NNC_F64: return ((const double *)t->data)[i];
    case NNC_I32: return ((const int32_t *)t->data)[i];
    case NNC_I64: return (double)((const int64_t *)t->data)[i];
    case NNC_U8: return ((const uint8_t *)t->data)[i];
    }
    return NAN;
}

static int64_t count_(const nnc_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

static void shape_str_(const nnc_st_tensor *t, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < t->rank && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    if (n < len) snprintf(buf + n, len - n, "] %s", nnc_dtype_name(t->dtype));
}

static void index_str_(const nnc_st_tensor *t, int64_t flat, char *buf, size_t len)
{
    int64_t idx[NNC_MAX_RANK];
    for (int i = t->rank - 1; i >= 0; i--) {
        idx[i] = t->shape[i] ? flat % t->shape[i] : 0;
        flat = t->shape[i] ? flat / t->shape[i] : 0;
    }
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < t->rank && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%" PRId64, i ? ", " : "", idx[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

/* |got - want| as a multiple of what is allowed: <= 1 passes */
static double ratio_(double got, double want, const Opts *o, int exact)
{
    if (exact) return got == want ? 0 : INFINITY;
    if (isnan(want) || isnan(got)) return isnan(want) && isnan(got) ? 0 : INFINITY;
    if (isinf(want) || isinf(got)) return got == want ? 0 : INFINITY;
    return fabs(got - want) / (o->atol + o->rtol * fabs(want));
}

static void print_element_(const char *what, const nnc_st_tensor *want, const Worst *w, const Opts *o)
{
    char where[128];
    index_str_(want, w->index, where, sizeof where);
    int exact = !is_float_(want->dtype);
    printf("%s %s at %s: got %.9g, expected %.9g, |diff| %.3g, allowed %.3g (%.3g of the tolerance)\n", what,
           w->tensor, where, w->got, w->want, fabs(w->got - w->want),
           exact ? 0.0 : o->atol + o->rtol * fabs(w->want), w->ratio);
}

/* one expected tensor against the actual file; returns 1 on a failure (printed) */
static int compare_tensor_(const nnc_safetensors *got, const nnc_st_tensor *want, const Opts *o, Worst *worst,
                           const nnc_st_tensor **worst_t)
{
    const nnc_st_tensor *g = nnc_st_find(got, want->name);
    char gs[160], ws[160];
    shape_str_(want, ws, sizeof ws);
    if (!g) {
        printf("%s: missing (expected %s)\n", want->name, ws);
        return 1;
    }
    shape_str_(g, gs, sizeof gs);
    int same = g->rank == want->rank && is_float_(g->dtype) == is_float_(want->dtype);
    for (int i = 0; same && i < g->rank; i++) same = g->shape[i] == want->shape[i];
    if (!same) {
        printf("%s: got %s, expected %s\n", want->name, gs, ws);
        return 1;
    }
    int exact = !is_float_(want->dtype);
    int64_t n = count_(want), bad = 0;
    Worst w = {.tensor = want->name, .index = -1};
    for (int64_t i = 0; i < n; i++) {
        double r = ratio_(get_(g, i), get_(want, i), o, exact);
        if (r > 1) bad++;
        if (w.index < 0 || r > w.ratio) w = (Worst){want->name, i, get_(g, i), get_(want, i), r};
    }
    if (w.index >= 0 && (worst->index < 0 || w.ratio > worst->ratio)) *worst = w, *worst_t = want;
    if (!bad) return 0;
    printf("%s: %" PRId64 " of %" PRId64 " elements differ (shape %s);", want->name, bad, n, ws);
    print_element_(" worst", want, &w, o);
    return 1;
}

static int compare_(const nnc_safetensors *got, const nnc_safetensors *want, const Opts *o)
{
    int failed = 0;
    Worst worst = {.index = -1};
    const nnc_st_tensor *worst_t = NULL;
    for (int i = 0; i < want->count; i++) failed += compare_tensor_(got, &want->tensors[i], o, &worst, &worst_t);
    for (int i = 0; i < got->count; i++) {
        const char *name = got->tensors[i].name;
        for (int k = 0; k < o->n_no_extra; k++)
            if (!strncmp(name, o->no_extra[k], strlen(o->no_extra[k])) && !nnc_st_find(want, name)) {
                printf("%s: present, but the reference has no such tensor\n", name);
                failed++;
                break;
            }
    }
    if (worst_t && (failed || o->verbose))
        print_element_(failed ? "worst of all:" : "ok, worst:", worst_t, &worst, o);
    if (failed) printf("%d tensor%s of %d differ\n", failed, failed == 1 ? "" : "s", want->count);
    return failed ? 1 : 0;
}

static int usage_(void)
{
    fprintf(stderr, "usage: stcmp [--rtol R] [--atol A] [--no-extra PREFIX]... [-v] ACTUAL.safetensors "
                    "EXPECTED.safetensors\n");
    return 2;
}

static int parse_args_(int argc, char **argv, Opts *o, const char **paths)
{
    int np = 0;
    for (int i = 1; i < argc; i++) {
        char *end;
        if ((!strcmp(argv[i], "--rtol") || !strcmp(argv[i], "--atol")) && i + 1 < argc) {
            double v = strtod(argv[i + 1], &end);
            if (*end || v < 0) return -1;
            *(argv[i][2] == 'r' ? &o->rtol : &o->atol) = v;
            i++;
        } else if (!strcmp(argv[i], "--no-extra") && i + 1 < argc && o->n_no_extra < 16) {
            o->no_extra[o->n_no_extra++] = argv[++i];
        } else if (!strcmp(argv[i], "-v")) {
            o->verbose = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return -1;
        } else if (np < 2) {
            paths[np++] = argv[i];
        } else {
            return -1;
        }
    }
    return np == 2 ? 0 : -1;
}

int main(int argc, char **argv)
{
    Opts o = {.rtol = 1e-3, .atol = 1e-4};
    const char *paths[2];
    if (parse_args_(argc, argv, &o, paths) != 0) return usage_();
    nnc_safetensors got = {0}, want = {0};
    char err[1024];
    if (nnc_st_read(paths[0], &got, err, sizeof err) != 0 || nnc_st_read(paths[1], &want, err, sizeof err) != 0) {
        fprintf(stderr, "stcmp: %s\n", err);
        nnc_st_free(&got);
        return 2;
    }
    int rc = compare_(&got, &want, &o);
    nnc_st_free(&got);
    nnc_st_free(&want);
    return rc;
}
