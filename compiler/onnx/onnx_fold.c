/* onnx_fold.c: nodes whose inputs are all constant are evaluated at import. This is how the shape arithmetic
 * exporters write around the batch axis (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) disappears: Shape
 * of a data value gives its extents with the batch size as a symbol (OX_BATCH), which Gather, Slice, Concat,
 * Unsqueeze, Squeeze, Cast and Identity carry along; arithmetic on the symbol is refused. Anything folded is
 * bounded (OX_MAX_FOLD elements), since a constant's shape comes from the untrusted file. */
#include "onnx_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* one folded constant, and all of them in one import (each node folds whether or not it is used: without the
 * total, a few ConstantOfShape nodes in a 500-byte file took gigabytes) */
enum { OX_MAX_FOLD = 1 << 24, OX_MAX_FOLD_TOTAL = 1 << 25 };

static bool refuse_(Imp *im, const Node *n, bool *handled, const char *why)
{
    *handled = true;
    return imp_unsupported(im, n, "%s", why);
}

static bool isb_(const OxConst *c, int64_t k) { return c->batch && c->batch[k]; }
/* a double as int64: NaN as 0, values beyond the range clamped (a C cast of those is undefined) */
static int64_t to_int_(double v) { return v != v ? 0 : v >= 0x1p63 ? INT64_MAX : v < -0x1p63 ? INT64_MIN : (int64_t)v; }

static int64_t geti_(const OxConst *c, int64_t k) { return c->f ? to_int_(c->f[k]) : c->i[k]; }

static bool has_batch_(const OxConst *c)
{
    for (int64_t k = 0; c->batch && k < c->count; k++)
        if (c->batch[k]) return true;
    return false;
}

/* a new constant of `dtype` and shape for the node's k-th output; NULL (refused) when too large */
static OxConst *out_(Imp *im, const Node *n, int k, int dtype, int rank, const int64_t *dims, bool *handled)
{
    Val *o = imp_output(im, n, k);
    int64_t count = ox_count(dims, rank);
    if (!o || count < -1 || count > OX_MAX_FOLD || rank > OX_MAX_RANK || ox_span(dims, rank) > OX_MAX_FOLD) {
        refuse_(im, n, handled, "its folded result would be too large");
        return NULL;
    }
    if (count > OX_MAX_FOLD_TOTAL - im->folded) {
        refuse_(im, n, handled, "the constants folded at import would hold more than 2^25 elements in all");
        return NULL;
    }
    if (count > 0) im->folded += count;
    oxc_make(im, &o->c, dtype, rank, dims);
    o->kind = VAL_CONST;
    return &o->c;
}

static void seti_(Imp *im, OxConst *c, int64_t k, int64_t v, bool batch)
{
    if (c->f)
        c->f[k] = (float)v;
    else
        c->i[k] = v;
    if (batch) {
        if (!c->batch) c->batch = arena_alloc(im->a, (size_t)c->count + 1);
        c->batch[k] = true;
    }
}

static void copy_elem_(Imp *im, OxConst *dst, int64_t dk, const OxConst *src, int64_t sk)
{
    if (dst->f)
        dst->f[dk] = src->f ? src->f[sk] : (float)src->i[sk];
    else
        seti_(im, dst, dk, geti_(src, sk), isb_(src, sk));
}

/* -1 for an axis outside [-rank, rank] (rank itself is Flatten's last axis), decided before the narrowing to
 * int: INT64_MIN + rank would truncate to a valid axis */
static int norm_axis_(int64_t axis, int rank) { return axis < -rank || axis > rank ? -1 : (int)(axis < 0 ? axis + rank : axis); }

