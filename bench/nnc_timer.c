/* nnc_timer.c: times the C that nnc generated, in-process, with no process or framework overhead.
 *
 * Built once per compiled model (the driver does it):
 *   nnc workloads/w2.nn --batch 32 -o gen/w2_b32.c --shim
 *   cc -O2 -march=native nnc_timer.c gen/w2_b32.c -DMAX_BATCH=32 -lopenblas -lm -o timer_w2_b32
 * and run as a worker (see worker.h):
 *   timer_w2_b32 --system nnc --out 1 --x x.npy --y y.npy --case W2.b32.train=train:32 --case W2.predict1=predict:1
 *
 * Case kinds:
 *   train:N       one train_step on N rows of the current data (N <= MAX_BATCH; default MAX_BATCH): each call
 *                 the next of the first min(rows / N, 50) consecutive batches, as training cycles through data
 *   predict:N     one predict on the first N rows
 *   epoch         one pass over all rows in shuffled batches of MAX_BATCH (a new permutation per epoch, the rows
 *                 gathered into a batch buffer, as `nnc train` does); the last batch may be partial
 *   predict_all   predict over all rows in order, in chunks of MAX_BATCH
 * --x / --y set the current data for the cases that follow; --out K is the output's elements per sample;
 * --defer A,B names cases not run at set-up (see worker.h).
 * Before every sample the model is restored from a snapshot taken after init (untimed), so every sample
 * times the same work and a long run cannot drift the weights anywhere strange.
 */
#include "worker.h"

#include <math.h>
#include <stdint.h>

/* a train case smaller than the data cycles through this many consecutive batches (peers/workloads.py) */
enum { CYCLE = 50 };

#ifndef MAX_BATCH
#error "compile with -DMAX_BATCH=<the batch the model was compiled for>"
#endif

size_t nnc_jit_model_size(void);
void nnc_jit_init(void *m, uint64_t seed);
void nnc_jit_predict(void *m, int n, void *const *io);
float nnc_jit_train_step(void *m, int n, void *const *io, float *metrics);
void openblas_set_num_threads(int);

static void *model, *snapshot;
static size_t model_size;
static long out_per_sample = 1;
static float last_loss;

enum { K_TRAIN, K_PREDICT, K_EPOCH, K_PREDICT_ALL };

typedef struct ctx {
    int kind, n;
    int cycle, next; /* train: batches cycled through, the next one */
    bw_array x, y;
    float *out;
    float *bx, *by; /* batch buffers for epoch */
    long *perm;
    uint64_t rng;
} ctx;

static void reset_(void *p)
{
    ((ctx *)p)->next = 0;
    memcpy(model, snapshot, model_size);
}

