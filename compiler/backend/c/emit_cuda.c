/* emit_cuda.c: the CUDA printer (`--target cuda`, docs/cuda.md). The kernels are the C printer's, written
 * as __global__ functions of their own translation unit (a parallel kernel spreads its loop over a grid,
 * emit_ops.c); this file writes what surrounds them:
 *   - the kernel source, embedded in m.c line by line, that the runtime compiles at M_init with NVRTC (or,
 *     under NNC_CUDA_EMULATE=1, with the host compiler: the same text is C, through a few macros);
 *   - struct M_image: every tensor, constant and the arena, laid out as the host target's struct, held on
 *     the device in one allocation; M_init fills a host copy with the initialisers and uploads it;
 *   - struct M_io: the call's batch size, inputs and targets, then its loss, metrics and outputs, staged
 *     through a pinned host twin;
 *   - per entry point a record function (the launches, recorded once into a CUDA graph by the runtime) and
 *     the API: M_predict etc. on host arrays, M_predict_device etc. on device arrays, M_get_tensor and
 *     M_set_tensor, M_free, M_error.
 * The runtime's calls are declared here (as runtime/cuda/nnc_cuda.h declares them), so m.c needs no -I.
 */
#include "emit.h"

#include <inttypes.h>
#include <string.h>

#define A_ (e->m->arena)

/* ---- the kernel source ------------------------------------------------------------------------------ */
static const char cuda_prelude_[] =
    "#if defined(__CUDACC__)\n"
    "#if defined(__CUDACC_RTC__)\n"
    "typedef int int32_t;\n"
    "typedef unsigned int uint32_t;\n"
    "typedef long long int64_t;\n"
    "typedef unsigned long long uint64_t;\n"
    "#else\n"
    "#include <stdint.h>\n"
    "#endif\n"
    "#define NNC_GLOBAL extern \"C\" __global__\n"
    "#define NNC_DEVICE static __device__ __forceinline__\n"
    "#define NNC_RESTRICT __restrict__\n"
    "#define NNC_SHARED(type, name, count) __shared__ type name[count]\n"
    "#ifndef INFINITY\n#define INFINITY __int_as_float(0x7f800000)\n#endif\n"
    "#ifndef NAN\n#define NAN __int_as_float(0x7fffffff)\n#endif\n"
    "#elif !defined(NNC_CUDA_EMULATOR)\n"
    "#error \"CUDA source: compile it with nvcc or NVRTC (nnc's runtime does), or emulate it (NNC_CUDA_EMULATE=1)\"\n"
    "#endif\n"
    "\n"
    "typedef float nnc_real;\n";

/* the kernels' text without the #line directives back to m.c (the kernel source is not m.c) */
static char *drop_c_lines_(const char *text)
{
    StrBuf b = {0};
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (strncmp(p, "#line @@", 8) != 0) sb_printf(&b, "%.*s", (int)len, p);
        p += len;
    }
    return sb_take(&b);
}

/* helpers as device functions: "static T f(" at a line's start becomes "NNC_DEVICE T f(" */
static char *device_helpers_(const char *text)
{
    StrBuf b = {0};
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (strncmp(p, "static ", 7) == 0) {
            sb_puts(&b, "NNC_DEVICE ");
            sb_printf(&b, "%.*s", (int)(len - 7), p + 7);
        } else {
            sb_printf(&b, "%.*s", (int)len, p);
        }
        p += len;
    }
    return sb_take(&b);
}

static void kernel_source_(Emit *e, StrBuf *src)
{
    sb_puts(src, "/* CUDA kernels of model ");
    sb_c_comment(src, e->mname);
    emit_file_comment(src, e->opt);
    sb_puts(src, "\n * One __global__ function per kernel of the model; the host code launches them in order. */\n");
    sb_puts(src, cuda_prelude_);
    char *kernels = drop_c_lines_(e->kernels.s ? e->kernels.s : "");
    StrBuf helpers = {0};
    emit_helpers(&helpers, kernels);
    char *dev = device_helpers_(helpers.s ? helpers.s : "");
    StrBuf code = {0};
    sb_puts(&code, dev);
    sb_puts(&code, kernels);
    char *text = c_dialect(e->t, code.s ? code.s : "");
    sb_puts(src, text);
    free(text);
    free(dev);
    free(kernels);
    sb_free(&code);
    sb_free(&helpers);
    /* the emulator's way in: each kernel called with its parameters from an array */
    sb_puts(src, "\n#ifdef NNC_CUDA_EMULATOR\n");
    for (int k = 0; k < e->knames.len; k++) {
        const char *name = e->knames.data[k];
        int nargs = e->knargs.data[k];
        sb_printf(src, "static void nnc_emu_%s(void *const *a) { %s(", name, name);
        for (int i = 0; i < nargs; i++) sb_printf(src, "%sa[%d]", i ? ", " : "", i);
        sb_puts(src, "); }\n");
    }
    sb_puts(src, "const nnc_emu_kernel nnc_emu_kernels[] = {\n");
    for (int k = 0; k < e->knames.len; k++)
        sb_printf(src, "    {\"%s\", nnc_emu_%s, %d},\n", e->knames.data[k], e->knames.data[k], e->kcoop.data[k]);
    if (!e->knames.len) sb_puts(src, "    {0, 0, 0},\n");
    sb_printf(src, "};\nconst int nnc_emu_nkernels = %d;\n#endif\n", e->knames.len);
}

