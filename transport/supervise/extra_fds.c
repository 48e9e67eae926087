/* gp_extra_fds_apply: runs between fork and exec, so only async-signal-safe
 * calls and no allocation. */
#include <goplugin/supervise.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define MAX_EXTRA 64

int gp_extra_fds_apply(const gp_extra_fd *fds, size_t n)
{
    if (n > MAX_EXTRA) {
        errno = EINVAL;
        return -1;
    }
    /* First move every source above all targets and sources, so that a
     * dup2 onto a target can never clobber a source still to be moved. */
    int floor = 3;
    for (size_t i = 0; i < n; i++) {
        if (fds[i].fd < 0 || fds[i].child_fd < 0) {
            errno = EBADF;
            return -1;
        }
        if (fds[i].fd >= floor)
            floor = fds[i].fd + 1;
        if (fds[i].child_fd >= floor)
            floor = fds[i].child_fd + 1;
    }
    int tmp[MAX_EXTRA];
    for (size_t i = 0; i < n; i++) {
        tmp[i] = fcntl(fds[i].fd, F_DUPFD_CLOEXEC, floor);
        if (tmp[i] < 0) {
            int e = errno;
            while (i-- > 0)
                close(tmp[i]);
            errno = e;
            return -1;
        }
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        /* dup2 leaves the new descriptor without FD_CLOEXEC. */
        if (rc == 0 && dup2(tmp[i], fds[i].child_fd) < 0)
            rc = -1;
    }
    int e = errno;
    for (size_t i = 0; i < n; i++)
        close(tmp[i]);
    errno = e;
    return rc;
}
