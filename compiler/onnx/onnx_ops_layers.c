/* onnx_ops_layers.c: the ONNX operators that become .nn layers: Gemm and MatMul (dense, or `@` between data),
 * Conv (conv2d; 1-D as a 2-D convolution of height 1), MaxPool and AveragePool, the global pools,
 * BatchNormalization (inference), LSTM (one forward layer), Pad (constant mode, on the spatial axes), and
 * LayerNormalization and InstanceNormalization (written out as means).
 *
 * A layer's parameters are the node's initializers rearranged into .nn's layouts and stored under the layer's
 * name (imp_add_weight): dense weight [in, units], conv2d weight HWIO, batchnorm's four [C] vectors, lstm's
 * gates in .nn's order i, f, g, o. Images are NHWC in .nn: a Conv's input is brought there once and its output
 * stays there (ONNX (N,C,H,W) at .nn axes {0,3,1,2}); later consumers transpose only if they need to.
 *
 * Patterns taken in whole: a dense or conv2d layer takes an activation that is its output's only consumer
 * (imp_take_activation); a MatMul whose only consumer adds a constant bias on its last axis becomes one dense
 * with a bias (the Add absorbed: the walk skips it); a zero Pad whose only consumer is a Conv becomes part of
 * the convolution's padding; a dense layer reads a pending Flatten of NHWC data in .nn's order and permutes
 * its weight rows to match, so that no transpose back to NCHW is written (imp_flat_rows).
 *
 * Not here: 3-D convolutions and pools, ConvTranspose, dilated pools, training-mode BatchNormalization,
 * bidirectional or reversed LSTMs, GRU and RNN, Pad's edge/reflect/wrap modes. */
#include "onnx_internal.h"
#include "frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- inputs and small helpers ---------------------------------------------------------------------------- */
/* input k as float data: imp_data_input, integer data refused */
static Val *data_input_(Imp *im, const Node *n, int k)
{
    Val *x = imp_data_input(im, n, k);
    if (!x) return NULL;
    if (x->is_int) {
        imp_unsupported(im, n, "input %d is integer data", k);
        return NULL;
    }
    return x;
}

/* a constant whose every element is known (an initializer, a Constant node or folded arithmetic) */
static bool is_known_const_(const Val *v) { return v && v->kind == VAL_CONST && v->c.count >= 0 && !v->c.batch; }

static Val *weight_input_(Imp *im, const Node *n, int k, const char *what)
{
    Val *w = imp_input(im, n, k);
    if (!is_known_const_(w)) {
        imp_unsupported(im, n, "%s (input %d) must be an initializer: nnc makes it the layer's parameter", what, k);
        return NULL;
    }
    return w;
}

/* the constant's elements as float32 (malloc'd) */
static float *floats_(const OxConst *c)
{
    float *f = malloc(sizeof(float) * (size_t)(c->count + 1));
    for (int64_t k = 0; k < c->count; k++) f[k] = (float)ox_get(c, k);
    return f;
}

/* the one node that reads `v` (as its input *slot), or NULL when another node or a graph output reads it too */
static const Node *only_consumer_(const Val *v, int *slot)
{
    const Node *c = v->uses == 1 ? v->consumer : NULL;
    for (size_t j = 0; c && j < c->n_input; j++)
        if (str_eq(c->input[j], v->onnx)) {
            *slot = (int)j;
            return c;
        }
    return NULL;
}

/* the node that writes the ONNX value `name`, NULL for a graph input or an initializer */
static const Node *producer_(Imp *im, const char *name)
{
    for (size_t k = 0; k < im->graph->n_node; k++) {
        const Node *p = im->graph->node[k];
        for (size_t j = 0; j < p->n_output; j++)
            if (str_eq(p->output[j], name)) return p;
    }
    return NULL;
}

/* `want` for reading `v` with ONNX axis k moved to the last .nn axis, the others keeping their order: a
 * layout as close to the one `v` has as the layer allows (no transpose when k is already last) */
static void axis_last_(const Val *v, int k, int *want)
{
    int r = v->rank, from = v->axis[k];
    for (int a = 0; a < r; a++) want[a] = v->axis[a] - (v->axis[a] > from);
    want[k] = r - 1;
}

static bool batch_at_(const Val *v, int k) { return v->axis[k] == 0; }

/* .nn's bounds on a layer's size: units, filters (2^24) and a kernel's extents (65535) */
enum { NN_MAX_UNITS = 1 << 24, NN_MAX_KERNEL = 65535 };

/* an attribute that must be 0 or 1 (runtimes read other values differently: ONNX Runtime's ceil_mode=7 is
 * floor); false after refusing any other */
static bool flag_(Imp *im, const Node *n, const char *name, bool *out)
{
    int64_t v = attr_int(n, name, 0);
    if (v != 0 && v != 1) return imp_unsupported(im, n, "%s=%lld: 0 or 1 expected", name, (long long)v);
    *out = v == 1;
    return true;
}

static void write_weight_(Imp *im, const char *layer, const char *param, const float *data, const int64_t *dims, int rank)
{
    imp_add_weight(im, arena_printf(im->a, "%s.%s", layer, param), data, dims, rank);
}

/* ---- Gemm and MatMul --------------------------------------------------------------------------------------- */
/* `name = dense(x, units, ...)` on the last .nn axis of x; weight [K, N], bias [N] (NULL: none), activation
 * act (NULL: none) */
static void write_dense_(Imp *im, const Node *n, const char *name, const char *x, int64_t K, int64_t N, const float *w,
                         const float *bias, const char *act, const Val *weight)
{
    const char *layer = imp_layer_name(im, n, "dense", weight);
    imp_line(im, "%s = dense(%s, %lld%s%s%s, name=\"%s\")", name, x, (long long)N, act ? ", activation=" : "",
             act ? act : "", bias ? "" : ", use_bias=false", layer);
    write_weight_(im, layer, "weight", w, (int64_t[]){K, N}, 2);
    if (bias) write_weight_(im, layer, "bias", bias, (int64_t[]){N}, 1);
}

/* dense's weight [K, N] = alpha * B' (B' = transB ? B^T : B); row i is B's row rows[i] when a Flatten is read
 * in .nn's order (imp_flat_rows), else row i */
static float *dense_weight_(const OxConst *b, bool tb, float alpha, int64_t K, int64_t N, const int64_t *rows)
{
    float *w = malloc(sizeof(float) * (size_t)(K * N + 1));
    for (int64_t i = 0; i < K; i++) {
        int64_t r = rows ? rows[i] : i;
        for (int64_t j = 0; j < N; j++) w[i * N + j] = alpha * (float)ox_get(b, tb ? j * K + r : r * N + j);
    }
    return w;
}

/* a constant that adds one value per column of an [.., N] result: shape [N], [1, N], [1], [] ... (every
 * axis but the last 1); its N values in *bias (malloc'd). False when it varies along another axis. */
static bool column_bias_(const Val *c, int64_t N, int out_rank, float scale, float **bias)
{
    if (!is_known_const_(c) || c->c.rank > out_rank) return false;
    int r = c->c.rank;
    for (int a = 0; a + 1 < r; a++)
        if (c->c.dims[a] != 1) return false;
    int64_t last = r ? c->c.dims[r - 1] : 1;
    if (last != 1 && last != N) return false;
    *bias = malloc(sizeof(float) * (size_t)(N + 1));
    for (int64_t j = 0; j < N; j++) (*bias)[j] = scale * (float)ox_get(&c->c, last == 1 ? 0 : j);
    return true;
}

/* Gemm: Y = alpha * A' @ B' + beta * C with A' = transA ? A^T : A, likewise B'. A is data (A' has the batch as
 * its first axis), B a constant: one dense layer with weight alpha * B' and bias beta * C. */
