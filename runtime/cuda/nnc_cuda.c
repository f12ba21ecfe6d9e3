/* nnc_cuda.c: the runtime that `nnc --target cuda` output calls (nnc_cuda.h): the handle, its sticky error,
 * the checks every call makes, and the emulated device. Two devices stand behind a handle:
 *   - a GPU (cuda_driver.c): the driver loaded with dlopen, kernels compiled by NVRTC, an entry point's
 *     record function captured once into a CUDA graph and the graph launched on every call;
 *   - the emulator (NNC_CUDA_EMULATE=1): "device" memory is host memory, the kernel source runs through
 *     emulate.c, and an entry's "graph" is the list of launches, copies and fills its record function made
 *     on the first call, replayed on every call (the first included, so a record function that depends on
 *     one call's state fails the same way as a captured graph).
 * A product (nnc_cuda_gemm) is cublasSgemm on a GPU and a plain loop in float under the emulator.
 * After the first failure every call returns nonzero without touching the device; nnc_cuda_error says why. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulate.h"
#include "nnc_cuda_internal.h"

/* a launch's limits, the same on both devices (dynamic shared memory: what a kernel gets without opting in) */
#define MAX_BLOCK 1024u
#define MAX_GRID 0x7fffffffu
#define MAX_DYNAMIC_SHARED 49152u
#define EMU_ALIGN 256

typedef enum { CMD_LAUNCH, CMD_COPY, CMD_FILL, CMD_GEMM } cmd_kind;

/* a product's arguments, row-major as nnc_cuda_gemm has them */
typedef struct gemm_args {
    int ta, tb, m, n, k;
    const float *a;
    int lda;
    const float *b;
    int ldb;
    float *c;
    int ldc;
} gemm_args;

/* one recorded command of the emulator's "graph" */
typedef struct emu_cmd {
    cmd_kind kind;
    int kernel;
    unsigned grid, block, shared;
    int nargs;
    void **args;          /* CMD_LAUNCH: the parameter values, copied */
    void *dst;            /* CMD_COPY, CMD_FILL */
    const void *src;      /* CMD_COPY */
    size_t bytes;         /* CMD_COPY: bytes; CMD_FILL: words */
    uint32_t word;        /* CMD_FILL */
    gemm_args gemm;       /* CMD_GEMM */
} emu_cmd;

typedef struct emu_list {
    emu_cmd *cmds;
    int n, cap;
    int recorded;
} emu_list;

struct nnc_cuda {
    int failed;
    char error[NNC_CUDA_ERRLEN];
    char device[256];
    char *name;              /* the model's name */
    int nkernels;
    char **kernels;          /* their names, for messages */
    size_t image_bytes, io_bytes;
    int recording;           /* the entry being recorded, -1 outside a record function */
    int no_graph;            /* NNC_CUDA_NO_GRAPH=1: record functions run on every call */
    int emulated;
    int blas_wanted;         /* a product was issued while capturing before cuBLAS was loaded */
    /* the emulator */
    nnc_emu *emu;
    void *image, *io, *io_host;
    emu_list lists[NNC_CUDA_ENTRIES];
    /* a GPU */
    nnc_gpu *gpu;
};

int nnc_cuda_fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return 1;
}

/* Keeps the first failure (later ones are consequences). Returns 1. */
static int fail(nnc_cuda *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int fail(nnc_cuda *c, const char *fmt, ...) {
    va_list ap;
    if (c->failed)
        return 1;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    c->failed = 1;
    return 1;
}

/* A back end wrote its failure into c->error (only while c->failed was 0): make it the kept one. */
static int took(nnc_cuda *c, int rc) {
    if (rc && !c->failed)
        c->failed = 1;
    return rc ? 1 : 0;
}

static int env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static const char *kernel_name(const nnc_cuda *c, int kernel) {
    return kernel >= 0 && kernel < c->nkernels ? c->kernels[kernel] : "?";
}

/* ---- the emulated device ---- */

static void *emu_alloc(size_t bytes) {
    void *p = NULL;
    size_t n = (bytes + EMU_ALIGN - 1) / EMU_ALIGN * EMU_ALIGN;
    if (n == 0)
        n = EMU_ALIGN;
    if (posix_memalign(&p, EMU_ALIGN, n) != 0)
        return NULL;
    memset(p, 0, n);
    return p;
}

static void emu_clear(emu_list *l) {
    for (int i = 0; i < l->n; i++)
        free(l->cmds[i].args);
    l->n = 0;
    l->recorded = 0;
}

static emu_cmd *emu_append(nnc_cuda *c, emu_list *l) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        emu_cmd *cmds = realloc(l->cmds, (size_t)cap * sizeof *cmds);
        if (!cmds) {
            fail(c, "nnc_cuda: out of memory recording entry point %d", c->recording);
            return NULL;
        }
        l->cmds = cmds;
        l->cap = cap;
    }
    emu_cmd *cmd = &l->cmds[l->n++];
    memset(cmd, 0, sizeof *cmd);
    return cmd;
}

