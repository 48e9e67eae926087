/* net/rpc over gob: see rpc_codec.h. */
#include "transport/base/sync.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"

#include "transport/wire/netrpc/gob/gob_rpc.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
 * the late reply, or by gp__rpc_client_free).
 * A caller sleeps on its entry's `wake` word (a futex), not on a condition
 * variable: whoever wakes it sets the word under mu but makes the wake-up
 * call after releasing mu, so the caller does not wake only to block on
 * mu. That call may come after the caller returned: a futex wake of a
 * word nobody waits on does nothing, and a waiter that finds its word set
 * re-checks its state under mu anyway. */
typedef struct pending {
    uint64_t seq;
    int done, abandoned;
    _Atomic int wake; /* 1: look again (set under mu); the futex its caller sleeps on */
    gp_err err;
    char msg[GP_STATUS_MSG_MAX];
    gp__gob_value *reply;
    struct pending *next;
} pending;

/* Requests of concurrent callers wait in `pend` while one of them writes:
 * at most this many bytes (or one request, if bigger) before a caller
 * waits for the writer to take them. */
#define PEND_MAX (256 * 1024)

struct gp__rpc_client {
    gp__stream *io;
    msg_reader rd; /* owned by whoever holds the reading role */
    gp__gob_encoder *enc;
    gp__gob_buf out; /* a caller's request being encoded */
    /* The write side, combined: one caller at a time writes (`writing`);
     * the others append their encoded request to `pend` and go on to wait
     * for their reply, and the writer sends `pend` before it stops. */
    gp__gob_buf wout;  /* the writer's own request */
    gp__gob_buf pend;  /* requests queued behind the writer, in Seq order */
    gp__gob_buf wpend; /* the queued requests the writer is sending */
    int writing;
    pthread_cond_t wcv;  /* a caller waits for room in pend */
    pthread_mutex_t wmu; /* encoder, the buffers above, writing */
    pthread_mutex_t mu;  /* seq, pending list, dead, reading */
    uint64_t seq;
    pending *calls;
    int reading;
    int dead;
    gp_err dead_err;
    char dead_msg[GP_STATUS_MSG_MAX];
};

/* A caller to wake: its word, and a futex bit from its Seq, so that a
 * late wake-up meant for a caller's previous call (same stack address)
 * rarely disturbs its next one. */
typedef struct waker {
    _Atomic int *w;
    unsigned bit;
} waker;

static unsigned seq_bit(uint64_t seq)
{
    return 1u << (seq & 31);
}

/* Sets q's word (mu held); the caller then wakes it with wake_call. */
static waker mark_locked(pending *q)
{
    atomic_store_explicit(&q->wake, 1, memory_order_release);
    return (waker){&q->wake, seq_bit(q->seq)};
}

static void wake_call(waker k)
{
    if (k.w)
        syscall(SYS_futex, (void *)k.w, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, k.bit);
}

/* Sleeps while q's word is 0, until woken or the CLOCK_MONOTONIC deadline
 * (NULL: none); returns early on signals and spurious wake-ups, which the
 * caller's loop absorbs. */
static void sleep_call(pending *q, const struct timespec *dl)
{
    if (atomic_load_explicit(&q->wake, memory_order_acquire))
        return;
    syscall(SYS_futex, (void *)&q->wake, FUTEX_WAIT_BITSET_PRIVATE, 0, dl, NULL, seq_bit(q->seq));
}

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
            wake_call(mark_locked(q)); /* rare: under mu */
}

/* The reading role is free: mark one caller still waiting for its reply
 * to take it (only that one: a response wakes only its own caller).
 * Returns its word for wake_call once mu is released, or NULL. */
