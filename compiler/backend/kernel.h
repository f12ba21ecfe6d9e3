/* kernel.h: the target-neutral description of a kernel (docs/backends.md §3), made from the planned
 * entry graph once, printed by each target's printer.
 *
 * What is described so far: the loop nest of an elementwise or reduction kernel (merged extents, which
 * operand varies along which loop, the index of each operand as data), and a fused group (pass_fuse) as
 * the values it computes, the values it reads from memory, and one expression tree per computed value
 * whose leaves are loads, literals and the anchor's result. Printers choose how to write them: the C
 * printer's blocked reductions and register-tiled products are its own.
 */
#ifndef NNC_KERNEL_H
#define NNC_KERNEL_H

#include "plan.h"

enum { KERNEL_MAX_OPERANDS = 16, KERNEL_MAX_ROOTS = 4, KERNEL_MAX_MEMBERS = 64 };

/* Loops over a shape: extents of 1 dropped, neighbouring dimensions that every operand treats alike
 * merged. Loop j runs over ext[j] (ext[j] * n when batch[j]: the batch axis, always loop 0). */
typedef struct LoopNest {
    int rank;
    int64_t ext[MAX_RANK];
    bool batch[MAX_RANK];
    int nops;
    bool full[KERNEL_MAX_OPERANDS][MAX_RANK]; /* operand k varies along loop j (else it is broadcast) */
} LoopNest;

/* An operand's flat element index at the loop variables: sum of stride[t] * i<var[t]>; n == 0 is 0. */
typedef struct Index {
    int n;
    int var[MAX_RANK];
    int64_t stride[MAX_RANK];
} Index;

/* The nest over `loop` for operands of shapes ops[0..nops) (NumPy broadcasting: right-aligned). */
LoopNest loop_nest_make(Shape loop, const Shape *ops, int nops);
Index loop_nest_index(const LoopNest *d, int operand);

/* ---- fused groups ---------------------------------------------------------------------------------- */
typedef enum ExprKind {
    EXPR_LOAD,    /* operand `operand` of the kernel (a value in memory) at the current position */
    EXPR_LITERAL, /* the scalar literal constant `value` */
    EXPR_ANCHOR,  /* the anchor's result at the current position */
    EXPR_OP,      /* op of value `value` (its scalar definition in ops.def) applied to args */
} ExprKind;

typedef struct Expr {
    ExprKind kind;
    int value;   /* the IR value this node computes or reads */
    int operand; /* EXPR_LOAD */
    int nargs;
    struct Expr *arg[4];
} Expr;

typedef struct FusedKernel {
    int root;                            /* the value the kernel is named after: the last computed */
    int anchor;                          /* a matmul, conv2d or tiled pooling gradient inside, or -1 */
    int roots[KERNEL_MAX_ROOTS], nroots; /* values stored (reductions sharing loops end with root) */
    int members[KERNEL_MAX_MEMBERS], nmembers; /* every value computed inside, in id order */
    int ext[KERNEL_MAX_OPERANDS], next;  /* values read from memory, in first-use order */
    bool reduce;                         /* the roots are reductions of an elementwise prologue */
} FusedKernel;

/* The fused group rooted at root, its members among ids [lo, root]; false when root computes only itself. */
bool kernel_fused_make(const Graph *g, const Plan *p, int root, int lo, FusedKernel *f);
/* value id is computed inside f */
bool kernel_fused_has(const Graph *g, const FusedKernel *f, int id);
/* The expression of value id inside f (for a reduction root: pass its input); nodes from arena a. */
Expr *kernel_fused_expr(const Graph *g, const Plan *p, const FusedKernel *f, int id, Arena *a);

#endif
