/* The host side of the netrpc wire: a gp_conn (transport/conn.h) over a
 * yamux client session. See netrpc.h and spec §2.2-§2.5. */
#include "transport/wire/netrpc/netrpc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/base/clock.h"
#include "transport/base/sync.h"
#include "transport/core/conn.h"
#include "transport/msg/msg.h"
#include "transport/wire/netrpc/gob/gob_pb.h"
#include "transport/wire/netrpc/gob/gob_rpc.h"
#include "transport/wire/netrpc/mux_broker.h"
#include "transport/yamux/mux_session.h"
#include "transport/yamux/mux_tls.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"
#include "transport/wire/netrpc/service.h"

/* Waits on the MuxBroker handshake, as go-plugin's broker. */
#define BROKER_WAIT_MS 5000
/* Ping's deadline when the client sets no call timeout. */
#define PING_DEFAULT_MS 30000
/* After Quit, how long the plugin's last output may take to arrive. */
#define STDIO_DRAIN_MS 500
/* Longest line forwarded from the plugin's stdout/stderr in one record. */
#define STDIO_LINE_MAX 4096

typedef struct nconn nconn;

typedef struct stdio_fwd {
    nconn *c;
    gp__mux_stream *st;
    const char *stream; /* "stdout" | "stderr" */
    gp_log_level level;
    pthread_t thread;
    int running;
    int ended; /* under c->mu: the stream reached its end */
    void (*sink)(void *ctx, const void *data, size_t len); /* NULL: log */
    void *sink_ctx;
} stdio_fwd;

struct nconn {
    gp_conn base;
    atomic_int refs; /* the conn itself + one per stub */
    gp__mux_session *sess;
    gp__mux_stream *ctl;
    gp__rpc_client *ctl_rpc;
    stdio_fwd out, errs;
    pthread_t broker;
    int broker_running;
    gp__mux_broker *mb; /* gp_conn_broker: callbacks the host serves */
    pthread_mutex_t mu; /* closing, ctl_busy */
    pthread_cond_t cv;
    int closing, ctl_busy;
    gp_logger log;
    int has_log;
    char log_name[64];
    int call_timeout_ms;
    size_t max_message; /* dispensed streams' gob cap; 0 = gob's default */
};

/* The dispensed stream as the net/rpc client reads it: the MuxBroker's
 * 4-byte ack comes first and is checked there, so the first call goes out
 * right behind the id instead of a round trip later (a go-plugin plugin
 * reads the id, acks, then serves the stream: the request waits in its
 * buffer). See ack_read. */
typedef struct ack_io {
    gp__stream base;
    gp__stream *inner; /* the mux stream's io */
    uint32_t id;
    uint8_t got[4];
    size_t ngot;      /* ack bytes read; the ack was checked at 4 */
    int64_t until_ms; /* gp__now_ms(): the ack is due by then */
    bool bad;         /* it was another id (in got): every read fails */
    /* Why the ack failed, for the calls' status (net/rpc reports its reads'
     * errors by code): written once, by the reading thread, then failed
     * is set. */
    char why[160];
    atomic_int failed;
} ack_io;

typedef struct nstub {
    gp_stub base;
    gp__mux_stream *st;
    ack_io io;
    gp__rpc_client *rpc;
    int call_timeout_ms;
} nstub;

static void conn_unref(nconn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
    }
}

static int timeout_of(const nconn *c)
{
    return c->call_timeout_ms > 0 ? c->call_timeout_ms : -1;
}

static void logf_(nconn *c, gp_log_level lv, const char *stream, const char *fmt, const char *arg)
{
    if (!c->has_log)
        return;
    gp_log_kv kv = {"stream", stream};
    gp_logf(&c->log, lv, c->log_name, stream ? &kv : NULL, stream ? 1 : 0, fmt, arg);
}

/* ---- stdout / stderr streams (3 and 5) ---------------------------------- */

/* Copies what comes on f's stream to its sink or, line by line, to the
 * logger (go-plugin copies them to SyncStdout/SyncStderr, which discard by
 * default), until the stream ends or until_ms passes (gp__now_ms; < 0:
 * no bound). */
