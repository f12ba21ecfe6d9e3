/* emit_c.c: the generated C around the kernels: the header (struct, prototypes, sizes), the helpers, the
 * constants, `M_init`, the entry points that call the kernels, the tensor table, and for in-process use
 * a small shim with one signature for every model.
 *
 * Output is byte-identical for identical input: no pointers, times or hash orders reach the text.
 * Float constants are hex floats with the decimal in a comment.
 */
#include "emit.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define A_ (e->m->arena)

static const char *const entry_upper_[ENTRY_COUNT] = {"PREDICT", "EVAL", "TRAIN_STEP"};

/* ---- C spelling -------------------------------------------------------------------------------------- */
const char *c_type(DType t) { return t == DT_I32 ? "int32_t" : "nnc_real"; }

const char *c_batch(Emit *e) { return e->static_batch ? "1" : "n"; }

char *c_extent(Emit *e, Extent x)
{
    if (!x.batch || e->static_batch) return arena_printf(A_, "%" PRId64, x.per);
    return x.per == 1 ? "n" : arena_printf(A_, "n * %" PRId64, x.per);
}

char *c_dim(Emit *e, int64_t d) { return c_extent(e, extent_dim(d)); }

char *c_count(Emit *e, Shape s) { return c_extent(e, extent_count(s)); }

char *c_add(Emit *e, const char *a, const char *b)
{
    if (str_eq(b, "0")) return (char *)a;
    if (str_eq(a, "0")) return (char *)b;
    return arena_printf(A_, "%s + %s", a, b);
}

char *c_float(Emit *e, double v)
{
    char buf[96];
    fmt_float_c(buf, sizeof buf, (float)v, true);
    return arena_strdup(A_, buf);
}

char *c_literal(Emit *e, int id)
{
    Value *v = &e->g->v[id];
    if (v->dtype == DT_I32) return arena_printf(A_, "%d", v->attr.data ? *(const int32_t *)v->attr.data : (int)v->attr.f[0]);
    return c_float(e, v->attr.data ? *(const float *)v->attr.data : v->attr.f[0]);
}

/* Every name from the model file that reaches C as an identifier goes through c_ident (util.c): the
 * model's name, each tensor's struct member, each input, target and output parameter. */
void emit_names_init(Emit *e)
{
    Model *m = e->m;
    e->mname = c_ident(A_, m->name, C_ID_MODEL);
    NameMap members = {0}, params = {0};
    e->member = arena_alloc(A_, sizeof(char *) * (size_t)(m->tensors.len + 1));
    for (int i = 0; i < m->tensors.len; i++)
        e->member[i] = name_set_unique(&members, A_, c_ident(A_, m->tensors.data[i].name, C_ID_MEMBER));
    e->in_name = arena_alloc(A_, sizeof(char *) * (size_t)(m->inputs.len + 1));
    e->tgt_name = arena_alloc(A_, sizeof(char *) * (size_t)(m->targets.len + 1));
    e->out_name = arena_alloc(A_, sizeof(char *) * (size_t)(m->outputs.len + 1));
    for (int i = 0; i < m->inputs.len; i++)
        e->in_name[i] = name_set_unique(&params, A_, c_ident(A_, m->inputs.data[i].name, C_ID_PARAM));
    for (int i = 0; i < m->targets.len; i++)
        e->tgt_name[i] = name_set_unique(&params, A_, c_ident(A_, m->targets.data[i].name, C_ID_PARAM));
    for (int k = 0; k < m->outputs.len; k++) { /* an output that rebinds an input's name: name_out */
        const char *name = m->outputs.data[k].name;
        for (int i = 0; i < m->inputs.len; i++)
            if (str_eq(m->inputs.data[i].name, name)) name = arena_printf(A_, "%s_out", name);
        e->out_name[k] = name_set_unique(&params, A_, c_ident(A_, name, C_ID_PARAM));
    }
    namemap_free(&members);
    namemap_free(&params);
}

static const char *io_name_(Emit *e, int id)
{
    Value *v = &e->g->v[id];
    return v->attr.i[0] ? e->tgt_name[v->tensor] : e->in_name[v->tensor];
}

/* the const array of model tensor t kept in flash (e->flash[t]) */
static char *flash_array_(Emit *e, int t) { return arena_printf(A_, "nnc_w_%s", e->member[t]); }

/* a static const array for a constant, made on first use; a firmware tensor's own const array when the
 * constant is that tensor (pass_const_tensors) */
static const char *const_array_(Emit *e, int id)
{
    if (e->g->v[id].tensor >= 0 && e->flash[e->g->v[id].tensor]) return flash_array_(e, e->g->v[id].tensor);
    if (e->const_id[id] < 0) {
        Value *v = &e->g->v[id];
        int64_t count = shape_count(v->shape, 1);
        int k = e->const_id[id] = e->nconst++;
        e->const_bytes += count * 4;
        struct ConstArray ca = {.k = k, .count = count, .dtype = v->dtype};
        vec_push(&e->const_arrays, ca);
        sb_printf(&e->consts, "static const %s nnc_c%d[%" PRId64 "] = {", c_type(v->dtype), k, count);
        for (int64_t i = 0; i < count; i++) {
            sb_puts(&e->consts, i % 4 == 0 ? "\n    " : " ");
            if (v->dtype == DT_I32)
                sb_printf(&e->consts, "%d,", v->attr.data ? ((const int32_t *)v->attr.data)[i] : (int)v->attr.f[0]);
            else
                sb_printf(&e->consts, "%s,", c_float(e, v->attr.data ? ((const float *)v->attr.data)[i] : v->attr.f[0]));
        }
        sb_puts(&e->consts, "\n};\n");
    }
    return arena_printf(A_, "nnc_c%d", e->const_id[id]);
}

/* the local pointer of arena value `base`: the value's name in the model if it has one, else t<id>_<op>,
 * made an identifier that no parameter, keyword or other local of the entry function is */
static const char *arena_name_(Emit *e, int base)
{
    if (!e->buf_name[base]) {
        Value *v = &e->g->v[base];
        const char *want = v->name ? v->name : arena_printf(A_, "t%d_%s", base, op_info[v->op].name);
        e->buf_name[base] = name_set_unique(&e->locals, A_, c_ident(A_, want, C_ID_PARAM));
        vec_push(&e->bufs, base);
    }
    return e->buf_name[base];
}

char *c_buffer(Emit *e, int id)
{
    if (id == -1) {
        e->uses_m = true;
        return e->gpu ? "d->rng" : "m->rng";
    }
    Buffer b = kernel_buffer(e->m, e->p, id);
    switch (b.space) {
    case SPACE_ARENA: return (char *)arena_name_(e, b.value);
    case SPACE_INPUT:
        if (b.target) e->tgt_used[b.index] = true;
        else e->in_used[b.index] = true;
        return e->gpu ? arena_printf(A_, "io->%s", io_name_(e, b.value)) : (char *)io_name_(e, b.value);
    case SPACE_PARAM:
    case SPACE_STATE:
        if (e->flash[b.tensor]) return flash_array_(e, b.tensor);
        e->uses_m = true;
        return arena_printf(A_, "%s->%s", e->gpu ? "d" : "m", e->member[b.tensor]);
    case SPACE_CONST: return e->gpu ? arena_printf(A_, "d->%s", const_array_(e, b.value)) : (char *)const_array_(e, b.value);
    }
    NNC_UNREACHABLE();
}

bool entry_increment(Emit *e, int id)
{
    Value *v = &e->g->v[id];
    if (e->gpu) return false; /* the step counter lives on the device: a kernel adds to it */
    if (v->op != OP_ADD || v->nin != 2 || shape_batched(v->shape) || shape_count(v->shape, 1) != 1) return false;
    const Store *out = &e->p->store[plan_base(e->p, id)];
    if (out->kind != SK_TENSOR) return false;
    int self = -1, lit = -1;
    for (int k = 0; k < 2; k++) {
        int base = plan_base(e->p, v->in[k]);
        const Store *s = &e->p->store[base];
        if (s->kind == SK_TENSOR && s->tensor == out->tensor && self < 0) self = k;
        else if (s->kind == SK_CONST && shape_count(e->g->v[base].shape, 1) == 1) lit = base;
    }
    if (self < 0 || lit < 0) return false;
    e->uses_m = true;
    sb_printf(&e->body, "    m->%s[0] += %s;\n", e->member[out->tensor], c_literal(e, lit));
    return true;
}