/* ---- shape ops on constants ---- */
static bool fold_shape_(Imp *im, const Node *n, const OxConst *x, bool *handled)
{
    int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", x->rank);
    start = start < 0 ? start + x->rank : start;
    end = end < 0 ? end + x->rank : end;
    start = start < 0 ? 0 : start > x->rank ? x->rank : start;
    end = end < start ? start : end > x->rank ? x->rank : end;
    int64_t d = end - start;
    OxConst *o = out_(im, n, 0, OX_INT64, 1, &d, handled);
    if (!o) return false;
    for (int64_t k = 0; k < d; k++) seti_(im, o, k, x->dims[start + k] == OX_BATCH ? 0 : x->dims[start + k], x->dims[start + k] == OX_BATCH);
    return true;
}

static bool fold_gather_(Imp *im, const Node *n, const OxConst *x, const OxConst *idx, bool *handled)
{
    int axis = norm_axis_(attr_int(n, "axis", 0), x->rank);
    if (axis < 0 || axis >= x->rank || x->count < 0 || idx->count < 0 || ox_is_float(idx->dtype))
        return refuse_(im, n, handled, "Gather of constants with a bad axis or indices");
    int64_t dims[OX_MAX_RANK];
    int rank = 0;
    for (int k = 0; k < axis; k++) dims[rank++] = x->dims[k];
    for (int k = 0; k < idx->rank; k++) dims[rank++] = idx->dims[k];
    for (int k = axis + 1; k < x->rank; k++) dims[rank++] = x->dims[k];
    if (rank > OX_MAX_RANK) return refuse_(im, n, handled, "its result has too many axes");
    OxConst *o = out_(im, n, 0, x->dtype, rank, dims, handled);
    if (!o) return false;
    int64_t outer = 1, inner = 1, ax = x->dims[axis];
    for (int k = 0; k < axis; k++) outer *= x->dims[k];
    for (int k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
    int64_t w = 0;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t j = 0; j < idx->count; j++) {
            int64_t i = idx->i[j] < 0 ? idx->i[j] + ax : idx->i[j];
            if (i < 0 || i >= ax) return refuse_(im, n, handled, "a Gather index is out of range");
            for (int64_t b = 0; b < inner; b++) copy_elem_(im, o, w++, x, (a * ax + i) * inner + b);
        }
    return true;
}

static bool fold_concat_(Imp *im, const Node *n, bool *handled)
{
    const OxConst *first = &imp_input(im, n, 0)->c;
    int rank = first->rank, axis = norm_axis_(attr_int(n, "axis", 0), rank);
    if (axis < 0 || axis >= rank) return refuse_(im, n, handled, "Concat axis out of range");
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, first->dims, sizeof dims);
    dims[axis] = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        const Val *v = imp_input(im, n, (int)k);
        if (!v || v->c.rank != rank || v->c.count < 0) return refuse_(im, n, handled, "Concat of constants of different ranks");
        for (int a = 0; a < rank; a++)
            if (a != axis && v->c.dims[a] != dims[a]) return refuse_(im, n, handled, "Concat of constants of different shapes");
        dims[axis] += v->c.dims[axis];
    }
    OxConst *o = out_(im, n, 0, first->dtype, rank, dims, handled);
    if (!o) return false;
    int64_t outer = 1, inner = 1;
    for (int a = 0; a < axis; a++) outer *= dims[a];
    for (int a = axis + 1; a < rank; a++) inner *= dims[a];
    int64_t w = 0;
    for (int64_t i = 0; i < outer; i++)
        for (size_t k = 0; k < n->n_input; k++) {
            const OxConst *c = &imp_input(im, n, (int)k)->c;
            int64_t span = c->dims[axis] * inner;
            for (int64_t j = 0; j < span; j++) copy_elem_(im, o, w++, c, i * span + j);
        }
    return true;
}

