/* nnc_cuda.h: the runtime that `nnc --target cuda` output links against (libnnc_cuda_runtime,
 * CMake target nnc::cuda_runtime). docs/cuda.md describes it for users.
 *
 * The generated host C describes its model as data (a nnc_cuda_program: the kernels' CUDA source, their
 * names, the sizes of two device blocks) and drives it through the calls below. Two device blocks per model:
 *   - the image: every parameter, state, optimizer and gradient tensor, the constant arrays and the arena,
 *     laid out by the generated C's own `struct M_image` (one allocation, uploaded once by nnc_cuda_open);
 *   - the io block: the call's batch size n, its inputs and targets, then its outputs, loss and metrics
 *     (`struct M_io`), with a pinned host twin through which host arrays are staged.
 * An entry point is a record function that issues its launches and copies; the first call of an entry
 * records it (a CUDA graph captured from a stream), every call replays it: one graph launch per call.
 *
 * No CUDA header is needed to use it: device addresses are plain pointers. libcuda.so.1 and NVRTC are
 * loaded with dlopen when nnc_cuda_open runs, cuBLAS by the first nnc_cuda_gemm ($NNC_CUBLAS may name the
 * library), so a program linked against this library starts on a
 * machine without them (and nnc_cuda_open then fails with a message naming NNC_CUDA_EMULATE).
 *
 * NNC_CUDA_EMULATE=1 in the environment: the emulator. The kernel source is compiled by the host C compiler
 * ($NNC_CC, else cc) with NNC_CUDA_EMULATOR defined and a prelude that defines the CUDA built-ins, and every
 * grid runs on the CPU: blocks one after another, the threads of a block as cooperative fibers, so that every
 * thread reaches a __syncthreads() before any passes it, __shared__ memory is per block, atomics are atomic
 * and warp shuffles exchange within 32 lanes. "Device" memory is host memory. Slow, and exact.
 *
 * Errors (driver, NVRTC, cuBLAS, the host compiler, out of memory) never abort: the first one is kept, every
 * later call returns nonzero at once, and nnc_cuda_error describes it.
 */
#ifndef NNC_CUDA_H
#define NNC_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* bumped when the structures or calls below change; generated C says which it was written for. 2 added
 * nnc_cuda_gemm; nnc_cuda_open also takes a program of ABI 1 (one that makes no nnc_cuda_gemm call). */
#define NNC_CUDA_ABI 2

typedef struct nnc_cuda nnc_cuda;

/* Issues the launches and copies of one entry point (nnc_cuda_launch, nnc_cuda_copy, nnc_cuda_fill,
 * nnc_cuda_gemm), for `model` (the generated struct). Called by nnc_cuda_run the first time that entry runs
 * (on a GPU twice, once only, when its first nnc_cuda_gemm loads cuBLAS: what it issued before is thrown away
 * and it is recorded again), so it must issue the same work every time it is called. */
typedef void nnc_cuda_record_fn(void *model);

typedef struct nnc_cuda_program {
    int abi;                     /* NNC_CUDA_ABI */
    const char *name;            /* the model's name, for messages and the cache file's name */
    const char *source;          /* the kernels: one CUDA C translation unit (also valid C99 for the emulator) */
    int nkernels;
    const char *const *kernels;  /* the extern "C" __global__ functions, by launch index */
    size_t image_bytes;          /* sizeof(struct M_image) */
    size_t io_bytes;             /* sizeof(struct M_io) */
} nnc_cuda_program;

/* Load the driver (or the emulator), pick the first GPU, compile the kernels (NVRTC for that GPU's compute
 * capability; the cubin cached in $NNC_CACHE_DIR, default ~/.cache/nnc, keyed by a hash of the source, the
 * architecture and the runtime's version), allocate the image and the io block on the device and the io
 * block's pinned twin on the host, upload image[0, init_bytes) and zero the rest. Returns 0 on success. On
 * failure returns nonzero and *out is NULL when even the handle could not be allocated, else a handle whose
 * nnc_cuda_error says why (free it with nnc_cuda_close). */
int nnc_cuda_open(nnc_cuda **out, const nnc_cuda_program *p, const void *image, size_t init_bytes);
/* Releases the device memory, module, graphs and the handle. NULL is allowed. */
void nnc_cuda_close(nnc_cuda *c);
/* NULL, or the first failure ("nnc_cuda: NVRTC: k3_dense: error: ..."). */
const char *nnc_cuda_error(const nnc_cuda *c);
/* "emulator" or the GPU's name ("NVIDIA H100 80GB HBM3"); "" before a device was chosen */
const char *nnc_cuda_device_name(const nnc_cuda *c);

/* Device addresses of the image and the io block, and the io block's pinned host twin. */
void *nnc_cuda_image(nnc_cuda *c);
void *nnc_cuda_io(nnc_cuda *c);
void *nnc_cuda_io_host(nnc_cuda *c);

/* ---- inside a record function (captured, not run at once) ---- */
/* Launch kernel `kernel` (an index into nnc_cuda_program.kernels) on `grid` blocks of `block` threads with
 * `shared` bytes of dynamic shared memory. Every kernel parameter is a pointer: args[i] is the value of
 * parameter i (a device address). */
void nnc_cuda_launch(nnc_cuda *c, int kernel, unsigned grid, unsigned block, unsigned shared, void *const *args,
                     int nargs);
/* device to device, `bytes` bytes */
void nnc_cuda_copy(nnc_cuda *c, void *dst, const void *src, size_t bytes);
/* `count` 32-bit words at dst set to `word` (a float's or an int32's bits) */
void nnc_cuda_fill(nnc_cuda *c, void *dst, uint32_t word, size_t count);
/* C = op(A) op(B), row-major, float32: C is m x n with row stride ldc, op(A) m x k, op(B) k x n, op a transpose
 * when ta / tb is nonzero (A then stored k x m, B stored n x k); lda, ldb the stored row strides. m, n, k >= 1,
 * each stride at least its stored row's length; A, B and C inside the image or the io block, C overlapping
 * neither. On a GPU cublasSgemm on the runtime's stream (cuBLAS loaded by the first call; FP32 arithmetic,
 * no TF32), under the emulator a loop over k ascending in float. */
void nnc_cuda_gemm(nnc_cuda *c, int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   float *cm, int ldc);

/* ---- a call ---- */
/* Copy the pinned io twin's bytes [0, in_bytes) to the device io block, run entry `entry` (0 predict, 1 eval,
 * 2 train step; recording it with record(model) on its first run), then copy the io block's bytes
 * [out_offset, out_offset + out_bytes) back to the pinned twin. Queued, not waited for: nnc_cuda_wait. */
int nnc_cuda_run(nnc_cuda *c, int entry, nnc_cuda_record_fn *record, void *model, size_t in_bytes,
                 size_t out_offset, size_t out_bytes);
/* Queue a device-to-device copy outside any graph (the _device entry points stage their arguments with it). */
int nnc_cuda_stage(nnc_cuda *c, void *dst, const void *src, size_t bytes);
/* Wait for everything queued. 0 when it all succeeded. */
int nnc_cuda_wait(nnc_cuda *c);

/* Synchronous copies between host memory and a device address (M_get_tensor, M_set_tensor). 0 on success. */
int nnc_cuda_download(nnc_cuda *c, void *host, const void *dev, size_t bytes);
int nnc_cuda_upload(nnc_cuda *c, void *dev, const void *host, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
