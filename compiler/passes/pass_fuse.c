/* pass_fuse.c: operator fusion.
 *
 * Requires: a verified graph, after every rewriting pass (it annotates, it does not rewrite). Gives:
 * Value.group set for every value that is computed inside another value's kernel instead of its own:
 *   - chains of elementwise ops of one shape become one loop (the forward and the backward alike);
 *   - an elementwise tail (bias, activation, scale/shift) goes into the epilogue of the matmul or conv2d
 *     that feeds it;
 *   - an elementwise chain feeding sum/mean/max is computed as the reduction reads it;
 *   - sums and means over the same loops share them (Value.with), when nothing reads the earlier ones
 *     before the last is computed.
 * A value is fused only into its single consumer, never when it is an output, loss, metric or a value
 * written to the model. How much one kernel may hold is the target's (FusionLimits, target.h): members,
 * values read from memory, the size of a recomputed expression, reductions sharing loops. Fused values get
 * no memory.
 */
#include "passes.h"
#include "rewrite.h"

#include <string.h>

typedef struct Fuse {
    Graph *g;
    const FusionLimits *lim;
    int *scratch; /* lim->members * 4 + lim->shared_inputs + 1 ints for kernel_inputs_ */
    int *uses;
    uint8_t *keep; /* must be materialized: a root, or written to a tensor */
    uint8_t *need;
    int members;
    int lo;        /* the lowest id among the current root's members: its kernel lies in [lo, root] */
    int *group_lo; /* after fusion: the lowest id of each root's kernel */
    bool has_anchor;
} Fuse;

/* ops whose results can pass through an elementwise tail as they are stored (F_EPILOGUE) */
static bool anchor_(const Value *v)
{
    if (!op_has(v->op, F_EPILOGUE)) return false;
    return v->op != OP_MAXPOOL2D_BWD || pool2d_tiles(&v->attr, v->shape); /* written once per cell */
}
static bool reduce_op_(OpKind op) { return op_has(op, F_REDUCE); }

static bool can_join_(Fuse *f, int u, Shape shape)
{
    Value *v = &f->g->v[u];
    return f->need[u] && !f->keep[u] && f->uses[u] == 1 && v->group < 0 && shape_eq(v->shape, shape) &&
           f->members < f->lim->members && !op_has(v->op, F_SOURCE | F_VIEW | F_EFFECT | F_HIGH);
}

/* add to set[0..n) the distinct values root's kernel reads from memory, counting u (if >= 0) as one of
 * its members; an anchor's inputs are its own arguments. Members have ids in [lo, root] (a producer
 * precedes its readers), so the scan is bounded by the kernel, not the graph: a chain of 100k
 * elementwise ops fuses in linear time. Returns the new n, at most cap. */
static int kernel_inputs_(const Graph *g, int root, int u, int lo, int *set, int n, int cap)
{
    if (u >= 0 && u < lo) lo = u;
    for (int m = lo; m <= root; m++) {
        const Value *v = &g->v[m];
        if (m != root && m != u && v->group != root) continue;
        if (!op_has(v->op, F_EW) && m != root) continue;
        for (int k = 0; k < v->nin; k++) {
            int x = v->in[k];
            if (x == u || x == root || g->v[x].group == root || (g->v[x].op == OP_CONST && !g->v[x].attr.data)) continue;
            bool dup = false;
            for (int j = 0; j < n && !dup; j++) dup = set[j] == x;
            if (!dup && n < cap) set[n++] = x;
        }
    }
    return n;
}

/* the distinct values root's kernel would read from memory if u joined it */
static int externals_(Fuse *f, int root, int u)
{
    return kernel_inputs_(f->g, root, u, f->lo, f->scratch, 0, f->lim->members * 4);
}

/* pull the producers of x into root's kernel: elementwise ones recursively, and one anchor */
static void absorb_(Fuse *f, int x, int root, Shape shape, bool allow_anchor)
{
    VEC(int) stack = {0};
    vec_push(&stack, x);
    while (stack.len) {
        Value *v = &f->g->v[stack.data[--stack.len]];
        for (int k = 0; k < v->nin; k++) {
            int u = v->in[k];
            if (!can_join_(f, u, shape) || externals_(f, root, u) > f->lim->externals) continue;
            Value *uv = &f->g->v[u];
            if (op_has(uv->op, F_EW)) {
                uv->group = root;
                f->members++;
                if (u < f->lo) f->lo = u;
                vec_push(&stack, u);
            } else if (allow_anchor && !f->has_anchor && anchor_(uv)) {
                uv->group = root;
                f->members++;
                if (u < f->lo) f->lo = u;
                f->has_anchor = true;
            }
        }
    }
    vec_free(&stack);
}

