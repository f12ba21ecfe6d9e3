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
} StoreKind;

typedef struct Store {
    StoreKind kind;
    int64_t offset; /* SK_ARENA */
    int64_t size;   /* elements at the maximum batch */
    int base;       /* SK_VIEW: the value whose memory this is (never itself a view) */
    bool literal;   /* SK_CONST scalar written into expressions */
} Store;

typedef struct Plan {
    Graph *g;
    Store *store;     /* per value */
    int *order;       /* the values to compute, in order (no sources, views or assigns) */
    int norder;
    int *assigns;     /* ASSIGN values, executed after everything else */
    int nassigns;
    int64_t arena_f;  /* elements of the f32 arena */
    int64_t arena_i;  /* elements of the i32 arena */
    int64_t peak_bytes_lower_bound; /* the largest set of simultaneously live tensors */
    int max_batch;
} Plan;

/* Requires: an entry graph (verified). Gives: the schedule and the storage of every needed value.
 * Liveness by use count in schedule order, best-fit in one arena per dtype, 64-byte aligned offsets. */
Plan *plan_entry(Graph *g, int max_batch);
/* The value whose memory id uses (itself unless a view). */
int plan_base(const Plan *p, int id);
void plan_print(const Plan *p, FILE *f);

#endif
