/* emit_ops.c: the C kernel of every op (ops.def column 6).
 *
 * Elementwise ops share one emitter driven by the scalar definitions of ops.def; every other op has
 * its own function. A kernel is a static function over plain arrays; its loops are written for the
 * compile-time shapes, with the runtime batch n as the only variable bound. Loops run in memory order so
 * the C compiler can vectorize the innermost one.
 *
 * What it does not do: choose storage (plan.c) or fuse ops (the fusion pass).
 */
#include "emit.h"
#include "kernel.h"

#include <inttypes.h>
#include <string.h>

#define A_ (e->m->arena)

static void kl_(Emit *e, int indent, const char *fmt, ...) NNC_PRINTF(3, 4);
static void kl_(Emit *e, int indent, const char *fmt, ...)
{
    sb_indent(&e->kernels, indent);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&e->kernels, fmt, ap);
    va_end(ap);
    sb_putc(&e->kernels, '\n');
}

static Value *val_(Emit *e, int id) { return &e->g->v[id]; }

/* index arithmetic as a reader writes it: "k * 10" but "k" for a stride of 1; "x - 2" but "x" for 0 */
static char *times_(Emit *e, const char *i, int64_t k) { return k == 1 ? (char *)i : arena_printf(A_, "%s * %" PRId64, i, k); }
static char *plus_(Emit *e, const char *x, int64_t k)
{
    return k == 0 ? (char *)x : arena_printf(A_, "%s %c %" PRId64, x, k < 0 ? '-' : '+', k < 0 ? -k : k);
}

void emit_none(Emit *e, int id)
{
    (void)e, (void)id;
    NNC_UNREACHABLE(); /* sources and views have no code; high-level ops are lowered first */
}

/* ---- loop nests (kernel.h): printed as C for loops and index expressions ------------------------- */
enum { MAX_OPS = KERNEL_MAX_OPERANDS };

static char *dim_extent_(Emit *e, const LoopNest *d, int j)
{
    if (!d->batch[j] || e->static_batch) return arena_printf(A_, "%" PRId64, d->ext[j]);
    return d->ext[j] == 1 ? "n" : arena_printf(A_, "n * %" PRId64, d->ext[j]);
}

/* the flat index of operand k at loop variables i0..i(r-1) */
static char *dim_index_(Emit *e, const LoopNest *d, int k)
{
    Index x = loop_nest_index(d, k);
    StrBuf b = {0};
    for (int t = 0; t < x.n; t++) {
        if (b.len) sb_puts(&b, " + ");
        if (x.stride[t] == 1)
            sb_printf(&b, "i%d", x.var[t]);
        else
            sb_printf(&b, "i%d * %" PRId64, x.var[t], x.stride[t]);
    }
    char *s = arena_strdup(A_, b.len ? b.s : "0");
    sb_free(&b);
    return s;
}

static void loops_open_n_(Emit *e, const LoopNest *d, int count)
{
    for (int j = 0; j < count; j++) kl_(e, 1 + j, "for (int i%d = 0; i%d < %s; i%d++)", j, j, dim_extent_(e, d, j), j);
}

static void loops_open_(Emit *e, const LoopNest *d) { loops_open_n_(e, d, d->rank); }

/* x in parentheses when it is a sum or product: "(n * 3)" */
static char *p_paren_(Emit *e, char *x) { return strchr(x, ' ') ? arena_printf(A_, "(%s)", x) : x; }

/* the elements of a nest at maximum batch */
static int64_t nest_work_(Emit *e, const LoopNest *d, const bool *only)
{
    int64_t w = 1;
    for (int j = 0; j < d->rank; j++)
        if (!only || only[j]) w *= d->ext[j] * (d->batch[j] ? e->opt->max_batch : 1);
    return w;
}

/* the extent of loops `use` of nest d as C, "1" for none */
static char *nest_extent_(Emit *e, const LoopNest *d, const bool *use)
{
    StrBuf b = {0};
    for (int j = 0; j < d->rank; j++)
        if (use[j]) sb_printf(&b, "%s%s", b.len ? " * " : "", dim_extent_(e, d, j));
    char *s = arena_strdup(A_, b.len ? b.s : "1");
    sb_free(&b);
    return s;
}

/* "i1 = r / 50 % 7, i2 = r % 50": loop variables of loops `use` from the flat index `var` */
static char *nest_decompose_(Emit *e, const LoopNest *d, const bool *use, const char *var)
{
    StrBuf b = {0};
    for (int j = 0; j < d->rank; j++) {
        if (!use[j]) continue;
        bool later[MAX_RANK] = {0}, any = false;
        for (int u = j + 1; u < d->rank; u++) any |= later[u] = use[u];
        char *div = any ? nest_extent_(e, d, later) : NULL;
        if (div && strchr(div, ' ')) div = arena_printf(A_, "(%s)", div);
        char *mod = dim_extent_(e, d, j);
        if (strchr(mod, ' ')) mod = arena_printf(A_, "(%s)", mod);
        bool first = true;
        for (int u = 0; u < j; u++) first &= !use[u];
        sb_printf(&b, "%si%d = %s%s%s%s%s", b.len ? ", " : "", j, var, div ? " / " : "", div ? div : "", first ? "" : " % ",
                  first ? "" : mod);
    }
    char *s = arena_strdup(A_, b.s ? b.s : "");
    sb_free(&b);
    return s;
}

/* CUDA: `for (int VAR = <this thread>; VAR < bound; VAR += <the grid's threads>)` then `tail`, the loop over
 * `work` items at the maximum batch that makes the kernel parallel */
void gpu_grid_loop(Emit *e, int64_t work, const char *var, const char *bound, const char *tail)
{
    e->cur_parallel = true;
    e->cur_work = work;
    kl_(e, 1, "for (int %s = blockIdx.x * blockDim.x + threadIdx.x; %s < %s; %s += gridDim.x * blockDim.x)%s", var, var, bound,
        var, tail);
}

/* CUDA: `for (int t = blockIdx.x; t < bound; t += gridDim.x) {`, one block of 256 threads per item of `blocks`,
 * after the shared array of the block's fold (gpu_block_fold) */
void gpu_block_loop(Emit *e, int64_t blocks, const char *bound)
{
    e->cur_parallel = e->cur_coop = true;
    e->cur_blocks = blocks;
    kl_(e, 1, "NNC_SHARED(nnc_real, part, 32); /* one partial result per warp */");
    kl_(e, 1, "for (int t = blockIdx.x; t < %s; t += gridDim.x) {", bound);
}

/* CUDA: the loops `use` selects of nest d (all when NULL) as one grid-stride loop over their flattened
 * extent; the loop variables i<j> are recovered by division, in a one-pass inner loop that declares them
 * (so the statement that follows is the body, as after the C loops). Returns the indent of the body. */
static int gpu_loops_open_(Emit *e, const LoopNest *d, const bool *use)
{
    bool all[MAX_RANK] = {0};
    int nv = 0, first = -1;
    for (int j = 0; j < d->rank; j++) {
        all[j] = !use || use[j];
        if (all[j] && nv++ == 0) first = j;
    }
    int64_t work = nest_work_(e, d, use);
    if (nv == 1) {
        gpu_grid_loop(e, work, arena_printf(A_, "i%d", first), dim_extent_(e, d, first), "");
        return 2;
    }
    gpu_grid_loop(e, work, "t", nest_extent_(e, d, all), "");
    if (nv == 0) return 2;
    kl_(e, 2, "for (int %s, once = 1; once; once = 0)", nest_decompose_(e, d, all, "t"));
    return 3;
}

bool gpu_can_par(const Emit *e) { return e->gpu && !e->cur_serial && e->kernels.len == e->cur_body; }

/* `for (int VAR = 0; VAR < COUNT; VAR++)` then `tail` (" {" or ""), over independent iterations that are
 * the rest of the kernel (work of them at the maximum batch): on CUDA a grid-stride loop */
static void par_for_(Emit *e, const char *var, const char *count, int64_t work, const char *tail)
{
    if (gpu_can_par(e)) gpu_grid_loop(e, work, var, count, tail);
    else kl_(e, 1, "for (int %s = 0; %s < %s; %s++)%s", var, var, count, var, tail);
}

/* the loops of a nest that is the rest of the kernel's body, its statement at the returned indent */
static int par_loops_open_(Emit *e, const LoopNest *d)
{
    if (gpu_can_par(e)) return gpu_loops_open_(e, d, NULL);
    loops_open_(e, d);
    return 1 + d->rank;
}

/* ---- reductions: shared by plain and fused kernels -------------------------------------------------- */
enum { MAX_OUTS = 4 }; /* reductions computed in one set of loops (pass_fuse's Value.with) */

static const char *acc_name_(Emit *e, int nout, int i) { return nout == 1 ? "acc" : arena_printf(A_, "acc%d", i); }

/* Accumulate every input element x[i] into y[i][out] for each of the nout outputs: in memory order;
 * when the innermost loop runs along a reduced axis, with sixteen partial results (so it vectorizes
 * without reassociation flags: clang's SLP vectorizer makes two clean 8-lane chains of sixteen, where
 * eight with a fused prologue defeat it). max takes one output. */
static void reduce_loops_(Emit *e, const LoopNest *d, int out_slot, OpKind op, int nout, const char *const *y,
                          char *const *x)
{
    NNC_ASSERT(nout >= 1 && nout <= MAX_OUTS && (op != OP_MAX || nout == 1));
    int r = d->rank;
    char *yi = dim_index_(e, d, out_slot);
    bool lanes = r > 0 && !d->full[out_slot][r - 1] && (d->batch[r - 1] || d->ext[r - 1] >= 32);
    if (!lanes) {
        loops_open_(e, d);
        if (op == OP_MAX)
            kl_(e, 1 + r, "{ const nnc_real v = %s; if (v > %s[%s]) %s[%s] = v; }", x[0], y[0], yi, y[0], yi);
        else if (nout == 1)
            kl_(e, 1 + r, "%s[%s] += %s;", y[0], yi, x[0]);
        else {
            kl_(e, 1 + r, "{");
            for (int i = 0; i < nout; i++) kl_(e, 2 + r, "%s[%s] += %s;", y[i], yi, x[i]);
            kl_(e, 1 + r, "}");
        }
        return;
    }
    loops_open_n_(e, d, r - 1);
    /* a block for the partial results inside the outer loops; none at the kernel's top level */
    bool block = r > 1;
    int ind = block ? r : r - 1;
    if (block) kl_(e, ind, "{");
    for (int i = 0; i < nout; i++) {
        const char *acc = acc_name_(e, nout, i);
        if (op == OP_MAX) {
            kl_(e, ind + 1, "nnc_real %s[16];", acc);
            kl_(e, ind + 1, "for (int l = 0; l < 16; l++) %s[l] = -INFINITY;", acc);
        } else {
            kl_(e, ind + 1, "nnc_real %s[16] = {0};", acc);
        }
    }
    /* the blocks end at a bound computed first: the compiler sees that neither loop runs past the axis
     * (with `b16 + 16 <= N` and the rest from where b16 stopped, arm-none-eabi-gcc -O2 warns that the
     * second could run past the address space) */
    const char *len = dim_extent_(e, d, r - 1);
    bool fixed = !d->batch[r - 1] || e->static_batch;
    const char *end = fixed ? arena_printf(A_, "%" PRId64, d->ext[r - 1] / 16 * 16) : arena_printf(A_, "%s / 16 * 16", len);
    kl_(e, ind + 1, "const int end16 = %s;", end);
    kl_(e, ind + 1, "for (int b16 = 0; b16 < end16; b16 += 16)");
    kl_(e, ind + 2, "for (int l = 0; l < 16; l++) {");
    kl_(e, ind + 3, "const int i%d = b16 + l;", r - 1);
    for (int i = 0; i < nout; i++) {
        if (op == OP_MAX)
            kl_(e, ind + 3, "const nnc_real v = %s; if (v > acc[l]) acc[l] = v;", x[0]);
        else
            kl_(e, ind + 3, "%s[l] += %s;", acc_name_(e, nout, i), x[i]);
    }
    kl_(e, ind + 2, "}");
    kl_(e, ind + 1, "/* the partial results, then the rest of the axis */");
    for (int i = 0; i < nout; i++) {
        const char *a = acc_name_(e, nout, i);
        if (op == OP_MAX) {
            kl_(e, ind + 1, "for (int l = 1; l < 16; l++) if (acc[l] > acc[0]) acc[0] = acc[l];");
        } else {
            kl_(e, ind + 1, "for (int l = 0; l < 8; l++) %s[l] += %s[l + 8];", a, a);
            kl_(e, ind + 1, "%s[0] = ((%s[0] + %s[4]) + (%s[1] + %s[5])) + ((%s[2] + %s[6]) + (%s[3] + %s[7]));", a, a, a, a,
                a, a, a, a, a);
        }
    }
    kl_(e, ind + 1, "for (int i%d = end16; i%d < %s; i%d++) {", r - 1, r - 1, len, r - 1);
    for (int i = 0; i < nout; i++) {
        if (op == OP_MAX)
            kl_(e, ind + 2, "const nnc_real v = %s; if (v > acc[0]) acc[0] = v;", x[0]);
        else
            kl_(e, ind + 2, "%s[0] += %s;", acc_name_(e, nout, i), x[i]);
    }
    kl_(e, ind + 1, "}");
    for (int i = 0; i < nout; i++) {
        if (op == OP_MAX)
            kl_(e, ind + 1, "if (acc[0] > %s[%s]) %s[%s] = acc[0];", y[0], yi, y[0], yi);
        else
            kl_(e, ind + 1, "%s[%s] += %s[0];", y[i], yi, acc_name_(e, nout, i));
    }
    if (block) kl_(e, ind, "}");
}

/* CUDA: reductions roots[0..nout) sharing nest d (output operand out_slot), input expressions x: one
 * thread per output, which accumulates its inputs from the identity, then stores (a mean divided) */
/* CUDA: the block's 256 partial results acc0.. folded into thread 0's: shuffles within each warp, one value
 * per warp through shared memory, shuffles again in warp 0 */
void gpu_block_fold(Emit *e, int ind, int nout, bool max)
{
    for (int i = 0; i < nout; i++) {
        const char *a = acc_name_(e, nout, i);
        if (i) kl_(e, ind, "__syncthreads(); /* part[] is read before it is written again */");
        kl_(e, ind, "for (int d = 16; d > 0; d /= 2) {");
        kl_(e, ind + 1, "const nnc_real o = __shfl_down_sync(0xffffffffu, %s, d);", a);
        kl_(e, ind + 1, max ? "if (o > %s) %s = o;" : "%s += o;", a, a);
        kl_(e, ind, "}");
        kl_(e, ind, "if (threadIdx.x %% 32 == 0) part[threadIdx.x / 32] = %s;", a);
        kl_(e, ind, "__syncthreads();");
        kl_(e, ind, "if (threadIdx.x < 32) {");
        kl_(e, ind + 1, "%s = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : %s;", a, max ? "-INFINITY" : "0");
        kl_(e, ind + 1, "for (int d = 16; d > 0; d /= 2) {");
        kl_(e, ind + 2, "const nnc_real o = __shfl_down_sync(0xffffffffu, %s, d);", a);
        kl_(e, ind + 2, max ? "if (o > %s) %s = o;" : "%s += o;", a, a);
        kl_(e, ind + 1, "}");
        kl_(e, ind, "}");
    }
}

/* CUDA: reduction i's result acc stored at y[i][yi], a mean divided by its count */
static void gpu_reduce_store_(Emit *e, int ind, int i, int nout, const char *const *y, const char *yi, const int *roots, Shape in)
{
    Reduction r = kernel_reduction(e->g, roots[i], in);
    const char *acc = acc_name_(e, nout, i);
    if (r.mean) kl_(e, ind, "%s[%s] = %s / (nnc_real)(%s);", y[i], yi, acc, c_extent(e, r.count));
    else kl_(e, ind, "%s[%s] = %s;", y[i], yi, acc);
}

/* CUDA: few outputs, each of many inputs: one block of 256 threads per output, each thread a strided part
 * of its inputs, then the block's fold (gpu_block_fold) */
