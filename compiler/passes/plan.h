/* plan.h: where every value of an entry point lives, and in which order values are computed. */
#ifndef NNC_PLAN_H
#define NNC_PLAN_H

#include "ir.h"

typedef enum StoreKind {
    SK_NONE,   /* not needed */
    SK_ARENA,  /* scratch: offset elements into the arena of its dtype */
    SK_INPUT,  /* an argument of the entry point (input or target) */
    SK_TENSOR, /* a model tensor (struct member) */
    SK_CONST,  /* a static const array, or an inline literal when `literal` */
    SK_VIEW,   /* the memory of value `base` (reshape) */
    SK_FUSED,  /* computed inside another value's kernel: no memory */
} StoreKind;

typedef struct Store {
    StoreKind kind;
    int64_t offset; /* SK_ARENA */
    int64_t size;   /* elements at the maximum batch */
    int base;       /* SK_VIEW: the value whose memory this is (never itself a view) */
    int tensor;     /* SK_TENSOR: the model tensor (a source, or a value computed straight into it) */
    bool literal;   /* SK_CONST scalar written into expressions */
} Store;

typedef struct Plan {
    Graph *g;
    Store *store;     /* per value */
    int *order;       /* the values to compute, in order (no sources, views or assigns) */
    int norder;
    int nkernels;     /* the kernels emitted: order less the reductions computed in another's loops */
    int *assigns;     /* ASSIGN values, executed after everything else */
    int nassigns;
    int64_t arena_f;  /* elements of the f32 arena */
    int64_t arena_i;  /* elements of the i32 arena */
    int64_t peak_bytes_lower_bound; /* the largest set of simultaneously live tensors */
    int max_batch;
    int align;        /* every buffer's size is a multiple of it (elements) */
} Plan;

/* Requires: an entry graph (verified). Gives: the schedule and the storage of every needed value.
 * level 0: no reuse; 1: liveness and online best-fit; 2: also in-place reuse, values written to the
 * model computed in its tensors, greedy-by-size offsets. Buffers start at multiples of `align` elements
 * (the target's). See plan.c. */
Plan *plan_entry(Graph *g, int max_batch, int level, int align);
/* The value whose memory id uses (itself unless a view). */
int plan_base(const Plan *p, int id);
/* a and b may share memory (in place, the same tensor, overlapping arena ranges) */
bool plan_same_memory(const Plan *p, int a, int b);
/* a and b are the very same elements (one buffer, one offset, one size) */
bool plan_identical(const Plan *p, int a, int b);
void plan_print(const Plan *p, FILE *f);

#endif
