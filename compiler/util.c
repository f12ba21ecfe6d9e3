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
/* FNV-1a, then a final mix of the high bits into the low ones that pick a slot (names differ in their
 * tails): the one string hash of the scopes, the tensor indexes and the C name sets */
uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 33; /* mix the high bits into the low ones that pick the slot (names differ in their tails) */
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

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

/* ---- text that reaches the generated C --------------------------------------------------------------
 * Every emitter writes model-file text (names, paths, the command line) through these three, so that no
 * byte of it can change the program: docs/c-api.md, "Names and text in the generated C", states the rule. */

/* the longest string literal C99 requires compilers to accept (5.2.4.1) */
enum { C_STRING_MAX_ = 4095 };

void sb_c_string(StrBuf *b, const char *s)
{
    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)c);
        } else if (c == '\n') {
            sb_puts(b, "\\n");
        } else if (c == '?' && p > (const unsigned char *)s && p[-1] == '?') {
            sb_puts(b, "\\?"); /* no trigraph: ??/ would be a backslash */
        } else if (c < 0x20 || c > 0x7e) {
            sb_printf(b, "\\%03o", c); /* three digits: a digit after it cannot join the escape */
        } else {
            sb_putc(b, (char)c);
        }
    }
    sb_putc(b, '"');
}

bool c_string_fits(const char *s) { return strlen(s) <= C_STRING_MAX_; }

void sb_c_char_array(StrBuf *b, const char *s)
{
    sb_putc(b, '{');
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        unsigned c = *p;
        if ((p - (const unsigned char *)s) % 16 == 0) sb_puts(b, "\n    ");
        if (c == '\'' || c == '\\')
            sb_printf(b, "'\\%c', ", (char)c);
        else if (c >= 0x20 && c <= 0x7e && c != '?')
            sb_printf(b, "'%c', ", (char)c);
        else
            sb_printf(b, "'\\%03o', ", c);
        if (!c) break;
    }
    sb_puts(b, "\n}");
}

void sb_c_comment(StrBuf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        bool star_slash = c == '/' && ((p > (const unsigned char *)s && p[-1] == '*') || p[1] == '*');
        bool trigraph = c == '?' && p > (const unsigned char *)s && p[-1] == '?';
        if (c < 0x20 || c > 0x7e || c == '\\' || star_slash || trigraph)
            sb_printf(b, "\\x%02x", c); /* never a backslash at the end: two hex digits follow it */
        else
            sb_putc(b, (char)c);
    }
}

/* sorted (strcmp): C and C++ keywords and the lowercase macros of the headers the generated C includes */
static const char *const c_keywords_[] = {
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch",
    "char", "char16_t", "char32_t", "char8_t", "class", "co_await", "co_return", "co_yield", "compl", "complex",
    "concept", "const", "const_cast", "consteval", "constexpr", "constinit", "continue", "decltype", "default",
    "delete", "do", "double", "dynamic_cast", "else", "enum", "errno", "explicit", "export", "extern", "false",
    "float", "for", "friend", "goto", "i386", "if", "imaginary", "inline", "int", "linux", "long",
    "math_errhandling", "mutable", "namespace", "new", "noexcept", "noreturn", "not", "not_eq", "nullptr",
    "offsetof", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
    "requires", "restrict", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast",
    "struct", "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename",
    "typeof", "typeof_unqual", "union", "unix", "unsigned", "using", "virtual", "void", "volatile", "while", "xor",
    "xor_eq",
};

/* sorted: what the entry points call their own parameters and locals, and the functions they call */
static const char *const c_param_names_[] = {
    "A", "Ai", "i", "loss", "m", "memcpy", "memset", "metrics", "n",
};

/* sorted: the struct members that are not tensors */
static const char *const c_member_names_[] = {
    "arena", "arena_i", "rng",
};

/* sorted: functions that <string.h>, <math.h> and <complex.h> may declare (a model's name is a typedef
 * at file scope; a parameter would hide one in the entry point); a trailing f or l (the float and long
 * double variants) is stripped before the look-up */