static bool gemm_(Imp *im, const Node *n)
{
    Val *a = data_input_(im, n, 0);
    if (!a) return false;
    float alpha = attr_float(n, "alpha", 1.0f), beta = attr_float(n, "beta", 1.0f);
    if (!isfinite(alpha) || !isfinite(beta)) return imp_unsupported(im, n, "alpha or beta is not finite");
    bool ta = false, tb = false;
    if (!flag_(im, n, "transA", &ta) || !flag_(im, n, "transB", &tb)) return false;
    if (a->rank != 2) return imp_unsupported(im, n, "A has rank %d, not 2", a->rank);
    if (!batch_at_(a, ta ? 1 : 0))
        return imp_unsupported(im, n, "the batch axis would be contracted: A%s must have the batch as its first axis",
                               ta ? "^T (transA=1)" : "");
    Val *b = imp_input(im, n, 1);
    if (!is_known_const_(b))
        return imp_unsupported(im, n, "B must be a constant: a data B is [batch, N] and the product would contract the batch axis");
    if (b->c.rank != 2) return imp_unsupported(im, n, "B has rank %d, not 2", b->c.rank);
    int64_t K = a->dims[ta ? 0 : 1], N = b->c.dims[tb ? 0 : 1];
    if (b->c.dims[tb ? 1 : 0] != K) return imp_unsupported(im, n, "A' has %lld columns, B' %lld rows", (long long)K,
                                                           (long long)b->c.dims[tb ? 1 : 0]);
    if (N < 1 || N > NN_MAX_UNITS) return imp_unsupported(im, n, "%lld output columns (.nn's dense takes 1 to 2^24)", (long long)N);
    Val *c = imp_input(im, n, 2);
    float *bias = NULL;
    const char *c_operand = NULL;
    Val *o = imp_output(im, n, 0);
    int64_t dims[2] = {OX_BATCH, N};
    int axis[2] = {0, 1};
    if (c && beta != 0 && !column_bias_(c, N, 2, beta, &bias)) {
        /* C varies along the rows: data [batch, N] (or [batch, 1]) added after the layer */
        if (c->kind != VAL_DATA || c->rank != 2 || !batch_at_(c, 0) || (c->dims[1] != N && c->dims[1] != 1))
            return imp_unsupported(im, n, "C must be a constant of N=%lld values (or one), or data [batch, N]", (long long)N);
    }
    imp_comment_node(im, n);
    if (c && beta != 0 && !bias) c_operand = imp_data_as(im, c, axis);
    const int64_t *rows = NULL;
    const char *x = !ta && a->flat_src ? imp_flat_rows(im, a, &rows) : imp_data_as(im, a, ta ? (int[]){1, 0} : axis);
    float *w = dense_weight_(&b->c, tb, alpha, K, N, rows);
    Val *act_out = NULL;
    const char *act = c_operand ? NULL : imp_take_activation(im, o, &act_out);
    if (act) o = act_out;
    const char *name = imp_value_name(im, o->onnx);
    if (c_operand) {
        const char *ab = imp_fresh_name(im, arena_printf(im->a, "%s_ab", name));
        write_dense_(im, n, ab, x, K, N, w, NULL, NULL, b);
        if (beta == 1)
            imp_line(im, "%s = %s + %s", name, ab, c_operand);
        else
            imp_line(im, "%s = %s + %s * %s", name, ab, imp_float(im, beta), c_operand);
    } else
        write_dense_(im, n, name, x, K, N, w, bias, act, b);
    free(w);
    free(bias);
    imp_set_data(o, name, 2, dims, axis);
    return true;
}

/* the Add that is a MatMul's only consumer and adds a constant bias on its last axis; its bias in *bias */
static const Node *bias_add_(Imp *im, const Val *mm_out, int64_t N, int out_rank, float **bias)
{
    int slot;
    const Node *add = only_consumer_(mm_out, &slot);
    if (!add || !str_eq(add->op_type, "Add") || add->n_input != 2 || add->n_output < 1 || !*add->output[0]) return NULL;
    if (add->domain && *add->domain && !str_eq(add->domain, "ai.onnx")) return NULL;
    Val *other = imp_input(im, add, 1 - slot);
    return column_bias_(other, N, out_rank, 1.0f, bias) ? add : NULL;
}

/* MatMul of data by a constant [K, N]: a dense layer on the last axis, which takes in the bias of an Add that
 * follows (PyTorch's Linear on a rank-3 input exports MatMul + Add) */
static bool matmul_dense_(Imp *im, const Node *n, Val *x, Val *b)
{
    int r = x->rank;
    int64_t K = b->c.dims[0], N = b->c.dims[1];
    if (x->dims[r - 1] != K) return imp_unsupported(im, n, "A has %lld columns, B %lld rows", (long long)x->dims[r - 1], (long long)K);
    if (batch_at_(x, r - 1)) return imp_unsupported(im, n, "the batch axis would be contracted");
    if (N < 1 || N > NN_MAX_UNITS) return imp_unsupported(im, n, "%lld output columns (.nn's dense takes 1 to 2^24)", (long long)N);
    int want[OX_MAX_RANK];
    axis_last_(x, r - 1, want);
    const int64_t *rows = NULL;
    imp_comment_node(im, n);
    const char *xs = x->flat_src ? imp_flat_rows(im, x, &rows) : imp_data_as(im, x, want);
    Val *o = imp_output(im, n, 0), *act_out = NULL;
    float *w = dense_weight_(&b->c, false, 1.0f, K, N, rows), *bias = NULL;
    const Node *add = bias_add_(im, o, N, r, &bias);
    if (add) {
        imp_comment_node(im, add);
        imp_absorb(im, add);
        o = imp_output(im, add, 0);
    }
    const char *act = imp_take_activation(im, o, &act_out);
    if (act) o = act_out;
    const char *name = imp_value_name(im, o->onnx);
    write_dense_(im, n, name, xs, K, N, w, bias, act, b);
    free(w);
    free(bias);
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[r - 1] = N;
    imp_set_data(o, name, r, dims, want);
    return true;
}

/* MatMul of data by a constant vector [K]: [.., K] @ [K] -> [..] */
static bool matmul_vector_(Imp *im, const Node *n, Val *x, Val *b)
{
    int r = x->rank;
    if (x->dims[r - 1] != b->c.dims[0] || batch_at_(x, r - 1))
        return imp_unsupported(im, n, "A's last axis does not match B's %lld values", (long long)b->c.dims[0]);
    int want[OX_MAX_RANK];
    axis_last_(x, r - 1, want);
    imp_comment_node(im, n);
    const char *xs = imp_data_as(im, x, want);
    float *w = floats_(&b->c);
    const char *p = imp_param(im, b->onnx, w, b->c.dims, 1);
    free(w);
    if (!b->initializer) imp_line(im, "freeze %s", p);
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_line(im, "%s = %s @ %s", name, xs, p);
    imp_set_data(o, name, r - 1, x->dims, want);
    return true;
}

