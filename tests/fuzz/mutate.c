/* mutate.c: a deterministic test-case maker for the parser smoke test (smoke.sh).
 *
 *   mutate SEED FILE        FILE with a few random edits chosen by SEED, to stdout
 *   mutate gen KIND N       a generated pathological file (see gen_ below), to stdout
 *
 * Edits: flip a byte, delete a range, duplicate a line, delete a line, swap two lines, insert a token of
 * the language, insert a random byte, replace a number by an extreme one, truncate. The same SEED and
 * FILE always give the same output (a small xorshift generator, no libc rand), so a failure reproduces
 * from its seed. What it does not do: judge the output; smoke.sh runs nnc on it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t rnd_(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static size_t below_(size_t n) { return n ? (size_t)(rnd_() % n) : 0; }

typedef struct Buf {
    char *p;
    size_t len, cap;
} Buf;

static void reserve_(Buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return;
    b->cap = (b->len + extra + 1) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) exit(3);
}

static void insert_(Buf *b, size_t at, const char *s, size_t n)
{
    reserve_(b, n);
    memmove(b->p + at + n, b->p + at, b->len - at);
    memcpy(b->p + at, s, n);
    b->len += n;
}

static void erase_(Buf *b, size_t at, size_t n)
{
    if (at + n > b->len) n = b->len - at;
    memmove(b->p + at, b->p + at + n, b->len - at - n);
    b->len -= n;
}

/* start of the line holding byte `at`, and the end (after its newline) */
static size_t line_start_(const Buf *b, size_t at)
{
    while (at > 0 && b->p[at - 1] != '\n') at--;
    return at;
}

static size_t line_end_(const Buf *b, size_t at)
{
    while (at < b->len && b->p[at] != '\n') at++;
    return at < b->len ? at + 1 : at;
}

static const char *const tokens[] = {
    "(", ")", "[", "]", "{", "}", ",", ":", ";", "=", "+", "-", "*", "/", "@", "**", "|>", "\n", "#", "\"",
    "model", "def", "const", "input", "target", "param", "output", "loss", "metric", "optimizer", "train",
    "freeze", "return", "f32", "i32", "x", "y", "h", "none", "true", "relu", "dense", "conv2d", "lstm",
    "reshape", "concat", "softmax", "sum", "mean", "flatten", "transpose", "argmax", "batchnorm", "dropout",
    "maxpool2d", "axis=", "activation=", "name=", "padding=same", "0", "1", "-1", "2.5", "1e-3", "[3, 3]",
    "f32[]", "i32[]", "zeros", "sgd(lr=0.1)", "x |> ", "mse(", "accuracy(",
};

static const char *const extremes[] = {
    "0", "-1", "1e308", "1e-320", "2147483647", "2147483648", "4294967296", "9223372036854775807",
    "-9223372036854775808", "99999999999999999999", "65536", "100000", "nan", "inf", "0.0", "-0",
};

static void edit_(Buf *b)
{
    size_t at = below_(b->len + 1);
    switch (below_(10)) {
    case 0: /* flip a byte */
        if (b->len) b->p[below_(b->len)] ^= (char)(1u << below_(8));
        break;
    case 1: /* delete a short range */
        erase_(b, at, 1 + below_(8));
        break;
    case 2: { /* duplicate a line */
        size_t s = line_start_(b, at < b->len ? at : (b->len ? b->len - 1 : 0)), e = line_end_(b, s);
        char *copy = malloc(e - s + 1);
        memcpy(copy, b->p + s, e - s);
        insert_(b, e, copy, e - s);
        free(copy);
        break;
    }
    case 3: { /* delete a line */
        size_t s = line_start_(b, at < b->len ? at : (b->len ? b->len - 1 : 0));
        erase_(b, s, line_end_(b, s) - s);
        break;
    }
    case 4: /* swap two lines: delete one and put it elsewhere */
    {
        size_t s = line_start_(b, at < b->len ? at : (b->len ? b->len - 1 : 0)), e = line_end_(b, s);
        char *copy = malloc(e - s + 1);
        memcpy(copy, b->p + s, e - s);
        size_t n = e - s;
        erase_(b, s, n);
        insert_(b, line_start_(b, below_(b->len + 1) < b->len ? below_(b->len) : b->len), copy, n);
        free(copy);
        break;
    }
    case 5:
    case 6: { /* insert a token */
        const char *t = tokens[below_(sizeof tokens / sizeof tokens[0])];
        insert_(b, at, t, strlen(t));
        break;
    }
    case 7: { /* insert a random byte */
        char c = (char)below_(256);
        insert_(b, at, &c, 1);
        break;
    }
    case 8: { /* replace the next number by an extreme one */
        size_t s = at;
        while (s < b->len && !(b->p[s] >= '0' && b->p[s] <= '9')) s++;
        size_t e = s;
        while (e < b->len && ((b->p[e] >= '0' && b->p[e] <= '9') || b->p[e] == '.')) e++;
        if (s == b->len) break;
        erase_(b, s, e - s);
        const char *x = extremes[below_(sizeof extremes / sizeof extremes[0])];
        insert_(b, s, x, strlen(x));
        break;
    }
    case 9: /* truncate */
        if (below_(3) == 0) b->len = at;
        break;
    }
}

