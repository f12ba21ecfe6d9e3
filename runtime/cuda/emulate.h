/* emulate.h: the CPU emulator behind NNC_CUDA_EMULATE=1 (emulate.c), used by nnc_cuda.c.
 *
 * The kernel source that nnc's CUDA printer writes compiles as C as well as CUDA: it spells the few
 * CUDA-only constructs through macros that it defines itself under __CUDACC__ and that the emulator's
 * prelude (emulate_prelude.h, prepended to the source) defines for a host C compiler:
 *   NNC_GLOBAL                    how a kernel starts: `extern "C" __global__` / an exported C function
 *   NNC_DEVICE                    a helper: `static __device__ __forceinline__` / `static inline`
 *   NNC_RESTRICT                  `__restrict__` / `restrict`
 *   NNC_SHARED(type, name, count) `__shared__ type name[count]` / a pointer into the block's shared memory
 * and uses these CUDA built-ins, which the prelude defines: threadIdx, blockIdx, blockDim, gridDim (.x .y .z),
 * __syncthreads(), __shfl_down_sync / __shfl_xor_sync / __shfl_sync (float and int), atomicAdd (float and
 * int), atomicMax (int), __int_as_float, __float_as_int, INFINITY, NAN and C99's single-precision math.
 *
 * Under NNC_CUDA_EMULATOR the source ends with its kernels as a table:
 *     const nnc_emu_kernel nnc_emu_kernels[] = {{"k1_dense", nnc_emu_k1_dense, 0}, ...};
 *     const int nnc_emu_nkernels = 14;
 * where each call function unpacks the parameter array (every parameter is a pointer) and `cooperative`
 * says that the kernel uses __syncthreads or a shuffle: its threads must run as fibers. The others run as
 * plain calls, thread after thread, which gives the same results (no thread of theirs depends on another).
 */
#ifndef NNC_CUDA_EMULATE_H
#define NNC_CUDA_EMULATE_H

#include <stddef.h>

typedef struct nnc_emu nnc_emu;

/* Compile `source` (prelude first) with the host compiler into a shared object in the cache directory
 * (reused when the same source was compiled before), load it and find `kernels`. NULL on failure, with
 * the reason (the compiler's first error lines, a missing kernel) in err. */
nnc_emu *nnc_emu_open(const char *source, const char *name, const char *const *kernels, int nkernels, char *err,
                      size_t errlen);
/* Run kernel `kernel` on a grid of `grid` blocks of `block` threads (1-D), `shared` bytes of dynamic shared
 * memory per block, now, on this thread. Nonzero (and err) when the launch is invalid (block > 1024, a
 * kernel that never reaches a barrier some of its threads wait at). */
int nnc_emu_launch(nnc_emu *e, int kernel, unsigned grid, unsigned block, unsigned shared, void *const *args,
                   int nargs, char *err, size_t errlen);
void nnc_emu_close(nnc_emu *e);

#endif
