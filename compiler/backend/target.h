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
    int max_batch;
    int opt_level;
} EmitOptions;

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
    bool blas;                 /* large matrix products may call cblas_sgemm (behind #if NNC_USE_BLAS) */
    FusionLimits fuse;         /* what one kernel of this target may hold (pass_fuse) */
    PrintModel *print;
};

/* host C: index_max is int's, less a margin for the loops that step in blocks of 16 past the last block */
extern const Target target_host;

/* the target named `name` ("c"), or NULL */
const Target *target_find(const char *name);

#endif
