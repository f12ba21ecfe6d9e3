/* kernel.c: the target-neutral kernel description (kernel.h): loop nests and fused groups. */
#include "kernel.h"
#include "ops.h"

#include <string.h>

/* full[k][i]: operand k (right-aligned, NumPy style) has dim i of `loop` at full extent */
LoopNest loop_nest_make(Shape loop, const Shape *ops, int nops)
{
    NNC_ASSERT(nops <= KERNEL_MAX_OPERANDS);
    LoopNest d = {.nops = nops};
    for (int i = 0; i < loop.rank; i++) {
        if (loop.d[i] == 1) continue;
        bool f[KERNEL_MAX_OPERANDS];
        for (int k = 0; k < nops; k++) {
            int j = i - (loop.rank - ops[k].rank);
            f[k] = j >= 0 && ops[k].d[j] == loop.d[i];
        }
        bool same = d.rank > 0;
        for (int k = 0; same && k < nops; k++) same = d.full[k][d.rank - 1] == f[k];
        if (same) {
            if (loop.d[i] == DIM_B) d.batch[d.rank - 1] = true; /* cannot happen: the batch axis is first */
            else d.ext[d.rank - 1] *= loop.d[i];
            continue;
        }
        d.batch[d.rank] = loop.d[i] == DIM_B;
        d.ext[d.rank] = loop.d[i] == DIM_B ? 1 : loop.d[i];
        for (int k = 0; k < nops; k++) d.full[k][d.rank] = f[k];
        d.rank++;
    }
    return d;
}

Index loop_nest_index(const LoopNest *d, int operand)
{
    Index x = {0};
    for (int j = 0; j < d->rank; j++) {
        if (!d->full[operand][j]) continue;
        int64_t stride = 1;
        for (int jj = j + 1; jj < d->rank; jj++)
            if (d->full[operand][jj]) stride *= d->ext[jj];
        x.var[x.n] = j;
        x.stride[x.n++] = stride;
    }
    return x;
}

Buffer kernel_buffer(const Model *m, const Plan *p, int id)
{
    int base = plan_base(p, id);
    const Store *s = &p->store[base];
    const Value *v = &p->g->v[base];
    Buffer b = {.value = base, .tensor = -1, .index = -1};
    switch (s->kind) {
    case SK_ARENA: b.space = SPACE_ARENA, b.offset = s->offset; break;
    case SK_INPUT: b.space = SPACE_INPUT, b.index = v->tensor, b.target = v->attr.i[0] != 0; break;
    case SK_TENSOR:
        b.tensor = s->tensor;
        b.space = m->tensors.data[s->tensor].kind == TK_PARAM ? SPACE_PARAM : SPACE_STATE;
        break;
    case SK_CONST: b.space = SPACE_CONST; break;
    default: NNC_UNREACHABLE(); /* fused values and views have no memory of their own */
    }
    return b;
}

ConvShape kernel_conv_shape(const Attr *a, Shape x, Shape w, Shape y)
{
    int64_t g = conv_attr(a, CONV_GROUPS);
    return (ConvShape){.H = x.d[1], .W = x.d[2], .C = x.d[3], .KH = w.d[0], .KW = w.d[1], .F = w.d[3], .HO = y.d[1],
                       .WO = y.d[2], .sh = a->i[2], .sw = a->i[3], .pt = a->i[4], .pl = a->i[5], .G = g, .Cg = w.d[2],
                       .Fg = w.d[3] / g, .dh = conv_attr(a, CONV_DIL_H), .dw = conv_attr(a, CONV_DIL_W)};
}

PoolShape kernel_pool_shape(const Attr *a, Shape x, Shape y)
{
    return (PoolShape){.H = x.d[1], .W = x.d[2], .C = x.d[3], .KH = a->i[0], .KW = a->i[1], .HO = y.d[1], .WO = y.d[2],
                       .sh = a->i[2], .sw = a->i[3], .pt = a->i[4], .pl = a->i[5],
                       .count_pad = a->i[POOL_COUNT_PAD] != 0};
}