/* C = op(A) op(B), each element a sum over k ascending in float (the emulator's cuBLAS) */
static void emu_gemm(const gemm_args *g) {
    for (int i = 0; i < g->m; i++)
        for (int j = 0; j < g->n; j++) {
            float acc = 0.0f;
            for (int p = 0; p < g->k; p++) {
                size_t ai = g->ta ? (size_t)p * (size_t)g->lda + (size_t)i : (size_t)i * (size_t)g->lda + (size_t)p;
                size_t bi = g->tb ? (size_t)j * (size_t)g->ldb + (size_t)p : (size_t)p * (size_t)g->ldb + (size_t)j;
                acc += g->a[ai] * g->b[bi];
            }
            g->c[(size_t)i * (size_t)g->ldc + (size_t)j] = acc;
        }
}

static int emu_run_cmd(nnc_cuda *c, const emu_cmd *cmd) {
    char err[NNC_CUDA_ERRLEN - 64];
    switch (cmd->kind) {
    case CMD_LAUNCH:
        err[0] = 0;
        if (nnc_emu_launch(c->emu, cmd->kernel, cmd->grid, cmd->block, cmd->shared, (void *const *)cmd->args,
                           cmd->nargs, err, sizeof err) != 0)
            return fail(c, "nnc_cuda: emulator: %s: %s", kernel_name(c, cmd->kernel),
                        err[0] ? err : "the launch failed");
        return 0;
    case CMD_COPY:
        if (cmd->bytes)
            memmove(cmd->dst, cmd->src, cmd->bytes);
        return 0;
    case CMD_FILL:
        for (size_t i = 0; i < cmd->bytes; i++)
            memcpy((char *)cmd->dst + 4 * i, &cmd->word, 4);
        return 0;
    case CMD_GEMM:
        emu_gemm(&cmd->gemm);
        return 0;
    }
    return 0;
}

/* A command of a record function: appended to the entry's list while recording, else run now. */
static void emu_issue(nnc_cuda *c, const emu_cmd *cmd) {
    if (c->recording < 0) {
        emu_run_cmd(c, cmd);
        return;
    }
    emu_cmd *slot = emu_append(c, &c->lists[c->recording]);
    if (!slot)
        return;
    *slot = *cmd;
    slot->args = NULL;
    if (cmd->kind == CMD_LAUNCH && cmd->nargs > 0) {
        slot->args = malloc((size_t)cmd->nargs * sizeof *slot->args);
        if (!slot->args) {
            c->lists[c->recording].n--;
            fail(c, "nnc_cuda: out of memory recording entry point %d", c->recording);
            return;
        }
        memcpy(slot->args, cmd->args, (size_t)cmd->nargs * sizeof *slot->args);
    }
}

static void emu_banner(void) {
    static int said;
    if (said || env_flag("NNC_CUDA_QUIET"))
        return;
    said = 1;
    fprintf(stderr, "nnc_cuda: emulating the GPU on the CPU (NNC_CUDA_EMULATE=1): slow\n");
}

static int emu_open(nnc_cuda *c, const nnc_cuda_program *p, const void *image, size_t init_bytes) {
    char err[NNC_CUDA_ERRLEN - 64];
    snprintf(c->device, sizeof c->device, "emulator");
    emu_banner();
    err[0] = 0;
    c->emu = nnc_emu_open(p->source, c->name, p->kernels, p->nkernels, err, sizeof err);
    if (!c->emu)
        return fail(c, "nnc_cuda: emulator: %s", err[0] ? err : "cannot compile the kernels");
    c->image = emu_alloc(p->image_bytes);
    c->io = emu_alloc(p->io_bytes);
    c->io_host = emu_alloc(p->io_bytes);
    if (!c->image || !c->io || !c->io_host)
        return fail(c, "nnc_cuda: out of memory allocating %zu + %zu bytes of emulated device memory",
                    p->image_bytes, p->io_bytes);
    if (init_bytes)
        memcpy(c->image, image, init_bytes);
    return 0;
}

