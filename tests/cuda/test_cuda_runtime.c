/* test_cuda_runtime.c: tests of the CUDA runtime (runtime/cuda/nnc_cuda.h), with cmocka, on a hand-written
 * kernel source that is CUDA for NVRTC and C for the emulator, as the CUDA printer writes it.
 *
 *   test_cuda_runtime emulator   the runtime under NNC_CUDA_EMULATE=1: open, run, wait; an entry recorded
 *                                once and replayed on every call (its first included) while n and the inputs
 *                                change; copies, fills, staging, get/set through download/upload; the first
 *                                error kept and every later call refused; the checks of a program; products
 *                                (nnc_cuda_gemm, four transposes, padded strides) against a double reference
 *                                and bit for bit against a float sum, their errors; the row-major to
 *                                column-major mapping cuBLAS gets, run by a column-major reference
 *   test_cuda_runtime device     without NNC_CUDA_EMULATE: where no GPU is, nnc_cuda_open fails with a
 *                                message that names NNC_CUDA_EMULATE; where one is, the emulator's checks
 *                                run again on it
 *   test_cuda_runtime mock       with tests/cuda/mock_libcuda.c as libcuda.so.1: the device checks on the
 *                                driver path (NVRTC's cubin loaded, graphs captured and replayed, asynchronous
 *                                streams), one graph launch per call, NNC_CUDA_NO_GRAPH=1
 *                                and tests/cuda/mock_libcublas.c as libcublas.so.13: the products on cuBLAS
 *                                (created once, outside the capture, the entry recorded again; 4 sgemms in
 *                                the graph, run on every call; NNC_CUDA_NO_GRAPH=1: 4 per call)
 *   test_cuda_runtime mock_no_device  the mock driver without a device: cuInit's failure is the message
 *   test_cuda_runtime mock_no_cublas  the mock driver with $NNC_CUBLAS naming no library: the product's error
 *   test_cuda_runtime stub       with the toolkit's stub libcuda as libcuda.so.1 (LD_LIBRARY_PATH): every
 *                                entry point the runtime needs is found, and cuInit's failure is the message
 *   test_cuda_runtime nvrtc      NVRTC (dlopen'ed) compiles the source to sm_80 and sm_90 cubins and to
 *                                compute_80 PTX, names the kernel of a compile error, picks architectures;
 *                                the cubin cache: file name, reuse, a corrupt or rejected file compiled
 *                                again, an unwritable cache directory; the toolkit's cuBLAS has every entry
 *                                point the runtime calls
 * Exit 77 (skip) when NVRTC cannot be loaded for the nvrtc group.
 * The references are worked by hand in the test (a[0] * x + b, sums of known values, replay counts).
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* mkdtemp, setenv */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nnc_cuda.h"
#include "nnc_cuda_internal.h"

/* ---- the kernels: the printer's prelude block, three kernels, the emulator's table ---- */
static const char kernel_source[] =
    "#if defined(__CUDACC__)\n"
    "#define NNC_GLOBAL extern \"C\" __global__\n"
    "#define NNC_DEVICE static __device__ __forceinline__\n"
    "#define NNC_RESTRICT __restrict__\n"
    "#define NNC_SHARED(type, name, count) __shared__ type name[count]\n"
    "#endif\n"
    "\n"
    "/* y[i] = a[0] * x[i] + b[i] for i < n, grid-stride */\n"
    "NNC_GLOBAL void k_axpy(const int *NNC_RESTRICT nn, const float *NNC_RESTRICT a,\n"
    "                       const float *NNC_RESTRICT x, const float *NNC_RESTRICT b, float *NNC_RESTRICT y)\n"
    "{\n"
    "    int n = *nn;\n"
    "    for (int i = (int)(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += (int)(gridDim.x * blockDim.x))\n"
    "        y[i] = a[0] * x[i] + b[i];\n"
    "}\n"
    "\n"
    "/* s[0] = y[0] + ... + y[n-1], one block of 256 threads folding in shared memory */\n"
    "NNC_GLOBAL void k_sum(const int *NNC_RESTRICT nn, const float *NNC_RESTRICT y, float *NNC_RESTRICT s)\n"
    "{\n"
    "    NNC_SHARED(float, part, 256);\n"
    "    int n = *nn;\n"
    "    float acc = 0.0f;\n"
    "    for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x)\n"
    "        acc += y[i];\n"
    "    part[threadIdx.x] = acc;\n"
    "    __syncthreads();\n"
    "    for (unsigned h = blockDim.x / 2; h > 0; h /= 2) {\n"
    "        if (threadIdx.x < h)\n"
    "            part[threadIdx.x] += part[threadIdx.x + h];\n"
    "        __syncthreads();\n"
    "    }\n"
    "    if (threadIdx.x == 0)\n"
    "        s[0] = part[0];\n"
    "}\n"
    "\n"
    "/* w[0] += 1: counts the launches that ran */\n"
    "NNC_GLOBAL void k_count(float *NNC_RESTRICT w)\n"
    "{\n"
    "    if (blockIdx.x == 0 && threadIdx.x == 0)\n"
    "        w[0] += 1.0f;\n"
    "}\n"
    "\n"
    "#if defined(NNC_CUDA_EMULATOR)\n"
    "static void nnc_emu_k_axpy(void *const *a)\n"
    "{\n"
    "    k_axpy((const int *)a[0], (const float *)a[1], (const float *)a[2], (const float *)a[3], (float *)a[4]);\n"
    "}\n"
    "static void nnc_emu_k_sum(void *const *a) { k_sum((const int *)a[0], (const float *)a[1], (float *)a[2]); }\n"
    "static void nnc_emu_k_count(void *const *a) { k_count((float *)a[0]); }\n"
    "const nnc_emu_kernel nnc_emu_kernels[] = {\n"
    "    {\"k_axpy\", nnc_emu_k_axpy, 0}, {\"k_sum\", nnc_emu_k_sum, 1}, {\"k_count\", nnc_emu_k_count, 0}};\n"
    "const int nnc_emu_nkernels = 3;\n"
    "#endif\n";

static const char *const kernel_names[] = {"k_axpy", "k_sum", "k_count"};
enum { K_AXPY, K_SUM, K_COUNT, NKERNELS };

#define CAP 300 /* the batch capacity: more than the 256 threads of k_sum's block */

/* the layouts a generated model would have: the image (device) and the io block (device, pinned twin) */
typedef struct t_image {
    float a;
    float b[CAP];
    float y[CAP];
    float count;
    float filled[16];
} t_image;

typedef struct t_io {
    int32_t n;
    float x[CAP];
    /* outputs from here */
    float y[CAP];
    float s;
    float count;
    float filled[16];
} t_io;

#define IN_BYTES offsetof(t_io, y)
#define OUT_OFFSET offsetof(t_io, y)
#define OUT_BYTES (sizeof(t_io) - offsetof(t_io, y))

