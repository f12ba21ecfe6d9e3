/* pass_const_tensors.c: tensors whose values are known and that nothing writes become constants.
 *
 * Requires: a verified graph of an entry point that writes none of the tensors marked. Gives: each read
 * of a marked tensor (OP_TENSOR t, is_const[t]) replaced by a constant with the tensor's values
 * (Init.values), the tensor's number kept in Value.tensor; the passes after it fold what only depends on
 * them (batchnorm's 1 / sqrt(var + eps) at compile time instead of in every predict). Used for firmware
 * models compiled with --weights --inference, whose weights are const arrays anyway: the C printer names
 * such a constant by its tensor's const array, so no value is stored twice.
 */
#include "passes.h"
#include "rewrite.h"

static int const_value_(Rewrite *rw, int old)
{
    const bool *is_const = rw->ctx;
    const Value *v = &rw->from->v[old];
    if (v->op != OP_TENSOR || !is_const[v->tensor] || v->dtype != DT_F32) return rw_copy(rw, old);
    const Tensor *t = &rw->from->model->tensors.data[v->tensor];
    if (t->init.kind != INIT_VALUES || !t->init.values) return rw_copy(rw, old);
    Attr a = {.data = t->init.values};
    int id = graph_add_typed(rw->to, OP_CONST, NULL, 0, &a, v->dtype, v->shape, v->tensor, v->loc);
    if (!rw->to->v[id].name) rw->to->v[id].name = v->name;
    return id;
}

void pass_const_tensors(Graph *g, const bool *is_const) { graph_rewrite(g, const_value_, (void *)is_const, g->hashcons); }
