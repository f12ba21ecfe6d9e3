/* flops.c: floating-point operations of an entry point at batch n, for summary and bench.
 *
 * Each op's count is its FLOPs rule in ops.def: a multiply-add counts 2; an elementwise op 1 per element;
 * copies 0. Each entry point's FLOPs are
 * a*n + c (c: per-step work such as the optimizer update); the per-sample figure is a, measured as
 * flops(2) - flops(1).
 */
#include "flops.h"
#include "ops.h"

static int64_t count_(Shape s, int64_t batch) { return shape_count(s, batch); }
static Shape in_shape_(const Graph *g, const Value *v, int k) { return g->v[v->in[k]].shape; }

/* ---- the FLOPs rules of ops.def ------------------------------------------------------------------------ */
int64_t flops_none(const Graph *g, const Value *v, int64_t n) { return (void)g, (void)v, (void)n, 0; }

int64_t flops_ew(const Graph *g, const Value *v, int64_t n) { return (void)g, count_(v->shape, n); }

int64_t flops_reduce(const Graph *g, const Value *v, int64_t n) { return count_(in_shape_(g, v, 0), n); }

int64_t flops_softmax(const Graph *g, const Value *v, int64_t n) { return (void)g, 5 * count_(v->shape, n); }

int64_t flops_matmul(const Graph *g, const Value *v, int64_t n)
{
    Shape a = in_shape_(g, v, 0);
    int64_t k = v->attr.i[2] ? count_(a, n) / a.d[a.rank - 1] : a.d[a.rank - (v->attr.i[0] ? 2 : 1)];
    if (k == DIM_B) k = n;
    return 2 * count_(v->shape, n) * k;
}

/* conv2d and both its gradients: 2 per filter tap of each output element */
int64_t flops_conv2d(const Graph *g, const Value *v, int64_t n)
{
    Shape y = v->op == OP_CONV2D ? v->shape : v->op == OP_CONV2D_BWD_DATA ? in_shape_(g, v, 0) : in_shape_(g, v, 1);
    Shape w = v->op == OP_CONV2D_BWD_FILTER ? v->shape : in_shape_(g, v, 1);
    return 2 * count_(y, n) * w.d[0] * w.d[1] * w.d[2];
}

/* the recurrent product and about 20 operations per unit and step */
int64_t flops_lstm(const Graph *g, const Value *v, int64_t n)
{
    int64_t u = v->attr.i[0], bt = count_(v->shape, n) / (v->shape.d[2]);
    return (void)g, bt * (8 * u * u + 20 * u);
}

/* x_t W and h R for every step, then the gates */
int64_t flops_lstm_infer(const Graph *g, const Value *v, int64_t n)
{
    int64_t u = v->attr.i[0], f = g->v[v->in[0]].shape.d[2], bt = count_(v->shape, n) / u;
    return bt * (8 * u * f + 8 * u * u + 24 * u);
}

int64_t flops_pool2d(const Graph *g, const Value *v, int64_t n)
{
    return (void)g, count_(v->shape, n) * v->attr.i[0] * v->attr.i[1];
}

int64_t flops_pool2d_bwd(const Graph *g, const Value *v, int64_t n)
{
    return count_(in_shape_(g, v, v->nin - 1), n) * v->attr.i[0] * v->attr.i[1];
}

static const FlopsRule flops_rules_[OP_COUNT] = {
#define OP(id, name, arity, flags, shape, emit, grad, flops, scalar) [OP_##id] = flops,
#include "ops.def"
#undef OP
};

/* FLOPs of one value at batch n */
static int64_t value_flops_(Graph *g, int id, int64_t n) { return flops_rules_[g->v[id].op](g, &g->v[id], n); }

/* every computed value: scheduled kernels and the values fused into them */
static int64_t graph_flops_(const EntryCode *ec, int64_t n)
{
    int64_t f = 0;
    for (int id = 0; id < ec->g->n; id++) {
        StoreKind k = ec->plan->store[id].kind;
        if (k == SK_ARENA || k == SK_FUSED || (k == SK_TENSOR && ec->g->v[id].op != OP_TENSOR))
            f += value_flops_(ec->g, id, n);
    }
    return f;
}

int64_t entry_flops(const EntryCode *ec, int64_t n) { return ec ? graph_flops_(ec, n) : 0; }

int64_t entry_flops_per_sample(const EntryCode *ec) { return ec ? graph_flops_(ec, 2) - graph_flops_(ec, 1) : 0; }

