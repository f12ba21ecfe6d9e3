/* ast.c: constructors for the syntax tree. They allocate and fill; they never check (check.c does). */
#include "ast.h"

#include <string.h>

void *ast_list_push(Arena *a, AstList *l, void *item)
{
    if (l->len == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4;
        void **data = arena_alloc(a, sizeof(void *) * (size_t)cap);
        if (l->len) memcpy(data, l->data, sizeof(void *) * (size_t)l->len);
        l->data = data;
        l->cap = cap;
    }
    l->data[l->len++] = item;
    return l;
}

static Expr *expr_new_(Arena *a, ExprKind kind, Loc loc)
{
    Expr *e = arena_alloc(a, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    return e;
}

Expr *ast_int(Arena *a, Loc loc, int64_t v)
{
    Expr *e = expr_new_(a, EX_INT, loc);
    e->ival = v;
    e->fval = (double)v;
    return e;
}

Expr *ast_float(Arena *a, Loc loc, double v)
{
    Expr *e = expr_new_(a, EX_FLOAT, loc);
    e->fval = v;
    return e;
}

Expr *ast_string(Arena *a, Loc loc, const char *s)
{
    Expr *e = expr_new_(a, EX_STRING, loc);
    e->str = s;
    return e;
}

Expr *ast_name(Arena *a, Loc loc, const char *s)
{
    Expr *e = expr_new_(a, EX_NAME, loc);
    e->str = s;
    return e;
}

Expr *ast_list(Arena *a, Loc loc, AstList *items)
{
    Expr *e = expr_new_(a, EX_LIST, loc);
    e->items = (Expr **)items->data;
    e->nitems = items->len;
    return e;
}

Expr *ast_unary(Arena *a, Loc loc, int op, Expr *x)
{
    Expr *e = expr_new_(a, EX_UNARY, loc);
    e->op = op;
    e->lhs = x;
    return e;
}

Expr *ast_binary(Arena *a, Loc loc, int op, Expr *l, Expr *r)
{
    Expr *e = expr_new_(a, EX_BINARY, loc);
    e->op = op;
    e->lhs = l;
    e->rhs = r;
    return e;
}

Arg *ast_arg(Arena *a, const char *name, Loc name_loc, Expr *value)
{
    Arg *arg = arena_alloc(a, sizeof *arg);
    arg->name = name;
    arg->name_loc = name_loc;
    arg->value = value;
    return arg;
}

Expr *ast_call(Arena *a, Loc loc, const char *callee, AstList *args)
{
    Expr *e = expr_new_(a, EX_CALL, loc);
    e->str = callee;
    e->nargs = args ? args->len : 0;
    e->args = arena_alloc(a, sizeof(Arg) * (size_t)(e->nargs ? e->nargs : 1));
    for (int i = 0; i < e->nargs; i++) e->args[i] = *(Arg *)args->data[i];
    return e;
}

Expr *ast_pipe(Arena *a, Loc loc, Expr *lhs, Expr *rhs)
{
    Expr *call;
    if (rhs->kind == EX_CALL) {
        call = expr_new_(a, EX_CALL, rhs->loc);
        call->str = rhs->str;
        call->nargs = rhs->nargs + 1;
        call->args = arena_alloc(a, sizeof(Arg) * (size_t)call->nargs);
        memcpy(call->args + 1, rhs->args, sizeof(Arg) * (size_t)rhs->nargs);
    } else {
        call = expr_new_(a, EX_CALL, rhs->loc);
        call->str = rhs->kind == EX_NAME ? rhs->str : "";
        call->nargs = 1;
        call->args = arena_alloc(a, sizeof(Arg));
        if (rhs->kind != EX_NAME) call->lhs = rhs; /* kept for the checker's message */
    }
    call->args[0].value = lhs;
    call->piped = true;
    (void)loc;
    return call;
}

TypeExpr *ast_type(Arena *a, Loc loc, const char *dtype_name, AstList *dims)
{
    TypeExpr *t = arena_alloc(a, sizeof *t);
    t->loc = loc;
    t->dtype = str_eq(dtype_name, "f32") ? 1 : str_eq(dtype_name, "i32") ? 2 : 0;
    t->dims = dims ? (Expr **)dims->data : NULL;
    t->ndims = dims ? dims->len : 0;
    return t;
}

Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc, const char *name, Loc name_loc, TypeExpr *type, Expr *e)
{
    Stmt *s = arena_alloc(a, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    s->name = name;
    s->name_loc = name_loc;
    s->type = type;
    s->expr = e;
    return s;
}

Name *ast_namev(Arena *a, const char *name, Loc loc)
{
    Name *n = arena_alloc(a, sizeof *n);
    n->name = name;
    n->loc = loc;
    return n;
}

Stmt *ast_freeze(Arena *a, Loc loc, AstList *names)
{
    Stmt *s = ast_stmt(a, ST_FREEZE, loc, NULL, loc, NULL, NULL);
    s->nnames = names->len;
    s->names = arena_alloc(a, sizeof(Name) * (size_t)(names->len ? names->len : 1));
    for (int i = 0; i < names->len; i++) s->names[i] = *(Name *)names->data[i];
    return s;
}

Block ast_block(AstList *stmts)
{
    return (Block){.stmts = (Stmt **)stmts->data, .nstmts = stmts->len};
}

DefParam *ast_def_param(Arena *a, const char *name, Loc loc, Expr *dflt)
{
    DefParam *p = arena_alloc(a, sizeof *p);
    p->name = name;
    p->loc = loc;
    p->dflt = dflt;
    return p;
}

static Item *item_new_(Arena *a, ItemKind kind, Loc loc, const char *name, Loc name_loc)
{
    Item *it = arena_alloc(a, sizeof *it);
    it->kind = kind;
    it->loc = loc;
    it->name = name;
    it->name_loc = name_loc;
    return it;
}

Item *ast_model(Arena *a, Loc loc, const char *name, Loc name_loc, AstList *stmts)
{
    Item *it = item_new_(a, IT_MODEL, loc, name, name_loc);
    it->body = ast_block(stmts);
    return it;
}

Item *ast_def(Arena *a, Loc loc, const char *name, Loc name_loc, AstList *params, AstList *stmts)
{
    Item *it = item_new_(a, IT_DEF, loc, name, name_loc);
    it->nparams = params->len;
    it->params = arena_alloc(a, sizeof(DefParam) * (size_t)(params->len ? params->len : 1));
    for (int i = 0; i < params->len; i++) it->params[i] = *(DefParam *)params->data[i];
    it->body = ast_block(stmts);
    return it;
}

Item *ast_top_const(Arena *a, Stmt *s)
{
    Item *it = item_new_(a, IT_CONST, s->loc, s->name, s->name_loc);
    it->cnst = s;
    return it;
}
