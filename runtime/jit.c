/* jit.c: the loader behind nnc_jit.h, and its "cc" back end.
 *
 * Chooses a back end (opt->backend, else $NNC_JIT, else llvm then cc), finds and dlopens the Clang/LLVM
 * plugin (libnnc_jit_llvm.so), and implements cc: write the source into a private temp directory, run
 * the system compiler on it with fork/execvp (no shell), dlopen the shared object, remove the directory.
 *
 * Fallback rule of the default order: no plugin, or a plugin that fails to load, means cc, silently. A
 * plugin failure whose message starts with NNC_JIT_LLVM_INTERNAL (not the C source's fault) is retried
 * with cc; a C diagnostic from clang is reported as is, since gcc would only say the same thing again.
 * A forced back end (opt->backend or $NNC_JIT) never falls back. NNC_JIT_VERBOSE=1 reports fallbacks.
 * Both back ends make an implicit function declaration an error (C99 has none; gcc only warns, and the
 * mistake would surface at load time as an undefined symbol).
 *
 * What it does not do: know about models, cache compiled code across calls, or run its first call from
 * two threads at once (the plugin and OpenBLAS are loaded once per process and never unloaded). $NNC_CC
 * is one program, not a command line: it is not split on spaces.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "nnc_jit.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define JIT_ERR_LINES 20       /* compiler output kept in err */
#define JIT_PATH_MAX 4096
#define JIT_PLUGIN_FILE "libnnc_jit_llvm.so"

enum { JIT_AUTO, JIT_LLVM, JIT_CC };

struct nnc_jit {
    int kind;     /* JIT_LLVM or JIT_CC */
    void *handle; /* the plugin's handle (llvm) or the dlopen handle of the shared object (cc) */
};

/* The plugin is loaded at most once and never unloaded: LLVM's static destructors and dlclose do not mix. */
static struct {
    int tried;
    void *so;
    nnc_jit_llvm_compile_fn compile;
    nnc_jit_llvm_lookup_fn lookup;
    nnc_jit_llvm_free_fn free;
    char why[1024]; /* why it is unavailable, reported when llvm is forced */
} plugin_;

/* Non-default places of cblas.h; Debian's /usr/include/<multiarch> and /usr/include need no -I. */
static const char *const cblas_dirs_[] = {
#ifdef NNC_CBLAS_INCLUDE_DIR
    NNC_CBLAS_INCLUDE_DIR,
#endif
    "/usr/include/openblas", "/usr/local/include/openblas", "/opt/OpenBLAS/include", NULL};

/* ---- messages -------------------------------------------------------------------------------- */

