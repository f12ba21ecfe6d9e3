/* pipeline.h: the compiler as one straight function: parse -> check -> lower -> autodiff -> passes ->
 * memory plan -> emit. The command line (main.c) and the drivers (train, predict, bench) call it. */
#ifndef NNC_PIPELINE_H
#define NNC_PIPELINE_H

#include "emit.h"
#include "onnx_import.h"

typedef struct CompileOptions {
    const char *model_path;
    const char *model_name; /* --model, or NULL */
    int batch;              /* --batch, or 0: train(batch=) in the file, else 32 */
    int opt_level;          /* -O0 .. -O2 */
    const char *passes;     /* --passes a,b: exactly these optimizing passes (tests), else by level */
    bool inference_only;    /* --inference */
    bool dump_ir;           /* --dump-ir: the IR after every pass, to stderr */
    bool jit;               /* one translation unit with the nnc_jit_* shim */
    bool shim;              /* the nnc_jit_* shim in the written .c too (--shim) */
    bool line_directives;
    const char *c_path;     /* the .c name written, for #line */
    const char *h_name;     /* the header's name, included by the .c */
    const char *command;    /* the command line, for the generated file's header comment */
    const char *weights;    /* compile: bake these values into M_init (--weights) */
    const nnc_safetensors *weights_set; /* or these (a .onnx model's initializers), when weights is NULL */
    const Target *target;   /* --target; NULL: target_host */
} CompileOptions;

typedef struct Compiled {
    Arena arena;
    Model *m;
    EntryCode entries[ENTRY_COUNT];
    int nentries;
    int max_batch;
    int opt_level;
    const Target *target;
    bool weights_baked, inference_only;
    EmitSizes sizes;       /* RAM and flash of what was printed (valid when c_text is) */
    char *c_text, *h_text; /* NULL until emitted */
    char *cuda_text;       /* a GPU target's kernel source (--emit cuda), else NULL */
} Compiled;

/* A .onnx model (onnx_is_model_path): imported once per process; its .nn text is what front_end parses and
 * its initializers are the weights when no --weights is given. NULL (diagnostics printed) when it cannot be
 * imported, and for a .nn path. */
const OnnxImport *onnx_model(const char *path);
/* the weights a command starts from: --weights (NULL here: the file is read by the caller), else a .onnx
 * model's initializers, else NULL */
const nnc_safetensors *default_weights(const char *model_path, const char *weights_option);

/* --data / -o NAME=FILE given a .onnx model's own input or output name: the .nn name it was given */
struct Binding;
void onnx_alias_bindings(const char *model_path, struct Binding *b, int n, bool outputs);

/* Parse and check only; NULL when errors were reported. */
Model *front_end(const char *path, const char *model_name, Arena *a);
/* Everything up to the memory plan (emit = false) or the C text too. NULL when errors were reported. */
Compiled *compile_model(const CompileOptions *o, bool emit);
/* --passes: every name known (fold simplify cse dce fuse reuse memplan); else false and the bad one */
bool passes_valid(const char *list, char *bad, size_t n);
void compiled_free(Compiled *c);
const EntryCode *compiled_entry(const Compiled *c, EntryKind k); /* NULL if the model has none */
/* The model's RAM: every tensor in the struct, the generator and the largest arena. */
int64_t compiled_ram_bytes(const Compiled *c);
/* --max-ram: false (and a per-tensor breakdown, largest first, printed) when over budget. */
bool compiled_check_ram(const Compiled *c, int64_t max_ram);
/* The constant data of a firmware model (flash): const parameters, initial values, kernel constants;
 * 0 for the host. Needs the printed model (compile_model(o, true)). */
int64_t compiled_flash_bytes(const Compiled *c);
/* --max-flash: false (and a per-tensor breakdown printed) when over budget. */
bool compiled_check_flash(const Compiled *c, int64_t max_flash);

#endif
