/* The gRPC server: the standard go-plugin services plus the application's
 * unary methods, on one completion queue drained by N worker threads.
 *
 * Polling (docs/grpc.md): one worker at a time polls the queue and runs
 * what it takes on its own thread, handler included, then polls again. The
 * others stand by on a condvar; one joins the polling only while a worker
 * has been inside an application handler for HELP_AFTER_MS, so a slow
 * handler does not hold up other calls, and a fast one costs no thread
 * hop. (Left to core, every worker waits in cq_next and core wakes a
 * follower to poll whenever the leader takes an event: a hop per call.)
 *
 * Each incoming call is a small state machine (scall) whose stages are the
 * tags it puts on the queue. One request per method is always outstanding,
 * re-armed as soon as it completes, plus one unregistered request that
 * answers UNIMPLEMENTED (without it unknown methods hang to their deadline).
 * Shutdown follows the order that is ASan clean: shutdown_and_notify under
 * the re-arm mutex, cancel all calls, wait for the notify tag, shut the
 * queue down, join the workers, destroy.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "transport/wire/grpc/proto/grpc_broker.pb.h"
#include "transport/wire/grpc/proto/grpc_controller.pb.h"
#include "transport/wire/grpc/proto/health.pb.h"
#include "transport/base/sync.h"
#include "transport/core/broker.h"
#include "transport/wire/grpc/broker.h"
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/wire/grpc/stream.h"
#include "transport/wire/grpc/tcp_keepalive.h"
#include "transport/msg/msg.h"

enum {
    MIN_PING_INTERVAL_MS = 5 * 60 * 1000,
    SERVER_KEEPALIVE_MS = 6 * 60 * 1000, /* as our host's pings */
    SERVER_KEEPALIVE_TIMEOUT_MS = 20 * 1000,
};

/* HTTP/2 streams a connection may have open at once (SETTINGS): core holds
 * every stream a peer opens until a request matches it, about 9 KiB each,
 * so 10,000 streams at once cost 94 MiB of peak RSS without it and 38 MiB
 * with it (stream_cap_test). A well-behaved client (core, grpc-go) queues
 * past it instead of failing. At least max_stream_handlers + this margin. */
enum { MAX_CONCURRENT_STREAMS = 1024, STREAM_MARGIN = 256 };

typedef gp__grpc_tag stag;

typedef enum mkind {
    M_APP,
    M_HEALTH,
    M_SHUTDOWN,
    M_BROKER,
    M_STDIO,
    M_UNKNOWN,
    M_APP_STREAM /* a streaming gp_service method (stream.c runs it) */
} mkind;

typedef struct smethod {
    mkind kind;
    const char *path;
    void *handle;       /* NULL for the unregistered catch-all */
    int payload;        /* request arrives with the call */
    const gp_method *m; /* M_APP */
    gp_handler handler;
    gp_stream_handler stream; /* M_APP_STREAM */
    void *impl;
    size_t req_size, resp_size;
} smethod;

struct gp__grpc_server {
    grpc_server *srv;
    grpc_completion_queue *cq;
    gp_logger logger;
    const gp_logger *logger_arg;
    smethod *methods; /* registered ones, then the catch-all */
    size_t nmethods;
    pthread_t *workers;
    int nworkers, nrunning, nrunning_idx;
    /* Polling, under mu: workers in cq_next, workers running an event,
     * standbys in an untimed sleep; when each worker's app handler began
     * (ms; 0 = none; indexed by t_worker). */
    pthread_cond_t pcv;
    int npolling, nactive, nsleeping, queue_done;
    long long *busy_since;
    long long last_handler_ms;
    pthread_mutex_t mu; /* guards re-arming against shutdown */
    pthread_cond_t cv;
    int started, shutting_down, shutdown_seen, stop_req;
    int cq_shut; /* no batch may start after the queue shuts down */
    int listened;
    grpc_server_credentials *creds; /* TLS (gp__grpc_server_use_tls), or NULL */
    stag shutdown_tag;
    /* The broker: handlers' gp_serve_broker(); our own one (ConnInfo in and
     * out on the host's StartStream call, bcall, holding a ref) or NULL. */
    gp_broker *hbroker;
    gp__grpc_broker *own_broker;
    gp__grpc_sendq bq;
    struct scall *bcall; /* under mu */
    int nstreams;        /* streaming handlers running (stream.c), under mu */
    /* Handler threads that are done but may still be exiting, to join
     * (reap_handlers), under mu. */
    pthread_t *ended;
    int nended, capended;
    int max_streams; /* cap on nstreams: past it, RESOURCE_EXHAUSTED */
    long refused;    /* streaming calls refused at the cap, under mu */
};

typedef struct scall {
    stag t_main;  /* the request, then each op batch */
    stag t_close; /* RECV_CLOSE_ON_SERVER of streaming calls */
    gp__grpc_server *s;
    smethod *sm;
    atomic_int refs;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_call_details details;
    grpc_byte_buffer *send_bb;
    grpc_byte_buffer *recv_bb;
    grpc_slice status_details;
    int cancelled;
    int stop_after; /* Controller.Shutdown: stop once the reply is out */
    stag t_send;    /* broker: a ConnInfo we sent */
} scall;