static waker pass_role_locked(gp__rpc_client *c)
{
    waker none = {NULL, 0};
    if (c->reading)
        return none;
    for (pending *q = c->calls; q; q = q->next)
        if (!q->done && !q->abandoned)
            return mark_locked(q);
    return none;
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
    waker w = {NULL, 0};
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
        w = mark_locked(p);
    }
    pthread_mutex_unlock(&c->mu);
    wake_call(w);
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
    size_t max = lim && lim->max_message ? lim->max_message + 16 : 0;
    gp__gob_buf_init(&c->out, max);
    gp__gob_buf_init(&c->wout, max);
    gp__gob_buf_init(&c->pend, c->out.max + PEND_MAX);
    gp__gob_buf_init(&c->wpend, c->out.max + PEND_MAX);
    if (gp__gob_decoder_new(lim, &c->rd.dec) != GP_OK || gp__gob_encoder_new(&c->enc) != GP_OK) {
        gp__gob_decoder_free(c->rd.dec);
        free(c);
        return GP_ENOMEM;
    }
    pthread_cond_init(&c->wcv, NULL);
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
    char err[GP_STATUS_MSG_MAX];
    /* Seq order on the wire follows the write lock, as Go's client. */
    pthread_mutex_lock(&c->wmu);
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        gp_err e = c->dead_err;
        set_status(st, e, c->dead_msg);
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->wmu);
        return e;
    }
    p->seq = c->seq++;
    p->next = c->calls;
    c->calls = p;
    pthread_mutex_unlock(&c->mu);
    c->out.len = 0;
    c->out.ok = 1;
    gp_err e = gp__gob_put_request(c->enc, &c->out, method, p->seq, err, sizeof err);
    if (e == GP_OK)
        e = gp__gob_encode(c->enc, args, &c->out, err, sizeof err);
    gp_err we = GP_OK;
    while (e == GP_OK && c->writing && c->pend.len > 0 && c->pend.len + c->out.len > PEND_MAX)
        pthread_cond_wait(&c->wcv, &c->wmu);
    if (e == GP_OK && c->writing) {
        /* Another caller is writing: it sends this request too. */
        gp__gob_put_bytes(&c->pend, c->out.data, c->out.len);
        if (!c->pend.ok) {
            /* The encoder counts its type definitions as sent: the
             * stream cannot go on without them. */
            c->pend.ok = 1;
            we = GP_ENOMEM;
            snprintf(err, sizeof err, "net/rpc: out of memory queueing %s", method);
        }
    } else if (e == GP_OK) {
        c->writing = 1;
        gp__gob_buf t = c->out;
        c->out = c->wout;
        c->wout = t;
        pthread_mutex_unlock(&c->wmu);
        we = gp__stream_write(c->io, c->wout.data, c->wout.len, timeout_ms, NULL, 0);
        if (we != GP_OK)
            snprintf(err, sizeof err, "net/rpc: write %s: %s", method, gp_strerror(we));
        pthread_mutex_lock(&c->wmu);
        /* Send what queued meanwhile (its callers wait for replies). */
        while (we == GP_OK && c->pend.len > 0) {
            t = c->pend;
            c->pend = c->wpend;
            c->wpend = t;
            c->pend.len = 0;
            pthread_cond_broadcast(&c->wcv);
            pthread_mutex_unlock(&c->wmu);
            gp_err pe = gp__stream_write(c->io, c->wpend.data, c->wpend.len, timeout_ms, NULL, 0);
            pthread_mutex_lock(&c->wmu);
            c->wpend.len = 0;
            if (pe != GP_OK) {
                pthread_mutex_lock(&c->mu);
                kill_locked(c, pe, "net/rpc: write: %s", gp_strerror(pe));
                pthread_mutex_unlock(&c->mu);
                break;
            }
        }
        c->pend.len = 0; /* after a failed write: those calls fail with the client */
        c->writing = 0;
        pthread_cond_broadcast(&c->wcv);
    }
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
        wake_call(pass_role_locked(c)); /* rare: under mu */
        if (p->done) {                  /* read_response unlinked it */
            kill_locked(c, we, "%s", err);
            pthread_mutex_unlock(&c->mu);
            gp_err pe = p->err ? p->err : we;
            set_status(st, pe, p->err ? p->msg : err);
            gp__gob_value_free(p->reply);
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
        set_status(st, e != GP_OK ? e : we, err);
        return e != GP_OK ? e : we;
    }
    int timed_out = 0;
    waker tow = {NULL, 0}; /* a caller to wake once mu is released */
    while (!p->done && !c->dead && !timed_out) {
        if (!c->reading) {
            c->reading = 1;
            pthread_mutex_unlock(&c->mu);
            wake_call(tow);
            tow.w = NULL;
            int left = timeout_ms < 0 ? -1 : ms_left(&dl);
            gp_err re = left == 0 ? GP_ETIMEDOUT : read_response(c, left);
            pthread_mutex_lock(&c->mu);
            /* Own reply in: first deliver every other reply already read
             * (without waiting), so the next reader is woken once per
             * batch of replies, not once per reply. (What the stream had
             * came in with the last read: the codec's buffer holds it.) */
            while (re == GP_OK && p->done && !c->dead && c->rd.len > 0) {
                pthread_mutex_unlock(&c->mu);
                gp_err de = read_response(c, 0);
                pthread_mutex_lock(&c->mu);
                if (de != GP_OK)
                    break;
            }
            c->reading = 0;
            tow = pass_role_locked(c); /* another waiter reads now */
            if (re == GP_ETIMEDOUT && !p->done)
                timed_out = 1;
            continue;
        }
        atomic_store_explicit(&p->wake, 0, memory_order_relaxed);
        pthread_mutex_unlock(&c->mu);
        wake_call(tow);
        tow.w = NULL;
        sleep_call(p, timeout_ms < 0 ? NULL : &dl);
        pthread_mutex_lock(&c->mu);
        if (timeout_ms >= 0 && !p->done && ms_left(&dl) == 0)
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
        waker next = pass_role_locked(c); /* it may have been passed to this call */
        pthread_mutex_unlock(&c->mu);
        wake_call(tow);
        wake_call(next);
        return fe;
    }
    pthread_mutex_unlock(&c->mu);
    wake_call(tow);
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
    gp__gob_buf_free(&c->wout);
    gp__gob_buf_free(&c->pend);
    gp__gob_buf_free(&c->wpend);
    pthread_cond_destroy(&c->wcv);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- server ------------------------------------------------------------------ */

