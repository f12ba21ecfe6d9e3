/* fuzz_parser.c: libFuzzer targets for the front end: bytes -> source -> parse -> check (fuzz_parser), and
 * the same followed, for inputs that check cleanly, by the whole compiler to a C text in memory: lowering,
 * autodiff, passes, memory plan, C emission (fuzz_compile: this file built with -DNNC_FUZZ_COMPILE_ALL).
 *
 *   cmake -S . -B build-fuzz -DNNC_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
 *   cmake --build build-fuzz --target fuzz_parser
 *   mkdir -p /tmp/corpus && for d in models tests/diag/errors tests/diag/valid; do cp $d/?*.nn /tmp/corpus; done
 *   ASAN_OPTIONS=detect_leaks=0 build-fuzz/tests/fuzz/fuzz_parser -detect_leaks=0 -dict=tests/fuzz/nn.dict \
 *       -max_len=4096 -timeout=20 /tmp/corpus
 *
 * detect_leaks=0: a checked Model keeps its graph and vectors in malloc'd memory that nothing frees (there is
 * no model_free), a few KB per input; the process stays under libFuzzer's 2 GB limit for ~500k inputs.
 * Add -fork=1 -ignore_crashes=1 to keep going after a crash and collect them all.
 *
 * Every input must come back: no crash, no sanitizer report, no "internal error" (NNC_ASSERT aborts, and
 * libFuzzer reports the abort). With NNC_FUZZ_COMPILE=1 in the environment, inputs that check cleanly also
 * go through the rest of the compiler (lowering, autodiff, passes, memory plan, C emission), and the C text
 * must pass the oracle of fuzz_ctext.h (no model-file text that escaped its comment or string).
 *
 * Like nnc's main(), the work runs on a thread with a large stack: the checker recurses once per level of
 * expression nesting, and nnc promises no stack overflow only with the stack main() gives it.
 * What it does not do: run generated code, or test anything but "comes back without a crash".
 */
#include "ast.h"
#include "check.h"
#include "nnc.h"
#include "pipeline.h"

#include "fuzz_ctext.h"
#include "fuzz_file.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

typedef struct Job {
    const uint8_t *data;
    size_t size;
} Job;

static bool compile_too;

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

/* The options vary with the input's length, so that one corpus reaches every level, --inference and the
 * firmware target (its own passes and the dialect rewrite of the C text). */
static void compile_(const uint8_t *data, size_t size, int src)
{
    diag_reset();
    CompileOptions co = {.model_path = fuzz_file_path(data, size), .opt_level = (int)(size % 3),
                         .inference_only = size % 7 == 3, .line_directives = true,
                         .target = size % 5 == 2 ? &target_mcu : NULL,
                         .c_path = "fuzz.c", .h_name = "fuzz.h", .command = "nnc fuzz"};
    Compiled *c = compile_model(&co, true);
    if (c) {
        fuzz_check_ctext(c->c_text);
        fuzz_check_ctext(c->h_text);
    }
    compiled_free(c);
    source_drop_(src + 1); /* the copy compile_model loaded */
}

static void *run_(void *arg)
{
    Job *j = arg;
    diag_reset();
    int src = source_add("fuzz.nn", (const char *)j->data, j->size);
    Arena a = {0};
    Program *p = parse_source(&a, src);
    bool ok = false;
    if (p && diag_error_count() == 0) {
        Model *m = check_program(p, NULL, &a);
        ok = m && diag_error_count() == 0;
    }
    arena_free(&a);
    source_drop_(src);
    if (ok && compile_too) compile_(j->data, j->size, src);
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    diag_set_quiet(true);
    const char *c = getenv("NNC_FUZZ_COMPILE");
    compile_too = c && c[0] == '1';
#ifdef NNC_FUZZ_COMPILE_ALL
    compile_too = true;
#endif
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
