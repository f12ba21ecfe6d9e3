/* ir.h: the typed, shaped dataflow graph that every pass reads and writes, and the model around it.
 *
 * A Value is one flat struct: op, inputs by integer id, dtype, shape, attributes, source location.
 * Ids are creation order, so a value's inputs always have smaller ids and id order is a valid schedule.
 * graph_add() is the one constructor; when hash-consing is on it returns an existing identical value, which
 * makes common-subexpression elimination nearly free.
 *
 * Shapes of batched values start with the batch axis, written B and stored as DIM_B; everything else is
 * a compile-time constant. The runtime batch n (1 <= n <= max batch) only bounds loops.
 *
 * What this file does not do: know the source language (check.c), or decide memory (plan.c).
 */
#ifndef NNC_IR_H
#define NNC_IR_H

#include "nnc.h"

enum { MAX_RANK = 8, DIM_B = -1 };

/* The largest tensor: at most MAX_ELEMS elements per sample (all of them for a value without a batch
 * axis), so that the generated code's per-sample offsets fit a signed 32-bit index. Every value the front
 * end builds is within it (graph_add checks each result); a batched value has at most MAX_RANK - 1
 * per-sample axes. */
#define MAX_ELEMS INT64_C(2147483647)

typedef enum DType { DT_VOID = 0, DT_F32 = 1, DT_I32 = 2 } DType;

typedef struct Shape {
    int rank;
    int64_t d[MAX_RANK];
} Shape;

enum {
    F_EW = 1 << 0,
    F_COMM = 1 << 1,
    F_FOLD = 1 << 2,
    F_INPLACE = 1 << 3,
    F_VIEW = 1 << 4,
    F_SOURCE = 1 << 5,
    F_EFFECT = 1 << 6,
    F_NOCSE = 1 << 7,
    F_NOGRAD = 1 << 8,
    F_HIGH = 1 << 9,
    F_BATCHDEP = 1 << 10,
    F_IFOLD = 1 << 11,
    F_CHEAP = 1 << 12,
    F_REDUCE = 1 << 13,
    F_EPILOGUE = 1 << 14,
};

typedef enum OpKind {
#define OP(id, name, arity, flags, shape, emit, grad, flops, scalar) OP_##id,
#include "ops.def"
#undef OP
    OP_COUNT
} OpKind;

enum { ATTR_INTS = 12, ATTR_FLOATS = 4 };

typedef struct Attr {
    int64_t i[ATTR_INTS];
    double f[ATTR_FLOATS];
    const void *data; /* OP_CONST: count(shape) floats or int32s; NULL means all elements equal f[0] */
} Attr;

typedef struct Value {
    OpKind op;
    DType dtype;
    int nin;
    int *in; /* input ids */
    Shape shape;
    Attr attr;
    int tensor; /* OP_INPUT: index of the input/target; OP_TENSOR / OP_ASSIGN: model tensor index */
    Loc loc;
    const char *name; /* the source binding or layer this value comes from, for dumps and comments */
    int group;        /* pass_fuse: the value whose kernel computes this one, or -1 */
    int with;         /* pass_fuse: a later reduction whose loops compute this reduction too, or -1 */
} Value;

/* ---- the model: its tensors and its interface -------------------------------------------------- */
typedef enum TensorKind { TK_PARAM, TK_STATE, TK_OPT, TK_GRAD } TensorKind;

typedef enum InitKind {
    INIT_ZEROS,
    INIT_ONES,
    INIT_CONSTANT,
    INIT_NORMAL,
    INIT_UNIFORM,
    INIT_GLOROT_UNIFORM,
    INIT_GLOROT_NORMAL,
    INIT_HE_NORMAL,
    INIT_HE_UNIFORM,
    INIT_LECUN_NORMAL,
    INIT_LECUN_UNIFORM,
    INIT_KAIMING_UNIFORM, /* PyTorch's: bound sqrt(6 / ((1 + a^2) fan_in)), a in `a` */
    INIT_VALUES, /* values: from a constant list */
} InitKind;

typedef struct Init {
    InitKind kind;
    double a, b; /* constant: a; normal: mean a, std b; uniform: lo a, hi b */
    const float *values;
} Init;

