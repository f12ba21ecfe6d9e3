/* parser.y: the grammar of the .nn language (docs/language.md).
 *
 * Statements end at a newline or ';'. A newline does not end a statement inside ( ) or [ ], after a token
 * that cannot end an expression (an operator, '=', ',', '|>'), or before a line that starts with one
 * (so a pipe chain can continue on the next line). That decision is made by the token filter at the
 * bottom of this file, which also inserts a separator before '}' and at the end of the file.
 *
 * Actions only call the constructors of ast.h; every check lives in check.c. Syntax errors go through
 * the same reporter as every other diagnostic, and the parser recovers at the end of the statement.
 * Statement keywords are also accepted as ordinary names (`loss = mse(p, y)` works).
 */
%define api.pure full
%define api.prefix {nn}
%define parse.error custom
%define parse.lac full
%locations
%param {ParseCtx *ctx}
%expect 0

%code requires {
#include "parse_ctx.h"
typedef struct NNLTYPE {
    int first_line, first_column, last_line, last_column;
    int src, len;
} NNLTYPE;
#define NNLTYPE_IS_DECLARED 1
#define NNLTYPE_IS_TRIVIAL 1
}

%code {
#include <string.h>

#define YYMAXDEPTH 400000
#define YYINITDEPTH 1000

int nnlex(NNSTYPE *lval, NNLTYPE *lloc, ParseCtx *ctx);
static void nnerror(NNLTYPE *lloc, ParseCtx *ctx, const char *msg);
static Loc L(NNLTYPE l);
#define A (ctx->arena)

/* Ranges: from the first token's start to the last token's end (len only when on one line). */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                                                    \
    do {                                                                                           \
        if (N) {                                                                                   \
            (Cur).first_line = YYRHSLOC(Rhs, 1).first_line;                                         \
            (Cur).first_column = YYRHSLOC(Rhs, 1).first_column;                                     \
            (Cur).last_line = YYRHSLOC(Rhs, N).last_line;                                           \
            (Cur).last_column = YYRHSLOC(Rhs, N).last_column;                                       \
            (Cur).src = YYRHSLOC(Rhs, 1).src;                                                       \
        } else {                                                                                   \
            (Cur).first_line = (Cur).last_line = YYRHSLOC(Rhs, 0).last_line;                        \
            (Cur).first_column = (Cur).last_column = YYRHSLOC(Rhs, 0).last_column;                  \
            (Cur).src = YYRHSLOC(Rhs, 0).src;                                                       \
        }                                                                                          \
        (Cur).len = (Cur).first_line == (Cur).last_line ? (Cur).last_column - (Cur).first_column : 1; \
    } while (0)
}

%union {
    int64_t ival;
    double fval;
    const char *str;
    Expr *expr;
    Arg *arg;
    Stmt *stmt;
    Item *item;
    TypeExpr *type;
    AstList list;
    DefParam *dparam;
    Name *name;
}

%token <str> IDENT "identifier"
%token <ival> INT "integer"
%token <fval> FLOAT "number"
%token <str> STRING "string"
%token <str> KW_MODEL "'model'" KW_DEF "'def'" KW_CONST "'const'" KW_INPUT "'input'"
%token <str> KW_TARGET "'target'" KW_PARAM "'param'" KW_OUTPUT "'output'" KW_LOSS "'loss'"
%token <str> KW_METRIC "'metric'" KW_OPTIMIZER "'optimizer'" KW_TRAIN "'train'"
%token <str> KW_FREEZE "'freeze'" KW_RETURN "'return'"
%token PIPE "'|>'" POW "'**'"
%token SEP "end of statement"
%token NEWLINE "newline"

%type <str> name
%type <expr> expr pipe additive term unary power primary call
%type <arg> arg
%type <list> args args_opt exprs exprs_opt stmts items params params_opt names
%type <stmt> stmt
%type <item> item
%type <type> type
%type <dparam> dparam
%type <name> name_ref

%%

program
    : items                             { ctx->prog->items = (Item **)$1.data; ctx->prog->nitems = $1.len; }
    ;

items
    : %empty                            { $$ = (AstList){0}; }
    | items SEP                         { $$ = $1; }
    | items item SEP                    { $$ = $1; if ($2) ast_list_push(A, &$$, $2); }
    | items error SEP                   { $$ = $1; yyerrok; }
    ;

