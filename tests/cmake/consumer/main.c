/* tests/cmake/consumer/main.c: drives the model that nnc_add_model built, through its generated header
 * only, as a user program would. Built twice: `consumer` (training build) and `consumer_infer`
 * (CONSUMER_INFERENCE: the --inference -O0 --batch 4 build); and, where nnc has its CUDA runtime, a third
 * time as `consumer_cuda` (CONSUMER_CUDA: TARGET cuda, run under NNC_CUDA_EMULATE=1 without a GPU), whose
 * weights go through M_get_tensor / M_set_tensor instead of a checkpoint.
 *
 * Checks: predict after init(seed 0) is finite and bit-identical across two inits, and differs for
 * seed 1; with training, 200 train steps on a fixed regression problem cut the loss to a quarter, and
 * the trained weights survive a save and load through nnc_runtime. It prints the predictions after
 * init, so run_consumer.sh can compare both builds and two runs. It does not depend on layer widths.
 * Usage: consumer [WEIGHTS.safetensors]   (exit 0: all checks passed)
 */
#ifdef CONSUMER_INFERENCE
#include "regress_infer.h"
#if REGRESS_MAX_BATCH != 4
#error "BATCH 4 did not reach the generated header"
#endif
#elif defined(CONSUMER_CUDA)
#include "regress_cuda.h"
#else
#include "regress.h"
#include "nnc_runtime.h"
#if REGRESS_MAX_BATCH != 32
#error "the model's train(batch=32) did not reach the generated header"
#endif
#endif

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_IN 4
#define N_PROBE 4
#define N_TRAIN 32

static regress m, m2; /* static: the structs hold their arena */
static int failures;

static void check_(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "consumer: FAIL: %s\n", what);
        failures++;
    }
}

/* Inputs in [-1, 1] from a fixed LCG, so every run and build sees the same data. */
static void fill_inputs_(float *x, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) * 0x1p-23f - 1.0f;
    }
}

static int all_finite_(const float *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* M_init; the CUDA target's returns 0 on success, else M_error says why */
static void init_(regress *x, uint64_t seed)
{
#ifdef CONSUMER_CUDA
    regress_free(x);
    int rc = regress_init(x, seed);
    check_(rc == 0, rc == 0 ? "init" : regress_error(x));
#else
    regress_init(x, seed);
#endif
}

static void check_init_(const float *probe, float *pred)
{
    float again[N_PROBE], other[N_PROBE];
    init_(&m, 0);
    regress_predict(&m, N_PROBE, probe, pred);
    check_(all_finite_(pred, N_PROBE), "predict after init(0) is finite");
    init_(&m2, 0);
    regress_predict(&m2, N_PROBE, probe, again);
    check_(memcmp(pred, again, sizeof again) == 0, "init(0) twice gives bit-identical predictions");
    init_(&m2, 1);
    regress_predict(&m2, N_PROBE, probe, other);
    check_(memcmp(pred, other, sizeof other) != 0, "init(1) differs from init(0)");
    regress_predict(&m, 1, probe, again);
    check_(again[0] == pred[0], "a batch of 1 predicts what a batch of 4 did for its sample");
}

#ifndef CONSUMER_INFERENCE
/* y = 0.5 x0 - x1 + 0.25 x2 x3 + 0.1: a smooth target a 4-h-1 tanh network fits quickly. */
static void check_training_(void)
{
    float x[N_TRAIN * N_IN], y[N_TRAIN];
    fill_inputs_(x, N_TRAIN * N_IN, 7);
    for (int i = 0; i < N_TRAIN; i++) {
        const float *xi = x + i * N_IN;
        y[i] = 0.5f * xi[0] - xi[1] + 0.25f * xi[2] * xi[3] + 0.1f;
    }
    init_(&m, 0);
    float first = regress_train_step(&m, N_TRAIN, x, y), last = first;
    for (int step = 1; step < 200; step++) last = regress_train_step(&m, N_TRAIN, x, y);
    float eval_loss = regress_eval(&m, N_TRAIN, x, y, NULL);
    printf("train: loss %.6f -> %.6f (eval %.6f)\n", first, last, eval_loss);
    check_(isfinite(first) && isfinite(last), "training losses are finite");
    check_(last < 0.25f * first, "200 train steps cut the loss to under a quarter");
    check_(eval_loss <= last * 1.05f + 1e-6f, "eval after training agrees with the last step's loss");
}

#ifdef CONSUMER_CUDA
/* Copy every tensor of the trained model into a differently initialised one: same outputs. */
static void check_save_load_(const char *path, const float *probe)
{
    static float buf[1 << 16];
    float want[N_PROBE], got[N_PROBE];
    (void)path;
    regress_predict(&m, N_PROBE, probe, want);
    init_(&m2, 123);
    for (int i = 0; i < regress_num_tensors; i++) {
        size_t count = 1;
        for (int k = 0; k < regress_tensors[i].rank; k++) count *= (size_t)regress_tensors[i].shape[k];
        check_(count <= sizeof buf / sizeof buf[0], "a tensor fits the copy buffer");
        check_(regress_get_tensor(&m, i, buf) == 0 && regress_set_tensor(&m2, i, buf) == 0, "get and set a tensor");
    }
    regress_predict(&m2, N_PROBE, probe, got);
    check_(memcmp(want, got, sizeof got) == 0, "predictions survive copying every tensor");
    regress_free(&m);
    regress_free(&m2);
}
#else
/* Save the trained model with nnc_runtime, load it into a differently initialised one: same outputs. */
static void check_save_load_(const char *path, const float *probe)
{
    char err[256];
    float want[N_PROBE], got[N_PROBE];
    regress_predict(&m, N_PROBE, probe, want);
    if (nnc_model_save(path, &m, regress_tensors, regress_num_tensors, NULL, 0, err, sizeof err) != 0) {
        check_(0, err);
        return;
    }
    nnc_safetensors st = {0};
    if (nnc_st_read(path, &st, err, sizeof err) != 0) {
        check_(0, err);
        return;
    }
    init_(&m2, 123);
    int loaded = 0;
    int rc = nnc_model_load(&st, path, &m2, regress_tensors, regress_num_tensors, NNC_LOAD_PARAMS,
                            &loaded, NULL, err, sizeof err);
    nnc_st_free(&st);
    check_(rc == 0, rc == 0 ? "load" : err);
    check_(loaded > 0, "the checkpoint held the model's tensors");
    regress_predict(&m2, N_PROBE, probe, got);
    check_(memcmp(want, got, sizeof got) == 0, "predictions survive a save and load");
}
#endif
#endif

int main(int argc, char **argv)
{
    float probe[N_PROBE * N_IN], pred[N_PROBE];
    fill_inputs_(probe, N_PROBE * N_IN, 1);
    check_init_(probe, pred);
    printf("init:");
    for (int i = 0; i < N_PROBE; i++) printf(" %.9g", pred[i]);
    printf("\n");
#ifndef CONSUMER_INFERENCE
    check_training_();
    check_save_load_(argc > 1 ? argv[1] : "consumer.safetensors", probe);
#else
    (void)argc;
    (void)argv;
#endif
    if (failures) return 1;
    printf("consumer: ok\n");
    return 0;
}
