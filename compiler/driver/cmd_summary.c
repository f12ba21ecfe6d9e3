/* cmd_summary.c: `nnc summary`: the Keras-style table of layers, output shapes and parameter counts, the
 * totals, FLOPs per sample (flops.c), kernels and arena bytes per entry point; `--json` for tools.
 */
#include "commands.h"
#include "pipeline.h"
#include "flops.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <string.h>

static int64_t arena_bytes_(const EntryCode *ec) { return ec ? (ec->plan->arena_f + ec->plan->arena_i) * 4 : 0; }

static void human_bytes_(int64_t b, char *buf, size_t n)
{
    if (b < 1024) snprintf(buf, n, "%" PRId64 " B", b);
    else if (b < 1024 * 1024) snprintf(buf, n, "%.2f KB", (double)b / 1024);
    else snprintf(buf, n, "%.2f MB", (double)b / (1024 * 1024));
}

static void thousands_(int64_t v, char *buf, size_t n)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%" PRId64, v);
    size_t len = strlen(raw), k = 0;
    for (size_t i = 0; i < len && k + 2 < n; i++) {
        if (i && (len - i) % 3 == 0 && raw[i - 1] != '-') buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = 0;
}

typedef struct Totals {
    int64_t params, trainable, state;
    int64_t flops_fwd, flops_train;
    int64_t arena_predict, arena_train;
    int kernels[ENTRY_COUNT];
} Totals;

static Totals totals_(const Compiled *c)
{
    Totals t = {0};
    const Model *m = c->m;
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *x = &m->tensors.data[i];
        int64_t n = shape_count(x->shape, 1);
        if (x->kind == TK_PARAM) t.params += n, t.trainable += x->trainable ? n : 0;
        if (x->kind == TK_STATE) t.state += n;
    }
    const EntryCode *p = compiled_entry(c, ENTRY_PREDICT), *tr = compiled_entry(c, ENTRY_TRAIN);
    t.flops_fwd = entry_flops_per_sample(p);
    t.flops_train = entry_flops_per_sample(tr);
    t.arena_predict = arena_bytes_(p);
    t.arena_train = arena_bytes_(tr);
    for (int i = 0; i < c->nentries; i++) t.kernels[c->entries[i].kind] = c->entries[i].plan->nkernels;
    return t;
}

static void print_table_(const Compiled *c, const Totals *t)
{
    const Model *m = c->m;
    char sh[96], a[64], b[64];
    printf("Model: %s  (batch %d)\n", m->name, c->max_batch);
    printf("%-36s %-20s %12s\n", "Layer (op)", "Output shape", "Params");
    for (int i = 0; i < 70; i++) putchar('=');
    putchar('\n');
    for (int i = 0; i < m->layers.len; i++) {
        const Layer *l = &m->layers.data[i];
        char name[128];
        snprintf(name, sizeof name, "%s (%s)", l->name, l->op);
        thousands_(l->params, a, sizeof a);
        printf("%-36s %-20s %12s\n", name, shape_str(m->graph->v[l->value].shape, sh, sizeof sh), a);
    }
    for (int i = 0; i < 70; i++) putchar('=');
    putchar('\n');
    thousands_(t->params + t->state, a, sizeof a);
    human_bytes_((t->params + t->state) * 4, b, sizeof b);
    printf("Total params: %s (%s)\n", a, b);
    thousands_(t->trainable, a, sizeof a);
    printf("Trainable params: %s\n", a);
    thousands_(t->params + t->state - t->trainable, a, sizeof a);
    printf("Non-trainable params: %s\n", a);
    thousands_(t->flops_fwd, a, sizeof a);
    printf("FLOPs per sample: forward %s", a);
    if (compiled_entry(c, ENTRY_TRAIN)) {
        thousands_(t->flops_train, b, sizeof b);
        printf(", forward+backward %s", b);
    }
    printf("\nKernels: predict %d", t->kernels[ENTRY_PREDICT]);
    if (compiled_entry(c, ENTRY_EVAL)) printf(", eval %d", t->kernels[ENTRY_EVAL]);
    if (compiled_entry(c, ENTRY_TRAIN)) printf(", train_step %d", t->kernels[ENTRY_TRAIN]);
    human_bytes_(t->arena_predict, a, sizeof a);
    printf("\nArena (scratch) at batch %d: predict %s", c->max_batch, a);
    if (compiled_entry(c, ENTRY_TRAIN)) {
        human_bytes_(t->arena_train, b, sizeof b);
        printf(", train step %s", b);
        human_bytes_(compiled_entry(c, ENTRY_TRAIN)->plan->peak_bytes_lower_bound, b, sizeof b);
        printf(" (lower bound %s)", b);
    }
    human_bytes_(compiled_ram_bytes(c), a, sizeof a);
    printf("\nRAM (the model struct: parameters, state, optimizer, gradients, arena): %s\n", a);
    if (c->target->firmware) {
        human_bytes_(compiled_flash_bytes(c), a, sizeof a);
        printf("Flash (constant data: const parameters, initial values, kernel constants; code not counted): %s\n", a);
    }
}

