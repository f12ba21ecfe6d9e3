/* difftest.c: the driver of the differential test (tests/difftest/run.sh, docs/testing-differential.md): one random model
 * compiled twice — at -O0 and built in double precision (the reference), at -O2 and built in float (the
 * build under test) — must give the same numbers.
 *
 *   difftest LIST
 *
 * Each line of LIST is `NAME MODEL.nn REF.so TEST.so [ALT.so]`: the shared objects hold the model's C,
 * compiled by `nnc MODEL.nn -o NAME.c --shim` with the shim's functions renamed NAME_jit_* (run.sh includes
 * the C from a wrapper that #defines them), so that one library may hold many models. REF is built with
 * -DNNC_REAL=double, TEST and ALT in float; ALT (-O0 in float) is given for a second look at a model that
 * failed: when TEST agrees with ALT, the difference is float rounding that -O0 has too (a kink, a tie), not
 * a bug of the optimizations; when ALT differs from REF too, and TEST differs from REF by no more than ILL
 * times as much, the model is ill-conditioned (a gradient that is zero but for rounding, which Adam or
 * RMSprop turn into whole steps): either way the model counts as unstable, not failed.
 *
 * The interface comes from the model's `#%` lines (gen.py writes them). Each build is run the same way, in a
 * child process (a crash or a hang of one model is reported as such and the others go on):
 * init(seed 1); three train steps on batches of MAX, a small one (1, or 3 with batchnorm) and MAX; eval on
 * the first batch; predict at MAX and at n = 1 (whose other rows must stay untouched); then every model
 * tensor (parameters, state, optimizer state, the last step's gradients) through NAME_jit_tensors. Inputs
 * are uniform in [-1, 1] (i32 inputs in [0, HI)), f32 targets uniform in [0, 1), class indices uniform.
 * Every float must satisfy |x - ref| <= ATOL + RTOL |ref| (1e-4, 1e-3); i32 values must be equal; NaN only
 * where the reference has NaN.
 *
 * Prints `ok NAME`, `FAIL NAME` with the worst elements, `UNSTABLE NAME`, `CRASH NAME` or `HANG NAME`;
 * exit status 0 when every model is ok or unstable, 1 otherwise, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

enum { MAX_SLOTS = 16, MAX_METRICS = 32, STEPS = 3, SHOW = 4, HANG_S = 60 };
static const double RTOL = 1e-3, ATOL = 1e-4;
static const double ILL = 10; /* see check_model_ */
static const double SENTINEL = 12345.0;

typedef struct Slot {
    char name[64];
    int is_int;
    long count; /* per sample */
    int hi;     /* i32: values in [0, hi) */
} Slot;

typedef struct Spec {
    Slot in[MAX_SLOTS], tgt[MAX_SLOTS], out[MAX_SLOTS];
    int nin, ntgt, nout, batch, bn;
} Spec;

/* one build's results, all in double */
typedef struct Run {
    double loss[STEPS], metrics[STEPS][MAX_METRICS], eval_loss, eval_metrics[MAX_METRICS];
    double *out[MAX_SLOTS], *out1[MAX_SLOTS];
    unsigned char *model;
    const nnc_tensor_info *tensors;
    int ntensors, is_double;
} Run;

/* ---- the spec: the model's #% lines -------------------------------------------------------------------- */
static int read_slot_(const char *rest, Slot *s)
{
    char dt[8];
    s->hi = 0;
    int n = sscanf(rest, " %63s %7s %ld %d", s->name, dt, &s->count, &s->hi);
    s->is_int = strcmp(dt, "i32") == 0;
    return n >= 3 && s->count > 0;
}