static void gpu_reduce_blocks_(Emit *e, const LoopNest *d, const bool *kept, OpKind op, int nout, const char *const *y,
                               char *const *x, const int *roots, Shape in, int64_t outputs, const char *yi)
{
    bool red[MAX_RANK];
    for (int j = 0; j < d->rank; j++) red[j] = !kept[j];
    bool max = op == OP_MAX;
    gpu_block_loop(e, outputs, nest_extent_(e, d, kept));
    char *ko = nest_decompose_(e, d, kept, "t");
    if (*ko) kl_(e, 2, "const int %s;", ko);
    for (int i = 0; i < nout; i++) kl_(e, 2, "nnc_real %s = %s;", acc_name_(e, nout, i), max ? "-INFINITY" : "0");
    kl_(e, 2, "for (int r = threadIdx.x; r < %s; r += blockDim.x) {", nest_extent_(e, d, red));
    kl_(e, 3, "const int %s;", nest_decompose_(e, d, red, "r"));
    if (max) kl_(e, 3, "const nnc_real v = %s; if (v > acc) acc = v;", x[0]);
    else
        for (int i = 0; i < nout; i++) kl_(e, 3, "%s += %s;", acc_name_(e, nout, i), x[i]);
    kl_(e, 2, "}");
    gpu_block_fold(e, 2, nout, max);
    kl_(e, 2, "if (threadIdx.x == 0) {");
    for (int i = 0; i < nout; i++) gpu_reduce_store_(e, 3, i, nout, y, yi, roots, in);
    kl_(e, 2, "}");
    kl_(e, 2, "__syncthreads(); /* part[] is free for the next output */");
    kl_(e, 1, "}");
}

/* CUDA: columns (the kept loops inner to the reduced ones, as a bias gradient sums rows): a block takes 32
 * neighbouring outputs, a warp's lanes reading 32 neighbouring inputs, and its 8 warps 8 rows at a time;
 * the 8 partial results of each output meet in shared memory */
static void gpu_reduce_columns_(Emit *e, const LoopNest *d, const bool *kept, OpKind op, int nout, const char *const *y,
                                char *const *x, const int *roots, Shape in, int64_t outputs, const char *yi)
{
    bool red[MAX_RANK];
    for (int j = 0; j < d->rank; j++) red[j] = !kept[j];
    e->cur_parallel = e->cur_coop = true;
    e->cur_blocks = (outputs + 31) / 32;
    bool max = op == OP_MAX;
    const char *id = max ? "-INFINITY" : "0", *nout_s = nest_extent_(e, d, kept);
    char *ko = nest_decompose_(e, d, kept, "t");
    kl_(e, 1, "NNC_SHARED(nnc_real, part, %d); /* 8 partial results of 32 outputs%s */", 256 * nout, nout > 1 ? ", per reduction" : "");
    kl_(e, 1, "for (int t0 = blockIdx.x * 32; t0 < %s; t0 += gridDim.x * 32) {", nout_s);
    kl_(e, 2, "const int t = t0 + threadIdx.x %% 32;");
    for (int i = 0; i < nout; i++) kl_(e, 2, "nnc_real %s = %s;", acc_name_(e, nout, i), id);
    kl_(e, 2, "if (t < %s) {", nout_s);
    kl_(e, 3, "const int %s;", ko);
    kl_(e, 3, "for (int r = threadIdx.x / 32; r < %s; r += 8) {", nest_extent_(e, d, red));
    kl_(e, 4, "const int %s;", nest_decompose_(e, d, red, "r"));
    if (max) kl_(e, 4, "const nnc_real v = %s; if (v > acc) acc = v;", x[0]);
    else
        for (int i = 0; i < nout; i++) kl_(e, 4, "%s += %s;", acc_name_(e, nout, i), x[i]);
    kl_(e, 3, "}");
    kl_(e, 2, "}");
    for (int i = 0; i < nout; i++) kl_(e, 2, "part[%s] = %s;", i ? arena_printf(A_, "%d + threadIdx.x", 256 * i) : "threadIdx.x",
                                       acc_name_(e, nout, i));
    kl_(e, 2, "__syncthreads();");
    kl_(e, 2, "if (threadIdx.x < 32 && t < %s) {", nout_s);
    kl_(e, 3, "const int %s;", ko);
    for (int i = 0; i < nout; i++) {
        const char *acc = acc_name_(e, nout, i);
        kl_(e, 3, "%s = part[%d + threadIdx.x];", acc, 256 * i);
        if (max) kl_(e, 3, "for (int q = 1; q < 8; q++) if (part[%d + q * 32 + threadIdx.x] > acc) acc = part[%d + q * 32 + threadIdx.x];",
                     256 * i, 256 * i);
        else kl_(e, 3, "for (int q = 1; q < 8; q++) %s += part[%d + q * 32 + threadIdx.x];", acc, 256 * i);
        gpu_reduce_store_(e, 3, i, nout, y, yi, roots, in);
    }
    kl_(e, 2, "}");
    kl_(e, 2, "__syncthreads(); /* part[] is free for the next outputs */");
    kl_(e, 1, "}");
}

static void gpu_reduce_(Emit *e, const LoopNest *d, int out_slot, OpKind op, int nout, const char *const *y,
                        char *const *x, const int *roots, Shape in)
{
    bool kept[MAX_RANK];
    for (int j = 0; j < d->rank; j++) kept[j] = d->full[out_slot][j];
    int64_t outputs = nest_work_(e, d, kept), each = 1;
    for (int j = 0; j < d->rank; j++)
        if (!kept[j]) each *= d->ext[j] * (d->batch[j] ? e->opt->max_batch : 1);
    /* the kept loops inner to every reduced one: columns, when they give 32 blocks or more (fewer outputs:
     * a block each, which spreads the rows over more threads) */
    bool columns = outputs >= 32 * 32;
    for (int j = 0, seen_kept = 0; j < d->rank; j++) {
        if (kept[j]) seen_kept = 1;
        else if (seen_kept) columns = false;
    }
    if (each >= GPU_BLOCK_MIN_EACH && outputs <= GPU_BLOCK_MAX_OUTPUTS) {
        if (columns) gpu_reduce_columns_(e, d, kept, op, nout, y, x, roots, in, outputs, dim_index_(e, d, out_slot));
        else gpu_reduce_blocks_(e, d, kept, op, nout, y, x, roots, in, outputs, dim_index_(e, d, out_slot));
        return;
    }
    int ind = gpu_loops_open_(e, d, kept);
    char *yi = dim_index_(e, d, out_slot);
    kl_(e, ind - 1, "{");
    for (int i = 0; i < nout; i++) kl_(e, ind, "nnc_real %s = %s;", acc_name_(e, nout, i), op == OP_MAX ? "-INFINITY" : "0");
    int li = ind;
    for (int j = 0; j < d->rank; j++)
        if (!kept[j]) kl_(e, li++, "for (int i%d = 0; i%d < %s; i%d++)", j, j, dim_extent_(e, d, j), j);
    if (op == OP_MAX) kl_(e, li, "{ const nnc_real v = %s; if (v > acc) acc = v; }", x[0]);
    else if (nout == 1) kl_(e, li, "acc += %s;", x[0]);
    else {
        kl_(e, li, "{");
        for (int i = 0; i < nout; i++) kl_(e, li + 1, "%s += %s;", acc_name_(e, nout, i), x[i]);
        kl_(e, li, "}");
    }
    for (int i = 0; i < nout; i++) gpu_reduce_store_(e, ind, i, nout, y, yi, roots, in);
    kl_(e, ind - 1, "}");
}

/* the outputs of reduction id (input shape `in`) at its identity */
static void reduce_open_(Emit *e, int id, Shape in, const char *y)
{
    Reduction r = kernel_reduction(e->g, id, in);
    const char *count = c_extent(e, r.outputs);
    if (str_eq(count, "1")) { /* one output: no loop over it */
        kl_(e, 1, "%s[0] = %s;", y, r.max ? "-INFINITY" : "0");
        return;
    }
    kl_(e, 1, "for (int o = 0; o < %s; o++)", count);
    kl_(e, 2, "%s[o] = %s;", y, r.max ? "-INFINITY" : "0");
}

/* a mean's division by the elements each output took */
static void reduce_close_(Emit *e, int id, Shape in, const char *y)
{
    Reduction r = kernel_reduction(e->g, id, in);
    if (!r.mean) return;
    const char *count = c_extent(e, r.outputs);
    if (str_eq(count, "1")) {
        kl_(e, 1, "%s[0] /= (%s)(%s);", y, c_type(val_(e, id)->dtype), c_extent(e, r.count));
        return;
    }
    kl_(e, 1, "for (int o = 0; o < %s; o++)", count);
    kl_(e, 2, "%s[o] /= (%s)(%s);", y, c_type(val_(e, id)->dtype), c_extent(e, r.count));
}

/* ---- elementwise ---------------------------------------------------------------------------------- */
void emit_ew(Emit *e, int id)
{
    Value *v = val_(e, id);
    static const char *names[] = {"a", "b", "c", "d"};
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    Shape shapes[MAX_OPS];
    int nops = 0, slot[MAX_OPS];
    for (int k = 0; k < v->nin; k++) {
        int x = v->in[k];
        slot[k] = -1;
        if (e->p->store[x].kind == SK_CONST && e->p->store[x].literal) continue;
        kargs_add(e, &ka, names[k], x, false);
        slot[k] = nops;
        shapes[nops++] = val_(e, x)->shape;
    }
    shapes[nops] = v->shape; /* the output, full everywhere */
    LoopNest d = loop_nest_make(v->shape, shapes, nops + 1);
    char *operands[MAX_OPS];
    for (int k = 0; k < v->nin; k++)
        operands[k] = slot[k] < 0 ? c_literal(e, v->in[k])
                                  : arena_printf(A_, "%s[%s]", names[k], dim_index_(e, &d, slot[k]));
    kernel_begin(e, id, op_info[v->op].name, &ka);
    int ind = par_loops_open_(e, &d);
    kl_(e, ind, "y[%s] = %s;", dim_index_(e, &d, nops), c_scalar(e, id, operands));
    kernel_end(e);
}

/* broadcast: the elementwise copy */
void emit_broadcast(Emit *e, int id)
{
    Value *v = val_(e, id);
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "a", v->in[0], false);
    Shape shapes[2] = {val_(e, v->in[0])->shape, v->shape};
    LoopNest d = loop_nest_make(v->shape, shapes, 2);
    kernel_begin(e, id, "broadcast", &ka);
    int ind = par_loops_open_(e, &d);
    kl_(e, ind, "y[%s] = a[%s];", dim_index_(e, &d, 1), dim_index_(e, &d, 0));
    kernel_end(e);
}

/* ---- sources computed at run time -------------------------------------------------------------------- */
void emit_batch_size(Emit *e, int id)
{
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kernel_begin(e, id, "batch_size", &ka);
    kl_(e, 1, "y[0] = (nnc_real)%s;", c_batch(e));
    kernel_end(e);
}

void emit_rand_uniform(Emit *e, int id)
{
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "rng", -1, false);
    kernel_begin(e, id, "rand_uniform", &ka);
    kl_(e, 1, "for (int i = 0; i < %s; i++)", c_count(e, val_(e, id)->shape));
    kl_(e, 2, "y[i] = nnc_rand_uniform(rng);");
    kernel_end(e);
}

/* ---- reductions ---------------------------------------------------------------------------------------- */

/* sum/mean/max over the axes in attr i[0]: the output starts at 0 (or -inf) and every input element is
 * added to its output position, visiting the input in memory order. */
void emit_reduce(Emit *e, int id)
{
    Value *v = val_(e, id);
    int x = v->in[0];
    Shape xs = val_(e, x)->shape, kept = xs;
    uint64_t axes = (uint64_t)v->attr.i[0];
    for (int i = 0; i < xs.rank; i++)
        if (axes >> i & 1) kept.d[i] = 1;
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "a", x, false);
    Shape shapes[2] = {xs, kept};
    LoopNest d = loop_nest_make(xs, shapes, 2);
    kernel_begin(e, id, op_info[v->op].name, &ka);
    const char *y = "y";
    char *elem = arena_printf(A_, "a[%s]", dim_index_(e, &d, 0));
    if (gpu_can_par(e)) {
        gpu_reduce_(e, &d, 1, v->op, 1, &y, &elem, &id, xs);
        kernel_end(e);
        return;
    }
    reduce_open_(e, id, xs, y);
    reduce_loops_(e, &d, 1, v->op, 1, &y, &elem);
    reduce_close_(e, id, xs, y);
    kernel_end(e);
}

/* outer x len x inner decomposition of a shape around one axis */
static void around_axis_(Emit *e, Shape s, int axis, char **outer, int64_t *len, int64_t *inner)
{
    Shape o = {0};
    for (int i = 0; i < axis; i++) o.d[o.rank++] = s.d[i];
    *outer = c_count(e, o);
    *len = s.d[axis];
    *inner = 1;
    for (int i = axis + 1; i < s.rank; i++) *inner *= s.d[i];
}

void emit_argmax(Emit *e, int id)
{
    Value *v = val_(e, id);
    int x = v->in[0], axis = (int)v->attr.i[0];
    char *outer;
    int64_t len, inner;
    around_axis_(e, val_(e, x)->shape, axis, &outer, &len, &inner);
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "a", x, false);
    kernel_begin(e, id, "argmax", &ka);
    /* one position across the axis: no loop over it, and "o" where "o * 1 + i" would be */
    int ind = inner > 1 ? 3 : 2;
    const char *at = inner > 1 ? " + i" : "";
    if (inner > 1) {
        kl_(e, 1, "for (int o = 0; o < %s; o++)", outer);
        kl_(e, 2, "for (int i = 0; i < %" PRId64 "; i++) {", inner);
    } else {
        par_for_(e, "o", outer, shape_count(val_(e, x)->shape, e->opt->max_batch) / len, " {");
    }
    kl_(e, ind, "const nnc_real *p = a + o * %" PRId64 "%s;", len * inner, at);
    kl_(e, ind, "int32_t best = 0;");
    kl_(e, ind, "for (int k = 1; k < %" PRId64 "; k++)", len);
    kl_(e, ind + 1, "if (p[%s] > p[%s]) best = k;", times_(e, "k", inner), times_(e, "best", inner));
    kl_(e, ind, "y[%s%s] = best;", times_(e, "o", inner), at);
    kl_(e, ind - 1, "}");
    kernel_end(e);
}

/* ---- shape ops --------------------------------------------------------------------------------------------- */
void emit_transpose(Emit *e, int id)
{
    Value *v = val_(e, id);
    Shape xs = val_(e, v->in[0])->shape, ys = v->shape;
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "a", v->in[0], false);
    kernel_begin(e, id, "transpose", &ka);
    if (xs.rank == 0) { /* a scalar (an empty permutation): a copy */
        kl_(e, 1, "y[0] = a[0];");
        kernel_end(e);
        return;
    }
    int64_t xstride[MAX_RANK];
    xstride[xs.rank - 1] = 1;
    for (int i = xs.rank - 2; i >= 0; i--) xstride[i] = xstride[i + 1] * (xs.d[i + 1] == DIM_B ? 1 : xs.d[i + 1]);
    int ind = 1 + ys.rank;
    if (gpu_can_par(e)) { /* one grid-stride loop over the output's elements */
        LoopNest d = {.rank = ys.rank};
        for (int j = 0; j < ys.rank; j++) d.ext[j] = ys.d[j] == DIM_B ? 1 : ys.d[j], d.batch[j] = ys.d[j] == DIM_B;
        ind = gpu_loops_open_(e, &d, NULL);
    } else {
        for (int j = 0; j < ys.rank; j++) kl_(e, 1 + j, "for (int i%d = 0; i%d < %s; i%d++)", j, j, c_dim(e, ys.d[j]), j);
    }
    StrBuf yi = {0}, xi = {0};
    for (int j = 0; j < ys.rank; j++) {
        int64_t ystride = 1;
        for (int jj = j + 1; jj < ys.rank; jj++) ystride *= ys.d[jj];
        const char *ij = arena_printf(A_, "i%d", j);
        sb_printf(&yi, "%s%s", j ? " + " : "", times_(e, ij, ystride));
        sb_printf(&xi, "%s%s", j ? " + " : "", times_(e, ij, xstride[v->attr.i[j]]));
    }
    kl_(e, ind, "y[%s] = a[%s];", yi.s, xi.s);
    sb_free(&yi);
    sb_free(&xi);
    kernel_end(e);
}

