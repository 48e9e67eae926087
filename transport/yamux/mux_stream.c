/* yamux streams: open, accept, read, write, close, reset, free. The
 * session side (reader thread, frame writing) is in mux_session.c. */
#include "transport/yamux/mux_session.h"

#include "transport/yamux/mux_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

gp_err gp__mux_open(gp__mux_session *s, gp__mux_stream **out)
{
    *out = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->closed || s->remote_goaway || s->next_id > UINT32_MAX - 2) {
        pthread_mutex_unlock(&s->mu);
        return GP_ECLOSED;
    }
    uint32_t id = s->next_id;
    s->next_id += 2;
    gp__mux_stream *st = gp__mux_stream_new_locked(s, id);
    pthread_mutex_unlock(&s->mu);
    if (!st)
        return GP_ENOMEM;
    gp_err e = gp__mux_write_frame(s, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_SYN, id, 0, NULL, 0);
    if (e != GP_OK) {
        st->local_fin = 1;
        gp__mux_stream_free(st);
        return GP_ECLOSED;
    }
    *out = st;
    return GP_OK;
}

gp_err gp__mux_accept(gp__mux_session *s, int timeout_ms, gp__mux_stream **out)
{
    *out = NULL;
    int64_t dl = gp__mux_deadline_of(timeout_ms);
    gp_err e = GP_OK;
    int back = 0;
    pthread_mutex_lock(&s->mu);
    while (!s->acc_head && e == GP_OK) {
        if (s->closed)
            e = GP_ECLOSED;
        else
            e = gp__mux_await_locked(s, &s->accept_cond, NULL, dl, 0, &back);
    }
    gp__mux_await_done_locked(s);
    if (e != GP_OK) {
        pthread_mutex_unlock(&s->mu);
        return e;
    }
    gp__mux_stream *st = s->acc_head;
    s->acc_head = st->accept_next;
    if (!s->acc_head)
        s->acc_tail = NULL;
    s->acc_len--;
    st->accept_next = NULL;
    pthread_mutex_unlock(&s->mu);
    /* If the session died meanwhile the ACK cannot go out, but what the
     * peer sent before it went is still readable: hand the stream over. */
    gp__mux_write_frame(s, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_ACK, st->id, 0, NULL, 0);
    *out = st;
    return GP_OK;
}

uint32_t gp__mux_stream_id(const gp__mux_stream *st)
{
    return st->id;
}

gp_err gp__mux_stream_wait_accepted(gp__mux_stream *st, int timeout_ms, int *reset)
{
    gp__mux_session *s = st->s;
    int64_t dl = gp__mux_deadline_of(timeout_ms);
    gp_err e = GP_OK;
    int back = 0;
    pthread_mutex_lock(&s->mu);
    /* The ACK answers our SYN: a prompt wait, as for window updates. */
    while (e == GP_OK && !st->peer_acked && !st->reset && !s->closed)
        e = gp__mux_await_locked(s, &st->wcond, NULL, dl, 1, &back);
    gp__mux_await_done_locked(s);
    if (st->peer_acked)
        e = GP_OK;
    else if (e == GP_OK)
        e = GP_ECLOSED;
    if (reset)
        *reset = !st->peer_acked && st->reset;
    pthread_mutex_unlock(&s->mu);
    return e;
}

void gp__mux_stream_watch(gp__mux_stream *st, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&st->s->mu);
    st->watch_fn = fn;
    st->watch_arg = arg;
    if (fn && st->rlen > 0 && !st->nwait)
        fn(arg); /* it came before the watch */
    pthread_mutex_unlock(&st->s->mu);
}

void gp__mux_accept_watch(gp__mux_session *s, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->accept_fn = fn;
    s->accept_arg = arg;
    if (fn && s->acc_head)
        fn(arg);
    pthread_mutex_unlock(&s->mu);
}

void gp__mux_stream_set_prompt(gp__mux_stream *st, int prompt)
{
    pthread_mutex_lock(&st->s->mu);
    st->prompt = prompt != 0;
    pthread_mutex_unlock(&st->s->mu);
}

