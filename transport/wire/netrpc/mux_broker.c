/* go-plugin's MuxBroker on a yamux session; see mux_broker.h. */
#include "transport/base/sync.h"
#include "transport/wire/netrpc/mux_broker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/core/broker.h"
#include "transport/core/conn.h"
#include "transport/core/idtable.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"
#include "transport/wire/netrpc/service.h"

#define DEFAULT_WORKERS 8

/* A stream the peer opened: matched, acked and served on its own thread. */
typedef struct bstream {
    gp__mux_broker *b;
    gp__mux_stream *st;
    uint32_t id;
    int have_id;
    int served; /* under b->mu: counted in nserved, else in npending */
    int done;   /* under b->mu: the thread has finished */
    pthread_t thread;
    struct bstream *next;
} bstream;

struct gp__mux_broker {
    gp_broker base;
    gp__mux_session *sess;
    gp_logger log;
    int has_log;
    char log_name[64];
    int workers, call_timeout_ms;
    size_t max_message;
    int max_pending, max_served, wait_ms;
    const gp_service *(*reserved)(void *ctx, uint32_t id);
    void *reserved_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a registration arrived, or closing */
    uint32_t next_id;
    gp__idtable regs; /* id offered by accept_and_serve -> its gp_service */
    bstream *streams;
    int npending, nserved; /* streams in each state (the caps) */
    int refused;           /* streams reset past a cap in this burst */
    int closing;
};

/* A dialed brokered connection, as a stub with its own tiny conn. */
typedef struct bstub {
    gp_stub base;
    gp_conn conn;
    gp__mux_stream *st;
    gp__rpc_client *rpc;
    int call_timeout_ms;
} bstub;

#define LOGF(b, lvl, ...)                                                   \
    do {                                                                    \
        if ((b)->has_log)                                                   \
            gp_logf(&(b)->log, (lvl), (b)->log_name, NULL, 0, __VA_ARGS__); \
    } while (0)

static void put_le32(uint8_t b[4], uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t b[4])
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void reg_drop(void *ctx, uint32_t id, void *svc, bool expired)
{
    gp__mux_broker *b = ctx;
    (void)svc; /* the caller's */
    if (expired)
        LOGF(b, GP_LOG_DEBUG, "broker: nobody dialed id %u within %d ms; dropped", (unsigned)id,
             b->wait_ms);
}

/* Under mu: a stream was refused past a cap. The first refusal of a burst
 * is logged; the burst's count once a stream gets through again. */
static void refused_locked(gp__mux_broker *b, const char *what, int cap)
{
    if (b->refused++ == 0)
        LOGF(b, GP_LOG_WARN,
             "broker: %d peer streams already %s (the cap); resetting more (logged once per "
             "burst)",
             cap, what);
}

static void burst_over_locked(gp__mux_broker *b)
{
    if (b->refused > 0)
        LOGF(b, GP_LOG_WARN, "broker: reset %d peer streams past the caps", b->refused);
    b->refused = 0;
}

static int64_t ms_left(const struct timespec *until)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ms =
        (int64_t)(until->tv_sec - now.tv_sec) * 1000 + (until->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? ms : 0;
}

