/* main.c: the nnc command line (docs/cli.md): parse the arguments, run one subcommand.
 *
 * The work runs on a thread with a large stack, so that no input, however deeply nested, can exhaust it.
 * Command-line mistakes exit 2 with a one-line reason (and a "did you mean" for a mistyped command or
 * option) and a pointer to --help. Numbers are digits only and in range; every option is given once
 * (-O: the last counts; --data, --val and predict's -o NAME=FILE once per name).
 */
#include "commands.h"
#include "frontend.h"
#include "pipeline.h"
#include "run.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* option lines shared by the help of several commands: each command's help lists exactly what it takes */
#define OPT_MODEL_ "  --model NAME        the model to use when the file defines several\n"
#define OPT_BATCH_                                                                                               \
    "  --batch N           maximum batch size compiled in (default: train(batch=...) in the file, else 32;\n"       \
    "                      1 for --target mcu)\n"
#define OPT_TARGET_ "  --target c|cuda|mcu host C (the default), host C with CUDA kernels (docs/cuda.md), or firmware C\n"
#define OPT_TARGET_HOST_ "  --target c|cuda     run on the host CPU (the default) or the first GPU (an mcu model runs on the device)\n"
#define OPT_MAX_FLASH_                                                                                           \
    "  --max-flash BYTES   (mcu) fail (exit 1) when the model's constant data would exceed BYTES, as --max-ram\n"
#define OPT_INFERENCE_ "  --inference         emit only the inference entry points (no eval, no train step)\n"
#define OPT_MAX_RAM_                                                                                             \
    "  --max-ram BYTES     fail (exit 1) when the model's RAM would exceed BYTES: a positive number, with\n"        \
    "                      K = 1024 or M = 1024*1024 (65536, 256K, 1.5M)\n"
#define OPT_DUMP_IR_ "  --dump-ir           print the IR after every pass to stderr\n"
#define OPT_LEVEL_ "  -O0 | -O1 | -O2     optimization level (default -O2; given twice, the last one counts)\n"
#define OPT_PASSES_                                                                                              \
    "  --passes LIST       run exactly these passes, for tests: fold,simplify,cse,dce,fuse (IR) and\n"          \
    "                      reuse,memplan (memory plan)\n"
#define OPT_COMPILING_ OPT_MODEL_ OPT_TARGET_ OPT_MAX_RAM_ OPT_MAX_FLASH_ OPT_LEVEL_ OPT_PASSES_ OPT_DUMP_IR_ /* and --batch */
#define OPT_RUNNING_ OPT_MODEL_ OPT_TARGET_HOST_ OPT_MAX_RAM_ OPT_LEVEL_ OPT_PASSES_ OPT_DUMP_IR_ /* train predict bench */

static const char usage_main[] =
    "usage: nnc MODEL.nn -o OUT.c [options]          compile to C (OUT.c and OUT.h)\n"
    "       nnc check MODEL.nn                       parse and type/shape-check\n"
    "       nnc summary MODEL.nn [--json]            layers, shapes, parameters, FLOPs, memory\n"
    "       nnc train MODEL.nn --data NAME=FILE...   compile, build and train\n"
    "       nnc predict MODEL.nn --weights W.safetensors --data NAME=FILE... -o OUT.npy\n"
    "       nnc bench MODEL.nn [--json]              time predict and train_step\n"
    "       nnc import MODEL.onnx -o OUT.nn          an ONNX model as .nn source and OUT.safetensors\n"
    "       nnc help [COMMAND]                       this text, or the options of one command\n"
    "\n"
    "Options of the commands that compile (nnc COMMAND --help lists exactly what each takes):\n"
    OPT_MODEL_ OPT_BATCH_
    "  --target c|cuda|mcu code for the host (default), for an NVIDIA GPU (cuda), or firmware C (mcu)\n"
    OPT_INFERENCE_ OPT_MAX_RAM_ OPT_MAX_FLASH_
    "  --weights FILE      initial weights (train, compile) or the weights to use (predict, mcu)\n"
    "  --emit ir|c|cuda    print that stage to stdout instead of writing files (cuda: the kernels of --target cuda)\n"
    OPT_DUMP_IR_ OPT_LEVEL_ OPT_PASSES_
    "  -o FILE             output file ('-' for stdout)\n"
    "\n"
    "Every command that takes MODEL.nn also takes MODEL.onnx (imported in memory; its initializers are the\n"
    "weights unless --weights is given).\n"
    "nnc COMMAND --help (or nnc help COMMAND) shows the options of one command; nnc compile --help those of\n"
    "the compiler. nnc --version prints the version. An option other than -O may be given once; --data,\n"
    "--val and predict's -o NAME=FILE once per name.\n"
    "Exit codes: 0 success, 1 the model, the data or a file is wrong, 2 the command line is wrong,\n"
    "3 training diverged.\n";

