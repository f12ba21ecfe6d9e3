/* mock_libcuda.c: a stand-in libcuda.so.1 for the runtime's GPU path (runtime/cuda/cuda_driver.c) on a machine
 * without a GPU. It implements, on the CPU, the driver calls the runtime makes, with the semantics the runtime
 * must respect, strictly:
 *   - a stream's work runs only at cuStreamSynchronize (so a result read before a wait is stale);
 *   - a launch copies its parameter values at the call (kernelParams[i] points at parameter i's value);
 *   - while a stream captures, its work goes into the graph and nothing runs; a synchronize is an error;
 *   - a call needs the context current; memory must be what cuMemAlloc returned;
 *   - cuModuleLoadData takes an ELF cubin or PTX, cuModuleGetFunction a name that is in it;
 *   - cuMemAlloc while a stream captures is refused (the capture's thread-local mode forbids it).
 * It knows the three kernels of test_cuda_runtime.c (k_axpy, k_sum, k_count) and runs them in C. The test
 * reads its counters through mock_cuda_counts (found with dlsym). mock_libcublas.c queues its products as host
 * functions through mock_cuda_enqueue_host and checks addresses with mock_cuda_in_device. Built from cuda.h's
 * prototypes, so each function gets the versioned name (cuMemAlloc is cuMemAlloc_v2) that the real driver exports. */
#include <cuda.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct CUctx_st { int unused; };
struct CUmod_st { int loaded; };
struct CUfunc_st { const char *name; int nparams; int kind; };

enum { OP_HTOD, OP_DTOH, OP_DTOD, OP_SET8, OP_SET32, OP_LAUNCH, OP_GRAPH, OP_HOST };

typedef struct op {
    int kind;
    char *dst;
    const char *src;
    size_t bytes;
    unsigned value;
    struct CUfunc_st *f;
    unsigned grid, block;
    void *params[8];
    struct CUgraphExec_st *exec;
    void (*host)(const void *); /* OP_HOST: host(data) */
    unsigned char data[128];
} op;

typedef struct op_list {
    op *ops;
    int n, cap;
} op_list;

struct CUstream_st { op_list queue, capture; int capturing, invalid; };
struct CUgraph_st { op_list list; };
struct CUgraphExec_st { op_list list; };

static struct CUctx_st the_ctx;
static CUcontext current;
static struct CUfunc_st kernels[] = {{"k_axpy", 5, 0}, {"k_sum", 3, 1}, {"k_count", 1, 2}};
static struct { int instantiations, graph_launches, graph_kernels, direct_kernels, syncs; } counts;
static int capturing; /* streams capturing now */

/* allocations, for checking the addresses the runtime passes */
static struct { char *p; size_t n; } allocs[64];

/* the test's window: instantiated graphs, graph launches, kernels run by graphs and outside them */
void mock_cuda_counts(int out[4]) {
    out[0] = counts.instantiations;
    out[1] = counts.graph_launches;
    out[2] = counts.graph_kernels;
    out[3] = counts.direct_kernels;
}

static int in_device(const char *p, size_t n) {
    for (int i = 0; i < 64; i++)
        if (allocs[i].p && p >= allocs[i].p && p + n <= allocs[i].p + allocs[i].n)
            return 1;
    return 0;
}

int mock_cuda_in_device(const void *p, size_t n) { return in_device(p, n); }

static int push(op_list *l, const op *o) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        op *ops = realloc(l->ops, (size_t)cap * sizeof *ops);
        if (!ops)
            return 0;
        l->ops = ops;
        l->cap = cap;
    }
    l->ops[l->n++] = *o;
    return 1;
}