static void count_uses_(Fuse *f)
{
    Graph *g = f->g;
    for (int i = 0; i < g->roots.len; i++) f->need[g->roots.data[i].id] = f->keep[g->roots.data[i].id] = 1;
    for (int id = g->n - 1; id >= 0; id--) {
        if (!f->need[id]) continue;
        Value *v = &g->v[id];
        for (int k = 0; k < v->nin; k++) {
            f->need[v->in[k]] = 1;
            f->uses[v->in[k]]++;
            if (v->op == OP_ASSIGN || op_has(v->op, F_VIEW)) f->keep[v->in[k]] = 1;
        }
    }
}

/* the use counts of f->g, and which values must stay materialized */
static void fuse_open_(Fuse *f)
{
    size_t n = (size_t)(f->g->n ? f->g->n : 1);
    f->uses = xcalloc(n, sizeof(int));
    f->keep = xcalloc(n, 1);
    f->need = xcalloc(n, 1);
    f->scratch = xmalloc(sizeof(int) * (size_t)(f->lim->members * 4 + f->lim->shared_inputs + 1));
    count_uses_(f);
}

static void fuse_close_(Fuse *f)
{
    free(f->uses);
    free(f->keep);
    free(f->need);
    free(f->scratch);
}

/* ---- recomputation ---------------------------------------------------------------------------------
 * A cheap elementwise value read by several elementwise ops of its shape, or by reductions, is computed
 * again inside each reader instead of once into memory: a few adds cost less than a store and the loads
 * that follow, and each copy then fuses into its reader. Copies compute bit-identical values. */
typedef struct Recompute {
    Fuse *f;
    uint8_t *inl;   /* may be recomputed in its readers */
    int *cost;      /* ops in its expression, counting the inputs recomputed with it */
} Recompute;

static bool cheap_op_(OpKind op) { return op_has(op, F_CHEAP); }

/* every reader of id computes an element of id's shape from the same element of id */
static void mark_readers_(Recompute *r, uint8_t *ok)
{
    Graph *g = r->f->g;
    for (int id = 0; id < g->n; id++) ok[id] = 1;
    for (int id = 0; id < g->n; id++) {
        Value *v = &g->v[id];
        if (!r->f->need[id]) continue;
        for (int k = 0; k < v->nin; k++) {
            Value *x = &g->v[v->in[k]];
            bool same = op_has(v->op, F_EW) && shape_eq(v->shape, x->shape);
            if (!same && !(reduce_op_(v->op) && k == 0)) ok[v->in[k]] = 0;
        }
    }
}

static void mark_inlinable_(Recompute *r)
{
    Graph *g = r->f->g;
    uint8_t *ok = xcalloc((size_t)g->n, 1);
    mark_readers_(r, ok);
    for (int id = 0; id < g->n; id++) {
        Value *v = &g->v[id];
        if (!r->f->need[id] || r->f->keep[id] || !ok[id] || !cheap_op_(v->op) || !op_has(v->op, F_EW)) continue;
        int cost = 1;
        for (int k = 0; k < v->nin; k++)
            if (r->inl[v->in[k]]) cost += r->cost[v->in[k]];
        if (cost > r->f->lim->recompute) continue; /* ops in one recomputed expression */
        r->inl[id] = 1;
        r->cost[id] = cost;
    }
    free(ok);
}

/* a fresh copy of old's expression, its recomputable inputs copied with it */
static int clone_(Rewrite *rw, int old)
{
    Recompute *r = rw->ctx;
    Value *v = &rw->from->v[old];
    int in[4];
    NNC_ASSERT(v->nin <= 4);
    for (int k = 0; k < v->nin; k++) in[k] = r->inl[v->in[k]] ? clone_(rw, v->in[k]) : rw->map[v->in[k]];
    int id = graph_add_typed(rw->to, v->op, in, v->nin, &v->attr, v->dtype, v->shape, v->tensor, v->loc);
    if (!rw->to->v[id].name) rw->to->v[id].name = v->name;
    return id;
}