static int emu_run(nnc_cuda *c, int entry, nnc_cuda_record_fn *record, void *model, size_t in_bytes,
                   size_t out_offset, size_t out_bytes) {
    emu_list *l = &c->lists[entry];
    memcpy(c->io, c->io_host, in_bytes);
    if (!l->recorded || c->no_graph) {
        emu_clear(l);
        c->recording = entry;
        record(model);
        c->recording = -1;
        if (c->failed)
            return 1;
        l->recorded = 1;
    }
    for (int i = 0; i < l->n; i++)
        if (emu_run_cmd(c, &l->cmds[i]))
            return 1;
    memcpy((char *)c->io_host + out_offset, (char *)c->io + out_offset, out_bytes);
    return 0;
}

static void emu_close(nnc_cuda *c) {
    for (int e = 0; e < NNC_CUDA_ENTRIES; e++) {
        emu_clear(&c->lists[e]);
        free(c->lists[e].cmds);
    }
    if (c->emu)
        nnc_emu_close(c->emu);
    free(c->image);
    free(c->io);
    free(c->io_host);
}

/* ---- the handle ---- */

static int check_program(nnc_cuda *c, const nnc_cuda_program *p, const void *image, size_t init_bytes) {
    if (!p)
        return fail(c, "nnc_cuda: no program");
    /* ABI 1 is ABI 2 without nnc_cuda_gemm */
    if (p->abi != NNC_CUDA_ABI && p->abi != 1)
        return fail(c, "nnc_cuda: the model was generated for runtime ABI %d, this runtime has ABI %d: generate "
                       "it again with the nnc that built this runtime", p->abi, NNC_CUDA_ABI);
    if (!p->source || p->nkernels < 0 || (p->nkernels > 0 && !p->kernels))
        return fail(c, "nnc_cuda: the program has no kernel source or kernel table");
    for (int i = 0; i < p->nkernels; i++)
        if (!p->kernels[i] || !p->kernels[i][0])
            return fail(c, "nnc_cuda: kernel %d of the program has no name", i);
    if (init_bytes > p->image_bytes || (init_bytes && !image))
        return fail(c, "nnc_cuda: %zu initial bytes for an image of %zu bytes", init_bytes, p->image_bytes);
    return 0;
}

static int copy_names(nnc_cuda *c, const nnc_cuda_program *p) {
    c->name = dup_string(p->name && p->name[0] ? p->name : "model");
    c->kernels = calloc((size_t)p->nkernels + 1, sizeof *c->kernels);
    if (!c->name || !c->kernels)
        return fail(c, "nnc_cuda: out of memory");
    c->nkernels = p->nkernels;
    for (int i = 0; i < p->nkernels; i++)
        if (!(c->kernels[i] = dup_string(p->kernels[i])))
            return fail(c, "nnc_cuda: out of memory");
    return 0;
}

int nnc_cuda_open(nnc_cuda **out, const nnc_cuda_program *p, const void *image, size_t init_bytes) {
    if (!out)
        return 1;
    nnc_cuda *c = calloc(1, sizeof *c);
    *out = c;
    if (!c)
        return 1;
    c->recording = -1;
    c->no_graph = env_flag("NNC_CUDA_NO_GRAPH");
    if (check_program(c, p, image, init_bytes) || copy_names(c, p))
        return 1;
    c->image_bytes = p->image_bytes;
    c->io_bytes = p->io_bytes;
    if (env_flag("NNC_CUDA_EMULATE")) {
        c->emulated = 1;
        return emu_open(c, p, image, init_bytes);
    }
    c->gpu = nnc_gpu_open(p, image, init_bytes, c->device, sizeof c->device, c->error, sizeof c->error);
    return c->gpu ? 0 : took(c, 1);
}

void nnc_cuda_close(nnc_cuda *c) {
    if (!c)
        return;
    if (c->emulated)
        emu_close(c);
    else if (c->gpu)
        nnc_gpu_close(c->gpu);
    for (int i = 0; i < c->nkernels; i++)
        free(c->kernels[i]);
    free(c->kernels);
    free(c->name);
    free(c);
}

const char *nnc_cuda_error(const nnc_cuda *c) {
    if (!c)
        return "nnc_cuda: out of memory (no handle)";
    return c->failed ? c->error : NULL;
}

const char *nnc_cuda_device_name(const nnc_cuda *c) { return c ? c->device : ""; }

