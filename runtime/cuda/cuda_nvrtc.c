/* cuda_nvrtc.c: NVRTC, loaded with dlopen, and the cubin cache. A program's kernel source is compiled for the
 * GPU's architecture ("sm_90": a cubin; "compute_90": PTX when this NVRTC is older than the GPU) and the
 * result kept in $NNC_CACHE_DIR (default $XDG_CACHE_HOME/nnc, else ~/.cache/nnc) as
 *     <model>-<hash>-sm90.cubin
 * where hash is the 64-bit FNV-1a of the runtime's ABI, the architecture, the NVRTC version, the options and
 * the source. Files are written atomically (a temporary file renamed); one that is corrupt or that the driver
 * rejects is compiled again, and a cache that cannot be written is no error. */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <errno.h>
#include <nvrtc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "nnc_cuda_internal.h"

/* the longest cache path */
#define PATH_LEN 1200
/* bumped when the cache's file contents or key change */
#define CACHE_FORMAT "nnc-cuda-cache-1"

typedef struct nvrtc_api {
    nvrtcResult (*Version)(int *, int *);
    nvrtcResult (*GetNumSupportedArchs)(int *);  /* optional (NVRTC 11.2+) */
    nvrtcResult (*GetSupportedArchs)(int *);     /* optional */
    nvrtcResult (*CreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                                 const char *const *);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *);
    nvrtcResult (*CompileProgram)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*GetPTXSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetPTX)(nvrtcProgram, char *);
    nvrtcResult (*GetCUBINSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetCUBIN)(nvrtcProgram, char *);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetProgramLog)(nvrtcProgram, char *);
    const char *(*GetErrorString)(nvrtcResult);
} nvrtc_api;

#define SYM(field, name, required) {name, offsetof(nvrtc_api, field), required}
static const struct {
    const char *name;
    size_t offset;
    int required;
} nvrtc_symbols[] = {
    SYM(Version, "nvrtcVersion", 1),
    SYM(GetNumSupportedArchs, "nvrtcGetNumSupportedArchs", 0),
    SYM(GetSupportedArchs, "nvrtcGetSupportedArchs", 0),
    SYM(CreateProgram, "nvrtcCreateProgram", 1),
    SYM(DestroyProgram, "nvrtcDestroyProgram", 1),
    SYM(CompileProgram, "nvrtcCompileProgram", 1),
    SYM(GetPTXSize, "nvrtcGetPTXSize", 1),
    SYM(GetPTX, "nvrtcGetPTX", 1),
    SYM(GetCUBINSize, "nvrtcGetCUBINSize", 1),
    SYM(GetCUBIN, "nvrtcGetCUBIN", 1),
    SYM(GetProgramLogSize, "nvrtcGetProgramLogSize", 1),
    SYM(GetProgramLog, "nvrtcGetProgramLog", 1),
    SYM(GetErrorString, "nvrtcGetErrorString", 1),
};
#undef SYM

/* NVRTC, loaded once per process and never unloaded */
static struct {
    pthread_once_t once;
    nvrtc_api api;
    int ok;
    int major, minor;
    char err[768];
} nvrtc = {PTHREAD_ONCE_INIT};

static const char *const nvrtc_names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
static const char *const nvrtc_dirs_env[] = {"CUDA_HOME", "CUDA_PATH"};

