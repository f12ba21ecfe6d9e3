/* levels.c: the same model at every optimization level, and one pass at a time: the output of every level
 * must agree numerically (docs/passes.md, docs/testing.md).
 *
 *   levels SPEC LABEL=MODEL.so [LABEL=MODEL.so ...]
 *
 * Each MODEL.so is one model compiled by `nnc MODEL.nn -o m.c --shim FLAGS` and built as a shared object
 * (run.sh does that); the first is the reference (-O0). Every one is run the same way through the shim:
 * nnc_jit_init(seed 0), STEPS train steps on fixed data (full batches and one partial batch), eval on the
 * first batch, predict on it; then every model tensor (parameters, state, optimizer state, gradients of
 * the last step) is read through nnc_jit_tensors. The losses, metrics, outputs and tensors of each model
 * must equal the reference's within |x - ref| <= ATOL + RTOL * |ref| + NOISE_K * noise; i32 tensors
 * exactly; a NaN only where the reference has one.
 *
 * noise is the reference's own rounding noise, one number per array (a tensor, an output, the metrics
 * of a step): max |ref - ref'| over its elements, where ref' is the reference run once more with every
 * f32 input one ulp up (targets unchanged). A well-conditioned array moves by about 1e-7 of its size
 * there, far below RTOL, so its tolerance is in effect rtol 1e-5, atol 1e-6. A model that amplifies
 * rounding moves as much as any reordering of sums moves it, and nothing else would let its levels be
 * compared with -O0: in models/mlp_bn.nn the dense biases before batchnorm have a gradient that is 0 in
 * real arithmetic and rounding noise (~1e-9) in float, which Adam's g / (sqrt(v) + 1e-7) turns into
 * steps of a good part of lr. Measured (2026-12-06, gcc -O2, NNC_NO_BLAS): the noise of h1.d.bias and
 * h2.d.bias is 5.6e-4 and 7.2e-4, and the levels differ from -O0 there by up to 625 times rtol/atol,
 * within 1.0 times the noise; it reaches the moving means, the logits and a few elements of the dense
 * weights (7 arrays, 9900 elements, named in the note), while the losses and everything else still agree
 * at rtol 1e-5. In fashion_cnn one element of probs.weight (gradient below 1e-6) differs by 5e-6 (5x
 * rtol/atol) with OpenBLAS, noise 4.2e-6. NOISE_K = 4 leaves room for the noise of a different order of
 * sums to be larger than that of the nudge (with the OpenBLAS kernels of Prescott, Sandybridge, Haswell,
 * SkylakeX and Zen, and with clang, the worst was 0.65 of the tolerance). The cost: a bug smaller than 4 times the noise in such an array goes
 * unseen there (tests/levels/models/bn_mlp.nn, batchnorm without the chaotic bias, compares strictly).
 * Every array that agrees only thanks to the noise is named in the "ok" line's note.
 *
 * SPEC, written by run.sh from the model's IR, gives the interface, one item a line:
 *   batch N                      the compiled maximum batch
 *   input NAME f32|i32 COUNT     per-sample element count, in the order of the shim's io array
 *   target NAME f32|i32 COUNT [CLASSES]
 *   output NAME f32|i32 COUNT
 * The data come from the driver's own seeded generator: inputs ~ N(0, 1) (approximately), f32 targets
 * uniform in [0, 1) (valid for every loss, cross-entropies included), i32 targets uniform class indices.
 *
 * Prints one line per model: "ok LABEL (worst NAME: x of the tolerance)", with a note when some arrays
 * agree only within the noise, or FAIL with the elements that differ and by how much. Exit status 1 when any model differs, 2 on a usage or loading error.
 * What it does not do: build anything, or judge which side is right (the reference is -O0's naive code).
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef float nnc_real;
typedef struct nnc_tensor_info {
    const char *name;
    int rank;
    int shape[8];
    size_t offset;
    int trainable;
    int dtype;
    int kind;
    const void *data; /* NULL: in the struct at offset; else a const tensor (firmware) */
} nnc_tensor_info;

typedef size_t (*size_fn)(void);
typedef void (*init_fn)(void *m, uint64_t seed);
typedef const nnc_tensor_info *(*tensors_fn)(int *count);
typedef void (*predict_fn)(void *m, int n, void *const *io);
typedef nnc_real (*step_fn)(void *m, int n, void *const *io, nnc_real *metrics);

enum { MAX_SLOTS = 16, MAX_METRICS = 32, STEPS = 3, MAX_MODELS = 32, SHOW = 3 };
static const double RTOL = 1e-5, ATOL = 1e-6, NOISE_K = 4;

typedef struct Slot {
    char name[64];
    int is_int;
    long count; /* per sample */
    int classes;
} Slot;

