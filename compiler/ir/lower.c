/* lower.c: from the model's source graph to the graph of one entry point.
 *
 * Requires: a checked model. Gives: a graph with only the values the entry needs, dropout and batchnorm
 * expanded into primitive ops for the mode (training: batch statistics, moving-statistic writes, inverted
 * dropout from the model's generator; inference and eval: moving statistics, dropout is the identity).
 * Copying is in id order, so the new graph's ids are again a valid schedule.
 */
#include "passes.h"
#include "ops.h"

#include <string.h>

const char *const entry_names[ENTRY_COUNT] = {"predict", "eval", "train_step"};

typedef struct Lower {
    Model *m;
    Graph *src, *g;
    int *map;
    bool training;
    int rand_count;
} Lower;

static uint64_t all_but_last_(int rank) { return (((uint64_t)1 << rank) - 1) & ~((uint64_t)1 << (rank - 1)); }

/* batchnorm(x, gamma, beta, moving_mean, moving_var), statistics over every axis but the last */
static int lower_batchnorm_(Lower *L, const Value *v)
{
    Graph *g = L->g;
    Loc loc = v->loc;
    int x = L->map[v->in[0]], gamma = L->map[v->in[1]], beta = L->map[v->in[2]];
    int mm = L->map[v->in[3]], mv = L->map[v->in[4]];
    double momentum = v->attr.f[0], eps = v->attr.f[1];
    int rank = v->shape.rank;
    int mean, var;
    if (L->training) {
        uint64_t axes = all_but_last_(rank);
        mean = ir_reduce(g, OP_MEAN, x, axes, true, loc);
        int xc = ir_binary(g, OP_SUB, x, mean, loc);
        var = ir_reduce(g, OP_MEAN, ir_unary(g, OP_SQUARE, xc, loc), axes, true, loc);
        /* moving = momentum * moving + (1 - momentum) * batch, for both statistics (biased variance) */
        Shape cs = g->v[mm].shape;
        int keep = ir_scalar(g, momentum, loc), take = ir_scalar(g, 1 - momentum, loc);
        int stats[2] = {mean, var}, moving[2] = {mm, mv};
        for (int k = 0; k < 2; k++) {
            int batch = ir_reshape(g, stats[k], cs, loc);
            int upd = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, keep, moving[k], loc),
                                ir_binary(g, OP_MUL, take, batch, loc), loc);
            ir_assign(g, upd, g->v[moving[k]].tensor, loc);
        }
        int inv = ir_binary(g, OP_DIV, ir_scalar(g, 1, loc),
                            ir_unary(g, OP_SQRT, ir_binary(g, OP_ADD, var, ir_scalar(g, eps, loc), loc), loc), loc);
        int xhat = ir_binary(g, OP_MUL, xc, inv, loc);
        return ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, xhat, gamma, loc), beta, loc);
    }
    int inv = ir_binary(g, OP_DIV, ir_scalar(g, 1, loc),
                        ir_unary(g, OP_SQRT, ir_binary(g, OP_ADD, mv, ir_scalar(g, eps, loc), loc), loc), loc);
    int xhat = ir_binary(g, OP_MUL, ir_binary(g, OP_SUB, x, mm, loc), inv, loc);
    return ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, xhat, gamma, loc), beta, loc);
}

/* inverted dropout: keep with probability 1 - rate, scale kept values by 1 / (1 - rate) */
static int lower_dropout_(Lower *L, const Value *v)
{
    int x = L->map[v->in[0]];
    if (!L->training) return x;
    Graph *g = L->g;
    double rate = v->attr.f[0];
    Attr a = {.i = {L->rand_count++}};
    int u = graph_add_typed(g, OP_RAND_UNIFORM, NULL, 0, &a, DT_F32, v->shape, -1, v->loc);
    int keep = ir_binary(g, OP_GE, u, ir_scalar(g, rate, v->loc), v->loc);
    int scaled = ir_binary(g, OP_MUL, keep, ir_scalar(g, 1.0 / (1.0 - rate), v->loc), v->loc);
    return ir_binary(g, OP_MUL, x, scaled, v->loc);
}

static int copy_value_(Lower *L, int id)
{
    const Value *v = &L->src->v[id];
    if (v->op == OP_BATCHNORM) return lower_batchnorm_(L, v);
    if (v->op == OP_DROPOUT) return lower_dropout_(L, v);
    int in[64], *ins = v->nin <= 64 ? in : xmalloc(sizeof(int) * (size_t)v->nin);
    for (int k = 0; k < v->nin; k++) ins[k] = L->map[v->in[k]];
    int r = graph_add_typed(L->g, v->op, ins, v->nin, &v->attr, v->dtype, v->shape, v->tensor, v->loc);
    if (ins != in) free(ins);
    L->g->v[r].name = v->name;
    return r;
}

/* Mark what the roots need, then copy it in id order. */
static void copy_needed_(Lower *L, const int *roots, int nroots)
{
    Graph *src = L->src;
    uint8_t *need = xcalloc((size_t)src->n, 1);
    for (int i = 0; i < nroots; i++)
        if (roots[i] >= 0) need[roots[i]] = 1;
    for (int id = src->n - 1; id >= 0; id--)
        if (need[id])
            for (int k = 0; k < src->v[id].nin; k++) need[src->v[id].in[k]] = 1;
    for (int id = 0; id < src->n; id++)
        if (need[id]) L->map[id] = copy_value_(L, id);
    free(need);
}

Graph *lower_entry(Model *m, EntryKind e, bool hashcons)
{
    Lower L = {.m = m, .src = m->graph, .training = e == ENTRY_TRAIN};
    L.g = graph_new(m, m->arena);
    L.g->hashcons = hashcons;
    L.g->training = L.training;
    L.map = xmalloc(sizeof(int) * (size_t)(L.src->n ? L.src->n : 1));
    memset(L.map, -1, sizeof(int) * (size_t)(L.src->n ? L.src->n : 1));
    VEC(int) roots = {0};
    if (e == ENTRY_PREDICT) {
        for (int i = 0; i < m->outputs.len; i++) vec_push(&roots, m->outputs.data[i].value);
    } else {
        vec_push(&roots, m->loss);
        for (int i = 0; i < m->metrics.len; i++) vec_push(&roots, m->metrics.data[i].value);
    }
    copy_needed_(&L, roots.data, roots.len);
    if (e == ENTRY_PREDICT) {
        for (int i = 0; i < m->outputs.len; i++) graph_add_root(L.g, ROOT_OUTPUT, L.map[roots.data[i]], i);
    } else {
        graph_add_root(L.g, ROOT_LOSS, L.map[roots.data[0]], 0);
        for (int i = 0; i < m->metrics.len; i++) graph_add_root(L.g, ROOT_METRIC, L.map[roots.data[i + 1]], i);
    }
    vec_free(&roots);
    free(L.map);
    return L.g;
}