/* the same elements under another shape (Reshape, Flatten, Squeeze, Unsqueeze, Identity) */
static bool fold_relabel_(Imp *im, const Node *n, const OxConst *x, int rank, const int64_t *dims, bool *handled)
{
    if (x->count < 0) {
        Val *o = imp_output(im, n, 0);
        o->kind = VAL_CONST;
        o->c = *x;
        o->c.rank = rank;
        memcpy(o->c.dims, dims, sizeof(int64_t) * (size_t)rank);
        return true;
    }
    if (ox_count(dims, rank) != x->count) return refuse_(im, n, handled, "the new shape does not hold the same number of elements");
    OxConst *o = out_(im, n, 0, x->dtype, rank, dims, handled);
    if (!o) return false;
    for (int64_t k = 0; k < x->count; k++) copy_elem_(im, o, k, x, k);
    return true;
}

bool onnx_axes_arg(Imp *im, const Node *n, int64_t *axes, int *count)
{
    const int64_t *a = attr_ints(n, "axes", count);
    if (a) {
        if (*count > OX_MAX_RANK) return false;
        memcpy(axes, a, sizeof *a * (size_t)*count);
        return true;
    }
    Val *v = imp_input(im, n, 1);
    if (!v) {
        *count = 0;
        return true;
    }
    return v->kind == VAL_CONST && oxc_ints(&v->c, axes, OX_MAX_RANK, count);
}

bool onnx_unsqueeze_dims(const int64_t *in, int rank, const int64_t *axes, int naxes, int64_t *out, int *orank)
{
    int r = rank + naxes;
    if (r > OX_MAX_RANK) return false;
    bool ins[OX_MAX_RANK] = {0};
    for (int k = 0; k < naxes; k++) {
        int a = norm_axis_(axes[k], r);
        if (a < 0 || a >= r || ins[a]) return false;
        ins[a] = true;
    }
    for (int k = 0, j = 0; k < r; k++) out[k] = ins[k] ? 1 : in[j++];
    *orank = r;
    return true;
}

bool onnx_squeeze_dims(const int64_t *in, int rank, const int64_t *axes, int naxes, int64_t *out, int *orank)
{
    bool drop[OX_MAX_RANK] = {0};
    for (int k = 0; k < naxes; k++) {
        int a = norm_axis_(axes[k], rank);
        if (a < 0 || a >= rank || in[a] != 1) return false;
        drop[a] = true;
    }
    *orank = 0;
    for (int k = 0; k < rank; k++)
        if (naxes ? !drop[k] : in[k] != 1) out[(*orank)++] = in[k];
    return true;
}

/* Reshape's target: 0 copies the input's extent (unless allowzero), one -1 takes what is left */
bool onnx_reshape_dims(const int64_t *in, int rank, const int64_t *shape, int n, bool allowzero, int64_t *out)
{
    int64_t known = 1, total = ox_count(in, rank);
    int infer = -1;
    for (int k = 0; k < n; k++) {
        int64_t d = shape[k];
        if (d == 0 && !allowzero) {
            if (k >= rank) return false;
            d = in[k];
        }
        if (d == -1) {
            if (infer >= 0) return false;
            infer = k;
            out[k] = -1;
            continue;
        }
        if (d < 0 && d != OX_BATCH) return false;
        out[k] = d;
        if (d != OX_BATCH && d > INT64_MAX / known) return false;
        if (d != OX_BATCH) known *= d ? d : 1;
    }
    if (infer >= 0) {
        if (total < 0 || known == 0 || total % known) return false;
        out[infer] = total / known;
    }
    return true;
}