/* ---- kernels ------------------------------------------------------------------------------------------ */
void kargs_add(Emit *e, KArgs *a, const char *name, int id, bool out)
{
    NNC_ASSERT(a->n < MAX_KARGS);
    a->name[a->n] = name;
    a->id[a->n] = id;
    a->out[a->n] = out;
    a->n++;
    /* the kernel takes the batch n when a value it touches has the batch axis, or it computes a value
     * that reads n itself (F_BATCHDEP: batch_size) */
    if (id >= 0 && (shape_batched(e->g->v[id].shape) || (out && op_has(e->g->v[id].op, F_BATCHDEP)))) a->batched = true;
}

static bool shares_memory_(Emit *e, const KArgs *a, int k)
{
    if (a->id[k] < 0) return false;
    for (int j = 0; j < a->n; j++)
        if (j != k && a->id[j] >= 0 && (a->out[j] || a->out[k]) && plan_same_memory(e->p, a->id[j], a->id[k]))
            return true;
    return false;
}

static const char *param_type_(Emit *e, const KArgs *a, int k)
{
    if (a->id[k] == -1) return "uint32_t *";
    if (a->id[k] == -2) return e->gpu ? "const nnc_real *const *NNC_RESTRICT " : "const nnc_real *const *";
    const char *ty = c_type(e->g->v[a->id[k]].dtype);
    const char *rs = shares_memory_(e, a, k) ? "" : arena_printf(A_, "%s ", e->t->restrict_kw);
    return arena_printf(A_, "%s%s *%s", a->out[k] ? "" : "const ", ty, rs);
}

static void shape_note_(Emit *e, StrBuf *b, int id)
{
    char buf[96];
    Value *v = &e->g->v[id];
    sb_printf(b, "%s%s", dtype_name(v->dtype), shape_str(v->shape, buf, sizeof buf));
}

/* #line "PATH" is a string literal: none when a path is longer than C99 lets one be */
static bool line_directives_(Emit *e)
{
    return e->opt->line_directives && c_string_fits(e->opt->model_path) && c_string_fits(e->opt->c_path);
}

void kernel_begin(Emit *e, int id, const char *op, const KArgs *a)
{
    Value *v = &e->g->v[id];
    int k = ++e->kseq;
    e->cur = *a;
    e->cur_id = id;
    e->cur_op = op;
    e->cur_k = k;
    StrBuf *b = &e->kernels;
    e->cur_start = b->len;
    const Source *src = source_get(v->loc.src);
    sb_printf(b, "\n/* k%d %s", k, op);
    if (v->name) {
        sb_puts(b, "  ");
        sb_c_comment(b, v->name);
    }
    sb_puts(b, ": ");
    for (int i = 1; i < a->n; i++) {
        if (a->id[i] < 0) continue;
        if (i > 1) sb_puts(b, ", ");
        shape_note_(e, b, a->id[i]);
    }
    sb_puts(b, " -> ");
    shape_note_(e, b, id);
    if (src) sb_printf(b, "  (line %d)", v->loc.line);
    sb_puts(b, " */\n");
    sb_printf(b, "%s k%d", e->t->kernel_prefix, k);
    e->cur_name_end = b->len;
    sb_printf(b, "_%s(", op);
    bool first = true;
    if (a->batched && !e->static_batch) {
        sb_puts(b, e->gpu ? "const int *NNC_RESTRICT nn" : "int n");
        first = false;
    }
    if (e->gpu) {
        e->cur_parallel = false;
        e->cur_work = 1;
        e->cur_blocks = 0;
        e->cur_coop = false;
        e->cur_serial = false;
        vec_push(&e->knames, arena_printf(A_, "k%d_%s", k, op));
        vec_push(&e->knargs, a->n + (a->batched ? 1 : 0));
    }
    for (int i = 0; i < a->n; i++) {
        const char *ty = param_type_(e, a, i);
        size_t tl = strlen(ty);
        sb_printf(b, "%s%s%s%s", first ? "" : ", ", ty, ty[tl - 1] == '*' || ty[tl - 1] == ' ' ? "" : " ", a->name[i]);
        first = false;
    }
    if (first) sb_puts(b, "void");
    sb_puts(b, ")\n{\n");
    e->cur_line = b->len;
    if (line_directives_(e) && src) {
        sb_printf(b, "#line %d ", v->loc.line);
        sb_c_string(b, e->opt->model_path);
        sb_putc(b, '\n');
    }
    e->cur_body = b->len;
}

/* A kernel whose signature and body equal an earlier one's, its number and the #line to the model aside,
 * is not written again: the entry points and the layers that compute alike share one kernel. */
/* false when the kernel just written repeats an earlier one: its text is dropped and the call uses that one */
static bool kernel_dedup_(Emit *e)
{
    StrBuf *b = &e->kernels;
    StrBuf key = {0};
    sb_printf(&key, "%.*s", (int)(e->cur_line - e->cur_name_end), b->s + e->cur_name_end);
    sb_puts(&key, b->s + e->cur_body);
    uint64_t h = str_hash(key.s);
    for (int i = 0; i < e->seen.len; i++)
        if (e->seen.data[i].hash == h && strcmp(e->seen.data[i].key, key.s) == 0) {
            e->cur_k = e->seen.data[i].k;
            b->len = e->cur_start;
            b->s[b->len] = 0;
            e->kseq--;
            if (e->gpu) e->knames.len--, e->knargs.len--, e->kcoop.len--;
            sb_free(&key);
            return false;
        }
    struct KernelKey kk = {.hash = h, .key = sb_take(&key), .k = e->cur_k};
    vec_push(&e->seen, kk);
    return true;
}

/* text inserted into b at byte `at` */
static void sb_insert_(StrBuf *b, size_t at, const char *text)
{
    char *tail = xstrdup(b->s + at);
    int lines = b->lines;
    b->len = at;
    b->s[at] = 0;
    sb_puts(b, text);
    sb_puts(b, tail);
    for (const char *p = text; *p; p++) lines += *p == '\n';
    b->lines = lines;
    free(tail);
}

/* CUDA: the batch from the io block, and a kernel that is not parallel runs on its grid's first thread */
static void gpu_kernel_prologue_(Emit *e)
{
    StrBuf pro = {0};
    if (e->cur.batched) sb_puts(&pro, "    const int n = *nn;\n");
    if (!e->cur_parallel) sb_puts(&pro, "    if (blockIdx.x != 0 || threadIdx.x != 0) return; /* one thread */\n");
    if (pro.len) sb_insert_(&e->kernels, e->cur_body, pro.s);
    sb_free(&pro);
}

/* CUDA: threads per block and blocks of the launch: a parallel kernel's grid-stride loop covers its work
 * items with at most 256 threads a block and 4096 blocks (later blocks would only loop again) */
static void gpu_launch_shape_(Emit *e, int64_t *grid, int64_t *block)
{
    if (!e->cur_parallel) {
        *grid = *block = 1;
        return;
    }
    if (e->cur_blocks > 0) {
        *block = 256;
        *grid = e->cur_blocks > 4096 ? 4096 : e->cur_blocks;
        return;
    }
    int64_t work = e->cur_work < 1 ? 1 : e->cur_work;
    *block = work >= 256 ? 256 : (work + 31) / 32 * 32;
    *grid = (work + *block - 1) / *block;
    if (*grid > 4096) *grid = 4096;
}

/* CUDA: the device address of value id as M_init can write it (d the image, io the io block) */
static char *gpu_address_(Emit *e, int id)
{
    Buffer b = kernel_buffer(e->m, e->p, id);
    switch (b.space) {
    case SPACE_ARENA:
        return arena_printf(A_, "d->%s + %" PRId64, e->g->v[b.value].dtype == DT_I32 ? "arena_i" : "arena", b.offset);
    case SPACE_INPUT: return arena_printf(A_, "io->%s", io_name_(e, b.value));
    case SPACE_PARAM:
    case SPACE_STATE: return arena_printf(A_, "d->%s", e->member[b.tensor]);
    case SPACE_CONST: return arena_printf(A_, "d->%s", const_array_(e, b.value));
    }
    NNC_UNREACHABLE();
}

