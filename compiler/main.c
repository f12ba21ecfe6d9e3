/* main.c: the nnc command line (docs/cli.md): parse the arguments, run one subcommand.
 *
 * The work runs on a thread with a large stack, so that no input, however deeply nested, can exhaust it.
 * Command-line mistakes exit 2 with a one-line reason and a pointer to --help.
 */
#include "commands.h"
#include "pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char usage_main[] =
    "usage: nnc MODEL.nn -o OUT.c [options]          compile to C (OUT.c and OUT.h)\n"
    "       nnc check MODEL.nn                       parse and type/shape-check\n"
    "       nnc summary MODEL.nn [--json]            layers, shapes, parameters, FLOPs, memory\n"
    "       nnc train MODEL.nn --data NAME=FILE...   compile, build and train\n"
    "       nnc predict MODEL.nn --weights W.safetensors --data NAME=FILE... -o OUT.npy\n"
    "       nnc bench MODEL.nn [--json]              time predict and train_step\n"
    "\n"
    "Options for every command that compiles:\n"
    "  --model NAME        the model to use when the file defines several\n"
    "  --batch N           maximum batch size compiled in (default: train(batch=...) in the file, else 32)\n"
    "  --target c|cuda|mcu code for the host (default), for NVIDIA GPUs, or for microcontrollers\n"
    "  --inference         emit only the inference entry points\n"
    "  --max-ram BYTES     fail when the model's RAM would exceed BYTES (accepts 256K, 1M)\n"
    "  --weights FILE      initial weights (train) or the weights to use (predict, mcu)\n"
    "  --emit ir|c|cuda    print that stage to stdout instead of writing files\n"
    "  --dump-ir           print the IR after every pass to stderr\n"
    "  -O0 | -O1 | -O2     optimization level (default -O2)\n"
    "  --passes LIST       run exactly these passes, for tests: fold,simplify,cse,dce,fuse (IR) and\n"
    "                      reuse,memplan (memory plan)\n"
    "  -o FILE             output file ('-' for stdout)\n"
    "\n"
    "nnc COMMAND --help shows the options of one command. nnc --version prints the version.\n"
    "Exit codes: 0 success, 1 the model, the data or a file is wrong, 2 the command line is wrong,\n"
    "3 training diverged.\n";

static const char usage_check[] =
    "usage: nnc check MODEL.nn [--model NAME]\n"
    "Parses and type/shape-checks the model. Prints nothing and exits 0 when it is valid; otherwise prints\n"
    "every error (at most 20) as FILE:LINE:COL: error: ... and exits 1.\n";

static const char usage_summary[] =
    "usage: nnc summary MODEL.nn [--json] [--batch N] [--model NAME] [-O0|-O1|-O2]\n"
    "Prints each layer and operator with its output shape (batch as B) and parameter count, the totals,\n"
    "FLOPs per sample (forward, and forward+backward), the number of kernels, and the scratch (arena)\n"
    "bytes of predict and of a train step at the chosen batch. --json prints one JSON object instead.\n";

static const char usage_train[] =
    "usage: nnc train MODEL.nn --data NAME=FILE... [options]\n"
    "       nnc train MODEL.nn --data fashion-mnist [options]\n"
    "Compiles the model, builds it in-process and trains it, printing one progress line per epoch (a live\n"
    "bar on a terminal), then saves the weights.\n"
    "  --data NAME=FILE    bind an input or target to a file (.npy, .csv, IDX, IDX.gz); repeat per name\n"
    "  --data fashion-mnist the built-in Fashion-MNIST (training split; test split for validation)\n"
    "  --val NAME=FILE     validation data, evaluated after every epoch\n"
    "  --epochs N          passes over the data (default: train(epochs=...) in the file, else 1)\n"
    "  --steps N           stop after N optimizer steps\n"
    "  --batch N           batch size (default: train(batch=...) in the file, else 32)\n"
    "  --no-shuffle        take batches in file order\n"
    "  --seed S            seed of the one generator behind init, shuffling and dropout (default 0)\n"
    "  --weights FILE      start from these weights (a file saved by --save resumes training exactly)\n"
    "  --save FILE         where to save (default: MODEL.safetensors beside the model)\n"
    "  --log FILE.csv      one row per epoch: epoch, loss, metrics, val_loss, val_metrics, seconds\n"
    "  --quiet             no progress output\n"
    "Exit 3 when the loss or a weight becomes NaN or infinite.\n";

