/* onnx_ops_reduce.c: reductions over axes (ReduceSum, ReduceMean, ReduceMax, ReduceMin and the composite
 * ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp), ArgMax/ArgMin, Softmax/LogSoftmax.
 * Each works on the .nn axes that hold the ONNX axes, in whatever layout the data has (an NHWC convolution
 * output is reduced over H and W without a transpose); a reduction over the batch axis mixes samples and is
 * refused. Not here: ReduceProd (no product reduction in .nn), ArgMax's select_last_index, Hardmax. */
#include "onnx_internal.h"

#include <string.h>

static void nn_dims_(const Val *v, int64_t *nd)
{
    for (int k = 0; k < v->rank; k++) nd[v->axis[k]] = v->dims[k];
}

/* the result of reducing the ONNX axes in `gone` of x: extents 1 (keepdims) or dropped, and the .nn axes
 * after a dropped one moving down */
static void reduced_shape_(const Val *x, const bool *gone, bool keepdims, int *rank, int64_t *dims, int *axis)
{
    *rank = 0;
    for (int k = 0; k < x->rank; k++) {
        if (gone[k] && !keepdims) continue;
        int a = x->axis[k];
        if (!keepdims)
            for (int j = 0; j < x->rank; j++) a -= gone[j] && x->axis[j] < x->axis[k];
        dims[*rank] = gone[k] ? 1 : x->dims[k];
        axis[(*rank)++] = a;
    }
}

static Val *write_out_(Imp *im, const Node *n, const char *expr, int rank, const int64_t *dims, const int *axis, bool is_int)
{
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_line(im, "%s = %s", name, expr);
    imp_set_data(o, name, rank, dims, axis);
    o->is_int = is_int;
    return o;
}

/* ---- Reduce* ---- */
/* the reduced ONNX axes: an attribute, or (ReduceSum from opset 13, the others from 18) a constant input;
 * none given: every axis, or (noop_with_empty_axes) none. *noop when nothing is reduced. */
static bool reduce_axes_(Imp *im, const Node *n, const Val *x, bool *gone, bool *noop)
{
    int64_t axes[OX_MAX_RANK];
    int na = 0;
    bool from_input = im->opset >= (str_eq(n->op_type, "ReduceSum") ? 13 : 18);
    const int64_t *a = from_input ? NULL : attr_ints(n, "axes", &na);
    Val *av = from_input ? imp_input(im, n, 1) : NULL;
    if (a) {
        if (na > OX_MAX_RANK) return imp_unsupported(im, n, "too many axes");
        memcpy(axes, a, sizeof *a * (size_t)na);
    } else if (av && (av->kind != VAL_CONST || !oxc_ints(&av->c, axes, OX_MAX_RANK, &na)))
        return imp_unsupported(im, n, "the axes must be a constant list");
    *noop = na == 0 && from_input && attr_int(n, "noop_with_empty_axes", 0) != 0;
    for (int k = 0; k < x->rank; k++) gone[k] = na == 0 && !*noop;
    for (int k = 0; k < na; k++) {
        int ax = ox_axis(axes[k], x->rank);
        if (ax < 0 || ax >= x->rank) return imp_unsupported(im, n, "axis %lld is out of range", (long long)axes[k]);
        gone[ax] = true;
    }
    for (int k = 0; k < x->rank; k++)
        if (gone[k] && x->dims[k] == OX_BATCH)
            return imp_unsupported(im, n, "it reduces over the batch axis (it would mix the samples)");
    return true;
}

/* `fn(arg, axis=[..], keepdims=..)` over the .nn axes of the ONNX axes in gone */
static const char *reduce_call_(Imp *im, const Val *x, const bool *gone, const char *fn, const char *arg, bool keepdims)
{
    int64_t ax[OX_MAX_RANK];
    int n = 0;
    for (int a = 1; a < x->rank; a++) /* .nn axis a, in order */
        for (int k = 0; k < x->rank; k++)
            if (gone[k] && x->axis[k] == a) ax[n++] = a;
    return arena_printf(im->a, "%s(%s, axis=%s, keepdims=%s)", fn, arg, imp_int_list(im, ax, n),
                        keepdims ? "true" : "false");
}

static bool reduce_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    bool gone[OX_MAX_RANK], noop = false;
    if (!x || !reduce_axes_(im, n, x, gone, &noop)) return false;
    const char *op = n->op_type, *s = x->nn;
    bool kd = attr_int(n, "keepdims", 1) != 0;
    Val *o = imp_output(im, n, 0);
    if (noop) {
        imp_set_data(o, x->nn, x->rank, x->dims, x->axis);
        o->is_int = x->is_int;
        return true;
    }
    const char *e;
    Arena *a = im->a;
    imp_comment_node(im, n);
    if (str_eq(op, "ReduceSum")) e = reduce_call_(im, x, gone, "sum", s, kd);
    else if (str_eq(op, "ReduceMean")) e = reduce_call_(im, x, gone, "mean", s, kd);
    else if (str_eq(op, "ReduceMax")) e = reduce_call_(im, x, gone, "max", s, kd);
    else if (str_eq(op, "ReduceMin")) e = arena_printf(a, "-%s", reduce_call_(im, x, gone, "max", arena_printf(a, "-%s", s), kd));
    else if (str_eq(op, "ReduceL1")) e = reduce_call_(im, x, gone, "sum", arena_printf(a, "abs(%s)", s), kd);
    else if (str_eq(op, "ReduceL2"))
        e = arena_printf(a, "sqrt(%s)", reduce_call_(im, x, gone, "sum", arena_printf(a, "square(%s)", s), kd));
    else if (str_eq(op, "ReduceSumSquare")) e = reduce_call_(im, x, gone, "sum", arena_printf(a, "square(%s)", s), kd);
    else if (str_eq(op, "ReduceLogSum")) e = arena_printf(a, "log(%s)", reduce_call_(im, x, gone, "sum", s, kd));
    else { /* ReduceLogSumExp, stably: m + log(sum(exp(x - m))) with m the maximum */
        const char *m = imp_fresh_name(im, arena_printf(im->a, "%s_max", s));
        imp_line(im, "%s = %s", m, reduce_call_(im, x, gone, "max", s, true));
        const char *lse = reduce_call_(im, x, gone, "sum", arena_printf(im->a, "exp(%s - %s)", s, m), kd);
        e = arena_printf(im->a, "%s + log(%s)", kd ? m : reduce_call_(im, x, gone, "max", s, false), lse);
    }
    int rank, axis[OX_MAX_RANK];
    int64_t dims[OX_MAX_RANK];
    reduced_shape_(x, gone, kd, &rank, dims, axis);
    write_out_(im, n, e, rank, dims, axis, false);
    return true;
}

