/* pass_fold.c: constant folding.
 *
 * Requires: a verified graph. Gives: values whose inputs are all constants, computed at compile time,
 * when doing so cannot change a bit of the result: only ops flagged F_FOLD in ops.def (IEEE-exact operations:
 * + - * /, sqrt, comparisons, min/max, selection, casts, data movement: reshape, broadcast, transpose; and
 * sums in the generated loops' order) are folded, in the value's own precision (float32, or int32 for F_IFOLD
 * ops), elementwise ones from their scalar definition in ops.def. exp, log, tanh, pow and friends are left to
 * the target's libm.
 * A result containing NaN is not folded. Results with every element equal become a single number, so
 * folding never writes a large array into the generated C; other results are folded up to 65536 elements.
 */
#include "passes.h"
#include "rewrite.h"

#include <tgmath.h>
#include <string.h>

enum { FOLD_MAX = 65536 };

static bool is_const_(const Value *v) { return v->op == OP_CONST; }

static double const_at_(const Value *v, int64_t i)
{
    if (!v->attr.data) return v->attr.f[0];
    return v->dtype == DT_I32 ? ((const int32_t *)v->attr.data)[i] : ((const float *)v->attr.data)[i];
}

/* the flat index into `in` (broadcast NumPy-style into `out`) of output element o */
static int64_t bcast_index_(Shape in, Shape out, int64_t o)
{
    int64_t idx = 0, stride = 1;
    for (int i = out.rank - 1; i >= 0; i--) {
        int64_t d = out.d[i], c = o % d;
        o /= d;
        int j = i - (out.rank - in.rank);
        if (j >= 0 && in.d[j] != 1) idx += c * stride;
        if (j >= 0) stride *= in.d[j];
    }
    return idx;
}

/* One elementwise op on float32 values, from its scalar definition in ops.def, with float arithmetic and
 * (through <tgmath.h>) the float math functions, as the generated C computes it. Called only for F_FOLD ops:
 * their definitions use nothing whose bits depend on a libm. */
static float ew_f32_(OpKind op, const Attr *at, float x, float y, float z)
{
    typedef float nnc_real;
    typedef nnc_real T;
    const nnc_real a0 = (float)at->f[0], a1 = (float)at->f[1];
    switch (op) {
#include "ops_eval.inc"
    default: break;
    }
    NNC_UNREACHABLE();
}

/* the same on int32 values for F_IFOLD ops, in 64 bits (exact for + - * of two int32) */
static int64_t ew_i64_(OpKind op, int64_t x, int64_t y)
{
    typedef int64_t nnc_real;
    typedef nnc_real T;
    const nnc_real z = 0, a0 = 0, a1 = 0;
    switch (op) {
#include "ops_eval.inc"
    default: break;
    }
    NNC_UNREACHABLE();
}

/* wrapped to 32 bits as two's complement, as the generated C's int32 arithmetic */
static int32_t ew_i32_(OpKind op, int32_t x, int32_t y) { return (int32_t)(uint32_t)(uint64_t)ew_i64_(op, x, y); }

typedef struct Folded {
    DType dtype;
    Shape shape;
    float *f;
    int32_t *i;
} Folded;

static bool fold_ew_(Rewrite *rw, int old, const Value *v, Folded *out)
{
    int64_t n = shape_count(v->shape, 1);
    const Value *in[3] = {0};
    for (int k = 0; k < v->nin; k++) in[k] = rw_in(rw, old, k);
    for (int64_t o = 0; o < n; o++) {
        double x[3] = {0};
        for (int k = 0; k < v->nin; k++) x[k] = const_at_(in[k], bcast_index_(in[k]->shape, v->shape, o));
        if (v->op == OP_CAST) {
            if (v->dtype == DT_F32) out->f[o] = (float)x[0];
            else if (x[0] != x[0] || fabs(x[0]) >= 2147483648.0) return false;
            else out->i[o] = (int32_t)x[0];
            continue;
        }
        if (v->dtype == DT_I32 && in[0]->dtype == DT_I32) {
            if (!op_has(v->op, F_IFOLD)) return false;
            out->i[o] = ew_i32_(v->op, (int32_t)x[0], (int32_t)x[1]);
        } else {
            out->f[o] = ew_f32_(v->op, &v->attr, (float)x[0], (float)x[1], (float)x[2]);
        }
    }
    return true;
}

/* sum/mean/max in the order the generated loop uses: every input element, in memory order, into its
 * output position */
