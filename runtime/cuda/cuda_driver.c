/* cuda_driver.c: the GPU behind a nnc_cuda handle. libcuda.so.1 is loaded with dlopen (this library does not
 * link the driver, so a program starts where there is none), its entry points found by their versioned
 * names; then the first device's primary context, the kernels compiled by NVRTC for its compute capability
 * (cuda_nvrtc.c, with the cubin cache) and loaded as one module, the image and io block in device memory with
 * the io block's pinned twin, one non-blocking stream, and per entry point the graph captured from it;
 * cuBLAS (cuda_blas.c) with its workspace when the first product needs it.
 * Every CUresult is checked; a failure is written as "nnc_cuda: <what>: CUDA_ERROR_X (text)". */
#define _POSIX_C_SOURCE 200809L

#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc_cuda_internal.h"

/* the driver calls this file makes, typed by cudaTypedefs.h (the suffix is the API version of the entry) */
typedef struct driver_api {
    PFN_cuInit_v2000 Init;
    PFN_cuDriverGetVersion_v2020 DriverGetVersion;
    PFN_cuDeviceGetCount_v2000 DeviceGetCount;
    PFN_cuDeviceGet_v2000 DeviceGet;
    PFN_cuDeviceGetName_v2000 DeviceGetName;
    PFN_cuDeviceGetAttribute_v2000 DeviceGetAttribute;
    PFN_cuDevicePrimaryCtxRetain_v7000 DevicePrimaryCtxRetain;
    PFN_cuDevicePrimaryCtxRelease_v11000 DevicePrimaryCtxRelease;
    PFN_cuCtxSetCurrent_v4000 CtxSetCurrent;
    PFN_cuModuleLoadData_v2000 ModuleLoadData;
    PFN_cuModuleUnload_v2000 ModuleUnload;
    PFN_cuModuleGetFunction_v2000 ModuleGetFunction;
    PFN_cuMemAlloc_v3020 MemAlloc;
    PFN_cuMemFree_v3020 MemFree;
    PFN_cuMemAllocHost_v3020 MemAllocHost;
    PFN_cuMemFreeHost_v2000 MemFreeHost;
    PFN_cuMemsetD8Async_v3020 MemsetD8Async;
    PFN_cuMemsetD32Async_v3020 MemsetD32Async;
    PFN_cuMemcpyHtoDAsync_v3020 MemcpyHtoDAsync;
    PFN_cuMemcpyDtoHAsync_v3020 MemcpyDtoHAsync;
    PFN_cuMemcpyDtoDAsync_v3020 MemcpyDtoDAsync;
    PFN_cuStreamCreate_v2000 StreamCreate;
    PFN_cuStreamDestroy_v4000 StreamDestroy;
    PFN_cuStreamSynchronize_v2000 StreamSynchronize;
    PFN_cuStreamBeginCapture_v10010 StreamBeginCapture;
    PFN_cuStreamEndCapture_v10000 StreamEndCapture;
    PFN_cuGraphInstantiateWithFlags_v11040 GraphInstantiateWithFlags;
    PFN_cuGraphLaunch_v10000 GraphLaunch;
    PFN_cuGraphDestroy_v10000 GraphDestroy;
    PFN_cuGraphExecDestroy_v10000 GraphExecDestroy;
    PFN_cuLaunchKernel_v4000 LaunchKernel;
    PFN_cuGetErrorName_v6000 GetErrorName;
    PFN_cuGetErrorString_v6000 GetErrorString;
} driver_api;