static const char usage_predict[] =
    "usage: nnc predict MODEL.nn --weights W.safetensors --data NAME=FILE... -o OUT.npy [options]\n"
    "Runs the model over every sample, in batches of at most --batch. -o FILE writes the first output;\n"
    "-o NAME=FILE (repeatable) picks outputs by name. Files: .npy, .csv, IDX, IDX.gz.\n";

static const char usage_bench[] =
    "usage: nnc bench MODEL.nn [--json] [--batch N] [-O0|-O1|-O2] [--iters N]\n"
    "Times predict and train_step of the compiled model on random data at the chosen batch; prints the\n"
    "median microseconds per call and the achieved GFLOP/s.\n";

static const char usage_compile[] =
    "usage: nnc MODEL.nn -o OUT.c [--batch N] [--inference] [--weights W] [--target c|cuda|mcu]\n"
    "                     [--max-ram BYTES] [--model NAME] [--emit ir|c|cuda] [--dump-ir] [-O0|-O1|-O2]\n"
    "Writes OUT.c and OUT.h (same stem); '-o -' writes one self-contained C file to stdout.\n"
    "  --shim   also emit nnc_jit_model_size/init/predict/train_step/eval/tensors: the same signatures for\n"
    "           every model (what nnc train/predict/bench call; handy for tools and tests)\n";

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

static bool parse_int_(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* 256K, 1M, 1.5M, 1048576 */
static bool parse_bytes_(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return false;
    double mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024.0 * 1024 * 1024, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end || v * mul > 9e18) return false;
    *out = (int64_t)(v * mul);
    return true;
}

static Binding binding_(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq) return (Binding){.name = NULL, .path = arg};
    return (Binding){.name = xstrdup(arg) /* trimmed below */, .path = eq + 1};
}

static void binding_fix_(Binding *b)
{
    if (b->name) {
        char *n = (char *)b->name;
        n[strchr(n, '=') - n] = 0;
    }
}

typedef struct Flag {
    const char *name;
    const char *commands; /* space-separated commands that take it; NULL: every compiling command */
    bool value;
} Flag;

static const Flag flags_[] = {
    {"-o", "compile predict", true},   {"--model", NULL, true},        {"--batch", NULL, true},
    {"--target", NULL, true},          {"--inference", NULL, false},   {"--max-ram", NULL, true},
    {"--weights", NULL, true},         {"--emit", NULL, true},         {"--dump-ir", NULL, false},
    {"--json", "summary bench", false}, {"--epochs", "train", true},   {"--steps", "train", true},
    {"--no-shuffle", "train", false},  {"--seed", "train", true},      {"--data", "train predict", true},
    {"--val", "train", true},          {"--save", "train", true},      {"--log", "train", true},
    {"--quiet", "train predict bench", false}, {"--iters", "bench", true}, {"--shim", "compile", false},
    {"--passes", NULL, true},
};

static const Flag *flag_find_(const char *name)
{
    for (size_t i = 0; i < sizeof flags_ / sizeof flags_[0]; i++)
        if (str_eq(flags_[i].name, name)) return &flags_[i];
    return NULL;
}

static bool flag_allowed_(const Flag *f, const char *cmd)
{
    if (str_eq(cmd, "check")) return str_eq(f->name, "--model");
    if (!f->commands) return true;
    const char *p = strstr(f->commands, cmd);
    size_t n = strlen(cmd);
    return p && (p == f->commands || p[-1] == ' ') && (p[n] == 0 || p[n] == ' ');
}