static Buf read_file_(const char *path)
{
    Buf b = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) insert_(&b, b.len, chunk, n);
    fclose(f);
    return b;
}

static void repeat_(const char *s, long n)
{
    for (long i = 0; i < n; i++) fputs(s, stdout);
}

/* Pathological files. Each is a whole model around the pathology, so the parser reaches it. */
static int gen_(const char *kind, long n)
{
    const char *head = "model m {\n    input x: f32[4]\n    output p = ";
    if (!strcmp(kind, "garbage")) {
        for (long i = 0; i < n; i++) putchar((int)below_(256));
    } else if (!strcmp(kind, "parens")) { /* ((((x)))) */
        fputs(head, stdout), repeat_("(", n), fputs("x", stdout), repeat_(")", n), fputs("\n}\n", stdout);
    } else if (!strcmp(kind, "open_parens")) { /* (((( never closed */
        fputs(head, stdout), repeat_("(", n), fputs("x\n}\n", stdout);
    } else if (!strcmp(kind, "brackets")) { /* [[[[1]]]] */
        fputs(head, stdout), fputs("x + ", stdout), repeat_("[", n), fputs("1", stdout), repeat_("]", n),
            fputs("\n}\n", stdout);
    } else if (!strcmp(kind, "calls")) { /* relu(relu(...)) */
        fputs(head, stdout), repeat_("relu(", n), fputs("x", stdout), repeat_(")", n), fputs("\n}\n", stdout);
    } else if (!strcmp(kind, "unary")) { /* - - - - x */
        fputs(head, stdout), repeat_("-", n), fputs("x\n}\n", stdout);
    } else if (!strcmp(kind, "power")) { /* x ** 1 ** 1 ** ... (right-associative) */
        fputs(head, stdout), fputs("x", stdout), repeat_(" ** 1", n), fputs("\n}\n", stdout);
    } else if (!strcmp(kind, "sum")) { /* x + x + ... + x */
        fputs(head, stdout), fputs("x", stdout), repeat_(" + x", n - 1), fputs("\n}\n", stdout);
    } else if (!strcmp(kind, "constsum")) { /* 1 + 1 + ... folded */
        fputs(head, stdout), fputs("x * (1", stdout), repeat_(" + 1", n - 1), fputs(")\n}\n", stdout);
    } else if (!strcmp(kind, "pipes")) { /* x |> relu() |> relu() ... */
        fputs(head, stdout), fputs("x", stdout), repeat_(" |> relu()", n), fputs("\n}\n", stdout);
    } else if (!strcmp(kind, "statements")) { /* h = h + 1, n times */
        fputs("model m {\n    input x: f32[4]\n    h = x\n", stdout), repeat_("    h = h + 1\n", n),
            fputs("    output p = h\n}\n", stdout);
    } else if (!strcmp(kind, "layers")) { /* h = dense(h, 4), n times */
        fputs("model m {\n    input x: f32[4]\n    h = x\n", stdout), repeat_("    h = dense(h, 4)\n", n),
            fputs("    output p = h\n}\n", stdout);
    } else if (!strcmp(kind, "errors")) { /* n independent errors */
        fputs("model m {\n    input x: f32[4]\n", stdout), repeat_("    h = nope + 1\n", n),
            fputs("    output p = x\n}\n", stdout);
    } else if (!strcmp(kind, "defs")) { /* def f1 calls f0, ..., model calls fN */
        fputs("def f0(a) { return relu(a) }\n", stdout);
        for (long i = 1; i <= n; i++) printf("def f%ld(a) { return f%ld(a) }\n", i, i - 1);
        printf("model m {\n    input x: f32[4]\n    output p = f%ld(x)\n}\n", n);
    } else if (!strcmp(kind, "mutual")) { /* def a calls b calls a */
        fputs("def a(x) { return b(x) }\ndef b(x) { return a(x) }\n", stdout);
        fputs("model m {\n    input x: f32[4]\n    output p = a(x)\n}\n", stdout);
    } else if (!strcmp(kind, "fanout")) { /* def d_i calls d_{i-1} twice: 2^n inlined calls */
        fputs("def d0(a) { return relu(a) }\n", stdout);
        for (long i = 1; i <= n; i++) printf("def d%ld(a) { return d%ld(a) + d%ld(a) }\n", i, i - 1, i - 1);
        printf("model m {\n    input x: f32[4]\n    output p = d%ld(x)\n}\n", n);
    } else if (!strcmp(kind, "models")) { /* n models */
        for (long i = 0; i < n; i++) printf("model m%ld {\n    input x: f32[1]\n    output p = x\n}\n", i);
    } else if (!strcmp(kind, "longname")) { /* one identifier of n bytes */
        fputs(head, stdout), repeat_("a", n), fputs("\n}\n", stdout);
    } else if (!strcmp(kind, "longnumber")) {
        fputs(head, stdout), fputs("x * ", stdout), repeat_("9", n), fputs("\n}\n", stdout);
    } else if (!strcmp(kind, "longfloat")) {
        fputs(head, stdout), fputs("x * 0.", stdout), repeat_("1", n), fputs("e-99999\n}\n", stdout);
    } else if (!strcmp(kind, "longstring")) {
        fputs(head, stdout), fputs("dense(x, 1, name=\"", stdout), repeat_("s", n), fputs("\")\n}\n", stdout);
    } else if (!strcmp(kind, "longcomment")) {
        fputs(head, stdout), fputs("x # ", stdout), repeat_("c", n), fputs("\n}\n", stdout);
    } else if (!strcmp(kind, "longline")) { /* n bytes of one statement line with an error at its end */
        fputs(head, stdout), fputs("x", stdout), repeat_(" ", n), fputs("$\n}\n", stdout);
    } else if (!strcmp(kind, "nul")) { /* NUL bytes inside and around a valid model */
        static const char text[] = "\0model m {\n    input x: f32[4]\0\n    output p = x\0 + 1\n}\n\0";
        fwrite(text, 1, sizeof text, stdout);
    } else if (!strcmp(kind, "crlf")) {
        fputs("model m {\r\n    input x: f32[4]\r\n    output p = x +\r\n        1\r\n}\r\n", stdout);
    } else if (!strcmp(kind, "cr")) {
        fputs("model m {\r    input x: f32[4]\r    output p = x\r}\r", stdout);
    } else if (!strcmp(kind, "newlines")) {
        fputs("model m {", stdout), repeat_("\n", n), fputs("input x: f32[4]\noutput p = x $\n}\n", stdout);
    } else if (!strcmp(kind, "bigdims")) { /* tensors far too large for any machine (N: which one) */
        static const char *const big[] = {
            "model m {\n    input x: f32[2147483647, 2147483647]\n    output p = dense(x, 2147483647)\n}\n",
            "model m {\n    input x: f32[65536, 32768]\n    output p = dense(flatten(x), 65536)\n}\n",
            "model m {\n    input x: f32[100000]\n    output p = dense(x, 100000) |> dense(100000)\n}\n",
        };
        fputs(big[n % 3], stdout);
    } else if (!strcmp(kind, "bigrank")) { /* more axes than MAX_RANK */
        fputs("model m {\n    input x: f32[", stdout), repeat_("1, ", n), fputs("1]\n    output p = x\n}\n", stdout);
    } else if (!strcmp(kind, "biglist")) { /* a list constant of n numbers */
        fputs(head, stdout), fputs("x + [1", stdout), repeat_(", 1", n - 1), fputs("]\n}\n", stdout);
    } else if (!strcmp(kind, "empty")) {
        /* nothing */
    } else {
        fprintf(stderr, "mutate: unknown kind '%s'\n", kind);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "gen")) {
        rng_state = 0x9E3779B97F4A7C15ull;
        return gen_(argv[2], atol(argv[3]));
    }
    if (argc != 3) {
        fprintf(stderr, "usage: mutate SEED FILE | mutate gen KIND N\n");
        return 2;
    }
    rng_state = 0x9E3779B97F4A7C15ull ^ ((uint64_t)strtoull(argv[1], NULL, 10) * 0xBF58476D1CE4E5B9ull);
    for (int i = 0; i < 4; i++) rnd_();
    Buf b = read_file_(argv[2]);
    int edits = 1 + (int)below_(below_(4) == 0 ? 40 : 6);
    for (int i = 0; i < edits; i++) edit_(&b);
    fwrite(b.p, 1, b.len, stdout);
    free(b.p);
    return 0;
}
