/* pass_fuse.c: operator fusion.
 *
 * Requires: a verified graph, after every rewriting pass (it annotates, it does not rewrite). Gives:
 * Value.group set for every value that is computed inside another value's kernel instead of its own:
 *   - chains of elementwise ops of one shape become one loop (the forward and the backward alike);
 *   - an elementwise tail (bias, activation, scale/shift) goes into the epilogue of the matmul or conv2d
 *     that feeds it;
 *   - an elementwise chain feeding sum/mean/max is computed as the reduction reads it.
 * A value is fused only into its single consumer, never when it is an output, loss, metric or a value
 * written to the model, and a kernel takes at most MAX_MEMBERS values. Fused values get no memory.
 */
#include "passes.h"

#include <string.h>

enum { MAX_MEMBERS = 48, MAX_EXTERNALS = 8 }; /* the emitter holds 64 values a kernel */

typedef struct Fuse {
    Graph *g;
    int *uses;
    uint8_t *keep; /* must be materialized: a root, or written to a tensor */
    uint8_t *need;
    int members;
    bool has_anchor;
} Fuse;

bool pool_tiles_(const Attr *a, Shape in); /* emit_ops.c */

/* ops whose results can pass through an elementwise tail as they are stored */
static bool anchor_(const Value *v)
{
    if (v->op == OP_MATMUL || v->op == OP_CONV2D) return true;
    return v->op == OP_MAXPOOL2D_BWD && pool_tiles_(&v->attr, v->shape); /* written once per cell */
}
static bool reduce_op_(OpKind op) { return op == OP_SUM || op == OP_MEAN || op == OP_MAX; }

static bool can_join_(Fuse *f, int u, Shape shape)
{
    Value *v = &f->g->v[u];
    return f->need[u] && !f->keep[u] && f->uses[u] == 1 && v->group < 0 && shape_eq(v->shape, shape) &&
           f->members < MAX_MEMBERS && !op_has(v->op, F_SOURCE | F_VIEW | F_EFFECT | F_HIGH);
}

/* the distinct values root's kernel would read from memory if u joined it */
static int externals_(Fuse *f, int root, int u)
{
    Graph *g = f->g;
    int seen[MAX_MEMBERS * 4], n = 0;
    for (int m = u < root ? u : root; m <= root; m++) {
        Value *v = &g->v[m];
        if (m != root && m != u && v->group != root) continue;
        if (!op_has(v->op, F_EW) && m != root) continue; /* an anchor's inputs are its own arguments */
        for (int k = 0; k < v->nin; k++) {
            int x = v->in[k];
            if (x == u || x == root || g->v[x].group == root || (g->v[x].op == OP_CONST && !g->v[x].attr.data)) continue;
            bool dup = false;
            for (int j = 0; j < n && !dup; j++) dup = seen[j] == x;
            if (!dup && n < MAX_MEMBERS * 4) seen[n++] = x;
        }
    }
    return n;
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
            if (!can_join_(f, u, shape) || externals_(f, root, u) > MAX_EXTERNALS) continue;
            Value *uv = &f->g->v[u];
            if (op_has(uv->op, F_EW)) {
                uv->group = root;
                f->members++;
                vec_push(&stack, u);
            } else if (allow_anchor && !f->has_anchor && anchor_(uv)) {
                uv->group = root;
                f->members++;
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

void pass_fuse(Graph *g)
{
    Fuse f = {.g = g};
    f.uses = xcalloc((size_t)(g->n ? g->n : 1), sizeof(int));
    f.keep = xcalloc((size_t)(g->n ? g->n : 1), 1);
    f.need = xcalloc((size_t)(g->n ? g->n : 1), 1);
    count_uses_(&f);
    for (int id = g->n - 1; id >= 0; id--) {
        Value *v = &g->v[id];
        if (!f.need[id] || v->group >= 0 || op_has(v->op, F_SOURCE | F_VIEW | F_EFFECT)) continue;
        f.members = 0;
        f.has_anchor = false;
        if (op_has(v->op, F_EW))
            absorb_(&f, id, id, v->shape, true);
        else if (reduce_op_(v->op) && can_join_(&f, v->in[0], g->v[v->in[0]].shape) && op_has(g->v[v->in[0]].op, F_EW)) {
            int x = v->in[0];
            g->v[x].group = id;
            f.members = 1;
            absorb_(&f, x, id, g->v[x].shape, false);
        }
    }
    free(f.uses);
    free(f.keep);
    free(f.need);
}
