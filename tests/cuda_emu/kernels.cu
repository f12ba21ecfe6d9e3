/* kernels.cu: hand-written kernels in nnc's kernel dialect (emulate.h) for test_emu.c. Valid CUDA (nvcc
 * -cubin accepts it: the macros are defined below under __CUDACC__) and, after the emulator's prelude,
 * valid C11 (cuda_emu.nvcc checks the first, cuda_emu.prelude_* the second). Every parameter is a pointer,
 * as in nnc's kernels; sizes come through `const int *`. */
#ifdef __CUDACC__
#define NNC_GLOBAL extern "C" __global__
#define NNC_DEVICE static __device__ __forceinline__
#define NNC_RESTRICT __restrict__
#define NNC_SHARED(type, name, count) __shared__ type name[count]
#define NNC_SHARED_DYNAMIC(type, name) extern __shared__ type name[]
#endif

#define FULL 0xffffffffu

/* (a) grid-stride sums, then a tree in shared memory with a barrier between halvings; blockDim.x is a
 * power of two, at most 256. partial[blockIdx.x] = the block's sum. */
NNC_GLOBAL void tree_sum(const int *NNC_RESTRICT n, const float *NNC_RESTRICT x, float *NNC_RESTRICT partial)
{
    NNC_SHARED(float, s, 256);
    unsigned t = threadIdx.x, o;
    float acc = 0.0f;
    int i;
    for (i = (int)(blockIdx.x * blockDim.x + t); i < *n; i += (int)(blockDim.x * gridDim.x))
        acc += x[i];
    s[t] = acc;
    __syncthreads();
    for (o = blockDim.x / 2; o > 0; o >>= 1) {
        if (t < o)
            s[t] += s[t + o];
        __syncthreads();
    }
    if (t == 0)
        partial[blockIdx.x] = s[0];
}