#define LOG(s, lvl, ...) gp_logf(&(s)->logger, (lvl), "grpc-server", NULL, 0, __VA_ARGS__)

enum {
    HELP_AFTER_MS = 2,     /* a handler running this long: a standby polls */
    STANDBY_WATCH_MS = 200 /* a standby ticks this long after the last handler */
};

/* This thread's worker index (busy_since), or -1 off the workers. */
static _Thread_local int t_worker = -1;

/* An app handler runs on this worker between begin and end: the standbys'
 * watch. Only the first handler after a quiet spell wakes one. */
static void handler_begin(gp__grpc_server *s)
{
    if (t_worker < 0)
        return;
    long long now = gp__grpc_now_ms();
    pthread_mutex_lock(&s->mu);
    s->busy_since[t_worker] = now ? now : 1;
    s->last_handler_ms = now;
    if (s->nsleeping > 0)
        pthread_cond_signal(&s->pcv);
    pthread_mutex_unlock(&s->mu);
}

static void handler_end(gp__grpc_server *s)
{
    if (t_worker < 0)
        return;
    pthread_mutex_lock(&s->mu);
    s->busy_since[t_worker] = 0;
    pthread_mutex_unlock(&s->mu);
}

static void on_request(stag *t, int ok);

static scall *of_close(stag *t)
{
    return (scall *)((char *)t - offsetof(scall, t_close));
}

static void scall_free(scall *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    grpc_byte_buffer_destroy(c->payload);
    grpc_byte_buffer_destroy(c->send_bb);
    grpc_byte_buffer_destroy(c->recv_bb);
    grpc_slice_unref(c->status_details);
    if (!c->sm->handle)
        grpc_call_details_destroy(&c->details);
    free(c);
}

static void unref(scall *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        scall_free(c);
}

/* Keep one request outstanding for `sm`. Under s->mu, so that no request is
 * posted once shutdown_and_notify has run. */
#define ARMED_PER_METHOD 8

static void arm(gp__grpc_server *s, smethod *sm)
{
    scall *c = calloc(1, sizeof *c);
    if (!c) {
        LOG(s, GP_LOG_ERROR, "out of memory: %s no longer served", sm->path);
        return;
    }
    c->t_main.fn = on_request;
    c->s = s;
    c->sm = sm;
    atomic_init(&c->refs, 1);
    c->status_details = grpc_empty_slice();
    grpc_metadata_array_init(&c->md);
    if (!sm->handle)
        grpc_call_details_init(&c->details);
    pthread_mutex_lock(&s->mu);
    grpc_call_error e = GRPC_CALL_ERROR;
    if (!s->shutting_down) {
        GP_TAG_RELEASE(&c->t_main);
        if (sm->handle)
            e = grpc_server_request_registered_call(s->srv, sm->handle, &c->call, &c->deadline,
                                                    &c->md, sm->payload ? &c->payload : NULL, s->cq,
                                                    s->cq, &c->t_main);
        else
            e = grpc_server_request_call(s->srv, &c->call, &c->details, &c->md, s->cq, s->cq,
                                         &c->t_main);
    }
    pthread_mutex_unlock(&s->mu);
    if (e != GRPC_CALL_OK)
        scall_free(c);
}

/* Start a batch unless the queue is shutting down (core aborts on a batch
 * whose tag cannot be queued). Workers start follow-up batches while
 * gp__grpc_server_free drains, so this is serialised with the shutdown. */
static grpc_call_error start(scall *c, const grpc_op *ops, size_t n, stag *tag)
{
    gp__grpc_server *s = c->s;
    grpc_call_error e = GRPC_CALL_ERROR;
    pthread_mutex_lock(&s->mu);
    if (!s->cq_shut)
        e = gp__grpc_start(c->call, ops, n, tag);
    pthread_mutex_unlock(&s->mu);
    return e;
}

static void request_stop(gp__grpc_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop_req = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_unary_done(stag *t, int ok)
{
    (void)ok; /* !ok: the client went away; nothing more to do either way */
    scall *c = (scall *)t;
    if (c->stop_after)
        request_stop(c->s);
    unref(c);
}

/* The unary fast path: one batch, one completion. */
static void finish_unary(scall *c, grpc_status_code code, const char *msg)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (code == GRPC_STATUS_OK && c->send_bb) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->send_bb;
    }
    grpc_slice_unref(c->status_details);
    c->status_details = grpc_slice_from_copied_string(msg ? msg : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &c->status_details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    c->t_main.fn = on_unary_done;
    if (start(c, ops, n, &c->t_main) != GRPC_CALL_OK)
        on_unary_done(&c->t_main, 0);
}

/* Encode a response and finish OK, or INTERNAL if it cannot be encoded. */
static void reply(scall *c, const pb_msgdesc_t *desc, const void *resp)
{
    char err[200];
    if (gp__grpc_encode(desc, resp, &c->send_bb, c->sm->path, err, sizeof err) != GP_OK) {
        LOG(c->s, GP_LOG_ERROR, "%s: %s", c->sm->path, err);
        finish_unary(c, GRPC_STATUS_INTERNAL, err);
        return;
    }
    finish_unary(c, GRPC_STATUS_OK, NULL);
}