/* MatMul of two data values: both batched, of the same rank >= 3, in ONNX's order ([B, .., M, K] @ [B, .., K, N]) */
static bool matmul_data_(Imp *im, const Node *n, Val *a, Val *b)
{
    int r = a->rank;
    if (r < 3 || b->rank != r)
        return imp_unsupported(im, n, "a product of two data values needs both of the same rank >= 3 (got %d and %d)", a->rank, b->rank);
    imp_comment_node(im, n);
    const char *x = imp_data_onnx_order(im, a), *y = imp_data_onnx_order(im, b);
    if (!x || !y) return imp_unsupported(im, n, "both operands must have the batch as their first axis");
    if (a->dims[r - 1] != b->dims[r - 2]) return imp_unsupported(im, n, "A has %lld columns, B %lld rows", (long long)a->dims[r - 1], (long long)b->dims[r - 2]);
    int64_t dims[OX_MAX_RANK];
    for (int k = 0; k < r - 2; k++) {
        int64_t p = a->dims[k], q = b->dims[k];
        if (p != q && p != 1 && q != 1) return imp_unsupported(im, n, "the leading axes do not broadcast");
        dims[k] = p == 1 ? q : p;
    }
    dims[r - 2] = a->dims[r - 2];
    dims[r - 1] = b->dims[r - 1];
    int axis[OX_MAX_RANK];
    axis_identity(axis, r);
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_line(im, "%s = %s @ %s", name, x, y);
    imp_set_data(o, name, r, dims, axis);
    return true;
}

/* MatMul of a constant [M, K] by data [B, .., K, N] */
static bool matmul_const_left_(Imp *im, const Node *n, Val *a, Val *b)
{
    int r = b->rank;
    if (a->c.rank != 2 || r < 3) return imp_unsupported(im, n, "a constant left operand must be [M, K] and the data of rank >= 3");
    imp_comment_node(im, n);
    const char *y = imp_data_onnx_order(im, b);
    if (!y) return imp_unsupported(im, n, "B must have the batch as its first axis");
    if (a->c.dims[1] != b->dims[r - 2]) return imp_unsupported(im, n, "A has %lld columns, B %lld rows", (long long)a->c.dims[1], (long long)b->dims[r - 2]);
    float *f = floats_(&a->c);
    const char *p = imp_param(im, a->onnx, f, a->c.dims, 2);
    free(f);
    if (!a->initializer) imp_line(im, "freeze %s", p);
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_line(im, "%s = %s @ %s", name, p, y);
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, b->dims, sizeof dims);
    dims[r - 2] = a->c.dims[0];
    int axis[OX_MAX_RANK];
    axis_identity(axis, r);
    imp_set_data(o, name, r, dims, axis);
    return true;
}

static bool matmul_(Imp *im, const Node *n)
{
    Val *a = imp_input(im, n, 0), *b = imp_input(im, n, 1);
    if (!a || !b) return imp_unsupported(im, n, "an input is missing");
    if ((a->kind == VAL_DATA && a->is_int) || (b->kind == VAL_DATA && b->is_int)) return imp_unsupported(im, n, "integer data");
    if (a->kind == VAL_DATA && is_known_const_(b)) {
        if (a->rank < 2) return imp_unsupported(im, n, "A has no axis beyond the batch");
        if (b->c.rank == 2) return matmul_dense_(im, n, a, b);
        if (b->c.rank == 1) return matmul_vector_(im, n, a, b);
        return imp_unsupported(im, n, "a constant B of rank %d (nnc takes [K, N] or [K])", b->c.rank);
    }
    if (a->kind == VAL_DATA && b->kind == VAL_DATA) return matmul_data_(im, n, a, b);
    if (is_known_const_(a) && b->kind == VAL_DATA) return matmul_const_left_(im, n, a, b);
    return imp_unsupported(im, n, "operands of these kinds (a constant that depends on the batch size?)");
}

/* ---- windows: Conv and the pools --------------------------------------------------------------------------- */
/* The geometry of a 2-D window (a 1-D one has height 1): extents, kernel, stride, dilation, the padding in .nn's
 * order [top, bottom, left, right] and the output extents. */
typedef struct Window {
    int nd;                            /* ONNX spatial axes: 1 or 2 */
    int64_t in[2], k[2], s[2], d[2], out[2];
    int64_t pad[4];
    bool padded;                       /* explicit or SAME padding (before ceil_mode's) */
    bool ceil_extra;                   /* ceil_mode added padding at the bottom or right */
} Window;

/* an ints attribute of nd values (or absent: every value dflt) into out[2 - nd ..] */
static bool spatial_ints_(Imp *im, const Node *n, const char *attr, int nd, int64_t dflt, int64_t *out)
{
    int cnt;
    const int64_t *v = attr_ints(n, attr, &cnt);
    out[0] = out[1] = dflt;
    if (!v) return true;
    if (cnt != nd) return imp_unsupported(im, n, "'%s' has %d values for %d spatial axes", attr, cnt, nd);
    for (int j = 0; j < nd; j++) {
        if (v[j] < 1 || v[j] > 65535) return imp_unsupported(im, n, "'%s' value %lld is outside 1..65535", attr, (long long)v[j]);
        out[2 - nd + j] = v[j];
    }
    if (nd == 1) out[0] = 1;
    return true;
}

static int64_t extent_(const Window *w, int a) { return (w->k[a] - 1) * w->d[a] + 1; }

/* the padding of axis a from auto_pad SAME_UPPER/SAME_LOWER: output ceil(in / s) */
static void same_pad_(Window *w, int a, bool lower)
{
    int64_t out = (w->in[a] + w->s[a] - 1) / w->s[a];
    int64_t total = (out - 1) * w->s[a] + extent_(w, a) - w->in[a];
    if (total < 0) total = 0;
    int64_t small = total / 2, big = total - small;
    w->pad[2 * a] = lower ? big : small;
    w->pad[2 * a + 1] = lower ? small : big;
}

/* ceil_mode=1 as ONNX Runtime and PyTorch: the output rounds up, but a window that would start in the end
 * padding is dropped; what the last window reaches beyond the padding becomes extra end padding */
static void ceil_mode_(Window *w, int a)
{
    int64_t span = w->in[a] + w->pad[2 * a] + w->pad[2 * a + 1] - extent_(w, a);
    int64_t out = (span + w->s[a] - 1) / w->s[a] + 1;
    if ((out - 1) * w->s[a] >= w->in[a] + w->pad[2 * a]) out--;
    int64_t extra = (out - 1) * w->s[a] + extent_(w, a) - (w->in[a] + w->pad[2 * a] + w->pad[2 * a + 1]);
    if (extra > 0) {
        w->pad[2 * a + 1] += extra;
        w->ceil_extra = true;
    }
}

/* reads strides, dilations, pads, auto_pad (and ceil_mode for the pools) for spatial extents in[nd] and a
 * kernel k[nd] */
static bool window_read_(Imp *im, const Node *n, int nd, const int64_t *in, const int64_t *k, bool pool, Window *w)
{
    memset(w, 0, sizeof *w);
    w->nd = nd;
    w->in[0] = w->k[0] = 1;
    for (int j = 0; j < nd; j++) {
        w->in[2 - nd + j] = in[j];
        w->k[2 - nd + j] = k[j];
    }
    if (!spatial_ints_(im, n, "strides", nd, 1, w->s) || !spatial_ints_(im, n, "dilations", nd, 1, w->d)) return false;
    const char *auto_pad = attr_string(im, n, "auto_pad", "NOTSET");
    int cnt;
    const int64_t *pads = attr_ints(n, "pads", &cnt);
    if (str_eq(auto_pad, "SAME_UPPER") || str_eq(auto_pad, "SAME_LOWER")) {
        for (int a = 2 - nd; a < 2; a++) same_pad_(w, a, str_eq(auto_pad, "SAME_LOWER"));
    } else if (str_eq(auto_pad, "NOTSET") && pads) {
        if (cnt != 2 * nd) return imp_unsupported(im, n, "'pads' has %d values for %d spatial axes", cnt, nd);
        for (int j = 0; j < 2 * nd; j++)
            if (pads[j] < 0 || pads[j] > 65535) return imp_unsupported(im, n, "a padding of %lld", (long long)pads[j]);
        for (int j = 0; j < nd; j++) {
            w->pad[2 * (2 - nd + j)] = pads[j];
            w->pad[2 * (2 - nd + j) + 1] = pads[nd + j];
        }
    } else if (!str_eq(auto_pad, "NOTSET") && !str_eq(auto_pad, "VALID"))
        return imp_unsupported(im, n, "auto_pad '%.20s'", auto_pad);
    w->padded = w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3];
    bool same = str_eq(auto_pad, "SAME_UPPER") || str_eq(auto_pad, "SAME_LOWER"); /* output ceil(in / s) already */
    bool ceil = false;
    if (pool && !flag_(im, n, "ceil_mode", &ceil)) return false;
    if (ceil && !same)
        for (int a = 2 - nd; a < 2; a++) ceil_mode_(w, a);
    for (int a = 0; a < 2; a++) {
        int64_t span = w->in[a] + w->pad[2 * a] + w->pad[2 * a + 1] - extent_(w, a);
        if (span < 0) return imp_unsupported(im, n, "the window (%lld) is larger than the padded input (%lld)",
                                             (long long)extent_(w, a), (long long)(span + extent_(w, a)));
        w->out[a] = span / w->s[a] + 1;
    }
    return true;
}