/* CUDA: the launch in the record function */
static void gpu_kernel_call_(Emit *e, const KArgs *a)
{
    StrBuf *body = &e->body;
    int64_t grid, block;
    gpu_launch_shape_(e, &grid, &block);
    int parts = -1;
    for (int i = 0; i < a->n; i++)
        if (a->id[i] == -2) parts = i;
    if (parts >= 0) { /* more inputs than a signature takes: their device addresses, in the image by M_init */
        Value *v = &e->g->v[e->cur_id];
        StrBuf init = {0};
        for (int i = 0; i < v->nin; i++) sb_printf(&init, "%s%s", i ? ", " : "", gpu_address_(e, v->in[i]));
        struct PartsArray pa = {.k = e->parts_arrays.len, .count = v->nin, .init = arena_strdup(A_, init.s)};
        sb_free(&init);
        vec_push(&e->parts_arrays, pa);
    }
    sb_indent(body, 1);
    sb_printf(body, "nnc_cuda_launch(c, %d, %" PRId64 ", %" PRId64 ", 0, (void *const[]){", e->cur_k - 1, grid, block);
    int nargs = 0;
    if (a->batched) {
        sb_puts(body, "nn");
        nargs++;
    }
    for (int i = 0; i < a->n; i++, nargs++) {
        const char *arg = a->id[i] == -2 ? arena_printf(A_, "d->nnc_parts%d", e->parts_arrays.len - 1) : c_buffer(e, a->id[i]);
        sb_printf(body, "%s%s", nargs ? ", " : "", arg);
    }
    sb_printf(body, "}, %d); /* k%d_%s */\n", nargs, e->cur_k, e->cur_op);
}

/* closes the kernel and writes its call into the entry function */
void kernel_end(Emit *e)
{
    StrBuf *b = &e->kernels;
    const KArgs *a = &e->cur;
    if (e->gpu) {
        gpu_kernel_prologue_(e);
        vec_push(&e->kcoop, e->cur_coop);
    }
    sb_puts(b, "}\n");
    /* the #line back to the .c only after a kernel that was written (a repeat of the kernel just before it
     * has the same number as the newest, and must not add a second) */
    if (kernel_dedup_(e) && line_directives_(e) && source_get(e->g->v[e->cur_id].loc.src)) {
        sb_puts(b, "#line @@ ");
        sb_c_string(b, e->opt->c_path);
        sb_putc(b, '\n');
    }
    if (e->gpu) {
        gpu_kernel_call_(e, a);
        return;
    }
    bool parts = false;
    for (int i = 0; i < a->n; i++) parts |= a->id[i] == -2;
    int indent = 1;
    if (parts) { /* more inputs than a signature takes: an array of pointers */
        Value *v = &e->g->v[e->cur_id];
        sb_printf(&e->body, "    {\n        const nnc_real *nnc_parts[%d] = {", v->nin);
        for (int k = 0; k < v->nin; k++) sb_printf(&e->body, "%s%s", k ? ", " : "", c_buffer(e, v->in[k]));
        sb_puts(&e->body, "};\n");
        indent = 2;
    }
    sb_indent(&e->body, indent);
    sb_printf(&e->body, "k%d_%s(", e->cur_k, e->cur_op);
    bool first = true;
    if (a->batched && !e->static_batch) {
        sb_puts(&e->body, "n");
        first = false;
    }
    for (int i = 0; i < a->n; i++) {
        sb_printf(&e->body, "%s%s", first ? "" : ", ", a->id[i] == -2 ? "nnc_parts" : c_buffer(e, a->id[i]));
        first = false;
    }
    sb_puts(&e->body, ");\n");
    if (parts) sb_puts(&e->body, "    }\n");
}

/* ---- helpers in the generated file -------------------------------------------------------------------- */
/* Each helper is written only when the code uses it (or a helper that needs it): no unused functions.
 * The helpers of elementwise ops (nnc_relu, nnc_sigmoid...) come from ops.def (emit_scalar.c), these from
 * the table below. */
typedef struct Helper {
    const char *name; /* as called: "nnc_relu(" */
    const char *needs;
    const char *code;
} Helper;

static const Helper helpers_[] = {
    {"nnc_rotl(", NULL,
     "/* xoshiro128** seeded by splitmix64: one generator for init and dropout, its state in the struct */\n"
     "static uint32_t nnc_rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }\n"},
    {"nnc_next(", "nnc_rotl(",
     "static uint32_t nnc_next(uint32_t *s)\n{\n"
     "    const uint32_t r = nnc_rotl(s[1] * 5, 7) * 9, t = s[1] << 9;\n"
     "    s[2] ^= s[0];\n    s[3] ^= s[1];\n    s[1] ^= s[2];\n    s[0] ^= s[3];\n    s[2] ^= t;\n"
     "    s[3] = nnc_rotl(s[3], 11);\n    return r;\n}\n"},
    {"nnc_rand_uniform(", "nnc_next(",
     "/* uniform in [0, 1) with 24 random bits */\n"
     "static nnc_real nnc_rand_uniform(uint32_t *s) { return (nnc_real)(nnc_next(s) >> 8) * (nnc_real)0x1p-24; }\n"},
    {"nnc_rand_normal(", "nnc_rand_uniform(",
     "/* standard normal by Box-Muller */\n"
     "static nnc_real nnc_rand_normal(uint32_t *s)\n{\n"
     "    const nnc_real u1 = ((nnc_real)(nnc_next(s) >> 8) + 1) * (nnc_real)0x1p-24;\n"
     "    const nnc_real u2 = nnc_rand_uniform(s);\n"
     "    return sqrt(-2 * log(u1)) * cos((nnc_real)6.283185307179586 * u2);\n}\n"},
    {"nnc_rand_truncated(", "nnc_rand_normal(",
     "/* standard normal redrawn outside two standard deviations */\n"
     "static nnc_real nnc_rand_truncated(uint32_t *s)\n{\n"
     "    nnc_real z;\n    do z = nnc_rand_normal(s);\n    while (z < -2 || z > 2);\n    return z;\n}\n"},
    {"nnc_seed(", NULL,
     "static void nnc_seed(uint32_t *s, uint64_t seed)\n{\n"
     "    for (int i = 0; i < 4; i += 2) {\n"
     "        uint64_t z = (seed += 0x9e3779b97f4a7c15u);\n"
     "        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;\n"
     "        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;\n"
     "        z ^= z >> 31;\n"
     "        s[i] = (uint32_t)z;\n        s[i + 1] = (uint32_t)(z >> 32);\n    }\n"
     "    if (!(s[0] | s[1] | s[2] | s[3])) s[0] = 1;\n}\n"},
};

enum { NHELPERS = sizeof helpers_ / sizeof helpers_[0] };

static void helper_mark_(bool *used, const char *name)
{
    for (int i = 0; i < NHELPERS; i++)
        if (str_eq(helpers_[i].name, name) && !used[i]) {
            used[i] = true;
            if (helpers_[i].needs) helper_mark_(used, helpers_[i].needs);
        }
}

static bool ident_char_(char c) { return c == '_' || isalnum((unsigned char)c); }

/* the helpers `code` calls, in table order (each after what it needs); names in comments do not count */
void emit_helpers(StrBuf *b, const char *code)
{
    bool used[NHELPERS] = {0}, used_op[OP_COUNT] = {0};
    for (const char *p = code; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (!end) break;
            p = end + 1;
            continue;
        }
        if (p[0] != 'n' || strncmp(p, "nnc_", 4) != 0 || (p > code && ident_char_(p[-1]))) continue;
        for (int i = 0; i < NHELPERS; i++)
            if (strncmp(p, helpers_[i].name, strlen(helpers_[i].name)) == 0) helper_mark_(used, helpers_[i].name);
        for (int op = 0; op < OP_COUNT; op++) {
            size_t len = strlen(op_info[op].name);
            used_op[op] |= op_info[op].scalar_fn && strncmp(p + 4, op_info[op].name, len) == 0 && p[4 + len] == '(';
        }
    }
    for (int op = 0; op < OP_COUNT; op++)
        if (used_op[op]) c_scalar_helper(b, (OpKind)op);
    for (int i = 0; i < NHELPERS; i++)
        if (used[i]) sb_puts(b, helpers_[i].code);
}