static grpc_status_code code_of(gp_err e)
{
    switch (e) {
    case GP_ENOTFOUND:
        return GRPC_STATUS_NOT_FOUND;
    case GP_EINVAL:
        return GRPC_STATUS_INVALID_ARGUMENT;
    default:
        return GRPC_STATUS_UNKNOWN;
    }
}

static void serve_app(scall *c)
{
    smethod *sm = c->sm;
    char err[256];
    void *req = calloc(1, sm->req_size);
    void *resp = calloc(1, sm->resp_size);
    if (!req || !resp) {
        free(req);
        free(resp);
        finish_unary(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "plugin out of memory");
        return;
    }
    gp_err de = gp__grpc_decode(c->payload, sm->m->req_pb, req, sm->path, err, sizeof err);
    if (de != GP_OK) {
        free(req);
        free(resp);
        /* Over the decode budget (bazel/nanopb_alloc.h) is a resource
         * limit, as gRPC's own message size cap is. */
        finish_unary(c, de == GP_EMSGSIZE ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INTERNAL,
                     err);
        return;
    }
    gp_status st;
    memset(&st, 0, sizeof st);
    gp_broker *prev = gp__broker_enter(c->s->hbroker);
    handler_begin(c->s);
    gp_err e = sm->handler(sm->impl, req, resp, &st);
    handler_end(c->s);
    gp__broker_leave(prev);
    gp_msg_release(sm->m->req_pb, req);
    free(req);
    if (e == GP_OK) {
        reply(c, sm->m->resp_pb, resp); /* the buffer holds its own copy */
    } else {
        const char *text = st.msg[0] ? st.msg : gp_strerror(e);
        finish_unary(c, code_of(e), text);
    }
    gp_msg_release(sm->m->resp_pb, resp);
    free(resp);
}

static void serve_health(scall *c)
{
    char err[256];
    grpc_health_v1_HealthCheckRequest req;
    memset(&req, 0, sizeof req);
    if (gp__grpc_decode(c->payload, grpc_health_v1_HealthCheckRequest_fields, &req, c->sm->path,
                        err, sizeof err) != GP_OK) {
        finish_unary(c, GRPC_STATUS_INTERNAL, err);
        return;
    }
    /* As grpc-go's health server: "" and our service are SERVING. */
    if (req.service && req.service[0] && strcmp(req.service, "plugin") != 0) {
        snprintf(err, sizeof err, "unknown service %.200s", req.service);
        gp_msg_release(grpc_health_v1_HealthCheckRequest_fields, &req);
        finish_unary(c, GRPC_STATUS_NOT_FOUND, err);
        return;
    }
    gp_msg_release(grpc_health_v1_HealthCheckRequest_fields, &req);
    grpc_health_v1_HealthCheckResponse resp = {
        .status = grpc_health_v1_HealthCheckResponse_ServingStatus_SERVING};
    reply(c, grpc_health_v1_HealthCheckResponse_fields, &resp);
}

static void serve_shutdown(scall *c)
{
    plugin_Empty resp;
    memset(&resp, 0, sizeof resp);
    LOG(c->s, GP_LOG_DEBUG, "GRPCController.Shutdown: stopping after the reply");
    c->stop_after = 1;
    reply(c, plugin_Empty_fields, &resp);
}

static void serve_unknown(scall *c)
{
    char msg[300];
    size_t n = GRPC_SLICE_LENGTH(c->details.method);
    snprintf(msg, sizeof msg, "unknown method %.*s", (int)(n > 200 ? 200 : n),
             (const char *)GRPC_SLICE_START_PTR(c->details.method));
    LOG(c->s, GP_LOG_DEBUG, "%s", msg);
    finish_unary(c, GRPC_STATUS_UNIMPLEMENTED, msg);
}

/* Streaming calls hold two refs: the op chain (t_main) and RECV_CLOSE
 * (t_close), which completes when the call ends either way. */
