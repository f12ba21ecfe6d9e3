/* ops_grad.c: the gradient rule of every differentiable op (ops.def column 7).
 *
 * grad_X(ad, id, dy): dy is d loss / d value id (same shape as the value); the rule adds each input's
 * contribution with ad_accum, which sums broadcast axes away. Rules build forward ops only, and read
 * what they need from the value first: adding values may move the graph's array.
 */
#include "autodiff.h"

#include <string.h>

#define G (ad->g)
#define V(id) (&G->v[id])

static int in_(AD *ad, int id, int k) { return V(id)->in[k]; }

void grad_none(AD *ad, int id, int dy)
{
    (void)ad, (void)id, (void)dy;
}

void grad_tensor(AD *ad, int id, int dy) { grad_none(ad, id, dy); } /* recorded by autodiff() itself */

static int mul_(AD *ad, int a, int b, Loc loc) { return ir_binary(G, OP_MUL, a, b, loc); }
static int k_(AD *ad, double v, Loc loc) { return ir_scalar(G, v, loc); }

void grad_neg(AD *ad, int id, int dy) { ad_accum(ad, in_(ad, id, 0), ir_unary(G, OP_NEG, dy, V(id)->loc)); }

/* y > 0 exactly when x > 0: reading the output lets x be fused away (conv + bias + relu in one kernel) */
void grad_relu(AD *ad, int id, int dy)
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    ad_accum(ad, x, mul_(ad, dy, ir_binary(G, OP_GT, id, k_(ad, 0, loc), loc), loc));
}

void grad_leaky_relu(AD *ad, int id, int dy)
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    double alpha = V(id)->attr.f[0];
    int in[3] = {ir_binary(G, OP_GT, x, k_(ad, 0, loc), loc), k_(ad, 1, loc), k_(ad, alpha, loc)};
    int slope = graph_add(G, OP_SELECT, in, 3, NULL, loc);
    ad_accum(ad, x, mul_(ad, dy, slope, loc));
}

void grad_sigmoid(AD *ad, int id, int dy) /* y (1 - y) */
{
    Loc loc = V(id)->loc;
    int y = id;
    int d = mul_(ad, y, ir_binary(G, OP_SUB, k_(ad, 1, loc), y, loc), loc);
    ad_accum(ad, in_(ad, id, 0), mul_(ad, dy, d, loc));
}

void grad_tanh(AD *ad, int id, int dy) /* 1 - y^2 */
{
    Loc loc = V(id)->loc;
    int d = ir_binary(G, OP_SUB, k_(ad, 1, loc), ir_unary(G, OP_SQUARE, id, loc), loc);
    ad_accum(ad, in_(ad, id, 0), mul_(ad, dy, d, loc));
}

void grad_softplus(AD *ad, int id, int dy) /* sigmoid(x), exact at x = 0 too */
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    ad_accum(ad, x, mul_(ad, dy, ir_unary(G, OP_SIGMOID, x, loc), loc));
}

static int add_(AD *ad, int a, int b, Loc loc) { return ir_binary(G, OP_ADD, a, b, loc); }

void grad_gelu(AD *ad, int id, int dy) /* Phi(x) + x phi(x) = (1 + erf(x / sqrt 2)) / 2 + x e^(-x^2/2) / sqrt(2 pi) */
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    int erf = ir_unary(G, OP_ERF, mul_(ad, x, k_(ad, 0.70710678118654752, loc), loc), loc);
    int cdf = add_(ad, k_(ad, 0.5, loc), mul_(ad, erf, k_(ad, 0.5, loc), loc), loc);
    int pdf = mul_(ad, ir_unary(G, OP_EXP, mul_(ad, ir_unary(G, OP_SQUARE, x, loc), k_(ad, -0.5, loc), loc), loc),
                   k_(ad, 0.39894228040143268, loc), loc);
    ad_accum(ad, x, mul_(ad, dy, add_(ad, cdf, mul_(ad, x, pdf, loc), loc), loc));
}

/* y = x s, s = sigmoid(2u), 2u = c (x + k x^3): s + x s (1 - s) c (1 + 3k x^2) */
void grad_gelu_tanh(AD *ad, int id, int dy)
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    const double c = 1.5957691216057308, k = 0.044715;
    int x2 = ir_unary(G, OP_SQUARE, x, loc);
    int u2 = mul_(ad, k_(ad, c, loc), add_(ad, x, mul_(ad, k_(ad, k, loc), mul_(ad, x2, x, loc), loc), loc), loc);
    int s = ir_unary(G, OP_SIGMOID, u2, loc);
    int ds = mul_(ad, s, ir_binary(G, OP_SUB, k_(ad, 1, loc), s, loc), loc);
    int du = mul_(ad, k_(ad, c, loc), add_(ad, k_(ad, 1, loc), mul_(ad, k_(ad, 3 * k, loc), x2, loc), loc), loc);
    ad_accum(ad, x, mul_(ad, dy, add_(ad, s, mul_(ad, x, mul_(ad, ds, du, loc), loc), loc), loc));
}

