/* ops_shape.c: the shape rule of every op (ops.def column 5).
 *
 * A rule reads v->in and v->attr, sets v->dtype and v->shape, and returns true; or reports a user error at
 * v->loc, naming both shapes, and returns false. The front end validates arguments before it builds a
 * value, so most of these errors only fire for shapes that cannot fit together. Internal construction
 * (autodiff, lowering) never fails here; if it did, that would be a compiler bug caught by an assert.
 */
#include "ops.h"

#include <inttypes.h>
#include <string.h>

const char *shape_error_context;

void shape_error(Graph *g, Value *v, const char *fmt, ...)
{
    (void)g;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_error(v->loc, "%s: %s", shape_error_context ? shape_error_context : op_info[v->op].name, msg);
}

static Value *in_(Graph *g, Value *v, int k) { return &g->v[v->in[k]]; }

static const char *sh_(Shape s, char *buf) { return shape_str(s, buf, 96); }

bool shape_source(Graph *g, Value *v)
{
    (void)g;
    (void)v;
    NNC_UNREACHABLE(); /* sources are built with graph_add_typed */
}

/* elementwise: NumPy broadcasting; all inputs of one dtype */
bool shape_ew(Graph *g, Value *v)
{
    Shape s = in_(g, v, 0)->shape;
    DType dt = in_(g, v, 0)->dtype;
    for (int k = 1; k < v->nin; k++) {
        Value *x = in_(g, v, k);
        char a[96], b[96];
        if (!shape_broadcast2(s, x->shape, &s)) {
            shape_error(g, v, "cannot broadcast shapes %s and %s", sh_(in_(g, v, 0)->shape, a), sh_(x->shape, b));
            return false;
        }
        if (x->dtype != dt) {
            shape_error(g, v, "operands have different types (%s and %s)", dtype_name(dt), dtype_name(x->dtype));
            return false;
        }
    }
    v->dtype = dt;
    v->shape = s;
    return true;
}

bool shape_cmp(Graph *g, Value *v)
{
    if (!shape_ew(g, v)) return false;
    v->dtype = DT_F32;
    return true;
}

bool shape_select(Graph *g, Value *v)
{
    DType cond = in_(g, v, 0)->dtype;
    in_(g, v, 0)->dtype = in_(g, v, 1)->dtype; /* the condition may be of any type */
    bool ok = shape_ew(g, v);
    in_(g, v, 0)->dtype = cond;
    return ok;
}

bool shape_cast(Graph *g, Value *v)
{
    v->dtype = (DType)v->attr.i[0];
    v->shape = in_(g, v, 0)->shape;
    return true;
}

/* sum/mean/max: i[0] the axes as a bit mask, i[1] keepdims */
bool shape_reduce(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape;
    uint64_t axes = (uint64_t)v->attr.i[0];
    Shape s = {0};
    for (int i = 0; i < x.rank; i++) {
        if (axes >> i & 1) {
            if (v->attr.i[1]) s.d[s.rank++] = 1;
        } else {
            s.d[s.rank++] = x.d[i];
        }
    }
    if (axes >> x.rank) {
        shape_error(g, v, "axis out of range for a value of rank %d", x.rank);
        return false;
    }
    v->dtype = in_(g, v, 0)->dtype;
    v->shape = s;
    return true;
}

/* argmax: i[0] axis; the axis is removed (i[1] keepdims keeps it as 1) */
bool shape_argmax(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape;
    int axis = (int)v->attr.i[0];
    if (axis < 0 || axis >= x.rank) {
        shape_error(g, v, "axis %d out of range for a value of rank %d", axis, x.rank);
        return false;
    }
    Shape s = {0};
    for (int i = 0; i < x.rank; i++) {
        if (i != axis)
            s.d[s.rank++] = x.d[i];
        else if (v->attr.i[1])
            s.d[s.rank++] = 1;
    }
    v->dtype = DT_I32;
    v->shape = s;
    return true;
}

static Shape shape_from_attr_(const Attr *a)
{
    Shape s = {.rank = (int)a->i[0]};
    for (int i = 0; i < s.rank; i++) s.d[i] = a->i[i + 1];
    return s;
}

