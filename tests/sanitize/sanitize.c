/* sanitize.c: runs generated models built with -fsanitize=address,undefined (tests/sanitize/run.sh,
 * docs/testing-differential.md), so that any out-of-bounds access, use of freed memory or undefined behaviour in the
 * generated C stops the run.
 *
 *   sanitize LIST
 *
 * Each line of LIST is `NAME SPEC LIB.so`: LIB.so holds the model's C (`nnc MODEL.nn -o NAME.c --shim`, its
 * shim functions renamed NAME_jit_* by run.sh), built with the sanitizers; SPEC is its interface, one item a
 * line (run.sh writes it from the model's IR):
 *   batch N                              the compiled maximum batch
 *   inference 1                          an --inference build: predict only
 *   input NAME f32|i32 COUNT [CLASSES]   per-sample element count; i32 values in [0, CLASSES)
 *   target NAME f32|i32 COUNT [CLASSES]
 *   output NAME f32|i32 COUNT
 * Every buffer is allocated at exactly its size (so that ASan sees one element too far), the model struct
 * too. The run: init; three train steps at n = MAX, 1 and MAX; eval at MAX and 1; predict at MAX and at 1;
 * n = 0 and n = MAX + 1, which must do nothing (predict writes nothing, the others return NaN); and init
 * again with another seed. Inputs are uniform in [-1, 1], f32 targets in [0, 1), class indices in range.
 * Each model runs in a child process; prints `ok NAME` or `FAIL NAME` (the sanitizer's report precedes
 * it); exit status 1 when any model failed, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

enum { MAX_SLOTS = 32, MAX_METRICS = 64, HANG_S = 120 };

typedef struct Slot {
    char name[128];
    int is_int;
    long count;
    int classes;
} Slot;

typedef struct Spec {
    Slot in[MAX_SLOTS], tgt[MAX_SLOTS], out[MAX_SLOTS];
    int nin, ntgt, nout, batch, inference;
} Spec;

static int read_slot_(const char *rest, Slot *s)
{
    char dt[8];
    s->classes = 0;
    int n = sscanf(rest, " %127s %7s %ld %d", s->name, dt, &s->count, &s->classes);
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
        if (!strncmp(line, "batch ", 6)) sp->batch = atoi(line + 6);
        else if (!strncmp(line, "inference ", 10)) sp->inference = atoi(line + 10);
        else if (!strncmp(line, "input ", 6) && sp->nin < MAX_SLOTS) ok = read_slot_(line + 6, &sp->in[sp->nin++]);
        else if (!strncmp(line, "target ", 7) && sp->ntgt < MAX_SLOTS) ok = read_slot_(line + 7, &sp->tgt[sp->ntgt++]);
        else if (!strncmp(line, "output ", 7) && sp->nout < MAX_SLOTS) ok = read_slot_(line + 7, &sp->out[sp->nout++]);
        else if (line[0] != '\n' && line[0] != '#') ok = 0;
    }
    fclose(f);
    return ok && sp->batch > 0;
}

static uint64_t mix_(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double uniform_(uint64_t *s) { return (double)(mix_(s) >> 11) * (1.0 / 9007199254740992.0); }

/* exactly n samples of one slot (malloc of exactly that size: ASan's redzone follows) */
static void *make_(const Slot *sl, int n, uint64_t *s, int is_target)
{
    size_t count = (size_t)sl->count * (size_t)n;
    void *d = malloc(4 * count);
    for (size_t i = 0; i < count; i++) {
        if (sl->is_int) ((int32_t *)d)[i] = (int32_t)(mix_(s) % (uint64_t)(sl->classes > 0 ? sl->classes : 2));
        else ((float *)d)[i] = (float)(is_target ? uniform_(s) : 2 * uniform_(s) - 1);
    }
    return d;
}

typedef size_t (*size_fn)(void);
typedef void (*init_fn)(void *m, uint64_t seed);
typedef const nnc_tensor_info *(*tensors_fn)(int *count);
typedef void (*predict_fn)(void *m, int n, void *const *io);
typedef nnc_real (*step_fn)(void *m, int n, void *const *io, nnc_real *metrics);

typedef struct Lib {
    size_fn size;
    init_fn init;
    tensors_fn tensors;
    predict_fn predict;
    step_fn train, eval;
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
        char sym[200];
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
    memcpy(&l->train, &p[4], sizeof l->train);
    memcpy(&l->eval, &p[5], sizeof l->eval);
    return 1;
}

