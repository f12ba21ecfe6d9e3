/* regression.c: the smallest whole story -- a model compiled by nnc, trained in C on data made in C.
 *
 * examples/regression.nn is a 2 -> 32 -> 32 -> 1 tanh MLP with an MSE loss and Adam. nnc_add_model()
 * turns it into regression.c/.h at build time; this program links that and nothing else: no nnc runtime,
 * no BLAS at this size, no files. What the generated code needs is libm (tanh, sqrt) and the C library's
 * <string.h>; it calls no malloc, so the model is one `static` struct of about 43 KB (REGRESSION_RAM_BYTES)
 * and the same source would build for a microcontroller.
 *
 * The task: learn f(a, b) = sin(pi a) cos(pi b / 2) + b / 2 on [-1,1]^2 from samples with Gaussian noise
 * of standard deviation 0.05, so the best possible test MSE against noisy targets is 0.0025. Each step
 * draws a fresh batch from our own seeded generator; a fixed test set of 1024 noisy samples measures
 * progress with regression_eval.
 *
 * Determinism: with the same seed, build and data, nnc's generated code gives bit-identical weights. We
 * train twice from scratch and compare a hash of the parameters (read through regression_tensors) to
 * show it, and print the final loss as a hex float so two runs can be compared exactly too.
 *
 *   regression [steps (default 3000)] [seed (default 0)]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regression.h" /* generated from examples/regression.nn */

#define BATCH REGRESSION_MAX_BATCH
#define NTEST 1024
#define NOISE 0.05
#define PI 3.14159265358979323846

static regression model; /* parameters, Adam state, gradients and scratch: no malloc anywhere */

static float test_x[NTEST * 2], test_y[NTEST];

/* splitmix64, and from it uniforms in [-1,1) and standard normals (Box-Muller) */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1p-53; } /* [0,1) */

static double rng_normal(uint64_t *s)
{
    double u = 1.0 - rng_uniform(s), v = rng_uniform(s); /* u in (0,1]: log(u) is finite */
    return sqrt(-2.0 * log(u)) * cos(2.0 * PI * v);
}

static double target_fn(double a, double b) { return sin(PI * a) * cos(PI * b / 2) + b / 2; }

/* n samples: x [n,2] uniform on [-1,1]^2, y [n,1] = f(x) + noise */
static void make_samples(int n, float *x, float *y, uint64_t *rng)
{
    for (int i = 0; i < n; i++) {
        double a = 2 * rng_uniform(rng) - 1, b = 2 * rng_uniform(rng) - 1;
        x[2 * i] = (float)a;
        x[2 * i + 1] = (float)b;
        y[i] = (float)(target_fn(a, b) + NOISE * rng_normal(rng));
    }
}

/* mean test loss over the fixed test set, in batches of at most BATCH */
static double test_mse(void)
{
    double sum = 0;
    for (int i = 0; i < NTEST; i += BATCH) {
        int n = NTEST - i < BATCH ? NTEST - i : BATCH;
        sum += (double)regression_eval(&model, n, test_x + 2 * i, test_y + i, NULL) * n;
    }
    return sum / NTEST;
}

/* FNV-1a over the bytes of every parameter, found by name, shape and offset in the generated table */
static uint64_t params_hash(void)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (int t = 0; t < regression_num_tensors; t++) {
        const nnc_tensor_info *ti = &regression_tensors[t];
        if (ti->kind != 0) continue;
        size_t n = 4;
        for (int k = 0; k < ti->rank; k++) n *= (size_t)ti->shape[k];
        const unsigned char *p = (const unsigned char *)&model + ti->offset;
        for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3u;
    }
    return h;
}

/* Trains from scratch for `steps` steps on fresh batches; returns the final test MSE. */
static double train(int steps, uint64_t seed, int verbose)
{
    static float x[BATCH * 2], y[BATCH];
    uint64_t rng = seed * 2 + 1; /* the data stream; the model's own generator is seeded by _init */
    regression_init(&model, seed);
    for (int s = 1; s <= steps; s++) {
        make_samples(BATCH, x, y, &rng);
        float metrics[1]; /* regression.nn declares one metric: mae */
        float loss = regression_train_step_metrics(&model, BATCH, x, y, metrics);
        if (verbose && (s % 500 == 0 || s == 1))
            printf("step %5d  loss %.5f  mae %.4f  test mse %.5f\n", s, (double)loss, (double)metrics[0], test_mse());
    }
    return test_mse();
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 3000;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
    if (steps < 1) {
        fprintf(stderr, "usage: regression [steps] [seed]\n");
        return 2;
    }
    uint64_t test_rng = 12345;
    make_samples(NTEST, test_x, test_y, &test_rng);
    printf("regression: %d steps of batch %d, model struct %zu bytes (static)\n", steps, BATCH, sizeof model);

    double mse = train(steps, seed, 1);
    uint64_t h1 = params_hash();
    double again = train(steps, seed, 0);
    uint64_t h2 = params_hash();
    printf("deterministic: %s (parameter hash %016llx, second run %016llx)\n",
           h1 == h2 && mse == again ? "yes" : "NO", (unsigned long long)h1, (unsigned long long)h2);

    static const float probe[4][2] = {{0, 0}, {0.5f, 0}, {-0.5f, 0.5f}, {0.9f, -0.9f}};
    float pred[4];
    regression_predict(&model, 4, &probe[0][0], pred);
    for (int i = 0; i < 4; i++)
        printf("  f(%5.2f, %5.2f) = %7.4f   predicted %7.4f\n", (double)probe[i][0], (double)probe[i][1],
               target_fn(probe[i][0], probe[i][1]), (double)pred[i]);
    printf("final test mse %.5f (%a); noise floor %.5f\n", mse, mse, NOISE * NOISE);
    return h1 == h2 && mse == again ? 0 : 1;
}
