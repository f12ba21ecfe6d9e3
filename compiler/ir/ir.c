/* ir.c: the graph constructor (with hash-consing), shapes, the model's tensor table, and the IR's text
 * form (`--emit ir`, `--dump-ir`, golden tests).
 *
 * Text form, one value a line, ids in creation order:
 *   %3 = matmul %0, %1 : f32[B,50]   # ffn.nn:6 h
 */
#include "ir.h"
#include "ops.h"

#include <inttypes.h>
#include <string.h>

const OpInfo op_info[OP_COUNT] = {
#define EW_FN(e) #e, true
#define EW_INLINE(e) #e, false
#define EW_NONE NULL, false
#define OP(id, name, arity, flags, shape, emit, grad, flops, scalar) [OP_##id] = {name, arity, flags, scalar},
#include "ops.def"
#undef OP
#undef EW_FN
#undef EW_INLINE
#undef EW_NONE
};

const ShapeRule shape_rules[OP_COUNT] = {
#define OP(id, name, arity, flags, shape, emit, grad, flops, scalar) [OP_##id] = shape,
#include "ops.def"
#undef OP
};

/* ---- shapes ------------------------------------------------------------------------------------ */
Shape shape_make(int rank, const int64_t *d)
{
    Shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) s.d[i] = d[i];
    return s;
}

Shape shape_scalar(void) { return (Shape){0}; }

bool shape_eq(Shape a, Shape b)
{
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; i++)
        if (a.d[i] != b.d[i]) return false;
    return true;
}

bool shape_batched(Shape s) { return s.rank > 0 && s.d[0] == DIM_B; }

int64_t shape_count(Shape s, int64_t batch)
{
    int64_t n = 1;
    for (int i = 0; i < s.rank; i++) n *= s.d[i] == DIM_B ? batch : s.d[i];
    return n;
}

int64_t shape_per_sample(Shape s) { return shape_count(s, 1); }

int64_t shape_per_sample_sat(Shape s)
{
    int64_t n = 1;
    for (int i = 0; i < s.rank; i++) {
        int64_t d = s.d[i] == DIM_B ? 1 : s.d[i];
        if (d <= 0) return 0;
        if (n > INT64_MAX / d) return INT64_MAX;
        n *= d;
    }
    return n;
}

const char *count_str_sat(int64_t n, char buf[32])
{
    if (n == INT64_MAX) return "more than 9.2e18";
    snprintf(buf, 32, "%" PRId64, n);
    return buf;
}

bool pool2d_tiles(const Attr *a, Shape in)
{
    return a->i[2] == a->i[0] && a->i[3] == a->i[1] && !a->i[4] && !a->i[5] && !a->i[6] && !a->i[7] &&
           in.d[1] % a->i[0] == 0 && in.d[2] % a->i[1] == 0;
}

RowRead shape_row_read(Shape x, Shape out)
{
    if (shape_eq(x, out)) return ROW_FULL;
    if (shape_count(x, 1) == 1 && !shape_batched(x)) return ROW_ONE;
    bool last = x.rank >= 1 && out.rank >= 1 && x.d[x.rank - 1] == out.d[out.rank - 1];
    for (int i = 0; last && i < x.rank - 1; i++) last = x.d[i] == 1;
    return last ? ROW_LAST : ROW_OTHER;
}

bool graph_tail_reads(const Graph *g, int root, int anchor, unsigned ways)
{
    Shape out = g->v[root].shape;
    for (int m = 0; m <= root; m++) {
        const Value *v = &g->v[m];
        if (m == anchor || (m != root && v->group != root)) continue;
        for (int k = 0; k < v->nin; k++) {
            int x = v->in[k];
            if (x == anchor || g->v[x].group == root) continue;
            if (!(ways >> shape_row_read(g->v[x].shape, out) & 1)) return false;
        }
    }
    return true;
}

