/* yamux session: see mux_session.h and docs/netrpc.md.
 *
 * Locking: `mu` guards all session and stream state; `wmu` serializes
 * frames onto the socket (a frame is written whole under it). Whoever
 * reads the socket (the read role: a waiting caller or the background
 * reader, see "who reads the socket" below) never waits for `wmu`: the
 * frames it must send (ping answers, RST for refused streams, window
 * credit of orphaned streams, keepalive pings) go to `ctrl`, which whoever
 * holds `wmu` sends in the same writev as its own frame and re-checks
 * after releasing it; the reader itself flushes with trylock. */
#include "transport/base/sync.h"
#include "transport/yamux/mux_session.h"

#include "transport/yamux/mux_frame.h"
#include "transport/yamux/mux_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

int64_t gp__mux_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t gp__mux_deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : gp__mux_now_ns() + (int64_t)timeout_ms * 1000000;
}

/* Waits on cv until signalled or the deadline; GP_ETIMEDOUT when it passed. */
gp_err gp__mux_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline)
{
    if (deadline < 0) {
        pthread_cond_wait(cv, mu);
        return GP_OK;
    }
    if (gp__mux_now_ns() >= deadline)
        return GP_ETIMEDOUT;
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    pthread_cond_timedwait(cv, mu, &ts);
    return GP_OK;
}

/* ---- teardown ---------------------------------------------------------- */

static void wake_all_locked(gp__mux_session *s)
{
    pthread_cond_broadcast(&s->accept_cond);
    pthread_cond_broadcast(&s->ping_cond);
    pthread_cond_broadcast(&s->bg_cond);
    for (int b = 0; b < NBUCKETS; b++)
        for (gp__mux_stream *st = s->buckets[b]; st; st = st->next) {
            pthread_cond_broadcast(&st->rcond);
            pthread_cond_broadcast(&st->wcond);
        }
}

/* Ends the session; the first reason wins. Caller holds mu. */
static void teardown_locked(gp__mux_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void teardown_locked(gp__mux_session *s, const char *fmt, ...)
{
    if (s->closed)
        return;
    s->closed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    gp__stream_shutdown(s->io);
    wake_all_locked(s);
}

/* ---- socket writes ----------------------------------------------------- */

/* Writes the iovecs completely or fails; each write gets the write
 * timeout (as Go's ConnectionWriteTimeout, per frame), so the happy path
 * reads no clock. Caller holds wmu. */
static gp_err send_all(gp__mux_session *s, struct iovec *iov, int iovcnt, char *why, size_t whylen)
{
    char inner[128]; /* fits behind the prefix in the callers' 160 */
    gp_err e = gp__stream_writev(s->io, iov, iovcnt, s->cfg.write_timeout_ms, inner, sizeof inner);
    if (e == GP_ETIMEDOUT)
        snprintf(why, whylen, "yamux: write timed out after %d ms (peer not reading)",
                 s->cfg.write_timeout_ms);
    else if (e != GP_OK)
        snprintf(why, whylen, "yamux: write: %s", inner);
    return e;
}

/* Takes pending control bytes and writes them. Caller holds wmu, not mu. */
static gp_err flush_ctrl_wlocked(gp__mux_session *s, char *why, size_t whylen)
{
    uint8_t local[CTRL_MAX];
    pthread_mutex_lock(&s->mu);
    size_t n = s->ctrl_len;
    memcpy(local, s->ctrl, n);
    s->ctrl_len = 0;
    pthread_mutex_unlock(&s->mu);
    if (n == 0)
        return GP_OK;
    struct iovec iov = {local, n};
    return send_all(s, &iov, 1, why, whylen);
}

static void fail_write(gp__mux_session *s, const char *why)
{
    pthread_mutex_lock(&s->mu);
    teardown_locked(s, "%s", why);
    pthread_mutex_unlock(&s->mu);
}

/* After releasing wmu: control bytes queued meanwhile must not be stranded. */
static void kick_ctrl(gp__mux_session *s)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int pending = s->ctrl_len > 0 && !s->closed;
        pthread_mutex_unlock(&s->mu);
        if (!pending || pthread_mutex_trylock(&s->wmu) != 0)
            return;
        char why[160];
        gp_err e = flush_ctrl_wlocked(s, why, sizeof why);
        pthread_mutex_unlock(&s->wmu);
        if (e != GP_OK) {
            fail_write(s, why);
            return;
        }
    }
}