/* the exported names of those versions (cuda.h maps cuMemAlloc to cuMemAlloc_v2 and so on) */
#define SYM(field, name) {name, offsetof(driver_api, field)}
static const struct {
    const char *name;
    size_t offset;
} driver_symbols[] = {
    SYM(Init, "cuInit"),
    SYM(DriverGetVersion, "cuDriverGetVersion"),
    SYM(DeviceGetCount, "cuDeviceGetCount"),
    SYM(DeviceGet, "cuDeviceGet"),
    SYM(DeviceGetName, "cuDeviceGetName"),
    SYM(DeviceGetAttribute, "cuDeviceGetAttribute"),
    SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
    SYM(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
    SYM(CtxSetCurrent, "cuCtxSetCurrent"),
    SYM(ModuleLoadData, "cuModuleLoadData"),
    SYM(ModuleUnload, "cuModuleUnload"),
    SYM(ModuleGetFunction, "cuModuleGetFunction"),
    SYM(MemAlloc, "cuMemAlloc_v2"),
    SYM(MemFree, "cuMemFree_v2"),
    SYM(MemAllocHost, "cuMemAllocHost_v2"),
    SYM(MemFreeHost, "cuMemFreeHost"),
    SYM(MemsetD8Async, "cuMemsetD8Async"),
    SYM(MemsetD32Async, "cuMemsetD32Async"),
    SYM(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
    SYM(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
    SYM(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
    SYM(StreamCreate, "cuStreamCreate"),
    SYM(StreamDestroy, "cuStreamDestroy_v2"),
    SYM(StreamSynchronize, "cuStreamSynchronize"),
    SYM(StreamBeginCapture, "cuStreamBeginCapture_v2"),
    SYM(StreamEndCapture, "cuStreamEndCapture"),
    SYM(GraphInstantiateWithFlags, "cuGraphInstantiateWithFlags"),
    SYM(GraphLaunch, "cuGraphLaunch"),
    SYM(GraphDestroy, "cuGraphDestroy"),
    SYM(GraphExecDestroy, "cuGraphExecDestroy"),
    SYM(LaunchKernel, "cuLaunchKernel"),
    SYM(GetErrorName, "cuGetErrorName"),
    SYM(GetErrorString, "cuGetErrorString"),
};
#undef SYM

/* The driver, loaded and initialised once per process (never unloaded: its threads outlive any handle). */
static struct {
    pthread_once_t once;
    driver_api api;
    int ok;
    int version;  /* cuDriverGetVersion: 12040 for 12.4 */
    char err[512];
} driver = {PTHREAD_ONCE_INIT};

struct nnc_gpu {
    const driver_api *cu;
    CUdevice dev;
    CUcontext ctx;
    int retained;
    CUmodule module;
    CUfunction *funcs;
    const char *const *kernels;  /* names, only while nnc_gpu_open runs */
    int nkernels;
    CUstream stream;
    CUdeviceptr image, io;
    void *io_host;
    size_t image_bytes, io_bytes;
    CUgraphExec exec[NNC_CUDA_ENTRIES];
    int cc;                /* compute capability, major * 10 + minor */
    nnc_blas *blas;        /* cuBLAS on the stream, made by the first product */
    CUdeviceptr workspace; /* cuBLAS's workspace */
};

/* cuBLAS's recommended workspace: 32 MiB on Hopper and later, 4 MiB before (its default pool's size) */
#define BLAS_WORKSPACE_HOPPER ((size_t)32 << 20)
#define BLAS_WORKSPACE_OTHER ((size_t)4 << 20)

/* the names of the results a driver that cannot describe itself (the toolkit's stub library) gives */
static const char *known_result(CUresult r, const char **text) {
    switch (r) {
    case CUDA_ERROR_STUB_LIBRARY:
        *text = "libcuda.so.1 is the toolkit's stub library, not a driver";
        return "CUDA_ERROR_STUB_LIBRARY";
    case CUDA_ERROR_NO_DEVICE:
        *text = "no CUDA-capable device is detected";
        return "CUDA_ERROR_NO_DEVICE";
    case CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
        *text = "the forward-compatibility driver does not support this device";
        return "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE";
    default:
        return NULL;
    }
}

/* "nnc_cuda: <what>: CUDA_ERROR_OUT_OF_MEMORY (out of memory)" */
static int cu_fail(CUresult r, const char *what, char *err, size_t errlen) {
    const char *name = NULL, *text = NULL;
    if (driver.api.GetErrorName && driver.api.GetErrorName(r, &name) != CUDA_SUCCESS)
        name = NULL;
    if (driver.api.GetErrorString && driver.api.GetErrorString(r, &text) != CUDA_SUCCESS)
        text = NULL;
    if (!name)
        name = known_result(r, &text);
    if (name)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: %s: %s (%s)", what, name, text ? text : "no description");
    return nnc_cuda_fail(err, errlen, "nnc_cuda: %s: CUDA error %d", what, (int)r);
}

#define CU_CHECK(call, what)                                                                                 \
    do {                                                                                                     \
        CUresult r_ = (call);                                                                                \
        if (r_ != CUDA_SUCCESS)                                                                              \
            return cu_fail(r_, what, err, errlen);                                                           \
    } while (0)

static void load_driver(void) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(driver.err, sizeof driver.err, "nnc_cuda: no CUDA GPU: the CUDA driver could not be loaded (%s)%s",
                 why ? why : "libcuda.so.1 not found", NNC_CUDA_EMULATE_HINT);
        return;
    }
    for (size_t i = 0; i < sizeof driver_symbols / sizeof driver_symbols[0]; i++) {
        void *f = dlsym(lib, driver_symbols[i].name);
        if (!f) {
            snprintf(driver.err, sizeof driver.err,
                     "nnc_cuda: the CUDA driver libcuda.so.1 has no %s (it is older than CUDA 11.4)",
                     driver_symbols[i].name);
            return;
        }
        memcpy((char *)&driver.api + driver_symbols[i].offset, &f, sizeof f);
    }
    CUresult r = driver.api.Init(0);
    if (r != CUDA_SUCCESS) {
        char why[256];
        cu_fail(r, "cuInit", why, sizeof why);
        snprintf(driver.err, sizeof driver.err, "nnc_cuda: no CUDA GPU: %s%s", why + strlen("nnc_cuda: "),
                 NNC_CUDA_EMULATE_HINT);
        return;
    }
    if (driver.api.DriverGetVersion(&driver.version) != CUDA_SUCCESS)
        driver.version = 0;
    driver.ok = 1;
}

/* ---- opening ---- */

static int pick_device(nnc_gpu *g, char *name, size_t namelen, int *cc, char *err, size_t errlen) {
    int count = 0, major = 0, minor = 0;
    CU_CHECK(g->cu->DeviceGetCount(&count), "cuDeviceGetCount");
    if (count < 1)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: no CUDA GPU: the driver sees no device%s", NNC_CUDA_EMULATE_HINT);
    CU_CHECK(g->cu->DeviceGet(&g->dev, 0), "cuDeviceGet");
    CU_CHECK(g->cu->DeviceGetName(name, (int)namelen, g->dev), "cuDeviceGetName");
    CU_CHECK(g->cu->DeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, g->dev),
             "cuDeviceGetAttribute");
    CU_CHECK(g->cu->DeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, g->dev),
             "cuDeviceGetAttribute");
    *cc = 10 * major + minor;
    g->cc = *cc;
    CU_CHECK(g->cu->DevicePrimaryCtxRetain(&g->ctx, g->dev), "cuDevicePrimaryCtxRetain");
    g->retained = 1;
    CU_CHECK(g->cu->CtxSetCurrent(g->ctx), "cuCtxSetCurrent");
    return 0;
}