Reduction kernel_reduction(const Graph *g, int id, Shape in)
{
    const Value *v = &g->v[id];
    NNC_ASSERT(op_has(v->op, F_REDUCE));
    Shape red = {0};
    for (int i = 0; i < in.rank; i++)
        if ((uint64_t)v->attr.i[0] >> i & 1) red.d[red.rank++] = in.d[i];
    return (Reduction){.op = v->op, .max = v->op == OP_MAX, .mean = v->op == OP_MEAN, .outputs = extent_count(v->shape),
                       .count = extent_count(red)};
}

/* ---- fused groups ---------------------------------------------------------------------------------- */
bool kernel_fused_has(const Graph *g, const FusedKernel *f, int id)
{
    for (int i = 0; i < f->nroots; i++)
        if (id == f->roots[i] || g->v[id].group == f->roots[i]) return true;
    return false;
}

static bool literal_(const Plan *p, int id)
{
    const Store *s = &p->store[plan_base(p, id)];
    return s->kind == SK_CONST && s->literal;
}

static int ext_slot_(FusedKernel *f, int id)
{
    for (int k = 0; k < f->next; k++)
        if (f->ext[k] == id) return k;
    NNC_ASSERT(f->next < KERNEL_MAX_OPERANDS - 3);
    f->ext[f->next] = id;
    return f->next++;
}

/* the values the kernel reads: every input of a member that is not itself a member or a literal */
static void collect_externals_(const Graph *g, const Plan *p, FusedKernel *f)
{
    for (int m = 0; m < f->nmembers; m++) {
        const Value *v = &g->v[f->members[m]];
        if (f->members[m] == f->anchor) continue;
        for (int k = 0; k < v->nin; k++)
            if (!kernel_fused_has(g, f, v->in[k]) && !literal_(p, v->in[k])) ext_slot_(f, v->in[k]);
    }
}

/* the values computed in root's kernel, in id order, and its anchor; with the reductions computed in
 * its loops (Value.with) and their members */
bool kernel_fused_make(const Graph *g, const Plan *p, int root, int lo, FusedKernel *f)
{
    memset(f, 0, sizeof *f);
    f->root = root;
    f->anchor = -1;
    for (int id = lo; id <= root; id++)
        if (id == root || (g->v[id].with >= 0 && graph_loops_of(g, id) == root)) {
            NNC_ASSERT(f->nroots < KERNEL_MAX_ROOTS);
            f->roots[f->nroots++] = id;
        }
    for (int id = lo; id <= root; id++) {
        if (!kernel_fused_has(g, f, id)) continue;
        NNC_ASSERT(f->nmembers < KERNEL_MAX_MEMBERS - 1);
        f->members[f->nmembers++] = id;
        if (!op_has(g->v[id].op, F_EW)) f->anchor = id == root || g->v[id].group < 0 ? f->anchor : id;
    }
    if (f->nmembers == 1) return false;
    f->reduce = !op_has(g->v[root].op, F_EW);
    collect_externals_(g, p, f);
    return true;
}

KExpr *kernel_fused_expr(const Graph *g, const Plan *p, const FusedKernel *f, int id, Arena *a)
{
    KExpr *x = arena_alloc(a, sizeof *x); /* zeroed */
    x->value = id;
    if (id == f->anchor) {
        x->kind = KEXPR_ANCHOR;
    } else if (!kernel_fused_has(g, f, id)) {
        x->kind = literal_(p, id) ? KEXPR_LITERAL : KEXPR_LOAD;
        x->operand = -1;
        for (int k = 0; k < f->next && x->kind == KEXPR_LOAD; k++)
            if (f->ext[k] == id) x->operand = k;
        NNC_ASSERT(x->kind == KEXPR_LITERAL || x->operand >= 0);
    } else {
        const Value *v = &g->v[id];
        NNC_ASSERT(v->nin <= 4);
        x->kind = KEXPR_OP;
        x->nargs = v->nin;
        for (int k = 0; k < v->nin; k++) x->arg[k] = kernel_fused_expr(g, p, f, v->in[k], a);
    }
    return x;
}
