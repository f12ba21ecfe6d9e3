/* emit_dialect.c: the firmware dialect of the C printer's own text.
 *
 * The kernels and helpers are written once, in the host's spelling: math functions by their <tgmath.h>
 * names (exp, tanh), flat offsets as int64_t. A firmware target has no <tgmath.h> (newlib's names long
 * double complex functions it lacks) and no 64-bit multiply in hardware, so its text is rewritten here:
 * each math name gets its float function (expf), each int64_t becomes the target's index type. Only
 * identifiers in code are rewritten: comments, string literals (#line paths) and member names after
 * `.` or `->` are copied as they are. Model names never reach kernels or helpers as identifiers.
 */
#include "emit.h"

#include <ctype.h>
#include <string.h>

/* the <math.h> functions the printer and ops.def write, each with a float version name##f */
static const char *const math_names_[] = {"exp", "log", "sqrt", "tanh", "fabs", "pow", "cos", "sin", "log1p",
                                           "expm1", "erf", "erfc", "floor", "ceil", "fmax", "fmin", "round"};

static bool ident_start_(char c) { return c == '_' || isalpha((unsigned char)c); }
static bool ident_char_(char c) { return c == '_' || isalnum((unsigned char)c); }

static bool is_math_name_(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof math_names_ / sizeof math_names_[0]; i++)
        if (strlen(math_names_[i]) == len && strncmp(math_names_[i], s, len) == 0) return true;
    return false;
}

/* the end of the comment or literal that starts at p, or p itself when none does */
static const char *skip_non_code_(const char *p)
{
    if (p[0] == '/' && p[1] == '*') {
        const char *end = strstr(p + 2, "*/");
        return end ? end + 2 : p + strlen(p);
    }
    if (p[0] == '/' && p[1] == '/') {
        const char *end = strchr(p, '\n');
        return end ? end : p + strlen(p);
    }
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        while (*p && *p != q) p += p[0] == '\\' && p[1] ? 2 : 1;
        return *p ? p + 1 : p;
    }
    return p;
}

char *c_dialect(const Target *t, const char *text)
{
    StrBuf b = {0};
    for (const char *p = text; *p;) {
        const char *q = skip_non_code_(p);
        if (q != p) {
            sb_printf(&b, "%.*s", (int)(q - p), p);
            p = q;
            continue;
        }
        if (!ident_start_(*p) || (p > text && (ident_char_(p[-1]) || isdigit((unsigned char)p[-1])))) {
            /* a number's letters (1e-3f, 0x1p-24) are not identifiers */
            if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
                while (ident_char_(*p) || *p == '.' || ((*p == '+' || *p == '-') && strchr("eEpP", p[-1]))) sb_putc(&b, *p++);
                continue;
            }
            sb_putc(&b, *p++);
            continue;
        }
        const char *s = p;
        while (ident_char_(*p)) p++;
        size_t len = (size_t)(p - s);
        bool member = (s > text && s[-1] == '.') || (s > text + 1 && s[-2] == '-' && s[-1] == '>');
        if (!member && t->firmware && is_math_name_(s, len)) sb_printf(&b, "%.*sf", (int)len, s);
        else if (!member && len == 7 && strncmp(s, "int64_t", 7) == 0) sb_puts(&b, t->index_type);
        else sb_printf(&b, "%.*s", (int)len, s);
    }
    return sb_take(&b);
}