static void *open_nvrtc(void) {
    char path[1024];
    void *lib;
    const char *own = getenv("NNC_NVRTC");
    if (own && *own && (lib = dlopen(own, RTLD_NOW | RTLD_LOCAL)))
        return lib;
    for (size_t i = 0; i < sizeof nvrtc_names / sizeof nvrtc_names[0]; i++)
        if ((lib = dlopen(nvrtc_names[i], RTLD_NOW | RTLD_LOCAL)))
            return lib;
    for (size_t d = 0; d < 3; d++) {
        const char *dir = d < 2 ? getenv(nvrtc_dirs_env[d]) : "/usr/local/cuda";
        if (!dir || !*dir)
            continue;
        for (size_t i = 0; i < sizeof nvrtc_names / sizeof nvrtc_names[0]; i++) {
            if ((size_t)snprintf(path, sizeof path, "%s/lib64/%s", dir, nvrtc_names[i]) >= sizeof path)
                continue;
            if ((lib = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
                return lib;
        }
    }
    return NULL;
}

static void load_nvrtc(void) {
    void *lib = open_nvrtc();
    if (!lib) {
        snprintf(nvrtc.err, sizeof nvrtc.err,
                 "nnc_cuda: NVRTC could not be loaded (tried libnvrtc.so.13, libnvrtc.so.12 and libnvrtc.so on the "
                 "library path and in $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64; $NNC_NVRTC names "
                 "another)");
        return;
    }
    for (size_t i = 0; i < sizeof nvrtc_symbols / sizeof nvrtc_symbols[0]; i++) {
        void *f = dlsym(lib, nvrtc_symbols[i].name);
        if (!f && nvrtc_symbols[i].required) {
            snprintf(nvrtc.err, sizeof nvrtc.err, "nnc_cuda: NVRTC has no %s (older than CUDA 11.1)",
                     nvrtc_symbols[i].name);
            return;
        }
        memcpy((char *)&nvrtc.api + nvrtc_symbols[i].offset, &f, sizeof f);
    }
    if (nvrtc.api.Version(&nvrtc.major, &nvrtc.minor) != NVRTC_SUCCESS) {
        snprintf(nvrtc.err, sizeof nvrtc.err, "nnc_cuda: nvrtcVersion failed");
        return;
    }
    nvrtc.ok = 1;
}

static int need_nvrtc(char *err, size_t errlen) {
    pthread_once(&nvrtc.once, load_nvrtc);
    return nvrtc.ok ? 0 : nnc_cuda_fail(err, errlen, "%s", nvrtc.err);
}

int nnc_cuda_nvrtc_version(int *major, int *minor, char *err, size_t errlen) {
    if (need_nvrtc(err, errlen))
        return 1;
    *major = nvrtc.major;
    *minor = nvrtc.minor;
    return 0;
}

int nnc_cuda_nvrtc_arch(int cc, char *arch, size_t archlen, char *err, size_t errlen) {
    int n = 0, best = 0, lowest = 0, highest = 0;
    if (need_nvrtc(err, errlen))
        return 1;
    if (!nvrtc.api.GetNumSupportedArchs || !nvrtc.api.GetSupportedArchs ||
        nvrtc.api.GetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0) {
        snprintf(arch, archlen, "sm_%d", cc);
        return 0;
    }
    int *archs = malloc((size_t)n * sizeof *archs);
    if (!archs)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: out of memory");
    if (nvrtc.api.GetSupportedArchs(archs) != NVRTC_SUCCESS) {
        free(archs);
        snprintf(arch, archlen, "sm_%d", cc);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (archs[i] <= cc && archs[i] > best)
            best = archs[i];
        if (!lowest || archs[i] < lowest)
            lowest = archs[i];
        if (archs[i] > highest)
            highest = archs[i];
    }
    free(archs);
    if (!best)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: NVRTC %d.%d compiles for sm_%d to sm_%d, not for this GPU's sm_%d",
                             nvrtc.major, nvrtc.minor, lowest, highest, cc);
    /* the GPU's own architecture gives a cubin; a newer GPU than NVRTC knows gets PTX the driver compiles */
    snprintf(arch, archlen, best == cc ? "sm_%d" : "compute_%d", best == cc ? cc : best);
    return 0;
}

/* ---- compiling ---- */

static int is_ptx_arch(const char *arch) { return strncmp(arch, "compute_", 8) == 0; }

/* The kernel whose definition starts at or before line `line` of the source ("" when none). */
static void kernel_at_line(const char *source, long line, char *name, size_t namelen) {
    const char *p = source;
    name[0] = 0;
    for (long l = 1; *p && l <= line; l++) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *g = NULL;
        for (const char *q = p; q + 10 <= p + len && !g; q++)
            if (!strncmp(q, "NNC_GLOBAL", 10) || !strncmp(q, "__global__", 10))
                g = q;
        const char *v = g ? strstr(g, "void ") : NULL;
        if (v && v < p + len) {
            v += 5;
            while (*v == ' ')
                v++;
            size_t n = 0;
            while (v + n < p + len && (v[n] == '_' || (v[n] >= '0' && v[n] <= '9') || (v[n] >= 'a' && v[n] <= 'z') ||
                                       (v[n] >= 'A' && v[n] <= 'Z')))
                n++;
            if (n && v[n] == '(' && n < namelen) {
                memcpy(name, v, n);
                name[n] = 0;
            }
        }
        if (!end)
            break;
        p = end + 1;
    }
}