static const char usage_check[] =
    "usage: nnc check MODEL.nn [--model NAME]\n"
    "Parses and type/shape-checks the model. Prints nothing and exits 0 when it is valid; otherwise prints\n"
    "every error (at most 20) as FILE:LINE:COL: error: ... and exits 1.\n"
    OPT_MODEL_;

static const char usage_summary[] =
    "usage: nnc summary MODEL.nn [options]\n"
    "Prints each layer and operator with its output shape (batch as B) and parameter count, the totals,\n"
    "FLOPs per sample (forward, and forward+backward), the number of kernels, and the scratch (arena)\n"
    "bytes of predict and of a train step at the chosen batch; for --target mcu also the RAM (the struct)\n"
    "and the flash (constant data) of the firmware model.\n"
    "  --json              print one JSON object instead\n"
    "  --weights FILE      (mcu) the weights compiled in, kept in flash where nothing writes them\n"
    OPT_INFERENCE_ OPT_BATCH_ OPT_COMPILING_;

static const char usage_train[] =
    "usage: nnc train MODEL.nn --data NAME=FILE... [options]\n"
    "       nnc train MODEL.nn --data fashion-mnist [options]\n"
    "Compiles the model, builds it in-process and trains it, printing one progress line per epoch (a live\n"
    "bar on a terminal), then saves the weights.\n"
    "  --data NAME=FILE    bind an input or target to a file (.npy, .csv, IDX, IDX.gz); once per name\n"
    "  --data fashion-mnist the built-in Fashion-MNIST (training split; test split for validation)\n"
    "  --val NAME=FILE     validation data, evaluated after every epoch; once per name\n"
    "  --epochs N          passes over the data (default: train(epochs=...) in the file, else 1); when\n"
    "                      resuming from a saved file, N more epochs\n"
    "  --steps N           stop after N optimizer steps\n"
    "  --batch N           batch size (default: train(batch=...) in the file, else 32)\n"
    "  --no-shuffle        take batches in file order\n"
    "  --seed S            seed of the one generator behind init, shuffling and dropout (default 0)\n"
    "  --weights FILE      start from these weights (a file saved by --save resumes training exactly)\n"
    "  --save FILE         where to save (default: MODEL.safetensors beside the model)\n"
    "  --log FILE.csv      one row per epoch: epoch, loss, metrics, val_loss, val_metrics, seconds\n"
    "  --quiet             no progress output\n"
    OPT_RUNNING_
    "Exit 3 when the loss or a weight becomes NaN or infinite.\n";

static const char usage_predict[] =
    "usage: nnc predict MODEL.nn --weights W.safetensors --data NAME=FILE... -o OUT.npy [options]\n"
    "Runs the model over every sample, in batches of at most --batch, and writes the outputs as .npy.\n"
    "  --weights FILE      the weights (every parameter and state tensor of the model)\n"
    "  --data NAME=FILE    bind an input to a file (.npy, .csv, IDX, IDX.gz); once per input; FILE alone\n"
    "                      for a model with one input\n"
    "  --data fashion-mnist the built-in Fashion-MNIST test images\n"
    "  -o FILE             write the first output\n"
    "  -o NAME=FILE        write the output NAME (repeatable, once per name)\n"
    "  --quiet             accepted as for train (predict prints nothing when it succeeds)\n"
    OPT_BATCH_ OPT_RUNNING_;

