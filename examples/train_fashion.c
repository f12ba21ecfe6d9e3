/* train_fashion.c: a custom training loop in plain C around a model compiled by nnc.
 *
 * `nnc train` runs a fixed loop: shuffle, step, report, save. When you want a different loop you write it
 * yourself against the generated API, and this file is that story end to end for the Fashion-MNIST CNN of
 * models/fashion_cnn.nn, compiled at build time by nnc_add_model() (examples/CMakeLists.txt):
 *
 *   1. load the IDX.gz files with the runtime's nnc_data_read, scale the u8 pixels to [0,1] floats and
 *      convert the labels to int32 (the types the generated header asks for);
 *   2. carve a validation split out of the training set (the test set stays untouched until the end);
 *   3. each epoch, shuffle with our own seeded generator and call fashion_cnn_train_step_metrics batch by
 *      batch, averaging the loss and accuracy it reports;
 *   4. evaluate the validation split with fashion_cnn_eval and stop early when its loss has not improved
 *      for `patience` epochs, saving the best weights with nnc_model_save whenever it does improve;
 *   5. reload the best weights with nnc_model_load into a freshly initialised model, evaluate the test
 *      set, and show fashion_cnn_predict on a few test images.
 *
 * What the loop cannot change is compiled into the model: the architecture, the loss, the optimizer and
 * its learning rate, and the maximum batch (FASHION_CNN_MAX_BATCH, from `BATCH 32`). Everything around
 * the step -- data, order, splits, when to stop, what to keep -- is ours.
 *
 * The model struct is a `static` of about 8 MB (FASHION_CNN_RAM_BYTES) holding parameters, Adam state,
 * gradients and the scratch arena: the generated code allocates nothing. Only the data set is malloc'd.
 *
 *   train_fashion [-e epochs] [-n limit] [-o best.safetensors] [-p patience] [-s seed] [-d datadir]
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, isatty */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fashion_cnn.h"   /* generated from models/fashion_cnn.nn by nnc_add_model */
#include "nnc_runtime.h"   /* data files and checkpoints */

#define BATCH FASHION_CNN_MAX_BATCH
#define PIXELS (28 * 28)
#define VAL_FRACTION 10    /* percent of the training images held out for validation */

static const char *class_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

/* The whole model: parameters, Adam state, gradients and scratch, no pointers inside. */
static fashion_cnn model;

typedef struct {
    int n;
    float *x;   /* [n,28,28,1], in [0,1] */
    int32_t *y; /* [n], 0..9 */
} Dataset;

typedef struct {
    double loss, accuracy;
} Score;

/* ---- small utilities ------------------------------------------------------------------------------ */

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* splitmix64: our own generator for the split and the shuffles, independent of the model's */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* uniform in [0, n) by multiply-shift (the bias is below 2^-32 for n <= 60000) */
static int rng_below(uint64_t *s, int n) { return (int)(((rng_next(s) >> 32) * (uint64_t)n) >> 32); }