gp_err gp__mux_stream_read(gp__mux_stream *st, void *buf, size_t cap, int timeout_ms, size_t *n)
{
    gp__mux_session *s = st->s;
    int64_t dl = gp__mux_deadline_of(timeout_ms);
    *n = 0;
    if (cap == 0)
        return GP_OK;
    pthread_mutex_lock(&s->mu);
    gp_err e = GP_OK;
    int back = 0;
    while (st->rlen == 0) {
        if (st->reset) {
            e = GP_ECLOSED;
            break;
        }
        if (st->remote_fin)
            break; /* EOF, even if the session ended right after the FIN */
        if (s->closed) {
            e = GP_ECLOSED;
            break;
        }
        /* Reads the socket itself when nobody does (mux_session.c). */
        e = gp__mux_await_locked(s, &st->rcond, st, dl, st->prompt, &back);
        if (e != GP_OK)
            break;
    }
    gp__mux_await_done_locked(s);
    uint32_t credit = 0;
    if (st->rlen > 0) {
        e = GP_OK;
        size_t k = st->rlen < cap ? st->rlen : cap;
        memcpy(buf, st->rbuf + st->roff, k);
        st->roff += k;
        st->rlen -= k;
        if (st->rlen == 0)
            st->roff = 0;
        *n = k;
        if (!st->remote_fin && !st->reset && !s->closed)
            credit = gp__mux_window_credit_locked(st);
    }
    uint32_t id = st->id;
    pthread_mutex_unlock(&s->mu);
    if (credit)
        gp__mux_write_frame(s, GP_MUX_TYPE_WINDOW_UPDATE, 0, id, credit, NULL, 0);
    return e;
}

gp_err gp__mux_stream_read_full(gp__mux_stream *st, void *buf, size_t len, int timeout_ms)
{
    int64_t dl = gp__mux_deadline_of(timeout_ms);
    size_t got = 0;
    while (got < len) {
        int left_ms = -1;
        if (dl >= 0) {
            int64_t left = dl - gp__mux_now_ns();
            left_ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        }
        size_t n;
        gp_err e = gp__mux_stream_read(st, (uint8_t *)buf + got, len - got, left_ms, &n);
        if (e != GP_OK)
            return e;
        if (n == 0)
            return GP_EIO;
        got += n;
    }
    return GP_OK;
}

gp_err gp__mux_stream_write(gp__mux_stream *st, const void *buf, size_t len, int timeout_ms)
{
    gp__mux_session *s = st->s;
    int64_t dl = gp__mux_deadline_of(timeout_ms);
    const uint8_t *p = buf;
    while (len > 0) {
        pthread_mutex_lock(&s->mu);
        gp_err e = GP_OK;
        int back = 0;
        /* Window updates are answers: a prompt wait (it may read them itself). */
        while (e == GP_OK && !(st->local_fin || st->reset || s->closed) && st->send_window == 0)
            e = gp__mux_await_locked(s, &st->wcond, NULL, dl, 1, &back);
        gp__mux_await_done_locked(s);
        if (e == GP_OK && (st->local_fin || st->reset || s->closed))
            e = GP_ECLOSED;
        if (e != GP_OK) {
            pthread_mutex_unlock(&s->mu);
            return e;
        }
        size_t k = len < st->send_window ? len : st->send_window;
        st->send_window -= (uint32_t)k;
        pthread_mutex_unlock(&s->mu);
        e = gp__mux_write_frame(s, GP_MUX_TYPE_DATA, 0, st->id, (uint32_t)k, p, k);
        if (e != GP_OK)
            return e;
        p += k;
        len -= k;
    }
    return GP_OK;
}

gp_err gp__mux_stream_close(gp__mux_stream *st)
{
    gp__mux_session *s = st->s;
    pthread_mutex_lock(&s->mu);
    if (st->local_fin) {
        pthread_mutex_unlock(&s->mu);
        return GP_OK;
    }
    if (st->reset || s->closed) {
        pthread_mutex_unlock(&s->mu);
        return GP_ECLOSED;
    }
    st->local_fin = 1;
    pthread_cond_broadcast(&st->wcond);
    if (st->remote_fin)
        gp__mux_remove_locked(st); /* the app still holds its reference */
    pthread_mutex_unlock(&s->mu);
    return gp__mux_write_frame(s, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_FIN, st->id, 0, NULL, 0);
}

