/* cmd_bench.c: `nnc bench`: time predict and train_step of the compiled model on random data at the
 * compiled batch; print the median microseconds per call and the achieved GFLOP/s.
 *
 * Each sample times a group of calls long enough (>= 1 ms) for the clock; the median of the samples is
 * reported. The train step changes the weights, so they are restored from a snapshot between samples
 * (outside the timed region): every sample times the same work.
 */
#include "flops.h"
#include "run.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double_(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* random inputs and targets for one batch: normal floats, class indices in range */
static void fill_random_(const Model *m, int batch, void **io, int *nio)
{
    uint64_t s = 42;
    int k = 0;
    for (int i = 0; i < m->inputs.len + m->targets.len; i++) {
        const IOSlot *slot = i < m->inputs.len ? &m->inputs.data[i] : &m->targets.data[i - m->inputs.len];
        int64_t n = batch * shape_per_sample(slot->shape);
        void *buf = xmalloc((size_t)n * 4);
        for (int64_t j = 0; j < n; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(s >> 11) * 0x1p-53;
            if (slot->dtype == DT_I32)
                ((int32_t *)buf)[j] = (int32_t)(u * (slot->classes ? slot->classes : 2));
            else
                ((float *)buf)[j] = (float)(2 * u - 1);
        }
        io[k++] = buf;
    }
    *nio = k;
}

typedef struct Timing {
    double median_us;
    int samples;
} Timing;

typedef void (*CallFn)(Runner *r, int n, void **io);

static void call_predict_(Runner *r, int n, void **io) { r->predict(r->handle, n, io); }
static void call_train_(Runner *r, int n, void **io) { r->train_step(r->handle, n, io, NULL); }

static Timing time_calls_(Runner *r, CallFn fn, int n, void **io, int iters, const void *snapshot)
{
    for (int i = 0; i < 3; i++) fn(r, n, io); /* warm up */
    memcpy(r->model, snapshot, r->size);
    runner_push(r);
    double t0 = now_();
    fn(r, n, io);
    double one = now_() - t0;
    int group = one > 1e-3 ? 1 : (int)(1e-3 / (one > 1e-7 ? one : 1e-7)) + 1;
    int samples = iters ? iters : 15;
    double *us = xmalloc(sizeof(double) * (size_t)samples);
    double budget_end = now_() + 3.0;
    int done = 0;
    for (; done < samples; done++) {
        memcpy(r->model, snapshot, r->size);
        runner_push(r);
        double a = now_();
        for (int g = 0; g < group; g++) fn(r, n, io);
        us[done] = (now_() - a) / group * 1e6;
        if (!iters && done >= 4 && now_() > budget_end) {
            done++;
            break;
        }
    }
    qsort(us, (size_t)done, sizeof(double), cmp_double_);
    Timing t = {.median_us = us[done / 2], .samples = done};
    free(us);
    return t;
}

int cmd_bench(const Options *o)
{
    CompileOptions co = run_compile_options(o, false);
    Compiled *c = compile_model(&co, true);
    if (!c) return EXIT_INPUT;
    if (!compiled_check_ram(c, o->max_ram)) {
        compiled_free(c);
        return EXIT_INPUT;
    }
    Runner r;
    if (!runner_open(&r, c, o->opt_level)) {
        compiled_free(c);
        return EXIT_INPUT;
    }
    const Model *m = c->m;
    int batch = c->max_batch;
    if (!runner_init(&r, 0)) {
        runner_close(&r);
        compiled_free(c);
        return EXIT_INPUT;
    }
    /* --weights: time the trained model (the values matter where subnormals or saturation slow a kernel) */
    const nnc_safetensors *initializers = default_weights(o->model_path, o->weights); /* a .onnx model's */
    if ((o->weights && !runner_load_weights(&r, o->weights, NNC_LOAD_PARAMS | NNC_LOAD_STATE, NULL)) ||
        (initializers && !runner_load_st(&r, initializers, o->model_path, NNC_LOAD_PARAMS | NNC_LOAD_STATE))) {
        runner_close(&r);
        compiled_free(c);
        return EXIT_INPUT;
    }
    runner_pull(&r);
    void *snapshot = xmalloc(r.size);
    memcpy(snapshot, r.model, r.size);
    void *data[32], *io[32];
    int nio;
    fill_random_(m, batch, data, &nio);
    /* predict: inputs then outputs */
    int k = 0;
    for (int i = 0; i < m->inputs.len; i++) io[k++] = data[i];
    for (int i = 0; i < m->outputs.len; i++) io[k++] = xmalloc((size_t)(batch * shape_per_sample(m->outputs.data[i].shape)) * 4);
    Timing tp = time_calls_(&r, call_predict_, batch, io, o->bench_iters, snapshot);
    const EntryCode *train = compiled_entry(c, ENTRY_TRAIN);
    Timing tt = {0};
    if (train) tt = time_calls_(&r, call_train_, batch, data, o->bench_iters, snapshot);
    double gp = (double)entry_flops(compiled_entry(c, ENTRY_PREDICT), batch) / (tp.median_us * 1e3);
    double gt = train ? (double)entry_flops(train, batch) / (tt.median_us * 1e3) : 0;
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", m->name);
        cJSON_AddNumberToObject(j, "batch", batch);
        cJSON_AddNumberToObject(j, "predict_us", tp.median_us);
        if (train) cJSON_AddNumberToObject(j, "train_step_us", tt.median_us);
        else cJSON_AddNullToObject(j, "train_step_us");
        cJSON_AddNumberToObject(j, "gflops_predict", gp);
        cJSON_AddNumberToObject(j, "gflops_train", gt);
        cJSON_AddStringToObject(j, "jit", nnc_jit_backend(r.jit));
        cJSON_AddStringToObject(j, "target", c->target->name);
        if (r.cuda) cJSON_AddStringToObject(j, "device", r.cuda_device(r.handle));
        cJSON_AddNumberToObject(j, "opt_level", o->opt_level);
        char *s = cJSON_PrintUnformatted(j);
        puts(s);
        free(s);
        cJSON_Delete(j);
    } else {
        printf("bench %s: batch %d, -O%d, built with %s", m->name, batch, o->opt_level, nnc_jit_backend(r.jit));
        if (r.cuda) printf(", on %s (--target cuda)", r.cuda_device(r.handle));
        printf("\n");
        printf("  predict     %10.2f us  %7.2f GFLOP/s  (median of %d)\n", tp.median_us, gp, tp.samples);
        if (train) printf("  train_step  %10.2f us  %7.2f GFLOP/s  (median of %d)\n", tt.median_us, gt, tt.samples);
    }
    for (int i = 0; i < nio; i++) free(data[i]);
    for (int i = m->inputs.len; i < k; i++) free(io[i]);
    free(snapshot);
    runner_close(&r);
    compiled_free(c);
    return EXIT_OK;
}
