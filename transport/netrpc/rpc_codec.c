/* net/rpc over gob: see rpc_codec.h. */
#include "transport/netrpc/rpc_codec.h"

#include "transport/netrpc/gob_rpc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_CHUNK 16384

/* ---- io over a yamux stream ----------------------------------------------- */

static gp_err mux_read(void *ctx, void *buf, size_t cap, int timeout_ms, size_t *n)
{
    return gp__mux_stream_read(ctx, buf, cap, timeout_ms, n);
}

static gp_err mux_write(void *ctx, const void *buf, size_t len, int timeout_ms)
{
    return gp__mux_stream_write(ctx, buf, len, timeout_ms);
}

static void mux_close(void *ctx)
{
    gp__mux_stream_close(ctx);
}

static void mux_abort(void *ctx)
{
    gp__mux_stream_reset(ctx);
}

gp_rpc_io gp__rpc_io_mux(gp_mux_stream *st)
{
    return (gp_rpc_io){st, mux_read, mux_write, mux_close, mux_abort};
}

/* ---- gob message reader ------------------------------------------------------ */

typedef struct msg_reader {
    gp_rpc_io io;
    gp_gob_decoder *dec;
    uint8_t *buf;
    size_t off, len, cap;
} msg_reader;

/* The next value on the stream (type definitions absorbed). GP_ECLOSED
 * with err "EOF" at a clean end between messages. */