/* Writes one frame (after any pending control frames): one writev for
 * the control bytes, the header and the payload. */
gp_err gp__mux_write_frame(gp__mux_session *s, uint8_t type, uint16_t flags, uint32_t id,
                           uint32_t length, const void *payload, size_t plen)
{
    gp__mux_header h = {GP_MUX_VERSION, type, flags, id, length};
    uint8_t hb[GP_MUX_HEADER_SIZE];
    gp__mux_header_encode(&h, hb);
    uint8_t ctrl[CTRL_MAX];
    struct iovec iov[3];
    int n = 0;
    char why[160];
    pthread_mutex_lock(&s->wmu);
    pthread_mutex_lock(&s->mu);
    int closed = s->closed;
    size_t clen = s->ctrl_len;
    if (!closed && clen) {
        memcpy(ctrl, s->ctrl, clen);
        s->ctrl_len = 0;
        iov[n++] = (struct iovec){ctrl, clen};
    }
    pthread_mutex_unlock(&s->mu);
    if (closed) {
        pthread_mutex_unlock(&s->wmu);
        return GP_ECLOSED;
    }
    iov[n++] = (struct iovec){hb, sizeof hb};
    if (plen)
        iov[n++] = (struct iovec){(void *)payload, plen};
    gp_err e = send_all(s, iov, n, why, sizeof why);
    pthread_mutex_unlock(&s->wmu);
    if (e != GP_OK) {
        fail_write(s, why);
        return e;
    }
    kick_ctrl(s);
    return GP_OK;
}

/* Queues a control frame from the reader. Caller holds mu. Returns 0 when
 * the queue is full (the caller then flushes and retries). */
static int queue_ctrl_locked(gp__mux_session *s, uint8_t type, uint16_t flags, uint32_t id,
                             uint32_t length)
{
    if (s->ctrl_len + GP_MUX_HEADER_SIZE > CTRL_MAX)
        return 0;
    gp__mux_header h = {GP_MUX_VERSION, type, flags, id, length};
    gp__mux_header_encode(&h, s->ctrl + s->ctrl_len);
    s->ctrl_len += GP_MUX_HEADER_SIZE;
    return 1;
}

/* Reader side: queue, and if the queue is full, wait for the socket (a peer
 * flooding pings while not reading ends in the write timeout). Caller holds mu. */
static void send_ctrl_locked(gp__mux_session *s, uint8_t type, uint16_t flags, uint32_t id,
                             uint32_t length)
{
    while (!s->closed && !queue_ctrl_locked(s, type, flags, id, length)) {
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&s->wmu);
        char why[160];
        gp_err e = flush_ctrl_wlocked(s, why, sizeof why);
        pthread_mutex_unlock(&s->wmu);
        pthread_mutex_lock(&s->mu);
        if (e != GP_OK)
            teardown_locked(s, "%s", why);
    }
}

/* Best effort GoAway before a teardown for a protocol error: the session
 * is dying, so a busy socket is not waited for. */
static void go_away_now(gp__mux_session *s, uint32_t code)
{
    if (pthread_mutex_trylock(&s->wmu) != 0)
        return;
    uint8_t hb[GP_MUX_HEADER_SIZE];
    gp__mux_header h = {GP_MUX_VERSION, GP_MUX_TYPE_GO_AWAY, 0, 0, code};
    gp__mux_header_encode(&h, hb);
    (void)gp__stream_write(s->io, hb, sizeof hb, 0, NULL, 0);
    pthread_mutex_unlock(&s->wmu);
}

/* ---- streams and references ------------------------------------------- */

static void session_unref_locked(gp__mux_session *s, int *destroy)
{
    *destroy = --s->refs == 0;
}

void gp__mux_session_destroy(gp__mux_session *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->accept_cond);
    pthread_cond_destroy(&s->ping_cond);
    pthread_cond_destroy(&s->bg_cond);
    free(s);
}

/* Drops a stream reference; caller holds mu. Returns 1 if the session
 * must be destroyed by the caller after unlocking. */
int gp__mux_stream_unref_locked(gp__mux_stream *st)
{
    if (--st->refs > 0)
        return 0;
    gp__mux_session *s = st->s;
    pthread_cond_destroy(&st->rcond);
    pthread_cond_destroy(&st->wcond);
    free(st->rbuf);
    free(st);
    int destroy;
    session_unref_locked(s, &destroy);
    return destroy;
}