static void err_set_(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copies the first JIT_ERR_LINES lines of a compiler's output into err, without the final newline. */
static void err_set_lines_(char *err, size_t errlen, const char *text)
{
    size_t n = 0;
    int lines = 0;
    if (!err || errlen == 0)
        return;
    while (text[n] && lines < JIT_ERR_LINES)
        lines += text[n++] == '\n';
    while (n > 0 && text[n - 1] == '\n')
        n--;
    if (n >= errlen)
        n = errlen - 1;
    memcpy(err, text, n);
    err[n] = '\0';
}

static void note_(const char *fmt, ...)
{
    const char *v = getenv("NNC_JIT_VERBOSE");
    va_list ap;
    if (!v || !*v || strcmp(v, "0") == 0)
        return;
    va_start(ap, fmt);
    fputs("nnc_jit: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- options and back-end choice ------------------------------------------------------------- */

static nnc_jit_options options_resolve_(const nnc_jit_options *opt)
{
    nnc_jit_options o = {2, 0, 0, NULL, NULL};
    if (opt)
        o = *opt;
    if (o.opt_level < 0)
        o.opt_level = 0;
    if (o.opt_level > 3)
        o.opt_level = 3;
    return o;
}

/* opt->backend, else $NNC_JIT, else the default order; -1 (with err) for an unknown name. */
static int backend_choose_(const nnc_jit_options *o, char *err, size_t errlen)
{
    const char *b = o->backend, *from = "options";
    if (!b || !*b) {
        b = getenv("NNC_JIT");
        from = "NNC_JIT";
    }
    if (!b || !*b || strcmp(b, "auto") == 0)
        return JIT_AUTO;
    if (strcmp(b, "llvm") == 0)
        return JIT_LLVM;
    if (strcmp(b, "cc") == 0)
        return JIT_CC;
    err_set_(err, errlen, "nnc_jit: unknown back end '%s' in %s (expected llvm or cc)", b, from);
    return -1;
}

/* Code that calls cblas_* needs OpenBLAS in the global symbol scope before it runs (the llvm back end
 * resolves symbols from the process; for cc it is also a DT_NEEDED of the shared object). */
static void blas_load_(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    if (!dlopen("libopenblas.so.0", RTLD_NOW | RTLD_GLOBAL) && !dlopen("libopenblas.so", RTLD_NOW | RTLD_GLOBAL))
        note_("cannot load OpenBLAS: %s", dlerror());
}

static nnc_jit *jit_new_(int kind, void *handle, char *err, size_t errlen)
{
    nnc_jit *j = malloc(sizeof *j);
    if (!j) {
        err_set_(err, errlen, "nnc_jit: out of memory");
        return NULL;
    }
    j->kind = kind;
    j->handle = handle;
    return j;
}

/* ---- the llvm plugin ------------------------------------------------------------------------- */

/* Stores dlsym's result in a function pointer: POSIX guarantees the representations agree, ISO C does
 * not let a cast say so (-Wpedantic). */
static void sym_get_(void *so, const char *name, void *fn, size_t size)
{
    void *p = dlsym(so, name);
    memcpy(fn, &p, size < sizeof p ? size : sizeof p);
}

/* Loads the plugin at path if the file exists; a file that exists but does not load is remembered. */
static int plugin_try_(const char *path)
{
    void *so;
    if (access(path, F_OK) != 0)
        return 0;
    so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        snprintf(plugin_.why, sizeof plugin_.why, "cannot load %s: %s", path, dlerror());
        return 0;
    }
    sym_get_(so, "nnc_jit_llvm_compile", &plugin_.compile, sizeof plugin_.compile);
    sym_get_(so, "nnc_jit_llvm_lookup", &plugin_.lookup, sizeof plugin_.lookup);
    sym_get_(so, "nnc_jit_llvm_free", &plugin_.free, sizeof plugin_.free);
    if (!plugin_.compile || !plugin_.lookup || !plugin_.free) {
        snprintf(plugin_.why, sizeof plugin_.why, "%s does not export the nnc_jit_llvm_* functions", path);
        dlclose(so);
        return 0;
    }
    plugin_.so = so;
    return 1;
}

static int plugin_try_dir_(const char *dir, const char *sub)
{
    char path[JIT_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s%s/%s", dir, sub, JIT_PLUGIN_FILE) >= sizeof path)
        return 0;
    return plugin_try_(path);
}

/* The directory of the running executable, from /proc/self/exe. */
static int exe_dir_(char *dir, size_t n)
{
    ssize_t len = readlink("/proc/self/exe", dir, n - 1);
    char *slash;
    if (len <= 0)
        return 0;
    dir[len] = '\0';
    slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    return 1;
}

/* Search order: $NNC_JIT_PLUGIN, beside the executable, <exe dir>/../lib/nnc, the build tree, the
 * install tree; the first file that loads wins. $NNC_JIT_PLUGIN, when set, is the only place looked at:
 * whoever names a plugin wants that one (or, naming a missing file, none). */
static void plugin_load_(void)
{
    char dir[JIT_PATH_MAX];
    const char *env = getenv("NNC_JIT_PLUGIN");
    if (plugin_.tried)
        return;
    plugin_.tried = 1;
    if (env && *env) {
        snprintf(plugin_.why, sizeof plugin_.why, "%s ($NNC_JIT_PLUGIN) not found", env);
        plugin_try_(env);
        return;
    }
    snprintf(plugin_.why, sizeof plugin_.why,
             "%s not found (beside the executable, in ../lib/nnc, the build and install trees)", JIT_PLUGIN_FILE);
    if (exe_dir_(dir, sizeof dir) && (plugin_try_dir_(dir, "") || plugin_try_dir_(dir, "/../lib/nnc")))
        return;
#ifdef NNC_PLUGIN_BUILD_DIR
    if (plugin_try_dir_(NNC_PLUGIN_BUILD_DIR, ""))
        return;
#endif
#ifdef NNC_PLUGIN_INSTALL_DIR
    if (plugin_try_dir_(NNC_PLUGIN_INSTALL_DIR, ""))
        return;
#endif
}

/* Calls the plugin with a private message buffer so the caller can tell internal failures apart even
 * when it passed no err; *internal says whether to retry with cc. */
static nnc_jit *llvm_compile_(const char *source, const char *name, const nnc_jit_options *o, char *err,
                              size_t errlen, int *internal)
{
    char msg[4096] = "";
    void *h = plugin_.compile(source, name, o, msg, sizeof msg);
    nnc_jit *j;
    *internal = 0;
    if (!h) {
        if (!msg[0])
            snprintf(msg, sizeof msg, "%sfailed without a message", NNC_JIT_LLVM_INTERNAL);
        *internal = strncmp(msg, NNC_JIT_LLVM_INTERNAL, strlen(NNC_JIT_LLVM_INTERNAL)) == 0;
        err_set_(err, errlen, "%s", msg);
        return NULL;
    }
    j = jit_new_(JIT_LLVM, h, err, errlen);
    if (!j)
        plugin_.free(h);
    return j;
}

/* ---- the cc back end ------------------------------------------------------------------------- */

static int tmpdir_make_(char *dir, size_t n, char *err, size_t errlen)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    if ((size_t)snprintf(dir, n, "%s/nnc-jit-XXXXXX", base) >= n || !mkdtemp(dir)) {
        err_set_(err, errlen, "nnc_jit: cannot create a temp directory in %s: %s", base, strerror(errno));
        return 0;
    }
    return 1;
}

/* Removes the directory and the files the compiler left in it (it has no subdirectories). */
static void tmpdir_remove_(const char *dir)
{
    char path[JIT_PATH_MAX];
    struct dirent *e;
    DIR *d = opendir(dir);
    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < sizeof path)
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Writes the source, headed by a #line naming it `name`, so diagnostics and __FILE__ say `name`. */
static int source_write_(const char *path, const char *name, const char *source, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    const char *c;
    int ok;
    if (!f) {
        err_set_(err, errlen, "nnc_jit: cannot write %s: %s", path, strerror(errno));
        return 0;
    }
    fputs("#line 1 \"", f);
    for (c = name; *c; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', f);
        if (*c != '\n')
            fputc(*c, f);
    }
    fputs("\"\n", f);
    fputs(source, f);
    ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        err_set_(err, errlen, "nnc_jit: cannot write %s: %s", path, strerror(errno));
    return ok;
}

static const char *cblas_include_dir_(void)
{
    char path[JIT_PATH_MAX];
    int i;
    for (i = 0; cblas_dirs_[i]; i++) {
        snprintf(path, sizeof path, "%s/cblas.h", cblas_dirs_[i]);
        if (access(path, R_OK) == 0)
            return cblas_dirs_[i];
    }
    return NULL;
}

/* The directory of `name`, where #include "..." looks first: the source is compiled as if it were
 * there, as the llvm back end does with its in-memory file of that name. */
static void name_dir_(const char *name, char *dir, size_t n)
{
    const char *slash = strrchr(name, '/');
    size_t len = slash ? (size_t)(slash - name) : 0;
    if (!slash)
        snprintf(dir, n, ".");
    else if (len == 0)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)len, name);
}

