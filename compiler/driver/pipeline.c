/* pipeline.c: the compiler, top to bottom. Each stage is one call; between stages in check builds the
 * verifier runs, and --dump-ir prints the graph after every pass. */
#include "pipeline.h"
#include "check.h"
#include "commands.h"
#include "verify.h"
#include "nnc_runtime.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static struct {
    char *path;
    OnnxImport imp;
    bool ok;
} onnx_;

const OnnxImport *onnx_model(const char *path)
{
    if (!onnx_is_model_path(path)) return NULL;
    if (onnx_.path && str_eq(onnx_.path, path)) return onnx_.ok ? &onnx_.imp : NULL;
    if (onnx_.path) onnx_import_free(&onnx_.imp);
    free(onnx_.path);
    onnx_.path = xstrdup(path);
    onnx_.ok = onnx_import(path, NULL, &onnx_.imp);
    return onnx_.ok ? &onnx_.imp : NULL;
}

const nnc_safetensors *default_weights(const char *model_path, const char *weights_option)
{
    const OnnxImport *imp = weights_option ? NULL : onnx_model(model_path);
    return imp ? &imp->weights : NULL;
}

void onnx_alias_bindings(const char *model_path, Binding *b, int n, bool outputs)
{
    const OnnxImport *imp = onnx_is_model_path(model_path) ? onnx_model(model_path) : NULL;
    for (int k = 0; imp && k < n; k++) {
        if (!b[k].name) continue;
        int count = outputs ? imp->noutputs : imp->ninputs;
        char **from = outputs ? imp->output_onnx : imp->input_onnx, **to = outputs ? imp->output_nn : imp->input_nn;
        bool is_nn = false;
        for (int j = 0; j < count; j++) is_nn |= str_eq(to[j], b[k].name);
        for (int j = 0; j < count && !is_nn; j++)
            if (str_eq(from[j], b[k].name)) {
                b[k].name = to[j];
                break;
            }
    }
}

Model *front_end(const char *path, const char *model_name, Arena *a)
{
    int src;
    if (onnx_is_model_path(path)) {
        const OnnxImport *imp = onnx_model(path);
        src = imp ? source_add(path, imp->nn_text, imp->nn_len) : 0;
    } else
        src = source_load(path);
    if (!src) return NULL;
    Program *p = parse_source(a, src);
    Model *m = p && !diag_error_count() ? check_program(p, model_name, a) : NULL;
    diag_finish();
    return m && !diag_error_count() ? m : NULL;
}

static void dump_(const CompileOptions *o, Graph *g, EntryKind k, const char *after)
{
    if (!o->dump_ir) return;
    fprintf(stderr, "# %s after %s: %d values\n", entry_names[k], after, g->n);
    graph_print(g, stderr);
}

typedef struct Pass {
    const char *name;
    void (*run)(Graph *g);
    void (*run_limited)(Graph *g, const FusionLimits *lim); /* a pass that takes the target's limits */
    int level;                                              /* the lowest -O that runs it */
} Pass;

/* the optimizing passes, in order */
static const Pass passes_[] = {
    {"fold", pass_fold, NULL, 1},
    {"simplify", pass_simplify, NULL, 1},
    {"cse", pass_cse, NULL, 1},
    {"fold", pass_fold, NULL, 1},
    {"dce", pass_dce, NULL, 1},
    {"fuse", NULL, pass_fuse, 2},
};

/* every name --passes accepts */
static const char *const pass_names_[] = {"fold", "simplify", "cse", "dce", "fuse", "reuse", "memplan"};

bool passes_valid(const char *list, char *bad, size_t n)
{
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        bool known = len == 0;
        for (size_t i = 0; i < sizeof pass_names_ / sizeof pass_names_[0] && !known; i++)
            known = strlen(pass_names_[i]) == len && strncmp(p, pass_names_[i], len) == 0;
        if (!known) {
            snprintf(bad, n, "%.*s", (int)len, p);
            return false;
        }
        p += len + (p[len] == ',');
    }
    return true;
}