static bool any_pad_(const Window *w) { return w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3]; }

/* NCHW (or NCW) data as the NHWC operand of a 2-D window: a 1-D input [N, C, W] is read as [B, W, C] and
 * reshaped to [B, 1, W, C] */
static const char *nhwc_in_(Imp *im, const Node *n, Val *x)
{
    if (x->rank != 3 && x->rank != 4) {
        imp_unsupported(im, n, "input of rank %d: nnc imports 1-D and 2-D %s", x->rank, n->op_type);
        return NULL;
    }
    if (!batch_at_(x, 0)) {
        imp_unsupported(im, n, "the input's first axis is not the batch");
        return NULL;
    }
    if (x->rank == 4) return imp_data_as(im, x, (int[]){0, 3, 1, 2});
    const char *nwc = imp_data_as(im, x, (int[]){0, 2, 1});
    const char *name = imp_fresh_name(im, arena_printf(im->a, "%s_2d", nwc));
    imp_line(im, "%s = reshape(%s, [1, %lld, %lld])", name, nwc, (long long)x->dims[2], (long long)x->dims[1]);
    return name;
}

/* the output of a window op `expr` (NHWC, C channels): a 1-D one reshaped back to [B, W', C] */
static void window_out_(Imp *im, Val *o, const Window *w, int64_t C, const char *expr)
{
    const char *name = imp_value_name(im, o->onnx);
    if (w->nd == 2) {
        imp_line(im, "%s = %s", name, expr);
        imp_set_data(o, name, 4, (int64_t[]){OX_BATCH, C, w->out[0], w->out[1]}, (int[]){0, 3, 1, 2});
        return;
    }
    const char *two = imp_fresh_name(im, arena_printf(im->a, "%s_2d", name));
    imp_line(im, "%s = %s", two, expr);
    imp_line(im, "%s = reshape(%s, [%lld, %lld])", name, two, (long long)w->out[1], (long long)C);
    imp_set_data(o, name, 3, (int64_t[]){OX_BATCH, C, w->out[1]}, (int[]){0, 2, 1});
}

static const char *pair_(Imp *im, const int64_t *v) { return imp_int_list(im, v, 2); }

/* ---- Pad --------------------------------------------------------------------------------------------------- */
/* a constant-mode Pad's amounts on the spatial axes of NCHW (NCW) data as [top, bottom, left, right] (a 1-D
 * input pads left and right) and its value; false (refused) when it pads another axis or crops */
static bool pad_read_(Imp *im, const Node *n, const Val *x, int64_t *tblr, double *value)
{
    int r = x->rank;
    int64_t begin[OX_MAX_RANK] = {0}, end[OX_MAX_RANK] = {0}, pads[2 * OX_MAX_RANK], axes[OX_MAX_RANK];
    int np = 0, na = r;
    *value = 0;
    if (im->opset < 11) {
        const int64_t *p = attr_ints(n, "pads", &np);
        if (np > 2 * OX_MAX_RANK) return imp_unsupported(im, n, "too many pads");
        if (p) memcpy(pads, p, sizeof(int64_t) * (size_t)np);
        *value = attr_float(n, "value", 0.0f);
    } else {
        Val *pv = imp_input(im, n, 1), *cv = imp_input(im, n, 2), *av = imp_input(im, n, 3);
        if (!is_known_const_(pv) || !oxc_ints(&pv->c, pads, 2 * OX_MAX_RANK, &np))
            return imp_unsupported(im, n, "'pads' must be a constant list of integers");
        if (cv && (!is_known_const_(cv) || cv->c.count != 1)) return imp_unsupported(im, n, "'constant_value' must be a constant scalar");
        if (cv) *value = ox_get(&cv->c, 0);
        if (av && (!is_known_const_(av) || !oxc_ints(&av->c, axes, OX_MAX_RANK, &na)))
            return imp_unsupported(im, n, "'axes' must be a constant list of integers");
    }
    if (im->opset < 11 || !imp_input(im, n, 3))
        for (int a = 0; a < r; a++) axes[a] = a;
    if (np != 2 * na) return imp_unsupported(im, n, "%d pads for %d axes", np, na);
    for (int j = 0; j < na; j++) {
        int64_t a = axes[j] < 0 ? axes[j] + r : axes[j];
        if (a < 0 || a >= r) return imp_unsupported(im, n, "axis %lld is out of range", (long long)axes[j]);
        begin[a] = pads[j];
        end[a] = pads[na + j];
    }
    for (int a = 0; a < r; a++) {
        if (begin[a] < 0 || end[a] < 0) return imp_unsupported(im, n, "negative pads (cropping)");
        if (begin[a] > 65535 || end[a] > 65535) return imp_unsupported(im, n, "a padding above 65535");
        if ((begin[a] || end[a]) && (a < 2 || r < 3 || r > 4))
            return imp_unsupported(im, n, "it pads axis %d of a rank-%d value: nnc pads the spatial axes of NCHW or NCW data", a, r);
    }
    if (!isfinite(*value)) return imp_unsupported(im, n, "the pad value is not finite");
    int64_t h0 = r == 4 ? begin[2] : 0, h1 = r == 4 ? end[2] : 0;
    tblr[0] = h0;
    tblr[1] = h1;
    tblr[2] = begin[r - 1];
    tblr[3] = end[r - 1];
    return true;
}

/* A Pad with value 0 whose only consumer is a Conv (its data input) is that Conv's padding. Asked by the Pad,
 * after pad_read_ accepted it, and again by the Conv, which finds the same answer (pad_read_ reads only the
 * node and constants). */
static bool pad_folds_(Imp *im, const Node *pad, const Val *x, int64_t *tblr)
{
    double value;
    int slot;
    Val *o = imp_output(im, pad, 0);
    const Node *c = o ? only_consumer_(o, &slot) : NULL;
    if (!c || slot != 0 || !str_eq(c->op_type, "Conv") || pad->n_output != 1) return false;
    if (!str_eq(attr_string(im, pad, "mode", "constant"), "constant")) return false;
    return pad_read_(im, pad, x, tblr, &value) && value == 0;
}