static void *stream_main(void *arg)
{
    bstream *s = arg;
    gp__mux_broker *b = s->b;
    const gp_service *svc = NULL;
    uint8_t idb[4];
    /* One deadline for the id and the match: a pending stream holds its
     * thread at most wait_ms. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += b->wait_ms / 1000;
    until.tv_nsec += (long)(b->wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    if (!s->have_id) {
        gp_err rc = gp__mux_stream_read_full(s->st, idb, 4, b->wait_ms);
        if (rc) {
            LOGF(b, GP_LOG_DEBUG, "broker: expected a 4-byte id on stream %u within %d ms, got: %s",
                 (unsigned)gp__mux_stream_id(s->st), b->wait_ms, gp_strerror(rc));
            goto out;
        }
        s->id = get_le32(idb);
    }
    size_t max_message = 0; /* brokered services keep gob's default */
    if (b->reserved && (svc = b->reserved(b->reserved_ctx, s->id)) != NULL)
        max_message = b->max_message;
    if (!svc) {
        pthread_mutex_lock(&b->mu);
        svc = gp__idtable_wait(&b->regs, s->id, &b->mu, &b->cv, &b->closing, (int)ms_left(&until));
        pthread_mutex_unlock(&b->mu);
    }
    if (!svc) {
        LOGF(b, GP_LOG_DEBUG,
             "broker: stream for id %u, which nobody accepted within %d ms: closed",
             (unsigned)s->id, b->wait_ms);
        goto out;
    }
    pthread_mutex_lock(&b->mu);
    int full = b->nserved >= b->max_served;
    if (full) {
        refused_locked(b, "served", b->max_served);
    } else {
        b->npending--;
        b->nserved++;
        s->served = 1;
    }
    pthread_mutex_unlock(&b->mu);
    if (full)
        goto out;
    put_le32(idb, s->id);
    gp_err rc = gp__mux_stream_write(s->st, idb, 4, b->wait_ms);
    if (rc) {
        LOGF(b, GP_LOG_DEBUG, "broker: acking id %u: %s", (unsigned)s->id, gp_strerror(rc));
        goto out;
    }
    char err[GP_STATUS_MSG_MAX] = "";
    rc = gp__netrpc_serve_service(s->st, svc, &b->base, b->workers, max_message, err, sizeof err);
    if (rc && !gp__mux_session_is_closed(b->sess))
        LOGF(b, GP_LOG_DEBUG, "broker: serving id %u ended: %s", (unsigned)s->id, err);
    pthread_mutex_lock(&b->mu);
    b->nserved--;
    s->done = 1;
    pthread_mutex_unlock(&b->mu);
    return NULL;
out:
    gp__mux_stream_reset(s->st);
    pthread_mutex_lock(&b->mu);
    if (s->served)
        b->nserved--;
    else
        b->npending--;
    s->done = 1;
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Under mu: joins and frees finished stream threads. */
static void reap_locked(gp__mux_broker *b)
{
    for (bstream **p = &b->streams; *p;) {
        bstream *s = *p;
        if (!s->done) {
            p = &s->next;
            continue;
        }
        *p = s->next;
        pthread_join(s->thread, NULL);
        gp__mux_stream_free(s->st);
        free(s);
    }
}

void gp__mux_broker_take(gp__mux_broker *b, gp__mux_stream *st, int have_id, uint32_t id)
{
    bstream *s = calloc(1, sizeof *s);
    pthread_mutex_lock(&b->mu);
    reap_locked(b);
    int full = b->npending >= b->max_pending;
    if (full && !b->closing)
        refused_locked(b, "wait for their id or a match", b->max_pending);
    else if (!b->closing)
        burst_over_locked(b);
    if (!s || b->closing || full) {
        pthread_mutex_unlock(&b->mu);
        free(s);
        gp__mux_stream_reset(st);
        gp__mux_stream_free(st);
        return;
    }
    s->b = b;
    s->st = st;
    s->have_id = have_id;
    s->id = id;
    b->npending++;
    if (pthread_create(&s->thread, NULL, stream_main, s) != 0) {
        b->npending--;
        pthread_mutex_unlock(&b->mu);
        LOGF(b, GP_LOG_WARN, "broker: no thread for stream %u; closed",
             (unsigned)gp__mux_stream_id(st));
        free(s);
        gp__mux_stream_reset(st);
        gp__mux_stream_free(st);
        return;
    }
    s->next = b->streams;
    b->streams = s;
    pthread_mutex_unlock(&b->mu);
}

uint32_t gp__mux_broker_next_id(gp__mux_broker *b)
{
    pthread_mutex_lock(&b->mu);
    uint32_t id = ++b->next_id;
    pthread_mutex_unlock(&b->mu);
    return id;
}

/* ---- the gp_broker vtable ----------------------------------------------- */

static uint32_t mb_next_id(gp_broker *gb)
{
    return gp__mux_broker_next_id((gp__mux_broker *)gb);
}

static gp_err mb_accept_and_serve(gp_broker *gb, uint32_t id, const gp_service *svc, gp_status *st)
{
    gp__mux_broker *b = (gp__mux_broker *)gb;
    pthread_mutex_lock(&b->mu);
    if (b->closing) {
        pthread_mutex_unlock(&b->mu);
        return gp__status_set(st, GP_ECLOSED, 0, "broker: the connection is closed");
    }
    gp_err rc = gp__idtable_put(&b->regs, id, (void *)svc, false); /* the first offer stands */
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (rc == GP_ESTATE)
        return gp__status_set(st, rc, 0, "broker: id %u is already being served", (unsigned)id);
    if (rc)
        return gp__status_set(st, rc, 0,
                              "broker: out of memory, or %d ids already wait to be dialed",
                              GP__IDTABLE_MAX);
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static gp_err bs_invoke(gp_stub *gs, const gp_method *m, const void *req, void *resp, gp_status *st)
{
    bstub *s = (bstub *)gs;
    gp_status tmp;
    if (!st)
        st = &tmp;
    memset(st, 0, sizeof *st);
    return gp__netrpc_invoke(s->rpc, m, req, resp, s->call_timeout_ms, st);
}

static void bs_free(gp_stub *gs)
{
    bstub *s = (bstub *)gs;
    gp__rpc_client_free(s->rpc);
    gp__mux_stream_free(s->st);
    free(s);
}

static gp_err bs_ping(gp_conn *c, gp_status *st)
{
    (void)c;
    return gp__status_set(st, GP_EUNSUPPORTED, 0, "a brokered netrpc connection has no ping");
}

static const gp__conn_ops bstub_ops = {
    .name = "netrpc",
    .dispense = gp__broker_conn_dispense,
    .invoke = bs_invoke,
    .ping = bs_ping,
    .stub_free = bs_free,
};

static gp_err mb_dial(gp_broker *gb, uint32_t id, gp_stub **out, gp_status *st)
{
    gp__mux_broker *b = (gp__mux_broker *)gb;
    gp__mux_stream *s = NULL;
    gp_err rc = gp__mux_open(b->sess, &s);
    if (rc)
        return gp__status_set(st, rc, 0, "broker: opening a stream for id %u: %s", (unsigned)id,
                              rc == GP_ECLOSED ? gp__mux_session_error(b->sess) : gp_strerror(rc));
    uint8_t idb[4], ack[4];
    put_le32(idb, id);
    rc = gp__mux_stream_write(s, idb, 4, GP_BROKER_WAIT_MS);
    if (!rc)
        rc = gp__mux_stream_read_full(s, ack, 4, GP_BROKER_WAIT_MS);
    if (rc) {
        gp__mux_stream_reset(s);
        gp__mux_stream_free(s);
        if (rc == GP_ETIMEDOUT)
            return gp__status_set(st, rc, 0,
                                  "broker: timeout waiting for the peer to accept id %u "
                                  "(no ack within %d ms)",
                                  (unsigned)id, GP_BROKER_WAIT_MS);
        return gp__status_set(st, rc, 0,
                              "broker: expected the peer to ack id %u, got: %s (nobody serves "
                              "that id?)",
                              (unsigned)id, gp_strerror(rc));
    }
    uint32_t got = get_le32(ack);
    if (got != id) {
        gp__mux_stream_reset(s);
        gp__mux_stream_free(s);
        return gp__status_set(st, GP_EPROTO, 0, "broker: bad ack: expected id %u, got %u",
                              (unsigned)id, (unsigned)got);
    }
    bstub *bs = calloc(1, sizeof *bs);
    if (!bs) {
        gp__mux_stream_free(s);
        return gp__status_set(st, GP_ENOMEM, 0, "broker: out of memory");
    }
    bs->st = s;
    gp__mux_stream_set_prompt(s, 1); /* a net/rpc client: callers read their replies */
    rc = gp__rpc_client_new(gp__mux_stream_io(s), NULL, &bs->rpc);
    if (rc) {
        gp__mux_stream_free(s);
        free(bs);
        return gp__status_set(st, rc, 0, "broker: starting a net/rpc client for id %u: %s",
                              (unsigned)id, gp_strerror(rc));
    }
    bs->conn.ops = &bstub_ops;
    bs->base.conn = &bs->conn;
    bs->call_timeout_ms = b->call_timeout_ms > 0 ? b->call_timeout_ms : -1;
    *out = &bs->base;
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static const gp__broker_ops mux_broker_ops = {
    .next_id = mb_next_id,
    .accept_and_serve = mb_accept_and_serve,
    .dial = mb_dial,
};

gp_err gp__mux_broker_new(const gp__mux_broker_opts *o, gp__mux_broker **out)
{
    gp__mux_broker *b = calloc(1, sizeof *b);
    if (!b)
        return GP_ENOMEM;
    b->base.ops = &mux_broker_ops;
    b->sess = o->sess;
    if (o->logger) {
        b->log = *o->logger;
        b->has_log = 1;
    }
    snprintf(b->log_name, sizeof b->log_name, "%s", o->log_name ? o->log_name : "netrpc");
    b->workers = o->workers > 0 ? o->workers : DEFAULT_WORKERS;
    b->call_timeout_ms = o->call_timeout_ms;
    b->max_message = o->max_message_bytes;
    b->max_pending = o->max_pending > 0 ? o->max_pending : GP__MUX_BROKER_MAX_PENDING;
    b->max_served = o->max_served > 0 ? o->max_served : GP__MUX_BROKER_MAX_SERVED;
    b->wait_ms = o->wait_ms > 0 ? o->wait_ms : GP_BROKER_WAIT_MS;
    b->reserved = o->reserved;
    b->reserved_ctx = o->reserved_ctx;
    pthread_mutex_init(&b->mu, NULL);
    gp__cond_init_monotonic(&b->cv);
    gp__idtable_init(&b->regs, b->wait_ms, reg_drop, b);
    *out = b;
    return GP_OK;
}

gp_broker *gp__mux_broker_base(gp__mux_broker *b)
{
    return b ? &b->base : NULL;
}

void gp__mux_broker_free(gp__mux_broker *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->closing = 1;
    pthread_cond_broadcast(&b->cv);
    bstream *all = b->streams;
    b->streams = NULL;
    pthread_mutex_unlock(&b->mu);
    while (all) {
        bstream *s = all;
        all = s->next;
        pthread_join(s->thread, NULL);
        gp__mux_stream_free(s->st);
        free(s);
    }
    gp__idtable_clear(&b->regs);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}