static const char usage_bench[] =
    "usage: nnc bench MODEL.nn [options]\n"
    "Times predict and train_step of the compiled model on random data at the chosen batch; prints the\n"
    "median microseconds per call and the achieved GFLOP/s.\n"
    "  --json              print one JSON object instead\n"
    "  --iters N           take exactly N samples (default: 15, within about 3 seconds)\n"
    "  --quiet             accepted as for train (the results are printed all the same)\n"
    "  --weights FILE      time the model with these weights (default: initialised with seed 0)\n"
    OPT_INFERENCE_ OPT_BATCH_ OPT_RUNNING_;

static const char usage_import[] =
    "usage: nnc import MODEL.onnx -o OUT.nn [--model NAME]\n"
    "Reads an ONNX model (opsets 7 to 21) and writes it as .nn source, OUT.nn, and its initializers as\n"
    "OUT.safetensors under the parameter names OUT.nn declares (-o m writes m and m.safetensors). Layers\n"
    "are recognised where the graph allows (Gemm/MatMul+Add as dense, Conv as conv2d, BatchNormalization as\n"
    "batchnorm, LSTM as lstm); inputs keep their ONNX names (made identifiers) and layout. A node nnc\n"
    "cannot import is an error naming it, its op type and the opset, for every such node (docs/onnx.md).\n"
    "  -o FILE             the .nn file to write (required)\n"
    "  --model NAME        the name of the model in OUT.nn (default: the ONNX file's name)\n";

static const char usage_compile[] =
    "usage: nnc MODEL.nn -o OUT.c [options]\n"
    "       nnc compile MODEL.nn -o OUT.c [options]\n"
    "Writes OUT.c and OUT.h (same stem; without -o, MODEL.c and MODEL.h beside the model); '-o -' writes\n"
    "one self-contained C file to stdout. Never writes over the model file.\n"
    "  -o FILE             the C file ('-' for stdout)\n"
    "  --emit ir|c|cuda    print that stage to stdout instead of writing files (cuda: the kernels of --target cuda)\n"
    "  --weights FILE      bake these weights into M_init (mcu: const arrays in flash)\n"
    "  --shim              also emit nnc_jit_model_size/init/predict/train_step/eval/tensors: the same\n"
    "                      signatures for every model (what nnc train/predict/bench call)\n"
    OPT_INFERENCE_ OPT_BATCH_ OPT_COMPILING_;

static int usage_error_(const Options *o, const char *fmt, ...) NNC_PRINTF(2, 3);
static int usage_error_(const Options *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("nnc: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (o->command && !str_eq(o->command, "compile"))
        fprintf(stderr, "\n(see 'nnc %s --help')\n", o->command);
    else
        fputs("\n(see 'nnc --help')\n", stderr);
    return EXIT_USAGE;
}

/* a whole number in digits only (no sign, space or exponent) from lo to hi */
static bool parse_count_(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!*s) return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* --max-ram: a positive whole number of bytes, written as digits with an optional fraction and an
 * optional K (1024) or M (1024*1024): 65536, 256K, 1.5M; at most 2^50 */
static bool parse_bytes_(const char *s, int64_t *out)
{
    const char *p = s;
    while (*p >= '0' && *p <= '9') p++;
    if (p == s) return false;
    if (*p == '.') {
        const char *frac = ++p;
        while (*p >= '0' && *p <= '9') p++;
        if (p == frac) return false;
    }
    double mul = 1;
    if (*p == 'K' || *p == 'k') mul = 1024, p++;
    else if (*p == 'M' || *p == 'm') mul = 1024.0 * 1024, p++;
    if (*p || p - s > 32) return false;
    double v = strtod(s, NULL) * mul;
    if (!(v >= 1) || v > 0x1p50 || v != floor(v)) return false;
    *out = (int64_t)v;
    return true;
}

static Binding binding_(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq) return (Binding){.name = NULL, .path = arg};
    char *name = xstrdup(arg);
    name[eq - arg] = 0;
    return (Binding){.name = name, .path = eq + 1};
}