static const char *const c_library_[] = {
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "basename", "bcmp", "bcopy", "bzero", "cabs",
    "cacos", "cacosh", "carg", "casin", "casinh", "catan", "catanh", "cbrt", "ccos", "ccosh", "ceil", "cexp",
    "cimag", "clog", "conj", "copysign", "cos", "cosh", "cpow", "cproj", "creal", "csin", "csinh", "csqrt", "ctan",
    "ctanh", "drem", "erf", "erfc", "exp", "exp10", "exp2", "explicit_bzero", "expm1", "fabs", "fdim", "ffs",
    "ffsl", "ffsll", "finite", "floor", "fma", "fmax", "fmin", "fmod", "fpclassify", "frexp", "gamma", "hypot",
    "ilogb", "index", "isfinite", "isgreater", "isgreaterequal", "isinf", "isless", "islessequal", "islessgreater",
    "isnan", "isnormal", "isunordered", "j0", "j1", "jn", "ldexp", "lgamma", "llrint", "llround", "log", "log10",
    "log1p", "log2", "logb", "lrint", "lround", "memccpy", "memchr", "memcmp", "memcpy", "memfrob", "memmem",
    "memmove", "mempcpy", "memrchr", "memset", "modf", "nan", "nearbyint", "nextafter", "nexttoward", "pow",
    "pow10", "rawmemchr", "remainder", "remquo", "rindex", "rint", "round", "scalb", "scalbln", "scalbn", "signbit",
    "significand", "sin", "sincos", "sinh", "sqrt", "stpcpy", "stpncpy", "strcasecmp", "strcasestr", "strcat",
    "strchr", "strchrnul", "strcmp", "strcoll", "strcpy", "strcspn", "strdup", "strerror", "strfry", "strlcat",
    "strlcpy", "strlen", "strncasecmp", "strncat", "strncmp", "strncpy", "strndup", "strnlen", "strpbrk", "strrchr",
    "strsep", "strsignal", "strspn", "strstr", "strtok", "strtok_r", "strverscmp", "strxfrm", "tan", "tanh",
    "tgamma", "trunc", "y0", "y1", "yn",
};

