/* emit_lanes.c: named accumulators, the firmware kernels' register blocks.
 *
 * A microcontroller has no vector unit and 32 float registers. Its kernels (matrix products, the
 * convolution inside a pooling, lstm_infer's gates) compute a row of outputs in blocks of lanes, each
 * lane's sum in a variable of its own (acc0 .. acc7) that the compiler keeps in a register, and
 * multiply-add with fmaf (one vfma.f32 on a Cortex-M4F; under -std=c99 gcc does not contract a * b + c
 * itself). This file writes what those kernels share: the blocking of a row, a lane's column, the
 * declarations and the multiply-adds.
 */
#include "emit.h"

#include <inttypes.h>

#define A_ (e->m->arena)

enum { LANES = 8, LANES_ONE_BLOCK = 12 };

char *lanes_col(Emit *e, const Lanes *b, int64_t l)
{
    if (!b->var) return arena_printf(A_, "%" PRId64, b->base + l);
    return l ? arena_printf(A_, "%s + %" PRId64, b->var, l) : (char *)b->var;
}

char *lanes_offset(Emit *e, const Lanes *b, const char *p)
{
    if (!b->var && b->base == 0) return (char *)p;
    return arena_printf(A_, "%s + %s", p, lanes_col(e, b, 0));
}

char *lanes_decl(Emit *e, const Lanes *b, const char *name, const char *init, const char *init_at)
{
    StrBuf s = {0};
    for (int64_t l = 0; l < b->n; l++) {
        sb_printf(&s, "%s%s%" PRId64 " = ", l ? ", " : "nnc_real ", name, l);
        if (init_at) sb_printf(&s, "%s[%s]", init_at, lanes_col(e, b, l));
        else sb_puts(&s, init);
    }
    sb_putc(&s, ';');
    char *r = arena_strdup(A_, s.s);
    sb_free(&s);
    return r;
}

char *lanes_fma(Emit *e, const Lanes *b, const char *x, const char *p)
{
    StrBuf s = {0};
    for (int64_t l = 0; l < b->n; l++)
        sb_printf(&s, "%sacc%" PRId64 " = fmaf(%s, %s[%" PRId64 "], acc%" PRId64 ");", l ? " " : "", l, x, p, l, l);
    char *r = arena_strdup(A_, s.s);
    sb_free(&s);
    return r;
}

void lanes_blocks(Emit *e, int ind, const char *var, int64_t n, LanesBlock *block, void *ctx)
{
    int64_t full = n <= LANES_ONE_BLOCK ? 0 : n / LANES * LANES;
    if (full > LANES) {
        sb_indent(&e->kernels, ind);
        sb_printf(&e->kernels, "for (int %s = 0; %s < %" PRId64 "; %s += %d)\n", var, var, full, var, LANES);
        block(e, ind + 1, &(Lanes){.var = var, .n = LANES}, ctx);
    } else if (full) {
        block(e, ind, &(Lanes){.base = 0, .n = LANES}, ctx);
    }
    if (n > full) block(e, ind, &(Lanes){.base = full, .n = n - full}, ctx);
}