typedef struct Flag {
    const char *name;
    const char *commands; /* the space-separated commands that take it */
    bool value;
} Flag;

#define COMPILING_ "compile summary train predict bench"
static const Flag flags_[] = {
    {"-o", "compile predict import", true}, {"--model", "compile check summary train predict bench import", true},
    {"--batch", COMPILING_, true},        {"--target", COMPILING_, true},
    {"--inference", "compile summary bench", false}, {"--max-ram", COMPILING_, true},
    {"--max-flash", "compile summary", true},
    {"--weights", "compile summary train predict bench", true}, {"--emit", "compile", true},
    {"--dump-ir", COMPILING_, false},     {"--passes", COMPILING_, true},
    {"--shim", "compile", false},         {"--json", "summary bench", false},
    {"--epochs", "train", true},          {"--steps", "train", true},
    {"--no-shuffle", "train", false},     {"--seed", "train", true},
    {"--data", "train predict", true},    {"--val", "train", true},
    {"--save", "train", true},            {"--log", "train", true},
    {"--quiet", "train predict bench", false}, {"--iters", "bench", true},
};
enum { NFLAGS_ = sizeof flags_ / sizeof flags_[0] };

static const char *const commands_[] = {"check", "summary", "train", "predict", "bench", "compile", "import", "help"};
enum { NCOMMANDS_ = sizeof commands_ / sizeof commands_[0] };

static const Flag *flag_find_(const char *name)
{
    for (int i = 0; i < NFLAGS_; i++)
        if (str_eq(flags_[i].name, name)) return &flags_[i];
    return NULL;
}

static bool word_in_(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(list, word); p; p = strstr(p + 1, word))
        if ((p == list || p[-1] == ' ') && (p[n] == 0 || p[n] == ' ')) return true;
    return false;
}

static bool flag_allowed_(const Flag *f, const char *cmd) { return word_in_(f->commands, cmd); }

/* the flag whose name (without dashes) is nearest an unknown one, preferring the command's own */
static const char *suggest_flag_(const char *name, const char *cmd)
{
    const char *bare = name + (name[1] == '-' ? 2 : 1), *cands[NFLAGS_ + 2];
    if (strlen(bare) < 2 || strlen(bare) > 32) return NULL;
    for (int pass = 0; pass < 2; pass++) {
        int n = 0;
        for (int i = 0; i < NFLAGS_; i++)
            if (pass || flag_allowed_(&flags_[i], cmd)) cands[n++] = flags_[i].name + (flags_[i].name[1] == '-' ? 2 : 1);
        cands[n++] = "help";
        cands[n++] = "version";
        const char *s = suggest_among(bare, cands, n);
        if (s) return s - (s[-1] == '-' && s[-2] == '-' ? 2 : 1);
    }
    return NULL;
}

/* the commands that take flag f, as "train and predict" */
static const char *takers_(const Flag *f, char *buf, size_t n)
{
    size_t k = 0;
    int count = 0, total = 0;
    for (int i = 0; i < NCOMMANDS_; i++) total += word_in_(f->commands, commands_[i]);
    buf[0] = 0;
    for (int i = 0; i < NCOMMANDS_ && k < n; i++)
        if (word_in_(f->commands, commands_[i])) {
            count++;
            k += (size_t)snprintf(buf + k, n - k, "%s%s", count == 1 ? "" : count == total ? " and " : ", ", commands_[i]);
        }
    return buf;
}

static int set_once_(Options *o, const char **slot, const char *name, const char *val)
{
    if (*slot) return usage_error_(o, "%s is given twice ('%s' and '%s')", name, *slot, val);
    *slot = val;
    return EXIT_OK;
}