void grad_silu(AD *ad, int id, int dy) /* s (1 + x (1 - s)), s = sigmoid(x) */
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    int s = ir_unary(G, OP_SIGMOID, x, loc);
    int d = mul_(ad, s, add_(ad, k_(ad, 1, loc), mul_(ad, x, ir_binary(G, OP_SUB, k_(ad, 1, loc), s, loc), loc), loc), loc);
    ad_accum(ad, x, mul_(ad, dy, d, loc));
}

void grad_elu(AD *ad, int id, int dy) /* 1 above 0, alpha e^x at and below (as PyTorch) */
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    double alpha = V(id)->attr.f[0];
    int in[3] = {ir_binary(G, OP_GT, x, k_(ad, 0, loc), loc), k_(ad, 1, loc),
                 mul_(ad, k_(ad, alpha, loc), ir_unary(G, OP_EXP, x, loc), loc)};
    ad_accum(ad, x, mul_(ad, dy, graph_add(G, OP_SELECT, in, 3, NULL, loc), loc));
}

void grad_erf(AD *ad, int id, int dy) /* 2 / sqrt(pi) e^(-x^2) */
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    int e = ir_unary(G, OP_EXP, ir_unary(G, OP_NEG, ir_unary(G, OP_SQUARE, x, loc), loc), loc);
    ad_accum(ad, x, mul_(ad, dy, mul_(ad, e, k_(ad, 1.1283791670955126, loc), loc), loc));
}

void grad_exp(AD *ad, int id, int dy) { ad_accum(ad, in_(ad, id, 0), mul_(ad, dy, id, V(id)->loc)); }

void grad_log(AD *ad, int id, int dy)
{
    ad_accum(ad, in_(ad, id, 0), ir_binary(G, OP_DIV, dy, in_(ad, id, 0), V(id)->loc));
}

void grad_sqrt(AD *ad, int id, int dy) /* 1 / (2 y) */
{
    Loc loc = V(id)->loc;
    ad_accum(ad, in_(ad, id, 0), ir_binary(G, OP_DIV, mul_(ad, dy, k_(ad, 0.5, loc), loc), id, loc));
}

void grad_abs(AD *ad, int id, int dy)
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    ad_accum(ad, x, mul_(ad, dy, ir_unary(G, OP_SIGN, x, loc), loc));
}

void grad_square(AD *ad, int id, int dy)
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    ad_accum(ad, x, mul_(ad, dy, mul_(ad, x, k_(ad, 2, loc), loc), loc));
}

void grad_clip(AD *ad, int id, int dy) /* 1 inside [lo, hi], bounds included (as PyTorch's clamp) */
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    double lo = V(id)->attr.f[0], hi = V(id)->attr.f[1];
    int inside = mul_(ad, ir_binary(G, OP_GE, x, k_(ad, lo, loc), loc), ir_binary(G, OP_GE, k_(ad, hi, loc), x, loc), loc);
    ad_accum(ad, x, mul_(ad, dy, inside, loc));
}

void grad_powc(AD *ad, int id, int dy) /* a x^(a-1) */
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    double a = V(id)->attr.f[0];
    int d = a == 2 ? mul_(ad, x, k_(ad, 2, loc), loc)
                   : mul_(ad, k_(ad, a, loc), a - 1 == 1 ? x : ir_op1f(G, OP_POWC, x, a - 1, 0, loc), loc);
    ad_accum(ad, x, mul_(ad, dy, d, loc));
}

void grad_add(AD *ad, int id, int dy)
{
    int a = in_(ad, id, 0), b = in_(ad, id, 1);
    ad_accum(ad, a, dy);
    ad_accum(ad, b, dy);
}

void grad_sub(AD *ad, int id, int dy)
{
    int a = in_(ad, id, 0), b = in_(ad, id, 1);
    ad_accum(ad, a, dy);
    if (ad->needs[b]) ad_accum(ad, b, ir_unary(G, OP_NEG, dy, V(id)->loc));
}

void grad_mul(AD *ad, int id, int dy)
{
    Loc loc = V(id)->loc;
    int a = in_(ad, id, 0), b = in_(ad, id, 1);
    if (ad->needs[a]) ad_accum(ad, a, mul_(ad, dy, b, loc));
    if (ad->needs[b]) ad_accum(ad, b, mul_(ad, dy, a, loc));
}

