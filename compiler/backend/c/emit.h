/* emit.h: the C emitter's shared state and services. emit_c.c writes the file around the kernels (header,
 * struct, init, entry points, tensor table); emit_ops.c writes one kernel per scheduled value.
 *
 * The target description (Target) holds what differs between C and CUDA output (kernel prefix, how a loop
 * over elements is written); the walk over the schedule is shared.
 */
#ifndef NNC_EMIT_H
#define NNC_EMIT_H

#include "ops.h"
#include "kernel.h"
#include "target.h"


enum { MAX_KARGS = 16 };

typedef struct KArgs {
    const char *name[MAX_KARGS];
    int id[MAX_KARGS];
    bool out[MAX_KARGS];
    int n;
    bool batched;
} KArgs;

struct Emit {
    Model *m;
    const char *mname;   /* the model's name in C (c_ident) */
    const char **member; /* per model tensor: its struct member */
    const char **in_name, **tgt_name, **out_name; /* the entry points' parameters */
    const EmitOptions *opt;
    const Target *t;
    StrBuf kernels; /* static functions, in schedule order */
    StrBuf consts;  /* static const arrays */
    StrBuf body;    /* the entry function being written */
    Graph *g;
    Plan *p;
    int kseq;
    int *const_id; /* per value of the current graph: its const array number, or -1 */
    int *kernel_lo; /* per value of the current graph: the lowest id computed in the kernel it roots */
    int nconst;
    /* what the entry function being written uses, known from the calls written (not from their text) */
    const char **buf_name; /* per value of the current graph: its local pointer when in the arena, or NULL */
    VEC(int) bufs;         /* the arena values named, in order of first use */
    NameMap locals;        /* the entry function's identifiers: its parameters and the buffers' names */
    bool uses_m, *in_used, *tgt_used;
    KArgs cur; /* the kernel being written */
    int cur_id;
    const char *cur_op;
    size_t cur_start;          /* where its text starts in `kernels` (the comment) */
    size_t cur_name_end;       /* the end of its name "k12" in the signature */
    size_t cur_line, cur_body; /* the #line to the model (empty when none), then the body */
    int cur_k;                 /* the number of the kernel the call uses */
    /* identical kernels are written once: key = the signature after the name, then the body without
     * the #line that says where it came from */
    VEC(struct KernelKey { uint64_t hash; char *key; int k; }) seen;
    bool uses_blas;
    bool has_rng;        /* the struct holds the generator (dropout needs it; the host always has it) */
    bool static_batch;   /* kernels take no n: the batch is the constant 1 (firmware, --batch 1) */
    bool *flash;         /* per model tensor: a const array, not a struct member (target_tensor_in_flash) */
    int64_t const_bytes; /* of the kernels' constant arrays */
    /* CUDA (emit_cuda.c): kernels are __global__ functions in a source of their own, entry points record
     * their launches; parameters, state, constants and the arena live in a device image (struct M_image) */
    bool gpu;
    bool cur_parallel;  /* the kernel being written spreads its loop over every thread of its grid */
    int64_t cur_work;   /* ... and has this many work items at the maximum batch */
    bool gemm_par;      /* the product about to be written is its kernel's whole work (epilogue included) */
    int64_t cur_blocks; /* > 0: one block of 256 threads per item, this many items (block reductions) */
    bool cur_coop;      /* ... whose threads meet at barriers and shuffles (the emulator runs them as fibers) */
    bool cur_serial;    /* the kernel writes more than one loop (an anchor, then its tail): on one thread */
    VEC(int) kcoop;     /* per kernel: cur_coop */
    VEC(char *) knames; /* kernel k's function name at k - 1 */
    VEC(int) knargs;    /* ... and its number of parameters */
    VEC(struct ConstArray { int k; int64_t count; DType dtype; }) const_arrays; /* the image's copies */
    VEC(struct PartsArray { int k; int count; char *init; }) parts_arrays; /* pointer arrays in the image, filled
                                                                            * by M_init with `init` */
};

/* C[m,n] = op(a) op(b) on dense row-major arrays named a, b, c in the open kernel; m, n, k are C
 * expressions; work = m*n*k at the maximum batch (emit_gemm.c) */
/* An epilogue: the elementwise tail of a fused kernel, applied to each result as it is produced.
 * expr(e, ctx, row, col, val) gives the C expression of the tail for the result `val` at flat output
 * index row * ncols + col. */
