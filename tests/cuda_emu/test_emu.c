/* test_emu.c: the CUDA emulator (runtime/cuda/emulate.c) on the hand-written kernels of kernels.cu:
 * barriers, per-block shared memory, shuffles, atomics, exited threads, plain grid-stride kernels, and the
 * errors (a compile error, a missing kernel, a bad launch, threads that wait forever). Every expected value
 * is computed here on the host, independently of the kernels.
 *   test_emu KERNELS.cu
 * NNC_CACHE_DIR should name a scratch directory (ctest sets it); NNC_EMU_UCONTEXT=1 tests the other
 * context switch. Exit 0 when every check passed. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "emulate.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum {
    K_TREE, K_SHFL, K_EDGES, K_XOR, K_PER_BLOCK, K_ROTATE, K_ATOMICS, K_EXITS, K_WARP_EXITS, K_AXPB, K_DIVERGE,
    K_MISLABELLED, K_TOO_SHARED, K_MISC, K_WARP_SYNC, K_COUNT
};
static const char *const kernel_names[K_COUNT] = {
    "tree_sum", "shfl_sum", "shfl_edges", "xor_total", "per_block", "rotate", "atomics",
    "exits", "warp_exits", "axpb", "diverge", "mislabelled", "too_shared", "misc", "warp_sync"};

static int failures;
static char err[8192];

#define CHECK(cond, ...)                                                                                  \
    do {                                                                                                  \
        if (!(cond)) {                                                                                    \
            failures++;                                                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                          \
            fprintf(stderr, __VA_ARGS__);                                                                 \
            fputc('\n', stderr);                                                                          \
        }                                                                                                 \
    } while (0)

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *s;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static int launch(nnc_emu *e, int k, unsigned grid, unsigned block, unsigned shared, void *const *args, int nargs)
{
    int rc = nnc_emu_launch(e, k, grid, block, shared, args, nargs, err, sizeof err);
    CHECK(rc == 0, "%s grid %u block %u: %s", kernel_names[k], grid, block, err);
    return rc;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* (a), (b): per-block sums of 1..n by the tree and by the tree plus the shuffle fold, against the host's
 * sums of the same grid-stride assignment (integers below 2^24: exact in float in any order) */
static void test_sums(nnc_emu *e, int kernel, unsigned grid, unsigned block, int n)
{
    float *x = malloc((size_t)n * sizeof *x), partial[64], want[64];
    void *args[3];
    unsigned b;
    int i;
    double total = 0;
    for (i = 0; i < n; i++)
        x[i] = (float)(i + 1);
    for (b = 0; b < grid; b++) {
        partial[b] = -1.0f;
        want[b] = 0.0f;
    }
    for (i = 0; i < n; i++)
        want[(unsigned)i / block % grid] += x[i];
    args[0] = &n;
    args[1] = x;
    args[2] = partial;
    if (launch(e, kernel, grid, block, 0, args, 3) == 0) {
        for (b = 0; b < grid; b++) {
            CHECK(partial[b] == want[b], "%s grid %u block %u: block %u sum %.1f, want %.1f", kernel_names[kernel],
                  grid, block, b, partial[b], want[b]);
            total += partial[b];
        }
        CHECK(total == (double)n * (n + 1) / 2, "%s: total %.1f", kernel_names[kernel], total);
    }
    free(x);
}

/* (b): shuffles at the warp's edges and with a width */
static void test_edges(nnc_emu *e)
{
    enum { G = 3, B = 64 };
    int down[G * B], up[G * B], idx8[G * B], xor8[G * B], g;
    void *args[4] = {down, up, idx8, xor8};
    if (launch(e, K_EDGES, G, B, 0, args, 4) != 0)
        return;
    for (g = 0; g < G * B; g++) {
        int lane = g % 32;
        CHECK(down[g] == 1000 + (lane < 16 ? g + 16 : g), "down[%d] = %d", g, down[g]);
        CHECK(up[g] == 1000 + (lane >= 8 ? g - 8 : g), "up[%d] = %d", g, up[g]);
        CHECK(idx8[g] == 1000 + g / 8 * 8 + 3, "idx8[%d] = %d", g, idx8[g]);
        CHECK(xor8[g] == 1000 + ((lane & 8) ? g - 8 : g), "xor8[%d] = %d", g, xor8[g]);
    }
}

