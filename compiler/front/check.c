/* check.c: from the syntax tree to the model's source graph.
 *
 * One walk does name resolution, `def` inlining with the naming rules of docs/language.md §7, constant evaluation, and
 * type and shape inference (every value is built through graph_add, whose shape rules check as they go).
 * Errors are reported where they are found and the walk goes on with an error value, so one file yields
 * every independent error (up to 20) and no cascade of follow-on errors.
 *
 * What it does not do: decide training versus inference (dropout and batchnorm stay high-level ops until
 * lower.c builds each entry point), or optimize anything.
 */
#include "check.h"
#include "frontend.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* MAX_DEF_WORK bounds the expressions evaluated inside def calls, all calls together: each call is inlined
 * anew, so defs that call another def twice double the work at every level (2^40 for 40 levels). */
enum { MAX_EXPR_DEPTH = 100000, MAX_DEF_DEPTH = 64, MAX_VALUES = 1 << 18, MAX_DEF_WORK = 1 << 20, MAX_DEF_PARAMS = 64 };

typedef enum SymKind { SYM_VALUE, SYM_CONST, SYM_DEF } SymKind;

typedef struct Sym {
    const char *name;
    SymKind kind;
    bool declared; /* by input, target, param or const (not by assignment) */
    CVal val;
    Item *def;
    Loc loc;
    struct Sym *decl; /* an older declared binding of the same name in the same scope, or NULL */
    struct Sym *next; /* every binding of the scope, newest first (for suggestions) */
} Sym;

/* A scope maps each name to its newest binding through an open-addressing table, so that a lookup costs
 * the same with 10 names as with 100,000. */
struct Scope {
    Sym **tab; /* newest binding per name; NULL empty */
    int cap, n;
    Sym *syms; /* every binding, newest first */
    Scope *parent;
};

/* ---- values ---------------------------------------------------------------------------------- */
CVal cv_error(void) { return (CVal){.kind = CV_ERROR}; }
CVal cv_int(int64_t v, Loc loc) { return (CVal){.kind = CV_INT, .i = v, .f = (double)v, .loc = loc}; }
CVal cv_tensor(Check *c, int id, Loc loc)
{
    (void)c;
    return id < 0 ? cv_error() : (CVal){.kind = CV_TENSOR, .id = id, .loc = loc};
}
Value *check_val(Check *c, int id) { return &c->g->v[id]; }

static const char *cv_kind_name_(CValKind k)
{
    static const char *names[] = {"an invalid value", "none", "a boolean", "an integer", "a number",
                                  "a string", "a list", "a tensor", "a function", "an initializer"};
    return names[k];
}

static void dep_grow_(Check *c)
{
    while (c->dep_target.len < c->g->n) vec_push(&c->dep_target, 0);
}

void check_mark_target(Check *c, int id)
{
    dep_grow_(c);
    c->dep_target.data[id] = 1;
}

static bool depends_on_target_(Check *c, int id)
{
    dep_grow_(c);
    return c->dep_target.data[id] != 0;
}

/* A new value depends on a target when any input does: propagate after each graph_add. */
static void dep_update_(Check *c)
{
    int from = c->dep_target.len;
    dep_grow_(c);
    for (int id = from; id < c->g->n; id++) {
        Value *v = &c->g->v[id];
        for (int k = 0; k < v->nin; k++) c->dep_target.data[id] |= c->dep_target.data[v->in[k]];
    }
}

/* Nested lists of numbers -> an f32 constant (shape from the nesting). */
static bool list_shape_(CVal v, Shape *s, int depth)
{
    if (v.kind == CV_INT || v.kind == CV_FLOAT || v.kind == CV_BOOL) return true;
    if (v.kind != CV_LIST || v.n == 0 || depth >= MAX_RANK) return false;
    if (depth == s->rank) s->d[s->rank++] = v.n;
    else if (s->d[depth] != v.n) return false;
    for (int i = 0; i < v.n; i++) {
        if ((v.items[i].kind == CV_LIST) != (depth + 1 < s->rank || v.items[0].kind == CV_LIST)) return false;
        if (!list_shape_(v.items[i], s, depth + 1)) return false;
    }
    return true;
}

static void list_flatten_(CVal v, float *out, int64_t *k)
{
    if (v.kind == CV_LIST)
        for (int i = 0; i < v.n; i++) list_flatten_(v.items[i], out, k);
    else
        out[(*k)++] = (float)v.f;
}

int cv_to_tensor(Check *c, CVal v, DType prefer, const char *what)
{
    switch (v.kind) {
    case CV_ERROR:
        return -1;
    case CV_TENSOR:
        return v.id;
    case CV_INT:
    case CV_FLOAT:
    case CV_BOOL: {
        if (prefer == DT_I32 && v.kind != CV_FLOAT) {
            if (v.i < INT32_MIN || v.i > INT32_MAX) { /* never wrapped silently (NumPy 2 refuses it too) */
                diag_error(v.loc, "%s: the integer %" PRId64 " does not fit in i32, the type of the other operand "
                                  "(-2147483648 to 2147483647)", what, v.i);
                return -1;
            }
            int32_t *d = arena_alloc(c->arena, sizeof(int32_t));
            *d = (int32_t)v.i;
            Attr a = {.data = d};
            return graph_add_typed(c->g, OP_CONST, NULL, 0, &a, DT_I32, shape_scalar(), -1, v.loc);
        }
        return ir_scalar(c->g, v.f, v.loc);
    }
    case CV_LIST: {
        Shape s = {0};
        if (v.n == 0) {
            diag_error(v.loc, "%s: an empty list is not a tensor (a tensor has no axis of length 0)", what);
            return -1;
        }
        if (!list_shape_(v, &s, 0)) {
            diag_error(v.loc, "%s: a list used as a tensor must be a rectangular list of numbers", what);
            return -1;
        }
        int64_t n = shape_count(s, 1), k = 0;
        float *d = arena_alloc(c->arena, sizeof(float) * (size_t)n);
        list_flatten_(v, d, &k);
        Attr a = {.data = d};
        return graph_add_typed(c->g, OP_CONST, NULL, 0, &a, DT_F32, s, -1, v.loc);
    }
    case CV_INIT:
        diag_error(v.loc, "%s: '%s' is an initializer, not a tensor; use it in 'param NAME: f32[...] = %s' or as kernel_init=",
                   what, v.s ? v.s : "this", v.s ? v.s : "...");
        return -1;
    default:
        diag_error(v.loc, "%s: expected a tensor, found %s", what, cv_kind_name_(v.kind));
        return -1;
    }
}

/* ---- scopes -------------------------------------------------------------------------------------- */
static Scope *scope_push_(Check *c, Scope *parent)
{
    Scope *s = arena_alloc(c->arena, sizeof *s);
    s->parent = parent;
    return s;
}


/* the slot of name in s's table: its binding, or the empty slot where it would go (s->cap > 0) */
static int scope_slot_(const Scope *s, const char *name)
{
    int mask = s->cap - 1, k = (int)(str_hash(name) & (uint64_t)mask);
    while (s->tab[k] && !str_eq(s->tab[k]->name, name)) k = (k + 1) & mask;
    return k;
}

static Sym *scope_find_local_(const Scope *s, const char *name)
{
    return s->cap ? s->tab[scope_slot_(s, name)] : NULL;
}

static Sym *scope_find_(Scope *s, const char *name)
{
    for (; s; s = s->parent) {
        Sym *y = scope_find_local_(s, name);
        if (y) return y;
    }
    return NULL;
}

static void scope_grow_(Check *c, Scope *s)
{
    Sym **old = s->tab;
    int oldcap = s->cap;
    s->cap = oldcap ? 2 * oldcap : 8;
    s->tab = arena_alloc(c->arena, sizeof(Sym *) * (size_t)s->cap);
    for (int i = 0; i < oldcap; i++)
        if (old[i]) s->tab[scope_slot_(s, old[i]->name)] = old[i];
}