static bool fold_slice_(Imp *im, const Node *n, const OxConst *x, bool *handled)
{
    int64_t starts[OX_MAX_RANK], ends[OX_MAX_RANK], axes[OX_MAX_RANK], steps[OX_MAX_RANK];
    int ns = 0, ne = 0, na = 0, nst = 0;
    if (im->opset < 10) {
        const int64_t *s = attr_ints(n, "starts", &ns), *e = attr_ints(n, "ends", &ne), *a = attr_ints(n, "axes", &na);
        if (!s || !e || ns != ne || ns > OX_MAX_RANK || na > OX_MAX_RANK) return refuse_(im, n, handled, "bad Slice attributes");
        memcpy(starts, s, sizeof *s * (size_t)ns);
        memcpy(ends, e, sizeof *e * (size_t)ne);
        if (a) memcpy(axes, a, sizeof *a * (size_t)na);
    } else {
        Val *s = imp_input(im, n, 1), *e = imp_input(im, n, 2), *a = imp_input(im, n, 3), *st = imp_input(im, n, 4);
        if (!s || !e || !oxc_ints(&s->c, starts, OX_MAX_RANK, &ns) || !oxc_ints(&e->c, ends, OX_MAX_RANK, &ne) || ns != ne ||
            (a && !oxc_ints(&a->c, axes, OX_MAX_RANK, &na)) || (st && !oxc_ints(&st->c, steps, OX_MAX_RANK, &nst)))
            return refuse_(im, n, handled, "bad Slice inputs");
    }
    if (!na) {
        na = ns;
        for (int k = 0; k < na; k++) axes[k] = k;
    }
    if (na != ns || (nst && nst != ns)) return refuse_(im, n, handled, "bad Slice inputs");
    int64_t lo[OX_MAX_RANK], step[OX_MAX_RANK], dims[OX_MAX_RANK];
    for (int a = 0; a < x->rank; a++) {
        lo[a] = 0;
        step[a] = 1;
        dims[a] = x->dims[a];
    }
    for (int k = 0; k < ns; k++) {
        int a = norm_axis_(axes[k], x->rank);
        if (a < 0 || a >= x->rank || (nst && steps[k] == 0)) return refuse_(im, n, handled, "bad Slice axes or steps");
        int64_t d = x->dims[a], s = nst ? steps[k] : 1, b = starts[k], e = ends[k];
        if (d == OX_BATCH) return refuse_(im, n, handled, "Slice of a constant along the batch axis");
        if (s > d || s < -d) s = (s > 0 ? 1 : -1) * (d > 0 ? d : 1); /* the same slice; no overflow below */
        b = b < 0 ? b + d : b;
        e = e < 0 ? e + d : e;
        if (s > 0) {
            b = b < 0 ? 0 : b > d ? d : b;
            e = e < 0 ? 0 : e > d ? d : e;
            dims[a] = e > b ? (e - b + s - 1) / s : 0;
        } else {
            b = b < 0 ? -1 : b > d - 1 ? d - 1 : b;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            dims[a] = b > e ? (b - e + (-s) - 1) / (-s) : 0;
        }
        lo[a] = b;
        step[a] = s;
    }
    if (x->count < 0) return fold_relabel_(im, n, x, x->rank, dims, handled); /* one value everywhere (fill) */
    OxConst *o = out_(im, n, 0, x->dtype, x->rank, dims, handled);
    if (!o) return false;
    for (int64_t k = 0; k < o->count; k++) {
        int64_t rem = k, src = 0, stride = 1;
        for (int a = x->rank - 1; a >= 0; a--) {
            int64_t i = rem % dims[a];
            rem /= dims[a];
            src += (lo[a] + i * step[a]) * stride;
            stride *= x->dims[a];
        }
        copy_elem_(im, o, k, x, src);
    }
    return true;
}

static bool fold_transpose_(Imp *im, const Node *n, const OxConst *x, bool *handled)
{
    int np = 0;
    const int64_t *p = attr_ints(n, "perm", &np);
    int64_t perm[OX_MAX_RANK], dims[OX_MAX_RANK];
    for (int k = 0; k < x->rank; k++) perm[k] = p ? (k < np ? p[k] : -1) : x->rank - 1 - k;
    if ((p && np != x->rank) || x->count < 0) return refuse_(im, n, handled, "bad Transpose perm");
    for (int k = 0; k < x->rank; k++) {
        if (perm[k] < 0 || perm[k] >= x->rank) return refuse_(im, n, handled, "bad Transpose perm");
        dims[k] = x->dims[perm[k]];
    }
    OxConst *o = out_(im, n, 0, x->dtype, x->rank, dims, handled);
    if (!o) return false;
    int64_t stride[OX_MAX_RANK], s = 1;
    for (int a = x->rank - 1; a >= 0; a--) {
        stride[a] = s;
        s *= x->dims[a];
    }
    for (int64_t k = 0; k < o->count; k++) {
        int64_t rem = k, src = 0;
        for (int a = x->rank - 1; a >= 0; a--) {
            src += (rem % dims[a]) * stride[perm[a]];
            rem /= dims[a];
        }
        copy_elem_(im, o, k, x, src);
    }
    return true;
}