static const Target *target_of_(const CompileOptions *o) { return o->target ? o->target : &target_host; }

static bool pass_selected_(const CompileOptions *o, const Pass *p)
{
    if (!o->passes) return o->opt_level >= p->level;
    const char *s = strstr(o->passes, p->name);
    size_t n = strlen(p->name);
    return s && (s == o->passes || s[-1] == ',') && (s[n] == 0 || s[n] == ',');
}

static void optimize_(const CompileOptions *o, Graph *g, EntryKind k)
{
    if (target_of_(o)->firmware && o->inference_only && (o->weights || o->weights_set) && o->opt_level >= 1 && !o->passes) {
        /* the weights are constants: what depends only on them folds (batchnorm's scale) */
        Model *m = g->model;
        bool *is_const = xcalloc((size_t)m->tensors.len + 1, sizeof(bool));
        for (int i = 0; i < m->tensors.len; i++) is_const[i] = target_tensor_in_flash(target_of_(o), &m->tensors.data[i], true, true);
        pass_const_tensors(g, is_const);
        free(is_const);
        dump_(o, g, k, "const_tensors");
        verify_graph(g);
    }
    if (target_of_(o)->firmware && k != ENTRY_TRAIN && o->opt_level >= 1 && !o->passes) {
        pass_lstm_infer(g); /* RAM: one step's gates instead of the trace */
        dump_(o, g, k, "lstm_infer");
        verify_graph(g);
    }
    for (size_t i = 0; i < sizeof passes_ / sizeof passes_[0]; i++) {
        if (!pass_selected_(o, &passes_[i])) continue;
        if (passes_[i].run_limited)
            passes_[i].run_limited(g, &target_of_(o)->fuse);
        else
            passes_[i].run(g);
        dump_(o, g, k, passes_[i].name);
        verify_graph(g);
    }
}

static Graph *build_entry_(const CompileOptions *o, Model *m, EntryKind k)
{
    Pass cse = {"cse", pass_cse, NULL, 1};
    Graph *g = lower_entry(m, k, pass_selected_(o, &cse)); /* hash-consing as values are built is CSE too */
    dump_(o, g, k, "lowering");
    verify_graph(g);
    if (k == ENTRY_TRAIN) {
        int *grads = xmalloc(sizeof(int) * (size_t)(m->tensors.len ? m->tensors.len : 1));
        autodiff(g, grads);
        optim_apply(g, grads);
        free(grads);
        dump_(o, g, k, "autodiff and optimizer");
        verify_graph(g);
    }
    optimize_(o, g, k);
    return g;
}

/* --weights when compiling (or a .onnx model's initializers): the values become the initial values M_init writes */
static bool bake_weights_(Model *m, const char *path, const nnc_safetensors *set)
{
    char err[1024];
    nnc_safetensors file = {0};
    if (!set && nnc_st_read(path, &file, err, sizeof err) != 0) {
        diag_fatal("%s", err);
        return false;
    }
    const nnc_safetensors *st = set ? set : &file;
    bool ok = true;
    for (int i = 0; i < m->tensors.len && ok; i++) {
        Tensor *t = &m->tensors.data[i];
        if (t->kind != TK_PARAM && t->kind != TK_STATE) continue;
        const nnc_st_tensor *f = nnc_st_find(st, t->name);
        int64_t n = shape_count(t->shape, 1), have = 1;
        if (!f) {
            diag_fatal("%s: missing %s '%s'", path, t->kind == TK_PARAM ? "parameter" : "state tensor", t->name);
            ok = false;
            break;
        }
        for (int k = 0; k < f->rank; k++) have *= f->shape[k];
        bool same = f->rank == t->shape.rank || have == n;
        for (int k = 0; k < f->rank && f->rank == t->shape.rank; k++) same &= f->shape[k] == t->shape.d[k];
        if (!same || have != n || (f->dtype != NNC_F32 && f->dtype != NNC_F64)) {
            char sh[96];
            diag_fatal("%s: tensor '%s' does not fit the model's %s (F32)", path, t->name, shape_str(t->shape, sh, sizeof sh));
            ok = false;
            break;
        }
        float *v = arena_alloc(m->arena, sizeof(float) * (size_t)n);
        for (int64_t k = 0; k < n; k++)
            v[k] = f->dtype == NNC_F32 ? ((const float *)f->data)[k] : (float)((const double *)f->data)[k];
        t->init = (Init){.kind = INIT_VALUES, .values = v};
    }
    nnc_st_free(&file);
    return ok;
}