/* the source as an array of string literals, one per line (each within C99's length for a literal) */
static void source_lines_(Emit *e, StrBuf *c, const char *src)
{
    sb_printf(c, "\n/* the kernels (also printed by `nnc --target cuda --emit cuda`), compiled at %s_init */\n", e->mname);
    sb_printf(c, "static const char *const %s_cuda_source[] = {\n", e->mname);
    for (const char *p = src; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        for (size_t at = 0; at < len; at += 2000) { /* a longer line in pieces */
            size_t n = len - at < 2000 ? len - at : 2000;
            char *piece = arena_printf(A_, "%.*s", (int)n, p + at);
            sb_puts(c, "    ");
            sb_c_string(c, piece);
            sb_puts(c, ",\n");
        }
        p += len;
    }
    sb_puts(c, "    NULL,\n};\n");
    sb_printf(c, "static const char *const %s_kernel_names[] = {", e->mname);
    for (int k = 0; k < e->knames.len; k++) sb_printf(c, "%s\"%s\"", k ? ", " : "", e->knames.data[k]);
    if (!e->knames.len) sb_puts(c, "NULL");
    sb_puts(c, "};\n");
}

/* ---- the runtime's interface, as runtime/cuda/nnc_cuda.h declares it ---------------------------- */
static const char runtime_decls_[] =
    "\n/* nnc's CUDA runtime (libnnc_cuda_runtime; its header nnc_cuda.h says the same) */\n"
    "#ifndef NNC_CUDA_H\n"
    "#define NNC_CUDA_H\n"
    "#define NNC_CUDA_ABI 2\n"
    "typedef struct nnc_cuda nnc_cuda;\n"
    "typedef void nnc_cuda_record_fn(void *model);\n"
    "typedef struct nnc_cuda_program {\n"
    "    int abi;\n"
    "    const char *name;\n"
    "    const char *source;\n"
    "    int nkernels;\n"
    "    const char *const *kernels;\n"
    "    size_t image_bytes;\n"
    "    size_t io_bytes;\n"
    "} nnc_cuda_program;\n"
    "int nnc_cuda_open(nnc_cuda **out, const nnc_cuda_program *p, const void *image, size_t init_bytes);\n"
    "void nnc_cuda_close(nnc_cuda *c);\n"
    "const char *nnc_cuda_error(const nnc_cuda *c);\n"
    "const char *nnc_cuda_device_name(const nnc_cuda *c);\n"
    "void *nnc_cuda_image(nnc_cuda *c);\n"
    "void *nnc_cuda_io(nnc_cuda *c);\n"
    "void *nnc_cuda_io_host(nnc_cuda *c);\n"
    "void nnc_cuda_launch(nnc_cuda *c, int kernel, unsigned grid, unsigned block, unsigned shared, void *const *args,\n"
    "                     int nargs);\n"
    "void nnc_cuda_copy(nnc_cuda *c, void *dst, const void *src, size_t bytes);\n"
    "void nnc_cuda_fill(nnc_cuda *c, void *dst, uint32_t word, size_t count);\n"
    "void nnc_cuda_gemm(nnc_cuda *c, int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,\n"
    "                   float *cm, int ldc);\n"
    "int nnc_cuda_run(nnc_cuda *c, int entry, nnc_cuda_record_fn *record, void *model, size_t in_bytes,\n"
    "                 size_t out_offset, size_t out_bytes);\n"
    "int nnc_cuda_stage(nnc_cuda *c, void *dst, const void *src, size_t bytes);\n"
    "int nnc_cuda_wait(nnc_cuda *c);\n"
    "int nnc_cuda_download(nnc_cuda *c, void *host, const void *dev, size_t bytes);\n"
    "int nnc_cuda_upload(nnc_cuda *c, void *dev, const void *host, size_t bytes);\n"
    "#endif\n";

