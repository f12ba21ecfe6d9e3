/* plan.c: the memory plan of one entry point.
 *
 * Requires: an entry graph whose ids are a valid schedule (fused values annotated by pass_fuse, if run).
 * Gives: for every value the roots need, where it lives (an argument, a model tensor, a constant, a view
 * of another value, nowhere when it is computed inside another value's kernel, or an offset in the arena
 * of its dtype) and the order of the kernels. Sizes are for the maximum batch; offsets are multiples of
 * 16 elements (64 bytes).
 *
 * Liveness: a buffer lives from its kernel to the last kernel that reads it (through views and fused
 * readers); roots live to the end. Three allocators:
 *   - -O0: none; every buffer has its own place;
 *   - -O1: online best-fit in schedule order;
 *   - at -O2, offline greedy-by-size (largest buffer first, lowest address that no buffer live at the same
 *     time occupies), after in-place reuse (an elementwise kernel writes over an input that dies there)
 *     and after letting values written to the model (new weights, gradients, optimizer state) be computed
 *     straight into the model's tensor when nothing reads that tensor afterwards.
 * The lower bound printed by the report is the largest total of buffers live at one time.
 */
#include "plan.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* a buffer's size rounded up to the plan's alignment (elements): 16 on the host (64 bytes, a cache line
 * and any vector), 1 where memory is scarcer than alignment pays (firmware) */
static int64_t round_up_(int64_t x, int align) { return (x + align - 1) / align * align; }

int plan_base(const Plan *p, int id)
{
    return p->store[id].kind == SK_VIEW ? p->store[id].base : id;
}

bool plan_same_memory(const Plan *p, int a, int b)
{
    a = plan_base(p, a), b = plan_base(p, b);
    if (a == b) return true;
    const Store *x = &p->store[a], *y = &p->store[b];
    if (x->kind != y->kind) return false;
    switch (x->kind) {
    case SK_ARENA:
        return p->g->v[a].dtype == p->g->v[b].dtype && x->offset < y->offset + y->size && y->offset < x->offset + x->size;
    case SK_TENSOR: return x->tensor == y->tensor;
    case SK_INPUT: return p->g->v[a].tensor == p->g->v[b].tensor && p->g->v[a].attr.i[0] == p->g->v[b].attr.i[0];
    default: return false;
    }
}

bool plan_identical(const Plan *p, int a, int b)
{
    a = plan_base(p, a), b = plan_base(p, b);
    if (a == b) return true;
    const Store *x = &p->store[a], *y = &p->store[b];
    if (x->kind != y->kind || p->g->v[a].dtype != p->g->v[b].dtype) return false;
    if (x->kind == SK_ARENA) return x->offset == y->offset && x->size == y->size;
    return x->kind == SK_TENSOR && x->tensor == y->tensor;
}

static uint8_t *needed_(Graph *g)
{
    uint8_t *need = xcalloc((size_t)(g->n ? g->n : 1), 1);
    for (int i = 0; i < g->roots.len; i++) need[g->roots.data[i].id] = 1;
    for (int id = g->n - 1; id >= 0; id--)
        if (need[id])
            for (int k = 0; k < g->v[id].nin; k++) need[g->v[id].in[k]] = 1;
    return need;
}

