/* atomic_file.c: replace a file so that readers (and a crash) see either the old or the new contents.
 *
 * Rule: write PATH.tmp.XXXXXX in the same directory (rename is only atomic within one file system),
 * fsync it, rename it over PATH, then fsync the directory so the rename itself is durable. Any failure
 * before the rename removes the temporary file and leaves PATH untouched.
 * What it does not do: lock against concurrent writers (the last rename wins, each file whole), follow
 * PATH if it is a symlink (the link is replaced by a regular file), or keep PATH's old mode and owner
 * (the new file gets the mode fopen would give it).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkstemp, fsync, fchmod, umask: the library is otherwise strict C99 */
#endif
#include "nnc_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail_(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* write() may write less than asked, or be interrupted; large sizes go in 1 GiB pieces because
 * Linux caps a single write near 2 GiB. */
static int atomic_write_all_(int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size < (1u << 30) ? size : (1u << 30));
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0)
            errno = EIO; /* no progress and no reason given: do not spin */
        if (w <= 0)
            return -1;
        p += w;
        size -= (size_t)w;
    }
    return 0;
}

/* mkstemp creates the file 0600; a weights or output file should get what fopen would give it,
 * 0666 & ~umask. umask can only be read by setting it, so it is set back at once; another thread
 * creating a file in between gets the common default 022 rather than something permissive. */
static int atomic_fix_mode_(int fd)
{
    mode_t mask = umask(022);
    umask(mask);
    return fchmod(fd, 0666 & ~mask);
}

/* fsync the directory holding `path`, so the rename survives a crash; returns 0 or an errno value.
 * Some file systems cannot sync a directory (EINVAL); then there is nothing more to do, and it is not
 * an error. */
static int atomic_sync_dir_(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *src = !slash ? "." : slash == path ? "/" : path;
    size_t n = !slash || slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    int fd, e = 0;
    if (!dir)
        return ENOMEM;
    memcpy(dir, src, n);
    dir[n] = 0;
    fd = open(dir, O_RDONLY);
    e = fd < 0 ? errno : 0;
    free(dir);
    if (fd < 0)
        return e;
    if (fsync(fd) != 0 && errno != EINVAL)
        e = errno;
    close(fd);
    return e;
}

/* Everything up to and including the rename; on failure the temporary file is gone. */
static int atomic_replace_(const char *path, char *tmp, const void *data, size_t size, char *err,
                           size_t errlen)
{
    const char *step = NULL;
    int e = 0, fd = mkstemp(tmp);
    if (fd < 0)
        return fail_(err, errlen, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
    if (atomic_fix_mode_(fd) != 0)
        step = "chmod";
    else if (atomic_write_all_(fd, data, size) != 0)
        step = "write";
    else if (fsync(fd) != 0)
        step = "fsync";
    e = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        e = errno;
    }
    if (!step && rename(tmp, path) != 0) {
        step = "rename";
        e = errno;
    }
    if (step) {
        unlink(tmp);
        return fail_(err, errlen, "%s: %s of temporary file %s failed: %s", path, step, tmp, strerror(e));
    }
    return 0;
}

int nnc_write_file_atomic(const char *path, const void *data, size_t size, char *err, size_t errlen)
{
    static const char suffix[] = ".tmp.XXXXXX";
    size_t n = strlen(path);
    char *tmp;
    int rc, e;
    if (n == 0 || path[n - 1] == '/')
        return fail_(err, errlen, "%s: not a file name", path);
    if (!(tmp = malloc(n + sizeof suffix)))
        return fail_(err, errlen, "%s: out of memory", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, suffix, sizeof suffix);
    rc = atomic_replace_(path, tmp, data, size, err, errlen);
    free(tmp);
    if (rc == 0 && (e = atomic_sync_dir_(path)) != 0)
        return fail_(err, errlen, "%s: written, but syncing its directory failed: %s", path, strerror(e));
    return rc;
}
