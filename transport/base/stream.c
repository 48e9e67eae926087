/* The gp__stream over a connected socket: poll for readiness, then one
 * non-blocking recv or sendmsg, so the fd may be blocking or not and a
 * shutdown from another thread wakes a waiting call (poll sees the hang-up). */
#include "transport/base/stream.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
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
    /* The read spin's record (spin_read): misses in a row, and how many
     * reads go straight to poll before the next try. Relaxed: a hint. */
    atomic_int spin_misses, spin_skip;
} fd_stream;

/* How long a read that finds nothing tries again before it sleeps in
 * poll, unless GOPLUGIN_READ_SPIN_US says otherwise: a reply on its way
 * often comes sooner than a sleep and a wake-up on another CPU cost
 * (docs/netrpc.md, "Reading before sleeping"). */
#define SPIN_NS 20000
/* After this many misses in a row a stream stops trying for a while
 * (2, 4, ... up to SPIN_SKIP_MAX reads): an idle peer, or one on the same
 * CPU that cannot answer while we try, costs little. */
#define SPIN_MISSES_OK 3
/* A yield that took longer ran another thread: the CPU is wanted, and a
 * spin would take it from work that is not ours to delay. */
#define YIELD_RAN_OTHERS_NS 5000
#define SPIN_SKIP_MAX 64

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

/* On one CPU a spin only delays the peer it waits for (yielding lets it
 * run, but callers yielding to each other cost more than they save). */
int64_t gp__stream_read_spin_ns(void)
{
    static _Atomic int64_t known = -1;
    int64_t ns = atomic_load_explicit(&known, memory_order_relaxed);
    if (ns >= 0)
        return ns;
    ns = SPIN_NS;
    const char *e = getenv("GOPLUGIN_READ_SPIN_US");
    if (e && *e) {
        char *end;
        long us = strtol(e, &end, 10);
        if (*end == '\0' && us >= 0)
            ns = (us > 1000 ? 1000 : us) * 1000;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2)
        ns = 0;
    atomic_store_explicit(&known, ns, memory_order_relaxed);
    return ns;
}

/* Before a read sleeps: tries recv again for gp__stream_read_spin_ns(), yielding the
 * CPU between tries (on one CPU, the peer runs then and answers). 1 with
 * *n bytes; 0 for nothing (or EOF, or an error: poll's path sees them). */
static int spin_read(fd_stream *s, void *buf, size_t cap, size_t *n)
{
    int64_t spin_ns = gp__stream_read_spin_ns();
    if (spin_ns == 0)
        return 0;
    int skip = atomic_load_explicit(&s->spin_skip, memory_order_relaxed);
    if (skip > 0) {
        atomic_store_explicit(&s->spin_skip, skip - 1, memory_order_relaxed);
        return 0;
    }
    int64_t now = now_ns(), until = now + spin_ns;
    do {
        ssize_t k = recv(s->fd, buf, cap, MSG_DONTWAIT);
        if (k > 0) {
            atomic_store_explicit(&s->spin_misses, 0, memory_order_relaxed);
            *n = (size_t)k;
            return 1;
        }
        if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return 0;
        int64_t before = now_ns();
        sched_yield();
        now = now_ns();
        if (now - before > YIELD_RAN_OTHERS_NS)
            break; /* another thread wanted this CPU: let it have it, and sleep */
    } while (now < until && !is_shut(s));
    int m = atomic_load_explicit(&s->spin_misses, memory_order_relaxed) + 1;
    atomic_store_explicit(&s->spin_misses, m, memory_order_relaxed);
    if (m >= SPIN_MISSES_OK) {
        int sh = m - SPIN_MISSES_OK + 1;
        atomic_store_explicit(&s->spin_skip, sh >= 6 ? SPIN_SKIP_MAX : 1 << sh,
                              memory_order_relaxed);
    }
    return 0;
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
    if (timeout_ms != 0 && !is_shut(s) && spin_read(s, buf, cap, n))
        return GP_OK;
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
    atomic_init(&s->spin_misses, 0);
    atomic_init(&s->spin_skip, 0);
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
