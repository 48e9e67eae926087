/* net/rpc over gob: see rpc_codec.h. */
#include "transport/base/sync.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"

#include "transport/wire/netrpc/gob/gob_rpc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_CHUNK 16384

/* ---- gob message reader ------------------------------------------------------ */

typedef struct msg_reader {
    gp__stream *io;
    gp__gob_decoder *dec;
    uint8_t *buf;
    size_t off, len, cap;
} msg_reader;

/* The next value on the stream (type definitions absorbed). GP_ECLOSED
 * with err "EOF" at a clean end between messages. */
static gp_err read_value(msg_reader *r, int timeout_ms, gp__gob_value **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    size_t max = gp__gob_decoder_max_message(r->dec);
    for (;;) {
        const uint8_t *body;
        size_t blen, used;
        /* Nothing buffered yet: buf is NULL, and NULL + 0 is undefined. */
        const uint8_t *at = r->buf ? r->buf + r->off : NULL;
        gp_err e = gp__gob_frame(at, r->len, max, &body, &blen, &used, err, errlen);
        if (e != GP_OK)
            return e;
        if (body) {
            r->off += used;
            r->len -= used;
            e = gp__gob_decode_message(r->dec, body, blen, out, err, errlen);
            if (e != GP_OK || *out)
                return e;
            continue;
        }
        /* Need more: make room for at least one more chunk. */
        if (r->off > 0 && r->off + r->len + READ_CHUNK > r->cap) {
            memmove(r->buf, r->buf + r->off, r->len);
            r->off = 0;
        }
        if (r->len + READ_CHUNK > r->cap) {
            size_t cap = r->cap ? r->cap * 2 : READ_CHUNK * 2;
            if (cap > max + READ_CHUNK + 16)
                cap = max + READ_CHUNK + 16;
            if (cap < r->len + READ_CHUNK) {
                snprintf(err, errlen, "net/rpc: internal: buffer of %zu bytes is full", r->cap);
                return GP_EMSGSIZE;
            }
            uint8_t *b = realloc(r->buf, cap);
            if (!b) {
                snprintf(err, errlen, "net/rpc: out of memory");
                return GP_ENOMEM;
            }
            r->buf = b;
            r->cap = cap;
        }
        size_t n;
        e = gp__stream_read(r->io, r->buf + r->off + r->len, r->cap - r->off - r->len, timeout_ms,
                            &n, NULL, 0);
        if (e != GP_OK) {
            snprintf(err, errlen, "net/rpc: read: %s", gp_strerror(e));
            return e;
        }
        if (n == 0) {
            if (r->len == 0) {
                snprintf(err, errlen, "EOF");
                return GP_ECLOSED;
            }
            snprintf(err, errlen,
                     "net/rpc: unexpected EOF inside a gob message (%zu bytes buffered)", r->len);
            return GP_EPROTO;
        }
        r->len += n;
    }
}

static void reader_free(msg_reader *r)
{
    gp__gob_decoder_free(r->dec);
    free(r->buf);
}

/* ---- client ------------------------------------------------------------------ */

/* No reader thread: a caller waiting for its reply takes the reading role
 * when nobody holds it, reads responses and hands each to its caller until
 * its own arrives, then gives the role up (the next waiter takes it). A
 * lone caller thus reads its own reply, with no thread hop.
 * A call's pending entry lives on its caller's stack; a call that gives up
 * leaves a heap copy marked abandoned in its place (freed by whoever reads
 * the late reply, or by gp__rpc_client_free). */
typedef struct pending {
    uint64_t seq;
    int done, abandoned;
    pthread_cond_t cv; /* its caller waits here (not in abandoned copies) */
    gp_err err;
    char msg[GP_STATUS_MSG_MAX];
    gp__gob_value *reply;
    struct pending *next;
} pending;

struct gp__rpc_client {
    gp__stream *io;
    msg_reader rd; /* owned by whoever holds the reading role */
    gp__gob_encoder *enc;
    gp__gob_buf out;
    pthread_mutex_t wmu; /* encoder, out buffer, the write side */
    pthread_mutex_t mu;  /* seq, pending list, dead, reading */
    uint64_t seq;
    pending *calls;
    int reading;
    int dead;
    gp_err dead_err;
    char dead_msg[GP_STATUS_MSG_MAX];
};

static void set_status(gp_status *st, gp_err e, const char *msg)
{
    if (!st)
        return;
    st->err = e;
    st->grpc_code = 0;
    /* Cut to fit (the bound also tells -O2's truncation check). */
    snprintf(st->msg, sizeof st->msg, "%.*s", (int)sizeof st->msg - 1, msg);
}