void emit_concat(Emit *e, int id)
{
    Value *v = val_(e, id);
    int axis = (int)v->attr.i[0];
    char *outer;
    int64_t len, inner;
    around_axis_(e, v->shape, axis, &outer, &len, &inner);
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    static const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "p", "q", "r"};
    bool direct = v->nin <= 11;
    if (direct)
        for (int k = 0; k < v->nin; k++) kargs_add(e, &ka, names[k], v->in[k], false);
    else
        kargs_add(e, &ka, "parts", -2, false); /* an array of pointers (nnc_parts) built by the caller */
    kernel_begin(e, id, "concat", &ka);
    par_for_(e, "o", outer, shape_count(v->shape, e->opt->max_batch) / (len * inner > 0 ? len * inner : 1), " {");
    int64_t off = 0;
    for (int k = 0; k < v->nin; k++) {
        int64_t w = val_(e, v->in[k])->shape.d[axis] * inner;
        const char *src = direct ? names[k] : arena_printf(A_, "parts[%d]", k);
        kl_(e, 2, "for (int i = 0; i < %" PRId64 "; i++) y[%s + i] = %s[o * %" PRId64 " + i];", w,
            plus_(e, arena_printf(A_, "o * %" PRId64, len * inner), off), src, w);
        off += w;
    }
    kl_(e, 1, "}");
    kernel_end(e);
}

static void slice_copy_(Emit *e, int id, bool unslice)
{
    Value *v = val_(e, id);
    int axis = (int)v->attr.i[0];
    int64_t start = v->attr.i[1];
    Shape big = unslice ? v->shape : val_(e, v->in[0])->shape;
    Shape small = unslice ? val_(e, v->in[0])->shape : v->shape;
    char *outer;
    int64_t blen, inner;
    around_axis_(e, big, axis, &outer, &blen, &inner);
    int64_t slen = small.d[axis];
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "a", v->in[0], false);
    kernel_begin(e, id, unslice ? "unslice" : "slice", &ka);
    if (unslice && e->gpu) { /* each row of y whole: zeros around the slice */
        par_for_(e, "o", outer, shape_count(big, e->opt->max_batch) / (blen * inner > 0 ? blen * inner : 1), " {");
        kl_(e, 2, "for (int i = 0; i < %" PRId64 "; i++) y[o * %" PRId64 " + i] = 0;", blen * inner, blen * inner);
        kl_(e, 2, "for (int i = 0; i < %" PRId64 "; i++) y[%s + i] = a[o * %" PRId64 " + i];", slen * inner,
            plus_(e, arena_printf(A_, "o * %" PRId64, blen * inner), start * inner), slen * inner);
        kl_(e, 1, "}");
    } else if (unslice) {
        kl_(e, 1, "for (int i = 0; i < %s; i++) y[i] = 0;", c_count(e, v->shape));
        kl_(e, 1, "for (int o = 0; o < %s; o++)", outer);
        kl_(e, 2, "for (int i = 0; i < %" PRId64 "; i++) y[%s + i] = a[o * %" PRId64 " + i];", slen * inner,
            plus_(e, arena_printf(A_, "o * %" PRId64, blen * inner), start * inner), slen * inner);
    } else {
        par_for_(e, "o", outer, shape_count(small, e->opt->max_batch) / (slen * inner > 0 ? slen * inner : 1), "");
        kl_(e, 2, "for (int i = 0; i < %" PRId64 "; i++) y[o * %" PRId64 " + i] = a[%s + i];", slen * inner, slen * inner,
            plus_(e, arena_printf(A_, "o * %" PRId64, blen * inner), start * inner));
    }
    kernel_end(e);
}

void emit_slice(Emit *e, int id) { slice_copy_(e, id, false); }
void emit_unslice(Emit *e, int id) { slice_copy_(e, id, true); }

void emit_one_hot(Emit *e, int id)
{
    Value *v = val_(e, id);
    int64_t classes = v->attr.i[0];
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "a", v->in[0], false);
    kernel_begin(e, id, "one_hot", &ka);
    par_for_(e, "i", c_count(e, val_(e, v->in[0])->shape), shape_count(val_(e, v->in[0])->shape, e->opt->max_batch), "");
    kl_(e, 2, "for (int c = 0; c < %" PRId64 "; c++) y[i * %" PRId64 " + c] = a[i] == c ? 1 : 0;", classes, classes);
    kernel_end(e);
}

/* ---- matmul ------------------------------------------------------------------------------------------------- */

/* the product of one matrix pair (emit_gemm.c chooses how) */
static void gemm_(Emit *e, int ind, Extent M, Extent N, Extent K, const char *a, const char *b, const char *c, int ta,
                  int tb, int64_t work, const Epilogue *epi)
{
    Gemm g = {.s = {.m = M, .n = N, .k = K, .ta = ta, .tb = tb, .work = work}, .a = a, .b = b, .c = c, .epi = epi};
    gemm_emit(e, ind, &g);
}

static int64_t at_max_(Emit *e, int64_t d) { return d == DIM_B ? e->opt->max_batch : d; }

/* fold: y[K,N] = sum over every leading index p of a[p, K]^T b[p, N] */
static void matmul_fold_body_(Emit *e, int id, const char *an, const char *bn, const char *yn)
{
    Value *v = val_(e, id);
    Shape sa = val_(e, v->in[0])->shape;
    int64_t k = v->shape.d[0], nn = v->shape.d[1];
    Shape rows = sa;
    rows.rank--;
    int64_t nrows = shape_count(rows, e->opt->max_batch);
    if (gpu_can_par(e) && e->gemm_par && nrows >= GPU_BLOCK_MIN_EACH && k * nn <= GPU_BLOCK_MAX_OUTPUTS) {
        /* many rows: a block per 32 neighbouring elements of y, its 8 warps 8 rows at a time */
        e->gemm_par = false;
        e->cur_parallel = e->cur_coop = true;
        e->cur_blocks = (k * nn + 31) / 32;
        kl_(e, 1, "NNC_SHARED(nnc_real, part, 256); /* 8 partial results of 32 elements */");
        kl_(e, 1, "for (int t0 = blockIdx.x * 32; t0 < %" PRId64 "; t0 += gridDim.x * 32) {", k * nn);
        kl_(e, 2, "const int t = t0 + threadIdx.x %% 32, i = t / %" PRId64 ", j = t %% %" PRId64 ";", nn, nn);
        kl_(e, 2, "nnc_real s = 0;");
        kl_(e, 2, "if (t < %" PRId64 ")", k * nn);
        kl_(e, 3, "for (int p = threadIdx.x / 32; p < %s; p += 8)", c_count(e, rows));
        kl_(e, 4, "s += %s[p * %" PRId64 " + i] * %s[p * %" PRId64 " + j];", an, k, bn, nn);
        kl_(e, 2, "part[threadIdx.x] = s;");
        kl_(e, 2, "__syncthreads();");
        kl_(e, 2, "if (threadIdx.x < 32 && t < %" PRId64 ") {", k * nn);
        kl_(e, 3, "for (int q = 1; q < 8; q++) s += part[q * 32 + threadIdx.x];");
        kl_(e, 3, "%s[t] = s;", yn);
        kl_(e, 2, "}");
        kl_(e, 2, "__syncthreads(); /* part[] is free for the next elements */");
        kl_(e, 1, "}");
        return;
    }
    if (gpu_can_par(e) && e->gemm_par) { /* one thread per element of y, summing over the rows */
        e->gemm_par = false;
        gpu_grid_loop(e, k * nn, "t", arena_printf(A_, "%" PRId64, k * nn), " {");
        kl_(e, 2, "const int i = t / %" PRId64 ", j = t %% %" PRId64 ";", nn, nn);
        kl_(e, 2, "nnc_real s = 0;");
        kl_(e, 2, "for (int p = 0; p < %s; p++)", c_count(e, rows));
        kl_(e, 3, "s += %s[p * %" PRId64 " + i] * %s[p * %" PRId64 " + j];", an, k, bn, nn);
        kl_(e, 2, "%s[t] = s;", yn);
        kl_(e, 1, "}");
        return;
    }
    kl_(e, 1, "for (int i = 0; i < %" PRId64 "; i++) %s[i] = 0;", k * nn, yn);
    kl_(e, 1, "for (int p = 0; p < %s; p++)", c_count(e, rows));
    kl_(e, 2, "for (int i = 0; i < %" PRId64 "; i++) {", k);
    kl_(e, 3, "const nnc_real api = %s[p * %" PRId64 " + i];", an, k);
    kl_(e, 3, "for (int j = 0; j < %" PRId64 "; j++) %s[i * %" PRId64 " + j] += api * %s[p * %" PRId64 " + j];", nn, yn, nn, bn, nn);
    kl_(e, 2, "}");
}

/* matmul over the last two axes with NumPy broadcasting of the leading ones; a plain matrix on the
 * right makes one product over all rows of the left. Writes the loops into the open kernel. */
static bool matmul_body_(Emit *e, int id, const char *an, const char *bn, const char *yn, const Epilogue *epi)
{
    Value *v = val_(e, id);
    if (v->attr.i[2]) { /* fold: a tail, if any, runs after */
        e->gemm_par &= epi == NULL;
        matmul_fold_body_(e, id, an, bn, yn);
        e->gemm_par = false;
        return false;
    }
    int ta = (int)v->attr.i[0], tb = (int)v->attr.i[1];
    Shape sa = val_(e, v->in[0])->shape, sb = val_(e, v->in[1])->shape;
    /* vectors as matrices: a [K] -> [1, K], b [K] -> [K, 1] */
    if (sa.rank == 1) sa = (Shape){2, {1, sa.d[0]}}, ta = 0;
    if (sb.rank == 1) sb = (Shape){2, {sb.d[0], 1}}, tb = 0;
    int64_t M = sa.d[sa.rank - (ta ? 1 : 2)], K = sa.d[sa.rank - (ta ? 2 : 1)], N = sb.d[sb.rank - (tb ? 2 : 1)];
    Extent Ms = extent_dim(M), Ns = extent_dim(N), Ks = extent_dim(K);
    if (sb.rank == 2 && !ta) {
        Shape rows = sa;
        rows.rank--;
        gemm_(e, 1, extent_count(rows), Ns, Ks, an, bn, yn, 0, tb, shape_count(rows, e->opt->max_batch) * N * at_max_(e, K), epi);
        return epi != NULL;
    }
    /* batch axes: the output's leading axes; each operand broadcasts into them */
    Shape bo = v->shape;
    bo.rank -= (val_(e, v->in[0])->shape.rank > 1) + (val_(e, v->in[1])->shape.rank > 1);
    Shape ba = sa, bb = sb;
    ba.rank -= 2;
    bb.rank -= 2;
    int64_t work = at_max_(e, M) * at_max_(e, N) * at_max_(e, K);
    if (bo.rank == 0) {
        gemm_(e, 1, Ms, Ns, Ks, an, bn, yn, ta, tb, work, epi);
        return epi != NULL;
    }
    Shape shapes[3] = {ba, bb, bo};
    LoopNest d = loop_nest_make(bo, shapes, 3);
    int64_t m1 = M == DIM_B ? 1 : M, k1 = K == DIM_B ? 1 : K;
    if (gpu_can_par(e) && e->gemm_par && M != DIM_B && N != DIM_B && K != DIM_B) { /* a thread per element of every C */
        e->gemm_par = false;
        bool all[MAX_RANK];
        for (int j = 0; j < d.rank; j++) all[j] = true;
        gpu_grid_loop(e, nest_work_(e, &d, NULL) * M * N, "t", times_(e, p_paren_(e, nest_extent_(e, &d, all)), M * N), " {");
        kl_(e, 2, "const int q = t / %" PRId64 ", i = t / %" PRId64 " %% %" PRId64 ", j = t %% %" PRId64 ";", M * N, N, M, N);
        if (d.rank) kl_(e, 2, "const int %s;", nest_decompose_(e, &d, all, "q"));
        kl_(e, 2, "const nnc_real *pa = %s + (%s) * %" PRId64 ";", an, dim_index_(e, &d, 0), m1 * k1);
        kl_(e, 2, "const nnc_real *pb = %s + (%s) * %" PRId64 ";", bn, dim_index_(e, &d, 1), k1 * N);
        kl_(e, 2, "nnc_real s = 0;");
        kl_(e, 2, "for (int k = 0; k < %" PRId64 "; k++)", K);
        kl_(e, 3, "s += pa[%s] * pb[%s];", ta ? arena_printf(A_, "k * %" PRId64 " + i", M) : arena_printf(A_, "i * %" PRId64 " + k", K),
            tb ? arena_printf(A_, "j * %" PRId64 " + k", K) : arena_printf(A_, "k * %" PRId64 " + j", N));
        kl_(e, 2, "%s[(%s) * %" PRId64 " + i * %" PRId64 " + j] = s;", yn, dim_index_(e, &d, 2), m1 * N, N);
        kl_(e, 1, "}");
        return false;
    }
    e->gemm_par = false;
    loops_open_(e, &d);
    int ind = 1 + d.rank;
    kl_(e, ind, "{");
    kl_(e, ind + 1, "const nnc_real *pa = %s + (%s) * %" PRId64 ";", an, dim_index_(e, &d, 0), m1 * k1);
    kl_(e, ind + 1, "const nnc_real *pb = %s + (%s) * %" PRId64 ";", bn, dim_index_(e, &d, 1), k1 * N);
    kl_(e, ind + 1, "nnc_real *pc = %s + (%s) * %" PRId64 ";", yn, dim_index_(e, &d, 2), m1 * N);
    gemm_(e, ind + 1, Ms, Ns, Ks, "pa", "pb", "pc", ta, tb, work, NULL);
    kl_(e, ind, "}");
    return false;
}

/* CUDA: a large plain product (2-D operands, no tail, k not the batch) through cuBLAS: a call in the entry
 * point instead of a kernel. Rows of C past the call's batch are computed too (the graph is recorded at
 * the maximum batch): every buffer holds the maximum batch's rows, so they only cost time. */
static bool gpu_blas_fits_(Emit *e, int id)
{
    Value *v = val_(e, id);
    Shape sa = val_(e, v->in[0])->shape, sb = val_(e, v->in[1])->shape;
    if (!e->gpu || v->attr.i[2] || sa.rank != 2 || sb.rank != 2 || v->dtype != DT_F32) return false;
    int ta = (int)v->attr.i[0], tb = (int)v->attr.i[1];
    int64_t M = sa.d[ta ? 1 : 0], K = sa.d[ta ? 0 : 1], N = sb.d[tb ? 0 : 1];
    if (K == DIM_B || N == DIM_B || (ta && M == DIM_B)) return false; /* only C's and A's rows may be the batch */
    return (M == DIM_B ? e->opt->max_batch : M) * N * K >= GPU_BLAS_MIN_WORK;
}

/* the cuBLAS call of product id (gpu_blas_fits_) into C at `c` */
static void gpu_blas_call_(Emit *e, int id, const char *c)
{
    Value *v = val_(e, id);
    Shape sa = val_(e, v->in[0])->shape, sb = val_(e, v->in[1])->shape;
    int ta = (int)v->attr.i[0], tb = (int)v->attr.i[1];
    int64_t M = sa.d[ta ? 1 : 0], K = sa.d[ta ? 0 : 1], N = sb.d[tb ? 0 : 1];
    int64_t m = M == DIM_B ? e->opt->max_batch : M;
    int64_t lda = sa.d[1] == DIM_B ? e->opt->max_batch : sa.d[1], ldb = sb.d[1];
    sb_printf(&e->body, "    nnc_cuda_gemm(c, %d, %d, %" PRId64 ", %" PRId64 ", %" PRId64 ", %s, %" PRId64 ", %s, %" PRId64 ", %s, %" PRId64
                        "); /* matmul",
              ta, tb, m, N, K, c_buffer(e, v->in[0]), lda, c_buffer(e, v->in[1]), ldb, c, N);
    if (source_get(v->loc.src)) sb_printf(&e->body, " (line %d)", v->loc.line);
    sb_puts(&e->body, ": cuBLAS */\n");
}

void emit_matmul(Emit *e, int id)
{
    Value *v = val_(e, id);
    if (gpu_blas_fits_(e, id)) {
        gpu_blas_call_(e, id, c_buffer(e, id));
        return;
    }
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "a", v->in[0], false);
    kargs_add(e, &ka, "b", v->in[1], false);
    kernel_begin(e, id, "matmul", &ka);
    e->gemm_par = true;
    matmul_body_(e, id, "a", "b", "y", NULL);
    kernel_end(e);
}

