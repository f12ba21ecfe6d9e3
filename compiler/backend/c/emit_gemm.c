/* emit_gemm.c: every matrix product the C emitter writes goes through here.
 *
 *   C[M,N] = op(A) op(B), op a transpose when asked; A, B, C dense row-major.
 *
 * Four versions, chosen per call:
 *   - naive: the textbook triple loop, obviously right; -O0 uses it, so comparing -O0 with -O2 output is
 *     the oracle test of the others;
 *   - loops: written for the compile-time shapes and for the compiler's vectorizer (the innermost loop
 *     runs along contiguous memory; a transposed B is read with eight partial sums);
 *   - tiles: C in register blocks of TILE_M x TILE_N, for rows of C at least TILE_N wide when k is
 *     short (at most TILED_MAX_K: a first layer; BLAS's packing and scaling of C cost more than the
 *     product) or C is small (A^T B into at most TILED_MAX_C elements: a weight gradient, k the batch);
 *     A^T B into a narrow, tall C runs as tiles of C^T = B^T A stored transposed;
 *   - BLAS: cblas_sgemm when M*N*K reaches BLAS_MIN_WORK, where its blocking pays for the call (for a
 *     size that depends on the batch, tested at run time: a batch-1 predict runs the loops). The
 *     generated file keeps the loops too, behind `#if NNC_USE_BLAS`, so defining NNC_NO_BLAS (or
 *     building in double) needs no BLAS at all; there, wide products run in tiles.
 * docs/kernels.md has the measurements behind each threshold.
 */
#include "emit.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum { TILED_MAX_C = 64 * 64, TILED_MAX_K = 128 };

#define A_ (e->m->arena)

static void gl_(Emit *e, int indent, const char *fmt, ...) NNC_PRINTF(3, 4);
static void gl_(Emit *e, int indent, const char *fmt, ...)
{
    sb_indent(&e->kernels, indent);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&e->kernels, fmt, ap);
    va_end(ap);
    sb_putc(&e->kernels, '\n');
}

/* a size known at compile time, else 0 */
static int64_t num_(Extent x) { return x.batch ? 0 : x.per; }

/* "(n * 4)" but "50" */
static const char *p_(Emit *e, const char *x) { return strchr(x, ' ') ? arena_printf(A_, "(%s)", x) : x; }

/* row strides: given, or the stored row length */
static bool given_(Extent x) { return x.per != 0; }
static Extent lda_x_(const Gemm *g) { return given_(g->s.lda) ? g->s.lda : g->s.ta ? g->s.m : g->s.k; }
static Extent ldb_x_(const Gemm *g) { return given_(g->s.ldb) ? g->s.ldb : g->s.tb ? g->s.k : g->s.n; }
static Extent ldc_x_(const Gemm *g) { return given_(g->s.ldc) ? g->s.ldc : g->s.n; }
static const char *lda_(Emit *e, const Gemm *g) { return p_(e, c_extent(e, lda_x_(g))); }
static const char *ldb_(Emit *e, const Gemm *g) { return p_(e, c_extent(e, ldb_x_(g))); }
static const char *ldc_(Emit *e, const Gemm *g) { return p_(e, c_extent(e, ldc_x_(g))); }

/* a size of exactly one (a single row, column or term): no loop over it */
static bool one_(Extent x) { return !x.batch && x.per == 1; }

/* the flat index of (row, col) with row stride ld: "i * 50 + k"; "i + k" for a stride of 1, "i * 50" in
 * column 0, "k" in row 0 */
static const char *rc_(Emit *e, const char *row, const char *ld, const char *col)
{
    const char *x = str_eq(row, "0") ? col : c_add(e, str_eq(ld, "1") ? row : arena_printf(A_, "%s * %s", row, ld), col);
    size_t n = strlen(x);
    if (x[0] == '(' && x[n - 1] == ')' && !strchr(x + 1, '(')) return arena_printf(A_, "%.*s", (int)n - 2, x + 1); /* b[k8 + l] */
    return x;
}

