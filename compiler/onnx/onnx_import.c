/* onnx_import.c: an ONNX graph as a .nn model. One walk over the (sorted) nodes: a node whose inputs are all
 * constant folds at import (shape arithmetic), any other is handed to its operator family's handler, which
 * writes .nn statements. A node nnc cannot import is reported (node, op type, opset) and the walk goes on,
 * so that every such node is named; nodes downstream of one are skipped quietly. */
#include "onnx_internal.h"
#include "check.h"
#include "frontend.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- values: an open-addressing table by ONNX name. A Val never moves once made: handlers hold pointers to
 * their inputs while they make their outputs. ---------------------------------------------------------------- */
static Val **val_slot_(const Imp *im, const char *name)
{
    size_t mask = (size_t)im->capvals - 1;
    for (size_t i = (size_t)str_hash(name) & mask;; i = (i + 1) & mask)
        if (!im->vals[i] || str_eq(im->vals[i]->onnx, name)) return &im->vals[i];
}

static void vals_grow_(Imp *im)
{
    Val **old = im->vals;
    int oldcap = im->capvals;
    im->capvals = oldcap ? 2 * oldcap : 256;
    im->vals = arena_alloc(im->a, sizeof *im->vals * (size_t)im->capvals);
    for (int k = 0; k < oldcap; k++)
        if (old[k]) *val_slot_(im, old[k]->onnx) = old[k];
}

/* the Val of `name` if one was made, else NULL */
static Val *val_find_(const Imp *im, const char *name)
{
    return im->capvals && name ? *val_slot_(im, name) : NULL;
}

Val *imp_val(Imp *im, const char *name)
{
    if (!name || !*name) return NULL;
    if (2 * (im->nvals + 1) > im->capvals) vals_grow_(im);
    Val **slot = val_slot_(im, name);
    if (!*slot) {
        *slot = arena_alloc(im->a, sizeof **slot);
        (*slot)->onnx = arena_strdup(im->a, name);
        im->nvals++;
    }
    return *slot;
}

Val *imp_input(Imp *im, const Node *n, int k) { return k < (int)n->n_input ? imp_val(im, n->input[k]) : NULL; }
Val *imp_output(Imp *im, const Node *n, int k)
{
    if (k >= (int)n->n_output) return NULL;
    Val *v = imp_val(im, n->output[k]);
    if (v) return v;
    v = arena_alloc(im->a, sizeof *v); /* an omitted output (""): a Val that nothing reads; handlers need not test */
    v->onnx = "";
    return v;
}

Val *imp_data_input(Imp *im, const Node *n, int k)
{
    (void)imp_output(im, n, 0);
    Val *x = imp_input(im, n, k);
    if (!x || x->kind != VAL_DATA) {
        imp_unsupported(im, n, "input %d must be computed from the graph's inputs", k);
        return NULL;
    }
    return x;
}

int ox_axis(int64_t axis, int rank) { return axis < -rank || axis >= rank ? -1 : (int)(axis < 0 ? axis + rank : axis); }

bool imp_output_used(Imp *im, const Node *n, int k)
{
    Val *v = imp_output(im, n, k);
    return v && v->uses > 0;
}

static void comment_text_(StrBuf *b, const char *s, size_t max)
{
    for (size_t k = 0; s[k] && k < max; k++) sb_putc(b, s[k] >= 32 && s[k] < 127 ? s[k] : '?');
}

bool imp_unsupported(Imp *im, const Node *n, const char *fmt, ...)
{
    StrBuf b = {0};
    sb_printf(&b, "%s: node '", im->path);
    comment_text_(&b, n->name && *n->name ? n->name : "", 200);
    if (!n->name || !*n->name) sb_printf(&b, "#%d", im->node_index);
    sb_puts(&b, "' (");
    comment_text_(&b, n->op_type ? n->op_type : "?", 60);
    if (n->domain && *n->domain && !str_eq(n->domain, "ai.onnx")) {
        sb_puts(&b, ", domain ");
        comment_text_(&b, n->domain, 60);
    }
    sb_printf(&b, ", opset %d): ", im->opset);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    onnx_error("%s", b.s);
    sb_free(&b);
    im->unsupported++;
    return false;
}

/* ---- attributes ------------------------------------------------------------------------------------------- */
const Onnx__AttributeProto *attr_find(const Node *n, const char *name)
{
    for (size_t k = 0; k < n->n_attribute; k++)
        if (n->attribute[k]->name && str_eq(n->attribute[k]->name, name)) return n->attribute[k];
    return NULL;
}

int64_t attr_int(const Node *n, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = attr_find(n, name);
    return a && a->has_i ? a->i : dflt;
}

float attr_float(const Node *n, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = attr_find(n, name);
    return a && a->has_f ? a->f : dflt;
}

