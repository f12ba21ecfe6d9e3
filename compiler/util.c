/* util.c: memory, arenas, string buffers, and small helpers shared by the whole compiler.
 * Out-of-memory is not a user error we can recover from: it aborts with a message. */
#include "nnc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void nnc_internal_error(const char *file, int line, const char *msg)
{
    fflush(stdout);
    fprintf(stderr, "nnc: internal error at %s:%d: %s\n", file, line, msg);
    fprintf(stderr, "nnc: this is a bug in nnc, not in your model; please report it with the model file\n");
    abort();
}

static void out_of_memory_(size_t n)
{
    fprintf(stderr, "nnc: error: out of memory (allocating %zu bytes)\n", n);
    exit(1);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) out_of_memory_(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) out_of_memory_(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) out_of_memory_(n);
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* ---- arenas: blocks of at least 64 KiB, bump allocation ---------------------------------------- */
struct ArenaBlock {
    ArenaBlock *next;
    size_t used, size;
    unsigned char *mem; /* 16-byte aligned start inside this block's allocation */
};

void *arena_alloc(Arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    ArenaBlock *b = a->head;
    if (!b || b->used + n > b->size) {
        size_t size = n > 65536 ? n : 65536;
        b = xmalloc(sizeof(ArenaBlock) + size + 16);
        b->mem = (unsigned char *)(((uintptr_t)(b + 1) + 15) & ~(uintptr_t)15);
        b->used = 0;
        b->size = size;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->mem + b->used;
    b->used += n;
    return memset(p, 0, n);
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_free(Arena *a)
{
    for (ArenaBlock *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
}

/* ---- string buffers ------------------------------------------------------------------------------ */
static void sb_reserve_(StrBuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
}

void sb_putc(StrBuf *b, char c)
{
    sb_reserve_(b, 1);
    b->s[b->len++] = c;
    b->s[b->len] = 0;
    if (c == '\n') b->lines++;
}

void sb_puts(StrBuf *b, const char *s)
{
    size_t n = strlen(s);
    sb_reserve_(b, n);
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
    for (; *s; s++) b->lines += *s == '\n';
}

void sb_vprintf(StrBuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    sb_reserve_(b, (size_t)n);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    for (int i = 0; i < n; i++) b->lines += b->s[b->len + i] == '\n';
    b->len += (size_t)n;
}

void sb_printf(StrBuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

void sb_indent(StrBuf *b, int level)
{
    for (int i = 0; i < level; i++) sb_puts(b, "    ");
}

void sb_free(StrBuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

char *sb_take(StrBuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    memset(b, 0, sizeof *b);
    return s;
}

/* ---- misc ---------------------------------------------------------------------------------------- */
bool str_eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* Hex floats round-trip exactly; the decimal comment (9 significant digits) is for people. */
void fmt_float_c(char *buf, size_t n, float v, bool with_comment)
{
    if (isnan(v)) {
        snprintf(buf, n, "NAN");
    } else if (isinf(v)) {
        snprintf(buf, n, v < 0 ? "-INFINITY" : "INFINITY");
    } else if (v == 0) {
        snprintf(buf, n, signbit(v) ? "-0.0f" : "0.0f");
    } else if (fabsf(v) < 1e6f && v == (float)(int)v) {
        snprintf(buf, n, "%d.0f", (int)v);
    } else if (with_comment) {
        snprintf(buf, n, "%af /* %.9g */", (double)v, (double)v);
    } else {
        snprintf(buf, n, "%af", (double)v);
    }
}

char *read_whole_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    StrBuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        sb_reserve_(&b, n);
        memcpy(b.s + b.len, chunk, n);
        b.len += n;
        b.s[b.len] = 0;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        sb_free(&b);
        errno = EIO;
        return NULL;
    }
    *len = b.len;
    return sb_take(&b);
}