void grad_div(AD *ad, int id, int dy) /* d/da = 1/b; d/db = -a/b^2 = -y/b */
{
    Loc loc = V(id)->loc;
    int a = in_(ad, id, 0), b = in_(ad, id, 1);
    if (ad->needs[a]) ad_accum(ad, a, ir_binary(G, OP_DIV, dy, b, loc));
    if (ad->needs[b]) ad_accum(ad, b, ir_unary(G, OP_NEG, ir_binary(G, OP_DIV, mul_(ad, dy, id, loc), b, loc), loc));
}

/* maximum/minimum: the gradient goes to the chosen operand (a on ties) */
static void grad_pick_(AD *ad, int id, int dy, bool max)
{
    Loc loc = V(id)->loc;
    int a = in_(ad, id, 0), b = in_(ad, id, 1);
    int a_wins = max ? ir_binary(G, OP_GE, a, b, loc) : ir_binary(G, OP_GE, b, a, loc);
    if (ad->needs[a]) ad_accum(ad, a, mul_(ad, dy, a_wins, loc));
    if (ad->needs[b]) ad_accum(ad, b, mul_(ad, dy, ir_binary(G, OP_SUB, k_(ad, 1, loc), a_wins, loc), loc));
}

void grad_maximum(AD *ad, int id, int dy) { grad_pick_(ad, id, dy, true); }
void grad_minimum(AD *ad, int id, int dy) { grad_pick_(ad, id, dy, false); }

void grad_pow(AD *ad, int id, int dy) /* d/da = b a^(b-1); d/db = log(a) y */
{
    Loc loc = V(id)->loc;
    int a = in_(ad, id, 0), b = in_(ad, id, 1);
    if (ad->needs[a]) {
        int bm1 = ir_binary(G, OP_SUB, b, k_(ad, 1, loc), loc);
        ad_accum(ad, a, mul_(ad, dy, mul_(ad, b, ir_binary(G, OP_POW, a, bm1, loc), loc), loc));
    }
    if (ad->needs[b]) ad_accum(ad, b, mul_(ad, dy, mul_(ad, ir_unary(G, OP_LOG, a, loc), id, loc), loc));
}

void grad_select(AD *ad, int id, int dy)
{
    Loc loc = V(id)->loc;
    int c = in_(ad, id, 0), a = in_(ad, id, 1), b = in_(ad, id, 2);
    int zero = k_(ad, 0, loc);
    if (ad->needs[a]) {
        int in[3] = {c, dy, zero};
        ad_accum(ad, a, graph_add(G, OP_SELECT, in, 3, NULL, loc));
    }
    if (ad->needs[b]) {
        int in[3] = {c, zero, dy};
        ad_accum(ad, b, graph_add(G, OP_SELECT, in, 3, NULL, loc));
    }
}

/* ---- reductions -------------------------------------------------------------------------------------- */

/* dy of a reduction, given back the reduced axes (as 1) and broadcast to the input's shape */
static int expand_(AD *ad, int id, int dy)
{
    Value *v = V(id);
    Shape xs = V(v->in[0])->shape, keep = xs;
    uint64_t axes = (uint64_t)v->attr.i[0];
    Loc loc = v->loc;
    for (int i = 0; i < xs.rank; i++)
        if (axes >> i & 1) keep.d[i] = 1;
    return ir_broadcast(G, ir_reshape(G, dy, keep, loc), xs, loc);
}

void grad_sum(AD *ad, int id, int dy) { ad_accum(ad, in_(ad, id, 0), expand_(ad, id, dy)); }

void grad_mean(AD *ad, int id, int dy)
{
    Loc loc = V(id)->loc;
    Shape xs = V(in_(ad, id, 0))->shape;
    uint64_t axes = (uint64_t)V(id)->attr.i[0];
    int count = ad_count(G, xs, axes, loc);
    int x = in_(ad, id, 0);
    ad_accum(ad, x, ir_binary(G, OP_DIV, expand_(ad, id, dy), count, loc));
}

void grad_max(AD *ad, int id, int dy) /* to every position equal to the maximum */
{
    Loc loc = V(id)->loc;
    int x = in_(ad, id, 0);
    int ymax = expand_(ad, id, id);
    int hit = ir_binary(G, OP_EQ, x, ymax, loc);
    ad_accum(ad, x, mul_(ad, expand_(ad, id, dy), hit, loc));
}