static Sym *scope_bind_(Check *c, Scope *s, const char *name, SymKind kind, CVal v, Loc loc)
{
    if (2 * (s->n + 1) > s->cap) scope_grow_(c, s);
    Sym *y = arena_alloc(c->arena, sizeof *y);
    *y = (Sym){.name = name, .kind = kind, .val = v, .loc = loc, .next = s->syms};
    s->syms = y;
    int k = scope_slot_(s, name);
    Sym *old = s->tab[k];
    if (old) y->decl = old->declared ? old : old->decl;
    else s->n++;
    s->tab[k] = y;
    return y;
}

/* Levenshtein distance, for "did you mean" */
static int edit_distance_(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 40 || lb > 40) return 99;
    int row[41];
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int cur = row[j];
            int best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

static const char *suggest_(Check *c, const char *name)
{
    const char *best = NULL;
    int bestd = (int)strlen(name) / 3 + 1;
    if (bestd > 3) bestd = 3;
    for (Scope *s = c->scope; s; s = s->parent)
        for (Sym *y = s->syms; y; y = y->next) {
            int d = edit_distance_(name, y->name);
            if (d <= bestd && (!best || d < bestd)) best = y->name, bestd = d;
        }
    const char *names[128];
    int n = builtin_names(names, 128);
    for (int i = 0; i < n; i++) {
        int d = edit_distance_(name, names[i]);
        if (d <= bestd && (!best || d < bestd)) best = names[i], bestd = d;
    }
    return best;
}

const char *suggest_among(const char *name, const char *const *cands, int n)
{
    const char *best = NULL;
    int bestd = (int)strlen(name) / 3 + 1;
    if (strlen(name) > 40) return NULL; /* edit_distance_ stops there: no suggestion rather than any */
    for (int i = 0; i < n; i++) {
        if (!cands[i]) continue;
        int d = edit_distance_(name, cands[i]);
        if (d <= bestd && (!best || d < bestd)) best = cands[i], bestd = d;
    }
    return best;
}

/* ---- names of layers and def calls ---------------------------------------------------------------- */
static int counter_next_(Check *c, const char *op)
{
    for (int i = 0; i < c->ncounters; i++)
        if (str_eq(c->counters_names[i], op)) return ++c->counters[i];
    if (c->ncounters < 64) {
        c->counters_names[c->ncounters] = op;
        c->counters[c->ncounters] = 1;
        c->ncounters++;
    }
    return 1;
}

const char *check_layer_name(Check *c, Expr *call, const char *given, const char *opname)
{
    int k = counter_next_(c, opname); /* K counts every call of the op in this scope, named or not */
    const char *base = given ? given
                       : call == c->bind_expr && c->bind_name ? c->bind_name
                                                              : arena_printf(c->arena, "%s_%d", opname, k);
    const char *full = arena_printf(c->arena, "%s%s", c->prefix, base);
    int *next = namemap_get(&c->taken, full); /* taken: try BASE_2, BASE_3, ... from where the last search ended */
    if (next) {
        int i = *next;
        const char *cand;
        while (namemap_get(&c->taken, cand = arena_printf(c->arena, "%s%s_%d", c->prefix, base, i))) i++;
        *next = i + 1;
        full = cand;
    }
    namemap_put(&c->taken, full, 2);
    return full;
}

int check_add_param(Check *c, const char *layer, const char *what, TensorKind kind, Shape s, Init init, Loc loc)
{
    const char *name = arena_printf(c->arena, "%s.%s", layer, what);
    if (!shape_fits(s)) {
        char buf[160];
        diag_error(loc, "'%s' would be %s: more than %" PRId64 " (2^31 - 1) values in one tensor", name,
                   shape_str(s, buf, sizeof buf), MAX_ELEMS);
        return -1;
    }
    int t = model_add_tensor(c->model, name, kind, DT_F32, s, init, loc);
    c->model->tensors.data[t].layer = c->model->layers.len; /* the row check_add_layer_row adds next */
    return graph_add_typed(c->g, OP_TENSOR, NULL, 0, NULL, DT_F32, s, t, loc);
}

void check_add_layer_row(Check *c, const char *name, const char *op, int value, Loc loc)
{
    if (value < 0) return;
    Layer row = {.name = name, .op = op, .value = value, .loc = loc};
    /* the layer's tensors are the last ones added (check_add_param marks them with this row's index) */
    for (int i = c->model->tensors.len - 1; i >= 0 && c->model->tensors.data[i].layer == c->model->layers.len; i--)
        row.params += shape_count(c->model->tensors.data[i].shape, 1);
    vec_push(&c->model->layers, row);
}

int check_normalize_axis(Check *c, int64_t axis, int rank, Loc loc)
{
    (void)c;
    if (axis < -rank || axis >= rank) {
        diag_error(loc, "axis %" PRId64 " is out of range for a value of rank %d (axes count from the batch axis)",
                   axis, rank);
        return -1;
    }
    return (int)(axis < 0 ? axis + rank : axis);
}

/* ---- expressions ----------------------------------------------------------------------------------- */
static CVal eval_(Check *c, Expr *e);
static CVal call_(Check *c, Expr *e);

static bool is_number_(CVal v) { return v.kind == CV_INT || v.kind == CV_FLOAT; }

/* integer results must fit in 64 bits: |r| below 9.0e18 computed in double means the exact one does */
static CVal int_result_(Expr *e, double approx, int64_t exact)
{
    if (fabs(approx) >= 9.0e18) {
        diag_error(e->loc, "integer overflow in a constant expression");
        return cv_error();
    }
    return cv_int(exact, e->loc);
}

static int64_t wrap_(uint64_t x) { return (int64_t)x; } /* only used where the result is known to fit */

static CVal fold_binary_(Expr *e, CVal a, CVal b)
{
    bool ints = a.kind == CV_INT && b.kind == CV_INT;
    double x = (double)a.i, y = (double)b.i;
    switch (e->op) {
    case '+':
        if (ints) return int_result_(e, x + y, wrap_((uint64_t)a.i + (uint64_t)b.i));
        return (CVal){.kind = CV_FLOAT, .f = a.f + b.f, .loc = e->loc};
    case '-':
        if (ints) return int_result_(e, x - y, wrap_((uint64_t)a.i - (uint64_t)b.i));
        return (CVal){.kind = CV_FLOAT, .f = a.f - b.f, .loc = e->loc};
    case '*':
        if (ints) return int_result_(e, x * y, fabs(x * y) < 9.0e18 ? a.i * b.i : 0);
        return (CVal){.kind = CV_FLOAT, .f = a.f * b.f, .loc = e->loc};
    case '/':
        if (b.f == 0) {
            diag_error(e->loc, "division by zero in a constant expression");
            return cv_error();
        }
        return (CVal){.kind = CV_FLOAT, .f = a.f / b.f, .loc = e->loc};
    case 'P':
        if (ints && b.i >= 0) {
            double approx = pow(x, y);
            if (fabs(approx) >= 9.0e18) return int_result_(e, approx, 0);
            if (a.i == 0 || a.i == 1) return cv_int(b.i == 0 ? 1 : a.i, e->loc); /* any exponent, no loop */
            if (a.i == -1) return cv_int(b.i % 2 ? -1 : 1, e->loc);
            int64_t r = 1; /* |a| >= 2 and the result fits: b < 63 */
            for (int64_t k = 0; k < b.i; k++) r *= a.i;
            return cv_int(r, e->loc);
        }
        return (CVal){.kind = CV_FLOAT, .f = pow(a.f, b.f), .loc = e->loc};
    default:
        diag_error(e->loc, "'@' needs tensors, not numbers");
        return cv_error();
    }
}

/* Bring two operands to one dtype: i32 tensors meet f32 as f32 (NumPy promotes too). */
int check_binary_op(Check *c, OpKind op, CVal a, CVal b, Loc loc)
{
    DType da = a.kind == CV_TENSOR ? c->g->v[a.id].dtype : DT_VOID;
    DType db = b.kind == CV_TENSOR ? c->g->v[b.id].dtype : DT_VOID;
    DType want = da == DT_F32 || db == DT_F32 ? DT_F32 : da == DT_I32 || db == DT_I32 ? DT_I32 : DT_F32;
    if ((a.kind == CV_FLOAT && a.f != floor(a.f)) || (b.kind == CV_FLOAT && b.f != floor(b.f))) want = DT_F32;
    if (op == OP_DIV) want = DT_F32;
    const char *what = shape_error_context ? shape_error_context : op_info[op].name;
    int x = cv_to_tensor(c, a, want, what), y = cv_to_tensor(c, b, want, what);
    if (x < 0 || y < 0) return -1;
    x = ir_cast(c->g, x, want, loc);
    y = ir_cast(c->g, y, want, loc);
    int id = ir_binary(c->g, op, x, y, loc);
    dep_update_(c);
    return id;
}