static bool fold_constant_of_shape_(Imp *im, const Node *n, const OxConst *shape, bool *handled)
{
    int64_t dims[OX_MAX_RANK];
    int rank = 0;
    if (!oxc_ints(shape, dims, OX_MAX_RANK, &rank)) return refuse_(im, n, handled, "ConstantOfShape needs a 1-D shape");
    const Onnx__AttributeProto *va = attr_find(n, "value");
    OxConst val = {.dtype = OX_FLOAT, .count = 1};
    float zero = 0;
    val.f = &zero;
    char err[256];
    if (va && va->t && !oxc_from_tensor(im, va->t, &val, err, sizeof err)) return refuse_(im, n, handled, "its value is unreadable");
    if (val.count != 1) return refuse_(im, n, handled, "its value must hold one element");
    OxConst *o = out_(im, n, 0, val.dtype, rank, dims, handled);
    if (!o) return false;
    if (o->count < 0)
        o->fill = ox_get(&val, 0);
    else
        for (int64_t k = 0; k < o->count; k++) copy_elem_(im, o, k, &val, 0);
    return true;
}

static bool fold_range_(Imp *im, const Node *n, bool *handled)
{
    const OxConst *s = &imp_input(im, n, 0)->c, *l = &imp_input(im, n, 1)->c, *d = &imp_input(im, n, 2)->c;
    if (s->count != 1 || l->count != 1 || d->count != 1 || has_batch_(s) || has_batch_(l) || has_batch_(d))
        return refuse_(im, n, handled, "Range needs scalar constants");
    double a = ox_get(s, 0), b = ox_get(l, 0), step = ox_get(d, 0);
    double cnt = step != 0 ? ceil((b - a) / step) : -1;
    if (!(cnt >= -1e18) || step == 0 || cnt > OX_MAX_FOLD) return refuse_(im, n, handled, "Range with a zero step or too many elements");
    int64_t len = cnt < 0 ? 0 : (int64_t)cnt;
    OxConst *o = out_(im, n, 0, s->dtype, 1, &len, handled);
    if (!o) return false;
    for (int64_t k = 0; k < len; k++) {
        if (o->f)
            o->f[k] = (float)(a + (double)k * step);
        else
            o->i[k] = to_int_(a + (double)k * step);
    }
    return true;
}

/* ---- elementwise math on constants (NumPy broadcasting) ---- */
static double unary_(const char *op, double x, bool *ok)
{
    if (str_eq(op, "Neg")) return -x;
    if (str_eq(op, "Abs")) return fabs(x);
    if (str_eq(op, "Sqrt")) return sqrt(x);
    if (str_eq(op, "Exp")) return exp(x);
    if (str_eq(op, "Log")) return log(x);
    if (str_eq(op, "Relu")) return x > 0 ? x : 0;
    if (str_eq(op, "Floor")) return floor(x);
    if (str_eq(op, "Ceil")) return ceil(x);
    if (str_eq(op, "Round")) return nearbyint(x);
    if (str_eq(op, "Sigmoid")) return 1 / (1 + exp(-x));
    if (str_eq(op, "Tanh")) return tanh(x);
    if (str_eq(op, "Reciprocal")) return 1 / x;
    if (str_eq(op, "Not")) return !x;
    if (str_eq(op, "Erf")) return erf(x);
    if (str_eq(op, "Sign")) return (x > 0) - (x < 0);
    *ok = false;
    return 0;
}

