/* pass_cse.c: common-subexpression elimination.
 *
 * Requires: a verified graph. Gives: one value for each distinct computation: the graph is rebuilt with
 * hash-consing on, the inputs of commutative ops put in id order first, so a+b and b+a meet too.
 * Forward values that the backward pass builds again (the gradient of a sigmoid reads the sigmoid) are
 * merged with the forward ones. Random draws and effects are never merged (their ops say so).
 */
#include "passes.h"
#include "rewrite.h"

static int cse_value_(Rewrite *rw, int old)
{
    const Value *v = &rw->from->v[old];
    if (!op_has(v->op, F_COMM) || v->nin != 2) return rw_copy(rw, old);
    int in[2] = {rw_new_in(rw, old, 0), rw_new_in(rw, old, 1)};
    if (in[0] > in[1]) {
        int t = in[0];
        in[0] = in[1];
        in[1] = t;
    }
    int id = graph_add_typed(rw->to, v->op, in, 2, &v->attr, v->dtype, v->shape, v->tensor, v->loc);
    if (!rw->to->v[id].name) rw->to->v[id].name = v->name;
    return id;
}

void pass_cse(Graph *g) { graph_rewrite(g, cse_value_, NULL, true); }