static void copy_stdio(stdio_fwd *f, int64_t until_ms)
{
    char line[STDIO_LINE_MAX + 1];
    size_t len = 0;
    for (;;) {
        char buf[4096];
        size_t n = 0;
        int wait_ms = -1;
        if (until_ms >= 0) {
            int64_t left = until_ms - gp__now_ms();
            if (left <= 0)
                break;
            wait_ms = (int)left;
        }
        if (gp__mux_stream_read(f->st, buf, sizeof buf, wait_ms, &n) != GP_OK || n == 0)
            break;
        if (f->sink) { /* gp_client_config.stdout_sink / stderr_sink */
            f->sink(f->sink_ctx, buf, n);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (buf[i] != '\n' && len < STDIO_LINE_MAX) {
                line[len++] = buf[i];
                continue;
            }
            if (buf[i] != '\n')
                i--; /* full: flush, then take this byte again */
            if (len && line[len - 1] == '\r')
                len--;
            line[len] = '\0';
            logf_(f->c, f->level, f->stream, "%s", line);
            len = 0;
        }
    }
    if (len) {
        line[len] = '\0';
        logf_(f->c, f->level, f->stream, "%s", line);
    }
    pthread_mutex_lock(&f->c->mu);
    f->ended = 1;
    pthread_cond_broadcast(&f->c->cv);
    pthread_mutex_unlock(&f->c->mu);
}

static void *stdio_main(void *arg)
{
    copy_stdio(arg, -1);
    return NULL;
}

/* The stream's watch: its copier starts with the first bytes, so a plugin
 * that prints nothing costs the host no thread. Session lock held. */
static void stdio_arrived(void *arg)
{
    stdio_fwd *f = arg;
    if (!f->running) /* a failed start is tried again at the next bytes */
        f->running = gp__thread_start_small(&f->thread, stdio_main, f) == 0;
}

/* After Quit the plugin sends what it printed last and closes its stdout
 * and stderr streams: wait for both ends (at most ms) before the session
 * goes, so those bytes are not lost in flight. A stream with no copier yet
 * is read to its end here. */
