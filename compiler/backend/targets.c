/* targets.c: the rows of the target table (target.h). */
#include "target.h"

#include <string.h>

void emit_c_model(const Target *t, Model *m, EntryCode *entries, int nentries, const EmitOptions *opt, char **c_out,
                  char **h_out); /* backend/c/emit_c.c */
void emit_cuda_model(const Target *t, Model *m, EntryCode *entries, int nentries, const EmitOptions *opt, char **c_out,
                     char **h_out); /* backend/c/emit_cuda.c */

/* The fusion limits are what the C printer holds per kernel (64 values, of which 8 read from memory) and
 * what keeps a recomputed or shared expression cheap; docs/backends.md. */
const Target target_host = {
    .name = "c",
    .summary = "portable C99 for the host (the default)",
    .kernel_prefix = "NNC_KERNEL void",
    .restrict_kw = "restrict",
    .index_max = INT64_C(2147483647) - 64,
    .index_type = "int64_t",
    .arena_align = 16,
    .blas = true,
    .fuse = {.members = 48, .externals = 8, .recompute = 8, .shared = 4, .shared_inputs = 10},
    .print = emit_c_model,
};

/* Firmware: the same kernels with 32-bit offsets (a Cortex-M has no 64-bit multiply), float math and
 * no BLAS; the fusion limits are the host's. */
const Target target_mcu = {
    .name = "mcu",
    .summary = "C99 for microcontrollers: float math only, no BLAS, weights in flash (docs/mcu.md)",
    .kernel_prefix = "NNC_KERNEL void",
    .restrict_kw = "restrict",
    .index_max = INT64_C(2147483647) - 64,
    .index_type = "int32_t",
    .arena_align = 1,
    .blas = false,
    .firmware = true,
    .fuse = {.members = 48, .externals = 8, .recompute = 8, .shared = 4, .shared_inputs = 10, .conv_into_pool = true},
    .print = emit_c_model,
};

/* CUDA: the kernels as __global__ functions compiled at M_init by NVRTC, launched from a CUDA graph; the
 * fusion limits are the host's (docs/backends.md §5 plans more externals: kernel parameters are cheap) */
const Target target_cuda = {
    .name = "cuda",
    .summary = "host C that runs the kernels on an NVIDIA GPU through nnc's CUDA runtime (docs/cuda.md)",
    .kernel_prefix = "NNC_GLOBAL void",
    .restrict_kw = "NNC_RESTRICT",
    /* int loop counters step by up to 4096 blocks x 256 threads past the last element */
    .index_max = INT64_C(2147483647) - (INT64_C(1) << 21),
    .index_type = "int64_t",
    .arena_align = 32,
    .blas = false,
    .gpu = true,
    .fuse = {.members = 48, .externals = 8, .recompute = 8, .shared = 4, .shared_inputs = 10},
    .print = emit_cuda_model,
};

static const Target *const targets_[] = {&target_host, &target_mcu, &target_cuda};

bool target_tensor_in_flash(const Target *t, const Tensor *x, bool weights_baked, bool inference_only)
{
    if (!t->firmware || !weights_baked || x->init.kind != INIT_VALUES) return false;
    if (x->kind == TK_STATE) return inference_only; /* predict reads batchnorm's statistics, never writes them */
    return x->kind == TK_PARAM && (inference_only || !x->trainable);
}

const Target *target_find(const char *name)
{
    for (size_t i = 0; i < sizeof targets_ / sizeof targets_[0]; i++)
        if (strcmp(targets_[i]->name, name) == 0) return targets_[i];
    return NULL;
}
