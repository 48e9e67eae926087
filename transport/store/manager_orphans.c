/* Plugins an earlier manager launched but never published: with live
 * restore a plugin is launched detached, so a manager killed between the
 * launch and the run file leaves a process nobody knows of. Every launch
 * carries GP_MANAGER_ROOT=<root> in its environment; here any process that
 * runs a blob of this root, carries that mark, and is named by no run file
 * is stopped (SIGTERM, the grace period, SIGKILL), unless it also carries
 * the calling manager's own mark: a launch of this manager whose run file
 * is not written yet (a restart under way while restore runs). A pidfd is opened
 * before the checks, so a pid reused meanwhile is never signalled. */
#include "transport/store/manager_orphans.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ENVIRON_MAX (1u << 20)

static int pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_signal(int fd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* Does /proc/PID/environ hold the entry `mark` ("KEY=VALUE")? */
static bool has_mark(pid_t pid, const char *mark)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char *buf = malloc(ENVIRON_MAX + 1);
    size_t len = 0;
    ssize_t got = 0;
    while (buf && len < ENVIRON_MAX && (got = read(fd, buf + len, ENVIRON_MAX - len)) > 0)
        len += (size_t)got;
    close(fd);
    bool found = false;
    size_t mlen = strlen(mark);
    for (size_t i = 0; buf && i < len;) {
        size_t n = strnlen(buf + i, len - i);
        if (n == mlen && memcmp(buf + i, mark, mlen) == 0)
            found = true;
        i += n + 1;
    }
    free(buf);
    return found;
}

static bool exe_under(pid_t pid, const char *prefix)
{
    char path[64], exe[4096];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    return strncmp(exe, prefix, strlen(prefix)) == 0;
}

static bool known(pid_t pid, const pid_t *published, size_t npub)
{
    for (size_t i = 0; i < npub; i++)
        if (published[i] == pid)
            return true;
    return false;
}

/* SIGTERM, then SIGKILL once grace_ms pass; through the pidfd. */
static void stop(int fd, int grace_ms)
{
    if (pidfd_signal(fd, SIGTERM) != 0)
        return;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, grace_ms) <= 0)
        pidfd_signal(fd, SIGKILL);
}

size_t gp__manager_stop_orphans(const char *blob_dir, const char *mark, const char *own_mark,
                                const pid_t *published, size_t npub, int grace_ms,
                                gp__orphan_fn report, void *ctx)
{
    char prefix[4096];
    snprintf(prefix, sizeof prefix, "%s/", blob_dir);
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t stopped = 0;
    pid_t self = getpid();
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        if (*end || v <= 0 || (pid_t)v == self || known((pid_t)v, published, npub))
            continue;
        pid_t pid = (pid_t)v;
        int fd = pidfd_open(pid);
        if (fd < 0)
            continue; /* gone, or no pidfd: leave it rather than risk a reused pid */
        if (exe_under(pid, prefix) && has_mark(pid, mark) &&
            !(own_mark && has_mark(pid, own_mark))) {
            if (report)
                report(ctx, pid);
            stop(fd, grace_ms);
            stopped++;
        }
        close(fd);
    }
    closedir(d);
    return stopped;
}
