/* onnx_ops_shape.c: shape operators on data (Shape, Reshape, Flatten, Squeeze, Unsqueeze, Expand, Transpose,
 * Concat, Gather, Slice, Split, Cast) and the Constant node. Nodes whose inputs are all constant never come here
 * (onnx_fold.c evaluates them); Constant has no inputs, so it is read here.
 *
 * The rule everything follows: .nn axis 0 is the batch, and nothing may move samples across it. So a
 * Reshape or Flatten keeps the batch as its own axis (a target that merges it with another axis is refused);
 * Transpose only permutes the Val's `axis` (no .nn code); Concat, Gather, Slice, Split work on the .nn axis that
 * holds the ONNX axis, in whatever layout the value has, and refuse the batch axis. What is deliberately not
 * here: Size (it depends on the batch), Expand that copies along the batch or both copies and adds axes,
 * indices or shapes computed from data. */
#include "onnx_internal.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_GATHER = 64 }; /* the most slices one index list or strided Slice becomes (a concat of pieces) */

static int batch_pos_(const int64_t *dims, int rank)
{
    int p = -1;
    for (int k = 0; k < rank; k++)
        if (dims[k] == OX_BATCH) {
            if (p >= 0) return -1;
            p = k;
        }
    return p;
}

/* the extents of v's .nn value (the batch at 0) */
static void nn_dims_(const Val *v, int64_t *nd)
{
    for (int k = 0; k < v->rank; k++) nd[v->axis[k]] = v->dims[k];
}

/* the per-sample list of a shape: every extent but the batch and the one at `skip` (-1: none) */
static const char *per_sample_(Imp *im, const int64_t *dims, int rank, int skip)
{
    int64_t d[OX_MAX_RANK];
    int n = 0;
    for (int k = 0; k < rank; k++)
        if (k != skip && dims[k] != OX_BATCH) d[n++] = dims[k];
    return imp_int_list(im, d, n);
}

/* a constant 1-D (or scalar) integer input: its values, and which of them is the batch-size symbol (a
 * literal -1 and the symbol read alike through oxc_ints) */
static bool const_ints_(const Val *v, int64_t *out, bool *batch, int max, int *count)
{
    if (!v || v->kind != VAL_CONST || !oxc_ints(&v->c, out, max, count)) return false;
    for (int k = 0; k < *count; k++) {
        batch[k] = v->c.batch && v->c.batch[k];
        if (!batch[k]) out[k] = v->c.i[k];
    }
    return true;
}

/* the output as the same .nn value as `x` (or `nn`) under another ONNX shape: no statement */
static void set_out_(Val *o, const Val *x, const char *nn, int rank, const int64_t *dims, const int *axis)
{
    imp_set_data(o, nn, rank, dims, axis);
    o->is_int = x->is_int;
}