/* The compile log's first error lines, on one line: "k3_dense: m.cu(12): error: ...; m.cu(14): error: ..." */
static void summarize_log(const char *log, const char *source, char *out, size_t outlen) {
    size_t used = 0;
    int lines = 0;
    long first_line = -1;
    out[0] = 0;
    for (const char *p = log; *p && lines < 3;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int wanted = len > 0 && (strstr(p, "error") && strstr(p, "error") < p + len);
        if (wanted) {
            const char *paren = memchr(p, '(', len);
            if (first_line < 0 && paren)
                first_line = strtol(paren + 1, NULL, 10);
            int w = snprintf(out + used, outlen - used, "%s%.*s", lines ? "; " : "", (int)(len > 300 ? 300 : len), p);
            if (w < 0 || (size_t)w >= outlen - used)
                break;
            used += (size_t)w;
            lines++;
        }
        if (!end)
            break;
        p = end + 1;
    }
    if (!lines)
        snprintf(out, outlen, "%.300s", log);
    if (first_line > 0) {
        char kernel[128];
        kernel_at_line(source, first_line, kernel, sizeof kernel);
        size_t k = strlen(kernel), o = strlen(out);
        if (k && k + 2 < outlen) {
            /* "kernel: " in front, the summary's end cut when it no longer fits */
            if (o + k + 2 >= outlen)
                o = outlen - k - 3;
            memmove(out + k + 2, out, o);
            memcpy(out, kernel, k);
            memcpy(out + k, ": ", 2);
            out[o + k + 2] = 0;
        }
    }
}

static int nvrtc_fail(nvrtcResult r, const char *what, char *err, size_t errlen) {
    return nnc_cuda_fail(err, errlen, "nnc_cuda: NVRTC: %s: %s", what, nvrtc.api.GetErrorString(r));
}

static int compile_log(nvrtcProgram prog, const char *source, char *err, size_t errlen) {
    size_t size = 0;
    char summary[NNC_CUDA_ERRLEN - 32];
    if (nvrtc.api.GetProgramLogSize(prog, &size) != NVRTC_SUCCESS || size == 0)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: NVRTC: the kernels do not compile (no log)");
    char *log = malloc(size + 1);
    if (!log)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: out of memory");
    if (nvrtc.api.GetProgramLog(prog, log) != NVRTC_SUCCESS)
        log[0] = 0;
    log[size] = 0;
    summarize_log(log, source, summary, sizeof summary);
    free(log);
    return nnc_cuda_fail(err, errlen, "nnc_cuda: NVRTC: %s", summary);
}