/* ---- loops over output pixels: for b, oh, ow { ... } --------------------------------------------------------
 * The C targets nest three loops; on CUDA, when the pixels are the kernel's whole work (each writes only
 * its own outputs), one grid-stride loop over n * HO * WO pixels gives each thread its b, oh, ow. */
static void pixel_loops_open_(Emit *e, int64_t HO, int64_t WO)
{
    if (gpu_can_par(e)) {
        gpu_grid_loop(e, (int64_t)e->opt->max_batch * HO * WO, "t", times_(e, c_batch(e), HO * WO), "");
        kl_(e, 1, "for (int b = t / %" PRId64 ", oh = t / %" PRId64 " %% %" PRId64 ", ow = t %% %" PRId64 ", once = 1; once; once = 0) {",
            HO * WO, WO, HO, WO);
        return;
    }
    kl_(e, 1, "for (int b = 0; b < %s; b++)", c_batch(e));
    kl_(e, 1, "for (int oh = 0; oh < %" PRId64 "; oh++)", HO);
    kl_(e, 1, "for (int ow = 0; ow < %" PRId64 "; ow++) {", WO);
}

/* ---- convolution ----------------------------------------------------------------------------------------- */
/* the input row or column of tap k: "kh", or "kh * 2" under dilation */
static const char *conv_tap_(Emit *e, const char *k, int64_t dil)
{
    return dil == 1 ? k : arena_printf(A_, "%s * %" PRId64, k, dil);
}

/* the input coordinate of output coordinate o and tap: "o * s - pad + tap", without "* 1" or "- 0" */
static const char *conv_coord_(Emit *e, const char *o, int64_t s, int64_t pad, const char *tap)
{
    return arena_printf(A_, "%s + %s", plus_(e, times_(e, o, s), -pad), tap);
}


/* "x + ci", or x alone where there is one input channel per group and so no loop over ci */
static const char *with_ci_(Emit *e, const char *x, bool one) { return one ? x : arena_printf(A_, "%s + ci", x); }

/* for b, oh, ow, kh, kw inside the input: opens 5 loops (closed by the caller with conv_close_) */
static void conv_open_(Emit *e, const ConvShape *c)
{
    kl_(e, 1, "for (int b = 0; b < %s; b++)", c_batch(e));
    kl_(e, 1, "for (int oh = 0; oh < %" PRId64 "; oh++)", c->HO);
    kl_(e, 1, "for (int ow = 0; ow < %" PRId64 "; ow++) {", c->WO);
    kl_(e, 2, "const int64_t o = ((int64_t)b * %" PRId64 " + oh) * %" PRId64 " + ow;", c->HO, c->WO);
    kl_(e, 2, "for (int kh = 0; kh < %" PRId64 "; kh++) {", c->KH);
    kl_(e, 3, "const int ih = %s;", conv_coord_(e, "oh", c->sh, c->pt, conv_tap_(e, "kh", c->dh)));
    kl_(e, 3, "if (ih < 0 || ih >= %" PRId64 ") continue;", c->H);
    kl_(e, 3, "for (int kw = 0; kw < %" PRId64 "; kw++) {", c->KW);
    kl_(e, 4, "const int iw = %s;", conv_coord_(e, "ow", c->sw, c->pl, conv_tap_(e, "kw", c->dw)));
    kl_(e, 4, "if (iw < 0 || iw >= %" PRId64 ") continue;", c->W);
    kl_(e, 4, "const int64_t i = ((int64_t)b * %" PRId64 " + ih) * %" PRId64 " + iw;", c->H, c->W);
    kl_(e, 4, "const int64_t k = (int64_t)kh * %" PRId64 " + kw;", c->KW);
}

static void conv_close_(Emit *e)
{
    kl_(e, 3, "}");
    kl_(e, 2, "}");
    kl_(e, 1, "}");
}

/* ---- conv2d forward in blocks of CONV_PIX pixels x CONV_F filters ------------------------------------
 * The cost model (docs/kernels.md): with at least CONV_F filters, a block of CONV_PIX neighbouring output
 * pixels x CONV_F filters accumulates in registers over the taps and channels, so each weight vector
 * loaded feeds CONV_PIX pixels; with fewer filters (or at -O0, the oracle) one pixel's filters at a time.
 * Two pixels, not more: the kernel is mostly bound by storing its output, and larger blocks spill. */
enum { CONV_PIX = 2, CONV_F = 16 };

static bool conv_padded_(const ConvShape *c)
{
    int64_t kh = (c->KH - 1) * c->dh + 1, kw = (c->KW - 1) * c->dw + 1;
    return c->pt || c->pl || (c->HO - 1) * c->sh + kh > c->H + c->pt || (c->WO - 1) * c->sw + kw > c->W + c->pl;
}

/* the block at output column ow0 (pixels ow0 .. ow0+np-1) and filters f0 .. f0+nf-1 (one group) */
static void conv_block_(Emit *e, const ConvShape *c, const char *xn, const char *wn, const char *yn, const Epilogue *epi,
                        int ind, const char *f0, int64_t np, int64_t nf)
{
    bool pad = conv_padded_(c);
    kl_(e, ind, "{");
    kl_(e, ind + 1, "nnc_real acc[%" PRId64 "][%" PRId64 "] = {{0}};", np, nf);
    kl_(e, ind + 1, "for (int kh = 0; kh < %" PRId64 "; kh++) {", c->KH);
    kl_(e, ind + 2, "const int ih = %s;", conv_coord_(e, "oh", c->sh, c->pt, conv_tap_(e, "kh", c->dh)));
    if (pad) kl_(e, ind + 2, "if (ih < 0 || ih >= %" PRId64 ") continue;", c->H);
    kl_(e, ind + 2, "const nnc_real *xr = %s + ((int64_t)b * %" PRId64 " + ih) * %" PRId64 ";", xn, c->H, c->W * c->C);
    bool one = c->C == 1; /* one input channel: no loop over ci */
    int bi = ind + 4 - one;
    kl_(e, ind + 2, "for (int kw = 0; kw < %" PRId64 "; kw++)%s", c->KW, one ? " {" : "");
    if (!one) kl_(e, ind + 3, "for (int ci = 0; ci < %" PRId64 "; ci++) {", c->C);
    const char *khkw = arena_printf(A_, "((int64_t)kh * %" PRId64 " + kw)", c->KW);
    kl_(e, bi, "const nnc_real *wk = %s + %s * %" PRId64 " + %s;", wn,
        one ? khkw : arena_printf(A_, "(%s + ci)", times_(e, khkw, c->C)), c->F, f0);
    kl_(e, bi, "for (int p = 0; p < %" PRId64 "; p++) {", np);
    kl_(e, bi + 1, "const int iw = %s;", conv_coord_(e, c->sw == 1 ? "ow0 + p" : "(ow0 + p)", c->sw, c->pl, conv_tap_(e, "kw", c->dw)));
    if (pad)
        kl_(e, bi + 1, "const nnc_real xv = iw >= 0 && iw < %" PRId64 " ? xr[%s] : 0;", c->W, with_ci_(e, times_(e, "iw", c->C), one));
    else
        kl_(e, bi + 1, "const nnc_real xv = xr[%s];", with_ci_(e, times_(e, "iw", c->C), one));
    kl_(e, bi + 1, "for (int f = 0; f < %" PRId64 "; f++) acc[p][f] += xv * wk[f];", nf);
    kl_(e, bi, "}");
    kl_(e, bi - 1, "}");
    kl_(e, ind + 1, "}");
    kl_(e, ind + 1, "for (int p = 0; p < %" PRId64 "; p++) {", np);
    kl_(e, ind + 2, "const int64_t o = ((int64_t)b * %" PRId64 " + oh) * %" PRId64 " + ow0 + p;", c->HO, c->WO);
    kl_(e, ind + 2, "for (int ff = 0; ff < %" PRId64 "; ff++) {", nf);
    kl_(e, ind + 3, "const int f = %s + ff;", f0);
    kl_(e, ind + 3, "%s[o * %" PRId64 " + f] = %s;", yn, c->F, epi ? epi->expr(e, epi->ctx, "o", "f", "acc[p][ff]") : "acc[p][ff]");
    kl_(e, ind + 2, "}");
    kl_(e, ind + 1, "}");
    kl_(e, ind, "}");
}

/* the pixel blocks of one output row for filters f0 .. f0+nf-1 */
static void conv_block_row_(Emit *e, const ConvShape *c, const char *xn, const char *wn, const char *yn, const Epilogue *epi,
                            int ind, const char *f0, int64_t nf)
{
    int64_t full = c->WO / CONV_PIX * CONV_PIX;
    kl_(e, ind, "for (int ow0 = 0; ow0 < %" PRId64 "; ow0 += %d)", full, CONV_PIX);
    conv_block_(e, c, xn, wn, yn, epi, ind + 1, f0, CONV_PIX, nf);
    if (c->WO > full) {
        kl_(e, ind, "{");
        kl_(e, ind + 1, "const int ow0 = %" PRId64 ";", full);
        conv_block_(e, c, xn, wn, yn, epi, ind + 1, f0, c->WO - full, nf);
        kl_(e, ind, "}");
    }
}

static bool conv2d_blocks_(Emit *e, const ConvShape *c, const char *xn, const char *wn, const char *yn, const Epilogue *epi)
{
    int64_t ffull = c->F / CONV_F * CONV_F;
    kl_(e, 1, "for (int b = 0; b < %s; b++)", c_batch(e));
    kl_(e, 1, "for (int oh = 0; oh < %" PRId64 "; oh++) {", c->HO);
    kl_(e, 2, "for (int f0 = 0; f0 < %" PRId64 "; f0 += %d) {", ffull, CONV_F);
    conv_block_row_(e, c, xn, wn, yn, epi, 3, "f0", CONV_F);
    kl_(e, 2, "}");
    if (c->F > ffull) conv_block_row_(e, c, xn, wn, yn, epi, 2, arena_printf(A_, "%" PRId64, ffull), c->F - ffull);
    kl_(e, 1, "}");
    return epi != NULL;
}

/* one tap's contribution to a pixel's acc[F]: without groups every channel feeds every filter; depthwise
 * (one channel and one filter per group) filter f reads channel f, a loop along the filters; other groups
 * (a channel multiplier included) a loop over each group's filters, of a constant count (the C compiler
 * vectorizes it; f / m indexing or group bounds computed from f ran 3 to 20 times slower) */
static void conv2d_pixel_taps_(Emit *e, const ConvShape *c)
{
    if (c->G == 1 && c->C == 1) {
        kl_(e, 4, "for (int f = 0; f < %" PRId64 "; f++) acc[f] += xp[0] * wk[f];", c->F);
    } else if (c->G == 1) {
        kl_(e, 4, "for (int ci = 0; ci < %" PRId64 "; ci++)", c->C);
        kl_(e, 5, "for (int f = 0; f < %" PRId64 "; f++) acc[f] += xp[ci] * wk[ci * %" PRId64 " + f];", c->F, c->F);
    } else if (c->Cg == 1 && c->Fg == 1) {
        kl_(e, 4, "for (int f = 0; f < %" PRId64 "; f++) acc[f] += xp[f] * wk[f];", c->F);
    } else {
        kl_(e, 4, "for (int gi = 0; gi < %" PRId64 "; gi++) {", c->G);
        kl_(e, 5, "nnc_real *ag = acc + gi * %" PRId64 ";", c->Fg);
        kl_(e, 5, "const nnc_real *xg = xp + gi * %" PRId64 ", *wg = wk + gi * %" PRId64 ";", c->Cg, c->Fg);
        if (c->Cg == 1) {
            kl_(e, 5, "for (int f = 0; f < %" PRId64 "; f++) ag[f] += xg[0] * wg[f];", c->Fg);
        } else {
            kl_(e, 5, "for (int ci = 0; ci < %" PRId64 "; ci++)", c->Cg);
            kl_(e, 6, "for (int f = 0; f < %" PRId64 "; f++) ag[f] += xg[ci] * wg[ci * %" PRId64 " + f];", c->Fg, c->F);
        }
        kl_(e, 4, "}");
    }
}

/* y[b,oh,ow,f] = sum over kh, kw, c of x[b, oh*sh-pt+kh*dh, ow*sw-pl+kw*dw, g*Cg+c] w[kh,kw,c,f] (g: f's
 * group, c < Cg): each output pixel's F values accumulate in a local array (registers) and are stored
 * once, through the epilogue if any. Several groups take the one-pixel loop at every level. */
static bool conv2d_body_(Emit *e, int id, const char *xn, const char *wn, const char *yn, const Epilogue *epi)
{
    Value *v = val_(e, id);
    ConvShape c = kernel_conv_shape(&v->attr, val_(e, v->in[0])->shape, val_(e, v->in[1])->shape, v->shape);
    if (e->opt->opt_level >= 1 && c.F >= CONV_F && c.G == 1 && !e->gpu) return conv2d_blocks_(e, &c, xn, wn, yn, epi);
    pixel_loops_open_(e, c.HO, c.WO);
    kl_(e, 2, "const int64_t o = ((int64_t)b * %" PRId64 " + oh) * %" PRId64 " + ow;", c.HO, c.WO);
    kl_(e, 2, "nnc_real acc[%" PRId64 "];", c.F);
    kl_(e, 2, "for (int f = 0; f < %" PRId64 "; f++) acc[f] = 0;", c.F);
    bool pad = c.pt || c.pl || v->attr.i[6] || v->attr.i[7];
    kl_(e, 2, "for (int kh = 0; kh < %" PRId64 "; kh++) {", c.KH);
    kl_(e, 3, "const int ih = %s;", conv_coord_(e, "oh", c.sh, c.pt, conv_tap_(e, "kh", c.dh)));
    if (pad) kl_(e, 3, "if (ih < 0 || ih >= %" PRId64 ") continue;", c.H);
    kl_(e, 3, "for (int kw = 0; kw < %" PRId64 "; kw++) {", c.KW);
    kl_(e, 4, "const int iw = %s;", conv_coord_(e, "ow", c.sw, c.pl, conv_tap_(e, "kw", c.dw)));
    if (pad) kl_(e, 4, "if (iw < 0 || iw >= %" PRId64 ") continue;", c.W);
    kl_(e, 4, "const nnc_real *xp = %s + %s;", xn,
        times_(e, arena_printf(A_, "(((int64_t)b * %" PRId64 " + ih) * %" PRId64 " + iw)", c.H, c.W), c.C));
    kl_(e, 4, "const nnc_real *wk = %s + ((int64_t)kh * %" PRId64 " + kw) * %" PRId64 ";", wn, c.KW, c.Cg * c.F);
    conv2d_pixel_taps_(e, &c);
    kl_(e, 3, "}");
    kl_(e, 2, "}");
    kl_(e, 2, "nnc_real *yo = %s + o * %" PRId64 ";", yn, c.F);
    kl_(e, 2, "for (int f = 0; f < %" PRId64 "; f++) yo[f] = %s;", c.F, epi ? epi->expr(e, epi->ctx, "o", "f", "acc[f]") : "acc[f]");
    kl_(e, 1, "}");
    return epi != NULL;
}

void emit_conv2d(Emit *e, int id)
{
    Value *v = val_(e, id);
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "x", v->in[0], false);
    kargs_add(e, &ka, "w", v->in[1], false);
    kernel_begin(e, id, "conv2d", &ka);
    conv2d_body_(e, id, "x", "w", "y", NULL);
    kernel_end(e);
}

/* CUDA: dx as a gather, one thread per element dx[b,ih,iw,c]: the taps whose output pixel reads it,
 * oh = (ih + pt - kh*dh) / sh where that divides and lands inside, times the filters of c's group */