typedef struct t_model {
    nnc_cuda *c;
    int records[NNC_CUDA_ENTRIES]; /* how many times each record function ran */
    int bad_kernel;                /* what record_bad launches */
    unsigned bad_block;
} t_model;

static const nnc_cuda_program program = {NNC_CUDA_ABI, "rt_test", kernel_source, NKERNELS, kernel_names,
                                         sizeof(t_image), sizeof(t_io)};

static t_image *dev_image(t_model *m) { return nnc_cuda_image(m->c); }
static t_io *dev_io(t_model *m) { return nnc_cuda_io(m->c); }

/* entry 0: y = a x + b, s = sum y, count += 1, outputs copied into the io block */
static void record_predict(void *model) {
    t_model *m = model;
    t_image *im = dev_image(m);
    t_io *io = dev_io(m);
    m->records[0]++;
    void *axpy[] = {&io->n, &im->a, io->x, im->b, im->y};
    nnc_cuda_launch(m->c, K_AXPY, 2, 32, 0, axpy, 5);
    void *sum[] = {&io->n, im->y, &io->s};
    nnc_cuda_launch(m->c, K_SUM, 1, 256, 0, sum, 3);
    void *count[] = {&im->count};
    nnc_cuda_launch(m->c, K_COUNT, 1, 32, 0, count, 1);
    nnc_cuda_copy(m->c, io->y, im->y, sizeof im->y);
    nnc_cuda_copy(m->c, &io->count, &im->count, sizeof im->count);
}

/* entry 1: fills, 1.0f in the image's 16 words then -2 (an int32's bits) in the io block's last 8 */
static void record_fill(void *model) {
    t_model *m = model;
    t_image *im = dev_image(m);
    t_io *io = dev_io(m);
    m->records[1]++;
    nnc_cuda_fill(m->c, im->filled, 0x3f800000u, 16);
    nnc_cuda_copy(m->c, io->filled, im->filled, sizeof im->filled);
    nnc_cuda_fill(m->c, &io->filled[8], (uint32_t)-2, 8);
}

/* entry 2: a launch the runtime must refuse */
static void record_bad(void *model) {
    t_model *m = model;
    m->records[2]++;
    void *count[] = {&dev_image(m)->count};
    nnc_cuda_launch(m->c, m->bad_kernel, 1, m->bad_block, 0, count, 1);
}

static void init_image(t_image *im) {
    memset(im, 0, sizeof *im);
    im->a = 2.0f;
    for (int i = 0; i < CAP; i++)
        im->b[i] = (float)(i % 7) - 3.0f;
}

static char cache_dir[256];

static void use_emulator(int on) {
    if (on)
        setenv("NNC_CUDA_EMULATE", "1", 1);
    else
        unsetenv("NNC_CUDA_EMULATE");
}

static int open_model(t_model *m) {
    static t_image im;
    init_image(&im);
    memset(m, 0, sizeof *m);
    /* the whole image but its last float is initialised; the rest must be zero */
    return nnc_cuda_open(&m->c, &program, &im, offsetof(t_image, filled));
}

/* one predict call with batch n and x[i] = xscale * (i + 1); checks y, s and the replay count */
static void predict_and_check(t_model *m, int n, float xscale, int call) {
    t_io *h = nnc_cuda_io_host(m->c);
    h->n = n;
    for (int i = 0; i < n; i++)
        h->x[i] = xscale * (float)(i + 1);
    assert_int_equal(nnc_cuda_run(m->c, 0, record_predict, m, IN_BYTES, OUT_OFFSET, OUT_BYTES), 0);
    assert_int_equal(nnc_cuda_wait(m->c), 0);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        float want = 2.0f * (xscale * (float)(i + 1)) + ((float)(i % 7) - 3.0f);
        assert_true(h->y[i] == want);
        sum += want;
    }
    assert_true(fabs(h->s - sum) <= 1e-5 * fabs(sum) + 1e-6);
    assert_true(h->count == (float)call);
}

/* ---- emulator (and device) group ---- */

static int device_group; /* 1: the tests run on a GPU, not the emulator */

static void test_open_run_wait(void **state) {
    t_model m;
    use_emulator(!device_group);
    assert_int_equal(open_model(&m), 0);
    assert_null(nnc_cuda_error(m.c));
    if (device_group)
        assert_true(strlen(nnc_cuda_device_name(m.c)) > 0 && strcmp(nnc_cuda_device_name(m.c), "emulator") != 0);
    else
        assert_string_equal(nnc_cuda_device_name(m.c), "emulator");
    assert_non_null(nnc_cuda_image(m.c));
    assert_non_null(nnc_cuda_io(m.c));
    assert_non_null(nnc_cuda_io_host(m.c));
    predict_and_check(&m, 10, 1.0f, 1);
    nnc_cuda_close(m.c);
}

/* the record function runs once; three calls with other n and x see their own inputs */
static void test_record_once_replay(void **state) {
    t_model m;
    use_emulator(!device_group);
    assert_int_equal(open_model(&m), 0);
    predict_and_check(&m, 5, 1.0f, 1);
    predict_and_check(&m, CAP, -0.5f, 2);
    predict_and_check(&m, 17, 3.0f, 3);
    assert_int_equal(m.records[0], 1);
    nnc_cuda_close(m.c);
}

static void test_fill_and_copy(void **state) {
    t_model m;
    use_emulator(!device_group);
    assert_int_equal(open_model(&m), 0);
    t_io *h = nnc_cuda_io_host(m.c);
    for (int call = 0; call < 2; call++) {
        memset(h->filled, 0x55, sizeof h->filled);
        assert_int_equal(nnc_cuda_run(m.c, 1, record_fill, &m, 0, offsetof(t_io, filled), sizeof h->filled), 0);
        assert_int_equal(nnc_cuda_wait(m.c), 0);
        for (int i = 0; i < 8; i++)
            assert_true(h->filled[i] == 1.0f);
        for (int i = 8; i < 16; i++) {
            int32_t bits;
            memcpy(&bits, &h->filled[i], 4);
            assert_int_equal(bits, -2);
        }
    }
    assert_int_equal(m.records[1], 1);
    nnc_cuda_close(m.c);
}

