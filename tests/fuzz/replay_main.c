/* replay_main.c: main() for the fuzz targets built without libFuzzer (any compiler, the default build), so
 * that ctest replays the corpora and every crash reproducer through them (docs/testing.md):
 *
 *   nnc_fuzz_replay_TARGET FILE|DIR...     each file, and each regular file of each directory, once
 *
 * Prints how many inputs ran. A crash, an abort (NNC_ASSERT, the targets' own checks) or a hang fails the
 * test; in a sanitizer build (NNC_SANITIZE) so does a sanitizer report.
 * What it does not do: mutate inputs (that is libFuzzer's job, with -DNNC_FUZZ=ON). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file_(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) return -1;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int cmp_(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The regular files of a directory in name order, so that a run is reproducible. */
static int replay_dir_(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file_(path)) rc = -1;
            else (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0, rc = 0;
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue; /* a crashes/TARGET folder that is not there yet */
        if (S_ISDIR(st.st_mode) ? replay_dir_(argv[i], &count) : replay_file_(argv[i])) rc = 1;
        else if (!S_ISDIR(st.st_mode)) count++;
    }
    printf("%s: %d inputs replayed without a crash\n", argv[0], count);
    return rc;
}
