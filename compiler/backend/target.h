/* target.h: the table of targets. A target is what `--target NAME` picks: the numbers the passes and the
 * memory plan must respect for it (fusion limits, the largest index) and the printer that turns the
 * scheduled, planned entry graphs into source text. The pipeline looks the target up here and never
 * names a printer itself; a new back end is one more row (docs/backends.md).
 */
#ifndef NNC_TARGET_H
#define NNC_TARGET_H

#include "passes.h"
#include "plan.h"

/* one entry point, ready to print: its graph after the passes and its memory plan */
typedef struct EntryCode {
    EntryKind kind;
    Graph *g;
    Plan *plan;
} EntryCode;

typedef struct EmitOptions {
    const char *model_path; /* for #line and the header comment */
    const char *c_path;     /* the .c file's name as written, for #line back to it */
    const char *h_name;     /* "m.h", included by the .c */
    const char *command;    /* the command line, for the header comment */
    bool amalgamate;        /* one translation unit: header inlined (stdout, JIT) */
    bool jit_shim;          /* add the generic nnc_jit_* entry points the driver calls */
    bool inference_only;
    bool line_directives;
    bool weights_baked;     /* --weights: every parameter and state tensor has its values (INIT_VALUES) */
    int max_batch;
    int opt_level;
    struct EmitSizes *sizes; /* when not NULL, the printer reports the sizes of what it wrote */
    char **kernel_source;    /* when not NULL, a GPU printer gives its kernels' source (`--emit cuda`) */
} EmitOptions;

/* what the printed model occupies on the device: the struct's data (RAM) and the constant arrays (flash) */
typedef struct EmitSizes {
    int64_t ram_bytes;
    int64_t flash_bytes;       /* weights kept const, the values M_init copies, the kernels' constants */
    int64_t flash_const_bytes; /* of which the kernels' constants (folded tensors, tables) */
} EmitSizes;

typedef struct Target Target;

/* Writes the model's source text: *c_out the implementation, *h_out its header (NULL when amalgamated). */
typedef void PrintModel(const Target *t, Model *m, EntryCode *entries, int nentries, const EmitOptions *opt,
                        char **c_out, char **h_out);

struct Target {
    const char *name;          /* as --target spells it */
    const char *summary;       /* one line for --help and docs */
    const char *kernel_prefix; /* how a kernel function starts: "NNC_KERNEL void" */
    const char *restrict_kw;   /* "restrict", or "" where the dialect has none */
    int64_t index_max;         /* the most elements one value may have (the kernels' index type) */
    const char *index_type;    /* the type of a kernel's flat offsets: "int64_t", "int32_t" */
    int arena_align;           /* scratch buffers start at multiples of it (elements): 16 host, 1 firmware */
    bool blas;                 /* large matrix products may call cblas_sgemm (behind #if NNC_USE_BLAS) */
    /* firmware: <math.h> with the float functions (expf) instead of <tgmath.h>; parameters given by
     * --weights stay const arrays (flash) where nothing writes them; the generator exists only where
     * dropout needs it; no helpers for in-process use */
    bool firmware;
    bool gpu; /* kernels run on a GPU: the host code launches them through nnc's CUDA runtime (docs/cuda.md) */
    FusionLimits fuse;         /* what one kernel of this target may hold (pass_fuse) */
    PrintModel *print;
};

/* host C: index_max is int's, less a margin for the loops that step in blocks of 16 past the last block */
extern const Target target_host;
/* firmware C for microcontrollers (docs/mcu.md) */
extern const Target target_mcu;
/* host C that launches CUDA kernels through nnc's runtime (docs/cuda.md) */
extern const Target target_cuda;

/* Where a model tensor lives for target t: false in the struct (RAM), true as a const array that the
 * entry points read in place (flash): a firmware target's tensors with values from --weights that
 * nothing writes (for inference all parameters and state, which predict only reads; for training the
 * frozen parameters). */
bool target_tensor_in_flash(const Target *t, const Tensor *x, bool weights_baked, bool inference_only);

/* the target named `name` ("c", "mcu"), or NULL */
const Target *target_find(const char *name);

#endif