/* M_get_tensor / M_set_tensor: download and upload; the uninitialised tail of the image reads zero */
static void test_get_set(void **state) {
    t_model m;
    float b[CAP], y[CAP], filled[16], count;
    use_emulator(!device_group);
    assert_int_equal(open_model(&m), 0);
    t_image *im = dev_image(&m);
    assert_int_equal(nnc_cuda_download(m.c, filled, im->filled, sizeof filled), 0);
    for (int i = 0; i < 16; i++)
        assert_true(filled[i] == 0.0f);
    assert_int_equal(nnc_cuda_download(m.c, b, im->b, sizeof b), 0);
    assert_true(b[0] == -3.0f && b[6] == 3.0f && b[7] == -3.0f);
    for (int i = 0; i < CAP; i++)
        b[i] = 100.0f;
    assert_int_equal(nnc_cuda_upload(m.c, im->b, b, sizeof b), 0);
    t_io *h = nnc_cuda_io_host(m.c);
    h->n = 4;
    for (int i = 0; i < 4; i++)
        h->x[i] = (float)i;
    assert_int_equal(nnc_cuda_run(m.c, 0, record_predict, &m, IN_BYTES, OUT_OFFSET, OUT_BYTES), 0);
    assert_int_equal(nnc_cuda_wait(m.c), 0);
    assert_int_equal(nnc_cuda_download(m.c, y, im->y, 4 * sizeof(float)), 0);
    assert_int_equal(nnc_cuda_download(m.c, &count, &im->count, sizeof count), 0);
    for (int i = 0; i < 4; i++) {
        assert_true(y[i] == 2.0f * (float)i + 100.0f);
        assert_true(h->y[i] == y[i]);
    }
    assert_true(count == 1.0f);
    /* staging (the _device entry points): device to device outside any graph */
    assert_int_equal(nnc_cuda_stage(m.c, dev_io(&m)->x, im->y, 4 * sizeof(float)), 0);
    assert_int_equal(nnc_cuda_wait(m.c), 0);
    assert_int_equal(nnc_cuda_download(m.c, b, dev_io(&m)->x, 4 * sizeof(float)), 0);
    for (int i = 0; i < 4; i++)
        assert_true(b[i] == y[i]);
    nnc_cuda_close(m.c);
}

/* a failure is kept; every later call returns nonzero at once and the first message stays */
static void check_sticky(t_model *m, const char *expect) {
    float x = 0;
    const char *e = nnc_cuda_error(m->c);
    assert_non_null(e);
    assert_non_null(strstr(e, "nnc_cuda: "));
    assert_non_null(strstr(e, expect));
    char first[NNC_CUDA_ERRLEN];
    snprintf(first, sizeof first, "%s", e);
    assert_int_not_equal(nnc_cuda_wait(m->c), 0);
    assert_int_not_equal(nnc_cuda_run(m->c, 0, record_predict, m, IN_BYTES, OUT_OFFSET, OUT_BYTES), 0);
    assert_int_equal(m->records[0], 0); /* refused before recording */
    assert_int_not_equal(nnc_cuda_download(m->c, &x, &dev_image(m)->a, sizeof x), 0);
    assert_int_not_equal(nnc_cuda_upload(m->c, &dev_image(m)->a, &x, sizeof x), 0);
    assert_int_not_equal(nnc_cuda_stage(m->c, &dev_image(m)->a, &dev_image(m)->count, sizeof x), 0);
    assert_string_equal(nnc_cuda_error(m->c), first);
}

static void test_error_bad_kernel(void **state) {
    t_model m;
    use_emulator(!device_group);
    assert_int_equal(open_model(&m), 0);
    m.bad_kernel = 7;
    m.bad_block = 32;
    assert_int_not_equal(nnc_cuda_run(m.c, 2, record_bad, &m, 0, 0, 0), 0);
    assert_int_equal(m.records[2], 1);
    check_sticky(&m, "kernel 7");
    nnc_cuda_close(m.c);
}

static void test_error_bad_block(void **state) {
    t_model m;
    use_emulator(!device_group);
    assert_int_equal(open_model(&m), 0);
    m.bad_kernel = K_COUNT;
    m.bad_block = 2000;
    assert_int_not_equal(nnc_cuda_run(m.c, 2, record_bad, &m, 0, 0, 0), 0);
    check_sticky(&m, "k_count: 2000 threads per block");
    nnc_cuda_close(m.c);
}

/* arguments of a run and copies outside the device blocks are refused, and so is a program of another ABI */
static void test_error_checks(void **state) {
    t_model m;
    use_emulator(!device_group);
    assert_int_equal(open_model(&m), 0);
    assert_int_not_equal(nnc_cuda_run(m.c, 3, record_predict, &m, 0, 0, 0), 0);
    check_sticky(&m, "entry point 3");
    nnc_cuda_close(m.c);

    assert_int_equal(open_model(&m), 0);
    assert_int_not_equal(nnc_cuda_run(m.c, 0, record_predict, &m, sizeof(t_io) + 1, 0, 0), 0);
    check_sticky(&m, "io block");
    nnc_cuda_close(m.c);

    assert_int_equal(open_model(&m), 0);
    float host[4];
    nnc_cuda_copy(m.c, dev_image(&m)->y, host, sizeof host);
    check_sticky(&m, "outside the image and the io block");
    nnc_cuda_close(m.c);

    nnc_cuda_program other = program;
    other.abi = NNC_CUDA_ABI + 1;
    nnc_cuda *c = NULL;
    assert_int_not_equal(nnc_cuda_open(&c, &other, NULL, 0), 0);
    assert_non_null(c);
    assert_non_null(strstr(nnc_cuda_error(c), "ABI"));
    assert_null(nnc_cuda_image(c));
    assert_int_not_equal(nnc_cuda_wait(c), 0);
    nnc_cuda_close(c);
    nnc_cuda_close(NULL);
}

/* a kernel the emulator cannot compile: the open fails with the compiler's message */
static void test_emulator_compile_error(void **state) {
    nnc_cuda_program bad = program;
    bad.source = "NNC_GLOBAL void k_axpy(float *x) { x[0] = undefined_thing; }\n";
    nnc_cuda *c = NULL;
    use_emulator(1);
    assert_int_not_equal(nnc_cuda_open(&c, &bad, NULL, 0), 0);
    assert_non_null(c);
    assert_non_null(strstr(nnc_cuda_error(c), "nnc_cuda: emulator: "));
    assert_non_null(strstr(nnc_cuda_error(c), "undefined_thing"));
    nnc_cuda_close(c);
}

/* a launch the emulator refuses when the graph replays it (k_sum, which waits at __syncthreads, listed as not
 * cooperative): the emulator's reason, under the kernel's name, kept */