/* ---- ArgMax, ArgMin ---- */
static bool argmax_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    if (attr_int(n, "select_last_index", 0))
        return imp_unsupported(im, n, "select_last_index=1 (nnc's argmax picks the first)");
    int a = ox_axis(attr_int(n, "axis", 0), x->rank);
    if (a < 0 || a >= x->rank) return imp_unsupported(im, n, "axis out of range");
    int K = x->axis[a];
    if (K == 0) return imp_unsupported(im, n, "it takes the index along the batch axis");
    bool kd = attr_int(n, "keepdims", 1) != 0, gone[OX_MAX_RANK] = {0};
    gone[a] = true;
    /* ArgMin is the first maximum of -x: the first minimum of x */
    const char *e = arena_printf(im->a, "argmax(%s%s, axis=%d)", str_eq(n->op_type, "ArgMin") ? "-" : "", x->nn, K);
    if (kd) {
        int64_t nd[OX_MAX_RANK], ps[OX_MAX_RANK];
        nn_dims_(x, nd);
        for (int k = 1; k < x->rank; k++) ps[k - 1] = k == K ? 1 : nd[k];
        e = arena_printf(im->a, "reshape(%s, %s)", e, imp_int_list(im, ps, x->rank - 1));
    }
    int rank, axis[OX_MAX_RANK];
    int64_t dims[OX_MAX_RANK];
    reduced_shape_(x, gone, kd, &rank, dims, axis);
    imp_comment_node(im, n);
    write_out_(im, n, e, rank, dims, axis, true);
    return true;
}

/* ---- Softmax, LogSoftmax ---- */
/* From opset 13 over one axis; before, over the block of every axis from `axis` on (flattened to 2-D): that
 * is one axis when the ones after it have extent 1, else a reshape of the batch-major value to
 * [.., block], a softmax over the last axis, and a reshape back. */
static bool softmax_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    const char *fn = str_eq(n->op_type, "LogSoftmax") ? "log_softmax" : "softmax";
    int a = ox_axis(attr_int(n, "axis", im->opset >= 13 ? -1 : 1), x->rank);
    if (a < 0 || a >= x->rank) return imp_unsupported(im, n, "axis out of range");
    bool one_axis = true; /* before opset 13: when the axes after `axis` have extent 1 */
    for (int k = a + 1; k < x->rank && im->opset < 13; k++) one_axis &= x->dims[k] == 1;
    if (one_axis) {
        if (x->axis[a] == 0) return imp_unsupported(im, n, "it normalizes over the batch axis");
        imp_comment_node(im, n);
        write_out_(im, n, arena_printf(im->a, "%s(%s, axis=%d)", fn, x->nn, x->axis[a]), x->rank, x->dims, x->axis, false);
        return true;
    }
    int q = -1;
    for (int k = 0; k < x->rank; k++)
        if (x->dims[k] == OX_BATCH) q = k;
    if (q < 0 || q >= a) return imp_unsupported(im, n, "it normalizes over a block of axes holding the batch axis");
    for (int k = 0; k < q; k++)
        if (x->dims[k] != 1) return imp_unsupported(im, n, "the input has axes before the batch axis");
    int want[OX_MAX_RANK];
    int64_t flat[OX_MAX_RANK], back[OX_MAX_RANK], block = 1;
    int nf = 0, nb = 0;
    for (int k = 0; k < x->rank; k++) {
        want[k] = k == q ? 0 : k < q ? k + 1 : k;
        if (k == q) continue;
        back[nb++] = x->dims[k];
        if (k < a) flat[nf++] = x->dims[k];
        else block *= x->dims[k];
    }
    flat[nf++] = block;
    imp_comment_node(im, n);
    const char *src = imp_data_as(im, x, want);
    const char *e = arena_printf(im->a, "reshape(%s(reshape(%s, %s), axis=-1), %s)", fn, src, imp_int_list(im, flat, nf),
                                 imp_int_list(im, back, nb));
    write_out_(im, n, e, x->rank, x->dims, want, false);
    return true;
}

const OpRow onnx_ops_reduce[] = {
    {"ReduceSum", 1, reduce_},       {"ReduceMean", 1, reduce_},    {"ReduceMax", 1, reduce_},
    {"ReduceMin", 1, reduce_},       {"ReduceL1", 1, reduce_},      {"ReduceL2", 1, reduce_},
    {"ReduceSumSquare", 1, reduce_}, {"ReduceLogSum", 1, reduce_},  {"ReduceLogSumExp", 1, reduce_},
    {"ArgMax", 1, argmax_},          {"ArgMin", 1, argmax_},        {"Softmax", 1, softmax_},
    {"LogSoftmax", 1, softmax_},
    {NULL, 0, NULL},
};
