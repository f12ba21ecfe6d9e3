/* onnx_internal.h: what the ONNX reader, the translator and the operator families share.
 *
 * The translator walks the graph's nodes in order and turns each into .nn statements. Every ONNX value is
 * one of two kinds:
 *   - a constant (an initializer, a Constant node, or shape arithmetic folded at import): its elements are
 *     known, and an element or an extent may be the batch size, which is only known at run time (OX_BATCH);
 *   - data: a .nn value computed at run time. Its ONNX axes map onto the .nn value's axes through `axis`:
 *     ONNX axis k is .nn axis axis[k], and the batch axis is always .nn axis 0. A Transpose only permutes
 *     `axis`; a convolution's NCHW input is brought to NHWC once; a transpose is written only where a
 *     consumer needs another order (docs/onnx.md, "Layouts").
 */
#ifndef NNC_ONNX_INTERNAL_H
#define NNC_ONNX_INTERNAL_H

#include "onnx_import.h"
#include "onnx.pb-c.h"

#include <stdint.h>

enum { OX_MAX_RANK = 8, OX_BATCH = -1 };

/* ONNX TensorProto.DataType values the importer knows */
enum {
    OX_FLOAT = 1, OX_UINT8 = 2, OX_INT8 = 3, OX_UINT16 = 4, OX_INT16 = 5, OX_INT32 = 6, OX_INT64 = 7,
    OX_STRING = 8, OX_BOOL = 9, OX_FLOAT16 = 10, OX_DOUBLE = 11, OX_UINT32 = 12, OX_UINT64 = 13,
    OX_BFLOAT16 = 16
};

/* A constant tensor. Float types are kept as float, the others as int64. An extent may be OX_BATCH (the
 * tensor then has no element array: it is `fill` everywhere, e.g. ConstantOfShape of a shape holding the
 * batch size); an int64 element may be OX_BATCH in shape arithmetic (batch[i] says which). */
typedef struct OxConst {
    int dtype;
    int rank;
    int64_t dims[OX_MAX_RANK];
    int64_t count;       /* elements, or -1 when an extent is the batch */
    float *f;            /* float types */
    int64_t *i;          /* integer and bool types */
    bool *batch;         /* i[k] is the batch size; NULL when none is */
    double fill;         /* count == -1: the value of every element */
} OxConst;

bool ox_is_float(int dtype);
int64_t ox_count(const int64_t *dims, int rank); /* -1 when an extent is the batch, -2 when invalid */
/* the product of the extents with 0 and the batch counted as 1 (saturating; -1 when one is negative): with zero
 * elements, the other extents still bound loops over outer axes, so constants bound this too */
int64_t ox_span(const int64_t *dims, int rank);
double ox_get(const OxConst *c, int64_t k);      /* element k as a double (fill when count < 0) */

typedef enum ValKind { VAL_UNSET, VAL_CONST, VAL_DATA } ValKind;

typedef struct Val Val;
struct Val {
    const char *onnx;    /* the ONNX name */
    ValKind kind;
    OxConst c;           /* VAL_CONST */
    bool initializer;    /* VAL_CONST from the graph's initializers or a Constant node (not shape arithmetic) */
    const char *param;   /* VAL_CONST used as data: the .nn param holding it (in ONNX layout), once declared */
    /* VAL_DATA */
    const char *nn;      /* the .nn name holding the value, in the layout `axis` says */
    int rank;            /* ONNX rank (the batch axis included) */
    int64_t dims[OX_MAX_RANK]; /* ONNX extents; the batch axis is OX_BATCH */
    int axis[OX_MAX_RANK];     /* ONNX axis k is .nn axis axis[k] */
    bool is_int;         /* i32 data (ArgMax) */
    struct { int axis[OX_MAX_RANK]; const char *nn; } views[4]; /* transposes already written */
    /* A Flatten to [B, rest] of flat_src, not written yet (nn NULL): a consumer that needs the value gets it in
     * ONNX's order (flatten of flat_src in ONNX order, written then); a dense layer instead takes the flatten of
     * flat_src in its own .nn order and permutes its weight's rows at import (imp_flat_rows), so that the
     * NCHW -> NHWC transpose of a convolution's output folds into the dense layer's weights. */
    struct Val *flat_src;
    const char *flat_rows_nn;
    int64_t *flat_rows;
    int nviews;
    int uses;            /* nodes (and graph outputs) that read it */
    const Onnx__NodeProto *consumer; /* the node reading it, when that is its one use */
    int output;          /* 1 + its index among the graph outputs; 0 when it is none */
};