static bool pad_(Imp *im, const Node *n)
{
    const char *mode = attr_string(im, n, "mode", "constant");
    if (!str_eq(mode, "constant")) return imp_unsupported(im, n, "mode '%.20s': nnc pads with a constant only", mode);
    Val *x = data_input_(im, n, 0);
    if (!x) return false;
    Val *o = imp_output(im, n, 0);
    int64_t tblr[4];
    double value;
    if (!pad_read_(im, n, x, tblr, &value)) return false;
    if (pad_folds_(im, n, x, tblr) || !(tblr[0] || tblr[1] || tblr[2] || tblr[3])) {
        /* no .nn statement: the Conv that follows reads x and pads it (or there is nothing to pad) */
        Val keep = *o;
        *o = *x;
        o->onnx = keep.onnx;
        o->uses = keep.uses;
        o->consumer = keep.consumer;
        return true;
    }
    if (!builtin_find("pad")) return imp_unsupported(im, n, "this nnc has no pad() builtin");
    bool seq = x->rank == 3;
    if (!batch_at_(x, 0)) return imp_unsupported(im, n, "the input's first axis is not the batch");
    imp_comment_node(im, n);
    const char *in = seq ? imp_data_as(im, x, (int[]){0, 2, 1}) : imp_data_as(im, x, (int[]){0, 3, 1, 2});
    const char *name = imp_value_name(im, o->onnx);
    int64_t H = seq ? 1 : x->dims[2], W = x->dims[x->rank - 1];
    if (!seq) {
        imp_line(im, "%s = pad(%s, %s, value=%s)", name, in, imp_int_list(im, tblr, 4), imp_float(im, value));
        imp_set_data(o, name, 4, (int64_t[]){OX_BATCH, x->dims[1], H + tblr[0] + tblr[1], W + tblr[2] + tblr[3]}, (int[]){0, 3, 1, 2});
        return true;
    }
    /* a sequence [B, W, C] is padded as [B, W, 1, C] */
    const char *t = imp_fresh_name(im, arena_printf(im->a, "%s_2d", name));
    imp_line(im, "%s = pad(reshape(%s, [%lld, 1, %lld]), [%lld, %lld, 0, 0], value=%s)", t, in, (long long)W,
             (long long)x->dims[1], (long long)tblr[2], (long long)tblr[3], imp_float(im, value));
    int64_t W2 = W + tblr[2] + tblr[3];
    imp_line(im, "%s = reshape(%s, [%lld, %lld])", name, t, (long long)W2, (long long)x->dims[1]);
    imp_set_data(o, name, 3, (int64_t[]){OX_BATCH, x->dims[1], W2}, (int[]){0, 2, 1});
    return true;
}

/* ---- Conv -------------------------------------------------------------------------------------------------- */
/* ONNX's [O, I/g, kh, kw] (or [O, I/g, kw]) as conv2d's HWIO [kh, kw, I/g, O] */
static float *conv_weight_hwio_(const OxConst *w, int64_t kh, int64_t kw)
{
    int64_t O = w->dims[0], I = w->dims[1];
    float *f = malloc(sizeof(float) * (size_t)(O * I * kh * kw + 1));
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < I; c++)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++)
                    f[((i * kw + j) * I + c) * O + o] = (float)ox_get(w, ((o * I + c) * kh + i) * kw + j);
    return f;
}

/* the conv2d layer's weight (HWIO from W's OIHW) and bias */
static void conv_params_(Imp *im, const char *layer, const OxConst *w, const OxConst *b, const int64_t *k)
{
    float *hwio = conv_weight_hwio_(w, k[0], k[1]);
    write_weight_(im, layer, "weight", hwio, (int64_t[]){k[0], k[1], w->dims[1], w->dims[0]}, 4);
    free(hwio);
    if (b) {
        float *bias = floats_(b);
        write_weight_(im, layer, "bias", bias, (int64_t[]){b->count}, 1);
        free(bias);
    }
}

/* a zero Pad before the Conv (pad_folds_): its input and amounts, *pad the node (else x itself, *pad NULL) */
static Val *conv_folded_pad_(Imp *im, Val *x, int64_t *tblr, const Node **pad)
{
    const Node *p = producer_(im, x->onnx);
    *pad = NULL;
    if (!p || !str_eq(p->op_type, "Pad")) return x;
    Val *in = imp_input(im, p, 0);
    if (!in || in->kind != VAL_DATA || !pad_folds_(im, p, in, tblr)) return x;
    *pad = p;
    return in;
}

static bool conv_(Imp *im, const Node *n)
{
    Val *x = data_input_(im, n, 0), *w = x ? weight_input_(im, n, 1, "the weight W") : NULL;
    if (!w) return false;
    int64_t extra[4] = {0};
    const Node *pad;
    x = conv_folded_pad_(im, x, extra, &pad);
    int nd = x->rank - 2;
    if (nd != 1 && nd != 2) return imp_unsupported(im, n, "input of rank %d: nnc imports 1-D and 2-D convolutions", x->rank);
    if (w->c.rank != x->rank) return imp_unsupported(im, n, "W has rank %d, the input %d", w->c.rank, x->rank);
    int64_t g = attr_int(n, "group", 1), O = w->c.dims[0], C = x->dims[1];
    if (g < 1 || C % g || O % g || w->c.dims[1] * g != C)
        return imp_unsupported(im, n, "group=%lld does not fit %lld input channels, W [%lld, %lld, ..]", (long long)g,
                               (long long)C, (long long)O, (long long)w->c.dims[1]);
    int cnt;
    const int64_t *ks = attr_ints(n, "kernel_shape", &cnt);
    for (int j = 0; j < nd; j++) {
        if ((ks && (cnt != nd || ks[j] != w->c.dims[2 + j])) || w->c.dims[2 + j] < 1)
            return imp_unsupported(im, n, "kernel_shape does not match W");
        if (w->c.dims[2 + j] > NN_MAX_KERNEL) return imp_unsupported(im, n, "a kernel extent above 65535");
    }
    if (O < 1 || O > NN_MAX_UNITS) return imp_unsupported(im, n, "%lld filters (.nn's conv2d takes 1 to 2^24)", (long long)O);
    /* with a folded Pad the window is read on the padded extents (auto_pad SAME pads those), then the Pad's
     * amounts join the convolution's */
    Window win;
    int64_t in[2] = {x->dims[2] + (nd == 2 ? extra[0] + extra[1] : extra[2] + extra[3]),
                     nd == 2 ? x->dims[3] + extra[2] + extra[3] : 0};
    if (!window_read_(im, n, nd, in, w->c.dims + 2, false, &win)) return false;
    for (int s = 0; s < 4; s++) win.pad[s] += extra[s];
    Val *b = imp_input(im, n, 2);
    if (b && (!is_known_const_(b) || b->c.count != O)) return imp_unsupported(im, n, "the bias B must be an initializer of %lld values", (long long)O);
    if (pad) imp_comment_node(im, pad); /* its amounts are in the conv2d's padding */
    imp_comment_node(im, n);
    const char *xs = nhwc_in_(im, n, x);
    if (!xs) return false;
    const char *layer = imp_layer_name(im, n, "conv2d", w);
    StrBuf e = {0};
    sb_printf(&e, "conv2d(%s, %lld, %s, stride=%s", xs, (long long)O, pair_(im, win.k), pair_(im, win.s));
    if (any_pad_(&win)) sb_printf(&e, ", padding=%s", imp_int_list(im, win.pad, 4));
    if (win.d[0] != 1 || win.d[1] != 1) sb_printf(&e, ", dilation=%s", pair_(im, win.d));
    if (g != 1) sb_printf(&e, ", groups=%lld", (long long)g);
    Val *o = imp_output(im, n, 0), *act_out = NULL;
    const char *act = imp_take_activation(im, o, &act_out);
    if (act) sb_printf(&e, ", activation=%s", act);
    sb_printf(&e, "%s, name=\"%s\")", b ? "" : ", use_bias=false", layer);
    window_out_(im, act ? act_out : o, &win, O, e.s);
    sb_free(&e);
    conv_params_(im, layer, &w->c, b ? &b->c : NULL, win.k);
    return true;
}