static const char *a_at_(Emit *e, const Gemm *g, const char *i, const char *k)
{
    return g->s.ta ? arena_printf(A_, "%s[%s]", g->a, rc_(e, k, lda_(e, g), i))
                   : arena_printf(A_, "%s[%s]", g->a, rc_(e, i, lda_(e, g), k));
}

static const char *b_at_(Emit *e, const Gemm *g, const char *k, const char *j)
{
    return g->s.tb ? arena_printf(A_, "%s[%s]", g->b, rc_(e, j, ldb_(e, g), k))
                   : arena_printf(A_, "%s[%s]", g->b, rc_(e, k, ldb_(e, g), j));
}

/* the value stored for result `val` at (i, j): the epilogue's expression, or val */
static const char *out_(Emit *e, const Gemm *g, const char *val) { return g->epi ? g->epi->expr(e, g->epi->ctx, "i", "j", val) : val; }
/* the same at (i, j), either of which may be the constant 0 of a one-row or one-column product */
static const char *out_at_(Emit *e, const Gemm *g, const char *i, const char *j, const char *val)
{
    return g->epi ? g->epi->expr(e, g->epi->ctx, i, j, val) : val;
}

/* s = the dot product of row i of A and column j of B: a sum over k, the single product when K is 1 */
static void dot_(Emit *e, int ind, const Gemm *g, const char *i, const char *j)
{
    if (one_(g->s.k)) {
        gl_(e, ind, "const nnc_real s = %s * %s;", a_at_(e, g, i, "0"), b_at_(e, g, "0", j));
        return;
    }
    gl_(e, ind, "nnc_real s = 0;");
    gl_(e, ind, "for (int k = 0; k < %s; k++)", c_extent(e, g->s.k));
    gl_(e, ind + 1, "s += %s * %s;", a_at_(e, g, i, "k"), b_at_(e, g, "k", j));
}

/* a single row or column: no loop over it, its index the constant 0 */
static void gemm_naive_(Emit *e, int ind, const Gemm *g)
{
    bool one_i = one_(g->s.m), one_j = one_(g->s.n);
    const char *i = one_i ? "0" : "i", *j = one_j ? "0" : "j";
    int in = ind;
    if (!one_i) gl_(e, in++, "for (int i = 0; i < %s; i++)%s", c_extent(e, g->s.m), one_j ? " {" : "");
    if (!one_j) gl_(e, in++, "for (int j = 0; j < %s; j++) {", c_extent(e, g->s.n));
    dot_(e, in, g, i, j);
    gl_(e, in, "%s[%s] = %s;", g->c, rc_(e, i, ldc_(e, g), j), out_at_(e, g, i, j, "s"));
    if (!one_i || !one_j) gl_(e, in - 1, "}");
}

/* C row by row: each row of C accumulates a[i,k] times row k of B (contiguous, vectorizes) */
static void gemm_rows_(Emit *e, int ind, const Gemm *g)
{
    gl_(e, ind, "for (int i = 0; i < %s; i++) {", c_extent(e, g->s.m));
    gl_(e, ind + 1, "nnc_real *crow = %s + i * %s;", g->c, ldc_(e, g));
    gl_(e, ind + 1, "for (int j = 0; j < %s; j++) crow[j] = 0;", c_extent(e, g->s.n));
    gl_(e, ind + 1, "for (int k = 0; k < %s; k++) {", c_extent(e, g->s.k));
    gl_(e, ind + 2, "const nnc_real aik = %s;", a_at_(e, g, "i", "k"));
    gl_(e, ind + 2, "const nnc_real *brow = %s + k * %s;", g->b, ldb_(e, g));
    gl_(e, ind + 2, "for (int j = 0; j < %s; j++) crow[j] += aik * brow[j];", c_extent(e, g->s.n));
    gl_(e, ind + 1, "}");
    if (g->epi) gl_(e, ind + 1, "for (int j = 0; j < %s; j++) crow[j] = %s;", c_extent(e, g->s.n), out_(e, g, "crow[j]"));
    gl_(e, ind, "}");
}