/* ---- sizes the generated C can index ------------------------------------------------------------------
 * The kernels index a value's elements with `int` (n * PER and the loops over them): the fast paths stay
 * 32-bit. So every value, at the maximum batch, has at most the target's index_max elements. Offsets into
 * the arena and the struct are 64-bit constants; above 1 GiB of them the model is only warned about.
 * docs/c-api.md §9. */
#define RAM_WARN_BYTES (INT64_C(1) << 30)

static int64_t count_at_(Shape s, int batch)
{
    int64_t per = shape_per_sample_sat(s);
    if (!shape_batched(s)) return per;
    return per > INT64_MAX / batch ? INT64_MAX : per * batch;
}

static void size_error_(Loc loc, const char *what, Shape s, DType dt, int batch, int64_t index_max)
{
    int64_t count = count_at_(s, batch), per = shape_per_sample_sat(s);
    char sh[96], fits[64] = "";
    if (shape_batched(s) && per <= index_max) snprintf(fits, sizeof fits, " (--batch %" PRId64 " or less fits)", index_max / per);
    diag_error(loc, "%s would have %" PRId64 " elements (%s%s at batch %d), more than the %" PRId64
               " the generated C can index%s", what, count, dtype_name(dt), shape_str(s, sh, sizeof sh), batch, index_max, fits);
}

/* every value of an entry graph and every model tensor within the target's index_max; one error at most */
static bool sizes_fit_(Model *m, Graph *g, int batch, int64_t index_max)
{
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = &m->tensors.data[i];
        if (count_at_(t->shape, batch) <= index_max) continue;
        size_error_(t->loc, arena_printf(m->arena, "tensor '%s'", t->name), t->shape, t->dtype, batch, index_max);
        return false;
    }
    for (int id = 0; id < g->n; id++) {
        const Value *v = &g->v[id];
        if (v->dtype == DT_VOID || count_at_(v->shape, batch) <= index_max) continue;
        const char *what = v->name ? arena_printf(m->arena, "'%s' (%s)", v->name, op_info[v->op].name)
                                   : arena_printf(m->arena, "the result of %s", op_info[v->op].name);
        size_error_(v->loc, what, v->shape, v->dtype, batch, index_max);
        return false;
    }
    return true;
}

/* a warning when the struct (tensors, arena, generator) is over 1 GiB */
static void ram_warning_(const Compiled *c)
{
    int64_t bytes = compiled_ram_bytes(c);
    if (bytes <= RAM_WARN_BYTES) return;
    diag_warning(c->m->loc, "model '%s' needs %" PRId64 " bytes (%.1f GiB) of memory at batch %d, in one struct", c->m->name,
                 bytes, (double)bytes / (double)RAM_WARN_BYTES, c->max_batch);
}

static int default_batch_(const CompileOptions *o, const Model *m)
{
    if (o->batch > 0) return o->batch;
    if (target_of_(o)->firmware) return 1; /* a microcontroller predicts one sample at a time */
    if (m->train.batch > 0) return m->train.batch;
    return 32;
}