static double binary_(const char *op, double a, double b, bool is_int, bool *ok)
{
    if (str_eq(op, "Add")) return a + b;
    if (str_eq(op, "Sub")) return a - b;
    if (str_eq(op, "Mul")) return a * b;
    if (str_eq(op, "Div")) {
        if (!is_int) return a / b;
        if (b == 0) {
            *ok = false;
            return 0;
        }
        return trunc(a / b);
    }
    if (str_eq(op, "Pow")) return pow(a, b);
    if (str_eq(op, "Max")) return a > b ? a : b;
    if (str_eq(op, "Min")) return a < b ? a : b;
    if (str_eq(op, "Equal")) return a == b;
    if (str_eq(op, "Less")) return a < b;
    if (str_eq(op, "Greater")) return a > b;
    if (str_eq(op, "LessOrEqual")) return a <= b;
    if (str_eq(op, "GreaterOrEqual")) return a >= b;
    if (str_eq(op, "And")) return a && b;
    if (str_eq(op, "Or")) return a || b;
    if (str_eq(op, "Mod")) /* INT64_MIN % -1 traps: any x % -1 is 0 */
        return is_int && b != 0 ? (b == -1 ? 0 : (double)(to_int_(a) % to_int_(b))) : fmod(a, b);
    *ok = false;
    return 0;
}

static bool is_compare_(const char *op)
{
    return str_eq(op, "Equal") || str_eq(op, "Less") || str_eq(op, "Greater") || str_eq(op, "LessOrEqual") ||
           str_eq(op, "GreaterOrEqual") || str_eq(op, "And") || str_eq(op, "Or") || str_eq(op, "Not");
}

static bool broadcast_dims_(const OxConst *const *in, int nin, int64_t *dims, int *rank)
{
    *rank = 0;
    for (int k = 0; k < nin; k++) *rank = in[k]->rank > *rank ? in[k]->rank : *rank;
    for (int a = 0; a < *rank; a++) {
        dims[a] = 1;
        for (int k = 0; k < nin; k++) {
            int off = *rank - in[k]->rank;
            int64_t d = a < off ? 1 : in[k]->dims[a - off];
            if (d == OX_BATCH) return false;
            if (d != 1 && dims[a] != 1 && d != dims[a]) return false;
            if (d != 1) dims[a] = d;
        }
    }
    return true;
}

static int64_t bsrc_(const OxConst *c, const int64_t *dims, int rank, int64_t k)
{
    int64_t rem = k, src = 0, stride = 1;
    int off = rank - c->rank;
    for (int a = rank - 1; a >= 0; a--) {
        int64_t i = rem % dims[a];
        rem /= dims[a];
        if (a >= off) {
            int64_t d = c->dims[a - off];
            src += (d == 1 ? 0 : i) * stride;
            stride *= d;
        }
    }
    return src;
}