/* Each C[i,j] a dot product along k, with eight partial sums so that it vectorizes (or at least runs
 * eight independent chains) without reassociation flags: for a transposed B (both rows contiguous) and
 * for narrow outputs (a few columns), where a row of C is too short to vectorize along */
static void gemm_dots_(Emit *e, int ind, const Gemm *g)
{
    bool one = one_(g->s.n); /* a single column (a matrix-vector product): no loop over it */
    const char *j = one ? "0" : "j";
    int in = one ? ind + 1 : ind + 2;
    gl_(e, ind, "for (int i = 0; i < %s; i++)%s", c_extent(e, g->s.m), one ? " {" : "");
    if (!one) gl_(e, ind + 1, "for (int j = 0; j < %s; j++) {", c_extent(e, g->s.n));
    if (!g->s.k.batch && num_(g->s.k) < 8) { /* shorter than the eight partial sums: one plain sum */
        dot_(e, in, g, "i", j);
    } else {
        gl_(e, in, "nnc_real acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};");
        bool fixed = !g->s.k.batch || e->static_batch;
        const char *K = c_extent(e, g->s.k);
        /* the blocks end at a bound computed first (emit_ops.c's reductions say why) */
        gl_(e, in, "const int end8 = %s;", fixed ? arena_printf(A_, "%" PRId64, g->s.k.per / 8 * 8) : arena_printf(A_, "%s / 8 * 8", K));
        gl_(e, in, "for (int k8 = 0; k8 < end8; k8 += 8)");
        gl_(e, in + 1, "for (int l = 0; l < 8; l++) acc[l] += %s * %s;", a_at_(e, g, "i", "(k8 + l)"), b_at_(e, g, "(k8 + l)", j));
        gl_(e, in, "nnc_real s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));");
        gl_(e, in, "for (int k = end8; k < %s; k++) s += %s * %s;", K, a_at_(e, g, "i", "k"), b_at_(e, g, "k", j));
    }
    gl_(e, in, "%s[%s] = %s;", g->c, rc_(e, "i", ldc_(e, g), j), out_at_(e, g, "i", j, "s"));
    gl_(e, in - 1, "}");
}

/* One MR x NR block of C held in registers while k runs: each step reads MR elements of A and NR of a
 * row of B and does MR * NR multiply-adds. The sizes are constants, so the compiler unrolls the block
 * and keeps acc in vector registers. */
/* `open`: the line that opens its block ("for (...) {", or "{" for a tile of its own) */
static void tile_(Emit *e, int ind, const Gemm *g, const char *i0, const char *j0, int64_t mr, int64_t nr, const char *open)
{
    gl_(e, ind, "%s", open);
    gl_(e, ind + 1, "nnc_real acc[%" PRId64 "][%" PRId64 "] = {{0}};", mr, nr);
    gl_(e, ind + 1, "for (int k = 0; k < %s; k++) {", c_extent(e, g->s.k));
    gl_(e, ind + 2, "const nnc_real *bk = %s + k * %s + %s;", g->b, ldb_(e, g), j0);
    /* a tile of one row (the rows left over): row i0 itself, no loop over ii */
    int one = mr == 1;
    const char *ii = one ? "0" : "ii", *ri = one ? i0 : arena_printf(A_, "(%s + ii)", i0);
    if (!one) gl_(e, ind + 2, "for (int ii = 0; ii < %" PRId64 "; ii++) {", mr);
    gl_(e, ind + 3 - one, "const nnc_real aik = %s;", a_at_(e, g, ri, "k"));
    gl_(e, ind + 3 - one, "for (int jj = 0; jj < %" PRId64 "; jj++) acc[%s][jj] += aik * bk[jj];", nr, ii);
    if (!one) gl_(e, ind + 2, "}");
    gl_(e, ind + 1, "}");
    if (!one) gl_(e, ind + 1, "for (int ii = 0; ii < %" PRId64 "; ii++)", mr);
    gl_(e, ind + 2 - one, "for (int jj = 0; jj < %" PRId64 "; jj++) {", nr);
    const char *ti = c_add(e, i0, ii);
    if (g->store_t)
        gl_(e, ind + 3 - one, "const int i = %s + jj, j = %s;", j0, ti);
    else
        gl_(e, ind + 3 - one, "const int i = %s, j = %s + jj;", ti, j0);
    gl_(e, ind + 3 - one, "%s[%s] = %s;", g->c, rc_(e, "i", ldc_(e, g), "j"), out_(e, g, arena_printf(A_, "acc[%s][jj]", ii)));
    gl_(e, ind + 2 - one, "}");
    gl_(e, ind, "}");
}