item
    : KW_MODEL name '{' stmts '}'       { $$ = ast_model(A, L(@1), $2, L(@2), &$4); }
    | KW_MODEL error '}'                { $$ = NULL; /* reported; the body is skipped */ }
    | KW_DEF error '}'                  { $$ = NULL; }
    | KW_DEF name '(' params_opt ')' '{' stmts '}'
                                        { $$ = ast_def(A, L(@1), $2, L(@2), &$4, &$7); }
    | KW_CONST name '=' expr            { $$ = ast_top_const(A, ast_stmt(A, ST_CONST, L(@1), $2, L(@2), NULL, $4)); }
    ;

params_opt
    : %empty                            { $$ = (AstList){0}; }
    | params
    | params ','
    ;

params
    : dparam                            { $$ = (AstList){0}; ast_list_push(A, &$$, $1); }
    | params ',' dparam                 { $$ = $1; ast_list_push(A, &$$, $3); }
    ;

dparam
    : name                              { $$ = ast_def_param(A, $1, L(@1), NULL); }
    | name '=' expr                     { $$ = ast_def_param(A, $1, L(@1), $3); }
    ;

stmts
    : %empty                            { $$ = (AstList){0}; }
    | stmts SEP                         { $$ = $1; }
    | stmts stmt SEP                    { $$ = $1; ast_list_push(A, &$$, $2); }
    | stmts error SEP                   { $$ = $1; yyerrok; }
    ;

stmt
    : KW_INPUT name ':' type            { $$ = ast_stmt(A, ST_INPUT, L(@1), $2, L(@2), $4, NULL); }
    | KW_TARGET name ':' type           { $$ = ast_stmt(A, ST_TARGET, L(@1), $2, L(@2), $4, NULL); }
    | KW_PARAM name ':' type '=' expr   { $$ = ast_stmt(A, ST_PARAM, L(@1), $2, L(@2), $4, $6); }
    | KW_CONST name '=' expr            { $$ = ast_stmt(A, ST_CONST, L(@1), $2, L(@2), NULL, $4); }
    | name '=' expr                     { $$ = ast_stmt(A, ST_ASSIGN, L(@1), $1, L(@1), NULL, $3); }
    | KW_OUTPUT name                    { $$ = ast_stmt(A, ST_OUTPUT, L(@1), $2, L(@2), NULL, NULL); }
    | KW_OUTPUT name '=' expr           { $$ = ast_stmt(A, ST_OUTPUT, L(@1), $2, L(@2), NULL, $4); }
    | KW_LOSS expr                      { $$ = ast_stmt(A, ST_LOSS, L(@1), NULL, L(@1), NULL, $2); }
    | KW_METRIC name '=' expr           { $$ = ast_stmt(A, ST_METRIC, L(@1), $2, L(@2), NULL, $4); }
    | KW_OPTIMIZER call                 { $$ = ast_stmt(A, ST_OPTIMIZER, L(@1), NULL, L(@1), NULL, $2); }
    | KW_TRAIN '(' args_opt ')'         { $$ = ast_stmt(A, ST_TRAIN, L(@1), NULL, L(@1), NULL,
                                                        ast_call(A, L(@1), "train", &$3)); }
    | KW_FREEZE names                   { $$ = ast_freeze(A, L(@1), &$2); }
    | KW_RETURN expr                    { $$ = ast_stmt(A, ST_RETURN, L(@1), NULL, L(@1), NULL, $2); }
    | KW_DEF name '(' params_opt ')' '{' stmts '}'
                                        { $$ = ast_stmt(A, ST_NESTED, L(@1), "def", L(@2), NULL, NULL); }
    | KW_MODEL name '{' stmts '}'       { $$ = ast_stmt(A, ST_NESTED, L(@1), "model", L(@2), NULL, NULL); }
    ;

names
    : name_ref                          { $$ = (AstList){0}; ast_list_push(A, &$$, $1); }
    | names ',' name_ref                { $$ = $1; ast_list_push(A, &$$, $3); }
    ;

name_ref
    : name                              { $$ = ast_namev(A, $1, L(@1)); }
    | STRING                            { $$ = ast_namev(A, $1, L(@1)); }
    ;

type
    : name '[' exprs_opt ']'            { $$ = ast_type(A, L(@1), $1, &$3); }
    ;

