/* check.h: the front end's entry point: a parsed program in, the checked model (with its source graph)
 * out, or NULL when errors were reported. */
#ifndef NNC_CHECK_H
#define NNC_CHECK_H

#include "ast.h"
#include "ir.h"

/* model_name NULL: the only model in the file. */
Model *check_program(Program *p, const char *model_name, Arena *a);
/* true when a model may not be named `name` (its C identifiers would clash with C or the generated code) */
bool check_model_name_reserved(const char *name);
const char *suggest_among(const char *name, const char *const *cands, int n);

#endif