bool shape_fits(Shape s)
{
    if (s.rank < 0 || s.rank > MAX_RANK) return false;
    for (int i = 0; i < s.rank; i++)
        if (s.d[i] < 1 && !(i == 0 && s.d[i] == DIM_B)) return false;
    return shape_per_sample_sat(s) <= MAX_ELEMS;
}

char *shape_str(Shape s, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < s.rank && k < n; i++) {
        if (s.d[i] == DIM_B)
            k += (size_t)snprintf(buf + k, n - k, "%sB", i ? "," : "");
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? "," : "", s.d[i]);
    }
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

const char *dtype_name(DType t) { return t == DT_F32 ? "f32" : t == DT_I32 ? "i32" : "void"; }

bool shape_broadcast2(Shape a, Shape b, Shape *out)
{
    Shape r = {.rank = a.rank > b.rank ? a.rank : b.rank};
    for (int i = 0; i < r.rank; i++) {
        int ia = a.rank - r.rank + i, ib = b.rank - r.rank + i;
        int64_t da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
        if (da == db || db == 1)
            r.d[i] = da;
        else if (da == 1)
            r.d[i] = db;
        else
            return false;
    }
    /* the batch axis stays leading: a per-sample shape cannot broadcast against B anywhere else */
    for (int i = 1; i < r.rank; i++)
        if (r.d[i] == DIM_B) return false;
    *out = r;
    return true;
}

/* ---- graph ------------------------------------------------------------------------------------- */
Graph *graph_new(Model *m, Arena *a)
{
    Graph *g = arena_alloc(a, sizeof *g);
    g->model = m;
    g->arena = a;
    g->hashcons = true;
    return g;
}