bool shape_reshape(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape, s = shape_from_attr_(&v->attr);
    char a[96], b[96];
    if (shape_batched(x) != shape_batched(s) || shape_per_sample(x) != shape_per_sample(s)) {
        shape_error(g, v, "cannot reshape %s into %s", sh_(x, a), sh_(s, b));
        return false;
    }
    v->dtype = in_(g, v, 0)->dtype;
    v->shape = s;
    return true;
}

bool shape_broadcast(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape, s = shape_from_attr_(&v->attr), r;
    char a[96], b[96];
    if (!shape_broadcast2(x, s, &r) || !shape_eq(r, s)) {
        shape_error(g, v, "cannot broadcast %s to %s", sh_(x, a), sh_(s, b));
        return false;
    }
    v->dtype = in_(g, v, 0)->dtype;
    v->shape = s;
    return true;
}

/* transpose: i[k] is the input axis that becomes output axis k */
bool shape_transpose(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape, s = {.rank = x.rank};
    unsigned seen = 0;
    for (int k = 0; k < x.rank; k++) {
        int64_t p = v->attr.i[k];
        if (p < 0 || p >= x.rank || (seen >> p & 1)) {
            shape_error(g, v, "the permutation is not a permutation of the %d axes", x.rank);
            return false;
        }
        seen |= 1u << p;
        s.d[k] = x.d[p];
    }
    if (shape_batched(x) && v->attr.i[0] != 0) {
        shape_error(g, v, "the batch axis (axis 0) must stay first");
        return false;
    }
    v->dtype = in_(g, v, 0)->dtype;
    v->shape = s;
    return true;
}

/* concat: i[0] axis; every other axis equal */
bool shape_concat(Graph *g, Value *v)
{
    Shape s = in_(g, v, 0)->shape;
    int axis = (int)v->attr.i[0];
    char a[96], b[96];
    if (axis < 0 || axis >= s.rank) {
        shape_error(g, v, "axis %d out of range for a value of rank %d", axis, s.rank);
        return false;
    }
    if (s.d[axis] == DIM_B) {
        shape_error(g, v, "cannot concatenate along the batch axis");
        return false;
    }
    for (int k = 1; k < v->nin; k++) {
        Shape x = in_(g, v, k)->shape;
        if (in_(g, v, k)->dtype != in_(g, v, 0)->dtype) {
            shape_error(g, v, "parts have different types (%s and %s)", dtype_name(in_(g, v, 0)->dtype),
                        dtype_name(in_(g, v, k)->dtype));
            return false;
        }
        bool ok = x.rank == s.rank;
        for (int i = 0; ok && i < s.rank; i++) ok = i == axis || x.d[i] == s.d[i];
        if (!ok) {
            shape_error(g, v, "shapes %s and %s do not fit together along axis %d", sh_(in_(g, v, 0)->shape, a),
                        sh_(x, b), axis);
            return false;
        }
        s.d[axis] += x.d[axis];
    }
    v->dtype = in_(g, v, 0)->dtype;
    v->shape = s;
    return true;
}

/* slice: i[0] axis, i[1] start, i[2] length */
bool shape_slice(Graph *g, Value *v)
{
    Shape s = in_(g, v, 0)->shape;
    int axis = (int)v->attr.i[0];
    NNC_ASSERT(axis >= 0 && axis < s.rank && s.d[axis] != DIM_B);
    NNC_ASSERT(v->attr.i[1] >= 0 && v->attr.i[2] >= 1 && v->attr.i[1] + v->attr.i[2] <= s.d[axis]);
    s.d[axis] = v->attr.i[2];
    v->dtype = in_(g, v, 0)->dtype;
    v->shape = s;
    return true;
}

/* unslice: i[0] axis, i[1] start, i[3] the full length: the input placed into zeros */
bool shape_unslice(Graph *g, Value *v)
{
    Shape s = in_(g, v, 0)->shape;
    int axis = (int)v->attr.i[0];
    NNC_ASSERT(axis >= 0 && axis < s.rank && v->attr.i[1] + s.d[axis] <= v->attr.i[3]);
    s.d[axis] = v->attr.i[3];
    v->dtype = in_(g, v, 0)->dtype;
    v->shape = s;
    return true;
}