/* one statement `OUT = expr` for the node's output 0, which takes x's element type */
static Val *write_out_(Imp *im, const Node *n, const Val *x, const char *expr, int rank, const int64_t *dims,
                       const int *axis)
{
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_line(im, "%s = %s", name, expr);
    set_out_(o, x, name, rank, dims, axis);
    return o;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Expand: the elements in ONNX order under new extents ---- */
static int64_t product_(const int64_t *dims, int n)
{
    int64_t p = 1;
    for (int k = 0; k < n; k++) p *= dims[k];
    return p;
}

/* whether x's .nn value holds its axes of extent > 1 (the batch aside) in ONNX's order: its elements are then
 * already in ONNX order within a sample, and a reshape needs no transpose (an NHWC [N,C,1,1] flattened) */
static bool onnx_order_within_sample_(const Val *x)
{
    int last = 0;
    for (int k = 0; k < x->rank; k++) {
        if (x->dims[k] == OX_BATCH || x->dims[k] == 1) continue;
        if (x->axis[k] < last) return false;
        last = x->axis[k];
    }
    return true;
}

static bool same_layout_(const Val *x, const int *want)
{
    for (int k = 0; k < x->rank; k++)
        if (x->axis[k] != want[k]) return false;
    return true;
}

/* x's elements, read in ONNX order, under the ONNX shape dims[rank], which holds the batch once. The batch
 * stays a whole axis when the extents before it hold as many elements in x as in the result (ONNX element
 * (before, b, after) is then element (before', b, after') with the same flat indices): the .nn value is
 * [B, the other extents in ONNX order], a reshape of x brought to that order. */
static bool relabel_(Imp *im, const Node *n, Val *x, const int64_t *dims, int rank)
{
    int q = batch_pos_(x->dims, x->rank), p = batch_pos_(dims, rank);
    if (q < 0 || p < 0) return imp_unsupported(im, n, "the result must keep the batch as one whole axis");
    if (product_(x->dims, q) != product_(dims, p))
        return imp_unsupported(im, n, "the result would mix the batch with other axes");
    int want[OX_MAX_RANK], axis[OX_MAX_RANK];
    for (int k = 0; k < x->rank; k++) want[k] = k == q ? 0 : k < q ? k + 1 : k;
    for (int k = 0; k < rank; k++) axis[k] = k == p ? 0 : k < p ? k + 1 : k;
    if (rank == 2 && p == 0 && q == 0 && x->rank > 2 && !onnx_order_within_sample_(x)) {
        /* a Flatten to [B, rest] of a value held in another order (a convolution's NHWC output) stays pending: a
         * dense layer reading it permutes its weight rows instead of a transpose back to NCHW being written */
        Val *o = imp_output(im, n, 0);
        imp_pending_flatten(im, o, x);
        o->is_int = x->is_int;
        return true;
    }
    size_t mark = im->out.len;
    imp_comment_node(im, n);
    const char *to = per_sample_(im, dims, rank, -1);
    if (onnx_order_within_sample_(x) && !same_layout_(x, want)) {
        write_out_(im, n, x, arena_printf(im->a, "reshape(%s, %s)", x->nn, to), rank, dims, axis);
        return true;
    }
    const char *src = imp_data_as(im, x, want);
    const char *from = per_sample_(im, x->dims, x->rank, -1);
    if (!str_eq(from, to)) {
        write_out_(im, n, x, arena_printf(im->a, "reshape(%s, %s)", src, to), rank, dims, axis);
        return true;
    }
    set_out_(imp_output(im, n, 0), x, src, rank, dims, axis);
    if (!strstr(im->out.s + mark, " = ")) { /* no statement after the comment: the comment goes too */
        im->out.len = mark;
        im->out.s[mark] = 0;
    }
    return true;
}

/* Reshape: one target extent is the batch: the batch-size symbol (from Shape arithmetic), a 0 copying the
 * input's batch extent, a -1 that can only be the batch (the other extents hold one sample), or the exported
 * batch size where the input has its batch; the others are per sample, one -1 among them inferred */
/* why a Reshape target extent d cannot be read (NULL: it can); p, infer: the batch and -1 extents found so far,
 * known: the product of the others */
static const char *bad_extent_(int64_t d, bool batch, int p, int infer, int64_t known)
{
    if (batch) return p >= 0 ? "the batch size appears twice in it" : NULL;
    if (d == -1) return infer >= 0 ? "it has two -1 extents" : NULL;
    if (d <= 0 || d > (1 << 30) || known > ((int64_t)1 << 32)) return "an extent is 0 (allowzero), negative or too large";
    return NULL;
}

/* Reshape's target dims[ns] (0 and -1 resolved in place): the position of the batch, -1 after an error */
static int reshape_target_(Imp *im, const Node *n, const Val *x, int64_t *dims, bool *sym, int ns)
{
    bool allowzero = attr_int(n, "allowzero", 0) != 0;
    int q = batch_pos_(x->dims, x->rank), p = -1, infer = -1;
    int64_t per_sample = 1, known = 1;
    for (int k = 0; k < x->rank; k++) per_sample *= k == q ? 1 : x->dims[k];
    for (int k = 0; k < ns; k++) {
        if (dims[k] == 0 && !allowzero && k < x->rank) {
            sym[k] = k == q;
            dims[k] = x->dims[k];
        }
        const char *bad = bad_extent_(dims[k], sym[k], p, infer, known);
        if (bad) {
            imp_unsupported(im, n, "the target shape: %s", bad);
            return -1;
        }
        if (sym[k]) p = k;
        else if (dims[k] == -1) infer = k;
        else known *= dims[k];
    }
    for (int k = 0; k < ns && p < 0 && im->batch && q >= 0; k++) /* a fixed batch: where the input has it, or first */
        if (dims[k] == im->batch && (k == q || k == 0)) {
            p = k;
            known /= im->batch;
        }
    if (p < 0 && infer >= 0 && known == per_sample) {
        p = infer; /* -1 takes what is left: one batch */
        infer = -1;
    }
    if (p < 0) {
        imp_unsupported(im, n, "no target extent is the batch");
        return -1;
    }
    if (infer >= 0 && known && per_sample % known == 0) {
        dims[infer] = per_sample / known;
        known = per_sample;
    }
    if (known != per_sample) {
        imp_unsupported(im, n, "the target shape does not fit the input's %lld values per sample", (long long)per_sample);
        return -1;
    }
    return p;
}

static bool reshape_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0), *s = imp_input(im, n, 1);
    int64_t dims[OX_MAX_RANK];
    bool sym[OX_MAX_RANK];
    int ns = 0;
    if (!x) return false;
    if (!const_ints_(s, dims, sym, OX_MAX_RANK, &ns) || ns < 1)
        return imp_unsupported(im, n, "the target shape must be a constant of 1 to %d extents", OX_MAX_RANK);
    int p = reshape_target_(im, n, x, dims, sym, ns);
    if (p < 0) return false;
    dims[p] = OX_BATCH;
    return relabel_(im, n, x, dims, ns);
}

