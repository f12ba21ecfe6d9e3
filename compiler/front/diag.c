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

enum { SOURCE_MAX_BYTES = 16 << 20 }; /* a model file is at most 16 MiB (docs/language.md) */

static VEC(Source) sources;
static int error_count;
static bool too_many_reported;
static bool quiet;
static bool warnings = true;
static Loc last_error; /* notes never repeat the place of their error */
static bool muted;     /* the last warning was not shown (warnings off): nor are its notes */

static void sources_init_(void)
{
    if (sources.len == 0) vec_push(&sources, ((Source){.path = "<none>", .text = "", .len = 0}));
}

/* The text as the scanner sees it: a leading UTF-8 byte-order mark is dropped, and a CR alone (old Mac
 * line endings) becomes a newline; a CR before a newline stays (the scanner skips it as a blank). */
static size_t source_normalize_(char *to, const char *text, size_t len)
{
    static const char bom[] = "\xef\xbb\xbf";
    size_t i = len >= 3 && memcmp(text, bom, 3) == 0 ? 3 : 0, k = 0;
    for (; i < len; i++) to[k++] = text[i] == '\r' && (i + 1 == len || text[i + 1] != '\n') ? '\n' : text[i];
    to[k] = 0;
    return k;
}

int source_add(const char *path, const char *text, size_t len)
{
    sources_init_();
    Source s = {.path = xstrdup(path)};
    s.text = xmalloc(len + 1);
    s.len = len = source_normalize_(s.text, text, len);
    int lines = 1;
    for (size_t i = 0; i < len; i++) lines += s.text[i] == '\n';
    s.line_start = xmalloc(sizeof(int) * (size_t)(lines + 2));
    s.line_start[0] = 0;
    s.line_start[1] = 0;
    int k = 2;
    for (size_t i = 0; i < len; i++)
        if (s.text[i] == '\n') s.line_start[k++] = (int)(i + 1);
    s.nlines = lines;
    vec_push(&sources, s);
    return sources.len - 1;
}

/* The whole file, at most SOURCE_MAX_BYTES: an endless stream (/dev/zero, a FIFO fed by `yes`) is read
 * only up to one byte past the limit. NULL after a message. */
static char *source_read_(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_fatal("cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    bool fits = true;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        diag_fatal("cannot read '%s': it is a directory", path);
        return NULL;
    }
    if (S_ISREG(st.st_mode) && st.st_size > SOURCE_MAX_BYTES) fits = false;
    char *text = fits ? xmalloc((size_t)SOURCE_MAX_BYTES + 2) : NULL;
    size_t n = 0, got = 1;
    while (fits && got > 0 && n <= SOURCE_MAX_BYTES) {
        got = fread(text + n, 1, (size_t)SOURCE_MAX_BYTES + 1 - n, f);
        n += got;
    }
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (err || n > SOURCE_MAX_BYTES || !fits) {
        free(text);
        if (err) diag_fatal("cannot read '%s': %s", path, strerror(err));
        else diag_fatal("'%s' is too large for a model file (the limit is %d MiB)", path, SOURCE_MAX_BYTES >> 20);
        return NULL;
    }
    *len = n;
    return text;
}

/* A NUL byte means binary data (a weights or data file given as the model): one error, not twenty about
 * its bytes. */
static bool source_is_text_(int id)
{
    const Source *s = source_get(id);
    const char *nul = memchr(s->text, 0, s->len);
    if (!nul) return true;
    int off = (int)(nul - s->text), line = 1;
    while (line < s->nlines && s->line_start[line + 1] <= off) line++;
    diag_error((Loc){.src = id, .line = line, .col = off - s->line_start[line] + 1, .len = 1},
               "unexpected byte 0x00: this is binary data, not a model");
    return false;
}