/* ---- pools ------------------------------------------------------------------------------------------------- */
static bool pool_window_(Imp *im, const Node *n, Val *x, Window *w)
{
    int nd = x->rank - 2, cnt;
    if (nd != 1 && nd != 2) return imp_unsupported(im, n, "input of rank %d: nnc imports 1-D and 2-D pooling", x->rank);
    const int64_t *ks = attr_ints(n, "kernel_shape", &cnt);
    if (!ks || cnt != nd) return imp_unsupported(im, n, "kernel_shape must have %d values", nd);
    for (int j = 0; j < nd; j++)
        if (ks[j] < 1 || ks[j] > 65535) return imp_unsupported(im, n, "a kernel of %lld", (long long)ks[j]);
    if (!window_read_(im, n, nd, x->dims + 2, ks, true, w)) return false;
    if (w->d[0] != 1 || w->d[1] != 1) return imp_unsupported(im, n, "dilated pooling");
    for (int s = 0; s < 4; s++)
        if (w->pad[s] >= w->k[s / 2])
            return imp_unsupported(im, n, "a padding of %lld is not smaller than the window (%lld)", (long long)w->pad[s], (long long)w->k[s / 2]);
    return true;
}

static bool pool_(Imp *im, const Node *n)
{
    Val *x = data_input_(im, n, 0);
    if (!x) return false;
    bool is_max = str_eq(n->op_type, "MaxPool");
    if (is_max && imp_output_used(im, n, 1)) return imp_unsupported(im, n, "its Indices output is used");
    Window w;
    if (!pool_window_(im, n, x, &w)) return false;
    /* ONNX Runtime (and PyTorch) divide a window by its part inside the padded input, so that a window which
     * ceil_mode stretches past the padding counts fewer cells; .nn's count_include_pad=true divides every
     * window by its whole size. Without explicit padding that part is the cells inside the input: .nn's
     * count_include_pad=false. */
    bool include_pad = false;
    if (!is_max && !flag_(im, n, "count_include_pad", &include_pad)) return false;
    include_pad &= w.padded;
    if (include_pad && w.ceil_extra)
        return imp_unsupported(im, n, "ceil_mode with padding and count_include_pad=1: the last windows' divisors");
    imp_comment_node(im, n);
    const char *xs = nhwc_in_(im, n, x);
    if (!xs) return false;
    StrBuf e = {0};
    sb_printf(&e, "%s(%s, pool=%s, stride=%s", is_max ? "maxpool2d" : "avgpool2d", xs, pair_(im, w.k), pair_(im, w.s));
    if (any_pad_(&w)) sb_printf(&e, ", padding=%s", imp_int_list(im, w.pad, 4));
    if (!is_max && any_pad_(&w)) sb_printf(&e, ", count_include_pad=%s", include_pad ? "true" : "false");
    sb_putc(&e, ')');
    window_out_(im, imp_output(im, n, 0), &w, x->dims[1], e.s);
    sb_free(&e);
    return true;
}

/* GlobalAveragePool / GlobalMaxPool: a reduction over the spatial axes wherever the layout holds them */
static bool global_pool_(Imp *im, const Node *n)
{
    Val *x = data_input_(im, n, 0);
    if (!x) return false;
    if (x->rank < 3) return imp_unsupported(im, n, "input of rank %d has no spatial axes", x->rank);
    if (!batch_at_(x, 0)) return imp_unsupported(im, n, "the input's first axis is not the batch");
    int64_t axes[OX_MAX_RANK], dims[OX_MAX_RANK];
    int na = 0;
    for (int a = 0; a < x->rank; a++) dims[a] = a < 2 ? x->dims[a] : 1;
    for (int nn = 1; nn < x->rank; nn++) /* .nn axes in increasing order */
        for (int a = 2; a < x->rank; a++)
            if (x->axis[a] == nn) axes[na++] = nn;
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_comment_node(im, n);
    imp_line(im, "%s = %s(%s, axis=%s, keepdims=true)", name, str_eq(n->op_type, "GlobalMaxPool") ? "max" : "mean", x->nn,
             imp_int_list(im, axes, na));
    imp_set_data(o, name, x->rank, dims, x->axis);
    return true;
}

/* ---- BatchNormalization ------------------------------------------------------------------------------------- */
static bool batchnorm_(Imp *im, const Node *n)
{
    Val *x = data_input_(im, n, 0);
    if (!x) return false;
    bool training = false;
    if (!flag_(im, n, "training_mode", &training)) return false;
    if (training) return imp_unsupported(im, n, "training_mode=1: nnc imports inference batch normalization");
    if (im->opset < 9 && attr_int(n, "spatial", 1) == 0) return imp_unsupported(im, n, "spatial=0");
    for (int k = 1; k < (int)n->n_output; k++)
        if (imp_output_used(im, n, k)) return imp_unsupported(im, n, "its output %d (running statistics) is used", k);
    if (x->rank < 2 || batch_at_(x, 1)) return imp_unsupported(im, n, "the input has no channel axis beyond the batch");
    int64_t C = x->dims[1];
    static const char *const what[] = {"scale", "B", "mean", "var"}, *const param[] = {"gamma", "beta", "moving_mean", "moving_var"};
    Val *p[4];
    for (int k = 0; k < 4; k++) {
        if (!(p[k] = weight_input_(im, n, k + 1, what[k]))) return false;
        if (p[k]->c.count != C) return imp_unsupported(im, n, "%s has %lld values for %lld channels", what[k], (long long)p[k]->c.count, (long long)C);
    }
    float momentum = attr_float(n, "momentum", 0.9f), epsilon = attr_float(n, "epsilon", 1e-5f);
    if (!(momentum >= 0 && momentum <= 1) || !(epsilon > 0 && isfinite(epsilon)))
        return imp_unsupported(im, n, "momentum %g, epsilon %g: .nn's batchnorm takes a momentum in [0, 1] and an epsilon > 0",
                               (double)momentum, (double)epsilon);
    int want[OX_MAX_RANK];
    axis_last_(x, 1, want);
    imp_comment_node(im, n);
    const char *xs = imp_data_as(im, x, want);
    const char *layer = imp_layer_name(im, n, "batchnorm", p[0]);
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_line(im, "%s = batchnorm(%s, momentum=%s, epsilon=%s, name=\"%s\")", name, xs,
             imp_float(im, momentum), imp_float(im, epsilon), layer);
    for (int k = 0; k < 4; k++) {
        float *f = floats_(&p[k]->c);
        write_weight_(im, layer, param[k], f, &C, 1);
        free(f);
    }
    imp_set_data(o, name, x->rank, x->dims, want);
    return true;
}

/* ---- LSTM -------------------------------------------------------------------------------------------------- */
/* .nn's gate k (i, f, g, o) is ONNX's gate block lstm_gate_[k] (ONNX: i, o, f, c) */
static const int lstm_gate_[4] = {0, 2, 3, 1};

/* an optional input that must be absent or all zeros (initial_h, initial_c, P) */
static bool zero_or_absent_(Imp *im, const Node *n, int k, const char *what)
{
    Val *v = imp_input(im, n, k);
    if (!v) return true;
    bool zero = v->kind == VAL_CONST; /* a count of -1 (ConstantOfShape of [1, batch, H]) reads as its fill */
    for (int64_t e = 0; zero && e < (v->c.count < 0 ? 1 : v->c.count); e++) zero = ox_get(&v->c, e) == 0;
    if (zero) return true;
    return imp_unsupported(im, n, "%s must be absent or zero: nnc's lstm starts from h = c = 0 and has no peepholes", what);
}