static uint64_t hash_mix_(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t value_hash_(const Value *v)
{
    uint64_t h = hash_mix_((uint64_t)v->op, (uint64_t)v->dtype);
    for (int i = 0; i < v->nin; i++) h = hash_mix_(h, (uint64_t)v->in[i]);
    for (int i = 0; i < ATTR_INTS; i++) h = hash_mix_(h, (uint64_t)v->attr.i[i]);
    for (int i = 0; i < ATTR_FLOATS; i++) {
        uint64_t bits;
        memcpy(&bits, &v->attr.f[i], sizeof bits);
        h = hash_mix_(h, bits);
    }
    h = hash_mix_(h, (uint64_t)(uintptr_t)v->attr.data);
    h = hash_mix_(h, (uint64_t)v->tensor);
    for (int i = 0; i < v->shape.rank; i++) h = hash_mix_(h, (uint64_t)v->shape.d[i]);
    return h;
}

static bool value_same_(const Value *a, const Value *b)
{
    if (a->op != b->op || a->dtype != b->dtype || a->nin != b->nin || a->tensor != b->tensor) return false;
    if (!shape_eq(a->shape, b->shape)) return false;
    if (memcmp(a->attr.i, b->attr.i, sizeof a->attr.i) || memcmp(a->attr.f, b->attr.f, sizeof a->attr.f))
        return false;
    if (a->attr.data != b->attr.data) return false;
    return a->nin == 0 || memcmp(a->in, b->in, sizeof(int) * (size_t)a->nin) == 0;
}

static void htab_grow_(Graph *g)
{
    int cap = g->hcap ? 2 * g->hcap : 1024;
    free(g->htab);
    g->htab = xmalloc(sizeof(int) * (size_t)cap);
    memset(g->htab, -1, sizeof(int) * (size_t)cap);
    g->hcap = cap;
    for (int id = 0; id < g->n; id++) {
        if (op_has(g->v[id].op, F_NOCSE | F_EFFECT)) continue;
        uint64_t h = value_hash_(&g->v[id]);
        int k = (int)(h & (uint64_t)(cap - 1));
        while (g->htab[k] >= 0) k = (k + 1) & (cap - 1);
        g->htab[k] = id;
    }
}

static int hash_find_(Graph *g, const Value *v, int *slot)
{
    if (g->n * 2 >= g->hcap) htab_grow_(g);
    uint64_t h = value_hash_(v);
    int k = (int)(h & (uint64_t)(g->hcap - 1));
    while (g->htab[k] >= 0) {
        if (value_same_(&g->v[g->htab[k]], v)) return g->htab[k];
        k = (k + 1) & (g->hcap - 1);
    }
    *slot = k;
    return -1;
}

static int append_(Graph *g, Value *v)
{
    bool cse = g->hashcons && !op_has(v->op, F_NOCSE | F_EFFECT);
    int slot = -1;
    if (cse) {
        int found = hash_find_(g, v, &slot);
        if (found >= 0) return found;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->v = xrealloc(g->v, sizeof(Value) * (size_t)g->cap);
    }
    int id = g->n++;
    int *in = NULL;
    if (v->nin) {
        in = arena_alloc(g->arena, sizeof(int) * (size_t)v->nin);
        memcpy(in, v->in, sizeof(int) * (size_t)v->nin);
    }
    g->v[id] = *v;
    g->v[id].in = in;
    g->v[id].group = -1;
    g->v[id].with = -1;
    if (cse) g->htab[slot] = id;
    return id;
}

/* a result over MAX_ELEMS: the shape rules compute dimensions from inputs that fit, so each dimension is
 * below 2^63 and only the count needs saturating arithmetic */
static void too_big_(Value *v)
{
    char buf[160], count[32];
    diag_error(v->loc, "%s: the result %s would have %s elements per sample; a tensor holds at most %" PRId64
                       " (2^31 - 1)",
               shape_error_context ? shape_error_context : op_info[v->op].name, shape_str(v->shape, buf, sizeof buf),
               count_str_sat(shape_per_sample_sat(v->shape), count), MAX_ELEMS);
}

int graph_add(Graph *g, OpKind op, const int *in, int nin, const Attr *attr, Loc loc)
{
    for (int i = 0; i < nin; i++)
        if (in[i] < 0) return -1; /* an input already failed: its error was reported */
    Value v = {.op = op, .nin = nin, .in = (int *)in, .loc = loc, .tensor = -1};
    if (attr) v.attr = *attr;
    NNC_ASSERT(op_info[op].arity < 0 ? nin >= 1 : nin == op_info[op].arity);
    if (!shape_rules[op](g, &v)) return -1;
    if (!shape_fits(v.shape)) {
        too_big_(&v);
        return -1;
    }
    return append_(g, &v);
}

int graph_add_typed(Graph *g, OpKind op, const int *in, int nin, const Attr *attr, DType dt, Shape s,
                    int tensor, Loc loc)
{
    Value v = {.op = op, .nin = nin, .in = (int *)in, .dtype = dt, .shape = s, .tensor = tensor, .loc = loc};
    if (attr) v.attr = *attr;
    return append_(g, &v);
}

void graph_add_root(Graph *g, RootKind kind, int id, int index)
{
    vec_push(&g->roots, ((Root){.kind = kind, .id = id, .index = index}));
}

/* ---- shorthands ---------------------------------------------------------------------------------- */
int ir_unary(Graph *g, OpKind op, int a, Loc loc) { return graph_add(g, op, &a, 1, NULL, loc); }

int ir_binary(Graph *g, OpKind op, int a, int b, Loc loc)
{
    int in[2] = {a, b};
    return graph_add(g, op, in, 2, NULL, loc);
}

int ir_const_filled(Graph *g, double v, Shape s, Loc loc)
{
    Attr a = {.f = {v}};
    return graph_add_typed(g, OP_CONST, NULL, 0, &a, DT_F32, s, -1, loc);
}

int ir_scalar(Graph *g, double v, Loc loc) { return ir_const_filled(g, (float)v, shape_scalar(), loc); }

int ir_reduce(Graph *g, OpKind op, int x, uint64_t axes, bool keepdims, Loc loc)
{
    Attr a = {.i = {(int64_t)axes, keepdims}};
    return graph_add(g, op, &x, 1, &a, loc);
}

int ir_reshape(Graph *g, int x, Shape s, Loc loc)
{
    if (x < 0) return -1;
    if (shape_eq(g->v[x].shape, s)) return x;
    Attr a = {.i = {s.rank}};
    NNC_ASSERT(s.rank <= MAX_RANK);
    for (int i = 0; i < s.rank; i++) a.i[i + 1] = s.d[i];
    return graph_add(g, OP_RESHAPE, &x, 1, &a, loc);
}

int ir_broadcast(Graph *g, int x, Shape s, Loc loc)
{
    if (x < 0) return -1;
    if (shape_eq(g->v[x].shape, s)) return x;
    Attr a = {.i = {s.rank}};
    NNC_ASSERT(s.rank <= MAX_RANK);
    for (int i = 0; i < s.rank; i++) a.i[i + 1] = s.d[i];
    return graph_add(g, OP_BROADCAST, &x, 1, &a, loc);
}

int ir_op1f(Graph *g, OpKind op, int x, double a, double b, Loc loc)
{
    Attr at = {.f = {a, b}};
    return graph_add(g, op, &x, 1, &at, loc);
}

int ir_assign(Graph *g, int value, int tensor, Loc loc)
{
    NNC_ASSERT(shape_eq(g->model->tensors.data[tensor].shape, g->v[value].shape));
    int id = graph_add_typed(g, OP_ASSIGN, &value, 1, NULL, DT_VOID, shape_scalar(), tensor, loc);
    graph_add_root(g, ROOT_EFFECT, id, 0);
    return id;
}

int ir_cast(Graph *g, int x, DType to, Loc loc)
{
    if (x < 0 || g->v[x].dtype == to) return x;
    Attr a = {.i = {to}};
    return graph_add(g, OP_CAST, &x, 1, &a, loc);
}

/* ---- model ------------------------------------------------------------------------------------- */
Model *model_new(Arena *a)
{
    Model *m = arena_alloc(a, sizeof *m);
    m->arena = a;
    m->loss = -1;
    m->step_tensor = -1;
    m->train.shuffle = true;
    m->graph = graph_new(m, a);
    return m;
}

/* ---- the tensor index: names to tensor indexes, so that adding and finding a tensor takes constant
 * time (a model of 100k layers must not be quadratic) */

/* the slot holding name, or the empty slot where it would go */
static int index_slot_(const Model *m, const char *name)
{
    int mask = m->index_cap - 1, k = (int)(str_hash(name) & (uint64_t)mask);
    while (m->by_name[k] >= 0 && !str_eq(m->tensors.data[m->by_name[k]].name, name)) k = (k + 1) & mask;
    return k;
}

static void index_put_(Model *m, int t) /* the first tensor of a name is the one found */
{
    int k = index_slot_(m, m->tensors.data[t].name);
    if (m->by_name[k] < 0) m->by_name[k] = t;
}

/* room for one more tensor (the load stays under a half) */
static void index_reserve_(Model *m)
{
    if (2 * (m->tensors.len + 1) <= m->index_cap) return;
    m->index_cap = m->index_cap ? 2 * m->index_cap : 256;
    m->by_name = arena_alloc(m->arena, sizeof(int) * (size_t)m->index_cap);
    memset(m->by_name, -1, sizeof(int) * (size_t)m->index_cap);
    for (int t = 0; t < m->tensors.len; t++) index_put_(m, t);
}

int model_add_tensor(Model *m, const char *name, TensorKind kind, DType dt, Shape s, Init init, Loc loc)
{
    index_reserve_(m);
    Tensor t = {.name = name, .kind = kind, .dtype = dt, .shape = s, .init = init, .loc = loc,
                .grad = -1, .opt_state = {-1, -1}, .layer = -1, .trainable = kind == TK_PARAM};
    vec_push(&m->tensors, t);
    index_put_(m, m->tensors.len - 1);
    return m->tensors.len - 1;
}

int model_find_tensor(const Model *m, const char *name)
{
    if (!m->index_cap) return -1;
    return m->by_name[index_slot_(m, name)];
}

int64_t model_param_count(const Model *m, bool trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = &m->tensors.data[i];
        if (t->kind != TK_PARAM && t->kind != TK_STATE) continue;
        if (trainable_only && !t->trainable) continue;
        n += shape_count(t->shape, 1);
    }
    return n;
}