/* cc -std=c99 -O<n> -fPIC -shared -fno-math-errno [-march=native] [-D ...] -iquote namedir [-I cblas]
 * -o so src [-lopenblas] -lm. Returns a malloc'ed NULL-terminated argv that points into olevel ("-O<n>")
 * and qdir. */
static char **cc_argv_(const nnc_jit_options *o, const char *src, const char *so, char olevel[4],
                       const char *qdir)
{
    static const char *const fixed[] = {"-std=c99", "-fPIC", "-shared", "-fno-math-errno",
                                        "-Werror=implicit-function-declaration"};
    const char *cc = getenv("NNC_CC"), *inc = o->link_blas ? cblas_include_dir_() : NULL;
    size_t nd = 0, k = 0, i;
    char **argv;
    while (o->defines && o->defines[nd])
        nd++;
    argv = malloc((2 * nd + 24) * sizeof *argv);
    if (!argv)
        return NULL;
    argv[k++] = (char *)(cc && *cc ? cc : "cc");
    for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[k++] = (char *)fixed[i];
    snprintf(olevel, 4, "-O%d", o->opt_level);
    argv[k++] = olevel;
    if (o->native)
        argv[k++] = "-march=native";
    for (i = 0; i < nd; i++) {
        argv[k++] = "-D";
        argv[k++] = (char *)o->defines[i];
    }
    argv[k++] = "-iquote";
    argv[k++] = (char *)qdir;
    if (inc) {
        argv[k++] = "-I";
        argv[k++] = (char *)inc;
    }
    argv[k++] = "-o";
    argv[k++] = (char *)so;
    argv[k++] = (char *)src;
    if (o->link_blas)
        argv[k++] = "-lopenblas";
    argv[k++] = "-lm";
    argv[k] = NULL;
    return argv;
}

