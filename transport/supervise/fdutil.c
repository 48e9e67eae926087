#include "transport/supervise/fdutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

int64_t gp__sup_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gp__sup_left_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - gp__sup_now_ms();
    if (left <= 0)
        return 0;
    return left > 1000000 ? 1000000 : (int)left;
}

int gp__sup_set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return want == fl ? 0 : fcntl(fd, F_SETFL, want);
}

int gp__sup_set_cloexec(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0)
        return -1;
    int want = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
    return want == fl ? 0 : fcntl(fd, F_SETFD, want);
}

ssize_t gp__sup_write_nosigpipe(int fd, const void *buf, size_t n)
{
    /* A process-wide SIG_IGN would change the host's own behaviour; blocking
     * the signal only in this thread, only for this write, does not. */
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);

    ssize_t r;
    do
        r = write(fd, buf, n);
    while (r < 0 && errno == EINTR);
    int e = errno;

    if (r < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
}

static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, gp__sup_left_ms(deadline_ms));
        if (r > 0)
            return 0;
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

int gp__sup_read_full(int fd, void *buf, size_t n, int64_t deadline_ms, size_t *got)
{
    size_t done = 0;
    int rc = 0;
    while (done < n) {
        if (wait_fd(fd, POLLIN, deadline_ms) < 0) {
            rc = -1;
            break;
        }
        ssize_t r = read(fd, (char *)buf + done, n - done);
        if (r > 0) {
            done += (size_t)r;
        } else if (r == 0) {
            errno = EPIPE;
            rc = -1;
            break;
        } else if (errno != EINTR && errno != EAGAIN) {
            rc = -1;
            break;
        }
    }
    if (got)
        *got = done;
    return rc;
}

int gp__sup_write_full(int fd, const void *buf, size_t n, int64_t deadline_ms, size_t *put)
{
    size_t done = 0;
    int rc = 0;
    while (done < n) {
        if (wait_fd(fd, POLLOUT, deadline_ms) < 0) {
            rc = -1;
            break;
        }
        ssize_t r = gp__sup_write_nosigpipe(fd, (const char *)buf + done, n - done);
        if (r > 0)
            done += (size_t)r;
        else if (r < 0 && errno != EAGAIN) {
            rc = -1;
            break;
        }
    }
    if (put)
        *put = done;
    return rc;
}

void gp__sup_close(int *fd)
{
    if (*fd >= 0) {
        int e = errno;
        close(*fd);
        errno = e;
        *fd = -1;
    }
}
