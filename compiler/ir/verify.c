/* verify.c: the IR verifier (see verify.h). It recomputes every value's shape from its inputs. */
#include "verify.h"
#include "ops.h"

#include <string.h>

static void fail_(Graph *g, int id, const char *what)
{
    fprintf(stderr, "nnc: internal error: IR verification failed at value %%%d: %s\n", id, what);
    value_print(g, id, stderr);
    for (int k = 0; k < g->v[id].nin; k++)
        if (g->v[id].in[k] >= 0 && g->v[id].in[k] < g->n) value_print(g, g->v[id].in[k], stderr);
    NNC_UNREACHABLE();
}

void verify_graph(Graph *g)
{
    for (int id = 0; id < g->n; id++) {
        Value *v = &g->v[id];
        int arity = op_info[v->op].arity;
        if (arity >= 0 ? v->nin != arity : v->nin < 1) fail_(g, id, "wrong number of inputs");
        for (int k = 0; k < v->nin; k++)
            if (v->in[k] < 0 || v->in[k] >= id) fail_(g, id, "an input does not precede its user");
        if (op_has(v->op, F_SOURCE) || v->op == OP_ASSIGN) continue;
        Value w = *v;
        if (!shape_rules[v->op](g, &w)) fail_(g, id, "the shape rule rejects the value");
        if (w.dtype != v->dtype || !shape_eq(w.shape, v->shape)) fail_(g, id, "type or shape differs from its rule");
    }
}