/* A name: an identifier, or a statement keyword used as one. */
name
    : IDENT | KW_MODEL | KW_DEF | KW_CONST | KW_INPUT | KW_TARGET | KW_PARAM | KW_OUTPUT | KW_LOSS
    | KW_METRIC | KW_OPTIMIZER | KW_TRAIN | KW_FREEZE | KW_RETURN
    ;

/* Precedence, loosest first: |>, then + -, then * / @, then unary -, then ** (right-associative). */
expr
    : pipe
    ;

pipe
    : additive
    | pipe PIPE additive                { $$ = ast_pipe(A, L(@2), $1, $3); }
    ;

additive
    : term
    | additive '+' term                 { $$ = ast_binary(A, L(@2), '+', $1, $3); }
    | additive '-' term                 { $$ = ast_binary(A, L(@2), '-', $1, $3); }
    ;

term
    : unary
    | term '*' unary                    { $$ = ast_binary(A, L(@2), '*', $1, $3); }
    | term '/' unary                    { $$ = ast_binary(A, L(@2), '/', $1, $3); }
    | term '@' unary                    { $$ = ast_binary(A, L(@2), '@', $1, $3); }
    ;

unary
    : power
    | '-' unary                         { $$ = ast_unary(A, L(@1), '-', $2); }
    ;

power
    : primary
    | primary POW unary                 { $$ = ast_binary(A, L(@2), 'P', $1, $3); }
    ;

primary
    : INT                               { $$ = ast_int(A, L(@1), $1); }
    | FLOAT                             { $$ = ast_float(A, L(@1), $1); }
    | STRING                            { $$ = ast_string(A, L(@1), $1); }
    | name                              { $$ = ast_name(A, L(@1), $1); }
    | call
    | '(' expr ')'                      { $$ = $2; }
    | '[' exprs_opt ']'                 { $$ = ast_list(A, L(@1), &$2); }
    ;

call
    : name '(' args_opt ')'             { $$ = ast_call(A, L(@1), $1, &$3); }
    ;

args_opt
    : %empty                            { $$ = (AstList){0}; }
    | args
    | args ','
    ;

args
    : arg                               { $$ = (AstList){0}; ast_list_push(A, &$$, $1); }
    | args ',' arg                      { $$ = $1; ast_list_push(A, &$$, $3); }
    ;

arg
    : expr                              { $$ = ast_arg(A, NULL, L(@1), $1); }
    | name '=' expr                     { $$ = ast_arg(A, $1, L(@1), $3); }
    ;

exprs_opt
    : %empty                            { $$ = (AstList){0}; }
    | exprs
    | exprs ','
    ;

exprs
    : expr                              { $$ = (AstList){0}; ast_list_push(A, &$$, $1); }
    | exprs ',' expr                    { $$ = $1; ast_list_push(A, &$$, $3); }
    ;

%%

static Loc L(NNLTYPE l)
{
    return (Loc){.src = l.src, .line = l.first_line, .col = l.first_column, .len = l.len > 0 ? l.len : 1};
}

/* With parse.error custom, bison calls this only when its stack is full ("memory exhausted"). */
static void nnerror(NNLTYPE *lloc, ParseCtx *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
    diag_error(L(*lloc), "the model is nested too deeply for the parser");
}

/* what the offending token is, in words: a separator the filter made is named by what it stands for */
static const char *found_(ParseCtx *ctx, yysymbol_kind_t got)
{
    if (got == YYSYMBOL_YYEOF) return "end of file";
    if (got != YYSYMBOL_SEP) return yysymbol_name(got);
    switch (ctx->sep_from) {
    case SEP_SEMICOLON: return "';'";
    case SEP_BRACE: return "'}'";
    case SEP_EOF: return "end of file";
    default: return "end of line";
    }
}

/* the closer of the innermost open bracket, if the parser would take it here: ")" etc., else NULL */
static const char *closer_expected_(ParseCtx *ctx, const yysymbol_kind_t *exp, int n)
{
    if (ctx->nopen == 0) return NULL;
    int top = ctx->open[ctx->nopen - 1].kind;
    const char *closer = top == '(' ? "')'" : top == '[' ? "']'" : "'}'";
    for (int i = 0; i < n; i++)
        if (strcmp(yysymbol_name(exp[i]), closer) == 0) return closer;
    return NULL;
}

