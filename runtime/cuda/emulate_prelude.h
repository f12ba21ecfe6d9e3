/* emulate_prelude.h: the CUDA built-ins for a host C compiler. The emulator (emulate.c) puts this text
 * before the kernel source and compiles the two as one C11 translation unit into a shared object; the
 * runtime library carries the text as a string generated from this file at build time (emulate.cmake).
 *
 * The shared object talks to the runtime through one object only: nnc_emu_env_ptr, which the runtime finds
 * with dlsym and points at its launch state before each launch. The built-ins read the current thread's
 * indices from it and call the runtime through its function pointers, so the object needs no symbol from
 * the process that loads it.
 *
 * Included by emulate.c with NNC_EMU_RUNTIME defined, it gives only the types the two sides share.
 */
#ifndef NNC_EMU_PRELUDE_H
#define NNC_EMU_PRELUDE_H

#include <stddef.h>
#include <stdint.h>

typedef struct nnc_emu_uint3 {
    unsigned x, y, z;
} nnc_emu_uint3;

/* what a warp-level call does (nnc_emu_env.warp) */
enum { NNC_EMU_SHFL_IDX, NNC_EMU_SHFL_UP, NNC_EMU_SHFL_DOWN, NNC_EMU_SHFL_XOR, NNC_EMU_BALLOT };

/* The launch as the kernel sees it: written by the runtime, read by the built-ins below. */
typedef struct nnc_emu_env {
    nnc_emu_uint3 thread_idx, block_idx, block_dim, grid_dim; /* of the thread running now */
    void *run;                                                /* the runtime's launch state */
    void (*sync)(void *run);                                  /* __syncthreads */
    /* a shuffle or a vote of this thread's warp: the lanes of `mask` exchange `bits`; what lane `lane`
     * (the delta, the source lane or the xor mask, as `op` says) gave, within segments of `width` */
    uint32_t (*warp)(void *run, int op, uint32_t mask, uint32_t bits, int lane, int width);
    uint32_t (*active)(void *run);                        /* __activemask */
    void *(*shared)(void *run, size_t bytes, size_t align); /* the next NNC_SHARED array of this block */
    void *(*dynamic_shared)(void *run);                   /* the launch's dynamic shared bytes */
} nnc_emu_env;

/* one row of the kernel table that the source ends with */
typedef struct nnc_emu_kernel {
    const char *name;
    void (*call)(void *const *args);
    int cooperative; /* uses __syncthreads, a shuffle or a vote: its threads run as fibers */
} nnc_emu_kernel;

#ifndef NNC_EMU_RUNTIME

#include <math.h>
#include <stdio.h> /* printf in a kernel, as CUDA allows, while debugging */
#include <string.h>

#define NNC_CUDA_EMULATOR 1

/* helpers a source may leave unused (clang warns about an unused static function of the main file) */
#if defined(__GNUC__) || defined(__clang__)
#define NNC_EMU_INLINE static inline __attribute__((unused))
#else
#define NNC_EMU_INLINE static inline
#endif

nnc_emu_env *nnc_emu_env_ptr; /* set by the runtime (dlsym) before every launch */

#define NNC_GLOBAL
#define NNC_DEVICE NNC_EMU_INLINE
#define NNC_RESTRICT restrict
#define NNC_SHARED(type, name, count)                                                                     \
    type *name = (type *)nnc_emu_env_ptr->shared(nnc_emu_env_ptr->run, sizeof(type) * (size_t)(count),   \
                                                  _Alignof(type))
/* the launch's dynamic shared memory (`extern __shared__ type name[]`) */
#define NNC_SHARED_DYNAMIC(type, name) type *name = (type *)nnc_emu_env_ptr->dynamic_shared(nnc_emu_env_ptr->run)

#define threadIdx (nnc_emu_env_ptr->thread_idx)
#define blockIdx (nnc_emu_env_ptr->block_idx)
#define blockDim (nnc_emu_env_ptr->block_dim)
#define gridDim (nnc_emu_env_ptr->grid_dim)
#define warpSize 32

#define __syncthreads() nnc_emu_env_ptr->sync(nnc_emu_env_ptr->run)
#define __activemask() nnc_emu_env_ptr->active(nnc_emu_env_ptr->run)