/* ---- shape ops ------------------------------------------------------------------------------------------ */
void grad_reshape(AD *ad, int id, int dy)
{
    int x = in_(ad, id, 0);
    ad_accum(ad, x, ir_reshape(G, dy, V(x)->shape, V(id)->loc));
}

void grad_broadcast(AD *ad, int id, int dy) { ad_accum(ad, in_(ad, id, 0), dy); }

void grad_transpose(AD *ad, int id, int dy)
{
    Value *v = V(id);
    Attr inv = {0};
    for (int k = 0; k < v->shape.rank; k++) inv.i[v->attr.i[k]] = k;
    int x = v->in[0];
    Loc loc = v->loc;
    ad_accum(ad, x, graph_add(G, OP_TRANSPOSE, &dy, 1, &inv, loc));
}

static int slice_(AD *ad, int x, int64_t axis, int64_t start, int64_t len, Loc loc)
{
    Attr a = {.i = {axis, start, len}};
    return graph_add(G, OP_SLICE, &x, 1, &a, loc);
}

void grad_concat(AD *ad, int id, int dy)
{
    int64_t axis = V(id)->attr.i[0], off = 0;
    Loc loc = V(id)->loc;
    for (int k = 0; k < V(id)->nin; k++) {
        int x = in_(ad, id, k);
        int64_t len = V(x)->shape.d[axis];
        if (ad->needs[x]) ad_accum(ad, x, slice_(ad, dy, axis, off, len, loc));
        off += len;
    }
}

void grad_slice(AD *ad, int id, int dy)
{
    Value *v = V(id);
    ad_accum_slice(ad, v->in[0], v->attr.i[0], v->attr.i[1], v->attr.i[2], dy);
}

void grad_unslice(AD *ad, int id, int dy)
{
    Value *v = V(id);
    int x = v->in[0];
    int64_t axis = v->attr.i[0], start = v->attr.i[1], len = V(x)->shape.d[axis];
    ad_accum(ad, x, slice_(ad, dy, axis, start, len, v->loc));
}

/* ---- matmul -------------------------------------------------------------------------------------------------- */
static int matmul_(AD *ad, int a, int b, int ta, int tb, int fold, Loc loc)
{
    Attr at = {.i = {ta, tb, fold}};
    int in[2] = {a, b};
    return graph_add(G, OP_MATMUL, in, 2, &at, loc);
}

/* C = op(A) @ op(B) over the last two axes. With A stored [.., M, K] (ta: [.., K, M]) and B [.., K, N]
 * (tb: [.., N, K]): dA = dC op(B)^T (stored: ta ? op(B) dC^T), dB = op(A)^T dC (stored: tb ? dC^T op(A)).
 * A batched A times a plain matrix B gets dB as one product over all rows (fold). */
void grad_matmul(AD *ad, int id, int dy)
{
    Value *v = V(id);
    Loc loc = v->loc;
    int a = v->in[0], b = v->in[1], ta = (int)v->attr.i[0], tb = (int)v->attr.i[1];
    NNC_ASSERT(v->attr.i[2] == 0);
    Shape sa = V(a)->shape, sb = V(b)->shape, sy = v->shape;
    int A = a, B = b, dY = dy;
    if (sa.rank == 1) { /* row vector [K] -> [1, K]; dY gains the M axis */
        A = ir_reshape(G, a, (Shape){2, {1, sa.d[0]}}, loc);
        Shape s = sy;
        memmove(&s.d[s.rank - (sb.rank == 1 ? 0 : 1) + 1], &s.d[s.rank - (sb.rank == 1 ? 0 : 1)],
                sizeof(int64_t) * (sb.rank == 1 ? 0 : 1));
        s.d[s.rank - (sb.rank == 1 ? 0 : 1)] = 1;
        s.rank++;
        dY = ir_reshape(G, dY, s, loc);
        sy = s;
        ta = 0;
    }
    if (sb.rank == 1) { /* column vector [K] -> [K, 1]; dY gains the N axis */
        B = ir_reshape(G, b, (Shape){2, {sb.d[0], 1}}, loc);
        Shape s = sy;
        s.d[s.rank++] = 1;
        dY = ir_reshape(G, dY, s, loc);
        tb = 0;
    }
    Shape SA = V(A)->shape, SB = V(B)->shape;
    if (ad->needs[a]) {
        int dA = ta ? matmul_(ad, B, dY, tb, 1, 0, loc) : matmul_(ad, dY, B, 0, !tb, 0, loc);
        dA = ad_unbroadcast(G, dA, SA, loc);
        ad_accum(ad, a, ir_reshape(G, dA, sa, loc));
    }
    if (ad->needs[b]) {
        int dB;
        if (SB.rank == 2 && SA.rank > 2 && !ta && !tb)
            dB = matmul_(ad, A, dY, 1, 0, 1, loc); /* sum over every row of A and dY */
        else
            dB = tb ? matmul_(ad, dY, A, 1, ta, 0, loc) : matmul_(ad, A, dY, !ta, 0, 0, loc);
        dB = ad_unbroadcast(G, dB, SB, loc);
        ad_accum(ad, b, ir_reshape(G, dB, sb, loc));
    }
}

