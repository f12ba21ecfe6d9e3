/* cuda_blas.c: cuBLAS for nnc_cuda_gemm on a GPU, loaded with dlopen by the first product (a program that
 * makes none never loads it). One handle per nnc_cuda handle, bound to the runtime's stream once, with a
 * workspace the runtime allocated (so that nothing is allocated while a graph is captured: cublasSetStream
 * resets the workspace to cuBLAS's own pool, so the workspace is set after it), CUBLAS_DEFAULT_MATH (FP32
 * arithmetic: TF32 tensor cores only with CUBLAS_TF32_TENSOR_OP_MATH, which this never sets) and
 * CUBLAS_POINTER_MODE_HOST (alpha and beta are read when the call is made, so captured into the graph by
 * value). The few declarations needed are written here (cuBLAS's headers are not required to build the
 * runtime); where <cublas_api.h> is at hand its constants are checked against them. */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc_cuda_internal.h"

/* cublas_api.h's values of the few enumerations used */
enum { BLAS_SUCCESS = 0, BLAS_OP_N = 0, BLAS_OP_T = 1, BLAS_POINTER_MODE_HOST = 0, BLAS_DEFAULT_MATH = 0 };

#if defined(__has_include)
#if __has_include(<cublas_api.h>)
#include <cublas_api.h>
/* a negative array size when cuBLAS's header disagrees */
typedef char nnc_blas_values_match[((int)CUBLAS_STATUS_SUCCESS == BLAS_SUCCESS && (int)CUBLAS_OP_N == BLAS_OP_N &&
                                    (int)CUBLAS_OP_T == BLAS_OP_T &&
                                    (int)CUBLAS_POINTER_MODE_HOST == BLAS_POINTER_MODE_HOST &&
                                    (int)CUBLAS_DEFAULT_MATH == BLAS_DEFAULT_MATH)
                                       ? 1
                                       : -1];
#endif
#endif

typedef int blas_status; /* cublasStatus_t */
typedef void *blas_handle;

typedef struct blas_api {
    blas_status (*Create)(blas_handle *);
    blas_status (*Destroy)(blas_handle);
    blas_status (*SetStream)(blas_handle, void *);
    blas_status (*SetWorkspace)(blas_handle, void *, size_t);
    blas_status (*SetMathMode)(blas_handle, int);
    blas_status (*SetPointerMode)(blas_handle, int);
    blas_status (*Sgemm)(blas_handle, int, int, int, int, int, const float *, const float *, int, const float *, int,
                         const float *, float *, int);
    const char *(*GetStatusName)(blas_status);   /* optional */
    const char *(*GetStatusString)(blas_status); /* optional */
} blas_api;

#define SYM(field, name, required) {name, offsetof(blas_api, field), required}
static const struct {
    const char *name;
    size_t offset;
    int required;
} blas_symbols[] = {
    SYM(Create, "cublasCreate_v2", 1),
    SYM(Destroy, "cublasDestroy_v2", 1),
    SYM(SetStream, "cublasSetStream_v2", 1),
    SYM(SetWorkspace, "cublasSetWorkspace_v2", 1),
    SYM(SetMathMode, "cublasSetMathMode", 1),
    SYM(SetPointerMode, "cublasSetPointerMode_v2", 1),
    SYM(Sgemm, "cublasSgemm_v2", 1),
    SYM(GetStatusName, "cublasGetStatusName", 0),
    SYM(GetStatusString, "cublasGetStatusString", 0),
};
#undef SYM

/* cuBLAS, loaded once per process and never unloaded */
static struct {
    pthread_once_t once;
    blas_api api;
    int ok;
    char err[768];
} blas = {PTHREAD_ONCE_INIT};

struct nnc_blas {
    blas_handle h;
};

static const char *const blas_names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
static const char *const blas_dirs_env[] = {"CUDA_HOME", "CUDA_PATH"};