/* one_hot: i32 [..] -> f32 [.., i[0]] */
bool shape_one_hot(Graph *g, Value *v)
{
    Shape s = in_(g, v, 0)->shape;
    if (in_(g, v, 0)->dtype != DT_I32) {
        shape_error(g, v, "class indices must be i32, found %s", dtype_name(in_(g, v, 0)->dtype));
        return false;
    }
    NNC_ASSERT(s.rank < MAX_RANK);
    s.d[s.rank++] = v->attr.i[0];
    v->dtype = DT_F32;
    v->shape = s;
    return true;
}

/* matmul over the last two axes, NumPy-style: a [..., M, K] @ b [..., K, N] -> [..., M, N]; a rank-1
 * operand is a row (a) or a column (b) vector and its axis is dropped from the result. i[0]/i[1]
 * transpose a/b's last two axes first. */
bool shape_matmul(Graph *g, Value *v)
{
    Shape a = in_(g, v, 0)->shape, b = in_(g, v, 1)->shape;
    char sa[96], sb[96];
    if (v->attr.i[2]) { /* fold (autodiff only): a [..., K]^T @ b [..., N] summed over every leading index */
        NNC_ASSERT(v->attr.i[0] == 1 && v->attr.i[1] == 0 && a.rank == b.rank);
        for (int i = 0; i < a.rank - 1; i++) NNC_ASSERT(a.d[i] == b.d[i]);
        v->dtype = DT_F32;
        v->shape = (Shape){2, {a.d[a.rank - 1], b.d[b.rank - 1]}};
        return true;
    }
    if (a.rank == 0 || b.rank == 0) {
        shape_error(g, v, "operands must have at least one axis, found %s and %s", sh_(a, sa), sh_(b, sb));
        return false;
    }
    if (in_(g, v, 0)->dtype != DT_F32 || in_(g, v, 1)->dtype != DT_F32) {
        shape_error(g, v, "operands must be f32");
        return false;
    }
    bool va = a.rank == 1, vb = b.rank == 1;
    int64_t m = va ? 1 : a.d[a.rank - (v->attr.i[0] ? 1 : 2)];
    int64_t ka = va ? a.d[0] : a.d[a.rank - (v->attr.i[0] ? 2 : 1)];
    int64_t kb = vb ? b.d[0] : b.d[b.rank - (v->attr.i[1] ? 1 : 2)];
    int64_t n = vb ? 1 : b.d[b.rank - (v->attr.i[1] ? 2 : 1)];
    if (ka != kb) {
        shape_error(g, v, "inner dimensions do not match: %s @ %s", sh_(a, sa), sh_(b, sb));
        return false;
    }
    Shape ba = {.rank = va ? 0 : a.rank - 2}, bb = {.rank = vb ? 0 : b.rank - 2}, batch;
    memcpy(ba.d, a.d, sizeof(int64_t) * (size_t)ba.rank);
    memcpy(bb.d, b.d, sizeof(int64_t) * (size_t)bb.rank);
    if (!shape_broadcast2(ba, bb, &batch)) {
        shape_error(g, v, "batch axes do not broadcast: %s @ %s", sh_(a, sa), sh_(b, sb));
        return false;
    }
    Shape s = batch;
    if (!va) s.d[s.rank++] = m;
    if (!vb) s.d[s.rank++] = n;
    if (s.rank > MAX_RANK) { /* unreachable while operands have at most MAX_RANK axes; never silent */
        shape_error(g, v, "the result would have %d axes, more than %d: %s @ %s", s.rank, MAX_RANK, sh_(a, sa),
                    sh_(b, sb));
        return false;
    }
    for (int i = 1; i < s.rank; i++)
        if (s.d[i] == DIM_B) {
            shape_error(g, v, "the batch axis would not come first: %s @ %s", sh_(a, sa), sh_(b, sb));
            return false;
        }
    v->dtype = DT_F32;
    v->shape = s;
    return true;
}

