/* onnx_ops_elementwise.c: activations and arithmetic. Each maps onto one .nn expression; the operands keep
 * whatever layout they have (an NHWC convolution output stays NHWC through Relu and Add), and a constant
 * operand is permuted into that layout at import (imp_const_operand). */
#include "onnx_internal.h"

#include <math.h>
#include <string.h>

/* the broadcast of two ONNX shapes (the batch axis is OX_BATCH in both) */
static bool broadcast_(const int64_t *a, int ra, const int64_t *b, int rb, int64_t *out, int *rank)
{
    *rank = ra > rb ? ra : rb;
    for (int k = 0; k < *rank; k++) {
        int64_t x = k < *rank - ra ? 1 : a[k - (*rank - ra)], y = k < *rank - rb ? 1 : b[k - (*rank - rb)];
        if (x != 1 && y != 1 && x != y) return false;
        out[k] = x == 1 ? y : x;
    }
    return true;
}

/* the result of a unary expression on `x`: same shape and layout */
static bool unary_out_(Imp *im, const Node *n, Val *x, const char *fmt, ...) NNC_PRINTF(4, 5);
static bool unary_out_(Imp *im, const Node *n, Val *x, const char *fmt, ...)
{
    char expr[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expr, sizeof expr, fmt, ap);
    va_end(ap);
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_comment_node(im, n);
    imp_line(im, "%s = %s", name, expr);
    imp_set_data(o, name, x->rank, x->dims, x->axis);
    return true;
}

/* ---- unary ---- */
static const struct {
    const char *op, *fn;
} plain_[] = {
    {"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"}, {"Exp", "exp"}, {"Log", "log"},
    {"Sqrt", "sqrt"}, {"Abs", "abs"},       {"Erf", "erf"},   {"Softplus", "softplus"},
};

static bool plain_unary_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    for (size_t k = 0; k < sizeof plain_ / sizeof plain_[0]; k++)
        if (str_eq(plain_[k].op, n->op_type)) return unary_out_(im, n, x, "%s(%s)", plain_[k].fn, x->nn);
    return imp_unsupported(im, n, "no .nn function");
}

static bool neg_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    return x && unary_out_(im, n, x, "-%s", x->nn);
}

static bool reciprocal_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    return x && unary_out_(im, n, x, "1.0 / %s", x->nn);
}

static bool leaky_relu_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    return x && unary_out_(im, n, x, "leaky_relu(%s, alpha=%s)", x->nn, imp_float(im, attr_float(n, "alpha", 0.01f)));
}

static bool elu_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    return x && unary_out_(im, n, x, "elu(%s, alpha=%s)", x->nn, imp_float(im, attr_float(n, "alpha", 1.0f)));
}

static bool gelu_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    const char *approx = attr_string(im, n, "approximate", "none");
    if (!str_eq(approx, "none") && !str_eq(approx, "tanh")) return imp_unsupported(im, n, "approximate='%.20s'", approx);
    return unary_out_(im, n, x, "gelu(%s%s)", x->nn, str_eq(approx, "tanh") ? ", approximate=true" : "");
}

static bool selu_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    return x && unary_out_(im, n, x, "%s * elu(%s, alpha=%s)", imp_float(im, attr_float(n, "gamma", 1.05070102214813232421875f)),
                           x->nn, imp_float(im, attr_float(n, "alpha", 1.67326319217681884765625f)));
}

static bool hard_sigmoid_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    return unary_out_(im, n, x, "clip(%s * %s + %s, 0.0, 1.0)", x->nn, imp_float(im, attr_float(n, "alpha", 0.2f)),
                      imp_float(im, attr_float(n, "beta", 0.5f)));
}

static bool hard_swish_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    return x && unary_out_(im, n, x, "%s * clip(%s * %s + 0.5, 0.0, 1.0)", x->nn, x->nn, imp_float(im, 1.0 / 6.0));
}

static bool mish_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    return x && unary_out_(im, n, x, "%s * tanh(softplus(%s))", x->nn, x->nn);
}

