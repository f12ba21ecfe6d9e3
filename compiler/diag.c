/* diag.c: the source table and clang-style diagnostics.
 *
 *   model.nn:12:9: error: dense: input has rank 3, expected rank 2
 *      12 |     h = dense(x, 50)
 *         |         ^~~~~
 *
 * Every error is counted; after DIAG_MAX_ERRORS the caller is told to stop (diag_too_many) and one
 * closing line says so. This file does not decide what is an error; it only reports.
 */
#include "nnc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static VEC(Source) sources;
static int error_count;
static bool too_many_reported;
static bool quiet;
static bool warnings = true;
static Loc last_error; /* notes never repeat the place of their error */

static void sources_init_(void)
{
    if (sources.len == 0) vec_push(&sources, ((Source){.path = "<none>", .text = "", .len = 0}));
}

int source_add(const char *path, const char *text, size_t len)
{
    sources_init_();
    Source s = {.path = xstrdup(path), .len = len};
    s.text = xmalloc(len + 1);
    memcpy(s.text, text, len);
    s.text[len] = 0;
    int lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    s.line_start = xmalloc(sizeof(int) * (size_t)(lines + 2));
    s.line_start[0] = 0;
    s.line_start[1] = 0;
    int k = 2;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n') s.line_start[k++] = (int)(i + 1);
    s.nlines = lines;
    vec_push(&sources, s);
    return sources.len - 1;
}

int source_load(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        diag_fatal("cannot read '%s': it is a directory", path);
        return 0;
    }
    size_t len = 0;
    char *text = read_whole_file(path, &len);
    if (!text) {
        diag_fatal("cannot read '%s': %s", path, strerror(errno));
        return 0;
    }
    if (len > (size_t)1 << 30) {
        free(text);
        diag_fatal("'%s' is too large for a model file (%zu bytes)", path, len);
        return 0;
    }
    int id = source_add(path, text, len);
    free(text);
    return id;
}

const Source *source_get(int src)
{
    sources_init_();
    return src > 0 && src < sources.len ? &sources.data[src] : NULL;
}

const char *source_line(int src, int line, int *len)
{
    const Source *s = source_get(src);
    if (!s || line < 1 || line > s->nlines) return NULL;
    int start = s->line_start[line];
    int end = start;
    while ((size_t)end < s->len && s->text[end] != '\n') end++;
    if (end > start && s->text[end - 1] == '\r') end--;
    *len = end - start;
    return s->text + start;
}

/* The source line, then a caret under the token: tabs are kept so the caret lines up. A very long line is
 * shown as a window around the caret. One buffered write. */
static void print_snippet_(Loc loc)
{
    enum { WINDOW = 100 };
    int len;
    const char *text = source_line(loc.src, loc.line, &len);
    if (!text) return;
    int col = loc.col < 1 ? 1 : loc.col;
    int from = 0, to = len;
    if (len > 2 * WINDOW) {
        from = col - 1 > WINDOW ? col - 1 - WINDOW : 0;
        to = from + 2 * WINDOW < len ? from + 2 * WINDOW : len;
    }
    StrBuf b = {0};
    sb_printf(&b, "%5d | %s", loc.line, from > 0 ? "..." : "");
    for (int i = from; i < to; i++) {
        unsigned char c = (unsigned char)text[i];
        sb_putc(&b, c == '\t' || c >= 32 ? (char)c : ' ');
    }
    sb_printf(&b, "%s\n      | %s", to < len ? "..." : "", from > 0 ? "   " : "");
    for (int i = from; i < col - 1 && i < len; i++) sb_putc(&b, text[i] == '\t' ? '\t' : ' ');
    sb_putc(&b, '^');
    int tilde = loc.len - 1;
    if (col - 1 + loc.len > to) tilde = to - col;
    for (int i = 0; i < tilde && i < 200; i++) sb_putc(&b, '~');
    sb_putc(&b, '\n');
    fwrite(b.s, 1, b.len, stderr);
    sb_free(&b);
}

static void vreport_(Loc loc, const char *kind, const char *fmt, va_list ap)
{
    if (quiet) return;
    const Source *s = source_get(loc.src);
    if (s)
        fprintf(stderr, "%s:%d:%d: %s: ", s->path, loc.line, loc.col, kind);
    else
        fprintf(stderr, "nnc: %s: ", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (s) print_snippet_(loc);
}

void diag_error(Loc loc, const char *fmt, ...)
{
    if (error_count >= DIAG_MAX_ERRORS) {
        if (!too_many_reported && !quiet) fprintf(stderr, "nnc: fatal error: too many errors emitted, stopping now\n");
        too_many_reported = true;
        return;
    }
    error_count++;
    last_error = loc;
    va_list ap;
    va_start(ap, fmt);
    vreport_(loc, "error", fmt, ap);
    va_end(ap);
}

void diag_warning(Loc loc, const char *fmt, ...)
{
    if (!warnings) return;
    va_list ap;
    va_start(ap, fmt);
    vreport_(loc, "warning", fmt, ap);
    va_end(ap);
}

void diag_note(Loc loc, const char *fmt, ...)
{
    static Loc last;
    static int last_errors = -1;
    if (too_many_reported) return;
    /* one note per place for one error: a recursive def's calls all sit on one line */
    if (last_errors == error_count && last.src == loc.src && last.line == loc.line && last.col == loc.col) return;
    if (last_error.src == loc.src && last_error.line == loc.line && last_error.col == loc.col) return;
    last = loc;
    last_errors = error_count;
    va_list ap;
    va_start(ap, fmt);
    vreport_(loc, "note", fmt, ap);
    va_end(ap);
}

void diag_fatal(const char *fmt, ...)
{
    error_count++;
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("nnc: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int diag_error_count(void) { return error_count; }

void diag_finish(void)
{
    if (error_count >= DIAG_MAX_ERRORS && !too_many_reported && !quiet)
        fprintf(stderr, "nnc: fatal error: too many errors emitted, stopping now\n");
    too_many_reported = true;
}
bool diag_too_many(void) { return error_count >= DIAG_MAX_ERRORS; }
void diag_reset(void)
{
    error_count = 0;
    too_many_reported = false;
}
void diag_set_quiet(bool q) { quiet = q; }
void diag_set_warnings(bool on) { warnings = on; }