/* (c): every lane gets its warp's total */
static void test_xor(nnc_emu *e)
{
    enum { G = 2, B = 96 };
    float x[G * B], total[G * B];
    void *args[2] = {x, total};
    int g, w;
    for (g = 0; g < G * B; g++)
        x[g] = (float)((g * 37) % 101);
    if (launch(e, K_XOR, G, B, 0, args, 2) != 0)
        return;
    for (g = 0; g < G * B; g++) {
        float want = 0;
        for (w = g / 32 * 32; w < g / 32 * 32 + 32; w++)
            want += x[w];
        CHECK(total[g] == want, "xor total[%d] = %.1f, want %.1f", g, total[g], want);
    }
}

/* (d): each block sees its own shared memory, filled with 0xff before its first use */
static void test_per_block(nnc_emu *e)
{
    enum { G = 5, B = 128 };
    int before[G], seen[G * B], b, t;
    void *args[2] = {before, seen};
    if (launch(e, K_PER_BLOCK, G, B, 0, args, 2) != 0)
        return;
    for (b = 0; b < G; b++) {
        CHECK(before[b] == -1, "block %d found %d in shared memory before writing it", b, before[b]);
        for (t = 0; t < B; t++)
            CHECK(seen[b * B + t] == b * 100000 + (B - 1 - t) * 7, "block %d thread %d saw %d", b, t, seen[b * B + t]);
    }
}

/* (e): barriers order writes before reads, for several block sizes */
static void test_rotate(nnc_emu *e, unsigned grid, unsigned block)
{
    int *out = malloc(2 * grid * block * sizeof *out);
    void *args[1] = {out};
    unsigned b, t;
    if (launch(e, K_ROTATE, grid, block, 0, args, 1) == 0)
        for (b = 0; b < grid; b++)
            for (t = 0; t < block; t++) {
                int first = (int)(((t + 1) % block) * 3 + b * 10000);
                int second = -(int)(((t + block - 1) % block) * 3 + b * 10000);
                CHECK(out[b * block + t] == first, "rotate block %u: t %u read %d, want %d", block, t,
                      out[b * block + t], first);
                CHECK(out[grid * block + b * block + t] == second, "rotate block %u: t %u read %d after negation, "
                      "want %d", block, t, out[grid * block + b * block + t], second);
            }
    free(out);
}

/* (f): atomics from 37 blocks of 128 threads */
static void test_atomics(nnc_emu *e)
{
    enum { G = 37, B = 128 };
    int count = 0, top = -5, last = -1, g, want_top = -5;
    float fsum = 0.0f;
    unsigned usum = 0;
    void *args[5] = {&count, &fsum, &usum, &top, &last};
    for (g = 0; g < G * B; g++)
        if (g * 7 % 1001 > want_top)
            want_top = g * 7 % 1001;
    if (launch(e, K_ATOMICS, G, B, 0, args, 5) != 0)
        return;
    CHECK(count == G * B, "atomic count %d, want %d", count, G * B);
    CHECK(fsum == 0.5f * G * B, "atomic float sum %.1f, want %.1f", fsum, 0.5 * G * B);
    CHECK(usum == (unsigned)(G * B) * (G * B - 1) / 2, "atomic unsigned sum %u", usum);
    CHECK(top == want_top, "atomicMax %d, want %d", top, want_top);
    CHECK(last >= 0 && last < G * B, "atomicExch left %d", last);
}

/* (g): exited threads do not hold a barrier or a warp group */
static void test_exits(nnc_emu *e)
{
    enum { B = 256, H = B / 2 };
    int out[B], mode, k;
    void *args[2] = {&mode, out};
    for (mode = 0; mode < 2; mode++) {
        for (k = 0; k < B; k++)
            out[k] = -7;
        if (launch(e, K_EXITS, 3, B, 0, args, 2) != 0)
            continue;
        for (k = 0; k < H; k++) {
            CHECK(out[k] == ((k + 1) % H) * 5 + 1, "exits mode %d: out[%d] = %d", mode, k, out[k]);
            CHECK(out[H + k] == 0, "exits mode %d: out[%d] = %d after the last barrier", mode, H + k, out[H + k]);
        }
    }
    {
        int w[96];
        void *wargs[1] = {w};
        for (k = 0; k < 96; k++)
            w[k] = -7;
        if (launch(e, K_WARP_EXITS, 1, 96, 0, wargs, 1) == 0)
            for (k = 0; k < 96; k++)
                CHECK(w[k] == (k % 32 < 16 ? (k ^ 1) : -7), "warp exits: out[%d] = %d", k, w[k]);
    }
}