static void classify_(Plan *p, const uint8_t *need)
{
    Graph *g = p->g;
    VEC(int) order = {0}, assigns = {0};
    for (int id = 0; id < g->n; id++) {
        Value *v = &g->v[id];
        Store *s = &p->store[id];
        if (!need[id]) continue;
        s->size = shape_count(v->shape, p->max_batch);
        if (v->group >= 0) {
            s->kind = SK_FUSED;
            continue;
        }
        switch (v->op) {
        case OP_INPUT: s->kind = SK_INPUT; break;
        case OP_TENSOR:
            s->kind = SK_TENSOR;
            s->tensor = v->tensor;
            break;
        case OP_CONST:
            s->kind = SK_CONST;
            s->literal = !v->attr.data;
            break;
        case OP_ASSIGN: vec_push(&assigns, id); break;
        default:
            if (op_has(v->op, F_VIEW)) {
                s->kind = SK_VIEW;
                s->base = plan_base(p, v->in[0]);
            } else {
                s->kind = SK_ARENA;
                vec_push(&order, id);
            }
        }
    }
    /* the plan lives in the graph's arena; so do its lists */
    p->order = arena_alloc(p->g->arena, sizeof(int) * (size_t)(order.len + 1));
    if (order.len) memcpy(p->order, order.data, sizeof(int) * (size_t)order.len);
    p->norder = order.len;
    p->nkernels = 0;
    for (int k = 0; k < order.len; k++) p->nkernels += g->v[order.data[k]].with < 0;
    p->assigns = arena_alloc(p->g->arena, sizeof(int) * (size_t)(assigns.len + 1));
    if (assigns.len) memcpy(p->assigns, assigns.data, sizeof(int) * (size_t)assigns.len);
    p->nassigns = assigns.len;
    free(order.data);
    free(assigns.data);
}

/* ---- liveness: pos[id] the kernel that computes id, last[id] the last kernel that reads its memory ----
 * A reduction computed in a later one's loops (Value.with) keeps its place in the order (its buffer is
 * taken there: early, which is safe) but its inputs are read where the loops run. */
typedef struct Live {
    int *pos, *last;
} Live;

static Live liveness_(Plan *p)
{
    Graph *g = p->g;
    Live L = {xmalloc(sizeof(int) * (size_t)g->n), xmalloc(sizeof(int) * (size_t)g->n)};
    for (int id = 0; id < g->n; id++) L.pos[id] = L.last[id] = -1;
    for (int k = 0; k < p->norder; k++) L.pos[p->order[k]] = k;
    for (int k = 0; k < p->norder; k++) /* reductions sharing a later one's loops are computed there */
        L.pos[p->order[k]] = L.pos[graph_loops_of(g, p->order[k])];
    for (int id = 0; id < g->n; id++) {
        if (p->store[id].kind == SK_NONE || p->g->v[id].op == OP_ASSIGN) continue;
        int at = L.pos[graph_kernel_of(p->g, id)];
        if (at < 0) continue; /* sources and views: not kernels */
        Value *v = &g->v[id];
        for (int j = 0; j < v->nin; j++) {
            int b = plan_base(p, v->in[j]);
            if (at > L.last[b]) L.last[b] = at;
        }
    }
    for (int i = 0; i < g->roots.len; i++) L.last[plan_base(p, g->roots.data[i].id)] = p->norder;
    for (int i = 0; i < p->nassigns; i++) L.last[plan_base(p, g->v[p->assigns[i]].in[0])] = p->norder;
    return L;
}

static void live_free_(Live *L)
{
    free(L->pos);
    free(L->last);
}

/* ---- online best-fit (-O0, -O1) ------------------------------------------------------------------- */
typedef struct Block {
    int64_t off, size;
} Block;

typedef struct Free1 {
    VEC(Block) free;
    int64_t top;
    int align;
} Free1;

static int64_t take_(Free1 *a, int64_t size)
{
    size = round_up_(size ? size : 1, a->align);
    int best = -1;
    for (int i = 0; i < a->free.len; i++)
        if (a->free.data[i].size >= size && (best < 0 || a->free.data[i].size < a->free.data[best].size)) best = i;
    if (best < 0) {
        for (int i = 0; i < a->free.len; i++)
            if (a->free.data[i].off + a->free.data[i].size == a->top) { /* grow the block at the top */
                int64_t off = a->free.data[i].off;
                a->free.data[i] = a->free.data[--a->free.len];
                a->top = off + size;
                return off;
            }
        int64_t off = a->top;
        a->top += size;
        return off;
    }
    Block b = a->free.data[best];
    if (b.size == size)
        a->free.data[best] = a->free.data[--a->free.len];
    else
        a->free.data[best].off += size, a->free.data[best].size -= size;
    return b.off;
}