typedef struct Spec {
    Slot in[MAX_SLOTS], tgt[MAX_SLOTS], out[MAX_SLOTS];
    int nin, ntgt, nout, batch;
} Spec;

typedef struct Run {
    const char *label;
    nnc_real loss[STEPS], metrics[STEPS][MAX_METRICS], eval_loss, eval_metrics[MAX_METRICS];
    void *outputs[MAX_SLOTS];
    unsigned char *model;
    const nnc_tensor_info *tensors;
    int ntensors;
} Run;

/* ---- the spec --------------------------------------------------------------------------------------- */
static int read_slot_(const char *line, const char *kind, Slot *s)
{
    char dt[8];
    s->classes = 0;
    int n = sscanf(line + strlen(kind), " %63s %7s %ld %d", s->name, dt, &s->count, &s->classes);
    s->is_int = strcmp(dt, "i32") == 0;
    return n >= 3 && s->count > 0;
}

static int read_spec_(const char *path, Spec *sp)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    int ok = 1;
    memset(sp, 0, sizeof *sp);
    while (ok && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "batch ", 6)) sp->batch = atoi(line + 6);
        else if (!strncmp(line, "input ", 6) && sp->nin < MAX_SLOTS) ok = read_slot_(line, "input", &sp->in[sp->nin++]);
        else if (!strncmp(line, "target ", 7) && sp->ntgt < MAX_SLOTS) ok = read_slot_(line, "target", &sp->tgt[sp->ntgt++]);
        else if (!strncmp(line, "output ", 7) && sp->nout < MAX_SLOTS) ok = read_slot_(line, "output", &sp->out[sp->nout++]);
        else if (line[0] != '\n' && line[0] != '#') ok = 0;
    }
    fclose(f);
    return ok && sp->batch > 0 && sp->nin > 0;
}

/* ---- data: splitmix64, seeded per (step, slot) ------------------------------------------------------- */
static uint64_t mix_(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double uniform_(uint64_t *s) { return (double)(mix_(s) >> 11) * (1.0 / 9007199254740992.0); }

static void *make_data_(const Slot *sl, int n, uint64_t seed, int normal, int nudge)
{
    long count = sl->count * n;
    void *d = malloc(sizeof(float) * (size_t)count);
    uint64_t s = seed;
    for (long i = 0; i < count; i++) {
        if (sl->is_int) {
            ((int32_t *)d)[i] = (int32_t)(mix_(&s) % (uint64_t)(sl->classes > 0 ? sl->classes : 2));
        } else if (normal) { /* Irwin-Hall: the sum of 12 uniforms, minus 6 */
            double x = -6;
            for (int k = 0; k < 12; k++) x += uniform_(&s);
            ((float *)d)[i] = nudge ? nextafterf((float)x, INFINITY) : (float)x;
        } else {
            ((float *)d)[i] = (float)uniform_(&s);
        }
    }
    return d;
}

/* io[] for one step's batch: inputs, then targets; nudge: every f32 input one ulp up (the noise run) */
static void make_batch_(const Spec *sp, int step, int n, void **io, int nudge)
{
    int k = 0;
    for (int i = 0; i < sp->nin; i++)
        io[k++] = make_data_(&sp->in[i], n, 1000u * (uint64_t)step + (uint64_t)i, 1, nudge);
    for (int i = 0; i < sp->ntgt; i++)
        io[k++] = make_data_(&sp->tgt[i], n, 1000u * (uint64_t)step + 500u + (uint64_t)i, 0, 0);
}

/* ---- running one model ------------------------------------------------------------------------------- */
static int batch_of_step_(const Spec *sp, int step) { return step == 1 && sp->batch > 3 ? 3 : sp->batch; }

/* dlsym's object pointer into a function pointer, the way POSIX allows (ISO C has no cast for it) */
#define SYM_(fn, name)                                                                                     \
    do {                                                                                                   \
        void *p_ = dlsym(h, name);                                                                         \
        if (!p_) fprintf(stderr, "levels: %s has no %s\n", path, name);                                    \
        memcpy(&fn, &p_, sizeof fn);                                                                       \
        ok &= p_ != NULL;                                                                                  \
    } while (0)

static int run_model_(const Spec *sp, const char *path, void **data[STEPS], Run *r)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "levels: %s\n", dlerror());
        return 0;
    }
    size_fn size;
    init_fn init;
    tensors_fn tensors;
    predict_fn predict;
    step_fn train, eval;
    int ok = 1;
    SYM_(size, "nnc_jit_model_size");
    SYM_(init, "nnc_jit_init");
    SYM_(tensors, "nnc_jit_tensors");
    SYM_(predict, "nnc_jit_predict");
    SYM_(train, "nnc_jit_train_step");
    SYM_(eval, "nnc_jit_eval");
    if (!ok) return 0;
    r->model = calloc(1, size());
    init(r->model, 0);
    for (int s = 0; s < STEPS; s++) r->loss[s] = train(r->model, batch_of_step_(sp, s), data[s], r->metrics[s]);
    r->eval_loss = eval(r->model, sp->batch, data[0], r->eval_metrics);
    void *io[2 * MAX_SLOTS];
    for (int i = 0; i < sp->nin; i++) io[i] = data[0][i];
    for (int i = 0; i < sp->nout; i++) {
        r->outputs[i] = calloc((size_t)(sp->out[i].count * sp->batch), sizeof(float));
        io[sp->nin + i] = r->outputs[i];
    }
    predict(r->model, sp->batch, io);
    r->tensors = tensors(&r->ntensors);
    return 1; /* the library stays loaded: r->tensors points into it */
}