static bool fold_math_(Imp *im, const Node *n, bool *handled)
{
    const char *op = n->op_type;
    const OxConst *in[8];
    int nin = (int)n->n_input;
    if (nin < 1 || nin > 8) return false;
    for (int k = 0; k < nin; k++) {
        Val *v = imp_input(im, n, k);
        if (!v || v->c.count < 0) return false;
        in[k] = &v->c;
        if (has_batch_(in[k])) return refuse_(im, n, handled, "it computes with the batch size, which nnc does not fold");
    }
    bool ok = true;
    bool where = str_eq(op, "Where");
    if (!where && nin == 1) (void)unary_(op, 0, &ok);
    if (!where && nin == 2) (void)binary_(op, 1, 1, false, &ok);
    if (!ok || (nin > 2 && !where && !str_eq(op, "Sum") && !str_eq(op, "Max") && !str_eq(op, "Min"))) return false;
    int64_t dims[OX_MAX_RANK];
    int rank;
    if (!broadcast_dims_(in, nin, dims, &rank)) return refuse_(im, n, handled, "its constant inputs do not broadcast");
    int dtype = is_compare_(op) ? OX_BOOL : where ? in[1]->dtype : in[0]->dtype;
    bool is_int = !ox_is_float(in[where ? 1 : 0]->dtype);
    OxConst *o = out_(im, n, 0, dtype, rank, dims, handled);
    if (!o) return false;
    const char *bop = str_eq(op, "Sum") ? "Add" : op;
    for (int64_t k = 0; k < o->count; k++) {
        double r;
        if (where)
            r = ox_get(in[0], bsrc_(in[0], dims, rank, k)) ? ox_get(in[1], bsrc_(in[1], dims, rank, k))
                                                          : ox_get(in[2], bsrc_(in[2], dims, rank, k));
        else if (nin == 1)
            r = unary_(op, ox_get(in[0], bsrc_(in[0], dims, rank, k)), &ok);
        else {
            r = ox_get(in[0], bsrc_(in[0], dims, rank, k));
            for (int j = 1; j < nin; j++) r = binary_(bop, r, ox_get(in[j], bsrc_(in[j], dims, rank, k)), is_int, &ok);
        }
        if (!ok) return refuse_(im, n, handled, "integer division by zero");
        if (o->f)
            o->f[k] = (float)r;
        else
            o->i[k] = to_int_(r);
    }
    return true;
}

static int cast_type_(int to) { return ox_is_float(to) ? OX_FLOAT : to == OX_BOOL ? OX_BOOL : OX_INT64; }