static CUresult enqueue(CUstream s, const op *o) {
    if (current != &the_ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (!s)
        return CUDA_ERROR_INVALID_HANDLE; /* the runtime uses its own stream, never the legacy one */
    return push(s->capturing ? &s->capture : &s->queue, o) ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

static void run_kernel(const op *o) {
    unsigned threads = o->grid * o->block;
    switch (o->f->kind) {
    case 0: { /* y[i] = a[0] * x[i] + b[i], i < n */
        int n = *(const int *)o->params[0];
        const float *a = o->params[1], *x = o->params[2], *b = o->params[3];
        float *y = o->params[4];
        for (unsigned t = 0; t < threads; t++)
            for (int i = (int)t; i < n; i += (int)threads)
                y[i] = a[0] * x[i] + b[i];
        break;
    }
    case 1: { /* s[0] = sum y[0..n) */
        int n = *(const int *)o->params[0];
        const float *y = o->params[1];
        float s = 0;
        for (int i = 0; i < n; i++)
            s += y[i];
        *(float *)o->params[2] = s;
        break;
    }
    default:
        *(float *)o->params[0] += 1.0f;
        break;
    }
}

static void run_ops(const op_list *l, int in_graph) {
    for (int i = 0; i < l->n; i++) {
        const op *o = &l->ops[i];
        switch (o->kind) {
        case OP_HTOD:
        case OP_DTOH:
        case OP_DTOD:
            memmove(o->dst, o->src, o->bytes);
            break;
        case OP_SET8:
            memset(o->dst, (int)o->value, o->bytes);
            break;
        case OP_SET32:
            for (size_t k = 0; k < o->bytes; k++)
                memcpy(o->dst + 4 * k, &o->value, 4);
            break;
        case OP_LAUNCH:
            run_kernel(o);
            if (in_graph)
                counts.graph_kernels++;
            else
                counts.direct_kernels++;
            break;
        case OP_GRAPH:
            run_ops(&o->exec->list, 1);
            break;
        case OP_HOST:
            o->host(o->data);
            break;
        }
    }
}

CUresult cuInit(unsigned int flags) { return getenv("MOCK_CUDA_NO_DEVICE") ? CUDA_ERROR_NO_DEVICE : CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return CUDA_SUCCESS; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return CUDA_SUCCESS; }
CUresult cuDeviceGet(CUdevice *d, int ordinal) { *d = 0; return ordinal == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE; }
CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
    strncpy(name, "nnc mock GPU", (size_t)len - 1);
    name[len - 1] = 0;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice dev) {
    *v = a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ? 9 : a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR ? 0 : 1;
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice dev) { *c = &the_ctx; return CUDA_SUCCESS; }
CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return CUDA_SUCCESS; }
CUresult cuCtxSetCurrent(CUcontext c) { current = c; return CUDA_SUCCESS; }

/* the ELF file's size from its header (64-bit): the section headers come last */
static size_t elf_size(const unsigned char *e) {
    uint64_t shoff;
    uint16_t shentsize, shnum;
    memcpy(&shoff, e + 0x28, 8);
    memcpy(&shentsize, e + 0x3a, 2);
    memcpy(&shnum, e + 0x3c, 2);
    return (size_t)(shoff + (uint64_t)shentsize * shnum);
}

static const void *image_of;
static size_t image_size;

