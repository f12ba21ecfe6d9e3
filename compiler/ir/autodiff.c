/* autodiff.c: reverse-mode differentiation as a graph-to-graph pass.
 *
 * Requires: a train graph with a ROOT_LOSS (a scalar). Gives: for every trainable parameter, the id of the
 * loss's gradient with respect to it. Gradients are written with ordinary forward ops (ops_grad.c holds
 * each op's rule), so folding, CSE, fusion and memory planning treat the backward graph like any other.
 * A value used several times accumulates the gradients of its uses. Only values on a path from a
 * trainable parameter to the loss get a gradient.
 */
#include "autodiff.h"
#include "passes.h"

#include <stdlib.h>
#include <string.h>

const GradRule grad_rules[OP_COUNT] = {
#define OP(id, name, arity, flags, shape, emit, grad, flops, scalar) [OP_##id] = grad,
#include "ops.def"
#undef OP
};

void ad_accum_slice(AD *ad, int x, int64_t axis, int64_t start, int64_t len, int dy)
{
    if (x >= ad->nforward || !ad->needs[x] || dy < 0) return;
    vec_push(&ad->pieces, ((SlicePiece){.x = x, .axis = axis, .start = start, .len = len, .dy = dy}));
}

static int cmp_piece_(const void *a, const void *b)
{
    const SlicePiece *p = a, *q = b;
    if (p->axis != q->axis) return p->axis < q->axis ? -1 : 1;
    return p->start < q->start ? -1 : p->start > q->start;
}

/* x's slice gradients: one concat when they tile one axis exactly, else each placed into zeros */
static void join_pieces_(AD *ad, int x)
{
    Graph *g = ad->g;
    VEC(SlicePiece) mine = {0};
    for (int i = 0; i < ad->pieces.len; i++)
        if (ad->pieces.data[i].x == x) {
            vec_push(&mine, ad->pieces.data[i]);
            ad->pieces.data[i--] = ad->pieces.data[--ad->pieces.len];
        }
    if (!mine.len) return;
    qsort(mine.data, (size_t)mine.len, sizeof(SlicePiece), cmp_piece_);
    int64_t axis = mine.data[0].axis, end = 0;
    bool tiles = true;
    for (int i = 0; i < mine.len && tiles; i++) {
        tiles = mine.data[i].axis == axis && mine.data[i].start == end;
        end += mine.data[i].len;
    }
    Loc loc = g->v[x].loc;
    if (tiles && end == g->v[x].shape.d[axis] && mine.len > 1) {
        int *ins = xmalloc(sizeof(int) * (size_t)mine.len);
        for (int i = 0; i < mine.len; i++) ins[i] = mine.data[i].dy;
        Attr a = {.i = {axis}};
        ad_accum(ad, x, graph_add(g, OP_CONCAT, ins, mine.len, &a, loc));
        free(ins);
    } else {
        for (int i = 0; i < mine.len; i++) {
            SlicePiece *p = &mine.data[i];
            Attr a = {.i = {p->axis, p->start, 0, g->v[x].shape.d[p->axis]}};
            ad_accum(ad, x, graph_add(g, OP_UNSLICE, &p->dy, 1, &a, loc));
        }
    }
    vec_free(&mine);
}

static int grad_of_(AD *ad, int id)
{
    join_pieces_(ad, id);
    return id < ad->grad.len ? ad->grad.data[id] : -1;
}

int ad_unbroadcast(Graph *g, int dx, Shape s, Loc loc)
{
    Shape d = g->v[dx].shape;
    if (shape_eq(d, s)) return dx;
    uint64_t axes = 0;
    int lead = d.rank - s.rank;
    for (int i = 0; i < d.rank; i++) {
        int j = i - lead;
        if (j < 0 || (s.d[j] == 1 && d.d[i] != 1)) axes |= (uint64_t)1 << i;
    }
    int r = axes ? ir_reduce(g, OP_SUM, dx, axes, true, loc) : dx;
    return ir_reshape(g, r, s, loc);
}

void ad_accum(AD *ad, int x, int dx)
{
    if (x >= ad->nforward || !ad->needs[x] || dx < 0) return;
    Graph *g = ad->g;
    dx = ad_unbroadcast(g, dx, g->v[x].shape, g->v[x].loc);
    while (ad->grad.len <= x) vec_push(&ad->grad, -1);
    int prev = ad->grad.data[x];
    ad->grad.data[x] = prev < 0 ? dx : ir_binary(g, OP_ADD, prev, dx, g->v[x].loc);
}

int ad_count(Graph *g, Shape s, uint64_t axes, Loc loc)
{
    double k = 1;
    bool batch = false;
    for (int i = 0; i < s.rank; i++)
        if (axes >> i & 1) {
            if (s.d[i] == DIM_B) batch = true;
            else k *= (double)s.d[i];
        }
    int c = ir_scalar(g, k, loc);
    if (!batch) return c;
    int n = graph_add_typed(g, OP_BATCH_SIZE, NULL, 0, NULL, DT_F32, shape_scalar(), -1, loc);
    return k == 1 ? n : ir_binary(g, OP_MUL, n, c, loc);
}

/* needs[id]: a trainable parameter flows into value id */
static uint8_t *needs_(Graph *g)
{
    uint8_t *needs = xcalloc((size_t)g->n, 1);
    for (int id = 0; id < g->n; id++) {
        Value *v = &g->v[id];
        if (v->op == OP_TENSOR) needs[id] = g->model->tensors.data[v->tensor].trainable;
        if (op_has(v->op, F_NOGRAD)) continue;
        for (int k = 0; k < v->nin; k++) needs[id] |= needs[v->in[k]];
    }
    return needs;
}

void autodiff(Graph *g, int *grads)
{
    Model *m = g->model;
    int loss = -1;
    for (int i = 0; i < g->roots.len; i++)
        if (g->roots.data[i].kind == ROOT_LOSS) loss = g->roots.data[i].id;
    NNC_ASSERT(loss >= 0 && g->v[loss].shape.rank == 0);
    for (int t = 0; t < m->tensors.len; t++) grads[t] = -1;
    AD ad = {.g = g, .nforward = g->n};
    ad.needs = needs_(g);
    if (ad.needs[loss]) {
        ad_accum(&ad, loss, ir_scalar(g, 1, g->v[loss].loc));
        for (int id = loss; id >= 0; id--) {
            int dy = grad_of_(&ad, id);
            if (dy < 0) continue;
            Value *v = &g->v[id];
            if (v->op == OP_TENSOR) {
                grads[v->tensor] = dy;
                continue;
            }
            if (op_has(v->op, F_NOGRAD | F_SOURCE)) continue;
            grad_rules[v->op](&ad, id, dy);
        }
    }
    free(ad.needs);
    vec_free(&ad.grad);
    vec_free(&ad.pieces);
}