bool onnx_fold_node(Imp *im, const Node *n, bool *handled)
{
    const char *op = n->op_type;
    Val *x = imp_input(im, n, 0);
    *handled = false;
    if (!x) return false; /* input 0 omitted (""): no fold reads such a node */
    const OxConst *c = &x->c;
    if (str_eq(op, "Identity") || str_eq(op, "Dropout")) {
        if (str_eq(op, "Dropout") && imp_output_used(im, n, 1)) return false;
        return fold_relabel_(im, n, c, c->rank, c->dims, handled);
    }
    if (str_eq(op, "Shape")) return fold_shape_(im, n, c, handled);
    if (str_eq(op, "Size")) {
        if (c->count < 0) return refuse_(im, n, handled, "Size of a value holding the batch size");
        OxConst *o = out_(im, n, 0, OX_INT64, 0, NULL, handled);
        if (o) o->i[0] = c->count;
        return o != NULL;
    }
    if (str_eq(op, "Cast")) {
        int to = cast_type_((int)attr_int(n, "to", OX_FLOAT));
        if (c->count < 0) return fold_relabel_(im, n, c, c->rank, c->dims, handled);
        OxConst *o = out_(im, n, 0, to, c->rank, c->dims, handled);
        if (!o) return false;
        for (int64_t k = 0; k < c->count; k++) {
            if (o->f)
                o->f[k] = (float)ox_get(c, k);
            else
                seti_(im, o, k, to == OX_BOOL ? ox_get(c, k) != 0 : c->f ? to_int_(c->f[k]) : c->i[k], isb_(c, k));
        }
        return true;
    }
    if ((str_eq(op, "Gather") && !imp_input(im, n, 1)) ||
        (str_eq(op, "Range") && (!imp_input(im, n, 1) || !imp_input(im, n, 2))))
        return refuse_(im, n, handled, "a required input is omitted");
    if (str_eq(op, "Gather")) return fold_gather_(im, n, c, &imp_input(im, n, 1)->c, handled);
    if (str_eq(op, "Concat")) return fold_concat_(im, n, handled);
    if (str_eq(op, "Slice")) return fold_slice_(im, n, c, handled);
    if (str_eq(op, "Transpose")) return fold_transpose_(im, n, c, handled);
    if (str_eq(op, "ConstantOfShape")) return fold_constant_of_shape_(im, n, c, handled);
    if (str_eq(op, "Range")) return fold_range_(im, n, handled);
    if (str_eq(op, "Unsqueeze") || str_eq(op, "Squeeze")) {
        int64_t axes[OX_MAX_RANK], dims[OX_MAX_RANK];
        int na, rank;
        bool un = str_eq(op, "Unsqueeze");
        if (!onnx_axes_arg(im, n, axes, &na) ||
            !(un ? onnx_unsqueeze_dims(c->dims, c->rank, axes, na, dims, &rank) : onnx_squeeze_dims(c->dims, c->rank, axes, na, dims, &rank)))
            return refuse_(im, n, handled, "bad axes");
        return fold_relabel_(im, n, c, rank, dims, handled);
    }
    if (str_eq(op, "Reshape") || str_eq(op, "Flatten")) {
        int64_t shape[OX_MAX_RANK], dims[OX_MAX_RANK];
        int ns = 2;
        if (str_eq(op, "Flatten")) {
            int axis = norm_axis_(attr_int(n, "axis", 1), c->rank);
            if (axis < 0 || axis > c->rank || c->count < 0) return refuse_(im, n, handled, "bad Flatten axis");
            shape[0] = shape[1] = 1;
            for (int a = 0; a < c->rank; a++) shape[a < axis ? 0 : 1] *= c->dims[a];
        } else {
            Val *s = imp_input(im, n, 1);
            const int64_t *sa = im->opset < 5 ? attr_ints(n, "shape", &ns) : NULL;
            if (sa && ns <= OX_MAX_RANK) memcpy(shape, sa, sizeof *sa * (size_t)ns);
            else if (!s || !oxc_ints(&s->c, shape, OX_MAX_RANK, &ns)) return refuse_(im, n, handled, "bad Reshape shape");
            for (int k = 0; k < ns; k++)
                if (s && isb_(&s->c, k) && c->count >= 0) return refuse_(im, n, handled, "a constant reshaped by the batch size");
        }
        if (!onnx_reshape_dims(c->dims, c->rank, shape, ns, attr_int(n, "allowzero", 0) != 0, dims))
            return refuse_(im, n, handled, "bad Reshape shape");
        return fold_relabel_(im, n, c, ns, dims, handled);
    }
    if (str_eq(op, "Expand")) {
        Val *s = imp_input(im, n, 1);
        int64_t shape[OX_MAX_RANK];
        int ns;
        if (!s || !oxc_ints(&s->c, shape, OX_MAX_RANK, &ns)) return refuse_(im, n, handled, "bad Expand shape");
        OxConst shp = {.rank = ns, .count = 0};
        for (int k = 0; k < ns; k++) shp.dims[k] = shape[k];
        const OxConst *pair[2] = {c, &shp};
        int64_t dims[OX_MAX_RANK];
        int rank = ns > c->rank ? ns : c->rank;
        for (int a = 0; a < rank; a++) {
            int oc = rank - c->rank, os = rank - ns;
            int64_t dc = a < oc ? 1 : c->dims[a - oc], ds = a < os ? 1 : shape[a - os];
            if (dc != 1 && ds != 1 && dc != ds) return refuse_(im, n, handled, "Expand: the shapes do not broadcast");
            dims[a] = dc == 1 ? ds : dc;
        }
        (void)pair;
        bool batch = ox_count(dims, rank) < 0;
        if (batch) {
            bool uniform = c->count < 0 || c->count == 1;
            if (!uniform) return refuse_(im, n, handled, "Expand of a constant along the batch axis");
            Val *o = imp_output(im, n, 0);
            o->kind = VAL_CONST;
            o->c = *c;
            o->c.count = -1;
            o->c.fill = ox_get(c, 0);
            o->c.rank = rank;
            memcpy(o->c.dims, dims, sizeof dims);
            return true;
        }
        OxConst *o = out_(im, n, 0, c->dtype, rank, dims, handled);
        if (!o) return false;
        for (int64_t k = 0; k < o->count; k++) copy_elem_(im, o, k, c, bsrc_(c, dims, rank, k));
        return true;
    }
    return fold_math_(im, n, handled);
}