static CVal eval_binary_(Check *c, Expr *e)
{
    CVal a = eval_(c, e->lhs), b = eval_(c, e->rhs);
    if (a.kind == CV_ERROR || b.kind == CV_ERROR) return cv_error();
    if (is_number_(a) && is_number_(b)) return fold_binary_(e, a, b);
    static const struct { int tok; OpKind op; } ops[] = {{'+', OP_ADD}, {'-', OP_SUB}, {'*', OP_MUL}, {'/', OP_DIV}};
    if (e->op == '@') {
        int x = cv_to_tensor(c, a, DT_F32, "@"), y = cv_to_tensor(c, b, DT_F32, "@");
        x = ir_cast(c->g, x, DT_F32, e->loc);
        y = ir_cast(c->g, y, DT_F32, e->loc);
        shape_error_context = "@";
        int id = ir_binary(c->g, OP_MATMUL, x, y, e->loc);
        shape_error_context = NULL;
        dep_update_(c);
        return cv_tensor(c, id, e->loc);
    }
    if (e->op == 'P') {
        if (!is_number_(b)) {
            diag_error(e->rhs->loc, "the exponent of '**' must be a constant number");
            return cv_error();
        }
        int x = ir_cast(c->g, cv_to_tensor(c, a, DT_F32, "**"), DT_F32, e->loc);
        int id = b.f == 2 ? ir_unary(c->g, OP_SQUARE, x, e->loc)
                 : b.f == 1 ? x
                            : ir_op1f(c->g, OP_POWC, x, b.f, 0, e->loc);
        dep_update_(c);
        return cv_tensor(c, id, e->loc);
    }
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (ops[i].tok == e->op) {
            const char *names[] = {"+", "-", "*", "/"};
            shape_error_context = names[i];
            int id = check_binary_op(c, ops[i].op, a, b, e->loc);
            shape_error_context = NULL;
            return cv_tensor(c, id, e->loc);
        }
    NNC_UNREACHABLE();
}

static CVal eval_name_(Check *c, Expr *e)
{
    Sym *y = scope_find_(c->scope, e->str);
    if (y && y->kind != SYM_DEF) {
        CVal v = y->val;
        v.loc = e->loc;
        return v;
    }
    if (y && y->kind == SYM_DEF) return (CVal){.kind = CV_FUNC, .s = e->str, .loc = e->loc};
    if (str_eq(e->str, "true") || str_eq(e->str, "false"))
        return (CVal){.kind = CV_BOOL, .i = str_eq(e->str, "true"), .f = str_eq(e->str, "true"), .loc = e->loc};
    if (str_eq(e->str, "none")) return (CVal){.kind = CV_NONE, .loc = e->loc};
    if (builtin_find(e->str)) return (CVal){.kind = CV_FUNC, .s = e->str, .loc = e->loc};
    const char *hint = suggest_(c, e->str);
    if (hint && e == c->def_arg && check_activation_known(hint) && !scope_find_(c->scope, hint))
        check_report_activation(e->loc, e->str); /* act=sofmax in a def call: as activation=sofmax says it */
    else if (hint)
        diag_error(e->loc, "use of undeclared name '%s'; did you mean '%s'?", e->str, hint);
    else
        diag_error(e->loc, "use of undeclared name '%s'", e->str);
    return cv_error();
}

static CVal eval_list_(Check *c, Expr *e)
{
    CVal v = {.kind = CV_LIST, .loc = e->loc, .n = e->nitems};
    v.items = arena_alloc(c->arena, sizeof(CVal) * (size_t)(e->nitems ? e->nitems : 1));
    for (int i = 0; i < e->nitems; i++) {
        v.items[i] = eval_(c, e->items[i]);
        if (v.items[i].kind == CV_ERROR) return cv_error();
    }
    return v;
}

/* false (reported once) when the def calls of the model have evaluated MAX_DEF_WORK expressions */
static bool def_work_ok_(Check *c)
{
    if (c->depth == 0 || ++c->def_work <= MAX_DEF_WORK) return true;
    if (c->def_work == MAX_DEF_WORK + 1)
        diag_error(c->def_call->loc,
                   "'%s': inlining the def calls of this model evaluates more than %d expressions; every call of a "
                   "def is inlined anew, so a def that calls another def twice doubles the work at each level",
                   c->def_call->str, MAX_DEF_WORK);
    return false;
}

static CVal eval_(Check *c, Expr *e)
{
    if (diag_too_many() || !def_work_ok_(c)) return cv_error();
    if (++c->expr_depth > MAX_EXPR_DEPTH) {
        c->expr_depth--;
        diag_error(e->loc, "expression nested too deeply (more than %d levels)", MAX_EXPR_DEPTH);
        return cv_error();
    }
    CVal r;
    switch (e->kind) {
    case EX_INT: r = cv_int(e->ival, e->loc); break;
    case EX_FLOAT: r = (CVal){.kind = CV_FLOAT, .f = e->fval, .loc = e->loc}; break;
    case EX_STRING: r = (CVal){.kind = CV_STRING, .s = e->str, .loc = e->loc}; break;
    case EX_NAME: r = eval_name_(c, e); break;
    case EX_LIST: r = eval_list_(c, e); break;
    case EX_BINARY: r = eval_binary_(c, e); break;
    case EX_CALL: r = call_(c, e); break;
    case EX_UNARY: {
        CVal x = eval_(c, e->lhs);
        if (x.kind == CV_INT && x.i == INT64_MIN) {
            diag_error(e->loc, "integer overflow in a constant expression");
            r = cv_error();
        } else if (x.kind == CV_INT)
            r = cv_int(-x.i, e->loc);
        else if (x.kind == CV_FLOAT) r = (CVal){.kind = CV_FLOAT, .f = -x.f, .loc = e->loc};
        else if (x.kind == CV_ERROR) r = x;
        else {
            int id = cv_to_tensor(c, x, DT_F32, "-");
            r = cv_tensor(c, id < 0 ? -1 : ir_unary(c->g, OP_NEG, id, e->loc), e->loc);
            dep_update_(c);
        }
        break;
    }
    default: NNC_UNREACHABLE();
    }
    c->expr_depth--;
    return r;
}

/* ---- calls: argument binding ------------------------------------------------------------------------ */
static CVal parse_default_(Check *c, const char *d, Loc loc)
{
    if (str_eq(d, "none")) return (CVal){.kind = CV_NONE, .loc = loc};
    if (str_eq(d, "true") || str_eq(d, "false"))
        return (CVal){.kind = CV_BOOL, .i = str_eq(d, "true"), .f = str_eq(d, "true"), .loc = loc};
    if ((d[0] >= '0' && d[0] <= '9') || d[0] == '-' || d[0] == '.') {
        if (strpbrk(d, ".eE")) return (CVal){.kind = CV_FLOAT, .f = strtod(d, NULL), .loc = loc};
        return cv_int(strtoll(d, NULL, 10), loc);
    }
    (void)c;
    return (CVal){.kind = CV_STRING, .s = d, .loc = loc};
}

/* Arguments that name a choice (activation=relu, padding=same) may be bare words. */
static CVal eval_word_(Check *c, Expr *e)
{
    if (e->kind == EX_NAME && !scope_find_(c->scope, e->str) && !str_eq(e->str, "none") &&
        !str_eq(e->str, "true") && !str_eq(e->str, "false"))
        return (CVal){.kind = CV_STRING, .s = e->str, .loc = e->loc};
    CVal v = eval_(c, e);
    if (v.kind == CV_FUNC) v.kind = CV_STRING;
    return v;
}