/* ---- the image and the io block ---------------------------------------------------------------------- */
static void image_struct_(Emit *e, StrBuf *c, int64_t arena_f, int64_t arena_i)
{
    sb_printf(c, "\n/* on the device, one allocation: tensors, the kernels' constants and the arena */\nstruct %s_image {\n", e->mname);
    emit_struct_body(e, c, arena_f, arena_i);
    for (int i = 0; i < e->const_arrays.len; i++) {
        struct ConstArray *ca = &e->const_arrays.data[i];
        if (!i) sb_puts(c, "    /* constants (nnc_c<k> below) */\n");
        sb_printf(c, "    %s nnc_c%d[%" PRId64 "];\n", c_type(ca->dtype), ca->k, ca->count);
    }
    for (int i = 0; i < e->parts_arrays.len; i++)
        sb_printf(c, "    const nnc_real *nnc_parts%d[%d]; /* the inputs of a kernel that takes many */\n", e->parts_arrays.data[i].k,
                  e->parts_arrays.data[i].count);
    sb_puts(c, "};\n");
}

static void io_member_(Emit *e, StrBuf *c, const IOSlot *s, const char *name)
{
    char sh[96];
    sb_printf(c, "    %s %s[%" PRId64 "]; /* ", c_type(s->dtype), name, shape_count(s->shape, e->opt->max_batch));
    sb_c_comment(c, s->name);
    sb_printf(c, " %s */\n", shape_str(s->shape, sh, sizeof sh));
}

/* the slot of the most elements per sample (the first of those), which the io block holds last in its part */
static int largest_(const IOSlot *s, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (shape_per_sample(s[i].shape) > shape_per_sample(s[best].shape)) best = i;
    return best;
}

/* The io block: n, the targets, the inputs, then what a call returns: loss, metrics, outputs. The largest
 * input and the largest output come last in their parts, so that a call copies only the n rows of each
 * (the others, small, whole at the maximum batch). */
static void io_struct_(Emit *e, StrBuf *c)
{
    Model *m = e->m;
    sb_printf(c, "\n/* one call's arguments on the device, staged through a pinned host twin */\nstruct %s_io {\n", e->mname);
    sb_puts(c, "    int32_t n; /* the batch size */\n");
    for (int i = 0; i < m->targets.len; i++) io_member_(e, c, &m->targets.data[i], e->tgt_name[i]);
    int big = largest_(m->inputs.data, m->inputs.len);
    for (int i = 0; i < m->inputs.len; i++)
        if (i != big) io_member_(e, c, &m->inputs.data[i], e->in_name[i]);
    if (m->inputs.len) io_member_(e, c, &m->inputs.data[big], e->in_name[big]);
    sb_puts(c, "    /* what the call returns: from here on */\n    nnc_real loss;\n");
    sb_printf(c, "    nnc_real metrics[%d];\n", m->metrics.len ? m->metrics.len : 1);
    big = largest_(m->outputs.data, m->outputs.len);
    for (int i = 0; i < m->outputs.len; i++)
        if (i != big) io_member_(e, c, &m->outputs.data[i], e->out_name[i]);
    if (m->outputs.len) io_member_(e, c, &m->outputs.data[big], e->out_name[big]);
    sb_puts(c, "};\n");
}

/* "offsetof(struct m_io, x) + sizeof(nnc_real) * (size_t)(n * 784)": the bytes of the io block up to the end of
 * the call's rows of the last slot of a part (the block's size `whole` when the part is empty) */
static char *io_end_(Emit *e, const IOSlot *s, const char *const *names, int n, const char *whole)
{
    if (!n) return (char *)whole;
    int big = largest_(s, n);
    return arena_printf(A_, "offsetof(struct %s_io, %s) + sizeof(%s) * (size_t)(%s)", e->mname, names[big], c_type(s[big].dtype),
                        c_count(e, s[big].shape));
}

/* ---- entry points ------------------------------------------------------------------------------------- */
/* after a failure: NaN outputs (0 for integer ones) and metrics, then return (NaN for a loss) */
static const char *failed_(Emit *e, EntryKind k)
{
    Model *m = e->m;
    StrBuf b = {0};
    if (k == ENTRY_PREDICT) {
        for (int i = 0; i < m->outputs.len; i++)
            if (m->outputs.data[i].dtype != DT_I32)
                sb_printf(&b, "        for (size_t i = 0; i < (size_t)(%s); i++) %s[i] = NAN;\n", c_count(e, m->outputs.data[i].shape),
                          e->out_name[i]);
            else
                sb_printf(&b, "        memset(%s, 0, sizeof(int32_t) * (size_t)(%s));\n", e->out_name[i],
                          c_count(e, m->outputs.data[i].shape));
    } else if (m->metrics.len) {
        sb_printf(&b, "        if (metrics) for (int i = 0; i < %d; i++) metrics[i] = NAN;\n", m->metrics.len);
    }
    sb_printf(&b, "        return%s;\n", k == ENTRY_PREDICT ? "" : " NAN");
    char *s = arena_strdup(A_, b.s);
    sb_free(&b);
    return s;
}

