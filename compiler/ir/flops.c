/* flops.c: floating-point operations of an entry point at batch n, for summary and bench.
 *
 * A multiply-add counts 2; an elementwise op 1 per element; copies 0. Each entry point's FLOPs are
 * a*n + c (c: per-step work such as the optimizer update); the per-sample figure is a, measured as
 * flops(2) - flops(1).
 */
#include "flops.h"

static int64_t count_(Shape s, int64_t batch) { return shape_count(s, batch); }

/* FLOPs of one value at batch n */
static int64_t value_flops_(Graph *g, int id, int64_t n)
{
    Value *v = &g->v[id];
    if (op_has(v->op, F_SOURCE | F_VIEW | F_EFFECT)) return 0;
    if (op_has(v->op, F_EW)) return count_(v->shape, n);
    Shape in0 = v->nin ? g->v[v->in[0]].shape : shape_scalar();
    switch (v->op) {
    case OP_SUM:
    case OP_MEAN:
    case OP_MAX:
    case OP_ARGMAX: return count_(in0, n);
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX: return 5 * count_(v->shape, n);
    case OP_MATMUL: {
        Shape a = in0;
        int64_t k = v->attr.i[2] ? count_(a, n) / a.d[a.rank - 1] : a.d[a.rank - (v->attr.i[0] ? 2 : 1)];
        if (k == DIM_B) k = n;
        return 2 * count_(v->shape, n) * k;
    }
    case OP_CONV2D:
    case OP_CONV2D_BWD_DATA:
    case OP_CONV2D_BWD_FILTER: {
        Shape y = v->op == OP_CONV2D ? v->shape : v->op == OP_CONV2D_BWD_DATA ? in0 : g->v[v->in[1]].shape;
        Shape w = v->op == OP_CONV2D ? g->v[v->in[1]].shape : v->op == OP_CONV2D_BWD_DATA ? g->v[v->in[1]].shape : v->shape;
        return 2 * count_(y, n) * w.d[0] * w.d[1] * w.d[2];
    }
    case OP_LSTM_SEQ: /* the recurrent product and about 20 operations per unit and step */
    case OP_LSTM_SEQ_BWD: {
        int64_t u = v->attr.i[0], bt = count_(v->shape, n) / (v->shape.d[2]);
        return (v->op == OP_LSTM_SEQ ? 1 : 1) * bt * (8 * u * u + 20 * u);
    }
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D: return count_(v->shape, n) * v->attr.i[0] * v->attr.i[1];
    case OP_MAXPOOL2D_BWD:
    case OP_AVGPOOL2D_BWD: return count_(g->v[v->in[v->nin - 1]].shape, n) * v->attr.i[0] * v->attr.i[1];
    default: return 0;
    }
}

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