static bool lstm_attrs_ok_(Imp *im, const Node *n)
{
    const char *dir = attr_string(im, n, "direction", "forward");
    if (!str_eq(dir, "forward")) return imp_unsupported(im, n, "direction '%.20s': nnc's lstm runs forward", dir);
    if (attr_find(n, "clip")) return imp_unsupported(im, n, "clip");
    bool coupled = false;
    if (!flag_(im, n, "input_forget", &coupled)) return false;
    if (coupled) return imp_unsupported(im, n, "input_forget=1");
    const Onnx__AttributeProto *acts = attr_find(n, "activations");
    static const char *const dflt[] = {"Sigmoid", "Tanh", "Tanh"};
    if (acts) {
        bool ok = acts->n_strings == 3;
        for (size_t k = 0; ok && k < 3; k++)
            ok = acts->strings[k].len == strlen(dflt[k]) && !memcmp(acts->strings[k].data, dflt[k], acts->strings[k].len);
        if (!ok) return imp_unsupported(im, n, "activations other than Sigmoid, Tanh, Tanh");
    }
    if (imp_output_used(im, n, 2)) return imp_unsupported(im, n, "its Y_c output (the last cell state) is used");
    return true;
}

/* sequence_lens: absent, or a constant whose every value is T */
static bool lstm_lengths_ok_(Imp *im, const Node *n, int64_t T)
{
    Val *s = imp_input(im, n, 4);
    if (!s) return true;
    bool ok = s->kind == VAL_CONST && (s->c.count >= 0 || s->c.fill == (double)T);
    for (int64_t e = 0; ok && e < s->c.count; e++) ok = ox_get(&s->c, e) == (double)T;
    return ok || imp_unsupported(im, n, "sequence_lens must be a constant of every sequence's full length %lld", (long long)T);
}

/* W [1, 4H, F], R [1, 4H, H], B [1, 8H] as lstm's weight [F, 4H], recurrent [H, 4H], bias [4H] */
static void lstm_weights_(Imp *im, const char *layer, const OxConst *W, const OxConst *R, const OxConst *B, int64_t F, int64_t H)
{
    float *w = malloc(sizeof(float) * (size_t)(F * 4 * H)), *r = malloc(sizeof(float) * (size_t)(H * 4 * H));
    float *b = malloc(sizeof(float) * (size_t)(4 * H));
    for (int q = 0; q < 4; q++)
        for (int64_t h = 0; h < H; h++) {
            int64_t row = lstm_gate_[q] * H + h, col = q * H + h;
            for (int64_t f = 0; f < F; f++) w[f * 4 * H + col] = (float)ox_get(W, row * F + f);
            for (int64_t j = 0; j < H; j++) r[j * 4 * H + col] = (float)ox_get(R, row * H + j);
            b[col] = B ? (float)ox_get(B, row) + (float)ox_get(B, 4 * H + row) : 0.0f;
        }
    write_weight_(im, layer, "weight", w, (int64_t[]){F, 4 * H}, 2);
    write_weight_(im, layer, "recurrent", r, (int64_t[]){H, 4 * H}, 2);
    write_weight_(im, layer, "bias", b, (int64_t[]){4 * H}, 1);
    free(w);
    free(r);
    free(b);
}

/* the outputs read from the sequence `seq` ([B, T, H] with Y read, else the last h [B, H]): Y [T, 1, B, H]
 * (layout 1: [B, T, 1, H]) as .nn [B, T, 1, H]; Y_h [1, B, H] (layout 1: [B, 1, H]) as .nn [B, 1, H], Y's last
 * step when Y is read too */
static void lstm_outputs_(Imp *im, const Node *n, const char *seq, bool batch_first, int64_t T, int64_t H,
                          const char *yname, const char *hname)
{
    if (yname) {
        imp_line(im, "%s = reshape(%s, [%lld, 1, %lld])", yname, seq, (long long)T, (long long)H);
        if (batch_first)
            imp_set_data(imp_output(im, n, 0), yname, 4, (int64_t[]){OX_BATCH, T, 1, H}, (int[]){0, 1, 2, 3});
        else
            imp_set_data(imp_output(im, n, 0), yname, 4, (int64_t[]){T, 1, OX_BATCH, H}, (int[]){1, 2, 0, 3});
    }
    if (hname) {
        if (yname)
            imp_line(im, "%s = slice(%s, 1, -1)", hname, seq);
        else
            imp_line(im, "%s = reshape(%s, [1, %lld])", hname, seq, (long long)H);
        if (batch_first)
            imp_set_data(imp_output(im, n, 1), hname, 3, (int64_t[]){OX_BATCH, 1, H}, (int[]){0, 1, 2});
        else
            imp_set_data(imp_output(im, n, 1), hname, 3, (int64_t[]){1, OX_BATCH, H}, (int[]){1, 0, 2});
    }
}

static bool lstm_(Imp *im, const Node *n)
{
    Val *x = data_input_(im, n, 0);
    if (!x || !lstm_attrs_ok_(im, n)) return false;
    bool batch_first = false;
    if (!flag_(im, n, "layout", &batch_first)) return false;
    if (x->rank != 3 || !batch_at_(x, batch_first ? 0 : 1))
        return imp_unsupported(im, n, "X must be [T, batch, F] (layout 0) or [batch, T, F] (layout 1) with the batch as the graph's batch");
    Val *W = weight_input_(im, n, 1, "W"), *R = W ? weight_input_(im, n, 2, "R") : NULL, *B = imp_input(im, n, 3);
    if (!R) return false;
    int64_t T = x->dims[batch_first ? 1 : 0], F = x->dims[2];
    int64_t H = attr_int(n, "hidden_size", R->c.rank == 3 ? R->c.dims[2] : 0); /* optional in ONNX: R is [1, 4H, H] */
    if (H < 1 || H > NN_MAX_UNITS || W->c.rank != 3 || W->c.dims[0] != 1 || W->c.dims[1] != 4 * H || W->c.dims[2] != F ||
        R->c.rank != 3 || R->c.dims[1] != 4 * H || R->c.dims[2] != H)
        return imp_unsupported(im, n, "W or R does not have the shape hidden_size=%lld and %lld features give", (long long)H, (long long)F);
    if (B && (!is_known_const_(B) || B->c.count != 8 * H)) return imp_unsupported(im, n, "B must be an initializer [1, %lld]", (long long)(8 * H));
    if (!lstm_lengths_ok_(im, n, T) || !zero_or_absent_(im, n, 5, "initial_h") || !zero_or_absent_(im, n, 6, "initial_c") ||
        !zero_or_absent_(im, n, 7, "the peepholes P"))
        return false;
    bool want_y = imp_output_used(im, n, 0), want_h = imp_output_used(im, n, 1);
    if (!want_y && !want_h) return true; /* nothing reads it */
    imp_comment_node(im, n);
    const char *xs = imp_data_as(im, x, batch_first ? (int[]){0, 1, 2} : (int[]){1, 0, 2});
    const char *layer = imp_layer_name(im, n, "lstm", W);
    const char *yname = want_y ? imp_value_name(im, n->output[0]) : NULL;
    const char *hname = want_h ? imp_value_name(im, n->output[1]) : NULL;
    const char *seq = imp_fresh_name(im, arena_printf(im->a, "%s_seq", yname ? yname : hname));
    imp_line(im, "%s = lstm(%s, %lld%s, name=\"%s\")", seq, xs, (long long)H, want_y ? ", return_sequences=true" : "", layer);
    lstm_outputs_(im, n, seq, batch_first, T, H, yname, hname);
    lstm_weights_(im, layer, &W->c, &R->c, B ? &B->c : NULL, F, H);
    return true;
}