static bool coerce_arg_(Check *c, const Builtin *b, const ParamSpec *p, CVal *v)
{
    const char *want = NULL;
    switch (p->kind) {
    case A_TENSOR:
        if (v->kind == CV_TENSOR || is_number_(*v) || v->kind == CV_LIST) return true;
        want = "a tensor";
        break;
    case A_ANY: return true;
    case A_INT:
        if (v->kind == CV_INT) return true;
        if (v->kind == CV_FLOAT && v->f == floor(v->f) && fabs(v->f) < 1e15) {
            *v = cv_int((int64_t)v->f, v->loc);
            return true;
        }
        want = "an integer";
        break;
    case A_NUM:
        if (is_number_(*v) && isfinite(v->f)) return true;
        if (is_number_(*v)) { /* inf and nan come from arithmetic (1e308 * 10): no hyperparameter takes them */
            diag_error(v->loc, "%s: argument '%s' must be a finite number, found %s", b->name, p->name,
                       isnan(v->f) ? "nan" : v->f > 0 ? "inf" : "-inf");
            return false;
        }
        want = "a number";
        break;
    case A_BOOL:
        if (v->kind == CV_BOOL) return true;
        if (v->kind == CV_INT && (v->i == 0 || v->i == 1)) {
            v->kind = CV_BOOL;
            return true;
        }
        want = "true or false";
        break;
    case A_INT2:
        if (v->kind == CV_INT) return true;
        if (v->kind == CV_LIST && v->n == 2 && v->items[0].kind == CV_INT && v->items[1].kind == CV_INT) return true;
        want = "an integer or a list of two integers";
        break;
    case A_AXIS:
        if (v->kind == CV_INT || v->kind == CV_NONE) return true;
        want = "an integer axis";
        break;
    case A_AXES:
        if (v->kind == CV_INT || v->kind == CV_NONE) return true;
        if (v->kind == CV_LIST) {
            bool ok = true;
            for (int i = 0; i < v->n; i++) ok &= v->items[i].kind == CV_INT;
            if (ok) return true;
        }
        want = "an axis or a list of axes";
        break;
    case A_INTS:
        if (v->kind == CV_LIST) {
            bool ok = true;
            for (int i = 0; i < v->n; i++) ok &= v->items[i].kind == CV_INT;
            if (ok) return true;
        }
        want = "a list of integers";
        break;
    case A_ACT:
        if (v->kind == CV_STRING && !check_activation_known(v->s)) {
            /* reported here, whatever else is wrong with the call; the call goes on without an activation
             * (which changes no shape), so that the builtin still reports its own errors */
            check_report_activation(v->loc, v->s);
            *v = (CVal){.kind = CV_NONE, .loc = v->loc};
            return true;
        }
        /* fall through */
    case A_PADDING: /* valid, same or [top, bottom, left, right]: the builtin checks which it takes */
    case A_STRING:
        if (v->kind == CV_STRING || v->kind == CV_NONE || (p->kind == A_PADDING && v->kind == CV_LIST)) return true;
        want = p->kind == A_ACT ? arena_printf(c->arena, "an activation (%s)", check_activation_list())
               : p->kind == A_PADDING ? "valid, same or a list [top, bottom, left, right]" : "a string";
        break;
    }
    diag_error(v->loc, "%s: argument '%s' must be %s, found %s", b->name, p->name, want, cv_kind_name_(v->kind));
    return false;
}

static int param_index_(const Builtin *b, const char *name)
{
    for (int i = 0; i < MAX_PARAMS && b->params[i].name; i++)
        if (str_eq(b->params[i].name, name)) return i;
    return -1;
}

static int nparams_(const Builtin *b)
{
    int n = 0;
    while (n < MAX_PARAMS && b->params[n].name) n++;
    return n;
}

/* Match positional then keyword arguments to the builtin's parameters; evaluate each by its kind.
 * Extra positional tensors of a variadic builtin (concat) land in *extra. */
static bool bind_args_(Check *c, const Builtin *b, Expr *call, CVal *out, CVal **extra, int *nextra)
{
    int np = nparams_(b);
    Expr *given[MAX_PARAMS] = {0};
    Loc kwloc[MAX_PARAMS];
    bool ok = true, seen_kw = false;
    int pos = 0;
    *nextra = 0;
    *extra = arena_alloc(c->arena, sizeof(CVal) * (size_t)(call->nargs + 1));
    for (int k = 0; k < call->nargs; k++) {
        Arg *a = &call->args[k];
        if (!a->name) {
            if (seen_kw) {
                diag_error(a->value->loc, "%s: positional argument after keyword arguments", b->name);
                ok = false;
                continue;
            }
            while (pos < np && str_eq(b->params[pos].name, "name")) pos++;
            if (pos >= np || (b->variadic && pos >= b->variadic)) {
                if (b->variadic && pos >= b->variadic) {
                    (*extra)[(*nextra)++] = eval_(c, a->value);
                    continue;
                }
                int takes = 0;
                for (int j = 0; j < np; j++) takes += !str_eq(b->params[j].name, "name");
                if (b->variadic) takes = b->variadic;
                diag_error(a->value->loc, "%s: too many arguments (it takes at most %d)", b->name, takes);
                ok = false;
                continue;
            }
            given[pos] = a->value;
            kwloc[pos] = a->value->loc;
            pos++;
            continue;
        }
        seen_kw = true;
        int i = param_index_(b, a->name);
        if (i < 0) {
            const char *cands[MAX_PARAMS];
            for (int j = 0; j < np; j++) cands[j] = b->params[j].name;
            const char *hint = suggest_among(a->name, cands, np);
            if (hint)
                diag_error(a->name_loc, "%s: unknown argument '%s'; did you mean '%s'?", b->name, a->name, hint);
            else
                diag_error(a->name_loc, "%s: unknown argument '%s'", b->name, a->name);
            ok = false;
            continue;
        }
        if (given[i]) {
            diag_error(a->name_loc, "%s: argument '%s' given twice", b->name, a->name);
            ok = false;
            continue;
        }
        given[i] = a->value;
        kwloc[i] = a->name_loc;
    }
    for (int i = 0; i < np; i++) {
        const ParamSpec *p = &b->params[i];
        if (!given[i]) {
            if (!p->dflt) {
                diag_error(call->loc, "%s: missing argument '%s'", b->name, p->name);
                ok = false;
                out[i] = cv_error();
                continue;
            }
            out[i] = parse_default_(c, p->dflt, call->loc);
            continue;
        }
        bool word = p->kind == A_ACT || p->kind == A_PADDING || p->kind == A_STRING;
        out[i] = word ? eval_word_(c, given[i]) : eval_(c, given[i]);
        if (out[i].kind == CV_ERROR) {
            ok = false;
            continue;
        }
        out[i].loc = call->piped && i == 0 && given[i] == call->args[0].value ? call->loc : given[i]->loc;
        if (!coerce_arg_(c, b, p, &out[i])) {
            ok = false;
            out[i] = cv_error();
        }
        (void)kwloc;
    }
    return ok;
}

CVal check_eval_expr(Check *c, Expr *e) { return eval_(c, e); }

bool check_bind_builtin(Check *c, const Builtin *b, Expr *call, CVal *out)
{
    CVal *extra;
    int nextra;
    return bind_args_(c, b, call, out, &extra, &nextra);
}

/* ---- def inlining -------------------------------------------------------------------------------- */
static CVal run_def_body_(Check *c, Item *def, Expr *call);