static int read_spec_(const char *path, Spec *sp)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    int ok = 1;
    memset(sp, 0, sizeof *sp);
    while (ok && fgets(line, sizeof line, f)) {
        if (strncmp(line, "#% ", 3)) continue;
        const char *l = line + 3;
        if (!strncmp(l, "batch ", 6)) sp->batch = atoi(l + 6);
        else if (!strncmp(l, "bn ", 3)) sp->bn = atoi(l + 3);
        else if (!strncmp(l, "input ", 6) && sp->nin < MAX_SLOTS) ok = read_slot_(l + 6, &sp->in[sp->nin++]);
        else if (!strncmp(l, "target ", 7) && sp->ntgt < MAX_SLOTS) ok = read_slot_(l + 7, &sp->tgt[sp->ntgt++]);
        else if (!strncmp(l, "output ", 7) && sp->nout < MAX_SLOTS) ok = read_slot_(l + 7, &sp->out[sp->nout++]);
        else ok = 0;
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

/* one slot's data for n samples, as doubles (i32 values are exact) */
static double *make_data_(const Slot *sl, int n, uint64_t seed, int is_target)
{
    long count = sl->count * n;
    double *d = malloc(sizeof(double) * (size_t)count);
    uint64_t s = seed;
    for (long i = 0; i < count; i++) {
        if (sl->is_int) d[i] = (double)(mix_(&s) % (uint64_t)(sl->hi > 0 ? sl->hi : 2));
        else if (is_target) d[i] = uniform_(&s);
        else d[i] = 2 * uniform_(&s) - 1;
    }
    return d;
}

/* the same data in a build's types: int32_t, float or double */
static void *typed_(const double *d, long count, int is_int, int is_double)
{
    void *p = malloc(8 * (size_t)(count > 0 ? count : 1));
    for (long i = 0; i < count; i++) {
        if (is_int) ((int32_t *)p)[i] = (int32_t)d[i];
        else if (is_double) ((double *)p)[i] = d[i];
        else ((float *)p)[i] = (float)d[i];
    }
    return p;
}

static double get_(const void *p, long i, int is_int, int is_double)
{
    if (is_int) return ((const int32_t *)p)[i];
    return is_double ? ((const double *)p)[i] : ((const float *)p)[i];
}

static void set_(void *p, long i, int is_int, int is_double, double v)
{
    if (is_int) ((int32_t *)p)[i] = (int32_t)v;
    else if (is_double) ((double *)p)[i] = v;
    else ((float *)p)[i] = (float)v;
}

typedef struct Data {
    int n[STEPS];
    double *io[STEPS][2 * MAX_SLOTS]; /* inputs, then targets */
} Data;

static void make_all_(const Spec *sp, uint64_t seed, Data *d)
{
    for (int s = 0; s < STEPS; s++) {
        d->n[s] = s == 1 ? (sp->bn ? 3 : 1) : sp->batch;
        if (d->n[s] > sp->batch) d->n[s] = sp->batch;
        int k = 0;
        for (int i = 0; i < sp->nin; i++) d->io[s][k++] = make_data_(&sp->in[i], d->n[s], seed + 1000u * (uint64_t)s + (uint64_t)i, 0);
        for (int i = 0; i < sp->ntgt; i++)
            d->io[s][k++] = make_data_(&sp->tgt[i], d->n[s], seed + 1000u * (uint64_t)s + 500u + (uint64_t)i, 1);
    }
}

/* ---- running one build ------------------------------------------------------------------------------- */
typedef size_t (*size_fn)(void);
typedef void (*init_fn)(void *m, uint64_t seed);
typedef const nnc_tensor_info *(*tensors_fn)(int *count);
typedef void (*predict_fn)(void *m, int n, void *const *io);
typedef float (*step_f_fn)(void *m, int n, void *const *io, float *metrics);
typedef double (*step_d_fn)(void *m, int n, void *const *io, double *metrics);

typedef struct Lib {
    size_fn size;
    init_fn init;
    tensors_fn tensors;
    predict_fn predict;
    void *train, *eval;
} Lib;

static int load_(const char *path, const char *name, Lib *l)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("    cannot load %s: %s\n", path, dlerror());
        return 0;
    }
    const char *what[] = {"model_size", "init", "tensors", "predict", "train_step", "eval"};
    void *p[6];
    for (int i = 0; i < 6; i++) {
        char sym[160];
        snprintf(sym, sizeof sym, "%s_jit_%s", name, what[i]);
        p[i] = dlsym(h, sym);
        if (!p[i]) {
            printf("    %s has no %s\n", path, sym);
            return 0;
        }
    }
    memcpy(&l->size, &p[0], sizeof l->size); /* POSIX: object pointer to function pointer */
    memcpy(&l->init, &p[1], sizeof l->init);
    memcpy(&l->tensors, &p[2], sizeof l->tensors);
    memcpy(&l->predict, &p[3], sizeof l->predict);
    l->train = p[4];
    l->eval = p[5];
    return 1;
}