/* ---- init ---------------------------------------------------------------------------------------------- */
static void fans_(Shape s, double *fan_in, double *fan_out)
{
    if (s.rank == 0) {
        *fan_in = *fan_out = 1;
    } else if (s.rank == 1) {
        *fan_in = *fan_out = (double)s.d[0];
    } else {
        double rf = 1;
        for (int i = 0; i < s.rank - 2; i++) rf *= (double)s.d[i];
        *fan_in = (double)s.d[s.rank - 2] * rf;
        *fan_out = (double)s.d[s.rank - 1] * rf;
    }
}

static const char *init_name_(InitKind k)
{
    static const char *names[] = {"zeros", "ones", "constant", "normal", "uniform", "glorot_uniform", "glorot_normal",
                                  "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "kaiming_uniform", "values"};
    return names[k];
}

/* one tensor's initialiser; the truncated normals are scaled as Keras's (std / 0.8796) */
static void emit_init_tensor_(Emit *e, StrBuf *b, const Tensor *t)
{
    int64_t count = shape_count(t->shape, 1);
    double fi, fo;
    fans_(t->shape, &fi, &fo);
    char sh[96];
    sb_puts(b, "    /* ");
    sb_c_comment(b, t->name);
    sb_printf(b, " %s: %s */\n", shape_str(t->shape, sh, sizeof sh), init_name_(t->init.kind));
    const char *member = e->member[t - e->m->tensors.data];
    const char *dst = arena_printf(A_, "m->%s[i]", member);
    const char *rng = e->has_rng ? "m->rng" : "rng";
    const double trunc = 0.87962566103423978;
    const char *loop = arena_printf(A_, "    for (int i = 0; i < %" PRId64 "; i++) ", count);
    switch (t->init.kind) {
    case INIT_ZEROS: sb_puts(b, "    /* (memset above) */\n"); break;
    case INIT_ONES: sb_printf(b, "%s%s = 1;\n", loop, dst); break;
    case INIT_CONSTANT: sb_printf(b, "%s%s = %s;\n", loop, dst, c_float(e, t->init.a)); break;
    case INIT_NORMAL:
        sb_printf(b, "%s%s = %s + %s * nnc_rand_normal(%s);\n", loop, dst, c_float(e, t->init.a), c_float(e, t->init.b), rng);
        break;
    case INIT_UNIFORM:
    case INIT_GLOROT_UNIFORM:
    case INIT_HE_UNIFORM:
    case INIT_LECUN_UNIFORM:
    case INIT_KAIMING_UNIFORM: {
        double lo = t->init.a, hi = t->init.b;
        if (t->init.kind == INIT_GLOROT_UNIFORM) hi = sqrt(6 / (fi + fo)), lo = -hi;
        if (t->init.kind == INIT_HE_UNIFORM) hi = sqrt(6 / fi), lo = -hi;
        if (t->init.kind == INIT_LECUN_UNIFORM) hi = sqrt(3 / fi), lo = -hi;
        if (t->init.kind == INIT_KAIMING_UNIFORM) hi = sqrt(6 / ((1 + t->init.a * t->init.a) * fi)), lo = -hi;
        sb_printf(b, "%s%s = %s + %s * nnc_rand_uniform(%s);\n", loop, dst, c_float(e, lo), c_float(e, hi - lo), rng);
        break;
    }
    case INIT_GLOROT_NORMAL:
    case INIT_HE_NORMAL:
    case INIT_LECUN_NORMAL: {
        double var = t->init.kind == INIT_GLOROT_NORMAL ? 2 / (fi + fo) : t->init.kind == INIT_HE_NORMAL ? 2 / fi : 1 / fi;
        sb_printf(b, "%s%s = %s * nnc_rand_truncated(%s);\n", loop, dst, c_float(e, sqrt(var) / trunc), rng);
        break;
    }
    case INIT_VALUES: {
        e->const_bytes += count * 4;
        sb_printf(b, "    {\n        static const nnc_real v[%" PRId64 "] = {", count);
        for (int64_t i = 0; i < count; i++) sb_printf(b, "%s%s", i ? ", " : "", c_float(e, t->init.values[i]));
        sb_printf(b, "};\n        memcpy(m->%s, v, sizeof v);\n    }\n", member);
        break;
    }
    }
}

void emit_init(Emit *e, StrBuf *b, const char *signature)
{
    Model *m = e->m;
    sb_printf(b, "\n/* parameters and state from their initialisers; optimizer state, gradients and scratch zero */\n");
    if (signature) sb_printf(b, "%s\n{\n", signature);
    else sb_printf(b, "void %s_init(%s *m, uint64_t seed)\n{\n", e->mname, e->mname);
    sb_puts(b, "    memset(m, 0, sizeof *m);\n");
    bool random = false; /* an initialiser draws from the generator */
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = &m->tensors.data[i];
        random |= (t->kind == TK_PARAM || t->kind == TK_STATE) && !e->flash[i] && t->init.kind >= INIT_NORMAL &&
                  t->init.kind != INIT_VALUES;
    }
    if (e->has_rng) sb_puts(b, "    nnc_seed(m->rng, seed);\n");
    else if (random) sb_puts(b, "    uint32_t rng[4]; /* the generator of the initialisers */\n    nnc_seed(rng, seed);\n");
    else sb_puts(b, "    (void)seed;\n");
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = &m->tensors.data[i];
        if (e->flash[i]) sb_printf(b, "    /* %s: const, read in place */\n", e->member[i]);
        else if (t->kind == TK_PARAM || t->kind == TK_STATE) emit_init_tensor_(e, b, t);
    }
    sb_puts(b, "}\n");
}

/* ---- entry points ------------------------------------------------------------------------------------------ */
void emit_entry_signature(Emit *e, StrBuf *b, EntryKind k, bool with_metrics, const char *suffix)
{
    Model *m = e->m;
    const char *ret = k == ENTRY_PREDICT ? "void" : "nnc_real";
    sb_printf(b, "%s %s_%s%s(%s *m, int n", ret, e->mname, entry_names[k], suffix, e->mname);
    for (int i = 0; i < m->inputs.len; i++)
        sb_printf(b, ", const %s *%s", c_type(m->inputs.data[i].dtype), e->in_name[i]);
    if (k == ENTRY_PREDICT) {
        for (int i = 0; i < m->outputs.len; i++)
            sb_printf(b, ", %s *%s", c_type(m->outputs.data[i].dtype), e->out_name[i]);
    } else {
        for (int i = 0; i < m->targets.len; i++)
            sb_printf(b, ", const %s *%s", c_type(m->targets.data[i].dtype), e->tgt_name[i]);
    }
    if (with_metrics) sb_puts(b, ", nnc_real *metrics");
    sb_puts(b, ")");
}

static char *c_scalar_(Emit *e, int id)
{
    Store *s = &e->p->store[plan_base(e->p, id)];
    if (s->kind == SK_CONST && s->literal) return c_literal(e, id);
    return arena_printf(A_, "%s[0]", c_buffer(e, id));
}

/* CUDA: the 32 bits of literal constant id (a float's or an int32's), as nnc_cuda_fill writes them */
static uint32_t literal_bits_(Emit *e, int id)
{
    const Value *v = &e->g->v[plan_base(e->p, id)];
    uint32_t bits;
    if (v->dtype == DT_I32) {
        int32_t x = v->attr.data ? *(const int32_t *)v->attr.data : (int32_t)v->attr.f[0];
        memcpy(&bits, &x, sizeof bits);
    } else {
        float x = v->attr.data ? *(const float *)v->attr.data : (float)v->attr.f[0];
        memcpy(&bits, &x, sizeof bits);
    }
    return bits;
}

