/* cmd_compile.c: `nnc MODEL.nn -o OUT.c` (and --emit) and `nnc check`. */
#include "commands.h"
#include "nnc_runtime.h"
#include "pipeline.h"

#include <string.h>
#include <sys/stat.h>

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

/* an existing path that is not a regular file or a directory: a device or a FIFO (`-o /dev/null`) */
static bool special_file_(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

static bool want_ir_or_stdout_(const Options *o, bool to_stdout) { return to_stdout || (o->emit && str_eq(o->emit, "ir")); }

/* two paths that name the same existing regular file (through links) */
static bool same_file_(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && S_ISREG(sa.st_mode) && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static bool refuse_(const Options *o, const char *what, const char *path, const char *input)
{
    fprintf(stderr, "nnc: error: %s %s is %s; nnc never writes over its input\n(see 'nnc %s --help')\n", what,
            path, input, o->command);
    return false;
}

bool output_allowed(const Options *o, const char *what, const char *path)
{
    if (str_eq(path, "-")) return true;
    if (same_file_(path, o->model_path)) return refuse_(o, what, path, "the model file");
    if (o->weights && same_file_(path, o->weights) && !(str_eq(o->command, "train") && str_eq(what, "--save")))
        return refuse_(o, what, path, "the --weights file");
    for (int i = 0; i < o->data.len; i++)
        if (same_file_(path, o->data.data[i].path)) return refuse_(o, what, path, "a --data file");
    for (int i = 0; i < o->val.len; i++)
        if (same_file_(path, o->val.data[i].path)) return refuse_(o, what, path, "a --val file");
    return true;
}

int cmd_compile(const Options *o)
{
    bool want_cuda = o->emit && str_eq(o->emit, "cuda");
    bool to_stdout = (o->out && str_eq(o->out, "-")) || (o->emit && str_eq(o->emit, "c")) || want_cuda;
    /* `-o /dev/null` (a device or FIFO): the C goes there as one translation unit, like `-o -`; no
     * `/dev/null.h` is created beside it */
    bool to_device = !to_stdout && o->out && special_file_(o->out);
    char *out = o->out && !str_eq(o->out, "-") ? xstrdup(o->out) : default_out_(o->model_path);
    char *hpath = header_path_(out);
    if (!want_ir_or_stdout_(o, to_stdout) &&
        (!output_allowed(o, o->out ? "-o" : "the output (no -o)", out) ||
         (!to_device && !output_allowed(o, "the header", hpath)))) {
        free(out);
        free(hpath);
        return EXIT_USAGE;
    }
    CompileOptions co = {.model_path = o->model_path,
                         .model_name = o->model_name,
                         .target = target_find(o->target),
                         .batch = o->batch,
                         .opt_level = o->opt_level,
                         .passes = o->passes,
                         .inference_only = o->inference,
                         .dump_ir = o->dump_ir,
                         .line_directives = true,
                         .shim = o->shim,
                         .weights = o->weights,
                         .weights_set = default_weights(o->model_path, o->weights),
                         .c_path = to_stdout ? "<stdout>" : basename_(out),
                         .h_name = to_stdout || to_device ? NULL : basename_(hpath),
                         .command = o->cmdline};
    bool want_ir = o->emit && str_eq(o->emit, "ir");
    Compiled *c = compile_model(&co, !want_ir);
    int rc = EXIT_INPUT;
    if (c && (!compiled_check_ram(c, o->max_ram) || !compiled_check_flash(c, o->max_flash))) {
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
        } else if (want_cuda) {
            fputs(c->cuda_text ? c->cuda_text : "", stdout);
        } else if (to_stdout) {
            fputs(c->c_text, stdout);
        } else if (!write_text_(out, c->c_text) || (!to_device && !write_text_(hpath, c->h_text))) {
            rc = EXIT_INPUT;
        }
    }
    compiled_free(c);
    free(out);
    free(hpath);
    return rc;
}
