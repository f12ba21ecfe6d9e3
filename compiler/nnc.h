/* nnc.h: what every part of the compiler shares: arenas, string buffers, source locations, diagnostics.
 *
 * The compiler allocates from arenas and never frees objects one by one; a compilation frees its arena at
 * the end. User errors go through diag_*; compiler bugs through NNC_ASSERT / NNC_UNREACHABLE, which say
 * "internal error" and abort, and must never fire on any input file.
 */
#ifndef NNC_H
#define NNC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef NNC_VERSION
#define NNC_VERSION "0.0.0"
#endif

#if defined(__GNUC__)
#define NNC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define NNC_NORETURN __attribute__((noreturn))
#else
#define NNC_PRINTF(a, b)
#define NNC_NORETURN
#endif

NNC_NORETURN void nnc_internal_error(const char *file, int line, const char *msg);
#define NNC_ASSERT(c) ((c) ? (void)0 : nnc_internal_error(__FILE__, __LINE__, #c))
#define NNC_UNREACHABLE() nnc_internal_error(__FILE__, __LINE__, "unreachable")

/* ---- memory ------------------------------------------------------------------------------------ */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head;
} Arena;

void *arena_alloc(Arena *a, size_t n); /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) NNC_PRINTF(2, 3);
void arena_free(Arena *a);

/* Growable array of T: `VEC(int) v = {0}; vec_push(&v, 3);` */
#define VEC(T)                                                                                        \
    struct {                                                                                          \
        T *data;                                                                                      \
        int len, cap;                                                                                 \
    }
#define vec_push(v, x)                                                                                \
    do {                                                                                              \
        if ((v)->len == (v)->cap) {                                                                   \
            (v)->cap = (v)->cap ? 2 * (v)->cap : 8;                                                   \
            (v)->data = xrealloc((v)->data, (size_t)(v)->cap * sizeof(*(v)->data));                   \
        }                                                                                             \
        (v)->data[(v)->len++] = (x);                                                                  \
    } while (0)
#define vec_free(v) (free((v)->data), (v)->data = NULL, (v)->len = (v)->cap = 0)

/* ---- string buffer ----------------------------------------------------------------------------- */
typedef struct StrBuf {
    char *s;
    size_t len, cap;
    int lines; /* newlines written so far: the emitter uses it for #line directives */
} StrBuf;

void sb_putc(StrBuf *b, char c);
void sb_puts(StrBuf *b, const char *s);
void sb_printf(StrBuf *b, const char *fmt, ...) NNC_PRINTF(2, 3);
void sb_vprintf(StrBuf *b, const char *fmt, va_list ap);
void sb_indent(StrBuf *b, int level); /* 4 spaces a level */
void sb_free(StrBuf *b);
char *sb_take(StrBuf *b); /* the string, malloc'd; the buffer is reset */

/* ---- sources and locations --------------------------------------------------------------------- */
typedef struct Source {
    const char *path;  /* as the user named it */
    char *text;        /* NUL-terminated copy (embedded NULs possible: use len) */
    size_t len;
    int *line_start;   /* offset of each line, 1-based index: line_start[1] == 0 */
    int nlines;
} Source;

typedef struct Loc {
    int src;  /* index into the source table; 0 = no location */
    int line; /* 1-based */
    int col;  /* 1-based byte column */
    int len;  /* bytes of the token (for the ~~~ under the caret) */
} Loc;

int source_load(const char *path);                 /* 0 on failure (message printed) */
int source_add(const char *path, const char *text, size_t len);
const Source *source_get(int src);
const char *source_line(int src, int line, int *len); /* the text of one line, without newline */

/* ---- diagnostics: file:line:col: error: message, the line, a caret ----------------------------- */
enum { DIAG_MAX_ERRORS = 20 };

void diag_error(Loc loc, const char *fmt, ...) NNC_PRINTF(2, 3);
void diag_warning(Loc loc, const char *fmt, ...) NNC_PRINTF(2, 3);
void diag_note(Loc loc, const char *fmt, ...) NNC_PRINTF(2, 3);
/* Errors not tied to a source line: "nnc: error: ...". */
void diag_fatal(const char *fmt, ...) NNC_PRINTF(1, 2);
int diag_error_count(void);
void diag_finish(void); /* the 'too many errors' line, when the limit stopped us */
bool diag_too_many(void); /* 20 errors reported: callers stop */
void diag_reset(void);
void diag_set_quiet(bool quiet); /* tests of the front end */
void diag_set_warnings(bool on);  /* nnc check prints nothing for a valid model */

/* ---- misc -------------------------------------------------------------------------------------- */
/* Float formatting that survives exactly: a hex float, with the decimal in a comment when asked. */
void fmt_float_c(char *buf, size_t n, float v, bool with_comment);
bool str_eq(const char *a, const char *b);
uint64_t str_hash(const char *s); /* for open-addressing tables of names */

/* ---- text that reaches the generated C (util.c; the rule: docs/c-api.md) ------------------------------ */
typedef enum CIdentKind { C_ID_MODEL, C_ID_PARAM, C_ID_MEMBER } CIdentKind;
/* `name` as a C identifier: other bytes become _, a leading digit or _ gets v_ / v, a clash gets a _ */
const char *c_ident(Arena *a, const char *name, CIdentKind kind);
void sb_c_string(StrBuf *b, const char *s);     /* "s", escaped: \" \\ \n \? and octal for other bytes */
bool c_string_fits(const char *s);              /* within C99's 4095 characters for a string literal */
void sb_c_char_array(StrBuf *b, const char *s); /* {'s', ..., '\000'}: any length */
void sb_c_comment(StrBuf *b, const char *s);    /* for inside a comment: no * /, newline, ??, \ or non-ASCII */
/* NameMap: strings to ints, open addressing; keys are not copied (util.c) */
typedef struct NameMap {
    const char **keys;
    int *vals;
    uint64_t *hashes;
    int n, cap;
} NameMap;
int *namemap_get(NameMap *m, const char *key); /* the value of key, or NULL */
void namemap_put(NameMap *m, const char *key, int val);
void namemap_free(NameMap *m);
/* identifiers given out in one C namespace (a NameMap used as a set): a taken one gets _2, _3, ... (in
 * the order of the calls) */
const char *name_set_unique(NameMap *ns, Arena *a, const char *ident);

#endif