/* Flatten to 2-D at `axis`: the batch must be in the first block, alone (the other axes there extent 1) */
static bool flatten_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    int64_t ax = attr_int(n, "axis", 1); /* from -rank to rank: Flatten's axis may be the rank itself */
    if (ax < -x->rank || ax > x->rank) return imp_unsupported(im, n, "axis out of range");
    int axis = (int)(ax < 0 ? ax + x->rank : ax), q = batch_pos_(x->dims, x->rank);
    if (q < 0 || q >= axis) return imp_unsupported(im, n, "axis %d would merge the batch with the axes after it", axis);
    int64_t dims[2] = {OX_BATCH, 1};
    for (int k = 0; k < x->rank; k++) {
        if (k < axis && k != q && x->dims[k] != 1)
            return imp_unsupported(im, n, "axis %d would merge the batch with axis %d", axis, k);
        if (k >= axis) dims[1] *= x->dims[k];
    }
    return relabel_(im, n, x, dims, 2);
}

static bool squeeze_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    int64_t axes[OX_MAX_RANK], dims[OX_MAX_RANK];
    int na, rank;
    if (!x) return false;
    bool un = str_eq(n->op_type, "Unsqueeze");
    if (!onnx_axes_arg(im, n, axes, &na)) return imp_unsupported(im, n, "the axes must be constant");
    if (un ? !onnx_unsqueeze_dims(x->dims, x->rank, axes, na, dims, &rank)
           : !onnx_squeeze_dims(x->dims, x->rank, axes, na, dims, &rank))
        return imp_unsupported(im, n, un ? "bad axes (out of range or repeated)"
                                         : "bad axes (a squeezed axis must have extent 1; the batch axis cannot be squeezed)");
    return relabel_(im, n, x, dims, rank);
}

/* Expand of data that copies along axes where x has extent 1 (F.normalize divides by Expand(max(norm, eps),
 * Shape(x))): x * ones, the ones a constant of the per-sample target extents in x's layout; x * 1 is x exactly
 * (-0 and NaN too, where x + 0 would turn -0 into +0). The ones are a .nn param: their count is bounded. */
enum { EXPAND_MAX_ONES = 1 << 20, FOLDED_MAX_TOTAL = 1 << 25 /* onnx_fold.c's bound on the constants made at import */ };

static bool expand_copy_(Imp *im, const Node *n, Val *x, const int64_t *dims, int rank)
{
    if (rank != x->rank) return imp_unsupported(im, n, "it copies elements along an axis and adds axes");
    int64_t per_sample[OX_MAX_RANK];
    for (int a = 0; a < rank; a++) per_sample[a] = dims[a] == OX_BATCH ? 1 : dims[a];
    int64_t count = ox_count(per_sample, rank);
    if (count < 0 || count > EXPAND_MAX_ONES)
        return imp_unsupported(im, n, "it copies elements into more than 2^20 values per sample");
    if (count > FOLDED_MAX_TOTAL - im->folded) /* counted with the folded constants: many Expands, one bound */
        return imp_unsupported(im, n, "the constants made at import would hold more than 2^25 elements in all");
    im->folded += count;
    Val ones = {.onnx = n->output[0], .kind = VAL_CONST};
    oxc_make(im, &ones.c, OX_FLOAT, rank, per_sample);
    for (int64_t k = 0; k < count; k++) ones.c.f[k] = 1.0f;
    const char *c = imp_const_operand(im, &ones, x);
    if (!c) return false;
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_comment_node(im, n);
    imp_line(im, "%s = %s * %s", name, x->nn, c);
    imp_set_data(o, name, rank, dims, x->axis);
    return true;
}