CUresult cuModuleLoadData(CUmodule *m, const void *image) {
    static struct CUmod_st mod;
    const char *p = image;
    if (current != &the_ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (!memcmp(p, "\177ELF", 4))
        image_size = elf_size(image);
    else if (strstr(p, ".version") && strstr(p, ".target"))
        image_size = strlen(p);
    else
        return CUDA_ERROR_INVALID_IMAGE;
    image_of = image;
    *m = &mod;
    return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule m) { return CUDA_SUCCESS; }
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
    size_t n = strlen(name);
    int found = 0;
    for (size_t i = 0; image_of && i + n <= image_size && !found; i++)
        found = !memcmp((const char *)image_of + i, name, n);
    for (int k = 0; k < 3 && found; k++)
        if (!strcmp(kernels[k].name, name)) {
            *f = &kernels[k];
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_NOT_FOUND;
}

CUresult cuMemAlloc(CUdeviceptr *p, size_t n) {
    if (current != &the_ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (capturing)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    for (int i = 0; i < 64; i++)
        if (!allocs[i].p) {
            allocs[i].p = malloc(n ? n : 1);
            if (!allocs[i].p)
                return CUDA_ERROR_OUT_OF_MEMORY;
            memset(allocs[i].p, 0xa5, n); /* cuMemAlloc does not clear: the runtime must */
            allocs[i].n = n;
            *p = (CUdeviceptr)(uintptr_t)allocs[i].p;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_OUT_OF_MEMORY;
}
CUresult cuMemFree(CUdeviceptr p) {
    for (int i = 0; i < 64; i++)
        if (allocs[i].p == (char *)(uintptr_t)p) {
            free(allocs[i].p);
            allocs[i].p = NULL;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_INVALID_VALUE;
}
CUresult cuMemAllocHost(void **p, size_t n) {
    if (!(*p = malloc(n ? n : 1)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    memset(*p, 0xa5, n);
    return CUDA_SUCCESS;
}
CUresult cuMemFreeHost(void *p) { free(p); return CUDA_SUCCESS; }

#define DEV(p, n)                                                                                            \
    do {                                                                                                     \
        if (!in_device((const char *)(uintptr_t)(p), (n)))                                                   \
            return CUDA_ERROR_INVALID_VALUE;                                                                 \
    } while (0)

CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s) {
    DEV(d, n);
    op o = {OP_SET8, (char *)(uintptr_t)d, NULL, n, v, NULL, 0, 0, {0}, NULL};
    return enqueue(s, &o);
}
CUresult cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream s) {
    DEV(d, 4 * n);
    op o = {OP_SET32, (char *)(uintptr_t)d, NULL, n, v, NULL, 0, 0, {0}, NULL};
    return enqueue(s, &o);
}
CUresult cuMemcpyHtoDAsync(CUdeviceptr d, const void *h, size_t n, CUstream s) {
    DEV(d, n);
    op o = {OP_HTOD, (char *)(uintptr_t)d, h, n, 0, NULL, 0, 0, {0}, NULL};
    return enqueue(s, &o);
}
CUresult cuMemcpyDtoHAsync(void *h, CUdeviceptr d, size_t n, CUstream s) {
    DEV(d, n);
    op o = {OP_DTOH, h, (const char *)(uintptr_t)d, n, 0, NULL, 0, 0, {0}, NULL};
    return enqueue(s, &o);
}
CUresult cuMemcpyDtoDAsync(CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s) {
    DEV(d, n);
    DEV(src, n);
    op o = {OP_DTOD, (char *)(uintptr_t)d, (const char *)(uintptr_t)src, n, 0, NULL, 0, 0, {0}, NULL};
    return enqueue(s, &o);
}

CUresult cuStreamCreate(CUstream *s, unsigned int flags) {
    if (flags != CU_STREAM_NON_BLOCKING)
        return CUDA_ERROR_INVALID_VALUE;
    *s = calloc(1, sizeof **s);
    return CUDA_SUCCESS;
}
CUresult cuStreamDestroy(CUstream s) {
    free(s->queue.ops);
    free(s->capture.ops);
    free(s);
    return CUDA_SUCCESS;
}
CUresult cuStreamSynchronize(CUstream s) {
    if (s->capturing) {
        s->invalid = 1;
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    run_ops(&s->queue, 0);
    s->queue.n = 0;
    counts.syncs++;
    return CUDA_SUCCESS;
}
CUresult cuStreamBeginCapture(CUstream s, CUstreamCaptureMode mode) {
    if (s->capturing)
        return CUDA_ERROR_ILLEGAL_STATE;
    s->capturing = 1;
    capturing++;
    s->invalid = 0;
    s->capture.n = 0;
    return CUDA_SUCCESS;
}
CUresult cuStreamEndCapture(CUstream s, CUgraph *g) {
    if (!s->capturing)
        return CUDA_ERROR_ILLEGAL_STATE;
    s->capturing = 0;
    capturing--;
    *g = NULL;
    if (s->invalid)
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    *g = calloc(1, sizeof **g);
    for (int i = 0; i < s->capture.n; i++)
        push(&(*g)->list, &s->capture.ops[i]);
    return CUDA_SUCCESS;
}
CUresult cuGraphInstantiate(CUgraphExec *e, CUgraph g, unsigned long long flags) {
    *e = calloc(1, sizeof **e);
    for (int i = 0; i < g->list.n; i++)
        push(&(*e)->list, &g->list.ops[i]);
    counts.instantiations++;
    return CUDA_SUCCESS;
}
CUresult cuGraphDestroy(CUgraph g) {
    free(g->list.ops);
    free(g);
    return CUDA_SUCCESS;
}
CUresult cuGraphExecDestroy(CUgraphExec e) {
    free(e->list.ops);
    free(e);
    return CUDA_SUCCESS;
}
CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
    op o = {OP_GRAPH, NULL, NULL, 0, 0, NULL, 0, 0, {0}, e};
    if (s->capturing)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    counts.graph_launches++;
    return enqueue(s, &o);
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, CUstream s, void **params, void **extra) {
    op o = {OP_LAUNCH, NULL, NULL, 0, 0, f, gx, bx, {0}, NULL};
    if (bx * by * bz > 1024 || gy != 1 || gz != 1 || by != 1 || bz != 1 || extra || !params)
        return CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < f->nparams; i++) {
        memcpy(&o.params[i], params[i], sizeof(void *)); /* the value, copied now */
        if (!in_device(o.params[i], 4)) {
            if (s->capturing)
                s->invalid = 1;
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    return enqueue(s, &o);
}

CUresult cuGetErrorName(CUresult r, const char **s) {
    switch (r) {
    case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; return CUDA_SUCCESS;
    case CUDA_ERROR_NO_DEVICE: *s = "CUDA_ERROR_NO_DEVICE"; return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
}
CUresult cuGetErrorString(CUresult r, const char **s) {
    switch (r) {
    case CUDA_ERROR_INVALID_VALUE: *s = "invalid argument"; return CUDA_SUCCESS;
    case CUDA_ERROR_NO_DEVICE: *s = "no CUDA-capable device is detected"; return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
}

/* NVRTC loads libcuda.so.1 too and asks it for its private tables: there are none */
CUresult cuGetExportTable(const void **table, const CUuuid *id) {
    *table = NULL;
    return CUDA_ERROR_NOT_SUPPORTED;
}

/* a host function on the stream (mock_libcublas.c's products): `bytes` of data copied now, host(copy) when the
 * stream's work runs (or the graph's, when the stream captures) */
CUresult mock_cuda_enqueue_host(CUstream s, void (*host)(const void *), const void *data, size_t bytes) {
    op o = {OP_HOST, NULL, NULL, 0, 0, NULL, 0, 0, {0}, NULL, host, {0}};
    if (bytes > sizeof o.data)
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(o.data, data, bytes);
    return enqueue(s, &o);
}
