/* run.c: the model inside nnc: JIT build, weights, and data binding for train/predict/bench.
 *
 * Data errors name the file, what was expected and what was found, and exit 1 through the caller.
 */
#include "run.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

CompileOptions run_compile_options(const Options *o, bool inference_only)
{
    return (CompileOptions){.model_path = o->model_path,
                            .model_name = o->model_name,
                            .target = target_find(o->target),
                            .batch = o->batch,
                            .opt_level = o->opt_level,
                         .passes = o->passes,
                            .inference_only = inference_only || o->inference,
                            .dump_ir = o->dump_ir,
                            .jit = true,
                            .line_directives = false,
                            .c_path = "model.c",
                            .command = o->cmdline};
}

static void *sym_(Runner *r, const char *name)
{
    void *p = nnc_jit_lookup(r->jit, name);
    if (!p) diag_fatal("internal: the compiled model lacks '%s'", name);
    return p;
}

bool run_threads(int *n)
{
    const char *env = getenv("NNC_THREADS");
    *n = 1;
    if (!env) return true;
    int v = 0;
    bool ok = *env != 0;
    for (const char *p = env; *p && ok; p++) {
        ok = *p >= '0' && *p <= '9';
        v = ok && v <= RUN_MAX_THREADS ? v * 10 + (*p - '0') : v;
    }
    if (!ok || v < 1 || v > RUN_MAX_THREADS) {
        fprintf(stderr, "nnc: error: NNC_THREADS must be a whole number from 1 to %d, not '%.40s%s'\n", RUN_MAX_THREADS,
                env, strlen(env) > 40 ? "..." : "");
        return false;
    }
    *n = v;
    return true;
}

/* OpenBLAS (loaded by the JIT for large products) uses NNC_THREADS threads, default 1: on the small
 * models nnc is for, a second thread costs more than it brings. main.c has refused a bad value. */
static void set_threads_(void)
{
    int n;
    if (!run_threads(&n)) n = 1;
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (set) set(n);
}

/* nnc's CUDA runtime for a --target cuda model: $NNC_CUDA_RUNTIME, else beside this executable (the build
 * tree), else in the lib directories of an install (PREFIX/bin/nnc: PREFIX/lib, PREFIX/lib64, PREFIX/lib/nnc), else
 * where the dynamic loader looks.
 * Loaded RTLD_GLOBAL so that the JIT-built model resolves nnc_cuda_* from it. */
static bool load_cuda_runtime_(void)
{
    static bool loaded;
    if (loaded) return true;
    const char *env = getenv("NNC_CUDA_RUNTIME");
    char self[4096], path[4200];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    const char *dirs[] = {"", "/../lib", "/../lib64", "/../lib/nnc"};
    if (env && *env) {
        loaded = dlopen(env, RTLD_NOW | RTLD_GLOBAL) != NULL;
        if (!loaded) diag_fatal("NNC_CUDA_RUNTIME=%s: %s", env, dlerror());
        return loaded;
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && !loaded && slash; i++) {
        snprintf(path, sizeof path, "%s%s/libnnc_cuda_runtime.so", self, dirs[i]);
        loaded = dlopen(path, RTLD_NOW | RTLD_GLOBAL) != NULL;
    }
    if (!loaded) loaded = dlopen("libnnc_cuda_runtime.so", RTLD_NOW | RTLD_GLOBAL) != NULL; /* the loader's own paths */
    if (!loaded)
        diag_fatal("--target cuda needs nnc's CUDA runtime, libnnc_cuda_runtime.so, which is built with nnc when CMake "
                   "finds the CUDA toolkit; it is not beside %s (or set NNC_CUDA_RUNTIME to its path)", self[0] ? self : "nnc");
    return loaded;
}