/* Expand of data: nothing when it copies nothing (the target broadcasts to x's own per-sample extents), else
 * expand_copy_ */
static bool expand_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0), *s = imp_input(im, n, 1);
    int64_t shape[OX_MAX_RANK], dims[OX_MAX_RANK];
    bool sym[OX_MAX_RANK];
    int ns;
    if (!x) return false;
    if (!const_ints_(s, shape, sym, OX_MAX_RANK, &ns)) return imp_unsupported(im, n, "the target shape must be a constant");
    for (int k = 0; k < ns; k++)
        if (sym[k]) shape[k] = OX_BATCH;
        else if (shape[k] < 1) return imp_unsupported(im, n, "a target extent below 1");
    int rank = ns > x->rank ? ns : x->rank;
    bool copies = false;
    for (int a = 0; a < rank; a++) {
        int ox = rank - x->rank, os = rank - ns;
        int64_t dx = a < ox ? 1 : x->dims[a - ox], ds = a < os ? 1 : shape[a - os];
        if (dx == OX_BATCH && (ds == 1 || ds == OX_BATCH || (im->batch && ds == im->batch))) ds = OX_BATCH;
        if (ds != 1 && dx != ds && (dx != 1 || ds == OX_BATCH))
            return imp_unsupported(im, n, "its target shape does not broadcast from the input's, batch axis kept");
        copies |= ds != 1 && dx != ds;
        dims[a] = ds == 1 ? dx : ds;
    }
    return copies ? expand_copy_(im, n, x, dims, rank) : relabel_(im, n, x, dims, rank);
}

/* ---- Shape, Size ---- */
/* Shape of data: its extents, the batch a symbol (as onnx_fold.c marks it) */
static bool shape_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0), *o = imp_output(im, n, 0);
    if (!x) return false;
    int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", x->rank);
    start = start < 0 ? start + x->rank : start;
    end = end < 0 ? end + x->rank : end;
    start = start < 0 ? 0 : start > x->rank ? x->rank : start;
    end = end < start ? start : end > x->rank ? x->rank : end;
    int64_t d = end - start;
    oxc_make(im, &o->c, OX_INT64, 1, &d);
    o->kind = VAL_CONST;
    for (int64_t k = 0; k < d; k++) {
        bool batch = x->dims[start + k] == OX_BATCH;
        o->c.i[k] = batch ? 0 : x->dims[start + k];
        if (batch) {
            if (!o->c.batch) o->c.batch = arena_alloc(im->a, (size_t)d + 1);
            o->c.batch[k] = true;
        }
    }
    return true;
}

static bool size_(Imp *im, const Node *n)
{
    return imp_unsupported(im, n, "the number of elements of data depends on the batch size");
}

/* ---- Transpose, Identity-like ---- */
/* Transpose of data: the result's ONNX axis k is the input's ONNX axis perm[k], held by the same .nn axis */
static bool transpose_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0), *o = imp_output(im, n, 0);
    if (!x) return false;
    int np = 0;
    const int64_t *p = attr_ints(n, "perm", &np);
    if (p && np != x->rank) return imp_unsupported(im, n, "perm has %d axes, the input %d", np, x->rank);
    int perm[OX_MAX_RANK];
    bool seen[OX_MAX_RANK] = {0};
    for (int k = 0; k < x->rank; k++) {
        int64_t a = p ? p[k] : x->rank - 1 - k;
        if (a < 0 || a >= x->rank || seen[a]) return imp_unsupported(im, n, "perm is not a permutation");
        seen[a] = true;
        perm[k] = (int)a;
    }
    Val in = *x; /* o may be x's own slot once imp_output grows the table */
    const char *onnx = o->onnx;
    int uses = o->uses;
    memset(o, 0, sizeof *o);
    o->onnx = onnx;
    o->uses = uses;
    o->kind = VAL_DATA;
    o->nn = in.nn;
    o->rank = in.rank;
    o->is_int = in.is_int;
    for (int k = 0; k < in.rank; k++) {
        o->dims[k] = in.dims[perm[k]];
        o->axis[k] = in.axis[perm[k]];
    }
    for (int v = 0; v < in.nviews; v++) { /* a view wanted ONNX axis j at .nn axis w[j] */
        for (int k = 0; k < in.rank; k++) o->views[v].axis[k] = in.views[v].axis[perm[k]];
        o->views[v].nn = in.views[v].nn;
    }
    o->nviews = in.nviews;
    return true;
}