/* Leader/follower: the threads take turns reading (the role: rd, stop).
 * The reader of a call runs it itself, so a call costs no thread hop:
 *   - it first takes every further request already received (a batch: up
 *     to BATCH_MAX, read without waiting) and runs them all, in order, on
 *     its own thread, holding the role ("inline"): no thread is woken per
 *     call, and a busy stream is read once per batch;
 *   - a lone request with more of the next one already arriving (bytes
 *     buffered that do not make a whole request) is handed over: the role
 *     goes to a follower (woken, or started, up to `workers`) that reads
 *     on while this call runs, so calls overlap as with Go's goroutine per
 *     call;
 *   - while it runs calls inline, a request that arrives (the stream's
 *     watch hook, see rpc_codec.h) lets a follower take the role over, and
 *     a queued call of its batch that has waited TAKEOVER_NS behind a slow
 *     one is taken by a follower (one follower naps with that timeout
 *     while batches come), so a slow or blocking call never holds up the
 *     calls behind it for long (a call may wait for a later one).
 * The role is a flag under mu, with a condition for followers. */
#define BATCH_MAX 32
#define TAKEOVER_NS (2 * 1000000)
/* Replies of a batch wait (`held`) while the same thread runs the next
 * queued call, up to this many bytes, so a batch's replies go out in few
 * writes. */
#define HELD_MAX (64 * 1024)
/* A follower keeps napping with TAKEOVER_NS this long after the last
 * batch, so a busy stream does not wake one per batch to watch it. */
#define BUSY_NS (50 * 1000000)

/* One request read off the stream. */
typedef struct request {
    gp__gob_value *hdr, *args;
    const char *method; /* in hdr */
    uint64_t seq;
} request;