/* ---- comparing --------------------------------------------------------------------------------------- */
typedef struct Cmp {
    double worst;          /* the largest |x - ref| / tolerance */
    char worst_what[96];
    int bad;               /* elements out of tolerance */
    long widened;          /* elements within tolerance only thanks to the noise term */
    int widened_arrays;
    double widened_ratio;  /* the largest |x - ref| / (ATOL + RTOL |ref|) among those */
    char widened_what[96];
    double widened_noise;
    char widened_names[512]; /* the arrays, comma-separated (cut short with "...") */
} Cmp;

/* the reference's own rounding noise in one array: max |ref - nudged| over its elements (NaNs aside) */
static double noise_of_(const float *ref, const float *nudged, long n)
{
    double m = 0;
    for (long i = 0; i < n; i++)
        if (!isnan(ref[i]) && !isnan(nudged[i]) && isfinite(ref[i]) && fabs((double)ref[i] - nudged[i]) > m)
            m = fabs((double)ref[i] - nudged[i]);
    return m;
}

static void compare_f_(Cmp *c, const char *what, const float *ref, const float *nudged, const float *x, long n)
{
    int shown = 0;
    long nbad = 0, nwide = 0;
    double raw = noise_of_(ref, nudged, n), noise = NOISE_K * raw;
    for (long i = 0; i < n; i++) {
        double a = ref[i], b = x[i], ratio, base = 0;
        if (isnan(a) || isnan(b)) ratio = isnan(a) && isnan(b) ? 0 : INFINITY;
        else if (a == b) ratio = 0; /* infinities too */
        else {
            base = fabs(a - b) / (ATOL + RTOL * fabs(a));
            ratio = fabs(a - b) / (ATOL + RTOL * fabs(a) + noise);
        }
        if (ratio > c->worst) {
            c->worst = ratio;
            snprintf(c->worst_what, sizeof c->worst_what, "%s[%ld]", what, i);
        }
        if (ratio <= 1 && base > 1) {
            nwide++;
            if (base > c->widened_ratio) {
                c->widened_ratio = base;
                c->widened_noise = raw;
                snprintf(c->widened_what, sizeof c->widened_what, "%s[%ld]", what, i);
            }
        }
        if (ratio > 1) {
            nbad++;
            char at[32] = "";
            if (n > 1) snprintf(at, sizeof at, "[%ld]", i);
            if (shown++ < SHOW)
                printf("    %s%s: %.9g, reference %.9g (|diff| %.3g, %.3g times the tolerance; the reference's "
                       "noise here %.3g)\n",
                       what, at, b, a, fabs(a - b), ratio, raw);
        }
    }
    if (nbad > SHOW) printf("    %s: %ld of %ld elements out of tolerance\n", what, nbad, n);
    c->bad += (int)(nbad > 0 ? nbad : 0);
    c->widened += nwide;
    c->widened_arrays += nwide > 0;
    if (nwide > 0) {
        size_t used = strlen(c->widened_names);
        if (used + strlen(what) + 8 < sizeof c->widened_names)
            snprintf(c->widened_names + used, sizeof c->widened_names - used, "%s%s", used ? ", " : "", what);
        else if (!strstr(c->widened_names, "..."))
            snprintf(c->widened_names + used, sizeof c->widened_names - used, ", ...");
    }
}

static void compare_i_(Cmp *c, const char *what, const int32_t *ref, const int32_t *x, long n)
{
    for (long i = 0; i < n; i++)
        if (ref[i] != x[i]) {
            if (c->bad++ < SHOW) printf("    %s[%ld]: %d, reference %d\n", what, i, (int)x[i], (int)ref[i]);
            c->worst = INFINITY;
            snprintf(c->worst_what, sizeof c->worst_what, "%s[%ld]", what, i);
        }
}