/* one --data/--val/-o NAME=FILE binding, refusing a name (or a nameless file) bound twice */
static int binding_add_(Options *o, const char *opt, Binding *list, int len, Binding b)
{
    if ((b.name && !b.name[0]) || !b.path[0])
        return usage_error_(o, "%s needs NAME=FILE, not '%s%s%s'", opt, b.name ? b.name : "", b.name ? "=" : "", b.path);
    for (int i = 0; i < len; i++) {
        if (!b.name && !list[i].name)
            return usage_error_(o, "%s is given twice without a name ('%s' and '%s'); write NAME=FILE", opt,
                                list[i].path, b.path);
        if (b.name && list[i].name && str_eq(b.name, list[i].name))
            return usage_error_(o, "%s binds '%s' twice ('%s' and '%s')", opt, b.name, list[i].path, b.path);
    }
    return EXIT_OK;
}

static int apply_binding_(Options *o, const char *name, const char *val)
{
    bool data = str_eq(name, "--data");
    if (data && str_eq(val, "fashion-mnist")) {
        if (o->builtin_fashion) return usage_error_(o, "--data fashion-mnist is given twice");
        if (o->data.len)
            return usage_error_(o, "--data fashion-mnist binds every input and target; do not add other --data");
        o->builtin_fashion = true;
        return EXIT_OK;
    }
    if (data && o->builtin_fashion)
        return usage_error_(o, "--data fashion-mnist binds every input and target; do not add --data %s", val);
    Binding b = binding_(val);
    int rc = data ? binding_add_(o, name, o->data.data, o->data.len, b) : binding_add_(o, name, o->val.data, o->val.len, b);
    if (rc) return rc;
    if (data) vec_push(&o->data, b);
    else vec_push(&o->val, b);
    return EXIT_OK;
}

static int apply_out_(Options *o, const char *val)
{
    bool predict = str_eq(o->command, "predict");
    if (predict && (str_eq(val, "-") || (strchr(val, '=') && str_eq(strchr(val, '=') + 1, "-"))))
        return usage_error_(o, "predict writes .npy files; -o - (stdout) is only for the C of nnc MODEL.nn -o -");
    if (predict && strchr(val, '=')) {
        Binding b = binding_(val);
        int rc = binding_add_(o, "-o", o->outs.data, o->outs.len, b);
        if (rc) return rc;
        vec_push(&o->outs, b);
        return EXIT_OK;
    }
    return set_once_(o, &o->out, "-o", val);
}

static int apply_number_(Options *o, const char *name, const char *val)
{
    static const struct {
        const char *name;
        uint64_t lo, hi;
    } limits[] = {{"--batch", 1, 1 << 20}, {"--epochs", 1, 1000000}, {"--steps", 1, INT32_MAX},
                  {"--iters", 1, 100000000}, {"--seed", 0, UINT64_MAX}};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        if (!str_eq(name, limits[i].name)) continue;
        uint64_t v;
        if (!parse_count_(val, limits[i].lo, limits[i].hi, &v)) {
            if (limits[i].lo == 0)
                return usage_error_(o, "%s needs a non-negative integer (at most %" PRIu64 "), not '%s'", name, limits[i].hi, val);
            return usage_error_(o, "%s needs a positive integer (at most %" PRIu64 "), not '%s'", name, limits[i].hi, val);
        }
        if (str_eq(name, "--batch")) o->batch = (int)v;
        else if (str_eq(name, "--epochs")) o->epochs = (int)v;
        else if (str_eq(name, "--steps")) o->steps = (int)v;
        else if (str_eq(name, "--iters")) o->bench_iters = (int)v;
        else o->seed = v;
        return EXIT_OK;
    }
    return -1;
}