static void child_say_(const char *s)
{
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r; /* nowhere to report a failed write to stderr */
}

/* In the child: stdout and stderr into the pipe, then exec; only async-signal-safe calls after fork
 * (argv was built before it). */
static void child_exec_(int fd[2], char *const argv[])
{
    int e;
    close(fd[0]);
    dup2(fd[1], STDOUT_FILENO);
    dup2(fd[1], STDERR_FILENO);
    if (fd[1] > STDERR_FILENO)
        close(fd[1]);
    execvp(argv[0], argv);
    e = errno;
    child_say_("nnc_jit: cannot run '");
    child_say_(argv[0]);
    child_say_(e == ENOENT ? "': not found (set NNC_CC)\n" : "': exec failed\n");
    _exit(127);
}

/* Reads the pipe to its end (so the child never blocks), keeping the first cap-1 bytes in out. */
static void pipe_drain_(int fd, char *out, size_t cap)
{
    char buf[4096];
    size_t len = 0;
    ssize_t r;
    for (;;) {
        r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (len + 1 < cap) {
            size_t take = (size_t)r < cap - 1 - len ? (size_t)r : cap - 1 - len;
            memcpy(out + len, buf, take);
            len += take;
        }
    }
    out[len] = '\0';
}

/* Runs argv (PATH search, no shell) with its output in out; returns its exit status, -1 if it could
 * not be started (message in out), 128+signal if it was killed. */