typedef struct Imp Imp;
typedef struct ImpName {
    const char *s; /* a .nn name in use */
    int next;      /* the next suffix to try for names made from it: s_2, s_3, ... */
} ImpName;
typedef Onnx__NodeProto Node;

/* An operator family's handler: write the node's .nn statements and set its outputs' Vals. Returns false
 * after imp_unsupported() when the node cannot be imported. */
typedef bool (*OpImport)(Imp *im, const Node *n);

typedef struct OpRow {
    const char *op_type;
    int min_opset; /* the first opset whose form this handler reads (the node's own version is looked up) */
    OpImport run;
    bool takes_flat; /* reads a pending Flatten with imp_flat_rows (else the walk writes it in ONNX order first) */
} OpRow;

/* the families' tables, each ended by a row with op_type NULL */
extern const OpRow onnx_ops_elementwise[], onnx_ops_layers[], onnx_ops_shape[], onnx_ops_reduce[];

/* ---- the translator's state (onnx_import.c) ---- */
struct Imp {
    Arena *a;
    const char *path;
    Onnx__ModelProto *model;
    Onnx__GraphProto *graph;
    int opset;
    StrBuf out;                  /* the .nn text being written */
    Val **vals;                  /* every ONNX value, by name (open addressing; a Val never moves) */
    int nvals, capvals;
    ImpName *names;              /* .nn names taken so far, by name (open addressing) */
    int nnames, capnames;
    nnc_st_tensor *weights;      /* the parameters written */
    int nweights, capweights;
    int batch;                   /* the inputs' fixed batch size, or 0 */
    int unsupported;             /* nodes refused */
    int64_t folded;              /* elements of the constants folded so far (onnx_fold.c bounds the total) */
    const Node *node;            /* the node being imported */
    const Node **absorbed;       /* nodes a layer took as its activation= */
    int nabsorbed;
    int node_index;
    int layer_count[16];
    const char **output_onnx, **output_nn; /* the graph outputs and their .nn names */
    bool *output_bound;          /* output k's name is already a value's */
    int noutputs;
};

Val *imp_val(Imp *im, const char *onnx_name);                 /* NULL for "" (an omitted optional input) */
Val *imp_input(Imp *im, const Node *n, int k);               /* the node's k-th input, NULL if absent */
/* the node's k-th input as data, or NULL after imp_unsupported ("must be computed from the graph's inputs").
 * Output 0's Val is made first: a new Val may move the table, and with it a Val read before */
Val *imp_data_input(Imp *im, const Node *n, int k);
/* an ONNX axis counted from 0; -1 when out of range (checked before the narrowing to int) */
int ox_axis(int64_t axis, int rank);
/* the node's k-th output, NULL past the last; an omitted one ("") is a Val of its own that nothing reads */
Val *imp_output(Imp *im, const Node *n, int k);
bool imp_output_used(Imp *im, const Node *n, int k);
/* an error naming the node, its op type and the opset, then the reason; always false */
bool imp_unsupported(Imp *im, const Node *n, const char *fmt, ...) NNC_PRINTF(3, 4);

/* attributes */
const Onnx__AttributeProto *attr_find(const Node *n, const char *name);
int64_t attr_int(const Node *n, const char *name, int64_t dflt);
float attr_float(const Node *n, const char *name, float dflt);
const char *attr_string(Imp *im, const Node *n, const char *name, const char *dflt);
/* ints attribute: count written to *count (0 when absent), the array (NULL when absent) */
const int64_t *attr_ints(const Node *n, const char *name, int *count);

/* .nn names and text */
const char *imp_fresh_name(Imp *im, const char *base);        /* a new .nn identifier from any string */
const char *imp_value_name(Imp *im, const char *onnx);        /* a readable .nn name for an ONNX value name */
void imp_line(Imp *im, const char *fmt, ...) NNC_PRINTF(2, 3); /* one indented statement */
void imp_comment_node(Imp *im, const Node *n);                 /* "# NAME (OpType)" */
const char *imp_float(Imp *im, double v);                     /* a .nn float literal that reads back exactly */
const char *imp_int_list(Imp *im, const int64_t *v, int n);   /* [1, 2, 3] */
const char *imp_layer_name(Imp *im, const Node *n, const char *kind, const Val *weight);