Compiled *compile_model(const CompileOptions *o, bool emit)
{
    Compiled *c = xcalloc(1, sizeof *c);
    Model *m = front_end(o->model_path, o->model_name, &c->arena);
    if (!m) {
        compiled_free(c);
        return NULL;
    }
    c->m = m;
    c->opt_level = o->opt_level;
    c->target = target_of_(o);
    c->weights_baked = o->weights || o->weights_set;
    c->inference_only = o->inference_only;
    c->max_batch = m->max_batch = default_batch_(o, m);
    if ((o->weights || o->weights_set) && !bake_weights_(m, o->weights ? o->weights : o->model_path, o->weights ? NULL : o->weights_set)) {
        compiled_free(c);
        return NULL;
    }
    /* --inference: no gradients, no optimizer state; firmware keeps no gradient buffers */
    if (!o->inference_only) optim_declare(m, !target_of_(o)->firmware);
    bool train = !o->inference_only && m->loss >= 0 && m->opt.kind != OPT_NONE;
    bool eval = !o->inference_only && m->loss >= 0;
    EntryKind kinds[ENTRY_COUNT];
    int n = 0;
    kinds[n++] = ENTRY_PREDICT;
    if (eval) kinds[n++] = ENTRY_EVAL;
    if (train) kinds[n++] = ENTRY_TRAIN;
    for (int i = 0; i < n; i++) {
        Graph *g = build_entry_(o, m, kinds[i]);
        c->entries[c->nentries++] = (EntryCode){.kind = kinds[i], .g = g};
        if (!sizes_fit_(m, g, c->max_batch, target_of_(o)->index_max)) {
            compiled_free(c);
            return NULL;
        }
        Pass reuse = {"reuse", NULL, NULL, 1}, memplan = {"memplan", NULL, NULL, 2};
        int level = pass_selected_(o, &memplan) ? 2 : pass_selected_(o, &reuse) ? 1 : 0;
        c->entries[c->nentries - 1].plan = plan_entry(g, c->max_batch, level, target_of_(o)->arena_align);
    }
    if (diag_error_count()) {
        compiled_free(c);
        return NULL;
    }
    ram_warning_(c);
    if (emit) {
        const char *base = strrchr(o->model_path, '/');
        EmitOptions eo = {.model_path = o->model_path,
                          .c_path = o->c_path ? o->c_path : "model.c",
                          .h_name = o->h_name ? o->h_name : "model.h",
                          .command = o->command,
                          .amalgamate = o->jit || !o->h_name,
                          .jit_shim = o->jit || o->shim,
                          .inference_only = o->inference_only,
                          .line_directives = o->line_directives,
                          .weights_baked = o->weights || o->weights_set,
                          .max_batch = c->max_batch,
                          .opt_level = o->opt_level,
                          .sizes = &c->sizes};
        (void)base;
        const Target *t = target_of_(o);
        if (t->gpu) eo.kernel_source = &c->cuda_text;
        t->print(t, m, c->entries, c->nentries, &eo, &c->c_text, &c->h_text);
    }
    return c;
}

const EntryCode *compiled_entry(const Compiled *c, EntryKind k)
{
    for (int i = 0; i < c->nentries; i++)
        if (c->entries[i].kind == k) return &c->entries[i];
    return NULL;
}

void compiled_free(Compiled *c)
{
    if (!c) return;
    free(c->c_text);
    free(c->h_text);
    free(c->cuda_text);
    for (int i = 0; i < c->nentries; i++) {
        free(c->entries[i].g->v);
        free(c->entries[i].g->htab);
        vec_free(&c->entries[i].g->roots);
    }
    arena_free(&c->arena);
    free(c);
}

/* ---- RAM ------------------------------------------------------------------------------------------------ */
typedef struct RamPart {
    const char *what, *kind;
    int64_t bytes;
} RamPart;

static int cmp_part_(const void *a, const void *b)
{
    const RamPart *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return strcmp(x->what, y->what);
}

static int64_t arena_max_(const Compiled *c, const char **which)
{
    int64_t best = 0;
    *which = "none";
    for (int i = 0; i < c->nentries; i++) {
        int64_t b = (c->entries[i].plan->arena_f + c->entries[i].plan->arena_i) * 4;
        if (b > best) best = b, *which = entry_names[c->entries[i].kind];
    }
    return best;
}

static bool in_flash_(const Compiled *c, const Tensor *t)
{
    return target_tensor_in_flash(c->target, t, c->weights_baked, c->inference_only);
}