static void emit_assigns_(Emit *e, StrBuf *b)
{
    /* values read straight from model tensors are copied first, before any tensor is overwritten */
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < e->p->nassigns; k++) {
            Value *v = &e->g->v[e->p->assigns[k]];
            int src = v->in[0];
            Store *s = &e->p->store[plan_base(e->p, src)];
            if ((s->kind == SK_TENSOR) != (pass == 0)) continue;
            if (s->kind == SK_TENSOR && s->tensor == v->tensor) continue; /* computed in place */
            const Tensor *t = &e->m->tensors.data[v->tensor];
            int64_t count = shape_count(t->shape, 1);
            e->uses_m = true;
            const char *mem = e->member[v->tensor];
            bool literal = s->kind == SK_CONST && s->literal;
            if (e->gpu && literal) /* CUDA: device memory, written by graph nodes */
                sb_printf(b, "    nnc_cuda_fill(c, d->%s, 0x%08" PRIx32 "u, %" PRId64 "); /* %s */\n", mem, literal_bits_(e, src), count,
                          c_literal(e, src));
            else if (e->gpu)
                sb_printf(b, "    nnc_cuda_copy(c, d->%s, %s, sizeof d->%s);\n", mem, c_buffer(e, src), mem);
            else if (literal)
                sb_printf(b, "    for (int i = 0; i < %" PRId64 "; i++) m->%s[i] = %s;\n", count, mem, c_literal(e, src));
            else
                sb_printf(b, "    memcpy(m->%s, %s, sizeof m->%s);\n", mem, c_buffer(e, src), mem);
        }
}

/* (void)x; for a parameter the code never reads: an identity model's m, an input no output needs */
static void unused_params_(Emit *e, StrBuf *b, EntryKind k)
{
    if (!e->uses_m) sb_puts(b, "    (void)m;\n");
    for (int i = 0; i < e->m->inputs.len; i++)
        if (!e->in_used[i]) sb_printf(b, "    (void)%s;\n", e->in_name[i]);
    for (int i = 0; i < e->m->targets.len && k != ENTRY_PREDICT; i++)
        if (!e->tgt_used[i]) sb_printf(b, "    (void)%s;\n", e->tgt_name[i]);
}

/* the entry function's names start as its parameters and the model's type */
static void entry_names_begin_(Emit *e)
{
    Model *m = e->m;
    e->buf_name = xcalloc((size_t)(e->g->n ? e->g->n : 1), sizeof *e->buf_name);
    e->in_used = xcalloc((size_t)m->inputs.len + 1, sizeof(bool));
    e->tgt_used = xcalloc((size_t)m->targets.len + 1, sizeof(bool));
    e->uses_m = false;
    e->bufs.len = 0;
    namemap_put(&e->locals, e->mname, 1);
    if (e->gpu) /* the record function's own locals */
        for (int i = 0; i < 4; i++) namemap_put(&e->locals, (const char *[]){"c", "d", "io", "nn"}[i], 1);
    for (int i = 0; i < m->inputs.len; i++) namemap_put(&e->locals, e->in_name[i], 1);
    for (int i = 0; i < m->targets.len; i++) namemap_put(&e->locals, e->tgt_name[i], 1);
    for (int i = 0; i < m->outputs.len; i++) namemap_put(&e->locals, e->out_name[i], 1);
}

static void entry_names_end_(Emit *e)
{
    free(e->buf_name);
    free(e->in_used);
    free(e->tgt_used);
    e->buf_name = NULL;
    e->in_used = e->tgt_used = NULL;
    namemap_free(&e->locals);
}

/* one line per arena value the entry function passes, nnc_real *h1 = A + 512000; then its type, the
 * model's name for it (else its op) and its line */
static void arena_decls_(Emit *e, StrBuf *b)
{
    for (int i = 0; i < e->bufs.len; i++) {
        int id = e->bufs.data[i];
        Value *v = &e->g->v[id];
        const Store *s = &e->p->store[id];
        bool ints = v->dtype == DT_I32;
        sb_printf(b, "    %s *%s = %s", c_type(v->dtype), e->buf_name[id], ints ? "Ai" : "A");
        if (s->offset) sb_printf(b, " + %" PRId64, s->offset);
        sb_puts(b, "; /* ");
        shape_note_(e, b, id);
        sb_putc(b, ' ');
        if (v->name) sb_c_comment(b, v->name);
        else sb_puts(b, op_info[v->op].name);
        if (source_get(v->loc.src)) sb_printf(b, " (line %d)", v->loc.line);
        sb_puts(b, " */\n");
    }
}

/* per value: the lowest id among the values its kernel computes (members of its group, reductions in its
 * loops and their members), so that gathering a kernel's members scans [lo, root], not the graph */
static int *kernel_lows_(const Graph *g)
{
    int *lo = xmalloc(sizeof(int) * (size_t)(g->n ? g->n : 1));
    for (int id = 0; id < g->n; id++) lo[id] = id;
    for (int id = 0; id < g->n; id++) {
        int k = graph_loops_of(g, graph_kernel_of(g, id));
        if (id < lo[k]) lo[k] = id;
    }
    return lo;
}

/* CUDA: what the record function does after the kernels: outputs, loss and metrics into the io block,
 * values that become model tensors into the image */
static void gpu_tail_(Emit *e, StrBuf *t)
{
    for (int i = 0; i < e->g->roots.len; i++) {
        Root r = e->g->roots.data[i];
        const char *dst = NULL;
        if (r.kind == ROOT_OUTPUT) {
            const char *out = e->out_name[r.index];
            sb_printf(t, "    nnc_cuda_copy(c, io->%s, %s, sizeof io->%s);\n", out, c_buffer(e, r.id), out);
            continue;
        }
        if (r.kind == ROOT_METRIC) dst = arena_printf(A_, "&io->metrics[%d]", r.index);
        if (r.kind == ROOT_LOSS) dst = "&io->loss";
        if (!dst) continue;
        Store *s = &e->p->store[plan_base(e->p, r.id)];
        if (s->kind == SK_CONST && s->literal)
            sb_printf(t, "    nnc_cuda_fill(c, %s, 0x%08" PRIx32 "u, 1); /* %s */\n", dst, literal_bits_(e, r.id), c_literal(e, r.id));
        else
            sb_printf(t, "    nnc_cuda_copy(c, %s, %s, sizeof(nnc_real));\n", dst, c_buffer(e, r.id));
    }
    emit_assigns_(e, t);
}

/* CUDA: the record function's declarations: the image, the io block, the batch size's address, the arena */
static void gpu_decls_(Emit *e, StrBuf *b)
{
    bool uses_a = false, uses_ai = false;
    for (int i = 0; i < e->bufs.len; i++) {
        uses_a |= e->g->v[e->bufs.data[i]].dtype != DT_I32;
        uses_ai |= e->g->v[e->bufs.data[i]].dtype == DT_I32;
    }
    if (uses_a) sb_puts(b, "    nnc_real *A = d->arena;\n");
    if (uses_ai) sb_puts(b, "    int32_t *Ai = d->arena_i;\n");
    arena_decls_(e, b);
}

/* what an entry point's emission allocated */
static void entry_end_(Emit *e)
{
    free(e->const_id);
    e->const_id = NULL;
    free(e->kernel_lo);
    e->kernel_lo = NULL;
    entry_names_end_(e);
}