static void print_json_(const Compiled *c, const Totals *t)
{
    const Model *m = c->m;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", m->name);
    cJSON_AddNumberToObject(o, "batch", c->max_batch);
    cJSON_AddNumberToObject(o, "params", (double)(t->params + t->state));
    cJSON_AddNumberToObject(o, "trainable_params", (double)t->trainable);
    cJSON_AddNumberToObject(o, "flops_forward", (double)t->flops_fwd);
    cJSON_AddNumberToObject(o, "flops_train", (double)t->flops_train);
    cJSON_AddNumberToObject(o, "arena_predict_bytes", (double)t->arena_predict);
    cJSON_AddNumberToObject(o, "arena_train_bytes", (double)t->arena_train);
    cJSON_AddNumberToObject(o, "ram_bytes", (double)compiled_ram_bytes(c));
    if (c->target->firmware) cJSON_AddNumberToObject(o, "flash_bytes", (double)compiled_flash_bytes(c));
    cJSON_AddStringToObject(o, "target", c->target->name);
    cJSON_AddNumberToObject(o, "opt_level", c->opt_level);
    cJSON *k = cJSON_AddObjectToObject(o, "kernels");
    for (int i = 0; i < c->nentries; i++) cJSON_AddNumberToObject(k, entry_names[c->entries[i].kind], t->kernels[c->entries[i].kind]);
    cJSON *nv = cJSON_AddObjectToObject(o, "ir_values");
    for (int i = 0; i < c->nentries; i++) cJSON_AddNumberToObject(nv, entry_names[c->entries[i].kind], c->entries[i].g->n);
    cJSON *ar = cJSON_AddObjectToObject(o, "arena_bytes");
    cJSON *lb = cJSON_AddObjectToObject(o, "arena_lower_bound_bytes");
    for (int i = 0; i < c->nentries; i++) {
        const Plan *p = c->entries[i].plan;
        cJSON_AddNumberToObject(ar, entry_names[c->entries[i].kind], (double)((p->arena_f + p->arena_i) * 4));
        cJSON_AddNumberToObject(lb, entry_names[c->entries[i].kind], (double)p->peak_bytes_lower_bound);
    }
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < m->layers.len; i++) {
        const Layer *l = &m->layers.data[i];
        cJSON *row = cJSON_CreateObject();
        char sh[96];
        cJSON_AddStringToObject(row, "name", l->name);
        cJSON_AddStringToObject(row, "op", l->op);
        cJSON_AddStringToObject(row, "shape", shape_str(m->graph->v[l->value].shape, sh, sizeof sh));
        cJSON_AddNumberToObject(row, "params", (double)l->params);
        cJSON_AddItemToArray(layers, row);
    }
    char *s = cJSON_Print(o);
    puts(s);
    free(s);
    cJSON_Delete(o);
}

static bool co_target_firmware_(const Options *o) { return target_find(o->target)->firmware; }

int cmd_summary(const Options *o)
{
    CompileOptions co = {.model_path = o->model_path,
                         .model_name = o->model_name,
                         .target = target_find(o->target),
                         .batch = o->batch,
                         .opt_level = o->opt_level,
                         .passes = o->passes,
                         .inference_only = o->inference,
                         .weights = o->weights,
                         .weights_set = co_target_firmware_(o) ? default_weights(o->model_path, o->weights) : NULL,
                         .dump_ir = o->dump_ir};
    /* a firmware model's RAM and flash are what the printer writes: it is printed, not saved */
    Compiled *c = compile_model(&co, co.target->firmware);
    if (!c) return EXIT_INPUT;
    if (!compiled_check_ram(c, o->max_ram) || !compiled_check_flash(c, o->max_flash)) {
        compiled_free(c);
        return EXIT_INPUT;
    }
    Totals t = totals_(c);
    if (o->json)
        print_json_(c, &t);
    else
        print_table_(c, &t);
    compiled_free(c);
    return EXIT_OK;
}