static void give_(Free1 *a, int64_t off, int64_t size)
{
    size = round_up_(size ? size : 1, a->align);
    for (int i = 0; i < a->free.len; i++) {
        Block *b = &a->free.data[i];
        if (b->off + b->size == off) {
            off = b->off, size += b->size;
            a->free.data[i--] = a->free.data[--a->free.len];
        } else if (off + size == b->off) {
            size += b->size;
            a->free.data[i--] = a->free.data[--a->free.len];
        }
    }
    vec_push(&a->free, ((Block){off, size}));
}

static void allocate_online_(Plan *p, const Live *L)
{
    Graph *g = p->g;
    Free1 af = {.align = p->align}, ai = {.align = p->align};
    typedef VEC(int) IntVec;
    IntVec *dies = xcalloc((size_t)p->norder + 1, sizeof(IntVec)); /* buffers whose last reader is kernel k */
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        if (p->store[id].kind != SK_ARENA) continue;
        int end = L->last[id] < 0 ? k : L->last[id];
        if (end < p->norder) vec_push(&dies[end], id);
    }
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        Store *s = &p->store[id];
        if (s->kind == SK_ARENA) s->offset = take_(g->v[id].dtype == DT_I32 ? &ai : &af, s->size);
        for (int d = 0; d < dies[k].len; d++) {
            int b = dies[k].data[d];
            give_(g->v[b].dtype == DT_I32 ? &ai : &af, p->store[b].offset, p->store[b].size);
        }
    }
    p->arena_f = af.top;
    p->arena_i = ai.top;
    for (int k = 0; k <= p->norder; k++) vec_free(&dies[k]);
    free(dies);
    vec_free(&af.free);
    vec_free(&ai.free);
}

/* ---- -O2: values written to the model go straight into its tensor ------------------------------------- */
/* The C printer stores an anchor's results through the kernel's tail as it computes them (so the tail may
 * read, at the same index, the tensor a result overwrites) for a product of a matrix by a 2-D matrix, not
 * folded over batch axes, whose tail reads values of the result's shape, one per column, or scalars.
 * Other anchored kernels (a product folded over batch axes or batched, a convolution) store the anchor's
 * results first and run the tail after, which would read a tensor already overwritten. */
static bool tail_inside_anchor_(const Graph *g, int root, int anchor)
{
    const Value *a = &g->v[anchor];
    Shape sa = g->v[a->in[0]].shape, sb = g->v[a->in[1]].shape, out = g->v[root].shape;
    if (a->op != OP_MATMUL || a->attr.i[2] || sb.rank != 2 || (sa.rank != 2 && a->attr.i[0]) || out.rank < 1) return false;
    return graph_tail_reads(g, root, anchor, 1u << ROW_FULL | 1u << ROW_LAST | 1u << ROW_ONE);
}

/* id's kernel reads tensor t only elementwise at the index it writes (same shape), and through a tail
 * applied as each result is stored when the kernel has an anchor */
static bool reads_tensor_in_place_(Plan *p, int id, int t)
{
    Graph *g = p->g;
    bool reads = false;
    int anchor = -1;
    for (int m = 0; m <= id; m++) {
        if (m != id && g->v[m].group != id) continue;
        Value *v = &g->v[m];
        if (m != id && !op_has(v->op, F_EW)) anchor = m;
        for (int k = 0; k < v->nin; k++) {
            Value *x = &g->v[plan_base(p, v->in[k])];
            if (x->op != OP_TENSOR || x->tensor != t) continue;
            if (!op_has(v->op, F_EW) || !shape_eq(g->v[v->in[k]].shape, g->v[id].shape)) return false;
            reads = true;
        }
        if (!op_has(v->op, F_EW) && (m != id || v->nin)) {
            for (int k = 0; k < v->nin; k++) {
                Value *x = &g->v[plan_base(p, v->in[k])];
                if (x->op == OP_TENSOR && x->tensor == t) return false;
            }
        }
    }
    return !reads || anchor < 0 || tail_inside_anchor_(g, id, anchor);
}

