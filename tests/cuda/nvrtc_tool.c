/* nvrtc_tool.c: nnc_cuda_nvrtc, the runtime's NVRTC compile as a program, for tests and for reading what a
 * kernel source becomes:
 *     nnc_cuda_nvrtc ARCH SOURCE.cu OUTPUT
 * compiles SOURCE.cu as the runtime does at M_init (same NVRTC search, same options) for ARCH ("sm_90": a
 * cubin; "compute_90": PTX, which `ptxas -arch=sm_90 -v` assembles and reports spills for) and writes OUTPUT.
 * Exit 0, or 1 with the runtime's message ("nnc_cuda: NVRTC: k3_dense: m.cu(12): error: ..."), or 77 when no
 * NVRTC can be loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc_cuda_internal.h"

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t n = 0, cap = 0, got;
    if (!f)
        return NULL;
    do {
        if (n + 4096 + 1 > cap) {
            char *more = realloc(text, cap = 2 * cap + 4096 + 1);
            if (!more) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = more;
        }
        got = fread(text + n, 1, 4096, f);
        n += got;
    } while (got > 0);
    fclose(f);
    text[n] = 0;
    return text;
}

int main(int argc, char **argv) {
    char err[NNC_CUDA_ERRLEN], name[128];
    int major, minor;
    nnc_cuda_binary bin;
    if (argc != 4) {
        fprintf(stderr, "usage: nnc_cuda_nvrtc sm_XY|compute_XY SOURCE.cu OUTPUT\n");
        return 2;
    }
    if (nnc_cuda_nvrtc_version(&major, &minor, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 77;
    }
    char *source = read_all(argv[2]);
    if (!source) {
        fprintf(stderr, "nnc_cuda_nvrtc: cannot read %s\n", argv[2]);
        return 1;
    }
    /* the program's name: the file's, without directory and extension */
    const char *base = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(base, "."), base);
    if (nnc_cuda_nvrtc_compile(source, name, argv[1], &bin, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        free(source);
        return 1;
    }
    free(source);
    FILE *out = fopen(argv[3], "wb");
    size_t size = bin.ptx ? bin.size - 1 : bin.size; /* PTX without its terminating zero */
    int ok = out && fwrite(bin.data, 1, size, out) == size;
    ok = out && fclose(out) == 0 && ok;
    free(bin.data);
    if (!ok) {
        fprintf(stderr, "nnc_cuda_nvrtc: cannot write %s\n", argv[3]);
        return 1;
    }
    printf("%s: %zu bytes of %s for %s (NVRTC %d.%d)\n", argv[3], size, bin.ptx ? "PTX" : "cubin", argv[1], major,
           minor);
    return 0;
}