static double step_(const Lib *l, int is_double, int eval, void *m, int n, void *const *io, double *metrics)
{
    if (is_double) {
        step_d_fn f;
        memcpy(&f, eval ? &l->eval : &l->train, sizeof f);
        return f(m, n, io, metrics);
    }
    float mf[MAX_METRICS] = {0};
    step_f_fn f;
    memcpy(&f, eval ? &l->eval : &l->train, sizeof f);
    double loss = f(m, n, io, mf);
    for (int i = 0; i < MAX_METRICS; i++) metrics[i] = mf[i];
    return loss;
}

/* predict at n samples of step 0's inputs into doubles; at n = 1 the other rows must stay SENTINEL */
static int predict_(const Spec *sp, const Lib *l, Run *r, const Data *d, int n, double **out)
{
    void *io[2 * MAX_SLOTS], *bufs[MAX_SLOTS];
    int ok = 1;
    for (int i = 0; i < sp->nin; i++) io[i] = typed_(d->io[0][i], sp->in[i].count * n, sp->in[i].is_int, r->is_double);
    for (int i = 0; i < sp->nout; i++) {
        long c = sp->out[i].count * sp->batch;
        bufs[i] = malloc(8 * (size_t)c);
        for (long j = 0; j < c; j++) set_(bufs[i], j, sp->out[i].is_int, r->is_double, SENTINEL);
        io[sp->nin + i] = bufs[i];
    }
    l->predict(r->model, n, io);
    for (int i = 0; i < sp->nout; i++) {
        long c = sp->out[i].count * sp->batch, w = sp->out[i].count * n;
        out[i] = malloc(sizeof(double) * (size_t)c);
        for (long j = 0; j < c; j++) out[i][j] = get_(bufs[i], j, sp->out[i].is_int, r->is_double);
        for (long j = w; j < c; j++)
            if (out[i][j] != SENTINEL) {
                printf("    predict(n=%d) wrote output %s[%ld], past its %d samples\n", n, sp->out[i].name, j, n);
                ok = 0;
                break;
            }
        free(bufs[i]);
    }
    for (int i = 0; i < sp->nin; i++) free(io[i]);
    return ok;
}

static int run_(const Spec *sp, const char *path, const char *name, int is_double, const Data *d, Run *r)
{
    Lib l;
    if (!load_(path, name, &l)) return 0;
    r->is_double = is_double;
    r->model = calloc(1, l.size());
    l.init(r->model, 1);
    for (int s = 0; s < STEPS; s++) {
        void *io[2 * MAX_SLOTS];
        int k = 0;
        for (int i = 0; i < sp->nin; i++, k++) io[k] = typed_(d->io[s][k], sp->in[i].count * d->n[s], sp->in[i].is_int, is_double);
        for (int i = 0; i < sp->ntgt; i++, k++) io[k] = typed_(d->io[s][k], sp->tgt[i].count * d->n[s], sp->tgt[i].is_int, is_double);
        r->loss[s] = step_(&l, is_double, 0, r->model, d->n[s], io, r->metrics[s]);
        if (s == 0) r->eval_loss = NAN; /* eval runs after the steps, on step 0's data */
        for (int i = 0; i < k; i++) free(io[i]);
    }
    {
        void *io[2 * MAX_SLOTS];
        int k = 0;
        for (int i = 0; i < sp->nin; i++, k++) io[k] = typed_(d->io[0][k], sp->in[i].count * d->n[0], sp->in[i].is_int, is_double);
        for (int i = 0; i < sp->ntgt; i++, k++) io[k] = typed_(d->io[0][k], sp->tgt[i].count * d->n[0], sp->tgt[i].is_int, is_double);
        r->eval_loss = step_(&l, is_double, 1, r->model, d->n[0], io, r->eval_metrics);
        for (int i = 0; i < k; i++) free(io[i]);
    }
    int ok = predict_(sp, &l, r, d, sp->batch, r->out);
    ok &= predict_(sp, &l, r, d, 1, r->out1);
    r->tensors = l.tensors(&r->ntensors);
    return ok; /* the library stays loaded: r->tensors points into it */
}