/* "to match this '('", when the bracket was opened on another line */
static void note_unclosed_(ParseCtx *ctx, Loc at)
{
    OpenBracket open = ctx->open[ctx->nopen - 1];
    if (open.loc.line != at.line) diag_note(open.loc, "to match this '%c'", open.kind);
}

/* An error at the end of the file inside a block that is never closed: say so, and where it opens (after
 * this error bison stops at the end of the file, so the missing '}' would go unreported). */
static void report_unclosed_block_(ParseCtx *ctx, Loc at)
{
    for (int i = ctx->nopen - 1; i >= 0; i--)
        if (ctx->open[i].kind == '{') {
            diag_error(at, "expected '}', found end of file");
            diag_note(ctx->open[i].loc, "to match this '{'");
            return;
        }
}

/* "expected ')'", "expected an expression", ... in clang's words, from what the parser can shift. */
static int yyreport_syntax_error(const yypcontext_t *pctx, ParseCtx *ctx)
{
    yysymbol_kind_t all[YYNTOKENS];
    int n = yypcontext_expected_tokens(pctx, all, YYNTOKENS);
    yysymbol_kind_t got = yypcontext_token(pctx);
    Loc loc = L(*yypcontext_location(pctx));
    bool at_eof = got == YYSYMBOL_YYEOF || (got == YYSYMBOL_SEP && ctx->sep_from == SEP_EOF);
    if (at_eof && ctx->eof_reported) return 0;
    ctx->eof_reported = at_eof;
    const char *found = found_(ctx, got);
    bool expr_start = false, sep = false, ident = false;
    for (int i = 0; i < n; i++)
        expr_start |= all[i] == YYSYMBOL_INT, sep |= all[i] == YYSYMBOL_SEP, ident |= all[i] == YYSYMBOL_IDENT;
    const char *closer = n > 0 ? closer_expected_(ctx, all, n) : NULL;
    if (expr_start) {
        diag_error(loc, "expected an expression, found %s", found);
    } else if (closer && closer[1] == '}' && ident && !at_eof) {
        diag_error(loc, "expected a statement, found %s", found); /* where a statement or the '}' can start */
        closer = NULL;
    } else if (closer && n > 4) {
        diag_error(loc, "expected %s, found %s", closer, found);
    } else if (sep && n > 4 && (got == YYSYMBOL_IDENT || got == YYSYMBOL_INT || got == YYSYMBOL_FLOAT ||
                                got == YYSYMBOL_STRING || !strcmp(found, "')'") || !strcmp(found, "']'"))) {
        /* something left over after a complete statement */
        diag_error(loc, "expected end of statement, found %s", found);
    } else if (ident && n > 4) {
        diag_error(loc, "expected a name, found %s", found);
    } else if (n <= 0 || n > 4) {
        diag_error(loc, "unexpected %s", found);
    } else {
        char buf[256] = "";
        for (int i = 0; i < n; i++) {
            if (i) strcat(buf, i == n - 1 ? " or " : ", ");
            strcat(buf, yysymbol_name(all[i]));
        }
        diag_error(loc, "expected %s, found %s", buf, found);
    }
    if (closer) note_unclosed_(ctx, loc);
    if (at_eof && !(closer && closer[1] == '}')) report_unclosed_block_(ctx, loc);
    return 0;
}

/* ---- the token filter: which newlines end a statement ------------------------------------------- */

static bool continues_after_(int kind) /* a statement cannot end with these */
{
    return kind == '+' || kind == '-' || kind == '*' || kind == '/' || kind == '@' || kind == POW ||
           kind == PIPE || kind == '=' || kind == ',' || kind == '(' || kind == '[' || kind == ':' ||
           kind == '{' || kind == SEP || kind == 0;
}

static bool continues_before_(int kind) /* a statement cannot start with these */
{
    return kind == PIPE || kind == '+' || kind == '-' || kind == '*' || kind == '/' || kind == '@' ||
           kind == POW || kind == ')' || kind == ']' || kind == ',';
}