/* C in register blocks of TILE_M x TILE_N, for a B that is not transposed and a compile-time N: used
 * when k is short (a first layer of few features) or C is small (a weight gradient A^T B, k the batch),
 * where BLAS's packing costs more than the product and a row of C at a time reloads it k times */
enum { TILE_M = 5, TILE_N = 16 };

static void tile_row_(Emit *e, int ind, const Gemm *g, const char *i0, int64_t mr)
{
    int64_t N = num_(g->s.n), nr = N < TILE_N ? N : TILE_N, nfull = N / nr * nr;
    tile_(e, ind, g, i0, "j0", mr, nr, arena_printf(A_, "for (int j0 = 0; j0 < %" PRId64 "; j0 += %" PRId64 ") {", nfull, nr));
    if (N > nfull) tile_(e, ind, g, i0, arena_printf(A_, "%" PRId64, nfull), mr, N - nfull, "{");
}

/* `block`: a block of their own to scope i0, unless the caller's (BLAS's else, the kernel's body) does */
static void gemm_tiles_(Emit *e, int ind, const Gemm *g, bool block)
{
    bool mconst = !g->s.m.batch;
    int64_t M = mconst ? num_(g->s.m) : 0, mr = mconst && M < TILE_M ? M : TILE_M;
    if (block) gl_(e, ind, "{");
    else ind--;
    gl_(e, ind + 1, "int i0 = 0;");
    gl_(e, ind + 1, "for (; i0 + %" PRId64 " <= %s; i0 += %" PRId64 ") {", mr, c_extent(e, g->s.m), mr);
    tile_row_(e, ind + 2, g, "i0", mr);
    gl_(e, ind + 1, "}");
    if (!mconst) {
        gl_(e, ind + 1, "for (; i0 < %s; i0++) {", c_extent(e, g->s.m));
        tile_row_(e, ind + 2, g, "i0", 1);
        gl_(e, ind + 1, "}");
    } else if (M % mr) {
        tile_row_(e, ind + 1, g, "i0", M % mr);
    }
    if (block) gl_(e, ind, "}");
}

static void gemm_blas_(Emit *e, int ind, const Gemm *g)
{
    gl_(e, ind, "cblas_sgemm(CblasRowMajor, %s, %s, %s, %s, %s, 1.0f, %s, %s, %s, %s, 0.0f, %s, %s);",
        g->s.ta ? "CblasTrans" : "CblasNoTrans", g->s.tb ? "CblasTrans" : "CblasNoTrans", c_extent(e, g->s.m), c_extent(e, g->s.n), c_extent(e, g->s.k), g->a,
        lda_(e, g), g->b, ldb_(e, g), g->c, ldc_(e, g));
    if (!g->epi) return;
    gl_(e, ind, "for (int i = 0; i < %s; i++)", c_extent(e, g->s.m));
    const char *ij = rc_(e, "i", ldc_(e, g), "j");
    gl_(e, ind + 1, "for (int j = 0; j < %s; j++) %s[%s] = %s;", c_extent(e, g->s.n), g->c, ij, out_(e, g, arena_printf(A_, "%s[%s]", g->c, ij)));
}

/* ---- firmware: named accumulators (emit_lanes.c) ----------------------------------------------------
 * A row of C in blocks of lanes: each step of k loads a[i,k] and the block's elements of row k of B. */