static gp__mux_stream *lookup_locked(gp__mux_session *s, uint32_t id)
{
    for (gp__mux_stream *st = s->buckets[(id >> 1) % NBUCKETS]; st; st = st->next)
        if (st->id == id)
            return st;
    return NULL;
}

/* The client opens odd ids, the server even ones. */
static int opened_by_peer(const gp__mux_session *s, uint32_t id)
{
    return (int)(id & 1) == (s->role == GP_MUX_SERVER);
}

gp__mux_stream *gp__mux_stream_new_locked(gp__mux_session *s, uint32_t id)
{
    gp__mux_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->io.ops = &gp__mux_stream_ops;
    st->s = s;
    st->id = id;
    st->refs = 2; /* the table's and the (future) app handle's */
    st->in_table = 1;
    if (opened_by_peer(s, id))
        s->peer_streams++;
    st->recv_window = GP_MUX_INITIAL_WINDOW;
    st->send_window = GP_MUX_INITIAL_WINDOW;
    gp__cond_init_monotonic(&st->rcond);
    gp__cond_init_monotonic(&st->wcond);
    gp__mux_stream **b = &s->buckets[(id >> 1) % NBUCKETS];
    st->next = *b;
    *b = st;
    s->refs++;
    return st;
}

/* Removes from the table (the stream is finished); caller holds mu. */
int gp__mux_remove_locked(gp__mux_stream *st)
{
    if (!st->in_table)
        return 0;
    gp__mux_session *s = st->s;
    for (gp__mux_stream **p = &s->buckets[(st->id >> 1) % NBUCKETS]; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    st->in_table = 0;
    if (opened_by_peer(s, st->id))
        s->peer_streams--;
    return gp__mux_stream_unref_locked(st);
}

/* The window credit to send after the application consumed bytes, as Go:
 * only once at least half the maximum is due. Caller holds mu. */
uint32_t gp__mux_window_credit_locked(gp__mux_stream *st)
{
    /* Bytes of a frame still arriving count as buffered: the reader takes
     * them from the window at the header but appends them in pieces. */
    int64_t delta = (int64_t)GP_MUX_INITIAL_WINDOW - (int64_t)st->rlen - (int64_t)st->inflight -
                    (int64_t)st->recv_window;
    if (delta < GP_MUX_INITIAL_WINDOW / 2)
        return 0;
    st->recv_window += (uint32_t)delta;
    return (uint32_t)delta;
}

/* ---- frames in (handled by whoever holds the read role) ---------------- */

static void protocol_error_locked(gp__mux_session *s, const char *what)
{
    if (s->closed)
        return;
    pthread_mutex_unlock(&s->mu);
    go_away_now(s, GP_MUX_GOAWAY_PROTO_ERR);
    pthread_mutex_lock(&s->mu);
    teardown_locked(s, "%s", what);
}

static void incoming_syn_locked(gp__mux_session *s, const gp__mux_header *h)
{
    char why[200];
    if (lookup_locked(s, h->stream_id)) {
        snprintf(why, sizeof why, "yamux: duplicate stream id %u: SYN for a stream that is open",
                 h->stream_id);
        protocol_error_locked(s, why);
        return;
    }
    int peer_odd = s->role == GP_MUX_SERVER;
    if ((int)(h->stream_id & 1) != peer_odd) {
        snprintf(why, sizeof why, "yamux: peer opened stream %u, expected an %s id", h->stream_id,
                 peer_odd ? "odd" : "even");
        protocol_error_locked(s, why);
        return;
    }
    int full = s->peer_streams >= s->cfg.max_streams;
    if (s->local_goaway || s->acc_len >= s->cfg.accept_backlog || full) {
        s->refused += (uint64_t)full;
        send_ctrl_locked(s, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_RST, h->stream_id, 0);
        return;
    }
    gp__mux_stream *st = gp__mux_stream_new_locked(s, h->stream_id);
    if (!st) {
        teardown_locked(s, "yamux: out of memory for stream %u", h->stream_id);
        return;
    }
    if (s->acc_tail)
        s->acc_tail->accept_next = st;
    else
        s->acc_head = st;
    s->acc_tail = st;
    s->acc_len++;
    pthread_cond_signal(&s->accept_cond);
    if (s->accept_fn)
        s->accept_fn(s->accept_arg);
}

/* FIN / RST of the frame just finished (after its payload, so a reader
 * never sees EOF before the data that came with the FIN). */
static int apply_end_flags_locked(gp__mux_stream *st, uint16_t flags)
{
    if (st->nwait)
        st->s->delivered = 1;
    if (flags & GP_MUX_FLAG_RST) {
        st->reset = 1;
        pthread_cond_broadcast(&st->rcond);
        pthread_cond_broadcast(&st->wcond);
        return gp__mux_remove_locked(st);
    }
    if (flags & GP_MUX_FLAG_FIN) {
        st->remote_fin = 1;
        pthread_cond_broadcast(&st->rcond);
        if (st->local_fin)
            return gp__mux_remove_locked(st);
    }
    return 0;
}

static void on_header_locked(gp__mux_session *s, const gp__mux_header *h)
{
    char why[200];
    s->cur = NULL;
    s->cur_hdr = *h;
    switch (h->type) {
    case GP_MUX_TYPE_PING:
        if (h->flags & GP_MUX_FLAG_SYN)
            send_ctrl_locked(s, GP_MUX_TYPE_PING, GP_MUX_FLAG_ACK, 0, h->length);
        else if (h->flags & GP_MUX_FLAG_ACK) {
            if (s->ka_waiting && h->length == s->ka_id)
                s->ka_waiting = 0;
            s->acked[s->acked_n++ % ACKED_RING] = h->length;
            pthread_cond_broadcast(&s->ping_cond);
        }
        return;
    case GP_MUX_TYPE_GO_AWAY:
        if (h->length == GP_MUX_GOAWAY_NORMAL) {
            s->remote_goaway = 1;
            return;
        }
        teardown_locked(s, "yamux: peer sent GoAway with code %u (%s)", h->length,
                        h->length == GP_MUX_GOAWAY_PROTO_ERR      ? "protocol error"
                        : h->length == GP_MUX_GOAWAY_INTERNAL_ERR ? "internal error"
                                                                  : "unknown code");
        return;
    }
    if (h->flags & GP_MUX_FLAG_SYN) {
        incoming_syn_locked(s, h);
        if (s->closed)
            return;
    }
    gp__mux_stream *st = lookup_locked(s, h->stream_id);
    if (!st)
        return; /* finished or refused stream: late frames are dropped, as Go */
    if ((h->flags & GP_MUX_FLAG_ACK) && !st->peer_acked) {
        st->peer_acked = 1;
        pthread_cond_broadcast(&st->wcond); /* gp__mux_stream_wait_accepted */
    }
    if (h->type == GP_MUX_TYPE_WINDOW_UPDATE) {
        uint64_t w = (uint64_t)st->send_window + h->length;
        st->send_window = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
        pthread_cond_broadcast(&st->wcond);
        int destroy = apply_end_flags_locked(st, h->flags);
        (void)destroy; /* the table ref is never the last: app or queue holds one */
        return;
    }
    if (h->length > st->recv_window) {
        snprintf(why, sizeof why,
                 "yamux: stream %u received a Data frame of %u bytes beyond its window of %u",
                 h->stream_id, h->length, st->recv_window);
        protocol_error_locked(s, why);
        return;
    }
    st->recv_window -= h->length;
    st->inflight = h->length;
    if (h->length == 0) {
        apply_end_flags_locked(st, h->flags);
        return;
    }
    st->refs++;
    s->cur = st;
}

static void on_data_locked(gp__mux_session *s, const uint8_t *d, size_t n)
{
    gp__mux_stream *st = s->cur;
    if (!st)
        return;
    st->inflight -= (uint32_t)n;
    if (st->orphan || st->reset) {
        /* Nobody will read it: give the window straight back. */
        uint32_t credit = gp__mux_window_credit_locked(st);
        if (credit)
            send_ctrl_locked(s, GP_MUX_TYPE_WINDOW_UPDATE, 0, st->id, credit);
        return;
    }
    if (st->roff + st->rlen + n > st->rcap) {
        if (st->rlen + n <= st->rcap) {
            memmove(st->rbuf, st->rbuf + st->roff, st->rlen);
        } else {
            size_t cap = st->rcap ? st->rcap * 2 : 16384;
            while (cap < st->rlen + n)
                cap *= 2;
            if (cap > GP_MUX_INITIAL_WINDOW)
                cap = GP_MUX_INITIAL_WINDOW;
            uint8_t *nb = malloc(cap);
            if (!nb) {
                teardown_locked(s, "yamux: out of memory buffering stream %u", st->id);
                return;
            }
            if (st->rlen)
                memcpy(nb, st->rbuf + st->roff, st->rlen);
            free(st->rbuf);
            st->rbuf = nb;
            st->rcap = cap;
        }
        st->roff = 0;
    }
    memcpy(st->rbuf + st->roff + st->rlen, d, n);
    st->rlen += n;
    if (st != s->lead_st)
        s->delivered = 1; /* traffic for another stream: the role may follow it */
    if (st->nwait) {
        pthread_cond_broadcast(&st->rcond);
    } else if (st->watch_fn) {
        st->watch_fn(st->watch_arg); /* nobody waits: tell the owner */
    }
}

/* The frame (and its payload) is complete. */
static int on_frame_end_locked(gp__mux_session *s)
{
    gp__mux_stream *st = s->cur;
    s->cur = NULL;
    if (!st)
        return 0;
    int d = apply_end_flags_locked(st, s->cur_hdr.flags);
    return d | gp__mux_stream_unref_locked(st);
}

static void keepalive_locked(gp__mux_session *s)
{
    if (s->cfg.keepalive_interval_ms < 0 || s->closed)
        return;
    int64_t now = gp__mux_now_ns();
    if (s->ka_waiting && now >= s->ka_deadline_ns) {
        teardown_locked(s, "yamux: keepalive timeout: no answer to ping %u within %d ms", s->ka_id,
                        s->cfg.keepalive_timeout_ms);
        return;
    }
    if (!s->ka_waiting && now >= s->ka_next_ns) {
        s->ka_id = s->ping_next++;
        s->ka_waiting = 1;
        s->ka_deadline_ns = now + (int64_t)s->cfg.keepalive_timeout_ms * 1000000;
        s->ka_next_ns = now + (int64_t)s->cfg.keepalive_interval_ms * 1000000;
        send_ctrl_locked(s, GP_MUX_TYPE_PING, GP_MUX_FLAG_SYN, 0, s->ka_id);
    }
}

static int poll_timeout_locked(gp__mux_session *s)
{
    if (s->cfg.keepalive_interval_ms < 0)
        return -1;
    int64_t next = s->ka_waiting ? s->ka_deadline_ns : s->ka_next_ns;
    int64_t left = next - gp__mux_now_ns();
    if (left <= 0)
        return 0;
    return (int)((left + 999999) / 1000000);
}

/* ---- who reads the socket ------------------------------------------------
 *
 * One thread at a time holds the read role and reads the socket; it
 * handles every frame it reads, for every stream. A thread that must wait
 * for the peer (a stream read, a window update, an accept, a ping answer)
 * takes the role itself when nobody holds it, so a caller reads its own
 * reply with no thread hop (leader/follower, as the net/rpc client above).
 * Otherwise it sleeps as a follower and the leader wakes it.
 *
 * Giving the role up: a prompt leader (it waits for an answer: a reply, a
 * window update) keeps it until its own answer came, then wakes one prompt
 * follower to take over. A leader that is not prompt (a server waiting for
 * its next request, a stdio reader, the background reader) gives it up as
 * soon as it read data for another stream (woken or buffered for later)
 * or a prompt waiter is queued, so the role follows the traffic: the next
 * read is done by the thread that wants the bytes. One that gave the role
 * up only because a prompt waiter queued (not for traffic) takes it back
 * when that waiter is done: a leaving leader wakes a prompt waiter if
 * there is one, else such an "eager" one; a reader that stepped back for
 * traffic is never woken just because the role became free.
 *
 * The background reader (one thread per session) covers the gaps: when no
 * thread has held the role for LEAD_GRACE_NS, it reads, so Pings, stdio
 * streams, SYNs and window updates are served while every caller is busy
 * elsewhere. While other threads hold the role it looks now and then,
 * less and less often (up to BG_NAP_MAX_NS apart): a gap that opens while
 * it naps is covered within that nap. */

static int has_prompt_waiter_locked(gp__mux_session *s)
{
    return s->nprompt > 0;
}

/* The role is free: wake the first prompt waiter so it takes it, or else
 * the first eager one. */
void gp__mux_await_done_locked(gp__mux_session *s)
{
    if (s->leading || s->nprompt + s->neager == 0)
        return;
    gp__mux_waiter *eager = NULL;
    for (gp__mux_waiter *w = s->waiters; w; w = w->next) {
        if (w->prompt) {
            pthread_cond_broadcast(w->cv);
            return;
        }
        if (w->eager && !eager)
            eager = w;
    }
    if (eager)
        pthread_cond_broadcast(eager->cv);
}

/* One read of the socket and the frames in it, by the role's holder (the
 * caller takes the role here and gives it up before returning). bg: the
 * background reader (its steps do not count as a waiter's use of the role).
 * GP_ETIMEDOUT when the deadline passed with nothing read. */
static gp_err lead_step_locked(gp__mux_session *s, int64_t deadline, int bg)
{
    int timeout = poll_timeout_locked(s);
    if (deadline >= 0) {
        int64_t left = deadline - gp__mux_now_ns();
        if (left <= 0)
            return GP_ETIMEDOUT;
        int ms = (int)((left + 999999) / 1000000);
        if (timeout < 0 || ms < timeout)
            timeout = ms;
    }
    s->leading = 1;
    s->delivered = 0;
    pthread_mutex_unlock(&s->mu);
    /* The read's own timeout drives the keepalive (not poll on an fd: TLS
     * may hold decrypted bytes the socket no longer shows). */
    size_t n = 0;
    char why[200] = "";
    gp_err ioe = gp__stream_read(s->io, s->rdbuf, sizeof s->rdbuf, timeout, &n, why, sizeof why);
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        /* nothing */
    } else if (ioe != GP_OK && ioe != GP_ETIMEDOUT) {
        teardown_locked(s, "yamux: read: %s", why[0] ? why : gp_strerror(ioe));
    } else if (ioe == GP_OK && n == 0) {
        teardown_locked(s, "yamux: connection closed by the peer");
    } else {
        const uint8_t *in = s->rdbuf;
        size_t left = ioe == GP_OK ? n : 0;
        while (left > 0 && !s->closed) {
            size_t used, dl;
            const uint8_t *d;
            gp__mux_event ev = gp__mux_parser_feed(&s->parser, in, left, &used, &d, &dl);
            in += used;
            left -= used;
            if (ev == GP_MUX_EV_ERROR) {
                protocol_error_locked(s, s->parser.err);
                break;
            }
            if (ev == GP_MUX_EV_HEADER) {
                on_header_locked(s, &s->parser.hdr);
            } else if (ev == GP_MUX_EV_DATA) {
                on_data_locked(s, d, dl);
                if (s->parser.body_left == 0)
                    (void)on_frame_end_locked(s); /* the app's session ref outlives the role */
            }
        }
        keepalive_locked(s);
        if (s->ctrl_len > 0) {
            pthread_mutex_unlock(&s->mu);
            kick_ctrl(s);
            pthread_mutex_lock(&s->mu);
        }
    }
    s->leading = 0;
    if (!bg)
        s->released_ns = gp__mux_now_ns();
    if (s->closed)
        pthread_cond_broadcast(&s->bg_cond); /* free waits for the role to end */
    if (ioe == GP_ETIMEDOUT && deadline >= 0 && gp__mux_now_ns() >= deadline)
        return GP_ETIMEDOUT;
    return GP_OK;
}