typedef struct Epilogue {
    char *(*expr)(Emit *e, void *ctx, const char *row, const char *col, const char *val);
    void *ctx;
} Epilogue;

/* a product (kernel.h's GemmShape) on arrays the C expressions a, b, c point at */
typedef struct Gemm {
    GemmShape s;
    const char *a, *b, *c;
    const Epilogue *epi; /* may be NULL */
    bool store_t;        /* tiles of C^T = B^T A: stored transposed, epilogue in C's coordinates */
} Gemm;

void gemm_emit(Emit *e, int ind, const Gemm *g);

/* A product of at least this much work (M*N*K multiply-adds) calls cblas_sgemm, whose packing and
 * blocking pay for the call from there on (measured on x86-64 with OpenBLAS); the generated C names it
 * NNC_BLAS_MIN_WORK where the choice waits for the batch size. */
enum { BLAS_MIN_WORK = 64 * 64 * 64 };

/* ---- kernels: a static function per scheduled value and the call that runs it ------------------- */

/* Start kernel `op` for value id with the given named arguments (the output first); writes the header
 * comment, the signature, `{` and a #line to the model; the caller writes the body into e->kernels at
 * indent 1 and calls kernel_end. Arguments that share memory (in place) lose `restrict`. */
void kernel_begin(Emit *e, int id, const char *op, const KArgs *a);
void kernel_end(Emit *e);
void kargs_add(Emit *e, KArgs *a, const char *name, int id, bool out);

/* C expressions */
const char *c_type(DType t); /* "nnc_real", "int32_t" */
/* Elements of a shape at the runtime batch: "n * 50", "50", "n". */
char *c_count(Emit *e, Shape s);
char *c_dim(Emit *e, int64_t d); /* "n" for the batch axis, else the number */
char *c_extent(Emit *e, Extent x); /* "50", "n", "n * 4" */
const char *c_batch(Emit *e);      /* the batch inside a kernel: "n", or "1" where it is static */
char *c_float(Emit *e, double v); /* hex float with a decimal comment */
/* index arithmetic: "a + b", or the other operand where one is "0" */
char *c_add(Emit *e, const char *a, const char *b);
/* Where value id lives, as seen from an entry function: a local pointer into the arena ("h1", "t12_relu"),
 * "m->dense_1_weight", "x", "nnc_c3"; the entry function declares what this handed out. */
char *c_buffer(Emit *e, int id);
/* The scalar literal of a literal constant */
char *c_literal(Emit *e, int id);
/* emit_scalar.c: elementwise value id computed from its operands' C expressions, from ops.def's scalar
 * definition (a call of its helper, or the definition inline); the helper function of an EW_FN op */
char *c_scalar(Emit *e, int id, char *const *operands);
void c_scalar_helper(StrBuf *b, OpKind op);

/* emit_lanes.c: named accumulators (firmware). A block of lanes 0 .. n-1 stands for the columns
 * var + l inside a loop over blocks, or (var NULL) for base + l. */
typedef struct Lanes {
    const char *var;
    int64_t base, n;
} Lanes;
typedef void LanesBlock(Emit *e, int ind, const Lanes *b, void *ctx);
char *lanes_col(Emit *e, const Lanes *b, int64_t l);          /* "j0 + 3", "j0", "43" */
char *lanes_offset(Emit *e, const Lanes *b, const char *p);   /* p at the block's first column: "w + f0", "w" */
/* "nnc_real acc0 = INIT, acc1 = INIT...;": INIT is init, or init_at[the lane's column] when init_at is set */
char *lanes_decl(Emit *e, const Lanes *b, const char *name, const char *init, const char *init_at);
char *lanes_fma(Emit *e, const Lanes *b, const char *x, const char *p); /* "acc0 = fmaf(x, p[0], acc0); ..." */
/* columns 0 .. n-1: one block when n <= 12, else blocks of 8 in a loop over var, then the rest; block()
 * writes each at its indent */
void lanes_blocks(Emit *e, int ind, const char *var, int64_t n, LanesBlock *block, void *ctx);

/* emit_dialect.c: the printer's text in the target's dialect (float math names, its index type) */
char *c_dialect(const Target *t, const char *text);

/* the loop over the elements of a nest that is a kernel's whole body: C for loops on the CPU targets; on
 * CUDA a grid-stride loop over the flattened nest that marks the kernel parallel (emit_ops.c) */