typedef struct server {
    gp__stream *io;
    gp__rpc_serve_opts o;
    msg_reader rd;
    int stop; /* EOF or error seen: no more reading (under mu) */
    gp_err err;
    char errmsg[GP_STATUS_MSG_MAX];

    gp__gob_encoder *enc;
    gp__gob_buf out;
    gp__gob_buf held;    /* encoded replies not yet written (a batch's) */
    pthread_mutex_t wmu; /* enc, out, held, the write side */

    pthread_mutex_t mu;   /* the role, the counts below, the queue and the thread list */
    pthread_cond_t cv;    /* followers: the role may be free, or a queued call waits */
    int *owner;           /* the role's holder (its serve_one `held`), NULL: free */
    int inline_run;       /* its holder is running calls inline: a follower may take over */
    int arrived;          /* bytes arrived that nobody was reading (the watch hook) */
    int waiting;          /* threads waiting for the role */
    int napping;          /* a follower waits with TAKEOVER_NS (watches the queue) */
    request q[BATCH_MAX]; /* the inline runner's batch not yet started, a ring */
    int qhead, qlen;
    int64_t started_ns;      /* the last call of the queue started (or was queued) */
    int64_t batch_ns;        /* the last batch was queued */
    int deferred;            /* runners in a batch: they may hold replies in `held` */
    int64_t held_checked_ns; /* a follower wrote them during the call started then */
    int nthreads;
    pthread_t *threads;
} server;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void set_error(server *s, gp_err e, const char *msg)
{
    if (s->err == GP_OK) {
        s->err = e;
        snprintf(s->errmsg, sizeof s->errmsg, "%s", msg);
    }
    s->stop = 1;
}

/* The stream is broken: wake the reader (it may be in a read), then
 * record why. */
static void write_failed(server *s, gp_err e, const char *err)
{
    gp__stream_shutdown(s->io);
    pthread_mutex_lock(&s->mu);
    set_error(s, e, err);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Writes the held replies. wmu held. */
static gp_err write_held_wlocked(server *s, char *err, size_t errlen)
{
    gp_err e = GP_OK;
    if (s->held.len > 0 &&
        (e = gp__stream_write(s->io, s->held.data, s->held.len, -1, NULL, 0)) != GP_OK)
        snprintf(err, errlen, "net/rpc: write replies: %s", gp_strerror(e));
    s->held.len = 0;
    return e;
}

static void flush_held(server *s)
{
    char err[GP_STATUS_MSG_MAX];
    pthread_mutex_lock(&s->wmu);
    gp_err e = write_held_wlocked(s, err, sizeof err);
    pthread_mutex_unlock(&s->wmu);
    if (e != GP_OK)
        write_failed(s, e, err);
}

/* Runs one call and writes its reply, with the held ones; defer: this
 * thread runs another queued call next, so the reply may be held. */
static void run_call(server *s, const char *method, uint64_t seq, gp__gob_value *args, int defer)
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
    int fits = e == GP_OK && s->out.len <= HELD_MAX - s->held.len;
    if (e == GP_OK && (defer || s->held.len > 0) && fits) {
        gp__gob_put_bytes(&s->held, s->out.data, s->out.len); /* fits: no error */
        if (!defer)
            e = write_held_wlocked(s, err, sizeof err);
    } else if (e == GP_OK) {
        e = write_held_wlocked(s, err, sizeof err);
        if (e == GP_OK &&
            (e = gp__stream_write(s->io, s->out.data, s->out.len, -1, NULL, 0)) != GP_OK)
            snprintf(err, sizeof err, "net/rpc: write reply to %s: %s", method, gp_strerror(e));
    }
    pthread_mutex_unlock(&s->wmu);
    if (reply.release)
        reply.release(&reply);
    else
        gp__gob_value_clear(&reply.value);
    if (e != GP_OK)
        write_failed(s, e, err);
    if (s->o.after_reply)
        s->o.after_reply(s->o.ctx, method, e != GP_OK ? e : he);
}

static void request_free(request *rq)
{
    gp__gob_value_free(rq->args);
    gp__gob_value_free(rq->hdr);
    memset(rq, 0, sizeof *rq);
}

