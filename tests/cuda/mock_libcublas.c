/* mock_libcublas.c: a stand-in libcublas.so.13 for the runtime's products on a GPU (runtime/cuda/cuda_blas.c),
 * beside mock_libcuda.c (whose streams it queues on), with the semantics the runtime must respect, strictly:
 *   - cublasCreate allocates device memory (cuMemAlloc: refused while a stream captures);
 *   - cublasSetStream drops a workspace set before it (cuBLAS goes back to its own pool), and a product without
 *     a workspace of its own allocates one (refused while capturing);
 *   - a product wants its stream set, CUBLAS_DEFAULT_MATH (no TF32), host scalars (read at the call, so
 *     captured by value), column-major sizes and strides as BLAS defines them, and device addresses;
 *   - the product runs when its stream's work runs: C = alpha op(A) op(B) + beta C in double, rounded.
 * The test reads its counters through mock_cublas_counts (found with dlsym). Only the entry points the runtime
 * looks up are here, with cuBLAS's exported names and enumeration values (cublas_api.h). */
#include <cuda.h>
#include <stdlib.h>
#include <string.h>

enum { OK = 0, NOT_INITIALIZED = 1, ALLOC_FAILED = 3, INVALID_VALUE = 7, NOT_SUPPORTED = 15 };

typedef struct mock_handle {
    CUstream stream;
    CUdeviceptr own;        /* what cublasCreate allocated */
    void *workspace;        /* the user's, or NULL: the default pool, allocated by the first product */
    CUdeviceptr pool;
    int math, pointer_mode; /* -1 until set */
} mock_handle;

typedef struct product {
    int ta, tb, m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
} product;

CUresult mock_cuda_enqueue_host(CUstream s, void (*host)(const void *), const void *data, size_t bytes);
int mock_cuda_in_device(const void *p, size_t n);

static struct { int creates, destroys, products, ran; } counts;

/* creates, destroys, products queued, products run */
void mock_cublas_counts(int out[4]) {
    out[0] = counts.creates;
    out[1] = counts.destroys;
    out[2] = counts.products;
    out[3] = counts.ran;
}

int cublasCreate_v2(mock_handle **h) {
    mock_handle *m = calloc(1, sizeof *m);
    if (!m)
        return ALLOC_FAILED;
    if (cuMemAlloc(&m->own, 256) != CUDA_SUCCESS) {
        free(m);
        return ALLOC_FAILED;
    }
    m->math = m->pointer_mode = -1;
    counts.creates++;
    *h = m;
    return OK;
}

int cublasDestroy_v2(mock_handle *h) {
    if (!h)
        return NOT_INITIALIZED;
    cuMemFree(h->own);
    if (h->pool)
        cuMemFree(h->pool);
    free(h);
    counts.destroys++;
    return OK;
}

int cublasSetStream_v2(mock_handle *h, CUstream s) {
    h->stream = s;
    h->workspace = NULL;
    return OK;
}

int cublasSetWorkspace_v2(mock_handle *h, void *workspace, size_t bytes) {
    if (bytes && !mock_cuda_in_device(workspace, bytes))
        return INVALID_VALUE;
    h->workspace = bytes ? workspace : NULL;
    return OK;
}

int cublasSetMathMode(mock_handle *h, int mode) {
    h->math = mode;
    return OK;
}

int cublasSetPointerMode_v2(mock_handle *h, int mode) {
    h->pointer_mode = mode;
    return OK;
}

/* column-major: X(i, j) at x[i + j * ld] */
static void run_product(const void *data) {
    const product *p = data;
    for (int i = 0; i < p->m; i++)
        for (int j = 0; j < p->n; j++) {
            double acc = 0;
            for (int l = 0; l < p->k; l++) {
                double x = p->ta ? p->a[l + (size_t)i * p->lda] : p->a[i + (size_t)l * p->lda];
                double y = p->tb ? p->b[j + (size_t)l * p->ldb] : p->b[l + (size_t)j * p->ldb];
                acc += x * y;
            }
            float *c = &p->c[i + (size_t)j * p->ldc];
            *c = (float)(p->alpha * acc + (p->beta != 0.0f ? p->beta * *c : 0.0));
        }
    counts.ran++;
}

/* the bytes a column-major rows x cols matrix of leading dimension ld spans */
static size_t span(int rows, int cols, int ld) { return 4 * ((size_t)(cols - 1) * (size_t)ld + (size_t)rows); }

int cublasSgemm_v2(mock_handle *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *a, int lda,
                   const float *b, int ldb, const float *beta, float *c, int ldc) {
    product p = {ta == 1, tb == 1, m, n, k, lda, ldb, ldc, 0, 0, a, b, c};
    int arows = p.ta ? k : m, acols = p.ta ? m : k, brows = p.tb ? n : k, bcols = p.tb ? k : n;
    if (!h->stream || h->math != 0 || h->pointer_mode != 0)
        return NOT_SUPPORTED;
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1) || m < 1 || n < 1 || k < 1 || lda < arows || ldb < brows ||
        ldc < m)
        return INVALID_VALUE;
    if (!mock_cuda_in_device(a, span(arows, acols, lda)) || !mock_cuda_in_device(b, span(brows, bcols, ldb)) ||
        !mock_cuda_in_device(c, span(m, n, ldc)))
        return INVALID_VALUE;
    if (!h->workspace && !h->pool && cuMemAlloc(&h->pool, 1 << 20) != CUDA_SUCCESS)
        return ALLOC_FAILED;
    p.alpha = *alpha; /* host pointer mode: read now */
    p.beta = *beta;
    if (mock_cuda_enqueue_host(h->stream, run_product, &p, sizeof p) != CUDA_SUCCESS)
        return INVALID_VALUE;
    counts.products++;
    return OK;
}

const char *cublasGetStatusName(int st) {
    switch (st) {
    case OK: return "CUBLAS_STATUS_SUCCESS";
    case ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

const char *cublasGetStatusString(int st) {
    switch (st) {
    case ALLOC_FAILED: return "resource allocation failed";
    case INVALID_VALUE: return "an invalid numeric value was used as an argument";
    default: return "some status";
    }
}