/* the last kernel (other than id's) that reads tensor t */
static int last_reader_of_tensor_(Plan *p, const Live *L, int t, int id)
{
    Graph *g = p->g;
    int last = -1;
    for (int x = 0; x < g->n; x++) {
        if (p->store[x].kind == SK_NONE || g->v[x].op == OP_ASSIGN) continue;
        Value *v = &g->v[x];
        int at = L->pos[graph_kernel_of(p->g, x)];
        if (at < 0 || graph_kernel_of(p->g, x) == id) continue;
        for (int k = 0; k < v->nin; k++) {
            Value *src = &g->v[plan_base(p, v->in[k])];
            if (src->op == OP_TENSOR && src->tensor == t && at > last) last = at;
        }
    }
    return last;
}

static void store_into_tensors_(Plan *p, const Live *L)
{
    Graph *g = p->g;
    for (int i = 0; i < p->nassigns; i++) {
        Value *a = &g->v[p->assigns[i]];
        int id = a->in[0], t = a->tensor;
        Store *s = &p->store[id];
        if (s->kind != SK_ARENA) continue;
        bool unique = true;
        for (int j = 0; j < p->nassigns; j++)
            if (j != i && (g->v[p->assigns[j]].tensor == t || g->v[p->assigns[j]].in[0] == id)) unique = false;
        if (!unique || last_reader_of_tensor_(p, L, t, id) >= L->pos[id] || !reads_tensor_in_place_(p, id, t)) continue;
        s->kind = SK_TENSOR;
        s->tensor = t;
    }
}

/* ---- -O2: in place, then greedy by size -------------------------------------------------------------------- */
typedef struct Item {
    int id;
    int64_t size, off;
    int start, end;
} Item;

/* an elementwise kernel may write over an input of its own shape that dies at it; its members have ids
 * in [lo[id], id] */
static int in_place_input_(Plan *p, const Live *L, int id, const int *owner, const int *lo)
{
    Graph *g = p->g;
    Value *root = &g->v[id];
    if (!op_has(root->op, F_EW | F_INPLACE) || !op_has(root->op, F_INPLACE)) return -1;
    for (int m = lo[id]; m <= id; m++) {
        if (m != id && g->v[m].group != id) continue;
        if (!op_has(g->v[m].op, F_EW)) return -1; /* an anchored kernel writes before it has read */
    }
    for (int m = lo[id]; m <= id; m++) {
        if (m != id && g->v[m].group != id) continue;
        Value *v = &g->v[m];
        for (int k = 0; k < v->nin; k++) {
            int b = plan_base(p, v->in[k]);
            Store *s = &p->store[b];
            if (s->kind != SK_ARENA || b == id || owner[b] != b) continue;
            if (L->last[b] != L->pos[id] || g->v[b].dtype != root->dtype || s->size != p->store[id].size) continue;
            if (!shape_eq(g->v[v->in[k]].shape, root->shape)) continue;
            return b;
        }
    }
    return -1;
}

static int cmp_items_(const void *a, const void *b)
{
    const Item *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->start - y->start;
}

static int cmp_off_(const void *a, const void *b)
{
    const Item *const *x = a, *const *y = b;
    return (*x)->off < (*y)->off ? -1 : (*x)->off > (*y)->off;
}

/* Placed items by lifetime, to find those that overlap a new one without scanning them all (a model of
 * 20k layers spent seconds in that scan): a segment tree over kernel positions holds each item in the
 * O(log T) nodes that cover its lifetime exactly, and a list per start position. The items live at s
 * are those on the path from the root to leaf s; those overlapping [s, e] are these and the ones that
 * start in (s, e]. Each is found once. */
typedef VEC(Item *) ItemList;
typedef struct Placed {
    ItemList *node;     /* 4T segment-tree nodes over [0, T) */
    ItemList *by_start; /* T lists */
    int t;
} Placed;

