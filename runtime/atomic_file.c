/* atomic_file.c: write a file so that readers (and a crash) see either the old or the new contents.
 *
 * What PATH is decides how it is written:
 * - a regular file, or nothing yet: atomic replacement. Write DIR/.NAME.nnc-tmp.PID next to it, fsync
 *   it, rename it over PATH, then fsync the directory so the rename itself is durable. Any failure before
 *   the rename removes the temporary and leaves PATH untouched. An existing file keeps its permission
 *   bits; a new one gets what fopen would give it (0666 & ~umask).
 * - a symlink (or a chain of them): the file it finally points to is replaced as above, with the
 *   temporary in THAT file's directory; the links stay links. A dangling link creates its target.
 * - a device, a FIFO, or a magic link under /proc (/dev/stdout, /dev/fd/N): written directly, without a
 *   temporary or a rename, because replacing /dev/null by a regular file would destroy it. Not atomic,
 *   and errors such as ENOSPC from /dev/full are reported like any other.
 * - a directory, or anything that cannot be opened for writing: an error naming PATH.
 * Stale temporaries: a process killed during a save (kill -9, power loss) leaves its .NAME.nnc-tmp.PID
 * behind. The next save of the same target removes those whose PID no longer names a live process.
 * What it does not do: lock against concurrent writers (the last rename wins, each file whole), keep the
 * old file's owner, or tell a live process in another PID namespace (or on another host, on a shared
 * file system) from a dead one: its temporary counts as stale.
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* open, fsync, fchmod, readlink, realpath, kill, dirent: strict C99 otherwise */
#endif
#include "nnc_runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define ATOMIC_MAX_LINKS 40   /* symlinks followed before giving up, as Linux's ELOOP limit */
#define ATOMIC_NAME_KEEP 200  /* bytes of NAME kept in a temporary's name, so it fits NAME_MAX (255) */
#define ATOMIC_TMP_TAG ".nnc-tmp."

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

