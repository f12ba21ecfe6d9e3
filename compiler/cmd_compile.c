/* cmd_compile.c: `nnc MODEL.nn -o OUT.c` (and --emit) and `nnc check`. */
#include "commands.h"
#include "nnc_runtime.h"
#include "pipeline.h"

#include <string.h>

int cmd_check(const Options *o)
{
    diag_set_warnings(false); /* docs/cli.md: check prints nothing for a valid model */
    Arena a = {0};
    Model *m = front_end(o->model_path, o->model_name, &a);
    int rc = m ? EXIT_OK : EXIT_INPUT;
    arena_free(&a);
    return rc;
}

/* OUT.c -> OUT.h; a name without .c gets .h appended */
static char *header_path_(const char *out)
{
    size_t n = strlen(out);
    char *h = xmalloc(n + 3);
    memcpy(h, out, n + 1);
    if (n > 2 && strcmp(out + n - 2, ".c") == 0) h[n - 1] = 'h';
    else strcat(h, ".h");
    return h;
}

/* MODEL.nn -> MODEL.c beside it */
static char *default_out_(const char *model)
{
    size_t n = strlen(model);
    char *c = xmalloc(n + 3);
    memcpy(c, model, n + 1);
    char *dot = strrchr(c, '.'), *slash = strrchr(c, '/');
    if (dot && (!slash || dot > slash)) *dot = 0;
    strcat(c, ".c");
    return c;
}

static const char *basename_(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool write_text_(const char *path, const char *text)
{
    char err[512];
    if (nnc_write_file_atomic(path, text, strlen(text), err, sizeof err) != 0) {
        diag_fatal("%s", err);
        return false;
    }
    return true;
}

bool target_supported(const Options *o)
{
    if (str_eq(o->target, "c")) return true;
    diag_fatal("--target %s is not available in this version of nnc (only --target c)", o->target);
    return false;
}

int cmd_compile(const Options *o)
{
    if (!target_supported(o)) return EXIT_INPUT;
    if (o->emit && str_eq(o->emit, "cuda")) {
        diag_fatal("--emit cuda is not available in this version of nnc");
        return EXIT_INPUT;
    }
    bool to_stdout = (o->out && str_eq(o->out, "-")) || (o->emit && str_eq(o->emit, "c"));
    char *out = o->out && !str_eq(o->out, "-") ? xstrdup(o->out) : default_out_(o->model_path);
    char *hpath = header_path_(out);
    CompileOptions co = {.model_path = o->model_path,
                         .model_name = o->model_name,
                         .batch = o->batch,
                         .opt_level = o->opt_level,
                         .passes = o->passes,
                         .inference_only = o->inference,
                         .dump_ir = o->dump_ir,
                         .line_directives = true,
                         .shim = o->shim,
                         .weights = o->weights,
                         .c_path = to_stdout ? "<stdout>" : basename_(out),
                         .h_name = to_stdout ? NULL : basename_(hpath),
                         .command = o->cmdline};
    bool want_ir = o->emit && str_eq(o->emit, "ir");
    Compiled *c = compile_model(&co, !want_ir);
    int rc = EXIT_INPUT;
    if (c && !compiled_check_ram(c, o->max_ram)) {
        compiled_free(c);
        c = NULL;
    }
    if (c) {
        rc = EXIT_OK;
        if (want_ir) {
            for (int i = 0; i < c->nentries; i++) {
                printf("# %s\n", entry_names[c->entries[i].kind]);
                graph_print(c->entries[i].g, stdout);
            }
        } else if (to_stdout) {
            fputs(c->c_text, stdout);
        } else if (!write_text_(out, c->c_text) || !write_text_(hpath, c->h_text)) {
            rc = EXIT_INPUT;
        }
    }
    compiled_free(c);
    free(out);
    free(hpath);
    return rc;
}