static void on_stream_closed(stag *t, int ok)
{
    (void)ok;
    scall *c = of_close(t);
    gp__grpc_server *s = c->s;
    int was_bcall = 0;
    pthread_mutex_lock(&s->mu);
    if (s->bcall == c) {
        s->bcall = NULL;
        was_bcall = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (was_bcall)
        unref(c);
    unref(c);
}

/* The broker's send queue: ConnInfo out on the host's StartStream call. */
static void on_broker_sent(stag *t, int ok)
{
    (void)ok;
    scall *c = (scall *)((char *)t - offsetof(scall, t_send));
    gp__grpc_sendq_done(&c->s->bq);
    unref(c);
}

static int broker_start_send(void *ctx, grpc_byte_buffer *bb)
{
    gp__grpc_server *s = ctx;
    pthread_mutex_lock(&s->mu);
    scall *c = s->bcall;
    if (!c || s->cq_shut) {
        int keep = !c && !s->cq_shut;
        pthread_mutex_unlock(&s->mu);
        return keep ? 0 : -1;
    }
    atomic_fetch_add(&c->refs, 1);
    c->t_send.fn = on_broker_sent;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    grpc_call_error e = gp__grpc_start(c->call, &op, 1, &c->t_send);
    pthread_mutex_unlock(&s->mu);
    if (e != GRPC_CALL_OK) {
        LOG(s, GP_LOG_DEBUG, "broker: cannot send a ConnInfo (core error %d)", (int)e);
        unref(c);
        return -1;
    }
    return 1;
}

static gp_err broker_send(void *ctx, grpc_byte_buffer *bb)
{
    return gp__grpc_sendq_push(&((gp__grpc_server *)ctx)->bq, bb);
}

static void on_stream_done(stag *t, int ok)
{
    (void)ok;
    unref((scall *)t);
}

static void on_broker_recv(stag *t, int ok)
{
    scall *c = (scall *)t;
    if (!ok) {
        unref(c);
        return;
    }
    grpc_op op;
    memset(&op, 0, sizeof op);
    if (c->recv_bb) {
        plugin_ConnInfo ci;
        memset(&ci, 0, sizeof ci);
        char err[200];
        if (c->s->own_broker) {
            gp__grpc_broker_received(c->s->own_broker, c->recv_bb);
        } else if (gp__grpc_decode(c->recv_bb, plugin_ConnInfo_fields, &ci, "ConnInfo", err,
                                   sizeof err) == GP_OK) {
            LOG(c->s, GP_LOG_DEBUG,
                "broker: ConnInfo for service %u ignored (a brokered "
                "server has no broker of its own)",
                (unsigned)ci.service_id);
            gp_msg_release(plugin_ConnInfo_fields, &ci);
        } else {
            LOG(c->s, GP_LOG_DEBUG, "broker: %s", err);
        }
        grpc_byte_buffer_destroy(c->recv_bb);
        c->recv_bb = NULL;
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &c->recv_bb;
        c->t_main.fn = on_broker_recv;
    } else {
        /* The host half-closed: end the stream with OK. */
        op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        op.data.send_status_from_server.status = GRPC_STATUS_OK;
        op.data.send_status_from_server.status_details = &c->status_details;
        c->t_main.fn = on_stream_done;
    }
    if (start(c, &op, 1, &c->t_main) != GRPC_CALL_OK)
        unref(c);
}

static void start_stream(scall *c, int recv)
{
    /* The broker stream's third ref (s->bcall) is taken before any op is
     * started: both chains can complete on another worker at once (a host
     * that closes the stream right away, e.g. go-plugin's Kill), and a ref
     * taken after them touched, then published, a freed call that
     * gp__grpc_server_free unref'd again (abort seen under load). */
    int is_bcall = recv && c->s->own_broker;
    atomic_store(&c->refs, is_bcall ? 3 : 2);
    c->t_close.fn = on_stream_closed;
    grpc_op op[2];
    memset(op, 0, sizeof op);
    op[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op[0].data.recv_close_on_server.cancelled = &c->cancelled;
    if (start(c, op, 1, &c->t_close) != GRPC_CALL_OK)
        unref(c);
    memset(op, 0, sizeof op);
    op[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    size_t n = 1;
    if (recv) {
        op[1].op = GRPC_OP_RECV_MESSAGE;
        op[1].data.recv_message.recv_message = &c->recv_bb;
        n = 2;
    }
    /* Stdio: open with no data until the call ends (we capture no output). */
    c->t_main.fn = recv ? on_broker_recv : on_stream_done;
    if (start(c, op, n, &c->t_main) != GRPC_CALL_OK)
        unref(c);
    if (is_bcall) { /* our ConnInfo goes out on the newest stream */
        gp__grpc_server *s = c->s;
        scall *old;
        /* If it has ended already, on_stream_closed did not find it here:
         * the ref goes with the next stream or the server's free, and a
         * ConnInfo sent on it meanwhile fails like one on a closed call. */
        pthread_mutex_lock(&s->mu);
        old = s->bcall;
        s->bcall = c;
        pthread_mutex_unlock(&s->mu);
        if (old)
            unref(old);
        gp__grpc_sendq_kick(&s->bq);
    }
}

/* ---- streaming app methods: stream.c runs the handler on its thread ---- */

static grpc_call_error stream_start(void *ctx, grpc_call *call, const grpc_op *ops, size_t n,
                                    gp__grpc_tag *tag)
{
    gp__grpc_server *s = ctx;
    grpc_call_error e = GRPC_CALL_ERROR;
    pthread_mutex_lock(&s->mu);
    if (!s->cq_shut)
        e = gp__grpc_start(call, ops, n, tag);
    pthread_mutex_unlock(&s->mu);
    return e;
}

/* On the handler's thread, its last touch of the server. The thread is
 * joined later: after this it still runs its thread-local destructors
 * (OpenSSL's among them, once a TLS write ran on it), and a plugin that
 * exits meanwhile races them against OpenSSL's atexit cleanup: a double
 * free, SIGABRT (gRPC issue 38539). */
static void stream_done(void *ctx)
{
    gp__grpc_server *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (s->nended == s->capended) {
        int cap = s->capended ? 2 * s->capended : 8;
        pthread_t *p = realloc(s->ended, (size_t)cap * sizeof *p);
        if (p) {
            s->ended = p;
            s->capended = cap;
        }
    }
    if (s->nended < s->capended)
        s->ended[s->nended++] = pthread_self();
    else
        pthread_detach(pthread_self()); /* out of memory: as before */
    s->nstreams--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Join the handler threads that are done (each is at most finishing its
 * exit): wait for them, or (!wait, on a worker) only the ones already gone.
 * Not under mu, not on a handler thread. */
static void reap_handlers(gp__grpc_server *s, int wait)
{
    if (!wait) {
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < s->nended;)
            if (pthread_tryjoin_np(s->ended[i], NULL) == 0)
                s->ended[i] = s->ended[--s->nended];
            else
                i++;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int have = s->nended > 0;
        pthread_t t = have ? s->ended[--s->nended] : (pthread_t)0;
        pthread_mutex_unlock(&s->mu);
        if (!have)
            return;
        pthread_join(t, NULL);
    }
}

/* Wait until no streaming handler runs, and join their threads. */
static void wait_handlers(gp__grpc_server *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->nstreams > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    reap_handlers(s, 1);
}

static void serve_stream(scall *c)
{
    gp__grpc_server *s = c->s;
    gp__grpc_stream_host h = {.start = stream_start,
                              .done = stream_done,
                              .ctx = s,
                              .broker = s->hbroker,
                              .logger = &s->logger};
    reap_handlers(s, 0); /* the ones gone since the last stream */
    pthread_mutex_lock(&s->mu);
    int full = s->nstreams >= s->max_streams;
    long refused = full ? ++s->refused : 0;
    if (!full)
        s->nstreams++;
    pthread_mutex_unlock(&s->mu);
    if (full) {
        /* A refusal, not a thread: the peer may retry once calls end. */
        char msg[200];
        snprintf(msg, sizeof msg,
                 "plugin: %d streaming calls already running, the most it takes at once "
                 "(max_stream_handlers); try again when one ends",
                 s->max_streams);
        if (refused == 1 || refused % 1000 == 0) /* a flood logs a line per 1000 */
            LOG(s, GP_LOG_WARN, "%s: refused (%ld so far): %s", c->sm->path, refused, msg);
        finish_unary(c, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
        return;
    }
    gp_err e = gp__grpc_stream_serve(&h, c->call, c->sm->m, c->sm->stream, c->sm->impl);
    if (e == GP_OK) {
        c->call = NULL; /* the stream's now */
        scall_free(c);
        return;
    }
    pthread_mutex_lock(&s->mu); /* no thread to join */
    s->nstreams--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    LOG(s, GP_LOG_ERROR, "%s: cannot start the handler thread (%s)", c->sm->path, gp_strerror(e));
    finish_unary(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "plugin cannot start a handler thread");
}

static void on_request(stag *t, int ok)
{
    scall *c = (scall *)t;
    if (!ok) { /* the server is shutting down */
        scall_free(c);
        return;
    }
    arm(c->s, c->sm);
    switch (c->sm->kind) {
    case M_APP:
        serve_app(c);
        break;
    case M_APP_STREAM:
        serve_stream(c);
        break;
    case M_HEALTH:
        serve_health(c);
        break;
    case M_SHUTDOWN:
        serve_shutdown(c);
        break;
    case M_BROKER:
        start_stream(c, 1);
        break;
    case M_STDIO:
        start_stream(c, 0);
        break;
    case M_UNKNOWN:
        serve_unknown(c);
        break;
    }
}

static void on_shutdown_notified(stag *t, int ok)
{
    (void)ok;
    gp__grpc_server *s = (gp__grpc_server *)((char *)t - offsetof(gp__grpc_server, shutdown_tag));
    pthread_mutex_lock(&s->mu);
    s->shutdown_seen = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Under mu: the earliest start of an app handler still running, or 0. */
static long long oldest_busy_locked(const gp__grpc_server *s)
{
    long long t = 0;
    for (int i = 0; s->busy_since && i < s->nworkers; i++)
        if (s->busy_since[i] && (!t || s->busy_since[i] < t))
            t = s->busy_since[i];
    return t;
}

/* Under mu, on a worker: poll now? Nobody polls, and nobody is running an
 * event (the runner polls again when done) or a handler has been running
 * for HELP_AFTER_MS. */
static int should_poll_locked(const gp__grpc_server *s, long long now)
{
    if (s->npolling > 0)
        return 0;
    long long busy = oldest_busy_locked(s);
    return s->nactive == 0 || (busy && now - busy >= HELP_AFTER_MS);
}

static void *worker(void *arg)
{
    gp__grpc_server *s = arg;
    pthread_mutex_lock(&s->mu);
    t_worker = s->nrunning_idx++;
    for (;;) {
        long long now = gp__grpc_now_ms();
        if (s->queue_done)
            break;
        if (!should_poll_locked(s, now)) {
            /* Stand by: watch the handlers while calls come (a tick every
             * HELP_AFTER_MS, without being woken per call); after
             * STANDBY_WATCH_MS without a handler, sleep until one starts. */
            long long busy = oldest_busy_locked(s);
            /* Untimed when nothing is to be watched: no handler lately, or
             * another worker already polls beside a running handler (a
             * handler starting on it wakes us). */
            if ((!busy && now - s->last_handler_ms >= STANDBY_WATCH_MS) ||
                (busy && s->npolling > 0)) {
                s->nsleeping++;
                pthread_cond_wait(&s->pcv, &s->mu);
                s->nsleeping--;
                continue;
            }
            long long until =
                busy && busy + HELP_AFTER_MS > now ? busy + HELP_AFTER_MS : now + HELP_AFTER_MS;
            struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
            pthread_cond_timedwait(&s->pcv, &s->mu, &ts);
            continue;
        }
        s->npolling++;
        pthread_mutex_unlock(&s->mu);
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        pthread_mutex_lock(&s->mu);
        s->npolling--;
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            s->queue_done = 1;
            pthread_cond_broadcast(&s->pcv);
            break;
        }
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        s->nactive++;
        pthread_mutex_unlock(&s->mu);
        GP_TAG_ACQUIRE(ev.tag);
        ((stag *)ev.tag)->fn(ev.tag, ev.success);
        pthread_mutex_lock(&s->mu);
        s->nactive--;
    }
    t_worker = -1;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static gp_err add_method(gp__grpc_server *s, smethod m, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, m.path) == 0) {
            snprintf(err, errlen, "grpc server: method %s registered twice", m.path);
            return GP_EINVAL;
        }
    if (m.kind != M_UNKNOWN) {
        m.handle = grpc_server_register_method(
            s->srv, m.path, NULL,
            m.payload ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
        if (!m.handle) {
            snprintf(err, errlen, "grpc server: gRPC core refused method %s", m.path);
            return GP_EINVAL;
        }
    }
    s->methods[s->nmethods++] = m;
    return GP_OK;
}

/* Does an app service stream `path` (it then replaces our built-in one)? */
static int app_streams(const gp__grpc_server_opts *o, const char *path)
{
    for (size_t i = 0; o && i < o->nservices; i++)
        for (size_t j = 0; j < o->services[i].nstreams; j++) {
            const gp_method *m = o->services[i].streams[j].method;
            if (m && m->grpc_path && strcmp(m->grpc_path, path) == 0)
                return 1;
        }
    return 0;
}

static gp_err add_app_methods(gp__grpc_server *s, const gp__grpc_server_opts *o, char *err,
                              size_t errlen)
{
    for (size_t i = 0; i < o->nservices; i++) {
        const gp_service *svc = &o->services[i];
        for (size_t j = 0; j < svc->nmethods; j++) {
            const gp_service_method *sm = &svc->methods[j];
            const gp_method *m = sm->method;
            if (!m || !sm->handler || !m->grpc_path || m->grpc_path[0] != '/' || !m->req_pb ||
                !m->resp_pb) {
                snprintf(err, errlen,
                         "grpc server: service %s method %zu: expected a method with a "
                         "\"/pkg.Service/Method\" path, messages and a handler",
                         svc->name ? svc->name : "(unnamed)", j);
                return GP_EINVAL;
            }
            if (m->kind != GP_UNARY) {
                snprintf(err, errlen,
                         "grpc server: %s is a streaming method: list it in the service's "
                         "streams (gp_service_stream), not its methods",
                         m->grpc_path);
                return GP_EINVAL;
            }
            smethod x = {.kind = M_APP,
                         .path = m->grpc_path,
                         .payload = 1,
                         .m = m,
                         .handler = sm->handler,
                         .impl = svc->impl,
                         .req_size = gp__msg_struct_size(m->req_pb),
                         .resp_size = gp__msg_struct_size(m->resp_pb)};
            if (!x.req_size || !x.resp_size) {
                snprintf(err, errlen, "grpc server: %s: message struct over 64 KiB", m->grpc_path);
                return GP_EINVAL;
            }
            gp_err e = add_method(s, x, err, errlen);
            if (e != GP_OK)
                return e;
        }
        for (size_t j = 0; j < svc->nstreams; j++) {
            const gp_service_stream *ss = &svc->streams[j];
            const gp_method *m = ss->method;
            if (!m || !ss->handler || !m->grpc_path || m->grpc_path[0] != '/' || !m->req_pb ||
                !m->resp_pb || m->kind == GP_UNARY) {
                snprintf(err, errlen,
                         "grpc server: service %s stream %zu: expected a streaming method "
                         "with a \"/pkg.Service/Method\" path, messages and a handler",
                         svc->name ? svc->name : "(unnamed)", j);
                return GP_EINVAL;
            }
            smethod x = {.kind = M_APP_STREAM,
                         .path = m->grpc_path,
                         .payload = 0,
                         .m = m,
                         .stream = ss->handler,
                         .impl = svc->impl};
            gp_err e = add_method(s, x, err, errlen);
            if (e != GP_OK)
                return e;
        }
    }
    return GP_OK;
}

gp_err gp__grpc_server_new(const gp__grpc_server_opts *o, gp__grpc_server **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    size_t napp = 0;
    for (size_t i = 0; o && i < o->nservices; i++)
        napp += o->services[i].nmethods + o->services[i].nstreams;
    gp__grpc_server *s = calloc(1, sizeof *s);
    if (s)
        s->methods = calloc(napp + 5, sizeof *s->methods);
    if (!s || !s->methods) {
        free(s);
        snprintf(err, errlen, "grpc server: out of memory");
        return GP_ENOMEM;
    }
    if (o && o->logger)
        s->logger = *o->logger;
    s->logger_arg = o ? o->logger : NULL;
    s->nworkers = o && o->workers > 0 ? o->workers : 2;
    s->max_streams =
        o && o->max_stream_handlers > 0 ? o->max_stream_handlers : GP__GRPC_MAX_STREAM_HANDLERS;
    s->shutdown_tag.fn = on_shutdown_notified;
    s->busy_since = calloc((size_t)s->nworkers, sizeof *s->busy_since);
    pthread_mutex_init(&s->mu, NULL);
    gp__cond_init_monotonic(&s->pcv);
    gp__grpc_sendq_init(&s->bq, broker_start_send, s);
    if (o && o->broker) {
        s->hbroker = o->broker;
    } else {
        gp__grpc_broker_opts bo = {.send = broker_send,
                                   .send_ctx = s,
                                   .logger = o ? o->logger : NULL,
                                   .log_name = "grpc-broker"};
        if (o)
            bo.limits = o->limits;
        if (gp__grpc_broker_new(&bo, &s->own_broker) == GP_OK)
            s->hbroker = gp__grpc_broker_base(s->own_broker);
    }
    pthread_cond_init(&s->cv, NULL);
    gp__grpc_core_ref(s->logger_arg);

    int min_ping =
        o && o->min_ping_interval_ms > 0 ? o->min_ping_interval_ms : MIN_PING_INTERVAL_MS;
    int max_msg = gp__grpc_max_message_arg(o ? o->max_message_bytes : 0);
    /* Our own pings to the host (gp_serve_config.keepalive): clients take
     * server pings at any rate. */
    int ka = o && o->keepalive_ms ? o->keepalive_ms : SERVER_KEEPALIVE_MS;
    int kat =
        o && o->keepalive_timeout_ms > 0 ? o->keepalive_timeout_ms : SERVER_KEEPALIVE_TIMEOUT_MS;
    int max_open = s->max_streams <= MAX_CONCURRENT_STREAMS - STREAM_MARGIN ? MAX_CONCURRENT_STREAMS
                   : s->max_streams > INT_MAX - STREAM_MARGIN               ? INT_MAX
                                                              : s->max_streams + STREAM_MARGIN;
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_KEEPALIVE_TIME_MS,
         .value.integer = ka < 0 ? INT_MAX : ka},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = kat},
        /* Core's defaults would hold pings back on a connection with no
         * data (2 at most, 5 min apart): a silent host must be probed. */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
         .value.integer = 0},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS,
         .value.integer = ka < 0 ? INT_MAX : ka},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = max_msg},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = max_msg},
        /* Our host pings every 6 min; answer, do not GOAWAY. */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         .value.integer = min_ping},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 1},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_CONCURRENT_STREAMS,
         .value.integer = max_open},
        /* We never compress replies; compressed requests are still taken
         * (client.c, the same arg). */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION,
         .value.integer = 0},
    };
    grpc_resource_quota *quota = gp__grpc_memory_quota(max_msg);
    grpc_arg all[sizeof args / sizeof args[0] + 2];
    memcpy(all, args, sizeof args);
    all[sizeof args / sizeof args[0]] = (grpc_arg){.type = GRPC_ARG_POINTER,
                                                   .key = GRPC_ARG_RESOURCE_QUOTA,
                                                   .value.pointer = {
                                                       .p = quota,
                                                       .vtable = grpc_resource_quota_arg_vtable(),
                                                   }};
    size_t nall = sizeof args / sizeof args[0] + 1;
    /* TCP keepalive on the sockets core accepts itself (TLS, TCP), as on
     * those we accept (tcp_keepalive.h); gp_keepalive.time_ms < 0: none. */
    grpc_arg tka;
    int has_tka = !(o && o->keepalive_ms < 0) &&
                  gp__grpc_tcp_keepalive_arg(o ? o->keepalive_ms : 0,
                                             o ? o->keepalive_timeout_ms : 0, &tka) == 0;
    if (has_tka)
        all[nall++] = tka;
    grpc_channel_args ch_args = {.num_args = nall, .args = all};
    s->srv = grpc_server_create(&ch_args, NULL);
    grpc_resource_quota_unref(quota); /* the server holds its own reference */
    if (has_tka)
        gp__grpc_tcp_keepalive_release(&tka);
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->srv, s->cq, NULL);

    gp_err e = GP_OK;
    smethod std[] = {
        {.kind = M_HEALTH, .path = "/grpc.health.v1.Health/Check", .payload = 1},
        {.kind = M_SHUTDOWN, .path = "/plugin.GRPCController/Shutdown", .payload = 1},
        {.kind = M_BROKER, .path = "/plugin.GRPCBroker/StartStream", .payload = 0},
        {.kind = M_STDIO, .path = "/plugin.GRPCStdio/StreamStdio", .payload = 1},
    };
    for (size_t i = 0; e == GP_OK && i < sizeof std / sizeof std[0]; i++)
        if (!app_streams(o, std[i].path)) /* gp_serve forwards stdio itself */
            e = add_method(s, std[i], err, errlen);
    if (e == GP_OK && o)
        e = add_app_methods(s, o, err, errlen);
    if (e == GP_OK)
        e = add_method(s, (smethod){.kind = M_UNKNOWN, .path = "*"}, err, errlen);
    if (e != GP_OK) {
        gp__grpc_server_free(s);
        return e;
    }
    *out = s;
    return GP_OK;
}