static char *atomic_strndup_(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
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

/* ---- where PATH leads ------------------------------------------------------------------------ */

/* The directory part of `path` ("." or "/" when it has none), malloc'd. */
static char *atomic_dir_of_(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return atomic_strndup_(".", 1);
    return atomic_strndup_(path, slash == path ? 1 : (size_t)(slash - path));
}

/* A link's target, taken relative to the link's directory unless it is absolute; malloc'd. */
static char *atomic_follow_(const char *link, const struct stat *st)
{
    size_t cap = st->st_size > 0 && st->st_size < PATH_MAX ? (size_t)st->st_size + 1 : PATH_MAX;
    char *target = malloc(cap), *joined = NULL;
    const char *slash = strrchr(link, '/');
    ssize_t n = target ? readlink(link, target, cap) : -1;
    if (n < 0 || (size_t)n >= cap) {
        if (n >= 0)
            errno = ENAMETOOLONG;
        free(target);
        return NULL;
    }
    target[n] = 0;
    if (target[0] == '/' || !slash)
        return target;
    joined = malloc((size_t)(slash - link) + 1 + (size_t)n + 1);
    if (joined)
        sprintf(joined, "%.*s/%s", (int)(slash - link), link, target);
    free(target);
    return joined;
}

/* How PATH is written: replaced (*real is the file to replace, *old its stat when it exists), or
 * written directly (*real NULL). */
typedef struct AtomicTarget {
    char *real;
    int exists;
    struct stat old;
} AtomicTarget;

/* Whether the link `link` lies in /proc (the directory holding it, resolved, is under /proc): its target
 * is a kernel object ("pipe:[…]", an open file), not a path to replace. */
static int atomic_in_proc_(const char *link)
{
    char *dir = atomic_dir_of_(link), *real = dir ? realpath(dir, NULL) : NULL;
    int in = real && (strcmp(real, "/proc") == 0 || strncmp(real, "/proc/", 6) == 0);
    free(dir);
    free(real);
    return in;
}

/* Follows PATH's chain of symlinks to the regular file (or the missing name) at its end. A chain that
 * passes through /proc (/dev/stdout -> /proc/self/fd/1 -> …) is written directly. */
static int atomic_resolve_chain_(const char *path, AtomicTarget *t, char *err, size_t errlen)
{
    char *cur = atomic_strndup_(path, strlen(path));
    int e;
    for (int hops = 0; cur; hops++) {
        struct stat st;
        char *next;
        if (hops > ATOMIC_MAX_LINKS) {
            errno = ELOOP;
            break;
        }
        if (lstat(cur, &st) != 0) {
            if (errno != ENOENT)
                break;
            t->real = cur; /* a new file (or a dangling link's target) */
            return 0;
        }
        if (S_ISREG(st.st_mode)) {
            t->exists = 1;
            t->old = st;
            t->real = cur;
            return 0;
        }
        if (!S_ISLNK(st.st_mode)) {
            errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL; /* changed under us since the stat */
            break;
        }
        if (atomic_in_proc_(cur)) {
            free(cur);
            return 0; /* t->real stays NULL: direct */
        }
        next = atomic_follow_(cur, &st);
        free(cur);
        cur = next;
    }
    e = errno;
    free(cur);
    return fail_(err, errlen, "%s: cannot write: %s", path, strerror(e));
}

static int atomic_resolve_(const char *path, AtomicTarget *t, char *err, size_t errlen)
{
    struct stat st;
    memset(t, 0, sizeof *t);
    errno = 0;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return fail_(err, errlen, "%s: cannot write: it is a directory", path);
        if (!S_ISREG(st.st_mode))
            return 0; /* device, FIFO, socket: direct (a socket then fails to open, with its reason) */
    } else if (errno != ENOENT) {
        return fail_(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    }
    return atomic_resolve_chain_(path, t, err, errlen);
}

/* ---- direct writes ---------------------------------------------------------------------------- */

/* No O_CREAT: PATH exists (a device, a FIFO, /proc/self/fd/N); if it vanished meanwhile, that is an
 * error, not a new regular file. A FIFO blocks here until a reader opens it, as a shell's '>' does. */
static int atomic_write_direct_(const char *path, const void *data, size_t size, char *err, size_t errlen)
{
    struct stat st;
    int fd, e = 0;
    const char *step = NULL;
    do
        fd = open(path, O_WRONLY | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return fail_(err, errlen, "%s: cannot open for writing: %s", path, strerror(errno));
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ftruncate(fd, 0) != 0)
        step = "truncate";
    else if (atomic_write_all_(fd, data, size) != 0)
        step = "write";
    else if (S_ISREG(st.st_mode) && fsync(fd) != 0)
        step = "fsync";
    e = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        e = errno;
    }
    return step ? fail_(err, errlen, "%s: %s failed: %s", path, step, strerror(e)) : 0;
}

/* ---- temporaries ----------------------------------------------------------------------------- */

/* ".NAME.nnc-tmp." for the file at `real`: the prefix every temporary of that target has. NAME is cut
 * to ATOMIC_NAME_KEEP bytes (at a UTF-8 character boundary) so the whole name fits NAME_MAX. */
static char *atomic_tmp_prefix_(const char *real)
{
    const char *slash = strrchr(real, '/'), *name = slash ? slash + 1 : real;
    size_t n = strlen(name);
    char *p;
    if (n > ATOMIC_NAME_KEEP) {
        n = ATOMIC_NAME_KEEP;
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
            n--;
    }
    if (!(p = malloc(1 + n + sizeof ATOMIC_TMP_TAG)))
        return NULL;
    p[0] = '.';
    memcpy(p + 1, name, n);
    memcpy(p + 1 + n, ATOMIC_TMP_TAG, sizeof ATOMIC_TMP_TAG);
    return p;
}

/* The PID in a temporary's name after the prefix: "PID" or "PID-K"; 0 if it is not of that form. */
static long atomic_tmp_pid_(const char *rest)
{
    char *end;
    long pid;
    if (*rest < '1' || *rest > '9')
        return 0;
    errno = 0;
    pid = strtol(rest, &end, 10);
    if (errno || pid <= 0 || pid > INT_MAX)
        return 0;
    if (*end == '-' && end[1] >= '1' && end[1] <= '9') {
        for (end++; *end >= '0' && *end <= '9'; end++) {
        }
    }
    return *end ? 0 : pid;
}

/* Remove the temporaries of this target left by processes that are gone (kill(pid, 0) says ESRCH;
 * EPERM means alive, someone else's). Best effort: failures are ignored. */
