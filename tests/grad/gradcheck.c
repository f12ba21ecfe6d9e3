/* gradcheck.c: the per-op gradient check (STYLE.md "Tests"), linked with one model compiled by
 * `nnc CASE.nn -o model.c --shim` and built with -DNNC_REAL=double.
 *
 *   gradcheck CASE.nn
 *
 * The case's optimizer must be `sgd(lr=1)`, so one train step from a snapshot of the model struct gives
 * the analytic gradient of every trainable parameter as g = p_before - p_after, and the loss L(p) it
 * returns. The numeric gradient is the central difference (L(p+h) - L(p-h)) / 2h with h = 1e-6, each L
 * being one more train step from the same snapshot with one element perturbed. Every loss is therefore
 * the training-mode loss: batchnorm uses batch statistics and dropout the mask drawn from the snapshot's
 * generator state, the same mask every time.
 *
 * What is checked, per parameter tensor: every element when it has at most MAX_CHECK, else MAX_CHECK of
 * them chosen by the seed; |analytic - numeric| <= ABS_TOL + REL_TOL * |numeric|. The worst element of
 * each tensor is printed; the exit status is 1 when any element fails. A frozen parameter (trainable
 * flag 0) must come out of the step bit-identical. A tensor whose gradient is zero everywhere fails
 * too (the case would test nothing) unless the case says `zero NAME`.
 *
 * The inputs and targets come from the case's `input NAME: f32[d, ...]` and `target ...` lines (literal
 * dimensions only; io order is inputs then targets, each in declaration order) and are drawn in double
 * from the harness's own seeded generator. Lines of the form `# gradcheck: DIRECTIVE ARGS` configure it:
 *   batch N                 batch size (default 4)
 *   seed S                  seed of nnc_jit_init and of the data (default 1)
 *   data NAME DIST ARGS     how to draw NAME (default: f32 normal 0 1; i32 needs `classes`):
 *                             normal MEAN STD | uniform LO HI | signed LO HI (|v| uniform in [LO, HI],
 *                             random sign: keeps values away from 0) | bernoulli (0 or 1) |
 *                             onehot | simplex (both along the last axis) | classes C (i32 in [0, C))
 *   jitter S                add normal(0, S) noise to every trainable parameter after init (so zero
 *                             biases do not hide anything)
 *   zero NAME               NAME's gradient is expected to be zero everywhere
 *   frozen NAME             NAME must be a parameter with trainable flag 0 (and unchanged by the step)
 *   tol ABS REL REASON...   replace the tolerance; the reason is required
 * What it does not do: compile anything (run.sh does), or check state such as batchnorm's moving
 * statistics (only that the loss is a deterministic function of the snapshot).
 * With GRADCHECK_VERBOSE set in the environment it prints every element it checks; GRADCHECK_DUMP=FILE
 * writes the data, parameters and analytic gradients as Python for an independent re-derivation.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef NNC_REAL
#error "build with -DNNC_REAL=double"
#endif

typedef NNC_REAL nnc_real;
typedef char nnc_real_must_be_double_[sizeof(nnc_real) == sizeof(double) ? 1 : -1];
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

/* the shim of the generated model */
size_t nnc_jit_model_size(void);
void nnc_jit_init(void *m, uint64_t seed);
const nnc_tensor_info *nnc_jit_tensors(int *count);
nnc_real nnc_jit_train_step(void *m, int n, void *const *io, nnc_real *metrics);

enum { MAX_IO = 32, MAX_NAMES = 32, MAX_CHECK = 40, NAME_LEN = 64, MAX_METRICS = 64 };
static const double STEP = 1e-6;

typedef enum { DIST_NORMAL, DIST_UNIFORM, DIST_SIGNED, DIST_BERNOULLI, DIST_ONEHOT, DIST_SIMPLEX,
               DIST_CLASSES } Dist;

typedef struct {
    char name[NAME_LEN];
    int is_int;
    long size; /* per sample */
    long last; /* the last dimension (1 for a scalar) */
    Dist dist;
    double a, b;
    void *data;
} Io;

typedef struct {
    int batch;
    uint64_t seed;
    double jitter;
    double abs_tol, rel_tol;
    Io io[MAX_IO];
    int n_io;
    char zero[MAX_NAMES][NAME_LEN];
    int n_zero;
    char frozen[MAX_NAMES][NAME_LEN];
    int n_frozen;
} Config;