static void conv_bwd_data_gather_(Emit *e, const ConvShape *c)
{
    gpu_grid_loop(e, (int64_t)e->opt->max_batch * c->H * c->W * c->C, "t",
                  times_(e, c_batch(e), c->H * c->W * c->C), " {");
    kl_(e, 2, "const int ci = t %% %" PRId64 ", iw = t / %" PRId64 " %% %" PRId64 ", ih = t / %" PRId64 " %% %" PRId64 ", b = t / %" PRId64 ";",
        c->C, c->C, c->W, c->C * c->W, c->H, c->C * c->W * c->H);
    kl_(e, 2, "const int g0 = ci / %" PRId64 " * %" PRId64 ", cg = ci %% %" PRId64 ";", c->Cg, c->Fg, c->Cg);
    kl_(e, 2, "nnc_real s = 0;");
    kl_(e, 2, "for (int kh = 0; kh < %" PRId64 "; kh++) {", c->KH);
    kl_(e, 3, "const int hh = ih + %" PRId64 " - kh * %" PRId64 ";", c->pt, c->dh);
    kl_(e, 3, "if (hh < 0 || hh %% %" PRId64 " != 0 || hh / %" PRId64 " >= %" PRId64 ") continue;", c->sh, c->sh, c->HO);
    kl_(e, 3, "for (int kw = 0; kw < %" PRId64 "; kw++) {", c->KW);
    kl_(e, 4, "const int ww = iw + %" PRId64 " - kw * %" PRId64 ";", c->pl, c->dw);
    kl_(e, 4, "if (ww < 0 || ww %% %" PRId64 " != 0 || ww / %" PRId64 " >= %" PRId64 ") continue;", c->sw, c->sw, c->WO);
    kl_(e, 4, "const nnc_real *g = dy + (((int64_t)b * %" PRId64 " + hh / %" PRId64 ") * %" PRId64 " + ww / %" PRId64 ") * %" PRId64 " + g0;",
        c->HO, c->sh, c->WO, c->sw, c->F);
    kl_(e, 4, "const nnc_real *wr = w + (((int64_t)kh * %" PRId64 " + kw) * %" PRId64 " + cg) * %" PRId64 " + g0;", c->KW, c->Cg, c->F);
    kl_(e, 4, "for (int f = 0; f < %" PRId64 "; f++) s += g[f] * wr[f];", c->Fg);
    kl_(e, 3, "}");
    kl_(e, 2, "}");
    kl_(e, 2, "dx[t] = s;");
    kl_(e, 1, "}");
}

/* dx[b,ih,iw,c] += sum over f of dy[b,oh,ow,f] w[kh,kw,c,f], f over c's group (all filters without groups;
 * depthwise its own filter, a loop along the channels) */
void emit_conv2d_bwd_data(Emit *e, int id)
{
    Value *v = val_(e, id);
    ConvShape c = kernel_conv_shape(&v->attr, v->shape, val_(e, v->in[1])->shape, val_(e, v->in[0])->shape);
    KArgs ka = {0};
    kargs_add(e, &ka, "dx", id, true);
    kargs_add(e, &ka, "dy", v->in[0], false);
    kargs_add(e, &ka, "w", v->in[1], false);
    kernel_begin(e, id, "conv2d_bwd_data", &ka);
    if (e->gpu) {
        conv_bwd_data_gather_(e, &c);
        kernel_end(e);
        return;
    }
    kl_(e, 1, "for (int i = 0; i < %s; i++) dx[i] = 0;", c_count(e, v->shape));
    conv_open_(e, &c);
    kl_(e, 4, "const nnc_real *g = dy + o * %" PRId64 ";", c.F);
    if (c.G > 1 && c.Cg == 1 && c.Fg == 1) {
        kl_(e, 4, "const nnc_real *wr = w + k * %" PRId64 ";", c.F);
        kl_(e, 4, "for (int ci = 0; ci < %" PRId64 "; ci++) dx[i * %" PRId64 " + ci] += g[ci] * wr[ci];", c.C, c.C);
        conv_close_(e);
        kernel_end(e);
        return;
    }
    bool one = c.Cg == 1; /* one input channel per group: no loop over ci */
    if (c.G == 1) {
        if (!one) kl_(e, 4, "for (int ci = 0; ci < %" PRId64 "; ci++) {", c.C);
        kl_(e, 5 - one, "const nnc_real *wr = w + %s * %" PRId64 ";", one ? "k" : arena_printf(A_, "(k * %" PRId64 " + ci)", c.C), c.F);
        kl_(e, 5 - one, "nnc_real s = 0;");
        kl_(e, 5 - one, "for (int f = 0; f < %" PRId64 "; f++) s += g[f] * wr[f];", c.F);
        kl_(e, 5 - one, "dx[%s] += s;", with_ci_(e, times_(e, "i", c.C), one));
        if (!one) kl_(e, 4, "}");
    } else { /* the group's filters: loops of a constant count, which the C compiler vectorizes */
        kl_(e, 4, "for (int gi = 0; gi < %" PRId64 "; gi++)%s", c.G, one ? " {" : "");
        if (!one) kl_(e, 4, "for (int ci = 0; ci < %" PRId64 "; ci++) {", c.Cg);
        kl_(e, 5, "const nnc_real *wr = w + %s * %" PRId64 " + gi * %" PRId64 ", *gg = g + gi * %" PRId64 ";",
            one ? "k" : arena_printf(A_, "(k * %" PRId64 " + ci)", c.Cg), c.F, c.Fg, c.Fg);
        kl_(e, 5, "nnc_real s = 0;");
        kl_(e, 5, "for (int f = 0; f < %" PRId64 "; f++) s += gg[f] * wr[f];", c.Fg);
        kl_(e, 5, "dx[i * %" PRId64 " + %s] += s;", c.C, with_ci_(e, times_(e, "gi", c.Cg), one));
        kl_(e, 4, "}");
    }
    conv_close_(e);
    kernel_end(e);
}

/* one (kh, kw, ci) of the filter gradient along one output row: acc[f] += x * dy[ow, f] */
static void conv_bwd_filter_row_(Emit *e, const ConvShape *c, bool pad, int ind)
{
    bool one = c->Cg == 1; /* no loop over ci */
    kl_(e, ind, "for (int ow = 0; ow < %" PRId64 "; ow++) {", c->WO);
    kl_(e, ind + 1, "const int iw = %s;", conv_coord_(e, "ow", c->sw, c->pl, conv_tap_(e, "kw", c->dw)));
    if (pad) kl_(e, ind + 1, "if (iw < 0 || iw >= %" PRId64 ") continue;", c->W);
    if (c->G == 1) {
        kl_(e, ind + 1, "const nnc_real xv = xr[%s];", with_ci_(e, times_(e, "iw", c->C), one));
        kl_(e, ind + 1, "for (int f = 0; f < %" PRId64 "; f++) acc[f] += xv * g[ow * %" PRId64 " + f];", c->F, c->F);
    } else if (c->Cg == 1 && c->Fg == 1) {
        kl_(e, ind + 1, "for (int f = 0; f < %" PRId64 "; f++) acc[f] += xr[iw * %" PRId64 " + f] * g[ow * %" PRId64 " + f];",
            c->F, c->C, c->F);
    } else {
        kl_(e, ind + 1, "for (int gi = 0; gi < %" PRId64 "; gi++) {", c->G);
        kl_(e, ind + 2, "const nnc_real xv = xr[iw * %" PRId64 " + %s];", c->C, with_ci_(e, times_(e, "gi", c->Cg), one));
        kl_(e, ind + 2, "nnc_real *ag = acc + gi * %" PRId64 ";", c->Fg);
        kl_(e, ind + 2, "const nnc_real *gg = g + ow * %" PRId64 " + gi * %" PRId64 ";", c->F, c->Fg);
        kl_(e, ind + 2, "for (int f = 0; f < %" PRId64 "; f++) ag[f] += xv * gg[f];", c->Fg);
        kl_(e, ind + 1, "}");
    }
    kl_(e, ind, "}");
}

/* CUDA: dw[kh,kw,c,f], each element a sum over the batch's output pixels: one block per element (256
 * threads over the pixels, then the block's fold) when the pixels are many, else one thread per element */
static void conv_bwd_filter_gpu_(Emit *e, const ConvShape *c, bool pad)
{
    int64_t outputs = c->KH * c->KW * c->Cg * c->F, pixels = (int64_t)e->opt->max_batch * c->HO * c->WO;
    bool blocks = pixels >= GPU_BLOCK_MIN_EACH && outputs <= GPU_BLOCK_MAX_OUTPUTS;
    const char *bound = arena_printf(A_, "%" PRId64, outputs);
    if (blocks) gpu_block_loop(e, outputs, bound);
    else gpu_grid_loop(e, outputs, "t", bound, " {");
    kl_(e, 2, "const int f = t %% %" PRId64 ", cg = t / %" PRId64 " %% %" PRId64 ", kw = t / %" PRId64 " %% %" PRId64 ", kh = t / %" PRId64 ";",
        c->F, c->F, c->Cg, c->F * c->Cg, c->KW, c->F * c->Cg * c->KW);
    kl_(e, 2, "const int ci = f / %" PRId64 " * %" PRId64 " + cg;", c->Fg, c->Cg);
    kl_(e, 2, "nnc_real acc = 0;");
    if (blocks) {
        kl_(e, 2, "for (int r = threadIdx.x; r < %s; r += blockDim.x) {", times_(e, c_batch(e), c->HO * c->WO));
        kl_(e, 3, "const int b = r / %" PRId64 ", oh = r / %" PRId64 " %% %" PRId64 ", ow = r %% %" PRId64 ";", c->HO * c->WO, c->WO,
            c->HO, c->WO);
    } else {
        kl_(e, 2, "for (int r = 0; r < %s; r++) {", times_(e, c_batch(e), c->HO * c->WO));
        kl_(e, 3, "const int b = r / %" PRId64 ", oh = r / %" PRId64 " %% %" PRId64 ", ow = r %% %" PRId64 ";", c->HO * c->WO, c->WO,
            c->HO, c->WO);
    }
    kl_(e, 3, "const int ih = %s, iw = %s;", conv_coord_(e, "oh", c->sh, c->pt, conv_tap_(e, "kh", c->dh)),
        conv_coord_(e, "ow", c->sw, c->pl, conv_tap_(e, "kw", c->dw)));
    if (pad) kl_(e, 3, "if (ih < 0 || ih >= %" PRId64 " || iw < 0 || iw >= %" PRId64 ") continue;", c->H, c->W);
    kl_(e, 3, "acc += x[(((int64_t)b * %" PRId64 " + ih) * %" PRId64 " + iw) * %" PRId64 " + ci] * dy[(int64_t)r * %" PRId64 " + f];",
        c->H, c->W, c->C, c->F);
    kl_(e, 2, "}");
    if (blocks) {
        gpu_block_fold(e, 2, 1, false);
        kl_(e, 2, "if (threadIdx.x == 0) dw[t] = acc;");
        kl_(e, 2, "__syncthreads(); /* part[] is free for the next element */");
    } else {
        kl_(e, 2, "dw[t] = acc;");
    }
    kl_(e, 1, "}");
}

/* dw[kh,kw,c,f] = sum over b, oh, ow of x[b,ih,iw,g*Cg+c] dy[b,oh,ow,f] (g: f's group): one output row of
 * dy at a time (it stays in L1), each (kh, kw, c) summing along the row in registers */
void emit_conv2d_bwd_filter(Emit *e, int id)
{
    Value *v = val_(e, id);
    ConvShape c = kernel_conv_shape(&v->attr, val_(e, v->in[0])->shape, v->shape, val_(e, v->in[1])->shape);
    bool pad = c.pt || c.pl || v->attr.i[6] || v->attr.i[7];
    KArgs ka = {0};
    kargs_add(e, &ka, "dw", id, true);
    kargs_add(e, &ka, "x", v->in[0], false);
    kargs_add(e, &ka, "dy", v->in[1], false);
    kernel_begin(e, id, "conv2d_bwd_filter", &ka);
    if (e->gpu) {
        conv_bwd_filter_gpu_(e, &c, pad);
        kernel_end(e);
        return;
    }
    kl_(e, 1, "for (int i = 0; i < %s; i++) dw[i] = 0;", c_count(e, v->shape));
    kl_(e, 1, "for (int b = 0; b < %s; b++)", c_batch(e));
    kl_(e, 1, "for (int oh = 0; oh < %" PRId64 "; oh++) {", c.HO);
    kl_(e, 2, "const nnc_real *g = dy + ((int64_t)b * %" PRId64 " + oh) * %" PRId64 ";", c.HO, c.WO * c.F);
    kl_(e, 2, "for (int kh = 0; kh < %" PRId64 "; kh++) {", c.KH);
    kl_(e, 3, "const int ih = %s;", conv_coord_(e, "oh", c.sh, c.pt, conv_tap_(e, "kh", c.dh)));
    if (pad) kl_(e, 3, "if (ih < 0 || ih >= %" PRId64 ") continue;", c.H);
    kl_(e, 3, "const nnc_real *xr = x + ((int64_t)b * %" PRId64 " + ih) * %" PRId64 ";", c.H, c.W * c.C);
    bool one = c.Cg == 1; /* one input channel per group: no loop over ci */
    kl_(e, 3, "for (int kw = 0; kw < %" PRId64 "; kw++)%s", c.KW, one ? " {" : "");
    if (!one) kl_(e, 3, "for (int ci = 0; ci < %" PRId64 "; ci++) {", c.Cg);
    kl_(e, 4, "nnc_real acc[%" PRId64 "];", c.F);
    kl_(e, 4, "for (int f = 0; f < %" PRId64 "; f++) acc[f] = 0;", c.F);
    conv_bwd_filter_row_(e, &c, pad, 4);
    const char *khkw = arena_printf(A_, "((int64_t)kh * %" PRId64 " + kw)", c.KW);
    kl_(e, 4, "nnc_real *wr = dw + %s * %" PRId64 ";", one ? khkw : arena_printf(A_, "(%s + ci)", times_(e, khkw, c.Cg)), c.F);
    kl_(e, 4, "for (int f = 0; f < %" PRId64 "; f++) wr[f] += acc[f];", c.F);
    kl_(e, 3, "}");
    kl_(e, 2, "}");
    kl_(e, 1, "}");
    kernel_end(e);
}

/* ---- pooling ------------------------------------------------------------------------------------------------ */
/* for b, oh, ow: the window's rows h0..h1, columns w0..w1 clipped to the input; o the output pixel.
 * The channels are the innermost loop everywhere, so pooling vectorizes over them. */
static void pool_open_(Emit *e, const PoolShape *p)
{
    pixel_loops_open_(e, p->HO, p->WO);
    kl_(e, 2, "const int hs = %s, ws = %s;", plus_(e, times_(e, "oh", p->sh), -p->pt), plus_(e, times_(e, "ow", p->sw), -p->pl));
    kl_(e, 2, "const int h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;");
    kl_(e, 2, "const int h1 = hs + %" PRId64 " > %" PRId64 " ? %" PRId64 " : hs + %" PRId64 ";", p->KH, p->H, p->H, p->KH);
    kl_(e, 2, "const int w1 = ws + %" PRId64 " > %" PRId64 " ? %" PRId64 " : ws + %" PRId64 ";", p->KW, p->W, p->W, p->KW);
    kl_(e, 2, "const int64_t o = (((int64_t)b * %" PRId64 " + oh) * %" PRId64 " + ow) * %" PRId64 ";", p->HO, p->WO, p->C);
}

/* the first element (channel 0) of input pixel (b, h, w) */
static char *pool_x_index_(Emit *e, const PoolShape *p)
{
    return times_(e, arena_printf(A_, "(((int64_t)b * %" PRId64 " + h) * %" PRId64 " + w)", p->H, p->W), p->C);
}

/* an average's 1 / count: the window's cells inside the input, or all of them with count_include_pad */
static void pool_avg_inv_(Emit *e, const PoolShape *p)
{
    if (p->count_pad)
        kl_(e, 2, "const nnc_real inv = (nnc_real)1 / (nnc_real)%" PRId64 ";", p->KH * p->KW);
    else
        kl_(e, 2, "const nnc_real inv = (nnc_real)1 / (nnc_real)((h1 - h0) * (w1 - w0));");
}

/* max: the largest value in the window (padding never wins); avg: the mean of the window's cells inside
 * the input (padding is not counted, as TensorFlow does), or with count_include_pad the sum over the
 * whole window, padded cells as zeros (PyTorch's count_include_pad=True) */
void emit_pool2d(Emit *e, int id)
{
    Value *v = val_(e, id);
    bool max = v->op == OP_MAXPOOL2D;
    PoolShape p = kernel_pool_shape(&v->attr, val_(e, v->in[0])->shape, v->shape);
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "x", v->in[0], false);
    kernel_begin(e, id, op_info[v->op].name, &ka);
    pool_open_(e, &p);
    kl_(e, 2, "nnc_real *yo = y + o;");
    kl_(e, 2, "for (int c = 0; c < %" PRId64 "; c++) yo[c] = %s;", p.C, max ? "-INFINITY" : "0");
    kl_(e, 2, "for (int h = h0; h < h1; h++)");
    kl_(e, 3, "for (int w = w0; w < w1; w++) {");
    kl_(e, 4, "const nnc_real *xp = x + %s;", pool_x_index_(e, &p));
    if (max)
        kl_(e, 4, "for (int c = 0; c < %" PRId64 "; c++) yo[c] = xp[c] > yo[c] ? xp[c] : yo[c];", p.C);
    else
        kl_(e, 4, "for (int c = 0; c < %" PRId64 "; c++) yo[c] += xp[c];", p.C);
    kl_(e, 3, "}");
    if (!max) {
        pool_avg_inv_(e, &p);
        kl_(e, 2, "for (int c = 0; c < %" PRId64 "; c++) yo[c] *= inv;", p.C);
    }
    kl_(e, 1, "}");
    kernel_end(e);
}

