/* Disk helpers for the store: atomic writes, directory fsync, removal,
 * random ids, and the crash points the crash tests kill at. */
#include "transport/store/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- crash points ---- */

static atomic_long crash_at = -1; /* -1: not read yet; 0: off */
static atomic_long crash_seen;

void gp__store_crash_point(const char *where)
{
    long at = atomic_load_explicit(&crash_at, memory_order_relaxed);
    if (at < 0) {
        const char *e = getenv("GP_STORE_CRASH_AT");
        at = e ? strtol(e, NULL, 10) : 0;
        atomic_store(&crash_at, at > 0 ? at : 0);
    }
    long n = atomic_fetch_add(&crash_seen, 1) + 1;
    const char *trace = getenv("GP_STORE_CRASH_TRACE");
    if (trace && trace[0] == '1')
        fprintf(stderr, "store crash point %ld: %s\n", n, where);
    if (at > 0 && n == at)
        raise(SIGKILL);
}

/* ---- files ---- */

int gp__store_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_fd_sync(int fd, const char *data, size_t len)
{
    int rc = write_all(fd, data, len) == 0 && fsync(fd) == 0 ? 0 : -1;
    int saved = errno;
    if (close(fd) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

int gp__store_write_new(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    if (write_fd_sync(fd, data, len) != 0) {
        int saved = errno;
        unlink(path);
        errno = saved;
        return -1;
    }
    return 0;
}

int gp__store_write_atomic(const char *dir, const char *name, const char *data, size_t len,
                           mode_t mode)
{
    char tmp[4096], dst[4096];
    if (snprintf(tmp, sizeof tmp, "%s/" GP__STORE_TMP_PREFIX "%s-XXXXXX", dir, name) >=
            (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) != 0 || write_fd_sync(fd, data, len) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    gp__store_crash_point("record temp file written");
    if (rename(tmp, dst) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    gp__store_crash_point("record renamed into place");
    return gp__store_fsync_dir(dir);
}

int gp__store_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    int rc = 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            errno = ENAMETOOLONG;
            rc = -1;
            continue;
        }
        struct stat sb;
        if (lstat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode) ? gp__store_rmtree(path) : unlink(path)) {
            if (errno != ENOENT)
                rc = -1;
        }
        gp__store_crash_point("removing: one entry deleted");
    }
    closedir(d);
    if (rmdir(dir) != 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

int gp__store_read_file(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    struct stat sb;
    int bad = fstat(fd, &sb) != 0 ? errno : !S_ISREG(sb.st_mode) ? EINVAL : 0;
    if (bad) {
        close(fd);
        errno = bad;
        return -1;
    }
    char *buf = malloc(max + 2);
    size_t n = 0;
    int rc = buf ? 0 : -1;
    while (rc == 0) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -1;
        else if (r == 0)
            break;
        else if ((n += (size_t)r) > max) {
            errno = EFBIG;
            rc = -1;
        }
    }
    int saved = errno;
    close(fd);
    if (rc != 0) {
        free(buf);
        errno = saved;
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

void gp__store_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int gp__store_random_id(char out[65])
{
    uint8_t b[32];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t r = getrandom(b + got, sizeof b - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    gp__store_hex(b, sizeof b, out);
    return 0;
}
