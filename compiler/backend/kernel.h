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

/* A size known at compile time up to the batch: per, or per * n when batch (n the call's batch). */
typedef struct Extent {
    int64_t per;
    bool batch;
} Extent;

static inline Extent extent_fixed(int64_t k) { return (Extent){.per = k}; }
/* a dimension of a shape: DIM_B is n */
static inline Extent extent_dim(int64_t d) { return d == DIM_B ? (Extent){.per = 1, .batch = true} : extent_fixed(d); }
/* the elements of a shape */
static inline Extent extent_count(Shape s) { return (Extent){.per = shape_per_sample(s), .batch = shape_batched(s)}; }

/* Where a kernel's operand lives (docs/backends.md §3): the memory space decides how a printer reaches it
 * (C: the arena pointer plus offset, a struct member, an entry point's argument, a static const array;
 * CUDA: a device allocation; mcu: flash for constants and baked weights). */
typedef enum Space {
    SPACE_ARENA,  /* scratch: `offset` elements into the arena of its dtype */
    SPACE_INPUT,  /* an argument of the entry point: input `index` (or target, when `target`) */
    SPACE_PARAM,  /* a model parameter, tensor `tensor` */
    SPACE_STATE,  /* a state, optimizer or gradient tensor of the model, tensor `tensor` */
    SPACE_CONST,  /* a constant folded at compile time */
} Space;

typedef struct Buffer {
    int value; /* the value whose memory it is (a view's base) */
    Space space;
    int64_t offset; /* SPACE_ARENA */
    int tensor;     /* SPACE_PARAM, SPACE_STATE */
    int index;      /* SPACE_INPUT: the input's or target's position */
    bool target;    /* SPACE_INPUT: a target rather than an input */
} Buffer;

/* where value id of plan p lives; the value must have memory (not fused away) */
Buffer kernel_buffer(const Model *m, const Plan *p, int id);

/* A reduction (sum, mean, max over the axes of its attribute): outputs start at the identity, every
 * input element is accumulated into its output; a mean then divides by the elements each output took. */
typedef struct Reduction {
    OpKind op;       /* OP_SUM, OP_MEAN or OP_MAX */
    bool max;        /* identity -infinity and accumulation by maximum; else 0 and addition */
    bool mean;       /* divide by count at the end */
    Extent outputs;  /* output elements */
    Extent count;    /* input elements per output */
} Reduction;

/* the reduction value id (of input shape `in`) computes */
Reduction kernel_reduction(const Graph *g, int id, Shape in);

/* A matrix product C[m,n] = op(A) op(B), row-major, op a transpose when ta/tb; ld* the row strides of
 * A, B, C (per 0: dense, the stored row length). work: m * n * k at the maximum batch. A printer chooses the
 * algorithm from these numbers (docs/kernels.md for the C printer's). */
typedef struct GemmShape {
    Extent m, n, k;
    Extent lda, ldb, ldc;
    int ta, tb;
    int64_t work;
} GemmShape;

/* A 2-D convolution's geometry, NHWC input x [B,H,W,C], HWIO weights w [KH,KW,C/G,F], output [B,HO,WO,F]:
 * strides sh, sw; padding top pt and left pl (the rest is implied by HO, WO); G groups of Cg input
 * channels and Fg filters; dilation dh, dw. The same numbers describe both gradients. */
typedef struct ConvShape {
    int64_t H, W, C, KH, KW, F, HO, WO, sh, sw, pt, pl;
    int64_t G, Cg, Fg, dh, dw;
} ConvShape;

/* from a conv2d's (or its gradients') attributes and the shapes of x, w and y */
ConvShape kernel_conv_shape(const Attr *a, Shape x, Shape w, Shape y);

/* A 2-D pooling window's geometry, NHWC input [B,H,W,C], output [B,HO,WO,C]: window KH x KW, strides sh, sw,
 * padding top pt and left pl (the rest is implied by HO, WO). The same numbers describe the gradients. */
typedef struct PoolShape {
    int64_t H, W, C, KH, KW, HO, WO, sh, sw, pt, pl;
    bool count_pad; /* an average divides by the whole window, padded cells included */
} PoolShape;

/* from a pooling op's (or its gradient's) attributes and the shapes of its input x and output y */
PoolShape kernel_pool_shape(const Attr *a, Shape x, Shape y);

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
typedef enum KExprKind {
    KEXPR_LOAD,    /* operand `operand` of the kernel (a value in memory) at the current position */
    KEXPR_LITERAL, /* the scalar literal constant `value` */
    KEXPR_ANCHOR,  /* the anchor's result at the current position */
    KEXPR_OP,      /* op of value `value` (its scalar definition in ops.def) applied to args */
} KExprKind;

typedef struct KExpr {
    KExprKind kind;
    int value;   /* the IR value this node computes or reads */
    int operand; /* KEXPR_LOAD */
    int nargs;
    struct KExpr *arg[4];
} KExpr;

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
KExpr *kernel_fused_expr(const Graph *g, const Plan *p, const FusedKernel *f, int id, Arena *a);

#endif