/* maxpool2d_bwd(x, y, dy): each output's gradient goes to the first cell of its window (row-major order)
 * equal to the forward's maximum y; avgpool2d_bwd(dy): spread evenly over the window's cells inside the
 * input. Both vectorize over the channels. */
/* maxpool2d_bwd over tiling windows, as a gather: every cell of dx is written once, the gradient where
 * the cell is its window's first maximum (row-major window order), else 0; through the epilogue if any */
static void maxpool_bwd_tiled_(Emit *e, int id, const char *xn, const char *yn, const char *gn, const char *dn,
                               const Epilogue *epi)
{
    Value *v = val_(e, id);
    PoolShape p = kernel_pool_shape(&v->attr, v->shape, val_(e, v->in[2])->shape);
    pool_open_(e, &p);
    kl_(e, 2, "const nnc_real *g = %s + o, *yo = %s + o;", gn, yn);
    kl_(e, 2, "nnc_real done[%" PRId64 "];", p.C);
    kl_(e, 2, "for (int c = 0; c < %" PRId64 "; c++) done[c] = 0;", p.C);
    kl_(e, 2, "for (int h = h0; h < h1; h++)");
    kl_(e, 3, "for (int w = w0; w < w1; w++) {");
    kl_(e, 4, "const int64_t cell = ((int64_t)b * %" PRId64 " + h) * %" PRId64 " + w, i = cell * %" PRId64 ";", p.H, p.W, p.C);
    kl_(e, 4, "for (int c = 0; c < %" PRId64 "; c++) {", p.C);
    kl_(e, 5, "const nnc_real hit = done[c] == 0 && %s[i + c] == yo[c] ? 1 : 0;", xn);
    kl_(e, 5, "done[c] += hit;");
    kl_(e, 5, "%s[i + c] = %s;", dn, epi ? epi->expr(e, epi->ctx, "cell", "c", "(hit * g[c])") : "hit * g[c]");
    kl_(e, 4, "}");
    kl_(e, 3, "}");
    kl_(e, 1, "}");
}

/* CUDA: a pooling gradient as a gather, one thread per element dx[b,h,w,c]: the windows that hold the cell
 * give it their gradient (max: where the cell is the window's first maximum; avg: times 1 / the count) */
static void pool_bwd_gather_(Emit *e, const PoolShape *p, bool max)
{
    gpu_grid_loop(e, (int64_t)e->opt->max_batch * p->H * p->W * p->C, "t",
                  times_(e, c_batch(e), p->H * p->W * p->C), " {");
    kl_(e, 2, "const int c = t %% %" PRId64 ", w = t / %" PRId64 " %% %" PRId64 ", h = t / %" PRId64 " %% %" PRId64 ", b = t / %" PRId64 ";",
        p->C, p->C, p->W, p->C * p->W, p->H, p->C * p->W * p->H);
    kl_(e, 2, "const int hn = h + %" PRId64 " - %" PRId64 ", wn = w + %" PRId64 " - %" PRId64 ";", p->pt, p->KH - 1, p->pl, p->KW - 1);
    kl_(e, 2, "const int oh0 = hn > 0 ? (hn + %" PRId64 ") / %" PRId64 " : 0, ow0 = wn > 0 ? (wn + %" PRId64 ") / %" PRId64 " : 0;",
        p->sh - 1, p->sh, p->sw - 1, p->sw);
    kl_(e, 2, "const int oh1 = (h + %" PRId64 ") / %" PRId64 ", ow1 = (w + %" PRId64 ") / %" PRId64 ";", p->pt, p->sh, p->pl, p->sw);
    kl_(e, 2, "nnc_real s = 0;");
    kl_(e, 2, "for (int oh = oh0; oh <= oh1 && oh < %" PRId64 "; oh++)", p->HO);
    kl_(e, 2, "for (int ow = ow0; ow <= ow1 && ow < %" PRId64 "; ow++) {", p->WO);
    if (max || !p->count_pad) { /* the window's cells inside the input */
        kl_(e, 3, "const int hs = %s, ws = %s;", plus_(e, times_(e, "oh", p->sh), -p->pt), plus_(e, times_(e, "ow", p->sw), -p->pl));
        kl_(e, 3, "const int h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;");
        kl_(e, 3, "const int h1 = hs + %" PRId64 " > %" PRId64 " ? %" PRId64 " : hs + %" PRId64 ";", p->KH, p->H, p->H, p->KH);
        kl_(e, 3, "const int w1 = ws + %" PRId64 " > %" PRId64 " ? %" PRId64 " : ws + %" PRId64 ";", p->KW, p->W, p->W, p->KW);
    }
    kl_(e, 3, "const int64_t o = (((int64_t)b * %" PRId64 " + oh) * %" PRId64 " + ow) * %" PRId64 " + c;", p->HO, p->WO, p->C);
    if (max) {
        kl_(e, 3, "int first = -1;");
        kl_(e, 3, "for (int hh = h0; hh < h1 && first < 0; hh++)");
        kl_(e, 4, "for (int ww = w0; ww < w1 && first < 0; ww++)");
        kl_(e, 5, "if (x[(((int64_t)b * %" PRId64 " + hh) * %" PRId64 " + ww) * %" PRId64 " + c] == y[o]) first = hh * %" PRId64 " + ww;",
            p->H, p->W, p->C, p->W);
        kl_(e, 3, "if (first == h * %" PRId64 " + w) s += dy[o];", p->W);
    } else if (p->count_pad) {
        kl_(e, 3, "s += dy[o] * ((nnc_real)1 / (nnc_real)%" PRId64 ");", p->KH * p->KW);
    } else {
        kl_(e, 3, "s += dy[o] * ((nnc_real)1 / (nnc_real)((h1 - h0) * (w1 - w0)));");
    }
    kl_(e, 2, "}");
    kl_(e, 2, "dx[t] = s;");
    kl_(e, 1, "}");
}

/* maxpool2d_bwd(x, y, dy): each output's gradient goes to the first cell of its window (row-major order)
 * equal to the forward's maximum y; avgpool2d_bwd(dy): spread evenly over the window's cells inside the
 * input (times 1 / the whole window with count_include_pad). Both vectorize over the channels. */
void emit_pool2d_bwd(Emit *e, int id)
{
    Value *v = val_(e, id);
    bool max = v->op == OP_MAXPOOL2D_BWD;
    int dy = v->in[v->nin - 1];
    PoolShape p = kernel_pool_shape(&v->attr, v->shape, val_(e, dy)->shape);
    KArgs ka = {0};
    kargs_add(e, &ka, "dx", id, true);
    if (max) {
        kargs_add(e, &ka, "x", v->in[0], false);
        kargs_add(e, &ka, "y", v->in[1], false);
    }
    kargs_add(e, &ka, "dy", dy, false);
    kernel_begin(e, id, op_info[v->op].name, &ka);
    if (max && pool2d_tiles(&v->attr, v->shape)) {
        maxpool_bwd_tiled_(e, id, "x", "y", "dy", "dx", NULL);
        kernel_end(e);
        return;
    }
    if (e->gpu) {
        pool_bwd_gather_(e, &p, max);
        kernel_end(e);
        return;
    }
    kl_(e, 1, "for (int i = 0; i < %s; i++) dx[i] = 0;", c_count(e, v->shape));
    pool_open_(e, &p);
    kl_(e, 2, "const nnc_real *g = dy + o;");
    if (max) {
        kl_(e, 2, "const nnc_real *yo = y + o;");
        kl_(e, 2, "nnc_real done[%" PRId64 "];", p.C);
        kl_(e, 2, "for (int c = 0; c < %" PRId64 "; c++) done[c] = 0;", p.C);
        kl_(e, 2, "for (int h = h0; h < h1; h++)");
        kl_(e, 3, "for (int w = w0; w < w1; w++) {");
        kl_(e, 4, "const int64_t i = %s;", pool_x_index_(e, &p));
        kl_(e, 4, "for (int c = 0; c < %" PRId64 "; c++) {", p.C);
        kl_(e, 5, "const nnc_real hit = done[c] == 0 && x[i + c] == yo[c] ? 1 : 0;");
        kl_(e, 5, "dx[i + c] += hit * g[c];");
        kl_(e, 5, "done[c] += hit;");
        kl_(e, 4, "}");
        kl_(e, 3, "}");
    } else {
        pool_avg_inv_(e, &p);
        kl_(e, 2, "for (int h = h0; h < h1; h++)");
        kl_(e, 3, "for (int w = w0; w < w1; w++) {");
        kl_(e, 4, "nnc_real *dp = dx + %s;", pool_x_index_(e, &p));
        kl_(e, 4, "for (int c = 0; c < %" PRId64 "; c++) dp[c] += g[c] * inv;", p.C);
        kl_(e, 3, "}");
    }
    kl_(e, 1, "}");
    kernel_end(e);
}

/* ---- softmax ------------------------------------------------------------------------------------------------- */
/* softmax: exp(x - max) / sum; log_softmax: (x - max) - log(sum exp(x - max)), x - max first: x - (max +
 * log(sum)) rounds max + log(sum) at max's magnitude (10003.44 in f32 is off by 2.4e-4) */
void emit_softmax(Emit *e, int id)
{
    Value *v = val_(e, id);
    bool logsm = v->op == OP_LOG_SOFTMAX;
    char *outer;
    int64_t len, inner;
    around_axis_(e, v->shape, (int)v->attr.i[0], &outer, &len, &inner);
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "a", v->in[0], false);
    kernel_begin(e, id, op_info[v->op].name, &ka);
    /* one position across the axis (the usual last axis): no loop over it */
    int ind = inner > 1 ? 3 : 2;
    const char *at = inner > 1 ? " + i" : "", *k = times_(e, "k", inner);
    if (e->gpu) { /* one thread per row */
        gpu_grid_loop(e, shape_count(v->shape, e->opt->max_batch) / len, "t",
                      inner > 1 ? arena_printf(A_, "(%s) * %" PRId64, outer, inner) : outer, " {");
        if (inner > 1) kl_(e, 2, "const int o = t / %" PRId64 ", i = t %% %" PRId64 ";", inner, inner);
        else kl_(e, 2, "const int o = t;");
        ind = 2;
    } else {
        kl_(e, 1, "for (int o = 0; o < %s; o++)%s", outer, inner > 1 ? "" : " {");
        if (inner > 1) kl_(e, 2, "for (int i = 0; i < %" PRId64 "; i++) {", inner);
    }
    kl_(e, ind, "const nnc_real *x = a + o * %" PRId64 "%s;", len * inner, at);
    kl_(e, ind, "nnc_real *z = y + o * %" PRId64 "%s;", len * inner, at);
    kl_(e, ind, "nnc_real mx = x[0], sum = 0;");
    kl_(e, ind, "for (int k = 1; k < %" PRId64 "; k++) if (x[%s] > mx) mx = x[%s];", len, k, k);
    if (logsm) {
        kl_(e, ind, "for (int k = 0; k < %" PRId64 "; k++) sum += exp(x[%s] - mx);", len, k);
        kl_(e, ind, "const nnc_real ls = log(sum);");
        kl_(e, ind, "for (int k = 0; k < %" PRId64 "; k++) z[%s] = (x[%s] - mx) - ls;", len, k, k);
    } else {
        kl_(e, ind, "for (int k = 0; k < %" PRId64 "; k++) {", len);
        kl_(e, ind + 1, "z[%s] = exp(x[%s] - mx);", k, k);
        kl_(e, ind + 1, "sum += z[%s];", k);
        kl_(e, ind, "}");
        kl_(e, ind, "for (int k = 0; k < %" PRId64 "; k++) z[%s] /= sum;", len, k);
    }
    kl_(e, e->gpu ? 1 : ind - 1, "}");
    kernel_end(e);
}

/* ---- lstm --------------------------------------------------------------------------------------------------------- */
/* lstm_infer's gates of a block (emit_lanes.c): z = b + x_t W + h[t-1] R, each gate's sum in a named
 * accumulator while k runs over x_t, then over h; ctx: {u, F} */
static void lstm_infer_block_(Emit *e, int ind, const Lanes *b, void *ctx)
{
    const int64_t u = ((const int64_t *)ctx)[0], F = ((const int64_t *)ctx)[1];
    const char *fma = lanes_fma(e, b, "v", "p");
    kl_(e, ind, "{");
    kl_(e, ind + 1, "%s", lanes_decl(e, b, "acc", NULL, "bias"));
    kl_(e, ind + 1, "const nnc_real *p = %s;", lanes_offset(e, b, "w"));
    kl_(e, ind + 1, "for (int k = 0; k < %" PRId64 "; k++, p += %" PRId64 ") {", F, 4 * u);
    kl_(e, ind + 2, "const nnc_real v = xt[k];");
    kl_(e, ind + 2, "%s", fma);
    kl_(e, ind + 1, "}");
    kl_(e, ind + 1, "if (t > 0) {");
    kl_(e, ind + 2, "p = %s;", lanes_offset(e, b, "r"));
    kl_(e, ind + 2, "for (int k = 0; k < %" PRId64 "; k++, p += %" PRId64 ") {", u, 4 * u);
    kl_(e, ind + 3, "const nnc_real v = h[k - %" PRId64 "];", u);
    kl_(e, ind + 3, "%s", fma);
    kl_(e, ind + 2, "}");
    kl_(e, ind + 1, "}");
    for (int64_t l = 0; l < b->n; l++) kl_(e, ind + 1, "z[%s] = acc%" PRId64 ";", lanes_col(e, b, l), l);
    kl_(e, ind, "}");
}

/* lstm_infer (firmware: pass_lstm_infer): per sample, per step the gates z = b + x_t W + h[t-1] R into one
 * buffer of 4u floats, 8 gates at a time in named accumulators, then c = f c + i g and h = o tanh(c) (c in
 * a buffer of u floats; h[t-1] read back from the output) */
void emit_lstm_infer(Emit *e, int id)
{
    Value *v = val_(e, id);
    int64_t u = v->attr.i[0], T = v->shape.d[1], F = val_(e, v->in[0])->shape.d[2];
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "x", v->in[0], false);
    kargs_add(e, &ka, "w", v->in[1], false);
    kargs_add(e, &ka, "r", v->in[2], false);
    kargs_add(e, &ka, "bias", v->in[3], false);
    kernel_begin(e, id, "lstm_infer", &ka);
    kl_(e, 1, "nnc_real z[%" PRId64 "], c[%" PRId64 "];", 4 * u, u);
    kl_(e, 1, "for (int b = 0; b < %s; b++)", c_batch(e));
    kl_(e, 1, "for (int t = 0; t < %" PRId64 "; t++) {", T);
    kl_(e, 2, "const nnc_real *xt = x + ((int64_t)b * %" PRId64 " + t) * %" PRId64 ";", T, F);
    kl_(e, 2, "nnc_real *h = y + ((int64_t)b * %" PRId64 " + t) * %" PRId64 ";", T, u);
    int64_t dims[2] = {u, F};
    lanes_blocks(e, 2, "j0", 4 * u, lstm_infer_block_, dims);
    kl_(e, 2, "for (int j = 0; j < %" PRId64 "; j++) {", u);
    kl_(e, 3, "const nnc_real i = nnc_sigmoid(z[j]), f = nnc_sigmoid(z[%" PRId64 " + j]);", u);
    kl_(e, 3, "const nnc_real g = tanh(z[%" PRId64 " + j]), o = nnc_sigmoid(z[%" PRId64 " + j]);", 2 * u, 3 * u);
    kl_(e, 3, "c[j] = t > 0 ? f * c[j] + i * g : i * g;");
    kl_(e, 3, "h[j] = o * tanh(c[j]);");
    kl_(e, 2, "}");
    kl_(e, 1, "}");
    kernel_end(e);
}

