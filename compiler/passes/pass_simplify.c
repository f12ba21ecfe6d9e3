/* pass_simplify.c: algebraic simplification.
 *
 * Requires: a verified graph. Gives: the same values with these identities applied, each only when the
 * result keeps the value's type and shape (no rule may change what broadcasting produced):
 *   x*1, 1*x, x/1, x+(-0), (-0)+x, x-0 -> x;  -(-x) -> x;  x**1 -> x;  cast to its own type -> x;
 *   reshape of a reshape -> one reshape; a reshape or broadcast to the same shape -> x;
 *   transpose of a transpose -> one transpose (none when the permutations cancel);
 *   select with a constant condition -> the chosen operand;
 *   an elementwise op reads x instead of broadcast(x) when its result keeps its shape, and otherwise
 *   op(broadcast(a), b) becomes broadcast(op(a, b)) when b fits a's shape (so the next op drops it);
 *   a product with a contraction of 1, and a folded product with one output row or column, become an
 *   elementwise product (and a sum), so they fuse.
 * x+0 with a positive zero is kept: IEEE gives -0 + 0 = +0, and 1/x would tell the difference, so the
 * rewrite would make -O1 disagree with -O0. Every rule here is exact for every input, NaN and -0 included.
 */
#include "passes.h"
#include "rewrite.h"

#include <string.h>

#include <math.h>

static bool const_equal_(const Value *v, double x)
{
    return v->op == OP_CONST && !v->attr.data && v->attr.f[0] == x;
}

static bool const_neg_zero_(const Value *v)
{
    return v->op == OP_CONST && !v->attr.data && v->attr.f[0] == 0 && signbit(v->attr.f[0]);
}

/* input k, if it has the value's own shape and type (so returning it changes nothing) */
static int same_as_(Rewrite *rw, int old, int k)
{
    const Value *v = &rw->from->v[old];
    const Value *x = rw_in(rw, old, k);
    return shape_eq(x->shape, v->shape) && x->dtype == v->dtype ? rw_new_in(rw, old, k) : -1;
}

static int arith_(Rewrite *rw, int old)
{
    const Value *v = &rw->from->v[old];
    const Value *a = rw_in(rw, old, 0), *b = v->nin > 1 ? rw_in(rw, old, 1) : NULL;
    int r = -1;
    switch (v->op) {
    case OP_MUL:
        if (const_equal_(b, 1)) r = same_as_(rw, old, 0);
        if (r < 0 && const_equal_(a, 1)) r = same_as_(rw, old, 1);
        break;
    case OP_DIV:
        if (const_equal_(b, 1)) r = same_as_(rw, old, 0);
        break;
    case OP_ADD:
        if (const_neg_zero_(b)) r = same_as_(rw, old, 0);
        if (r < 0 && const_neg_zero_(a)) r = same_as_(rw, old, 1);
        break;
    case OP_SUB:
        if (const_equal_(b, 0)) r = same_as_(rw, old, 0);
        break;
    case OP_NEG:
        if (a->op == OP_NEG && shape_eq(rw->to->v[a->in[0]].shape, v->shape)) r = a->in[0];
        break;
    case OP_POWC:
        if (v->attr.f[0] == 1) r = same_as_(rw, old, 0);
        break;
    case OP_CAST:
        r = same_as_(rw, old, 0);
        break;
    case OP_SELECT:
        if (a->op == OP_CONST && !a->attr.data) r = same_as_(rw, old, a->attr.f[0] != 0 ? 1 : 2);
        break;
    default: break;
    }
    return r;
}

/* products with a contraction of length 1, or a folded product with one output row or column, are
 * elementwise products (and a sum): they fuse with their neighbours like any other elementwise op.
 *   a [.., M, 1] @ b [1, N]              = a * b  (broadcast)
 *   a [R, 1]^T @ b [R, N]               = sum over the rows of a * b, kept as [1, N]; a^T @ b [R, 1] alike,
 *   and the folded products of autodiff (summed over every leading axis) the same way */
static int small_matmul_(Rewrite *rw, int old)
{
    const Value *v = &rw->from->v[old];
    int a = rw_new_in(rw, old, 0), b = rw_new_in(rw, old, 1);
    Shape sa = rw->to->v[a].shape, sb = rw->to->v[b].shape;
    Loc loc = v->loc;
    bool fold = v->attr.i[2] || (v->attr.i[0] && !v->attr.i[1] && sa.rank == 2 && sb.rank == 2);
    if (fold) { /* a [R, K]^T @ b [R, N] (summed over every leading axis when folded): out [K, N] */
        int64_t k = sa.d[sa.rank - 1], n = sb.d[sb.rank - 1];
        if (k != 1 && n != 1) return -1;
        int prod = ir_binary(rw->to, OP_MUL, a, b, loc); /* [.., K, N] with one of them 1: broadcast */
        Shape ps = rw->to->v[prod].shape;
        uint64_t axes = ((uint64_t)1 << (ps.rank - 1)) - 1; /* every axis but the last */
        int s = ir_reduce(rw->to, OP_SUM, prod, axes, true, loc);
        return ir_reshape(rw->to, s, v->shape, loc);
    }
    if (v->attr.i[0] || v->attr.i[1] || sa.rank < 2 || sb.rank != 2 || sa.d[sa.rank - 1] != 1) return -1;
    int id = ir_binary(rw->to, OP_MUL, a, b, loc);
    return id >= 0 && shape_eq(rw->to->v[id].shape, v->shape) ? id : -1;
}