/* (h): a plain kernel over n not a multiple of the grid's threads; y[n] must stay untouched */
static void test_axpb(nnc_emu *e)
{
    enum { N = 1000 };
    float x[N + 1], y[N + 1];
    int n = N, i;
    void *args[3] = {&n, x, y};
    for (i = 0; i <= N; i++) {
        x[i] = (float)i * 0.5f;
        y[i] = -1.0f;
    }
    if (launch(e, K_AXPB, 3, 64, 0, args, 3) != 0)
        return;
    for (i = 0; i < N; i++)
        CHECK(y[i] == 2.0f * x[i] + 1.0f, "axpb y[%d] = %g", i, y[i]);
    CHECK(y[N] == -1.0f, "axpb wrote past n");
}

/* dynamic shared memory, a double shuffle and a ballot */
static void test_misc(nnc_emu *e)
{
    enum { B = 64 };
    double d[B];
    unsigned ballot[B], want[2] = {0, 0};
    float dyn[B];
    void *args[3] = {d, ballot, dyn};
    int t;
    for (t = 0; t < B; t++)
        if (t % 3 == 0)
            want[t / 32] |= 1u << (t % 32);
    if (launch(e, K_MISC, 1, B, B * sizeof(float), args, 3) != 0)
        return;
    for (t = 0; t < B; t++) {
        int src = t % 32 == 31 ? t : t + 1;
        CHECK(dyn[t] == (float)(B - 1 - t) + 0.25f, "dynamic shared[%d] = %g", t, dyn[t]);
        CHECK(d[t] == (double)src * 1e-3 + 1e9, "double shuffle[%d] = %.6f", t, d[t]);
        CHECK(ballot[t] == want[t / 32], "ballot[%d] = %08x, want %08x", t, ballot[t], want[t / 32]);
    }
}

/* __syncwarp: each lane reads its neighbour's write */
static void test_warp_sync(nnc_emu *e)
{
    enum { B = 96 };
    int out[B], t;
    void *args[1] = {out};
    if (launch(e, K_WARP_SYNC, 2, B, 0, args, 1) != 0)
        return;
    for (t = 0; t < B; t++)
        CHECK(out[t] == (t ^ 1) * 11, "warp_sync out[%d] = %d", t, out[t]);
}

static void expect_launch_error(nnc_emu *e, int k, unsigned grid, unsigned block, unsigned shared,
                                const char *needle)
{
    int buf[64 * 1024];
    void *args[5] = {buf, buf, buf, buf, buf};
    int rc = nnc_emu_launch(e, k, grid, block, shared, args, 5, err, sizeof err);
    CHECK(rc != 0, "%s grid %u block %u: launched, want an error", kernel_names[k], grid, block);
    CHECK(rc == 0 || strstr(err, needle), "%s: message '%s' lacks '%s'", kernel_names[k], err, needle);
}

/* (i), (j) and the other errors */
static void test_errors(nnc_emu *e, const char *source)
{
    static const char *const one[] = {"tree_sum"}, *const missing[] = {"tree_sum", "no_such_kernel"};
    nnc_emu *bad;
    expect_launch_error(e, K_AXPB, 1, 2000, 0, "2000");
    expect_launch_error(e, K_AXPB, 1, 0, 0, "a block of 0");
    expect_launch_error(e, K_AXPB, 0, 32, 0, "grid of 0");
    expect_launch_error(e, K_AXPB, 1, 32, 300 * 1024, "dynamic shared");
    expect_launch_error(e, K_DIVERGE, 2, 32, 0, "wait forever");
    expect_launch_error(e, K_MISLABELLED, 1, 32, 0, "not cooperative");
    expect_launch_error(e, K_TOO_SHARED, 1, 32, 0, "static");
    expect_launch_error(e, K_COUNT, 1, 32, 0, "no kernel");
    /* the handle still works after failed launches */
    test_rotate(e, 2, 64);

    bad = nnc_emu_open("NNC_GLOBAL void broken(int *p) { p[0] = undeclared_name; }\n", "broken", one, 1, err,
                       sizeof err);
    CHECK(!bad, "a source that does not compile opened");
    CHECK(strstr(err, "undeclared_name") && strstr(err, "broken-"), "compile error message: %s", err);
    nnc_emu_close(bad);

    bad = nnc_emu_open(source, "test_emu", missing, 2, err, sizeof err);
    CHECK(!bad, "a missing kernel opened");
    CHECK(strstr(err, "'no_such_kernel'") != NULL, "missing kernel message: %s", err);
    nnc_emu_close(bad);

    bad = nnc_emu_open("int nothing;\n", "notable", one, 1, err, sizeof err);
    CHECK(!bad && strstr(err, "nnc_emu_kernels"), "a source without a kernel table: %s", err);
    nnc_emu_close(bad);
}