/* S[b,t] = [i f g o | c | h]: z = xw[b,t] + h[t-1] R (one product per step for the whole batch, written
 * into the gate slots of S), then the gates, c = f c[t-1] + i g, h = o tanh(c) */
/* CUDA: the sequences of the batch are independent: one block per row b, its threads over the units; the
 * steps follow each other inside the block, a barrier after the recurrent product and after the cell */
static void lstm_seq_gpu_(Emit *e, int64_t u, int64_t T)
{
    e->cur_parallel = e->cur_coop = true;
    e->cur_blocks = e->opt->max_batch;
    kl_(e, 1, "for (int b = blockIdx.x; b < %s; b += gridDim.x)", c_batch(e));
    kl_(e, 1, "for (int t = 0; t < %" PRId64 "; t++) {", T);
    kl_(e, 2, "nnc_real *z = s + ((int64_t)b * %" PRId64 " + t) * %" PRId64 ";", T, 6 * u);
    kl_(e, 2, "const nnc_real *x = xw + ((int64_t)b * %" PRId64 " + t) * %" PRId64 ";", T, 4 * u);
    kl_(e, 2, "if (t > 0) /* z = h[t-1] R, h[t-1] at z - 6u + 5u */");
    kl_(e, 3, "for (int k = threadIdx.x; k < %" PRId64 "; k += blockDim.x) {", 4 * u);
    kl_(e, 4, "nnc_real acc = 0;");
    kl_(e, 4, "for (int q = 0; q < %" PRId64 "; q++) acc += z[q - %" PRId64 "] * r[q * %" PRId64 " + k];", u, u, 4 * u);
    kl_(e, 4, "z[k] = acc;");
    kl_(e, 3, "}");
    kl_(e, 2, "__syncthreads();");
    kl_(e, 2, "for (int j = threadIdx.x; j < %" PRId64 "; j += blockDim.x) {", u);
    kl_(e, 3, "const nnc_real i = nnc_sigmoid((t > 0 ? z[j] : 0) + x[j]);");
    kl_(e, 3, "const nnc_real f = nnc_sigmoid((t > 0 ? z[%" PRId64 " + j] : 0) + x[%" PRId64 " + j]);", u, u);
    kl_(e, 3, "const nnc_real g = tanh((t > 0 ? z[%" PRId64 " + j] : 0) + x[%" PRId64 " + j]);", 2 * u, 2 * u);
    kl_(e, 3, "const nnc_real o = nnc_sigmoid((t > 0 ? z[%" PRId64 " + j] : 0) + x[%" PRId64 " + j]);", 3 * u, 3 * u);
    kl_(e, 3, "const nnc_real c = t > 0 ? f * z[j - %" PRId64 "] + i * g : i * g;", 2 * u);
    kl_(e, 3, "z[j] = i, z[%" PRId64 " + j] = f, z[%" PRId64 " + j] = g, z[%" PRId64 " + j] = o;", u, 2 * u, 3 * u);
    kl_(e, 3, "z[%" PRId64 " + j] = c, z[%" PRId64 " + j] = o * tanh(c);", 4 * u, 5 * u);
    kl_(e, 2, "}");
    kl_(e, 2, "__syncthreads();");
    kl_(e, 1, "}");
}

/* CUDA: backward through time, one block per row b as the forward; the carried dh (slots 0..u of the row
 * before) is the product of the step's dz with R^T, by the block's threads after a barrier */
static void lstm_seq_bwd_gpu_(Emit *e, int64_t u, int64_t T)
{
    e->cur_parallel = e->cur_coop = true;
    e->cur_blocks = e->opt->max_batch;
    kl_(e, 1, "for (int b = blockIdx.x; b < %s; b += gridDim.x)", c_batch(e));
    kl_(e, 1, "for (int t = %" PRId64 "; t >= 0; t--) {", T - 1);
    kl_(e, 2, "const nnc_real later = t < %" PRId64 ";", T - 1);
    kl_(e, 2, "const int64_t row = (int64_t)b * %" PRId64 " + t;", T);
    kl_(e, 2, "const nnc_real *sr = s + row * %" PRId64 ", *dsr = ds + row * %" PRId64 ";", 6 * u, 6 * u);
    kl_(e, 2, "nnc_real *d = dz + row * %" PRId64 ";", 4 * u);
    kl_(e, 2, "for (int j = threadIdx.x; j < %" PRId64 "; j += blockDim.x) {", u);
    kl_(e, 3, "const nnc_real i = sr[j], f = sr[%" PRId64 " + j], g = sr[%" PRId64 " + j], o = sr[%" PRId64 " + j];", u, 2 * u, 3 * u);
    kl_(e, 3, "const nnc_real tc = tanh(sr[%" PRId64 " + j]);", 4 * u);
    kl_(e, 3, "const nnc_real cp = t > 0 ? sr[j - %" PRId64 "] : 0;", 2 * u);
    kl_(e, 3, "const nnc_real dh = dsr[%" PRId64 " + j] + (later ? d[j] : 0);", 5 * u);
    kl_(e, 3, "const nnc_real dc = dsr[%" PRId64 " + j] + (later ? d[%" PRId64 " + j] : 0) + dh * o * (1 - tc * tc);", 4 * u, u);
    kl_(e, 3, "d[j] = dc * g * (i * (1 - i));");
    kl_(e, 3, "d[%" PRId64 " + j] = dc * cp * (f * (1 - f));", u);
    kl_(e, 3, "d[%" PRId64 " + j] = dc * i * (1 - g * g);", 2 * u);
    kl_(e, 3, "d[%" PRId64 " + j] = dh * tc * (o * (1 - o));", 3 * u);
    kl_(e, 3, "if (t > 0) d[%" PRId64 " + j] = dc * f;", u - 4 * u);
    kl_(e, 2, "}");
    kl_(e, 2, "__syncthreads();");
    kl_(e, 2, "if (t > 0) /* dh of the step before = dz[t] R^T, into its slots 0..u */");
    kl_(e, 3, "for (int j = threadIdx.x; j < %" PRId64 "; j += blockDim.x) {", u);
    kl_(e, 4, "nnc_real acc = 0;");
    kl_(e, 4, "for (int k = 0; k < %" PRId64 "; k++) acc += d[k] * r[j * %" PRId64 " + k];", 4 * u, 4 * u);
    kl_(e, 4, "d[j - %" PRId64 "] = acc;", 4 * u);
    kl_(e, 3, "}");
    kl_(e, 2, "__syncthreads();");
    kl_(e, 1, "}");
}

void emit_lstm_seq(Emit *e, int id)
{
    Value *v = val_(e, id);
    int64_t u = v->attr.i[0], T = v->shape.d[1];
    KArgs ka = {0};
    kargs_add(e, &ka, "s", id, true);
    kargs_add(e, &ka, "xw", v->in[0], false);
    kargs_add(e, &ka, "r", v->in[1], false);
    kernel_begin(e, id, "lstm_seq", &ka);
    if (e->gpu) {
        lstm_seq_gpu_(e, u, T);
        kernel_end(e);
        return;
    }
    kl_(e, 1, "for (int t = 0; t < %" PRId64 "; t++) {", T);
    kl_(e, 2, "nnc_real *st = s + t * %" PRId64 ";", 6 * u);
    kl_(e, 2, "if (t > 0) {");
    Gemm g = {.s = {.m = extent_dim(DIM_B), .n = extent_fixed(4 * u), .k = extent_fixed(u)}, .b = "r", .c = "st"};
    g.a = arena_printf(A_, "(st - %" PRId64 ")", u); /* h[t-1] sits at st - 6u + 5u */
    g.s.lda = g.s.ldc = extent_fixed(T * 6 * u);
    g.s.work = at_max_(e, DIM_B) * 4 * u * u;
    gemm_emit(e, 3, &g);
    kl_(e, 2, "}");
    kl_(e, 2, "for (int b = 0; b < %s; b++) {", c_batch(e));
    kl_(e, 3, "nnc_real *z = st + (int64_t)b * %" PRId64 ";", T * 6 * u);
    kl_(e, 3, "const nnc_real *x = xw + ((int64_t)b * %" PRId64 " + t) * %" PRId64 ";", T, 4 * u);
    kl_(e, 3, "for (int j = 0; j < %" PRId64 "; j++) {", u);
    kl_(e, 4, "const nnc_real i = nnc_sigmoid((t > 0 ? z[j] : 0) + x[j]);");
    kl_(e, 4, "const nnc_real f = nnc_sigmoid((t > 0 ? z[%" PRId64 " + j] : 0) + x[%" PRId64 " + j]);", u, u);
    kl_(e, 4, "const nnc_real g = tanh((t > 0 ? z[%" PRId64 " + j] : 0) + x[%" PRId64 " + j]);", 2 * u, 2 * u);
    kl_(e, 4, "const nnc_real o = nnc_sigmoid((t > 0 ? z[%" PRId64 " + j] : 0) + x[%" PRId64 " + j]);", 3 * u, 3 * u);
    kl_(e, 4, "const nnc_real c = t > 0 ? f * z[j - %" PRId64 "] + i * g : i * g;", 2 * u);
    kl_(e, 4, "z[j] = i, z[%" PRId64 " + j] = f, z[%" PRId64 " + j] = g, z[%" PRId64 " + j] = o;", u, 2 * u, 3 * u);
    kl_(e, 4, "z[%" PRId64 " + j] = c, z[%" PRId64 " + j] = o * tanh(c);", 4 * u, 5 * u);
    kl_(e, 3, "}");
    kl_(e, 2, "}");
    kl_(e, 1, "}");
    kernel_end(e);
}

/* backward through time: dz[b,t] (the gradient of xw) from dS and the step after; the scratch of step t-1's
 * row carries dh = dz[t] R^T (slots 0..u) and dc f[t] (slots u..2u) until step t-1 reads them */
void emit_lstm_seq_bwd(Emit *e, int id)
{
    Value *v = val_(e, id);
    int64_t u = v->attr.i[0], T = v->shape.d[1];
    KArgs ka = {0};
    kargs_add(e, &ka, "dz", id, true);
    kargs_add(e, &ka, "s", v->in[0], false);
    kargs_add(e, &ka, "r", v->in[1], false);
    kargs_add(e, &ka, "ds", v->in[2], false);
    kernel_begin(e, id, "lstm_seq_bwd", &ka);
    if (e->gpu) {
        lstm_seq_bwd_gpu_(e, u, T);
        kernel_end(e);
        return;
    }
    kl_(e, 1, "for (int t = %" PRId64 "; t >= 0; t--) {", T - 1);
    kl_(e, 2, "const nnc_real later = t < %" PRId64 ";", T - 1);
    kl_(e, 2, "for (int b = 0; b < %s; b++) {", c_batch(e));
    kl_(e, 3, "const int64_t row = (int64_t)b * %" PRId64 " + t;", T);
    kl_(e, 3, "const nnc_real *sr = s + row * %" PRId64 ", *dsr = ds + row * %" PRId64 ";", 6 * u, 6 * u);
    kl_(e, 3, "nnc_real *d = dz + row * %" PRId64 ";", 4 * u);
    kl_(e, 3, "for (int j = 0; j < %" PRId64 "; j++) {", u);
    kl_(e, 4, "const nnc_real i = sr[j], f = sr[%" PRId64 " + j], g = sr[%" PRId64 " + j], o = sr[%" PRId64 " + j];", u, 2 * u, 3 * u);
    kl_(e, 4, "const nnc_real tc = tanh(sr[%" PRId64 " + j]);", 4 * u);
    kl_(e, 4, "const nnc_real cp = t > 0 ? sr[j - %" PRId64 "] : 0;", 2 * u);
    kl_(e, 4, "const nnc_real dh = dsr[%" PRId64 " + j] + (later ? d[j] : 0);", 5 * u);
    kl_(e, 4, "const nnc_real dc = dsr[%" PRId64 " + j] + (later ? d[%" PRId64 " + j] : 0) + dh * o * (1 - tc * tc);", 4 * u, u);
    kl_(e, 4, "d[j] = dc * g * (i * (1 - i));");
    kl_(e, 4, "d[%" PRId64 " + j] = dc * cp * (f * (1 - f));", u);
    kl_(e, 4, "d[%" PRId64 " + j] = dc * i * (1 - g * g);", 2 * u);
    kl_(e, 4, "d[%" PRId64 " + j] = dh * tc * (o * (1 - o));", 3 * u);
    kl_(e, 4, "if (t > 0) d[%" PRId64 " + j] = dc * f;", u - 4 * u);
    kl_(e, 3, "}");
    kl_(e, 2, "}");
    kl_(e, 2, "if (t > 0) {");
    Gemm g = {.s = {.m = extent_dim(DIM_B), .n = extent_fixed(u), .k = extent_fixed(4 * u), .tb = 1},
              .a = arena_printf(A_, "(dz + t * %" PRId64 ")", 4 * u), .b = "r",
              .c = arena_printf(A_, "(dz + (t - 1) * %" PRId64 ")", 4 * u)};
    g.s.lda = g.s.ldc = extent_fixed(T * 4 * u);
    g.s.work = at_max_(e, DIM_B) * 4 * u * u;
    gemm_emit(e, 3, &g);
    kl_(e, 2, "}");
    kl_(e, 1, "}");
    kernel_end(e);
}

/* assigns are written by the entry point itself (emit_c.c), after every kernel */
void emit_assign(Emit *e, int id) { emit_none(e, id); }

/* ---- fused kernels (pass_fuse) ------------------------------------------------------------------------ */

/* a fused group (kernel.h) as the C printer writes it */
typedef struct Fused {
    FusedKernel k;
    const char *ext_name[MAX_KARGS]; /* the C parameter of each external */
    LoopNest d;
    /* row mode: the tail applied inside the anchor's loops, to result `aval` at (row, col) */
    bool row_mode;
    RowRead pattern[MAX_KARGS]; /* how each external is indexed from (row, col) */
    int64_t ncols;
    const char *row, *col, *aval;
} Fused;

/* the parameter names of the values a fused kernel reads: names no kernel uses for a local variable */
static void fused_names_(Fused *f)
{
    static const char *names[] = {"in0", "in1", "in2", "in3", "in4", "in5", "in6", "in7", "in8", "in9", "in10",
                                  "in11", "in12"};
    for (int k = 0; k < f->k.next; k++) f->ext_name[k] = names[k];
}

/* external k indexed from (row, col) in row mode */
static char *row_index_(Emit *e, Fused *f, int k)
{
    switch (f->pattern[k]) {
    case ROW_FULL: return c_add(e, times_(e, f->row, f->ncols), f->col);
    case ROW_LAST: return (char *)f->col;
    default: return "0";
    }
}

/* the C text of an expression inside the loop (index strings from f->d, or row mode); an operand that is
 * itself an inline op is parenthesized where it is substituted into another inline op (a helper call's
 * arguments need none) */
static char *expr_c_(Emit *e, Fused *f, const KExpr *x, int out_slot)
{
    switch (x->kind) {
    case KEXPR_ANCHOR: return f->row_mode ? (char *)f->aval : arena_printf(A_, "y[%s]", dim_index_(e, &f->d, out_slot));
    case KEXPR_LITERAL: return c_literal(e, x->value);
    case KEXPR_LOAD:
        return arena_printf(A_, "%s[%s]", f->ext_name[x->operand],
                            f->row_mode ? row_index_(e, f, x->operand) : dim_index_(e, &f->d, x->operand));
    case KEXPR_OP: break;
    }
    char *ops[4];
    bool inline_use = !op_info[val_(e, x->value)->op].scalar_fn;
    for (int k = 0; k < x->nargs; k++) {
        const KExpr *a = x->arg[k];
        char *sub = expr_c_(e, f, a, out_slot);
        bool wrap = inline_use && a->kind == KEXPR_OP && !op_info[val_(e, a->value)->op].scalar_fn;
        ops[k] = wrap ? arena_printf(A_, "(%s)", sub) : sub;
    }
    return c_scalar(e, x->value, ops);
}

/* the scalar expression of value id inside the loop */
static char *fused_expr_(Emit *e, Fused *f, int id, int out_slot)
{
    return expr_c_(e, f, kernel_fused_expr(e->g, e->p, &f->k, id, A_), out_slot);
}

static const char *fused_name_(Emit *e, const Fused *f)
{
    StrBuf b = {0};
    for (int m = 0; m < f->k.nmembers && m < 4; m++) sb_printf(&b, "%s%s", m ? "_" : "", op_info[val_(e, f->k.members[m])->op].name);
    if (f->k.nmembers > 4) sb_puts(&b, "_etc");
    char *s = arena_strdup(A_, b.s);
    sb_free(&b);
    return s;
}

