/* rewrite.h: copying a graph with replacements (see rewrite.c). */
#ifndef NNC_REWRITE_H
#define NNC_REWRITE_H

#include "ops.h"

typedef struct Rewrite {
    Graph *from, *to;
    int *map; /* old id -> new id, for values copied so far */
    void *ctx;
} Rewrite;

/* Called for each needed old value in id order; returns its replacement's id in rw->to (its inputs are
 * already copied: rw_new_in). rw_copy is the identity. */
typedef int (*RewriteFn)(Rewrite *rw, int old);

int rw_copy(Rewrite *rw, int old);
int rw_new_in(Rewrite *rw, int old, int k);        /* the new id of old value's input k */
const Value *rw_in(Rewrite *rw, int old, int k);   /* and that value */
void graph_rewrite(Graph *g, RewriteFn fn, void *ctx, bool hashcons);

#endif
