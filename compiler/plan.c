/* plan.c: the memory plan of one entry point.
 *
 * Requires: an entry graph whose ids are a valid schedule. Gives: for every value the roots need, where it
 * lives (an argument, a model tensor, a constant, a view of another value, or an offset in the arena of
 * its dtype), and the order of computation. Arena offsets come from liveness by use count in schedule
 * order and a best-fit free list; a buffer is released after its last reader. Roots stay live to the end.
 * Sizes are for the maximum batch; offsets are multiples of 16 elements (64 bytes).
 *
 * What it does not do (yet): in-place reuse and recomputation; those belong to the passes issue.
 */
#include "plan.h"

#include <inttypes.h>
#include <string.h>

enum { ALIGN = 16 };

typedef struct Block {
    int64_t off, size;
} Block;

typedef struct Arena1 {
    VEC(Block) free;
    int64_t top;
} Arena1;

static int64_t round_up_(int64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static int64_t arena_take_(Arena1 *a, int64_t size)
{
    size = round_up_(size ? size : 1);
    int best = -1;
    for (int i = 0; i < a->free.len; i++)
        if (a->free.data[i].size >= size && (best < 0 || a->free.data[i].size < a->free.data[best].size)) best = i;
    if (best < 0) {
        /* grow: reuse a free block at the top if there is one */
        for (int i = 0; i < a->free.len; i++)
            if (a->free.data[i].off + a->free.data[i].size == a->top) {
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
    if (b.size == size) {
        a->free.data[best] = a->free.data[--a->free.len];
    } else {
        a->free.data[best].off += size;
        a->free.data[best].size -= size;
    }
    return b.off;
}

/* give back, merging with neighbours */
static void arena_give_(Arena1 *a, int64_t off, int64_t size)
{
    size = round_up_(size ? size : 1);
    for (int i = 0; i < a->free.len; i++) {
        Block *b = &a->free.data[i];
        if (b->off + b->size == off) {
            off = b->off;
            size += b->size;
            a->free.data[i--] = a->free.data[--a->free.len];
        } else if (off + size == b->off) {
            size += b->size;
            a->free.data[i--] = a->free.data[--a->free.len];
        }
    }
    vec_push(&a->free, ((Block){off, size}));
}

int plan_base(const Plan *p, int id)
{
    return p->store[id].kind == SK_VIEW ? p->store[id].base : id;
}

static uint8_t *needed_(Graph *g)
{
    uint8_t *need = xcalloc((size_t)g->n, 1);
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
        switch (v->op) {
        case OP_INPUT: s->kind = SK_INPUT; break;
        case OP_TENSOR: s->kind = SK_TENSOR; break;
        case OP_CONST:
            s->kind = SK_CONST;
            s->literal = !v->attr.data && s->size == 1;
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
    p->order = order.data;
    p->norder = order.len;
    p->assigns = assigns.data;
    p->nassigns = assigns.len;
}

/* Offsets by liveness: a buffer is freed after the last value that reads it (through any view). */
static void allocate_(Plan *p)
{
    Graph *g = p->g;
    int *last = xmalloc(sizeof(int) * (size_t)g->n);
    for (int id = 0; id < g->n; id++) last[id] = -1;
    for (int k = 0; k < p->norder; k++) {
        Value *v = &g->v[p->order[k]];
        for (int j = 0; j < v->nin; j++) last[plan_base(p, v->in[j])] = k;
    }
    for (int i = 0; i < g->roots.len; i++) last[plan_base(p, g->roots.data[i].id)] = p->norder;
    for (int i = 0; i < p->nassigns; i++) last[plan_base(p, g->v[p->assigns[i]].in[0])] = p->norder;
    Arena1 af = {0}, ai = {0};
    int64_t live = 0, peak = 0;
    VEC(int) dying = {0};
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        Store *s = &p->store[id];
        Arena1 *a = g->v[id].dtype == DT_I32 ? &ai : &af;
        s->offset = arena_take_(a, s->size);
        live += s->size;
        if (live > peak) peak = live;
        if (last[id] < 0) vec_push(&dying, id); /* computed but unread: free right away */
        Value *v = &g->v[id];
        for (int j = 0; j < v->nin; j++) {
            int b = plan_base(p, v->in[j]);
            if (last[b] == k && p->store[b].kind == SK_ARENA) {
                last[b] = -2; /* freed once */
                vec_push(&dying, b);
            }
        }
        for (int d = 0; d < dying.len; d++) {
            int b = dying.data[d];
            arena_give_(g->v[b].dtype == DT_I32 ? &ai : &af, p->store[b].offset, p->store[b].size);
            live -= p->store[b].size;
        }
        dying.len = 0;
    }
    p->arena_f = af.top;
    p->arena_i = ai.top;
    p->peak_bytes_lower_bound = peak * 4;
    vec_free(&dying);
    vec_free(&af.free);
    vec_free(&ai.free);
    free(last);
}

Plan *plan_entry(Graph *g, int max_batch)
{
    Plan *p = arena_alloc(g->arena, sizeof *p);
    p->g = g;
    p->max_batch = max_batch;
    p->store = arena_alloc(g->arena, sizeof(Store) * (size_t)(g->n ? g->n : 1));
    uint8_t *need = needed_(g);
    classify_(p, need);
    free(need);
    allocate_(p);
    return p;
}

void plan_print(const Plan *p, FILE *f)
{
    static const char *kinds[] = {"-", "arena", "input", "tensor", "const", "view"};
    fprintf(f, "# memory plan: f32 arena %" PRId64 " elements, i32 arena %" PRId64 "\n", p->arena_f, p->arena_i);
    for (int k = 0; k < p->norder; k++) {
        int id = p->order[k];
        const Store *s = &p->store[id];
        fprintf(f, "%%%d %s @%" PRId64 " x%" PRId64 "\n", id, kinds[s->kind], s->offset, s->size);
    }
}