bool runner_open(Runner *r, const Compiled *c, int opt_level)
{
    memset(r, 0, sizeof *r);
    char err[4096];
    r->cuda = c->target->gpu;
    if (r->cuda && !load_cuda_runtime_()) return false;
    nnc_jit_options jo = {.opt_level = opt_level > 0 ? 2 : 1, .native = 1, .link_blas = 1};
    r->jit = nnc_jit_compile(c->c_text, "model.c", &jo, err, sizeof err);
    if (!r->jit) {
        diag_fatal("could not build the generated C: %s", err);
        return false;
    }
    size_t (*size)(void) = (size_t(*)(void))sym_(r, "nnc_jit_model_size");
    const nnc_tensor_info *(*tensors)(int *) = (const nnc_tensor_info *(*)(int *))sym_(r, "nnc_jit_tensors");
    if (r->cuda) {
        r->cuda_init = (int (*)(void *, uint64_t))sym_(r, "nnc_jit_cuda_init");
        r->cuda_free = (void (*)(void *))sym_(r, "nnc_jit_cuda_free");
        r->cuda_error = (const char *(*)(void *))sym_(r, "nnc_jit_cuda_error");
        r->cuda_device = (const char *(*)(void *))sym_(r, "nnc_jit_cuda_device");
        r->cuda_pull = (int (*)(void *, void *))sym_(r, "nnc_jit_cuda_pull");
        r->cuda_push = (int (*)(void *, const void *))sym_(r, "nnc_jit_cuda_push");
    } else {
        r->init = (void (*)(void *, uint64_t))sym_(r, "nnc_jit_init");
    }
    r->predict = (void (*)(void *, int, void *const *))sym_(r, "nnc_jit_predict");
    r->train_step = (float (*)(void *, int, void *const *, float *))sym_(r, "nnc_jit_train_step");
    r->eval = (float (*)(void *, int, void *const *, float *))sym_(r, "nnc_jit_eval");
    bool have = r->cuda ? r->cuda_init && r->cuda_free && r->cuda_error && r->cuda_device && r->cuda_pull && r->cuda_push
                        : r->init != NULL;
    if (!size || !tensors || !have || !r->predict || !r->train_step || !r->eval) {
        runner_close(r);
        return false;
    }
    r->size = size();
    r->tensors = tensors(&r->ntensors);
    r->handle = xcalloc(1, r->size);
    r->model = r->handle;
    if (r->cuda) { /* the handle is the generated struct; the tensors' host copy is the device image's size */
        size_t (*image)(void) = (size_t(*)(void))sym_(r, "nnc_jit_image_size");
        if (!image) {
            runner_close(r);
            return false;
        }
        r->size = image();
        r->model = xcalloc(1, r->size ? r->size : 1);
    }
    set_threads_();
    return true;
}

bool runner_init(Runner *r, uint64_t seed)
{
    if (!r->cuda) {
        r->init(r->model, seed);
        return true;
    }
    if (r->cuda_init(r->handle, seed) != 0) {
        diag_fatal("%s", r->cuda_error(r->handle));
        return false;
    }
    return runner_pull(r);
}

bool runner_pull(Runner *r)
{
    if (!r->cuda) return true;
    if (r->cuda_pull(r->handle, r->model) == 0) return true;
    diag_fatal("%s", r->cuda_error(r->handle));
    return false;
}

bool runner_push(Runner *r)
{
    if (!r->cuda) return true;
    if (r->cuda_push(r->handle, r->model) == 0) return true;
    diag_fatal("%s", r->cuda_error(r->handle));
    return false;
}

void runner_close(Runner *r)
{
    if (r->cuda && r->handle && r->cuda_free) r->cuda_free(r->handle);
    if (r->handle != r->model) free(r->handle);
    free(r->model);
    if (r->jit) nnc_jit_free(r->jit);
    memset(r, 0, sizeof *r);
}

bool runner_load_st(Runner *r, const nnc_safetensors *st, const char *path, int flags)
{
    char err[1024];
    int loaded = 0, unused = 0;
    bool ok = nnc_model_load(st, path, r->model, r->tensors, r->ntensors, flags, &loaded, &unused, err, sizeof err) == 0;
    if (!ok) diag_fatal("%s", err);
    return ok && runner_push(r);
}