static CVal call_def_(Check *c, Item *def, Expr *call)
{
    if (c->g->n > MAX_VALUES) {
        if (!c->too_big) diag_error(call->loc, "the model is too large: more than %d values after inlining defs", MAX_VALUES);
        c->too_big = true;
        return cv_error();
    }
    if (c->depth >= MAX_DEF_DEPTH) {
        diag_error(call->loc, "'%s' is called recursively (more than %d nested def calls)", def->name,
                   MAX_DEF_DEPTH);
        return cv_error();
    }
    /* bind arguments in the caller's scope */
    Scope *s = scope_push_(c, c->globals);
    bool bound[MAX_DEF_PARAMS] = {0}, ok = true, seen_kw = false;
    const char *given_name = NULL;
    int pos = 0;
    if (def->nparams > MAX_DEF_PARAMS) return cv_error(); /* reported at the def (declare_defs_) */
    for (int k = 0; k < call->nargs; k++) {
        Arg *a = &call->args[k];
        int i = -1;
        if (a->name && str_eq(a->name, "name")) {
            CVal v = eval_word_(c, a->value);
            if (v.kind != CV_STRING) {
                diag_error(a->value->loc, "%s: argument 'name' must be a string", def->name);
                ok = false;
            } else {
                given_name = v.s;
            }
            seen_kw = true;
            continue;
        }
        if (!a->name) {
            if (seen_kw) {
                diag_error(a->value->loc, "%s: positional argument after keyword arguments", def->name);
                ok = false;
                continue;
            }
            if (pos >= def->nparams) {
                diag_error(a->value->loc, "%s: too many arguments (it takes %d)", def->name, def->nparams);
                ok = false;
                continue;
            }
            i = pos++;
        } else {
            seen_kw = true;
            for (int j = 0; j < def->nparams; j++)
                if (str_eq(def->params[j].name, a->name)) i = j;
            if (i < 0) {
                diag_error(a->name_loc, "%s: unknown argument '%s'", def->name, a->name);
                ok = false;
                continue;
            }
            if (bound[i]) {
                diag_error(a->name_loc, "%s: argument '%s' given twice", def->name, a->name);
                ok = false;
                continue;
            }
        }
        c->def_arg = a->value; /* a bare word here may be meant as an activation (act=relu) */
        CVal v = eval_(c, a->value);
        c->def_arg = NULL;
        if (v.kind == CV_ERROR) ok = false;
        scope_bind_(c, s, def->params[i].name, SYM_VALUE, v, def->params[i].loc);
        bound[i] = true;
    }
    Scope *saved = c->scope;
    c->scope = scope_push_(c, c->globals);
    for (int i = 0; i < def->nparams; i++) {
        if (bound[i]) continue;
        if (!def->params[i].dflt) {
            diag_error(call->loc, "%s: missing argument '%s'", def->name, def->params[i].name);
            ok = false;
            continue;
        }
        CVal v = eval_(c, def->params[i].dflt);
        scope_bind_(c, s, def->params[i].name, SYM_VALUE, v, def->params[i].loc);
    }
    c->scope = saved;
    if (!ok) return cv_error();

    const char *callname = check_layer_name(c, call, given_name, def->name);
    const char *saved_prefix = c->prefix, *saved_bind = c->bind_name;
    Expr *saved_expr = c->bind_expr;
    int saved_n = c->ncounters;
    int saved_counts[64];
    const char *saved_names[64];
    memcpy(saved_counts, c->counters, sizeof saved_counts);
    memcpy(saved_names, c->counters_names, sizeof saved_names);
    c->prefix = arena_printf(c->arena, "%s.", callname);
    c->ncounters = 0;
    c->scope = s;
    c->depth++;
    Expr *saved_call = c->def_call;
    c->def_call = call;
    int errors = diag_error_count();
    CVal r = run_def_body_(c, def, call);
    /* the call chain of an error, like clang's instantiation notes: the innermost call and the 3 outermost */
    if (diag_error_count() > errors && (c->depth <= 3 || !c->noted_inner)) diag_note(call->loc, "in the call of '%s' here", def->name);
    else if (diag_error_count() > errors && c->depth == 4) diag_note(call->loc, "(and more nested calls)");
    c->noted_inner = diag_error_count() > errors;
    if (c->depth == 1) c->noted_inner = false;
    c->depth--;
    c->def_call = saved_call;
    c->scope = saved;
    c->prefix = saved_prefix;
    c->bind_name = saved_bind;
    c->bind_expr = saved_expr;
    c->ncounters = saved_n;
    memcpy(c->counters, saved_counts, sizeof saved_counts);
    memcpy(c->counters_names, saved_names, sizeof saved_names);
    return r;
}

static CVal call_(Check *c, Expr *e)
{
    if (e->str[0] == 0) {
        diag_error(e->loc, "the right side of '|>' must be a call, like 'x |> dense(10)'");
        return cv_error();
    }
    Sym *y = scope_find_(c->scope, e->str);
    if (y && y->kind == SYM_DEF) return call_def_(c, y->def, e);
    if (y) {
        diag_error(e->loc, "'%s' is a value, not a function", e->str);
        return cv_error();
    }
    const Builtin *b = builtin_find(e->str);
    if (!b) {
        const char *hint = suggest_(c, e->str);
        if (hint)
            diag_error(e->loc, "unknown function '%s'; did you mean '%s'?", e->str, hint);
        else
            diag_error(e->loc, "unknown function '%s'", e->str);
        for (int k = 0; k < e->nargs; k++) eval_(c, e->args[k].value); /* report errors inside, too */
        return cv_error();
    }
    if (b->kind == BK_OPTIMIZER) {
        if (str_eq(e->str, "train"))
            diag_error(e->loc, "'train' is a statement of its own: train(epochs=..., batch=...), not a function");
        else
            diag_error(e->loc, "'%s' is an optimizer; use it in an 'optimizer' statement", e->str);
        return cv_error();
    }
    CVal args[MAX_PARAMS + 1];
    CVal *extra;
    int nextra;
    if (!bind_args_(c, b, e, args, &extra, &nextra)) return cv_error();
    args[MAX_PARAMS] = (CVal){.kind = CV_LIST, .items = extra, .n = nextra};
    shape_error_context = b->name;
    CVal r = b->fn(c, b, e, args);
    shape_error_context = NULL;
    dep_update_(c);
    return r;
}

/* ---- statements ------------------------------------------------------------------------------------ */
static CVal const_value_(Check *c, CVal v, Loc loc, const char *name);

/* one dimension of a declared type: a positive integer up to MAX_ELEMS (reported, -1, when not) */
static int64_t check_dim_(Check *c, Expr *e)
{
    CVal v = eval_(c, e);
    if (v.kind == CV_FLOAT && v.f == floor(v.f) && fabs(v.f) < 1e15) v = cv_int((int64_t)v.f, v.loc);
    if (v.kind == CV_TENSOR) v = const_value_(c, v, e->loc, "a dimension");
    if (v.kind == CV_ERROR) return -1;
    if (v.kind == CV_INT && v.i >= 1 && v.i <= MAX_ELEMS) return v.i;
    if (v.kind == CV_INT && v.i > MAX_ELEMS)
        diag_error(e->loc, "a dimension must be at most %" PRId64 " (2^31 - 1), found %" PRId64, MAX_ELEMS, v.i);
    else if (v.kind == CV_INT)
        diag_error(e->loc, "a dimension must be a positive integer, found %" PRId64, v.i);
    else if (v.kind == CV_FLOAT)
        diag_error(e->loc, "a dimension must be a positive integer, found %g", v.f);
    else
        diag_error(e->loc, "a dimension must be a positive integer, found %s", cv_kind_name_(v.kind));
    return -1;
}

/* f32[...] / i32[...]: a batched type (input, target) has at most MAX_RANK - 1 axes, for the batch axis;
 * a parameter at most MAX_RANK; either at most MAX_ELEMS elements (per sample) */
static bool check_type_(Check *c, TypeExpr *t, bool batched, DType *dt, Shape *s)
{
    if (t->dtype == 0) {
        diag_error(t->loc, "unknown type; expected f32[...] or i32[...]");
        return false;
    }
    *dt = (DType)t->dtype;
    *s = (Shape){0};
    if (batched) s->d[s->rank++] = DIM_B;
    int max_axes = batched ? MAX_RANK - 1 : MAX_RANK;
    if (t->ndims > max_axes) {
        diag_error(t->loc, "too many axes: %d (at most %d%s)", t->ndims, max_axes,
                   batched ? " per sample, besides the batch axis" : "");
        return false;
    }
    bool ok = true;
    for (int i = 0; i < t->ndims; i++) {
        int64_t d = check_dim_(c, t->dims[i]);
        ok &= d > 0;
        s->d[s->rank++] = d;
    }
    int64_t n = ok ? shape_per_sample_sat(*s) : 0;
    if (n > MAX_ELEMS) {
        char buf[160], count[32];
        Shape written = *s; /* as written: without the batch axis */
        if (batched) written = shape_make(s->rank - 1, s->d + 1);
        diag_error(t->loc, "%s%s has %s elements%s; a tensor holds at most %" PRId64 " (2^31 - 1)",
                   dtype_name(*dt), shape_str(written, buf, sizeof buf), count_str_sat(n, count), batched ? " per sample" : "",
                   MAX_ELEMS);
        ok = false;
    }
    return ok;
}