static void run_request(server *s, request *rq, int defer)
{
    run_call(s, rq->method, rq->seq, rq->args, defer);
    request_free(rq);
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

/* Reads the next request (header and argument), holding the role. With
 * timeout 0 it takes only what already arrived: GP_ETIMEDOUT with no
 * header means nothing (more) is here; the argument of a header read is
 * waited for, as it follows at once. */
static gp_err read_request(server *s, int timeout_ms, request *rq, char *err, size_t errlen)
{
    memset(rq, 0, sizeof *rq);
    gp_err e = read_value(&s->rd, timeout_ms, &rq->hdr, err, errlen);
    if (e == GP_OK)
        e = gp__gob_get_request(rq->hdr, &rq->method, &rq->seq, err, errlen);
    if (e == GP_OK) {
        e = read_value(&s->rd, -1, &rq->args, err, errlen);
        if (e == GP_ECLOSED)
            e = GP_EPROTO; /* EOF between header and body */
    }
    return e;
}

/* A read failed: serving ends (the role given up). */
static void read_failed(server *s, gp_err e, const char *err, request *rq, int *held)
{
    int clean = !rq->method && e == GP_ECLOSED && strcmp(err, "EOF") == 0;
    /* A body over the size cap: say so to the caller, as Go's server
     * answers a request it read the header of; the stream cannot go on
     * (the body is unread), so reset it: a peer still writing that body
     * must not wait for a window that never opens. */
    if (rq->method && e == GP_EMSGSIZE)
        reply_error(s, rq->method, rq->seq, err);
    if (rq->method)
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
    request_free(rq);
}

static void *serve_thread(void *arg);
static void ensure_follower_locked(server *s);

/* The watch hook: bytes arrived on the stream while no thread read it. */
static void on_arrival(void *arg)
{
    server *s = arg;
    pthread_mutex_lock(&s->mu);
    s->arrived = 1;
    if (s->inline_run && s->waiting)
        pthread_cond_signal(&s->cv);
    else if (s->inline_run)
        ensure_follower_locked(s); /* it takes the role at once */
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

/* Takes the oldest queued call. mu held, qlen > 0. */
static void pop_locked(server *s, request *rq)
{
    *rq = s->q[s->qhead];
    s->qhead = (s->qhead + 1) % BATCH_MAX;
    s->qlen--;
    s->started_ns = now_ns();
}

/* Drops the queued calls (serving stopped). mu held. */
static void drop_queue_locked(server *s)
{
    while (s->qlen > 0) {
        request rq;
        pop_locked(s, &rq);
        request_free(&rq);
    }
}

/* A follower's wait: for the role (returns 1), for a queued call stuck
 * behind a slow one (2, *rq taken), or for the end (0). mu held. */
static int follow_locked(server *s, request *rq)
{
    int got = 0;
    s->waiting++;
    while (!s->stop) {
        if (!s->owner || (s->inline_run && s->arrived)) {
            got = 1;
            break;
        }
        int64_t now = now_ns();
        int watch_q = s->qlen > 0;
        int watch_held = s->deferred && s->held_checked_ns != s->started_ns;
        if (watch_q && now - s->started_ns >= TAKEOVER_NS) {
            pop_locked(s, rq);
            got = 2;
            break;
        }
        if (watch_held && now - s->started_ns >= TAKEOVER_NS) {
            /* A runner's call is slow: the replies it holds go now. */
            s->held_checked_ns = s->started_ns;
            pthread_mutex_unlock(&s->mu);
            flush_held(s);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (!s->napping && (watch_q || watch_held || now - s->batch_ns < BUSY_NS)) {
            int64_t until = (watch_q || watch_held ? s->started_ns : now) + TAKEOVER_NS;
            struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
            s->napping = 1;
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            s->napping = 0;
        } else {
            pthread_cond_wait(&s->cv, &s->mu);
        }
    }
    s->waiting--;
    if (got == 2 && s->qlen > 0) {
        /* Someone else watches the rest of the queue now. */
        if (s->waiting)
            pthread_cond_signal(&s->cv);
        else
            ensure_follower_locked(s);
    }
    return got;
}

/* One turn: read a call (and the batch behind it) holding the role
 * (*held: already ours), run it. Returns 0 when serving is over (the role
 * given up). */
static int serve_one(server *s, int *held)
{
    pthread_mutex_lock(&s->mu);
    if (!*held) {
        request rq;
        int got = follow_locked(s, &rq);
        if (got == 0) {
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        if (got == 2) {
            pthread_mutex_unlock(&s->mu);
            flush_held(s); /* they waited for a slow call already */
            run_request(s, &rq, 0);
            return 1;
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
    request first;
    gp_err e = read_request(s, -1, &first, err, sizeof err);
    if (e != GP_OK) {
        read_failed(s, e, err, &first, held);
        return 0;
    }
    if (s->o.workers <= 1) { /* sequential: the role stays ours */
        run_request(s, &first, 0);
        return 1;
    }
    /* The batch: every further request already here (only with the watch
     * hook, which lets a follower take over from an inline runner). */
    request more[BATCH_MAX];
    int nmore = 0;
    request bad;
    char bad_err[GP_STATUS_MSG_MAX];
    gp_err be = GP_OK;
    /* Room in the queue: a runner that lost the role may still be working
     * through its batch (only the role's holder adds to the queue). */
    pthread_mutex_lock(&s->mu);
    int room = BATCH_MAX - s->qlen;
    pthread_mutex_unlock(&s->mu);
    /* What the stream had came in with the last read: the codec's
     * buffer holds it (nothing there: no batch, and no read tried). */
    while (s->o.watch && nmore < room && s->rd.len > 0) {
        be = read_request(s, 0, &bad, bad_err, sizeof bad_err);
        if (be == GP_ETIMEDOUT && !bad.hdr) {
            be = GP_OK;
            break;
        }
        if (be != GP_OK)
            break; /* handled once the batch ran, holding the role */
        more[nmore++] = bad;
    }
    /* Someone must read the next call while this one runs: hand the role
     * on if the next one is already coming, else keep it (see above). */
    pthread_mutex_lock(&s->mu);
    s->arrived = 0;
    pthread_mutex_unlock(&s->mu);
    int next = nmore == 0 && be == GP_OK && more_pending(s);
    pthread_mutex_lock(&s->mu);
    if (nmore == 0 && be == GP_OK && (next || s->arrived || !s->o.watch)) {
        s->owner = NULL;
        *held = 0;
        if (s->waiting)
            pthread_cond_signal(&s->cv);
        else
            ensure_follower_locked(s);
    } else {
        /* After a read error no follower may take the role: the error is
         * dealt with by this thread once its batch ran. */
        s->inline_run = be == GP_OK;
        for (int i = 0; i < nmore; i++)
            s->q[(s->qhead + s->qlen++) % BATCH_MAX] = more[i];
        if (nmore) {
            s->started_ns = s->batch_ns = now_ns();
            if (!s->napping && s->waiting)
                pthread_cond_signal(&s->cv); /* one follower watches the queue */
        }
        /* A lone call runs with no follower started: on_arrival starts
         * one if a request comes meanwhile (a thread is costly to start,
         * and most streams never see two calls at once). */
        if (nmore || be != GP_OK)
            ensure_follower_locked(s);
    }
    /* Replies are held only while this thread runs another queued call
     * next; after_reply hooks want theirs on the wire first. */
    int defer = s->qlen > 0 && !s->o.after_reply;
    s->deferred += defer; /* a napping follower watches what we hold */
    int counted = defer;
    pthread_mutex_unlock(&s->mu);
    run_request(s, &first, defer);
    for (;;) {
        request rq;
        pthread_mutex_lock(&s->mu);
        if (s->stop)
            drop_queue_locked(s);
        if (s->qlen == 0) {
            s->deferred -= counted;
            pthread_mutex_unlock(&s->mu);
            break;
        }
        pop_locked(s, &rq);
        defer = s->qlen > 0 && !s->o.after_reply;
        if (defer && !counted)
            s->deferred++, counted = 1;
        pthread_mutex_unlock(&s->mu);
        run_request(s, &rq, defer);
    }
    if (defer)
        flush_held(s); /* a follower took the call after our last one */
    if (be != GP_OK) {
        read_failed(s, be, bad_err, &bad, held);
        return 0;
    }
    if (*held) {
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
    gp__gob_buf_init(&s->held, HELD_MAX);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    gp__cond_init_monotonic(&s->cv);
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
    pthread_mutex_lock(&s->mu);
    drop_queue_locked(s); /* none, as every runner drains its batch; for safety */
    pthread_mutex_unlock(&s->mu);
    flush_held(s); /* nothing held either: every runner writes its last reply */
    gp__stream_close_write(io);
    gp__gob_encoder_free(s->enc);
    gp__gob_buf_free(&s->out);
    gp__gob_buf_free(&s->held);
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
