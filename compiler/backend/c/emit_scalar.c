/* emit_scalar.c: the C printer's side of ops.def's scalar definitions.
 *
 * An elementwise op's arithmetic is written once, as C text (OpInfo.scalar: x y z the inputs, a0 a1 the
 * float attributes, T the result type). EW_FN ops are printed as one helper function each,
 * `static nnc_real nnc_<name>(nnc_real x, ..., nnc_real a0, ...) { return <text>; }`, and called; EW_INLINE
 * ops are printed in place, each name replaced by its operand. The generated file includes <tgmath.h>, so
 * the math names resolve to the float functions when nnc_real is float.
 */
#include "emit.h"

#include <ctype.h>
#include <string.h>

#define A_ (e->m->arena)

static bool ident_start_(char c) { return c == '_' || isalpha((unsigned char)c); }
static bool ident_char_(char c) { return c == '_' || isalnum((unsigned char)c); }

/* the attribute (0 for a0, 1 for a1) an identifier names, or -1 */
static int attr_index_(const char *p, size_t len) { return len == 2 && p[0] == 'a' && (p[1] == '0' || p[1] == '1') ? p[1] - '0' : -1; }

/* the input (0 for x, 1 for y, 2 for z) an identifier names, or -1 */
static int input_index_(const char *p, size_t len) { return len == 1 && p[0] >= 'x' && p[0] <= 'z' ? p[0] - 'x' : -1; }

/* how many float attributes the definition reads (a1 used: 2) */
static int scalar_nattrs_(const char *t)
{
    int n = 0;
    for (const char *p = t; *p;) {
        if (!ident_start_(*p)) {
            p++;
            continue;
        }
        const char *s = p;
        while (ident_char_(*p)) p++;
        int k = attr_index_(s, (size_t)(p - s));
        if (k >= 0 && k + 1 > n) n = k + 1;
    }
    return n;
}

/* the inline text with every input, attribute and T replaced; numbers (1.0f, 0x1p-24) are copied whole */
static char *scalar_subst_(Emit *e, const Value *v, const char *t, char *const *operands)
{
    StrBuf b = {0};
    for (const char *p = t; *p;) {
        if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
            while (ident_char_(*p) || *p == '.' || ((*p == '+' || *p == '-') && strchr("eEpP", p[-1]))) sb_putc(&b, *p++);
            continue;
        }
        if (!ident_start_(*p)) {
            sb_putc(&b, *p++);
            continue;
        }
        const char *s = p;
        while (ident_char_(*p)) p++;
        size_t len = (size_t)(p - s);
        int in = input_index_(s, len), at = attr_index_(s, len);
        if (in >= 0) sb_puts(&b, operands[in]);
        else if (at >= 0) sb_puts(&b, c_float(e, v->attr.f[at]));
        else if (len == 1 && *s == 'T') sb_puts(&b, c_type(v->dtype));
        else sb_printf(&b, "%.*s", (int)len, s);
    }
    char *r = arena_strdup(A_, b.s ? b.s : "");
    sb_free(&b);
    return r;
}

char *c_scalar(Emit *e, int id, char *const *operands)
{
    const Value *v = &e->g->v[id];
    const OpInfo *op = &op_info[v->op];
    if (!op->scalar_fn) return scalar_subst_(e, v, op->scalar, operands);
    StrBuf b = {0};
    sb_printf(&b, "nnc_%s(", op->name);
    for (int k = 0; k < v->nin; k++) sb_printf(&b, "%s%s", k ? ", " : "", operands[k]);
    for (int k = 0; k < scalar_nattrs_(op->scalar); k++) sb_printf(&b, ", %s", c_float(e, v->attr.f[k]));
    sb_putc(&b, ')');
    char *r = arena_strdup(A_, b.s);
    sb_free(&b);
    return r;
}

void c_scalar_helper(StrBuf *b, OpKind op)
{
    static const char *const inputs[] = {"x", "y", "z"};
    const OpInfo *o = &op_info[op];
    sb_printf(b, "static nnc_real nnc_%s(", o->name);
    for (int k = 0; k < o->arity && k < 3; k++) sb_printf(b, "%snnc_real %s", k ? ", " : "", inputs[k]);
    for (int k = 0; k < scalar_nattrs_(o->scalar); k++) sb_printf(b, ", nnc_real a%d", k);
    sb_printf(b, ") { return %s; }\n", o->scalar);
}
