/* peak.c: the machine's single-core float32 FMA peak, and OpenBLAS sgemm for reference.
 *
 *   cc -O2 -march=native peak.c -lopenblas -lm -o peak && ./peak
 * prints one JSON object:
 *   fma_gflops      the FMA throughput of one core: NCHAIN independent accumulator chains of vector FMAs
 *                   (_mm512_fmadd_ps where the compiler targets AVX-512F, else _mm256_fmadd_ps), 2 FLOP per
 *                   lane per FMA; the best of several runs (a peak is a best case)
 *   sgemm           cblas_sgemm GFLOP/s (median of runs) at M×N×K = 1000×128×100 (W3's first layer) and 2048³,
 *                   OpenBLAS on one thread (openblas_set_num_threads(1))
 *   isa, lanes, chains, openblas_config, openblas_corename
 * The FMA loop has more chains than latency × ports needs (4-cycle latency × 2 pipes = 8 on current x86), so it
 * measures throughput, not latency.
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *openblas_get_config(void);
char *openblas_get_corename(void);
void openblas_set_num_threads(int);

static double now_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define NCHAIN 12

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define ISA "avx512f"
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define REDUCE(v) _mm512_reduce_add_ps(v)
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define ISA "avx2+fma"
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float REDUCE(__m256 v)
{
    float t[8];
    _mm256_storeu_ps(t, v);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#else
#error "peak.c needs AVX2+FMA or AVX-512F: build with -march=native on an x86-64 machine that has them"
#endif

/* iters × NCHAIN vector FMAs; the multiplier and addend are opaque so nothing folds */
static float fma_run(long iters, float a, float b)
{
    vec acc[NCHAIN];
    for (int i = 0; i < NCHAIN; i++) acc[i] = SET1(1.0f + (float)i * 1e-3f);
    vec va = SET1(a), vb = SET1(b);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < NCHAIN; i++) acc[i] = FMA(acc[i], va, vb);
        __asm__ volatile("" : "+x"(va));
    }
    vec s = acc[0];
    for (int i = 1; i < NCHAIN; i++) s = ADD(s, acc[i]);
    return REDUCE(s);
}

static int cmp_(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double sgemm_gflops(int m, int n, int k, int reps)
{
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n),
          *c = malloc(sizeof(float) * (size_t)m * n);
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
    double *g = malloc(sizeof(double) * (size_t)reps);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    for (int r = 0; r < reps; r++) {
        int inner = 1;
        double t;
        for (;;) { /* a group of calls lasting >= 20 ms */
            double t0 = now_();
            for (int i = 0; i < inner; i++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
            t = (now_() - t0) / inner;
            if (t * inner >= 0.02) break;
            inner *= 2;
        }
        g[r] = 2.0 * m * n * k / t * 1e-9;
    }
    qsort(g, (size_t)reps, sizeof(double), cmp_);
    double med = g[reps / 2];
    free(a), free(b), free(c), free(g);
    return med;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    openblas_set_num_threads(1);
    long iters = 20 * 1000 * 1000;
    float sink = fma_run(iters / 100, 0.999999f, 1e-7f);
    double best = 0;
    for (int r = 0; r < (quick ? 3 : 7); r++) {
        double t0 = now_();
        sink += fma_run(iters, 0.999999f, 1e-7f);
        double t = now_() - t0;
        double g = (double)iters * NCHAIN * LANES * 2 / t * 1e-9;
        if (g > best) best = g;
    }
    double small = sgemm_gflops(1000, 128, 100, quick ? 3 : 7);
    double big = sgemm_gflops(2048, 2048, 2048, quick ? 1 : 3);
    printf("{\"fma_gflops\": %.2f, \"isa\": \"%s\", \"lanes\": %d, \"chains\": %d, "
           "\"sgemm\": {\"1000x128x100\": %.2f, \"2048x2048x2048\": %.2f}, "
           "\"openblas_config\": \"%s\", \"openblas_corename\": \"%s\", \"sink\": %g}\n",
           best, ISA, LANES, NCHAIN, small, big, openblas_get_config(), openblas_get_corename(), (double)sink);
    return 0;
}
