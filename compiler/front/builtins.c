/* builtins.c: the functions of the .nn language (docs/language.md §6) and what each one builds.
 *
 * Each builtin declares its parameters (name, kind, default) in one table; bind_args_ in check.c matches
 * a call against it and reports unknown, missing and duplicate arguments. A handler then validates the
 * values and builds graph values through graph_add. Layers create their parameters here and name them by
 * the rules of docs/language.md §7 (check_layer_name).
 *
 * Composite layers are written with primitive ops (dense = matmul + add + activation; lstm unrolled over
 * time), so their gradients come from the primitives' rules. Losses pick the numerically stable fused
 * form when a softmax or sigmoid feeds a cross-entropy.
 */
#include "frontend.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARG_X {"x", A_TENSOR, NULL}
#define ARG_NAME {"name", A_STRING, "none"}

static int tensor_(Check *c, CVal v, const char *what)
{
    int id = cv_to_tensor(c, v, DT_F32, what);
    return ir_cast(c->g, id, DT_F32, v.loc);
}

static Value *val_(Check *c, int id) { return check_val(c, id); }
static const char *str_or_null_(CVal v) { return v.kind == CV_STRING ? v.s : NULL; }
static char *sh_(Shape s, char *buf) { return shape_str(s, buf, 96); }

static CVal done_(Check *c, int id, Loc loc) { return cv_tensor(c, id, loc); }

/* ---- elementwise functions of one tensor, and the activations --------------------------------------- */
/* One row per function, NN_FUNCTION(name, op, use, arg) in ops.def beside its op: its name, its op, whether
 * it is also an activation= value (ACT) or only a function (FN), and its one optional keyword argument:
 *   NO_ARG                     f(x)
 *   NUM_ARG(name, default)     f(x, name=default): a number, the op's attribute a0
 *   BOOL_ARG(name, default, op) f(x, name=default): a flag choosing `op` when true (gelu's approximate)
 * builtins[], the activation list and its messages are built from these rows: adding a row is all it takes.
 * Each use includes ops.def with OP() empty and its own NN_FUNCTION. */
#define OP(id, name, arity, flags, shape, emit, grad, flops, scalar)

typedef struct EwFunction {
    const char *name;
    OpKind op;
    bool activation;
    ParamSpec arg;   /* the optional keyword argument ({0}: none) */
    OpKind op_true;  /* BOOL_ARG: the op when the flag is true */
} EwFunction;

#define NO_ARG {0}, OP_COUNT
#define NUM_ARG(n, d) {n, A_NUM, d}, OP_COUNT
#define BOOL_ARG(n, d, op) {n, A_BOOL, d}, op
#define ACT true
#define FN false
#define NN_FUNCTION(name, op, act, arg) {name, op, act, arg},
static const EwFunction ew_functions_[] = {
#include "ops.def"
};
#undef NN_FUNCTION
#undef NO_ARG
#undef NUM_ARG
#undef BOOL_ARG
#undef ACT
#undef FN
enum { N_EW_FUNCTIONS = sizeof ew_functions_ / sizeof ew_functions_[0] };

static const EwFunction *ew_function_(const char *name)
{
    for (int i = 0; i < N_EW_FUNCTIONS; i++)
        if (str_eq(ew_functions_[i].name, name)) return &ew_functions_[i];
    return NULL;
}

/* f(x) with its argument given (arg: the number or flag; ignored without one) */
static int ew_apply_(Check *c, const EwFunction *f, int x, CVal arg, Loc loc)
{
    if (f->arg.kind == A_NUM) return ir_op1f(c->g, f->op, x, arg.f, 0, loc);
    if (f->arg.kind == A_BOOL) return ir_unary(c->g, arg.i ? f->op_true : f->op, x, loc);
    return ir_unary(c->g, f->op, x, loc);
}

/* its argument's default, as check.c would bind it */
static CVal ew_default_(const EwFunction *f)
{
    if (f->arg.kind == A_NUM) return (CVal){.kind = CV_FLOAT, .f = strtod(f->arg.dflt, NULL)};
    return (CVal){.kind = CV_BOOL, .i = f->arg.dflt && str_eq(f->arg.dflt, "true")};
}

static int apply_activation_(Check *c, int x, const char *act, Loc loc)
{
    if (x < 0 || !act || str_eq(act, "none") || str_eq(act, "linear")) return x;
    if (str_eq(act, "softmax")) {
        Attr a = {.i = {val_(c, x)->shape.rank - 1}};
        return graph_add(c->g, OP_SOFTMAX, &x, 1, &a, loc);
    }
    const EwFunction *f = ew_function_(act);
    NNC_ASSERT(f && f->activation);
    return ew_apply_(c, f, x, ew_default_(f), loc);
}

#define ACT_NAME_ACT(n) n,
#define ACT_NAME_FN(n)
#define NN_FUNCTION(name, op, act, arg) ACT_NAME_##act(name)
static const char *const activation_names_[] = {"none", "linear",
#include "ops.def"
                                                "softmax"};
#undef NN_FUNCTION
#undef ACT_NAME_ACT
#undef ACT_NAME_FN
enum { N_ACTIVATIONS = sizeof activation_names_ / sizeof activation_names_[0] };

bool check_activation_known(const char *name)
{
    for (int i = 0; i < N_ACTIVATIONS; i++)
        if (str_eq(name, activation_names_[i])) return true;
    return false;
}

const char *check_activation_list(void)
{
    static char list[512];
    if (!list[0]) { /* "none, relu, ...": every name but linear (a synonym of none) */
        size_t len = 0;
        for (int i = 0; i < N_ACTIVATIONS; i++)
            if (!str_eq(activation_names_[i], "linear"))
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", activation_names_[i]);
    }
    return list;
}

/* one message for a mistyped activation, wherever it is written (activation=, a def's argument) */
void check_report_activation(Loc loc, const char *name)
{
    const char *hint = suggest_among(name, activation_names_, N_ACTIVATIONS);
    if (hint)
        diag_error(loc, "unknown activation '%s'; did you mean '%s'?", name, hint);
    else
        diag_error(loc, "unknown activation '%s' (%s)", name, check_activation_list());
}

