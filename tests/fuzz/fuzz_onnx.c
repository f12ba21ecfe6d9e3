/* fuzz_onnx.c: libFuzzer target for the ONNX importer (compiler/onnx): the input is a whole .onnx file. It goes
 * through onnx_import() as `nnc import` reads it: the nesting scan, protobuf-c, the graph checks, the
 * initializers, the constant fold and the operator handlers. When the import succeeds, its .nn text goes
 * through the front end (parse and check) and must check cleanly: the importer promises text that `nnc check`
 * accepts, so a failure there aborts (a finding, as a crash is). The text must also hold only printable ASCII,
 * tabs and newlines: names from the model reach it only as made identifiers or escaped comments.
 *
 * The model file is an in-memory file (fuzz_file.h), /proc/self/fd/N: external data locations resolve in
 * /proc/self/fd/, whose links all point outside it, so every one is refused (the path rules are tested by
 * tests/onnx_read). Like nnc's main(), the work runs on a thread with a large stack.
 * What it does not do: compile the text to C (fuzz_compile covers .nn text), or run anything. */
#include "ast.h"
#include "check.h"
#include "nnc.h"
#include "onnx_import.h"

#include "fuzz_file.h"

#include <pthread.h>
#include <string.h>

typedef struct Job {
    const uint8_t *data;
    size_t size;
} Job;

/* The source table has no way to drop a source; free the text of this one so a long run stays small. */
static void source_drop_(int src)
{
    Source *s = (Source *)source_get(src);
    if (!s) return;
    free(s->text);
    free(s->line_start);
    s->text = xstrdup("");
    s->line_start = xcalloc(2, sizeof(int));
    s->len = 0;
    s->nlines = 1;
}

static void check_text_is_plain_(const char *s, size_t len)
{
    if (strlen(s) != len) abort();
    for (size_t k = 0; k < len; k++)
        if ((s[k] < 32 || s[k] > 126) && s[k] != '\n' && s[k] != '\t') abort();
}

/* The imported text parses and checks without one diagnostic. */
static void check_imported_(const OnnxImport *imp)
{
    check_text_is_plain_(imp->nn_text, imp->nn_len);
    diag_reset();
    int src = source_add("fuzz.nn", imp->nn_text, imp->nn_len);
    Arena a = {0};
    Program *p = parse_source(&a, src);
    Model *m = p && diag_error_count() == 0 ? check_program(p, NULL, &a) : NULL;
    bool ok = m && diag_error_count() == 0;
    arena_free(&a);
    source_drop_(src);
    if (!ok) {
        fprintf(stderr, "fuzz_onnx: the imported text does not check:\n%s\n", imp->nn_text);
        abort();
    }
    for (int k = 0; k < imp->ninputs; k++)
        if (!imp->input_onnx[k] || !imp->input_nn[k]) abort();
}

static void *run_(void *arg)
{
    Job *j = arg;
    diag_reset();
    OnnxImport imp;
    bool ok = onnx_import(fuzz_file_path(j->data, j->size), NULL, &imp);
    if (ok) check_imported_(&imp);
    else if (diag_error_count() == 0) abort(); /* a refusal always says why */
    onnx_import_free(&imp);
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    diag_set_quiet(true);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Job job = {data, size};
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)1 << 30); /* as nnc's main(): reserved, committed only as used */
    if (pthread_create(&th, &attr, run_, &job) == 0)
        pthread_join(th, NULL);
    else
        run_(&job);
    pthread_attr_destroy(&attr);
    return 0;
}