/* ---- text form ----------------------------------------------------------------------------------- */
static void print_attrs_(Graph *g, const Value *v, FILE *f)
{
    switch (v->op) {
    case OP_INPUT:
        fprintf(f, " %s", v->name ? v->name : "?");
        return;
    case OP_TENSOR:
        fprintf(f, " %s", g->model->tensors.data[v->tensor].name);
        return;
    case OP_ASSIGN:
        fprintf(f, " -> %s", g->model->tensors.data[v->tensor].name);
        return;
    case OP_CONST:
        if (!v->attr.data)
            fprintf(f, " %.9g", v->attr.f[0]);
        else if (v->dtype == DT_I32)
            fprintf(f, " {%d, ...}", ((const int32_t *)v->attr.data)[0]);
        else
            fprintf(f, " {%.9g, ...}", (double)((const float *)v->attr.data)[0]);
        return;
    default:
        break;
    }
    bool any = false;
    for (int i = 0; i < ATTR_INTS; i++) any |= v->attr.i[i] != 0;
    for (int i = 0; i < ATTR_FLOATS; i++) any |= v->attr.f[i] != 0;
    if (!any) return;
    fputs(" {", f);
    int last = ATTR_INTS - 1;
    while (last > 0 && v->attr.i[last] == 0) last--;
    if (v->op == OP_TRANSPOSE && last < v->shape.rank - 1) last = v->shape.rank - 1; /* a whole permutation */
    for (int i = 0; i <= last; i++) fprintf(f, "%s%" PRId64, i ? "," : "", v->attr.i[i]);
    int lastf = ATTR_FLOATS - 1;
    while (lastf >= 0 && v->attr.f[lastf] == 0) lastf--;
    for (int i = 0; i <= lastf; i++) fprintf(f, "; %.9g", v->attr.f[i]);
    fputc('}', f);
}