/* ---- elementwise -------------------------------------------------------------------------------------- */
/* f(x), f(x, arg) for each NN_FUNCTION row of ops.def; args: x, [arg,] name */
static CVal b_ew(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    const EwFunction *f = ew_function_(b->name);
    int x = tensor_(c, a[0], b->name);
    if (x < 0) return cv_error();
    int has_arg = f->arg.name != NULL;
    int y = ew_apply_(c, f, x, a[1], call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[1 + has_arg]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static CVal b_clip(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    if (x < 0) return cv_error();
    if (a[1].f > a[2].f) {
        diag_error(a[1].loc, "clip: lo (%g) is greater than hi (%g)", a[1].f, a[2].f);
        return cv_error();
    }
    int y = ir_op1f(c->g, OP_CLIP, x, a[1].f, a[2].f, call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[3]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static CVal b_binary(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    OpKind op = str_eq(b->name, "maximum") ? OP_MAXIMUM : OP_MINIMUM;
    int y = check_binary_op(c, op, a[0], a[1], call->loc);
    if (y < 0) return cv_error();
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[2]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

/* ---- reductions -------------------------------------------------------------------------------------------- */
static bool axes_mask_(Check *c, CVal axis, int rank, uint64_t *mask)
{
    *mask = 0;
    if (axis.kind == CV_NONE) {
        *mask = rank ? (((uint64_t)1 << rank) - 1) : 0;
        return true;
    }
    int n = axis.kind == CV_LIST ? axis.n : 1;
    for (int k = 0; k < n; k++) {
        CVal v = axis.kind == CV_LIST ? axis.items[k] : axis;
        int ax = check_normalize_axis(c, v.i, rank, axis.loc);
        if (ax < 0) return false;
        if (*mask >> ax & 1) {
            diag_error(axis.loc, "axis %d is listed twice", ax);
            return false;
        }
        *mask |= (uint64_t)1 << ax;
    }
    return true;
}

static CVal b_reduce(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    if (x < 0) return cv_error();
    uint64_t mask;
    if (!axes_mask_(c, a[1], val_(c, x)->shape.rank, &mask)) return cv_error();
    OpKind op = str_eq(b->name, "sum") ? OP_SUM : str_eq(b->name, "mean") ? OP_MEAN : OP_MAX;
    int y = mask ? ir_reduce(c->g, op, x, mask, a[2].i != 0, call->loc) : x;
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[3]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static CVal b_argmax(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    if (x < 0) return cv_error();
    int ax = check_normalize_axis(c, a[1].i, val_(c, x)->shape.rank, a[1].loc);
    if (ax < 0) return cv_error();
    if (val_(c, x)->shape.d[ax] == DIM_B) {
        diag_error(a[1].loc, "argmax: cannot take the argmax over the batch axis");
        return cv_error();
    }
    Attr at = {.i = {ax, 0}};
    int y = graph_add(c->g, OP_ARGMAX, &x, 1, &at, call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[2]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

/* ---- shape ops -------------------------------------------------------------------------------------------------- */
static CVal b_flatten(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = cv_to_tensor(c, a[0], DT_F32, b->name);
    if (x < 0) return cv_error();
    Shape s = val_(c, x)->shape, r = {0};
    if (shape_batched(s)) r.d[r.rank++] = DIM_B;
    r.d[r.rank++] = shape_per_sample(s);
    int y = ir_reshape(c->g, x, r, call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[1]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static CVal b_reshape(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = cv_to_tensor(c, a[0], DT_F32, b->name);
    if (x < 0) return cv_error();
    Shape s = val_(c, x)->shape, r = {0};
    bool batched = shape_batched(s);
    if (batched) r.d[r.rank++] = DIM_B;
    int infer = -1;
    if (a[1].n + r.rank > MAX_RANK) {
        diag_error(a[1].loc, "reshape: too many axes: %d (at most %d%s)", a[1].n, MAX_RANK - r.rank,
                   batched ? " per sample, besides the batch axis" : "");
        return cv_error();
    }
    for (int i = 0; i < a[1].n; i++) {
        int64_t d = a[1].items[i].i;
        if (d == -1 && infer < 0) {
            infer = r.rank;
            d = 1;
        } else if (d < 1 || d > MAX_ELEMS) {
            diag_error(a[1].loc, "reshape: dimensions must be positive integers up to %" PRId64 " (one may be -1), found %" PRId64,
                       MAX_ELEMS, d);
            return cv_error();
        }
        r.d[r.rank++] = d;
    }
    int64_t have = shape_per_sample(s), want = shape_per_sample_sat(r); /* saturates: no overflow */
    char b1[96], b2[96];
    if (infer >= 0) {
        if (want > have || have % want) {
            diag_error(a[1].loc, "reshape: cannot reshape %s (%" PRId64 " values per sample) into %s", sh_(s, b1), have,
                       sh_(r, b2));
            return cv_error();
        }
        r.d[infer] = have / want;
        want = have;
    }
    if (have != want) {
        char count[32];
        diag_error(a[1].loc, "reshape: cannot reshape %s (%" PRId64 " values per sample) into %s (%s)",
                   sh_(s, b1), have, sh_(r, b2), count_str_sat(want, count));
        return cv_error();
    }
    int y = ir_reshape(c->g, x, r, call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[2]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static CVal b_transpose(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = cv_to_tensor(c, a[0], DT_F32, b->name);
    if (x < 0) return cv_error();
    int rank = val_(c, x)->shape.rank;
    Attr at = {0};
    if (a[1].kind == CV_NONE) {
        for (int i = 0; i < rank; i++) at.i[i] = rank - 1 - i;
    } else {
        if (a[1].n != rank) {
            diag_error(a[1].loc, "transpose: the permutation has %d axes, the value has %d (axes count from the batch axis)",
                       a[1].n, rank);
            return cv_error();
        }
        for (int i = 0; i < rank; i++) {
            int ax = check_normalize_axis(c, a[1].items[i].i, rank, a[1].loc);
            if (ax < 0) return cv_error();
            at.i[i] = ax;
        }
    }
    bool identity = true; /* rank 0 and 1 included: no transpose op at all (its kernel had no loops) */
    for (int i = 0; i < rank; i++) identity &= at.i[i] == i;
    int y = identity ? x : graph_add(c->g, OP_TRANSPOSE, &x, 1, &at, call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[2]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static CVal b_concat(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    /* concat(a, b, c..., axis=-1) or concat([a, b, c], axis=-1) */
    CVal *extra = a[MAX_PARAMS].items;
    int nextra = a[MAX_PARAMS].n;
    VEC(int) ins = {0};
    if (a[0].kind == CV_LIST && a[1].kind == CV_NONE && nextra == 0) {
        if (a[0].n == 0) {
            diag_error(a[0].loc, "concat: the list is empty; concat needs at least one value");
            return cv_error();
        }
        for (int i = 0; i < a[0].n; i++) vec_push(&ins, cv_to_tensor(c, a[0].items[i], DT_F32, b->name));
    } else {
        vec_push(&ins, cv_to_tensor(c, a[0], DT_F32, b->name));
        if (a[1].kind == CV_NONE) {
            diag_error(call->loc, "concat: needs at least two values");
            vec_free(&ins);
            return cv_error();
        }
        vec_push(&ins, cv_to_tensor(c, a[1], DT_F32, b->name));
        for (int i = 0; i < nextra; i++) vec_push(&ins, cv_to_tensor(c, extra[i], DT_F32, b->name));
    }
    /* one dtype for all: i32 only when every part is i32 (as NumPy) */
    bool all_i32 = true;
    for (int i = 0; i < ins.len; i++) all_i32 &= ins.data[i] >= 0 && val_(c, ins.data[i])->dtype == DT_I32;
    for (int i = 0; i < ins.len; i++) ins.data[i] = ir_cast(c->g, ins.data[i], all_i32 ? DT_I32 : DT_F32, call->loc);
    int y = -1;
    bool ok = ins.len >= 1;
    for (int i = 0; i < ins.len; i++) ok &= ins.data[i] >= 0;
    if (ok) {
        int ax = check_normalize_axis(c, a[2].i, val_(c, ins.data[0])->shape.rank, a[2].loc);
        Attr at = {.i = {ax}};
        if (ax >= 0) y = ins.len == 1 ? ins.data[0] : graph_add(c->g, OP_CONCAT, ins.data, ins.len, &at, call->loc);
    }
    vec_free(&ins);
    if (y < 0) return cv_error();
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[3]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

/* slice(x, axis, start, end=none): x's cells start..end-1 along one axis (Python's x[.., start:end]); a
 * negative start or end counts from the axis's end, none runs to it. Not the batch axis, not empty: an
 * error rather than Python's silent clamp. The gradient is the slice's (dy placed back into zeros). */
static CVal b_slice(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = cv_to_tensor(c, a[0], DT_F32, b->name);
    if (x < 0) return cv_error();
    Shape s = val_(c, x)->shape;
    int ax = check_normalize_axis(c, a[1].i, s.rank, a[1].loc);
    if (ax < 0) return cv_error();
    if (s.d[ax] == DIM_B) {
        diag_error(a[1].loc, "slice: cannot slice the batch axis");
        return cv_error();
    }
    int64_t n = s.d[ax], lo = a[2].i, hi = a[3].kind == CV_NONE ? n : a[3].i;
    lo += lo < 0 ? n : 0;
    hi += hi < 0 ? n : 0;
    if (lo < 0 || hi > n || lo >= hi) {
        char buf[96];
        diag_error(a[2].loc, "slice: start %" PRId64 " and end %" PRId64 " do not select a non-empty part of axis %d "
                             "(extent %" PRId64 ", value %s)", a[2].i, a[3].kind == CV_NONE ? n : a[3].i, ax, n, sh_(s, buf));
        return cv_error();
    }
    Attr at = {.i = {ax, lo, hi - lo}};
    int y = lo == 0 && hi == n ? x : graph_add(c->g, OP_SLICE, &x, 1, &at, call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[4]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static CVal b_softmax(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    if (x < 0) return cv_error();
    int ax = check_normalize_axis(c, a[1].i, val_(c, x)->shape.rank, a[1].loc);
    if (ax < 0) return cv_error();
    if (val_(c, x)->shape.d[ax] == DIM_B) {
        diag_error(a[1].loc, "%s: cannot normalize over the batch axis", b->name);
        return cv_error();
    }
    Attr at = {.i = {ax}};
    int y = graph_add(c->g, str_eq(b->name, "softmax") ? OP_SOFTMAX : OP_LOG_SOFTMAX, &x, 1, &at, call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[2]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static bool layer_init_(Check *c, CVal v, Shape s, Init dflt, Init *out);

/* ---- layers -------------------------------------------------------------------------------------------------- */
static const Init glorot_ = {.kind = INIT_GLOROT_UNIFORM};
static const Init zeros_ = {.kind = INIT_ZEROS};
static const Init ones_ = {.kind = INIT_ONES};

static bool positive_(CVal v, const char *fn, const char *what)
{
    if (v.i >= 1 && v.i <= ((int64_t)1 << 24)) return true;
    if (v.i < 1)
        diag_error(v.loc, "%s: '%s' must be a positive integer, found %" PRId64, fn, what, v.i);
    else
        diag_error(v.loc, "%s: '%s' must be at most 16777216 (2^24), found %" PRId64, fn, what, v.i);
    return false;
}

/* dense(x, units, activation=none, use_bias=true): weight [in, units], bias [units], on the last axis */
static CVal b_dense(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    if (x < 0 || !positive_(a[1], b->name, "units")) return cv_error(); /* the activation: bind_args_ */
    Shape s = val_(c, x)->shape;
    char buf[96];
    if (s.rank == 0 || s.d[s.rank - 1] == DIM_B) {
        diag_error(a[0].loc, "dense: input %s has no feature axis; reshape it, e.g. reshape(x, [1])", sh_(s, buf));
        return cv_error();
    }
    Shape ws = {2, {s.d[s.rank - 1], a[1].i}}, bs = {1, {a[1].i}};
    Init wi, bi;
    if (!layer_init_(c, a[5], ws, glorot_, &wi) || !layer_init_(c, a[6], bs, zeros_, &bi)) return cv_error();
    const char *name = check_layer_name(c, call, str_or_null_(a[4]), b->name);
    int w = check_add_param(c, name, "weight", TK_PARAM, ws, wi, call->loc);
    int y = ir_binary(c->g, OP_MATMUL, x, w, call->loc);
    if (a[3].i) {
        int bias = check_add_param(c, name, "bias", TK_PARAM, bs, bi, call->loc);
        y = ir_binary(c->g, OP_ADD, y, bias, call->loc);
    }
    y = apply_activation_(c, y, a[2].kind == CV_STRING ? a[2].s : NULL, call->loc);
    check_add_layer_row(c, name, b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static void int2_(CVal v, int64_t out[2])
{
    if (v.kind == CV_LIST) {
        out[0] = v.items[0].i;
        out[1] = v.items[1].i;
    } else {
        out[0] = out[1] = v.i;
    }
}

/* TensorFlow's padding: valid none; same gives ceil(in/stride) outputs, the odd pixel at the bottom/right. */
static void pads_(bool same, const int64_t in[2], const int64_t k[2], const int64_t st[2], int64_t pads[4])
{
    memset(pads, 0, sizeof(int64_t) * 4);
    if (!same) return;
    for (int d = 0; d < 2; d++) {
        int64_t out = (in[d] + st[d] - 1) / st[d];
        int64_t total = (out - 1) * st[d] + k[d] - in[d];
        if (total < 0) total = 0;
        pads[d] = total / 2;         /* top, left */
        pads[d + 2] = total - total / 2; /* bottom, right */
    }
}

/* a padding list [top, bottom, left, right] of integers in 0..65535 (what: how the message names the list)
 * into pads in the order of the conv and pool attributes: top, left, bottom, right */
static bool padding_list_(CVal v, const char *fn, const char *what, int64_t pads[4])
{
    if (v.kind != CV_LIST || v.n != 4) {
        if (v.kind != CV_LIST)
            diag_error(v.loc, "%s: %s is a list [top, bottom, left, right] of 4 integers", fn, what);
        else
            diag_error(v.loc, "%s: %s is a list [top, bottom, left, right] of 4 integers, found %d value%s", fn, what,
                       v.n, v.n == 1 ? "" : "s");
        return false;
    }
    static const char *const side[4] = {"top", "bottom", "left", "right"};
    static const int to_attr[4] = {0, 2, 1, 3}; /* top, bottom, left, right -> top, left, bottom, right */
    for (int j = 0; j < 4; j++) {
        CVal p = v.items[j];
        Loc at = p.loc.line ? p.loc : v.loc;
        if (p.kind != CV_INT) {
            diag_error(at, "%s: the %s padding must be an integer", fn, side[j]);
            return false;
        }
        if (p.i < 0 || p.i > 65535) {
            diag_error(at, "%s: the %s padding must be between 0 and 65535, found %" PRId64, fn, side[j], p.i);
            return false;
        }
        pads[to_attr[j]] = p.i;
    }
    return true;
}

/* the padding of conv2d and pooling (fn): valid, same, or explicit padding [top, bottom, left, right] into
 * the op's attributes top, left, bottom, right (i[4..7]); k: the effective kernel (dilated) */
static bool conv_padding_(CVal v, const char *fn, const int64_t in[2], const int64_t k[2], const int64_t st[2],
                          int64_t pads[4])
{
    if (v.kind != CV_LIST) {
        if (v.kind != CV_STRING || !(str_eq(v.s, "valid") || str_eq(v.s, "same"))) {
            diag_error(v.loc, "%s: padding must be valid, same or a list [top, bottom, left, right]", fn);
            return false;
        }
        pads_(str_eq(v.s, "same"), in, k, st, pads);
        return true;
    }
    return padding_list_(v, fn, "explicit padding", pads);
}

static bool rank4_(Check *c, int x, CVal arg, const char *fn)
{
    Shape s = val_(c, x)->shape;
    char buf[96];
    if (s.rank == 4) return true;
    diag_error(arg.loc, "%s: input has rank %d, expected rank 4 [B,H,W,C] (found %s)", fn, s.rank, sh_(s, buf));
    return false;
}

static bool positive2_(CVal v, const char *fn, const char *what)
{
    int64_t k[2];
    int2_(v, k);
    if (k[0] >= 1 && k[1] >= 1 && k[0] < 65536 && k[1] < 65536) return true;
    int64_t bad = k[0] >= 1 && k[0] < 65536 ? k[1] : k[0];
    if (bad < 1)
        diag_error(v.loc, "%s: '%s' must be positive, found %" PRId64, fn, what, bad);
    else
        diag_error(v.loc, "%s: '%s' must be at most 65535, found %" PRId64, fn, what, bad);
    return false;
}

/* groups divides the input channels and the filters (groups = channels = filters: depthwise) */
static bool conv_groups_(CVal g, int64_t cin, int64_t filters)
{
    if (!positive_(g, "conv2d", "groups")) return false;
    if (cin % g.i == 0 && filters % g.i == 0) return true;
    if (cin % g.i)
        diag_error(g.loc, "conv2d: groups=%" PRId64 " does not divide the %" PRId64 " input channels", g.i, cin);
    else
        diag_error(g.loc, "conv2d: groups=%" PRId64 " does not divide the %" PRId64 " filters", g.i, filters);
    return false;
}

/* conv2d(x, filters, kernel, stride=1, padding=valid, activation=none, use_bias=true, groups=1, dilation=1):
 * weight [kh, kw, C/groups, filters]. Attributes (ops.def): i[0..1] kernel, i[2..3] stride, i[4..7] pads
 * top, left, bottom, right, i[8] groups and i[9..10] dilation, each 0 when 1 (a plain conv's attributes,
 * and so its IR and C, are what they were before groups and dilation) */
static CVal b_conv2d(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    bool ok = x >= 0 && rank4_(c, x, a[0], b->name); /* every argument is checked */
    ok &= positive_(a[1], b->name, "filters");
    ok &= positive2_(a[2], b->name, "kernel");
    ok &= positive2_(a[3], b->name, "stride");
    ok &= positive2_(a[8], b->name, "dilation");
    if (!ok) return cv_error();
    Shape s = val_(c, x)->shape;
    int64_t k[2], st[2], dil[2], keff[2], in[2] = {s.d[1], s.d[2]};
    int2_(a[2], k);
    int2_(a[3], st);
    int2_(a[8], dil);
    for (int j = 0; j < 2; j++) keff[j] = (k[j] - 1) * dil[j] + 1;
    Attr at = {.i = {k[0], k[1], st[0], st[1]}};
    ok &= conv_padding_(a[4], b->name, in, keff, st, &at.i[4]);
    ok &= conv_groups_(a[7], s.d[3], a[1].i);
    if (!ok) return cv_error();
    int64_t groups = a[7].i;
    at.i[8] = groups > 1 ? groups : 0;
    at.i[9] = dil[0] > 1 ? dil[0] : 0;
    at.i[10] = dil[1] > 1 ? dil[1] : 0;
    Shape ws = {4, {k[0], k[1], s.d[3] / groups, a[1].i}}, bs = {1, {a[1].i}};
    Init wi, bi;
    if (!layer_init_(c, a[10], ws, glorot_, &wi) || !layer_init_(c, a[11], bs, zeros_, &bi)) return cv_error();
    const char *name = check_layer_name(c, call, str_or_null_(a[9]), b->name);
    int w = check_add_param(c, name, "weight", TK_PARAM, ws, wi, call->loc);
    int in2[2] = {x, w};
    int y = graph_add(c->g, OP_CONV2D, in2, 2, &at, call->loc);
    if (y >= 0 && a[6].i) {
        int bias = check_add_param(c, name, "bias", TK_PARAM, bs, bi, call->loc);
        y = ir_binary(c->g, OP_ADD, y, bias, call->loc);
    }
    y = apply_activation_(c, y, a[5].kind == CV_STRING ? a[5].s : NULL, call->loc);
    check_add_layer_row(c, name, b->name, y, call->loc);
    return done_(c, y, call->loc);
}

/* explicit pooling padding is smaller than the window on each side, so that every window holds a cell of the
 * input (a max over padding alone would be -inf, a mean 0/0); same padding always is */
static bool pool_pads_fit_(CVal v, const char *fn, const int64_t k[2], const int64_t pads[4])
{
    if (v.kind != CV_LIST) return true;
    static const char *const side[4] = {"top", "bottom", "left", "right"};
    static const int to_attr[4] = {0, 2, 1, 3};
    for (int j = 0; j < 4; j++) {
        int64_t p = pads[to_attr[j]], w = k[j / 2];
        if (p < w) continue;
        Loc at = v.items[j].loc.line ? v.items[j].loc : v.loc;
        diag_error(at, "%s: the %s padding (%" PRId64 ") must be smaller than the window's %s (%" PRId64 ")", fn,
                   side[j], p, j < 2 ? "height" : "width", w);
        return false;
    }
    return true;
}

/* maxpool2d / avgpool2d (x, pool=2, stride=pool, padding=valid), avgpool2d also count_include_pad=false.
 * Attributes (ops.def): i[0..1] window, i[2..3] stride, i[4..7] pads top, left, bottom, right, and
 * i[POOL_COUNT_PAD] 1 when an average divides by the whole window, padding included (0 when unpadded,
 * where both divide alike, so the IR and C of a model without padding are what they were) */
static CVal b_pool(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    bool avg = str_eq(b->name, "avgpool2d");
    bool ok = x >= 0 && rank4_(c, x, a[0], b->name); /* every argument is checked */
    ok &= positive2_(a[1], b->name, "pool");
    ok &= a[2].kind == CV_NONE || positive2_(a[2], b->name, "stride");
    if (!ok) return cv_error();
    Shape s = val_(c, x)->shape;
    int64_t k[2], st[2], in[2] = {s.d[1], s.d[2]};
    int2_(a[1], k);
    int2_(a[a[2].kind == CV_NONE ? 1 : 2], st);
    Attr at = {.i = {k[0], k[1], st[0], st[1]}};
    if (!conv_padding_(a[3], b->name, in, k, st, &at.i[4]) || !pool_pads_fit_(a[3], b->name, k, &at.i[4]))
        return cv_error();
    bool padded = at.i[4] || at.i[5] || at.i[6] || at.i[7];
    at.i[POOL_COUNT_PAD] = avg && padded && a[5].i;
    int y = graph_add(c->g, avg ? OP_AVGPOOL2D : OP_MAXPOOL2D, &x, 1, &at, call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[4]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

/* ---- pad ------------------------------------------------------------------------------------------------------ */
/* pad takes [B,H,W,C] (or an unbatched [N,H,W,C]); a sequence [B,L,C] is reshaped to [B,L,1,C] first */
static bool pad_input_(Check *c, int x, CVal arg)
{
    Shape s = val_(c, x)->shape;
    char buf[96], hint[96] = "";
    if (s.rank == 4) {
        NNC_ASSERT(s.d[1] != DIM_B && s.d[2] != DIM_B); /* the batch axis stays first (transpose keeps it) */
        return true;
    }
    if (s.rank == 3 && shape_batched(s))
        snprintf(hint, sizeof hint, "; to pad a sequence [B,L,C], reshape it first: reshape(x, [%" PRId64 ", 1, %" PRId64
                 "])", s.d[1], s.d[2]);
    diag_error(arg.loc, "pad: input has rank %d, expected rank 4 [B,H,W,C] (found %s)%s", s.rank, sh_(s, buf), hint);
    return false;
}

/* the mask of one padded axis: 1 on its `len` cells of x, 0 on the padding around them; `trailing` axes of
 * length 1 after it, so that it broadcasts against [B,H',W',C] */
static int pad_mask_(Check *c, int64_t before, int64_t len, int64_t after, int trailing, Loc loc)
{
    int64_t n = before + len + after;
    float *d = arena_alloc(c->arena, sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) d[i] = i >= before && i < before + len ? 1.0f : 0.0f;
    Shape s = {1 + trailing, {n, 1, 1}};
    Attr a = {.data = d};
    return graph_add_typed(c->g, OP_CONST, NULL, 0, &a, DT_F32, s, -1, loc);
}

/* x widened on one axis by `before` and `after` cells of `value`: an unslice (x placed into zeros), and for
 * any other value than +0 a select against the axis's mask, which gives back x bit for bit (the shorter
 * unslice(x - value) + value does not: x - v + v rounds) */
static int pad_axis_(Check *c, int x, int axis, int64_t before, int64_t after, double value, Loc loc)
{
    if (!before && !after) return x;
    int64_t len = val_(c, x)->shape.d[axis];
    Attr a = {.i = {axis, before, 0, before + len + after}};
    int y = graph_add(c->g, OP_UNSLICE, &x, 1, &a, loc);
    if (y < 0 || (value == 0 && !signbit(value))) return y;
    int in[3] = {pad_mask_(c, before, len, after, 3 - axis, loc), y, ir_scalar(c->g, value, loc)};
    return graph_add(c->g, OP_SELECT, in, 3, NULL, loc);
}

/* pad(x, [top, bottom, left, right], value=0.0): x [B,H,W,C] -> [B, H+top+bottom, W+left+right, C], the new
 * cells `value`. Built from unslice and select, which every target prints, so no printer has a pad kernel;
 * the gradient, dy's interior, is unslice's rule (a slice) and select's */
static CVal b_pad(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    int64_t p[4]; /* top, left, bottom, right */
    bool ok = x >= 0 && pad_input_(c, x, a[0]); /* every argument is checked */
    ok &= padding_list_(a[1], b->name, "the padding", p);
    if (!ok) return cv_error();
    int y = pad_axis_(c, x, 1, p[0], p[2], a[2].f, call->loc);
    if (y >= 0) y = pad_axis_(c, y, 2, p[1], p[3], a[2].f, call->loc);
    if (y < 0) return cv_error();
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[3]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

/* batchnorm(x, momentum=0.99, epsilon=0.001): gamma, beta trainable; moving_mean, moving_var state */
static CVal b_batchnorm(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    if (x < 0) return cv_error();
    Shape s = val_(c, x)->shape;
    char buf[96];
    if (s.rank < 2 || !shape_batched(s)) {
        diag_error(a[0].loc, "batchnorm: expected a batched input with a feature axis, found %s", sh_(s, buf));
        return cv_error();
    }
    if (a[1].f < 0 || a[1].f > 1) {
        diag_error(a[1].loc, "batchnorm: momentum must be in [0, 1]");
        return cv_error();
    }
    if (a[2].f <= 0) {
        diag_error(a[2].loc, "batchnorm: epsilon must be positive");
        return cv_error();
    }
    const char *name = check_layer_name(c, call, str_or_null_(a[3]), b->name);
    Shape cs = {1, {s.d[s.rank - 1]}};
    int in[5] = {x, check_add_param(c, name, "gamma", TK_PARAM, cs, ones_, call->loc),
                 check_add_param(c, name, "beta", TK_PARAM, cs, zeros_, call->loc),
                 check_add_param(c, name, "moving_mean", TK_STATE, cs, zeros_, call->loc),
                 check_add_param(c, name, "moving_var", TK_STATE, cs, ones_, call->loc)};
    Model *m = c->model;
    m->tensors.data[m->tensors.len - 1].trainable = false;
    m->tensors.data[m->tensors.len - 2].trainable = false;
    Attr at = {.f = {a[1].f, a[2].f}};
    int y = graph_add(c->g, OP_BATCHNORM, in, 5, &at, call->loc);
    check_add_layer_row(c, name, b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static CVal b_dropout(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    if (x < 0) return cv_error();
    if (!(a[1].f >= 0 && a[1].f < 1)) {
        diag_error(a[1].loc, "dropout: rate must be in [0, 1), found %g", a[1].f);
        return cv_error();
    }
    Attr at = {.f = {a[1].f}};
    int y = a[1].f == 0 ? x : graph_add(c->g, OP_DROPOUT, &x, 1, &at, call->loc);
    check_add_layer_row(c, check_layer_name(c, call, str_or_null_(a[2]), b->name), b->name, y, call->loc);
    return done_(c, y, call->loc);
}

static int slice_(Check *c, int x, int axis, int64_t start, int64_t len, Loc loc)
{
    Attr at = {.i = {axis, start, len}};
    return graph_add(c->g, OP_SLICE, &x, 1, &at, loc);
}

/* lstm(x [B,T,F], units): z_t = x_t W + h R + b; i, f, g, o = z's quarters; c = f c + i g; h = o tanh(c).
 * x W + b for every step is one matmul; the recurrence is one lstm_seq op (a loop over time in one kernel,
 * with its own backward sweep), whose trace S holds each step's gates, c and h. */
static CVal b_lstm(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int x = tensor_(c, a[0], b->name);
    bool ok = positive_(a[1], b->name, "units");
    if (x < 0 || !ok) return cv_error();
    Shape s = val_(c, x)->shape;
    char buf[96];
    if (s.rank != 3 || !shape_batched(s)) {
        diag_error(a[0].loc, "lstm: input has rank %d, expected rank 3 [B,T,F] (found %s)", s.rank, sh_(s, buf));
        return cv_error();
    }
    int64_t u = a[1].i, T = s.d[1];
    Loc loc = call->loc;
    const char *name = check_layer_name(c, call, str_or_null_(a[3]), b->name);
    int w = check_add_param(c, name, "weight", TK_PARAM, (Shape){2, {s.d[2], 4 * u}}, glorot_, loc);
    int r = check_add_param(c, name, "recurrent", TK_PARAM, (Shape){2, {u, 4 * u}}, glorot_, loc);
    if (w < 0 || r < 0) return cv_error();
    float *fb = arena_alloc(c->arena, sizeof(float) * (size_t)(4 * u));
    for (int64_t i = u; i < 2 * u; i++) fb[i] = 1; /* forget-gate bias starts at 1 */
    Init binit = {.kind = INIT_VALUES, .values = fb};
    int bias = check_add_param(c, name, "bias", TK_PARAM, (Shape){1, {4 * u}}, binit, loc);
    int xw = ir_binary(c->g, OP_ADD, ir_binary(c->g, OP_MATMUL, x, w, loc), bias, loc); /* [B,T,4u] */
    Attr at = {.i = {u}};
    int in[2] = {xw, r};
    int trace = graph_add(c->g, OP_LSTM_SEQ, in, 2, &at, loc);
    int y = slice_(c, trace, 2, 5 * u, u, loc); /* h at every step: [B,T,u] */
    if (!a[2].i) y = ir_reshape(c->g, slice_(c, y, 1, T - 1, 1, loc), (Shape){2, {DIM_B, u}}, loc);
    check_add_layer_row(c, name, b->name, y, loc);
    return done_(c, y, loc);
}

/* ---- losses -------------------------------------------------------------------------------------------------- */

/* Keras-style: when ranks differ by one and the extra axis is 1, drop it ([B,1] vs [B]). */
static bool match_pred_target_(Check *c, int *p, int *t, const char *fn, Loc loc)
{
    Shape sp = val_(c, *p)->shape, st = val_(c, *t)->shape;
    char b1[96], b2[96];
    if (shape_batched(st) && !shape_batched(sp)) {
        diag_error(loc, "%s: the prediction %s has no batch axis (it depends on no input), the target %s has", fn,
                   sh_(sp, b1), sh_(st, b2));
        return false;
    }
    if (sp.rank == st.rank + 1 && sp.d[sp.rank - 1] == 1) *t = ir_reshape(c->g, *t, sp, loc);
    else if (st.rank == sp.rank + 1 && st.d[st.rank - 1] == 1) *p = ir_reshape(c->g, *p, st, loc);
    if (*p < 0 || *t < 0) return false;
    Shape out;
    if (!shape_broadcast2(val_(c, *p)->shape, val_(c, *t)->shape, &out) || !shape_eq(out, val_(c, *p)->shape)) {
        diag_error(loc, "%s: prediction %s and target %s do not match", fn, sh_(val_(c, *p)->shape, b1),
                   sh_(val_(c, *t)->shape, b2));
        return false;
    }
    return true;
}

static int mean_all_(Check *c, int x, Loc loc)
{
    int rank = val_(c, x)->shape.rank;
    return rank ? ir_reduce(c->g, OP_MEAN, x, ((uint64_t)1 << rank) - 1, false, loc) : x;
}

static CVal b_mse_mae(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int p = tensor_(c, a[0], b->name), t = tensor_(c, a[1], b->name);
    if (p < 0 || t < 0 || !match_pred_target_(c, &p, &t, b->name, call->loc)) return cv_error();
    int d = ir_binary(c->g, OP_SUB, p, t, call->loc);
    d = ir_unary(c->g, str_eq(b->name, "mse") ? OP_SQUARE : OP_ABS, d, call->loc);
    return done_(c, mean_all_(c, d, call->loc), call->loc);
}

static int sum_last_(Check *c, int x, Loc loc)
{
    int rank = val_(c, x)->shape.rank;
    return ir_reduce(c->g, OP_SUM, x, (uint64_t)1 << (rank - 1), false, loc);
}

/* from_logits=true on a prediction that already holds probabilities (the output of a softmax or a sigmoid)
 * applies the activation twice: legal, and almost always a mistake, so a warning (Keras warns too). */
static void warn_not_logits_(Check *c, int p, CVal pred, CVal from_logits, const char *fn)
{
    if (p < 0 || from_logits.kind != CV_BOOL || !from_logits.i) return;
    Value *v = val_(c, p);
    while (v->op == OP_RESHAPE || v->op == OP_CAST) v = val_(c, v->in[0]);
    if (v->op != OP_SOFTMAX && v->op != OP_SIGMOID) return;
    const char *act = v->op == OP_SOFTMAX ? "softmax" : "sigmoid";
    diag_warning(pred.loc, "%s: from_logits=true, but the prediction is the output of a %s: it holds probabilities, "
                           "not logits; remove the %s or pass from_logits=false", fn, act, act);
    diag_note(v->loc, "the %s is applied here", act);
}

/* binary_crossentropy: logits z (given, or under a sigmoid): mean(softplus(z) - z t);
 * probabilities p: clipped to [1e-7, 1-1e-7] as Keras does. */
static CVal b_bce(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int p = tensor_(c, a[0], b->name), t = tensor_(c, a[1], b->name);
    warn_not_logits_(c, p, a[0], a[2], b->name);
    if (p < 0 || t < 0 || !match_pred_target_(c, &p, &t, b->name, call->loc)) return cv_error();
    Loc loc = call->loc;
    Graph *g = c->g;
    int z = a[2].i ? p : val_(c, p)->op == OP_SIGMOID ? val_(c, p)->in[0] : -1;
    int per;
    if (z >= 0) { /* softplus(z) - z t: its gradient sigmoid(z) - t is right at z = 0 too */
        per = ir_binary(g, OP_SUB, ir_unary(g, OP_SOFTPLUS, z, loc), ir_binary(g, OP_MUL, z, t, loc), loc);
    } else {
        const double eps = 1e-7;
        int pc = ir_op1f(g, OP_CLIP, p, eps, 1 - eps, loc);
        int one = ir_scalar(g, 1, loc);
        int pos = ir_binary(g, OP_MUL, t, ir_unary(g, OP_LOG, ir_binary(g, OP_ADD, pc, ir_scalar(g, eps, loc), loc), loc), loc);
        int negp = ir_binary(g, OP_ADD, ir_binary(g, OP_SUB, one, pc, loc), ir_scalar(g, eps, loc), loc);
        int neg = ir_binary(g, OP_MUL, ir_binary(g, OP_SUB, one, t, loc), ir_unary(g, OP_LOG, negp, loc), loc);
        per = ir_unary(g, OP_NEG, ir_binary(g, OP_ADD, pos, neg, loc), loc);
    }
    return done_(c, mean_all_(c, per, loc), loc);
}

/* -sum(t * log_softmax(z)) over the class axis, mean over the rest. */
static int cce_from_(Check *c, int p, int t, bool from_logits, Loc loc)
{
    Graph *g = c->g;
    Value *pv = val_(c, p);
    int last = pv->shape.rank - 1, logp;
    if (from_logits || (pv->op == OP_SOFTMAX && pv->attr.i[0] == last)) {
        int z = from_logits ? p : pv->in[0];
        Attr at = {.i = {last}};
        logp = graph_add(g, OP_LOG_SOFTMAX, &z, 1, &at, loc);
    } else {
        /* probabilities: normalize, clip, log (Keras) */
        int sum = ir_reduce(g, OP_SUM, p, (uint64_t)1 << last, true, loc);
        int q = ir_op1f(g, OP_CLIP, ir_binary(g, OP_DIV, p, sum, loc), 1e-7, 1 - 1e-7, loc);
        logp = ir_unary(g, OP_LOG, q, loc);
    }
    int per = ir_unary(g, OP_NEG, sum_last_(c, ir_binary(g, OP_MUL, t, logp, loc), loc), loc);
    return mean_all_(c, per, loc);
}

static bool class_axis_(Check *c, int p, const char *fn, Loc loc)
{
    Shape s = val_(c, p)->shape;
    char buf[96];
    if (s.rank >= 1 && s.d[s.rank - 1] != DIM_B) return true;
    diag_error(loc, "%s: prediction %s has no class axis", fn, sh_(s, buf));
    return false;
}

static CVal b_cce(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int p = tensor_(c, a[0], b->name), t = tensor_(c, a[1], b->name);
    warn_not_logits_(c, p, a[0], a[2], b->name);
    if (p < 0 || t < 0 || !class_axis_(c, p, b->name, call->loc)) return cv_error();
    char b1[96], b2[96];
    if (!shape_eq(val_(c, p)->shape, val_(c, t)->shape)) {
        diag_error(call->loc, "%s: prediction %s and one-hot target %s must have the same shape", b->name,
                   sh_(val_(c, p)->shape, b1), sh_(val_(c, t)->shape, b2));
        return cv_error();
    }
    return done_(c, cce_from_(c, p, t, a[2].i != 0, call->loc), call->loc);
}

/* class indices [B] (or [B,1]) for a prediction [B, C] */
static int class_indices_(Check *c, int p, CVal targ, const char *fn, Loc loc)
{
    int t = cv_to_tensor(c, targ, DT_I32, fn);
    if (t < 0) return -1;
    Shape sp = val_(c, p)->shape, st = val_(c, t)->shape;
    char b1[96], b2[96];
    if (st.rank == sp.rank && st.d[st.rank - 1] == 1) {
        st.rank--;
        t = ir_reshape(c->g, t, st, loc);
    }
    bool ok = st.rank == sp.rank - 1;
    for (int i = 0; ok && i < st.rank; i++) ok = st.d[i] == sp.d[i];
    if (!ok) {
        diag_error(loc, "%s: class indices %s do not fit the prediction %s (expected the prediction's shape without its class axis)",
                   fn, sh_(st, b1), sh_(sp, b2));
        return -1;
    }
    if (val_(c, t)->dtype != DT_I32) {
        diag_error(targ.loc, "%s: class indices must be i32, found %s", fn, dtype_name(val_(c, t)->dtype));
        return -1;
    }
    /* remember the class count for the data checks of `nnc train` */
    Value *tv = val_(c, t);
    while (tv->op == OP_RESHAPE) tv = val_(c, tv->in[0]);
    if (tv->op == OP_INPUT && tv->attr.i[0] == 1) c->model->targets.data[tv->tensor].classes = (int)sp.d[sp.rank - 1];
    return t;
}

static CVal b_scce(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int p = tensor_(c, a[0], b->name);
    warn_not_logits_(c, p, a[0], a[2], b->name);
    if (p < 0 || !class_axis_(c, p, b->name, call->loc)) return cv_error();
    int t = class_indices_(c, p, a[1], b->name, call->loc);
    if (t < 0) return cv_error();
    Shape sp = val_(c, p)->shape;
    Attr at = {.i = {sp.d[sp.rank - 1]}};
    int onehot = graph_add(c->g, OP_ONE_HOT, &t, 1, &at, call->loc);
    return done_(c, cce_from_(c, p, onehot, a[2].i != 0, call->loc), call->loc);
}

/* accuracy: argmax against class indices or a one-hot target; a single column is thresholded at 0.5 */
static CVal b_accuracy(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    int p = tensor_(c, a[0], b->name);
    if (p < 0 || a[1].kind == CV_ERROR) return cv_error();
    Graph *g = c->g;
    Loc loc = call->loc;
    Shape sp = val_(c, p)->shape;
    int tid = cv_to_tensor(c, a[1], DT_F32, b->name);
    if (tid < 0 || !class_axis_(c, p, b->name, loc)) return cv_error();
    bool binary = sp.d[sp.rank - 1] == 1;
    int hit;
    if (binary) {
        int t = ir_cast(g, tid, DT_F32, loc);
        if (!match_pred_target_(c, &p, &t, b->name, loc)) return cv_error();
        hit = ir_binary(g, OP_EQ, ir_binary(g, OP_GT, p, ir_scalar(g, 0.5, loc), loc),
                        ir_binary(g, OP_GT, t, ir_scalar(g, 0.5, loc), loc), loc);
    } else if (val_(c, tid)->dtype == DT_I32 || val_(c, tid)->shape.rank == sp.rank - 1 ||
               (val_(c, tid)->shape.rank == sp.rank && val_(c, tid)->shape.d[sp.rank - 1] == 1)) {
        int t = class_indices_(c, p, a[1], b->name, loc);
        if (t < 0) return cv_error();
        Attr at = {.i = {sp.rank - 1}};
        hit = ir_binary(g, OP_EQ, graph_add(g, OP_ARGMAX, &p, 1, &at, loc), t, loc);
    } else {
        char b1[96], b2[96];
        if (!shape_eq(val_(c, tid)->shape, sp)) {
            diag_error(loc, "accuracy: prediction %s and one-hot target %s must have the same shape", sh_(sp, b1),
                       sh_(val_(c, tid)->shape, b2));
            return cv_error();
        }
        Attr at = {.i = {sp.rank - 1}};
        hit = ir_binary(g, OP_EQ, graph_add(g, OP_ARGMAX, &p, 1, &at, loc), graph_add(g, OP_ARGMAX, &tid, 1, &at, loc), loc);
    }
    return done_(c, mean_all_(c, hit, loc), loc);
}

/* ---- initializers --------------------------------------------------------------------------------------------- */
static CVal b_init(Check *c, const Builtin *b, Expr *call, CVal *a)
{
    (void)c;
    static const struct { const char *name; InitKind kind; } map[] = {
        {"zeros", INIT_ZEROS}, {"ones", INIT_ONES}, {"constant", INIT_CONSTANT}, {"normal", INIT_NORMAL},
        {"uniform", INIT_UNIFORM}, {"glorot_uniform", INIT_GLOROT_UNIFORM}, {"glorot_normal", INIT_GLOROT_NORMAL},
        {"he_normal", INIT_HE_NORMAL}, {"he_uniform", INIT_HE_UNIFORM}, {"lecun_normal", INIT_LECUN_NORMAL},
        {"lecun_uniform", INIT_LECUN_UNIFORM}, {"kaiming_uniform", INIT_KAIMING_UNIFORM},
    };
    CVal r = {.kind = CV_INIT, .loc = call->loc, .s = b->name};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (str_eq(map[i].name, b->name)) r.init.kind = map[i].kind;
    if (r.init.kind == INIT_CONSTANT) r.init.a = a[0].f;
    if (r.init.kind == INIT_KAIMING_UNIFORM) r.init.a = a[0].kind == CV_NONE ? 0 : a[0].f;
    if (r.init.kind == INIT_NORMAL) {
        r.init.a = a[0].f;
        r.init.b = a[1].f;
        if (a[1].f < 0) {
            diag_error(a[1].loc, "normal: std must not be negative");
            return cv_error();
        }
    }
    if (r.init.kind == INIT_UNIFORM) {
        r.init.a = a[0].f;
        r.init.b = a[1].f;
        if (a[0].f > a[1].f) {
            diag_error(a[0].loc, "uniform: lo is greater than hi");
            return cv_error();
        }
    }
    return r;
}

/* the list's values in out (NULL: only compare the list with the shape) */
static bool list_to_values_(CVal v, Shape s, float *out, int64_t *k, int depth)
{
    if (depth == s.rank) {
        if (v.kind != CV_INT && v.kind != CV_FLOAT) return false;
        if (out) out[(*k)++] = (float)v.f;
        return true;
    }
    if (v.kind != CV_LIST || v.n != s.d[depth]) return false;
    for (int i = 0; i < v.n; i++)
        if (!list_to_values_(v.items[i], s, out, k, depth + 1)) return false;
    return true;
}

/* initialisers: a name (zeros), a call (normal(std=0.1)), a number, or a list of the tensor's shape */
static Init init_from_(Check *c, CVal v, Loc loc, Shape s, bool *ok)
{
    Init init = {.kind = INIT_ZEROS};
    if (v.kind == CV_FUNC) {
        const Builtin *b = builtin_find(v.s);
        if (b && b->kind == BK_INIT) {
            CVal none[MAX_PARAMS + 1];
            for (int i = 0; i < MAX_PARAMS; i++) {
                none[i] = (CVal){.kind = CV_NONE};
                if (b->params[i].name && !b->params[i].dflt) {
                    diag_error(loc, "%s: missing argument '%s'", b->name, b->params[i].name);
                    *ok = false;
                    return init;
                }
                if (b->params[i].name) none[i] = (CVal){.kind = CV_FLOAT, .f = strtod(b->params[i].dflt, NULL)};
            }
            Expr at = {.loc = loc};
            v = b_init(c, b, &at, none);
        }
    }
    char buf[96];
    switch (v.kind) {
    case CV_INIT: return v.init;
    case CV_INT:
    case CV_FLOAT: return (Init){.kind = INIT_CONSTANT, .a = v.f};
    case CV_LIST: {
        int64_t k = 0;
        if (!list_to_values_(v, s, NULL, &k, 0)) { /* before allocating what the shape says */
            diag_error(loc, "the initial values do not have the parameter's shape %s", sh_(s, buf));
            *ok = false;
            return init;
        }
        float *vals = arena_alloc(c->arena, sizeof(float) * (size_t)shape_count(s, 1));
        list_to_values_(v, s, vals, &k, 0);
        return (Init){.kind = INIT_VALUES, .values = vals};
    }
    case CV_ERROR: *ok = false; return init;
    default:
        diag_error(loc, "expected an initializer (zeros, ones, constant(v), normal(mean, std), uniform(lo, hi), "
                           "glorot_uniform, he_normal), a number or a list");
        *ok = false;
        return init;
    }
}

Init check_init(Check *c, Expr *e, Shape s, bool *ok) { return init_from_(c, check_eval_expr(c, e), e->loc, s, ok); }

/* kernel_init= / bias_init= of a layer: the default when not given */
static bool layer_init_(Check *c, CVal v, Shape s, Init dflt, Init *out)
{
    bool ok = true;
    *out = v.kind == CV_NONE ? dflt : init_from_(c, v, v.loc, s, &ok);
    return ok;
}

/* ---- the table ---------------------------------------------------------------------------------------------------- */
#define NO_ARG
#define NUM_ARG(n, d) {n, A_NUM, d},
#define BOOL_ARG(n, d, op) {n, A_BOOL, d},
#define EW_BUILTIN_(name, op, act, arg) {name, BK_OP, b_ew, {ARG_X, arg ARG_NAME}},
#define REDUCE(n) {n, BK_OP, b_reduce, {ARG_X, {"axis", A_AXES, "none"}, {"keepdims", A_BOOL, "false"}, ARG_NAME}}
#define POOL_ARGS_ ARG_X, {"pool", A_INT2, "2"}, {"stride", A_INT2, "none"}, {"padding", A_PADDING, "valid"}, ARG_NAME
#define LOSS2(n, fn) {n, BK_LOSS, fn, {{"pred", A_TENSOR, NULL}, {"target", A_TENSOR, NULL}}}
#define LOSS3(n, fn) {n, BK_LOSS, fn, {{"pred", A_TENSOR, NULL}, {"target", A_TENSOR, NULL}, {"from_logits", A_BOOL, "false"}}}
#define INIT0(n) {n, BK_INIT, b_init, {{0}}}

static const Builtin builtins[] = {
#define NN_FUNCTION EW_BUILTIN_
#include "ops.def"
#undef NN_FUNCTION
    {"clip", BK_OP, b_clip, {ARG_X, {"lo", A_NUM, NULL}, {"hi", A_NUM, NULL}, ARG_NAME}},
    {"maximum", BK_OP, b_binary, {{"a", A_TENSOR, NULL}, {"b", A_TENSOR, NULL}, ARG_NAME}},
    {"minimum", BK_OP, b_binary, {{"a", A_TENSOR, NULL}, {"b", A_TENSOR, NULL}, ARG_NAME}},
    REDUCE("sum"), REDUCE("mean"), REDUCE("max"),
    {"argmax", BK_OP, b_argmax, {ARG_X, {"axis", A_INT, "-1"}, ARG_NAME}},
    {"flatten", BK_OP, b_flatten, {ARG_X, ARG_NAME}},
    {"reshape", BK_OP, b_reshape, {ARG_X, {"shape", A_INTS, NULL}, ARG_NAME}},
    {"transpose", BK_OP, b_transpose, {ARG_X, {"perm", A_INTS, "none"}, ARG_NAME}},
    {"concat", BK_OP, b_concat, {{"a", A_ANY, NULL}, {"b", A_TENSOR, "none"}, {"axis", A_INT, "-1"}, ARG_NAME}, 2},
    {"slice", BK_OP, b_slice, {ARG_X, {"axis", A_INT, NULL}, {"start", A_INT, NULL}, {"end", A_INT, "none"}, ARG_NAME}},
    {"softmax", BK_OP, b_softmax, {ARG_X, {"axis", A_INT, "-1"}, ARG_NAME}},
    {"log_softmax", BK_OP, b_softmax, {ARG_X, {"axis", A_INT, "-1"}, ARG_NAME}},
    {"dense", BK_LAYER, b_dense, {ARG_X, {"units", A_INT, NULL}, {"activation", A_ACT, "none"}, {"use_bias", A_BOOL, "true"}, ARG_NAME,
                                  {"kernel_init", A_ANY, "none"}, {"bias_init", A_ANY, "none"}}},
    {"conv2d", BK_LAYER, b_conv2d, {ARG_X, {"filters", A_INT, NULL}, {"kernel", A_INT2, NULL}, {"stride", A_INT2, "1"},
                                    {"padding", A_PADDING, "valid"}, {"activation", A_ACT, "none"}, {"use_bias", A_BOOL, "true"},
                                    {"groups", A_INT, "1"}, {"dilation", A_INT2, "1"}, ARG_NAME,
                                    {"kernel_init", A_ANY, "none"}, {"bias_init", A_ANY, "none"}}},
    {"maxpool2d", BK_LAYER, b_pool, {POOL_ARGS_}},
    {"avgpool2d", BK_LAYER, b_pool, {POOL_ARGS_, {"count_include_pad", A_BOOL, "false"}}},
    {"pad", BK_OP, b_pad, {ARG_X, {"padding", A_ANY, NULL}, {"value", A_NUM, "0.0"}, ARG_NAME}},
    {"batchnorm", BK_LAYER, b_batchnorm, {ARG_X, {"momentum", A_NUM, "0.99"}, {"epsilon", A_NUM, "0.001"}, ARG_NAME}},
    {"dropout", BK_LAYER, b_dropout, {ARG_X, {"rate", A_NUM, NULL}, ARG_NAME}},
    {"lstm", BK_LAYER, b_lstm, {ARG_X, {"units", A_INT, NULL}, {"return_sequences", A_BOOL, "false"}, ARG_NAME}},
    LOSS2("mse", b_mse_mae), LOSS2("mae", b_mse_mae),
    LOSS3("binary_crossentropy", b_bce), LOSS3("categorical_crossentropy", b_cce),
    LOSS3("sparse_categorical_crossentropy", b_scce),
    {"accuracy", BK_METRIC, b_accuracy, {{"pred", A_TENSOR, NULL}, {"target", A_ANY, NULL}}},
    INIT0("zeros"), INIT0("ones"), INIT0("glorot_uniform"), INIT0("glorot_normal"), INIT0("he_normal"),
    INIT0("he_uniform"), INIT0("lecun_normal"),
    {"constant", BK_INIT, b_init, {{"value", A_NUM, NULL}}},
    {"normal", BK_INIT, b_init, {{"mean", A_NUM, "0.0"}, {"std", A_NUM, "1.0"}}},
    {"uniform", BK_INIT, b_init, {{"lo", A_NUM, "-0.05"}, {"hi", A_NUM, "0.05"}}},
    INIT0("lecun_uniform"),
    {"kaiming_uniform", BK_INIT, b_init, {{"a", A_NUM, "0.0"}}},
    {"sgd", BK_OPTIMIZER, NULL, {{"lr", A_NUM, "none"}, {"momentum", A_NUM, "0.0"}, {"nesterov", A_BOOL, "false"},
                                 {"weight_decay", A_NUM, "0.0"}, {"learning_rate", A_NUM, "none"}}},
    {"adam", BK_OPTIMIZER, NULL, {{"lr", A_NUM, "none"}, {"beta1", A_NUM, "0.9"}, {"beta2", A_NUM, "0.999"},
                                  {"epsilon", A_NUM, "1e-7"}, {"learning_rate", A_NUM, "none"}}},
    {"adamw", BK_OPTIMIZER, NULL, {{"lr", A_NUM, "none"}, {"beta1", A_NUM, "0.9"}, {"beta2", A_NUM, "0.999"},
                                   {"epsilon", A_NUM, "1e-7"}, {"weight_decay", A_NUM, "0.01"}, {"learning_rate", A_NUM, "none"}}},
    {"rmsprop", BK_OPTIMIZER, NULL, {{"lr", A_NUM, "none"}, {"rho", A_NUM, "0.9"}, {"epsilon", A_NUM, "1e-7"},
                                     {"learning_rate", A_NUM, "none"}}},
    {"train", BK_OPTIMIZER, NULL, {{"epochs", A_INT, "none"}, {"batch", A_INT, "none"}, {"shuffle", A_BOOL, "true"}}},
};
#undef EW_BUILTIN_
#undef OP /* the empty OP() of the NN_FUNCTION includes */
#undef NO_ARG
#undef NUM_ARG
#undef BOOL_ARG

const Builtin *builtin_find(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (str_eq(builtins[i].name, name)) return &builtins[i];
    return NULL;
}

int builtin_names(const char **out, int max)
{
    int n = 0;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0] && n < max; i++) out[n++] = builtins[i].name;
    return n;
}

/* ---- optimizer and train statements ------------------------------------------------------------------------------ */
static double num_or_(CVal v, double dflt) { return v.kind == CV_INT || v.kind == CV_FLOAT ? v.f : dflt; }

void check_optimizer(Check *c, Stmt *s)
{
    Expr *call = s->expr;
    Model *m = c->model;
    const Builtin *b = builtin_find(call->str);
    if (!b || b->kind != BK_OPTIMIZER || str_eq(call->str, "train")) {
        static const char *const opts[] = {"sgd", "adam", "adamw", "rmsprop"};
        const char *hint = suggest_among(call->str, opts, 4);
        if (hint)
            diag_error(call->loc, "unknown optimizer '%s'; did you mean '%s'?", call->str, hint);
        else
            diag_error(call->loc, "unknown optimizer '%s' (sgd, adam, adamw, rmsprop)", call->str);
        return;
    }
    if (m->opt.kind != OPT_NONE) {
        diag_error(s->loc, "a model has one optimizer; this is the second");
        diag_note(m->opt.loc, "the first is here");
        return;
    }
    CVal a[MAX_PARAMS + 1];
    if (!check_bind_builtin(c, b, call, a)) return;
    Optimizer o = {.loc = s->loc};
    int lr_at = 0, alias_at = str_eq(b->name, "adamw") ? 5 : str_eq(b->name, "rmsprop") ? 3 : 4;
    if (a[lr_at].kind != CV_NONE && a[alias_at].kind != CV_NONE) {
        diag_error(call->loc, "%s: give either lr or learning_rate, not both", b->name);
        return;
    }
    CVal lr = a[lr_at].kind != CV_NONE ? a[lr_at] : a[alias_at];
    if (lr.kind == CV_NONE && str_eq(b->name, "sgd")) {
        diag_error(call->loc, "sgd: missing argument 'lr'");
        return;
    }
    o.lr = num_or_(lr, 0.001);
    if (!(o.lr > 0)) {
        diag_error(lr.loc, "%s: lr must be positive, found %g", b->name, o.lr);
        return;
    }
    if (str_eq(b->name, "sgd")) {
        o.kind = OPT_SGD;
        o.momentum = a[1].f;
        o.nesterov = a[2].i != 0;
        o.weight_decay = a[3].f;
    } else if (str_eq(b->name, "rmsprop")) {
        o.kind = OPT_RMSPROP;
        o.rho = a[1].f;
        o.epsilon = a[2].f;
    } else {
        o.kind = str_eq(b->name, "adam") ? OPT_ADAM : OPT_ADAMW;
        o.beta1 = a[1].f;
        o.beta2 = a[2].f;
        o.epsilon = a[3].f;
        if (o.kind == OPT_ADAMW) o.weight_decay = a[4].f;
    }
    /* each hyperparameter in its range, the error at the argument */
    for (int i = 1; i < MAX_PARAMS && b->params[i].name; i++) {
        const char *pn = b->params[i].name;
        double v = a[i].f;
        bool unit = str_eq(pn, "beta1") || str_eq(pn, "beta2") || str_eq(pn, "rho");
        bool nonneg = str_eq(pn, "momentum") || str_eq(pn, "epsilon") || str_eq(pn, "weight_decay");
        if (unit && !(v >= 0 && v < 1)) {
            diag_error(a[i].loc, "%s: %s must be in [0, 1), found %g", b->name, pn, v);
            return;
        }
        if (nonneg && !(v >= 0)) {
            diag_error(a[i].loc, "%s: %s must not be negative, found %g", b->name, pn, v);
            return;
        }
    }
    if (o.nesterov && o.momentum == 0) diag_warning(call->loc, "sgd: nesterov has no effect without momentum");
    m->opt = o;
}

void check_train_cfg(Check *c, Stmt *s)
{
    CVal a[MAX_PARAMS + 1];
    if (!check_bind_builtin(c, builtin_find("train"), s->expr, a)) return;
    TrainCfg *t = &c->model->train;
    if (a[0].kind == CV_INT) {
        if (a[0].i < 1 || a[0].i > 1000000) diag_error(a[0].loc, "train: epochs must be a positive integer");
        t->epochs = (int)a[0].i;
    }
    if (a[1].kind == CV_INT) {
        if (a[1].i < 1 || a[1].i > 1000000) diag_error(a[1].loc, "train: batch must be a positive integer");
        t->batch = (int)a[1].i;
    }
    t->shuffle = a[2].i != 0;
}