void emit_entry(Emit *e, StrBuf *b, EntryCode *ec)
{
    Model *m = e->m;
    e->g = ec->g;
    e->p = ec->plan;
    e->const_id = xmalloc(sizeof(int) * (size_t)(e->g->n ? e->g->n : 1));
    for (int i = 0; i < e->g->n; i++) e->const_id[i] = -1;
    e->kernel_lo = kernel_lows_(e->g);
    e->body.len = 0;
    if (e->body.s) e->body.s[0] = 0;
    entry_names_begin_(e);
    for (int k = 0; k < e->p->norder; k++) emit_node(e, e->p->order[k]);
    if (e->gpu) {
        StrBuf tail = {0}, decls = {0};
        gpu_tail_(e, &tail);
        gpu_decls_(e, &decls);
        emit_cuda_entry(e, b, ec, decls.s ? decls.s : "", tail.s ? tail.s : "");
        sb_free(&tail);
        sb_free(&decls);
        entry_end_(e);
        return;
    }
    bool metrics = ec->kind != ENTRY_PREDICT;
    const char *suffix = ec->kind == ENTRY_TRAIN ? "_metrics" : "";
    sb_printf(b, "\n");
    emit_entry_signature(e, b, ec->kind, metrics, suffix);
    sb_puts(b, "\n{\n");
    /* the epilogue first: whether A and Ai are used is known only then */
    StrBuf tail = {0};
    for (int i = 0; i < e->g->roots.len; i++) {
        Root r = e->g->roots.data[i];
        if (r.kind == ROOT_OUTPUT) {
            const IOSlot *o = &m->outputs.data[r.index];
            sb_printf(&tail, "    memcpy(%s, %s, sizeof(%s) * (size_t)(%s));\n", e->out_name[r.index], c_buffer(e, r.id),
                      c_type(o->dtype), c_count(e, o->shape));
        }
        if (r.kind == ROOT_METRIC) sb_printf(&tail, "    if (metrics) metrics[%d] = %s;\n", r.index, c_scalar_(e, r.id));
    }
    int loss = -1;
    for (int i = 0; i < e->g->roots.len; i++)
        if (e->g->roots.data[i].kind == ROOT_LOSS) loss = e->g->roots.data[i].id;
    if (loss >= 0) sb_printf(&tail, "    const nnc_real loss = %s;\n", c_scalar_(e, loss));
    emit_assigns_(e, &tail);
    if (loss >= 0) sb_puts(&tail, "    return loss;\n");
    const char *body = e->body.s ? e->body.s : "";
    bool uses_a = false, uses_ai = false;
    for (int i = 0; i < e->bufs.len; i++) {
        uses_a |= e->g->v[e->bufs.data[i]].dtype != DT_I32;
        uses_ai |= e->g->v[e->bufs.data[i]].dtype == DT_I32;
    }
    e->uses_m |= uses_a || uses_ai;
    if (uses_a) sb_puts(b, "    nnc_real *A = m->arena;\n");
    if (uses_ai) sb_puts(b, "    int32_t *Ai = m->arena_i;\n");
    char up[256];
    emit_upper(up, e->mname, sizeof up);
    sb_printf(b, "    if (n < 1 || n > %s_MAX_BATCH) return%s;\n", up, ec->kind == ENTRY_PREDICT ? "" : " NAN");
    if (metrics && m->metrics.len == 0) sb_puts(b, "    (void)metrics;\n");
    unused_params_(e, b, ec->kind);
    arena_decls_(e, b);
    sb_puts(b, body);
    if (tail.s) sb_puts(b, tail.s);
    sb_free(&tail);
    sb_puts(b, "}\n");
    if (ec->kind == ENTRY_TRAIN) {
        sb_puts(b, "\n");
        emit_entry_signature(e, b, ENTRY_TRAIN, false, "");
        sb_printf(b, "\n{\n    return %s_train_step_metrics(m, n", e->mname);
        for (int i = 0; i < m->inputs.len; i++) sb_printf(b, ", %s", e->in_name[i]);
        for (int i = 0; i < m->targets.len; i++) sb_printf(b, ", %s", e->tgt_name[i]);
        sb_puts(b, ", NULL);\n}\n");
    }
    entry_end_(e);
}

/* ---- the tensor table -------------------------------------------------------------------------------------- */
static bool tensor_in_table_(const Tensor *t) { return t->kind != TK_GRAD; }

/* a name as a C string: a literal, or (longer than C99 lets a literal be) a char array declared in `decls` */
static void c_name_(Emit *e, StrBuf *decls, StrBuf *b, const char *s, int *nlong)
{
    (void)e;
    if (c_string_fits(s)) {
        sb_c_string(b, s);
        return;
    }
    sb_printf(decls, "static const char nnc_name%d[] = ", *nlong);
    sb_c_char_array(decls, s);
    sb_puts(decls, ";\n");
    sb_printf(b, "nnc_name%d", (*nlong)++);
}

void emit_table(Emit *e, StrBuf *out, const char *struct_name)
{
    Model *m = e->m;
    StrBuf decls = {0}, tb = {0};
    StrBuf *b = &tb;
    int nlong = 0;
    sb_printf(b, "\n/* every parameter, state and optimizer tensor: name, rank, shape, offset, trainable, dtype, kind */\n");
    sb_printf(b, "const nnc_tensor_info %s_tensors[] = {\n", e->mname);
    int count = 0;
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = &m->tensors.data[i];
        if (!tensor_in_table_(t)) continue;
        sb_puts(b, "    {");
        c_name_(e, &decls, b, t->name, &nlong);
        sb_printf(b, ", %d, {", t->shape.rank);
        for (int k = 0; k < 8; k++) sb_printf(b, "%s%" PRId64, k ? ", " : "", k < t->shape.rank ? t->shape.d[k] : 0);
        if (e->flash[i]) sb_puts(b, "}, 0");
        else sb_printf(b, "}, offsetof(struct %s, %s)", struct_name, e->member[i]);
        sb_printf(b, ", %d, %d, %d, ", t->trainable, t->dtype == DT_I32, t->kind == TK_PARAM ? 0 : t->kind == TK_STATE ? 1 : 2);
        if (e->flash[i]) sb_printf(b, "%s},\n", flash_array_(e, i));
        else sb_puts(b, "NULL},\n");
        count++;
    }
    if (e->has_rng) {
        sb_printf(b, "    {\"rng.state\", 1, {4, 0, 0, 0, 0, 0, 0, 0}, offsetof(struct %s, rng), 0, 1, 2, NULL},\n", struct_name);
        count++;
    }
    sb_puts(b, "    {NULL, 0, {0, 0, 0, 0, 0, 0, 0, 0}, 0, 0, 0, 0, NULL},\n};\n");
    sb_printf(b, "const int %s_num_tensors = %d;\n", e->mname, count);
    sb_printf(b, "const char *const %s_metric_names[] = {", e->mname);
    for (int i = 0; i < m->metrics.len; i++) {
        c_name_(e, &decls, b, m->metrics.data[i].name, &nlong);
        sb_puts(b, ", ");
    }
    sb_puts(b, "NULL};\n");
    if (decls.s) {
        sb_puts(out, "\n/* names longer than a C99 string literal may be */\n");
        sb_puts(out, decls.s);
    }
    sb_puts(out, tb.s);
    sb_free(&decls);
    sb_free(&tb);
}

/* ---- the JIT shim: the same signatures for every model ---------------------------------------------------- */
/* the shim's tensor table, predict, train step and eval (every target's) */
void emit_shim_calls(Emit *e, StrBuf *b, bool has_train, bool has_eval)
{
    Model *m = e->m;
    const char *nm = e->mname;
    sb_printf(b, "const nnc_tensor_info *nnc_jit_tensors(int *count) { *count = %s_num_tensors; return %s_tensors; }\n", nm, nm);
    int k = 0;
    sb_printf(b, "void nnc_jit_predict(void *m, int n, void *const *io)\n{\n    %s_predict((struct %s *)m, n", nm, nm);
    for (int i = 0; i < m->inputs.len; i++, k++) sb_printf(b, ", (const %s *)io[%d]", c_type(m->inputs.data[i].dtype), k);
    for (int i = 0; i < m->outputs.len; i++, k++) sb_printf(b, ", (%s *)io[%d]", c_type(m->outputs.data[i].dtype), k);
    sb_puts(b, ");\n}\n");
    const char *fns[2] = {"train_step_metrics", "eval"};
    bool have[2] = {has_train, has_eval};
    for (int f = 0; f < 2; f++) {
        sb_printf(b, "nnc_real nnc_jit_%s(void *m, int n, void *const *io, nnc_real *metrics)\n{\n", f ? "eval" : "train_step");
        if (!have[f]) {
            sb_puts(b, "    (void)m, (void)n, (void)io, (void)metrics;\n    return NAN;\n}\n");
            continue;
        }
        sb_printf(b, "    return %s_%s((struct %s *)m, n", nm, fns[f], nm);
        k = 0;
        for (int i = 0; i < m->inputs.len; i++, k++) sb_printf(b, ", (const %s *)io[%d]", c_type(m->inputs.data[i].dtype), k);
        for (int i = 0; i < m->targets.len; i++, k++) sb_printf(b, ", (const %s *)io[%d]", c_type(m->targets.data[i].dtype), k);
        sb_puts(b, ", metrics);\n}\n");
    }
}

static void emit_shim_(Emit *e, StrBuf *b, bool has_train, bool has_eval)
{
    const char *nm = e->mname;
    sb_printf(b, "\n/* for nnc train/predict/bench: one calling convention for every model */\n");
    sb_printf(b, "size_t nnc_jit_model_size(void) { return sizeof(struct %s); }\n", nm);
    sb_printf(b, "void nnc_jit_init(void *m, uint64_t seed) { %s_init((struct %s *)m, seed); }\n", nm, nm);
    emit_shim_calls(e, b, has_train, has_eval);
}