static void test_emulator_launch_error(void **state) {
    static char source[sizeof kernel_source];
    const char *row = "{\"k_sum\", nnc_emu_k_sum, 1}";
    char *at;
    memcpy(source, kernel_source, sizeof kernel_source);
    at = strstr(source, row);
    assert_non_null(at);
    at[strlen(row) - 2] = '0';
    nnc_cuda_program uncooperative = program;
    uncooperative.source = source;
    t_model m;
    t_image im;
    init_image(&im);
    memset(&m, 0, sizeof m);
    use_emulator(1);
    assert_int_equal(nnc_cuda_open(&m.c, &uncooperative, &im, sizeof im), 0);
    t_io *h = nnc_cuda_io_host(m.c);
    h->n = 3;
    assert_int_not_equal(nnc_cuda_run(m.c, 0, record_predict, &m, IN_BYTES, OUT_OFFSET, OUT_BYTES), 0);
    assert_int_equal(m.records[0], 1);
    assert_true(strncmp(nnc_cuda_error(m.c), "nnc_cuda: emulator: k_sum: ", 27) == 0);
    m.records[0] = 0;
    check_sticky(&m, "k_sum");
    nnc_cuda_close(m.c);

    /* more initial bytes than the image has */
    assert_int_not_equal(nnc_cuda_open(&m.c, &program, &im, sizeof im + 1), 0);
    assert_non_null(strstr(nnc_cuda_error(m.c), "initial bytes"));
    nnc_cuda_close(m.c);
}

/* ---- products (nnc_cuda_gemm): a model of its own, in every group that has a device ---- */

#define GM 5 /* C = op(A) op(B): m x n, k deep */
#define GN 7
#define GK 9
#define LDA_N (GK + 3) /* A stored m x k */
#define LDA_T (GM + 2) /* A stored k x m */
#define LDB_N (GN + 1) /* B stored k x n */
#define LDB_T (GK + 4) /* B stored n x k */
#define LDC (GN + 4)

typedef struct g_image {
    float bn[GK * LDB_N];
    float bt[GN * LDB_T];
} g_image;

typedef struct g_io {
    int32_t n;
    float an[GM * LDA_N];
    float at[GK * LDA_T];
    float c[4][GM * LDC]; /* outputs: the four products, ta = q >> 1, tb = q & 1 */
} g_io;

typedef struct g_model {
    nnc_cuda *c;
    int records;
    int bad; /* record_gemm_bad's case */
} g_model;

static const nnc_cuda_program gemm_program = {NNC_CUDA_ABI, "rt_gemm", kernel_source, NKERNELS, kernel_names,
                                              sizeof(g_image), sizeof(g_io)};

/* the logical op(A) (m x k) and op(B) (k x n) of call `call` */
static float gx(int i, int p, int call) {
    return (float)((i * 7 + p * 3 + call) % 11 - 5) * 0.37f + 0.01f * (float)call;
}
static float gy(int p, int j, int call) {
    return (float)((p * 5 + j * 2 + 2 * call) % 13 - 6) * 0.21f - 0.5f * (float)call;
}

static void record_gemm(void *model) {
    g_model *m = model;
    g_image *im = nnc_cuda_image(m->c);
    g_io *io = nnc_cuda_io(m->c);
    m->records++;
    for (int q = 0; q < 4; q++) {
        int ta = q >> 1, tb = q & 1;
        nnc_cuda_gemm(m->c, ta, tb, GM, GN, GK, ta ? io->at : io->an, ta ? LDA_T : LDA_N, tb ? im->bt : im->bn,
                      tb ? LDB_T : LDB_N, io->c[q], LDC);
    }
}

/* one call's inputs: A through the io block, B uploaded into the image; every pad a NaN */
static void gemm_inputs(g_model *m, int call) {
    static g_image b;
    g_io *h = nnc_cuda_io_host(m->c);
    float nan = NAN;
    for (size_t i = 0; i < sizeof h->an / 4; i++)
        h->an[i] = nan;
    for (size_t i = 0; i < sizeof h->at / 4; i++)
        h->at[i] = nan;
    for (size_t i = 0; i < sizeof b.bn / 4; i++)
        b.bn[i] = nan;
    for (size_t i = 0; i < sizeof b.bt / 4; i++)
        b.bt[i] = nan;
    for (int i = 0; i < GM; i++)
        for (int p = 0; p < GK; p++)
            h->an[i * LDA_N + p] = h->at[p * LDA_T + i] = gx(i, p, call);
    for (int p = 0; p < GK; p++)
        for (int j = 0; j < GN; j++)
            b.bn[p * LDB_N + j] = b.bt[j * LDB_T + p] = gy(p, j, call);
    assert_int_equal(nnc_cuda_upload(m->c, nnc_cuda_image(m->c), &b, sizeof b), 0);
}

/* every product against a double reference (1e-5 of the sum of |terms|); the emulator's bit for bit against
 * a float sum over k ascending; the pads of C left alone */
static void gemm_check(g_model *m, int call, float pad) {
    g_io *h = nnc_cuda_io_host(m->c);
    for (int q = 0; q < 4; q++)
        for (int i = 0; i < GM; i++) {
            for (int j = 0; j < GN; j++) {
                double ref = 0, mag = 0;
                float f = 0.0f;
                for (int p = 0; p < GK; p++) {
                    ref += (double)gx(i, p, call) * (double)gy(p, j, call);
                    mag += fabs((double)gx(i, p, call) * (double)gy(p, j, call));
                    float t = gx(i, p, call) * gy(p, j, call);
                    f += t;
                }
                float got = h->c[q][i * LDC + j];
                if (!(fabs((double)got - ref) <= 1e-5 * mag + 1e-30))
                    fail_msg("product %d (ta %d, tb %d), call %d, C[%d][%d] = %.9g, want %.9g", q, q >> 1, q & 1, call,
                             i, j, (double)got, ref);
                if (!device_group && got != f)
                    fail_msg("emulated product %d, C[%d][%d] = %.9g, the float sum %.9g", q, i, j, (double)got,
                             (double)f);
            }
            for (int j = GN; j < LDC; j++)
                assert_true(h->c[q][i * LDC + j] == pad);
        }
}

/* four products, recorded once (a GPU records twice: the first product loads cuBLAS), replayed over three calls
 * whose A and B change */
static void test_gemm_replay(void **state) {
    g_model m = {0};
    float pads[4][GM * LDC];
    use_emulator(!device_group);
    assert_int_equal(nnc_cuda_open(&m.c, &gemm_program, NULL, 0), 0);
    for (int q = 0; q < 4; q++)
        for (int i = 0; i < GM * LDC; i++)
            pads[q][i] = -7.0f;
    assert_int_equal(nnc_cuda_upload(m.c, ((g_io *)nnc_cuda_io(m.c))->c, pads, sizeof pads), 0);
    for (int call = 0; call < 3; call++) {
        gemm_inputs(&m, call);
        assert_int_equal(nnc_cuda_run(m.c, 2, record_gemm, &m, offsetof(g_io, c), offsetof(g_io, c),
                                      sizeof(g_io) - offsetof(g_io, c)),
                         0);
        assert_int_equal(nnc_cuda_wait(m.c), 0);
        gemm_check(&m, call, -7.0f);
    }
    assert_int_equal(m.records, device_group ? 2 : 1);
    assert_null(nnc_cuda_error(m.c));
    nnc_cuda_close(m.c);
}

