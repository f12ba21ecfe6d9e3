/* pass_lstm_infer.c: an LSTM that only predicts keeps one step's gates, not the whole trace.
 *
 * Requires: a verified graph of an entry point without a backward sweep (predict, eval), for a target
 * whose RAM is scarce (firmware). Gives: each lstm_seq(add(matmul(x, W), b), R) whose trace is read only
 * as its h block (slice [5u, 6u) of the last axis) replaced by lstm_infer(x, W, R, b) -> H [B,T,u],
 * which computes x_t W + b + h R step by step into a gate buffer of 4u floats: neither x W + b for every
 * step ([B,T,4u]) nor the trace ([B,T,6u]) is stored. The same arithmetic as lstm_seq's, summed in
 * another order (within float rounding of it).
 */
#include "passes.h"
#include "rewrite.h"

typedef struct LstmInfer {
    int *uses;     /* per old value: how many needed values read it */
    int *replaced; /* per old lstm_seq: its lstm_infer in the new graph, or -1 */
} LstmInfer;

static bool h_slice_(const Graph *g, const Value *v)
{
    if (v->op != OP_SLICE || g->v[v->in[0]].op != OP_LSTM_SEQ) return false;
    int64_t u = g->v[v->in[0]].attr.i[0];
    return v->attr.i[0] == 2 && v->attr.i[1] == 5 * u && v->attr.i[2] == u;
}

/* the trace of lstm_seq s is read only through h slices, and its xw is add(matmul(x, W), b) read only
 * by it, W and b the layer's tensors */
static bool replaceable_(const Graph *g, const LstmInfer *L, int s, int *x, int *w, int *b)
{
    const Value *sv = &g->v[s];
    int readers = 0;
    for (int id = s + 1; id < g->n; id++) {
        const Value *v = &g->v[id];
        for (int k = 0; k < v->nin; k++)
            if (v->in[k] == s) {
                if (!h_slice_(g, v) || L->uses[id] == 0) return false;
                readers++;
            }
    }
    const Value *add = &g->v[sv->in[0]];
    if (readers != L->uses[s] || add->op != OP_ADD || L->uses[sv->in[0]] != 1) return false;
    const Value *mm = &g->v[add->in[0]];
    if (mm->op != OP_MATMUL || L->uses[add->in[0]] != 1) return false;
    *x = mm->in[0], *w = mm->in[1], *b = add->in[1];
    const Value *xv = &g->v[*x], *wv = &g->v[*w], *bv = &g->v[*b];
    int64_t u = sv->attr.i[0];
    return xv->shape.rank == 3 && wv->shape.rank == 2 && wv->shape.d[1] == 4 * u && wv->shape.d[0] == xv->shape.d[2] &&
           bv->shape.rank == 1 && bv->shape.d[0] == 4 * u && !shape_batched(wv->shape) && !shape_batched(bv->shape);
}

static int lstm_value_(Rewrite *rw, int old)
{
    LstmInfer *L = rw->ctx;
    const Graph *g = rw->from;
    const Value *v = &g->v[old];
    if (!h_slice_(g, v)) return rw_copy(rw, old);
    int s = v->in[0], x, w, b;
    if (L->replaced[s] >= 0) return L->replaced[s];
    if (!replaceable_(g, L, s, &x, &w, &b)) return rw_copy(rw, old);
    const Value *sv = &g->v[s];
    int in[4] = {rw->map[x], rw->map[w], rw->map[sv->in[1]], rw->map[b]};
    Attr a = {.i = {sv->attr.i[0]}};
    L->replaced[s] = graph_add(rw->to, OP_LSTM_INFER, in, 4, &a, sv->loc);
    rw->to->v[L->replaced[s]].name = v->name;
    return L->replaced[s];
}

void pass_lstm_infer(Graph *g)
{
    bool any = false;
    for (int id = 0; id < g->n && !any; id++) any = g->v[id].op == OP_LSTM_SEQ;
    if (!any) return;
    LstmInfer L = {xcalloc((size_t)g->n, sizeof(int)), xmalloc(sizeof(int) * (size_t)g->n)};
    uint8_t *need = xcalloc((size_t)g->n, 1);
    for (int i = 0; i < g->roots.len; i++) need[g->roots.data[i].id] = 1;
    for (int id = g->n - 1; id >= 0; id--) {
        L.replaced[id] = -1;
        if (!need[id]) continue;
        for (int k = 0; k < g->v[id].nin; k++) {
            need[g->v[id].in[k]] = 1;
            L.uses[g->v[id].in[k]]++;
        }
    }
    for (int i = 0; i < g->roots.len; i++) L.uses[g->roots.data[i].id]++;
    graph_rewrite(g, lstm_value_, &L, g->hashcons);
    free(need);
    free(L.uses);
    free(L.replaced);
}