static int cmp_str_(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static bool in_list_(const char *s, const char *const *list, size_t n)
{
    return bsearch(&s, list, n, sizeof *list, cmp_str_) != NULL;
}

static bool c_library_name_(const char *s)
{
    enum { N = sizeof c_library_ / sizeof c_library_[0] };
    if (in_list_(s, c_library_, N)) return true;
    size_t len = strlen(s);
    if (len < 2 || (s[len - 1] != 'f' && s[len - 1] != 'l') || len > 64) return false;
    char base[64];
    memcpy(base, s, len - 1);
    base[len - 1] = 0;
    return in_list_(base, c_library_, N);
}

/* sorted: what <stdlib.h> declares, which the CUDA target's M_init includes (for malloc): a model of one of
 * these names would redeclare it as a typedef (a parameter or local of the same name only hides it) */
static const char *const c_stdlib_[] = {
    "EXIT_FAILURE", "EXIT_SUCCESS", "_Exit", "abort", "abs", "aligned_alloc", "at_quick_exit", "atexit", "atof",
    "atoi", "atol", "atoll", "bsearch", "calloc", "div", "exit", "free", "getenv", "labs", "ldiv", "llabs", "lldiv",
    "malloc", "mblen", "mbstowcs", "mbtowc", "qsort", "quick_exit", "rand", "realloc", "srand", "strtod", "strtof",
    "strtol", "strtold", "strtoll", "strtoul", "strtoull", "system", "wcstombs", "wctomb",
};

/* sorted: the upper-case macros of those headers that a model's name could be */
static const char *const c_macros_[] = {
    "CMPLX", "CMPLXF", "CMPLXL", "EOF", "HUGE_VAL", "HUGE_VALF", "HUGE_VALL", "I", "INFINITY", "MATH_ERREXCEPT",
    "MATH_ERRNO", "NAN", "NULL",
};

static bool ends_with_(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

static bool c_ident_clashes_(const char *s, CIdentKind kind)
{
    if (kind == C_ID_MODEL && in_list_(s, c_stdlib_, sizeof c_stdlib_ / sizeof c_stdlib_[0])) return true;
    bool lower = false;
    for (const char *p = s; *p; p++) lower |= *p >= 'a' && *p <= 'z';
    if (!lower && kind != C_ID_MODEL) return true; /* possibly a macro (NAN, I, EOF) */
    if (!lower) /* a model may be MNIST, but not a macro's name */
        return in_list_(s, c_macros_, sizeof c_macros_ / sizeof c_macros_[0]) || strncmp(s, "FP_", 3) == 0 ||
               strncmp(s, "M_", 2) == 0 || ends_with_(s, "_MAX") || ends_with_(s, "_MIN") || ends_with_(s, "_C") ||
               ends_with_(s, "_WIDTH") || strncmp(s, "NNC", 3) == 0;
    if (ends_with_(s, "_t")) return true; /* size_t, int32_t: types */
    if (strncmp(s, "nnc", 3) == 0 || strncmp(s, "NNC", 3) == 0) return true;
    if (in_list_(s, c_keywords_, sizeof c_keywords_ / sizeof c_keywords_[0])) return true;
    if (kind == C_ID_PARAM && (in_list_(s, c_param_names_, sizeof c_param_names_ / sizeof c_param_names_[0]) ||
                               (s[0] == 'k' && s[1] >= '0' && s[1] <= '9'))) /* kernels: k12_add */
        return true;
    if (kind == C_ID_MEMBER && in_list_(s, c_member_names_, sizeof c_member_names_ / sizeof c_member_names_[0])) return true;
    return kind != C_ID_MEMBER && c_library_name_(s);
}

const char *c_ident(Arena *a, const char *name, CIdentKind kind)
{
    char *s = arena_strdup(a, name);
    for (char *p = s; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) *p = '_';
    if (!*s || (*s >= '0' && *s <= '9') || *s == '_') s = arena_printf(a, "v%s%s", *s == '_' ? "" : "_", s);
    if (c_ident_clashes_(s, kind)) s = arena_printf(a, "%s_", s);
    return strcmp(s, name) == 0 ? name : s;
}

/* ---- NameMap: strings to ints, open addressing (hashes are kept for growing) ---------------------------- */
static int namemap_slot_(const NameMap *m, const char *key, uint64_t h)
{
    int mask = m->cap - 1, k = (int)(h & (uint64_t)mask);
    while (m->keys[k] && (m->hashes[k] != h || !str_eq(m->keys[k], key))) k = (k + 1) & mask;
    return k;
}

int *namemap_get(NameMap *m, const char *key)
{
    if (!m->cap) return NULL;
    int k = namemap_slot_(m, key, str_hash(key));
    return m->keys[k] ? &m->vals[k] : NULL;
}

void namemap_put(NameMap *m, const char *key, int val)
{
    if (2 * (m->n + 1) > m->cap) {
        NameMap old = *m;
        m->cap = old.cap ? 2 * old.cap : 256;
        m->keys = xcalloc((size_t)m->cap, sizeof *m->keys);
        m->vals = xcalloc((size_t)m->cap, sizeof *m->vals);
        m->hashes = xcalloc((size_t)m->cap, sizeof *m->hashes);
        for (int i = 0; i < old.cap; i++)
            if (old.keys[i]) {
                int k = (int)(old.hashes[i] & (uint64_t)(m->cap - 1));
                while (m->keys[k]) k = (k + 1) & (m->cap - 1);
                m->keys[k] = old.keys[i];
                m->vals[k] = old.vals[i];
                m->hashes[k] = old.hashes[i];
            }
        free(old.keys);
        free(old.vals);
        free(old.hashes);
    }
    uint64_t h = str_hash(key);
    int k = namemap_slot_(m, key, h);
    if (!m->keys[k]) m->n++;
    m->keys[k] = key;
    m->vals[k] = val;
    m->hashes[k] = h;
}

void namemap_free(NameMap *m)
{
    free(m->keys);
    free(m->vals);
    free(m->hashes);
    *m = (NameMap){0};
}

/* ---- a set of the identifiers given out in one C namespace ------------------------------------------ */
/* A base name's value in the map is the next suffix to try for it: names are never removed, so every
 * suffix below it is taken, and a name asked for n times costs one lookup each, not n. */
const char *name_set_unique(NameMap *ns, Arena *a, const char *ident)
{
    int *next = namemap_get(ns, ident);
    if (!next) {
        namemap_put(ns, ident, 2);
        return ident;
    }
    int k = *next < 2 ? 2 : *next;
    const char *s;
    do s = arena_printf(a, "%s_%d", ident, k++);
    while (namemap_get(ns, s));
    namemap_put(ns, ident, k);
    namemap_put(ns, s, 2);
    return s;
}