static char *epilogue_expr_(Emit *e, void *ctx, const char *row, const char *col, const char *val)
{
    Fused *f = ctx;
    f->row_mode = true;
    f->row = row, f->col = col, f->aval = val;
    char *x = fused_expr_(e, f, f->k.root, -1);
    f->row_mode = false;
    return x;
}

/* the anchor's loops, with the tail inside them when every external can be indexed by (row, col);
 * returns false when the tail still has to be applied */
/* whether the tail can run inside the anchor's loops, every external indexed by (row, col) */
static bool fused_rows_(Emit *e, Fused *f)
{
    Value *root = val_(e, f->k.root), *av = val_(e, f->k.anchor);
    bool rows = root->shape.rank >= 1;
    /* a vector on the right of a product ([..., K] @ [K]) drops the product's column axis: the result's
     * last axis is not the GEMM's (row, col), so the tail runs after the product */
    if (av->op == OP_MATMUL && val_(e, av->in[1])->shape.rank == 1) rows = false;
    for (int k = 0; k < f->k.next && rows; k++) rows = (f->pattern[k] = shape_row_read(val_(e, f->k.ext[k])->shape, root->shape)) != ROW_OTHER;
    f->ncols = root->shape.rank ? root->shape.d[root->shape.rank - 1] : 1;
    return rows;
}

/* CUDA: a large product with a tail: cuBLAS writes the product into the root's buffer, then a kernel applies
 * the tail there, element by element; when the buffer is none of the values the tail or the product reads */
static bool gpu_blas_fused_(Emit *e, Fused *f)
{
    Value *root = val_(e, f->k.root), *av = val_(e, f->k.anchor);
    if (av->op != OP_MATMUL || f->k.nroots != 1 || !gpu_blas_fits_(e, f->k.anchor) || !fused_rows_(e, f)) return false;
    if (root->shape.rank != 2 || !shape_eq(root->shape, av->shape)) return false;
    for (int k = 0; k < f->k.next; k++)
        if (plan_same_memory(e->p, f->k.root, f->k.ext[k])) return false;
    for (int k = 0; k < av->nin; k++)
        if (plan_same_memory(e->p, f->k.root, av->in[k])) return false;
    gpu_blas_call_(e, f->k.anchor, c_buffer(e, f->k.root));
    KArgs ka = {0};
    kargs_add(e, &ka, "y", f->k.root, true);
    for (int k = 0; k < f->k.next; k++) kargs_add(e, &ka, f->ext_name[k], f->k.ext[k], false);
    kernel_begin(e, f->k.root, fused_name_(e, f), &ka);
    gpu_grid_loop(e, shape_count(root->shape, e->opt->max_batch), "t", c_count(e, root->shape), " {");
    kl_(e, 2, "const int i = t / %" PRId64 ", j = t %% %" PRId64 ";", f->ncols, f->ncols);
    kl_(e, 2, "(void)i, (void)j; /* the tail's row and column, where it reads a bias or a row */");
    kl_(e, 2, "y[t] = %s;", epilogue_expr_(e, f, "i", "j", "y[t]"));
    kl_(e, 1, "}");
    kernel_end(e);
    return true;
}

/* whether matmul id applies an epilogue inside its loops (a 2-D product; not a fold, not a batch of products) */
static bool matmul_takes_tail_(Emit *e, int id)
{
    Value *v = val_(e, id);
    if (v->attr.i[2]) return false;
    Shape sa = val_(e, v->in[0])->shape, sb = val_(e, v->in[1])->shape;
    int ta = (int)v->attr.i[0];
    if (sa.rank == 1) ta = 0;
    if (sb.rank == 1) sb.rank = 2;
    if (sb.rank == 2 && !ta) return true;
    return v->shape.rank - (sa.rank > 1) - (val_(e, v->in[1])->shape.rank > 1) == 0;
}

static bool anchor_body_(Emit *e, Fused *f)
{
    Value *av = val_(e, f->k.anchor);
    bool rows = fused_rows_(e, f);
    Epilogue epi = {.expr = epilogue_expr_, .ctx = f};
    const Epilogue *ep = rows ? &epi : NULL;
    /* CUDA: a tail after the anchor's loops reads what every thread wrote: the kernel runs on one thread */
    if (!rows || (av->op == OP_MATMUL && !matmul_takes_tail_(e, f->k.anchor))) e->cur_serial = true;
    e->gemm_par = ep != NULL; /* CUDA: a product may spread over threads only when no tail runs after it */
    if (av->op == OP_CONV2D) return conv2d_body_(e, f->k.anchor, "x", "w", "y", ep);
    if (av->op == OP_MAXPOOL2D_BWD) {
        maxpool_bwd_tiled_(e, f->k.anchor, "px", "py", "pg", "y", ep);
        return ep != NULL;
    }
    return matmul_body_(e, f->k.anchor, "a", "b", "y", ep);
}

static void emit_fused_(Emit *e, Fused *f)
{
    Value *root = val_(e, f->k.root);
    fused_names_(f);
    if (e->gpu && f->k.anchor >= 0 && gpu_blas_fused_(e, f)) return;
    KArgs ka = {0};
    for (int i = 0; i < f->k.nroots; i++)
        kargs_add(e, &ka, f->k.nroots == 1 ? "y" : arena_printf(A_, "y%d", i), f->k.roots[i], true);
    const char *an[3] = {"a", "b", NULL};
    if (f->k.anchor >= 0) {
        Value *av = val_(e, f->k.anchor);
        if (av->op == OP_CONV2D) an[0] = "x", an[1] = "w";
        if (av->op == OP_MAXPOOL2D_BWD) an[0] = "px", an[1] = "py", an[2] = "pg";
        for (int k = 0; k < av->nin; k++) kargs_add(e, &ka, an[k], av->in[k], false);
    }
    Shape loop = f->k.reduce ? val_(e, root->in[0])->shape : root->shape, shapes[MAX_KARGS + 1];
    for (int k = 0; k < f->k.next; k++) {
        shapes[k] = val_(e, f->k.ext[k])->shape;
        /* updated in place (p = p - lr * g): read through y, so that every pointer can be restrict */
        if (!f->k.reduce && f->k.anchor < 0 && shape_eq(shapes[k], root->shape) && plan_identical(e->p, f->k.ext[k], f->k.root))
            f->ext_name[k] = "y";
        else
            kargs_add(e, &ka, f->ext_name[k], f->k.ext[k], false);
    }
    Shape out = root->shape;
    if (f->k.reduce) {
        out = loop;
        for (int i = 0; i < loop.rank; i++)
            if ((uint64_t)root->attr.i[0] >> i & 1) out.d[i] = 1;
    }
    shapes[f->k.next] = out;
    f->d = loop_nest_make(loop, shapes, f->k.next + 1);
    kernel_begin(e, f->k.root, fused_name_(e, f), &ka);
    if (f->k.anchor >= 0 && anchor_body_(e, f)) {
        kernel_end(e);
        return;
    }
    if (f->k.reduce) {
        const char *y[MAX_OUTS];
        char *x[MAX_OUTS];
        bool par = gpu_can_par(e);
        for (int i = 0; i < f->k.nroots; i++) {
            y[i] = f->k.nroots == 1 ? "y" : arena_printf(A_, "y%d", i);
            if (!par) reduce_open_(e, f->k.roots[i], loop, y[i]);
            x[i] = fused_expr_(e, f, val_(e, f->k.roots[i])->in[0], f->k.next);
        }
        if (par) {
            gpu_reduce_(e, &f->d, f->k.next, root->op, f->k.nroots, y, x, f->k.roots, loop);
            kernel_end(e);
            return;
        }
        reduce_loops_(e, &f->d, f->k.next, root->op, f->k.nroots, y, x);
        for (int i = 0; i < f->k.nroots; i++) reduce_close_(e, f->k.roots[i], loop, y[i]);
    } else {
        int ind = par_loops_open_(e, &f->d);
        kl_(e, ind, "y[%s] = %s;", dim_index_(e, &f->d, f->k.next), fused_expr_(e, f, f->k.root, f->k.next));
    }
    kernel_end(e);
}

/* ---- a convolution computed inside the pooling that reads it (pass_fuse, FusionLimits.conv_into_pool) --
 * For each pooled pixel, each cell of its window is one convolution output: its filters accumulate in
 * acc[F] as conv2d's one-pixel loop does, pass through the convolution's tail (bias, activation) and go
 * into the window's max or sum at once. The convolution's map is never stored. */
static bool pool_of_conv_(Emit *e, int id)
{
    Value *v = val_(e, id);
    return (v->op == OP_MAXPOOL2D || v->op == OP_AVGPOOL2D) && val_(e, v->in[0])->group == id;
}

/* a convolution inside a pooling, as its kernel's blocks of filters see it */
typedef struct PoolConv {
    Fused *f;
    bool tail, max, pad;
    ConvShape c;
    PoolShape p;
} PoolConv;

/* the window's convolution outputs for a block of filters (emit_lanes.c): each filter's sum in a named
 * accumulator, then its tail, then the max or the sum */
static void pool_conv_block_(Emit *e, int ind, const Lanes *b, void *ctx)
{
    PoolConv *pc = ctx;
    const ConvShape *c = &pc->c;
    const PoolShape *p = &pc->p;
    kl_(e, ind, "{");
    kl_(e, ind + 1, "%s", lanes_decl(e, b, "m", pc->max ? "-INFINITY" : "0", NULL));
    kl_(e, ind + 1, "for (int ch = %s; ch < %s; ch++)", times_(e, "oh", p->sh), plus_(e, times_(e, "oh", p->sh), p->KH));
    kl_(e, ind + 1, "for (int cw = %s; cw < %s; cw++) {", times_(e, "ow", p->sw), plus_(e, times_(e, "ow", p->sw), p->KW));
    kl_(e, ind + 2, "%s", lanes_decl(e, b, "acc", "0", NULL));
    kl_(e, ind + 2, "for (int kh = 0; kh < %" PRId64 "; kh++) {", c->KH);
    kl_(e, ind + 3, "const int ih = %s;", conv_coord_(e, "ch", c->sh, c->pt, conv_tap_(e, "kh", c->dh)));
    if (pc->pad) kl_(e, ind + 3, "if (ih < 0 || ih >= %" PRId64 ") continue;", c->H);
    kl_(e, ind + 3, "for (int kw = 0; kw < %" PRId64 "; kw++) {", c->KW);
    kl_(e, ind + 4, "const int iw = %s;", conv_coord_(e, "cw", c->sw, c->pl, conv_tap_(e, "kw", c->dw)));
    if (pc->pad) kl_(e, ind + 4, "if (iw < 0 || iw >= %" PRId64 ") continue;", c->W);
    kl_(e, ind + 4, "const nnc_real *xp = x + %s;", times_(e, arena_printf(A_, "(((int64_t)b * %" PRId64 " + ih) * %" PRId64 " + iw)", c->H, c->W), c->C));
    kl_(e, ind + 4, "const nnc_real *wk = %s;",
        lanes_offset(e, b, arena_printf(A_, "w + ((int64_t)kh * %" PRId64 " + kw) * %" PRId64, c->KW, c->C * c->F)));
    const char *fma = lanes_fma(e, b, "xv", "wk");
    if (c->C == 1) {
        kl_(e, ind + 4, "const nnc_real xv = xp[0];");
        kl_(e, ind + 4, "%s", fma);
    } else {
        kl_(e, ind + 4, "for (int ci = 0; ci < %" PRId64 "; ci++, wk += %" PRId64 ") {", c->C, c->F);
        kl_(e, ind + 5, "const nnc_real xv = xp[ci];");
        kl_(e, ind + 5, "%s", fma);
        kl_(e, ind + 4, "}");
    }
    kl_(e, ind + 3, "}");
    kl_(e, ind + 2, "}");
    for (int64_t l = 0; l < b->n; l++) {
        const char *acc = arena_printf(A_, "acc%" PRId64, l), *val = acc;
        if (pc->tail) { /* the row is never read: no external has the map's shape */
            Fused *f = pc->f;
            f->row_mode = true;
            f->row = "0", f->col = lanes_col(e, b, l), f->aval = acc;
            val = fused_expr_(e, f, f->k.root, -1);
        }
        if (pc->max)
            kl_(e, ind + 2, "{ const nnc_real v = %s; if (v > m%" PRId64 ") m%" PRId64 " = v; }", val, l, l);
        else
            kl_(e, ind + 2, "m%" PRId64 " += %s;", l, val);
    }
    kl_(e, ind + 1, "}");
    for (int64_t l = 0; l < b->n; l++) {
        if (pc->max) kl_(e, ind + 1, "yo[%s] = m%" PRId64 ";", lanes_col(e, b, l), l);
        else kl_(e, ind + 1, "yo[%s] = m%" PRId64 " * ((nnc_real)1 / (nnc_real)%" PRId64 ");", lanes_col(e, b, l), l, p->KH * p->KW);
    }
    kl_(e, ind, "}");
}

static void emit_pool_conv_(Emit *e, int id)
{
    Value *pv = val_(e, id);
    bool max = pv->op == OP_MAXPOOL2D;
    int xid = pv->in[0];
    Fused f;
    memset(&f, 0, sizeof f);
    bool tail = kernel_fused_make(e->g, e->p, xid, e->kernel_lo ? e->kernel_lo[id] : 0, &f.k);
    int cid = tail ? f.k.anchor : xid;
    Value *cv = val_(e, cid);
    ConvShape c = kernel_conv_shape(&cv->attr, val_(e, cv->in[0])->shape, val_(e, cv->in[1])->shape, cv->shape);
    PoolShape p = kernel_pool_shape(&pv->attr, cv->shape, pv->shape);
    NNC_ASSERT(c.G == 1); /* pass_fuse: no groups */
    fused_names_(&f);
    KArgs ka = {0};
    kargs_add(e, &ka, "y", id, true);
    kargs_add(e, &ka, "x", cv->in[0], false);
    kargs_add(e, &ka, "w", cv->in[1], false);
    for (int k = 0; k < f.k.next; k++) {
        kargs_add(e, &ka, f.ext_name[k], f.k.ext[k], false);
        f.pattern[k] = shape_row_read(val_(e, f.k.ext[k])->shape, val_(e, xid)->shape);
        NNC_ASSERT(f.pattern[k] != ROW_FULL && f.pattern[k] != ROW_OTHER); /* pass_fuse: per filter, or scalars */
    }
    f.ncols = c.F;
    kernel_begin(e, id, max ? "conv2d_maxpool2d" : "conv2d_avgpool2d", &ka);
    bool pad = c.pt || c.pl || cv->attr.i[6] || cv->attr.i[7];
    kl_(e, 1, "for (int b = 0; b < %s; b++)", c_batch(e));
    kl_(e, 1, "for (int oh = 0; oh < %" PRId64 "; oh++)", p.HO);
    kl_(e, 1, "for (int ow = 0; ow < %" PRId64 "; ow++) {", p.WO);
    kl_(e, 2, "nnc_real *yo = y + (((int64_t)b * %" PRId64 " + oh) * %" PRId64 " + ow) * %" PRId64 ";", p.HO, p.WO, c.F);
    PoolConv pc = {.f = &f, .tail = tail, .max = max, .pad = pad, .c = c, .p = p};
    lanes_blocks(e, 2, "f0", c.F, pool_conv_block_, &pc);
    kl_(e, 1, "}");
    kernel_end(e);
}

/* the values computed in root's kernel (kernel.h) */
static bool fused_members_(Emit *e, int root, Fused *f)
{
    memset(f, 0, sizeof *f);
    return kernel_fused_make(e->g, e->p, root, e->kernel_lo ? e->kernel_lo[root] : 0, &f->k);
}

const EmitRule emit_rules[OP_COUNT] = {
#define OP(id, name, arity, flags, shape, emit, grad, flops, scalar) [OP_##id] = emit,
#include "ops.def"
#undef OP
};

void emit_node(Emit *e, int id)
{
    if (e->g->v[id].with >= 0) return; /* computed in the loops of a later reduction */
    Fused f;
    if (pool_of_conv_(e, id))
        emit_pool_conv_(e, id);
    else if (fused_members_(e, id, &f))
        emit_fused_(e, &f);
    else if (!entry_increment(e, id))
        emit_rules[e->g->v[id].op](e, id);
}