int64_t compiled_ram_bytes(const Compiled *c)
{
    if (c->target->firmware && c->c_text) return c->sizes.ram_bytes; /* the printer knows whether there is a generator */
    const char *which;
    int64_t total = arena_max_(c, &which) + 16; /* the generator's state */
    for (int i = 0; i < c->m->tensors.len; i++)
        if (!in_flash_(c, &c->m->tensors.data[i])) total += shape_count(c->m->tensors.data[i].shape, 1) * 4;
    return total;
}

int64_t compiled_flash_bytes(const Compiled *c) { return c->target->firmware && c->c_text ? c->sizes.flash_bytes : 0; }

bool compiled_check_flash(const Compiled *c, int64_t max_flash)
{
    int64_t total = compiled_flash_bytes(c);
    if (max_flash <= 0 || total <= max_flash) return true;
    const Model *m = c->m;
    RamPart *parts = xmalloc(sizeof(RamPart) * (size_t)(m->tensors.len + 1));
    int n = 0;
    int64_t tensors = 0;
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = &m->tensors.data[i];
        bool flash = in_flash_(c, t), copied = !flash && c->weights_baked && t->init.kind == INIT_VALUES;
        if (!flash && !copied) continue;
        int64_t bytes = shape_count(t->shape, 1) * 4;
        parts[n++] = (RamPart){t->name, !flash ? "initial values" : t->kind == TK_STATE ? "const state" : "const parameter", bytes};
        tensors += bytes;
    }
    parts[n++] = (RamPart){"kernel constants", NULL, total - tensors};
    qsort(parts, (size_t)n, sizeof(RamPart), cmp_part_);
    diag_fatal("model '%s' needs %lld bytes of flash (constant data), more than --max-flash %lld", m->name, (long long)total,
               (long long)max_flash);
    for (int i = 0; i < n; i++) {
        if (!parts[i].bytes) continue;
        char what[160];
        if (parts[i].kind) snprintf(what, sizeof what, "%s (%s)", parts[i].what, parts[i].kind);
        else snprintf(what, sizeof what, "%s", parts[i].what);
        fprintf(stderr, "  %-56s %12lld\n", what, (long long)parts[i].bytes);
    }
    fprintf(stderr, "  (the code itself is not counted: see the object file's .text)\n");
    free(parts);
    return false;
}

bool compiled_check_ram(const Compiled *c, int64_t max_ram)
{
    int64_t total = compiled_ram_bytes(c);
    if (max_ram <= 0 || total <= max_ram) return true;
    const Model *m = c->m;
    static const char *kinds[] = {"parameter", "state", "optimizer state", "gradient"};
    RamPart *parts = xmalloc(sizeof(RamPart) * (size_t)(m->tensors.len + 2));
    int n = 0;
    const char *which;
    parts[n++] = (RamPart){"arena", NULL, arena_max_(c, &which)};
    parts[0].kind = which;
    int64_t listed = parts[0].bytes;
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = &m->tensors.data[i];
        if (in_flash_(c, t)) continue;
        parts[n++] = (RamPart){t->name, kinds[t->kind], shape_count(t->shape, 1) * 4};
        listed += parts[n - 1].bytes;
    }
    if (total > listed) parts[n++] = (RamPart){"rng.state", "generator", total - listed};
    qsort(parts, (size_t)n, sizeof(RamPart), cmp_part_);
    diag_fatal("model '%s' needs %lld bytes of RAM at batch %d, more than --max-ram %lld", m->name, (long long)total,
               c->max_batch, (long long)max_ram);
    for (int i = 0; i < n; i++) {
        if (!parts[i].bytes) continue;
        char what[160];
        if (str_eq(parts[i].what, "arena"))
            snprintf(what, sizeof what, "arena (scratch of %s)", parts[i].kind);
        else
            snprintf(what, sizeof what, "%s (%s)", parts[i].what, parts[i].kind);
        fprintf(stderr, "  %-56s %12lld\n", what, (long long)parts[i].bytes);
    }
    fprintf(stderr, "  (a smaller --batch, --inference, or freezing layers lowers it)\n");
    free(parts);
    return false;
}