static int recompute_(Rewrite *rw, int old)
{
    Recompute *r = rw->ctx;
    Value *v = &rw->from->v[old];
    bool any = false;
    for (int k = 0; k < v->nin; k++) any |= r->inl[v->in[k]] && r->f->uses[v->in[k]] > 1;
    if (!any || v->nin > 4) return rw_copy(rw, old);
    int in[4];
    for (int k = 0; k < v->nin; k++) {
        int x = v->in[k];
        in[k] = r->inl[x] && r->f->uses[x] > 1 ? clone_(rw, x) : rw->map[x];
    }
    int id = graph_add_typed(rw->to, v->op, in, v->nin, &v->attr, v->dtype, v->shape, v->tensor, v->loc);
    if (!rw->to->v[id].name) rw->to->v[id].name = v->name;
    return id;
}

static void recompute_cheap_values_(Graph *g, const FusionLimits *lim)
{
    Fuse f = {.g = g, .lim = lim};
    fuse_open_(&f);
    Recompute r = {.f = &f};
    r.inl = xcalloc((size_t)(g->n ? g->n : 1), 1);
    r.cost = xcalloc((size_t)(g->n ? g->n : 1), sizeof(int));
    mark_inlinable_(&r);
    bool any = false;
    for (int id = 0; id < g->n && !any; id++) any = r.inl[id] && f.uses[id] > 1;
    if (any) {
        graph_rewrite(g, recompute_, &r, false);
        graph_rewrite(g, NULL, NULL, false); /* drops the originals every reader replaced */
    }
    free(r.inl);
    free(r.cost);
    fuse_close_(&f);
}

/* ---- reductions that share their loops -----------------------------------------------------------
 * Sums and means over the same loops (one input shape, the same axes) go into one kernel when no kernel
 * reads the earlier results before the last of them is computed: the loss, a bias gradient and the
 * gradient of a one-column weight then read their rows once instead of once each. The earlier ones get
 * Value.with = the next one; the whole set is computed where the last one is (plan.c, emit_ops.c). */
static int view_base_(const Graph *g, int id)
{
    while (op_has(g->v[id].op, F_VIEW)) id = g->v[id].in[0];
    return id;
}

/* first[x]: the first kernel that reads x's memory, through views; g->n when only the end reads it */
static int *first_readers_(Fuse *f)
{
    Graph *g = f->g;
    int *first = xmalloc(sizeof(int) * (size_t)(g->n ? g->n : 1));
    for (int id = 0; id < g->n; id++) first[id] = g->n;
    for (int id = 0; id < g->n; id++) {
        Value *v = &g->v[id];
        if (!f->need[id] || op_has(v->op, F_VIEW) || v->op == OP_ASSIGN) continue;
        for (int k = 0; k < v->nin; k++) {
            int b = view_base_(g, v->in[k]);
            if (graph_kernel_of(g, id) < first[b]) first[b] = graph_kernel_of(g, id);
        }
    }
    return first;
}

static bool sum_root_(Fuse *f, int id)
{
    const Value *v = &f->g->v[id];
    return f->need[id] && v->group < 0 && (v->op == OP_SUM || v->op == OP_MEAN) && v->dtype == DT_F32;
}

/* the reduced axes of id's input, less those of extent 1 (a mean to a scalar and a sum that keeps
 * dims run the same loops) */
static uint64_t reduced_axes_(const Graph *g, int id)
{
    Shape in = g->v[g->v[id].in[0]].shape;
    uint64_t axes = (uint64_t)g->v[id].attr.i[0];
    for (int i = 0; i < in.rank; i++)
        if (in.d[i] == 1) axes &= ~((uint64_t)1 << i);
    return axes;
}

/* can reduction b be computed in the loops of head, the last of a chain of reductions before b? */
static bool can_share_(Fuse *f, int head, int b, const int *chain_first, const int *chain_len)
{
    Graph *g = f->g;
    Value *h = &g->v[head], *v = &g->v[b];
    if (!shape_eq(g->v[h->in[0]].shape, g->v[v->in[0]].shape) || reduced_axes_(g, head) != reduced_axes_(g, b)) return false;
    if (chain_first[head] <= b || chain_len[head] >= f->lim->shared) return false;
    int cap = f->lim->shared_inputs + 1, *set = f->scratch, n = kernel_inputs_(g, b, -1, f->group_lo[b], set, 0, cap);
    for (int r = head; r >= 0 && n <= f->lim->shared_inputs; r--)
        if (r == head || (g->v[r].with >= 0 && graph_loops_of(g, r) == head))
            n = kernel_inputs_(g, r, -1, f->group_lo[r], set, n, cap);
    return n <= f->lim->shared_inputs;
}