static long tensor_count_(const nnc_tensor_info *t)
{
    long n = 1;
    for (int k = 0; k < t->rank; k++) n *= t->shape[k];
    return n;
}

/* r against ref; nz is ref run again on nudged inputs (its noise) */
static int compare_runs_(const Spec *sp, const Run *ref, const Run *nz, const Run *r)
{
    Cmp c = {0};
    char what[96];
    for (int s = 0; s < STEPS; s++) {
        snprintf(what, sizeof what, "loss of step %d", s + 1);
        compare_f_(&c, what, &ref->loss[s], &nz->loss[s], &r->loss[s], 1);
        snprintf(what, sizeof what, "metrics of step %d", s + 1);
        compare_f_(&c, what, ref->metrics[s], nz->metrics[s], r->metrics[s], MAX_METRICS);
    }
    compare_f_(&c, "eval loss", &ref->eval_loss, &nz->eval_loss, &r->eval_loss, 1);
    compare_f_(&c, "eval metrics", ref->eval_metrics, nz->eval_metrics, r->eval_metrics, MAX_METRICS);
    for (int i = 0; i < sp->nout; i++) {
        snprintf(what, sizeof what, "output %s", sp->out[i].name);
        long n = sp->out[i].count * sp->batch;
        if (sp->out[i].is_int) compare_i_(&c, what, ref->outputs[i], r->outputs[i], n);
        else compare_f_(&c, what, ref->outputs[i], nz->outputs[i], r->outputs[i], n);
    }
    if (r->ntensors != ref->ntensors) {
        printf("    %d tensors, the reference has %d\n", r->ntensors, ref->ntensors);
        return 0;
    }
    for (int t = 0; t < ref->ntensors; t++) {
        const nnc_tensor_info *a = &ref->tensors[t], *b = &r->tensors[t];
        if (strcmp(a->name, b->name) || tensor_count_(a) != tensor_count_(b)) {
            printf("    tensor %d is %s, the reference's is %s\n", t, b->name, a->name);
            return 0;
        }
        const void *pa = ref->model + a->offset, *pb = r->model + b->offset, *pn = nz->model + a->offset;
        if (a->dtype == 1) compare_i_(&c, a->name, pa, pb, tensor_count_(a));
        else compare_f_(&c, a->name, pa, pn, pb, tensor_count_(a));
    }
    if (c.bad) return 0;
    if (c.worst > 0) printf("ok %s (worst %s: %.2g of the tolerance)\n", r->label, c.worst_what, c.worst);
    else printf("ok %s (bit-identical)\n", r->label);
    if (c.widened)
        printf("   %ld elements of %d arrays agree only within the reference's noise (largest: %s, %.3g times "
               "rtol/atol, noise %.3g): %s\n",
               c.widened, c.widened_arrays, c.widened_what, c.widened_ratio, c.widened_noise, c.widened_names);
    return 1;
}

int main(int argc, char **argv)
{
    Spec sp;
    if (argc < 3 || !read_spec_(argv[1], &sp)) {
        fprintf(stderr, "usage: levels SPEC LABEL=MODEL.so [LABEL=MODEL.so ...] (SPEC: see levels.c)\n");
        return 2;
    }
    void **data[STEPS], **nudged[STEPS];
    for (int s = 0; s < STEPS; s++) {
        data[s] = calloc(2 * MAX_SLOTS, sizeof(void *));
        nudged[s] = calloc(2 * MAX_SLOTS, sizeof(void *));
        make_batch_(&sp, s, batch_of_step_(&sp, s), data[s], 0);
        make_batch_(&sp, s, batch_of_step_(&sp, s), nudged[s], 1);
    }
    static Run runs[MAX_MODELS], noise;
    int status = 0, nruns = argc - 2 < MAX_MODELS ? argc - 2 : MAX_MODELS;
    for (int i = 0; i < nruns; i++) {
        char *eq = strchr(argv[i + 2], '=');
        if (!eq) {
            fprintf(stderr, "levels: expected LABEL=MODEL.so, found %s\n", argv[i + 2]);
            return 2;
        }
        *eq = 0;
        runs[i].label = argv[i + 2];
        if (!run_model_(&sp, eq + 1, data, &runs[i])) return 2;
        if (i == 0) {
            noise.label = "noise";
            if (!run_model_(&sp, eq + 1, nudged, &noise)) return 2;
            printf("reference %s: losses", runs[0].label);
            for (int s = 0; s < STEPS; s++) printf(" %.7g", runs[0].loss[s]);
            printf(", eval loss %.7g\n", runs[0].eval_loss);
            continue;
        }
        if (!compare_runs_(&sp, &runs[0], &noise, &runs[i])) {
            printf("FAIL %s differs from %s\n", runs[i].label, runs[0].label);
            status = 1;
        }
    }
    return status;
}