static int apply_flag_(Options *o, const char *name, const char *val)
{
    int rc = apply_number_(o, name, val);
    if (rc >= 0) return rc;
    if (str_eq(name, "--data") || str_eq(name, "--val")) return apply_binding_(o, name, val);
    if (val && !val[0]) return usage_error_(o, "%s needs a value, not an empty string", name);
    if (str_eq(name, "-o")) return apply_out_(o, val);
    if (str_eq(name, "--model")) o->model_name = val;
    else if (str_eq(name, "--target")) {
        if (!target_find(val)) return usage_error_(o, "--target must be c, cuda or mcu, not '%s'", val);
        o->target = val; /* a row of the table of targets (backend/targets.c) */
        o->target_given = true;
    } else if (str_eq(name, "--inference")) o->inference = true;
    else if (str_eq(name, "--max-ram")) {
        if (!parse_bytes_(val, &o->max_ram))
            return usage_error_(o, "--max-ram needs a positive number of bytes, optionally with K (1024) or M (1024*1024), "
                                   "like 65536, 256K or 1.5M; not '%s'", val);
    } else if (str_eq(name, "--max-flash")) {
        if (!parse_bytes_(val, &o->max_flash))
            return usage_error_(o, "--max-flash needs a positive number of bytes, optionally with K (1024) or M (1024*1024), "
                                   "like 65536, 256K or 1.5M; not '%s'", val);
    } else if (str_eq(name, "--weights")) o->weights = val;
    else if (str_eq(name, "--emit")) {
        if (!str_eq(val, "ir") && !str_eq(val, "c") && !str_eq(val, "cuda"))
            return usage_error_(o, "--emit must be ir, c or cuda, not '%s'", val);
        o->emit = val;
    } else if (str_eq(name, "--dump-ir")) o->dump_ir = true;
    else if (str_eq(name, "--shim")) o->shim = true;
    else if (str_eq(name, "--passes")) {
        char bad[64];
        if (!passes_valid(val, bad, sizeof bad))
            return usage_error_(o, "--passes: unknown pass '%s' (fold, simplify, cse, dce, fuse, reuse, memplan)", bad);
        o->passes = val;
    } else if (str_eq(name, "--json")) o->json = true;
    else if (str_eq(name, "--no-shuffle")) o->no_shuffle = true;
    else if ((str_eq(name, "--save") || str_eq(name, "--log")) && str_eq(val, "-"))
        return usage_error_(o, "%s needs a file name; '-' (stdout) is not supported", name);
    else if (str_eq(name, "--save")) o->save = val;
    else if (str_eq(name, "--log")) o->log = val;
    else if (str_eq(name, "--quiet")) o->quiet = true;
    return EXIT_OK;
}

static const char *help_for_(const char *cmd)
{
    if (str_eq(cmd, "check")) return usage_check;
    if (str_eq(cmd, "summary")) return usage_summary;
    if (str_eq(cmd, "train")) return usage_train;
    if (str_eq(cmd, "predict")) return usage_predict;
    if (str_eq(cmd, "bench")) return usage_bench;
    if (str_eq(cmd, "compile")) return usage_compile;
    if (str_eq(cmd, "import")) return usage_import;
    return usage_main;
}

static bool is_command_(const char *s)
{
    for (int i = 0; i < NCOMMANDS_ - 1; i++) /* not "help": it is handled first */
        if (str_eq(s, commands_[i])) return true;
    return false;
}

/* the command line as a shell would read it back (arguments with spaces or quotes are quoted) */
static char *join_args_(int argc, char **argv)
{
    StrBuf b = {0};
    sb_puts(&b, "nnc");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool plain = *a != 0;
        for (const char *p = a; *p && plain; p++) plain = !strchr(" \t'\"\\$`*?;&|<>()", *p) && *p != '\n';
        if (plain) {
            sb_printf(&b, " %s", a);
            continue;
        }
        sb_puts(&b, " '");
        for (const char *p = a; *p; p++) {
            if (*p == '\'') sb_puts(&b, "'\\''");
            else if (*p == '*' && p[1] == '/') sb_puts(&b, "*'\\''/"); /* never end the C comment it sits in */
            else sb_putc(&b, *p);
        }
        sb_putc(&b, '\'');
    }
    return sb_take(&b);
}