/* A declaration (input, target, param, const) may not reuse a name declared in this scope; plain
 * assignments may rebind any name, the newest binding wins. */
static bool name_free_(Check *c, const char *name, Loc loc)
{
    Sym *y = scope_find_local_(c->scope, name);
    if (y && !y->declared) y = y->decl;
    if (!y) return true;
    diag_error(loc, "'%s' is already declared", name);
    diag_note(y->loc, "previous declaration is here");
    return false;
}

static void stmt_io_(Check *c, Stmt *s)
{
    DType dt;
    Shape sh;
    if (!name_free_(c, s->name, s->name_loc)) return;
    Model *m = c->model; /* inputs and targets are declared in the model's scope: name_free_ saw them */
    if (s->kind == ST_INPUT) c->input_decls++;
    if (!check_type_(c, s->type, true, &dt, &sh)) {
        scope_bind_(c, c->scope, s->name, SYM_CONST, cv_error(), s->name_loc)->declared = true; /* no follow-on errors */
        return;
    }
    bool target = s->kind == ST_TARGET;
    IOSlot io = {.name = s->name, .dtype = dt, .shape = sh, .loc = s->name_loc};
    int index = target ? m->targets.len : m->inputs.len;
    Attr role = {.i = {target}}; /* i[0]: 0 input, 1 target; tensor: its index among them */
    io.value = graph_add_typed(c->g, OP_INPUT, NULL, 0, &role, dt, sh, index, s->name_loc);
    c->g->v[io.value].name = s->name;
    if (target) {
        vec_push(&m->targets, io);
        check_mark_target(c, io.value);
    } else {
        vec_push(&m->inputs, io);
        Layer row = {.name = s->name, .op = "input", .value = io.value, .loc = s->loc};
        vec_push(&m->layers, row);
    }
    scope_bind_(c, c->scope, s->name, SYM_CONST, cv_tensor(c, io.value, s->name_loc), s->name_loc)->declared = true;
}

static void stmt_param_(Check *c, Stmt *s)
{
    DType dt;
    Shape sh;
    if (!name_free_(c, s->name, s->name_loc)) return;
    bool ok = check_type_(c, s->type, false, &dt, &sh);
    if (ok && dt != DT_F32) {
        diag_error(s->type->loc, "parameters must be f32");
        ok = false;
    }
    Init init = {0};
    if (ok) init = check_init(c, s->expr, sh, &ok);
    if (!ok) { /* bound anyway, so later uses of the name add no errors */
        scope_bind_(c, c->scope, s->name, SYM_VALUE, cv_error(), s->name_loc)->declared = true;
        return;
    }
    const char *name = c->prefix[0] ? arena_printf(c->arena, "%s%s", c->prefix, s->name) : s->name;
    if (model_find_tensor(c->model, name) >= 0) {
        diag_error(s->name_loc, "a parameter named '%s' already exists", name);
        return;
    }
    int t = model_add_tensor(c->model, name, TK_PARAM, DT_F32, sh, init, s->name_loc);
    int id = graph_add_typed(c->g, OP_TENSOR, NULL, 0, NULL, DT_F32, sh, t, s->name_loc);
    c->model->tensors.data[t].layer = c->model->layers.len;
    check_add_layer_row(c, name, "param", id, s->loc);
    scope_bind_(c, c->scope, s->name, SYM_VALUE, cv_tensor(c, id, s->name_loc), s->name_loc)->declared = true;
}

/* ---- constants: values computed from numbers only, evaluated in double precision ---------------------- */
/* one elementwise op, from its scalar definition in ops.def, in double */
static double ew_double_(OpKind op, const Attr *a, double x, double y, double z)
{
    typedef double nnc_real;
    typedef nnc_real T;
    const nnc_real a0 = a->f[0], a1 = a->f[1];
    if (op == OP_CAST) return a->i[0] == DT_I32 ? trunc(x) : x;
    switch (op) {
#include "ops_eval.inc"
    default: break;
    }
    NNC_UNREACHABLE();
}

/* Folding a constant: each value's elements are computed once (memoized by id for the whole check, since
 * values never change) and a failure keeps its reason, so that the message says why. */
enum { FOLD_MAX_ELEMS = 1 << 20, FOLD_MAX_DEPTH = 10000 };

static FoldMemo *fold_memo_(Check *c, int id)
{
    while (c->fold.len < c->g->n) vec_push(&c->fold, ((FoldMemo){0}));
    return &c->fold.data[id];
}

static double *fold_fail_(Check *c, int id, FoldState why, int culprit)
{
    FoldMemo *f = fold_memo_(c, id);
    f->state = why;
    f->culprit = culprit;
    return NULL;
}

/* the failure of input `in` becomes id's */
static double *fold_fail_as_(Check *c, int id, int in)
{
    FoldMemo f = *fold_memo_(c, in);
    return fold_fail_(c, id, f.state, f.culprit);
}

static double *const_eval_(Check *c, int id, int depth);

/* elementwise op over folded inputs, with broadcasting */
static double *fold_ew_(Check *c, Value *v, double *const in[3], int64_t n)
{
    double *r = arena_alloc(c->arena, sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t o = 0; o < n; o++) {
        double x[3] = {0};
        for (int k = 0; k < v->nin; k++) {
            Shape is = c->g->v[v->in[k]].shape;
            int64_t idx = 0, stride = 1, rest = o;
            for (int i = v->shape.rank - 1; i >= 0; i--) {
                int64_t cc = rest % v->shape.d[i];
                rest /= v->shape.d[i];
                int j = i - (v->shape.rank - is.rank);
                if (j >= 0 && is.d[j] != 1) idx += cc * stride;
                if (j >= 0) stride *= is.d[j];
            }
            x[k] = in[k][idx];
        }
        r[o] = ew_double_(v->op, &v->attr, x[0], x[1], x[2]);
    }
    return r;
}

/* the elements of a value computed from constants only, or NULL with the reason in c->fold[id] */
static double *const_eval_(Check *c, int id, int depth)
{
    FoldMemo *memo = fold_memo_(c, id);
    if (memo->state == FOLD_OK) return memo->d;
    if (memo->state != FOLD_UNKNOWN) return NULL;
    Value *v = &c->g->v[id];
    if (shape_batched(v->shape) || v->op == OP_INPUT || v->op == OP_TENSOR) return fold_fail_(c, id, FOLD_SOURCE, id);
    if (depth > FOLD_MAX_DEPTH) return fold_fail_(c, id, FOLD_DEEP, id);
    double *in[3] = {0};
    for (int k = 0; k < v->nin; k++) {
        double *d = const_eval_(c, v->in[k], depth + 1);
        if (!d) return fold_fail_as_(c, id, v->in[k]);
        if (k < 3) in[k] = d;
    }
    int64_t n = shape_count(v->shape, 1);
    if (n > FOLD_MAX_ELEMS) return fold_fail_(c, id, FOLD_BIG, id);
    double *r = NULL;
    if (v->op == OP_CONST) {
        r = arena_alloc(c->arena, sizeof(double) * (size_t)(n ? n : 1));
        for (int64_t i = 0; i < n; i++)
            r[i] = !v->attr.data ? v->attr.f[0]
                   : v->dtype == DT_I32 ? ((const int32_t *)v->attr.data)[i] : ((const float *)v->attr.data)[i];
    } else if (v->op == OP_RESHAPE) {
        r = in[0];
    } else if (op_has(v->op, F_EW) && v->nin <= 3) {
        r = fold_ew_(c, v, in, n);
    } else {
        return fold_fail_(c, id, FOLD_OP, id);
    }
    memo = fold_memo_(c, id);
    memo->state = FOLD_OK;
    memo->d = r;
    return r;
}

