/* ast.h: the syntax tree the parser builds, exactly as written (no checking, no desugaring beyond the
 * pipe, which the parser turns into an ordinary call with the piped value as first argument).
 *
 * Every node carries its location. Lists are arena-allocated arrays with a count. The checker
 * (check.c) walks this tree; nothing else reads it.
 */
#ifndef NNC_AST_H
#define NNC_AST_H

#include "nnc.h"

typedef enum ExprKind {
    EX_INT,
    EX_FLOAT,
    EX_STRING,
    EX_NAME,
    EX_LIST,
    EX_UNARY,  /* op: '-' */
    EX_BINARY, /* op: '+', '-', '*', '/', '@', 'P' (**) */
    EX_CALL,
} ExprKind;

typedef struct Expr Expr;

typedef struct Arg {
    const char *name; /* keyword, or NULL for a positional argument */
    Loc name_loc;
    Expr *value;
} Arg;

struct Expr {
    ExprKind kind;
    Loc loc;
    int op;
    int64_t ival;
    double fval;
    const char *str; /* EX_STRING text, EX_NAME identifier, EX_CALL callee */
    Expr *lhs, *rhs; /* EX_UNARY uses lhs */
    Expr **items;    /* EX_LIST */
    int nitems;
    Arg *args; /* EX_CALL: positional first, then keywords (the checker enforces the order) */
    int nargs;
    bool piped; /* EX_CALL made by `a |> f(...)`: args[0] is the piped value */
};

typedef struct TypeExpr {
    Loc loc;
    int dtype; /* DT_F32 / DT_I32 (ir.h) */
    Expr **dims;
    int ndims;
} TypeExpr;

typedef enum StmtKind {
    ST_INPUT,
    ST_TARGET,
    ST_PARAM,
    ST_CONST,
    ST_ASSIGN,
    ST_OUTPUT, /* expr NULL: `output NAME` */
    ST_LOSS,
    ST_METRIC,
    ST_OPTIMIZER, /* expr: the call */
    ST_TRAIN,     /* expr: a call named "train" */
    ST_FREEZE,
    ST_RETURN,
    ST_NESTED, /* a def or model written inside a model (name: which) */
} StmtKind;

typedef struct Name {
    const char *name;
    Loc loc;
} Name;

typedef struct Stmt {
    StmtKind kind;
    Loc loc;
    const char *name; /* bound name (input/target/param/const/assign/output/metric) */
    Loc name_loc;
    TypeExpr *type; /* input/target/param */
    Expr *expr;     /* value, initialiser (param), loss, optimizer/train call */
    Name *names;    /* freeze */
    int nnames;
} Stmt;

typedef struct Block {
    Stmt **stmts;
    int nstmts;
} Block;

typedef struct DefParam {
    const char *name;
    Loc loc;
    Expr *dflt; /* NULL: required */
} DefParam;

typedef enum ItemKind { IT_MODEL, IT_DEF, IT_CONST } ItemKind;

typedef struct Item {
    ItemKind kind;
    Loc loc;
    const char *name;
    Loc name_loc;
    DefParam *params; /* def */
    int nparams;
    Block body;   /* model, def */
    Stmt *cnst;   /* top-level const */
} Item;

typedef struct Program {
    Item **items;
    int nitems;
    int src; /* the source it was parsed from (diag.c), to name the file in messages */
} Program;

/* ---- constructors: the parser's actions call only these ---------------------------------------- */
typedef struct AstList {
    void **data;
    int len, cap;
} AstList;

void *ast_list_push(Arena *a, AstList *l, void *item);

Expr *ast_int(Arena *a, Loc loc, int64_t v);
Expr *ast_float(Arena *a, Loc loc, double v);
Expr *ast_string(Arena *a, Loc loc, const char *s);
Expr *ast_name(Arena *a, Loc loc, const char *s);
Expr *ast_list(Arena *a, Loc loc, AstList *items);
Expr *ast_unary(Arena *a, Loc loc, int op, Expr *x);
Expr *ast_binary(Arena *a, Loc loc, int op, Expr *l, Expr *r);
Expr *ast_call(Arena *a, Loc loc, const char *callee, AstList *args);
Arg *ast_arg(Arena *a, const char *name, Loc name_loc, Expr *value);
/* `lhs |> rhs`: rhs a call gets lhs as first argument; a bare name becomes a one-argument call;
 * anything else is kept as a call to "" that the checker reports. */
Expr *ast_pipe(Arena *a, Loc loc, Expr *lhs, Expr *rhs);
TypeExpr *ast_type(Arena *a, Loc loc, const char *dtype_name, AstList *dims);
Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc, const char *name, Loc name_loc, TypeExpr *type, Expr *e);
Stmt *ast_freeze(Arena *a, Loc loc, AstList *names);
Name *ast_namev(Arena *a, const char *name, Loc loc);
Block ast_block(AstList *stmts);
DefParam *ast_def_param(Arena *a, const char *name, Loc loc, Expr *dflt);
Item *ast_model(Arena *a, Loc loc, const char *name, Loc name_loc, AstList *stmts);
Item *ast_def(Arena *a, Loc loc, const char *name, Loc name_loc, AstList *params, AstList *stmts);
Item *ast_top_const(Arena *a, Stmt *s);

/* Parse one source (from source_add/source_load). Returns NULL only when nothing could be parsed; syntax
 * errors are reported through diag and counted. */
Program *parse_source(Arena *a, int src);

#endif