/* a product the runtime refuses, issued in a record function */
static void record_gemm_bad(void *model) {
    g_model *m = model;
    g_image *im = nnc_cuda_image(m->c);
    g_io *io = nnc_cuda_io(m->c);
    float host[4];
    m->records++;
    switch (m->bad) {
    case 0: nnc_cuda_gemm(m->c, 0, 0, 0, GN, GK, io->an, LDA_N, im->bn, LDB_N, io->c[0], LDC); break;
    case 1: nnc_cuda_gemm(m->c, 0, 0, GM, GN, -1, io->an, LDA_N, im->bn, LDB_N, io->c[0], LDC); break;
    case 2: nnc_cuda_gemm(m->c, 0, 1, GM, GN, GK, io->an, LDA_N, im->bt, GK - 1, io->c[0], LDC); break;
    case 3: nnc_cuda_gemm(m->c, 1, 0, GM, GN, GK, io->at, LDA_T, im->bn, LDB_N, io->c[0], GN - 1); break;
    case 4: nnc_cuda_gemm(m->c, 0, 0, GM, GN, GK, host, LDA_N, im->bn, LDB_N, io->c[0], LDC); break;
    case 5: nnc_cuda_gemm(m->c, 0, 0, GM, GN, GK, io->an, LDA_N, im->bn, LDB_N, io->an + 4, LDC); break;
    default: nnc_cuda_gemm(m->c, 0, 0, GM, GN, GK, io->an, LDA_N, im->bn, LDB_N, io->c[3] + 5, LDC); break;
    }
}

/* sizes below 1, strides below a row, host memory, C on A, C past the io block: each kept as the first error,
 * every later call refused; a NULL handle is no crash */
static void test_gemm_errors(void **state) {
    static const char *const expect[] = {"m 0, n 7, k 9: each must be at least 1", "k -1: each must be at least 1",
                                         "(NT): strides lda 12, ldb 8, ldc 11", "(TN): strides lda 7, ldb 8, ldc 6",
                                         "outside the image and the io block", "C overlaps A or B",
                                         "outside the image and the io block"};
    use_emulator(!device_group);
    for (int bad = 0; bad < 7; bad++) {
        g_model m = {0};
        t_model t;
        m.bad = bad;
        assert_int_equal(nnc_cuda_open(&m.c, &gemm_program, NULL, 0), 0);
        assert_int_not_equal(nnc_cuda_run(m.c, 2, record_gemm_bad, &m, 0, 0, 0), 0);
        const char *e = nnc_cuda_error(m.c);
        assert_non_null(e);
        if (!strstr(e, expect[bad]))
            fail_msg("case %d: %s", bad, e);
        assert_true(strncmp(e, "nnc_cuda: product of ", 21) == 0);
        memset(&t, 0, sizeof t);
        t.c = m.c;
        check_sticky(&t, expect[bad]);
        /* a product after the failure changes nothing */
        record_gemm(&m);
        assert_string_equal(nnc_cuda_error(m.c), e);
        nnc_cuda_close(m.c);
    }
    nnc_cuda_gemm(NULL, 0, 0, GM, GN, GK, NULL, LDA_N, NULL, LDB_N, NULL, LDC);
}

/* a program of ABI 1 (written before nnc_cuda_gemm) still opens */
static void test_gemm_abi1(void **state) {
    nnc_cuda_program old = program;
    nnc_cuda *c = NULL;
    old.abi = 1;
    use_emulator(!device_group);
    assert_int_equal(nnc_cuda_open(&c, &old, NULL, 0), 0);
    nnc_cuda_close(c);
}

/* the column-major sgemm a row-major product becomes (what cuBLAS gets), run by a column-major reference sgemm
 * written from the BLAS definition, equals the row-major product, for the four transposes */
static void colmajor_sgemm(const nnc_cuda_sgemm *s) {
    /* C(i, j) at c[i + j * ldc]; op(A) is m x k: A(i, p) = a[i + p * lda], transposed a[p + i * lda] */
    for (int i = 0; i < s->m; i++)
        for (int j = 0; j < s->n; j++) {
            double acc = 0;
            for (int p = 0; p < s->k; p++) {
                float x = s->transa ? s->a[p + i * s->lda] : s->a[i + p * s->lda];
                float y = s->transb ? s->b[j + p * s->ldb] : s->b[p + j * s->ldb];
                acc += (double)x * (double)y;
            }
            s->c[i + j * s->ldc] = (float)acc;
        }
}

static void test_gemm_mapping(void **state) {
    static float an[GM * LDA_N], at[GK * LDA_T], bn[GK * LDB_N], bt[GN * LDB_T], c[GM * LDC];
    for (int i = 0; i < GM; i++)
        for (int p = 0; p < GK; p++)
            an[i * LDA_N + p] = at[p * LDA_T + i] = gx(i, p, 4);
    for (int p = 0; p < GK; p++)
        for (int j = 0; j < GN; j++)
            bn[p * LDB_N + j] = bt[j * LDB_T + p] = gy(p, j, 4);
    for (int q = 0; q < 4; q++) {
        int ta = q >> 1, tb = q & 1;
        nnc_cuda_sgemm s = nnc_cuda_sgemm_from_row_major(ta, tb, GM, GN, GK, ta ? at : an, ta ? LDA_T : LDA_N,
                                                         tb ? bt : bn, tb ? LDB_T : LDB_N, c, LDC);
        /* C^T = op(B)^T op(A)^T: B first, m and n swapped */
        assert_int_equal(s.m, GN);
        assert_int_equal(s.n, GM);
        assert_int_equal(s.k, GK);
        assert_int_equal(s.transa, tb);
        assert_int_equal(s.transb, ta);
        assert_ptr_equal(s.a, tb ? bt : bn);
        assert_ptr_equal(s.b, ta ? at : an);
        assert_int_equal(s.lda, tb ? LDB_T : LDB_N);
        assert_int_equal(s.ldb, ta ? LDA_T : LDA_N);
        assert_int_equal(s.ldc, LDC);
        memset(c, 0, sizeof c);
        colmajor_sgemm(&s);
        for (int i = 0; i < GM; i++)
            for (int j = 0; j < GN; j++) {
                double ref = 0;
                for (int p = 0; p < GK; p++)
                    ref += (double)gx(i, p, 4) * (double)gy(p, j, 4);
                assert_true(fabs((double)c[i * LDC + j] - ref) <= 1e-6 * (fabs(ref) + 1));
            }
    }
}

/* ---- device group, where no GPU is: the message ---- */

static const char *no_gpu_reason = ""; /* the stub group: the reason the message must give */