static void record_fn_(Emit *e, StrBuf *b, EntryKind k, const char *decls, const char *tail)
{
    const char *nm = e->mname;
    sb_printf(b, "\n/* %s: the launches, recorded once into a CUDA graph that every call replays */\n", entry_names[k]);
    sb_printf(b, "static void %s_%s_record(void *nnc_model)\n{\n", nm, entry_names[k]);
    sb_printf(b, "    %s *m = nnc_model;\n    nnc_cuda *c = m->cuda;\n", nm);
    sb_printf(b, "    struct %s_image *d = nnc_cuda_image(c);\n    struct %s_io *io = nnc_cuda_io(c);\n", nm, nm);
    sb_puts(b, "    int *nn = &io->n;\n    (void)d, (void)io, (void)nn;\n");
    sb_puts(b, decls);
    sb_puts(b, e->body.s ? e->body.s : "");
    sb_puts(b, tail);
    sb_puts(b, "}\n");
}

/* the host entry point: stage the host arrays, run the graph, copy the results back */
static void host_entry_(Emit *e, StrBuf *b, EntryKind k)
{
    Model *m = e->m;
    const char *nm = e->mname;
    char up[256];
    emit_upper(up, nm, sizeof up);
    const char *fail = failed_(e, k), *ret = k == ENTRY_PREDICT ? "" : " NAN";
    sb_puts(b, "\n");
    emit_entry_signature(e, b, k, k != ENTRY_PREDICT, k == ENTRY_TRAIN ? "_metrics" : "");
    sb_printf(b, "\n{\n    if (n < 1 || n > %s_MAX_BATCH) return%s;\n", up, ret);
    if (k != ENTRY_PREDICT && !m->metrics.len) sb_puts(b, "    (void)metrics;\n");
    sb_printf(b, "    struct %s_io *nnc_h = m->cuda ? nnc_cuda_io_host(m->cuda) : NULL;\n", nm);
    sb_printf(b, "    if (!nnc_h || nnc_cuda_error(m->cuda)) { /* M_error says why */\n%s    }\n", fail);
    sb_puts(b, "    nnc_h->n = n;\n");
    for (int i = 0; i < m->inputs.len; i++)
        sb_printf(b, "    memcpy(nnc_h->%s, %s, sizeof(%s) * (size_t)(%s));\n", e->in_name[i], e->in_name[i], c_type(m->inputs.data[i].dtype),
                  c_count(e, m->inputs.data[i].shape));
    for (int i = 0; i < m->targets.len && k != ENTRY_PREDICT; i++)
        sb_printf(b, "    memcpy(nnc_h->%s, %s, sizeof(%s) * (size_t)(%s));\n", e->tgt_name[i], e->tgt_name[i], c_type(m->targets.data[i].dtype),
                  c_count(e, m->targets.data[i].shape));
    sb_printf(b, "    const size_t nnc_out = offsetof(struct %s_io, loss);\n", nm);
    const char *in_end = io_end_(e, m->inputs.data, e->in_name, m->inputs.len, "nnc_out");
    const char *out_end = k == ENTRY_PREDICT ? io_end_(e, m->outputs.data, e->out_name, m->outputs.len, arena_printf(A_, "sizeof(struct %s_io)", nm))
                                             : arena_printf(A_, "offsetof(struct %s_io, metrics) + sizeof nnc_h->metrics", nm);
    sb_printf(b, "    const size_t nnc_in = %s; /* up to the call's last row */\n", in_end);
    sb_printf(b, "    const size_t nnc_end = %s;\n", out_end);
    sb_printf(b, "    if (nnc_cuda_run(m->cuda, %d, %s_%s_record, m, nnc_in, nnc_out, nnc_end - nnc_out) || nnc_cuda_wait(m->cuda)) {\n",
              (int)k, nm, entry_names[k]);
    sb_puts(b, fail);
    sb_puts(b, "    }\n");
    if (k == ENTRY_PREDICT) {
        for (int i = 0; i < m->outputs.len; i++)
            sb_printf(b, "    memcpy(%s, nnc_h->%s, sizeof(%s) * (size_t)(%s));\n", e->out_name[i], e->out_name[i],
                      c_type(m->outputs.data[i].dtype), c_count(e, m->outputs.data[i].shape));
    } else {
        if (m->metrics.len) sb_printf(b, "    if (metrics) memcpy(metrics, nnc_h->metrics, sizeof(nnc_real) * %d);\n", m->metrics.len);
        sb_puts(b, "    return nnc_h->loss;\n");
    }
    sb_puts(b, "}\n");
    if (k == ENTRY_TRAIN) {
        sb_puts(b, "\n");
        emit_entry_signature(e, b, ENTRY_TRAIN, false, "");
        sb_printf(b, "\n{\n    return %s_train_step_metrics(m, n", nm);
        for (int i = 0; i < m->inputs.len; i++) sb_printf(b, ", %s", e->in_name[i]);
        for (int i = 0; i < m->targets.len; i++) sb_printf(b, ", %s", e->tgt_name[i]);
        sb_puts(b, ", NULL);\n}\n");
    }
}