/* data values */
/* the .nn name of `v` with its axes in the order `want` (ONNX axis k at .nn axis want[k]), writing a transpose
 * when the layout differs */
const char *imp_data_as(Imp *im, Val *v, const int *want);
const char *imp_data_onnx_order(Imp *im, Val *v);             /* ONNX's own axis order; NULL if the batch is not first */
/* `out` = Flatten of `src` to [B, rest] (src's batch first in ONNX order), written when first needed */
void imp_pending_flatten(Imp *im, Val *out, Val *src);
/* the value `v` as .nn data, writing a pending Flatten in ONNX's order */
const char *imp_materialize(Imp *im, Val *v);
/* for a dense layer: `v` flattened in its source's own .nn order; *rows (NULL when that is ONNX's order) maps .nn
 * feature j to ONNX feature rows[j], so weight row j = ONNX weight row rows[j] */
const char *imp_flat_rows(Imp *im, Val *v, const int64_t **rows);
/* A layer whose output `out` feeds only an activation node that .nn's activation= takes (Relu, Sigmoid, Tanh,
 * Softplus, Gelu, Elu with alpha 1): the activation's name ("relu"), that node marked as absorbed (the walk
 * skips it) and *act_out its output, which the layer computes and names; else NULL. */
const char *imp_take_activation(Imp *im, Val *out, Val **act_out);
/* node `n`, a later one, is computed by the handler running now (a MatMul takes in its bias Add): the walk skips it */
void imp_absorb(Imp *im, const Node *n);
void imp_set_data(Val *out, const char *nn, int rank, const int64_t *dims, const int *axis);
void axis_identity(int *axis, int rank);
/* `x` as a .nn operand that broadcasts against data in the layout `like` (rank R): a literal for one element,
 * else a param holding the constant permuted into that layout. NULL (after imp_unsupported) when it cannot. */
const char *imp_const_operand(Imp *im, Val *c, const Val *like);
/* write a parameter tensor (float32) under `name`, shape dims[rank] */
void imp_add_weight(Imp *im, const char *name, const float *data, const int64_t *dims, int rank);
/* declare `param NAME: f32[dims] = zeros` with the given data */
const char *imp_param(Imp *im, const char *base, const float *data, const int64_t *dims, int rank);

/* constants */
void oxc_make(Imp *im, OxConst *c, int dtype, int rank, const int64_t *dims);
bool oxc_from_tensor(Imp *im, const Onnx__TensorProto *t, OxConst *out, char *err, size_t errlen);
bool oxc_ints(const OxConst *c, int64_t *out, int max, int *count); /* a 1-D/scalar int constant's values */
/* shape rules shared by the fold and the data handlers; false when the arguments are invalid */
bool onnx_unsqueeze_dims(const int64_t *in, int rank, const int64_t *axes, int naxes, int64_t *out, int *orank);
bool onnx_squeeze_dims(const int64_t *in, int rank, const int64_t *axes, int naxes, int64_t *out, int *orank);
/* the axes of Squeeze/Unsqueeze: an attribute before opset 13, a constant input from 13 (none: *count 0) */
bool onnx_axes_arg(Imp *im, const Node *n, int64_t *axes, int *count);
bool onnx_reshape_dims(const int64_t *in, int rank, const int64_t *shape, int n, bool allowzero, int64_t *out);
/* the fold of a node whose inputs are all constant: true when it was folded (its outputs set) */
bool onnx_fold_node(Imp *im, const Node *n, bool *handled);

/* reader (onnx_read.c) */
/* diag_fatal with every byte outside printable ASCII shown as '?' (names and paths from the model) */
void onnx_error(const char *fmt, ...) NNC_PRINTF(1, 2);
Onnx__ModelProto *onnx_read_model(const char *path, char *err, size_t errlen);
bool onnx_check_graph(const char *path, Onnx__GraphProto *g, int opset);
int onnx_model_opset(const Onnx__ModelProto *m, const char *domain);
/* a tensor's external data (a file in the model's own directory): *len holds the bytes its shape needs; a file
 * range of another length is refused before it is read */
bool onnx_tensor_external(const char *model_path, const Onnx__TensorProto *t, uint8_t **data, size_t *len,
                          char *err, size_t errlen);

#endif