static gp_err read_value(msg_reader *r, int timeout_ms, gp_gob_value **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t max = gp__gob_decoder_max_message(r->dec);
    for (;;) {
        const uint8_t *body;
        size_t blen, used;
        gp_err e = gp__gob_frame(r->buf + r->off, r->len, max, &body, &blen, &used, err, errlen);
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
        e = r->io.read(r->io.ctx, r->buf + r->off + r->len, r->cap - r->off - r->len, timeout_ms, &n);
        if (e != GP_OK) {
            snprintf(err, errlen, "net/rpc: read: %s", gp_strerror(e));
            return e;
        }
        if (n == 0) {
            if (r->len == 0) {
                snprintf(err, errlen, "EOF");
                return GP_ECLOSED;
            }
            snprintf(err, errlen, "net/rpc: unexpected EOF inside a gob message (%zu bytes buffered)",
                     r->len);
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

typedef struct pending {
    uint64_t seq;
    int done, abandoned;
    gp_err err;
    char msg[GP_STATUS_MSG_MAX];
    gp_gob_value *reply;
    struct pending *next;
} pending;

struct gp_rpc_client {
    gp_rpc_io io;
    msg_reader rd;
    gp_gob_encoder *enc;
    gp_gob_buf out;
    pthread_mutex_t wmu; /* encoder, out buffer, the write side */
    pthread_mutex_t mu;  /* seq, pending list, dead */
    pthread_cond_t cv;
    pthread_t reader;
    uint64_t seq;
    pending *calls;
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
    snprintf(st->msg, sizeof st->msg, "%s", msg);
}

/* Marks the client dead; every waiting call wakes with the reason. */
static void kill_locked(gp_rpc_client *c, gp_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kill_locked(gp_rpc_client *c, gp_err e, const char *fmt, ...)
{
    if (c->dead)
        return;
    c->dead = 1;
    c->dead_err = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->dead_msg, sizeof c->dead_msg, fmt, ap);
    va_end(ap);
    pthread_cond_broadcast(&c->cv);
}

static pending *unlink_seq_locked(gp_rpc_client *c, uint64_t seq)
{
    for (pending **p = &c->calls; *p; p = &(*p)->next)
        if ((*p)->seq == seq) {
            pending *found = *p;
            *p = found->next;
            return found;
        }
    return NULL;
}

static void *client_reader(void *arg)
{
    gp_rpc_client *c = arg;
    char err[GP_STATUS_MSG_MAX];
    for (;;) {
        gp_gob_value *hdr = NULL, *body = NULL;
        gp_err e = read_value(&c->rd, -1, &hdr, err, sizeof err);
        if (e != GP_OK) {
            pthread_mutex_lock(&c->mu);
            if (e == GP_ECLOSED && strcmp(err, "EOF") == 0)
                kill_locked(c, GP_ECLOSED, "net/rpc: connection closed by the server");
            else
                kill_locked(c, e, "%s", err);
            pthread_mutex_unlock(&c->mu);
            break;
        }
        const char *method, *rpc_err;
        uint64_t seq;
        e = gp__gob_get_response(hdr, &method, &seq, &rpc_err, err, sizeof err);
        if (e == GP_OK)
            e = read_value(&c->rd, -1, &body, err, sizeof err);
        pthread_mutex_lock(&c->mu);
        if (e != GP_OK) {
            kill_locked(c, e == GP_ECLOSED ? GP_EPROTO : e, "%s",
                        e == GP_ECLOSED ? "net/rpc: EOF between a response header and its body" : err);
            pthread_mutex_unlock(&c->mu);
            gp__gob_value_free(hdr);
            break;
        }
        pending *p = unlink_seq_locked(c, seq);
        if (!p) {
            kill_locked(c, GP_EPROTO, "net/rpc: response for unknown Seq %llu (method %s)",
                        (unsigned long long)seq, method);
            pthread_mutex_unlock(&c->mu);
            gp__gob_value_free(hdr);
            gp__gob_value_free(body);
            break;
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
            pthread_cond_broadcast(&c->cv);
        }
        pthread_mutex_unlock(&c->mu);
        gp__gob_value_free(hdr);
        gp__gob_value_free(body);
    }
    return NULL;
}

gp_err gp__rpc_client_new(gp_rpc_io io, const gp_gob_limits *lim, gp_rpc_client **out)
{
    *out = NULL;
    gp_rpc_client *c = calloc(1, sizeof *c);
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
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &a);
    pthread_condattr_destroy(&a);
    if (pthread_create(&c->reader, NULL, client_reader, c) != 0) {
        gp__gob_encoder_free(c->enc);
        gp__gob_decoder_free(c->rd.dec);
        pthread_mutex_destroy(&c->wmu);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
        return GP_ESYS;
    }
    *out = c;
    return GP_OK;
}

gp_err gp__rpc_call(gp_rpc_client *c, const char *method, const gp_gob_value *args,
                    gp_gob_value **reply, int timeout_ms, gp_status *st)
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
    pending *p = calloc(1, sizeof *p);
    if (!p) {
        set_status(st, GP_ENOMEM, "net/rpc: out of memory");
        return GP_ENOMEM;
    }
    char err[GP_STATUS_MSG_MAX];
    /* Seq order on the wire follows the write lock, as Go's client. */
    pthread_mutex_lock(&c->wmu);
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        gp_err e = c->dead_err;
        set_status(st, e, c->dead_msg);
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->wmu);
        free(p);
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
    if (e == GP_OK && (we = c->io.write(c->io.ctx, c->out.data, c->out.len, timeout_ms)) != GP_OK)
        snprintf(err, sizeof err, "net/rpc: write %s: %s", method, gp_strerror(we));
    pthread_mutex_unlock(&c->wmu);
    pthread_mutex_lock(&c->mu);
    if (e != GP_OK || we != GP_OK) {
        /* A half-written request breaks the stream for everyone; an encode
         * error (nothing written) fails only this call. */
        unlink_seq_locked(c, p->seq);
        if (we != GP_OK)
            kill_locked(c, we, "%s", err);
        pthread_mutex_unlock(&c->mu);
        free(p);
        set_status(st, e != GP_OK ? e : we, err);
        return e != GP_OK ? e : we;
    }
    while (!p->done && !c->dead) {
        if (timeout_ms < 0)
            pthread_cond_wait(&c->cv, &c->mu);
        else if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > dl.tv_sec || (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec))
                break;
        }
    }
    if (!p->done) {
        gp_err fe = c->dead ? c->dead_err : GP_ETIMEDOUT;
        if (c->dead) {
            set_status(st, fe, c->dead_msg);
            unlink_seq_locked(c, p->seq);
            free(p);
        } else {
            char m[160];
            snprintf(m, sizeof m, "net/rpc: %s: no reply within %d ms", method, timeout_ms);
            set_status(st, fe, m);
            p->abandoned = 1; /* the reader drops the late reply and frees p */
        }
        pthread_mutex_unlock(&c->mu);
        return fe;
    }
    pthread_mutex_unlock(&c->mu);
    e = p->err;
    set_status(st, e, p->msg);
    if (reply)
        *reply = p->reply;
    else
        gp__gob_value_free(p->reply);
    free(p);
    return e;
}

