/* commands.h: the subcommands of the nnc command line and the options they share (docs/cli.md).
 * main.c parses the command line into Options; each cmd_* runs one subcommand and returns the exit code:
 * 0 success, 1 the model, data or a file is wrong, 2 the command line is wrong, 3 training diverged. */
#ifndef NNC_COMMANDS_H
#define NNC_COMMANDS_H

#include "nnc.h"

enum { EXIT_OK = 0, EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_DIVERGED = 3 };

typedef struct Binding {
    const char *name; /* NULL: the only input (or target) */
    const char *path;
} Binding;

typedef struct Options {
    const char *command; /* "compile", "check", ... */
    const char *model_path;
    const char *model_name;
    const char *out;           /* -o */
    VEC(Binding) outs;         /* predict: -o NAME=FILE */
    int batch;
    const char *target;        /* c, cuda or mcu: a row of the table of targets */
    bool target_given;         /* --target was on the command line */
    bool inference;
    int64_t max_ram;           /* 0: no limit */
    int64_t max_flash;         /* 0: no limit (mcu) */
    const char *weights;
    const char *emit;          /* ir | c | cuda */
    bool dump_ir;
    bool shim;                 /* --shim: also the nnc_jit_* entry points */
    const char *passes;        /* --passes a,b: exactly these optimizing passes */
    int opt_level;
    bool json;
    /* training */
    int epochs, steps;
    bool no_shuffle;
    uint64_t seed;
    VEC(Binding) data;
    VEC(Binding) val;
    bool builtin_fashion;      /* --data fashion-mnist */
    const char *save;
    const char *log;
    bool quiet;
    /* bench */
    int bench_iters;
    const char *cmdline;       /* the whole command line, for generated file headers */
} Options;

/* Whether `path`, an output given by option `what` ("-o", "--save"), may be written: never over the
 * model file, a --data/--val file or the --weights (except train's --save, which may continue a
 * checkpoint in place). Reports a command-line error (exit 2) when not. */
bool output_allowed(const Options *o, const char *what, const char *path);
int cmd_compile(const Options *o);
int cmd_check(const Options *o);
int cmd_summary(const Options *o);
int cmd_predict(const Options *o);
int cmd_train(const Options *o);
int cmd_bench(const Options *o);
int cmd_import(const Options *o);

#endif