gp_err gp__mux_await_locked(gp__mux_session *s, pthread_cond_t *cv, gp__mux_stream *st,
                            int64_t deadline, int prompt, int *back)
{
    /* Lent (2): take it back only once no prompt waiter wants it. */
    if (!s->leading && !s->closed && (*back == 0 || (*back == 2 && s->nprompt == 0))) {
        s->lead_st = st;
        gp_err e = lead_step_locked(s, deadline, 0);
        /* Follow the traffic (see above): step back, and let a prompt
         * waiter have the role. */
        if (!prompt && (s->delivered || has_prompt_waiter_locked(s))) {
            *back = s->delivered ? 1 : 2;
            gp__mux_await_done_locked(s);
        }
        return e;
    }
    gp__mux_waiter w = {cv, prompt, !prompt && *back != 1, s->waiters};
    s->waiters = &w;
    s->nprompt += w.prompt;
    s->neager += w.eager;
    if (st)
        st->nwait++;
    gp_err e = gp__mux_wait_until(cv, &s->mu, deadline);
    for (gp__mux_waiter **p = &s->waiters; *p; p = &(*p)->next)
        if (*p == &w) {
            *p = w.next;
            break;
        }
    s->nprompt -= w.prompt;
    s->neager -= w.eager;
    if (st)
        st->nwait--;
    return e;
}