/* Cast of data: float to float, or int to int, is the value itself; int to float converts */
static bool cast_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    int to = (int)attr_int(n, "to", OX_FLOAT);
    bool to_int = to == OX_INT32 || to == OX_INT64;
    if (to == OX_FLOAT16 || to == OX_BFLOAT16)
        return imp_unsupported(im, n, "a cast to a 16-bit float (nnc computes in f32 and would not round)");
    if (!ox_is_float(to) && !to_int) return imp_unsupported(im, n, "a cast to element type %d", to);
    if (to_int != x->is_int && to_int) return imp_unsupported(im, n, "a cast of float data to an integer type");
    if (to_int || !x->is_int) {
        set_out_(imp_output(im, n, 0), x, x->nn, x->rank, x->dims, x->axis);
        return true;
    }
    imp_comment_node(im, n);
    /* `/` gives f32; `x * 1.0` would stay i32 (an integral literal takes the other side's type) */
    Val *o = write_out_(im, n, x, arena_printf(im->a, "%s / 1", x->nn), x->rank, x->dims, x->axis);
    o->is_int = false;
    return true;
}

/* ---- Concat ---- */
static bool concat_(Imp *im, const Node *n)
{
    Val *first = NULL;
    for (size_t k = 0; k < n->n_input; k++) {
        Val *v = imp_input(im, n, (int)k);
        if (!v || v->kind != VAL_DATA)
            return imp_unsupported(im, n, "input %d is %s: nnc concatenates only data", (int)k, v ? "a constant" : "empty");
        if (!first) first = v;
        if (v->rank != first->rank) return imp_unsupported(im, n, "inputs of ranks %d and %d", first->rank, v->rank);
    }
    if (!first) return imp_unsupported(im, n, "no inputs");
    int axis = ox_axis(attr_int(n, "axis", 0), first->rank);
    if (axis < 0 || axis >= first->rank) return imp_unsupported(im, n, "axis out of range");
    int K = first->axis[axis];
    if (K == 0) return imp_unsupported(im, n, "it concatenates along the batch axis");
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, first->dims, sizeof dims);
    dims[axis] = 0;
    bool all_int = true;
    StrBuf e = {0};
    sb_puts(&e, "concat(");
    for (size_t k = 0; k < n->n_input; k++) {
        Val *v = imp_input(im, n, (int)k);
        for (int a = 0; a < v->rank; a++)
            if (a != axis && v->dims[a] != first->dims[a]) {
                sb_free(&e);
                return imp_unsupported(im, n, "inputs whose extents differ on axis %d", a);
            }
        dims[axis] += v->dims[axis];
        all_int &= v->is_int;
    }
    imp_comment_node(im, n);
    for (size_t k = 0; k < n->n_input; k++)
        sb_printf(&e, "%s%s", k ? ", " : "", imp_data_as(im, imp_input(im, n, (int)k), first->axis));
    sb_printf(&e, ", axis=%d)", K);
    Val in = *first;
    Val *o;
    if (n->n_input == 1) {
        o = imp_output(im, n, 0);
        set_out_(o, &in, in.nn, in.rank, dims, in.axis);
    } else
        o = write_out_(im, n, &in, e.s, in.rank, dims, in.axis);
    o->is_int = all_int;
    sb_free(&e);
    return true;
}

/* ---- Gather, Slice: pieces of one .nn axis ---- */
/* the cells idx[0..count) of .nn axis K of `src` (extent `ext`): runs of consecutive indices become slices,
 * several runs a concat of them */