static void wait_stdio_ends(nconn *c, int ms)
{
    int64_t until_ms = gp__now_ms() + ms;
    stdio_fwd *fs[2] = {&c->out, &c->errs};
    for (int i = 0; i < 2; i++) {
        gp__mux_stream_watch(fs[i]->st, NULL, NULL); /* no copier starts after this */
        if (!fs[i]->running)
            copy_stdio(fs[i], until_ms);
    }
    struct timespec until = gp__deadline_in(until_ms - gp__now_ms());
    pthread_mutex_lock(&c->mu);
    while ((c->out.running && !c->out.ended) || (c->errs.running && !c->errs.ended)) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- the host's MuxBroker ------------------------------------------------ */

/* Every stream the plugin opens is a broker dial: the broker matches its id
 * with gp_broker_accept_and_serve (mux_broker.c). */
static void *broker_main(void *arg)
{
    nconn *c = arg;
    for (;;) {
        gp__mux_stream *st = NULL;
        if (gp__mux_accept(c->sess, -1, &st) != GP_OK)
            break;
        gp__mux_broker_take(c->mb, st, 0, 0);
    }
    return NULL;
}

/* The session's accept watch: the accepting thread starts with the first
 * stream the plugin opens (most plugins never dial the host's broker).
 * Session lock held. */
static void broker_arrived(void *arg)
{
    nconn *c = arg;
    if (!c->broker_running)
        c->broker_running = gp__thread_start_small(&c->broker, broker_main, c) == 0;
}

static gp_broker *nc_broker(gp_conn *gc)
{
    return gp__mux_broker_base(((nconn *)gc)->mb);
}

/* ---- calls ------------------------------------------------------------- */

static gp_err remote_code(const char *msg, const char *what)
{
    size_t n = strlen(what);
    return strncmp(msg, what, n) == 0 ? GP_ENOTFOUND : GP_EREMOTE;
}

/* A call that failed because the session ended says why it ended (a
 * yamux protocol error from a hostile peer reads better than "connection
 * closed"). */
static gp_err add_session_reason(nconn *c, gp_err rc, gp_status *st)
{
    if ((rc != GP_ECLOSED && rc != GP_EIO) || !st)
        return rc;
    const char *why = gp__mux_session_error(c->sess);
    if (why && *why && !strstr(st->msg, why)) {
        size_t n = strlen(st->msg);
        snprintf(st->msg + n, sizeof st->msg - n, " (session ended: %s)", why);
    }
    return rc;
}

/* Control calls may race a close (gp_conn_ping during gp_client_kill):
 * close waits for them after the session is gone, which ends them. */
static gp_err ctl_call(nconn *c, const char *method, const gp__gob_value *arg,
                       gp__gob_value **reply, int timeout_ms, gp_status *st)
{
    gp_status tmp;
    if (!st)
        st = &tmp;
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&c->mu);
    if (c->closing) {
        pthread_mutex_unlock(&c->mu);
        return gp__status_set(st, GP_ECLOSED, 0, "%s: the connection is closed", method);
    }
    c->ctl_busy++;
    pthread_mutex_unlock(&c->mu);
    gp_err rc = gp__rpc_call(c->ctl_rpc, method, arg, reply, timeout_ms, st);
    rc = add_session_reason(c, rc, st);
    pthread_mutex_lock(&c->mu);
    if (--c->ctl_busy == 0)
        pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static gp_err nc_ping(gp_conn *gc, gp_status *st)
{
    nconn *c = (nconn *)gc;
    gp__gob_value t = {.type = &gp_gob_bool_type, .u.b = 1};
    return ctl_call(c, "Control.Ping", &t, NULL,
                    c->call_timeout_ms > 0 ? c->call_timeout_ms : PING_DEFAULT_MS, st);
}

static gp_err nc_shutdown(gp_conn *gc, int timeout_ms, gp_status *st)
{
    nconn *c = (nconn *)gc;
    if (gp__mux_session_is_closed(c->sess))
        return gp__status_set(st, GP_ECLOSED, 0, "Control.Quit: the session is closed already: %s",
                              gp__mux_session_error(c->sess));
    gp__gob_value t = {.type = &gp_gob_bool_type, .u.b = 1};
    gp_err rc = ctl_call(c, "Control.Quit", &t, NULL, timeout_ms, st);
    if (rc == GP_ECLOSED || rc == GP_EIO) {
        /* The session was alive when we asked; a plugin that exits before
         * its reply is on the wire (go-plugin 1.0.1 does, half the time)
         * got the request all the same. */
        rc = gp__status_set(st, GP_OK, 0, "%s", "");
    }
    if (rc == GP_OK) {
        /* As go-plugin's Close: after Quit the session goes, so the plugin
         * sees EOF at once instead of waiting for us (once its last output
         * is in: a C plugin sends it within 200 ms of Quit). Calls still in
         * flight fail with GP_ECLOSED. */
        wait_stdio_ends(c, STDIO_DRAIN_MS);
        gp__mux_session_close(c->sess);
    }
    return rc;
}

static gp_err ack_fail(ack_io *a, gp_err rc, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static gp_err ack_fail(ack_io *a, gp_err rc, char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!atomic_load(&a->failed)) {
        vsnprintf(a->why, sizeof a->why, fmt, ap);
        atomic_store(&a->failed, 1);
    }
    va_end(ap);
    snprintf(why, whylen, "%s", a->why);
    return rc;
}

/* A failed call on a stub whose ack failed says so. */
static void ack_reason(nstub *s, gp_err rc, gp_status *st)
{
    if (rc && st && atomic_load(&s->io.failed))
        snprintf(st->msg, sizeof st->msg, "%s", s->io.why);
}

/* Reads the ack (once), then passes reads through. A missing or wrong ack
 * fails the read, and so the first call and the client, with the words
 * Dispense used to return. The net/rpc client reads from one thread at a
 * time (its reading role), so ngot needs no lock. */
static gp_err ack_read(gp__stream *gs, void *buf, size_t cap, int timeout_ms, size_t *n, char *why,
                       size_t whylen)
{
    ack_io *a = (ack_io *)gs;
    while (a->ngot < 4 || a->bad) {
        uint32_t v = (uint32_t)a->got[0] | (uint32_t)a->got[1] << 8 | (uint32_t)a->got[2] << 16 |
                     (uint32_t)a->got[3] << 24;
        if (a->bad)
            return ack_fail(a, GP_EPROTO, why, whylen, "MuxBroker: bad ack: expected id %u, got %u",
                            (unsigned)a->id, (unsigned)v);
        int64_t left = a->until_ms - gp__now_ms();
        if (left <= 0)
            return ack_fail(a, GP_ETIMEDOUT, why, whylen,
                            "MuxBroker: expected the plugin to ack id %u within %d ms",
                            (unsigned)a->id, BROKER_WAIT_MS);
        int wait = timeout_ms >= 0 && timeout_ms < left ? timeout_ms : (int)left;
        size_t got = 0;
        gp_err rc =
            gp__stream_read(a->inner, a->got + a->ngot, 4 - a->ngot, wait, &got, why, whylen);
        if (rc == GP_ETIMEDOUT && wait == timeout_ms)
            return rc; /* the caller's own deadline */
        if (rc == GP_ETIMEDOUT)
            continue; /* the ack's: said above */
        if (rc)
            return ack_fail(a, rc, why, whylen,
                            "MuxBroker: expected the plugin to ack id %u, got: %s", (unsigned)a->id,
                            gp_strerror(rc));
        if (got == 0)
            return ack_fail(a, GP_ECLOSED, why, whylen,
                            "MuxBroker: the plugin closed the stream for id %u before its ack "
                            "(nobody serves that id?)",
                            (unsigned)a->id);
        a->ngot += got;
        if (a->ngot == 4)
            a->bad = ((uint32_t)a->got[0] | (uint32_t)a->got[1] << 8 | (uint32_t)a->got[2] << 16 |
                      (uint32_t)a->got[3] << 24) != a->id;
    }
    return gp__stream_read(a->inner, buf, cap, timeout_ms, n, why, whylen);
}

static gp_err ack_writev(gp__stream *gs, struct iovec *iov, int iovcnt, int timeout_ms, char *why,
                         size_t whylen)
{
    return gp__stream_writev(((ack_io *)gs)->inner, iov, iovcnt, timeout_ms, why, whylen);
}

static void ack_close_write(gp__stream *gs)
{
    gp__stream_close_write(((ack_io *)gs)->inner);
}

static void ack_shutdown(gp__stream *gs)
{
    gp__stream_shutdown(((ack_io *)gs)->inner);
}

static void ack_close(gp__stream *gs)
{
    (void)gs; /* the stub owns the mux stream */
}

static const gp__stream_ops ack_ops = {
    .read = ack_read,
    .writev = ack_writev,
    .close_write = ack_close_write,
    .shutdown = ack_shutdown,
    .close = ack_close,
};

/* Opens the MuxBroker stream for id and sends the id; its ack is read with
 * the first reply (ack_io). */
static gp_err broker_dial(nconn *c, uint32_t id, gp__mux_stream **out, gp_status *st)
{
    gp__mux_stream *s = NULL;
    gp_err rc = gp__mux_open(c->sess, &s);
    if (rc)
        return gp__status_set(st, rc, 0, "MuxBroker: open a stream for id %u: %s", id,
                              rc == GP_ECLOSED ? gp__mux_session_error(c->sess) : gp_strerror(rc));
    uint8_t b[4] = {(uint8_t)id, (uint8_t)(id >> 8), (uint8_t)(id >> 16), (uint8_t)(id >> 24)};
    rc = gp__mux_stream_write(s, b, 4, BROKER_WAIT_MS);
    if (rc) {
        gp__mux_stream_reset(s);
        gp__mux_stream_free(s);
        return gp__status_set(st, rc, 0, "MuxBroker: sending id %u to the plugin: %s", id,
                              gp_strerror(rc));
    }
    *out = s;
    return GP_OK;
}

static gp_err nc_dispense(gp_conn *gc, const char *name, gp_stub **out, gp_status *st)
{
    nconn *c = (nconn *)gc;
    gp__gob_value arg = {.type = &gp_gob_string_type};
    arg.u.bytes.data = (uint8_t *)(uintptr_t)name;
    arg.u.bytes.len = strlen(name);
    gp__gob_value *reply = NULL;
    gp_status tmp;
    if (!st)
        st = &tmp;
    gp_err rc = ctl_call(c, "Dispenser.Dispense", &arg, &reply, timeout_of(c), st);
    if (rc == GP_EREMOTE) {
        st->err = rc = remote_code(st->msg, "unknown plugin type");
        return rc;
    }
    if (rc)
        return rc;
    uint64_t id = 0;
    char err[GP_STATUS_MSG_MAX];
    rc = gp__gob_get_uint(reply, &id, err, sizeof err);
    gp__gob_value_free(reply);
    if (rc)
        return gp__status_set(st, rc, 0, "Dispenser.Dispense(%s) reply: %s", name, err);
    if (id > UINT32_MAX)
        return gp__status_set(st, GP_EPROTO, 0,
                              "Dispenser.Dispense(%s): expected a uint32 broker id, got %llu", name,
                              (unsigned long long)id);
    nstub *s = calloc(1, sizeof *s);
    if (!s)
        return gp__status_set(st, GP_ENOMEM, 0, "out of memory");
    rc = broker_dial(c, (uint32_t)id, &s->st, st);
    if (rc) {
        free(s);
        return rc;
    }
    gp__gob_limits lim = {.max_message = c->max_message};
    gp__mux_stream_set_prompt(s->st, 1); /* a net/rpc client: callers read their replies */
    s->io = (ack_io){.base.ops = &ack_ops,
                     .inner = gp__mux_stream_io(s->st),
                     .id = (uint32_t)id,
                     .until_ms = gp__now_ms() + BROKER_WAIT_MS};
    if ((rc = gp__rpc_client_new(&s->io.base, &lim, &s->rpc))) {
        gp__mux_stream_free(s->st);
        free(s);
        return gp__status_set(st, rc, 0, "starting the net/rpc client for %s: %s", name,
                              gp_strerror(rc));
    }
    s->base.conn = gc;
    s->call_timeout_ms = timeout_of(c);
    atomic_fetch_add(&c->refs, 1);
    *out = &s->base;
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static gp_err nc_invoke(gp_stub *gs, const gp_method *m, const void *req, void *resp, gp_status *st)
{
    nstub *s = (nstub *)gs;
    gp_status tmp;
    if (!st)
        st = &tmp;
    memset(st, 0, sizeof *st);
    gp_err rc = gp__netrpc_invoke(s->rpc, m, req, resp, s->call_timeout_ms, st);
    ack_reason(s, rc, st);
    return add_session_reason((nconn *)gs->conn, rc, st);
}

gp_err gp__netrpc_stub_call(gp_stub *gs, const char *method, const gp__gob_value *args,
                            gp__gob_value **reply, gp_status *st)
{
    if (reply)
        *reply = NULL;
    if (!gs || !method || !args || strcmp(gs->conn->ops->name, "netrpc") != 0)
        return gp__status_set(st, GP_EINVAL, 0,
                              "gp__netrpc_stub_call: expected a netrpc stub, "
                              "a method and arguments");
    nstub *s = (nstub *)gs;
    gp_status tmp;
    if (!st)
        st = &tmp;
    memset(st, 0, sizeof *st);
    gp_err rc = gp__rpc_call(s->rpc, method, args, reply, s->call_timeout_ms, st);
    if (rc == GP_EREMOTE && strncmp(st->msg, "rpc: can't find ", 16) == 0)
        st->err = rc = GP_ENOTFOUND;
    ack_reason(s, rc, st);
    return rc;
}

static void nc_stub_free(gp_stub *gs)
{
    nstub *s = (nstub *)gs;
    nconn *c = (nconn *)gs->conn;
    gp__rpc_client_free(s->rpc);
    gp__mux_stream_free(s->st);
    free(s);
    conn_unref(c);
}

static void nc_close(gp_conn *gc)
{
    nconn *c = (nconn *)gc;
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    pthread_mutex_unlock(&c->mu);
    gp__mux_session_close(c->sess);
    /* No copier or accepter starts after these. */
    if (c->out.st)
        gp__mux_stream_watch(c->out.st, NULL, NULL);
    if (c->errs.st)
        gp__mux_stream_watch(c->errs.st, NULL, NULL);
    gp__mux_accept_watch(c->sess, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    while (c->ctl_busy)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    if (c->out.running)
        pthread_join(c->out.thread, NULL);
    if (c->errs.running)
        pthread_join(c->errs.thread, NULL);
    if (c->broker_running)
        pthread_join(c->broker, NULL);
    gp__mux_broker_free(c->mb);
    c->mb = NULL;
    gp__rpc_client_free(c->ctl_rpc);
    gp__mux_stream_free(c->ctl);
    gp__mux_stream_free(c->out.st);
    gp__mux_stream_free(c->errs.st);
    gp__mux_session_free(c->sess);
    conn_unref(c);
}

static const gp__conn_ops ops = {
    .name = "netrpc",
    .dispense = nc_dispense,
    .invoke = nc_invoke,
    .ping = nc_ping,
    .stub_free = nc_stub_free,
    .shutdown = nc_shutdown,
    .close = nc_close,
    .broker = nc_broker,
};

static void watch_stdio(nconn *c, stdio_fwd *f, const char *stream, gp_log_level lv)
{
    f->c = c;
    f->stream = stream;
    f->level = lv;
    gp__mux_stream_watch(f->st, stdio_arrived, f);
}

gp_err gp__netrpc_conn_from_fd(int fd, const gp__netrpc_client_opts *o, gp_conn **out, char *err,
                               size_t errlen)
{
    *out = NULL;
    nconn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return GP_ENOMEM;
    }
    c->base.ops = &ops;
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->mu, NULL);
    gp__cond_init_monotonic(&c->cv);
    if (o && o->logger) {
        c->log = *o->logger;
        c->has_log = 1;
    }
    snprintf(c->log_name, sizeof c->log_name, "%s", o && o->log_name ? o->log_name : "netrpc");
    c->call_timeout_ms = o ? o->call_timeout_ms : 0;
    c->max_message = o ? o->max_message_bytes : 0;
    gp__mux_config mc = {.keepalive_interval_ms = o ? o->keepalive_ms : 0,
                         .keepalive_timeout_ms = o ? o->keepalive_timeout_ms : 0,
                         .max_streams = o ? o->limits.max_streams : 0};
    gp_err rc;
    if (o && (o->tls_cert_pem || o->tls_root_pem)) {
        gp__tls_params p = {.role = GP_TLS_CLIENT,
                            .cert_pem = o->tls_cert_pem,
                            .key_pem = o->tls_key_pem,
                            .peer_ca_pem = o->tls_root_pem,
                            .server_name = o->tls_server_name,
                            .handshake_timeout_ms = o->tls_timeout_ms};
        gp__tls *t = NULL;
        char why[512];
        rc = gp__tls_open(fd, &p, &t, why, sizeof why);
        if (rc) {
            close(fd);
            conn_unref(c);
            snprintf(err, errlen, "TLS handshake with the plugin (netrpc): %s", why);
            return rc;
        }
        rc = gp__mux_session_new_tls(t, GP_MUX_CLIENT, &mc, &c->sess);
        if (rc) {
            gp__tls_close(t);
            fd = -1;
        }
    } else {
        rc = gp__mux_session_new(fd, GP_MUX_CLIENT, &mc, &c->sess);
    }
    if (rc) {
        if (fd >= 0)
            close(fd);
        conn_unref(c);
        snprintf(err, errlen, "starting the yamux session: %s", gp_strerror(rc));
        return rc;
    }
    /* Streams 1, 3, 5 in this order: the plugin assigns roles by order. */
    rc = gp__mux_open(c->sess, &c->ctl);
    if (!rc)
        rc = gp__mux_open(c->sess, &c->out.st);
    if (!rc)
        rc = gp__mux_open(c->sess, &c->errs.st);
    if (!rc) {
        gp__mux_stream_set_prompt(c->ctl, 1); /* Control and Dispense calls */
        rc = gp__rpc_client_new(gp__mux_stream_io(c->ctl), NULL, &c->ctl_rpc);
    }
    if (!rc) {
        gp__mux_broker_opts bo = {.sess = c->sess,
                                  .logger = c->has_log ? &c->log : NULL,
                                  .log_name = c->log_name,
                                  .call_timeout_ms = c->call_timeout_ms,
                                  .max_pending = o ? o->limits.max_pending_streams : 0,
                                  .max_served = o ? o->limits.max_broker_conns : 0,
                                  .wait_ms = o ? o->limits.broker_wait_ms : 0};
        rc = gp__mux_broker_new(&bo, &c->mb);
    }
    c->out.sink = o ? o->stdout_sink : NULL;
    c->errs.sink = o ? o->stderr_sink : NULL;
    c->out.sink_ctx = c->errs.sink_ctx = o ? o->stdio_ctx : NULL;
    if (!rc) { /* their threads start with their first traffic */
        watch_stdio(c, &c->out, "stdout", GP_LOG_DEBUG);
        watch_stdio(c, &c->errs, "stderr", GP_LOG_INFO);
        gp__mux_accept_watch(c->sess, broker_arrived, c);
    }
    if (rc) {
        snprintf(err, errlen, "opening the control and stdio streams: %s%s%s", gp_strerror(rc),
                 gp__mux_session_error(c->sess)[0] ? ": " : "", gp__mux_session_error(c->sess));
        nc_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return GP_OK;
}