const char *attr_string(Imp *im, const Node *n, const char *name, const char *dflt)
{
    const Onnx__AttributeProto *a = attr_find(n, name);
    if (!a || !a->has_s) return dflt;
    return arena_strndup(im->a, (const char *)a->s.data, a->s.len);
}

const int64_t *attr_ints(const Node *n, const char *name, int *count)
{
    const Onnx__AttributeProto *a = attr_find(n, name);
    *count = a ? (int)a->n_ints : 0;
    return a && a->n_ints ? a->ints : NULL;
}

/* ---- names and text --------------------------------------------------------------------------------------- */
/* words no value may be called: the checker reads them as constants. The statement words (input, output,
 * model, ...) are names like any other wherever a name goes, so a graph input called "input" keeps its name. */
static const char *const keywords_[] = {"true", "false", "none"};

/* .nn names taken so far: an open-addressing table; `next` is the suffix to try after NAME_2, NAME_3, ... */
static ImpName *name_slot_(const Imp *im, const char *s)
{
    size_t mask = (size_t)im->capnames - 1;
    for (size_t i = (size_t)str_hash(s) & mask;; i = (i + 1) & mask)
        if (!im->names[i].s || str_eq(im->names[i].s, s)) return &im->names[i];
}

static bool reserved_(const char *s)
{
    for (size_t k = 0; k < sizeof keywords_ / sizeof keywords_[0]; k++)
        if (str_eq(s, keywords_[k])) return true;
    return builtin_find(s) != NULL;
}

static bool name_slot_taken_(const Imp *im, const char *s) { return im->capnames && name_slot_(im, s)->s; }

static bool name_taken_(const Imp *im, const char *s)
{
    return reserved_(s) || (im->capnames && name_slot_(im, s)->s);
}

static ImpName *name_take_(Imp *im, const char *s)
{
    if (2 * (im->nnames + 1) > im->capnames) {
        ImpName *old = im->names;
        int oldcap = im->capnames;
        im->capnames = oldcap ? 2 * oldcap : 256;
        im->names = arena_alloc(im->a, sizeof *im->names * (size_t)im->capnames);
        for (int k = 0; k < oldcap; k++)
            if (old[k].s) *name_slot_(im, old[k].s) = old[k];
    }
    ImpName *slot = name_slot_(im, s);
    if (!slot->s) {
        slot->s = s;
        slot->next = 2;
        im->nnames++;
    }
    return slot;
}

/* `s` as an identifier: bytes outside [A-Za-z0-9_] become _, a leading digit gets a _ before it */
static char *identifier_(Imp *im, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) n = max;
    char *id = arena_alloc(im->a, n + 3);
    size_t k = 0;
    if (n == 0 || (s[0] >= '0' && s[0] <= '9')) id[k++] = '_';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        id[k++] = ok ? c : '_';
    }
    id[k] = 0;
    return id;
}

/* an unused .nn name from `id`: a repeat gets _2, _3, ... (each base remembers its next suffix, so that many
 * names made alike cost no more than different ones); true/false/none and, unless builtin_ok, the name of a
 * builtin function (a value so called would hide the function from the rest of the model) get a trailing _ */
static const char *unique_named_(Imp *im, const char *id, bool builtin_ok)
{
    bool builtin_kept = builtin_ok && builtin_find(id) && !name_slot_taken_(im, id);
    if (builtin_kept) return name_take_(im, id)->s;
    const char *base = reserved_(id) ? arena_printf(im->a, "%s_", id) : id;
    if (!name_taken_(im, base)) return name_take_(im, base)->s;
    const char *name;
    do {
        ImpName *b = name_take_(im, base); /* a reserved base is marked taken here too */
        name = arena_printf(im->a, "%s_%d", base, b->next++);
    } while (name_taken_(im, name));
    return name_take_(im, name)->s;
}

static const char *unique_(Imp *im, const char *id) { return unique_named_(im, id, false); }

const char *imp_fresh_name(Imp *im, const char *base) { return unique_(im, identifier_(im, base, 120)); }

/* a readable name for a value exported as "/layer1/conv/Conv_output_0": "layer1_conv_Conv" */
const char *imp_value_name(Imp *im, const char *onnx)
{
    Val *v = val_find_(im, onnx);
    if (v && v->output && !im->output_bound[v->output - 1]) { /* a graph output is computed under its own name */
        im->output_bound[v->output - 1] = true;
        return im->output_nn[v->output - 1];
    }
    char buf[160];
    const char *s = onnx;
    while (*s == '/' || *s == ':' || *s == '.') s++;
    snprintf(buf, sizeof buf, "%s", *s ? s : "v");
    size_t n = strlen(buf);
    if (n > 9 && str_eq(buf + n - 9, "_output_0")) buf[n - 9] = 0;
    if (!strncmp(buf, "onnx::", 6)) memmove(buf, buf + 6, strlen(buf + 6) + 1);
    return imp_fresh_name(im, buf);
}