/* Fisher-Yates */
static void shuffle(int *idx, int n, uint64_t *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rng_below(rng, i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static int argmax10(const float *p)
{
    int best = 0;
    for (int k = 1; k < 10; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* ---- data ----------------------------------------------------------------------------------------- */

/* Reads DIR/SPLIT-images-idx3-ubyte.gz ([N,28,28] u8) and DIR/SPLIT-labels-idx1-ubyte.gz ([N] u8),
 * keeping the first `limit` samples when limit > 0. The IDX reader decompresses and checks the header;
 * we check the shapes the model needs and convert: pixels / 255 as f32, labels as i32. */
static int dataset_load(Dataset *d, const char *dir, const char *split, int limit)
{
    char path[1024], err[1536];
    nnc_array img = {0}, lab = {0};
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, split);
    if (nnc_data_read(path, &img, err, sizeof err) != 0) goto fail;
    if (img.rank != 3 || img.shape[1] != 28 || img.shape[2] != 28) {
        snprintf(err, sizeof err, "%s: expected [N,28,28] images", path);
        goto fail;
    }
    if (nnc_array_convert(&img, NNC_F32, path, err, sizeof err) != 0) goto fail;
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    if (nnc_data_read(path, &lab, err, sizeof err) != 0) goto fail;
    if (lab.rank != 1 || lab.shape[0] != img.shape[0]) {
        snprintf(err, sizeof err, "%s: expected %lld labels", path, (long long)img.shape[0]);
        goto fail;
    }
    if (nnc_array_convert(&lab, NNC_I32, path, err, sizeof err) != 0) goto fail;

    d->n = (int)img.shape[0];
    if (limit > 0 && limit < d->n) d->n = limit;
    d->x = img.data; /* we take ownership of both buffers */
    d->y = lab.data;
    for (int64_t i = 0; i < (int64_t)d->n * PIXELS; i++) d->x[i] /= 255.0f;
    return 0;
fail:
    fprintf(stderr, "train_fashion: %s\n", err);
    nnc_array_free(&img);
    nnc_array_free(&lab);
    return -1;
}

/* Copies the samples idx[0..n) into contiguous batch buffers: the generated API takes plain arrays. */
static void gather(const Dataset *d, const int *idx, int n, float *x, int32_t *y)
{
    for (int i = 0; i < n; i++) {
        memcpy(x + (size_t)i * PIXELS, d->x + (size_t)idx[i] * PIXELS, PIXELS * sizeof *x);
        y[i] = d->y[idx[i]];
    }
}

/* ---- the loop ------------------------------------------------------------------------------------- */

static float batch_x[BATCH * PIXELS];
static int32_t batch_y[BATCH];

/* Loss and accuracy of the model on the samples idx[0..n) (all of d when idx is NULL), in batches of at
 * most BATCH. Each batch's mean is weighted by its size, so a short last batch counts for what it is. */
static Score evaluate(fashion_cnn *m, const Dataset *d, const int *idx, int n)
{
    double loss = 0, correct = 0;
    for (int i = 0; i < n; i += BATCH) {
        int b = n - i < BATCH ? n - i : BATCH;
        const float *x = d->x + (size_t)i * PIXELS; /* contiguous: no copy needed */
        const int32_t *y = d->y + i;
        if (idx) {
            gather(d, idx + i, b, batch_x, batch_y);
            x = batch_x;
            y = batch_y;
        }
        float metrics[1]; /* fashion_cnn.nn declares one metric: accuracy */
        loss += (double)fashion_cnn_eval(m, b, x, y, metrics) * b;
        correct += (double)metrics[0] * b;
    }
    Score s = {loss / n, correct / n};
    return s;
}

/* One pass over idx[0..n) in a fresh random order; returns the mean training loss and accuracy as
 * measured during the steps (the weights move under them, as in Keras' progress bar). */
static Score train_epoch(fashion_cnn *m, const Dataset *d, int *idx, int n, uint64_t *rng)
{
    double loss = 0, correct = 0, t0 = now_seconds();
    int steps = (n + BATCH - 1) / BATCH, tty = isatty(2);
    shuffle(idx, n, rng);
    for (int s = 0; s < steps; s++) {
        int i = s * BATCH, b = n - i < BATCH ? n - i : BATCH;
        gather(d, idx + i, b, batch_x, batch_y);
        float metrics[1];
        float l = fashion_cnn_train_step_metrics(m, b, batch_x, batch_y, metrics);
        if (!isfinite(l)) {
            fprintf(stderr, "train_fashion: loss is %g at step %d: diverged\n", (double)l, s + 1);
            exit(3);
        }
        loss += (double)l * b;
        correct += (double)metrics[0] * b;
        if (tty && ((s + 1) % 50 == 0 || s + 1 == steps))
            fprintf(stderr, "\r  step %d/%d  loss %.4f  accuracy %.4f  %.1fs ", s + 1, steps, loss / (i + b),
                    correct / (i + b), now_seconds() - t0);
    }
    if (tty) fprintf(stderr, "\r%*s\r", 70, "");
    Score sc = {loss / n, correct / n};
    return sc;
}

static int save_weights(const fashion_cnn *m, const char *path)
{
    char err[512];
    if (nnc_model_save(path, m, fashion_cnn_tensors, fashion_cnn_num_tensors, NULL, 0, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "train_fashion: %s\n", err);
    return -1;
}

/* Reinitialises the model with another seed, then loads the file: what we evaluate afterwards comes from
 * the checkpoint alone. Parameters (and state, of which this model has none) must all be in the file. */
static int load_weights(fashion_cnn *m, const char *path, uint64_t seed)
{
    char err[512];
    nnc_safetensors st = {0};
    int loaded = 0, unused = 0;
    fashion_cnn_init(m, seed);
    int rc = nnc_st_read(path, &st, err, sizeof err);
    if (rc == 0)
        rc = nnc_model_load(&st, path, m, fashion_cnn_tensors, fashion_cnn_num_tensors,
                            NNC_LOAD_PARAMS | NNC_LOAD_STATE, &loaded, &unused, err, sizeof err);
    nnc_st_free(&st);
    if (rc != 0) {
        fprintf(stderr, "train_fashion: %s\n", err);
        return -1;
    }
    printf("loaded %d tensors from %s (%d in the file not used)\n", loaded, path, unused);
    return 0;
}

/* Predicts the first `n` test images in one call and prints them against their labels. */
static void show_predictions(fashion_cnn *m, const Dataset *test, int n)
{
    static float probs[BATCH * 10];
    if (n > BATCH) n = BATCH;
    if (n > test->n) n = test->n;
    fashion_cnn_predict(m, n, test->x, probs);
    for (int i = 0; i < n; i++) {
        int k = argmax10(probs + i * 10), y = test->y[i];
        printf("  test image %d: %-11s %5.1f%%   true %s%s\n", i, class_names[k], 100.0 * probs[i * 10 + k],
               class_names[y], k == y ? "" : "   <- wrong");
    }
}

/* ---- main ----------------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: train_fashion [-e epochs] [-n limit] [-o best.safetensors] [-p patience] [-s seed] [-d datadir]\n"
            "  -e  epochs to train at most (default 1)\n"
            "  -n  use only the first N training and N test images (default: all)\n"
            "  -o  where the best weights go (default fashion_best.safetensors)\n"
            "  -p  stop after this many epochs without a better validation loss (default 3)\n"
            "  -s  seed of the initial weights and the shuffles (default 0)\n"
            "  -d  directory of the *-ubyte.gz files (default /usr/share/datasets/fashion-mnist)\n");
    exit(2);
}

typedef struct {
    int epochs, limit, patience;
    uint64_t seed;
    const char *out, *dir;
} Options;

static Options parse_args(int argc, char **argv)
{
    Options o = {1, 0, 3, 0, "fashion_best.safetensors", "/usr/share/datasets/fashion-mnist"};
    for (int i = 1; i < argc; i += 2) { /* llm.c style: every option is -x value */
        if (i + 1 >= argc || argv[i][0] != '-' || strlen(argv[i]) != 2) usage();
        const char *v = argv[i + 1];
        switch (argv[i][1]) {
        case 'e': o.epochs = atoi(v); break;
        case 'n': o.limit = atoi(v); break;
        case 'o': o.out = v; break;
        case 'p': o.patience = atoi(v); break;
        case 's': o.seed = strtoull(v, NULL, 10); break;
        case 'd': o.dir = v; break;
        default: usage();
        }
    }
    if (o.epochs < 1 || o.limit < 0 || o.patience < 1) usage();
    return o;
}

/* The custom loop: train, validate, keep the best, stop early. Returns the best epoch (0 on error). */
static int fit(fashion_cnn *m, const Dataset *d, int *train_idx, int ntrain, const int *val_idx, int nval,
               const Options *o, uint64_t *rng)
{
    double best_loss = INFINITY;
    int best_epoch = 0;
    for (int epoch = 1; epoch <= o->epochs; epoch++) {
        double t0 = now_seconds();
        Score tr = train_epoch(m, d, train_idx, ntrain, rng);
        Score va = evaluate(m, d, val_idx, nval);
        printf("epoch %d/%d  loss %.4f  accuracy %.4f  val_loss %.4f  val_accuracy %.4f  %.1fs", epoch,
               o->epochs, tr.loss, tr.accuracy, va.loss, va.accuracy, now_seconds() - t0);
        if (va.loss < best_loss) {
            best_loss = va.loss;
            best_epoch = epoch;
            if (save_weights(m, o->out) != 0) return 0;
            printf("  -> saved %s\n", o->out);
        } else {
            printf("  (best: epoch %d)\n", best_epoch);
            if (epoch - best_epoch >= o->patience) {
                printf("early stop: val_loss has not improved for %d epochs\n", o->patience);
                break;
            }
        }
        fflush(stdout); /* one line per epoch even through a pipe or into a log file */
    }
    return best_epoch;
}

int main(int argc, char **argv)
{
    Options o = parse_args(argc, argv);
    Dataset train, test;
    double t0 = now_seconds();
    if (dataset_load(&train, o.dir, "train", o.limit) != 0 || dataset_load(&test, o.dir, "t10k", o.limit) != 0)
        return 1;

    /* The validation split: a fixed random 10% of the training images, chosen once. */
    uint64_t rng = o.seed ^ 0x5eed;
    int *idx = malloc((size_t)train.n * sizeof *idx);
    if (!idx) return 1;
    for (int i = 0; i < train.n; i++) idx[i] = i;
    shuffle(idx, train.n, &rng);
    int nval = train.n * VAL_FRACTION / 100, ntrain = train.n - nval;
    printf("fashion_cnn: %d train, %d validation, %d test images (loaded in %.1fs); batch %d, model struct %zu bytes\n",
           ntrain, nval, test.n, now_seconds() - t0, BATCH, sizeof model);
    if (ntrain < 1 || nval < 1) {
        fprintf(stderr, "train_fashion: -n %d leaves no training or validation images\n", o.limit);
        return 1;
    }

    fashion_cnn_init(&model, o.seed);
    int best_epoch = fit(&model, &train, idx, ntrain, idx + ntrain, nval, &o, &rng);
    if (best_epoch == 0 || load_weights(&model, o.out, o.seed + 1) != 0) return 1;
    Score te = evaluate(&model, &test, NULL, test.n);
    printf("test (weights of epoch %d): loss %.4f  accuracy %.4f\n", best_epoch, te.loss, te.accuracy);
    show_predictions(&model, &test, 8);
    printf("total %.1fs\n", now_seconds() - t0);

    free(idx);
    free(train.x), free(train.y), free(test.x), free(test.y);
    return 0;
}