typedef struct Tensor {
    const char *name;  /* "dense_1.weight": checkpoints, summary, the tensor table (emit_c.c makes its
                          struct member, dense_1_weight, with c_ident) */
    TensorKind kind;
    DType dtype;
    Shape shape;
    Init init;
    bool trainable; /* params not frozen */
    int grad;       /* TK_PARAM: index of its gradient tensor, or -1 */
    int opt_state[2]; /* TK_PARAM: its optimizer state tensors (m, v; v; s), or -1 */
    int layer;      /* index into Model.layers, or -1 */
    Loc loc;
} Tensor;

typedef struct IOSlot {
    const char *name;
    DType dtype;
    Shape shape; /* batched: [B, per-sample...] */
    Loc loc;
    int value;   /* id in the source graph */
    int classes; /* i32 targets used as class indices: the number of classes, else 0 */
} IOSlot;

typedef enum OptKind { OPT_NONE, OPT_SGD, OPT_ADAM, OPT_ADAMW, OPT_RMSPROP } OptKind;

typedef struct Optimizer {
    OptKind kind;
    double lr, momentum, beta1, beta2, epsilon, rho, weight_decay;
    bool nesterov;
    Loc loc;
} Optimizer;

typedef struct TrainCfg {
    int epochs, batch; /* 0: not given */
    bool shuffle;
} TrainCfg;

/* One row of `nnc summary`: a layer or operator call in the source. */
typedef struct Layer {
    const char *name;
    const char *op;
    int value; /* its output in the source graph */
    int64_t params;
    Loc loc;
} Layer;

typedef struct Graph Graph;

typedef struct Model {
    const char *name;
    Loc loc;
    int src; /* the source file */
    VEC(Tensor) tensors;
    VEC(IOSlot) inputs;
    VEC(IOSlot) targets;
    VEC(IOSlot) outputs; /* value: the output's id in src graph */
    VEC(IOSlot) metrics;
    VEC(Layer) layers;
    int loss; /* id in the source graph, or -1 */
    Loc loss_loc;
    Optimizer opt;
    TrainCfg train;
    Graph *graph; /* the source graph: every value of the model, training and inference alike */
    int max_batch;
    int step_tensor; /* the optimizer's step counter, or -1 */
    Arena *arena;
    int *by_name; /* tensor names -> indexes (ir.c): open addressing, -1 empty */
    int index_cap;
} Model;

/* ---- graphs ------------------------------------------------------------------------------------ */
typedef enum RootKind { ROOT_OUTPUT, ROOT_LOSS, ROOT_METRIC, ROOT_EFFECT } RootKind;

typedef struct Root {
    RootKind kind;
    int id;
    int index; /* output or metric number */
} Root;

struct Graph {
    Model *model;
    Arena *arena;
    Value *v;
    int n, cap;
    int *htab; /* hash-consing table of ids (-1 empty) */
    int hcap;
    bool hashcons;
    VEC(Root) roots;
    bool training; /* entry graphs: built for the train step */
};

