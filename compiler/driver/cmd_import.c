/* cmd_import.c: `nnc import MODEL.onnx -o OUT.nn`: the ONNX model as .nn source and its initializers as
 * OUT.safetensors. The text is parsed and checked before anything is written, so what lands on disk is a
 * model `nnc check` accepts; both files are written atomically. */
#include "commands.h"
#include "pipeline.h"
#include "ast.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* OUT.safetensors beside OUT: "m.nn" -> "m.safetensors", "m" -> "m.safetensors" */
static char *weights_path_(const char *out)
{
    size_t n = strlen(out);
    const char *slash = strrchr(out, '/');
    if (n > 3 && str_eq(out + n - 3, ".nn") && (!slash || slash < out + n - 3)) n -= 3;
    char *p = malloc(n + 16);
    memcpy(p, out, n);
    strcpy(p + n, ".safetensors");
    return p;
}

int cmd_import(const Options *o)
{
    if (!o->out || str_eq(o->out, "-")) {
        fprintf(stderr, "nnc: error: import needs -o OUT.nn (it writes OUT.nn and OUT.safetensors)\n"
                        "(see 'nnc import --help')\n");
        return EXIT_USAGE;
    }
    if (!onnx_is_model_path(o->model_path)) {
        fprintf(stderr, "nnc: error: import reads an ONNX model (MODEL.onnx), not '%s'\n(see 'nnc import --help')\n",
                o->model_path);
        return EXIT_USAGE;
    }
    char *wpath = weights_path_(o->out);
    if (!output_allowed(o, "-o", o->out) || !output_allowed(o, "the weights", wpath)) {
        free(wpath);
        return EXIT_USAGE;
    }
    int rc = EXIT_INPUT;
    OnnxImport imp;
    if (!onnx_import(o->model_path, o->model_name, &imp)) goto done;
    /* the text must be a valid model: a failure here is nnc's bug, reported before anything is written */
    Arena a = {0};
    int src = source_add(o->out, imp.nn_text, imp.nn_len);
    Program *p = src ? parse_source(&a, src) : NULL;
    Model *m = p && !diag_error_count() ? check_program(p, NULL, &a) : NULL;
    diag_finish();
    bool valid = m && !diag_error_count();
    arena_free(&a);
    if (!valid) {
        fprintf(stderr, "nnc: error: the .nn text imported from %s does not check (a bug in nnc; please report it "
                        "with the model)\n", o->model_path);
        goto done;
    }
    char err[1024];
    if (nnc_write_file_atomic(o->out, imp.nn_text, imp.nn_len, err, sizeof err) != 0 ||
        nnc_st_write(wpath, imp.weights.tensors, imp.weights.count, err, sizeof err) != 0) {
        diag_fatal("%s", err);
        goto done;
    }
    rc = EXIT_OK;
done:
    onnx_import_free(&imp);
    free(wpath);
    return rc;
}
