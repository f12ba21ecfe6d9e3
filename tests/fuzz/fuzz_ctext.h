/* fuzz_ctext.h: an oracle for fuzz_compile: generated C in which model-file text changed the program's
 * structure. Model files put names and paths into comments, string literals and identifiers of the C; if
 * one is pasted unescaped, a comment or string ends early and the rest of it becomes code. A small C
 * lexer walks the text and aborts (a finding) on:
 *   - a trigraph (??= ??/ ??' ??( ??) ??! ??< ??> ??-): C99 compilers replace them everywhere;
 *   - a backslash at the end of a // comment (it continues the comment over the next line);
 *   - a string or character literal running past the end of its line, or a block comment never closed;
 *   - "*" "/" in code, which is where a comment closed early by a name leaves its tail;
 *   - a control character other than newline and tab, or a NUL, anywhere;
 *   - a string literal longer than the 4,095 characters C99 requires compilers to accept (-pedantic).
 * What it does not do: compile the C (too slow for fuzzing; tests/emit and tests/sanitize do that). */
#ifndef NNC_FUZZ_CTEXT_H
#define NNC_FUZZ_CTEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ctext_fail_(const char *what, const char *text, const char *at)
{
    const char *line = at;
    while (line > text && line[-1] != '\n') line--;
    const char *eol = strchr(at, '\n');
    int n = eol ? (int)(eol - line) : (int)strlen(line);
    fprintf(stderr, "fuzz_compile: generated C: %s at offset %ld:\n%.*s\n", what, (long)(at - text),
            n > 300 ? 300 : n, line);
    abort();
}

static int ctext_trigraph_(const char *p)
{
    return p[0] == '?' && p[1] == '?' && p[2] && strchr("=/'()!<>-", p[2]) != NULL;
}

/* The end of a string or character literal that starts at p (the quote), checked. */
static const char *ctext_literal_(const char *text, const char *p)
{
    char quote = *p;
    const char *start = p++;
    for (; *p != quote; p++) {
        if (*p == '\0' || *p == '\n') ctext_fail_("a literal runs past its line", text, start);
        if (*p == '\\' && *++p == '\n') ctext_fail_("a backslash-newline in a literal", text, p);
        if (*p == '\0') ctext_fail_("a literal runs past the text", text, start);
    }
    if (quote == '"' && p - start - 1 > 4095) ctext_fail_("a string literal over 4095 characters", text, start);
    return p + 1;
}

static void fuzz_check_ctext(const char *text)
{
    if (!text) return;
    for (const char *q = text; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) ctext_fail_("a control character", text, q);
        if (ctext_trigraph_(q)) ctext_fail_("a trigraph", text, q);
    }
    const char *p = text;
    while (*p) {
        if (p[0] == '/' && p[1] == '/') {
            const char *eol = strchr(p, '\n');
            if (!eol) break;
            if (eol[-1] == '\\') ctext_fail_("a // comment ending in a backslash", text, p);
            p = eol + 1;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (!end) ctext_fail_("a block comment never closed", text, p);
            p = end + 2;
        } else if (p[0] == '*' && p[1] == '/') {
            ctext_fail_("'*/' in code (a comment closed early)", text, p);
        } else if (*p == '"' || *p == '\'') {
            p = ctext_literal_(text, p);
        } else {
            p++;
        }
    }
}

#endif