static void *open_blas(void) {
    char path[1024];
    void *lib;
    for (size_t i = 0; i < sizeof blas_names / sizeof blas_names[0]; i++)
        if ((lib = dlopen(blas_names[i], RTLD_NOW | RTLD_LOCAL)))
            return lib;
    for (size_t d = 0; d < 3; d++) {
        const char *dir = d < 2 ? getenv(blas_dirs_env[d]) : "/usr/local/cuda";
        if (!dir || !*dir)
            continue;
        for (size_t i = 0; i < sizeof blas_names / sizeof blas_names[0]; i++) {
            if ((size_t)snprintf(path, sizeof path, "%s/lib64/%s", dir, blas_names[i]) >= sizeof path)
                continue;
            if ((lib = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
                return lib;
        }
    }
    return NULL;
}

static void load_blas(void) {
    const char *own = getenv("NNC_CUBLAS");
    void *lib;
    if (own && *own) {
        if (!(lib = dlopen(own, RTLD_NOW | RTLD_LOCAL))) {
            const char *why = dlerror();
            snprintf(blas.err, sizeof blas.err, "nnc_cuda: cuBLAS: $NNC_CUBLAS (%.300s) could not be loaded: %.300s",
                     own, why ? why : "not found");
            return;
        }
    } else if (!(lib = open_blas())) {
        snprintf(blas.err, sizeof blas.err,
                 "nnc_cuda: cuBLAS: libcublas could not be loaded (tried libcublas.so.13, libcublas.so.12 and "
                 "libcublas.so on the library path and in $CUDA_HOME/lib64, $CUDA_PATH/lib64, "
                 "/usr/local/cuda/lib64; $NNC_CUBLAS names another)");
        return;
    }
    for (size_t i = 0; i < sizeof blas_symbols / sizeof blas_symbols[0]; i++) {
        void *f = dlsym(lib, blas_symbols[i].name);
        if (!f && blas_symbols[i].required) {
            snprintf(blas.err, sizeof blas.err, "nnc_cuda: cuBLAS: the library has no %s (older than CUDA 11)",
                     blas_symbols[i].name);
            return;
        }
        memcpy((char *)&blas.api + blas_symbols[i].offset, &f, sizeof f);
    }
    blas.ok = 1;
}

/* "nnc_cuda: cuBLAS: <what>: CUBLAS_STATUS_X (text)" */
static int blas_fail(blas_status st, const char *what, char *err, size_t errlen) {
    const char *name = blas.api.GetStatusName ? blas.api.GetStatusName(st) : NULL;
    const char *text = blas.api.GetStatusString ? blas.api.GetStatusString(st) : NULL;
    if (name && text && strcmp(name, text) != 0)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: cuBLAS: %s: %s (%s)", what, name, text);
    if (name)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: cuBLAS: %s: %s", what, name);
    return nnc_cuda_fail(err, errlen, "nnc_cuda: cuBLAS: %s: status %d", what, (int)st);
}

#define BLAS_CHECK(call, what)                                                                               \
    do {                                                                                                     \
        blas_status st_ = (call);                                                                            \
        if (st_ != BLAS_SUCCESS) {                                                                           \
            blas_fail(st_, what, err, errlen);                                                               \
            nnc_blas_close(b);                                                                               \
            return NULL;                                                                                     \
        }                                                                                                    \
    } while (0)

int nnc_cuda_blas_load_for_test(char *err, size_t errlen) {
    pthread_once(&blas.once, load_blas);
    return blas.ok ? 0 : nnc_cuda_fail(err, errlen, "%s", blas.err);
}

nnc_blas *nnc_blas_open(void *stream, void *workspace, size_t workspace_bytes, char *err, size_t errlen) {
    pthread_once(&blas.once, load_blas);
    if (!blas.ok) {
        nnc_cuda_fail(err, errlen, "%s", blas.err);
        return NULL;
    }
    nnc_blas *b = calloc(1, sizeof *b);
    if (!b) {
        nnc_cuda_fail(err, errlen, "nnc_cuda: out of memory");
        return NULL;
    }
    BLAS_CHECK(blas.api.Create(&b->h), "cublasCreate");
    /* the workspace after the stream: cublasSetStream sets the default workspace pool again */
    BLAS_CHECK(blas.api.SetStream(b->h, stream), "cublasSetStream");
    BLAS_CHECK(blas.api.SetWorkspace(b->h, workspace, workspace_bytes), "cublasSetWorkspace");
    BLAS_CHECK(blas.api.SetMathMode(b->h, BLAS_DEFAULT_MATH), "cublasSetMathMode");
    BLAS_CHECK(blas.api.SetPointerMode(b->h, BLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
    return b;
}

int nnc_blas_sgemm(nnc_blas *b, const nnc_cuda_sgemm *s, char *err, size_t errlen) {
    static const float one = 1.0f, zero = 0.0f;
    char what[160];
    blas_status st = blas.api.Sgemm(b->h, s->transa ? BLAS_OP_T : BLAS_OP_N, s->transb ? BLAS_OP_T : BLAS_OP_N, s->m,
                                    s->n, s->k, &one, s->a, s->lda, s->b, s->ldb, &zero, s->c, s->ldc);
    if (st == BLAS_SUCCESS)
        return 0;
    snprintf(what, sizeof what, "cublasSgemm(%c%c, m %d, n %d, k %d, lda %d, ldb %d, ldc %d)", s->transa ? 'T' : 'N',
             s->transb ? 'T' : 'N', s->m, s->n, s->k, s->lda, s->ldb, s->ldc);
    return blas_fail(st, what, err, errlen);
}

void nnc_blas_close(nnc_blas *b) {
    if (!b)
        return;
    if (b->h)
        blas.api.Destroy(b->h);
    free(b);
}

nnc_cuda_sgemm nnc_cuda_sgemm_from_row_major(int ta, int tb, int m, int n, int k, const float *a, int lda,
                                             const float *b, int ldb, float *c, int ldc) {
    nnc_cuda_sgemm s;
    s.transa = tb != 0;
    s.transb = ta != 0;
    s.m = n;
    s.n = m;
    s.k = k;
    s.a = b;
    s.lda = ldb;
    s.b = a;
    s.ldb = lda;
    s.c = c;
    s.ldc = ldc;
    return s;
}