/* ---- the header ------------------------------------------------------------------------------------------- */
void emit_upper(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++) dst[i] = (char)toupper((unsigned char)src[i]);
    dst[i] = 0;
}

/* bytes of one element as the generated struct stores it (nnc_real is float unless a test says double) */
static int64_t elem_bytes_(DType t) { return t == DT_I32 ? (int64_t)sizeof(int32_t) : (int64_t)sizeof(float); }
static int64_t tensor_bytes_(const Tensor *t) { return shape_count(t->shape, 1) * elem_bytes_(t->dtype); }
static int64_t arena_bytes_(int64_t nf, int64_t ni) { return nf * elem_bytes_(DT_F32) + ni * elem_bytes_(DT_I32); }

static void emit_struct_members_(Emit *e, StrBuf *b, TensorKind kind, const char *title)
{
    Model *m = e->m;
    bool any = false;
    char sh[96];
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = &m->tensors.data[i];
        if (t->kind != kind || e->flash[i]) continue;
        if (!any) sb_printf(b, "    /* %s */\n", title);
        any = true;
        sb_printf(b, "    %s %s[%" PRId64 "]; /* ", c_type(t->dtype), e->member[i], shape_count(t->shape, 1));
        sb_c_comment(b, t->name);
        sb_printf(b, " %s */\n", shape_str(t->shape, sh, sizeof sh));
    }
}

void emit_header_prologue(Emit *e, StrBuf *b)
{
    char up[256];
    emit_upper(up, e->mname, sizeof up);
    sb_printf(b, "#ifndef NNC_MODEL_%s_H\n#define NNC_MODEL_%s_H\n\n", up, up);
    sb_puts(b, "#include <stddef.h>\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    sb_puts(b, "/* nnc_real is float unless NNC_REAL says otherwise (tests build models in double) */\n");
    sb_puts(b, "#ifndef NNC_REAL_DEFINED\n#define NNC_REAL_DEFINED\n#ifndef NNC_REAL\n#define NNC_REAL float\n#define NNC_REAL_IS_FLOAT 1\n#endif\n"
               "typedef NNC_REAL nnc_real;\n#endif\n\n");
    sb_puts(b, "#ifndef NNC_TENSOR_INFO_DEFINED\n#define NNC_TENSOR_INFO_DEFINED\n"
               "typedef struct nnc_tensor_info {\n"
               "    const char *name; /* as in checkpoints: \"dense_1.weight\" */\n"
               "    int rank;\n"
               "    int shape[8];\n"
               "    size_t offset;    /* byte offset of the data in the model struct */\n"
               "    int trainable;\n"
               "    int dtype;        /* 0: nnc_real, 1: int32_t */\n"
               "    int kind;         /* 0: parameter, 1: state, 2: training state (optimizer, generator) */\n"
               "    const void *data; /* NULL: in the struct at offset; else the address of a const tensor (firmware) */\n"
               "} nnc_tensor_info;\n#endif\n\n");
}

void emit_size_defines(Emit *e, StrBuf *b, const EntryCode *entries, int nentries, int64_t arena_f, int64_t arena_i)
{
    Model *m = e->m;
    char up[256];
    emit_upper(up, e->mname, sizeof up);
    sb_printf(b, "#define %s_MAX_BATCH %d\n", up, e->opt->max_batch);
    sb_printf(b, "#define %s_NUM_INPUTS %d\n#define %s_NUM_OUTPUTS %d\n#define %s_NUM_TARGETS %d\n", up, m->inputs.len, up,
              m->outputs.len, up, m->targets.len);
    sb_printf(b, "#define %s_NUM_METRICS %d /* the length of M_eval's metrics array:", up, m->metrics.len);
    for (int i = 0; i < m->metrics.len; i++) {
        sb_putc(b, ' ');
        sb_c_comment(b, m->metrics.data[i].name);
    }
    sb_puts(b, " */\n");
    int64_t pbytes = 0, sbytes = 0, obytes = 0, gbytes = 0, flash = 0;
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = &m->tensors.data[i];
        if (e->flash[i]) {
            flash += tensor_bytes_(t);
            continue;
        }
        int64_t *acc = t->kind == TK_PARAM ? &pbytes : t->kind == TK_STATE ? &sbytes : t->kind == TK_OPT ? &obytes : &gbytes;
        *acc += tensor_bytes_(t);
    }
    sb_printf(b, "#define %s_PARAM_BYTES %" PRId64 "\n#define %s_STATE_BYTES %" PRId64 "\n", up, pbytes, up, sbytes);
    sb_printf(b, "#define %s_OPTIMIZER_BYTES %" PRId64 "\n#define %s_GRAD_BYTES %" PRId64 "\n", up, obytes, up, gbytes);
    sb_printf(b, "#define %s_ARENA_BYTES %" PRId64 "\n", up, arena_bytes_(arena_f, arena_i));
    int64_t ram = pbytes + sbytes + obytes + gbytes + arena_bytes_(arena_f, arena_i) + (e->has_rng ? 4 * (int64_t)sizeof(uint32_t) : 0);
    sb_printf(b, "#define %s_RAM_BYTES %" PRId64 " /* all of the above%s: the struct's data */\n", up, ram,
              e->has_rng ? " and the generator" : "");
    if (e->t->firmware)
        sb_printf(b, "#define %s_FLASH_BYTES %" PRId64 " /* constant data: %" PRId64 " of const parameters and state, %" PRId64
                     " of initial values and the kernels' constants */\n", up, flash + e->const_bytes, flash, e->const_bytes);
    if (e->opt->sizes) *e->opt->sizes = (EmitSizes){.ram_bytes = ram, .flash_bytes = flash + e->const_bytes, .flash_const_bytes = e->const_bytes};
    for (int i = 0; i < nentries; i++)
        sb_printf(b, "#define %s_ARENA_BYTES_%s %" PRId64 "\n", up, entry_upper_[entries[i].kind],
                  arena_bytes_(entries[i].plan->arena_f, entries[i].plan->arena_i));
}

void emit_struct_body(Emit *e, StrBuf *b, int64_t arena_f, int64_t arena_i)
{
    emit_struct_members_(e, b, TK_PARAM, "parameters");
    emit_struct_members_(e, b, TK_STATE, "state");
    emit_struct_members_(e, b, TK_OPT, "optimizer state");
    emit_struct_members_(e, b, TK_GRAD, "gradients of the last train step");
    if (e->has_rng) sb_puts(b, "    uint32_t rng[4]; /* the generator, for dropout */\n");
    sb_printf(b, "    nnc_real arena[%" PRId64 "]; /* scratch of every entry point */\n", arena_f ? arena_f : 1);
    if (arena_i) sb_printf(b, "    int32_t arena_i[%" PRId64 "];\n", arena_i);
}

static void emit_header_(Emit *e, StrBuf *b, const EntryCode *entries, int nentries, int64_t arena_f, int64_t arena_i)
{
    Model *m = e->m;
    char up[256], sh[96];
    emit_upper(up, e->mname, sizeof up);
    emit_header_prologue(e, b);
    emit_size_defines(e, b, entries, nentries, arena_f, arena_i);
    sb_printf(b, "\ntypedef struct %s %s;\n", e->mname, e->mname);
    sb_printf(b, "\n/* the whole model: `static %s m;` needs no malloc */\nstruct %s {\n", e->mname, e->mname);
    emit_struct_body(e, b, arena_f, arena_i);
    sb_puts(b, "};\n\n");
    /* prototypes */
    sb_printf(b, "void %s_init(%s *m, uint64_t seed);\n", e->mname, e->mname);
    for (int i = 0; i < nentries; i++) {
        if (entries[i].kind == ENTRY_PREDICT) {
            sb_puts(b, "/* 1 <= n <= MAX_BATCH; inputs");
            for (int k = 0; k < m->inputs.len; k++) {
                sb_putc(b, ' ');
                sb_c_comment(b, m->inputs.data[k].name);
                sb_printf(b, " %s", shape_str(m->inputs.data[k].shape, sh, sizeof sh));
            }
            sb_puts(b, "; outputs");
            for (int k = 0; k < m->outputs.len; k++) {
                sb_putc(b, ' ');
                sb_c_comment(b, m->outputs.data[k].name);
                sb_printf(b, " %s", shape_str(m->outputs.data[k].shape, sh, sizeof sh));
            }
            sb_puts(b, " */\n");
        }
        if (entries[i].kind == ENTRY_TRAIN) {
            emit_entry_signature(e, b, ENTRY_TRAIN, false, "");
            sb_puts(b, ";\n/* the same, also writing the metrics (when not NULL) as measured in this step */\n");
            emit_entry_signature(e, b, ENTRY_TRAIN, true, "_metrics");
        } else {
            emit_entry_signature(e, b, entries[i].kind, entries[i].kind == ENTRY_EVAL, "");
        }
        sb_puts(b, ";\n");
    }
    sb_printf(b, "extern const nnc_tensor_info %s_tensors[];\nextern const int %s_num_tensors;\n", e->mname, e->mname);
    sb_printf(b, "extern const char *const %s_metric_names[]; /* NUM_METRICS names, then NULL */\n", e->mname);
    sb_printf(b, "\n#ifdef __cplusplus\n}\n#endif\n#endif /* NNC_MODEL_%s_H */\n", up);
}

