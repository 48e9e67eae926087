/* Unix socket listeners as go-plugin makes them on Linux: a fresh
 * "plugin<random>" name in the socket dir, optional group + 0660. */
#include "transport/net/net.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "transport/base/errf.h"
#include "transport/net/errf.h"

void gp__net_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp__verrf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint32_t random_u32(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    /* No entropy yet (early boot): a clash is caught by lstat below. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() * 2654435761u;
}

gp_err gp__net_unix_path(const char *dir, char *out, size_t cap, char *err, size_t errlen)
{
    gp__net_errf(err, errlen, "%s", "");
    if (!out || cap == 0) {
        gp__net_errf(err, errlen, "gp__net_unix_path: no output buffer");
        return GP_EINVAL;
    }
    out[0] = 0;
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";

    /* The host dials this path from its own working directory, so a
     * relative directory is made absolute here. */
    char base[4096];
    int bn;
    if (dir[0] == '/') {
        bn = snprintf(base, sizeof base, "%s", dir);
    } else {
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd)) {
            gp__net_errf(err, errlen, "unix socket dir %s: cannot read the current directory: %s",
                         dir, strerror(errno));
            return GP_ESYS;
        }
        bn = snprintf(base, sizeof base, "%s/%s", cwd, dir);
    }
    if (bn < 0 || (size_t)bn >= sizeof base) {
        gp__net_errf(err, errlen, "unix socket dir %s: path too long", dir);
        return GP_EINVAL;
    }
    size_t bl = strlen(base);
    while (bl > 1 && base[bl - 1] == '/')
        base[--bl] = 0;

    struct stat st;
    if (stat(base, &st) != 0) {
        gp__net_errf(err, errlen, "unix socket dir %s: %s", base, strerror(errno));
        return GP_EINVAL;
    }
    if (!S_ISDIR(st.st_mode)) {
        gp__net_errf(err, errlen, "unix socket dir %s: not a directory", base);
        return GP_EINVAL;
    }
    for (int tries = 0; tries < 100; tries++) {
        char path[4200];
        int n =
            snprintf(path, sizeof path, "%s/plugin%u", bl == 1 ? "" : base, (unsigned)random_u32());
        if (n < 0 || (size_t)n > GP_NET_UNIX_PATH_MAX || (size_t)n >= cap) {
            gp__net_errf(err, errlen,
                         "unix socket path %s is %d bytes; expected at most %u (set "
                         "PLUGIN_UNIX_SOCKET_DIR or TMPDIR to a shorter directory)",
                         path, n, GP_NET_UNIX_PATH_MAX);
            return GP_EINVAL;
        }
        if (lstat(path, &st) != 0 && errno == ENOENT) {
            memcpy(out, path, (size_t)n + 1);
            return GP_OK;
        }
    }
    gp__net_errf(err, errlen, "unix socket dir %s: no unused plugin<N> name after 100 tries", base);
    return GP_ESYS;
}

static gp_err resolve_group(const char *group, gid_t *gid, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(group, &end, 10);
    if (group[0] >= '0' && group[0] <= '9' && !*end && !errno && v <= (gid_t)-1 - 1) {
        *gid = (gid_t)v;
        return GP_OK;
    }
    size_t bufsize = 1024;
    for (;;) {
        char *buf = malloc(bufsize);
        if (!buf) {
            gp__net_errf(err, errlen, "out of memory looking up group %s", group);
            return GP_ENOMEM;
        }
        struct group gr, *res = NULL;
        int r = getgrnam_r(group, &gr, buf, bufsize, &res);
        if (r == ERANGE && bufsize < (1u << 20)) {
            free(buf);
            bufsize *= 4;
            continue;
        }
        if (r == 0 && res) {
            *gid = gr.gr_gid;
            free(buf);
            return GP_OK;
        }
        free(buf);
        gp__net_errf(err, errlen,
                     "unknown group \"%s\" for the plugin's unix socket "
                     "(PLUGIN_UNIX_SOCKET_GROUP): %s",
                     group, r ? strerror(r) : "no such group");
        return GP_EINVAL;
    }
}

gp_err gp__net_unix_set_group(const char *path, const char *group, char *err, size_t errlen)
{
    gp__net_errf(err, errlen, "%s", "");
    if (!path || !group || !*group) {
        gp__net_errf(err, errlen, "gp__net_unix_set_group: no path or group");
        return GP_EINVAL;
    }
    gid_t gid;
    gp_err e = resolve_group(group, &gid, err, errlen);
    if (e)
        return e;
    if (chown(path, (uid_t)-1, gid) != 0) {
        gp__net_errf(err, errlen, "chown unix socket %s to group %s: %s", path, group,
                     strerror(errno));
        return GP_ESYS;
    }
    if (chmod(path, 0660) != 0) {
        gp__net_errf(err, errlen, "chmod 0660 unix socket %s: %s", path, strerror(errno));
        return GP_ESYS;
    }
    return GP_OK;
}

gp_err gp__net_listen_unix(const char *path, const char *group, int *fd, char *err, size_t errlen)
{
    gp__net_errf(err, errlen, "%s", "");
    if (!path || !fd) {
        gp__net_errf(err, errlen, "gp__net_listen_unix: NULL argument");
        return GP_EINVAL;
    }
    *fd = -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n == 0 || n > GP_NET_UNIX_PATH_MAX) {
        gp__net_errf(err, errlen, "listen unix %s: path is %zu bytes; expected 1..%u", path, n,
                     GP_NET_UNIX_PATH_MAX);
        return GP_EINVAL;
    }
    memcpy(sa.sun_path, path, n + 1);

    /* Only a leftover socket is removed; any other file is someone's data. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            gp__net_errf(err, errlen, "listen unix %s: the path exists and is not a socket", path);
            return GP_EINVAL;
        }
        unlink(path);
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        gp__net_errf(err, errlen, "listen unix %s: socket: %s", path, strerror(errno));
        return GP_ESYS;
    }
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        gp__net_errf(err, errlen, "listen unix %s: bind: %s", path, strerror(errno));
        close(s);
        return GP_ESYS;
    }
    if (listen(s, SOMAXCONN) != 0) {
        gp__net_errf(err, errlen, "listen unix %s: %s", path, strerror(errno));
        close(s);
        unlink(path);
        return GP_ESYS;
    }
    if (group && *group) {
        gp_err e = gp__net_unix_set_group(path, group, err, errlen);
        if (e) {
            close(s);
            unlink(path);
            return e;
        }
    }
    *fd = s;
    return GP_OK;
}