/* ---- comparing --------------------------------------------------------------------------------------- */
typedef struct Cmp {
    double worst;
    char worst_what[128];
    long bad;
    int quiet;
} Cmp;

static void compare_(Cmp *c, const char *what, const double *ref, const double *x, long n, int exact)
{
    long nbad = 0;
    for (long i = 0; i < n; i++) {
        double a = ref[i], b = x[i], ratio;
        if (isnan(a) || isnan(b)) ratio = isnan(a) && isnan(b) ? 0 : INFINITY;
        else if (a == b) ratio = 0;
        else ratio = exact ? INFINITY : fabs(a - b) / (ATOL + RTOL * fabs(a));
        if (ratio > c->worst) {
            c->worst = ratio;
            snprintf(c->worst_what, sizeof c->worst_what, "%s[%ld]", what, i);
        }
        if (ratio > 1 && nbad++ < SHOW && !c->quiet)
            printf("    %s[%ld]: %.9g, reference %.9g (|diff| %.3g, %.3g times the tolerance)\n", what, i, b, a, fabs(a - b), ratio);
    }
    if (nbad > SHOW && !c->quiet) printf("    %s: %ld of %ld elements out of tolerance\n", what, nbad, n);
    c->bad += nbad;
}

static long tensor_count_(const nnc_tensor_info *t)
{
    long n = 1;
    for (int k = 0; k < t->rank; k++) n *= t->shape[k];
    return n;
}

static double *tensor_(const Run *r, const nnc_tensor_info *t)
{
    long n = tensor_count_(t);
    double *d = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++) d[i] = get_(r->model + t->offset, i, t->dtype == 1, r->is_double);
    return d;
}

/* the number of elements of r out of tolerance against ref (quiet: print nothing) */
static long compare_runs_(const Spec *sp, const Run *ref, const Run *r, int quiet, Cmp *c)
{
    memset(c, 0, sizeof *c);
    c->quiet = quiet;
    char what[128];
    for (int s = 0; s < STEPS; s++) {
        snprintf(what, sizeof what, "loss of step %d", s + 1);
        compare_(c, what, &ref->loss[s], &r->loss[s], 1, 0);
        snprintf(what, sizeof what, "metrics of step %d", s + 1);
        compare_(c, what, ref->metrics[s], r->metrics[s], MAX_METRICS, 0);
    }
    compare_(c, "eval loss", &ref->eval_loss, &r->eval_loss, 1, 0);
    compare_(c, "eval metrics", ref->eval_metrics, r->eval_metrics, MAX_METRICS, 0);
    for (int i = 0; i < sp->nout; i++) {
        snprintf(what, sizeof what, "output %s", sp->out[i].name);
        compare_(c, what, ref->out[i], r->out[i], sp->out[i].count * sp->batch, sp->out[i].is_int);
        snprintf(what, sizeof what, "output %s at n=1", sp->out[i].name);
        compare_(c, what, ref->out1[i], r->out1[i], sp->out[i].count, sp->out[i].is_int);
    }
    if (r->ntensors != ref->ntensors) {
        if (!quiet) printf("    %d tensors, the reference has %d\n", r->ntensors, ref->ntensors);
        return c->bad + 1;
    }
    for (int t = 0; t < ref->ntensors; t++) {
        const nnc_tensor_info *a = &ref->tensors[t], *b = &r->tensors[t];
        if (strcmp(a->name, b->name) || tensor_count_(a) != tensor_count_(b) || a->dtype != b->dtype) {
            if (!quiet) printf("    tensor %d is %s, the reference's is %s\n", t, b->name, a->name);
            return c->bad + 1;
        }
        double *x = tensor_(ref, a), *y = tensor_(r, b);
        compare_(c, a->name, x, y, tensor_count_(a), a->dtype == 1);
        free(x);
        free(y);
    }
    return c->bad;
}