static void placed_insert_(Placed *pl, int x, int lo, int hi, Item *it)
{
    if (it->end < lo || hi < it->start) return;
    if (it->start <= lo && hi <= it->end) {
        vec_push(&pl->node[x], it);
        return;
    }
    int mid = lo + (hi - lo) / 2;
    placed_insert_(pl, 2 * x, lo, mid, it);
    placed_insert_(pl, 2 * x + 1, mid + 1, hi, it);
}

/* the placed items whose lifetime overlaps it's, into near; returns their count */
static int placed_overlapping_(const Placed *pl, const Item *it, Item **near)
{
    int nn = 0, x = 1, lo = 0, hi = pl->t - 1;
    for (;;) {
        for (int j = 0; j < pl->node[x].len; j++) near[nn++] = pl->node[x].data[j];
        if (lo == hi) break;
        int mid = lo + (hi - lo) / 2;
        if (it->start <= mid) x = 2 * x, hi = mid;
        else x = 2 * x + 1, lo = mid + 1;
    }
    for (int k = it->start + 1; k <= it->end; k++)
        for (int j = 0; j < pl->by_start[k].len; j++) near[nn++] = pl->by_start[k].data[j];
    return nn;
}

/* greedy by size (largest first), each at the lowest gap among the items live with it */
static int64_t greedy_by_size_(Item *items, int n)
{
    qsort(items, (size_t)n, sizeof(Item), cmp_items_);
    Placed pl = {.t = 1};
    for (int i = 0; i < n; i++)
        if (items[i].end + 1 > pl.t) pl.t = items[i].end + 1;
    pl.node = xcalloc((size_t)pl.t * 4, sizeof(ItemList));
    pl.by_start = xcalloc((size_t)pl.t, sizeof(ItemList));
    Item **near = xmalloc(sizeof(Item *) * (size_t)(n ? n : 1));
    int64_t top = 0;
    for (int i = 0; i < n; i++) {
        Item *it = &items[i];
        int nn = placed_overlapping_(&pl, it, near);
        qsort(near, (size_t)nn, sizeof(Item *), cmp_off_);
        int64_t off = 0, best = -1, best_gap = INT64_MAX;
        for (int j = 0; j < nn; j++) {
            int64_t gap = near[j]->off - off;
            if (gap >= it->size && gap < best_gap) best = off, best_gap = gap;
            if (near[j]->off + near[j]->size > off) off = near[j]->off + near[j]->size;
        }
        it->off = best >= 0 ? best : off;
        if (it->off + it->size > top) top = it->off + it->size;
        placed_insert_(&pl, 1, 0, pl.t - 1, it);
        vec_push(&pl.by_start[it->start], it);
    }
    for (int x = 0; x < pl.t * 4; x++) vec_free(&pl.node[x]);
    for (int k = 0; k < pl.t; k++) vec_free(&pl.by_start[k]);
    free(pl.node);
    free(pl.by_start);
    free(near);
    return top;
}

/* the largest total of items live at one kernel */
static int64_t items_peak_(const Item *items, int n, int norder)
{
    int64_t *delta = xcalloc((size_t)norder + 2, sizeof(int64_t)), best = 0, live = 0;
    for (int i = 0; i < n; i++) {
        delta[items[i].start] += items[i].size;
        delta[items[i].end + 1] -= items[i].size;
    }
    for (int k = 0; k <= norder; k++) {
        live += delta[k];
        if (live > best) best = live;
    }
    free(delta);
    return best;
}

