/* The gp__stream over a connected socket: poll for readiness, then one
 * non-blocking recv or sendmsg, so the fd may be blocking or not and a
 * shutdown from another thread wakes a waiting call (poll sees the hang-up). */
#include "transport/base/stream.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct fd_stream {
    gp__stream base; /* first: the ops receive this pointer */
    int fd;
    atomic_int shut; /* shutdown was called: calls fail with GP_ECLOSED */
} fd_stream;

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The poll timeout for a retry: what is left of timeout_ms since start
 * (rounded up, so poll never returns early), 0 once it has passed. */
static int ms_left(int timeout_ms, int64_t start)
{
    if (timeout_ms <= 0)
        return timeout_ms;
    int64_t left = start + (int64_t)timeout_ms * 1000000 - now_ns();
    if (left <= 0)
        return 0;
    left = (left + 999999) / 1000000;
    return left > INT_MAX ? INT_MAX : (int)left;
}

static int is_shut(fd_stream *s)
{
    return atomic_load_explicit(&s->shut, memory_order_relaxed);
}

static gp_err shut_error(const char *op, char *why, size_t whylen)
{
    say(why, whylen, "%s: connection shut down locally", op);
    return GP_ECLOSED;
}

static gp_err fd_read(gp__stream *st, void *buf, size_t cap, int timeout_ms, size_t *n, char *why,
                      size_t whylen)
{
    fd_stream *s = (fd_stream *)st;
    *n = 0;
    if (cap == 0) {
        say(why, whylen, "read: zero-length buffer");
        return GP_EINVAL;
    }
    /* The clock is read only when a wait has to be resumed. */
    int64_t start = timeout_ms > 0 ? now_ns() : 0;
    int ms = timeout_ms;
    for (;;) {
        if (is_shut(s))
            return shut_error("read", why, whylen);
        struct pollfd p = {s->fd, POLLIN, 0};
        int r = poll(&p, 1, ms);
        if (r == 0) {
            say(why, whylen, "read: nothing within %d ms", timeout_ms);
            return GP_ETIMEDOUT;
        }
        if (r > 0) {
            ssize_t k = recv(s->fd, buf, cap, MSG_DONTWAIT);
            if (k > 0) {
                *n = (size_t)k;
                return GP_OK;
            }
            if (k == 0) /* the peer's end, or our own shutdown */
                return is_shut(s) ? shut_error("read", why, whylen) : GP_OK;
            if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
                if (is_shut(s))
                    return shut_error("read", why, whylen);
                say(why, whylen, "%s", strerror(errno));
                return GP_EIO;
            }
        } else if (errno != EINTR) {
            say(why, whylen, "poll: %s", strerror(errno));
            return GP_EIO;
        }
        ms = ms_left(timeout_ms, start);
    }
}

static gp_err fd_writev(gp__stream *st, struct iovec *iov, int iovcnt, int timeout_ms, char *why,
                        size_t whylen)
{
    fd_stream *s = (fd_stream *)st;
    int64_t start = -1;
    while (iovcnt > 0) {
        if (is_shut(s))
            return shut_error("write", why, whylen);
        struct msghdr m = {0};
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)iovcnt;
        ssize_t k = sendmsg(s->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                if (is_shut(s))
                    return shut_error("write", why, whylen);
                say(why, whylen, "%s", strerror(errno));
                return GP_EIO;
            }
            /* The socket is full: wait for room, within what is left. */
            if (start < 0 && timeout_ms > 0)
                start = now_ns();
            int ms = ms_left(timeout_ms, start);
            if (ms == 0) {
                say(why, whylen, "write: timed out after %d ms", timeout_ms);
                return GP_ETIMEDOUT;
            }
            struct pollfd p = {s->fd, POLLOUT, 0};
            if (poll(&p, 1, ms) < 0 && errno != EINTR) {
                say(why, whylen, "poll: %s", strerror(errno));
                return GP_EIO;
            }
            continue;
        }
        size_t done = (size_t)k;
        while (iovcnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return GP_OK;
}

static void fd_close_write(gp__stream *st)
{
    shutdown(((fd_stream *)st)->fd, SHUT_WR);
}

static void fd_shutdown(gp__stream *st)
{
    fd_stream *s = (fd_stream *)st;
    if (!atomic_exchange(&s->shut, 1))
        shutdown(s->fd, SHUT_RDWR);
}

static void fd_close(gp__stream *st)
{
    fd_stream *s = (fd_stream *)st;
    close(s->fd);
    free(s);
}

static const gp__stream_ops fd_ops = {
    .read = fd_read,
    .writev = fd_writev,
    .close_write = fd_close_write,
    .shutdown = fd_shutdown,
    .close = fd_close,
};

gp_err gp__stream_fd_new(int fd, gp__stream **out)
{
    *out = NULL;
    if (fd < 0)
        return GP_EINVAL;
    fd_stream *s = calloc(1, sizeof *s);
    if (!s)
        return GP_ENOMEM;
    s->base.ops = &fd_ops;
    s->fd = fd;
    atomic_init(&s->shut, 0);
    *out = &s->base;
    return GP_OK;
}

int gp__stream_fd_release(gp__stream *st)
{
    if (!st || st->ops != &fd_ops)
        return -1;
    fd_stream *s = (fd_stream *)st;
    int fd = s->fd;
    free(s);
    return fd;
}