int source_load(const char *path)
{
    size_t len = 0;
    char *text = source_read_(path, &len);
    if (!text) return 0;
    int id = source_add(path, text, len);
    free(text);
    return source_is_text_(id) ? id : 0;
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

/* The length of the UTF-8 sequence at s (at most n bytes), or 0 if it is not valid UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF included). */
static int utf8_len_(const unsigned char *s, int n)
{
    if (s[0] < 0x80) return 1;
    int k = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    if (k == 0 || k > n) return 0;
    for (int i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) || (s[0] == 0xf0 && s[1] < 0x90) ||
        (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return k;
}

/* The source line, then a caret under the token: tabs are kept so the caret lines up, a UTF-8 character
 * takes one column, control bytes show as spaces and bytes that are not UTF-8 as '?'. A very long line is
 * shown as a window around the caret. One buffered write. */
static void print_snippet_(Loc loc)
{
    enum { WINDOW = 100 };
    int len;
    const char *line = source_line(loc.src, loc.line, &len);
    if (!line) return;
    const unsigned char *text = (const unsigned char *)line;
    int col = loc.col < 1 ? 1 : loc.col;
    int from = 0, to = len;
    if (len > 2 * WINDOW) {
        from = col - 1 > WINDOW ? col - 1 - WINDOW : 0;
        to = from + 2 * WINDOW < len ? from + 2 * WINDOW : len;
        while (from > 0 && (text[from] & 0xc0) == 0x80) from--; /* never start inside a character */
    }
    int width = snprintf(NULL, 0, "%d", loc.line);
    width = width < 5 ? 5 : width;
    StrBuf b = {0}, caret = {0};
    sb_printf(&b, "%*d | %s", width, loc.line, from > 0 ? "..." : "");
    sb_printf(&caret, "%*s | %s", width, "", from > 0 ? "   " : "");
    bool marked = false;
    int tilde = 0;
    for (int i = from; i < to;) {
        int k = utf8_len_(text + i, to - i);
        if (k > 1) {
            sb_printf(&b, "%.*s", k, line + i);
        } else {
            sb_putc(&b, text[i] == '\t' || (text[i] >= 32 && text[i] < 127) ? line[i] : text[i] < 128 ? ' ' : '?');
            k = 1;
        }
        if (i + k <= col - 1) {
            sb_putc(&caret, text[i] == '\t' ? '\t' : ' ');
        } else if (!marked) {
            sb_putc(&caret, '^');
            marked = true;
        } else if (i < col - 1 + loc.len && tilde < 200) {
            sb_putc(&caret, '~');
            tilde++;
        }
        i += k;
    }
    if (!marked) sb_putc(&caret, '^');
    sb_printf(&b, "%s\n%s\n", to < len ? "..." : "", caret.s);
    fwrite(b.s, 1, b.len, stderr);
    sb_free(&b);
    sb_free(&caret);
}

/* A message quotes names and tokens as written: a run of more than 200 bytes without a blank (a name of a
 * megabyte) is shown as its first 100 bytes, "...", and its closing punctuation. */
static void put_message_(StrBuf *b, const char *msg)
{
    enum { LONG = 200, SHOWN = 100 };
    for (const char *p = msg; *p;) {
        size_t run = strcspn(p, " \n");
        if (run > LONG) {
            size_t head = SHOWN, tail = 0;
            while (head > 0 && ((unsigned char)p[head] & 0xc0) == 0x80) head--; /* not inside a character */
            while (tail < 3 && strchr("'\"),;:?", p[run - 1 - tail])) tail++;
            sb_printf(b, "%.*s...%.*s", (int)head, p, (int)tail, p + run - tail);
        } else {
            sb_printf(b, "%.*s", (int)run, p);
        }
        p += run;
        while (*p == ' ' || *p == '\n') sb_putc(b, *p++);
    }
}

static void vreport_(Loc loc, const char *kind, const char *fmt, va_list ap)
{
    if (quiet) return;
    const Source *s = source_get(loc.src);
    StrBuf msg = {0}, b = {0};
    if (s)
        sb_printf(&b, "%s:%d:%d: %s: ", s->path, loc.line, loc.col, kind);
    else
        sb_printf(&b, "nnc: %s: ", kind);
    sb_vprintf(&msg, fmt, ap);
    put_message_(&b, msg.s ? msg.s : "");
    sb_putc(&b, '\n');
    fwrite(b.s, 1, b.len, stderr);
    sb_free(&msg);
    sb_free(&b);
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
    muted = false;
    va_list ap;
    va_start(ap, fmt);
    vreport_(loc, "error", fmt, ap);
    va_end(ap);
}

void diag_warning(Loc loc, const char *fmt, ...)
{
    muted = !warnings;
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
    if (too_many_reported || muted) return;
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