static bool softsign_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    return x && unary_out_(im, n, x, "%s / (1.0 + abs(%s))", x->nn, x->nn);
}

/* a scalar constant input (Clip's bounds, Pow's exponent, Dropout's ratio), absent: *present = false */
static bool scalar_input_(Imp *im, const Node *n, int k, double *v, bool *present)
{
    Val *c = imp_input(im, n, k);
    *present = c != NULL;
    if (!c) return true;
    if (c->kind != VAL_CONST || c->c.count != 1) return imp_unsupported(im, n, "input %d must be a constant scalar", k);
    *v = ox_get(&c->c, 0);
    return true;
}

static bool clip_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    double lo = -INFINITY, hi = INFINITY;
    bool has_lo = false, has_hi = false;
    if (im->opset < 11) {
        lo = attr_float(n, "min", -INFINITY);
        hi = attr_float(n, "max", INFINITY);
    } else if (!scalar_input_(im, n, 1, &lo, &has_lo) || !scalar_input_(im, n, 2, &hi, &has_hi))
        return false;
    has_lo = isfinite(lo) && lo > -3.0e38;
    has_hi = isfinite(hi) && hi < 3.0e38;
    if (has_lo && has_hi) return unary_out_(im, n, x, "clip(%s, %s, %s)", x->nn, imp_float(im, lo), imp_float(im, hi));
    if (has_lo) return unary_out_(im, n, x, "maximum(%s, %s)", x->nn, imp_float(im, lo));
    if (has_hi) return unary_out_(im, n, x, "minimum(%s, %s)", x->nn, imp_float(im, hi));
    return unary_out_(im, n, x, "%s", x->nn);
}

static bool pow_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    double e = 1;
    bool present;
    if (!x || !scalar_input_(im, n, 1, &e, &present)) return false;
    if (e == 1) return unary_out_(im, n, x, "%s", x->nn);
    if (e == 2) return unary_out_(im, n, x, "square(%s)", x->nn);
    if (e == 0.5) return unary_out_(im, n, x, "sqrt(%s)", x->nn);
    return unary_out_(im, n, x, "%s ** %s", x->nn, e < 0 ? arena_printf(im->a, "(%s)", imp_float(im, e)) : imp_float(im, e));
}

static bool dropout_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0);
    if (!x) return false;
    if (imp_output_used(im, n, 1)) return imp_unsupported(im, n, "its mask output is used");
    double training = 0;
    bool has_training = false;
    if (im->opset >= 12 && !scalar_input_(im, n, 2, &training, &has_training)) return false;
    if (training != 0) /* ONNX's random draws are not nnc's: such a graph's outputs cannot be reproduced */
        return imp_unsupported(im, n, "training_mode is true: an inference graph with random dropout");
    double rate = im->opset < 12 ? attr_float(n, "ratio", 0.5f) : 0.5;
    bool present = false;
    if (im->opset >= 12 && !scalar_input_(im, n, 1, &rate, &present)) return false;
    if (rate <= 0 || rate >= 1) return unary_out_(im, n, x, "%s", x->nn);
    return unary_out_(im, n, x, "dropout(%s, %s)", x->nn, imp_float(im, rate));
}

static bool identity_(Imp *im, const Node *n)
{
    Val *x = imp_input(im, n, 0), *o = imp_output(im, n, 0);
    if (!x || x->kind != VAL_DATA) return imp_unsupported(im, n, "its input is not data");
    const char *onnx = o->onnx;
    *o = *x; /* the same .nn value, under the output's ONNX name */
    o->onnx = onnx;
    o->uses = 1;
    return true;
}

/* ---- Softplus behind a threshold ---- */
static const Node *producer_(const Imp *im, const char *onnx)
{
    for (size_t k = 0; k < im->graph->n_node; k++)
        for (size_t o = 0; o < im->graph->node[k]->n_output; o++)
            if (str_eq(im->graph->node[k]->output[o], onnx)) return im->graph->node[k];
    return NULL;
}