static void test_no_gpu_message(void **state) {
    nnc_cuda *c = NULL;
    use_emulator(0);
    setenv("NNC_CUDA_EMULATE", "0", 1); /* "0" means no emulator */
    assert_int_not_equal(nnc_cuda_open(&c, &program, NULL, 0), 0);
    assert_non_null(c);
    const char *e = nnc_cuda_error(c);
    assert_non_null(e);
    assert_true(strncmp(e, "nnc_cuda: no CUDA GPU", 21) == 0);
    assert_non_null(strstr(e, "NNC_CUDA_EMULATE"));
    assert_non_null(strstr(e, no_gpu_reason));
    assert_string_equal(nnc_cuda_device_name(c), "");
    assert_null(nnc_cuda_io_host(c));
    assert_int_not_equal(nnc_cuda_run(c, 0, record_predict, NULL, 0, 0, 0), 0);
    nnc_cuda_close(c);
    unsetenv("NNC_CUDA_EMULATE");
}

/* ---- mock group: the GPU path on tests/cuda/mock_libcuda.c ---- */

typedef void counts_fn(int out[4]);

static void mock_counts(int out[4]) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(lib);
    counts_fn *f;
    void *sym = dlsym(lib, "mock_cuda_counts");
    assert_non_null(sym);
    memcpy(&f, &sym, sizeof f);
    f(out);
    dlclose(lib);
}

/* one graph instantiated per entry, one graph launch per call, no kernel outside it; NNC_CUDA_NO_GRAPH=1
 * launches directly */
static void test_mock_graph_counts(void **state) {
    t_model m;
    int before[4], after[4];
    use_emulator(0);
    for (int no_graph = 0; no_graph < 2; no_graph++) {
        if (no_graph)
            setenv("NNC_CUDA_NO_GRAPH", "1", 1);
        assert_int_equal(open_model(&m), 0);
        mock_counts(before);
        predict_and_check(&m, 5, 1.0f, 1);
        predict_and_check(&m, 200, 2.0f, 2);
        predict_and_check(&m, 1, -1.0f, 3);
        mock_counts(after);
        assert_int_equal(after[0] - before[0], no_graph ? 0 : 1);
        assert_int_equal(after[1] - before[1], no_graph ? 0 : 3);
        assert_int_equal(after[2] - before[2], no_graph ? 0 : 9);
        assert_int_equal(after[3] - before[3], no_graph ? 9 : 0);
        assert_int_equal(m.records[0], no_graph ? 3 : 1);
        nnc_cuda_close(m.c);
    }
    unsetenv("NNC_CUDA_NO_GRAPH");
}

/* a driver without a device (the process's first open, with MOCK_CUDA_NO_DEVICE=1): the no-GPU message
 * with cuInit's reason */
static void test_mock_no_device(void **state) {
    nnc_cuda *c = NULL;
    use_emulator(0);
    assert_int_not_equal(nnc_cuda_open(&c, &program, NULL, 0), 0);
    assert_string_equal(nnc_cuda_error(c), "nnc_cuda: no CUDA GPU: cuInit: CUDA_ERROR_NO_DEVICE (no CUDA-capable "
                                           "device is detected)" NNC_CUDA_EMULATE_HINT);
    nnc_cuda_close(c);
}

/* the mock cuBLAS's counters: creates, destroys, products queued, products run */
static void mock_blas_counts(int out[4]) {
    void *lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(lib);
    counts_fn *f;
    void *sym = dlsym(lib, "mock_cublas_counts");
    assert_non_null(sym);
    memcpy(&f, &sym, sizeof f);
    f(out);
    dlclose(lib);
}

/* one handle per nnc_cuda handle, made outside the capture and destroyed at close; the four products queued
 * once into the graph and run by each of 3 calls; NNC_CUDA_NO_GRAPH=1: queued and run by every call */
static void test_mock_gemm_counts(void **state) {
    int before[4], after[4], cuda_before[4], cuda_after[4];
    use_emulator(0);
    for (int no_graph = 0; no_graph < 2; no_graph++) {
        g_model m = {0};
        if (no_graph)
            setenv("NNC_CUDA_NO_GRAPH", "1", 1);
        assert_int_equal(nnc_cuda_open(&m.c, &gemm_program, NULL, 0), 0);
        mock_counts(cuda_before);
        for (int call = 0; call < 3; call++) {
            if (call == 1)
                mock_blas_counts(before); /* cuBLAS is loaded by the first call */
            gemm_inputs(&m, call);
            assert_int_equal(nnc_cuda_run(m.c, 2, record_gemm, &m, offsetof(g_io, c), offsetof(g_io, c),
                                          sizeof(g_io) - offsetof(g_io, c)),
                             0);
            assert_int_equal(nnc_cuda_wait(m.c), 0);
            gemm_check(&m, call, 0.0f);
        }
        mock_blas_counts(after);
        mock_counts(cuda_after);
        assert_int_equal(after[0] - before[0], 0);            /* created by the first call only */
        assert_int_equal(after[2] - before[2], no_graph ? 8 : 0); /* queued: once into the graph */
        assert_int_equal(after[3] - before[3], 8);            /* run: 4 per call */
        assert_int_equal(cuda_after[1] - cuda_before[1], no_graph ? 0 : 3);
        assert_int_equal(m.records, no_graph ? 3 : 2);
        nnc_cuda_close(m.c);
        mock_blas_counts(after);
        assert_int_equal(after[0], after[1]); /* every handle destroyed */
    }
    unsetenv("NNC_CUDA_NO_GRAPH");
}

/* $NNC_CUBLAS naming no library (the process's first product): the error names it, kept */
static void test_mock_no_cublas(void **state) {
    g_model m = {0};
    t_model t;
    use_emulator(0);
    setenv("NNC_CUBLAS", "/nonexistent/libcublas-for-nnc.so", 1);
    assert_int_equal(nnc_cuda_open(&m.c, &gemm_program, NULL, 0), 0);
    gemm_inputs(&m, 0);
    assert_int_not_equal(nnc_cuda_run(m.c, 2, record_gemm, &m, 0, 0, 0), 0);
    const char *e = nnc_cuda_error(m.c);
    assert_true(strncmp(e, "nnc_cuda: cuBLAS: $NNC_CUBLAS (/nonexistent/libcublas-for-nnc.so) could not be loaded",
                        84) == 0);
    memset(&t, 0, sizeof t);
    t.c = m.c;
    check_sticky(&t, "cuBLAS");
    nnc_cuda_close(m.c);
    unsetenv("NNC_CUBLAS");
}

/* ---- nvrtc group ---- */

static int has_bytes(const char *data, size_t size, const char *what) {
    size_t n = strlen(what);
    for (size_t i = 0; i + n <= size; i++)
        if (!memcmp(data + i, what, n))
            return 1;
    return 0;
}

