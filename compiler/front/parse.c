/* parse.c: runs the flex scanner and the bison parser over one source file. */
#include "ast.h"
#include "parse_ctx.h"
#include "parser.h"
#include "lexer.h"

#include <stdlib.h>

Program *parse_source(Arena *a, int src)
{
    const Source *s = source_get(src);
    if (!s) return NULL;
    ParseCtx ctx = {.arena = a, .src = src, .line = 1, .col = 1, .prev_kind = SEP};
    ctx.prog = arena_alloc(a, sizeof(Program));
    ctx.prog->src = src;
    yyscan_t scanner;
    if (nnlxlex_init_extra(&ctx, &scanner) != 0) {
        diag_fatal("cannot start the scanner");
        return NULL;
    }
    ctx.scanner = scanner;
    YY_BUFFER_STATE buf = nnlx_scan_bytes(s->text, (int)s->len, scanner);
    nnparse(&ctx); /* errors, a stack overflow included, are reported as they are found */
    nnlx_delete_buffer(buf, scanner);
    nnlxlex_destroy(scanner);
    free(ctx.open);
    return ctx.prog;
}