/* the device entry point: the same graph, its arguments copied on the device */
static void device_entry_(Emit *e, StrBuf *b, EntryKind k)
{
    Model *m = e->m;
    const char *nm = e->mname;
    char up[256];
    emit_upper(up, nm, sizeof up);
    const char *ret = k == ENTRY_PREDICT ? "" : " NAN";
    sb_puts(b, "\n/* the same on device arrays (inputs, targets, outputs and metrics in device memory) */\n");
    emit_entry_signature(e, b, k, k != ENTRY_PREDICT, "_device");
    sb_printf(b, "\n{\n    if (n < 1 || n > %s_MAX_BATCH || !m->cuda || nnc_cuda_error(m->cuda)) return%s;\n", up, ret);
    sb_printf(b, "    nnc_cuda *nnc_c = m->cuda;\n    struct %s_io *nnc_h = nnc_cuda_io_host(nnc_c), *nnc_io = nnc_cuda_io(nnc_c);\n", nm);
    sb_puts(b, "    nnc_h->n = n;\n    int nnc_rc = 0;\n");
    for (int i = 0; i < m->inputs.len; i++)
        sb_printf(b, "    nnc_rc |= nnc_cuda_stage(nnc_c, nnc_io->%s, %s, sizeof(%s) * (size_t)(%s));\n", e->in_name[i], e->in_name[i],
                  c_type(m->inputs.data[i].dtype), c_count(e, m->inputs.data[i].shape));
    for (int i = 0; i < m->targets.len && k != ENTRY_PREDICT; i++)
        sb_printf(b, "    nnc_rc |= nnc_cuda_stage(nnc_c, nnc_io->%s, %s, sizeof(%s) * (size_t)(%s));\n", e->tgt_name[i], e->tgt_name[i],
                  c_type(m->targets.data[i].dtype), c_count(e, m->targets.data[i].shape));
    sb_printf(b, "    const size_t nnc_out = offsetof(struct %s_io, loss);\n", nm);
    sb_printf(b, "    nnc_rc |= nnc_cuda_run(nnc_c, %d, %s_%s_record, m, sizeof nnc_h->n, nnc_out, sizeof(nnc_real) * %d);\n", (int)k, nm, entry_names[k],
              1 + (m->metrics.len ? m->metrics.len : 1));
    if (k == ENTRY_PREDICT) {
        for (int i = 0; i < m->outputs.len; i++)
            sb_printf(b, "    nnc_rc |= nnc_cuda_stage(nnc_c, %s, nnc_io->%s, sizeof(%s) * (size_t)(%s));\n", e->out_name[i], e->out_name[i],
                      c_type(m->outputs.data[i].dtype), c_count(e, m->outputs.data[i].shape));
    } else if (m->metrics.len) {
        sb_printf(b, "    if (metrics) nnc_rc |= nnc_cuda_stage(nnc_c, metrics, nnc_io->metrics, sizeof(nnc_real) * %d);\n", m->metrics.len);
    } else {
        sb_puts(b, "    (void)metrics;\n");
    }
    if (k == ENTRY_PREDICT) sb_puts(b, "    nnc_rc |= nnc_cuda_wait(nnc_c);\n    (void)nnc_rc; /* a failure: M_error says why */\n}\n");
    else sb_puts(b, "    nnc_rc |= nnc_cuda_wait(nnc_c);\n    return nnc_rc ? NAN : nnc_h->loss;\n}\n");
}

void emit_cuda_entry(Emit *e, StrBuf *b, EntryCode *ec, const char *decls, const char *tail)
{
    record_fn_(e, b, ec->kind, decls, tail);
    host_entry_(e, b, ec->kind);
    device_entry_(e, b, ec->kind);
}