gp_err gp__mux_stream_reset(gp__mux_stream *st)
{
    gp__mux_session *s = st->s;
    pthread_mutex_lock(&s->mu);
    if (st->reset || s->closed) {
        pthread_mutex_unlock(&s->mu);
        return GP_ECLOSED;
    }
    st->reset = 1;
    pthread_cond_broadcast(&st->rcond);
    pthread_cond_broadcast(&st->wcond);
    gp__mux_remove_locked(st);
    pthread_mutex_unlock(&s->mu);
    return gp__mux_write_frame(s, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_RST, st->id, 0, NULL, 0);
}

/* ---- the stream as a gp__stream (what net/rpc reads and writes) ---------- */

/* Words for a failed stream call: which stream, and why the session ended
 * if it did. */
static gp_err io_words(gp__mux_stream *st, gp_err e, char *why, size_t whylen)
{
    if (e != GP_OK && why && whylen) {
        const char *se = gp__mux_session_error(st->s);
        snprintf(why, whylen, "yamux: stream %u: %s%s%s", st->id, gp_strerror(e), se[0] ? ": " : "",
                 se);
    }
    return e;
}

static gp_err io_read(gp__stream *io, void *buf, size_t cap, int timeout_ms, size_t *n, char *why,
                      size_t whylen)
{
    gp__mux_stream *st = (gp__mux_stream *)io;
    return io_words(st, gp__mux_stream_read(st, buf, cap, timeout_ms, n), why, whylen);
}

/* Each piece as its own Data frames; the timeout covers them all. */
static gp_err io_writev(gp__stream *io, struct iovec *iov, int iovcnt, int timeout_ms, char *why,
                        size_t whylen)
{
    gp__mux_stream *st = (gp__mux_stream *)io;
    if (iovcnt == 1)
        return io_words(st, gp__mux_stream_write(st, iov->iov_base, iov->iov_len, timeout_ms), why,
                        whylen);
    int64_t dl = gp__mux_deadline_of(timeout_ms);
    for (int i = 0; i < iovcnt; i++) {
        int ms = -1;
        if (dl >= 0) {
            int64_t left = dl - gp__mux_now_ns();
            ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        }
        gp_err e = gp__mux_stream_write(st, iov[i].iov_base, iov[i].iov_len, ms);
        if (e != GP_OK)
            return io_words(st, e, why, whylen);
    }
    return GP_OK;
}

static void io_close_write(gp__stream *io)
{
    gp__mux_stream_close((gp__mux_stream *)io);
}

static void io_shutdown(gp__stream *io)
{
    gp__mux_stream_reset((gp__mux_stream *)io);
}

static void io_close(gp__stream *io)
{
    gp__mux_stream_free((gp__mux_stream *)io);
}

const gp__stream_ops gp__mux_stream_ops = {
    .read = io_read,
    .writev = io_writev,
    .close_write = io_close_write,
    .shutdown = io_shutdown,
    .close = io_close,
};

gp__stream *gp__mux_stream_io(gp__mux_stream *st)
{
    return &st->io;
}

void gp__mux_stream_free(gp__mux_stream *st)
{
    if (!st)
        return;
    gp__mux_session *s = st->s;
    pthread_mutex_lock(&s->mu);
    int send_fin = !st->local_fin && !st->reset && !s->closed;
    st->local_fin = 1;
    pthread_mutex_unlock(&s->mu);
    if (send_fin)
        gp__mux_write_frame(s, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_FIN, st->id, 0, NULL, 0);
    pthread_mutex_lock(&s->mu);
    int destroy = 0;
    uint32_t credit = 0, id = st->id;
    if (st->remote_fin || st->reset || s->closed) {
        destroy |= gp__mux_remove_locked(st);
    } else {
        /* Stays in the table until the peer's FIN; what it still sends is
         * discarded and its window given back, so the peer never stalls. */
        st->orphan = 1;
        st->rlen = st->roff = 0;
        credit = gp__mux_window_credit_locked(st);
    }
    destroy |= gp__mux_stream_unref_locked(st);
    pthread_mutex_unlock(&s->mu);
    if (credit && !destroy)
        gp__mux_write_frame(s, GP_MUX_TYPE_WINDOW_UPDATE, 0, id, credit, NULL, 0);
    if (destroy)
        gp__mux_session_destroy(s);
}