static const char *take_(Imp *im, const char *src, int K, int64_t ext, const int64_t *idx, int count)
{
    StrBuf e = {0};
    int pieces = 0;
    for (int k = 0; k < count;) {
        int j = k + 1;
        while (j < count && idx[j] == idx[j - 1] + 1) j++;
        if (k == 0 && j == count && idx[0] == 0 && idx[count - 1] == ext - 1)
            sb_puts(&e, src);
        else
            sb_printf(&e, "%sslice(%s, %d, %lld, %lld)", pieces ? ", " : "", src, K, (long long)idx[k],
                      (long long)idx[j - 1] + 1);
        pieces++;
        k = j;
    }
    const char *s = pieces > 1 ? arena_printf(im->a, "concat(%s, axis=%d)", e.s, K) : arena_strdup(im->a, e.s);
    sb_free(&e);
    return s;
}

/* Gather along a non-batch axis with constant indices: a scalar index drops the axis, a 1-D list keeps it */
static bool gather_(Imp *im, const Node *n)
{
    Val *table = imp_input(im, n, 0), *iv = imp_input(im, n, 1);
    if (table && table->kind == VAL_CONST && iv && iv->kind == VAL_DATA) /* nn.Embedding, F.one_hot's lookups */
        return imp_unsupported(im, n, "rows of a constant table picked by data indices (an embedding): nnc has no such lookup");
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    int axis = ox_axis(attr_int(n, "axis", 0), x->rank);
    if (axis < 0 || axis >= x->rank) return imp_unsupported(im, n, "axis out of range");
    int64_t idx[MAX_GATHER];
    int count = 0;
    if (!iv || iv->kind != VAL_CONST || iv->c.rank > 1 || !oxc_ints(&iv->c, idx, MAX_GATHER, &count) || count < 1)
        return imp_unsupported(im, n, "the indices must be a constant scalar or a list of 1 to %d indices", MAX_GATHER);
    int K = x->axis[axis];
    if (K == 0) return imp_unsupported(im, n, "it gathers along the batch axis");
    int64_t ext = x->dims[axis];
    for (int k = 0; k < count; k++) {
        idx[k] += idx[k] < 0 ? ext : 0;
        if (idx[k] < 0 || idx[k] >= ext) return imp_unsupported(im, n, "index %lld is out of range", (long long)idx[k]);
    }
    imp_comment_node(im, n);
    const char *e = take_(im, x->nn, K, ext, idx, count);
    int64_t dims[OX_MAX_RANK];
    int axes[OX_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    memcpy(axes, x->axis, sizeof axes);
    if (iv->c.rank == 1) {
        dims[axis] = count;
        write_out_(im, n, x, e, x->rank, dims, axes);
        return true;
    }
    /* a scalar index: .nn axis K (now of extent 1) goes; the axes after it move down */
    int64_t nd[OX_MAX_RANK];
    nn_dims_(x, nd);
    nd[K] = 1;
    int r = 0;
    for (int k = 0; k < x->rank; k++) {
        if (k == axis) continue;
        dims[r] = x->dims[k];
        axes[r++] = x->axis[k] > K ? x->axis[k] - 1 : x->axis[k];
    }
    write_out_(im, n, x, arena_printf(im->a, "reshape(%s, %s)", e, per_sample_(im, nd, x->rank, K)), r, dims, axes);
    return true;
}

/* Slice's constant arguments: attributes before opset 10, inputs from 10 */
static bool slice_args_(Imp *im, const Node *n, int64_t *starts, int64_t *ends, bool *end_batch, int64_t *axes,
                        int64_t *steps, int *count)
{
    int ns = 0, ne = 0, na = 0, nst = 0;
    bool sym[OX_MAX_RANK];
    for (int k = 0; k < OX_MAX_RANK; k++) end_batch[k] = false;
    if (im->opset < 10) {
        const int64_t *s = attr_ints(n, "starts", &ns), *e = attr_ints(n, "ends", &ne), *a = attr_ints(n, "axes", &na);
        if (!s || !e || ns != ne || ns > OX_MAX_RANK || na > OX_MAX_RANK) return false;
        memcpy(starts, s, sizeof *s * (size_t)ns);
        memcpy(ends, e, sizeof *e * (size_t)ne);
        if (a) memcpy(axes, a, sizeof *a * (size_t)na);
    } else {
        Val *s = imp_input(im, n, 1), *e = imp_input(im, n, 2), *a = imp_input(im, n, 3), *st = imp_input(im, n, 4);
        if (!const_ints_(s, starts, sym, OX_MAX_RANK, &ns) || !const_ints_(e, ends, end_batch, OX_MAX_RANK, &ne) || ns != ne)
            return false;
        if ((a && (a->kind != VAL_CONST || !oxc_ints(&a->c, axes, OX_MAX_RANK, &na))) ||
            (st && (st->kind != VAL_CONST || !oxc_ints(&st->c, steps, OX_MAX_RANK, &nst))))
            return false;
        for (int k = 0; k < ns; k++)
            if (sym[k]) return false;
    }
    if (!na) {
        na = ns;
        for (int k = 0; k < na; k++) axes[k] = k;
    }
    if (!nst) {
        nst = ns;
        for (int k = 0; k < ns; k++) steps[k] = 1;
    }
    *count = ns;
    return na == ns && nst == ns;
}

/* the indices one Slice axis keeps (ONNX's clamping); false when there are more than MAX_GATHER pieces */
static int slice_indices_(int64_t d, int64_t b, int64_t e, int64_t s, int64_t *idx, int max)
{
    s = s > d ? d + 1 : s < -d ? -d - 1 : s; /* the same cells, and i += s cannot overflow */
    b += b < 0 ? d : 0;
    e += e < 0 ? d : 0;
    if (s > 0) {
        b = b < 0 ? 0 : b > d ? d : b;
        e = e < 0 ? 0 : e > d ? d : e;
    } else {
        b = b < 0 ? -1 : b > d - 1 ? d - 1 : b;
        e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
    }
    int count = 0;
    for (int64_t i = b; s > 0 ? i < e : i > e; i += s) {
        if (count == max) return -1;
        idx[count++] = i;
    }
    return count;
}

static bool slice_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    int64_t starts[OX_MAX_RANK], ends[OX_MAX_RANK], axes[OX_MAX_RANK], steps[OX_MAX_RANK];
    bool end_batch[OX_MAX_RANK];
    int ns;
    if (!slice_args_(im, n, starts, ends, end_batch, axes, steps, &ns))
        return imp_unsupported(im, n, "starts, ends, axes and steps must be constants (not the batch size, but as an end)");
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    const char *cur = x->nn;
    bool commented = false;
    for (int k = 0; k < ns; k++) {
        int a = ox_axis(axes[k], x->rank);
        if (a < 0 || a >= x->rank || steps[k] == 0) return imp_unsupported(im, n, "bad axes or steps");
        int64_t idx[MAX_GATHER], d = dims[a];
        if (end_batch[k] && d != OX_BATCH) return imp_unsupported(im, n, "the batch size as the end of axis %d", a);
        if (d == OX_BATCH) {
            bool to_end = end_batch[k] || ends[k] >= INT32_MAX || (im->batch && ends[k] >= im->batch);
            if (starts[k] == 0 && steps[k] == 1 && to_end) continue;
            return imp_unsupported(im, n, "it slices the batch axis");
        }
        int count = slice_indices_(d, starts[k], ends[k], steps[k], idx, MAX_GATHER);
        if (count < 0) return imp_unsupported(im, n, "it keeps more than %d pieces of axis %d", MAX_GATHER, a);
        if (count == 0) return imp_unsupported(im, n, "it keeps nothing of axis %d", a);
        if (count == d && idx[0] == 0 && idx[d - 1] == d - 1) continue; /* the whole axis */
        if (!commented) imp_comment_node(im, n);
        commented = true;
        const char *e = take_(im, cur, x->axis[a], d, idx, count);
        cur = imp_fresh_name(im, arena_printf(im->a, "%s_s", x->nn));
        imp_line(im, "%s = %s", cur, e);
        dims[a] = count;
    }
    set_out_(imp_output(im, n, 0), x, cur, x->rank, dims, x->axis);
    return true;
}