typedef struct OpInfo {
    const char *name;
    int arity;
    unsigned flags;
    const char *scalar; /* the scalar definition as C text (ops.def), NULL if not elementwise */
    bool scalar_fn;     /* printed as a helper function nnc_<name> rather than inline */
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

static inline bool op_has(OpKind op, unsigned flag) { return (op_info[op].flags & flag) != 0; }

Graph *graph_new(Model *m, Arena *a);
/* The constructor: computes the shape through the op's shape rule (reporting user errors at `loc`) and,
 * with hash-consing on, returns an existing identical value. Returns -1 when the shape rule failed. */
int graph_add(Graph *g, OpKind op, const int *in, int nin, const Attr *attr, Loc loc);
/* Build a value with a known type and shape (sources, and rewrites that keep the type). */
int graph_add_typed(Graph *g, OpKind op, const int *in, int nin, const Attr *attr, DType dt, Shape s,
                    int tensor, Loc loc);
static inline Value *graph_val(Graph *g, int id) { return &g->v[id]; }
/* the value whose kernel computes id (pass_fuse's Value.group), else id; a kernel computed inside another
 * (a convolution inside the pooling that reads it) belongs to the outer one */
static inline int graph_kernel_of(const Graph *g, int id)
{
    while (g->v[id].group >= 0) id = g->v[id].group;
    return id;
}
/* the kernel that computes id's reduction with its own (pass_fuse's Value.with), else id */
static inline int graph_loops_of(const Graph *g, int id)
{
    while (g->v[id].with >= 0) id = g->v[id].with;
    return id;
}
void graph_add_root(Graph *g, RootKind kind, int id, int index);

/* Shorthands used by lowering, autodiff and the passes (locations come from `loc`). */
int ir_unary(Graph *g, OpKind op, int a, Loc loc);
int ir_binary(Graph *g, OpKind op, int a, int b, Loc loc);
int ir_scalar(Graph *g, double v, Loc loc);            /* f32 constant, rank 0 */
int ir_const_filled(Graph *g, double v, Shape s, Loc loc);
int ir_reduce(Graph *g, OpKind op, int x, uint64_t axes, bool keepdims, Loc loc);
int ir_reshape(Graph *g, int x, Shape s, Loc loc);
int ir_broadcast(Graph *g, int x, Shape s, Loc loc);
int ir_op1f(Graph *g, OpKind op, int x, double a, double b, Loc loc); /* leaky_relu, clip, powc */
int ir_assign(Graph *g, int value, int tensor, Loc loc);
int ir_cast(Graph *g, int x, DType to, Loc loc);

/* ---- shapes ------------------------------------------------------------------------------------ */
Shape shape_make(int rank, const int64_t *d);
Shape shape_scalar(void);
bool shape_eq(Shape a, Shape b);
bool shape_batched(Shape s);
int64_t shape_count(Shape s, int64_t batch); /* elements, with B = batch */
int64_t shape_per_sample(Shape s);           /* elements per batch entry (all of them if not batched) */
/* shape_per_sample without overflow: saturates at INT64_MAX (for checking shapes not yet known to fit) */
int64_t shape_per_sample_sat(Shape s);
/* a saturated count for messages: "12", or "more than 9.2e18" for INT64_MAX */
const char *count_str_sat(int64_t n, char buf[32]);
/* every dimension positive (or B) and at most MAX_ELEMS elements per sample */
bool shape_fits(Shape s);
char *shape_str(Shape s, char *buf, size_t n); /* "[B,28,28,1]" */
const char *dtype_name(DType t);
/* NumPy broadcasting of a and b; false if incompatible. */
bool shape_broadcast2(Shape a, Shape b, Shape *out);
/* pooling windows (attrs of maxpool2d/avgpool2d and their gradients) that tile the NHWC input `in` exactly:
 * each input cell in exactly one window */
bool pool2d_tiles(const Attr *a, Shape in);
/* How a kernel's tail reads a value of shape x while it produces an output of shape out, row by row of
 * out's last axis: the same element (FULL), the element of the row's column (LAST: x is one row), one
 * number (ONE), or otherwise (OTHER). The C printer applies a tail inside an anchor's loops only for the
 * first three; the passes ask before they rely on that. */
typedef enum RowRead { ROW_FULL, ROW_LAST, ROW_ONE, ROW_OTHER } RowRead;
RowRead shape_row_read(Shape x, Shape out);
/* every value that a member of root's kernel other than `anchor` reads from outside the kernel (not a
 * member, not the anchor) is read in one of the ways of `ways`, a set of (1 << RowRead), along root's
 * shape */
bool graph_tail_reads(const Graph *g, int root, int anchor, unsigned ways);

/* ---- printing ---------------------------------------------------------------------------------- */
void graph_print(Graph *g, FILE *f);
void value_print(Graph *g, int id, FILE *f);

/* ---- model ------------------------------------------------------------------------------------- */
Model *model_new(Arena *a);
int model_add_tensor(Model *m, const char *name, TensorKind kind, DType dt, Shape s, Init init, Loc loc);
int model_find_tensor(const Model *m, const char *name);
int64_t model_param_count(const Model *m, bool trainable_only);

#endif
