/* cmd_train.c: `nnc train`: compile, build in-process, and run the generated train step over the data.
 *
 * Epochs of seeded shuffled batches (a partial last batch is trained too), validation after each epoch, a
 * progress line per epoch (a live bar on a terminal), an optional CSV log, and an atomic save of every
 * parameter, state and optimizer tensor plus where training stood ("train.epoch", "train.batch"), so that
 * --weights of that file resumes exactly: 2 + 2 epochs give the weights of 4, bit for bit.
 * The permutation of epoch e depends only on the seed and e. A NaN or infinite loss or weight stops
 * training with exit 3, naming the epoch and step; Ctrl-C saves first, then exits 130.
 */
#include "run.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted_;
static void on_sigint_(int sig)
{
    (void)sig;
    interrupted_ = 1;
}

static double now_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the epoch's order: Fisher-Yates with xoshiro128** seeded from (seed, epoch) ------------------------ */
static uint32_t rotl_(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static uint32_t next_(uint32_t *s)
{
    const uint32_t r = rotl_(s[1] * 5, 7) * 9, t = s[1] << 9;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl_(s[3], 11);
    return r;
}

static void seed_(uint32_t *s, uint64_t seed)
{
    for (int i = 0; i < 4; i += 2) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        z ^= z >> 31;
        s[i] = (uint32_t)z, s[i + 1] = (uint32_t)(z >> 32);
    }
    if (!(s[0] | s[1] | s[2] | s[3])) s[0] = 1;
}

static void epoch_order_(int64_t *perm, int64_t n, uint64_t seed, int epoch, bool shuffle)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    if (!shuffle) return;
    uint32_t s[4];
    seed_(s, seed ^ (0x5851f42d4c957f2dull * (uint64_t)(epoch + 1)));
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t r = ((uint64_t)next_(s) << 32 | next_(s)) % (uint64_t)(i + 1);
        int64_t t = perm[i];
        perm[i] = perm[r], perm[r] = t;
    }
}

/* ---- batches ----------------------------------------------------------------------------------------------- */
typedef struct Batch {
    void *buf[16];
    void *io[16];
} Batch;

static void batch_alloc_(Batch *b, const DataSet *ds, int batch)
{
    for (int k = 0; k < ds->n; k++) b->buf[k] = xmalloc((size_t)(batch * ds->per_sample[k]) * 4);
}

static void batch_free_(Batch *b)
{
    for (int k = 0; k < 16; k++) free(b->buf[k]);
}

/* gather rows perm[from .. from+n) of every array; in file order the arrays are used in place */
static void batch_fill_(Batch *b, const DataSet *ds, const int64_t *perm, int64_t from, int n, bool in_order)
{
    for (int k = 0; k < ds->n; k++) {
        size_t row = (size_t)ds->per_sample[k] * 4;
        const char *src = ds->arr[k].data;
        if (in_order) {
            b->io[k] = (char *)src + (size_t)from * row;
            continue;
        }
        for (int i = 0; i < n; i++) memcpy((char *)b->buf[k] + (size_t)i * row, src + (size_t)perm[from + i] * row, row);
        b->io[k] = b->buf[k];
    }
}

/* ---- progress ---------------------------------------------------------------------------------------------- */
typedef struct Progress {
    bool tty, quiet;
    double last_draw;
    int metrics;
    const Model *m;
} Progress;

static void fmt_metrics_(char *buf, size_t n, const Model *m, const char *prefix, double loss, const double *met)
{
    size_t k = (size_t)snprintf(buf, n, "  %sloss %.4f", prefix, loss);
    for (int i = 0; i < m->metrics.len && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "  %s%s %.4f", prefix, m->metrics.data[i].name, met[i]);
}