NNC_EMU_INLINE float __int_as_float(int i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}
NNC_EMU_INLINE int __float_as_int(float f)
{
    int i;
    memcpy(&i, &f, sizeof i);
    return i;
}
NNC_EMU_INLINE float __uint_as_float(unsigned u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
NNC_EMU_INLINE unsigned __float_as_uint(float f)
{
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}
NNC_EMU_INLINE float __fdividef(float a, float b)
{
    return a / b;
}
#define __ldg(p) (*(p))
#define __threadfence() ((void)0) /* one OS thread runs the grid: every write is seen at once */
#define __threadfence_block() ((void)0)

/* ---- warp shuffles and votes: (mask, value, lane [, width]) for float, double, int, unsigned ---- */
NNC_EMU_INLINE uint32_t nnc_emu_warp_(int op, unsigned mask, uint32_t bits, int lane, int width)
{
    return nnc_emu_env_ptr->warp(nnc_emu_env_ptr->run, op, mask, bits, lane, width);
}
NNC_EMU_INLINE float nnc_emu_shfl_f_(unsigned mask, float v, int op, int lane, int width)
{
    return __uint_as_float(nnc_emu_warp_(op, mask, __float_as_uint(v), lane, width));
}
NNC_EMU_INLINE int nnc_emu_shfl_i_(unsigned mask, int v, int op, int lane, int width)
{
    return (int)nnc_emu_warp_(op, mask, (uint32_t)v, lane, width);
}
NNC_EMU_INLINE unsigned nnc_emu_shfl_u_(unsigned mask, unsigned v, int op, int lane, int width)
{
    return nnc_emu_warp_(op, mask, v, lane, width);
}
NNC_EMU_INLINE double nnc_emu_shfl_d_(unsigned mask, double v, int op, int lane, int width)
{
    uint64_t b;
    uint32_t lo, hi;
    memcpy(&b, &v, sizeof b);
    lo = nnc_emu_warp_(op, mask, (uint32_t)b, lane, width);
    hi = nnc_emu_warp_(op, mask, (uint32_t)(b >> 32), lane, width);
    b = (uint64_t)hi << 32 | lo;
    memcpy(&v, &b, sizeof v);
    return v;
}
#define NNC_EMU_SHFL_PICK_(v)                                                                             \
    _Generic((v) + 0, float: nnc_emu_shfl_f_, double: nnc_emu_shfl_d_, unsigned: nnc_emu_shfl_u_,         \
             default: nnc_emu_shfl_i_)
/* (lane) or (lane, width) -> lane, width */
#define NNC_EMU_LW_(...) NNC_EMU_LW_PICK_(__VA_ARGS__, NNC_EMU_LW2_, NNC_EMU_LW1_, ~)(__VA_ARGS__)
#define NNC_EMU_LW_PICK_(a, b, m, ...) m
#define NNC_EMU_LW1_(l) (int)(l), 32
#define NNC_EMU_LW2_(l, w) (int)(l), (int)(w)
#define __shfl_sync(mask, v, ...) NNC_EMU_SHFL_PICK_(v)((mask), (v), NNC_EMU_SHFL_IDX, NNC_EMU_LW_(__VA_ARGS__))
#define __shfl_up_sync(mask, v, ...) NNC_EMU_SHFL_PICK_(v)((mask), (v), NNC_EMU_SHFL_UP, NNC_EMU_LW_(__VA_ARGS__))
#define __shfl_down_sync(mask, v, ...)                                                                    \
    NNC_EMU_SHFL_PICK_(v)((mask), (v), NNC_EMU_SHFL_DOWN, NNC_EMU_LW_(__VA_ARGS__))
#define __shfl_xor_sync(mask, v, ...) NNC_EMU_SHFL_PICK_(v)((mask), (v), NNC_EMU_SHFL_XOR, NNC_EMU_LW_(__VA_ARGS__))
#define __ballot_sync(mask, pred) nnc_emu_warp_(NNC_EMU_BALLOT, (mask), (pred) != 0, 0, 32)
/* a rendezvous of the lanes of mask (the mask is required, as __syncwarp() without one is not C) */
#define __syncwarp(mask) ((void)nnc_emu_warp_(NNC_EMU_BALLOT, (mask), 0, 0, 32))
#define __any_sync(mask, pred) (__ballot_sync((mask), (pred)) != 0)
#define __all_sync(mask, pred) (__ballot_sync((mask), (pred)) == ((mask) & __activemask()))

/* ---- atomics: the threads of a launch share one OS thread, so a read-modify-write is atomic ---- */
NNC_EMU_INLINE float nnc_emu_add_f_(float *p, float v)
{
    float old = *p;
    *p = old + v;
    return old;
}
NNC_EMU_INLINE double nnc_emu_add_d_(double *p, double v)
{
    double old = *p;
    *p = old + v;
    return old;
}
NNC_EMU_INLINE int nnc_emu_add_i_(int *p, int v)
{
    int old = *p;
    *p = (int)((unsigned)old + (unsigned)v); /* wraps, as the hardware does */
    return old;
}
NNC_EMU_INLINE unsigned nnc_emu_add_u_(unsigned *p, unsigned v)
{
    unsigned old = *p;
    *p = old + v;
    return old;
}
NNC_EMU_INLINE unsigned long long nnc_emu_add_ull_(unsigned long long *p, unsigned long long v)
{
    unsigned long long old = *p;
    *p = old + v;
    return old;
}
#define atomicAdd(p, v)                                                                                   \
    _Generic((p) + 0, float *: nnc_emu_add_f_, double *: nnc_emu_add_d_, unsigned *: nnc_emu_add_u_,      \
             unsigned long long *: nnc_emu_add_ull_, default: nnc_emu_add_i_)((p), (v))
#define atomicSub(p, v) atomicAdd((p), -(v))

NNC_EMU_INLINE int nnc_emu_max_i_(int *p, int v)
{
    int old = *p;
    *p = old > v ? old : v;
    return old;
}
NNC_EMU_INLINE unsigned nnc_emu_max_u_(unsigned *p, unsigned v)
{
    unsigned old = *p;
    *p = old > v ? old : v;
    return old;
}
NNC_EMU_INLINE int nnc_emu_min_i_(int *p, int v)
{
    int old = *p;
    *p = old < v ? old : v;
    return old;
}
NNC_EMU_INLINE unsigned nnc_emu_min_u_(unsigned *p, unsigned v)
{
    unsigned old = *p;
    *p = old < v ? old : v;
    return old;
}
#define atomicMax(p, v) _Generic((p) + 0, unsigned *: nnc_emu_max_u_, default: nnc_emu_max_i_)((p), (v))
#define atomicMin(p, v) _Generic((p) + 0, unsigned *: nnc_emu_min_u_, default: nnc_emu_min_i_)((p), (v))

NNC_EMU_INLINE float nnc_emu_exch_f_(float *p, float v)
{
    float old = *p;
    *p = v;
    return old;
}
NNC_EMU_INLINE int nnc_emu_exch_i_(int *p, int v)
{
    int old = *p;
    *p = v;
    return old;
}
NNC_EMU_INLINE unsigned nnc_emu_exch_u_(unsigned *p, unsigned v)
{
    unsigned old = *p;
    *p = v;
    return old;
}
#define atomicExch(p, v)                                                                                  \
    _Generic((p) + 0, float *: nnc_emu_exch_f_, unsigned *: nnc_emu_exch_u_, default: nnc_emu_exch_i_)((p), (v))

NNC_EMU_INLINE int nnc_emu_cas_i_(int *p, int cmp, int v)
{
    int old = *p;
    if (old == cmp)
        *p = v;
    return old;
}
NNC_EMU_INLINE unsigned nnc_emu_cas_u_(unsigned *p, unsigned cmp, unsigned v)
{
    unsigned old = *p;
    if (old == cmp)
        *p = v;
    return old;
}
#define atomicCAS(p, c, v) _Generic((p) + 0, unsigned *: nnc_emu_cas_u_, default: nnc_emu_cas_i_)((p), (c), (v))

#endif /* NNC_EMU_RUNTIME */
#endif