void value_print(Graph *g, int id, FILE *f)
{
    const Value *v = &g->v[id];
    char sb[128];
    fprintf(f, "%%%d = %s", id, op_info[v->op].name);
    for (int i = 0; i < v->nin; i++) fprintf(f, "%s %%%d", i ? "," : "", v->in[i]);
    print_attrs_(g, v, f);
    fprintf(f, " : %s%s", dtype_name(v->dtype), shape_str(v->shape, sb, sizeof sb));
    const Source *s = source_get(v->loc.src);
    if (s || v->name || v->group >= 0 || v->with >= 0) {
        fputs("   #", f);
        if (s) fprintf(f, " line %d", v->loc.line);
        if (v->name && v->op != OP_INPUT) fprintf(f, " %s", v->name);
        if (v->group >= 0) fprintf(f, " (in the kernel of %%%d)", v->group);
        if (v->with >= 0) fprintf(f, " (in the loops of %%%d)", v->with);
    }
    fputc('\n', f);
}

void graph_print(Graph *g, FILE *f)
{
    for (int id = 0; id < g->n; id++) value_print(g, id, f);
    for (int i = 0; i < g->roots.len; i++) {
        Root r = g->roots.data[i];
        static const char *kinds[] = {"output", "loss", "metric", "effect"};
        if (r.kind == ROOT_EFFECT) continue;
        fprintf(f, "%s", kinds[r.kind]);
        if (r.kind == ROOT_OUTPUT) fprintf(f, " %s", g->model->outputs.data[r.index].name);
        if (r.kind == ROOT_METRIC) fprintf(f, " %s", g->model->metrics.data[r.index].name);
        fprintf(f, " = %%%d\n", r.id);
    }
}