gp_err gp__grpc_server_listen(gp__grpc_server *s, const char *addr, int *port, char *err,
                              size_t errlen)
{
    if (s->started) {
        snprintf(err, errlen, "grpc server: listen %s: the server is already started", addr);
        return GP_ESTATE;
    }
    grpc_server_credentials *creds =
        s->creds ? s->creds : grpc_insecure_server_credentials_create();
    int p = grpc_server_add_http2_port(s->srv, addr, creds);
    if (creds != s->creds)
        grpc_server_credentials_release(creds);
    s->listened = 1;
    if (p == 0) {
        snprintf(err, errlen,
                 "grpc server: cannot listen on %s (address in use, bad path or bad "
                 "address; core's reason is in the debug log)",
                 addr);
        return GP_ECONNECT;
    }
    if (port)
        *port = strncmp(addr, "unix:", 5) == 0 ? 0 : p;
    return GP_OK;
}

gp__grpc_broker *gp__grpc_server_own_broker(gp__grpc_server *s)
{
    return s->own_broker;
}

gp_err gp__grpc_server_use_tls(gp__grpc_server *s, const gp__grpc_tls *tls, char *err,
                               size_t errlen)
{
    if (s->started || s->listened || s->creds) {
        snprintf(err, errlen, "grpc server: TLS must be set once, before the first listen");
        return GP_ESTATE;
    }
    if (!tls || !tls->root_pem || !tls->cert_pem || !tls->key_pem) {
        snprintf(err, errlen, "grpc server: TLS needs a root, a certificate and a key");
        return GP_EINVAL;
    }
    grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key_pem, .cert_chain = tls->cert_pem};
    /* Core copies the PEM texts. */
    s->creds = grpc_ssl_server_credentials_create_ex(
        tls->root_pem, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
    if (!s->creds) {
        snprintf(err, errlen, "grpc server: gRPC core refused the TLS credentials");
        return GP_ETLS;
    }
    /* Our brokered connections use the same TLS (broker.h). */
    if (s->own_broker && gp__grpc_broker_use_tls(s->own_broker, tls) == GP_ENOMEM) {
        snprintf(err, errlen, "grpc server: out of memory for the broker's TLS");
        return GP_ENOMEM;
    }
    return GP_OK;
}