static int apply_flag_(Options *o, const char *name, const char *val)
{
    int64_t v;
    if (str_eq(name, "-o")) {
        if (str_eq(o->command, "predict") && strchr(val, '=')) {
            Binding b = binding_(val);
            binding_fix_(&b);
            vec_push(&o->outs, b);
        } else {
            o->out = val;
        }
    } else if (str_eq(name, "--model")) o->model_name = val;
    else if (str_eq(name, "--batch")) {
        if (!parse_int_(val, 1, 1 << 20, &v)) return usage_error_(o, "--batch needs a positive integer, not '%s'", val);
        o->batch = (int)v;
    } else if (str_eq(name, "--target")) {
        if (!str_eq(val, "c") && !str_eq(val, "cuda") && !str_eq(val, "mcu"))
            return usage_error_(o, "--target must be c, cuda or mcu, not '%s'", val);
        o->target = val;
    } else if (str_eq(name, "--inference")) o->inference = true;
    else if (str_eq(name, "--max-ram")) {
        if (!parse_bytes_(val, &o->max_ram)) return usage_error_(o, "--max-ram needs a size like 65536, 256K or 1M, not '%s'", val);
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
    }
    else if (str_eq(name, "--json")) o->json = true;
    else if (str_eq(name, "--epochs")) {
        if (!parse_int_(val, 1, 1000000, &v)) return usage_error_(o, "--epochs needs a positive integer, not '%s'", val);
        o->epochs = (int)v;
    } else if (str_eq(name, "--steps")) {
        if (!parse_int_(val, 1, INT32_MAX, &v)) return usage_error_(o, "--steps needs a positive integer, not '%s'", val);
        o->steps = (int)v;
    } else if (str_eq(name, "--no-shuffle")) o->no_shuffle = true;
    else if (str_eq(name, "--seed")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(val, &end, 10);
        if (errno || end == val || *end || val[0] == '-') return usage_error_(o, "--seed needs a non-negative integer, not '%s'", val);
        o->seed = s;
    } else if (str_eq(name, "--data") || str_eq(name, "--val")) {
        if (str_eq(name, "--data") && str_eq(val, "fashion-mnist")) {
            o->builtin_fashion = true;
            return EXIT_OK;
        }
        Binding b = binding_(val);
        binding_fix_(&b);
        if ((b.name && !b.name[0]) || !b.path[0]) return usage_error_(o, "%s needs NAME=FILE, not '%s'", name, val);
        if (str_eq(name, "--data")) vec_push(&o->data, b);
        else vec_push(&o->val, b);
    } else if (str_eq(name, "--save")) o->save = val;
    else if (str_eq(name, "--log")) o->log = val;
    else if (str_eq(name, "--quiet")) o->quiet = true;
    else if (str_eq(name, "--iters")) {
        if (!parse_int_(val, 1, 100000000, &v)) return usage_error_(o, "--iters needs a positive integer, not '%s'", val);
        o->bench_iters = (int)v;
    }
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
    return usage_main;
}

static bool is_command_(const char *s)
{
    return str_eq(s, "check") || str_eq(s, "summary") || str_eq(s, "train") || str_eq(s, "predict") ||
           str_eq(s, "bench") || str_eq(s, "compile");
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

static int parse_args_(int argc, char **argv, Options *o)
{
    int i = 1;
    o->command = "compile";
    o->opt_level = 2;
    o->target = "c";
    bool explicit_command = i < argc && is_command_(argv[i]);
    if (explicit_command) o->command = argv[i++];
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
        if (a[0] == '-' && a[1] == 'O' && a[2] && !a[3]) {
            if (a[2] < '0' || a[2] > '2') return usage_error_(o, "unknown optimization level '%s' (-O0, -O1 or -O2)", a);
            o->opt_level = a[2] - '0';
            continue;
        }
        if (a[0] == '-' && a[1] && !str_eq(a, "-")) {
            char name[64];
            const char *eq = strchr(a, '=');
            size_t len = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
            if (len >= sizeof name) len = sizeof name - 1;
            memcpy(name, a, len);
            name[len] = 0;
            const Flag *f = flag_find_(name);
            if (!f) return usage_error_(o, "unknown option '%s'", a);
            if (!flag_allowed_(f, o->command)) return usage_error_(o, "'nnc %s' does not take %s", o->command, name);
            const char *val = NULL;
            if (f->value) {
                if (eq && a[1] == '-') val = eq + 1;
                else if (i + 1 < argc) val = argv[++i];
                else return usage_error_(o, "%s needs a value", name);
            } else if (eq && a[1] == '-') {
                return usage_error_(o, "%s takes no value", name);
            }
            int rc = apply_flag_(o, name, val);
            if (rc) return rc;
            continue;
        }
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
    o.cmdline = join_args_(j->argc, j->argv);
    if (str_eq(o.command, "check")) rc = cmd_check(&o);
    else if (str_eq(o.command, "summary")) rc = cmd_summary(&o);
    else if (str_eq(o.command, "train")) rc = cmd_train(&o);
    else if (str_eq(o.command, "predict")) rc = cmd_predict(&o);
    else if (str_eq(o.command, "bench")) rc = cmd_bench(&o);
    else rc = cmd_compile(&o);
    j->rc = rc;
    return NULL;
}

int main(int argc, char **argv)
{
    Job job = {.argc = argc, .argv = argv};
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