/* ---- the data generator: splitmix64 ---- */

static uint64_t rng_state;
static int verbose; /* GRADCHECK_VERBOSE set: print every element checked */
static uint64_t rng_next_(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
/* uniform in (0, 1) with 53 bits */
static double rng_uniform_(void) { return ((double)(rng_next_() >> 11) + 0.5) * 0x1p-53; }
static double rng_normal_(void)
{
    return sqrt(-2 * log(rng_uniform_())) * cos(6.283185307179586 * rng_uniform_());
}

/* ---- the case file ---- */

static void die_(const char *path, int line, const char *msg, const char *arg)
{
    fprintf(stderr, "%s:%d: gradcheck: %s%s\n", path, line, msg, arg ? arg : "");
    exit(2);
}

static const char *skip_space_(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

static const char *read_word_(const char *s, char *out)
{
    int k = 0;
    while (isalnum((unsigned char)*s) || *s == '_' || *s == '.') {
        if (k < NAME_LEN - 1) out[k++] = *s;
        s++;
    }
    out[k] = 0;
    return s;
}

/* `input NAME: f32[d, ...]` or `target ...`; returns 0 when the line is not one */
static int parse_io_(Config *c, const char *s, const char *path, int line)
{
    char word[NAME_LEN];
    s = read_word_(skip_space_(s), word);
    if (strcmp(word, "input") != 0 && strcmp(word, "target") != 0) return 0;
    if (c->n_io == MAX_IO) die_(path, line, "too many inputs", NULL);
    Io *io = &c->io[c->n_io++];
    s = read_word_(skip_space_(s), io->name);
    s = skip_space_(s);
    if (*s++ != ':') die_(path, line, "expected ':' after ", io->name);
    s = read_word_(skip_space_(s), word);
    if (strcmp(word, "f32") != 0 && strcmp(word, "i32") != 0) die_(path, line, "unknown type ", word);
    io->is_int = word[0] == 'i';
    io->dist = io->is_int ? DIST_CLASSES : DIST_NORMAL;
    io->a = 0, io->b = io->is_int ? 0 : 1;
    s = skip_space_(s);
    if (*s++ != '[') die_(path, line, "expected '[' in the type of ", io->name);
    io->size = io->last = 1;
    for (s = skip_space_(s); *s != ']'; s = skip_space_(s)) {
        char *end;
        long d = strtol(s, &end, 10);
        if (end == s || d <= 0) die_(path, line, "dimensions must be literal integers in ", io->name);
        io->size *= d, io->last = d;
        s = skip_space_(end);
        if (*s == ',') s++;
    }
    return 1;
}

static Io *find_io_(Config *c, const char *name, const char *path, int line)
{
    for (int i = 0; i < c->n_io; i++)
        if (strcmp(c->io[i].name, name) == 0) return &c->io[i];
    die_(path, line, "no input or target named ", name);
    return NULL;
}

static void parse_data_(Config *c, const char *s, const char *path, int line)
{
    char name[NAME_LEN], dist[NAME_LEN];
    s = read_word_(skip_space_(s), name);
    s = read_word_(skip_space_(s), dist);
    Io *io = find_io_(c, name, path, line);
    static const char *names[] = {"normal", "uniform", "signed", "bernoulli", "onehot", "simplex", "classes"};
    int k = 0;
    while (k < 7 && strcmp(dist, names[k]) != 0) k++;
    if (k == 7) die_(path, line, "unknown distribution ", dist);
    io->dist = (Dist)k;
    int got = sscanf(s, "%lf %lf", &io->a, &io->b);
    int need = io->dist <= DIST_SIGNED ? 2 : io->dist == DIST_CLASSES ? 1 : 0;
    if ((got < 0 ? 0 : got) < need) die_(path, line, "missing arguments for ", dist);
    if ((io->dist == DIST_CLASSES) != io->is_int) die_(path, line, "i32 data needs `classes C`: ", name);
}

static void parse_directive_(Config *c, const char *s, const char *path, int line)
{
    char word[NAME_LEN];
    s = read_word_(skip_space_(s), word);
    if (strcmp(word, "batch") == 0) {
        c->batch = atoi(s);
    } else if (strcmp(word, "seed") == 0) {
        c->seed = strtoull(s, NULL, 10);
    } else if (strcmp(word, "jitter") == 0) {
        c->jitter = atof(s);
    } else if (strcmp(word, "data") == 0) {
        parse_data_(c, s, path, line);
    } else if (strcmp(word, "zero") == 0 && c->n_zero < MAX_NAMES) {
        read_word_(skip_space_(s), c->zero[c->n_zero++]);
    } else if (strcmp(word, "frozen") == 0 && c->n_frozen < MAX_NAMES) {
        read_word_(skip_space_(s), c->frozen[c->n_frozen++]);
    } else if (strcmp(word, "tol") == 0) {
        char reason[8] = "";
        if (sscanf(s, "%lf %lf %7s", &c->abs_tol, &c->rel_tol, reason) != 3)
            die_(path, line, "tol needs ABS REL and a reason", NULL);
    } else {
        die_(path, line, "unknown directive ", word);
    }
}

/* the line `optimizer sgd(lr=1)`, spaces aside: anything else would scale or mix the step */
static int is_sgd_lr1_(const char *s)
{
    char compact[64];
    int k = 0;
    for (; *s && *s != '#' && k < 63; s++)
        if (!isspace((unsigned char)*s)) compact[k++] = *s;
    compact[k] = 0;
    return strcmp(compact, "optimizersgd(lr=1)") == 0;
}

static void parse_case_(Config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die_(path, 0, "cannot open the case", NULL);
    char buf[1024];
    int line = 0, sgd = 0;
    while (fgets(buf, sizeof buf, f)) { /* first the inputs and targets, which directives refer to */
        line++;
        sgd |= is_sgd_lr1_(buf);
        char *hash = strchr(buf, '#');
        if (hash) *hash = 0;
        parse_io_(c, buf, path, line);
    }
    rewind(f);
    for (line = 1; fgets(buf, sizeof buf, f); line++) {
        const char *s = skip_space_(buf);
        if (strncmp(s, "# gradcheck:", 12) == 0) parse_directive_(c, s + 12, path, line);
    }
    fclose(f);
    if (c->batch < 1) die_(path, 0, "batch must be at least 1", NULL);
    if (!sgd) die_(path, 0, "the case needs the line `optimizer sgd(lr=1)`", NULL);
}

/* ---- data ---- */

static void fill_io_(Io *io, int batch)
{
    long count = io->size * batch;
    if (io->is_int) {
        int32_t *v = io->data = malloc(count * sizeof *v);
        for (long i = 0; i < count; i++) v[i] = (int32_t)(rng_next_() % (uint64_t)io->a);
        return;
    }
    double *v = io->data = malloc(count * sizeof *v);
    for (long i = 0; i < count; i++) {
        switch (io->dist) {
        case DIST_NORMAL: v[i] = io->a + io->b * rng_normal_(); break;
        case DIST_UNIFORM: v[i] = io->a + (io->b - io->a) * rng_uniform_(); break;
        case DIST_SIGNED:
            v[i] = (io->a + (io->b - io->a) * rng_uniform_()) * (rng_next_() & 1 ? 1 : -1);
            break;
        case DIST_BERNOULLI: v[i] = (double)(rng_next_() & 1); break;
        default: v[i] = 0; break;
        }
    }
    if (io->dist != DIST_ONEHOT && io->dist != DIST_SIMPLEX) return;
    for (long r = 0; r < count / io->last; r++) { /* each row of the last axis */
        double *row = v + r * io->last, total = 0;
        if (io->dist == DIST_ONEHOT) {
            row[rng_next_() % (uint64_t)io->last] = 1;
            continue;
        }
        for (long j = 0; j < io->last; j++) total += row[j] = 0.1 + rng_uniform_();
        for (long j = 0; j < io->last; j++) row[j] /= total;
    }
}

/* ---- the check ---- */

static int in_list_(const char list[][NAME_LEN], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

static long tensor_size_(const nnc_tensor_info *t)
{
    long size = 1;
    for (int d = 0; d < t->rank; d++) size *= t->shape[d];
    return size;
}

/* the elements to check: all, or MAX_CHECK distinct ones in increasing order */
static int pick_elements_(long size, long *idx)
{
    if (size <= MAX_CHECK) {
        for (long i = 0; i < size; i++) idx[i] = i;
        return (int)size;
    }
    int k = 0;
    for (long i = 0; i < size && k < MAX_CHECK; i++) /* selection sampling (Knuth's algorithm S) */
        if ((double)(size - i) * rng_uniform_() < (double)(MAX_CHECK - k)) idx[k++] = i;
    return k;
}

typedef struct {
    const Config *c;
    void *const *io;
    unsigned char *snap, *work;
    size_t size;
    nnc_real metrics[MAX_METRICS];
} Runner;

static double loss_at_(Runner *r, double *p, double value)
{
    memcpy(r->work, r->snap, r->size);
    *p = value;
    return nnc_jit_train_step(r->work, r->c->batch, r->io, r->metrics);
}

/* checks one trainable tensor; returns the number of failing elements */
static int check_tensor_(Runner *r, const nnc_tensor_info *t, const unsigned char *after, double loss0)
{
    long size = tensor_size_(t), idx[MAX_CHECK];
    int k = pick_elements_(size, idx), fails = 0, nonzero = 0, expect_zero = in_list_(r->c->zero, r->c->n_zero, t->name);
    const double *before = (const double *)(r->snap + t->offset), *next = (const double *)(after + t->offset);
    double worst = -1, wa = 0, wn = 0, wcurve = 0;
    long wi = 0;
    for (int j = 0; j < k; j++) {
        long i = idx[j];
        double *p = (double *)(r->work + t->offset) + i;
        double lo = before[i] - STEP, hi = before[i] + STEP;
        double lp = loss_at_(r, p, hi), lm = loss_at_(r, p, lo);
        double numeric = (lp - lm) / (hi - lo), analytic = before[i] - next[i];
        double err = fabs(analytic - numeric), allowed = r->c->abs_tol + r->c->rel_tol * fabs(numeric);
        if (!(err <= allowed)) fails++;
        if (verbose) printf("     %-28s [%ld] analytic %.12e numeric %.12e\n", t->name, i, analytic, numeric);
        if (analytic != 0 || numeric != 0) nonzero = 1;
        if (!(err / allowed <= worst)) /* also picks up a NaN */
            worst = err / allowed, wi = i, wa = analytic, wn = numeric, wcurve = lp + lm - 2 * loss0;
    }
    int untested = !nonzero && !expect_zero;
    if (expect_zero && nonzero) fails += 1;
    if (untested) fails += 1;
    printf("%-4s %-28s %4d/%-5ld worst [%ld] analytic %.9e numeric %.9e err/tol %.3g", fails ? "FAIL" : "ok",
           t->name, k, size, wi, wa, wn, worst);
    if (fails && fabs(wcurve) > 1e-9 * (1 + fabs(loss0)))
        printf("  (the loss bends by %.2g within h: a kink?)", wcurve);
    if (expect_zero && nonzero) printf("  (expected a zero gradient)");
    if (untested) printf("  (gradient zero everywhere: the case tests nothing; say `zero %s` if meant)", t->name);
    printf("\n");
    return fails;
}

/* a frozen parameter: bit-identical after the step */
static int check_frozen_(Runner *r, const nnc_tensor_info *t, const unsigned char *after)
{
    size_t bytes = (size_t)tensor_size_(t) * (t->dtype ? sizeof(int32_t) : sizeof(double));
    int same = memcmp(r->snap + t->offset, after + t->offset, bytes) == 0;
    printf("%-4s %-28s frozen: %s\n", same ? "ok" : "FAIL", t->name, same ? "unchanged by the step" : "CHANGED by the step");
    return !same;
}

static void jitter_(unsigned char *m, const nnc_tensor_info *tab, int count, double s)
{
    for (int i = 0; i < count; i++) {
        if (tab[i].kind != 0 || !tab[i].trainable || tab[i].dtype != 0) continue;
        double *p = (double *)(m + tab[i].offset);
        for (long j = 0; j < tensor_size_(&tab[i]); j++) p[j] += s * rng_normal_();
    }
}

static int check_names_(const Config *c, const nnc_tensor_info *tab, int count)
{
    int fails = 0;
    for (int k = 0; k < c->n_frozen + c->n_zero; k++) {
        const char *name = k < c->n_frozen ? c->frozen[k] : c->zero[k - c->n_frozen];
        int i = 0;
        while (i < count && strcmp(tab[i].name, name) != 0) i++;
        if (i == count || tab[i].kind != 0) {
            printf("FAIL %-28s no such parameter in the model's tensor table\n", name);
            fails++;
        } else if (k < c->n_frozen && tab[i].trainable) {
            printf("FAIL %-28s is marked trainable, expected frozen\n", name);
            fails++;
        }
    }
    return fails;
}

/* GRADCHECK_DUMP=FILE: the data, the parameters before the step and the analytic gradients as Python
 * literals (`NAME = [...]`), to re-derive a failing case with torch.autograd */
static void dump_list_(FILE *f, const char *prefix, const char *name, const void *data, long size, int is_int)
{
    fprintf(f, "%s['%s'] = [", prefix, name);
    for (long i = 0; i < size; i++) {
        if (is_int) fprintf(f, "%ld, ", (long)((const int32_t *)data)[i]);
        else fprintf(f, "%.17g, ", ((const double *)data)[i]);
    }
    fprintf(f, "]\n");
}

static void dump_(const Config *c, const nnc_tensor_info *tab, int count, const unsigned char *snap,
                  const unsigned char *after, double loss)
{
    const char *path = getenv("GRADCHECK_DUMP");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) return;
    fprintf(f, "batch = %d\nloss = %.17g\nio = {}\nparams = {}\ngrads = {}\n", c->batch, loss);
    for (int i = 0; i < c->n_io; i++)
        dump_list_(f, "io", c->io[i].name, c->io[i].data, c->io[i].size * c->batch, c->io[i].is_int);
    for (int i = 0; i < count; i++) {
        if (tab[i].kind != 0 || tab[i].dtype != 0) continue;
        long size = tensor_size_(&tab[i]);
        const double *p = (const double *)(snap + tab[i].offset), *q = (const double *)(after + tab[i].offset);
        dump_list_(f, "params", tab[i].name, p, size, 0);
        fprintf(f, "grads['%s'] = [", tab[i].name);
        for (long j = 0; j < size; j++) fprintf(f, "%.17g, ", p[j] - q[j]);
        fprintf(f, "]\n");
    }
    fclose(f);
}

static int run_(const Config *c)
{
    int count, fails = 0;
    const nnc_tensor_info *tab = nnc_jit_tensors(&count);
    void *io[MAX_IO];
    for (int i = 0; i < c->n_io; i++) io[i] = c->io[i].data;
    Runner r = {c, io, NULL, NULL, nnc_jit_model_size(), {0}};
    r.snap = calloc(1, r.size), r.work = calloc(1, r.size);
    unsigned char *after = calloc(1, r.size);
    nnc_jit_init(r.snap, c->seed);
    if (c->jitter > 0) jitter_(r.snap, tab, count, c->jitter);

    memcpy(r.work, r.snap, r.size);
    double loss0 = nnc_jit_train_step(r.work, c->batch, io, r.metrics);
    memcpy(after, r.work, r.size);
    memcpy(r.work, r.snap, r.size);
    double again = nnc_jit_train_step(r.work, c->batch, io, r.metrics);
    printf("loss %.17g (batch %d, seed %llu)\n", loss0, c->batch, (unsigned long long)c->seed);
    if (!isfinite(loss0) || memcmp(&loss0, &again, sizeof loss0) != 0 || memcmp(r.work, after, r.size) != 0) {
        printf("FAIL the step is not a deterministic function of the snapshot (loss %.17g then %.17g)\n", loss0, again);
        return 1;
    }
    dump_(c, tab, count, r.snap, after, loss0);
    fails += check_names_(c, tab, count);
    for (int i = 0; i < count; i++) {
        if (tab[i].kind != 0 || tab[i].dtype != 0) continue;
        fails += tab[i].trainable ? check_tensor_(&r, &tab[i], after, loss0) : check_frozen_(&r, &tab[i], after);
    }
    free(r.snap), free(r.work), free(after);
    return fails;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gradcheck CASE.nn\n");
        return 2;
    }
    static Config c;
    verbose = getenv("GRADCHECK_VERBOSE") != NULL;
    c.batch = 4, c.seed = 1, c.abs_tol = 1e-7, c.rel_tol = 1e-5;
    parse_case_(&c, argv[1]);
    rng_state = c.seed ^ 0x5eed5eed5eedu;
    for (int i = 0; i < c.n_io; i++) fill_io_(&c.io[i], c.batch);
    int fails = run_(&c);
    printf("%s: %s\n", argv[1], fails ? "FAILED" : "passed");
    return fails ? 1 : 0;
}
