/* parse_ctx.h: the state shared by the flex scanner (grammar/lexer.l), the token filter that decides
 * where statements end, and the bison parser (grammar/parser.y). Nothing outside those three uses it. */
#ifndef NNC_PARSE_CTX_H
#define NNC_PARSE_CTX_H

#include "ast.h"

typedef struct RawTok {
    int kind; /* a token code from parser.h, or 0 at end of input */
    Loc loc;
    const char *str;
    int64_t ival;
    double fval;
} RawTok;

/* A file of at most 16 MiB (diag.c) could still hold 8M tokens, and ~100 bytes of syntax tree each: past
 * this many tokens the parser stops, so the tree stays under ~400 MB. */
enum { PARSE_MAX_TOKENS = 1 << 22 };

typedef struct OpenBracket {
    int kind; /* '(' '[' '{' */
    Loc loc;
} OpenBracket;

enum { SEP_NEWLINE, SEP_SEMICOLON, SEP_BRACE, SEP_EOF }; /* what the last separator stands for */

typedef struct ParseCtx {
    Arena *arena;
    void *scanner;
    int src;
    int line, col; /* scanner position */
    Program *prog;
    /* token filter */
    RawTok pending;     /* a token read ahead while deciding about a newline */
    bool has_pending;
    int prev_kind;      /* last token handed to the parser */
    int depth;          /* ( and [ nesting: newlines inside are not separators */
    Loc last_loc;
    int sep_from;
    OpenBracket *open;  /* the brackets open now, innermost last, for "to match this '('" (malloc'd) */
    int nopen, open_cap;
    int ntokens;        /* handed to the parser, separators excepted */
    bool stopped;       /* past PARSE_MAX_TOKENS: the rest of the file reads as its end */
    bool eof_reported;  /* an error at the end of the file was reported: later ones there are echoes */
} ParseCtx;

int lex_raw(RawTok *tok, void *scanner);

#endif