/* ---- M_init, M_free, M_error, tensors ----------------------------------------------------------------- */
static void init_fns_(Emit *e, StrBuf *c, int nentries)
{
    const char *nm = e->mname;
    (void)nentries;
    sb_printf(c, "\n/* the kernels compiled for the GPU present, the image uploaded: 0, else M_error says why */\n");
    sb_printf(c, "int %s_init(%s *m, uint64_t seed)\n{\n", nm, nm);
    sb_puts(c, "    memset(m, 0, sizeof *m);\n");
    sb_printf(c, "    size_t len = 1;\n    for (int i = 0; %s_cuda_source[i]; i++) len += strlen(%s_cuda_source[i]);\n", nm, nm);
    sb_printf(c, "    char *source = malloc(len);\n    struct %s_image *image = calloc(1, sizeof *image);\n", nm);
    sb_printf(c, "    if (!source || !image) {\n        free(source);\n        free(image);\n"
                 "        m->error = \"%s_init: out of memory\";\n        return 1;\n    }\n", nm);
    sb_printf(c, "    source[0] = 0;\n    for (int i = 0, at = 0; %s_cuda_source[i]; i++) {\n", nm);
    sb_printf(c, "        size_t k = strlen(%s_cuda_source[i]);\n        memcpy(source + at, %s_cuda_source[i], k + 1);\n        at += (int)k;\n    }\n", nm, nm);
    sb_printf(c, "    %s_init_image(image, seed);\n", nm);
    for (int i = 0; i < e->const_arrays.len; i++)
        sb_printf(c, "    memcpy(image->nnc_c%d, nnc_c%d, sizeof nnc_c%d);\n", e->const_arrays.data[i].k, e->const_arrays.data[i].k,
                  e->const_arrays.data[i].k);
    sb_printf(c, "    const nnc_cuda_program program = {NNC_CUDA_ABI, \"%s\", source, %d, %s_kernel_names, sizeof(struct %s_image),\n"
                 "                                      sizeof(struct %s_io)};\n", nm, e->knames.len, nm, nm, nm);
    sb_puts(c, "    int rc = nnc_cuda_open(&m->cuda, &program, image, sizeof *image);\n");
    sb_puts(c, "    free(source);\n    free(image);\n");
    if (e->parts_arrays.len) { /* the input addresses of the kernels that take many, once the device memory exists */
        sb_printf(c, "    if (rc == 0) {\n        struct %s_image *d = nnc_cuda_image(m->cuda);\n        struct %s_io *io = nnc_cuda_io(m->cuda);\n"
                     "        (void)d, (void)io;\n", nm, nm);
        for (int i = 0; i < e->parts_arrays.len; i++) {
            const struct PartsArray *pa = &e->parts_arrays.data[i];
            sb_printf(c, "        const nnc_real *const parts%d[%d] = {%s};\n", pa->k, pa->count, pa->init);
            sb_printf(c, "        rc |= nnc_cuda_upload(m->cuda, d->nnc_parts%d, parts%d, sizeof parts%d);\n", pa->k, pa->k, pa->k);
        }
        sb_puts(c, "    }\n");
    }
    sb_printf(c, "    if (!m->cuda) m->error = \"%s_init: out of memory\";\n    return rc;\n}\n", nm);
    sb_printf(c, "\n/* the device memory back; m can be initialised again */\nvoid %s_free(%s *m)\n{\n    nnc_cuda_close(m->cuda);\n"
                 "    m->cuda = NULL;\n    m->error = NULL;\n}\n", nm, nm);
    sb_printf(c, "\n/* NULL, or the first failure */\nconst char *%s_error(const %s *m)\n{\n    return m->error ? m->error : "
                 "m->cuda ? nnc_cuda_error(m->cuda) : \"%s: not initialised\";\n}\n", nm, nm, nm);
    sb_printf(c, "\n/* bytes of tensor i of the table */\nstatic size_t %s_tensor_bytes(int i)\n{\n", nm);
    sb_printf(c, "    size_t bytes = 4;\n    for (int k = 0; k < %s_tensors[i].rank; k++) bytes *= (size_t)%s_tensors[i].shape[k];\n"
                 "    return bytes;\n}\n", nm, nm);
    sb_printf(c, "\n/* tensor i of the table from the device into host memory: 0 on success */\n"
                 "int %s_get_tensor(%s *m, int i, void *host)\n{\n", nm, nm);
    sb_printf(c, "    if (!m->cuda || i < 0 || i >= %s_num_tensors) return 1;\n", nm);
    sb_printf(c, "    return nnc_cuda_download(m->cuda, host, (char *)nnc_cuda_image(m->cuda) + %s_tensors[i].offset, %s_tensor_bytes(i));\n}\n",
              nm, nm);
    sb_printf(c, "\n/* tensor i of the table from host memory onto the device: 0 on success */\n"
                 "int %s_set_tensor(%s *m, int i, const void *host)\n{\n", nm, nm);
    sb_printf(c, "    if (!m->cuda || i < 0 || i >= %s_num_tensors) return 1;\n", nm);
    sb_printf(c, "    return nnc_cuda_upload(m->cuda, (char *)nnc_cuda_image(m->cuda) + %s_tensors[i].offset, host, %s_tensor_bytes(i));\n}\n",
              nm, nm);
}