static void test_nvrtc_cubins(void **state) {
    char err[NNC_CUDA_ERRLEN];
    const char *archs[] = {"sm_80", "sm_90"};
    for (int a = 0; a < 2; a++) {
        nnc_cuda_binary bin;
        err[0] = 0;
        int rc = nnc_cuda_nvrtc_compile(kernel_source, "rt_test", archs[a], &bin, err, sizeof err);
        if (rc)
            fail_msg("%s: %s", archs[a], err);
        assert_int_equal(bin.ptx, 0);
        assert_true(bin.size > 1000);
        assert_memory_equal(bin.data, "\177ELF", 4);
        for (int k = 0; k < NKERNELS; k++)
            assert_true(has_bytes(bin.data, bin.size, kernel_names[k]));
        free(bin.data);
        assert_true(nnc_cuda_compile_for_test(kernel_source, archs[a], err, sizeof err) > 1000);
    }
    nnc_cuda_binary ptx;
    assert_int_equal(nnc_cuda_nvrtc_compile(kernel_source, "rt_test", "compute_80", &ptx, err, sizeof err), 0);
    assert_int_equal(ptx.ptx, 1);
    assert_non_null(strstr(ptx.data, ".target sm_80"));
    assert_non_null(strstr(ptx.data, ".entry k_sum"));
    assert_int_equal(strlen(ptx.data) + 1, ptx.size);
    free(ptx.data);
}

static void test_nvrtc_error(void **state) {
    char err[NNC_CUDA_ERRLEN];
    const char *bad = "#define NNC_GLOBAL extern \"C\" __global__\n"
                      "NNC_GLOBAL void k_fine(float *x) { x[0] = 1.0f; }\n"
                      "NNC_GLOBAL void k_broken(float *x)\n"
                      "{\n"
                      "    x[0] = undefined_thing;\n"
                      "}\n";
    assert_int_equal(nnc_cuda_compile_for_test(bad, "sm_90", err, sizeof err), 0);
    assert_non_null(strstr(err, "nnc_cuda: NVRTC: k_broken: test.cu(5): error"));
    assert_non_null(strstr(err, "undefined_thing"));
    assert_null(strchr(err, '\n'));
}

static void test_nvrtc_arch(void **state) {
    char arch[32], err[NNC_CUDA_ERRLEN];
    assert_int_equal(nnc_cuda_nvrtc_arch(90, arch, sizeof arch, err, sizeof err), 0);
    assert_string_equal(arch, "sm_90");
    assert_int_equal(nnc_cuda_nvrtc_arch(80, arch, sizeof arch, err, sizeof err), 0);
    assert_string_equal(arch, "sm_80");
    /* a GPU newer than this NVRTC: PTX of the newest architecture it knows */
    assert_int_equal(nnc_cuda_nvrtc_arch(990, arch, sizeof arch, err, sizeof err), 0);
    assert_true(strncmp(arch, "compute_", 8) == 0 && atoi(arch + 8) >= 90 && atoi(arch + 8) < 990);
    /* older than any it knows */
    assert_int_not_equal(nnc_cuda_nvrtc_arch(10, arch, sizeof arch, err, sizeof err), 0);
    assert_non_null(strstr(err, "sm_10"));
}

/* the toolkit's cuBLAS (found as the runtime finds it) has every entry point the runtime calls; where no cuBLAS
 * is, the message names what was tried */
static void test_cublas_entry_points(void **state) {
    char err[NNC_CUDA_ERRLEN];
    err[0] = 0;
    if (nnc_cuda_blas_load_for_test(err, sizeof err) == 0) {
        void *lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_NOLOAD);
        if (!lib)
            lib = dlopen("/usr/local/cuda/lib64/libcublas.so.13", RTLD_NOW | RTLD_NOLOAD);
        if (lib) {
            assert_non_null(dlsym(lib, "cublasSgemm_v2"));
            dlclose(lib);
        }
        printf("cuBLAS: loaded, every entry point found\n");
        return;
    }
    printf("cuBLAS: %s\n", err);
    assert_true(strncmp(err, "nnc_cuda: cuBLAS: libcublas could not be loaded (tried libcublas.so.13", 70) == 0);
}

/* a load function standing in for the driver: counts what it saw, rejects when told to */
typedef struct loader {
    int calls, reject;
    size_t last_size;
    int last_elf;
} loader;