/* `nnc help [COMMAND]`: the help of the command, on stdout (-1: done) */
static int help_command_(Options *o, int argc, char **argv)
{
    if (argc > 3) return usage_error_(o, "'nnc help' takes at most one command, not '%s' and '%s'", argv[2], argv[3]);
    if (argc == 2 || str_eq(argv[2], "help") || str_eq(argv[2], "--help") || str_eq(argv[2], "-h")) {
        fputs(usage_main, stdout);
        return -1;
    }
    if (!is_command_(argv[2])) {
        const char *s = strlen(argv[2]) <= 32 ? suggest_among(argv[2], commands_, NCOMMANDS_) : NULL;
        if (s) return usage_error_(o, "unknown command '%s'; did you mean '%s'?", argv[2], s);
        return usage_error_(o, "unknown command '%s' (the commands are check, summary, train, predict, bench, compile and import)", argv[2]);
    }
    fputs(help_for_(argv[2]), stdout);
    return -1;
}

/* A first word that is neither a command nor a file: a mistyped command when it is near one, or when a
 * model file follows it (nnc chek m.nn). EXIT_OK when it should be read as the model file. */
static int unknown_command_(Options *o, int argc, char **argv)
{
    const char *a = argv[1];
    if (a[0] == '-' || !a[0] || strchr(a, '.') || strchr(a, '/') || strlen(a) > 32 || access(a, F_OK) == 0) return EXIT_OK;
    const char *s = suggest_among(a, commands_, NCOMMANDS_);
    if (s) return usage_error_(o, "unknown command '%s'; did you mean '%s'?", a, s);
    for (int i = 2; i < argc; i++)
        if (argv[i][0] != '-')
            return usage_error_(o, "unknown command '%s' (the commands are check, summary, train, predict, bench, compile and import)", a);
    return EXIT_OK;
}

/* one option at argv[*i]; seen[] holds the value (or "") of each flag given so far */
static int parse_option_(Options *o, int argc, char **argv, int *i, const char **seen)
{
    const char *a = argv[*i];
    if (a[1] == 'O') {
        if (str_eq(o->command, "check")) return usage_error_(o, "'nnc check' does not take %s", a);
        if (a[2] < '0' || a[2] > '2' || a[3]) return usage_error_(o, "unknown optimization level '%s' (-O0, -O1 or -O2)", a);
        o->opt_level = a[2] - '0';
        return EXIT_OK;
    }
    if (a[1] == 'o' && a[2]) return usage_error_(o, "unknown option '%s' (write -o FILE)", a);
    char name[64];
    const char *eq = strchr(a, '=');
    size_t len = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
    if (len >= sizeof name) len = sizeof name - 1;
    memcpy(name, a, len);
    name[len] = 0;
    const Flag *f = flag_find_(name);
    if (!f) {
        const char *s = suggest_flag_(name, o->command);
        if (s) return usage_error_(o, "unknown option '%s'; did you mean '%s'?", a, s);
        return usage_error_(o, "unknown option '%s'", a);
    }
    char who[64];
    if (!flag_allowed_(f, o->command)) {
        const char *list = takers_(f, who, sizeof who);
        return usage_error_(o, "'nnc %s' does not take %s (%s take%s it)", o->command, name, list, strchr(list, ' ') ? "" : "s");
    }
    const char *val = NULL;
    if (f->value) {
        if (eq && a[1] == '-') val = eq + 1;
        else if (*i + 1 < argc) val = argv[++*i];
        else return usage_error_(o, "%s needs a value", name);
    } else if (eq && a[1] == '-') {
        return usage_error_(o, "%s takes no value", name);
    }
    const char **prev = &seen[f - flags_];
    bool repeatable = str_eq(name, "--data") || str_eq(name, "--val") || str_eq(name, "-o");
    if (*prev && !repeatable) {
        if (f->value) return usage_error_(o, "%s is given twice ('%s' and '%s')", name, *prev, val);
        return usage_error_(o, "%s is given twice", name);
    }
    *prev = val ? val : "";
    return apply_flag_(o, name, val);
}