/* ---- the header ----------------------------------------------------------------------------------------- */
static void header_(Emit *e, StrBuf *h, const EntryCode *entries, int nentries, int64_t arena_f, int64_t arena_i)
{
    const char *nm = e->mname;
    char up[256];
    emit_upper(up, nm, sizeof up);
    emit_header_prologue(e, h);
    emit_size_defines(e, h, entries, nentries, arena_f, arena_i);
    sb_printf(h, "\ntypedef struct %s %s;\n", nm, nm);
    sb_printf(h, "\n/* the model's handle: its tensors and scratch live on the GPU (docs/cuda.md) */\nstruct %s {\n", nm);
    sb_puts(h, "    struct nnc_cuda *cuda; /* the runtime: device memory, kernels, graphs */\n");
    sb_puts(h, "    const char *error;     /* M_init's failure when there is no runtime to say it */\n};\n\n");
    sb_printf(h, "/* 0 on success; else M_error says why, and every entry point's outputs are NaN. M_free releases the\n"
                 " * device memory: call it before initialising m again (M_init starts from a zeroed struct). */\n");
    sb_printf(h, "int %s_init(%s *m, uint64_t seed);\nvoid %s_free(%s *m);\nconst char *%s_error(const %s *m);\n", nm, nm, nm, nm, nm, nm);
    for (int i = 0; i < nentries; i++) {
        EntryKind k = entries[i].kind;
        if (k == ENTRY_TRAIN) {
            emit_entry_signature(e, h, ENTRY_TRAIN, false, "");
            sb_puts(h, ";\n");
            emit_entry_signature(e, h, ENTRY_TRAIN, true, "_metrics");
        } else {
            emit_entry_signature(e, h, k, k == ENTRY_EVAL, "");
        }
        sb_puts(h, ";\n");
        emit_entry_signature(e, h, k, k != ENTRY_PREDICT, "_device");
        sb_puts(h, ";\n");
    }
    sb_printf(h, "/* tensor i of the table between the device and host memory: 0 on success */\n");
    sb_printf(h, "int %s_get_tensor(%s *m, int i, void *host);\nint %s_set_tensor(%s *m, int i, const void *host);\n", nm, nm, nm, nm);
    sb_printf(h, "extern const nnc_tensor_info %s_tensors[]; /* offset: internal to the device image */\nextern const int %s_num_tensors;\n", nm, nm);
    sb_printf(h, "extern const char *const %s_metric_names[]; /* NUM_METRICS names, then NULL */\n", nm);
    sb_printf(h, "\n#ifdef __cplusplus\n}\n#endif\n#endif /* NNC_MODEL_%s_H */\n", up);
}

/* ---- the JIT shim ------------------------------------------------------------------------------------- */
static void shim_(Emit *e, StrBuf *b, bool has_train, bool has_eval)
{
    const char *nm = e->mname;
    sb_printf(b, "\n/* for nnc train/predict/bench: one calling convention for every model */\n");
    sb_printf(b, "size_t nnc_jit_model_size(void) { return sizeof(struct %s); }\n", nm);
    sb_printf(b, "size_t nnc_jit_image_size(void) { return offsetof(struct %s_image, arena); }\n", nm);
    sb_printf(b, "int nnc_jit_cuda_init(void *m, uint64_t seed) { return %s_init((struct %s *)m, seed); }\n", nm, nm);
    sb_printf(b, "void nnc_jit_cuda_free(void *m) { %s_free((struct %s *)m); }\n", nm, nm);
    sb_printf(b, "const char *nnc_jit_cuda_error(void *m) { return %s_error((struct %s *)m); }\n", nm, nm);
    sb_printf(b, "const char *nnc_jit_cuda_device(void *m)\n{\n    struct %s *x = m;\n"
                 "    return x->cuda ? nnc_cuda_device_name(x->cuda) : \"\";\n}\n", nm);
    sb_printf(b, "int nnc_jit_cuda_pull(void *m, void *image)\n{\n    struct %s *x = m;\n"
                 "    return !x->cuda || nnc_cuda_download(x->cuda, image, nnc_cuda_image(x->cuda), offsetof(struct %s_image, arena));\n}\n",
              nm, nm);
    sb_printf(b, "int nnc_jit_cuda_push(void *m, const void *image)\n{\n    struct %s *x = m;\n"
                 "    return !x->cuda || nnc_cuda_upload(x->cuda, nnc_cuda_image(x->cuda), image, offsetof(struct %s_image, arena));\n}\n",
              nm, nm);
    emit_shim_calls(e, b, has_train, has_eval);
}