void *nnc_cuda_image(nnc_cuda *c) {
    if (!c)
        return NULL;
    return c->emulated ? c->image : c->gpu ? nnc_gpu_image(c->gpu) : NULL;
}

void *nnc_cuda_io(nnc_cuda *c) {
    if (!c)
        return NULL;
    return c->emulated ? c->io : c->gpu ? nnc_gpu_io(c->gpu) : NULL;
}

void *nnc_cuda_io_host(nnc_cuda *c) {
    if (!c)
        return NULL;
    return c->emulated ? c->io_host : c->gpu ? nnc_gpu_io_host(c->gpu) : NULL;
}

/* a handle that can take work: not failed, and a device behind it */
static int usable(const nnc_cuda *c) { return c && !c->failed && (c->emulated || c->gpu); }

/* [p, p + bytes) lies inside the image or the io block: what a record function may touch */
static int in_block(uintptr_t q, size_t bytes, const void *block, size_t block_bytes) {
    uintptr_t b = (uintptr_t)block;
    return q >= b && q - b <= block_bytes && bytes <= block_bytes - (q - b);
}

static int in_blocks(nnc_cuda *c, const void *p, size_t bytes) {
    uintptr_t q = (uintptr_t)p;
    return in_block(q, bytes, nnc_cuda_image(c), c->image_bytes) || in_block(q, bytes, nnc_cuda_io(c), c->io_bytes);
}

static int check_launch(nnc_cuda *c, int kernel, unsigned grid, unsigned block, unsigned shared,
                        void *const *args, int nargs) {
    if (kernel < 0 || kernel >= c->nkernels)
        return fail(c, "nnc_cuda: launch of kernel %d: the program has kernels 0 to %d", kernel, c->nkernels - 1);
    const char *name = c->kernels[kernel];
    if (block == 0 || block > MAX_BLOCK)
        return fail(c, "nnc_cuda: launch of %s: %u threads per block (1 to %u)", name, block, MAX_BLOCK);
    if (grid == 0 || grid > MAX_GRID)
        return fail(c, "nnc_cuda: launch of %s: a grid of %u blocks (1 to %u)", name, grid, MAX_GRID);
    if (shared > MAX_DYNAMIC_SHARED)
        return fail(c, "nnc_cuda: launch of %s: %u bytes of dynamic shared memory (at most %u)", name, shared,
                    MAX_DYNAMIC_SHARED);
    if (nargs < 0 || (nargs > 0 && !args))
        return fail(c, "nnc_cuda: launch of %s: %d arguments and no argument array", name, nargs);
    return 0;
}

void nnc_cuda_launch(nnc_cuda *c, int kernel, unsigned grid, unsigned block, unsigned shared, void *const *args,
                     int nargs) {
    if (!usable(c) || check_launch(c, kernel, grid, block, shared, args, nargs))
        return;
    if (!c->emulated) {
        took(c, nnc_gpu_launch(c->gpu, kernel, c->kernels[kernel], grid, block, shared, args, nargs, c->error,
                               sizeof c->error));
        return;
    }
    emu_cmd cmd = {CMD_LAUNCH, kernel, grid, block, shared, nargs, (void **)args, NULL, NULL, 0, 0};
    emu_issue(c, &cmd);
}

void nnc_cuda_copy(nnc_cuda *c, void *dst, const void *src, size_t bytes) {
    if (!usable(c) || bytes == 0)
        return;
    if (!in_blocks(c, dst, bytes) || !in_blocks(c, src, bytes)) {
        fail(c, "nnc_cuda: copy of %zu bytes from %p to %p: outside the image and the io block", bytes, src, dst);
        return;
    }
    if (!c->emulated) {
        took(c, nnc_gpu_copy(c->gpu, dst, src, bytes, c->error, sizeof c->error));
        return;
    }
    emu_cmd cmd = {CMD_COPY, 0, 0, 0, 0, 0, NULL, dst, src, bytes, 0};
    emu_issue(c, &cmd);
}

void nnc_cuda_fill(nnc_cuda *c, void *dst, uint32_t word, size_t count) {
    if (!usable(c) || count == 0)
        return;
    if (count > SIZE_MAX / 4 || !in_blocks(c, dst, 4 * count) || ((uintptr_t)dst & 3) != 0) {
        fail(c, "nnc_cuda: fill of %zu words at %p: outside the image and the io block, or not 4-byte aligned",
             count, dst);
        return;
    }
    if (!c->emulated) {
        took(c, nnc_gpu_fill(c->gpu, dst, word, count, c->error, sizeof c->error));
        return;
    }
    emu_cmd cmd = {CMD_FILL, 0, 0, 0, 0, 0, NULL, dst, NULL, count, word};
    emu_issue(c, &cmd);
}