/* the extents of Split's parts: the `split` attribute (< 13) or input, else equal parts (from opset 18
 * the last one smaller, as num_outputs asks) */
static bool split_sizes_(Imp *im, const Node *n, int64_t d, int64_t *len, int parts)
{
    int count = 0;
    const int64_t *a = im->opset < 13 ? attr_ints(n, "split", &count) : NULL;
    Val *sv = im->opset >= 13 ? imp_input(im, n, 1) : NULL;
    if (a && count == parts) memcpy(len, a, sizeof *a * (size_t)count);
    else if (sv && (sv->kind != VAL_CONST || !oxc_ints(&sv->c, len, parts, &count) || count != parts)) return false;
    else if (!a && !sv) {
        int64_t each = im->opset >= 18 ? (d + parts - 1) / parts : d / parts;
        if (im->opset < 18 && d % parts) return false;
        for (int k = 0; k < parts; k++) len[k] = k < parts - 1 ? each : d - each * (parts - 1);
    } else if (a)
        return false;
    int64_t sum = 0;
    for (int k = 0; k < parts; k++) {
        if (len[k] < 1 || len[k] > d) return false;
        sum += len[k];
    }
    return sum == d;
}

/* Split along a non-batch axis: one slice per output */
static bool split_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    int parts = (int)n->n_output, a = ox_axis(attr_int(n, "axis", 0), x->rank);
    if (a < 0 || a >= x->rank) return imp_unsupported(im, n, "axis out of range");
    if (x->axis[a] == 0) return imp_unsupported(im, n, "it splits the batch axis");
    int64_t len[MAX_GATHER];
    if (parts < 1 || parts > MAX_GATHER || !split_sizes_(im, n, x->dims[a], len, parts))
        return imp_unsupported(im, n, "the parts must be constant, non-empty and add up to the axis's extent %lld",
                               (long long)x->dims[a]);
    Val in = *x;
    imp_comment_node(im, n);
    int64_t dims[OX_MAX_RANK], off = 0;
    memcpy(dims, in.dims, sizeof dims);
    for (int k = 0; k < parts; off += len[k++]) {
        Val *o = imp_output(im, n, k);
        if (!o) continue;
        dims[a] = len[k];
        if (len[k] == in.dims[a]) {
            set_out_(o, &in, in.nn, in.rank, dims, in.axis);
            continue;
        }
        const char *name = imp_value_name(im, o->onnx);
        imp_line(im, "%s = slice(%s, %d, %lld, %lld)", name, in.nn, in.axis[a], (long long)off, (long long)(off + len[k]));
        set_out_(o, &in, name, in.rank, dims, in.axis);
    }
    return true;
}