static int fetch_binary(nvrtcProgram prog, int ptx, nnc_cuda_binary *bin, char *err, size_t errlen) {
    size_t size = 0;
    nvrtcResult r = ptx ? nvrtc.api.GetPTXSize(prog, &size) : nvrtc.api.GetCUBINSize(prog, &size);
    if (r != NVRTC_SUCCESS)
        return nvrtc_fail(r, ptx ? "nvrtcGetPTXSize" : "nvrtcGetCUBINSize", err, errlen);
    bin->data = malloc(size + 1);
    if (!bin->data)
        return nnc_cuda_fail(err, errlen, "nnc_cuda: out of memory");
    r = ptx ? nvrtc.api.GetPTX(prog, bin->data) : nvrtc.api.GetCUBIN(prog, bin->data);
    if (r != NVRTC_SUCCESS) {
        free(bin->data);
        bin->data = NULL;
        return nvrtc_fail(r, ptx ? "nvrtcGetPTX" : "nvrtcGetCUBIN", err, errlen);
    }
    bin->data[size] = 0;
    bin->size = size;
    bin->ptx = ptx;
    return 0;
}

/* the options, also part of the cache key */
static void compile_options(const char *arch, char *arch_opt, size_t len, const char *opts[3]) {
    snprintf(arch_opt, len, "--gpu-architecture=%s", arch);
    opts[0] = arch_opt;
    opts[1] = "--std=c++17";
    opts[2] = "-lineinfo";
}

int nnc_cuda_nvrtc_compile(const char *source, const char *name, const char *arch, nnc_cuda_binary *bin,
                           char *err, size_t errlen) {
    char file[160], arch_opt[64];
    const char *opts[3];
    nvrtcProgram prog = NULL;
    memset(bin, 0, sizeof *bin);
    if (need_nvrtc(err, errlen))
        return 1;
    snprintf(file, sizeof file, "%.120s.cu", name && *name ? name : "model");
    nvrtcResult r = nvrtc.api.CreateProgram(&prog, source, file, 0, NULL, NULL);
    if (r != NVRTC_SUCCESS)
        return nvrtc_fail(r, "nvrtcCreateProgram", err, errlen);
    compile_options(arch, arch_opt, sizeof arch_opt, opts);
    r = nvrtc.api.CompileProgram(prog, 3, opts);
    int rc = r == NVRTC_SUCCESS ? fetch_binary(prog, is_ptx_arch(arch), bin, err, errlen)
             : r == NVRTC_ERROR_COMPILATION ? compile_log(prog, source, err, errlen)
                                            : nvrtc_fail(r, "nvrtcCompileProgram", err, errlen);
    nvrtc.api.DestroyProgram(&prog);
    return rc;
}

size_t nnc_cuda_compile_for_test(const char *source, const char *arch, char *err, size_t errlen) {
    nnc_cuda_binary bin;
    if (nnc_cuda_nvrtc_compile(source, "test", arch, &bin, err, errlen))
        return 0;
    free(bin.data);
    return bin.size;
}

/* ---- the cache ---- */

