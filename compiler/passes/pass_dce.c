/* pass_dce.c: dead-code elimination.
 *
 * Requires: a verified graph. Gives: only the values the entry point's roots (its outputs, loss, metrics
 * and writes of model state) need. Values computed by lowering or autodiff for nothing are dropped.
 */
#include "passes.h"
#include "rewrite.h"

void pass_dce(Graph *g) { graph_rewrite(g, NULL, NULL, g->hashcons); }