bool runner_load_weights(Runner *r, const char *path, int flags, nnc_safetensors *keep)
{
    char err[1024];
    nnc_safetensors st = {0};
    if (nnc_st_read(path, &st, err, sizeof err) != 0) {
        diag_fatal("%s", err);
        return false;
    }
    bool ok = runner_load_st(r, &st, path, flags);
    if (keep)
        *keep = st;
    else
        nnc_st_free(&st);
    return ok;
}

/* ---- data -------------------------------------------------------------------------------------------------- */
static const IOSlot *slot_(const Model *m, int k, bool *target)
{
    *target = k >= m->inputs.len;
    return *target ? &m->targets.data[k - m->inputs.len] : &m->inputs.data[k];
}

static void squeeze_(const int64_t *d, int rank, int64_t *out, int *orank)
{
    *orank = 0;
    for (int i = 0; i < rank; i++)
        if (d[i] != 1) out[(*orank)++] = d[i];
}

/* the file's per-sample shape (its shape without the first axis) fits the declared one: equal, its
 * flattening, or equal once axes of extent 1 are dropped ([28,28] for [28,28,1]) */
static bool sample_shape_fits_(const nnc_array *a, Shape declared)
{
    int64_t want[MAX_RANK], have[MAX_RANK], sw[MAX_RANK], sh[MAX_RANK];
    int nw = declared.rank - 1, nh = a->rank - 1, rw, rh;
    for (int i = 0; i < nw; i++) want[i] = declared.d[i + 1];
    for (int i = 0; i < nh; i++) have[i] = a->shape[i + 1];
    int64_t pw = 1, ph = 1;
    for (int i = 0; i < nw; i++) pw *= want[i];
    for (int i = 0; i < nh; i++) ph *= have[i];
    if (pw != ph) return false;
    if (nh <= 1) return true; /* the flattening (or a vector of scalars) */
    squeeze_(want, nw, sw, &rw);
    squeeze_(have, nh, sh, &rh);
    if (rw != rh) return false;
    for (int i = 0; i < rw; i++)
        if (sw[i] != sh[i]) return false;
    return true;
}