/* PyTorch's dynamo exporter writes nn.Softplus() (beta 1, threshold 20) as Where(x > 20, x, Softplus(x)). nnc
 * has no comparisons; but for x above a threshold t >= 15 softplus(x) - x = log1p(exp(-x)) < 3.1e-7 is under
 * half an ulp of x (4.8e-7 at 15), so both branches round to the same float32 and the Where is the Softplus.
 * Greater is imported only in that form: it takes its Where (absorbed) and gives it the Softplus's value. */
static bool greater_(Imp *im, const Node *n)
{
    Val *x = imp_input(im, n, 0), *t = imp_input(im, n, 1), *g = imp_output(im, n, 0);
    const Node *w = g->uses == 1 ? g->consumer : NULL;
    if (!x || x->kind != VAL_DATA || !t || t->kind != VAL_CONST || t->c.count != 1 || !w || !str_eq(w->op_type, "Where") ||
        w->n_input != 3 || w->n_output < 1 || !str_eq(w->input[0], g->onnx) || !str_eq(w->input[1], x->onnx))
        return imp_unsupported(im, n, "nnc has no comparisons: only Where(x > t, x, Softplus(x)) is imported");
    const Node *sp = producer_(im, w->input[2]);
    Val *s = imp_val(im, w->input[2]);
    if (!sp || !str_eq(sp->op_type, "Softplus") || sp->n_input < 1 || !str_eq(sp->input[0], x->onnx) || !s || s->kind != VAL_DATA)
        return imp_unsupported(im, n, "nnc has no comparisons: only Where(x > t, x, Softplus(x)) is imported");
    if (!(ox_get(&t->c, 0) >= 15))
        return imp_unsupported(im, n, "Where(x > t, x, Softplus(x)) with t = %g: below 15 it is not the Softplus", ox_get(&t->c, 0));
    imp_absorb(im, w);
    Val *o = imp_output(im, w, 0);
    Val keep = *o; /* the same .nn value, under the Where's ONNX name and uses */
    *o = *s;
    o->onnx = keep.onnx;
    o->uses = keep.uses;
    o->consumer = keep.consumer;
    o->output = keep.output;
    return true;
}

/* ---- binary and variadic ---- */
/* `x` as an operand of an expression whose result has layout `like`; NULL after an error */
static const char *operand_(Imp *im, const Node *n, Val *x, Val *like)
{
    if (x->kind == VAL_CONST) return imp_const_operand(im, x, like);
    if (x->rank != like->rank) {
        imp_unsupported(im, n, "data operands of ranks %d and %d: nnc broadcasts data only along axes of the same rank",
                        x->rank, like->rank);
        return NULL;
    }
    return imp_data_as(im, x, like->axis);
}

static const char *infix_(const char *op)
{
    return str_eq(op, "Add") || str_eq(op, "Sum") || str_eq(op, "Mean") ? "+" : str_eq(op, "Sub") ? "-" : str_eq(op, "Mul") ? "*" : "/";
}

