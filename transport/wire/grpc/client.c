/* The gRPC client: a gp_conn over a socket we dialled, on a gRPC C core
 * channel (grpc_channel_create_from_fd).
 *
 * Threading (docs/grpc.md): each call plucks its own completion queue, taken
 * from a per-connection pool, on the caller's thread, so steady-state calls
 * never hop threads. Core reads a socket only while some thread polls, so an
 * idle channel would leave keepalive acks and broker messages unread; an
 * idle poller thread polls the background queue only after IDLE_AFTER_MS
 * without calls in flight, and sleeps on a condvar otherwise. The first call
 * after an idle spell kicks it out of its poll (a zero-op batch) so that it
 * does not steal that call's events for long.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "transport/wire/grpc/proto/grpc_broker.pb.h"
#include "transport/wire/grpc/proto/grpc_controller.pb.h"
#include "transport/wire/grpc/proto/health.pb.h"
#include "transport/base/sync.h"
#include "transport/core/conn.h"
#include "transport/wire/grpc/channel.h"
#include "transport/wire/grpc/broker.h"
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/wire/grpc/stream.h"

enum {
    IDLE_AFTER_MS = 1000, /* no call for this long: the idle poller takes over */
    IDLE_POLL_MS = 100,   /* its poll slice; it re-checks for calls after each */
    /* While calls run and a background stream (stdio) is open, the poller
     * sweeps the background queue this often without staying in a poll. */
    SWEEP_MS = 20,
    KEEPALIVE_MS = 6 * 60 * 1000,
    KEEPALIVE_TIMEOUT_MS = 20 * 1000,
};

static const gp_method health_check = {
    .grpc_path = "/grpc.health.v1.Health/Check",
    .req_pb = grpc_health_v1_HealthCheckRequest_fields,
    .resp_pb = grpc_health_v1_HealthCheckResponse_fields,
};
static const gp_method controller_shutdown = {
    .grpc_path = "/plugin.GRPCController/Shutdown",
    .req_pb = plugin_Empty_fields,
    .resp_pb = plugin_Empty_fields,
};
static const gp_method broker_stream = {
    .grpc_path = "/plugin.GRPCBroker/StartStream",
    .req_pb = plugin_ConnInfo_fields,
    .resp_pb = plugin_ConnInfo_fields,
    .kind = GP_BIDI_STREAM,
};

typedef struct reg {
    const gp_method *m;
    char *path; /* core keeps the pointer for the channel's life */
    void *handle;
} reg;

/* A call in flight, on its caller's stack, so close can cancel it. */
typedef struct active {
    grpc_call *call;
    int background; /* a background stream (stdio): counted in nbg */
    struct active *prev, *next;
} active;

/* Every tag on the background queue is a gp__grpc_tag: the poller runs
 * its fn. The conn's own ones (bg_tag) go to bg_event; background streams'
 * (stream.c) wake their waiting thread. */
enum bg_kind { BG_RECV, BG_STATUS, BG_KICK, BG_SEND };
typedef struct bg_tag {
    gp__grpc_tag t; /* first: the queue hands back its address */
    enum bg_kind kind;
    struct gconn *c;
} bg_tag;

typedef struct gconn {
    struct gp_conn base;
    grpc_channel *ch;
    gp_logger logger;
    const gp_logger *logger_arg;
    char name[64];
    int call_timeout_ms;
    int idle_after_ms;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* poller sleep; close waits for inflight == 0 */
    int closed, stopping, broken, polling, kicking;
    int nstubs, torn_down; /* the struct outlives close while stubs remain */
    int inflight;
    long long last_active_ms;
    active calls; /* list sentinel */
    reg *regs;
    size_t nregs, capregs;
    grpc_completion_queue **pool;
    size_t npool, cappool;

    /* The background queue: broker stream and kicks; polled only by the
     * idle poller (then by close, after joining it). */
    grpc_completion_queue *bg_cq;
    grpc_call *broker;
    int bg_pending; /* batches started on `broker`, under mu */
    bg_tag t_recv, t_status, t_kick;
    grpc_byte_buffer *broker_msg;
    grpc_metadata_array broker_md, broker_trailing;
    grpc_status_code broker_code;
    grpc_slice broker_details;
    pthread_t poller;
    int poller_started;
    /* The broker (transport/grpc/broker.h): ConnInfo out through bq on the
     * broker call; while a send or a dial's wait is pending (bg_want > 0,
     * under mu) the poller reads the background queue even during calls. */
    gp__grpc_broker *gb;
    gp__grpc_sendq bq;
    bg_tag t_send;
    int bg_want;

    /* Keepalive by health check (grpc.h check_ms): its thread, and why the
     * conn was given up ("" while it is alive; set once, under mu). */
    int check_ms, check_timeout_ms;
    pthread_t checker;
    int checker_started;
    char lost[160];
    int nbg; /* background streams open (stdio), under mu: the poller sweeps */
} gconn;

/* The health check's deadline when the conn has no call timeout. */
#define PING_DEFAULT_MS 30000