void emit_node(Emit *e, int id);
/* CUDA: a reduction (or a product's k) of at least GPU_BLOCK_MIN_EACH terms per output, for at most
 * GPU_BLOCK_MAX_OUTPUTS outputs, is shared by the threads of a block; fewer terms or more outputs: one thread
 * per output (enough threads, and a short loop each) */
enum { GPU_BLOCK_MIN_EACH = 256, GPU_BLOCK_MAX_OUTPUTS = 16384 };
/* CUDA: a plain product of at least this many multiply-adds (at the maximum batch) calls cuBLAS; a smaller
 * one is a kernel, where a cuBLAS call (a few microseconds of its own) costs more than the work */
enum { GPU_BLAS_MIN_WORK = 256 * 256 * 256 };
/* CUDA: the kernel being written may still become parallel: nothing is in its body yet */
bool gpu_can_par(const Emit *e);
/* CUDA: in a block of 256 threads, each with partial results acc (acc0.. for nout > 1) of a sum (or max),
 * fold them into thread 0's; needs `NNC_SHARED(nnc_real, part, 32)` declared and marks nothing itself */
void gpu_block_fold(Emit *e, int ind, int nout, bool max);
/* CUDA: `for (int VAR = <this thread>; VAR < bound; VAR += <the grid's threads>)` then `tail` (" {" or ""),
 * at the kernel's top level: the kernel becomes parallel over `work` items at the maximum batch */
void gpu_grid_loop(Emit *e, int64_t work, const char *var, const char *bound, const char *tail);
/* CUDA: the shared array of gpu_block_fold, then `for (int t = blockIdx.x; t < bound; t += gridDim.x) {`: one
 * block of 256 threads per item, `blocks` of them at the maximum batch */
void gpu_block_loop(Emit *e, int64_t blocks, const char *bound);
/* a scalar tensor that adds a literal to itself (the optimizer's step counter) as a statement of the
 * entry point, m->opt_step[0] += 1, instead of a kernel; false (nothing written) for anything else */
bool entry_increment(Emit *e, int id);
/* ---- emit_c.c's parts that the CUDA printer (emit_cuda.c) shares ---- */
void emit_names_init(Emit *e);
bool emit_needs_rng(const Target *t, const EntryCode *entries, int nentries);
void emit_helpers(StrBuf *b, const char *code);
/* M_init's body filling `struct TYPE *m` (the model, or CUDA's host image) */
void emit_init(Emit *e, StrBuf *b, const char *signature);
void emit_struct_body(Emit *e, StrBuf *b, int64_t arena_f, int64_t arena_i);
void emit_size_defines(Emit *e, StrBuf *b, const EntryCode *entries, int nentries, int64_t arena_f, int64_t arena_i);
void emit_table(Emit *e, StrBuf *out, const char *struct_name);
void emit_file_comment(StrBuf *b, const EmitOptions *opt);
char *emit_fix_line_directives(char *text);
void emit_upper(char *dst, const char *src, size_t n);
void emit_entry_signature(Emit *e, StrBuf *b, EntryKind k, bool with_metrics, const char *suffix);
/* the shim's nnc_jit_tensors, nnc_jit_predict, nnc_jit_train_step and nnc_jit_eval (for nnc train/predict/bench) */
void emit_shim_calls(Emit *e, StrBuf *b, bool has_train, bool has_eval);
/* a header name `#include "..."` can spell */
bool emit_header_name_ok(const char *name);
/* the prologue every header starts with: include guard, <stddef.h> <stdint.h>, nnc_real, nnc_tensor_info */
void emit_header_prologue(Emit *e, StrBuf *b);
/* the entry function's kernels (and CUDA: its record function) into b */
void emit_entry(Emit *e, StrBuf *b, EntryCode *ec);
/* emit_cuda.c: the record function and the entry points of one entry (CUDA), its body already written */
void emit_cuda_entry(Emit *e, StrBuf *b, EntryCode *ec, const char *decls, const char *tail);
void emit_cuda_model(const Target *t, Model *m, EntryCode *entries, int nentries, const EmitOptions *opt, char **c_out,
                     char **h_out);

/* the C printer of target_host (target.h's PrintModel) */
void emit_c_model(const Target *t, Model *m, EntryCode *entries, int nentries, const EmitOptions *opt, char **c_out,
                  char **h_out);

#endif