/* one model, in a child: 0 ok, 1 failed, 3 unstable */
static int check_model_(const char *name, const char *nn, const char *ref_so, const char *test_so, const char *alt_so)
{
    Spec sp;
    if (!read_spec_(nn, &sp)) {
        printf("FAIL %s: no interface (#%% lines) in %s\n", name, nn);
        return 1;
    }
    uint64_t seed = 7;
    for (const char *p = name; *p; p++) seed = seed * 131 + (unsigned char)*p;
    Data d;
    make_all_(&sp, seed, &d);
    static Run ref, test, alt;
    if (!run_(&sp, ref_so, name, 1, &d, &ref)) {
        printf("FAIL %s: the reference (-O0, double) failed\n", name);
        return 1;
    }
    int ok = run_(&sp, test_so, name, 0, &d, &test);
    Cmp c;
    long bad = compare_runs_(&sp, &ref, &test, 1, &c);
    if (ok && bad == 0) {
        printf("ok %s (worst %s: %.2g of the tolerance)\n", name, c.worst > 0 ? c.worst_what : "-", c.worst);
        return 0;
    }
    if (ok && alt_so) {
        if (!run_(&sp, alt_so, name, 0, &d, &alt)) {
            printf("FAIL %s: -O0 in float failed\n", name);
            return 1;
        }
        Cmp ca, cr;
        if (compare_runs_(&sp, &alt, &test, 1, &ca) == 0) {
            printf("UNSTABLE %s: -O2 differs from the double reference (worst %s: %.3g times the tolerance) but agrees "
                   "with -O0 in float (worst %.2g): float rounding, not the optimizations\n",
                   name, c.worst_what, c.worst, ca.worst);
            return 3;
        }
        /* ill-conditioned: -O0 in float is as far from the reference (within a factor of ILL) */
        if (compare_runs_(&sp, &ref, &alt, 1, &cr) > 0 && c.worst <= ILL * cr.worst) {
            printf("UNSTABLE %s: -O2 differs from the double reference (worst %s: %.3g times the tolerance), and so "
                   "does -O0 in float (worst %s: %.3g): an ill-conditioned model, where float rounding decides\n",
                   name, c.worst_what, c.worst, cr.worst_what, cr.worst);
            return 3;
        }
    }
    printf("FAIL %s: -O2 in float differs from -O0 in double (%ld elements; worst %s, %.3g times the tolerance)\n", name, bad,
           c.worst_what, c.worst);
    compare_runs_(&sp, &ref, &test, 0, &c);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: difftest LIST (lines: NAME MODEL.nn REF.so TEST.so [ALT.so]; see difftest.c)\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        fprintf(stderr, "difftest: cannot read %s\n", argv[1]);
        return 2;
    }
    char line[4096];
    int status = 0, n = 0, nok = 0, nunstable = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], nn[1024], ref[1024], test[1024], alt[1024] = "";
        int k = sscanf(line, "%255s %1023s %1023s %1023s %1023s", name, nn, ref, test, alt);
        if (k < 4) continue;
        n++;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(HANG_S);
            int rc = check_model_(name, nn, ref, test, k == 5 ? alt : NULL);
            fflush(stdout);
            _exit(rc);
        }
        int ws = 0;
        waitpid(pid, &ws, 0);
        if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) nok++;
        else if (WIFEXITED(ws) && WEXITSTATUS(ws) == 3) nunstable++;
        else {
            status = 1;
            if (WIFSIGNALED(ws))
                printf("%s %s: signal %d (%s)\n", WTERMSIG(ws) == SIGALRM ? "HANG" : "CRASH", name, WTERMSIG(ws),
                       WTERMSIG(ws) == SIGALRM ? "no result in 60 s" : strsignal(WTERMSIG(ws)));
        }
    }
    fclose(f);
    printf("difftest: %d models, %d ok, %d unstable, %d failed\n", n, nok, nunstable, n - nok - nunstable);
    return status;
}