static int shape_op_(Rewrite *rw, int old)
{
    const Value *v = &rw->from->v[old];
    const Value *a = rw_in(rw, old, 0);
    int x = rw_new_in(rw, old, 0);
    switch (v->op) {
    case OP_MATMUL: return small_matmul_(rw, old);
    case OP_RESHAPE:
        if (a->op == OP_RESHAPE) return ir_reshape(rw->to, a->in[0], v->shape, v->loc);
        return shape_eq(a->shape, v->shape) ? x : -1;
    case OP_BROADCAST: return shape_eq(a->shape, v->shape) ? x : -1;
    case OP_TRANSPOSE: {
        if (a->op != OP_TRANSPOSE) break;
        Attr p = {0};
        bool identity = true;
        for (int k = 0; k < v->shape.rank; k++) {
            p.i[k] = a->attr.i[v->attr.i[k]];
            identity &= p.i[k] == k;
        }
        if (identity) return a->in[0];
        int src = a->in[0];
        return graph_add(rw->to, OP_TRANSPOSE, &src, 1, &p, v->loc);
    }
    default: break;
    }
    return -1;
}

/* op(broadcast(a), b) = broadcast(op(a, b)) when b fits a's own shape: the broadcast moves after the op,
 * where the next elementwise consumer can drop it */
static int sink_broadcast_(Rewrite *rw, int old)
{
    const Value *v = &rw->from->v[old];
    int in[4], bcast = -1;
    for (int k = 0; k < v->nin; k++) {
        in[k] = rw_new_in(rw, old, k);
        if (rw->to->v[in[k]].op == OP_BROADCAST && bcast < 0) bcast = k;
    }
    if (bcast < 0) return -1;
    int inner = rw->to->v[in[bcast]].in[0];
    Shape small = rw->to->v[inner].shape, s = small;
    for (int k = 0; k < v->nin; k++)
        if (k != bcast && (!shape_broadcast2(s, rw->to->v[in[k]].shape, &s) || !shape_eq(s, small))) return -1;
    in[bcast] = inner;
    int id = graph_add(rw->to, v->op, in, v->nin, &v->attr, v->loc);
    return id < 0 ? -1 : ir_broadcast(rw->to, id, v->shape, v->loc);
}

/* an elementwise op reads a broadcast value as well as the value itself (it broadcasts on its own):
 * drop broadcasts that do not change the op's result shape (a mean's gradient is one) */
static int without_broadcasts_(Rewrite *rw, int old)
{
    const Value *v = &rw->from->v[old];
    int in[4];
    bool changed = false;
    for (int k = 0; k < v->nin && k < 4; k++) {
        in[k] = rw_new_in(rw, old, k);
        const Value *x = &rw->to->v[in[k]];
        if (x->op != OP_BROADCAST) continue;
        int saved = in[k];
        in[k] = x->in[0];
        Shape s = rw->to->v[in[0]].shape;
        for (int j = 1; j <= k; j++) shape_broadcast2(s, rw->to->v[in[j]].shape, &s);
        for (int j = k + 1; j < v->nin; j++) shape_broadcast2(s, rw->to->v[rw_new_in(rw, old, j)].shape, &s);
        if (shape_eq(s, v->shape)) changed = true;
        else in[k] = saved;
    }
    if (v->nin > 4) return -1;
    if (!changed) return sink_broadcast_(rw, old);
    int id = graph_add(rw->to, v->op, in, v->nin, &v->attr, v->loc);
    return id >= 0 && shape_eq(rw->to->v[id].shape, v->shape) ? id : -1;
}

static int simplify_value_(Rewrite *rw, int old)
{
    const Value *v = &rw->from->v[old];
    if (op_has(v->op, F_SOURCE)) return rw_copy(rw, old);
    int r = op_has(v->op, F_EW) ? arith_(rw, old) : shape_op_(rw, old);
    if (r < 0 && op_has(v->op, F_EW)) r = without_broadcasts_(rw, old);
    return r >= 0 ? r : rw_copy(rw, old);
}

void pass_simplify(Graph *g) { graph_rewrite(g, simplify_value_, NULL, g->hashcons); }