/* The background reader: takes the role only when no waiter has held it
 * for LEAD_GRACE_NS, and gives it back as a non-prompt leader does. While
 * another thread holds the role it only looks now and then, backing off
 * from LEAD_GRACE_NS to BG_NAP_MAX_NS: an idle leader (a server waiting
 * for its next request) costs a few wake-ups a second, not 500. */
static void *reader_main(void *arg)
{
    gp__mux_session *s = arg;
    int64_t nap = LEAD_GRACE_NS;
    pthread_mutex_lock(&s->mu);
    while (!s->closed) {
        int64_t now = gp__mux_now_ns();
        if (s->leading) {
            (void)gp__mux_wait_until(&s->bg_cond, &s->mu, now + nap);
            nap = nap * 2 > BG_NAP_MAX_NS ? BG_NAP_MAX_NS : nap * 2;
            continue;
        }
        if (now - s->released_ns < LEAD_GRACE_NS) {
            (void)gp__mux_wait_until(&s->bg_cond, &s->mu, s->released_ns + LEAD_GRACE_NS);
            continue;
        }
        nap = LEAD_GRACE_NS;
        s->lead_st = NULL;
        lead_step_locked(s, -1, 1);
        if (s->delivered || has_prompt_waiter_locked(s)) {
            s->released_ns = gp__mux_now_ns();
            gp__mux_await_done_locked(s);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- session API -------------------------------------------------------- */

gp_err gp__mux_session_new_stream(gp__stream *io, gp__mux_role role, const gp__mux_config *cfg,
                                  gp__mux_session **out)
{
    *out = NULL;
    if (!io || !io->ops || !io->ops->read || !io->ops->writev || !io->ops->shutdown ||
        !io->ops->close || (role != GP_MUX_CLIENT && role != GP_MUX_SERVER))
        return GP_EINVAL;
    /* rdbuf stays untouched until a read fills it: a new plugin process
     * would otherwise fault in all of its 64 KiB at once. */
    gp__mux_session *s = malloc(sizeof *s);
    if (!s)
        return GP_ENOMEM;
    memset(s, 0, offsetof(gp__mux_session, rdbuf));
    s->io = io;
    s->role = role;
    if (cfg)
        s->cfg = *cfg;
    if (s->cfg.keepalive_interval_ms == 0)
        s->cfg.keepalive_interval_ms = GP_MUX_KEEPALIVE_INTERVAL_MS;
    if (s->cfg.keepalive_timeout_ms <= 0)
        s->cfg.keepalive_timeout_ms = GP_MUX_WRITE_TIMEOUT_MS;
    if (s->cfg.write_timeout_ms <= 0)
        s->cfg.write_timeout_ms = GP_MUX_WRITE_TIMEOUT_MS;
    if (s->cfg.accept_backlog <= 0)
        s->cfg.accept_backlog = GP_MUX_ACCEPT_BACKLOG;
    if (s->cfg.max_streams <= 0)
        s->cfg.max_streams = GP_MUX_MAX_STREAMS;
    s->next_id = role == GP_MUX_CLIENT ? 1 : 2;
    s->refs = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    gp__cond_init_monotonic(&s->accept_cond);
    gp__cond_init_monotonic(&s->ping_cond);
    gp__cond_init_monotonic(&s->bg_cond);
    gp__mux_parser_init(&s->parser, GP_MUX_INITIAL_WINDOW);
    /* Before any thread can take the read role (a caller may, at once). */
    s->ka_next_ns = gp__mux_now_ns() + (int64_t)s->cfg.keepalive_interval_ms * 1000000;
    if (gp__thread_start_small(&s->reader, reader_main, s) != 0) {
        gp__mux_session_destroy(s);
        return GP_ESYS;
    }
    *out = s;
    return GP_OK;
}

gp_err gp__mux_session_new(int fd, gp__mux_role role, const gp__mux_config *cfg,
                           gp__mux_session **out)
{
    *out = NULL;
    gp__stream *io;
    gp_err e = gp__stream_fd_new(fd, &io);
    if (e != GP_OK)
        return e;
    e = gp__mux_session_new_stream(io, role, cfg, out);
    if (e != GP_OK)
        gp__stream_fd_release(io); /* the fd stays the caller's */
    return e;
}

void gp__mux_session_close(gp__mux_session *s)
{
    pthread_mutex_lock(&s->mu);
    teardown_locked(s, "yamux: session closed");
    pthread_mutex_unlock(&s->mu);
}

void gp__mux_session_free(gp__mux_session *s)
{
    if (!s)
        return;
    gp__mux_session_close(s);
    pthread_join(s->reader, NULL);
    /* A caller may still hold the read role: the shutdown woke its read;
     * the stream is closed only once it has let go. */
    pthread_mutex_lock(&s->mu);
    while (s->leading)
        pthread_cond_wait(&s->bg_cond, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->wmu); /* no writer is mid-frame on the stream */
    pthread_mutex_lock(&s->mu);
    gp__stream_close(s->io);
    s->io = NULL;
    pthread_mutex_unlock(&s->wmu);
    int destroy = 0;
    while (s->acc_head) {
        gp__mux_stream *st = s->acc_head;
        s->acc_head = st->accept_next;
        destroy |= gp__mux_stream_unref_locked(st); /* the app handle nobody took */
    }
    s->acc_tail = NULL;
    if (s->cur) { /* the last role holder's frame in progress */
        destroy |= gp__mux_stream_unref_locked(s->cur);
        s->cur = NULL;
    }
    for (int b = 0; b < NBUCKETS; b++)
        while (s->buckets[b])
            destroy |= gp__mux_remove_locked(s->buckets[b]);
    session_unref_locked(s, &destroy);
    pthread_mutex_unlock(&s->mu);
    if (destroy)
        gp__mux_session_destroy(s);
}

gp_err gp__mux_session_go_away(gp__mux_session *s)
{
    pthread_mutex_lock(&s->mu);
    s->local_goaway = 1;
    pthread_mutex_unlock(&s->mu);
    return gp__mux_write_frame(s, GP_MUX_TYPE_GO_AWAY, 0, 0, GP_MUX_GOAWAY_NORMAL, NULL, 0);
}

const char *gp__mux_session_error(gp__mux_session *s)
{
    pthread_mutex_lock(&s->mu);
    const char *e = s->closed ? s->err : "";
    pthread_mutex_unlock(&s->mu);
    return e;
}

uint64_t gp__mux_session_refused(gp__mux_session *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->refused;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int gp__mux_session_is_closed(gp__mux_session *s)
{
    pthread_mutex_lock(&s->mu);
    int c = s->closed;
    pthread_mutex_unlock(&s->mu);
    return c;
}

static int was_acked_locked(gp__mux_session *s, uint32_t id)
{
    unsigned n = s->acked_n < ACKED_RING ? s->acked_n : ACKED_RING;
    for (unsigned i = 0; i < n; i++)
        if (s->acked[i] == id)
            return 1;
    return 0;
}

gp_err gp__mux_session_ping(gp__mux_session *s, int timeout_ms, int64_t *rtt_us)
{
    int64_t start = gp__mux_now_ns(), dl = gp__mux_deadline_of(timeout_ms);
    pthread_mutex_lock(&s->mu);
    uint32_t id = s->ping_next++;
    pthread_mutex_unlock(&s->mu);
    gp_err e = gp__mux_write_frame(s, GP_MUX_TYPE_PING, GP_MUX_FLAG_SYN, 0, id, NULL, 0);
    if (e != GP_OK)
        return GP_ECLOSED;
    pthread_mutex_lock(&s->mu);
    int back = 0;
    while (!was_acked_locked(s, id) && e == GP_OK) {
        if (s->closed)
            e = GP_ECLOSED;
        else
            e = gp__mux_await_locked(s, &s->ping_cond, NULL, dl, 1, &back);
    }
    gp__mux_await_done_locked(s);
    pthread_mutex_unlock(&s->mu);
    if (e == GP_OK && rtt_us)
        *rtt_us = (gp__mux_now_ns() - start) / 1000;
    return e;
}