/* the cache holds <name>-<16 hex digits>-emu.so */
static int is_cached_so(const char *f)
{
    size_t n = strlen(f), i;
    if (n != strlen("test_emu-") + 16 + strlen("-emu.so") || strncmp(f, "test_emu-", 9) != 0 ||
        strcmp(f + 25, "-emu.so") != 0)
        return 0;
    for (i = 9; i < 25; i++)
        if (!strchr("0123456789abcdef", f[i]))
            return 0;
    return 1;
}

/* The second open of the same source reuses the cached .so (same inode, same mtime). */
static void test_cache(const char *source)
{
    const char *dir = getenv("NNC_CACHE_DIR");
    static const char *const one[] = {"axpb"};
    char path[4096];
    struct stat st1, st2;
    struct dirent *d;
    nnc_emu *e;
    DIR *dp;
    int found = 0;
    if (!dir || !(dp = opendir(dir)))
        return;
    while ((d = readdir(dp)) != NULL) {
        if (!is_cached_so(d->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
        if (stat(path, &st1) != 0)
            continue;
        found = 1;
        e = nnc_emu_open(source, "test_emu", one, 1, err, sizeof err);
        CHECK(e != NULL, "reopen: %s", err);
        nnc_emu_close(e);
        CHECK(stat(path, &st2) == 0 && st1.st_mtime == st2.st_mtime && st1.st_ino == st2.st_ino,
              "the cached %s was rebuilt", path);
    }
    closedir(dp);
    CHECK(found, "no test_emu-<hash16>-emu.so in %s", dir);
}

/* An unusable cache directory: the .so is built in a private temp directory, loaded, and removed with it
 * (TMPDIR is left empty). A compiler that does not exist: an error naming it. */
static void test_fallbacks(const char *source)
{
    static const char *const one[] = {"axpb"};
    const char *cache = getenv("NNC_CACHE_DIR");
    char saved[2048], tmp[2100], blocker[2100], bad[2200];
    FILE *f;
    float x[10], y[10];
    int n = 10, i, left = 0;
    void *args[3] = {&n, x, y};
    struct dirent *d;
    nnc_emu *e;
    DIR *dp;
    if (!cache || strlen(cache) >= sizeof saved)
        return;
    snprintf(saved, sizeof saved, "%s", cache);
    snprintf(tmp, sizeof tmp, "%s/tmpdir", saved);
    snprintf(blocker, sizeof blocker, "%s/a-file", saved);
    snprintf(bad, sizeof bad, "%s/sub", blocker);
    mkdir(tmp, 0777);
    f = fopen(blocker, "w");
    CHECK(f != NULL, "cannot create %s", blocker);
    if (f)
        fclose(f);
    setenv("TMPDIR", tmp, 1);
    setenv("NNC_CACHE_DIR", bad, 1);
    e = nnc_emu_open(source, "fallback", one, 1, err, sizeof err);
    CHECK(e != NULL, "open with the cache under a file: %s", err);
    if (e) {
        for (i = 0; i < n; i++)
            x[i] = (float)i;
        if (launch(e, 0, 1, 4, 0, args, 3) == 0)
            for (i = 0; i < n; i++)
                CHECK(y[i] == 2.0f * (float)i + 1.0f, "fallback y[%d] = %g", i, y[i]);
        nnc_emu_close(e);
    }
    if ((dp = opendir(tmp)) != NULL) {
        while ((d = readdir(dp)) != NULL)
            left += d->d_name[0] != '.';
        closedir(dp);
    }
    CHECK(left == 0, "%d entries left in the temp directory %s", left, tmp);
    setenv("NNC_CACHE_DIR", saved, 1);
    setenv("NNC_CC", "/nonexistent/cc-for-test_emu", 1);
    e = nnc_emu_open(source, "nocc", one, 1, err, sizeof err);
    CHECK(!e && strstr(err, "/nonexistent/cc-for-test_emu") && strstr(err, "not found"),
          "a missing compiler: %s", e ? "opened" : err);
    nnc_emu_close(e);
    unsetenv("NNC_CC");
}

/* Two OS threads, each with its own handle on the same .so (one nnc_emu_env_ptr), launch at once: the
 * launches are serialized and each sees its own grid. */
typedef struct {
    nnc_emu *e;
    int bad;
    char err[1024];
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *j = arg;
    enum { G = 3, B = 128 };
    int out[2 * G * B], rep, b, t;
    void *args[1] = {out};
    for (rep = 0; rep < 30 && !j->bad; rep++) {
        if (nnc_emu_launch(j->e, K_ROTATE, G, B, 0, args, 1, j->err, sizeof j->err) != 0) {
            j->bad = 1;
            break;
        }
        for (b = 0; b < G; b++)
            for (t = 0; t < B; t++)
                j->bad |= out[b * B + t] != ((t + 1) % B) * 3 + b * 10000;
    }
    return NULL;
}

static void test_threads(const char *source)
{
    thread_job jobs[2];
    pthread_t th[2];
    int i;
    for (i = 0; i < 2; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].e = nnc_emu_open(source, "test_emu", kernel_names, K_COUNT, err, sizeof err);
        CHECK(jobs[i].e != NULL, "open for thread %d: %s", i, err);
    }
    if (jobs[0].e && jobs[1].e) {
        for (i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, thread_main, &jobs[i]);
        for (i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            CHECK(!jobs[i].bad, "thread %d: wrong results or an error (%s)", i, jobs[i].err);
        }
    }
    for (i = 0; i < 2; i++)
        nnc_emu_close(jobs[i].e);
}

/* Not a check: how fast plain threads and fiber switches are (the best of 5), for docs/cuda.md. */
static void report_speed(nnc_emu *e)
{
    enum { N = 1 << 20 };
    float *x = calloc(N, sizeof *x), *y = calloc(N, sizeof *y), partial[64];
    int n = N, ns = 64 * 256, rep;
    void *args[3] = {&n, x, y}, *sargs[3] = {&ns, x, partial};
    double plain = 1e9, fibers = 1e9, t0;
    for (rep = 0; rep < 5; rep++) {
        t0 = now();
        launch(e, K_AXPB, N / 256, 256, 0, args, 3);
        plain = fmin(plain, now() - t0);
        t0 = now();
        launch(e, K_SHFL, 64, 256, 0, sargs, 3);
        fibers = fmin(fibers, now() - t0);
    }
    printf("speed: plain kernel %.1f ns/thread; shfl_sum %.1f ns/thread (%u threads, one element each, "
           "4 barriers, 5 shuffles)\n",
           1e9 * plain / N, 1e9 * fibers / (64 * 256), 64 * 256);
    free(x);
    free(y);
}

int main(int argc, char **argv)
{
    char *source;
    nnc_emu *e;
    double t0;
    if (argc != 2 || !(source = read_file(argv[1]))) {
        fprintf(stderr, "usage: test_emu KERNELS.cu (readable)\n");
        return 2;
    }
    t0 = now();
    e = nnc_emu_open(source, "test_emu", kernel_names, K_COUNT, err, sizeof err);
    if (!e) {
        fprintf(stderr, "FAIL: nnc_emu_open: %s\n", err);
        return 1;
    }
    printf("open: %.2f s\n", now() - t0);
    test_sums(e, K_TREE, 7, 256, 3000);
    test_sums(e, K_TREE, 3, 64, 3000);
    test_sums(e, K_TREE, 1, 1, 100);
    test_sums(e, K_SHFL, 7, 256, 3000);
    test_sums(e, K_SHFL, 5, 64, 2999);
    test_edges(e);
    test_xor(e);
    test_per_block(e);
    test_rotate(e, 3, 256);
    test_rotate(e, 2, 1024);
    test_rotate(e, 4, 33);
    test_atomics(e);
    test_exits(e);
    test_axpb(e);
    test_misc(e);
    test_warp_sync(e);
    test_errors(e, source);
    report_speed(e);
    nnc_emu_close(e);
    test_cache(source);
    test_fallbacks(source);
    test_threads(source);
    free(source);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("test_emu: all checks passed\n");
    return 0;
}
