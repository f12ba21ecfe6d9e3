/* npycmp.c: compare a computed .npy file against a reference, the way the forward tests need.
 *
 *   npycmp [--rtol R] [--atol A] GOT.npy EXPECTED.npy
 *
 * Passes (exit 0) when both have the same shape and the same kind of dtype (float: f32/f64; integer:
 * i32/i64/u8) and every element satisfies |got - expected| <= atol + rtol * |expected| (floats; NaN only
 * matches NaN, an infinity only the same infinity) or is equal (integers). Defaults are docs/kernels.md's forward
 * tolerance, rtol 1e-4 and atol 1e-5. On a mismatch it prints how many elements are off and the worst one
 * (index, both values, the difference and what was allowed) and exits 1; exit 2 for bad usage or an
 * unreadable file. What it does not do: convert between float and integer data, or broadcast.
 */
#include "nnc_runtime.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_float_(nnc_dtype t) { return t == NNC_F32 || t == NNC_F64; }

static double get_(const nnc_array *a, int64_t i)
{
    switch (a->dtype) {
    case NNC_F32: return ((const float *)a->data)[i];
    case NNC_F64: return ((const double *)a->data)[i];
    case NNC_I32: return ((const int32_t *)a->data)[i];
    case NNC_I64: return (double)((const int64_t *)a->data)[i];
    case NNC_U8: return ((const uint8_t *)a->data)[i];
    }
    return NAN;
}

static void shape_str_(const nnc_array *a, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < a->rank && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%" PRId64, i ? ", " : "", a->shape[i]);
    if (n < len) snprintf(buf + n, len - n, "] %s", nnc_dtype_name(a->dtype));
}

static void index_str_(const nnc_array *a, int64_t flat, char *buf, size_t len)
{
    int64_t idx[NNC_MAX_RANK];
    for (int i = a->rank - 1; i >= 0; i--) {
        idx[i] = a->shape[i] ? flat % a->shape[i] : 0;
        flat = a->shape[i] ? flat / a->shape[i] : 0;
    }
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < a->rank && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%" PRId64, i ? ", " : "", idx[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

/* How far outside the tolerance one element is: <= 0 passes; +inf for a NaN/Inf mismatch. */
static double excess_(double got, double want, double rtol, double atol, int exact)
{
    if (exact) return got == want ? 0 : fabs(got - want);
    if (isnan(want) || isnan(got)) return isnan(want) && isnan(got) ? 0 : INFINITY;
    if (isinf(want) || isinf(got)) return got == want ? 0 : INFINITY;
    return fabs(got - want) - (atol + rtol * fabs(want));
}

static int compare_(const char *gpath, const nnc_array *got, const nnc_array *want, double rtol, double atol)
{
    char gs[128], ws[128];
    shape_str_(got, gs, sizeof gs);
    shape_str_(want, ws, sizeof ws);
    int same = got->rank == want->rank && is_float_(got->dtype) == is_float_(want->dtype);
    for (int i = 0; same && i < got->rank; i++) same = got->shape[i] == want->shape[i];
    if (!same) {
        printf("%s: got %s, expected %s\n", gpath, gs, ws);
        return 1;
    }
    int exact = !is_float_(want->dtype);
    int64_t n = nnc_array_count(want), bad = 0, worst = -1;
    double worst_excess = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = excess_(get_(got, i), get_(want, i), rtol, atol, exact);
        if (e > 0) {
            bad++;
            if (worst < 0 || e > worst_excess) worst = i, worst_excess = e;
        }
    }
    if (!bad) return 0;
    char where[128];
    index_str_(want, worst, where, sizeof where);
    double g = get_(got, worst), w = get_(want, worst);
    printf("%s: %" PRId64 " of %" PRId64 " elements differ (shape %s); worst at %s: got %.9g, expected %.9g, "
           "|diff| %.3g, allowed %.3g (rtol %g, atol %g)\n",
           gpath, bad, n, ws, where, g, w, fabs(g - w), exact ? 0.0 : atol + rtol * fabs(w), rtol, atol);
    return 1;
}

static int usage_(void)
{
    fprintf(stderr, "usage: npycmp [--rtol R] [--atol A] GOT.npy EXPECTED.npy\n");
    return 2;
}

int main(int argc, char **argv)
{
    double rtol = 1e-4, atol = 1e-5;
    const char *paths[2];
    int np = 0;
    for (int i = 1; i < argc; i++) {
        char *end;
        if ((!strcmp(argv[i], "--rtol") || !strcmp(argv[i], "--atol")) && i + 1 < argc) {
            double v = strtod(argv[i + 1], &end);
            if (*end || v < 0) return usage_();
            *(argv[i][2] == 'r' ? &rtol : &atol) = v;
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_();
        } else if (np < 2) {
            paths[np++] = argv[i];
        } else {
            return usage_();
        }
    }
    if (np != 2) return usage_();
    nnc_array got = {0}, want = {0};
    char err[1024];
    if (nnc_npy_read(paths[0], &got, err, sizeof err) != 0 || nnc_npy_read(paths[1], &want, err, sizeof err) != 0) {
        fprintf(stderr, "npycmp: %s\n", err);
        nnc_array_free(&got);
        return 2;
    }
    int rc = compare_(paths[0], &got, &want, rtol, atol);
    nnc_array_free(&got);
    nnc_array_free(&want);
    return rc;
}