static void regs_block_(Emit *e, int ind, const Lanes *b, void *ctx)
{
    const Gemm *g = ctx;
    gl_(e, ind, "{");
    gl_(e, ind + 1, "%s", lanes_decl(e, b, "acc", "0", NULL));
    gl_(e, ind + 1, "const nnc_real *bk = %s;", lanes_offset(e, b, g->b));
    gl_(e, ind + 1, "for (int k = 0; k < %s; k++, bk += %s) {", c_extent(e, g->s.k), ldb_(e, g));
    gl_(e, ind + 2, "const nnc_real aik = %s;", a_at_(e, g, "i", "k"));
    gl_(e, ind + 2, "%s", lanes_fma(e, b, "aik", "bk"));
    gl_(e, ind + 1, "}");
    for (int64_t l = 0; l < b->n; l++) {
        const char *j = lanes_col(e, b, l), *acc = arena_printf(A_, "acc%" PRId64, l);
        gl_(e, ind + 1, "%s[%s] = %s;", g->c, rc_(e, "i", ldc_(e, g), j), out_at_(e, g, "i", j, acc));
    }
    gl_(e, ind, "}");
}

static void gemm_regs_(Emit *e, int ind, const Gemm *g)
{
    gl_(e, ind, "for (int i = 0; i < %s; i++) {", c_extent(e, g->s.m));
    lanes_blocks(e, ind + 1, "j0", num_(g->s.n), regs_block_, (void *)g);
    gl_(e, ind, "}");
}

/* CUDA: one thread per element of C, each a dot product along k; the whole kernel (gemm_emit decides) */
static void gemm_gpu_(Emit *e, const Gemm *g)
{
    bool one_j = one_(g->s.n);
    int64_t mn = (g->s.m.batch ? e->opt->max_batch : 1) * g->s.m.per * (g->s.n.batch ? e->opt->max_batch : 1) * g->s.n.per;
    int64_t k = (g->s.k.batch ? e->opt->max_batch : 1) * g->s.k.per;
    const char *mnx = one_j ? c_extent(e, g->s.m) : arena_printf(A_, "%s * %s", p_(e, c_extent(e, g->s.m)), p_(e, c_extent(e, g->s.n)));
    const char *j = one_j ? "0" : "j";
    bool blocks = k >= GPU_BLOCK_MIN_EACH && mn <= GPU_BLOCK_MAX_OUTPUTS; /* a long k: a block per element, splitting k */
    if (blocks) gpu_block_loop(e, mn, mnx);
    else gpu_grid_loop(e, mn, "t", mnx, " {");
    if (one_j) gl_(e, 2, "const int i = t;");
    else gl_(e, 2, "const int i = t / %s, j = t %% %s;", p_(e, c_extent(e, g->s.n)), p_(e, c_extent(e, g->s.n)));
    if (blocks) {
        gl_(e, 2, "nnc_real acc = 0;");
        gl_(e, 2, "for (int k = threadIdx.x; k < %s; k += blockDim.x)", c_extent(e, g->s.k));
        gl_(e, 3, "acc += %s * %s;", a_at_(e, g, "i", "k"), b_at_(e, g, "k", j));
        gpu_block_fold(e, 2, 1, false);
        gl_(e, 2, "if (threadIdx.x == 0) %s[%s] = %s;", g->c, rc_(e, "i", ldc_(e, g), j), out_at_(e, g, "i", j, "acc"));
        gl_(e, 2, "__syncthreads(); /* part[] is free for the next element */");
        gl_(e, 1, "}");
        return;
    }
    dot_(e, 2, g, "i", j);
    gl_(e, 2, "%s[%s] = %s;", g->c, rc_(e, "i", ldc_(e, g), j), out_at_(e, g, "i", j, "s"));
    gl_(e, 1, "}");
}