static void progress_draw_(Progress *p, int epoch, int epochs, int64_t done, int64_t total, double secs, double loss,
                           const double *met, const char *val, bool final)
{
    if (p->quiet) return;
    double t = now_();
    if (!final && (!p->tty || t - p->last_draw < 0.1)) return;
    p->last_draw = t;
    char m[512];
    fmt_metrics_(m, sizeof m, p->m, "", loss, met);
    int width = (int)log10((double)(total > 0 ? total : 1)) + 1;
    if (p->tty) fputs("\r\033[K", stderr);
    fprintf(stderr, "epoch %d/%d  %*" PRId64 "/%" PRId64 "  %.1fs%s%s", epoch, epochs, width, done, total, secs, m,
            val ? val : "");
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

/* ---- evaluation ---------------------------------------------------------------------------------------------- */
static double evaluate_(Runner *r, const DataSet *ds, int batch, double *met, int nmet)
{
    double loss = 0, mt[64] = {0};
    float mb[64];
    void *io[16];
    for (int k = 0; k < nmet; k++) met[k] = 0;
    for (int64_t s = 0; s < ds->count; s += batch) {
        int n = (int)(ds->count - s < batch ? ds->count - s : batch);
        for (int k = 0; k < ds->n; k++) io[k] = (char *)ds->arr[k].data + (size_t)(s * ds->per_sample[k]) * 4;
        loss += (double)r->eval(r->handle, n, io, mb) * n;
        for (int k = 0; k < nmet; k++) mt[k] += (double)mb[k] * n;
    }
    for (int k = 0; k < nmet; k++) met[k] = mt[k] / (double)ds->count;
    return loss / (double)ds->count;
}

/* ---- checkpoints ---------------------------------------------------------------------------------------------- */
static bool save_(Runner *r, const char *path, int32_t epoch, int32_t batch)
{
    static int32_t e, b;
    e = epoch, b = batch;
    nnc_st_tensor extra[2] = {{.name = "train.epoch", .dtype = NNC_I32, .rank = 0, .data = &e, .nbytes = 4},
                              {.name = "train.batch", .dtype = NNC_I32, .rank = 0, .data = &b, .nbytes = 4}};
    char err[1024];
    if (!runner_pull(r)) return false;
    if (nnc_model_save(path, r->model, r->tensors, r->ntensors, extra, 2, err, sizeof err) != 0) {
        diag_fatal("%s", err);
        return false;
    }
    return true;
}

static bool weights_finite_(Runner *r, const char **bad)
{
    if (!runner_pull(r)) return false; /* --target cuda: the device's weights (a copy per step) */
    for (int i = 0; i < r->ntensors; i++) {
        const nnc_tensor_info *t = &r->tensors[i];
        if (t->kind != 0 || t->dtype != 0) continue;
        int64_t n = 1;
        for (int k = 0; k < t->rank; k++) n *= t->shape[k];
        const float *p = (const float *)((const char *)r->model + t->offset);
        for (int64_t j = 0; j < n; j++)
            if (!isfinite(p[j])) {
                *bad = t->name;
                return false;
            }
    }
    return true;
}

/* A position entry ("train.epoch", "train.batch") of a checkpoint: absent, or one i32 (or i64) from 0 to
 * INT32_MAX. Reports a bad one, naming the file. */
static bool st_position_(const nnc_safetensors *st, const char *path, const char *name, bool *present, int64_t *v)
{
    const nnc_st_tensor *t = nnc_st_find(st, name);
    *present = t != NULL, *v = 0;
    if (!t) return true;
    int64_t count = 1;
    for (int i = 0; i < t->rank; i++) count *= t->shape[i];
    size_t size = t->dtype == NNC_I32 ? 4 : t->dtype == NNC_I64 ? 8 : 0;
    if (!size || count != 1 || t->nbytes != size) {
        diag_fatal("%s: '%s' must be one integer (an i32: where training stood), but it is not", path, name);
        return false;
    }
    if (size == 4) {
        int32_t x;
        memcpy(&x, t->data, 4);
        *v = x;
    } else {
        memcpy(v, t->data, 8);
    }
    if (*v < 0 || *v > INT32_MAX) {
        diag_fatal("%s: '%s' is %" PRId64 "; a position must be from 0 to %d", path, name, *v, INT32_MAX);
        return false;
    }
    return true;
}

static bool same_path_(const char *a, const char *b)
{
    struct stat sa, sb;
    return str_eq(a, b) || (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

static char *default_save_(const char *model)
{
    size_t n = strlen(model);
    char *s = xmalloc(n + 16);
    memcpy(s, model, n + 1);
    char *dot = strrchr(s, '.'), *slash = strrchr(s, '/');
    if (dot && (!slash || dot > slash)) *dot = 0;
    strcat(s, ".safetensors");
    return s;
}

/* ---- the loop ------------------------------------------------------------------------------------------------- */
typedef struct Train {
    const Options *o;
    const Model *m;
    Runner r;
    DataSet data, val;
    bool has_val;
    int batch, epochs, start_epoch, start_batch;
    bool shuffle;
    FILE *log;
    const char *save_path;
    int64_t steps;
    bool val_current; /* last_val* are of the final weights */
    double last_vloss, last_vmet[64];
} Train;

static void log_header_(Train *t)
{
    if (!t->log) return;
    fputs("epoch,loss", t->log);
    for (int i = 0; i < t->m->metrics.len; i++) fprintf(t->log, ",%s", t->m->metrics.data[i].name);
    if (t->has_val) {
        fputs(",val_loss", t->log);
        for (int i = 0; i < t->m->metrics.len; i++) fprintf(t->log, ",val_%s", t->m->metrics.data[i].name);
    }
    fputs(",seconds\n", t->log);
    fflush(t->log);
}

static void log_row_(Train *t, int epoch, double loss, const double *met, double vloss, const double *vmet, double secs)
{
    if (!t->log) return;
    fprintf(t->log, "%d,%.9g", epoch, loss);
    for (int i = 0; i < t->m->metrics.len; i++) fprintf(t->log, ",%.9g", met[i]);
    if (t->has_val) {
        fprintf(t->log, ",%.9g", vloss);
        for (int i = 0; i < t->m->metrics.len; i++) fprintf(t->log, ",%.9g", vmet[i]);
    }
    fprintf(t->log, ",%.3f\n", secs);
    fflush(t->log);
}

/* one epoch; returns EXIT_OK, EXIT_DIVERGED or -1 when stopped early (steps, Ctrl-C) */
static int run_epoch_(Train *t, Progress *p, int epoch, int64_t *perm, Batch *b, double *loss_out, double *met_out, int *stopped_at)
{
    const DataSet *ds = &t->data;
    int nmet = t->m->metrics.len;
    int64_t nb = (ds->count + t->batch - 1) / t->batch;
    double t0 = now_(), sum = 0, msum[64] = {0};
    int64_t seen = 0;
    float mb[64];
    epoch_order_(perm, ds->count, t->o->seed, epoch, t->shuffle);
    int first = epoch == t->start_epoch ? t->start_batch : 0;
    for (int64_t k = first; k < nb; k++) {
        int64_t from = k * t->batch;
        int n = (int)(ds->count - from < t->batch ? ds->count - from : t->batch);
        batch_fill_(b, ds, perm, from, n, !t->shuffle);
        float loss = t->r.train_step(t->r.handle, n, b->io, mb);
        t->steps++;
        const char *bad = NULL;
        /* a GPU model's weights come back from the device for the check: every 64 steps and at an epoch's end
         * (a NaN weight makes the loss NaN at the next step anyway) */
        bool check = !t->r.cuda || t->steps % 64 == 0 || k + 1 == nb;
        if (!isfinite(loss) || (check && !weights_finite_(&t->r, &bad))) {
            if (p->tty && !p->quiet) fputc('\n', stderr);
            if (bad)
                diag_fatal("training diverged at epoch %d, step %" PRId64 ": weight '%s' became %s", epoch + 1, k + 1,
                           bad, "NaN or infinite");
            else
                diag_fatal("training diverged at epoch %d, step %" PRId64 ": the loss is %s", epoch + 1, k + 1,
                           isnan(loss) ? "NaN" : "infinite");
            fprintf(stderr, "nnc: the weights were not saved; lower the learning rate or check the data\n");
            return EXIT_DIVERGED;
        }
        sum += (double)loss * n;
        for (int i = 0; i < nmet; i++) msum[i] += (double)mb[i] * n;
        seen += n;
        double avg[64];
        for (int i = 0; i < nmet; i++) avg[i] = msum[i] / (double)seen;
        progress_draw_(p, epoch + 1, t->start_epoch + t->epochs, k + 1, nb, now_() - t0, sum / (double)seen, avg, NULL, false);
        bool last = k + 1 == nb;
        if (!last && ((t->o->steps && t->steps >= t->o->steps) || interrupted_)) {
            *stopped_at = (int)(k + 1);
            *loss_out = sum / (double)seen;
            for (int i = 0; i < nmet; i++) met_out[i] = avg[i];
            return -1;
        }
    }
    *loss_out = seen ? sum / (double)seen : 0;
    for (int i = 0; i < nmet; i++) met_out[i] = seen ? msum[i] / (double)seen : 0;
    return EXIT_OK;
}

static int train_loop_(Train *t)
{
    Progress p = {.tty = isatty(2), .quiet = t->o->quiet, .m = t->m};
    int64_t *perm = xmalloc(sizeof(int64_t) * (size_t)t->data.count);
    Batch b = {0};
    batch_alloc_(&b, &t->data, t->batch);
    int nmet = t->m->metrics.len, rc = EXIT_OK;
    log_header_(t);
    for (int e = t->start_epoch; e < t->start_epoch + t->epochs; e++) {
        double t0 = now_(), loss, met[64], vloss = 0, vmet[64] = {0};
        int stopped = 0;
        t->val_current = false;
        int r = run_epoch_(t, &p, e, perm, &b, &loss, met, &stopped);
        if (r == EXIT_DIVERGED) {
            rc = r;
            break;
        }
        char val[512] = "";
        if (r == 0 && t->has_val) {
            vloss = evaluate_(&t->r, &t->val, t->batch, vmet, nmet);
            fmt_metrics_(val, sizeof val, t->m, "val_", vloss, vmet);
            t->val_current = true;
            t->last_vloss = vloss;
            memcpy(t->last_vmet, vmet, sizeof vmet);
        }
        int64_t nb = (t->data.count + t->batch - 1) / t->batch;
        progress_draw_(&p, e + 1, t->start_epoch + t->epochs, r < 0 ? stopped : nb, nb, now_() - t0, loss, met, val, true);
        if (r < 0) { /* stopped inside the epoch: save the position */
            if (!save_(&t->r, t->save_path, e, stopped)) rc = EXIT_INPUT;
            if (interrupted_) rc = 130;
            goto out;
        }
        log_row_(t, e + 1, loss, met, vloss, vmet, now_() - t0);
        if (t->o->steps && t->steps >= t->o->steps) {
            if (!save_(&t->r, t->save_path, e + 1, 0)) rc = EXIT_INPUT;
            goto out;
        }
    }
    if (rc == EXIT_OK && !save_(&t->r, t->save_path, t->start_epoch + t->epochs, 0)) rc = EXIT_INPUT;
out:
    if (rc == EXIT_OK && !t->o->quiet) fprintf(stderr, "saved %s\n", t->save_path);
    batch_free_(&b);
    free(perm);
    return rc;
}

/* EXIT_OK, EXIT_USAGE for bindings the model cannot take, EXIT_INPUT for a bad file */
static int bind_data_(Train *t)
{
    const Options *o = t->o;
    if ((!o->builtin_fashion && !data_bindings_ok(t->m, o->data.data, o->data.len, true, "--data")) ||
        (o->val.len && !data_bindings_ok(t->m, o->val.data, o->val.len, true, "--val"))) {
        fputs("(see 'nnc train --help')\n", stderr);
        return EXIT_USAGE;
    }
    if (o->builtin_fashion) {
        if (!data_fashion_mnist(t->m, "train", true, &t->data)) return EXIT_INPUT;
        t->has_val = o->val.len == 0;
        if (t->has_val && !data_fashion_mnist(t->m, "t10k", true, &t->val)) return EXIT_INPUT;
    } else if (!data_bind(t->m, o->data.data, o->data.len, true, "--data", &t->data)) {
        return EXIT_INPUT;
    }
    if (o->val.len) {
        t->has_val = true;
        if (!data_bind(t->m, o->val.data, o->val.len, true, "--val", &t->val)) return EXIT_INPUT;
    }
    return EXIT_OK;
}

/* the saved position, checked against this run's data and batch: a bad one is an error, never ignored */
static bool resume_position_(Train *t, const nnc_safetensors *st)
{
    const char *path = t->o->weights;
    bool has_epoch, has_batch;
    int64_t epoch, batch, nb = (t->data.count + t->batch - 1) / t->batch;
    if (!st_position_(st, path, "train.epoch", &has_epoch, &epoch) || !st_position_(st, path, "train.batch", &has_batch, &batch))
        return false;
    if (has_epoch != has_batch) {
        diag_fatal("%s: has '%s' but no '%s': the saved position is incomplete", path,
                   has_epoch ? "train.epoch" : "train.batch", has_epoch ? "train.batch" : "train.epoch");
        return false;
    }
    if (batch >= nb) {
        diag_fatal("%s: 'train.batch' is %" PRId64 ", but an epoch of these %" PRId64 " samples at batch %d has only %" PRId64
                   " batches (was it saved with other data or another --batch?)", path, batch, t->data.count, t->batch, nb);
        return false;
    }
    t->start_epoch = (int)epoch, t->start_batch = (int)batch;
    return true;
}

/* --weights: read the file and its position before the model is built, so that a bad one fails fast */
static bool resume_read_(Train *t, nnc_safetensors *st)
{
    char err[1024];
    if (nnc_st_read(t->o->weights, st, err, sizeof err) != 0) {
        diag_fatal("%s", err);
        return false;
    }
    return resume_position_(t, st);
}

int cmd_train(const Options *o)
{
    if (o->data.len == 0 && !o->builtin_fashion) {
        fprintf(stderr, "nnc: error: train needs --data NAME=FILE for every input and target (or --data fashion-mnist)\n"
                        "(see 'nnc train --help')\n");
        return EXIT_USAGE;
    }
    CompileOptions co = run_compile_options(o, false);
    Compiled *c = compile_model(&co, true);
    if (!c) return EXIT_INPUT;
    if (!compiled_check_ram(c, o->max_ram)) {
        compiled_free(c);
        return EXIT_INPUT;
    }
    Train t = {.o = o, .m = c->m, .batch = c->max_batch};
    nnc_safetensors st = {0};
    int rc = EXIT_INPUT;
    const Model *m = c->m;
    if ((m->loss < 0 || m->opt.kind == OPT_NONE) && onnx_is_model_path(o->model_path)) {
        diag_fatal("%s: an ONNX model has no loss or optimizer to train with: import it (nnc import %s -o MODEL.nn), "
                   "add a target, a loss and an optimizer to MODEL.nn, and train that with --weights MODEL.safetensors "
                   "(docs/onnx.md)", o->model_path, o->model_path);
        goto done;
    }
    if (m->loss < 0 || m->opt.kind == OPT_NONE) {
        diag_error(m->loc, "model '%s' cannot be trained: it needs %s", m->name,
                   m->loss < 0 ? "a 'loss' statement" : "an 'optimizer' statement, e.g. optimizer adam(lr=0.001)");
        goto done;
    }
    t.epochs = o->epochs ? o->epochs : m->train.epochs ? m->train.epochs : 1;
    t.shuffle = !o->no_shuffle && m->train.shuffle;
    t.save_path = o->save ? xstrdup(o->save) : default_save_(o->model_path);
    if (!output_allowed(o, o->save ? "--save" : "the default --save", t.save_path) ||
        (o->log && !output_allowed(o, "--log", o->log))) {
        rc = EXIT_USAGE;
        goto done;
    }
    if (o->log && same_path_(o->log, t.save_path)) {
        fprintf(stderr, "nnc: error: --log %s is also where the weights are saved\n(see 'nnc train --help')\n", o->log);
        rc = EXIT_USAGE;
        goto done;
    }
    if ((rc = bind_data_(&t)) != EXIT_OK) goto done;
    rc = EXIT_INPUT;
    if (o->weights && !resume_read_(&t, &st)) goto done;
    if (!runner_open(&t.r, c, o->opt_level)) goto done;
    if (!runner_init(&t.r, o->seed)) goto done;
    if (o->weights && !runner_load_st(&t.r, &st, o->weights, NNC_LOAD_PARAMS | NNC_LOAD_OPTIONAL)) goto done;
    const nnc_safetensors *initializers = default_weights(o->model_path, o->weights); /* a .onnx model's */
    if (initializers && !runner_load_st(&t.r, initializers, o->model_path, NNC_LOAD_PARAMS | NNC_LOAD_STATE)) goto done;
    nnc_st_free(&st);
    if (o->steps && !o->epochs) { /* --steps alone: as many epochs as the steps need */
        int64_t nb = (t.data.count + t.batch - 1) / t.batch;
        t.epochs = (int)((o->steps + t.start_batch + nb - 1) / nb);
    }
    if (t.start_epoch > INT32_MAX - t.epochs) {
        diag_fatal("%s: 'train.epoch' is %d; %d more epoch%s would go past epoch %d", o->weights, t.start_epoch, t.epochs,
                   t.epochs == 1 ? "" : "s", INT32_MAX);
        goto done;
    }
    if (o->log && !(t.log = fopen(o->log, "w"))) {
        diag_fatal("cannot write the log '%s'", o->log);
        goto done;
    }
    if (!o->quiet)
        fprintf(stderr, "training %s on %" PRId64 " samples%s, batch %d, %d epoch%s (%s)\n", m->name, t.data.count,
                t.has_val ? arena_printf(&c->arena, ", validating on %" PRId64, t.val.count) : "", t.batch, t.epochs,
                t.epochs == 1 ? "" : "s", nnc_jit_backend(t.r.jit));
    if (!o->quiet && (t.start_epoch || t.start_batch))
        fprintf(stderr, "resuming from %s at epoch %d, batch %d of %" PRId64 "\n", o->weights, t.start_epoch + 1,
                t.start_batch + 1, (t.data.count + t.batch - 1) / t.batch);
    struct sigaction sa = {.sa_handler = on_sigint_}, old;
    sigaction(SIGINT, &sa, &old);
    rc = train_loop_(&t);
    sigaction(SIGINT, &old, NULL);
    if (rc == EXIT_OK && t.has_val && !o->quiet) { /* the last epoch's validation, unless training stopped inside one */
        double met[64], loss = t.val_current ? t.last_vloss : evaluate_(&t.r, &t.val, t.batch, met, m->metrics.len);
        if (t.val_current) memcpy(met, t.last_vmet, sizeof met);
        char buf[512];
        fmt_metrics_(buf, sizeof buf, m, "", loss, met);
        fprintf(stderr, "validation (%" PRId64 " samples): %s\n", t.val.count, buf + 2);
    }
done:
    nnc_st_free(&st);
    if (t.log) fclose(t.log);
    data_free(&t.data);
    data_free(&t.val);
    runner_close(&t.r);
    free((char *)t.save_path);
    compiled_free(c);
    return rc;
}