/* nnc_cuda_load_fn: the module from a cubin or PTX, and every kernel in it */
static int load_module(void *ctx, const nnc_cuda_binary *bin, char *err, size_t errlen) {
    nnc_gpu *g = ctx;
    char what[320];
    CUmodule m = NULL;
    CUresult r = g->cu->ModuleLoadData(&m, bin->data);
    if (r != CUDA_SUCCESS) {
        snprintf(what, sizeof what, "cuModuleLoadData (%s, driver %d.%d)", bin->ptx ? "PTX" : "cubin",
                 driver.version / 1000, driver.version % 1000 / 10);
        return cu_fail(r, what, err, errlen);
    }
    for (int i = 0; i < g->nkernels; i++) {
        r = g->cu->ModuleGetFunction(&g->funcs[i], m, g->kernels[i]);
        if (r != CUDA_SUCCESS) {
            g->cu->ModuleUnload(m);
            snprintf(what, sizeof what, "cuModuleGetFunction(%.200s)", g->kernels[i]);
            return cu_fail(r, what, err, errlen);
        }
    }
    g->module = m;
    return 0;
}

static int compile_and_load(nnc_gpu *g, const nnc_cuda_program *p, int cc, char *err, size_t errlen) {
    char arch[32];
    g->nkernels = p->nkernels;
    g->kernels = p->kernels;
    g->funcs = calloc((size_t)p->nkernels + 1, sizeof *g->funcs);
    if (!g->funcs)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: out of memory");
    if (nnc_cuda_nvrtc_arch(cc, arch, sizeof arch, err, errlen))
        return 1;
    int rc = nnc_cuda_cached_build(p->source, p->name, arch, load_module, g, err, errlen);
    g->kernels = NULL;
    return rc;
}