static void atomic_remove_stale_(const char *dir, const char *prefix)
{
    size_t plen = strlen(prefix), dlen = strlen(dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        long pid;
        char *full;
        if (strncmp(e->d_name, prefix, plen) != 0 || !(pid = atomic_tmp_pid_(e->d_name + plen)))
            continue;
        if ((pid_t)pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        if ((full = malloc(dlen + 1 + strlen(e->d_name) + 1)) != NULL) {
            sprintf(full, "%s/%s", dir, e->d_name);
            unlink(full);
            free(full);
        }
    }
    closedir(d);
}

/* Create DIR/PREFIX PID (or PID-K when another thread of this process holds that name), exclusively.
 * *tmp receives the malloc'd path. */
static int atomic_create_tmp_(const char *dir, const char *prefix, mode_t mode, char **tmp)
{
    size_t cap = strlen(dir) + 1 + strlen(prefix) + 48;
    char *p = malloc(cap);
    int fd = -1;
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    for (int k = 0; k < 1000 && fd < 0; k++) {
        if (k == 0)
            snprintf(p, cap, "%s/%s%ld", dir, prefix, (long)getpid());
        else
            snprintf(p, cap, "%s/%s%ld-%d", dir, prefix, (long)getpid(), k);
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY, mode);
        if (fd < 0 && errno != EEXIST && errno != EINTR)
            break;
    }
    if (fd < 0) {
        int e = errno;
        free(p);
        errno = e;
        return -1;
    }
    *tmp = p;
    return fd;
}

/* fsync the directory, so the rename survives a crash; returns 0 or an errno value. Some file systems
 * cannot sync a directory (EINVAL); then there is nothing more to do, and it is not an error. */
static int atomic_sync_dir_(const char *dir)
{
    int fd = open(dir, O_RDONLY), e = 0;
    if (fd < 0)
        return errno;
    if (fsync(fd) != 0 && errno != EINVAL)
        e = errno;
    close(fd);
    return e;
}

/* ---- replacement ------------------------------------------------------------------------------ */

/* Everything up to and including the rename; on failure the temporary file is gone. */
static int atomic_replace_(const char *path, const AtomicTarget *t, const char *dir, const void *data,
                           size_t size, char *err, size_t errlen)
{
    const char *step = NULL;
    char *prefix = atomic_tmp_prefix_(t->real), *tmp = NULL;
    int e = 0, fd;
    if (!prefix)
        return fail_(err, errlen, "%s: out of memory", path);
    atomic_remove_stale_(dir, prefix);
    fd = atomic_create_tmp_(dir, prefix, 0666, &tmp);
    free(prefix);
    if (fd < 0)
        return fail_(err, errlen, "%s: cannot create a temporary file in %s: %s", path, dir, strerror(errno));
    if (t->exists && fchmod(fd, t->old.st_mode & 0777) != 0) /* not set-id bits: new contents */
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
    if (!step && rename(tmp, t->real) != 0) {
        step = "rename";
        e = errno;
    }
    if (step) {
        unlink(tmp);
        fail_(err, errlen, "%s: %s of temporary file %s failed: %s", path, step, tmp, strerror(e));
    }
    free(tmp);
    return step ? -1 : 0;
}

int nnc_write_file_atomic(const char *path, const void *data, size_t size, char *err, size_t errlen)
{
    AtomicTarget t;
    char *dir;
    int rc, e;
    if (!path || !path[0] || path[strlen(path) - 1] == '/')
        return fail_(err, errlen, "%s: not a file name", path ? path : "(null)");
    if (atomic_resolve_(path, &t, err, errlen) != 0)
        return -1;
    if (!t.real)
        return atomic_write_direct_(path, data, size, err, errlen);
    if (!(dir = atomic_dir_of_(t.real))) {
        free(t.real);
        return fail_(err, errlen, "%s: out of memory", path);
    }
    rc = atomic_replace_(path, &t, dir, data, size, err, errlen);
    if (rc == 0 && (e = atomic_sync_dir_(dir)) != 0)
        rc = fail_(err, errlen, "%s: written, but syncing its directory failed: %s", path, strerror(e));
    free(dir);
    free(t.real);
    return rc;
}