static int fake_load(void *ctx, const nnc_cuda_binary *bin, char *err, size_t errlen) {
    loader *l = ctx;
    l->calls++;
    l->last_size = bin->size;
    l->last_elf = bin->size > 4 && !memcmp(bin->data, "\177ELF", 4);
    if (l->reject) {
        l->reject--;
        return nnc_cuda_fail(err, errlen, "nnc_cuda: rejected");
    }
    return 0;
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_cache(void **state) {
    char err[NNC_CUDA_ERRLEN], path[1200], dir[300];
    loader l = {0};
    snprintf(dir, sizeof dir, "%s/cubins/deeper", cache_dir);
    setenv("NNC_CACHE_DIR", dir, 1);
    assert_int_equal(nnc_cuda_cache_path(kernel_source, "rt test/x", "sm_90", path, sizeof path), 0);
    /* <dir>/<model>-<16 hex>-sm90.cubin, the name made safe */
    assert_true(strncmp(path, dir, strlen(dir)) == 0);
    const char *base = path + strlen(dir) + 1;
    assert_true(strncmp(base, "rt_test_x-", 10) == 0);
    assert_int_equal(strspn(base + 10, "0123456789abcdef"), 16);
    assert_string_equal(base + 26, "-sm90.cubin");
    /* another architecture or source: another file */
    char other[1200];
    assert_int_equal(nnc_cuda_cache_path(kernel_source, "rt test/x", "sm_80", other, sizeof other), 0);
    assert_string_not_equal(path, other);
    assert_int_equal(nnc_cuda_cache_path("/* */", "rt test/x", "sm_90", other, sizeof other), 0);
    assert_string_not_equal(path, other);

    /* first build: compiled, loaded, written (the directories made) */
    assert_int_equal(nnc_cuda_cached_build(kernel_source, "rt test/x", "sm_90", fake_load, &l, err, sizeof err), 0);
    assert_int_equal(l.calls, 1);
    long size = file_size(path);
    assert_true(size > 1000 && (size_t)size == l.last_size);
    /* second: the file, loaded once */
    assert_int_equal(nnc_cuda_cached_build(kernel_source, "rt test/x", "sm_90", fake_load, &l, err, sizeof err), 0);
    assert_int_equal(l.calls, 2);
    /* corrupt file: not handed to the driver, compiled again and rewritten */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("garbage", f);
    fclose(f);
    assert_int_equal(nnc_cuda_cached_build(kernel_source, "rt test/x", "sm_90", fake_load, &l, err, sizeof err), 0);
    assert_int_equal(l.calls, 3);
    assert_true(l.last_elf);
    assert_int_equal(file_size(path), size);
    /* a file the driver rejects: compiled again, loaded again */
    l.reject = 1;
    assert_int_equal(nnc_cuda_cached_build(kernel_source, "rt test/x", "sm_90", fake_load, &l, err, sizeof err), 0);
    assert_int_equal(l.calls, 5);
    /* rejected after a fresh compile too: the error */
    l.reject = 2;
    assert_int_not_equal(nnc_cuda_cached_build(kernel_source, "rt test/x", "sm_90", fake_load, &l, err, sizeof err),
                         0);
    assert_string_equal(err, "nnc_cuda: rejected");
    /* an unwritable cache directory: no error */
    setenv("NNC_CACHE_DIR", "/proc/self/nnc-cache-cannot-exist", 1);
    l.calls = 0;
    assert_int_equal(nnc_cuda_cached_build(kernel_source, "rt test/x", "sm_90", fake_load, &l, err, sizeof err), 0);
    assert_int_equal(l.calls, 1);
    setenv("NNC_CACHE_DIR", cache_dir, 1);
}

static void make_cache_dir(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(cache_dir, sizeof cache_dir, "%s/nnc-cuda-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(cache_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    setenv("NNC_CACHE_DIR", cache_dir, 1);
    setenv("NNC_CUDA_QUIET", "1", 1);
}

static void remove_cache_dir(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_cuda_runtime: could not remove %s\n", cache_dir);
}

static int has_gpu(void) {
    nnc_cuda *c = NULL;
    use_emulator(0);
    int ok = nnc_cuda_open(&c, &program, NULL, 0) == 0;
    nnc_cuda_close(c);
    return ok;
}

int main(int argc, char **argv) {
    const char *group = argc > 1 ? argv[1] : "emulator";
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_open_run_wait),   cmocka_unit_test(test_record_once_replay),
        cmocka_unit_test(test_fill_and_copy),   cmocka_unit_test(test_get_set),
        cmocka_unit_test(test_error_bad_kernel), cmocka_unit_test(test_error_bad_block),
        cmocka_unit_test(test_error_checks),
    };
    const struct CMUnitTest emulator_only[] = {cmocka_unit_test(test_emulator_compile_error),
                                               cmocka_unit_test(test_emulator_launch_error)};
    const struct CMUnitTest gemm[] = {cmocka_unit_test(test_gemm_replay), cmocka_unit_test(test_gemm_errors),
                                      cmocka_unit_test(test_gemm_abi1)};
    const struct CMUnitTest gemm_mapping[] = {cmocka_unit_test(test_gemm_mapping)};
    const struct CMUnitTest no_gpu[] = {cmocka_unit_test(test_no_gpu_message)};
    const struct CMUnitTest mock_only[] = {cmocka_unit_test(test_mock_graph_counts),
                                           cmocka_unit_test(test_mock_gemm_counts)};
    const struct CMUnitTest mock_no_cublas[] = {cmocka_unit_test(test_mock_no_cublas)};
    const struct CMUnitTest mock_no_device[] = {cmocka_unit_test(test_mock_no_device)};
    const struct CMUnitTest nvrtc[] = {
        cmocka_unit_test(test_nvrtc_cubins),
        cmocka_unit_test(test_nvrtc_error),
        cmocka_unit_test(test_nvrtc_arch),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cublas_entry_points),
    };
    int rc;
    make_cache_dir();
    if (!strcmp(group, "emulator")) {
        rc = cmocka_run_group_tests_name("emulator", common, NULL, NULL);
        rc |= cmocka_run_group_tests_name("emulator_only", emulator_only, NULL, NULL);
        rc |= cmocka_run_group_tests_name("emulator_gemm", gemm, NULL, NULL);
        rc |= cmocka_run_group_tests_name("gemm_mapping", gemm_mapping, NULL, NULL);
    } else if (!strcmp(group, "device")) {
        if (has_gpu()) {
            device_group = 1;
            rc = cmocka_run_group_tests_name("device", common, NULL, NULL);
            rc |= cmocka_run_group_tests_name("device_gemm", gemm, NULL, NULL);
        } else {
            rc = cmocka_run_group_tests_name("no_gpu", no_gpu, NULL, NULL);
        }
    } else if (!strcmp(group, "mock")) {
        /* libcuda.so.1 is tests/cuda/mock_libcuda.c: the GPU path on the CPU, with the real NVRTC */
        int major, minor;
        char err[NNC_CUDA_ERRLEN];
        if (nnc_cuda_nvrtc_version(&major, &minor, err, sizeof err)) {
            printf("test_cuda_runtime: SKIP: %s\n", err);
            remove_cache_dir();
            return 77;
        }
        device_group = 1;
        rc = cmocka_run_group_tests_name("mock", common, NULL, NULL);
        rc |= cmocka_run_group_tests_name("mock_gemm", gemm, NULL, NULL);
        rc |= cmocka_run_group_tests_name("mock_only", mock_only, NULL, NULL);
    } else if (!strcmp(group, "source") && argc > 2) {
        /* the kernel source, for nnc_cuda_nvrtc and ptxas (tests/cuda/nvrtc_tool.sh) */
        FILE *f = fopen(argv[2], "wb");
        rc = !f || fputs(kernel_source, f) < 0;
        rc |= !f || fclose(f) != 0;
    } else if (!strcmp(group, "mock_no_cublas")) {
        int major, minor;
        char err[NNC_CUDA_ERRLEN];
        if (nnc_cuda_nvrtc_version(&major, &minor, err, sizeof err)) {
            printf("test_cuda_runtime: SKIP: %s\n", err);
            remove_cache_dir();
            return 77;
        }
        rc = cmocka_run_group_tests_name("mock_no_cublas", mock_no_cublas, NULL, NULL);
    } else if (!strcmp(group, "mock_no_device")) {
        setenv("MOCK_CUDA_NO_DEVICE", "1", 1);
        rc = cmocka_run_group_tests_name("mock_no_device", mock_no_device, NULL, NULL);
    } else if (!strcmp(group, "stub")) {
        /* libcuda.so.1 is the toolkit's stub: every entry point found, cuInit fails */
        no_gpu_reason = "no CUDA GPU: cuInit: CUDA_ERROR_STUB_LIBRARY";
        rc = cmocka_run_group_tests_name("stub", no_gpu, NULL, NULL);
    } else if (!strcmp(group, "nvrtc")) {
        int major, minor;
        char err[NNC_CUDA_ERRLEN];
        if (nnc_cuda_nvrtc_version(&major, &minor, err, sizeof err)) {
            printf("test_cuda_runtime: SKIP: %s\n", err);
            remove_cache_dir();
            return 77;
        }
        printf("NVRTC %d.%d\n", major, minor);
        rc = cmocka_run_group_tests_name("nvrtc", nvrtc, NULL, NULL);
    } else {
        fprintf(stderr, "usage: test_cuda_runtime emulator|device|mock|mock_no_device|mock_no_cublas|stub|nvrtc|"
                        "source FILE\n");
        rc = 2;
    }
    remove_cache_dir();
    return rc;
}