/* Marks the client dead; every waiting call wakes with the reason. */
static void kill_locked(gp__rpc_client *c, gp_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kill_locked(gp__rpc_client *c, gp_err e, const char *fmt, ...)
{
    if (c->dead)
        return;
    c->dead = 1;
    c->dead_err = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->dead_msg, sizeof c->dead_msg, fmt, ap);
    va_end(ap);
    for (pending *q = c->calls; q; q = q->next)
        if (!q->abandoned)
            pthread_cond_signal(&q->cv);
}

/* The reading role is free: wake one caller still waiting for its reply
 * to take it (only that one: a response wakes only its own caller). */
static void pass_role_locked(gp__rpc_client *c)
{
    if (c->reading)
        return;
    for (pending *q = c->calls; q; q = q->next)
        if (!q->done && !q->abandoned) {
            pthread_cond_signal(&q->cv);
            return;
        }
}

static pending *unlink_seq_locked(gp__rpc_client *c, uint64_t seq)
{
    for (pending **p = &c->calls; *p; p = &(*p)->next)
        if ((*p)->seq == seq) {
            pending *found = *p;
            *p = found->next;
            return found;
        }
    return NULL;
}

static int ms_left(const struct timespec *dl)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms =
        (long long)(dl->tv_sec - now.tv_sec) * 1000 + (dl->tv_nsec - now.tv_nsec) / 1000000;
    return ms <= 0 ? 0 : ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* Reads one response (holding the reading role) and hands it to its
 * caller. GP_ETIMEDOUT: nothing complete arrived in time (a partial
 * message stays buffered for the next reader). Other errors kill the
 * client. */
static gp_err read_response(gp__rpc_client *c, int timeout_ms)
{
    char err[GP_STATUS_MSG_MAX];
    gp__gob_value *hdr = NULL, *body = NULL;
    gp_err e = read_value(&c->rd, timeout_ms, &hdr, err, sizeof err);
    if (e == GP_ETIMEDOUT)
        return e;
    if (e != GP_OK) {
        pthread_mutex_lock(&c->mu);
        if (e == GP_ECLOSED && strcmp(err, "EOF") == 0)
            kill_locked(c, GP_ECLOSED, "net/rpc: connection closed by the server");
        else
            kill_locked(c, e, "%s", err);
        pthread_mutex_unlock(&c->mu);
        return e;
    }
    const char *method, *rpc_err;
    uint64_t seq;
    e = gp__gob_get_response(hdr, &method, &seq, &rpc_err, err, sizeof err);
    if (e == GP_OK) {
        /* The body follows the header at once; a server that stalls in
         * between has broken the stream. */
        e = read_value(&c->rd, timeout_ms < 0 ? -1 : timeout_ms + 5000, &body, err, sizeof err);
        if (e == GP_ETIMEDOUT)
            snprintf(err, sizeof err, "net/rpc: no response body after the header of %s", method);
    }
    pthread_mutex_lock(&c->mu);
    if (e != GP_OK) {
        kill_locked(c, e == GP_ECLOSED || e == GP_ETIMEDOUT ? GP_EPROTO : e, "%s",
                    e == GP_ECLOSED ? "net/rpc: EOF between a response header and its body" : err);
        pthread_mutex_unlock(&c->mu);
        gp__gob_value_free(hdr);
        return GP_EPROTO;
    }
    pending *p = unlink_seq_locked(c, seq);
    if (!p) {
        kill_locked(c, GP_EPROTO, "net/rpc: response for unknown Seq %llu (method %s)",
                    (unsigned long long)seq, method);
        pthread_mutex_unlock(&c->mu);
        gp__gob_value_free(hdr);
        gp__gob_value_free(body);
        return GP_EPROTO;
    }
    if (p->abandoned) {
        free(p);
    } else {
        p->done = 1;
        if (rpc_err[0]) {
            p->err = GP_EREMOTE;
            snprintf(p->msg, sizeof p->msg, "%s", rpc_err);
        } else {
            p->reply = body;
            body = NULL;
        }
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&c->mu);
    gp__gob_value_free(hdr);
    gp__gob_value_free(body);
    return GP_OK;
}

