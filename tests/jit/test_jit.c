/* test_jit.c: nnc_jit.h on each back end: values from compiled code (libm, OpenBLAS, globals, -D),
 * C errors and link errors reported, standard headers, optimization levels, several live handles, and
 * the compile time of a 3000-line source like a generated model.
 *
 * Usage: test_jit [cc|llvm|default|all|fallback]   (all: cc, llvm when the plugin was built, and the
 * default order; fallback: run with NNC_JIT_PLUGIN naming a missing file). It prints which back ends
 * ran and exits nonzero on any failed check.
 * What it does not test: the plugin search order beyond $NNC_JIT_PLUGIN, or an internal llvm failure
 * that cc then compiles (no valid C makes the plugin fail that way).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "nnc_jit.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef NNC_TEST_HAVE_LLVM
#define NNC_TEST_HAVE_LLVM 0
#endif
#ifndef NNC_TEST_HAVE_BLAS
#define NNC_TEST_HAVE_BLAS 0
#endif

#define BIG_KERNELS 100 /* about 30 lines each */

static int checks, failures;

static void check_(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    checks++;
    if (ok)
        return;
    failures++;
    fprintf(stderr, "%s:%d: FAILED: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
#define CHECK(cond, ...) check_((cond) != 0, __FILE__, __LINE__, __VA_ARGS__)

static int close_(double a, double b, double rel) { return fabs(a - b) <= rel * (fabs(b) + 1e-30); }

static double now_(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Compiles with the given back end (NULL: default order); on failure records the message. */
static nnc_jit *compile_(const char *backend, const char *src, const char *name, nnc_jit_options o)
{
    char err[4096];
    nnc_jit *j;
    o.backend = backend;
    j = nnc_jit_compile(src, name, &o, err, sizeof err);
    CHECK(j != NULL, "[%s] %s did not compile:\n%s", backend ? backend : "default", name, err);
    if (j && backend)
        CHECK(strcmp(nnc_jit_backend(j), backend) == 0, "[%s] compiled by %s", backend, nnc_jit_backend(j));
    return j;
}

static nnc_jit_options opts_(int level)
{
    nnc_jit_options o = {0, 0, 0, NULL, NULL};
    o.opt_level = level;
    return o;
}

/* ---- the cases ------------------------------------------------------------------------------- */

static const char src_math[] =
    "#include <math.h>\n"
    "double f(double x) { return x * 2; }\n"
    "float g(const float *a, int n)\n"
    "{\n"
    "    float s = 0.0f;\n"
    "    for (int i = 0; i < n; i++)\n"
    "        s += sqrtf(a[i]) + expf(-a[i]);\n"
    "    return s;\n"
    "}\n";

static void test_math_(const char *b, int level, int native)
{
    nnc_jit_options o = opts_(level);
    float a[37], want = 0.0f;
    int i;
    nnc_jit *j;
    double (*f)(double);
    float (*g)(const float *, int);
    o.native = native;
    j = compile_(b, src_math, "math.c", o);
    if (!j)
        return;
    f = (double (*)(double))nnc_jit_lookup(j, "f");
    g = (float (*)(const float *, int))nnc_jit_lookup(j, "g");
    CHECK(f && g, "[%s] -O%d: f or g not found", b, level);
    for (i = 0; i < 37; i++) {
        a[i] = 0.25f * (float)i;
        want += sqrtf(a[i]) + expf(-a[i]);
    }
    if (f)
        CHECK(f(21.5) == 43.0, "[%s] -O%d: f(21.5) = %g, want 43", b, level, f(21.5));
    if (g)
        CHECK(close_(g(a, 37), want, 1e-5), "[%s] -O%d: g = %.9g, want %.9g", b, level, g(a, 37), want);
    CHECK(nnc_jit_lookup(j, "no_such_symbol") == NULL, "[%s] lookup of a missing symbol succeeded", b);
    nnc_jit_free(j);
}

static void test_defines_and_globals_(const char *b)
{
    static const char src[] = "int counter = 41;\n"
                              "const float table[3] = {0.5f, 1.5f, 2.5f};\n"
                              "int h(void) { counter++; return SCALE * 10 + FLAG_ON; }\n";
    static const char *const defs[] = {"SCALE=3", "FLAG_ON", NULL};
    nnc_jit_options o = opts_(2);
    nnc_jit *j;
    int (*h)(void);
    int *counter;
    const float *table;
    o.defines = defs;
    j = compile_(b, src, "globals.c", o);
    if (!j)
        return;
    h = (int (*)(void))nnc_jit_lookup(j, "h");
    counter = (int *)nnc_jit_lookup(j, "counter");
    table = (const float *)nnc_jit_lookup(j, "table");
    CHECK(h && counter && table, "[%s] h, counter or table not found", b);
    if (h && counter && table) {
        CHECK(h() == 31, "[%s] -DSCALE=3 -DFLAG_ON: h() = %d, want 31", b, h());
        CHECK(*counter == 43, "[%s] counter = %d after two calls, want 43", b, *counter);
        CHECK(table[2] == 2.5f, "[%s] table[2] = %g", b, table[2]);
    }
    nnc_jit_free(j);
}

static void test_blas_(const char *b)
{
    static const char src[] = "#include <cblas.h>\n"
                              "float dot(const float *x, const float *y, int n)\n"
                              "{\n"
                              "    return cblas_sdot(n, x, 1, y, 1);\n"
                              "}\n";
    float x[100], y[100], want = 0.0f;
    nnc_jit_options o = opts_(2);
    nnc_jit *j;
    float (*dot)(const float *, const float *, int);
    int i;
    o.link_blas = 1;
    j = compile_(b, src, "blas.c", o);
    if (!j)
        return;
    dot = (float (*)(const float *, const float *, int))nnc_jit_lookup(j, "dot");
    CHECK(dot != NULL, "[%s] dot not found", b);
    for (i = 0; i < 100; i++) {
        x[i] = (float)(i % 7) - 3.0f;
        y[i] = 0.5f * (float)(i % 5);
        want += x[i] * y[i];
    }
    if (dot)
        CHECK(close_(dot(x, y, 100), want, 1e-6), "[%s] cblas_sdot = %g, want %g", b, dot(x, y, 100), want);
    nnc_jit_free(j);
}

static void test_syntax_error_(const char *b)
{
    static const char src[] = "int ok(void) { return 1; }\n"
                              "int broken(void) { return 1 +; }\n";
    char err[4096] = "untouched";
    nnc_jit_options o = opts_(2);
    nnc_jit *j;
    o.backend = b;
    j = nnc_jit_compile(src, "broken.c", &o, err, sizeof err);
    CHECK(j == NULL, "[%s] a syntax error compiled", b);
    CHECK(strstr(err, "error") != NULL, "[%s] syntax error message lacks 'error': %s", b, err);
    CHECK(strstr(err, "broken.c:2:") != NULL, "[%s] syntax error message lacks 'broken.c:2:': %s", b, err);
    CHECK(strncmp(err, NNC_JIT_LLVM_INTERNAL, strlen(NNC_JIT_LLVM_INTERNAL)) != 0,
          "[%s] a C error reported as internal: %s", b, err);
    nnc_jit_free(j);
}

/* Generated code maps its lines to the model with #line; errors must follow. */
static void test_line_directive_(const char *b)
{
    static const char src[] = "int ok(void) { return 1; }\n"
                              "#line 7 \"model.nn\"\n"
                              "int bad = ;\n";
    char err[4096] = "";
    nnc_jit_options o = opts_(2);
    nnc_jit *j;
    o.backend = b;
    j = nnc_jit_compile(src, "line.c", &o, err, sizeof err);
    CHECK(j == NULL, "[%s] a syntax error after #line compiled", b);
    CHECK(strstr(err, "model.nn:7:") != NULL, "[%s] error does not point at model.nn:7: %s", b, err);
    nnc_jit_free(j);
}

/* A declared but undefined function: the C is valid, linking it is not. */
static void test_link_error_(const char *b)
{
    static const char src[] = "void nnc_test_no_such_function(void);\n"
                              "void k(void) { nnc_test_no_such_function(); }\n";
    char err[4096] = "";
    nnc_jit_options o = opts_(2);
    nnc_jit *j;
    o.backend = b;
    j = nnc_jit_compile(src, "link.c", &o, err, sizeof err);
    CHECK(j == NULL, "[%s] code calling an undefined function loaded", b);
    CHECK(strstr(err, "nnc_test_no_such_function") != NULL, "[%s] link error does not name the symbol: %s", b,
          err);
    nnc_jit_free(j);
}

static void test_headers_(const char *b)
{
    static const char src[] = "#include <tgmath.h>\n"
                              "#include <stdint.h>\n"
                              "#include <string.h>\n"
                              "#include <stddef.h>\n"
                              "#include <float.h>\n"
                              "double t(double x) { return sqrt(x) + (double)(int32_t)strlen(\"abc\"); }\n"
                              "float tf(float x) { return sqrt(x) + (FLT_EPSILON > 0); }\n"
                              "size_t tz(void) { uint8_t b[5]; memset(b, 1, sizeof b); return sizeof b + b[4]; }\n";
    nnc_jit *j = compile_(b, src, "headers.c", opts_(2));
    double (*t)(double);
    float (*tf)(float);
    size_t (*tz)(void);
    if (!j)
        return;
    t = (double (*)(double))nnc_jit_lookup(j, "t");
    tf = (float (*)(float))nnc_jit_lookup(j, "tf");
    tz = (size_t(*)(void))nnc_jit_lookup(j, "tz");
    CHECK(t && tf && tz, "[%s] t, tf or tz not found", b);
    if (t && tf && tz) {
        CHECK(t(16.0) == 7.0, "[%s] tgmath sqrt(16.0) + 3 = %g", b, t(16.0));
        CHECK(tf(9.0f) == 4.0f, "[%s] tgmath sqrt(9.0f) + 1 = %g", b, tf(9.0f));
        CHECK(tz() == 6, "[%s] tz() = %zu, want 6", b, tz());
    }
    nnc_jit_free(j);
}

/* #include "..." looks beside `name`, as if the source were that file (generated code includes its
 * own header). */
static void test_quote_include_(const char *b)
{
    char dir[] = "/tmp/nnc-test-jit-XXXXXX", hdr[64], name[64];
    FILE *f;
    nnc_jit *j;
    int (*q)(void);
    CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
    snprintf(hdr, sizeof hdr, "%s/quoted.h", dir);
    snprintf(name, sizeof name, "%s/quoted.c", dir);
    f = fopen(hdr, "w");
    CHECK(f != NULL, "cannot write %s", hdr);
    if (!f)
        return;
    fputs("#define QUOTED_VALUE 17\n", f);
    fclose(f);
    j = compile_(b, "#include \"quoted.h\"\nint q(void) { return QUOTED_VALUE; }\n", name, opts_(2));
    q = j ? (int (*)(void))nnc_jit_lookup(j, "q") : NULL;
    if (j)
        CHECK(q && q() == 17, "[%s] q() from a quoted include", b);
    nnc_jit_free(j);
    remove(hdr);
    remove(dir);
}

/* Two live handles defining the same symbol stay apart; freed in creation order. */
static void test_two_handles_(const char *b)
{
    nnc_jit *one = compile_(b, "int v(void) { return 1; }\n", "one.c", opts_(2));
    nnc_jit *two = compile_(b, "int v(void) { return 2; }\n", "two.c", opts_(2));
    int (*v1)(void), (*v2)(void);
    if (one && two) {
        v1 = (int (*)(void))nnc_jit_lookup(one, "v");
        v2 = (int (*)(void))nnc_jit_lookup(two, "v");
        CHECK(v1 && v2 && v1() == 1 && v2() == 2, "[%s] two handles with the same symbol got mixed up", b);
    }
    nnc_jit_free(one);
    nnc_jit_free(two);
}

static void test_bad_backend_(void)
{
    char err[256] = "";
    nnc_jit_options o = opts_(2);
    o.backend = "fortran";
    CHECK(nnc_jit_compile("int x;\n", "x.c", &o, err, sizeof err) == NULL, "backend 'fortran' accepted");
    CHECK(strstr(err, "fortran") != NULL, "unknown back end message: %s", err);
}

/* ---- a generated-model-sized source ---------------------------------------------------------- */

static void big_kernel_(FILE *f, int k)
{
    fprintf(f, "/* kernel %d: dense [n,m] x [m] -> [n], bias, tanh; then a softmax-like pass */\n", k);
    fprintf(f, "static void kernel_%d(const float *restrict x, const float *restrict w,\n", k);
    fprintf(f, "                      float *restrict y, int n, int m)\n{\n");
    fprintf(f, "    for (int i = 0; i < n; i++) {\n        float acc = 0.0f;\n");
    fprintf(f, "        for (int j = 0; j < m; j++)\n            acc += x[j] * w[i * m + j];\n");
    fprintf(f, "        y[i] = tanhf(acc + 0x1.0p-%df);\n    }\n", k % 20 + 1);
    fprintf(f, "    float mx = y[0];\n    for (int i = 1; i < n; i++)\n");
    fprintf(f, "        mx = y[i] > mx ? y[i] : mx;\n    float s = 0.0f;\n");
    fprintf(f, "    for (int i = 0; i < n; i++) {\n        y[i] = expf(y[i] - mx);\n");
    fprintf(f, "        s += y[i];\n    }\n    for (int i = 0; i < n; i++)\n");
    fprintf(f, "        y[i] /= s;\n    for (int i = 0; i < n; i += 2) {\n");
    fprintf(f, "        float a = y[i], c = i + 1 < n ? y[i + 1] : 0.0f;\n");
    fprintf(f, "        y[i] = a * 0.75f + c * 0.25f;\n");
    fprintf(f, "        if (i + 1 < n)\n            y[i + 1] = c * 0.75f + a * 0.25f;\n    }\n");
    fprintf(f, "    for (int i = 0; i < n; i++)\n        y[i] = fmaxf(y[i], 0.0f) + %d.0f * 1e-3f;\n", k % 7);
    fprintf(f, "}\n\n");
}

/* BIG_KERNELS kernels and an entry point that chains them over two 64-float buffers. */
static char *big_source_(int *lines)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int k, n = 0;
    size_t i;
    if (!f)
        return NULL;
    fputs("#include <math.h>\n\n", f);
    for (k = 0; k < BIG_KERNELS; k++)
        big_kernel_(f, k);
    fputs("float big(float *a, float *b, const float *w)\n{\n", f);
    for (k = 0; k < BIG_KERNELS; k++)
        fprintf(f, "    kernel_%d(%s, w, %s, 64, 64);\n", k, k % 2 ? "b" : "a", k % 2 ? "a" : "b");
    fputs("    float s = 0.0f;\n    for (int i = 0; i < 64; i++)\n        s += a[i] * (float)(i + 1);\n", f);
    fputs("    return s;\n}\n", f);
    fclose(f);
    for (i = 0; i < len; i++)
        n += text[i] == '\n';
    *lines = n;
    return text;
}

/* Compile time of the big source at -O2, printed; returns big()'s value (NAN on failure). */
static double test_big_(const char *b)
{
    int lines, i;
    char *src = big_source_(&lines);
    float a[64], bb[64], *w = malloc(64 * 64 * sizeof *w), r = NAN;
    double t0, t1;
    nnc_jit *j;
    float (*big)(float *, float *, const float *);
    CHECK(src && w, "cannot build the big source");
    if (!src || !w)
        goto out;
    t0 = now_();
    j = compile_(b, src, "big.c", opts_(2));
    t1 = now_();
    if (!j)
        goto out;
    printf("  [%s] %d-line source compiled at -O2 in %.2f s\n", b, lines, t1 - t0);
    big = (float (*)(float *, float *, const float *))nnc_jit_lookup(j, "big");
    CHECK(big != NULL, "[%s] big not found", b);
    for (i = 0; i < 64 * 64; i++)
        w[i] = 0.01f * (float)((i * 37) % 17 - 8);
    for (i = 0; i < 64; i++)
        a[i] = bb[i] = 0.1f * (float)(i % 9);
    if (big)
        r = big(a, bb, w);
    CHECK(isfinite(r), "[%s] big() = %g", b, r);
    nnc_jit_free(j);
out:
    free(src);
    free(w);
    return r;
}

/* ---- driver ---------------------------------------------------------------------------------- */

static double run_backend_(const char *b)
{
    int level;
    printf("back end %s\n", b);
    for (level = 0; level <= 3; level++)
        test_math_(b, level, 0);
    test_math_(b, 2, 1);
    test_defines_and_globals_(b);
    if (NNC_TEST_HAVE_BLAS)
        test_blas_(b);
    test_syntax_error_(b);
    test_line_directive_(b);
    test_link_error_(b);
    test_headers_(b);
    test_quote_include_(b);
    test_two_handles_(b);
    return test_big_(b);
}

/* With no back end named (and NNC_JIT unset): llvm when the plugin was built, else cc. */
static void run_default_(void)
{
    const char *want = NNC_TEST_HAVE_LLVM ? "llvm" : "cc";
    const char *env = getenv("NNC_JIT");
    nnc_jit *j = compile_(NULL, src_math, "default.c", opts_(2));
    printf("default order\n");
    if (!j)
        return;
    if (!env || !*env)
        CHECK(strcmp(nnc_jit_backend(j), want) == 0, "default order used %s, want %s", nnc_jit_backend(j), want);
    printf("  default order compiled with %s\n", nnc_jit_backend(j));
    nnc_jit_free(j);
}

/* Run with NNC_JIT_PLUGIN naming a missing file: the default order falls back to cc silently, a forced
 * llvm says why it cannot. */
static void run_fallback_(void)
{
    char err[1024] = "";
    nnc_jit_options o = opts_(2);
    nnc_jit *j = compile_(NULL, src_math, "fallback.c", o);
    printf("fallback (NNC_JIT_PLUGIN=%s)\n", getenv("NNC_JIT_PLUGIN") ? getenv("NNC_JIT_PLUGIN") : "");
    if (j)
        CHECK(strcmp(nnc_jit_backend(j), "cc") == 0, "without a plugin the default order used %s",
              nnc_jit_backend(j));
    nnc_jit_free(j);
    o.backend = "llvm";
    j = nnc_jit_compile(src_math, "fallback.c", &o, err, sizeof err);
    CHECK(j == NULL, "llvm forced without a plugin compiled");
    CHECK(strstr(err, "libnnc_jit_llvm.so") || strstr(err, "NNC_JIT_PLUGIN"),
          "llvm forced without a plugin: unhelpful message: %s", err);
    nnc_jit_free(j);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "all";
    int all = strcmp(what, "all") == 0;
    double r_cc = NAN, r_llvm = NAN;
    if (strcmp(what, "fallback") == 0) {
        run_fallback_();
        printf("%d checks, %d failed\n", checks, failures);
        return failures ? 1 : 0;
    }
    if (!all && strcmp(what, "cc") != 0 && strcmp(what, "llvm") != 0 && strcmp(what, "default") != 0) {
        fprintf(stderr, "usage: test_jit [cc|llvm|default|all|fallback]\n");
        return 2;
    }
    test_bad_backend_();
    if (all || strcmp(what, "cc") == 0)
        r_cc = run_backend_("cc");
    if ((all && NNC_TEST_HAVE_LLVM) || strcmp(what, "llvm") == 0)
        r_llvm = run_backend_("llvm");
    else if (all)
        printf("back end llvm: plugin not built, skipped\n");
    if (all || strcmp(what, "default") == 0)
        run_default_();
    if (!isnan(r_cc) && !isnan(r_llvm))
        CHECK(close_(r_llvm, r_cc, 1e-4), "big(): llvm %.9g, cc %.9g", r_llvm, r_cc);
    printf("%d checks, %d failed%s\n", checks, failures, NNC_TEST_HAVE_BLAS ? "" : " (no OpenBLAS: blas skipped)");
    return failures ? 1 : 0;
}