static size_t block_bytes(size_t bytes) {
    size_t n = (bytes + 255) / 256 * 256;
    return n ? n : 256;
}

static int allocate(nnc_gpu *g, const nnc_cuda_program *p, const void *image, size_t init_bytes, char *err,
                    size_t errlen) {
    g->image_bytes = block_bytes(p->image_bytes);
    g->io_bytes = block_bytes(p->io_bytes);
    CU_CHECK(g->cu->StreamCreate(&g->stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    CU_CHECK(g->cu->MemAlloc(&g->image, g->image_bytes), "cuMemAlloc (the image)");
    CU_CHECK(g->cu->MemAlloc(&g->io, g->io_bytes), "cuMemAlloc (the io block)");
    CU_CHECK(g->cu->MemAllocHost(&g->io_host, g->io_bytes), "cuMemAllocHost (the io block's pinned twin)");
    memset(g->io_host, 0, g->io_bytes);
    CU_CHECK(g->cu->MemsetD8Async(g->image, 0, g->image_bytes, g->stream), "cuMemsetD8Async");
    CU_CHECK(g->cu->MemsetD8Async(g->io, 0, g->io_bytes, g->stream), "cuMemsetD8Async");
    if (init_bytes)
        CU_CHECK(g->cu->MemcpyHtoDAsync(g->image, image, init_bytes, g->stream), "cuMemcpyHtoDAsync (the image)");
    CU_CHECK(g->cu->StreamSynchronize(g->stream), "cuStreamSynchronize (uploading the image)");
    return 0;
}

nnc_gpu *nnc_gpu_open(const nnc_cuda_program *p, const void *image, size_t init_bytes, char *name, size_t namelen,
                      char *err, size_t errlen) {
    int cc = 0;
    pthread_once(&driver.once, load_driver);
    if (!driver.ok) {
        nnc_cuda_fail(err, errlen, "%s", driver.err);
        return NULL;
    }
    nnc_gpu *g = calloc(1, sizeof *g);
    if (!g) {
        nnc_cuda_fail(err, errlen, "nnc_cuda: out of memory");
        return NULL;
    }
    g->cu = &driver.api;
    if (pick_device(g, name, namelen, &cc, err, errlen) || compile_and_load(g, p, cc, err, errlen) ||
        allocate(g, p, image, init_bytes, err, errlen)) {
        nnc_gpu_close(g);
        return NULL;
    }
    return g;
}

void nnc_gpu_close(nnc_gpu *g) {
    if (!g)
        return;
    const driver_api *cu = g->cu;
    if (g->retained) {
        cu->CtxSetCurrent(g->ctx);
        if (g->stream)
            cu->StreamSynchronize(g->stream);
        for (int e = 0; e < NNC_CUDA_ENTRIES; e++)
            if (g->exec[e])
                cu->GraphExecDestroy(g->exec[e]);
        nnc_blas_close(g->blas);
        if (g->workspace)
            cu->MemFree(g->workspace);
        if (g->module)
            cu->ModuleUnload(g->module);
        if (g->image)
            cu->MemFree(g->image);
        if (g->io)
            cu->MemFree(g->io);
        if (g->io_host)
            cu->MemFreeHost(g->io_host);
        if (g->stream)
            cu->StreamDestroy(g->stream);
        cu->DevicePrimaryCtxRelease(g->dev);
    }
    free(g->funcs);
    free(g);
}

void *nnc_gpu_image(nnc_gpu *g) { return (void *)(uintptr_t)g->image; }
void *nnc_gpu_io(nnc_gpu *g) { return (void *)(uintptr_t)g->io; }
void *nnc_gpu_io_host(nnc_gpu *g) { return g->io_host; }

static CUdeviceptr dptr(const void *p) { return (CUdeviceptr)(uintptr_t)p; }

/* ---- the enqueue calls ---- */

int nnc_gpu_launch(nnc_gpu *g, int kernel, const char *name, unsigned grid, unsigned block, unsigned shared,
                   void *const *args, int nargs, char *err, size_t errlen) {
    enum { LOCAL = 64 };
    void *values_local[LOCAL], *params_local[LOCAL];
    void **values = values_local, **params = params_local;
    char what[256];
    if (nargs > LOCAL) {
        values = malloc((size_t)nargs * sizeof *values);
        params = malloc((size_t)nargs * sizeof *params);
        if (!values || !params) {
            free(values);
            free(params);
            return nnc_cuda_fail(err, errlen, "nnc_cuda: out of memory launching %s", name);
        }
    }
    /* kernelParams holds the address of each parameter's value; the driver copies the values at the call */
    for (int i = 0; i < nargs; i++) {
        values[i] = args[i];
        params[i] = &values[i];
    }
    CUresult r = g->cu->LaunchKernel(g->funcs[kernel], grid, 1, 1, block, 1, 1, shared, g->stream,
                                     nargs ? params : NULL, NULL);
    if (values != values_local) {
        free(values);
        free(params);
    }
    if (r != CUDA_SUCCESS) {
        snprintf(what, sizeof what, "cuLaunchKernel(%.150s, grid %u, block %u, shared %u)", name, grid, block,
                 shared);
        return cu_fail(r, what, err, errlen);
    }
    return 0;
}

int nnc_gpu_copy(nnc_gpu *g, void *dst, const void *src, size_t bytes, char *err, size_t errlen) {
    CU_CHECK(g->cu->MemcpyDtoDAsync(dptr(dst), dptr(src), bytes, g->stream), "cuMemcpyDtoDAsync");
    return 0;
}

int nnc_gpu_stage(nnc_gpu *g, void *dst, const void *src, size_t bytes, char *err, size_t errlen) {
    CU_CHECK(g->cu->CtxSetCurrent(g->ctx), "cuCtxSetCurrent");
    return nnc_gpu_copy(g, dst, src, bytes, err, errlen);
}

int nnc_gpu_fill(nnc_gpu *g, void *dst, uint32_t word, size_t count, char *err, size_t errlen) {
    CU_CHECK(g->cu->MemsetD32Async(dptr(dst), word, count, g->stream), "cuMemsetD32Async");
    return 0;
}

/* ---- cuBLAS ---- */

int nnc_gpu_blas_ready(const nnc_gpu *g) { return g->blas != NULL; }

/* Outside any capture: cuMemAlloc and cublasCreate are calls a capturing thread may not make. */
int nnc_gpu_blas_init(nnc_gpu *g, char *err, size_t errlen) {
    size_t bytes = g->cc >= 90 ? BLAS_WORKSPACE_HOPPER : BLAS_WORKSPACE_OTHER;
    if (g->blas)
        return 0;
    CU_CHECK(g->cu->CtxSetCurrent(g->ctx), "cuCtxSetCurrent");
    if (!g->workspace)
        CU_CHECK(g->cu->MemAlloc(&g->workspace, bytes), "cuMemAlloc (cuBLAS's workspace)");
    g->blas = nnc_blas_open(g->stream, (void *)(uintptr_t)g->workspace, bytes, err, errlen);
    return g->blas ? 0 : 1;
}

int nnc_gpu_gemm(nnc_gpu *g, const nnc_cuda_sgemm *s, char *err, size_t errlen) {
    return nnc_blas_sgemm(g->blas, s, err, errlen);
}

/* ---- graphs ---- */

int nnc_gpu_begin_capture(nnc_gpu *g, char *err, size_t errlen) {
    CU_CHECK(g->cu->CtxSetCurrent(g->ctx), "cuCtxSetCurrent");
    CU_CHECK(g->cu->StreamBeginCapture(g->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
    return 0;
}

int nnc_gpu_end_capture(nnc_gpu *g, int entry, int discard, char *err, size_t errlen) {
    CUgraph graph = NULL;
    CUresult r = g->cu->StreamEndCapture(g->stream, &graph);
    if (r != CUDA_SUCCESS || discard) {
        if (graph)
            g->cu->GraphDestroy(graph);
        return r != CUDA_SUCCESS ? cu_fail(r, "cuStreamEndCapture", err, errlen) : 0;
    }
    r = g->cu->GraphInstantiateWithFlags(&g->exec[entry], graph, 0);
    g->cu->GraphDestroy(graph);
    if (r != CUDA_SUCCESS) {
        g->exec[entry] = NULL;
        return cu_fail(r, "cuGraphInstantiate", err, errlen);
    }
    return 0;
}

int nnc_gpu_has_graph(const nnc_gpu *g, int entry) { return g->exec[entry] != NULL; }

int nnc_gpu_launch_graph(nnc_gpu *g, int entry, char *err, size_t errlen) {
    CU_CHECK(g->cu->GraphLaunch(g->exec[entry], g->stream), "cuGraphLaunch");
    return 0;
}

/* ---- a call's transfers ---- */

int nnc_gpu_upload_io(nnc_gpu *g, size_t in_bytes, char *err, size_t errlen) {
    CU_CHECK(g->cu->CtxSetCurrent(g->ctx), "cuCtxSetCurrent");
    if (in_bytes)
        CU_CHECK(g->cu->MemcpyHtoDAsync(g->io, g->io_host, in_bytes, g->stream), "cuMemcpyHtoDAsync (inputs)");
    return 0;
}

int nnc_gpu_download_io(nnc_gpu *g, size_t out_offset, size_t out_bytes, char *err, size_t errlen) {
    if (out_bytes)
        CU_CHECK(g->cu->MemcpyDtoHAsync((char *)g->io_host + out_offset, g->io + out_offset, out_bytes, g->stream),
                 "cuMemcpyDtoHAsync (outputs)");
    return 0;
}

int nnc_gpu_wait(nnc_gpu *g, char *err, size_t errlen) {
    CU_CHECK(g->cu->CtxSetCurrent(g->ctx), "cuCtxSetCurrent");
    CU_CHECK(g->cu->StreamSynchronize(g->stream), "cuStreamSynchronize");
    return 0;
}

/* Synchronous copies go through the stream, so that they follow the work queued before them (a copy on the
 * legacy stream would not wait for a non-blocking stream). */
int nnc_gpu_download(nnc_gpu *g, void *host, const void *dev, size_t bytes, char *err, size_t errlen) {
    CU_CHECK(g->cu->CtxSetCurrent(g->ctx), "cuCtxSetCurrent");
    CU_CHECK(g->cu->MemcpyDtoHAsync(host, dptr(dev), bytes, g->stream), "cuMemcpyDtoHAsync");
    CU_CHECK(g->cu->StreamSynchronize(g->stream), "cuStreamSynchronize");
    return 0;
}

int nnc_gpu_upload(nnc_gpu *g, void *dev, const void *host, size_t bytes, char *err, size_t errlen) {
    CU_CHECK(g->cu->CtxSetCurrent(g->ctx), "cuCtxSetCurrent");
    CU_CHECK(g->cu->MemcpyHtoDAsync(dptr(dev), host, bytes, g->stream), "cuMemcpyHtoDAsync");
    CU_CHECK(g->cu->StreamSynchronize(g->stream), "cuStreamSynchronize");
    return 0;
}