/* io for n samples: inputs, then targets (train/eval) or outputs (predict); returns the number of buffers */
static int make_io_(const Spec *sp, int n, int predict, uint64_t *s, void **io)
{
    int k = 0;
    for (int i = 0; i < sp->nin; i++) io[k++] = make_(&sp->in[i], n, s, 0);
    if (predict)
        for (int i = 0; i < sp->nout; i++) io[k++] = calloc((size_t)sp->out[i].count * (size_t)n, 4);
    else
        for (int i = 0; i < sp->ntgt; i++) io[k++] = make_(&sp->tgt[i], n, s, 1);
    return k;
}

static void free_io_(void **io, int k)
{
    for (int i = 0; i < k; i++) free(io[i]);
}

static int run_model_(const char *name, const char *spec, const char *lib)
{
    Spec sp;
    Lib l;
    if (!read_spec_(spec, &sp)) {
        printf("FAIL %s: cannot read the interface %s\n", name, spec);
        return 1;
    }
    if (!load_(lib, name, &l)) return 1;
    int ok = 1, ntensors = 0;
    void *m = malloc(l.size());
    l.init(m, 0);
    l.tensors(&ntensors);
    uint64_t s = 1;
    void *io[2 * MAX_SLOTS];
    nnc_real metrics[MAX_METRICS];
    const int ns[3] = {sp.batch, 1, sp.batch};
    if (!sp.inference) {
        for (int i = 0; i < 3; i++) {
            int k = make_io_(&sp, ns[i], 0, &s, io);
            l.train(m, ns[i], io, metrics);
            free_io_(io, k);
        }
        for (int i = 0; i < 2; i++) {
            int k = make_io_(&sp, ns[i], 0, &s, io);
            l.eval(m, ns[i], io, metrics);
            free_io_(io, k);
        }
        /* outside 1..MAX: NaN, nothing touched (buffers of one sample: ASan sees any access past it) */
        const int bad[2] = {0, sp.batch + 1};
        for (int i = 0; i < 2; i++) {
            int k = make_io_(&sp, 1, 0, &s, io);
            if (!isnan(l.train(m, bad[i], io, metrics)) || !isnan(l.eval(m, bad[i], io, metrics))) {
                printf("    train_step or eval at n = %d did not return NaN\n", bad[i]);
                ok = 0;
            }
            free_io_(io, k);
        }
    }
    for (int i = 0; i < 2; i++) {
        int k = make_io_(&sp, ns[i], 1, &s, io);
        l.predict(m, ns[i], io);
        free_io_(io, k);
    }
    {
        int k = make_io_(&sp, 1, 1, &s, io);
        l.predict(m, 0, io);
        l.predict(m, sp.batch + 1, io);
        for (int i = sp.nin; i < k; i++)
            for (long j = 0; j < sp.out[i - sp.nin].count; j++)
                if (((uint32_t *)io[i])[j] != 0) {
                    printf("    predict at n = 0 or MAX + 1 wrote output %s\n", sp.out[i - sp.nin].name);
                    ok = 0;
                    break;
                }
        free_io_(io, k);
    }
    l.init(m, 12345);
    free(m);
    printf("%s %s%s\n", ok ? "ok" : "FAIL", name, sp.inference ? " (inference)" : "");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sanitize LIST (lines: NAME SPEC LIB.so; see sanitize.c)\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        fprintf(stderr, "sanitize: cannot read %s\n", argv[1]);
        return 2;
    }
    char line[4096];
    int status = 0, n = 0, nbad = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], spec[1024], lib[1024];
        if (sscanf(line, "%255s %1023s %1023s", name, spec, lib) != 3) continue;
        n++;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(HANG_S);
            int rc = run_model_(name, spec, lib);
            fflush(stdout);
            _exit(rc);
        }
        int ws = 0;
        waitpid(pid, &ws, 0);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            status = 1;
            nbad++;
            if (WIFSIGNALED(ws)) printf("FAIL %s: killed by signal %d%s\n", name, WTERMSIG(ws), WTERMSIG(ws) == 14 ? " (hang)" : "");
            else if (WEXITSTATUS(ws) != 1) printf("FAIL %s: exit status %d (a sanitizer report is above)\n", name, WEXITSTATUS(ws));
        }
    }
    fclose(f);
    printf("sanitize: %d builds, %d failed\n", n, nbad);
    return status;
}