/* ---- the whole file --------------------------------------------------------------------------------------- */
void emit_cuda_model(const Target *t, Model *m, EntryCode *entries, int nentries, const EmitOptions *opt, char **c_out,
                     char **h_out)
{
    Emit e = {.m = m, .opt = opt, .t = t, .gpu = true};
    emit_names_init(&e);
    e.has_rng = emit_needs_rng(t, entries, nentries);
    e.flash = arena_alloc(m->arena, sizeof(bool) * (size_t)(m->tensors.len + 1));
    StrBuf entry_code = {0};
    int64_t arena_f = 0, arena_i = 0;
    bool has_train = false, has_eval = false;
    for (int i = 0; i < nentries; i++) {
        if (entries[i].plan->arena_f > arena_f) arena_f = entries[i].plan->arena_f;
        if (entries[i].plan->arena_i > arena_i) arena_i = entries[i].plan->arena_i;
        has_train |= entries[i].kind == ENTRY_TRAIN;
        has_eval |= entries[i].kind == ENTRY_EVAL;
        emit_entry(&e, &entry_code, &entries[i]);
    }
    StrBuf init = {0};
    emit_init(&e, &init, arena_printf(m->arena, "static void %s_init_image(struct %s_image *m, uint64_t seed)", e.mname, e.mname));
    StrBuf src = {0};
    kernel_source_(&e, &src);
    StrBuf h = {0}, c = {0};
    sb_puts(&h, "/* ");
    sb_c_comment(&h, opt->h_name ? opt->h_name : "model.h");
    emit_file_comment(&h, opt);
    sb_puts(&h, "\n */\n");
    header_(&e, &h, entries, nentries, arena_f, arena_i);
    sb_puts(&c, "/*");
    emit_file_comment(&c, opt);
    sb_printf(&c, "\n *\n * model %s for CUDA: %d kernels (the source below), launched by the entry points' record functions\n"
                  " * and replayed as one CUDA graph per call; scratch %" PRId64 " bytes of device memory. docs/cuda.md.\n */\n",
              e.mname, e.kseq, (arena_f * 4 + arena_i * 4));
    if (opt->amalgamate || !emit_header_name_ok(opt->h_name)) sb_puts(&c, h.s); /* a name #include cannot spell */
    else sb_printf(&c, "#include \"%s\"\n", opt->h_name);
    sb_puts(&c, "\n#include <math.h>\n#include <stdlib.h>\n#include <string.h>\n");
    sb_puts(&c, runtime_decls_);
    image_struct_(&e, &c, arena_f, arena_i);
    io_struct_(&e, &c);
    StrBuf host = {0}; /* what may call a helper on the host: the initialisers */
    if (e.consts.len) sb_printf(&host, "\n%s", e.consts.s);
    sb_puts(&host, init.s);
    emit_helpers(&c, host.s);
    sb_puts(&c, host.s);
    source_lines_(&e, &c, src.s);
    init_fns_(&e, &c, nentries);
    sb_puts(&c, entry_code.s ? entry_code.s : "");
    emit_table(&e, &c, arena_printf(m->arena, "%s_image", e.mname));
    if (opt->jit_shim) shim_(&e, &c, has_train, has_eval);
    if (opt->kernel_source) *opt->kernel_source = sb_take(&src);
    *c_out = emit_fix_line_directives(sb_take(&c));
    *h_out = sb_take(&h);
    sb_free(&src);
    sb_free(&host);
    sb_free(&init);
    sb_free(&entry_code);
    sb_free(&e.kernels);
    sb_free(&e.consts);
    for (int i = 0; i < e.seen.len; i++) free(e.seen.data[i].key);
    vec_free(&e.seen);
    vec_free(&e.bufs);
    vec_free(&e.knames);
    vec_free(&e.knargs);
    vec_free(&e.kcoop);
    vec_free(&e.const_arrays);
    vec_free(&e.parts_arrays);
    sb_free(&e.body);
}