gp_err gp__rpc_client_new(gp__stream *io, const gp__gob_limits *lim, gp__rpc_client **out)
{
    *out = NULL;
    if (!io)
        return GP_EINVAL;
    gp__rpc_client *c = calloc(1, sizeof *c);
    if (!c)
        return GP_ENOMEM;
    c->io = io;
    c->rd.io = io;
    gp__gob_buf_init(&c->out, lim && lim->max_message ? lim->max_message + 16 : 0);
    if (gp__gob_decoder_new(lim, &c->rd.dec) != GP_OK || gp__gob_encoder_new(&c->enc) != GP_OK) {
        gp__gob_decoder_free(c->rd.dec);
        free(c);
        return GP_ENOMEM;
    }
    pthread_mutex_init(&c->wmu, NULL);
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return GP_OK;
}

gp_err gp__rpc_call(gp__rpc_client *c, const char *method, const gp__gob_value *args,
                    gp__gob_value **reply, int timeout_ms, gp_status *st)
{
    if (reply)
        *reply = NULL;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
    }
    pending call;
    memset(&call, 0, sizeof call);
    pending *p = &call; /* no allocation per call */
    gp__cond_init_monotonic(&p->cv);
    char err[GP_STATUS_MSG_MAX];
    /* Seq order on the wire follows the write lock, as Go's client. */
    pthread_mutex_lock(&c->wmu);
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        gp_err e = c->dead_err;
        set_status(st, e, c->dead_msg);
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->wmu);
        pthread_cond_destroy(&p->cv);
        return e;
    }
    p->seq = c->seq++;
    p->next = c->calls;
    c->calls = p;
    pthread_mutex_unlock(&c->mu);
    c->out.len = 0;
    gp_err e = gp__gob_put_request(c->enc, &c->out, method, p->seq, err, sizeof err);
    if (e == GP_OK)
        e = gp__gob_encode(c->enc, args, &c->out, err, sizeof err);
    gp_err we = GP_OK;
    if (e == GP_OK &&
        (we = gp__stream_write(c->io, c->out.data, c->out.len, timeout_ms, NULL, 0)) != GP_OK)
        snprintf(err, sizeof err, "net/rpc: write %s: %s", method, gp_strerror(we));
    pthread_mutex_unlock(&c->wmu);
    pthread_mutex_lock(&c->mu);
    if (e == GP_OK && we != GP_OK && !c->reading && !c->dead) {
        /* The server may have refused this request with words (a body over
         * its size cap) before it reset the stream: read what came. */
        c->reading = 1;
        int done = 0;
        while (!done) {
            pthread_mutex_unlock(&c->mu);
            gp_err re = read_response(c, 200);
            pthread_mutex_lock(&c->mu);
            done = p->done || re != GP_OK;
        }
        c->reading = 0;
        pass_role_locked(c);
        if (p->done) { /* read_response unlinked it */
            kill_locked(c, we, "%s", err);
            pthread_mutex_unlock(&c->mu);
            gp_err pe = p->err ? p->err : we;
            set_status(st, pe, p->err ? p->msg : err);
            gp__gob_value_free(p->reply);
            pthread_cond_destroy(&p->cv);
            return pe;
        }
    }
    if (e != GP_OK || we != GP_OK) {
        /* A half-written request breaks the stream for everyone; an encode
         * error (nothing written) fails only this call. */
        unlink_seq_locked(c, p->seq);
        if (we != GP_OK)
            kill_locked(c, we, "%s", err);
        pthread_mutex_unlock(&c->mu);
        pthread_cond_destroy(&p->cv);
        set_status(st, e != GP_OK ? e : we, err);
        return e != GP_OK ? e : we;
    }
    int timed_out = 0;
    while (!p->done && !c->dead && !timed_out) {
        if (!c->reading) {
            c->reading = 1;
            pthread_mutex_unlock(&c->mu);
            int left = timeout_ms < 0 ? -1 : ms_left(&dl);
            gp_err re = left == 0 ? GP_ETIMEDOUT : read_response(c, left);
            pthread_mutex_lock(&c->mu);
            c->reading = 0;
            pass_role_locked(c); /* another waiter reads now */
            if (re == GP_ETIMEDOUT && !p->done)
                timed_out = 1;
            continue;
        }
        if (timeout_ms < 0)
            pthread_cond_wait(&p->cv, &c->mu);
        else if (pthread_cond_timedwait(&p->cv, &c->mu, &dl) != 0 && ms_left(&dl) == 0)
            timed_out = 1;
    }
    if (!p->done) {
        gp_err fe = c->dead ? c->dead_err : GP_ETIMEDOUT;
        unlink_seq_locked(c, p->seq);
        if (c->dead) {
            set_status(st, fe, c->dead_msg);
        } else {
            char m[160];
            snprintf(m, sizeof m, "net/rpc: %s: no reply within %d ms", method, timeout_ms);
            set_status(st, fe, m);
            /* A later reader drops the late reply and frees the copy. Without
             * memory for it the late reply reads as an unknown Seq and ends
             * the client, as a broken stream would. */
            pending *gone = calloc(1, sizeof *gone);
            if (gone) {
                gone->seq = p->seq;
                gone->abandoned = 1;
                gone->next = c->calls;
                c->calls = gone;
            }
        }
        pass_role_locked(c); /* it may have been passed to this call */
        pthread_mutex_unlock(&c->mu);
        pthread_cond_destroy(&p->cv);
        return fe;
    }
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&p->cv);
    e = p->err;
    set_status(st, e, p->msg);
    if (reply)
        *reply = p->reply;
    else
        gp__gob_value_free(p->reply);
    return e;
}