void gp__rpc_client_free(gp_rpc_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    kill_locked(c, GP_ECLOSED, "net/rpc: client closed");
    pthread_mutex_unlock(&c->mu);
    if (c->io.abort)
        c->io.abort(c->io.ctx);
    else if (c->io.close)
        c->io.close(c->io.ctx);
    pthread_join(c->reader, NULL);
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
    pthread_cond_destroy(&c->cv);
    free(c);
}

/* ---- server ------------------------------------------------------------------ */

gp_err gp__rpc_serve(gp_rpc_io io, const gp_gob_limits *lim, gp_rpc_handler h, void *ctx,
                     char *err, size_t errlen)
{
    msg_reader rd = {.io = io};
    gp_gob_encoder *enc = NULL;
    gp_gob_buf out;
    gp__gob_buf_init(&out, lim && lim->max_message ? lim->max_message + 16 : 0);
    gp_err e = gp__gob_decoder_new(lim, &rd.dec);
    if (e == GP_OK)
        e = gp__gob_encoder_new(&enc);
    while (e == GP_OK) {
        gp_gob_value *hdr = NULL, *args = NULL;
        const char *method;
        uint64_t seq;
        e = read_value(&rd, -1, &hdr, err, errlen);
        if (e == GP_ECLOSED && strcmp(err, "EOF") == 0) {
            e = GP_OK;
            err[0] = '\0';
            break;
        }
        if (e == GP_OK)
            e = gp__gob_get_request(hdr, &method, &seq, err, errlen);
        if (e == GP_OK) {
            e = read_value(&rd, -1, &args, err, errlen);
            if (e == GP_ECLOSED)
                e = GP_EPROTO; /* EOF between header and body */
        }
        if (e != GP_OK) {
            gp__gob_value_free(hdr);
            break;
        }
        gp_gob_value reply = {0};
        char msg[GP_STATUS_MSG_MAX] = "";
        gp_err he;
        if (!strchr(method, '.')) {
            he = GP_ENOTFOUND;
            snprintf(msg, sizeof msg, "rpc: service/method request ill-formed: %s", method);
        } else {
            he = h(ctx, method, args, &reply, msg, sizeof msg);
            if (he != GP_OK && !msg[0])
                snprintf(msg, sizeof msg, "%s", gp_strerror(he));
            if (he == GP_OK && !reply.type)
                reply.type = &gp_gob_empty_struct_type;
        }
        out.len = 0;
        e = gp__gob_put_response(enc, &out, method, seq, he == GP_OK ? "" : msg, err, errlen);
        if (e == GP_OK) {
            if (he == GP_OK)
                e = gp__gob_encode(enc, &reply, &out, err, errlen);
            else
                e = gp__gob_put_empty_struct(enc, &out, err, errlen);
        }
        if (e == GP_OK && (e = io.write(io.ctx, out.data, out.len, -1)) != GP_OK)
            snprintf(err, errlen, "net/rpc: write reply to %s: %s", method, gp_strerror(e));
        gp__gob_value_clear(&reply);
        gp__gob_value_free(args);
        gp__gob_value_free(hdr);
    }
    if (io.close)
        io.close(io.ctx);
    gp__gob_encoder_free(enc);
    gp__gob_buf_free(&out);
    reader_free(&rd);
    return e;
}