static bool fold_reduce_(Rewrite *rw, int old, const Value *v, Folded *out)
{
    if (v->dtype != DT_F32) return false;
    const Value *x = rw_in(rw, old, 0);
    uint64_t axes = (uint64_t)v->attr.i[0];
    Shape xs = x->shape;
    int64_t n = shape_count(xs, 1), on = shape_count(v->shape, 1), count = 1;
    for (int i = 0; i < xs.rank; i++)
        if (axes >> i & 1) count *= xs.d[i];
    for (int64_t o = 0; o < on; o++) out->f[o] = v->op == OP_MAX ? -INFINITY : 0;
    for (int64_t e = 0; e < n; e++) {
        int64_t rest = e, oi = 0, ostride = 1;
        for (int i = xs.rank - 1; i >= 0; i--) {
            int64_t c = rest % xs.d[i];
            rest /= xs.d[i];
            if (!(axes >> i & 1)) oi += c * ostride, ostride *= xs.d[i];
        }
        float a = (float)const_at_(x, e);
        if (v->op == OP_MAX) out->f[oi] = a > out->f[oi] ? a : out->f[oi];
        else out->f[oi] += a;
    }
    if (v->op == OP_MEAN)
        for (int64_t o = 0; o < on; o++) out->f[o] /= (float)count;
    return true;
}

/* the input element that output element o of a transpose reads */
static int64_t transpose_index_(const Value *v, Shape in, int64_t o)
{
    int64_t idx[MAX_RANK], stride[MAX_RANK], src = 0;
    for (int i = v->shape.rank - 1; i >= 0; i--) idx[i] = o % v->shape.d[i], o /= v->shape.d[i];
    stride[in.rank - 1] = 1;
    for (int i = in.rank - 2; i >= 0; i--) stride[i] = stride[i + 1] * in.d[i + 1];
    for (int k = 0; k < v->shape.rank; k++) src += idx[k] * stride[v->attr.i[k]];
    return src;
}

/* reshape, broadcast, transpose: the elements again, moved */
static bool fold_move_(Rewrite *rw, int old, const Value *v, Folded *out)
{
    const Value *x = rw_in(rw, old, 0);
    int64_t n = shape_count(v->shape, 1);
    for (int64_t o = 0; o < n; o++) {
        int64_t src = v->op == OP_RESHAPE     ? o
                      : v->op == OP_TRANSPOSE ? transpose_index_(v, x->shape, o)
                                              : bcast_index_(x->shape, v->shape, o);
        if (v->dtype == DT_I32) out->i[o] = (int32_t)const_at_(x, src);
        else out->f[o] = (float)const_at_(x, src);
    }
    return true;
}

static bool foldable_op_(const Value *v)
{
    return op_has(v->op, F_FOLD);
}

/* the folded value as a constant: one number when every element is equal */
static int make_const_(Rewrite *rw, const Value *v, Folded *r)
{
    int64_t n = shape_count(v->shape, 1);
    bool same = true;
    for (int64_t i = 1; i < n && same; i++)
        same = v->dtype == DT_I32 ? r->i[i] == r->i[0] : memcmp(&r->f[i], &r->f[0], sizeof(float)) == 0;
    Attr a = {0};
    if (same && v->dtype == DT_F32) {
        a.f[0] = r->f[0];
    } else if (v->dtype == DT_I32) {
        int32_t *d = arena_alloc(rw->to->arena, sizeof(int32_t) * (size_t)n);
        memcpy(d, r->i, sizeof(int32_t) * (size_t)n);
        a.data = d;
    } else {
        float *d = arena_alloc(rw->to->arena, sizeof(float) * (size_t)n);
        memcpy(d, r->f, sizeof(float) * (size_t)n);
        a.data = d;
    }
    return graph_add_typed(rw->to, OP_CONST, NULL, 0, &a, v->dtype, v->shape, -1, v->loc);
}

static int fold_value_(Rewrite *rw, int old)
{
    const Value *v = &rw->from->v[old];
    if (!foldable_op_(v) || shape_batched(v->shape)) return rw_copy(rw, old);
    for (int k = 0; k < v->nin; k++)
        if (!is_const_(rw_in(rw, old, k))) return rw_copy(rw, old);
    int64_t n = shape_count(v->shape, 1);
    if (n > FOLD_MAX) return rw_copy(rw, old);
    Folded r = {.dtype = v->dtype, .shape = v->shape};
    r.f = xcalloc((size_t)n, sizeof(float));
    r.i = xcalloc((size_t)n, sizeof(int32_t));
    bool ok = op_has(v->op, F_EW) ? fold_ew_(rw, old, v, &r)
              : op_has(v->op, F_REDUCE) ? fold_reduce_(rw, old, v, &r)
                                        : fold_move_(rw, old, v, &r);
    for (int64_t i = 0; ok && v->dtype == DT_F32 && i < n; i++) ok = !isnan(r.f[i]);
    int id = ok ? make_const_(rw, v, &r) : rw_copy(rw, old);
    free(r.f);
    free(r.i);
    return id;
}

void pass_fold(Graph *g) { graph_rewrite(g, fold_value_, NULL, g->hashcons); }
