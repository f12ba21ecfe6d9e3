/* nnc_cuda_internal.h: what the files of the CUDA runtime share and nnc_cuda.h does not publish: the
 * handle's error slot, the driver back end (cuda_driver.c) and NVRTC with its cubin cache (cuda_nvrtc.c).
 * nnc_cuda.c holds the handle and the emulated device; cuda_driver.c holds everything that talks to a GPU. */
#ifndef NNC_CUDA_INTERNAL_H
#define NNC_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nnc_cuda.h"

/* the first failure of a handle is kept in a buffer of this size */
#define NNC_CUDA_ERRLEN 1024
/* entries of a model: 0 predict, 1 eval, 2 train step */
#define NNC_CUDA_ENTRIES 3
/* the text every "no GPU" failure ends with */
#define NNC_CUDA_EMULATE_HINT "; set NNC_CUDA_EMULATE=1 to run the kernels on the CPU (slowly)"

/* ---- the driver back end (cuda_driver.c): not exported from the library ---- */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif
typedef struct nnc_gpu nnc_gpu;

/* Load libcuda.so.1, take the first device's primary context, compile `p` (NVRTC, cache) and load its
 * kernels, allocate the image and io block (image[0, init_bytes) uploaded, the rest zero) and the pinned
 * twin, create the stream. NULL on failure with the reason in err (device name in name when it got that far). */
nnc_gpu *nnc_gpu_open(const nnc_cuda_program *p, const void *image, size_t init_bytes, char *name, size_t namelen,
                      char *err, size_t errlen);
void nnc_gpu_close(nnc_gpu *g);
void *nnc_gpu_image(nnc_gpu *g);
void *nnc_gpu_io(nnc_gpu *g);
void *nnc_gpu_io_host(nnc_gpu *g);
/* the enqueue calls (on the stream: captured while recording); nonzero and err on failure */
int nnc_gpu_launch(nnc_gpu *g, int kernel, const char *name, unsigned grid, unsigned block, unsigned shared,
                   void *const *args, int nargs, char *err, size_t errlen);
int nnc_gpu_copy(nnc_gpu *g, void *dst, const void *src, size_t bytes, char *err, size_t errlen);
/* a copy outside any record function (makes the context current first) */
int nnc_gpu_stage(nnc_gpu *g, void *dst, const void *src, size_t bytes, char *err, size_t errlen);
int nnc_gpu_fill(nnc_gpu *g, void *dst, uint32_t word, size_t count, char *err, size_t errlen);
/* cuBLAS on the GPU's stream: ready once nnc_gpu_blas_init made the handle (never while capturing: it
 * allocates the workspace and the handle); nnc_gpu_gemm enqueues a column-major cublasSgemm. */
struct nnc_cuda_sgemm;
int nnc_gpu_blas_ready(const nnc_gpu *g);
int nnc_gpu_blas_init(nnc_gpu *g, char *err, size_t errlen);
int nnc_gpu_gemm(nnc_gpu *g, const struct nnc_cuda_sgemm *s, char *err, size_t errlen);
/* capture: begin, then (after record ran, also after it failed) end, which instantiates graph `entry` unless
 * `discard` */
int nnc_gpu_begin_capture(nnc_gpu *g, char *err, size_t errlen);
int nnc_gpu_end_capture(nnc_gpu *g, int entry, int discard, char *err, size_t errlen);
int nnc_gpu_has_graph(const nnc_gpu *g, int entry);
/* one call: io twin [0, in_bytes) up, graph `entry` (or, when record is given, record run directly on the
 * stream), io [out_offset, +out_bytes) down */
int nnc_gpu_upload_io(nnc_gpu *g, size_t in_bytes, char *err, size_t errlen);
int nnc_gpu_launch_graph(nnc_gpu *g, int entry, char *err, size_t errlen);
int nnc_gpu_download_io(nnc_gpu *g, size_t out_offset, size_t out_bytes, char *err, size_t errlen);
int nnc_gpu_wait(nnc_gpu *g, char *err, size_t errlen);
/* synchronous copies between host memory and device addresses */
int nnc_gpu_download(nnc_gpu *g, void *host, const void *dev, size_t bytes, char *err, size_t errlen);
int nnc_gpu_upload(nnc_gpu *g, void *dev, const void *host, size_t bytes, char *err, size_t errlen);
#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