uint64_t nnc_cuda_fnv1a(uint64_t h, const void *data, size_t bytes) {
    const unsigned char *p = data;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t hash_string(uint64_t h, const char *s) { return nnc_cuda_fnv1a(h, s, strlen(s) + 1); }

static int cache_dir(char *dir, size_t len) {
    const char *d = getenv("NNC_CACHE_DIR");
    int n;
    if (d && *d)
        n = snprintf(dir, len, "%s", d);
    else if ((d = getenv("XDG_CACHE_HOME")) && *d)
        n = snprintf(dir, len, "%s/nnc", d);
    else if ((d = getenv("HOME")) && *d)
        n = snprintf(dir, len, "%s/.cache/nnc", d);
    else
        return 1;
    return n < 0 || (size_t)n >= len;
}

int nnc_cuda_cache_path(const char *source, const char *name, const char *arch, char *path, size_t pathlen) {
    char dir[1024], abi[16], version[32], arch_opt[64], model[72];
    const char *opts[3];
    if (cache_dir(dir, sizeof dir) || !nvrtc.ok)
        return 1;
    snprintf(abi, sizeof abi, "%d", NNC_CUDA_ABI);
    snprintf(version, sizeof version, "%d.%d", nvrtc.major, nvrtc.minor);
    compile_options(arch, arch_opt, sizeof arch_opt, opts);
    uint64_t h = 0xcbf29ce484222325ull;
    h = hash_string(h, CACHE_FORMAT);
    h = hash_string(h, abi);
    h = hash_string(h, arch);
    h = hash_string(h, version);
    for (int i = 0; i < 3; i++)
        h = hash_string(h, opts[i]);
    h = hash_string(h, source);
    /* the model's name, kept to characters that are safe in a file name */
    size_t n = 0;
    for (const char *s = name && *name ? name : "model"; *s && n + 1 < sizeof model; s++)
        model[n++] = (*s == '-' || *s == '_' || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= 'A' && *s <= 'Z'))
                         ? *s
                         : '_';
    model[n] = 0;
    const char *digits = arch + strcspn(arch, "0123456789");
    int w = snprintf(path, pathlen, "%s/%s-%016llx-%s%s.%s", dir, model, (unsigned long long)h,
                     is_ptx_arch(arch) ? "compute" : "sm", digits, is_ptx_arch(arch) ? "ptx" : "cubin");
    return w < 0 || (size_t)w >= pathlen;
}

static int make_dirs(const char *path) {
    char buf[PATH_LEN];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return 1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return 1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST;
}

/* the whole file, with a zero after it; nonzero when unreadable or empty */
static int read_file(const char *path, nnc_cuda_binary *bin) {
    FILE *f = fopen(path, "rb");
    memset(bin, 0, sizeof *bin);
    if (!f)
        return 1;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size <= 0 || size > (1L << 30) || fseek(f, 0, SEEK_SET) != 0 || !(bin->data = malloc((size_t)size + 1)) ||
        fread(bin->data, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(bin->data);
        bin->data = NULL;
        return 1;
    }
    fclose(f);
    bin->data[size] = 0;
    bin->size = (size_t)size;
    return 0;
}

/* A cached file worth handing to the driver: an ELF file for a cubin, PTX text for PTX. */
static int plausible(const nnc_cuda_binary *bin) {
    if (!bin->ptx)
        return bin->size > 64 && memcmp(bin->data, "\177ELF", 4) == 0;
    return strstr(bin->data, ".version") && strstr(bin->data, ".target");
}

/* temporary file + rename, so that a reader sees the old file or the whole new one; failures are ignored */
static void write_cache(const char *path, const nnc_cuda_binary *bin) {
    char dir[PATH_LEN], tmp[PATH_LEN + 32];
    if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir)
        return;
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (make_dirs(dir))
            return;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return;
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return;
    int ok = fwrite(bin->data, 1, bin->size, f) == bin->size;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0)
        remove(tmp);
}

int nnc_cuda_cached_build(const char *source, const char *name, const char *arch, nnc_cuda_load_fn *load,
                          void *ctx, char *err, size_t errlen) {
    char path[PATH_LEN], ignored[NNC_CUDA_ERRLEN];
    nnc_cuda_binary bin;
    if (need_nvrtc(err, errlen))
        return 1;
    int cached = nnc_cuda_cache_path(source, name, arch, path, sizeof path) == 0;
    if (cached && read_file(path, &bin) == 0) {
        bin.ptx = is_ptx_arch(arch);
        int loaded = plausible(&bin) && load(ctx, &bin, ignored, sizeof ignored) == 0;
        free(bin.data);
        if (loaded)
            return 0;
    }
    if (nnc_cuda_nvrtc_compile(source, name, arch, &bin, err, errlen))
        return 1;
    if (load(ctx, &bin, err, errlen)) {
        free(bin.data);
        return 1;
    }
    if (cached)
        write_cache(path, &bin);
    free(bin.data);
    return 0;
}