static int64_t conv_out_(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi)
{
    return (in + pad_lo + pad_hi - k) / stride + 1;
}

/* conv2d: x [B,H,W,C] * w [kh,kw,C/groups,F] -> [B,H',W',F]; i[2..3] stride, i[4..7] pads t,l,b,r,
 * i[8] groups, i[9..10] dilation (conv_attr: 0 is 1) */
bool shape_conv2d(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape, w = in_(g, v, 1)->shape;
    char sa[96], sb[96];
    if (x.rank != 4 || w.rank != 4) {
        shape_error(g, v, "expected an input [B,H,W,C] and a kernel [kh,kw,C,F], found %s and %s", sh_(x, sa),
                    sh_(w, sb));
        return false;
    }
    const Attr *at = &v->attr;
    const int64_t *a = at->i;
    int64_t groups = conv_attr(at, CONV_GROUPS), dh = conv_attr(at, CONV_DIL_H), dw = conv_attr(at, CONV_DIL_W);
    if (w.d[2] * groups != x.d[3] || w.d[3] % groups) {
        if (groups == 1)
            shape_error(g, v, "input has %" PRId64 " channels but the kernel expects %" PRId64, x.d[3], w.d[2]);
        else
            shape_error(g, v, "input has %" PRId64 " channels and %" PRId64 " filters but the kernel %s expects %" PRId64
                        " channels in %" PRId64 " groups", x.d[3], w.d[3], sh_(w, sa), w.d[2] * groups, groups);
        return false;
    }
    int64_t kh = (w.d[0] - 1) * dh + 1, kw = (w.d[1] - 1) * dw + 1; /* the dilated extent */
    int64_t ph = x.d[1] + a[4] + a[6], pw = x.d[2] + a[5] + a[7];
    if (ph < kh || pw < kw) {
        char kd[160] = "", pd[160] = "";
        if (dh > 1 || dw > 1)
            snprintf(kd, sizeof kd, " (%" PRId64 "x%" PRId64 " with dilation [%" PRId64 ", %" PRId64 "])", kh, kw, dh, dw);
        if (ph != x.d[1] || pw != x.d[2]) snprintf(pd, sizeof pd, " padded to %" PRId64 "x%" PRId64, ph, pw);
        shape_error(g, v, "the %" PRId64 "x%" PRId64 " kernel%s is larger than the %" PRId64 "x%" PRId64 " input%s",
                    w.d[0], w.d[1], kd, x.d[1], x.d[2], pd);
        return false;
    }
    v->dtype = DT_F32;
    v->shape = (Shape){4, {x.d[0], conv_out_(x.d[1], kh, a[2], a[4], a[6]), conv_out_(x.d[2], kw, a[3], a[5], a[7]), w.d[3]}};
    return true;
}

/* conv2d_bwd_data(dy, w) -> [B, i[0], i[1], C]; conv2d_bwd_filter(x, dy) -> [i[0], i[1], C/groups, F] */
bool shape_conv2d_bwd(Graph *g, Value *v)
{
    Shape a = in_(g, v, 0)->shape, b = in_(g, v, 1)->shape;
    v->dtype = DT_F32;
    if (v->op == OP_CONV2D_BWD_DATA)
        v->shape = (Shape){4, {a.d[0], v->attr.i[0], v->attr.i[1], b.d[2] * conv_attr(&v->attr, CONV_GROUPS)}};
    else
        v->shape = (Shape){4, {v->attr.i[0], v->attr.i[1], a.d[3] / conv_attr(&v->attr, CONV_GROUPS), b.d[3]}};
    return true;
}

/* pooling: x [B,H,W,C] -> [B,H',W',C]; i[0..1] window, i[2..3] stride, i[4..7] pads t,l,b,r, avgpool2d's
 * i[POOL_COUNT_PAD] (ops.h) */
