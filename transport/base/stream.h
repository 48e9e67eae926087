/* Internal: one byte stream interface for every layer that moves bytes.
 *
 * A connected socket, a TLS session over it, and a yamux stream inside a
 * session all look the same to whoever reads and writes them: the yamux
 * session runs over a socket or a TLS stream, and net/rpc runs over a
 * yamux stream (or an in-memory stream in its fuzz target). An
 * implementation embeds `gp__stream` as its first member and points `ops`
 * at a static table; the calls below are one indirect call each.
 *
 * Timeouts: timeout_ms < 0 waits forever, 0 does not wait.
 * Words: every `why` may be NULL (whylen 0); on an error it gets a short
 * sentence from the layer that failed ("Connection reset by peer", "tls:
 * read: ..."), without the caller's prefix.
 * Threads: one thread may read while another writes; shutdown may come
 * from any thread at any time; close only when nothing else runs. */
#ifndef GP_BASE_STREAM_H
#define GP_BASE_STREAM_H

#include <goplugin/err.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct gp__stream gp__stream;

typedef struct gp__stream_ops {
    /* Up to cap (> 0) bytes. GP_OK with *n > 0; GP_OK with *n == 0 is the
     * peer's clean end. GP_ETIMEDOUT when nothing came in time; GP_ECLOSED
     * after shutdown (or a reset); other errors as the layer has them. */
    gp_err (*read)(gp__stream *s, void *buf, size_t cap, int timeout_ms, size_t *n, char *why,
                   size_t whylen);
    /* All bytes of iov[0..iovcnt) or an error; the timeout covers the whole
     * call. iov is scratch: it may be advanced as bytes go out. After a
     * GP_ETIMEDOUT part may have been sent. */
    gp_err (*writev)(gp__stream *s, struct iovec *iov, int iovcnt, int timeout_ms, char *why,
                     size_t whylen);
    /* Half-close: the peer reads EOF once it has everything; reads here
     * still work. Idempotent. */
    void (*close_write)(gp__stream *s);
    /* Ends both directions now: blocked and later reads and writes fail,
     * the peer learns of it (socket shutdown, yamux RST). Thread-safe,
     * idempotent. Does not wait for the peer's answer (a yamux RST may wait
     * its turn on the session's socket). */
    void (*shutdown)(gp__stream *s);
    /* Releases the stream and what it owns (see each constructor). No call
     * may be running. */
    void (*close)(gp__stream *s);
} gp__stream_ops;

struct gp__stream {
    const gp__stream_ops *ops;
};

static inline gp_err gp__stream_read(gp__stream *s, void *buf, size_t cap, int timeout_ms,
                                     size_t *n, char *why, size_t whylen)
{
    return s->ops->read(s, buf, cap, timeout_ms, n, why, whylen);
}

static inline gp_err gp__stream_writev(gp__stream *s, struct iovec *iov, int iovcnt, int timeout_ms,
                                       char *why, size_t whylen)
{
    return s->ops->writev(s, iov, iovcnt, timeout_ms, why, whylen);
}

static inline gp_err gp__stream_write(gp__stream *s, const void *buf, size_t len, int timeout_ms,
                                      char *why, size_t whylen)
{
    struct iovec iov = {(void *)buf, len};
    return s->ops->writev(s, &iov, 1, timeout_ms, why, whylen);
}

static inline void gp__stream_close_write(gp__stream *s)
{
    s->ops->close_write(s);
}

static inline void gp__stream_shutdown(gp__stream *s)
{
    s->ops->shutdown(s);
}

/* NULL is ok. */
static inline void gp__stream_close(gp__stream *s)
{
    if (s)
        s->ops->close(s);
}

/* A stream over the connected socket `fd` (blocking or not: every call
 * uses MSG_DONTWAIT and poll; never SIGPIPE). On success the stream owns
 * fd: gp__stream_close closes it and frees the stream. Errors: GP_EINVAL
 * (fd < 0), GP_ENOMEM (fd stays the caller's). close_write is
 * shutdown(SHUT_WR), shutdown is shutdown(SHUT_RDWR). */
gp_err gp__stream_fd_new(int fd, gp__stream **out);

/* How long a read on an fd stream that finds nothing tries again, yielding
 * the CPU, before it sleeps in poll (ns), fixed at the first call: 20 us,
 * or GOPLUGIN_READ_SPIN_US (microseconds, 0: never, at most 1000); 0 when
 * the process may run on one CPU only. A stream whose tries keep finding
 * nothing stops trying for a while (up to 64 reads). */
int64_t gp__stream_read_spin_ns(void);

/* Frees an fd stream without closing its fd and returns the fd: for a
 * caller whose next step failed and whose contract leaves the fd with its
 * owner. -1 (and nothing freed) for a stream that is not an fd stream. */
int gp__stream_fd_release(gp__stream *s);

#endif