/* the bytes a stored rows x cols matrix of row stride ld spans */
static size_t matrix_bytes(int rows, int cols, int ld) {
    return 4 * ((size_t)(rows - 1) * (size_t)ld + (size_t)cols);
}

static int overlap(const void *p, size_t pb, const void *q, size_t qb) {
    uintptr_t x = (uintptr_t)p, y = (uintptr_t)q;
    return x < y + qb && y < x + pb;
}

static int check_gemm(nnc_cuda *c, const gemm_args *g) {
    int arows = g->ta ? g->k : g->m, acols = g->ta ? g->m : g->k;
    int brows = g->tb ? g->n : g->k, bcols = g->tb ? g->k : g->n;
    if (g->m < 1 || g->n < 1 || g->k < 1)
        return fail(c, "nnc_cuda: product of m %d, n %d, k %d: each must be at least 1", g->m, g->n, g->k);
    if (g->lda < acols || g->ldb < bcols || g->ldc < g->n)
        return fail(c, "nnc_cuda: product of m %d, n %d, k %d (%c%c): strides lda %d, ldb %d, ldc %d below the rows' "
                       "%d, %d, %d", g->m, g->n, g->k, g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', g->lda, g->ldb, g->ldc,
                    acols, bcols, g->n);
    size_t ab = matrix_bytes(arows, acols, g->lda), bb = matrix_bytes(brows, bcols, g->ldb);
    size_t cb = matrix_bytes(g->m, g->n, g->ldc);
    if (((uintptr_t)g->a | (uintptr_t)g->b | (uintptr_t)g->c) & 3)
        return fail(c, "nnc_cuda: product of m %d, n %d, k %d: a matrix not 4-byte aligned", g->m, g->n, g->k);
    if (!in_blocks(c, g->a, ab) || !in_blocks(c, g->b, bb) || !in_blocks(c, g->c, cb))
        return fail(c, "nnc_cuda: product of m %d, n %d, k %d: a matrix outside the image and the io block", g->m,
                    g->n, g->k);
    if (overlap(g->c, cb, g->a, ab) || overlap(g->c, cb, g->b, bb))
        return fail(c, "nnc_cuda: product of m %d, n %d, k %d: C overlaps A or B", g->m, g->n, g->k);
    return 0;
}

/* On a GPU: cuBLAS is loaded by the first product; while a graph is being captured it cannot be (that allocates),
 * so the product is only noted and gpu_run_entry records the entry again once cuBLAS is loaded. */
static void gpu_gemm(nnc_cuda *c, const gemm_args *g) {
    if (!nnc_gpu_blas_ready(c->gpu)) {
        if (c->recording >= 0) {
            c->blas_wanted = 1;
            return;
        }
        if (took(c, nnc_gpu_blas_init(c->gpu, c->error, sizeof c->error)))
            return;
    }
    nnc_cuda_sgemm s = nnc_cuda_sgemm_from_row_major(g->ta, g->tb, g->m, g->n, g->k, g->a, g->lda, g->b, g->ldb, g->c,
                                                     g->ldc);
    took(c, nnc_gpu_gemm(c->gpu, &s, c->error, sizeof c->error));
}

void nnc_cuda_gemm(nnc_cuda *c, int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   float *cm, int ldc) {
    gemm_args g = {ta != 0, tb != 0, m, n, k, a, lda, b, ldb, cm, ldc};
    if (!usable(c) || check_gemm(c, &g))
        return;
    if (!c->emulated) {
        gpu_gemm(c, &g);
        return;
    }
    emu_cmd cmd = {CMD_GEMM, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0, 0, g};
    emu_issue(c, &cmd);
}

static int check_run(nnc_cuda *c, int entry, nnc_cuda_record_fn *record, size_t in_bytes, size_t out_offset,
                     size_t out_bytes) {
    if (c->recording >= 0)
        return fail(c, "nnc_cuda: nnc_cuda_run called inside a record function");
    if (entry < 0 || entry >= NNC_CUDA_ENTRIES || !record)
        return fail(c, "nnc_cuda: run of entry point %d (0 to %d, with a record function)", entry,
                    NNC_CUDA_ENTRIES - 1);
    if (in_bytes > c->io_bytes || out_offset > c->io_bytes || out_bytes > c->io_bytes - out_offset)
        return fail(c, "nnc_cuda: run of entry point %d: bytes [0, %zu) in and [%zu, +%zu) out of an io block of "
                       "%zu", entry, in_bytes, out_offset, out_bytes, c->io_bytes);
    return 0;
}