bool shape_pool2d(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape;
    char sa[96];
    if (x.rank != 4) {
        shape_error(g, v, "expected an input [B,H,W,C], found %s", sh_(x, sa));
        return false;
    }
    const int64_t *a = v->attr.i;
    int64_t ho = conv_out_(x.d[1], a[0], a[2], a[4], a[6]), wo = conv_out_(x.d[2], a[1], a[3], a[5], a[7]);
    int64_t ph = x.d[1] + a[4] + a[6], pw = x.d[2] + a[5] + a[7];
    if (ph < a[0] || pw < a[1] || ho < 1 || wo < 1) {
        char pd[96] = "";
        if (ph != x.d[1] || pw != x.d[2]) snprintf(pd, sizeof pd, " padded to %" PRId64 "x%" PRId64, ph, pw);
        shape_error(g, v, "the %" PRId64 "x%" PRId64 " window is larger than the %" PRId64 "x%" PRId64 " input%s",
                    a[0], a[1], x.d[1], x.d[2], pd);
        return false;
    }
    v->dtype = DT_F32;
    v->shape = (Shape){4, {x.d[0], ho, wo, x.d[3]}};
    return true;
}

/* maxpool2d_bwd(x, y, dy) -> x's shape (y: the forward output); avgpool2d_bwd(dy) -> [B, i[8], i[9], C] */
bool shape_pool2d_bwd(Graph *g, Value *v)
{
    Shape dy = in_(g, v, v->nin - 1)->shape;
    v->dtype = DT_F32;
    if (v->op == OP_MAXPOOL2D_BWD)
        v->shape = in_(g, v, 0)->shape;
    else
        v->shape = (Shape){4, {dy.d[0], v->attr.i[8], v->attr.i[9], dy.d[3]}};
    return true;
}

bool shape_softmax(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape;
    int axis = (int)v->attr.i[0];
    if (x.rank == 0 || axis < 0 || axis >= x.rank) {
        shape_error(g, v, "axis out of range for a value of rank %d", x.rank);
        return false;
    }
    v->dtype = DT_F32;
    v->shape = x;
    return true;
}

/* lstm_seq(xw [B,T,4u], R [u,4u]) -> [B,T,6u]; lstm_seq_bwd(S, R, dS) -> [B,T,4u] */
bool shape_lstm(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape, r = in_(g, v, 1)->shape;
    int64_t u = v->attr.i[0];
    NNC_ASSERT(x.rank == 3 && r.rank == 2 && r.d[0] == u && r.d[1] == 4 * u);
    NNC_ASSERT(x.d[2] == (v->op == OP_LSTM_SEQ ? 4 * u : 6 * u));
    v->dtype = DT_F32;
    v->shape = (Shape){3, {x.d[0], x.d[1], (v->op == OP_LSTM_SEQ ? 6 : 4) * u}};
    return true;
}

/* lstm_infer(x [B,T,F], W [F,4u], R [u,4u], b [4u]) -> [B,T,u] */
bool shape_lstm_infer(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape, w = in_(g, v, 1)->shape, r = in_(g, v, 2)->shape, b = in_(g, v, 3)->shape;
    int64_t u = v->attr.i[0];
    NNC_ASSERT(x.rank == 3 && w.rank == 2 && w.d[0] == x.d[2] && w.d[1] == 4 * u && r.rank == 2 && r.d[0] == u &&
               r.d[1] == 4 * u && b.rank == 1 && b.d[0] == 4 * u);
    v->dtype = DT_F32;
    v->shape = (Shape){3, {x.d[0], x.d[1], u}};
    return true;
}

/* batchnorm(x, gamma, beta, moving_mean, moving_var): statistics over every axis but the last */
bool shape_batchnorm(Graph *g, Value *v)
{
    Shape x = in_(g, v, 0)->shape;
    char sa[96];
    if (x.rank < 2) {
        shape_error(g, v, "expected an input with a batch axis and a feature axis, found %s", sh_(x, sa));
        return false;
    }
    v->dtype = DT_F32;
    v->shape = x;
    return true;
}

bool shape_assign(Graph *g, Value *v)
{
    const Tensor *t = &g->model->tensors.data[v->tensor];
    NNC_ASSERT(shape_eq(t->shape, in_(g, v, 0)->shape));
    v->dtype = DT_VOID;
    v->shape = shape_scalar();
    return true;
}