/* ---- the whole file ------------------------------------------------------------------------------------------ */
/* "#line @@" becomes the number of the line after it: known only once the file is whole */
char *emit_fix_line_directives(char *text)
{
    StrBuf out = {0};
    int line = 1;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (strncmp(p, "#line @@", 8) == 0) {
            sb_printf(&out, "#line %d", line + 1);
            p += 8;
            len -= 8;
        }
        for (size_t i = 0; i < len; i++) sb_putc(&out, p[i]);
        p += len;
        line++;
    }
    free(text);
    return sb_take(&out);
}

/* ": generated by nnc V from PATH; do not edit.", then the command line: text for inside a comment */
void emit_file_comment(StrBuf *b, const EmitOptions *opt)
{
    sb_printf(b, "%sgenerated by nnc %s from ", b->len && b->s[b->len - 1] == '*' ? " " : ": ", NNC_VERSION);
    sb_c_comment(b, opt->model_path);
    sb_puts(b, "; do not edit.\n *   ");
    sb_c_comment(b, opt->command ? opt->command : "");
}

/* #include "NAME" takes no escapes: only names of printable characters other than " \ ' and without / */
bool emit_header_name_ok(const char *name)
{
    if (!name || !*name || !c_string_fits(name)) return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\' || *p == '\'' || *p == '/') return false;
    return true;
}

/* the host always has the generator (its checkpoints save it); a firmware model only where dropout draws */
bool emit_needs_rng(const Target *t, const EntryCode *entries, int nentries)
{
    if (!t->firmware) return true;
    for (int i = 0; i < nentries; i++)
        for (int id = 0; id < entries[i].g->n; id++)
            if (entries[i].g->v[id].op == OP_RAND_UNIFORM) return true;
    return false;
}

/* the const arrays of the parameters kept in flash, which the kernels and the tensor table name */
static void emit_flash_tensors_(Emit *e, StrBuf *b)
{
    Model *m = e->m;
    char sh[96];
    for (int i = 0; i < m->tensors.len; i++) {
        if (!e->flash[i]) continue;
        const Tensor *t = &m->tensors.data[i];
        int64_t count = shape_count(t->shape, 1);
        sb_puts(b, "\n/* ");
        sb_c_comment(b, t->name);
        sb_printf(b, " %s, from --weights */\nstatic const nnc_real %s[%" PRId64 "] = {", shape_str(t->shape, sh, sizeof sh),
                  flash_array_(e, i), count);
        for (int64_t k = 0; k < count; k++) {
            sb_puts(b, k % 4 == 0 ? "\n    " : " ");
            sb_printf(b, "%s,", c_float(e, t->init.values[k]));
        }
        sb_puts(b, "\n};\n");
    }
}

void emit_c_model(const Target *t, Model *m, EntryCode *entries, int nentries, const EmitOptions *opt, char **c_out,
                  char **h_out)
{
    Emit e = {.m = m, .opt = opt, .t = t};
    /* firmware at batch 1: kernels know n = 1 (constant loop bounds; no loop that looks as if it could
     * run past a 32-bit address space, which arm-none-eabi-gcc -O2 warns of) */
    e.static_batch = t->firmware && opt->max_batch == 1;
    emit_names_init(&e);
    e.has_rng = emit_needs_rng(t, entries, nentries);
    e.flash = arena_alloc(m->arena, sizeof(bool) * (size_t)(m->tensors.len + 1));
    for (int i = 0; i < m->tensors.len; i++)
        e.flash[i] = target_tensor_in_flash(t, &m->tensors.data[i], opt->weights_baked, opt->inference_only);
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
    StrBuf init = {0}; /* before the header, which counts the initial values among the constants */
    emit_init(&e, &init, NULL);
    StrBuf h = {0}, c = {0};
    sb_puts(&h, "/* ");
    sb_c_comment(&h, opt->h_name ? opt->h_name : "model.h");
    emit_file_comment(&h, opt);
    sb_puts(&h, "\n */\n");
    emit_header_(&e, &h, entries, nentries, arena_f, arena_i);
    sb_puts(&c, "/*");
    emit_file_comment(&c, opt);
    sb_printf(&c, "\n *\n * model %s: %d kernels; scratch %" PRId64 " bytes. Each kernel is headed by its op, its value\n"
                  " * and the model line it comes from; the entry points at the bottom call them in order.\n */\n",
              e.mname, e.kseq, arena_bytes_(arena_f, arena_i));
    if (opt->amalgamate || !emit_header_name_ok(opt->h_name))
        sb_puts(&c, h.s); /* a header name #include cannot spell: its text instead */
    else
        sb_printf(&c, "#include \"%s\"\n", opt->h_name);
    sb_printf(&c, "\n#include <string.h>\n#include <%s>\n\n", t->firmware ? "math.h" : "tgmath.h");
    sb_puts(&c, "/* Kernels stay functions: inlining hundreds of loops into one entry point makes C compilers slow\n"
                " * for no gain (each kernel runs once per call). */\n"
                "#if defined(__GNUC__)\n#define NNC_KERNEL static __attribute__((noinline))\n#else\n"
                "#define NNC_KERNEL static\n#endif\n\n");
    if (e.uses_blas) {
        sb_puts(&c, "/* large products call OpenBLAS; define NNC_NO_BLAS to build without it (plain loops) */\n"
                    "#ifndef NNC_USE_BLAS\n#if defined(NNC_NO_BLAS) || !defined(NNC_REAL_IS_FLOAT)\n"
                    "#define NNC_USE_BLAS 0\n#else\n#define NNC_USE_BLAS 1\n#endif\n#endif\n"
                    "#if NNC_USE_BLAS\n#include <cblas.h>\n#endif\n");
        sb_printf(&c, "/* a product of at least this many multiply-adds (M*N*K) calls cblas_sgemm, a smaller one loops */\n"
                      "#define NNC_BLAS_MIN_WORK %d\n\n", BLAS_MIN_WORK);
    }
    StrBuf code = {0}; /* everything that may call a helper */
    emit_flash_tensors_(&e, &code);
    if (e.consts.len) sb_printf(&code, "\n%s", e.consts.s);
    if (e.kernels.len) sb_puts(&code, e.kernels.s);
    sb_puts(&code, init.s);
    sb_free(&init);
    sb_puts(&code, entry_code.s ? entry_code.s : "");
    if (t->firmware) { /* float math, 32-bit offsets */
        StrBuf helpers = {0};
        emit_helpers(&helpers, code.s);
        char *h_text = c_dialect(t, helpers.s ? helpers.s : ""), *code_text = c_dialect(t, code.s);
        sb_puts(&c, h_text);
        sb_puts(&c, code_text);
        free(h_text);
        free(code_text);
        sb_free(&helpers);
    } else {
        emit_helpers(&c, code.s);
        sb_puts(&c, code.s);
    }
    sb_free(&code);
    emit_table(&e, &c, e.mname);
    if (opt->jit_shim) emit_shim_(&e, &c, has_train, has_eval);
    *c_out = emit_fix_line_directives(sb_take(&c));
    *h_out = sb_take(&h);
    sb_free(&entry_code);
    sb_free(&e.kernels);
    sb_free(&e.consts);
    for (int i = 0; i < e.seen.len; i++) free(e.seen.data[i].key);
    vec_free(&e.seen);
    vec_free(&e.bufs);
    sb_free(&e.body);
}