static void array_shape_text_(const nnc_array *a, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < a->rank && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? "," : "", a->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static bool shape_fits_or_report_(const IOSlot *io, const char *path, const nnc_array *a)
{
    char want[96], have[96];
    Shape per = io->shape;
    if (a->rank < 1 || !sample_shape_fits_(a, per)) {
        Shape ps = {.rank = per.rank - 1}; /* the per-sample shape */
        for (int i = 1; i < per.rank; i++) ps.d[i - 1] = per.d[i];
        char *w = shape_str(ps, want, sizeof want);
        array_shape_text_(a, have, sizeof have);
        diag_fatal("%s: '%s' takes samples of shape %s (a file of shape [N, ...] with that per-sample shape), but the file has shape %s",
                   path, io->name, w, have);
        return false;
    }
    return true;
}

/* The header first: a file of the wrong shape is refused before its data is read or decompressed. */
static bool load_one_(const IOSlot *io, const char *path, nnc_array *out)
{
    char err[1024];
    if (nnc_data_read_header(path, out, err, sizeof err) != 0) {
        diag_fatal("%s", err);
        return false;
    }
    bool fits = shape_fits_or_report_(io, path, out);
    nnc_array_free(out);
    if (!fits) return false;
    if (nnc_data_read(path, out, err, sizeof err) != 0) {
        diag_fatal("%s", err);
        return false;
    }
    if (!shape_fits_or_report_(io, path, out)) return false; /* the file changed since its header was read */
    nnc_dtype to = io->dtype == DT_I32 ? NNC_I32 : NNC_F32;
    if (nnc_array_convert(out, to, path, err, sizeof err) != 0) {
        diag_fatal("%s", err);
        return false;
    }
    return true;
}

static bool check_classes_(const IOSlot *io, const nnc_array *a, const char *path)
{
    if (!io->classes) return true;
    const int32_t *d = a->data;
    int64_t n = nnc_array_count(a);
    for (int64_t i = 0; i < n; i++)
        if (d[i] < 0 || d[i] >= io->classes) {
            diag_fatal("%s: label %d at sample %" PRId64 " is out of range: '%s' has %d classes (0 to %d)", path, d[i],
                       i, io->name, io->classes, io->classes - 1);
            return false;
        }
    return true;
}

static const char *names_list_(const Model *m, bool targets)
{
    static char buf[512];
    buf[0] = 0;
    for (int k = 0; k < m->inputs.len + (targets ? m->targets.len : 0); k++) {
        bool t;
        const IOSlot *io = slot_(m, k, &t);
        if (k) strncat(buf, ", ", sizeof buf - strlen(buf) - 1);
        strncat(buf, io->name, sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

/* the file of each slot (inputs, then targets) from the bindings; reports a binding the model cannot take */
static bool bind_paths_(const Model *m, const Binding *b, int nb, bool targets, const char *what, const char **paths)
{
    int slots = m->inputs.len + (targets ? m->targets.len : 0);
    if (slots > 16) {
        diag_fatal("the model has more than 16 inputs and targets");
        return false;
    }
    for (int k = 0; k < slots; k++) paths[k] = NULL;
    for (int i = 0; i < nb; i++) {
        int hit = -1;
        if (!b[i].name) {
            if (slots != 1) {
                diag_fatal("%s %s: say which input or target it is (NAME=FILE); the model has %s", what, b[i].path,
                           names_list_(m, targets));
                return false;
            }
            hit = 0;
        }
        for (int k = 0; k < slots && hit < 0; k++) {
            bool t;
            if (str_eq(slot_(m, k, &t)->name, b[i].name)) hit = k;
        }
        if (hit < 0) {
            diag_fatal("%s %s=%s: the model has no %s named '%s' (it has %s)", what, b[i].name, b[i].path,
                       targets ? "input or target" : "input", b[i].name, names_list_(m, targets));
            return false;
        }
        bool t;
        if (paths[hit]) {
            diag_fatal("%s: '%s' is bound twice ('%s' and '%s')", what, slot_(m, hit, &t)->name, paths[hit], b[i].path);
            return false;
        }
        paths[hit] = b[i].path;
    }
    for (int k = 0; k < slots; k++) {
        bool t;
        const IOSlot *io = slot_(m, k, &t);
        if (!paths[k]) {
            diag_fatal("%s: no data for %s '%s' (use %s %s=FILE)", what, t ? "target" : "input", io->name, what, io->name);
            return false;
        }
    }
    return true;
}

bool data_bindings_ok(const Model *m, const Binding *b, int nb, bool targets, const char *what)
{
    const char *paths[16];
    return bind_paths_(m, b, nb, targets, what, paths);
}

bool data_bind(const Model *m, const Binding *b, int nb, bool targets, const char *what, DataSet *ds)
{
    memset(ds, 0, sizeof *ds);
    const char *paths[16];
    if (!bind_paths_(m, b, nb, targets, what, paths)) return false;
    int slots = m->inputs.len + (targets ? m->targets.len : 0);
    ds->n = slots;
    for (int k = 0; k < slots; k++) {
        bool t;
        const IOSlot *io = slot_(m, k, &t);
        ds->path[k] = paths[k];
        if (!load_one_(io, paths[k], &ds->arr[k]) || !check_classes_(io, &ds->arr[k], paths[k])) {
            data_free(ds);
            return false;
        }
        ds->per_sample[k] = shape_per_sample(io->shape);
        int64_t count = ds->arr[k].shape[0];
        if (k == 0) ds->count = count;
        if (count != ds->count) {
            diag_fatal("%s: %s has %" PRId64 " samples but %s has %" PRId64, what, paths[k], count, paths[0], ds->count);
            data_free(ds);
            return false;
        }
    }
    if (ds->count == 0) {
        diag_fatal("%s: %s has no samples", what, paths[0]);
        data_free(ds);
        return false;
    }
    return true;
}

void data_free(DataSet *ds)
{
    for (int k = 0; k < 16; k++) nnc_array_free(&ds->arr[k]);
    memset(ds, 0, sizeof *ds);
}

/* ---- the built-in Fashion-MNIST (Debian package dataset-fashion-mnist) -------------------------------------- */
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

bool data_fashion_mnist(const Model *m, const char *split, bool targets, DataSet *ds)
{
    memset(ds, 0, sizeof *ds);
    if (m->inputs.len != 1 || (targets && m->targets.len != 1)) {
        diag_fatal("--data fashion-mnist binds one input%s; the model has %d inputs and %d targets",
                   targets ? " and one target" : "", m->inputs.len, m->targets.len);
        return false;
    }
    const IOSlot *in = &m->inputs.data[0], *tg = targets ? &m->targets.data[0] : NULL;
    if (in->dtype != DT_F32 || shape_per_sample(in->shape) != 784) {
        diag_fatal("--data fashion-mnist: input '%s' must be f32 with 784 values per sample, like [28,28,1]", in->name);
        return false;
    }
    bool onehot = tg && tg->dtype == DT_F32 && tg->shape.rank == 2 && tg->shape.d[1] == 10;
    bool index = !tg || (tg->dtype == DT_I32 && shape_per_sample(tg->shape) == 1);
    if (!onehot && !index) {
        diag_fatal("--data fashion-mnist: target '%s' must be i32[] (class index) or f32[10] (one-hot)", tg->name);
        return false;
    }
    char ipath[256], lpath[256], err[1024];
    snprintf(ipath, sizeof ipath, FASHION_DIR "/%s-images-idx3-ubyte.gz", split);
    snprintf(lpath, sizeof lpath, FASHION_DIR "/%s-labels-idx1-ubyte.gz", split);
    nnc_array img = {0}, lab = {0};
    if (nnc_idx_read(ipath, &img, err, sizeof err) != 0 || nnc_idx_read(lpath, &lab, err, sizeof err) != 0) {
        diag_fatal("%s (install the Debian package dataset-fashion-mnist)", err);
        nnc_array_free(&img);
        return false;
    }
    int64_t n = img.shape[0];
    float *x = xmalloc(sizeof(float) * (size_t)(n * 784));
    for (int64_t i = 0; i < n * 784; i++) x[i] = (float)((const uint8_t *)img.data)[i] / 255.0f;
    nnc_array_free(&img);
    ds->arr[0] = (nnc_array){.dtype = NNC_F32, .rank = 4, .shape = {n, 28, 28, 1}, .data = x};
    ds->n = 1;
    ds->count = n;
    ds->per_sample[0] = 784;
    ds->path[0] = FASHION_DIR;
    if (!tg) {
        nnc_array_free(&lab);
        return true;
    }
    if (index) {
        if (nnc_array_convert(&lab, NNC_I32, lpath, err, sizeof err) != 0) {
            diag_fatal("%s", err);
            return false;
        }
        ds->arr[1] = lab;
    } else {
        float *y = xcalloc((size_t)(n * 10), sizeof(float));
        for (int64_t i = 0; i < n; i++) y[i * 10 + ((const uint8_t *)lab.data)[i] % 10] = 1;
        nnc_array_free(&lab);
        ds->arr[1] = (nnc_array){.dtype = NNC_F32, .rank = 2, .shape = {n, 10}, .data = y};
    }
    ds->n = 2;
    ds->per_sample[1] = shape_per_sample(tg->shape);
    ds->path[1] = FASHION_DIR;
    return true;
}