static void fold_report_(Check *c, int id, Loc loc, const char *name)
{
    FoldMemo f = *fold_memo_(c, id);
    Value *v = &c->g->v[f.culprit];
    char buf[160];
    switch (f.state) {
    case FOLD_BIG:
        diag_error(loc, "'%s' is too large to fold at compile time: it computes a value of shape %s (%" PRId64
                        " elements), and constants are folded up to %d elements",
                   name, shape_str(v->shape, buf, sizeof buf), shape_count(v->shape, 1), FOLD_MAX_ELEMS);
        break;
    case FOLD_OP:
        diag_error(loc, "'%s' is not a compile-time constant: constants are folded through elementwise operations "
                        "and reshapes, not '%s'", name, op_info[v->op].name);
        break;
    case FOLD_DEEP:
        diag_error(loc, "'%s' is too deep to fold at compile time (a chain of more than %d operations)", name,
                   FOLD_MAX_DEPTH);
        break;
    default:
        diag_error(loc, "'%s' is not a compile-time constant (it depends on an input or a parameter)", name);
        break;
    }
}

/* `const NAME = EXPR`: a number, a list, or a value computed from numbers only (folded here) */
static CVal const_value_(Check *c, CVal v, Loc loc, const char *name)
{
    if (v.kind != CV_TENSOR) return v;
    double *d = const_eval_(c, v.id, 0);
    if (!d) {
        fold_report_(c, v.id, loc, name);
        return cv_error();
    }
    Value *x = &c->g->v[v.id];
    int64_t n = shape_count(x->shape, 1);
    if (x->shape.rank == 0) {
        if (x->dtype == DT_I32 && fabs(d[0]) < 9.0e18) return cv_int((int64_t)d[0], loc);
        return (CVal){.kind = CV_FLOAT, .f = (double)(float)d[0], .loc = loc};
    }
    float *f = arena_alloc(c->arena, sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) f[i] = (float)d[i];
    Attr a = {.data = f};
    return cv_tensor(c, graph_add_typed(c->g, OP_CONST, NULL, 0, &a, DT_F32, x->shape, -1, loc), loc);
}

static void stmt_assign_(Check *c, Stmt *s, SymKind kind)
{
    if (kind == SYM_CONST && !name_free_(c, s->name, s->name_loc)) return;
    c->bind_name = s->name;
    c->bind_expr = s->expr;
    CVal v = eval_(c, s->expr);
    c->bind_name = NULL;
    c->bind_expr = NULL;
    if (kind == SYM_CONST) v = const_value_(c, v, s->expr->loc, s->name);
    if (v.kind == CV_TENSOR && !c->g->v[v.id].name) c->g->v[v.id].name = s->name;
    scope_bind_(c, c->scope, s->name, kind, v, s->name_loc)->declared = kind == SYM_CONST;
}

static int scalar_of_(Check *c, Stmt *s, const char *what)
{
    CVal v = eval_(c, s->expr);
    if (v.kind == CV_ERROR) return -1;
    int id = cv_to_tensor(c, v, DT_F32, what);
    if (id < 0) return -1;
    id = ir_cast(c->g, id, DT_F32, s->loc);
    char buf[96];
    if (c->g->v[id].shape.rank != 0) {
        diag_error(s->expr->loc, "%s must be a scalar, found shape %s; reduce it, e.g. mean(...)", what,
                   shape_str(c->g->v[id].shape, buf, sizeof buf));
        return -1;
    }
    return id;
}

static void stmt_output_(Check *c, Stmt *s)
{
    Model *m = c->model;
    int *prev = namemap_get(&c->outputs_seen, s->name);
    if (prev) {
        diag_error(s->name_loc, "output '%s' is declared twice", s->name);
        diag_note(m->outputs.data[*prev].loc, "previous declaration is here");
        return;
    }
    int id;
    if (s->expr) {
        stmt_assign_(c, s, SYM_VALUE);
        Sym *y = scope_find_(c->scope, s->name);
        if (y && y->val.kind == CV_ERROR && diag_error_count() == 0) /* never an output silently dropped */
            diag_error(s->name_loc, "internal error: output '%s' has no value, and no error says why", s->name);
        if (!y || y->val.kind == CV_ERROR) return;
        id = cv_to_tensor(c, y->val, DT_F32, "output");
    } else {
        Sym *y = scope_find_(c->scope, s->name);
        if (!y) {
            diag_error(s->name_loc, "use of undeclared name '%s'", s->name);
            return;
        }
        if (y->val.kind == CV_ERROR) return;
        id = cv_to_tensor(c, y->val, DT_F32, "output");
    }
    if (id < 0) return;
    char buf[96];
    Value *v = &c->g->v[id];
    if (!shape_batched(v->shape)) {
        diag_error(s->name_loc, "output '%s' has shape %s without a batch axis; outputs are per sample", s->name,
                   shape_str(v->shape, buf, sizeof buf));
        return;
    }
    if (depends_on_target_(c, id)) {
        diag_error(s->name_loc, "output '%s' depends on a target; predict has no targets", s->name);
        return;
    }
    IOSlot o = {.name = s->name, .dtype = v->dtype, .shape = v->shape, .loc = s->name_loc, .value = id};
    namemap_put(&c->outputs_seen, s->name, m->outputs.len);
    vec_push(&m->outputs, o);
}

static void stmt_metric_(Check *c, Stmt *s)
{
    Model *m = c->model;
    if (namemap_get(&c->metrics_seen, s->name)) {
        diag_error(s->name_loc, "metric '%s' is declared twice", s->name);
        return;
    }
    if (str_eq(s->name, "loss")) {
        diag_error(s->name_loc, "a metric cannot be called 'loss' (the loss is always reported)");
        return;
    }
    c->bind_name = s->name;
    c->bind_expr = s->expr;
    int id = scalar_of_(c, s, "a metric");
    c->bind_name = NULL;
    c->bind_expr = NULL;
    if (id < 0) return;
    IOSlot o = {.name = s->name, .dtype = DT_F32, .shape = shape_scalar(), .loc = s->name_loc, .value = id};
    namemap_put(&c->metrics_seen, s->name, m->metrics.len);
    vec_push(&m->metrics, o);
}

/* freeze NAME finds the parameters named NAME or NAME.…: every parameter is filed under its full name and
 * each dotted prefix of it ("a.b.weight": "a", "a.b", "a.b.weight"), added as the freeze statements come,
 * so that freezing N names among T parameters costs O(N + T) rather than O(N T) */
static void freeze_index_(Check *c)
{
    Model *m = c->model;
    for (; c->frozen_upto < m->tensors.len; c->frozen_upto++) {
        const Tensor *t = &m->tensors.data[c->frozen_upto];
        if (t->kind != TK_PARAM) continue;
        for (const char *p = t->name;; p++) {
            if (*p != '.' && *p != 0) continue;
            const char *key = arena_strndup(c->arena, t->name, (size_t)(p - t->name));
            int *head = namemap_get(&c->freeze_names, key);
            FreezeLink link = {.tensor = c->frozen_upto, .next = head ? *head : -1};
            vec_push(&c->freeze_links, link);
            if (head) *head = c->freeze_links.len - 1;
            else namemap_put(&c->freeze_names, key, c->freeze_links.len - 1);
            if (*p == 0) break;
        }
    }
}

static void stmt_freeze_(Check *c, Stmt *s)
{
    Model *m = c->model;
    freeze_index_(c);
    for (int k = 0; k < s->nnames; k++) {
        const char *name = s->names[k].name;
        const char *full = c->prefix[0] ? arena_printf(c->arena, "%s%s", c->prefix, name) : name;
        int *head = namemap_get(&c->freeze_names, full);
        for (int i = head ? *head : -1; i >= 0; i = c->freeze_links.data[i].next)
            m->tensors.data[c->freeze_links.data[i].tensor].trainable = false;
        if (!head) diag_error(s->names[k].loc, "freeze: no parameter or layer named '%s' (declared so far)", full);
    }
}