static bool nary_(Imp *im, const Node *n)
{
    const char *op = n->op_type;
    int nin = (int)n->n_input;
    Val *like = NULL;
    for (int k = 0; k < nin; k++) {
        Val *v = imp_input(im, n, k);
        if (!v) return imp_unsupported(im, n, "an empty input");
        if (v->kind == VAL_DATA && (!like || v->rank > like->rank)) like = v;
    }
    if (!like) return imp_unsupported(im, n, "no input is data");
    int64_t dims[OX_MAX_RANK];
    int rank = like->rank;
    memcpy(dims, like->dims, sizeof dims);
    const char *ops[16];
    if (nin > 16) return imp_unsupported(im, n, "more than 16 inputs");
    for (int k = 0; k < nin; k++) {
        Val *v = imp_input(im, n, k);
        const int64_t *vd = v->kind == VAL_DATA ? v->dims : v->c.dims;
        int vr = v->kind == VAL_DATA ? v->rank : v->c.rank;
        int64_t nd[OX_MAX_RANK];
        int nr;
        if (!broadcast_(dims, rank, vd, vr, nd, &nr) || nr != rank) return imp_unsupported(im, n, "its inputs do not broadcast");
        memcpy(dims, nd, sizeof nd);
        if (!(ops[k] = operand_(im, n, v, like))) return false;
    }
    StrBuf e = {0};
    bool fn = str_eq(op, "Max") || str_eq(op, "Min");
    if (fn) {
        sb_puts(&e, ops[0]);
        for (int k = 1; k < nin; k++) {
            char *prev = sb_take(&e);
            sb_printf(&e, "%s(%s, %s)", str_eq(op, "Max") ? "maximum" : "minimum", prev, ops[k]);
            free(prev);
        }
    } else {
        if (str_eq(op, "Mean") && nin > 1) sb_putc(&e, '(');
        for (int k = 0; k < nin; k++) sb_printf(&e, "%s%s", k ? arena_printf(im->a, " %s ", infix_(op)) : "", ops[k]);
        if (str_eq(op, "Mean") && nin > 1) sb_printf(&e, ") / %s", imp_float(im, nin));
    }
    Val *o = imp_output(im, n, 0);
    const char *name = imp_value_name(im, o->onnx);
    imp_comment_node(im, n);
    imp_line(im, "%s = %s", name, e.s);
    sb_free(&e);
    int axis[OX_MAX_RANK];
    memcpy(axis, like->axis, sizeof axis);
    imp_set_data(o, name, rank, dims, axis);
    return true;
}

static bool prelu_(Imp *im, const Node *n)
{
    Val *x = imp_data_input(im, n, 0), *s = imp_input(im, n, 1);
    if (!x) return false;
    if (!s) return imp_unsupported(im, n, "no slope");
    Val legacy;
    if (im->opset < 7 && s->kind == VAL_CONST && s->c.rank == 1 && x->rank > 2 && s->c.dims[0] == x->dims[1] &&
        s->c.dims[0] != 1) { /* before opset 7 a slope of C values is per channel (axis 1), not NumPy-aligned */
        legacy = *s;
        legacy.param = NULL;
        legacy.c.rank = x->rank - 1;
        for (int k = 1; k < legacy.c.rank; k++) legacy.c.dims[k] = 1;
        s = &legacy;
    }
    const char *slope = operand_(im, n, s, x);
    return slope && unary_out_(im, n, x, "relu(%s) - %s * relu(-%s)", x->nn, slope, x->nn);
}

const OpRow onnx_ops_elementwise[] = {
    {"Relu", 1, plain_unary_},   {"Sigmoid", 1, plain_unary_},   {"Tanh", 1, plain_unary_}, {"Exp", 1, plain_unary_},
    {"Log", 1, plain_unary_},    {"Sqrt", 1, plain_unary_},      {"Abs", 1, plain_unary_},  {"Erf", 9, plain_unary_},
    {"Softplus", 1, plain_unary_}, {"Neg", 1, neg_},             {"Reciprocal", 1, reciprocal_},
    {"LeakyRelu", 1, leaky_relu_}, {"Elu", 1, elu_},             {"Gelu", 20, gelu_},       {"HardSigmoid", 1, hard_sigmoid_}, {"Selu", 1, selu_},
    {"HardSwish", 14, hard_swish_}, {"Softsign", 1, softsign_},  {"Clip", 1, clip_},        {"Pow", 1, pow_},
    {"Dropout", 1, dropout_},    {"Identity", 1, identity_},     {"Add", 1, nary_},         {"Sub", 1, nary_},
    {"Mul", 1, nary_},           {"Div", 1, nary_},              {"Sum", 1, nary_},         {"Mean", 1, nary_},
    {"Max", 1, nary_},           {"Min", 1, nary_},              {"PRelu", 1, prelu_},
    {"Mish", 18, mish_},         {"Greater", 7, greater_},
    {NULL, 0, NULL},
};
