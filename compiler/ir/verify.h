/* verify.h: the IR verifier, run between stages. A failure is a compiler bug, never a user error. */
#ifndef NNC_VERIFY_H
#define NNC_VERIFY_H

#include "ir.h"

/* Checks: inputs precede their users, arities match the op table, and every value's type and shape is
 * what its shape rule computes from its inputs. Aborts with an internal error otherwise. */
void verify_graph(Graph *g);

#endif