static int run_capture_(char *const argv[], char *out, size_t cap)
{
    int fd[2], status;
    pid_t pid;
    if (pipe(fd) != 0) {
        snprintf(out, cap, "nnc_jit: pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(out, cap, "nnc_jit: fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0)
        child_exec_(fd, argv);
    close(fd[1]);
    pipe_drain_(fd[0], out, cap);
    close(fd[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(out, cap, "nnc_jit: waitpid: %s", strerror(errno));
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cc_run_(const char *name, const char *src, const char *so, const nnc_jit_options *o, char *err,
                   size_t errlen)
{
    char olevel[4], qdir[JIT_PATH_MAX], out[16384];
    char **argv;
    name_dir_(name, qdir, sizeof qdir);
    argv = cc_argv_(o, src, so, olevel, qdir);
    int status;
    if (!argv) {
        err_set_(err, errlen, "nnc_jit: out of memory");
        return 0;
    }
    status = run_capture_(argv, out, sizeof out);
    if (status != 0 && out[0])
        err_set_lines_(err, errlen, out);
    else if (status != 0)
        err_set_(err, errlen, "nnc_jit: '%s' failed with status %d and no message", argv[0], status);
    free(argv);
    return status == 0;
}

/* source -> <tmp>/nnc-jit-XXXXXX/src.c -> cc -> .so -> dlopen. The .so name carries the pid and a
 * counter: glibc's dlopen returns an already-loaded object of the same path, and a later mkdtemp may
 * reuse a removed directory's name. */
static nnc_jit *cc_compile_(const char *source, const char *name, const nnc_jit_options *o, char *err,
                            size_t errlen)
{
    static unsigned counter;
    char dir[JIT_PATH_MAX], src[JIT_PATH_MAX + 16], so[JIT_PATH_MAX + 64];
    void *h = NULL;
    nnc_jit *j;
    if (!tmpdir_make_(dir, sizeof dir, err, errlen))
        return NULL;
    snprintf(src, sizeof src, "%s/src.c", dir);
    snprintf(so, sizeof so, "%s/nnc_jit_%ld_%u.so", dir, (long)getpid(), counter++);
    if (source_write_(src, name, source, err, errlen) && cc_run_(name, src, so, o, err, errlen)) {
        h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            err_set_(err, errlen, "nnc_jit: cannot load the compiled code: %s", dlerror());
    }
    tmpdir_remove_(dir);
    if (!h)
        return NULL;
    j = jit_new_(JIT_CC, h, err, errlen);
    if (!j)
        dlclose(h);
    return j;
}

/* ---- the interface --------------------------------------------------------------------------- */

/* The default order: llvm if the plugin loads, cc otherwise or after an internal llvm failure. */
static nnc_jit *auto_compile_(const char *source, const char *name, const nnc_jit_options *o, char *err,
                              size_t errlen)
{
    nnc_jit *j;
    int internal;
    plugin_load_();
    if (!plugin_.so) {
        note_("llvm back end unavailable (%s); using cc", plugin_.why);
        return cc_compile_(source, name, o, err, errlen);
    }
    j = llvm_compile_(source, name, o, err, errlen, &internal);
    if (j || !internal)
        return j;
    note_("llvm back end failed (%s); retrying with cc", err && errlen ? err : "no message");
    if (err && errlen)
        err[0] = '\0';
    return cc_compile_(source, name, o, err, errlen);
}

nnc_jit *nnc_jit_compile(const char *source, const char *name, const nnc_jit_options *opt, char *err,
                         size_t errlen)
{
    nnc_jit_options o = options_resolve_(opt);
    int internal, backend;
    if (err && errlen)
        err[0] = '\0';
    backend = backend_choose_(&o, err, errlen);
    if (backend < 0)
        return NULL;
    if (!source) {
        err_set_(err, errlen, "nnc_jit: no source");
        return NULL;
    }
    if (!name || !*name)
        name = "nnc_jit.c";
    if (o.link_blas)
        blas_load_();
    if (backend == JIT_CC)
        return cc_compile_(source, name, &o, err, errlen);
    if (backend == JIT_AUTO)
        return auto_compile_(source, name, &o, err, errlen);
    plugin_load_();
    if (!plugin_.so) {
        err_set_(err, errlen, "nnc_jit: the llvm back end is unavailable: %s", plugin_.why);
        return NULL;
    }
    return llvm_compile_(source, name, &o, err, errlen, &internal);
}

void *nnc_jit_lookup(nnc_jit *j, const char *symbol)
{
    if (!j || !symbol)
        return NULL;
    if (j->kind == JIT_LLVM)
        return plugin_.lookup(j->handle, symbol);
    return dlsym(j->handle, symbol);
}

const char *nnc_jit_backend(const nnc_jit *j)
{
    if (!j)
        return NULL;
    return j->kind == JIT_LLVM ? "llvm" : "cc";
}

void nnc_jit_free(nnc_jit *j)
{
    if (!j)
        return;
    if (j->kind == JIT_LLVM)
        plugin_.free(j->handle);
    else
        dlclose(j->handle);
    free(j);
}