#define LOG(c, lvl, ...) gp_logf(&(c)->logger, (lvl), (c)->name, NULL, 0, __VA_ARGS__)

static gpr_timespec deadline_in(int ms)
{
    if (ms <= 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static void *lookup_reg(gconn *c, const gp_method *m)
{
    for (size_t i = 0; i < c->nregs; i++)
        if (c->regs[i].m == m)
            return c->regs[i].handle;
    if (c->nregs == c->capregs) {
        size_t cap = c->capregs ? c->capregs * 2 : 8;
        reg *r = realloc(c->regs, cap * sizeof *r);
        if (!r)
            return NULL;
        c->regs = r;
        c->capregs = cap;
    }
    char *path = strdup(m->grpc_path);
    if (!path)
        return NULL;
    void *h = grpc_channel_register_call(c->ch, path, NULL, NULL);
    c->regs[c->nregs++] = (reg){.m = m, .path = path, .handle = h};
    return h;
}

static grpc_completion_queue *take_cq(gconn *c)
{
    grpc_completion_queue *cq = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->npool > 0)
        cq = c->pool[--c->npool];
    pthread_mutex_unlock(&c->mu);
    return cq ? cq : grpc_completion_queue_create_for_pluck(NULL);
}

static void drop_cq(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_completion_queue_destroy(cq);
}

/* Only while the call counts as in flight: close frees the pool once
 * nothing is. */
static void put_cq(gconn *c, grpc_completion_queue *cq)
{
    pthread_mutex_lock(&c->mu);
    if (c->npool == c->cappool) {
        size_t cap = c->cappool ? c->cappool * 2 : 8;
        grpc_completion_queue **p = realloc(c->pool, cap * sizeof *p);
        if (p) {
            c->pool = p;
            c->cappool = cap;
        }
    }
    if (c->npool < c->cappool) {
        c->pool[c->npool++] = cq;
        cq = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (cq) /* no room to keep it */
        drop_cq(cq);
}

/* Under mu: wake the idle poller out of its poll with a zero-op batch on
 * the broker call (its completion lands on the background queue). */
static void kick_poller_locked(gconn *c)
{
    if (!c->polling || !c->broker || c->kicking || c->idle_after_ms < 0)
        return;
    if (gp__grpc_start(c->broker, NULL, 0, &c->t_kick) == GRPC_CALL_OK) {
        c->bg_pending++;
        c->kicking = 1; /* one kick outstanding at a time */
    }
}

static void details_text(grpc_slice s, char *buf, size_t cap)
{
    size_t n = GRPC_SLICE_LENGTH(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, GRPC_SLICE_START_PTR(s), n);
    buf[n] = '\0';
}

/* One unary call on the caller's thread. *code gets the gRPC status
 * (GRPC_STATUS__DO_NOT_USE when the call never ran). */
static gp_err call_unary(gconn *c, const gp_method *m, const void *req, void *resp, int timeout_ms,
                         gp_status *st, grpc_status_code *code)
{
    char err[256];
    *code = GRPC_STATUS__DO_NOT_USE;
    if (m->kind != GP_UNARY)
        return gp__status_set(st, GP_EUNSUPPORTED, 0,
                              "%s: only unary methods can be invoked on the grpc wire",
                              m->grpc_path);
    pthread_mutex_lock(&c->mu);
    void *h = c->closed || c->lost[0] ? NULL : lookup_reg(c, m);
    int closed = c->closed;
    char lost[sizeof c->lost];
    memcpy(lost, c->lost, sizeof lost);
    pthread_mutex_unlock(&c->mu);
    if (closed)
        return gp__status_set(st, GP_ECLOSED, 0, "%s: the connection is closed", m->grpc_path);
    if (lost[0])
        return gp__status_set(st, GP_ECLOSED, GRPC_STATUS_UNAVAILABLE,
                              "%s: connection to the plugin lost (%s)", m->grpc_path, lost);
    if (!h)
        return gp__status_set(st, GP_ENOMEM, 0, "%s: out of memory registering the method",
                              m->grpc_path);

    grpc_byte_buffer *send = NULL;
    gp_err e = gp__grpc_encode(m->req_pb, req, &send, m->grpc_path, err, sizeof err);
    if (e != GP_OK)
        return gp__status_set(st, e, 0, "%s request: %s", m->grpc_path, err);

    grpc_completion_queue *cq = take_cq(c);
    grpc_call *call = grpc_channel_create_registered_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                                          h, deadline_in(timeout_ms), NULL);
    active a = {.call = call};
    pthread_mutex_lock(&c->mu);
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        grpc_call_unref(call);
        drop_cq(cq); /* close may have freed the pool already */
        grpc_byte_buffer_destroy(send);
        return gp__status_set(st, GP_ECLOSED, 0, "%s: the connection is closed", m->grpc_path);
    }
    a.next = c->calls.next;
    a.prev = &c->calls;
    a.next->prev = &a;
    c->calls.next = &a;
    if (c->inflight++ == 0)
        kick_poller_locked(c);
    pthread_mutex_unlock(&c->mu);

    grpc_metadata_array md_in, trailing;
    grpc_metadata_array_init(&md_in);
    grpc_metadata_array_init(&trailing);
    grpc_byte_buffer *recv = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_in;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &error_string;
    grpc_call_error ce = gp__grpc_start(call, ops, 6, &a);
    if (ce == GRPC_CALL_OK) {
        grpc_completion_queue_pluck(cq, &a, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        GP_TAG_ACQUIRE(&a);
    }

    pthread_mutex_lock(&c->mu);
    a.prev->next = a.next; /* close no longer cancels it */
    a.next->prev = a.prev;
    pthread_mutex_unlock(&c->mu);
    grpc_call_unref(call);
    put_cq(c, cq); /* before the in-flight count drops (close frees the pool) */
    pthread_mutex_lock(&c->mu);
    c->last_active_ms = gp__grpc_now_ms();
    if (--c->inflight == 0 && c->closed)
        pthread_cond_broadcast(&c->cv);
    closed = c->closed;
    if (status == GRPC_STATUS_UNAVAILABLE)
        c->broken = 1;
    pthread_mutex_unlock(&c->mu);
    grpc_byte_buffer_destroy(send);
    grpc_metadata_array_destroy(&md_in);
    grpc_metadata_array_destroy(&trailing);

    char text[GP_STATUS_MSG_MAX], cbuf[16];
    details_text(details, text, sizeof text);
    grpc_slice_unref(details);
    if (error_string) {
        if (status != GRPC_STATUS_OK)
            LOG(c, GP_LOG_DEBUG, "%s: core says: %s", m->grpc_path, error_string);
        gpr_free((void *)error_string);
    }
    if (ce != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(recv);
        return gp__status_set(st, GP_EIO, 0, "%s: gRPC core refused the call (error %d)",
                              m->grpc_path, (int)ce);
    }
    *code = status;
    const char *cname = gp__grpc_code_name(status, cbuf, sizeof cbuf);
    if (status == GRPC_STATUS_OK) {
        e = gp__grpc_decode(recv, m->resp_pb, resp, m->grpc_path, err, sizeof err);
        grpc_byte_buffer_destroy(recv);
        if (e != GP_OK)
            return gp__status_set(st, e, 0, "%s response: %s", m->grpc_path, err);
        return gp__status_set(st, GP_OK, 0, "%s", "");
    }
    grpc_byte_buffer_destroy(recv);
    switch (status) {
    case GRPC_STATUS_UNIMPLEMENTED:
        return gp__status_set(st, GP_ENOTFOUND, status,
                              "%s: the plugin does not implement this method (%s: %s)",
                              m->grpc_path, cname, text);
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return gp__status_set(st, GP_ETIMEDOUT, status, "%s: no answer within %d ms (%s)",
                              m->grpc_path, timeout_ms, text);
    case GRPC_STATUS_UNAVAILABLE:
        return gp__status_set(st, GP_ECLOSED, status, "%s: connection to the plugin lost (%s: %s)",
                              m->grpc_path, cname, text);
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        /* Core's words for a message over a cap (ours when sending or
         * receiving, the plugin's when it received). */
        if (strstr(text, "larger than max"))
            return gp__status_set(st, GP_EMSGSIZE, status,
                                  "%s: message over the size limit (%s: %s)", m->grpc_path, cname,
                                  text);
        /* The plugin refused a request while it was still being sent: its
         * reset (ENHANCE_YOUR_CALM) can reach us before its status, and
         * then core's text names only the reset. */
        if (strstr(text, "RST_STREAM"))
            return gp__status_set(st, GP_EMSGSIZE, status,
                                  "%s: the plugin refused the request and reset the stream, "
                                  "as it does for a message over its size limit or its memory "
                                  "quota (%s: %s)",
                                  m->grpc_path, cname, text);
        break;
    case GRPC_STATUS_CANCELLED:
        if (closed)
            return gp__status_set(st, GP_ECLOSED, status, "%s: the connection was closed",
                                  m->grpc_path);
        break;
    default:
        break;
    }
    /* The plugin's own error: st->msg is its text, as a Go host sees it. */
    return gp__status_set(st, GP_EREMOTE, status, "%s", text[0] ? text : cname);
}

static gp_err conn_dispense(gp_conn *base, const char *name, gp_stub **out, gp_status *st)
{
    (void)name; /* as go-plugin: no RPC, the stub just holds the connection */
    gp_stub *s = calloc(1, sizeof *s);
    if (!s)
        return gp__status_set(st, GP_ENOMEM, 0, "dispense %s: out of memory", name);
    s->conn = base;
    gconn *c = (gconn *)base;
    pthread_mutex_lock(&c->mu);
    c->nstubs++;
    pthread_mutex_unlock(&c->mu);
    *out = s;
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static void free_struct(gconn *c)
{
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* A stub may be freed after its connection closed (a host killing a plugin
 * while calls run): the closed struct waits for its last stub. */
static void conn_stub_free(gp_stub *s)
{
    gconn *c = (gconn *)s->conn;
    free(s);
    pthread_mutex_lock(&c->mu);
    int last = --c->nstubs == 0 && c->torn_down;
    pthread_mutex_unlock(&c->mu);
    if (last)
        free_struct(c);
}

static gp_err conn_invoke(gp_stub *s, const gp_method *m, const void *req, void *resp,
                          gp_status *st)
{
    gconn *c = (gconn *)s->conn;
    grpc_status_code code;
    return call_unary(c, m, req, resp, c->call_timeout_ms, st, &code);
}

static gp_err conn_ping(gp_conn *base, gp_status *st)
{
    gconn *c = (gconn *)base;
    grpc_health_v1_HealthCheckRequest req = {.service = "plugin"};
    grpc_health_v1_HealthCheckResponse resp;
    memset(&resp, 0, sizeof resp);
    grpc_status_code code;
    /* Never unbounded: a plugin that handshakes and then stays silent
     * must not hang gp_client_connect (the netrpc wire's Control.Ping has
     * the same default). */
    int ms = c->call_timeout_ms > 0 ? c->call_timeout_ms : PING_DEFAULT_MS;
    gp_err e = call_unary(c, &health_check, &req, &resp, ms, st, &code);
    if (e != GP_OK)
        return e;
    static const char *const names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    unsigned s = (unsigned)resp.status;
    if (resp.status != grpc_health_v1_HealthCheckResponse_ServingStatus_SERVING)
        return gp__status_set(st, GP_EREMOTE, 0,
                              "health check: expected the plugin SERVING, it is %s (%u)",
                              s < 4 ? names[s] : "unknown", s);
    return GP_OK;
}

static gp_err conn_shutdown(gp_conn *base, int timeout_ms, gp_status *st)
{
    gconn *c = (gconn *)base;
    pthread_mutex_lock(&c->mu);
    int was_broken = c->broken;
    pthread_mutex_unlock(&c->mu);
    plugin_Empty req, resp;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    grpc_status_code code;
    gp_err e = call_unary(c, &controller_shutdown, &req, &resp, timeout_ms, st, &code);
    /* A plugin may exit before its reply leaves: the connection dropping
     * after we sent is a delivered request. */
    if (e == GP_ECLOSED && code == GRPC_STATUS_UNAVAILABLE && !was_broken) {
        LOG(c, GP_LOG_DEBUG, "shutdown: connection closed before the reply; taken as delivered");
        return gp__status_set(st, GP_OK, 0, "%s", "");
    }
    return e;
}

/* Background events: the broker stream and kicks. Single consumer. */
static void bg_event(gconn *c, bg_tag *t, int ok)
{
    pthread_mutex_lock(&c->mu);
    c->bg_pending--;
    int stopping = c->stopping;
    if (t == &c->t_kick)
        c->kicking = 0;
    if (t == &c->t_send)
        c->bg_want--;
    pthread_mutex_unlock(&c->mu);
    if (t == &c->t_send) {
        gp__grpc_sendq_done(&c->bq);
    } else if (t == &c->t_recv && c->gb && ok && c->broker_msg) {
        gp__grpc_broker_received(c->gb, c->broker_msg);
        grpc_byte_buffer_destroy(c->broker_msg);
        c->broker_msg = NULL;
        if (stopping)
            return;
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &c->broker_msg;
        pthread_mutex_lock(&c->mu);
        if (gp__grpc_start(c->broker, &op, 1, &c->t_recv) == GRPC_CALL_OK)
            c->bg_pending++;
        pthread_mutex_unlock(&c->mu);
    } else if (t == &c->t_recv) {
        if (!ok || !c->broker_msg)
            return; /* the stream ended; its status says why */
        plugin_ConnInfo ci;
        memset(&ci, 0, sizeof ci);
        char err[160];
        if (gp__grpc_decode(c->broker_msg, plugin_ConnInfo_fields, &ci, "ConnInfo", err,
                            sizeof err) == GP_OK) {
            LOG(c, GP_LOG_DEBUG, "broker: ConnInfo for service %u ignored (no brokering yet)",
                (unsigned)ci.service_id);
            gp_msg_release(plugin_ConnInfo_fields, &ci);
        } else {
            LOG(c, GP_LOG_DEBUG, "broker: %s", err);
        }
        grpc_byte_buffer_destroy(c->broker_msg);
        c->broker_msg = NULL;
        if (stopping)
            return;
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &c->broker_msg;
        pthread_mutex_lock(&c->mu);
        if (gp__grpc_start(c->broker, &op, 1, &c->t_recv) == GRPC_CALL_OK)
            c->bg_pending++;
        pthread_mutex_unlock(&c->mu);
    } else if (t == &c->t_status) {
        char text[200], cbuf[16];
        details_text(c->broker_details, text, sizeof text);
        if (c->broker_code == GRPC_STATUS_UNIMPLEMENTED)
            LOG(c, GP_LOG_DEBUG, "broker: the plugin has no GRPCBroker (%s)", text);
        else if (!stopping)
            LOG(c, GP_LOG_DEBUG, "broker stream ended: %s: %s",
                gp__grpc_code_name(c->broker_code, cbuf, sizeof cbuf), text);
        if (c->broker_code == GRPC_STATUS_UNAVAILABLE) {
            pthread_mutex_lock(&c->mu);
            c->broken = 1;
            pthread_mutex_unlock(&c->mu);
        }
    }
}

/* Under mu: give the conn up (keepalive): every call in flight, the broker
 * stream included, ends with UNAVAILABLE and these words; later calls fail
 * at once. */
static void lose_locked(gconn *c, const char *why)
{
    if (c->lost[0] || c->closed)
        return;
    snprintf(c->lost, sizeof c->lost, "%s", why);
    for (active *a = c->calls.next; a != &c->calls; a = a->next)
        grpc_call_cancel_with_status(a->call, GRPC_STATUS_UNAVAILABLE, c->lost, NULL);
    if (c->broker)
        grpc_call_cancel_with_status(c->broker, GRPC_STATUS_UNAVAILABLE, c->lost, NULL);
    c->broken = 1;
}

/* Keepalive by health check: a stopped or hung plugin answers no call, so
 * calls with no deadline would wait forever; this one has a deadline, and
 * its failure ends them all. A call, not an HTTP/2 ping: Go servers
 * GOAWAY pings more often than every 5 min but answer calls at any rate. */
static void *checker_main(void *arg)
{
    gconn *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->closed && !c->lost[0]) {
        long long due = gp__grpc_now_ms() + c->check_ms;
        while (!c->closed && gp__grpc_now_ms() < due) {
            struct timespec ts = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000};
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        if (c->closed)
            break;
        pthread_mutex_unlock(&c->mu);
        grpc_health_v1_HealthCheckRequest req = {.service = "plugin"};
        grpc_health_v1_HealthCheckResponse resp;
        memset(&resp, 0, sizeof resp);
        grpc_status_code code;
        gp_status st;
        gp_err e = call_unary(c, &health_check, &req, &resp, c->check_timeout_ms, &st, &code);
        pthread_mutex_lock(&c->mu);
        if (e == GP_ETIMEDOUT || (e == GP_ECLOSED && code == GRPC_STATUS_UNAVAILABLE)) {
            char why[sizeof c->lost];
            if (e == GP_ETIMEDOUT)
                snprintf(why, sizeof why, "keepalive: no answer to a health check within %d ms",
                         c->check_timeout_ms);
            else
                snprintf(why, sizeof why, "keepalive: health check failed: %.100s", st.msg);
            lose_locked(c, why);
            /* A dropped connection is no news (a kill, an exit); silence is. */
            if (c->lost[0])
                LOG(c, e == GP_ETIMEDOUT ? GP_LOG_WARN : GP_LOG_DEBUG, "%s", c->lost);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void bg_dispatch(gp__grpc_tag *t, int ok)
{
    bg_tag *b = (bg_tag *)t;
    bg_event(b->c, b, ok);
}

/* Run one event taken from the background queue. */
static void bg_run(grpc_event ev)
{
    if (ev.type != GRPC_OP_COMPLETE)
        return;
    GP_TAG_ACQUIRE(ev.tag);
    ((gp__grpc_tag *)ev.tag)->fn(ev.tag, ev.success);
}

/* With mu held: deliver what sits on the background queue (a caller's
 * polling read it) and read the socket once, without waiting. */
static void sweep_locked(gconn *c)
{
    c->polling = 1;
    pthread_mutex_unlock(&c->mu);
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(c->bg_cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        bg_run(ev);
    }
    pthread_mutex_lock(&c->mu);
    c->polling = 0;
}

static void *idle_poller(void *arg)
{
    gconn *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        long long now = gp__grpc_now_ms();
        long long idle_at = c->last_active_ms + c->idle_after_ms;
        if ((c->inflight == 0 && now >= idle_at) || c->idle_after_ms < 0 || c->bg_want > 0) {
            c->polling = 1;
            pthread_mutex_unlock(&c->mu);
            bg_run(grpc_completion_queue_next(c->bg_cq, deadline_in(IDLE_POLL_MS), NULL));
            pthread_mutex_lock(&c->mu);
            c->polling = 0;
            continue;
        }
        /* Calls are running: they read the socket themselves. A background
         * stream's messages land on our queue; deliver them every SWEEP_MS
         * instead of polling beside the callers (which would take their
         * events and hand them over: a thread hop per call). */
        if (c->nbg > 0)
            sweep_locked(c);
        if (c->stopping)
            break;
        now = gp__grpc_now_ms();
        long long until = c->inflight ? now + c->idle_after_ms : idle_at;
        if (c->nbg > 0 && until > now + SWEEP_MS)
            until = now + SWEEP_MS;
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* The broker's send queue: one ConnInfo at a time on the broker call. */
static int broker_start_send(void *ctx, grpc_byte_buffer *bb)
{
    gconn *c = ctx;
    pthread_mutex_lock(&c->mu);
    int r = -1;
    if (c->broker && !c->stopping) {
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_SEND_MESSAGE;
        op.data.send_message.send_message = bb;
        if (gp__grpc_start(c->broker, &op, 1, &c->t_send) == GRPC_CALL_OK) {
            c->bg_pending++;
            c->bg_want++;
            pthread_cond_broadcast(&c->cv); /* the poller reads its completion */
            r = 1;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

static gp_err broker_send(void *ctx, grpc_byte_buffer *bb)
{
    return gp__grpc_sendq_push(&((gconn *)ctx)->bq, bb);
}

static void broker_want_recv(void *ctx, int want)
{
    gconn *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->bg_want += want ? 1 : -1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static gp_broker *conn_broker(gp_conn *base)
{
    return gp__grpc_broker_base(((gconn *)base)->gb);
}

static void start_broker(gconn *c)
{
    void *h = lookup_reg(c, &broker_stream);
    if (!h)
        return;
    c->broker = grpc_channel_create_registered_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->bg_cq,
                                                    h, deadline_in(0), NULL);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[1].data.recv_status_on_client.trailing_metadata = &c->broker_trailing;
    ops[1].data.recv_status_on_client.status = &c->broker_code;
    ops[1].data.recv_status_on_client.status_details = &c->broker_details;
    if (gp__grpc_start(c->broker, ops, 2, &c->t_status) == GRPC_CALL_OK)
        c->bg_pending++;
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &c->broker_md;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &c->broker_msg;
    if (gp__grpc_start(c->broker, ops, 2, &c->t_recv) == GRPC_CALL_OK)
        c->bg_pending++;
}

static void conn_close(gp_conn *base)
{
    gconn *c = (gconn *)base;
    pthread_mutex_lock(&c->mu);
    c->closed = 1;
    for (active *a = c->calls.next; a != &c->calls; a = a->next)
        grpc_call_cancel(a->call, NULL);
    pthread_cond_broadcast(&c->cv); /* the checker, out of its wait */
    while (c->inflight > 0)
        pthread_cond_wait(&c->cv, &c->mu);
    c->stopping = 1;
    kick_poller_locked(c); /* out of its poll slice now */
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->checker_started)
        pthread_join(c->checker, NULL);
    if (c->poller_started)
        pthread_join(c->poller, NULL);

    /* Now this thread is the only consumer of the background queue. */
    gp__grpc_sendq_close(&c->bq);
    if (c->broker)
        grpc_call_cancel(c->broker, NULL);
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int pending = c->bg_pending;
        pthread_mutex_unlock(&c->mu);
        if (pending == 0)
            break;
        grpc_event ev =
            grpc_completion_queue_next(c->bg_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        bg_run(ev);
    }
    gp__grpc_broker_free(c->gb);
    c->gb = NULL;
    gp__grpc_sendq_destroy(&c->bq);
    if (c->broker)
        grpc_call_unref(c->broker);
    grpc_byte_buffer_destroy(c->broker_msg);
    grpc_metadata_array_destroy(&c->broker_md);
    grpc_metadata_array_destroy(&c->broker_trailing);
    grpc_slice_unref(c->broker_details);
    grpc_channel_destroy(c->ch);
    grpc_completion_queue_shutdown(c->bg_cq);
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(c->bg_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        bg_run(ev);
    }
    grpc_completion_queue_destroy(c->bg_cq);
    for (size_t i = 0; i < c->npool; i++) {
        grpc_completion_queue_shutdown(c->pool[i]);
        grpc_completion_queue_pluck(c->pool[i], NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        grpc_completion_queue_destroy(c->pool[i]);
    }
    free(c->pool);
    for (size_t i = 0; i < c->nregs; i++)
        free(c->regs[i].path);
    free(c->regs);
    c->regs = NULL;
    c->nregs = c->capregs = 0;
    c->pool = NULL;
    c->npool = c->cappool = 0;
    gp__grpc_core_unref(c->logger_arg);
    pthread_mutex_lock(&c->mu);
    c->torn_down = 1;
    int keep = c->nstubs > 0;
    pthread_mutex_unlock(&c->mu);
    if (!keep)
        free_struct(c);
}

/* ---- streaming calls (stream.c drives them) ----
 * Listed with the unary calls, so close cancels them, but not counted in
 * flight: close does not wait for a call its owner holds open. Each holds
 * the conn's memory like a stub does (nstubs). */
static grpc_call *stream_begin(gp_conn *base, const gp_method *m, grpc_completion_queue *cq,
                               void **link, gp_status *st)
{
    gconn *c = (gconn *)base;
    int background = cq == NULL;
    active *a = calloc(1, sizeof *a);
    if (!a) {
        gp__status_set(st, GP_ENOMEM, 0, "%s: out of memory", m->grpc_path);
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    if (c->closed || c->lost[0]) {
        pthread_mutex_unlock(&c->mu);
        free(a);
        gp__status_set(st, GP_ECLOSED, 0, "%s: the connection is closed", m->grpc_path);
        return NULL;
    }
    if (background) { /* its batches complete on our queue (sweep_locked) */
        cq = c->bg_cq;
        c->nbg++;
        a->background = 1;
    }
    grpc_slice method = grpc_slice_from_copied_string(m->grpc_path);
    a->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_slice_unref(method);
    a->next = c->calls.next;
    a->prev = &c->calls;
    a->next->prev = a;
    c->calls.next = a;
    c->nstubs++;
    c->last_active_ms = gp__grpc_now_ms();
    pthread_mutex_unlock(&c->mu);
    *link = a;
    return a->call;
}

static void stream_end(gp_conn *base, void *link)
{
    gconn *c = (gconn *)base;
    active *a = link;
    pthread_mutex_lock(&c->mu);
    a->prev->next = a->next;
    a->next->prev = a->prev;
    c->last_active_ms = gp__grpc_now_ms();
    if (a->background)
        c->nbg--;
    int last = --c->nstubs == 0 && c->torn_down;
    pthread_mutex_unlock(&c->mu);
    free(a);
    if (last)
        free_struct(c);
}

static int stream_conn_closed(gp_conn *base)
{
    gconn *c = (gconn *)base;
    pthread_mutex_lock(&c->mu);
    int closed = c->closed || c->lost[0];
    pthread_mutex_unlock(&c->mu);
    return closed;
}

/* A background stream's batch was started: sweep now (a cancel's
 * completion is waiting for the poller). */
static void stream_poke(gp_conn *base)
{
    gconn *c = (gconn *)base;
    pthread_mutex_lock(&c->mu);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void stream_want(gp_conn *base, int on)
{
    broker_want_recv(base, on); /* the same count: poll while it is > 0 */
}

static const gp__grpc_stream_conn stream_conn = {
    .begin = stream_begin,
    .end = stream_end,
    .is_closed = stream_conn_closed,
    .poke = stream_poke,
    .want = stream_want,
};

static gp_err conn_call_open(gp_stub *s, const gp_method *m, gp_call **out, gp_status *st)
{
    return gp__grpc_call_open(&stream_conn, s, m, 0, out, st);
}

gp_err gp__grpc_call_open_background(gp_stub *s, const gp_method *m, gp_call **out, gp_status *st)
{
    return gp__grpc_call_open(&stream_conn, s, m, 1, out, st);
}

static const gp__conn_ops grpc_conn_ops = {
    .name = "grpc",
    .dispense = conn_dispense,
    .invoke = conn_invoke,
    .ping = conn_ping,
    .stub_free = conn_stub_free,
    .shutdown = conn_shutdown,
    .close = conn_close,
    .broker = conn_broker,
    .call_open = conn_call_open,
};

static void conn_abort(gconn *c)
{
    if (c->ch)
        grpc_channel_destroy(c->ch);
    grpc_metadata_array_destroy(&c->broker_md);
    grpc_metadata_array_destroy(&c->broker_trailing);
    gp__grpc_sendq_destroy(&c->bq);
    gp__grpc_core_unref(c->logger_arg);
    free_struct(c);
}

gp_err gp__grpc_conn_make(const gp__grpc_client_opts *o, const gp__grpc_channel_maker *mk,
                          gp_conn **out, char *err, size_t errlen)
{
    *out = NULL;
    gconn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "grpc: out of memory");
        return GP_ENOMEM;
    }
    c->base.ops = &grpc_conn_ops;
    if (o && o->logger)
        c->logger = *o->logger;
    c->logger_arg = o ? o->logger : NULL;
    snprintf(c->name, sizeof c->name, "%s", o && o->log_name ? o->log_name : "grpc");
    c->call_timeout_ms = o ? o->call_timeout_ms : 0;
    c->idle_after_ms = o && o->idle_after_ms ? o->idle_after_ms : IDLE_AFTER_MS;
    c->calls.next = c->calls.prev = &c->calls;
    c->broker_details = grpc_empty_slice();
    bg_tag *tags[] = {&c->t_recv, &c->t_status, &c->t_kick, &c->t_send};
    enum bg_kind kinds[] = {BG_RECV, BG_STATUS, BG_KICK, BG_SEND};
    for (size_t i = 0; i < 4; i++)
        *tags[i] = (bg_tag){.t.fn = bg_dispatch, .kind = kinds[i], .c = c};
    gp__grpc_sendq_init(&c->bq, broker_start_send, c);
    grpc_metadata_array_init(&c->broker_md);
    grpc_metadata_array_init(&c->broker_trailing);
    pthread_mutex_init(&c->mu, NULL);
    gp__cond_init_monotonic(&c->cv);
    c->last_active_ms = gp__grpc_now_ms();

    gp__grpc_core_ref(c->logger_arg);
    int ka = o && o->keepalive_ms ? o->keepalive_ms : KEEPALIVE_MS;
    if (ka < 0)
        ka = INT_MAX; /* off */
    int kat = o && o->keepalive_timeout_ms > 0 ? o->keepalive_timeout_ms : KEEPALIVE_TIMEOUT_MS;
    int max_msg = gp__grpc_max_message_arg(o ? o->max_message_bytes : 0);
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = ka},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = kat},
        /* The open broker stream is a call, so pings still flow; a channel
         * with no call at all does not need them. */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 0},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
         .value.integer = 0},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS,
         .value.integer = ka},
        /* go-plugin's host allows 2^31-1 both ways; we cap (grpc.h). */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = max_msg},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = max_msg},
        /* We never compress: without core's compress filter each call
         * skips a filter hop (~1.1k of ~93k instructions per call over both
         * sides, docs/grpc.md "Measured"). Compressed messages a peer sends
         * are still taken (the decompress filter stays). */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION,
         .value.integer = 0},
        /* A TLS dial gets core's client channel, whose retry filter only
         * replays calls the connection refused before they left (no retry
         * policy is ever configured): ~8k of the host's ~88k instructions
         * per call (docs/grpc.md "Measured"). A plain connection (from our
         * fd) never had it; now both fail such a call as UNAVAILABLE. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
        {.type = GRPC_ARG_STRING,
         .key = GRPC_ARG_DEFAULT_AUTHORITY,
         .value.string = (char *)(mk->authority ? mk->authority : "unused")},
        /* Bounds what a plugin sending a huge message makes core buffer
         * (grpc.h); set below. */
        {.type = GRPC_ARG_POINTER, .key = GRPC_ARG_RESOURCE_QUOTA},
        /* Room for the maker's own (TLS: the name checked in the peer's
         * certificate). */
        {.type = GRPC_ARG_INTEGER, .key = NULL},
    };
    size_t nargs = sizeof args / sizeof args[0] - 1;
    grpc_resource_quota *quota = gp__grpc_memory_quota(max_msg);
    args[nargs - 1].value.pointer.p = quota;
    args[nargs - 1].value.pointer.vtable = grpc_resource_quota_arg_vtable();
    if (mk->extra) {
        args[nargs++] = *mk->extra;
    }
    grpc_channel_args ch_args = {.num_args = nargs, .args = args};
    c->ch = mk->make(&ch_args, mk->ctx);
    grpc_resource_quota_unref(quota); /* the channel holds its own reference */
    /* Core gives a lame channel, never NULL, on failure; calls then fail
     * with UNAVAILABLE (GP_ECLOSED). */
    if (mk->ready) {
        gp_err e = mk->ready(c->ch, mk->ctx, err, errlen);
        if (e != GP_OK) {
            conn_abort(c);
            return e;
        }
    }
    c->bg_cq = grpc_completion_queue_create_for_next(NULL);
    gp__grpc_broker_opts bo = {.send = broker_send,
                               .send_ctx = c,
                               .logger = c->logger_arg,
                               .log_name = c->name,
                               .call_timeout_ms = c->call_timeout_ms,
                               .want_recv = broker_want_recv};
    if (o)
        bo.limits = o->limits;
    if (gp__grpc_broker_new(&bo, &c->gb) != GP_OK)
        LOG(c, GP_LOG_WARN, "%s", "grpc: out of memory for the broker; gp_conn_broker is NULL");
    /* As the Go host: keep the broker stream open from the start. */
    pthread_mutex_lock(&c->mu);
    start_broker(c);
    pthread_mutex_unlock(&c->mu);
    if (pthread_create(&c->poller, NULL, idle_poller, c) == 0)
        c->poller_started = 1;
    else
        LOG(c, GP_LOG_WARN, "grpc: no idle poller thread: keepalive on idle channels is off");
    c->check_ms = o ? o->check_ms : 0;
    c->check_timeout_ms = o && o->check_timeout_ms > 0 ? o->check_timeout_ms : KEEPALIVE_TIMEOUT_MS;
    if (c->check_ms > 0) {
        if (pthread_create(&c->checker, NULL, checker_main, c) == 0)
            c->checker_started = 1;
        else
            LOG(c, GP_LOG_WARN, "grpc: no keepalive thread: health checks are off");
    }
    *out = &c->base;
    return GP_OK;
}

static grpc_channel *make_from_fd(const grpc_channel_args *args, void *ctx)
{
    int fd = *(int *)ctx;
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create_from_fd("unused", fd, creds, args);
    grpc_channel_credentials_release(creds);
    return ch;
}

gp_err gp__grpc_conn_from_fd(int fd, const gp__grpc_client_opts *o, gp_conn **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    int fl = fcntl(fd, F_GETFL);
    /* core 1.51 does not set it, and its first read would block forever */
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "grpc: cannot make fd %d non-blocking: %s", fd, strerror(errno));
        if (fd >= 0)
            close(fd);
        return GP_ESYS;
    }
    gp__grpc_channel_maker mk = {.make = make_from_fd, .ctx = &fd};
    gp_err e = gp__grpc_conn_make(o, &mk, out, err, errlen);
    if (e != GP_OK) /* only the allocation can fail, before core took fd */
        close(fd);
    return e;
}