static uint64_t next_(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void call_(void *p)
{
    ctx *c = p;
    switch (c->kind) {
    case K_TRAIN: { /* the next of the cycle's batches: consecutive rows, no copy */
        long r0 = (long)c->next * c->n;
        void *io[2] = {(char *)c->x.data + r0 * c->x.per_row * 4, (char *)c->y.data + r0 * c->y.per_row * 4};
        last_loss = nnc_jit_train_step(model, c->n, io, NULL);
        c->next = (c->next + 1) % c->cycle;
        break;
    }
    case K_PREDICT: {
        void *io[2] = {c->x.data, c->out};
        nnc_jit_predict(model, c->n, io);
        break;
    }
    case K_EPOCH: {
        long rows = c->x.rows;
        for (long i = rows - 1; i > 0; i--) {
            long j = (long)(next_(&c->rng) % (uint64_t)(i + 1));
            long t = c->perm[i];
            c->perm[i] = c->perm[j];
            c->perm[j] = t;
        }
        size_t xs = (size_t)c->x.per_row * 4, ys = (size_t)c->y.per_row * 4;
        for (long b = 0; b < rows; b += MAX_BATCH) {
            int n = (int)(rows - b < MAX_BATCH ? rows - b : MAX_BATCH);
            for (int i = 0; i < n; i++) {
                memcpy((char *)c->bx + i * xs, (char *)c->x.data + c->perm[b + i] * xs, xs);
                memcpy((char *)c->by + i * ys, (char *)c->y.data + c->perm[b + i] * ys, ys);
            }
            void *io[2] = {c->bx, c->by};
            last_loss = nnc_jit_train_step(model, n, io, NULL);
        }
        break;
    }
    case K_PREDICT_ALL: {
        size_t xs = (size_t)c->x.per_row * 4;
        for (long b = 0; b < c->x.rows; b += MAX_BATCH) {
            int n = (int)(c->x.rows - b < MAX_BATCH ? c->x.rows - b : MAX_BATCH);
            void *io[2] = {(char *)c->x.data + b * xs, c->out + b * out_per_sample};
            nnc_jit_predict(model, n, io);
        }
        break;
    }
    }
}

/* the loss of the last train step of the warm-up: the driver flags a NaN */
static const char *info_(void)
{
    static char buf[128];
    if (isfinite(last_loss)) snprintf(buf, sizeof buf, "{\"loss\": %.6g}", (double)last_loss);
    else snprintf(buf, sizeof buf, "{\"loss\": null}");
    return buf;
}

static int usage_(void)
{
    fprintf(stderr, "usage: nnc_timer --system NAME [--defer A,B] --out K [--x X.npy] [--y Y.npy] --case NAME=KIND[:N] ...\n");
    return 2;
}

int main(int argc, char **argv)
{
    openblas_set_num_threads(1);
    const char *system = "nnc";
    bw_array x = {0}, y = {0};
    bw_case cases[32];
    int ncases = 0;
    const char *defer = "";
    double warm_s = 0.3;
    model_size = nnc_jit_model_size();
    model = bw_alloc(model_size);
    snapshot = malloc(model_size);
    nnc_jit_init(model, 0);
    memcpy(snapshot, model, model_size);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage_();
        i++;
        if (!strcmp(a, "--system")) system = v;
        else if (!strcmp(a, "--out")) out_per_sample = atol(v);
        else if (!strcmp(a, "--warm")) warm_s = atof(v);
        else if (!strcmp(a, "--defer")) defer = v;
        else if (!strcmp(a, "--x")) {
            if (!bw_load_npy(v, &x)) return 1;
        } else if (!strcmp(a, "--y")) {
            if (!bw_load_npy(v, &y)) return 1;
        } else if (!strcmp(a, "--case")) {
            const char *eq = strchr(v, '=');
            if (!eq || ncases == 32) return usage_();
            ctx *c = calloc(1, sizeof *c);
            c->x = x;
            c->y = y;
            c->rng = 0x9E3779B97F4A7C15ull;
            const char *kind = eq + 1, *colon = strchr(kind, ':');
            c->n = colon ? atoi(colon + 1) : MAX_BATCH;
            size_t klen = colon ? (size_t)(colon - kind) : strlen(kind);
            if (!strncmp(kind, "train", klen) && klen == 5) c->kind = K_TRAIN;
            else if (!strncmp(kind, "predict", klen) && klen == 7) c->kind = K_PREDICT;
            else if (!strncmp(kind, "epoch", klen) && klen == 5) c->kind = K_EPOCH;
            else if (!strncmp(kind, "predict_all", klen) && klen == 11) c->kind = K_PREDICT_ALL;
            else return usage_();
            if (!c->x.data || ((c->kind == K_TRAIN || c->kind == K_EPOCH) && !c->y.data)) {
                fprintf(stderr, "case %s needs --x%s first\n", v, c->kind == K_PREDICT ? "" : " and --y");
                return 2;
            }
            if (c->n < 1 || c->n > MAX_BATCH || c->n > c->x.rows) {
                fprintf(stderr, "case %s: N must be in 1..%d and at most the data's rows\n", v, MAX_BATCH);
                return 2;
            }
            c->cycle = (int)(c->x.rows / c->n < CYCLE ? c->x.rows / c->n : CYCLE);
            long out_rows = c->kind == K_PREDICT_ALL ? c->x.rows : MAX_BATCH;
            c->out = bw_alloc((size_t)(out_rows * out_per_sample) * 4);
            if (c->kind == K_EPOCH) {
                c->bx = bw_alloc((size_t)(MAX_BATCH * x.per_row) * 4);
                c->by = bw_alloc((size_t)(MAX_BATCH * y.per_row) * 4);
                c->perm = malloc(sizeof(long) * (size_t)x.rows);
                for (long r = 0; r < x.rows; r++) c->perm[r] = r;
            }
            char *name = malloc((size_t)(eq - v) + 1);
            memcpy(name, v, (size_t)(eq - v));
            name[eq - v] = 0;
            cases[ncases++] = (bw_case){.name = name, .call = call_, .reset = reset_, .ctx = c, .first_call_s = 0, .deferred = 0};
        } else
            return usage_();
    }
    if (!ncases) return usage_();
    for (int i = 0; i < ncases; i++) { /* --defer A,B: those cases are warmed up by the driver's first sample */
        size_t n = strlen(cases[i].name);
        for (const char *d = defer; *d;) {
            const char *e = strchr(d, ',');
            size_t len = e ? (size_t)(e - d) : strlen(d);
            if (len == n && !strncmp(d, cases[i].name, n)) cases[i].deferred = 1;
            d += len + (e != NULL);
        }
    }
    return bw_serve(system, cases, ncases, warm_s, info_);
}