void imp_line(Imp *im, const char *fmt, ...)
{
    sb_puts(&im->out, "    ");
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&im->out, fmt, ap);
    va_end(ap);
    sb_putc(&im->out, '\n');
}

void imp_comment_node(Imp *im, const Node *n)
{
    sb_puts(&im->out, "    # ");
    comment_text_(&im->out, n->op_type, 60);
    if (n->name && *n->name) {
        sb_puts(&im->out, " ");
        comment_text_(&im->out, n->name, 200);
    }
    sb_putc(&im->out, '\n');
}

const char *imp_float(Imp *im, double v)
{
    char buf[64];
    float f = (float)v;
    for (int digits = 6; digits <= 9; digits++) { /* the shortest decimal that reads back as the same float */
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    if (!strpbrk(buf, ".eEni")) strcat(buf, ".0");
    return arena_strdup(im->a, buf);
}

const char *imp_int_list(Imp *im, const int64_t *v, int n)
{
    StrBuf b = {0};
    sb_putc(&b, '[');
    for (int k = 0; k < n; k++) sb_printf(&b, "%s%lld", k ? ", " : "", (long long)v[k]);
    sb_putc(&b, ']');
    const char *s = arena_strdup(im->a, b.s);
    sb_free(&b);
    return s;
}

/* A layer's name: the common prefix of a PyTorch-style weight name ("features.0.weight" -> "features.0"),
 * else the node's name, else KIND_K. Layer names are strings in name="...", so dots stay. */
const char *imp_layer_name(Imp *im, const Node *n, const char *kind, const Val *weight)
{
    const char *base = NULL;
    if (weight && weight->initializer) {
        const char *w = weight->onnx, *dot = strrchr(w, '.');
        bool plain = dot && dot > w && str_eq(dot, ".weight");
        for (const char *p = w; plain && p < dot; p++)
            plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                    (*p == '.' && p > w && p[-1] != '.');
        if (plain && dot - w < 100) base = arena_strndup(im->a, w, (size_t)(dot - w));
    }
    if (!base && n->name && *n->name) {
        const char *s = n->name;
        while (*s == '/') s++;
        if (*s) base = identifier_(im, s, 100);
    }
    if (!base) {
        int k = 0;
        for (const char *p = kind; *p; p++) k = (k * 31 + *p) & 15;
        base = arena_printf(im->a, "%s_%d", kind, ++im->layer_count[k]);
    }
    /* layer names are strings of their own namespace (keys "layer:NAME", which no identifier can be): a layer
     * may be called "dense" or share the name of the value it computes */
    const char *name = base;
    for (int k = 2; name_slot_taken_(im, arena_printf(im->a, "layer:%s", name)); k++)
        name = arena_printf(im->a, "%s_%d", base, k);
    name_take_(im, arena_printf(im->a, "layer:%s", name));
    return name;
}

/* ---- weights ---------------------------------------------------------------------------------------------- */
void imp_add_weight(Imp *im, const char *name, const float *data, const int64_t *dims, int rank)
{
    if (im->nweights == im->capweights) {
        im->capweights = im->capweights ? 2 * im->capweights : 32;
        im->weights = realloc(im->weights, sizeof *im->weights * (size_t)im->capweights);
    }
    nnc_st_tensor *t = &im->weights[im->nweights++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->dtype = NNC_F32;
    t->rank = rank;
    int64_t n = 1;
    for (int k = 0; k < rank; k++) n *= (t->shape[k] = dims[k]);
    t->nbytes = (size_t)n * sizeof(float);
    t->data = malloc(t->nbytes + 1);
    if (n) memcpy(t->data, data, t->nbytes);
}

static const char *shape_text_(Imp *im, const int64_t *dims, int rank)
{
    return imp_int_list(im, dims, rank);
}

const char *imp_param(Imp *im, const char *base, const float *data, const int64_t *dims, int rank)
{
    const char *name = imp_fresh_name(im, base);
    imp_line(im, "param %s: f32%s = zeros", name, shape_text_(im, dims, rank));
    imp_add_weight(im, name, data, dims, rank);
    return name;
}

/* ---- data values and layouts ------------------------------------------------------------------------------ */
void axis_identity(int *axis, int rank)
{
    for (int k = 0; k < rank; k++) axis[k] = k;
}

void imp_set_data(Val *out, const char *nn, int rank, const int64_t *dims, const int *axis)
{
    out->kind = VAL_DATA;
    out->nn = nn;
    out->rank = rank;
    for (int k = 0; k < rank; k++) {
        out->dims[k] = dims[k];
        out->axis[k] = axis[k];
    }
}

static bool same_axes_(const int *a, const int *b, int rank)
{
    for (int k = 0; k < rank; k++)
        if (a[k] != b[k]) return false;
    return true;
}

void imp_pending_flatten(Imp *im, Val *out, Val *src)
{
    (void)im;
    int64_t dims[2] = {OX_BATCH, 1};
    for (int k = 1; k < src->rank; k++) dims[1] *= src->dims[k];
    int axis[2] = {0, 1};
    imp_set_data(out, NULL, 2, dims, axis);
    out->flat_src = src;
}

const char *imp_materialize(Imp *im, Val *v)
{
    if (v->nn || !v->flat_src) return v->nn;
    const char *src = imp_data_onnx_order(im, v->flat_src);
    v->nn = imp_value_name(im, v->onnx);
    imp_line(im, "%s = flatten(%s)", v->nn, src);
    return v->nn;
}

const char *imp_flat_rows(Imp *im, Val *v, const int64_t **rows)
{
    *rows = NULL;
    Val *s = v->flat_src;
    bool identity = true;
    for (int k = 0; s && k < s->rank; k++) identity &= s->axis[k] == k;
    if (v->nn || !s || identity) return imp_materialize(im, v);
    if (!v->flat_rows_nn) {
        int64_t n = v->dims[1];
        v->flat_rows = arena_alloc(im->a, sizeof(int64_t) * (size_t)(n + 1));
        int onnx_of[OX_MAX_RANK];
        for (int k = 0; k < s->rank; k++) onnx_of[s->axis[k]] = k;
        for (int64_t j = 0; j < n; j++) { /* .nn flat index j -> its ONNX flat index */
            int64_t rem = j, idx[OX_MAX_RANK] = {0};
            for (int a = s->rank - 1; a >= 1; a--) {
                int64_t e = s->dims[onnx_of[a]];
                idx[onnx_of[a]] = rem % e;
                rem /= e;
            }
            int64_t f = 0;
            for (int k = 1; k < s->rank; k++) f = f * s->dims[k] + idx[k];
            v->flat_rows[j] = f;
        }
        v->flat_rows_nn = imp_fresh_name(im, arena_printf(im->a, "%s_flat", s->nn));
        imp_line(im, "%s = flatten(%s)   # in .nn's order: the next layer's weight rows are permuted to match",
                 v->flat_rows_nn, s->nn);
    }
    *rows = v->flat_rows;
    return v->flat_rows_nn;
}

const char *imp_data_as(Imp *im, Val *v, const int *want)
{
    imp_materialize(im, v);
    if (same_axes_(v->axis, want, v->rank)) return v->nn;
    for (int k = 0; k < v->nviews; k++)
        if (same_axes_(v->views[k].axis, want, v->rank)) return v->views[k].nn;
    int64_t perm[OX_MAX_RANK], to[OX_MAX_RANK];
    for (int k = 0; k < v->rank; k++) {
        perm[want[k]] = v->axis[k];
        to[want[k]] = v->dims[k];
    }
    /* axes of extent 1 move for free: when the others keep their order, the elements are already where the new
     * order wants them and a reshape (a view) does it (an NCHW image of one channel to NHWC) */
    bool moves_data = false;
    for (int a = 1, last = 0; a < v->rank; a++)
        if (to[a] != 1) {
            moves_data |= perm[a] < last;
            last = (int)perm[a];
        }
    const char *name = imp_fresh_name(im, arena_printf(im->a, "%s_t", v->nn));
    if (moves_data)
        imp_line(im, "%s = transpose(%s, %s)", name, v->nn, imp_int_list(im, perm, v->rank));
    else
        imp_line(im, "%s = reshape(%s, %s)", name, v->nn, imp_int_list(im, to + 1, v->rank - 1));
    if (v->nviews < (int)(sizeof v->views / sizeof v->views[0])) {
        for (int k = 0; k < v->rank; k++) v->views[v->nviews].axis[k] = want[k];
        v->views[v->nviews++].nn = name;
    }
    return name;
}

static int batch_axis_(const Val *v)
{
    for (int k = 0; k < v->rank; k++)
        if (v->axis[k] == 0) return k;
    return -1;
}

const char *imp_data_onnx_order(Imp *im, Val *v)
{
    if (batch_axis_(v) != 0) return NULL;
    int id[OX_MAX_RANK];
    axis_identity(id, v->rank);
    return imp_data_as(im, v, id);
}

const char *imp_const_operand(Imp *im, Val *c, const Val *like)
{
    const OxConst *k = &c->c;
    int R = like->rank, r = k->rank;
    if (r > R) {
        imp_unsupported(im, im->node, "the constant '%.100s' has more axes (%d) than the data it meets (%d)", c->onnx, r, R);
        return NULL;
    }
    if (k->count == 1 || (k->count < 0)) {
        double v = ox_get(k, 0);
        if (!isfinite(v)) {
            imp_unsupported(im, im->node, "the constant '%.100s' is not finite", c->onnx);
            return NULL;
        }
        if (k->count < 0) {
            for (int a = 0; a < r; a++)
                if (k->dims[r - 1 - a] != 1 && k->dims[r - 1 - a] != OX_BATCH && k->dims[r - 1 - a] != like->dims[R - 1 - a]) {
                    imp_unsupported(im, im->node, "the constant '%.100s' has a shape that does not broadcast", c->onnx);
                    return NULL;
                }
        }
        return v < 0 ? arena_printf(im->a, "(%s)", imp_float(im, v)) : imp_float(im, v);
    }
    int64_t e[OX_MAX_RANK];
    for (int a = 0; a < R; a++) e[a] = a < R - r ? 1 : k->dims[a - (R - r)];
    for (int a = 0; a < R; a++)
        if (e[a] != 1 && like->dims[a] != 1 && like->dims[a] != OX_BATCH && e[a] != like->dims[a]) {
            imp_unsupported(im, im->node, "the constant '%.100s' does not broadcast against the data (axis %d: %lld and %lld)",
                            c->onnx, a, (long long)e[a], (long long)like->dims[a]);
            return NULL;
        }
    int b = batch_axis_(like);
    if (b < 0 || e[b] != 1) {
        imp_unsupported(im, im->node, "the constant '%.100s' spans the batch axis", c->onnx);
        return NULL;
    }
    /* the constant in .nn order: .nn axis like->axis[a] holds ONNX axis a; .nn axis 0 (the batch) dropped */
    int64_t nd[OX_MAX_RANK], src_stride[OX_MAX_RANK], st = 1;
    int src_of[OX_MAX_RANK];
    for (int a = R - 1; a >= 0; a--) {
        src_stride[a] = e[a] == 1 ? 0 : st;
        st *= e[a];
    }
    for (int a = 0; a < R; a++) {
        nd[like->axis[a]] = e[a];
        src_of[like->axis[a]] = a;
    }
    bool identity = true;
    for (int a = 0; a < R; a++) identity &= like->axis[a] == a;
    if (identity && c->param && r == R - 1 + (e[0] == 1 && r == R)) return c->param;
    int first = 1;
    while (first < R - 1 && nd[first] == 1) first++; /* leading 1s broadcast anyway */
    int rank = R - first;
    int64_t n = 1;
    for (int a = first; a < R; a++) n *= nd[a];
    float *data = malloc(sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, off = 0;
        for (int a = R - 1; a >= first; a--) {
            int64_t idx = rem % nd[a];
            rem /= nd[a];
            off += idx * src_stride[src_of[a]];
        }
        data[i] = (float)ox_get(k, off);
    }
    const char *p = imp_param(im, c->onnx, data, nd + first, rank);
    if (!c->initializer) imp_line(im, "freeze %s", p);
    free(data);
    if (identity && !c->param) c->param = p;
    return p;
}

/* ---- the walk --------------------------------------------------------------------------------------------- */
static const OpRow *const families_[] = {onnx_ops_elementwise, onnx_ops_layers, onnx_ops_shape, onnx_ops_reduce};

static const OpRow *op_find_(const char *op_type)
{
    for (size_t f = 0; f < sizeof families_ / sizeof families_[0]; f++)
        for (const OpRow *r = families_[f]; r->op_type; r++)
            if (str_eq(r->op_type, op_type)) return r;
    return NULL;
}

static bool default_domain_(const Node *n) { return !n->domain || !*n->domain || str_eq(n->domain, "ai.onnx"); }

static const struct {
    const char *op, *act;
} activations_[] = {{"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"}, {"Softplus", "softplus"}, {"Gelu", "gelu"}, {"Elu", "elu"}};

void imp_absorb(Imp *im, const Node *n)
{
    im->absorbed = realloc(im->absorbed, sizeof *im->absorbed * (size_t)(im->nabsorbed + 1));
    im->absorbed[im->nabsorbed++] = n;
}

const char *imp_take_activation(Imp *im, Val *out, Val **act_out)
{
    const Node *c = out->uses == 1 ? out->consumer : NULL;
    if (!c || c->n_input < 1 || !str_eq(c->input[0], out->onnx) || c->n_output < 1 || !*c->output[0]) return NULL;
    if (str_eq(c->op_type, "Gelu") && !str_eq(attr_string(im, c, "approximate", "none"), "none")) return NULL;
    if (str_eq(c->op_type, "Elu") && attr_float(c, "alpha", 1.0f) != 1.0f) return NULL;
    for (size_t k = 0; k < sizeof activations_ / sizeof activations_[0]; k++)
        if (str_eq(c->op_type, activations_[k].op)) {
            imp_absorb(im, c);
            *act_out = imp_val(im, c->output[0]);
            return activations_[k].act;
        }
    return NULL;
}

static bool absorbed_(const Imp *im, const Node *n)
{
    for (int k = 0; k < im->nabsorbed; k++)
        if (im->absorbed[k] == n) return true;
    return false;
}

/* The node's data outputs fit .nn's tensors (at most 2^31 - 1 values per sample). Checked here for every
 * handler: extents come from the file (pads, repeats, target shapes), and text that does not check is a bug. */
static bool outputs_fit_(const Imp *im, const Node *n)
{
    for (size_t k = 0; k < n->n_output; k++) {
        const Val *o = val_find_(im, n->output[k]);
        if (!o || o->kind != VAL_DATA) continue;
        int64_t per_sample = 1;
        for (int a = 0; a < o->rank; a++) {
            int64_t d = o->dims[a] == OX_BATCH ? 1 : o->dims[a];
            if (d < 0 || (d > 0 && per_sample > INT32_MAX / d)) return false;
            per_sample *= d;
        }
    }
    return true;
}

static void import_node_(Imp *im, const Node *n)
{
    im->node = n;
    if (absorbed_(im, n)) return; /* a layer's activation= computed it */
    /* before opset 7 an operator broadcast only when told, and along any `axis`: the first kind is NumPy's
     * (trailing axes), the second is not */
    if (im->opset < 7 && attr_int(n, "broadcast", 0) && attr_find(n, "axis") && !str_eq(n->op_type, "Gemm")) {
        imp_unsupported(im, n, "legacy broadcasting along axis %lld (before opset 7)", (long long)attr_int(n, "axis", 0));
        return;
    }
    bool all_const = true;
    const Val *unset = NULL;
    for (size_t k = 0; k < n->n_input; k++) {
        Val *v = imp_input(im, n, (int)k);
        if (!v) continue;
        if (v->kind == VAL_UNSET && !unset) unset = v;
        all_const &= v->kind == VAL_CONST;
    }
    if (unset) { /* downstream of a node already reported; else its producer left it unset (an extra output) */
        if (!im->unsupported) imp_unsupported(im, n, "its input '%.100s' is an output nnc does not compute", unset->onnx);
        return;
    }
    if (!default_domain_(n)) {
        imp_unsupported(im, n, "nnc imports only operators of the default ONNX domain");
        return;
    }
    const OpRow *row = op_find_(n->op_type);
    if (all_const && n->n_input > 0) {
        bool handled = false;
        if (onnx_fold_node(im, n, &handled) || handled) return;
    }
    if (!row) {
        imp_unsupported(im, n, "nnc has no import for this operator");
        return;
    }
    if (im->opset < row->min_opset) {
        imp_unsupported(im, n, "nnc imports %s from opset %d", n->op_type, row->min_opset);
        return;
    }
    for (size_t k = 0; k < n->n_input && !row->takes_flat; k++) {
        Val *v = imp_input(im, n, (int)k);
        if (v && v->kind == VAL_DATA) imp_materialize(im, v);
    }
    size_t mark = im->out.len;
    bool ok = n->n_output > 0 ? row->run(im, n) : imp_unsupported(im, n, "the node has no outputs");
    if (ok && !outputs_fit_(im, n))
        ok = imp_unsupported(im, n, "its result would hold more than 2^31 - 1 values per sample (.nn's limit)");
    if (!ok) {
        im->out.len = mark; /* what the handler wrote before refusing */
        if (im->out.s) im->out.s[mark] = 0;
        for (size_t k = 0; k < n->n_output; k++) {
            Val *o = imp_output(im, n, (int)k);
            if (o) o->kind = VAL_UNSET;
        }
    }
}

/* ---- graph inputs ----------------------------------------------------------------------------------------- */
/* true for an input IR < 4 lists because it is an initializer (their Vals are loaded before the inputs) */
static bool is_initializer_(const Imp *im, const char *name)
{
    const Val *v = val_find_(im, name);
    return v && v->initializer;
}

static bool declare_input_(Imp *im, const Onnx__ValueInfoProto *vi, OnnxImport *out)
{
    const Onnx__TypeProto *tp = vi->type;
    const Onnx__TypeProto__Tensor *tt = tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? tp->tensor_type : NULL;
    if (!tt || !tt->shape) {
        onnx_error("%s: graph input '%.200s' is not a tensor of known rank", im->path, vi->name);
        return false;
    }
    int rank = (int)tt->shape->n_dim;
    if (rank < 1 || rank > OX_MAX_RANK - 1) {
        onnx_error("%s: graph input '%.200s' has rank %d: nnc needs a first (batch) axis and at most %d axes", im->path,
                   vi->name, rank, OX_MAX_RANK - 1);
        return false;
    }
    int64_t dims[OX_MAX_RANK];
    for (int k = 0; k < rank; k++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[k];
        bool fixed = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value > 0;
        if (k == 0) {
            if (fixed) {
                if (d->dim_value > (1 << 20) || (im->batch && im->batch != d->dim_value)) {
                    onnx_error("%s: graph input '%.200s' has first axis %lld, the others %d: nnc needs one batch axis "
                               "common to every input", im->path, vi->name, (long long)d->dim_value, im->batch);
                    return false;
                }
                im->batch = (int)d->dim_value;
            }
            dims[0] = OX_BATCH;
        } else if (!fixed || d->dim_value > (1 << 30)) {
            onnx_error("%s: graph input '%.200s': axis %d has no fixed extent; nnc needs fixed extents beyond the "
                       "first (batch) axis", im->path, vi->name, k);
            return false;
        } else
            dims[k] = d->dim_value;
    }
    int64_t per_sample = 1; /* .nn's limit; it also keeps every handler's products of extents from overflowing */
    for (int k = 1; k < rank && per_sample <= INT32_MAX; k++) per_sample *= dims[k];
    if (per_sample > INT32_MAX) {
        onnx_error("%s: graph input '%.200s' has more than 2^31 - 1 values per sample", im->path, vi->name);
        return false;
    }
    int et = tt->has_elem_type ? tt->elem_type : OX_FLOAT;
    bool is_int = et == OX_INT32 || et == OX_INT64;
    if (!ox_is_float(et) && !is_int) {
        onnx_error("%s: graph input '%.200s' has element type %d; nnc reads float and integer inputs", im->path, vi->name, et);
        return false;
    }
    const char *nn = imp_fresh_name(im, vi->name);
    imp_line(im, "input %s: %s%s", nn, is_int ? "i32" : "f32", imp_int_list(im, dims + 1, rank - 1));
    Val *v = imp_val(im, vi->name);
    int axis[OX_MAX_RANK];
    axis_identity(axis, rank);
    imp_set_data(v, nn, rank, dims, axis);
    v->is_int = is_int;
    out->input_onnx[out->ninputs] = strdup(vi->name);
    out->input_nn[out->ninputs++] = strdup(nn);
    return true;
}

static void count_uses_(Imp *im)
{
    for (size_t k = 0; k < im->graph->n_node; k++) {
        const Node *n = im->graph->node[k];
        for (size_t j = 0; j < n->n_input; j++) {
            Val *v = imp_val(im, n->input[j]);
            if (v) v->consumer = v->uses++ ? NULL : n;
        }
    }
    for (size_t k = 0; k < im->graph->n_output; k++) {
        Val *v = imp_val(im, im->graph->output[k]->name);
        if (v) {
            v->uses++;
            v->consumer = NULL;
        }
    }
}

static bool load_initializers_(Imp *im)
{
    bool ok = true;
    for (size_t k = 0; k < im->graph->n_initializer; k++) {
        const Onnx__TensorProto *t = im->graph->initializer[k];
        Val *v = imp_val(im, t->name);
        char err[512];
        if (!oxc_from_tensor(im, t, &v->c, err, sizeof err)) {
            onnx_error("%s: initializer '%.200s' %s", im->path, t->name, err);
            ok = false;
            continue;
        }
        v->kind = VAL_CONST;
        v->initializer = true;
    }
    return ok;
}

/* the graph outputs' .nn names, taken before any value is named, so that each keeps its ONNX name */
static void reserve_outputs_(Imp *im)
{
    int n = (int)im->graph->n_output;
    im->output_onnx = arena_alloc(im->a, sizeof(char *) * (size_t)(n + 1));
    im->output_nn = arena_alloc(im->a, sizeof(char *) * (size_t)(n + 1));
    im->output_bound = arena_alloc(im->a, (size_t)n + 1);
    for (int k = 0; k < n; k++) {
        im->output_onnx[k] = im->graph->output[k]->name;
        /* an output may keep a builtin's name ("softmax"): it is bound by the output statement at the end, after
         * every call, and its value is computed under another name */
        im->output_nn[k] = unique_named_(im, identifier_(im, im->graph->output[k]->name, 120), true);
        im->output_bound[k] = builtin_find(im->output_nn[k]) != NULL;
        Val *v = imp_val(im, im->output_onnx[k]);
        if (!v->output) v->output = k + 1;
    }
    im->noutputs = n;
}

static bool write_outputs_(Imp *im, OnnxImport *out)
{
    bool ok = true;
    for (int k = 0; k < im->noutputs; k++) {
        const char *name = im->output_onnx[k], *nn = im->output_nn[k];
        Val *v = imp_val(im, name);
        if (v->kind == VAL_UNSET) {
            if (!im->unsupported) /* else its producer was reported */
                onnx_error("%s: graph output '%.200s' is an output nnc does not compute", im->path, name);
            ok = false;
            continue;
        }
        const char *src = v->kind == VAL_DATA ? imp_data_onnx_order(im, v) : NULL;
        if (!src) {
            onnx_error("%s: graph output '%.200s' %s", im->path, name,
                       v->kind == VAL_CONST ? "is a constant: it does not depend on any input"
                                            : "does not have the batch as its first axis");
            ok = false;
            continue;
        }
        if (str_eq(src, nn))
            imp_line(im, "output %s", nn);
        else
            imp_line(im, "output %s = %s", nn, src);
        out->output_onnx[out->noutputs] = strdup(name);
        out->output_nn[out->noutputs++] = strdup(nn);
    }
    return ok;
}

/* the model's name from the file's, as the checker takes it (not a name of C or of the generated code):
 * "mlp.onnx" -> mlp, "int.onnx" -> int_, "c10.onnx" -> m_c10_ */
static const char *file_stem_(Imp *im, const char *path)
{
    const char *s = strrchr(path, '/');
    s = s ? s + 1 : path;
    size_t n = strlen(s);
    if (onnx_is_model_path(s)) n -= 5;
    const char *id = identifier_(im, arena_strndup(im->a, s, n), 80);
    if (check_model_name_reserved(id)) id = arena_printf(im->a, "%s_", id);
    if (check_model_name_reserved(id)) id = arena_printf(im->a, "m_%s", id);
    return id;
}

static bool translate_(Imp *im, const char *model_name, OnnxImport *out)
{
    Onnx__GraphProto *g = im->graph;
    sb_puts(&im->out, "# imported by nnc from ");
    comment_text_(&im->out, im->path, 300);
    sb_printf(&im->out, " (opset %d", im->opset);
    if (im->model->producer_name && *im->model->producer_name) {
        sb_puts(&im->out, ", made by ");
        comment_text_(&im->out, im->model->producer_name, 60);
        if (im->model->producer_version && *im->model->producer_version) {
            sb_putc(&im->out, ' ');
            comment_text_(&im->out, im->model->producer_version, 40);
        }
    }
    sb_puts(&im->out, ")\n");
    const char *mname = model_name ? model_name : file_stem_(im, im->path);
    sb_printf(&im->out, "model %s {\n", mname);
    if (!load_initializers_(im)) return false;
    count_uses_(im);
    out->input_onnx = calloc(g->n_input + 1, sizeof(char *));
    out->input_nn = calloc(g->n_input + 1, sizeof(char *));
    out->output_onnx = calloc(g->n_output + 1, sizeof(char *));
    out->output_nn = calloc(g->n_output + 1, sizeof(char *));
    bool ok = true;
    int ndata = 0;

    for (size_t k = 0; k < g->n_input; k++) {
        if (is_initializer_(im, g->input[k]->name)) continue;
        ok &= declare_input_(im, g->input[k], out);
        ndata++;
    }
    if (!ok) return false;
    reserve_outputs_(im);
    if (!ndata) {
        onnx_error("%s: the graph has no inputs (beyond its initializers)", im->path);
        return false;
    }
    sb_putc(&im->out, '\n');
    for (size_t k = 0; k < g->n_node && !diag_too_many(); k++) {
        im->node_index = (int)k;
        import_node_(im, g->node[k]);
    }
    if (im->unsupported) return false;
    sb_putc(&im->out, '\n');
    if (!write_outputs_(im, out)) return false;
    if (im->batch) imp_line(im, "train(batch=%d)   # the batch size the model was exported with", im->batch);
    sb_puts(&im->out, "}\n");
    return true;
}

bool onnx_import(const char *path, const char *model_name, OnnxImport *out)
{
    memset(out, 0, sizeof *out);
    char err[1024];
    Onnx__ModelProto *m = onnx_read_model(path, err, sizeof err);
    if (!m) {
        onnx_error("%s", err);
        return false;
    }
    Arena arena = {0};
    Imp im = {.a = &arena, .path = path, .model = m, .graph = m->graph};
    im.opset = onnx_model_opset(m, "");
    bool ok = true;
    if (im.opset < 1 || im.opset > 21) {
        onnx_error("%s: the model uses opset %d of the default domain; nnc imports opsets up to 21", path, im.opset);
        ok = false;
    }
    ok = ok && onnx_check_graph(path, m->graph, im.opset);
    ok = ok && translate_(&im, model_name, out);
    if (ok) {
        out->nn_len = im.out.len;
        out->nn_text = sb_take(&im.out);
        out->batch = im.batch;
        out->weights.count = im.nweights;
        out->weights.tensors = im.weights;
        im.weights = NULL;
    }
    for (int k = 0; im.weights && k < im.nweights; k++) {
        free(im.weights[k].name);
        free(im.weights[k].data);
    }
    free(im.weights);
    free(im.absorbed);
    sb_free(&im.out);
    arena_free(&arena);
    onnx__model_proto__free_unpacked(m, NULL);
    if (!ok) onnx_import_free(out);
    return ok;
}