/* (b) the tree down to 32 values, then the last 32 folded with __shfl_down_sync (blockDim.x >= 64) */
NNC_GLOBAL void shfl_sum(const int *NNC_RESTRICT n, const float *NNC_RESTRICT x, float *NNC_RESTRICT partial)
{
    NNC_SHARED(float, s, 256);
    unsigned t = threadIdx.x, o;
    float acc = 0.0f;
    int i;
    for (i = (int)(blockIdx.x * blockDim.x + t); i < *n; i += (int)(blockDim.x * gridDim.x))
        acc += x[i];
    s[t] = acc;
    __syncthreads();
    for (o = blockDim.x / 2; o >= 32; o >>= 1) {
        if (t < o)
            s[t] += s[t + o];
        __syncthreads();
    }
    if (t < 32) {
        float v = s[t];
        for (o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync(FULL, v, o);
        if (t == 0)
            partial[blockIdx.x] = v;
    }
}

/* (b) int shuffles at their edges: down[t] = the value of lane t+16, up[t] of lane t-8, each lane's own
 * value where the source lane is outside the warp; idx8[t] = lane 3 of t's group of 8 (width 8);
 * xor8[t] = lane t^8 where that is in an earlier group of 8, else t's own value (width 8) */
NNC_GLOBAL void shfl_edges(int *NNC_RESTRICT down, int *NNC_RESTRICT up, int *NNC_RESTRICT idx8,
                           int *NNC_RESTRICT xor8)
{
    int g = (int)(blockIdx.x * blockDim.x + threadIdx.x), v = 1000 + g;
    down[g] = __shfl_down_sync(FULL, v, 16);
    up[g] = __shfl_up_sync(FULL, v, 8);
    idx8[g] = __shfl_sync(FULL, v, 3, 8);
    xor8[g] = __shfl_xor_sync(FULL, v, 8, 8);
}

/* (c) the butterfly: every lane ends with its warp's total */
NNC_GLOBAL void xor_total(const float *NNC_RESTRICT x, float *NNC_RESTRICT total)
{
    int g = (int)(blockIdx.x * blockDim.x + threadIdx.x), m;
    float v = x[g];
    for (m = 16; m > 0; m >>= 1)
        v += __shfl_xor_sync(FULL, v, m);
    total[g] = v;
}

/* (d) shared memory per block: what thread 0 finds in s before writing (the emulator's fill: -1), then
 * what every thread reads after thread 0 wrote the block's index; t2 checks a second array's own place */
NNC_GLOBAL void per_block(int *NNC_RESTRICT before, int *NNC_RESTRICT seen)
{
    NNC_SHARED(int, s, 1);
    NNC_SHARED(int, s2, 128);
    unsigned t = threadIdx.x;
    if (t == 0) {
        before[blockIdx.x] = s[0];
        s[0] = (int)blockIdx.x;
    }
    s2[t] = (int)(t * 7);
    __syncthreads();
    seen[blockIdx.x * blockDim.x + t] = s[0] * 100000 + s2[blockDim.x - 1 - t];
}

/* (e) t writes s[t], a barrier, t reads s[t+1]: wrong without a real barrier */
NNC_GLOBAL void rotate(int *NNC_RESTRICT out)
{
    NNC_SHARED(int, s, 1024);
    unsigned t = threadIdx.x, b = blockDim.x;
    s[t] = (int)(t * 3 + blockIdx.x * 10000);
    __syncthreads();
    out[blockIdx.x * b + t] = s[(t + 1) % b];
    __syncthreads();
    s[t] = -s[t];
    __syncthreads();
    out[gridDim.x * b + blockIdx.x * b + t] = s[(t + b - 1) % b];
}

/* (f) atomics from every thread of every block */
NNC_GLOBAL void atomics(int *NNC_RESTRICT count, float *NNC_RESTRICT fsum, unsigned *NNC_RESTRICT usum,
                        int *NNC_RESTRICT top, int *NNC_RESTRICT last)
{
    int g = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    atomicAdd(count, 1);
    atomicAdd(fsum, 0.5f);
    atomicAdd(usum, (unsigned)g);
    atomicMax(top, g * 7 % 1001);
    atomicExch(last, g);
}

/* (g) threads that exit while others wait at a barrier no longer count. mode 0: the upper half exits
 * (after the lower half waits), 1: the lower half exits; the others rotate through shared memory */
NNC_GLOBAL void exits(const int *NNC_RESTRICT mode, int *NNC_RESTRICT out)
{
    NNC_SHARED(int, s, 1024);
    unsigned t = threadIdx.x, half = blockDim.x / 2, k;
    int upper = t >= half;
    if (upper == (*mode == 0))
        return;
    k = t % half;
    s[k] = (int)(k * 5 + 1);
    __syncthreads();
    out[k] = s[(k + 1) % half];
    __syncthreads();
    s[k] = 0;
    __syncthreads();
    out[half + k] = s[(k + 1) % half];
}

/* (g) lanes 16..31 of each warp exit; the rest swap neighbours under __activemask */
NNC_GLOBAL void warp_exits(int *NNC_RESTRICT out)
{
    unsigned t = threadIdx.x, lane = t % 32;
    int v;
    if (lane >= 16)
        return;
    v = __shfl_xor_sync(__activemask(), (int)t, 1);
    out[t] = v;
}

/* (h) a plain kernel: grid-stride over n */
NNC_GLOBAL void axpb(const int *NNC_RESTRICT n, const float *NNC_RESTRICT x, float *NNC_RESTRICT y)
{
    int i;
    for (i = (int)(blockIdx.x * blockDim.x + threadIdx.x); i < *n; i += (int)(blockDim.x * gridDim.x))
        y[i] = 2.0f * x[i] + 1.0f;
}

/* deadlock: lanes 0..15 wait at a barrier, lanes 16..31 at a shuffle that names lanes 0..15 */
NNC_GLOBAL void diverge(int *NNC_RESTRICT out)
{
    unsigned t = threadIdx.x;
    if (t < 16)
        __syncthreads();
    else
        out[t] = __shfl_down_sync(FULL, (int)t, 1);
}

/* __syncthreads in a kernel whose table entry says it is not cooperative */
NNC_GLOBAL void mislabelled(int *NNC_RESTRICT out)
{
    out[threadIdx.x] = 1;
    __syncthreads();
}

/* __syncwarp orders shared memory within a warp: lane l writes s[l], reads s[l ^ 1] */
NNC_GLOBAL void warp_sync(int *NNC_RESTRICT out)
{
    NNC_SHARED(int, s, 1024);
    unsigned t = threadIdx.x;
    s[t] = (int)(t * 11);
    __syncwarp(FULL);
    out[t] = s[t ^ 1];
}

#ifdef NNC_CUDA_EMULATOR
/* more static shared memory than CUDA allows (48 KiB): ptxas rejects it, the emulator fails the launch */
NNC_GLOBAL void too_shared(float *NNC_RESTRICT out)
{
    NNC_SHARED(float, big, 20000);
    big[threadIdx.x] = 1.0f;
    out[threadIdx.x] = big[threadIdx.x];
}
#endif

/* dynamic shared memory, a double shuffle and a ballot */
NNC_GLOBAL void misc(double *NNC_RESTRICT d, unsigned *NNC_RESTRICT ballot, float *NNC_RESTRICT dyn)
{
    NNC_SHARED_DYNAMIC(float, s);
    unsigned t = threadIdx.x;
    s[t] = (float)t + 0.25f;
    __syncthreads();
    dyn[t] = s[blockDim.x - 1 - t];
    d[t] = __shfl_down_sync(FULL, (double)t * 1e-3 + 1e9, 1);
    ballot[t] = __ballot_sync(FULL, t % 3 == 0);
}

#ifdef NNC_CUDA_EMULATOR
static void call_tree_sum(void *const *a) { tree_sum((const int *)a[0], (const float *)a[1], (float *)a[2]); }
static void call_shfl_sum(void *const *a) { shfl_sum((const int *)a[0], (const float *)a[1], (float *)a[2]); }
static void call_shfl_edges(void *const *a) { shfl_edges((int *)a[0], (int *)a[1], (int *)a[2], (int *)a[3]); }
static void call_xor_total(void *const *a) { xor_total((const float *)a[0], (float *)a[1]); }
static void call_per_block(void *const *a) { per_block((int *)a[0], (int *)a[1]); }
static void call_rotate(void *const *a) { rotate((int *)a[0]); }
static void call_atomics(void *const *a)
{
    atomics((int *)a[0], (float *)a[1], (unsigned *)a[2], (int *)a[3], (int *)a[4]);
}
static void call_exits(void *const *a) { exits((const int *)a[0], (int *)a[1]); }
static void call_warp_exits(void *const *a) { warp_exits((int *)a[0]); }
static void call_axpb(void *const *a) { axpb((const int *)a[0], (const float *)a[1], (float *)a[2]); }
static void call_diverge(void *const *a) { diverge((int *)a[0]); }
static void call_mislabelled(void *const *a) { mislabelled((int *)a[0]); }
static void call_too_shared(void *const *a) { too_shared((float *)a[0]); }
static void call_warp_sync(void *const *a) { warp_sync((int *)a[0]); }
static void call_misc(void *const *a) { misc((double *)a[0], (unsigned *)a[1], (float *)a[2]); }
const nnc_emu_kernel nnc_emu_kernels[] = {
    {"tree_sum", call_tree_sum, 1},       {"shfl_sum", call_shfl_sum, 1},     {"shfl_edges", call_shfl_edges, 1},
    {"xor_total", call_xor_total, 1},     {"per_block", call_per_block, 1},   {"rotate", call_rotate, 1},
    {"atomics", call_atomics, 0},         {"exits", call_exits, 1},           {"warp_exits", call_warp_exits, 1},
    {"axpb", call_axpb, 0},               {"diverge", call_diverge, 1},       {"mislabelled", call_mislabelled, 0},
    {"too_shared", call_too_shared, 0},   {"misc", call_misc, 1},         {"warp_sync", call_warp_sync, 1},
};
const int nnc_emu_nkernels = sizeof nnc_emu_kernels / sizeof nnc_emu_kernels[0];
#endif