/* ---- cuBLAS (cuda_blas.c) ---- */
/* The arguments of one column-major cublasSgemm (C = alpha op(A) op(B) + beta C with alpha 1, beta 0): what a
 * row-major nnc_cuda_gemm becomes. trans*: 0 CUBLAS_OP_N, 1 CUBLAS_OP_T. */
typedef struct nnc_cuda_sgemm {
    int transa, transb;
    int m, n, k;
    const float *a;
    int lda;
    const float *b;
    int ldb;
    float *c;
    int ldc;
} nnc_cuda_sgemm;

/* Row-major C (m x n, stride ldc) = op(A) op(B) is column-major C^T (n x m) = op(B)^T op(A)^T: cuBLAS gets B
 * as its first matrix and A as its second, with m and n swapped and the strides unchanged. */
nnc_cuda_sgemm nnc_cuda_sgemm_from_row_major(int ta, int tb, int m, int n, int k, const float *a, int lda,
                                             const float *b, int ldb, float *c, int ldc);
/* For tests: load cuBLAS and find every entry point the runtime uses (no handle, no GPU needed). 0 on success,
 * else nonzero and "nnc_cuda: cuBLAS: ..." in err. */
int nnc_cuda_blas_load_for_test(char *err, size_t errlen);

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif
typedef struct nnc_blas nnc_blas;
/* Load cuBLAS (once per process: $NNC_CUBLAS, libcublas.so.13, .so.12, .so on the library path, then
 * $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64), create a handle bound to `stream` (a CUstream),
 * using `workspace` (device memory of `workspace_bytes`), FP32 math without TF32, host scalars. NULL and
 * "nnc_cuda: cuBLAS: ..." in err on failure. The context must be current. */
nnc_blas *nnc_blas_open(void *stream, void *workspace, size_t workspace_bytes, char *err, size_t errlen);
/* Enqueue one sgemm on the handle's stream (captured when the stream captures). */
int nnc_blas_sgemm(nnc_blas *b, const nnc_cuda_sgemm *s, char *err, size_t errlen);
void nnc_blas_close(nnc_blas *b);
#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

/* ---- NVRTC and the cubin cache (cuda_nvrtc.c) ---- */
/* What NVRTC made for one program: a cubin (ptx == 0) or PTX text with its terminating zero (ptx == 1). */
typedef struct nnc_cuda_binary {
    char *data;
    size_t size;
    int ptx;
} nnc_cuda_binary;

/* Compile `source` with NVRTC for `arch` ("sm_90": a cubin; "compute_90": PTX). 0 on success; else nonzero
 * with "nnc_cuda: NVRTC: ..." in err. bin->data is malloc'ed. */
int nnc_cuda_nvrtc_compile(const char *source, const char *name, const char *arch, nnc_cuda_binary *bin,
                           char *err, size_t errlen);
/* The NVRTC version ("13.0"), or nonzero with the reason when no NVRTC could be loaded. */
int nnc_cuda_nvrtc_version(int *major, int *minor, char *err, size_t errlen);
/* The architecture to compile for on a GPU of compute capability `cc` (major * 10 + minor): "sm_XY" when
 * this NVRTC knows it, else "compute_ZZ" of the newest it knows below it (PTX the driver finishes). */
int nnc_cuda_nvrtc_arch(int cc, char *arch, size_t archlen, char *err, size_t errlen);

/* The cache: the binary for (source, arch) through `load` (which returns 0 when the driver accepted it):
 * a cached file is tried first, and a missing, corrupt or rejected one is compiled again and rewritten
 * (atomically; an unwritable cache is no error). `load` gets the binary and `ctx`. */
typedef int nnc_cuda_load_fn(void *ctx, const nnc_cuda_binary *bin, char *err, size_t errlen);
int nnc_cuda_cached_build(const char *source, const char *name, const char *arch, nnc_cuda_load_fn *load,
                          void *ctx, char *err, size_t errlen);
/* the cache file's path for (source, name, arch) under the cache directory; nonzero when no directory */
int nnc_cuda_cache_path(const char *source, const char *name, const char *arch, char *path, size_t pathlen);
uint64_t nnc_cuda_fnv1a(uint64_t h, const void *data, size_t bytes);

/* For tests and tools: compile `source` for `arch` and return the binary's size (0 on failure, err set). */
size_t nnc_cuda_compile_for_test(const char *source, const char *arch, char *err, size_t errlen);

/* snprintf into err, never overflowing, returns 1 (a failure) */
int nnc_cuda_fail(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