static void stmt_(Check *c, Stmt *s, bool in_def)
{
    if (diag_too_many()) return;
    if (in_def && (s->kind == ST_INPUT || s->kind == ST_TARGET || s->kind == ST_OUTPUT || s->kind == ST_LOSS ||
                   s->kind == ST_METRIC || s->kind == ST_OPTIMIZER || s->kind == ST_TRAIN || s->kind == ST_FREEZE)) {
        diag_error(s->loc, "this statement is allowed in a model, not in a def");
        return;
    }
    switch (s->kind) {
    case ST_INPUT:
    case ST_TARGET: stmt_io_(c, s); break;
    case ST_PARAM: stmt_param_(c, s); break;
    case ST_CONST: stmt_assign_(c, s, SYM_CONST); break;
    case ST_ASSIGN: stmt_assign_(c, s, SYM_VALUE); break;
    case ST_OUTPUT: stmt_output_(c, s); break;
    case ST_METRIC: stmt_metric_(c, s); break;
    case ST_LOSS:
        if (c->model->loss >= 0) {
            diag_error(s->loc, "a model has one loss; this is the second");
            diag_note(c->model->loss_loc, "the first is here");
            break;
        }
        c->model->loss_loc = s->loc;
        c->model->loss = scalar_of_(c, s, "the loss");
        if (c->model->loss < 0) c->model->loss = -2; /* declared, but broken */
        break;
    case ST_OPTIMIZER: check_optimizer(c, s); break;
    case ST_TRAIN: check_train_cfg(c, s); break;
    case ST_FREEZE: stmt_freeze_(c, s); break;
    case ST_RETURN:
        if (!in_def) diag_error(s->loc, "'return' is only allowed in a def");
        break;
    case ST_NESTED:
        diag_error(s->loc, "a %s cannot be written inside a %s; write it at the top level of the file", s->name,
                   in_def ? "def" : "model");
        break;
    }
}

static CVal run_def_body_(Check *c, Item *def, Expr *call)
{
    CVal result = cv_error();
    bool returned = false;
    for (int i = 0; i < def->body.nstmts; i++) {
        Stmt *s = def->body.stmts[i];
        if (returned) {
            diag_error(s->loc, "statement after 'return' in def '%s'", def->name);
            break;
        }
        if (s->kind == ST_RETURN) {
            /* the value returned is bound to the caller's name for naming purposes */
            result = eval_(c, s->expr);
            returned = true;
            continue;
        }
        stmt_(c, s, true);
    }
    if (!returned) diag_error(def->loc, "def '%s' has no 'return'", def->name);
    (void)call;
    return result;
}

/* ---- the program -------------------------------------------------------------------------------------- */
static void declare_globals_(Check *c, Program *p, int upto)
{
    for (int i = 0; i < upto; i++) {
        Item *it = p->items[i];
        if (it->kind != IT_CONST) continue;
        c->scope = c->globals;
        stmt_assign_(c, it->cnst, SYM_CONST);
    }
}

static void declare_defs_(Check *c, Program *p)
{
    for (int i = 0; i < p->nitems; i++) {
        Item *it = p->items[i];
        if (it->kind != IT_DEF) continue;
        Sym *prev = scope_find_(c->globals, it->name);
        if (prev && prev->kind == SYM_DEF) {
            diag_error(it->name_loc, "def '%s' is defined twice", it->name);
            diag_note(prev->loc, "previous definition is here");
            continue;
        }
        if (builtin_find(it->name)) diag_warning(it->name_loc, "def '%s' hides the builtin of the same name", it->name);
        Sym *y = scope_bind_(c, c->globals, it->name, SYM_DEF, (CVal){.kind = CV_FUNC, .s = it->name}, it->name_loc);
        y->def = it;
        if (it->nparams > MAX_DEF_PARAMS) { /* reported here, once, and the quadratic check below stays small */
            diag_error(it->name_loc, "def '%s' has %d parameters; at most %d are allowed", it->name, it->nparams,
                       MAX_DEF_PARAMS);
            continue;
        }
        for (int j = 0; j < it->nparams; j++)
            for (int k = 0; k < j; k++)
                if (str_eq(it->params[j].name, it->params[k].name))
                    diag_error(it->params[j].loc, "duplicate parameter '%s'", it->params[j].name);
    }
}

/* The model's name becomes C identifiers (the struct, M_predict, M_MAX_BATCH): not a C keyword. */
bool check_model_name_reserved(const char *n)
{
    static const char *const reserved[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
        "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
        "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Bool",
        "_Complex", "_Imaginary", "int32_t", "uint32_t", "uint64_t", "size_t", "offsetof", "NULL", "memcpy",
        "memset", "exp", "log", "log1p", "sqrt", "tanh", "fabs", "pow", "cos", "INFINITY", "NAN", "A", "Ai",
    };
    bool generated = strncmp(n, "nnc_", 4) == 0 || strncmp(n, "cblas", 5) == 0 ||
                     ((n[0] == 'k' || n[0] == 'c') && n[1] >= '0' && n[1] <= '9');
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0] && !generated; i++) generated = str_eq(n, reserved[i]);
    return generated;
}

static void check_model_name_(Item *it)
{
    if (check_model_name_reserved(it->name))
        diag_error(it->name_loc, "model name '%s' cannot be used: the generated C names its struct after the model, "
                                 "and '%s' is a C keyword or a name the generated code uses", it->name, it->name);
}

static void check_model_(Check *c, Item *it)
{
    Model *m = c->model;
    check_model_name_(it);
    m->name = it->name;
    m->loc = it->name_loc;
    m->src = it->loc.src;
    c->scope = scope_push_(c, c->globals);
    c->prefix = "";
    for (int i = 0; i < it->body.nstmts && !diag_too_many(); i++) stmt_(c, it->body.stmts[i], false);
    if (c->input_decls == 0) diag_error(it->name_loc, "model '%s' has no inputs", it->name);
    if (m->loss == -2) m->loss = -1; /* a loss without an optimizer is fine: eval works, train says what is missing */
}

static int count_models_(Program *p, const char **names, int max)
{
    int n = 0;
    for (int i = 0; i < p->nitems; i++)
        if (p->items[i]->kind == IT_MODEL) {
            if (n < max) names[n] = p->items[i]->name;
            n++;
        }
    return n;
}

Model *check_program(Program *p, const char *model_name, Arena *a)
{
    Check c = {.arena = a, .prog = p};
    c.globals = scope_push_(&c, NULL);
    Item *chosen = NULL;
    int index = -1;
    const char *names[16];
    int nmodels = count_models_(p, names, 16);
    for (int i = 0; i < p->nitems; i++) {
        Item *it = p->items[i];
        if (it->kind != IT_MODEL) continue;
        int *first = namemap_get(&c.models_seen, it->name);
        if (first) {
            diag_error(it->name_loc, "model '%s' is defined twice", it->name);
            diag_note(p->items[*first]->name_loc, "previous definition is here");
        } else {
            namemap_put(&c.models_seen, it->name, i);
        }
        if (model_name ? str_eq(it->name, model_name) : !chosen) chosen = it, index = i;
    }
    namemap_free(&c.models_seen);
    if (!chosen) {
        const char *path = source_get(p->src) ? source_get(p->src)->path : "the file";
        char list[512] = "";
        for (int i = 0; i < nmodels && i < 16; i++) {
            if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, names[i], sizeof list - strlen(list) - 1);
        }
        if (model_name && nmodels)
            diag_fatal("%s: no model named '%s' (it defines %s)", path, model_name, list);
        else if (model_name)
            diag_fatal("%s: no model named '%s' (it defines no model)", path, model_name);
        else if (diag_error_count() == 0)
            diag_fatal("%s: the file defines no model", path);
        return NULL;
    }
    if (!model_name && nmodels > 1 && diag_error_count() == 0) {
        char list[512] = "";
        for (int i = 0; i < nmodels && i < 16; i++) {
            if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, names[i], sizeof list - strlen(list) - 1);
        }
        diag_fatal("the file defines %d models (%s); choose one with --model NAME", nmodels, list);
        return NULL;
    }
    c.model = model_new(a);
    c.g = c.model->graph;
    c.g->hashcons = false; /* the source graph keeps every value the user wrote; CSE is a pass */
    declare_defs_(&c, p);
    declare_globals_(&c, p, index);
    check_model_(&c, chosen);
    namemap_free(&c.taken);
    namemap_free(&c.freeze_names);
    vec_free(&c.freeze_links);
    vec_free(&c.fold);
    namemap_free(&c.outputs_seen);
    namemap_free(&c.metrics_seen);
    vec_free(&c.dep_target);
    return c.model;
}