/* ---- LayerNormalization (17), InstanceNormalization --------------------------------------------------------
 * y = (x - mean) / sqrt(var + epsilon) * scale + B over some ONNX axes, in whatever layout x has: the means run
 * over those axes' .nn positions and scale and B are permuted to match (imp_const_operand) */

/* the .nn axes holding ONNX axes first.. of x, in .nn order; false (refused) when the batch is one of them */
static bool norm_axes_(Imp *im, const Node *n, const Val *x, int first, int64_t *ax, int *nax)
{
    *nax = 0;
    for (int k = first; k < x->rank; k++) {
        if (batch_at_(x, k)) return imp_unsupported(im, n, "it normalizes over the batch axis (it would mix the samples)");
        ax[(*nax)++] = x->axis[k];
    }
    for (int i = 1; i < *nax; i++) /* the .nn axes in order */
        for (int j = i; j > 0 && ax[j - 1] > ax[j]; j--) {
            int64_t t = ax[j];
            ax[j] = ax[j - 1];
            ax[j - 1] = t;
        }
    return true;
}

/* the statements of y = (x - mean) * inv_std * g + b over .nn axes ax; *mean and *inv_std name those values */
static void norm_lines_(Imp *im, const Val *x, const int64_t *ax, int nax, float eps, const char *g, const char *b,
                        const char *y, const char **mean, const char **inv_std)
{
    const char *axes = imp_int_list(im, ax, nax);
    const char *m = imp_fresh_name(im, arena_printf(im->a, "%s_mean", y)), *d = imp_fresh_name(im, arena_printf(im->a, "%s_centered", y));
    const char *v = imp_fresh_name(im, arena_printf(im->a, "%s_var", y));
    const char *inv = imp_fresh_name(im, arena_printf(im->a, "%s_inv_std", y));
    imp_line(im, "%s = mean(%s, axis=%s, keepdims=true)", m, x->nn, axes);
    imp_line(im, "%s = %s - %s", d, x->nn, m);
    imp_line(im, "%s = mean(square(%s), axis=%s, keepdims=true)", v, d, axes);
    imp_line(im, "%s = 1.0 / sqrt(%s + %s)", inv, v, imp_float(im, eps));
    imp_line(im, "%s = %s * %s * %s%s%s", y, d, inv, g, b ? " + " : "", b ? b : "");
    *mean = m;
    *inv_std = inv;
}

static bool layernorm_(Imp *im, const Node *n)
{
    Val *x = data_input_(im, n, 0);
    if (!x) return false;
    int64_t axis = attr_int(n, "axis", -1);
    if (axis < -x->rank || axis >= x->rank) return imp_unsupported(im, n, "axis %lld is out of range", (long long)axis);
    if (axis < 0) axis += x->rank;
    int64_t ax[OX_MAX_RANK];
    int nax;
    if (!norm_axes_(im, n, x, (int)axis, ax, &nax)) return false;
    float eps = attr_float(n, "epsilon", 1e-5f);
    if (!(eps >= 0) || !isfinite(eps)) return imp_unsupported(im, n, "epsilon must be a finite number >= 0");
    Val *scale = weight_input_(im, n, 1, "the scale"), *bias = imp_input(im, n, 2);
    if (!scale) return false;
    if (bias && !is_known_const_(bias)) return imp_unsupported(im, n, "the bias (input 2) must be an initializer");
    imp_comment_node(im, n);
    const char *g = imp_const_operand(im, scale, x), *b = bias ? imp_const_operand(im, bias, x) : NULL;
    if (!g || (bias && !b)) return false;
    Val *o = imp_output(im, n, 0);
    const char *y = imp_value_name(im, o->onnx), *m, *inv;
    norm_lines_(im, x, ax, nax, eps, g, b, y, &m, &inv);
    imp_set_data(o, y, x->rank, x->dims, x->axis);
    int64_t kept[OX_MAX_RANK]; /* Mean and InvStdDev: x's extents with the normalized axes 1 */
    for (int k = 0; k < x->rank; k++) kept[k] = k < axis ? x->dims[k] : 1;
    if (imp_output(im, n, 1)) imp_set_data(imp_output(im, n, 1), m, x->rank, kept, x->axis);
    if (imp_output(im, n, 2)) imp_set_data(imp_output(im, n, 2), inv, x->rank, kept, x->axis);
    return true;
}

/* a per-channel [C] constant of an [N, C, ...] input as an operand: [C, 1, ...] so that it meets axis 1 (NumPy
 * broadcasting would align it with the last axis) */
static const char *channel_operand_(Imp *im, const Node *n, Val *c, Val *x, const char *what)
{
    if (c->c.rank != 1 || c->c.dims[0] != x->dims[1]) {
        imp_unsupported(im, n, "%s must hold one value per channel (%lld)", what, (long long)x->dims[1]);
        return NULL;
    }
    Val col = *c;
    col.param = NULL; /* a param declared for c has c's own shape */
    col.c.rank = x->rank - 1;
    for (int k = 1; k < col.c.rank; k++) col.c.dims[k] = 1;
    return imp_const_operand(im, &col, x);
}

/* InstanceNormalization: over the spatial axes (2..) of each sample and channel; PyTorch's nn.InstanceNorm2d,
 * and nn.GroupNorm as Reshape [N, G, -1] -> InstanceNormalization -> Reshape -> Mul, Add */
static bool instancenorm_(Imp *im, const Node *n)
{
    Val *x = data_input_(im, n, 0);
    if (!x) return false;
    if (x->rank < 3) return imp_unsupported(im, n, "the input has no spatial axis (rank %d)", x->rank);
    int64_t ax[OX_MAX_RANK];
    int nax;
    if (batch_at_(x, 1)) return imp_unsupported(im, n, "its channel axis (1) is the batch");
    if (!norm_axes_(im, n, x, 2, ax, &nax)) return false;
    float eps = attr_float(n, "epsilon", 1e-5f);
    if (!(eps >= 0) || !isfinite(eps)) return imp_unsupported(im, n, "epsilon must be a finite number >= 0");
    Val *scale = weight_input_(im, n, 1, "the scale"), *bias = scale ? weight_input_(im, n, 2, "the bias") : NULL;
    if (!bias) return false;
    imp_comment_node(im, n);
    const char *g = channel_operand_(im, n, scale, x, "the scale"), *b = g ? channel_operand_(im, n, bias, x, "the bias") : NULL;
    if (!b) return false;
    Val *o = imp_output(im, n, 0);
    const char *y = imp_value_name(im, o->onnx), *m, *inv;
    norm_lines_(im, x, ax, nax, eps, g, b, y, &m, &inv);
    imp_set_data(o, y, x->rank, x->dims, x->axis);
    return true;
}

const OpRow onnx_ops_layers[] = {
    {"LayerNormalization", 17, layernorm_},
    {"InstanceNormalization", 1, instancenorm_},
    {"Gemm", 1, gemm_, .takes_flat = true},
    {"MatMul", 1, matmul_, .takes_flat = true},
    {"Conv", 1, conv_},
    {"MaxPool", 1, pool_},
    {"AveragePool", 1, pool_},
    {"GlobalAveragePool", 1, global_pool_},
    {"GlobalMaxPool", 1, global_pool_},
    {"BatchNormalization", 1, batchnorm_},
    {"LSTM", 7, lstm_},
    {"Pad", 2, pad_},
    {NULL, 0, NULL},
};
