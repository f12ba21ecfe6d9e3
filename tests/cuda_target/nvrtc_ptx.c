/* nvrtc_ptx.c: compiles one CUDA translation unit (the output of `nnc --emit cuda`) with NVRTC to PTX, the
 * way a GPU without a cubin for it would get its code, and writes the PTX; tests/cuda_target runs ptxas on it.
 *
 *   nvrtc_ptx SOURCE.cu ARCH OUT.ptx      (ARCH: compute_80, compute_90; NVRTC's --gpu-architecture)
 *
 * Exit 0 and the PTX written; 1 with NVRTC's log on stderr when the source does not compile (a warning in the
 * log is printed too, and is a failure: the kernels nnc writes compile without one); 2 on a usage or I/O
 * error. What it does not do: assemble the PTX (ptxas) or run anything. */
#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1) break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf) buf[len] = 0;
    fclose(f);
    return buf;
}

/* NVRTC's log, when it says anything */
static int print_log(nvrtcProgram prog, const char *src)
{
    size_t size = 0;
    if (nvrtcGetProgramLogSize(prog, &size) != NVRTC_SUCCESS || size <= 1) return 0;
    char *log = malloc(size);
    if (!log) return 0;
    if (nvrtcGetProgramLog(prog, log) == NVRTC_SUCCESS && log[0]) {
        fprintf(stderr, "nvrtc_ptx: %s: NVRTC says:\n%s", src, log);
        free(log);
        return 1;
    }
    free(log);
    return 0;
}

static int write_ptx(nvrtcProgram prog, const char *out)
{
    size_t size = 0;
    if (nvrtcGetPTXSize(prog, &size) != NVRTC_SUCCESS) return 2;
    char *ptx = malloc(size);
    if (!ptx || nvrtcGetPTX(prog, ptx) != NVRTC_SUCCESS) {
        free(ptx);
        return 2;
    }
    FILE *f = fopen(out, "wb");
    int ok = f && fwrite(ptx, 1, strlen(ptx), f) == strlen(ptx);
    if (f && fclose(f) != 0) ok = 0;
    free(ptx);
    if (!ok) {
        fprintf(stderr, "nvrtc_ptx: cannot write %s\n", out);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: nvrtc_ptx SOURCE.cu ARCH OUT.ptx\n");
        return 2;
    }
    char *src = read_file(argv[1]);
    if (!src) {
        fprintf(stderr, "nvrtc_ptx: cannot read %s\n", argv[1]);
        return 2;
    }
    char arch[64];
    snprintf(arch, sizeof arch, "--gpu-architecture=%s", argv[2]);
    /* the options the runtime gives NVRTC (runtime/cuda/cuda_nvrtc.c) */
    const char *opts[] = {arch, "--std=c++17", "-lineinfo"};
    nvrtcProgram prog;
    nvrtcResult r = nvrtcCreateProgram(&prog, src, argv[1], 0, NULL, NULL);
    free(src);
    if (r != NVRTC_SUCCESS) {
        fprintf(stderr, "nvrtc_ptx: nvrtcCreateProgram: %s\n", nvrtcGetErrorString(r));
        return 2;
    }
    r = nvrtcCompileProgram(prog, (int)(sizeof opts / sizeof opts[0]), opts);
    int said = print_log(prog, argv[1]);
    int rc = 0;
    if (r != NVRTC_SUCCESS) {
        fprintf(stderr, "nvrtc_ptx: %s: %s for %s\n", argv[1], nvrtcGetErrorString(r), argv[2]);
        rc = 1;
    } else {
        rc = write_ptx(prog, argv[3]);
        if (rc == 0 && said) rc = 1;
    }
    nvrtcDestroyProgram(&prog);
    return rc;
}