static void share_reduction_loops_(Fuse *f)
{
    Graph *g = f->g;
    int *first = first_readers_(f);
    int *chain_first = xmalloc(sizeof(int) * (size_t)(g->n ? g->n : 1));
    int *chain_len = xcalloc((size_t)(g->n ? g->n : 1), sizeof(int));
    f->group_lo = xmalloc(sizeof(int) * (size_t)(g->n ? g->n : 1));
    for (int id = 0; id < g->n; id++) f->group_lo[id] = id;
    for (int id = 0; id < g->n; id++)
        if (g->v[id].group >= 0 && id < f->group_lo[g->v[id].group]) f->group_lo[g->v[id].group] = id;
    VEC(int) heads = {0};
    for (int b = 0; b < g->n; b++) {
        if (!sum_root_(f, b)) continue;
        chain_first[b] = first[b];
        chain_len[b] = 1;
        for (int i = heads.len - 1; i >= 0; i--) {
            int h = heads.data[i];
            if (!can_share_(f, h, b, chain_first, chain_len)) continue;
            g->v[h].with = b;
            chain_first[b] = chain_first[h] < first[b] ? chain_first[h] : first[b];
            chain_len[b] = chain_len[h] + 1;
            heads.data[i] = heads.data[--heads.len];
            break;
        }
        vec_push(&heads, b);
    }
    vec_free(&heads);
    free(chain_first);
    free(chain_len);
    free(f->group_lo);
    free(first);
}

/* ---- a convolution inside the pooling that reads it -------------------------------------------------
 * With tiling windows (stride = window, no padding) every convolution output is read by one window once:
 * the pooling's kernel computes each window's outputs, through the convolution's tail (bias, activation),
 * and keeps only their max or mean. The convolution's kernel keeps its members (Value.group = the
 * convolution's root); that root's group is the pooling (graph_kernel_of follows the chain). */

/* the conv2d anchoring root's kernel (root itself when bare), or -1 */
static int conv_anchor_(const Graph *g, int root)
{
    if (g->v[root].op == OP_CONV2D) return root;
    if (!op_has(g->v[root].op, F_EW)) return -1;
    int anchor = -1;
    for (int m = 0; m < root; m++) {
        if (g->v[m].group != root) continue;
        if (g->v[m].op == OP_CONV2D) anchor = m;
        else if (!op_has(g->v[m].op, F_EW)) return -1;
    }
    return anchor;
}

static void conv_into_pool_(Fuse *f)
{
    Graph *g = f->g;
    for (int id = 0; id < g->n; id++) {
        Value *v = &g->v[id];
        if (!f->need[id] || v->group >= 0 || (v->op != OP_MAXPOOL2D && v->op != OP_AVGPOOL2D)) continue;
        int x = v->in[0];
        Value *xv = &g->v[x];
        if (f->keep[x] || f->uses[x] != 1 || xv->group >= 0 || xv->with >= 0 || !pool2d_tiles(&v->attr, xv->shape)) continue;
        int anchor = conv_anchor_(g, x);
        /* the tail reads, besides the map, only per-filter vectors and scalars: what the printer indexes by
         * filter alone */
        if (anchor < 0 || conv_attr(&g->v[anchor].attr, CONV_GROUPS) != 1 ||
            !graph_tail_reads(g, x, anchor, 1u << ROW_LAST | 1u << ROW_ONE))
            continue;
        xv->group = id;
    }
}

void pass_fuse(Graph *g, const FusionLimits *lim)
{
    recompute_cheap_values_(g, lim);
    Fuse f = {.g = g, .lim = lim};
    fuse_open_(&f);
    for (int id = g->n - 1; id >= 0; id--) {
        Value *v = &g->v[id];
        if (!f.need[id] || v->group >= 0 || op_has(v->op, F_SOURCE | F_VIEW | F_EFFECT)) continue;
        f.members = 0;
        f.lo = id;
        f.has_anchor = false;
        if (op_has(v->op, F_EW))
            absorb_(&f, id, id, v->shape, true);
        else if (reduce_op_(v->op) && can_join_(&f, v->in[0], g->v[v->in[0]].shape) && op_has(g->v[v->in[0]].op, F_EW)) {
            int x = v->in[0];
            g->v[x].group = id;
            f.members = 1;
            f.lo = x;
            absorb_(&f, x, id, g->v[x].shape, false);
        }
    }
    share_reduction_loops_(&f);
    if (lim->conv_into_pool) conv_into_pool_(&f);
    fuse_close_(&f);
}
