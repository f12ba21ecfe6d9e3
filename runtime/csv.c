/* csv.c: numeric CSV files, one sample per row, read as f64 [rows, cols].
 *
 * The separator is chosen once, from the first data line: ';' if it has one, else ',' if it has one,
 * else runs of spaces/tabs (so .tsv and whitespace-aligned .txt work too). With ',' or ';' every
 * separator starts a field, so "1,,3" and "1,2," hold an empty field, which is not a number. The first
 * non-empty line is a header (skipped, its fields not counted) if any field is not a number; after it
 * every field must be a number and every row as wide as the first data row. A UTF-8 byte-order mark at
 * the start of the file is skipped.
 * What it does not do: quoting, comments, decimal commas, or locale-dependent parsing (strtod runs in
 * whatever LC_NUMERIC the program set; nnc itself never calls setlocale, so that is "C").
 */
#include "nnc_runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail_(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

typedef struct CsvReader {
    const char *path;
    char sep;          /* ',' or ';', or ' ' for runs of whitespace; 0 until the first data line */
    int header_done;   /* the first non-empty line has been seen */
    long line;         /* 1-based number of the line being parsed */
    long first_data_line;
    int64_t rows, cols;
    int count_only;    /* parse and check every field, but keep no values (nnc_csv_read_header) */
    double *vals;
    size_t nvals, cap;
} CsvReader;

/* The whole file in one NUL-terminated buffer (read in growing chunks, so pipes work too). */
static int csv_slurp_(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    char *buf = NULL;
    if (!f)
        return fail_(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    for (;;) {
        char *grown = cap < SIZE_MAX / 2 ? realloc(buf, cap + 1) : NULL; /* cap doubles below */
        if (!grown) {
            free(buf);
            fclose(f);
            return fail_(err, errlen, "%s: out of memory reading %zu bytes", path, cap);
        }
        buf = grown;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return fail_(err, errlen, "%s: read error: %s", path, strerror(errno));
    }
    fclose(f);
    buf[n] = 0;
    *text = buf;
    *len = n;
    return 0;
}

static int csv_is_blank_(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static char csv_pick_sep_(const char *s, const char *end)
{
    if (memchr(s, ';', (size_t)(end - s)))
        return ';';
    if (memchr(s, ',', (size_t)(end - s)))
        return ',';
    return ' ';
}

/* The next field of [*p, end) with blanks trimmed, or 0 when the line has no more fields. */
static int csv_next_field_(const char **p, const char *end, char sep, int *more, const char **fs,
                           const char **fe)
{
    const char *s = *p;
    if (sep == ' ') {
        while (s < end && csv_is_blank_(*s))
            s++;
        if (s == end)
            return 0;
        for (*fs = s; s < end && !csv_is_blank_(*s); s++) {
        }
        *fe = s;
        *p = s;
        return 1;
    }
    if (!*more)
        return 0;
    while (s < end && *s != sep)
        s++;
    *more = s < end; /* a separator promises one more (possibly empty) field */
    *fs = *p;
    *fe = s;
    while (*fs < *fe && csv_is_blank_(**fs))
        (*fs)++;
    while (*fe > *fs && csv_is_blank_((*fe)[-1]))
        (*fe)--;
    *p = s + *more;
    return 1;
}

/* strtod stops at a separator, blank, newline or the final NUL, so it never reads past the field. */
static int csv_parse_number_(const char *fs, const char *fe, double *v)
{
    char *e;
    if (fs == fe)
        return 0;
    *v = strtod(fs, &e);
    return e == fe;
}

static int csv_push_(CsvReader *r, double v)
{
    if (r->count_only) {
        r->nvals++;
        return 0;
    }
    if (r->nvals == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        double *grown = cap > SIZE_MAX / sizeof *grown ? NULL : realloc(r->vals, cap * sizeof *grown);
        if (!grown)
            return -1;
        r->vals = grown;
        r->cap = cap;
    }
    r->vals[r->nvals++] = v;
    return 0;
}

/* Appends the row's numbers to r->vals; a non-numeric field rolls the row back and is reported by
 * column (1-based), or skipped as the header if this is the first non-empty line. */
static int csv_parse_row_(CsvReader *r, const char *s, const char *end, char *err, size_t errlen)
{
    size_t start = r->nvals;
    int64_t ncols = 0;
    int more = 1;
    const char *fs, *fe;
    while (csv_next_field_(&s, end, r->sep, &more, &fs, &fe)) {
        double v;
        ncols++;
        if (csv_parse_number_(fs, fe, &v)) {
            if (csv_push_(r, v))
                return fail_(err, errlen, "%s: out of memory at line %ld", r->path, r->line);
            continue;
        }
        r->nvals = start;
        if (!r->header_done) {
            r->header_done = 1;
            r->sep = 0; /* a header may be spaced differently; let the first data line decide */
            return 0;
        }
        if (fs == fe)
            return fail_(err, errlen, "%s: line %ld, column %lld: empty field", r->path, r->line,
                         (long long)ncols);
        return fail_(err, errlen, "%s: line %ld, column %lld: '%.*s' is not a number", r->path, r->line,
                     (long long)ncols, (int)(fe - fs > 40 ? 40 : fe - fs), fs);
    }
    r->header_done = 1;
    if (r->rows == 0) {
        r->cols = ncols;
        r->first_data_line = r->line;
    } else if (ncols != r->cols) {
        return fail_(err, errlen, "%s: line %ld has %lld fields, expected %lld (as on line %ld)", r->path,
                     r->line, (long long)ncols, (long long)r->cols, r->first_data_line);
    }
    r->rows++;
    return 0;
}

/* A UTF-8 byte-order mark (Excel's "CSV UTF-8" starts with one) is not part of the first field: left
 * there it made the first data row look like a header, which was then dropped. */
static int csv_parse_(CsvReader *r, const char *text, size_t len, char *err, size_t errlen)
{
    const char *s = text, *end = text + len;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *eol = nl ? nl : end, *b = s;
        r->line++;
        while (b < eol && csv_is_blank_(*b))
            b++;
        if (b < eol) {
            if (!r->sep)
                r->sep = csv_pick_sep_(s, eol);
            if (csv_parse_row_(r, s, eol, err, errlen))
                return -1;
        }
        s = nl ? nl + 1 : end;
    }
    if (r->rows == 0)
        return fail_(err, errlen, "%s: no data rows", r->path);
    return 0;
}

/* The whole array, or only its shape (data NULL; the file is still parsed and checked whole, since the
 * shape is its rows). On failure *out is left zeroed. */
static int csv_read_(const char *path, nnc_array *out, int with_data, char *err, size_t errlen)
{
    CsvReader r;
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    memset(&r, 0, sizeof r);
    r.path = path;
    r.count_only = !with_data;
    if (csv_slurp_(path, &text, &len, err, errlen))
        return -1;
    if (csv_parse_(&r, text, len, err, errlen)) {
        free(text);
        free(r.vals);
        return -1;
    }
    free(text);
    out->dtype = NNC_F64;
    out->rank = 2;
    out->shape[0] = r.rows;
    out->shape[1] = r.cols;
    out->data = r.vals; /* with data, non-NULL: a non-blank line has at least one field */
    return 0;
}

int nnc_csv_read(const char *path, nnc_array *out, char *err, size_t errlen)
{
    return csv_read_(path, out, 1, err, errlen);
}

int nnc_csv_read_header(const char *path, nnc_array *out, char *err, size_t errlen)
{
    return csv_read_(path, out, 0, err, errlen);
}