/* On a GPU: record the entry (captured into a graph, or run directly under NNC_CUDA_NO_GRAPH), then
 * launch its graph. */
static int gpu_run_entry(nnc_cuda *c, int entry, nnc_cuda_record_fn *record, void *model) {
    char err[NNC_CUDA_ERRLEN];
    if (c->no_graph) {
        record(model);
        return c->failed;
    }
    /* a second recording when the first met a product before cuBLAS was loaded */
    for (int attempt = 0; attempt < 2 && !nnc_gpu_has_graph(c->gpu, entry); attempt++) {
        if (took(c, nnc_gpu_begin_capture(c->gpu, c->error, sizeof c->error)))
            return 1;
        c->blas_wanted = 0;
        c->recording = entry;
        record(model);
        c->recording = -1;
        /* the capture ends even after a failure, so that the stream is usable for nothing else but cleanup */
        int discard = c->failed || c->blas_wanted;
        if (nnc_gpu_end_capture(c->gpu, entry, discard, err, sizeof err) && !c->failed)
            return fail(c, "%s", err);
        if (c->failed)
            return 1;
        if (c->blas_wanted && took(c, nnc_gpu_blas_init(c->gpu, c->error, sizeof c->error)))
            return 1;
    }
    if (!nnc_gpu_has_graph(c->gpu, entry))
        return fail(c, "nnc_cuda: entry point %d: no graph after recording it twice", entry);
    return took(c, nnc_gpu_launch_graph(c->gpu, entry, c->error, sizeof c->error));
}

int nnc_cuda_run(nnc_cuda *c, int entry, nnc_cuda_record_fn *record, void *model, size_t in_bytes,
                 size_t out_offset, size_t out_bytes) {
    if (!usable(c) || check_run(c, entry, record, in_bytes, out_offset, out_bytes))
        return 1;
    if (c->emulated)
        return emu_run(c, entry, record, model, in_bytes, out_offset, out_bytes);
    if (took(c, nnc_gpu_upload_io(c->gpu, in_bytes, c->error, sizeof c->error)))
        return 1;
    if (gpu_run_entry(c, entry, record, model))
        return 1;
    return took(c, nnc_gpu_download_io(c->gpu, out_offset, out_bytes, c->error, sizeof c->error));
}

int nnc_cuda_stage(nnc_cuda *c, void *dst, const void *src, size_t bytes) {
    if (!usable(c))
        return 1;
    if (bytes == 0)
        return 0;
    if (!dst || !src)
        return fail(c, "nnc_cuda: staging %zu bytes from %p to %p", bytes, src, dst);
    if (c->emulated) {
        memmove(dst, src, bytes);
        return 0;
    }
    return took(c, nnc_gpu_stage(c->gpu, dst, src, bytes, c->error, sizeof c->error));
}

int nnc_cuda_wait(nnc_cuda *c) {
    if (!usable(c))
        return 1;
    if (c->emulated)
        return 0;
    return took(c, nnc_gpu_wait(c->gpu, c->error, sizeof c->error));
}

int nnc_cuda_download(nnc_cuda *c, void *host, const void *dev, size_t bytes) {
    if (!usable(c))
        return 1;
    if (bytes == 0)
        return 0;
    if (!host || !dev)
        return fail(c, "nnc_cuda: download of %zu bytes from %p to %p", bytes, dev, host);
    if (c->emulated) {
        memmove(host, dev, bytes);
        return 0;
    }
    return took(c, nnc_gpu_download(c->gpu, host, dev, bytes, c->error, sizeof c->error));
}

int nnc_cuda_upload(nnc_cuda *c, void *dev, const void *host, size_t bytes) {
    if (!usable(c))
        return 1;
    if (bytes == 0)
        return 0;
    if (!host || !dev)
        return fail(c, "nnc_cuda: upload of %zu bytes from %p to %p", bytes, host, dev);
    if (c->emulated) {
        memmove(dev, host, bytes);
        return 0;
    }
    return took(c, nnc_gpu_upload(c->gpu, dev, host, bytes, c->error, sizeof c->error));
}