static void next_raw_(ParseCtx *ctx, RawTok *t)
{
    if (ctx->has_pending) {
        *t = ctx->pending;
        ctx->has_pending = false;
        return;
    }
    memset(t, 0, sizeof *t);
    t->kind = diag_too_many() || ctx->stopped ? 0 : lex_raw(t, ctx->scanner);
    if (t->kind != 0 && t->kind != NEWLINE && t->kind != ';' && ++ctx->ntokens > PARSE_MAX_TOKENS) {
        diag_error(t->loc, "the model is too large for the parser (more than %d tokens)", PARSE_MAX_TOKENS);
        ctx->stopped = ctx->eof_reported = true; /* the errors the cut causes at the 'end' are not news */
        t->kind = 0;
    }
    if (t->kind == 0) t->loc = (Loc){.src = ctx->src, .line = ctx->line, .col = ctx->col, .len = 1};
}

static void track_brackets_(ParseCtx *ctx, const RawTok *t)
{
    if (t->kind == '(' || t->kind == '[' || t->kind == '{') {
        if (ctx->nopen == ctx->open_cap) {
            ctx->open_cap = ctx->open_cap ? 2 * ctx->open_cap : 64;
            ctx->open = xrealloc(ctx->open, sizeof *ctx->open * (size_t)ctx->open_cap);
        }
        ctx->open[ctx->nopen++] = (OpenBracket){.kind = t->kind, .loc = t->loc};
    } else if ((t->kind == ')' || t->kind == ']') && ctx->nopen > 0 && ctx->open[ctx->nopen - 1].kind != '{') {
        ctx->nopen--; /* a stray ')' does not close a block */
    } else if (t->kind == '}') { /* closes its block and any bracket left open inside it */
        while (ctx->nopen > 0 && ctx->open[--ctx->nopen].kind != '{') {
        }
    }
}

static int give_(ParseCtx *ctx, RawTok *t, NNSTYPE *lval, NNLTYPE *lloc)
{
    track_brackets_(ctx, t);
    switch (t->kind) {
    case INT: lval->ival = t->ival; break;
    case FLOAT: lval->fval = t->fval; break;
    default: lval->str = t->str; break;
    }
    lloc->first_line = lloc->last_line = t->loc.line;
    lloc->first_column = t->loc.col;
    lloc->last_column = t->loc.col + t->loc.len;
    lloc->src = t->loc.src;
    lloc->len = t->loc.len;
    ctx->prev_kind = t->kind;
    return t->kind;
}

static int give_sep_(ParseCtx *ctx, Loc at, int from, NNSTYPE *lval, NNLTYPE *lloc)
{
    ctx->sep_from = from;
    RawTok sep = {.kind = SEP, .loc = at};
    sep.loc.len = 1;
    return give_(ctx, &sep, lval, lloc);
}

int nnlex(NNSTYPE *lval, NNLTYPE *lloc, ParseCtx *ctx)
{
    RawTok t;
    for (;;) {
        next_raw_(ctx, &t);
        if (t.kind == '(' || t.kind == '[') ctx->depth++;
        if ((t.kind == ')' || t.kind == ']') && ctx->depth > 0) ctx->depth--;
        if (t.kind == '{' || t.kind == '}') ctx->depth = 0;
        if (t.kind == ';') {
            t.kind = SEP;
            ctx->sep_from = SEP_SEMICOLON;
        }
        if (t.kind != NEWLINE) break;
        if (ctx->depth > 0 || continues_after_(ctx->prev_kind)) continue;
        Loc nl = t.loc;
        do next_raw_(ctx, &t);
        while (t.kind == NEWLINE);
        ctx->pending = t;
        ctx->has_pending = true;
        if (continues_before_(t.kind)) continue;
        return give_sep_(ctx, nl, SEP_NEWLINE, lval, lloc);
    }
    /* '}' and the end of the file also end the statement before them (after an operator too: then the
     * error is reported at the '}' and recovery stops at this separator, not past the '}') */
    if (((t.kind == '}' && ctx->prev_kind != SEP && ctx->prev_kind != '{') ||
         (t.kind == 0 && !continues_after_(ctx->prev_kind))) && ctx->prev_kind != '}') {
        ctx->pending = t;
        ctx->has_pending = true;
        return give_sep_(ctx, t.loc, t.kind == 0 ? SEP_EOF : SEP_BRACE, lval, lloc);
    }
    if (t.kind == 0 && ctx->prev_kind == '}') {
        ctx->pending = t;
        ctx->has_pending = true;
        return give_sep_(ctx, t.loc, SEP_EOF, lval, lloc);
    }
    return give_(ctx, &t, lval, lloc);
}