static void allocate_greedy_(Plan *p, const Live *L, DType dt, int64_t *top)
{
    Graph *g = p->g;
    int *owner = xmalloc(sizeof(int) * (size_t)g->n); /* in-place chains share their first buffer */
    int *lo = xmalloc(sizeof(int) * (size_t)g->n);      /* the lowest id in each kernel */
    for (int id = 0; id < g->n; id++) owner[id] = lo[id] = id;
    for (int id = 0; id < g->n; id++)
        if (g->v[id].group >= 0 && id < lo[g->v[id].group]) lo[g->v[id].group] = id;
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        if (p->store[id].kind != SK_ARENA || g->v[id].dtype != dt) continue;
        int b = in_place_input_(p, L, id, owner, lo);
        if (b >= 0) owner[id] = owner[b];
    }
    free(lo);
    Item *items = xmalloc(sizeof(Item) * (size_t)(p->norder ? p->norder : 1));
    int *index = xmalloc(sizeof(int) * (size_t)g->n);
    int n = 0;
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        if (p->store[id].kind != SK_ARENA || g->v[id].dtype != dt) continue;
        int end = L->last[id] < 0 ? k : L->last[id];
        if (owner[id] != id) {
            Item *it = &items[index[owner[id]]];
            if (end > it->end) it->end = end;
            continue;
        }
        index[id] = n;
        items[n++] = (Item){.id = id, .size = round_up_(p->store[id].size ? p->store[id].size : 1, p->align), .start = k, .end = end};
    }
    p->peak_bytes_lower_bound += items_peak_(items, n, p->norder) * 4;
    *top = greedy_by_size_(items, n);
    for (int i = 0; i < n; i++) p->store[items[i].id].offset = items[i].off;
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        if (p->store[id].kind == SK_ARENA && g->v[id].dtype == dt) p->store[id].offset = p->store[owner[id]].offset;
    }
    free(items);
    free(index);
    free(owner);
}

/* the largest total of buffers live at one time */
static int64_t lower_bound_(Plan *p, const Live *L)
{
    int64_t *delta = xcalloc((size_t)p->norder + 2, sizeof(int64_t)), best = 0, live = 0;
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        if (p->store[id].kind != SK_ARENA) continue;
        int end = L->last[id] < 0 ? k : L->last[id];
        delta[k] += p->store[id].size;
        delta[end + 1] -= p->store[id].size;
    }
    for (int k = 0; k <= p->norder; k++) {
        live += delta[k];
        if (live > best) best = live;
    }
    free(delta);
    return best * 4;
}

/* -O0: every buffer its own place, no reuse (a use-after-free cannot happen; a dump shows it all) */
static void allocate_bump_(Plan *p)
{
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        Store *s = &p->store[id];
        if (s->kind != SK_ARENA) continue;
        int64_t *top = p->g->v[id].dtype == DT_I32 ? &p->arena_i : &p->arena_f;
        s->offset = *top;
        *top += round_up_(s->size ? s->size : 1, p->align);
    }
}

Plan *plan_entry(Graph *g, int max_batch, int level, int align)
{
    Plan *p = arena_alloc(g->arena, sizeof *p);
    p->g = g;
    p->max_batch = max_batch;
    p->align = align;
    p->store = arena_alloc(g->arena, sizeof(Store) * (size_t)(g->n ? g->n : 1));
    uint8_t *need = needed_(g);
    classify_(p, need);
    free(need);
    Live L = liveness_(p);
    if (level >= 2) {
        store_into_tensors_(p, &L);
        live_free_(&L);
        L = liveness_(p);
        allocate_greedy_(p, &L, DT_F32, &p->arena_f); /* each adds its lower bound (in-place chains as one) */
        allocate_greedy_(p, &L, DT_I32, &p->arena_i);
    } else {
        if (level == 1) allocate_online_(p, &L);
        else allocate_bump_(p);
        p->peak_bytes_lower_bound = lower_bound_(p, &L);
    }
    live_free_(&L);
    return p;
}

void plan_print(const Plan *p, FILE *f)
{
    static const char *kinds[] = {"-", "arena", "input", "tensor", "const", "view", "fused"};
    fprintf(f, "# memory plan: f32 arena %" PRId64 " elements, i32 arena %" PRId64 "\n", p->arena_f, p->arena_i);
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        const Store *s = &p->store[id];
        fprintf(f, "%%%d %s @%" PRId64 " x%" PRId64 "\n", id, kinds[s->kind], s->offset, s->size);
    }
}
