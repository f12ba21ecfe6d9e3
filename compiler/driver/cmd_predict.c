/* cmd_predict.c: `nnc predict`: compile, build in-process, run every sample through M_predict in batches
 * of at most --batch, and write the outputs as .npy files. */
#include "run.h"

#include <inttypes.h>
#include <string.h>

typedef struct Outputs {
    int n;
    nnc_array arr[16];
    const char *path[16];
} Outputs;

static const char see_[] = "(see 'nnc predict --help')\n";

static const char *outputs_list_(const Model *m)
{
    static char buf[512];
    buf[0] = 0;
    for (int k = 0; k < m->outputs.len; k++) {
        if (k) strncat(buf, ", ", sizeof buf - strlen(buf) - 1);
        strncat(buf, m->outputs.data[k].name, sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

/* -o FILE: the first output; -o NAME=FILE: that output. EXIT_USAGE for an output the model lacks, one
 * given twice, or two outputs into one file. */
static int choose_outputs_(const Options *o, const Model *m, Outputs *out)
{
    memset(out, 0, sizeof *out);
    out->n = m->outputs.len;
    if (out->n > 16) {
        diag_fatal("the model has more than 16 outputs");
        return EXIT_INPUT;
    }
    if (o->out) out->path[0] = o->out;
    for (int i = 0; i < o->outs.len; i++) {
        const Binding *b = &o->outs.data[i];
        int k = -1;
        for (int j = 0; j < m->outputs.len; j++)
            if (str_eq(m->outputs.data[j].name, b->name)) k = j;
        if (k < 0) {
            diag_fatal("-o %s=%s: the model has no output named '%s' (it has %s)", b->name, b->path, b->name,
                       outputs_list_(m));
            fputs(see_, stderr);
            return EXIT_USAGE;
        }
        if (out->path[k]) {
            diag_fatal("-o %s and -o %s=%s both write output '%s'", out->path[k], b->name, b->path, b->name);
            fputs(see_, stderr);
            return EXIT_USAGE;
        }
        out->path[k] = b->path;
    }
    for (int k = 0; k < out->n; k++)
        for (int j = 0; j < k; j++)
            if (out->path[k] && out->path[j] && str_eq(out->path[k], out->path[j])) {
                diag_fatal("outputs '%s' and '%s' are both written to %s", m->outputs.data[j].name,
                           m->outputs.data[k].name, out->path[k]);
                fputs(see_, stderr);
                return EXIT_USAGE;
            }
    for (int k = 0; k < out->n; k++)
        if (out->path[k] && !output_allowed(o, "-o", out->path[k])) return EXIT_USAGE;
    return EXIT_OK;
}

static void alloc_outputs_(const Model *m, int64_t count, Outputs *out)
{
    for (int k = 0; k < m->outputs.len; k++) {
        const IOSlot *s = &m->outputs.data[k];
        nnc_array *a = &out->arr[k];
        a->dtype = s->dtype == DT_I32 ? NNC_I32 : NNC_F32;
        a->rank = s->shape.rank;
        a->shape[0] = count;
        for (int i = 1; i < s->shape.rank; i++) a->shape[i] = s->shape.d[i];
        a->data = xcalloc((size_t)(count * shape_per_sample(s->shape)), 4);
    }
}

static void run_batches_(Runner *r, const Model *m, const DataSet *ds, Outputs *out, int batch)
{
    void *io[32];
    int nin = m->inputs.len;
    for (int64_t s = 0; s < ds->count; s += batch) {
        int n = (int)(ds->count - s < batch ? ds->count - s : batch);
        for (int k = 0; k < nin; k++) io[k] = (char *)ds->arr[k].data + s * ds->per_sample[k] * 4;
        for (int k = 0; k < m->outputs.len; k++)
            io[nin + k] = (char *)out->arr[k].data + s * shape_per_sample(m->outputs.data[k].shape) * 4;
        r->predict(r->handle, n, io);
    }
}

int cmd_predict(const Options *o)
{
    if (!o->out && o->outs.len == 0) {
        fprintf(stderr, "nnc: error: predict needs -o OUT.npy (or -o NAME=FILE)\n(see 'nnc predict --help')\n");
        return EXIT_USAGE;
    }
    const nnc_safetensors *initializers = default_weights(o->model_path, o->weights);
    if (!o->weights && !initializers && !onnx_is_model_path(o->model_path)) {
        fprintf(stderr, "nnc: error: predict needs --weights W.safetensors\n(see 'nnc predict --help')\n");
        return EXIT_USAGE;
    }
    if (o->data.len == 0 && !o->builtin_fashion) {
        fprintf(stderr, "nnc: error: predict needs --data NAME=FILE for the model's inputs\n(see 'nnc predict --help')\n");
        return EXIT_USAGE;
    }
    onnx_alias_bindings(o->model_path, o->data.data, o->data.len, false);
    onnx_alias_bindings(o->model_path, o->outs.data, o->outs.len, true);
    CompileOptions co = run_compile_options(o, true);
    Compiled *c = compile_model(&co, true);
    if (!c) return EXIT_INPUT;
    if (!compiled_check_ram(c, o->max_ram)) {
        compiled_free(c);
        return EXIT_INPUT;
    }
    int rc = EXIT_INPUT;
    Runner r = {0};
    DataSet ds = {0};
    Outputs out = {0};
    rc = choose_outputs_(o, c->m, &out);
    if (rc == EXIT_OK && !o->builtin_fashion && !data_bindings_ok(c->m, o->data.data, o->data.len, false, "--data")) {
        fputs(see_, stderr);
        rc = EXIT_USAGE;
    }
    if (rc != EXIT_OK) goto done;
    rc = EXIT_INPUT;
    bool bound = o->builtin_fashion ? data_fashion_mnist(c->m, "t10k", false, &ds) /* the test images */
                                    : data_bind(c->m, o->data.data, o->data.len, false, "--data", &ds);
    if (!bound) goto done;
    if (!runner_open(&r, c, o->opt_level)) goto done;
    if (!runner_init(&r, 0)) goto done;
    if (o->weights ? !runner_load_weights(&r, o->weights, NNC_LOAD_PARAMS | NNC_LOAD_STATE, NULL)
                   : !runner_load_st(&r, initializers, o->model_path, NNC_LOAD_PARAMS | NNC_LOAD_STATE))
        goto done;
    alloc_outputs_(c->m, ds.count, &out);
    run_batches_(&r, c->m, &ds, &out, c->max_batch);
    rc = EXIT_OK;
    for (int k = 0; k < out.n; k++) {
        char err[1024];
        if (out.path[k] && nnc_npy_write(out.path[k], &out.arr[k], err, sizeof err) != 0) {
            diag_fatal("%s", err);
            rc = EXIT_INPUT;
        }
    }
done:
    for (int k = 0; k < out.n; k++) nnc_array_free(&out.arr[k]);
    data_free(&ds);
    runner_close(&r);
    compiled_free(c);
    return rc;
}
