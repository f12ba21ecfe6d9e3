/* frontend.h: what check.c (names, statements, expressions, defs) and builtins.c (the functions of the
 * language) share. Values during checking are CVals: compile-time numbers, lists, strings and names, or a
 * graph value (CV_TENSOR). Nothing outside the front end sees a CVal.
 */
#ifndef NNC_FRONTEND_H
#define NNC_FRONTEND_H

#include "ast.h"
#include "ir.h"
#include "ops.h"

typedef enum CValKind {
    CV_ERROR, /* an error was reported; everything built from it stays quiet */
    CV_NONE,  /* `none` */
    CV_BOOL,
    CV_INT,
    CV_FLOAT,
    CV_STRING,
    CV_LIST,
    CV_TENSOR,
    CV_FUNC, /* the name of a builtin or def used as a value: activation=relu, param ... = zeros */
    CV_INIT, /* an initializer call: normal(std=0.1) */
} CValKind;

typedef struct CVal CVal;
struct CVal {
    CValKind kind;
    Loc loc;
    int64_t i;
    double f;
    const char *s; /* string, function name */
    CVal *items;
    int n;
    int id; /* CV_TENSOR */
    Init init;
};

typedef struct Scope Scope;
typedef struct Check Check;

/* constant folding (check.c): what is known of a value's elements */
typedef enum FoldState { FOLD_UNKNOWN, FOLD_OK, FOLD_SOURCE, FOLD_BIG, FOLD_OP, FOLD_DEEP } FoldState;
typedef struct FreezeLink {
    int tensor, next; /* next: the next link of the same name, or -1 */
} FreezeLink;

typedef struct FoldMemo {
    FoldState state;
    int culprit;  /* the value that could not be folded */
    double *d;    /* FOLD_OK: the elements */
} FoldMemo;

/* A builtin's parameters: name, kind, default (NULL: required). */
typedef enum ArgKind {
    A_TENSOR,  /* a value (numbers and lists become constants) */
    A_ANY,     /* anything, checked by the handler */
    A_INT,
    A_NUM,
    A_BOOL,
    A_INT2,    /* an int or a list of two ints: kernel=3, stride=[2, 1] */
    A_AXIS,    /* an int or none */
    A_AXES,    /* an int, a list of ints, or none */
    A_ACT,     /* an activation name or none */
    A_PADDING, /* valid | same, or a list [top, bottom, left, right] (conv2d) */
    A_STRING,
    A_INTS,    /* a list of ints */
} ArgKind;

typedef struct ParamSpec {
    const char *name;
    ArgKind kind;
    const char *dflt; /* a literal in .nn syntax, parsed once: "none", "1", "false", "valid" */
} ParamSpec;

enum { MAX_PARAMS = 12 };

typedef struct Builtin Builtin;
typedef CVal (*BuiltinFn)(Check *c, const Builtin *b, Expr *call, CVal *args);

typedef enum BuiltinKind { BK_OP, BK_LAYER, BK_LOSS, BK_METRIC, BK_INIT, BK_OPTIMIZER } BuiltinKind;

struct Builtin {
    const char *name;
    BuiltinKind kind;
    BuiltinFn fn;
    ParamSpec params[MAX_PARAMS];
    int variadic; /* extra positional tensors allowed (concat) */
};

const Builtin *builtin_find(const char *name);
/* Names of every builtin of a kind, for suggestions. */
int builtin_names(const char **out, int max);

struct Check {
    Arena *arena;
    Model *model;
    Graph *g;
    Scope *scope;        /* innermost */
    Scope *globals;      /* top-level consts and defs */
    const char *prefix;  /* "h1." inside a def called as h1 */
    const char *bind_name; /* the name the current statement binds, for layer names */
    Expr *bind_expr;     /* the statement's whole right-hand side */
    NameMap taken;       /* full layer/def-call names used so far -> the next _K suffix to try after it */
    NameMap outputs_seen, metrics_seen; /* names -> index in the model's outputs / metrics */
    NameMap models_seen; /* model names -> item index (duplicates) */
    VEC(uint8_t) dep_target; /* per source-graph value: depends on a target */
    int depth;           /* def inlining depth */
    Expr *def_call;      /* the innermost def call being inlined */
    Expr *def_arg;       /* the argument of a def call being evaluated */
    int64_t def_work;    /* expressions evaluated inside def calls so far (check.c: MAX_DEF_WORK) */
    VEC(FoldMemo) fold;  /* per source-graph value, grown on demand */
    NameMap freeze_names; /* a parameter's name and each dotted prefix -> the head of its list in freeze_links */
    VEC(FreezeLink) freeze_links;
    int frozen_upto;     /* tensors filed in freeze_names so far */
    bool too_big;        /* MAX_VALUES reported */
    bool noted_inner;    /* the innermost def call of the current error has its note */
    int input_decls;     /* input statements seen, valid or not */
    int expr_depth;      /* expression nesting, bounded so that no input exhausts the stack */
    Program *prog;
    const char *counters_names[64];
    int counters[64];
    int ncounters;
};

/* check.c services for builtins.c */
CVal cv_error(void);
CVal cv_tensor(Check *c, int id, Loc loc);
CVal cv_int(int64_t v, Loc loc);
/* A value usable as a tensor: CV_TENSOR as is, numbers and lists as constants; else an error. */
int cv_to_tensor(Check *c, CVal v, DType prefer, const char *what);
int check_binary_op(Check *c, OpKind op, CVal a, CVal b, Loc loc);
Value *check_val(Check *c, int id);
/* The layer name for a call: name= argument, else the bound name, else OP_K; unique in the model. */
const char *check_layer_name(Check *c, Expr *call, const char *given, const char *opname);
int check_add_param(Check *c, const char *layer, const char *what, TensorKind kind, Shape s, Init init,
                    Loc loc);
void check_add_layer_row(Check *c, const char *name, const char *op, int value, Loc loc);
int check_normalize_axis(Check *c, int64_t axis, int rank, Loc loc); /* -1 on error (reported) */
void check_mark_target(Check *c, int id);
CVal check_eval_expr(Check *c, Expr *e);
bool check_bind_builtin(Check *c, const Builtin *b, Expr *call, CVal *out);
const char *suggest_among(const char *name, const char *const *cands, int n);

/* builtins.c services for check.c */
bool check_activation_known(const char *name);
/* "none, relu, sigmoid, ...": the activation= values, for messages */
const char *check_activation_list(void);
void check_report_activation(Loc loc, const char *name); /* unknown activation, with "did you mean" */
Init check_init(Check *c, Expr *e, Shape s, bool *ok);
void check_optimizer(Check *c, Stmt *s);
void check_train_cfg(Check *c, Stmt *s);

#endif