void gemm_emit(Emit *e, int ind, const Gemm *g)
{
    if (e->gpu) {
        bool par = e->gemm_par && ind == 1 && gpu_can_par(e) && !g->store_t;
        e->gemm_par = false;
        if (par) gemm_gpu_(e, g);
        else gemm_naive_(e, ind, g);
        return;
    }
    if (e->opt->opt_level == 0) {
        gemm_naive_(e, ind, g);
        return;
    }
    /* Firmware trains without gradient buffers, so a weight's update is the epilogue of its gradient's
     * product, written over the weight it reads: only forms that read C[i,j]'s operands before storing
     * C[i,j] (named accumulators, dot products), never a row of C zeroed first (gemm_rows_, BLAS) */
    if (e->t->firmware) {
        if (!g->s.tb && !g->s.n.batch && !g->store_t) gemm_regs_(e, ind, g);
        else gemm_dots_(e, ind, g);
        return;
    }
    /* register blocks, for rows of C at least a tile wide: A^T B into a small C, or a k short enough
     * that packing does not pay */
    bool wide = !g->s.n.batch && num_(g->s.n) >= TILE_N, short_k = !g->s.k.batch && num_(g->s.k) <= TILED_MAX_K;
    bool small_c = g->s.ta && !g->s.m.batch && num_(g->s.m) * num_(g->s.n) <= TILED_MAX_C;
    bool tiled = !g->s.tb && wide && (small_c || short_k);
    /* A^T B into a small C of few columns but many rows: tiles of C^T = B^T A, stored transposed */
    bool swap = g->s.ta && !g->s.tb && !g->s.n.batch && !wide && num_(g->s.n) > 4 && !g->s.m.batch &&
                num_(g->s.m) >= TILE_N && num_(g->s.m) * num_(g->s.n) <= TILED_MAX_C;
    bool blas = e->t->blas && g->s.work >= BLAS_MIN_WORK && !tiled && !swap;
    /* a size that depends on the batch: BLAS only when this call's batch makes the work worth it (a
     * batch-1 predict would pay for packing a whole weight matrix), else the loops */
    bool by_batch = g->s.m.batch || g->s.n.batch || g->s.k.batch;
    int lind = ind;
    if (blas) {
        e->uses_blas = true;
        sb_puts(&e->kernels, "#if NNC_USE_BLAS\n");
        if (by_batch) {
            gl_(e, ind, "if ((int64_t)%s * %s * %s >= NNC_BLAS_MIN_WORK) {", p_(e, c_extent(e, g->s.m)), p_(e, c_extent(e, g->s.n)), p_(e, c_extent(e, g->s.k)));
            gemm_blas_(e, ind + 1, g);
            gl_(e, ind, "} else");
            sb_puts(&e->kernels, "#endif\n");
            gl_(e, ind, "{");
            lind = ind + 1;
        } else {
            gemm_blas_(e, ind, g);
            sb_puts(&e->kernels, "#else\n");
        }
    }
    /* a row of C shorter than a vector: dot products along k instead */
    bool narrow = !g->s.n.batch && num_(g->s.n) <= 4 && (g->s.k.batch || num_(g->s.k) >= 32);
    /* behind BLAS (a build without it), wide products in tiles too: the portable blocked GEMM */
    if ((tiled || (blas && wide && !g->s.tb)) && !narrow)
        gemm_tiles_(e, lind, g, lind == ind && ind > 1);
    else if (swap)
        gemm_tiles_(e, lind, &(Gemm){.s = {.m = g->s.n, .n = g->s.m, .k = g->s.k, .lda = ldb_x_(g), .ldb = lda_x_(g), .ldc = ldc_x_(g),
                                           .ta = 1, .work = g->s.work},
                                     .a = g->b, .b = g->a, .c = g->c, .epi = g->epi, .store_t = true},
                    lind == ind && ind > 1);
    else if (g->s.tb || narrow)
        gemm_dots_(e, lind, g);
    else
        gemm_rows_(e, lind, g);
    if (blas && by_batch)
        gl_(e, ind, "}");
    else if (blas)
        sb_puts(&e->kernels, "#endif\n");
}
