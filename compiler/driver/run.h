/* run.h: running a compiled model inside nnc (train, predict, bench): build it with the JIT, move weights
 * in and out, and bind data files to its inputs and targets. */
#ifndef NNC_RUN_H
#define NNC_RUN_H

#include "commands.h"
#include "nnc_jit.h"
#include "nnc_runtime.h"
#include "pipeline.h"

typedef struct Runner {
    nnc_jit *jit;
    void *model;  /* the model's tensors at the table's offsets (for --target cuda a host copy of the device's) */
    size_t size;
    void *handle; /* what the entry points take: model, or for cuda the generated struct with the runtime */
    bool cuda;
    int (*cuda_init)(void *m, uint64_t seed);
    void (*cuda_free)(void *m);
    const char *(*cuda_error)(void *m);
    const char *(*cuda_device)(void *m); /* "emulator" or the GPU's name */
    int (*cuda_pull)(void *m, void *image);
    int (*cuda_push)(void *m, const void *image);
    const nnc_tensor_info *tensors;
    int ntensors;
    void (*init)(void *m, uint64_t seed);
    void (*predict)(void *m, int n, void *const *io);
    float (*train_step)(void *m, int n, void *const *io, float *metrics);
    float (*eval)(void *m, int n, void *const *io, float *metrics);
} Runner;

/* Compile the C of `c` (built with CompileOptions.jit) in-process and allocate one model. Reports and
 * returns false on failure. */
bool runner_open(Runner *r, const Compiled *c, int opt_level);
void runner_close(Runner *r);
/* M_init(seed); false (reported) when a GPU model could not start */
bool runner_init(Runner *r, uint64_t seed);
/* --target cuda: the device's tensors into r->model (pull) or from it (push); no-ops on the host. False
 * (reported) on a device failure. */
bool runner_pull(Runner *r);
bool runner_push(Runner *r);
/* Load weights; flags as nnc_model_load. Reports and returns false on failure. `keep` (may be NULL)
 * receives the file's tensors for the caller to read more from (then nnc_st_free it). */
bool runner_load_weights(Runner *r, const char *path, int flags, nnc_safetensors *keep);
/* The same from tensors already read from `path`. */
bool runner_load_st(Runner *r, const nnc_safetensors *st, const char *path, int flags);

/* Arrays bound to a model's inputs (then its targets), converted to their dtype, all with `count`
 * samples. */
typedef struct DataSet {
    int64_t count;
    int n;
    nnc_array arr[16];
    int64_t per_sample[16]; /* elements per sample */
    const char *path[16];
} DataSet;

/* Whether every input (and target when `targets`) gets exactly one file from the bindings, and every
 * binding names one of them: the command line's part of data_bind, checked before any file is read.
 * Reports and returns false when not (a command-line error: exit 2). */
bool data_bindings_ok(const Model *m, const Binding *b, int nb, bool targets, const char *what);
/* Bind files to the model's inputs (and targets when `targets`). `what` names the set in messages
 * ("--data", "--val"). Checks names, shapes, dtypes, equal sample counts and class-index ranges. */
bool data_bind(const Model *m, const Binding *b, int nb, bool targets, const char *what, DataSet *ds);
/* The built-in Fashion-MNIST: split "train" or "t10k", images [N,28,28,1] scaled to [0,1], and the labels
 * when `targets` (as class indices, or one-hot for an f32[10] target). */
bool data_fashion_mnist(const Model *m, const char *split, bool targets, DataSet *ds);
void data_free(DataSet *ds);

/* NNC_THREADS, the threads OpenBLAS may use: unset means 1, else a whole number from 1 to
 * RUN_MAX_THREADS. Reports (nnc: error: ...) and returns false for anything else. */
enum { RUN_MAX_THREADS = 256 };
bool run_threads(int *n);

/* Compile options for running in-process. */
CompileOptions run_compile_options(const Options *o, bool inference_only);

#endif