gp_err gp__grpc_server_start(gp__grpc_server *s, char *err, size_t errlen)
{
    if (s->started) {
        snprintf(err, errlen, "grpc server: already started");
        return GP_ESTATE;
    }
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers || !s->busy_since) {
        snprintf(err, errlen, "grpc server: out of memory");
        return GP_ENOMEM;
    }
    grpc_server_start(s->srv);
    s->started = 1;
    for (int i = 0; i < s->nworkers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker, s) != 0)
            break;
        s->nrunning++;
    }
    if (s->nrunning == 0) {
        snprintf(err, errlen, "grpc server: cannot start a worker thread");
        return GP_ESYS;
    }
    /* Several requests outstanding per method, so concurrent calls are
     * matched at once instead of waiting for a re-arm (about +4% calls/s
     * with 8 callers). Each completed request re-arms itself. */
    for (size_t i = 0; i < s->nmethods; i++)
        for (int k = 0; k < ARMED_PER_METHOD; k++)
            arm(s, &s->methods[i]);
    return GP_OK;
}

void gp__grpc_server_wait(gp__grpc_server *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stop_req)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void gp__grpc_server_stop(gp__grpc_server *s)
{
    request_stop(s);
}

void gp__grpc_server_free(gp__grpc_server *s)
{
    if (!s)
        return;
    gp__grpc_sendq_close(&s->bq);
    pthread_mutex_lock(&s->mu);
    s->shutting_down = 1;
    GP_TAG_RELEASE(&s->shutdown_tag);
    grpc_server_shutdown_and_notify(s->srv, s->cq, &s->shutdown_tag);
    pthread_mutex_unlock(&s->mu);
    grpc_server_cancel_all_calls(s->srv);
    /* Streaming handlers see their calls cancelled (through the workers,
     * which still run) and return. */
    wait_handlers(s);
    if (s->nrunning > 0) {
        pthread_mutex_lock(&s->mu);
        while (!s->shutdown_seen)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    s->cq_shut = 1;
    grpc_completion_queue_shutdown(s->cq);
    pthread_mutex_unlock(&s->mu);
    if (s->nrunning > 0) {
        for (int i = 0; i < s->nrunning; i++)
            pthread_join(s->workers[i], NULL);
    } else { /* never started: drain here */
        worker(s);
    }
    /* A streaming call matched before the shutdown whose request a worker
     * ran after the wait above started a handler then: its batches fail
     * now (cq_shut), and the ones it started before came back before the
     * queue's end. It must not outlive the server it uses. */
    wait_handlers(s);
    if (s->bcall) /* its close never came back, or came before it was published */
        unref(s->bcall);
    s->bcall = NULL;
    gp__grpc_broker_free(s->own_broker);
    gp__grpc_sendq_destroy(&s->bq);
    grpc_server_destroy(s->srv);
    grpc_completion_queue_destroy(s->cq);
    if (s->creds)
        grpc_server_credentials_release(s->creds);
    gp__grpc_core_unref(s->logger_arg);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->pcv);
    pthread_mutex_destroy(&s->mu);
    free(s->ended);
    free(s->busy_since);
    free(s->workers);
    free(s->methods);
    free(s);
}