void gp__rpc_client_free(gp__rpc_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    kill_locked(c, GP_ECLOSED, "net/rpc: client closed");
    pthread_mutex_unlock(&c->mu);
    gp__stream_shutdown(c->io);
    /* No call is in progress (the contract), so nobody reads. */
    while (c->calls) {
        pending *p = c->calls;
        c->calls = p->next;
        gp__gob_value_free(p->reply);
        free(p);
    }
    reader_free(&c->rd);
    gp__gob_encoder_free(c->enc);
    gp__gob_buf_free(&c->out);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- server ------------------------------------------------------------------ */

/* Leader/follower: the threads take turns reading (the role: rd, stop).
 * The reader of a call runs it itself, so a call costs no thread hop:
 *   - if more is already pending (bytes of the next request buffered here
 *     or in the stream), it hands the role on first (wakes a follower, or
 *     starts one, up to `workers`), so calls overlap as with Go's goroutine
 *     per call;
 *   - else it keeps the role while the call runs ("inline"): no thread is
 *     woken. If a request arrives meanwhile (the stream's watch hook, see
 *     rpc_codec.h), a follower takes the role over from it; when the call
 *     ends, a runner that still has the role reads on.
 * The role is a flag under mu, with a condition for followers. */
typedef struct server {
    gp__stream *io;
    gp__rpc_serve_opts o;
    msg_reader rd;
    int stop; /* EOF or error seen: no more reading (under mu) */
    gp_err err;
    char errmsg[GP_STATUS_MSG_MAX];

    gp__gob_encoder *enc;
    gp__gob_buf out;
    pthread_mutex_t wmu; /* enc, out, the write side */

    pthread_mutex_t mu; /* the role, the counts below and the thread list */
    pthread_cond_t cv;  /* followers: the role may be free */
    int *owner;         /* the role's holder (its serve_one `held`), NULL: free */
    int inline_run;     /* its holder is running a call inline: a follower may take over */
    int arrived;        /* bytes arrived that nobody was reading (the watch hook) */
    int waiting;        /* threads waiting for the role */
    int nthreads;
    pthread_t *threads;
} server;

static void set_error(server *s, gp_err e, const char *msg)
{
    if (s->err == GP_OK) {
        s->err = e;
        snprintf(s->errmsg, sizeof s->errmsg, "%s", msg);
    }
    s->stop = 1;
}

/* Runs one call and writes its reply. */
static void run_call(server *s, const char *method, uint64_t seq, gp__gob_value *args)
{
    gp__rpc_reply reply;
    memset(&reply, 0, sizeof reply);
    char msg[GP_STATUS_MSG_MAX] = "";
    gp_err he;
    if (!strchr(method, '.')) {
        he = GP_ENOTFOUND;
        snprintf(msg, sizeof msg, "rpc: service/method request ill-formed: %s", method);
    } else {
        he = s->o.call(s->o.ctx, method, args, &reply, msg, sizeof msg);
        if (he != GP_OK && !msg[0])
            snprintf(msg, sizeof msg, "%s", gp_strerror(he));
        if (he == GP_OK && !reply.value.type)
            reply.value.type = &gp_gob_empty_struct_type;
    }
    char err[GP_STATUS_MSG_MAX];
    pthread_mutex_lock(&s->wmu);
    s->out.len = 0;
    gp_err e =
        gp__gob_put_response(s->enc, &s->out, method, seq, he == GP_OK ? "" : msg, err, sizeof err);
    if (e == GP_OK) {
        if (he == GP_OK)
            e = gp__gob_encode(s->enc, &reply.value, &s->out, err, sizeof err);
        else
            e = gp__gob_put_empty_struct(s->enc, &s->out, err, sizeof err);
    }
    if (e == GP_OK && (e = gp__stream_write(s->io, s->out.data, s->out.len, -1, NULL, 0)) != GP_OK)
        snprintf(err, sizeof err, "net/rpc: write reply to %s: %s", method, gp_strerror(e));
    pthread_mutex_unlock(&s->wmu);
    if (reply.release)
        reply.release(&reply);
    else
        gp__gob_value_clear(&reply.value);
    if (e != GP_OK) {
        /* The stream is broken: wake the reader (it may be in a read),
         * then record why. */
        gp__stream_shutdown(s->io);
        pthread_mutex_lock(&s->mu);
        set_error(s, e, err);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    if (s->o.after_reply)
        s->o.after_reply(s->o.ctx, method, e != GP_OK ? e : he);
}

/* An error Response for `seq` with an empty body; best effort. */
static void reply_error(server *s, const char *method, uint64_t seq, const char *msg)
{
    char err[GP_STATUS_MSG_MAX];
    pthread_mutex_lock(&s->wmu);
    s->out.len = 0;
    if (gp__gob_put_response(s->enc, &s->out, method, seq, msg, err, sizeof err) == GP_OK &&
        gp__gob_put_empty_struct(s->enc, &s->out, err, sizeof err) == GP_OK)
        gp__stream_write(s->io, s->out.data, s->out.len, 1000, NULL, 0);
    pthread_mutex_unlock(&s->wmu);
}

static void *serve_thread(void *arg);

/* The watch hook: bytes arrived on the stream while no thread read it. */
static void on_arrival(void *arg)
{
    server *s = arg;
    pthread_mutex_lock(&s->mu);
    s->arrived = 1;
    if (s->inline_run && s->waiting)
        pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Whether the next request has begun to arrive: bytes buffered here, or
 * any the stream has now (read without waiting). Holding the role. */
static int more_pending(server *s)
{
    msg_reader *r = &s->rd;
    if (r->len > 0)
        return 1;
    if (!r->buf || r->cap - r->off - r->len == 0)
        return 0;
    size_t n = 0;
    gp_err e =
        gp__stream_read(r->io, r->buf + r->off + r->len, r->cap - r->off - r->len, 0, &n, NULL, 0);
    if (e == GP_ETIMEDOUT)
        return 0;
    r->len += n;
    return 1; /* bytes, EOF or an error: the next reader deals with them */
}

/* Starts a follower if none waits and the cap allows. mu held. */
static void ensure_follower_locked(server *s)
{
    if (s->waiting == 0 && s->nthreads < s->o.workers - 1 &&
        pthread_create(&s->threads[s->nthreads], NULL, serve_thread, s) == 0)
        s->nthreads++;
}

/* One turn: read a call holding the role (*held: already ours), run it.
 * Returns 0 when serving is over (the role given up). */
static int serve_one(server *s, int *held)
{
    pthread_mutex_lock(&s->mu);
    if (!*held) {
        s->waiting++;
        while (!s->stop && s->owner && !(s->inline_run && s->arrived))
            pthread_cond_wait(&s->cv, &s->mu);
        s->waiting--;
        if (s->stop) {
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        s->inline_run = 0; /* taken over from a runner, if one had it */
        s->owner = held;
        *held = 1;
    }
    if (s->stop) {
        s->owner = NULL;
        *held = 0;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    pthread_mutex_unlock(&s->mu);
    char err[GP_STATUS_MSG_MAX];
    gp__gob_value *hdr = NULL, *args = NULL;
    const char *method = NULL;
    uint64_t seq = 0;
    gp_err e = read_value(&s->rd, -1, &hdr, err, sizeof err);
    if (e == GP_OK)
        e = gp__gob_get_request(hdr, &method, &seq, err, sizeof err);
    if (e == GP_OK) {
        e = read_value(&s->rd, -1, &args, err, sizeof err);
        if (e == GP_ECLOSED)
            e = GP_EPROTO; /* EOF between header and body */
    }
    if (e != GP_OK) {
        int clean = !method && e == GP_ECLOSED && strcmp(err, "EOF") == 0;
        /* A body over the size cap: say so to the caller, as Go's server
         * answers a request it read the header of; the stream cannot go on
         * (the body is unread), so reset it: a peer still writing that body
         * must not wait for a window that never opens. */
        if (method && e == GP_EMSGSIZE)
            reply_error(s, method, seq, err);
        if (method)
            gp__stream_shutdown(s->io); /* on a yamux stream: RST */
        pthread_mutex_lock(&s->mu);
        if (clean)
            s->stop = 1;
        else
            set_error(s, e, err);
        s->owner = NULL;
        *held = 0;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        gp__gob_value_free(hdr);
        return 0;
    }
    /* Someone must read the next call while this one runs: hand the role
     * on if the next one is already coming, else keep it (see above). */
    pthread_mutex_lock(&s->mu);
    s->arrived = 0;
    pthread_mutex_unlock(&s->mu);
    int more = s->o.workers > 1 && more_pending(s);
    pthread_mutex_lock(&s->mu);
    if (s->o.workers <= 1) {
        /* sequential: the role stays ours */
    } else if (more || s->arrived || !s->o.watch) {
        s->owner = NULL;
        *held = 0;
        if (s->waiting)
            pthread_cond_signal(&s->cv);
        else
            ensure_follower_locked(s);
    } else {
        s->inline_run = 1;
        ensure_follower_locked(s); /* to take over if a request comes */
    }
    pthread_mutex_unlock(&s->mu);
    run_call(s, method, seq, args);
    gp__gob_value_free(args);
    gp__gob_value_free(hdr);
    if (*held && s->o.workers > 1) {
        pthread_mutex_lock(&s->mu);
        if (s->owner == held)
            s->inline_run = 0; /* nobody took over: read on */
        else
            *held = 0; /* a follower has the role now */
        pthread_mutex_unlock(&s->mu);
    }
    return 1;
}

static void *serve_thread(void *arg)
{
    server *s = arg;
    int held = 0;
    while (serve_one(s, &held))
        ;
    return NULL;
}

gp_err gp__rpc_serve_ex(gp__stream *io, const gp__rpc_serve_opts *o, char *err, size_t errlen)
{
    if (!io) {
        snprintf(err, errlen, "net/rpc: no stream to serve");
        return GP_EINVAL;
    }
    server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "net/rpc: out of memory");
        gp__stream_close_write(io);
        return GP_ENOMEM;
    }
    s->io = io;
    s->o = *o;
    s->rd.io = io;
    const gp__gob_limits *lim = o->lim;
    gp__gob_buf_init(&s->out, lim && lim->max_message ? lim->max_message + 16 : 0);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    gp_err e = gp__gob_decoder_new(lim, &s->rd.dec);
    if (e == GP_OK)
        e = gp__gob_encoder_new(&s->enc);
    if (e == GP_OK && o->workers > 1 &&
        !(s->threads = calloc((size_t)o->workers, sizeof *s->threads)))
        e = GP_ENOMEM;
    if (e != GP_OK) {
        snprintf(err, errlen, "net/rpc: out of memory");
    } else {
        if (!s->threads)
            s->o.workers = 1;
        if (s->o.watch && s->o.workers > 1)
            s->o.watch(s->o.watch_ctx, on_arrival, s);
        serve_thread(s);
        if (s->o.watch && s->o.workers > 1)
            s->o.watch(s->o.watch_ctx, NULL, NULL); /* no call after this returns */
        /* Every thread ends at the stop; the calls they were running end
         * first (their replies may still go out). */
        for (int i = 0; i < s->nthreads; i++)
            pthread_join(s->threads[i], NULL);
        e = s->err;
        snprintf(err, errlen, "%s", e != GP_OK ? s->errmsg : "");
    }
    gp__stream_close_write(io);
    gp__gob_encoder_free(s->enc);
    gp__gob_buf_free(&s->out);
    reader_free(&s->rd);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->threads);
    free(s);
    return e;
}

/* The simple handler form on top of the general server. */
typedef struct simple {
    gp__rpc_handler h;
    void *ctx;
} simple;

static gp_err simple_call(void *ctx, const char *method, gp__gob_value *args, gp__rpc_reply *reply,
                          char *errmsg, size_t errlen)
{
    simple *sm = ctx;
    return sm->h(sm->ctx, method, args, &reply->value, errmsg, errlen);
}

gp_err gp__rpc_serve(gp__stream *io, const gp__gob_limits *lim, gp__rpc_handler h, void *ctx,
                     char *err, size_t errlen)
{
    simple sm = {h, ctx};
    gp__rpc_serve_opts o = {.lim = lim, .call = simple_call, .ctx = &sm, .workers = 1};
    return gp__rpc_serve_ex(io, &o, err, errlen);
}
