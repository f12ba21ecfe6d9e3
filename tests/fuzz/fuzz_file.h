/* fuzz_file.h: for the reader fuzz targets: the readers take a path, so each input is written to an
 * in-memory file (memfd) and read back through /proc/self/fd/N. No disk I/O, one file per process.
 * What it does not do: test the path handling of the readers (names, extensions, missing files). */
#ifndef NNC_FUZZ_FILE_H
#define NNC_FUZZ_FILE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The path of a memfd holding exactly data[0..size); the same path every call. */
static const char *fuzz_file_path(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("nnc_fuzz", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz_file_path: write");
        abort();
    }
    return path;
}

#endif