/* ---- convolution and pooling ---------------------------------------------------------------------------------- */
void grad_conv2d(AD *ad, int id, int dy)
{
    Value *v = V(id);
    Loc loc = v->loc;
    int x = v->in[0], w = v->in[1];
    Attr a = v->attr;
    Shape xs = V(x)->shape, ws = V(w)->shape;
    if (ad->needs[x]) {
        Attr ad_attr = a;
        ad_attr.i[0] = xs.d[1];
        ad_attr.i[1] = xs.d[2];
        int in[2] = {dy, w};
        ad_accum(ad, x, graph_add(G, OP_CONV2D_BWD_DATA, in, 2, &ad_attr, loc));
    }
    if (ad->needs[w]) {
        Attr aw = a;
        aw.i[0] = ws.d[0];
        aw.i[1] = ws.d[1];
        int in[2] = {x, dy};
        ad_accum(ad, w, graph_add(G, OP_CONV2D_BWD_FILTER, in, 2, &aw, loc));
    }
}

void grad_maxpool2d(AD *ad, int id, int dy)
{
    Value *v = V(id);
    Attr a = v->attr;
    Loc loc = v->loc;
    int x = v->in[0];
    int in[3] = {x, id, dy}; /* the forward's maxima tell which cell won */
    ad_accum(ad, x, graph_add(G, OP_MAXPOOL2D_BWD, in, 3, &a, loc));
}

void grad_avgpool2d(AD *ad, int id, int dy)
{
    Value *v = V(id);
    Attr a = v->attr;
    Loc loc = v->loc;
    int x = v->in[0];
    a.i[8] = V(x)->shape.d[1];
    a.i[9] = V(x)->shape.d[2];
    ad_accum(ad, x, graph_add(G, OP_AVGPOOL2D_BWD, &dy, 1, &a, loc));
}

/* ---- softmax ------------------------------------------------------------------------------------------------------ */
void grad_softmax(AD *ad, int id, int dy) /* y (dy - sum(dy y)) */
{
    Loc loc = V(id)->loc;
    uint64_t axis = (uint64_t)1 << V(id)->attr.i[0];
    int s = ir_reduce(G, OP_SUM, mul_(ad, dy, id, loc), axis, true, loc);
    int x = in_(ad, id, 0);
    ad_accum(ad, x, mul_(ad, id, ir_binary(G, OP_SUB, dy, s, loc), loc));
}

void grad_log_softmax(AD *ad, int id, int dy) /* dy - softmax sum(dy) */
{
    Loc loc = V(id)->loc;
    uint64_t axis = (uint64_t)1 << V(id)->attr.i[0];
    int s = ir_reduce(G, OP_SUM, dy, axis, true, loc);
    int sm = ir_unary(G, OP_EXP, id, loc);
    int x = in_(ad, id, 0);
    ad_accum(ad, x, ir_binary(G, OP_SUB, dy, mul_(ad, sm, s, loc), loc));
}

/* ---- lstm -------------------------------------------------------------------------------------------------------- */
/* S = lstm_seq(xw, R): dxw comes from the backward sweep; dR = sum over b, t of h[t-1]^T dz[t] (h[-1] = 0) */
void grad_lstm_seq(AD *ad, int id, int dy)
{
    Value *v = V(id);
    Loc loc = v->loc;
    int xw = v->in[0], r = v->in[1];
    int64_t u = v->attr.i[0], T = v->shape.d[1];
    Attr a = v->attr;
    int in[3] = {id, r, dy};
    int dz = graph_add(G, OP_LSTM_SEQ_BWD, in, 3, &a, loc);
    ad_accum(ad, xw, dz);
    if (!ad->needs[r] || T < 2) return;
    int h = slice_(ad, id, 2, 5 * u, u, loc);                /* [B,T,u] */
    Attr sh = {.i = {1, 1, 0, T}};
    int early = slice_(ad, h, 1, 0, T - 1, loc);
    int hprev = graph_add(G, OP_UNSLICE, &early, 1, &sh, loc); /* h shifted one step later, zeros first */
    ad_accum(ad, r, matmul_(ad, hprev, dz, 1, 0, 1, loc));
}