/* ---- Constant ---- */
static bool constant_(Imp *im, const Node *n)
{
    Val *o = imp_output(im, n, 0);
    const Onnx__AttributeProto *a;
    char err[512];
    int64_t one = 1;
    if ((a = attr_find(n, "value")) && a->t) {
        if (!oxc_from_tensor(im, a->t, &o->c, err, sizeof err)) return imp_unsupported(im, n, "its value %s", err);
    } else if ((a = attr_find(n, "value_float")) && a->has_f) {
        oxc_make(im, &o->c, OX_FLOAT, 0, NULL);
        o->c.f[0] = a->f;
    } else if ((a = attr_find(n, "value_int")) && a->has_i) {
        oxc_make(im, &o->c, OX_INT64, 0, NULL);
        o->c.i[0] = a->i;
    } else if ((a = attr_find(n, "value_floats"))) {
        one = (int64_t)a->n_floats;
        oxc_make(im, &o->c, OX_FLOAT, 1, &one);
        for (int64_t k = 0; k < one; k++) o->c.f[k] = a->floats[k];
    } else if ((a = attr_find(n, "value_ints"))) {
        one = (int64_t)a->n_ints;
        oxc_make(im, &o->c, OX_INT64, 1, &one);
        for (int64_t k = 0; k < one; k++) o->c.i[k] = a->ints[k];
    } else
        return imp_unsupported(im, n, "nnc reads a Constant's value, value_float(s) and value_int(s) "
                                      "(not strings or sparse tensors)");
    o->kind = VAL_CONST;
    o->initializer = true;
    return true;
}

const OpRow onnx_ops_shape[] = {
    {"Shape", 1, shape_},         {"Size", 1, size_},           {"Reshape", 5, reshape_},   {"Flatten", 1, flatten_},
    {"Squeeze", 1, squeeze_},     {"Unsqueeze", 1, squeeze_},   {"Expand", 8, expand_},     {"Transpose", 1, transpose_},
    {"Cast", 6, cast_},           {"Concat", 4, concat_},       {"Gather", 1, gather_},     {"Slice", 1, slice_},
    {"Split", 2, split_},         {"Constant", 1, constant_},
    {NULL, 0, NULL},
};
