/* rewrite.c: the one way passes change a graph: copy it, value by value in id order, into a fresh graph,
 * letting a callback replace each value. Only values the roots need are copied, so every rewrite is also
 * dead-code elimination; the fresh graph hash-conses like the old one.
 */
#include "rewrite.h"

#include <string.h>

int rw_copy(Rewrite *rw, int old)
{
    Value *v = &rw->from->v[old];
    int in[64] = {0}, *ins = v->nin <= 64 ? in : xmalloc(sizeof(int) * (size_t)v->nin);
    for (int k = 0; k < v->nin; k++) ins[k] = rw->map[v->in[k]];
    int id = graph_add_typed(rw->to, v->op, v->nin ? ins : NULL, v->nin, &v->attr, v->dtype, v->shape, v->tensor, v->loc);
    if (ins != in) free(ins);
    if (!rw->to->v[id].name) rw->to->v[id].name = v->name;
    return id;
}

const Value *rw_in(Rewrite *rw, int old, int k) { return &rw->to->v[rw->map[rw->from->v[old].in[k]]]; }

int rw_new_in(Rewrite *rw, int old, int k) { return rw->map[rw->from->v[old].in[k]]; }

static uint8_t *reachable_(Graph *g)
{
    uint8_t *need = xcalloc((size_t)(g->n ? g->n : 1), 1);
    for (int i = 0; i < g->roots.len; i++) need[g->roots.data[i].id] = 1;
    for (int id = g->n - 1; id >= 0; id--)
        if (need[id])
            for (int k = 0; k < g->v[id].nin; k++) need[g->v[id].in[k]] = 1;
    return need;
}

void graph_rewrite(Graph *g, RewriteFn fn, void *ctx, bool hashcons)
{
    Graph *to = graph_new(g->model, g->arena);
    to->hashcons = hashcons;
    to->training = g->training;
    Rewrite rw = {.from = g, .to = to, .ctx = ctx};
    rw.map = xmalloc(sizeof(int) * (size_t)(g->n ? g->n : 1));
    uint8_t *need = reachable_(g);
    for (int id = 0; id < g->n; id++) {
        rw.map[id] = -1;
        if (!need[id]) continue;
        if (g->v[id].op == OP_ASSIGN) {
            rw.map[id] = rw_copy(&rw, id);
            continue;
        }
        rw.map[id] = fn ? fn(&rw, id) : rw_copy(&rw, id);
        NNC_ASSERT(rw.map[id] >= 0);
    }
    for (int i = 0; i < g->roots.len; i++) {
        Root r = g->roots.data[i];
        r.id = rw.map[r.id];
        vec_push(&to->roots, r);
    }
    free(need);
    free(rw.map);
    /* the fresh graph takes the old one's place */
    free(g->v);
    free(g->htab);
    vec_free(&g->roots);
    *g = *to;
}