static int parse_args_(int argc, char **argv, Options *o)
{
    int i = 1;
    o->command = "compile";
    o->opt_level = 2;
    o->target = "c";
    if (argc > 1 && str_eq(argv[1], "help")) return help_command_(o, argc, argv);
    bool explicit_command = i < argc && is_command_(argv[i]);
    if (explicit_command) o->command = argv[i++];
    else if (argc > 1) {
        int rc = unknown_command_(o, argc, argv);
        if (rc) return rc;
    }
    const char *seen[NFLAGS_] = {0};
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (str_eq(a, "--help") || str_eq(a, "-h")) {
            fputs(explicit_command ? help_for_(o->command) : usage_main, stdout);
            return -1;
        }
        if (str_eq(a, "--version")) {
            printf("nnc %s\n", NNC_VERSION);
            return -1;
        }
        if (a[0] == '-' && a[1] && !str_eq(a, "-")) {
            int rc = parse_option_(o, argc, argv, &i, seen);
            if (rc) return rc;
            continue;
        }
        if (!a[0]) return usage_error_(o, "the model file name is empty");
        if (o->model_path) return usage_error_(o, "more than one model file given ('%s' and '%s')", o->model_path, a);
        o->model_path = a;
    }
    if (!o->model_path) {
        if (str_eq(o->command, "compile") && argc == 1) {
            fputs(usage_main, stderr);
            return EXIT_USAGE;
        }
        return usage_error_(o, "no model file given");
    }
    if (o->emit && str_eq(o->emit, "cuda")) { /* the kernels of the cuda target: it is implied */
        if (o->target_given && !str_eq(o->target, "cuda"))
            return usage_error_(o, "--emit cuda prints the kernels of --target cuda, not of --target %s", o->target);
        o->target = "cuda";
    }
    bool runs = str_eq(o->command, "train") || str_eq(o->command, "predict") || str_eq(o->command, "bench");
    if (runs && str_eq(o->target, "mcu"))
        return usage_error_(o, "an mcu model runs on the device, not in nnc %s (--target c); compile it with "
                               "'nnc %s --target mcu -o MODEL.c' (docs/mcu.md)", o->command, o->model_path);
    return EXIT_OK;
}

typedef struct Job {
    int argc;
    char **argv;
    int rc;
} Job;

static void *run_(void *arg)
{
    Job *j = arg;
    Options o = {0};
    int rc = parse_args_(j->argc, j->argv, &o);
    if (rc) {
        j->rc = rc < 0 ? EXIT_OK : rc;
        return NULL;
    }
    int threads;
    if ((str_eq(o.command, "train") || str_eq(o.command, "predict") || str_eq(o.command, "bench")) && !run_threads(&threads)) {
        j->rc = EXIT_USAGE;
        return NULL;
    }
    o.cmdline = join_args_(j->argc, j->argv);
    if (str_eq(o.command, "check")) rc = cmd_check(&o);
    else if (str_eq(o.command, "summary")) rc = cmd_summary(&o);
    else if (str_eq(o.command, "train")) rc = cmd_train(&o);
    else if (str_eq(o.command, "predict")) rc = cmd_predict(&o);
    else if (str_eq(o.command, "bench")) rc = cmd_bench(&o);
    else if (str_eq(o.command, "import")) rc = cmd_import(&o);
    else rc = cmd_compile(&o);
    j->rc = rc;
    return NULL;
}

int main(int argc, char **argv)
{
    Job job = {.argc = argc, .argv = argv};
    /* a FIFO or pipe whose reader goes away is a write error (EPIPE) that the writer reports, not a
     * silent death by SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)1 << 30); /* reserved, committed only as used */
    if (pthread_create(&th, &attr, run_, &job) != 0) {
        run_(&job); /* no thread: run on the main stack */
    } else {
        pthread_join(th, NULL);
    }
    pthread_attr_destroy(&attr);
    fflush(stdout);
    return job.rc;
}
