/* go-plugin's non-multiplexed GRPCBroker; see broker.h. */
#include "transport/base/clock.h"
#include "transport/base/sync.h"
#include "transport/wire/grpc/broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/wire/grpc/proto/grpc_broker.pb.h"
#include "transport/core/broker.h"
#include "transport/core/conn.h"
#include "transport/core/idtable.h"
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/wire/grpc/mux.h"
#include "transport/net/net.h"

/* A peer's ConnInfo not yet dialed (the value in b->infos). */
typedef struct info {
    char *network, *address;
} info;

/* A service we serve on an id: its own socket and server. */
typedef struct served {
    uint32_t id;
    gp__grpc_server *srv;
    char path[108];
    struct served *next;
} served;

struct gp__grpc_broker {
    gp_broker base;
    gp__grpc_broker_opts o;
    gp_logger log;
    int has_log;
    char log_name[64];
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a ConnInfo arrived, or closing */
    uint32_t next_id;
    gp__idtable infos; /* id -> info */
    int wait_ms;       /* how long an announcement waits for its dial */
    served *servers;
    int closing;
    /* TLS of the connection that owns us (copies), used on every brokered
     * connection: we serve as TLS server, dial as TLS client. */
    int has_tls;
    char *tls_root, *tls_cert, *tls_key, *tls_name;
    /* Multiplexed (gp__grpc_broker_use_mux): brokered connections are
     * streams of the main connection's yamux session, matched by knocks. */
    gp__grpc_mux *mux;
    pthread_mutex_t dial_mu; /* knock, ack, open: one dial at a time (go-plugin) */
    gp__idtable acks;        /* id -> char* (the ack's error, "" for none) */
    int reading_knocks;      /* want_recv(1) held since the first served id */
    /* Refusing acks sent in the current second: a peer flooding knocks must
     * not grow our send queue without bound (the rest go unanswered; their
     * dialer times out, as with a Go peer). */
    int64_t refusal_second;
    int refusals;
};

#define MAX_REFUSALS_PER_SECOND 64

/* A dialed brokered connection: a stub owning its own gRPC conn. */
typedef struct bstub {
    gp_stub base;
    gp_conn conn; /* forwards to inner */
    gp_conn *inner;
    gp_stub *inner_stub;
} bstub;

#define LOGF(b, lvl, ...)                                                   \
    do {                                                                    \
        if ((b)->has_log)                                                   \
            gp_logf(&(b)->log, (lvl), (b)->log_name, NULL, 0, __VA_ARGS__); \
    } while (0)

/* ---- send queue --------------------------------------------------------- */

void gp__grpc_sendq_init(gp__grpc_sendq *q, int (*start)(void *, grpc_byte_buffer *), void *ctx)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    q->start = start;
    q->ctx = ctx;
}

/* Under mu: start the next queued message if none is in flight. */
static void kick_locked(gp__grpc_sendq *q)
{
    while (!q->cur && q->n > 0 && !q->closed) {
        grpc_byte_buffer *bb = q->items[0];
        q->cur = bb;
        int r = q->start(q->ctx, bb);
        if (r == 0) { /* no stream yet: keep it first in line */
            q->cur = NULL;
            return;
        }
        memmove(q->items, q->items + 1, (q->n - 1) * sizeof *q->items);
        q->n--;
        if (r < 0) {
            q->cur = NULL;
            grpc_byte_buffer_destroy(bb);
        }
    }
}

void gp__grpc_sendq_kick(gp__grpc_sendq *q)
{
    pthread_mutex_lock(&q->mu);
    kick_locked(q);
    pthread_mutex_unlock(&q->mu);
}

gp_err gp__grpc_sendq_push(gp__grpc_sendq *q, grpc_byte_buffer *bb)
{
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        grpc_byte_buffer_destroy(bb);
        return GP_ECLOSED;
    }
    if (q->n >= GP__GRPC_SENDQ_MAX) {
        pthread_mutex_unlock(&q->mu);
        grpc_byte_buffer_destroy(bb);
        return GP_ESTATE;
    }
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 4;
        grpc_byte_buffer **p = realloc(q->items, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&q->mu);
            grpc_byte_buffer_destroy(bb);
            return GP_ENOMEM;
        }
        q->items = p;
        q->cap = cap;
    }
    q->items[q->n++] = bb;
    kick_locked(q);
    pthread_mutex_unlock(&q->mu);
    return GP_OK;
}

void gp__grpc_sendq_done(gp__grpc_sendq *q)
{
    pthread_mutex_lock(&q->mu);
    grpc_byte_buffer_destroy(q->cur);
    q->cur = NULL;
    kick_locked(q);
    pthread_mutex_unlock(&q->mu);
}

void gp__grpc_sendq_close(gp__grpc_sendq *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    for (size_t i = 0; i < q->n; i++)
        grpc_byte_buffer_destroy(q->items[i]);
    q->n = 0;
    pthread_mutex_unlock(&q->mu);
}

void gp__grpc_sendq_destroy(gp__grpc_sendq *q)
{
    grpc_byte_buffer_destroy(q->cur);
    q->cur = NULL;
    free(q->items);
    q->items = NULL;
    pthread_mutex_destroy(&q->mu);
}

/* ---- ConnInfo table ------------------------------------------------------ */

static void info_free(info *i)
{
    free(i->network);
    free(i->address);
    free(i);
}

static void info_drop(void *ctx, uint32_t id, void *val, bool expired)
{
    gp__grpc_broker *b = ctx;
    if (expired)
        LOGF(b, GP_LOG_DEBUG, "broker: ConnInfo for id %u not dialed within %d ms; dropped",
             (unsigned)id, b->wait_ms);
    info_free(val);
}

/* ---- knocks (multiplexed mode, spec addendum A2.2) ------------------------ */

static gp_err send_knock(gp__grpc_broker *b, uint32_t id, bool ack, const char *error)
{
    plugin_ConnInfo ci = {
        .service_id = id,
        .has_knock = true,
        .knock = {.knock = true, .ack = ack, .error = error && *error ? (char *)error : NULL}};
    grpc_byte_buffer *bb = NULL;
    char err[200];
    gp_err rc = gp__grpc_encode(plugin_ConnInfo_fields, &ci, &bb, "ConnInfo", err, sizeof err);
    return rc ? rc : b->o.send(b->o.send_ctx, bb);
}

/* The mux's on_ack: the knock for id is armed (armed first, then the ack:
 * the peer opens its stream as soon as it reads the ack). */
static void ack_armed(void *ctx, uint32_t id)
{
    send_knock(ctx, id, true, NULL);
}

static void ack_drop(void *ctx, uint32_t id, void *val, bool expired)
{
    gp__grpc_broker *b = ctx;
    if (expired)
        LOGF(b, GP_LOG_DEBUG, "broker: knock ack for id %u arrived with no dial waiting",
             (unsigned)id);
    free(val);
}

/* A knock request is about one of our listeners; anything else with a
 * knock is the reply to one of our dials. */
static void knock_received(gp__grpc_broker *b, const plugin_ConnInfo *ci)
{
    uint32_t id = ci->service_id;
    if (ci->knock.knock && !ci->knock.ack) {
        char why[96] = "", path[108] = "";
        pthread_mutex_lock(&b->mu);
        for (served *s = b->servers; s; s = s->next)
            if (s->id == id)
                snprintf(path, sizeof path, "%s", s->path);
        gp__grpc_mux *mux = b->mux;
        pthread_mutex_unlock(&b->mu);
        /* Not under mu: arming may send acks (of knocks held until now). */
        gp_err rc = !mux       ? GP_EUNSUPPORTED
                    : !path[0] ? GP_ENOTFOUND
                               : gp__grpc_mux_arm(mux, id, path, b->wait_ms);
        if (rc == GP_OK)
            return; /* the mux acks it (on_ack), now or once there is room */
        if (rc == GP_EUNSUPPORTED)
            snprintf(why, sizeof why, "knock for id %u but this connection does not multiplex",
                     (unsigned)id);
        else if (rc == GP_ENOTFOUND)
            snprintf(why, sizeof why, "no listener for id %u", (unsigned)id);
        else if (rc == GP_ESTATE)
            snprintf(why, sizeof why, "too many knocks pending; id %u refused", (unsigned)id);
        else
            snprintf(why, sizeof why, "the connection is closing");
        if (why[0]) {
            pthread_mutex_lock(&b->mu);
            int64_t sec = gp__now_ms() / 1000;
            if (sec != b->refusal_second) {
                b->refusal_second = sec;
                b->refusals = 0;
            }
            int quiet = ++b->refusals > MAX_REFUSALS_PER_SECOND;
            pthread_mutex_unlock(&b->mu);
            LOGF(b, GP_LOG_DEBUG, "broker: refusing a knock%s: %s", quiet ? " silently" : "", why);
            if (quiet)
                return;
        }
        send_knock(b, id, true, why); /* a refusal tells the dialer at once */
        return;
    }
    if (!ci->knock.knock || !ci->knock.ack) {
        LOGF(b, GP_LOG_WARN, "broker: dropped a knock reply for id %u without knock and ack",
             (unsigned)id);
        return;
    }
    const char *e = ci->knock.error ? ci->knock.error : "";
    size_t el = strnlen(e, GP_ERRMSG_MAX - 1); /* the peer's words, cut to a status */
    char *v = malloc(el + 1);
    if (!v)
        return;
    memcpy(v, e, el);
    v[el] = '\0';
    pthread_mutex_lock(&b->mu);
    gp_err rc = gp__idtable_put(&b->acks, id, v, true);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (rc)
        free(v);
}

void gp__grpc_broker_received(gp__grpc_broker *b, grpc_byte_buffer *bb)
{
    plugin_ConnInfo ci;
    memset(&ci, 0, sizeof ci);
    char err[200];
    if (gp__grpc_decode(bb, plugin_ConnInfo_fields, &ci, "ConnInfo", err, sizeof err) != GP_OK) {
        LOGF(b, GP_LOG_WARN, "broker: dropped a message on the broker stream: %s", err);
        return;
    }
    if (ci.has_knock) {
        knock_received(b, &ci);
        gp_msg_release(plugin_ConnInfo_fields, &ci);
        return;
    }
    const char *net = ci.network ? ci.network : "", *addr = ci.address ? ci.address : "";
    if (ci.service_id == 0 || (strcmp(net, "unix") != 0 && strcmp(net, "tcp") != 0) || !*addr ||
        strnlen(addr, GP__GRPC_BROKER_ADDR_MAX + 1) > GP__GRPC_BROKER_ADDR_MAX) {
        LOGF(b, GP_LOG_WARN,
             "broker: dropped a ConnInfo: expected an id > 0, network unix or tcp and an "
             "address of 1 to %d bytes, got id %u, network \"%.40s\", address \"%.100s\"",
             GP__GRPC_BROKER_ADDR_MAX, (unsigned)ci.service_id, net, addr);
        gp_msg_release(plugin_ConnInfo_fields, &ci);
        return;
    }
    uint32_t id = ci.service_id;
    info *i = calloc(1, sizeof *i);
    if (i) {
        i->network = strdup(net);
        i->address = strdup(addr);
    }
    gp_msg_release(plugin_ConnInfo_fields, &ci);
    if (!i || !i->network || !i->address) {
        if (i)
            info_free(i);
        LOGF(b, GP_LOG_WARN, "%s", "broker: out of memory for a ConnInfo");
        return;
    }
    LOGF(b, GP_LOG_DEBUG, "broker: peer serves id %u at %s %s", (unsigned)id, i->network,
         i->address);
    pthread_mutex_lock(&b->mu);
    /* A newer announcement replaces an older one for the same id. */
    gp_err rc = gp__idtable_put(&b->infos, id, i, true);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (rc) {
        info_free(i);
        LOGF(b, GP_LOG_WARN,
             "broker: dropped the ConnInfo for id %u: out of memory, or %zu "
             "announcements already wait to be dialed",
             (unsigned)id, b->infos.max);
    }
}

/* ---- TLS ----------------------------------------------------------------- */

/* The TLS to use now, borrowed from b (set once, before brokering starts,
 * and never changed), or 0 for plaintext. */
static int broker_tls(gp__grpc_broker *b, gp__grpc_tls *t)
{
    pthread_mutex_lock(&b->mu);
    int on = b->has_tls;
    *t = (gp__grpc_tls){.root_pem = b->tls_root,
                        .cert_pem = b->tls_cert,
                        .key_pem = b->tls_key,
                        .server_name = b->tls_name};
    pthread_mutex_unlock(&b->mu);
    return on;
}

static char *dup_or_null(const char *s, int *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

gp_err gp__grpc_broker_use_tls(gp__grpc_broker *b, const gp__grpc_tls *t)
{
    if (!b || !t || !t->root_pem)
        return GP_EINVAL;
    int ok = 1;
    char *root = dup_or_null(t->root_pem, &ok), *cert = dup_or_null(t->cert_pem, &ok),
         *key = dup_or_null(t->key_pem, &ok), *name = dup_or_null(t->server_name, &ok);
    pthread_mutex_lock(&b->mu);
    int set = b->has_tls;
    if (ok && !set) {
        b->tls_root = root;
        b->tls_cert = cert;
        b->tls_key = key;
        b->tls_name = name;
        b->has_tls = 1;
    }
    pthread_mutex_unlock(&b->mu);
    if (ok && !set)
        return GP_OK;
    free(root);
    free(cert);
    free(key);
    free(name);
    return set ? GP_ESTATE : GP_ENOMEM;
}

/* ---- the gp_broker vtable ------------------------------------------------ */

static uint32_t gb_next_id(gp_broker *gb)
{
    gp__grpc_broker *b = (gp__grpc_broker *)gb;
    pthread_mutex_lock(&b->mu);
    uint32_t id = ++b->next_id;
    pthread_mutex_unlock(&b->mu);
    return id;
}

static void served_free(served *s)
{
    gp__grpc_server_stop(s->srv);
    gp__grpc_server_free(s->srv);
    unlink(s->path); /* core does not remove the socket file */
    free(s);
}

static gp_err gb_accept_and_serve(gp_broker *gb, uint32_t id, const gp_service *svc, gp_status *st)
{
    gp__grpc_broker *b = (gp__grpc_broker *)gb;
    char err[GP_STATUS_MSG_MAX] = "";
    served *s = calloc(1, sizeof *s);
    if (!s)
        return gp__status_set(st, GP_ENOMEM, 0, "broker: out of memory");
    s->id = id;
    pthread_mutex_lock(&b->mu);
    int dup = 0;
    for (served *o = b->servers; o; o = o->next)
        dup |= o->id == id;
    int closing = b->closing;
    pthread_mutex_unlock(&b->mu);
    if (closing || dup) {
        free(s);
        return closing ? gp__status_set(st, GP_ECLOSED, 0, "broker: the connection is closed")
                       : gp__status_set(st, GP_ESTATE, 0, "broker: id %u is already being served",
                                        (unsigned)id);
    }
    gp__grpc_server_opts so = {.services = svc,
                               .nservices = 1,
                               .workers = 1,
                               .logger = b->has_log ? &b->log : NULL,
                               .broker = gb};
    char addr[120];
    gp_err rc = gp__net_unix_path(getenv("PLUGIN_UNIX_SOCKET_DIR"), s->path, sizeof s->path, err,
                                  sizeof err);
    if (!rc)
        rc = gp__grpc_server_new(&so, &s->srv, err, sizeof err);
    gp__grpc_tls tls;
    if (!rc && broker_tls(b, &tls)) {
        if (!tls.cert_pem || !tls.key_pem) {
            snprintf(err, sizeof err,
                     "the connection uses TLS but this side has no "
                     "certificate of its own to serve with");
            rc = GP_ETLS;
        } else {
            rc = gp__grpc_server_use_tls(s->srv, &tls, err, sizeof err);
        }
    }
    if (!rc) {
        snprintf(addr, sizeof addr, "unix:%s", s->path);
        rc = gp__grpc_server_listen(s->srv, addr, NULL, err, sizeof err);
    }
    if (!rc)
        rc = gp__grpc_server_start(s->srv, err, sizeof err);
    if (rc) {
        if (s->srv)
            gp__grpc_server_free(s->srv);
        if (s->path[0])
            unlink(s->path);
        free(s);
        return gp__status_set(st, rc, 0, "broker: serving id %u: %s", (unsigned)id, err);
    }
    pthread_mutex_lock(&b->mu);
    int mux = b->mux != NULL;
    int want = mux && !b->reading_knocks;
    if (want)
        b->reading_knocks = 1;
    pthread_mutex_unlock(&b->mu);
    /* Knocks for what we serve may come at any time, during our own calls
     * too: the host keeps reading its broker stream from now on. */
    if (want && b->o.want_recv)
        b->o.want_recv(b->o.send_ctx, 1);
    if (!mux) { /* multiplexed: nothing is sent until the peer knocks */
        plugin_ConnInfo ci = {.service_id = id, .network = "unix", .address = s->path};
        grpc_byte_buffer *bb = NULL;
        rc = gp__grpc_encode(plugin_ConnInfo_fields, &ci, &bb, "ConnInfo", err, sizeof err);
        if (!rc)
            rc = b->o.send(b->o.send_ctx, bb);
    }
    if (rc) {
        served_free(s);
        return gp__status_set(st, rc, 0, "broker: announcing id %u on the broker stream: %s",
                              (unsigned)id, err[0] ? err : gp_strerror(rc));
    }
    pthread_mutex_lock(&b->mu);
    s->next = b->servers;
    b->servers = s;
    pthread_mutex_unlock(&b->mu);
    LOGF(b, GP_LOG_DEBUG, "broker: serving id %u at unix %s", (unsigned)id, s->path);
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static gp_err bs_invoke(gp_stub *gs, const gp_method *m, const void *req, void *resp, gp_status *st)
{
    bstub *s = (bstub *)gs;
    return s->inner->ops->invoke(s->inner_stub, m, req, resp, st);
}

static void bs_free(gp_stub *gs)
{
    bstub *s = (bstub *)gs;
    s->inner->ops->stub_free(s->inner_stub);
    gp__conn_close(s->inner);
    free(s);
}

static gp_err bs_ping(gp_conn *c, gp_status *st)
{
    bstub *s = (bstub *)((char *)c - offsetof(bstub, conn));
    return s->inner->ops->ping(s->inner, st);
}

/* Streaming methods run on the inner (real) gRPC stub. */
static gp_err bs_call_open(gp_stub *gs, const gp_method *m, gp_call **out, gp_status *st)
{
    bstub *s = (bstub *)gs;
    if (!s->inner->ops->call_open)
        return gp__status_set(st, GP_EUNSUPPORTED, 0, "%s: no streaming on this connection",
                              m->grpc_path ? m->grpc_path : "(unnamed)");
    return s->inner->ops->call_open(s->inner_stub, m, out, st);
}

static const gp__conn_ops bstub_ops = {
    .name = "grpc",
    .dispense = gp__broker_conn_dispense,
    .invoke = bs_invoke,
    .ping = bs_ping,
    .stub_free = bs_free,
    .call_open = bs_call_open,
};

static gp_err wrap_stub(gp_conn *conn, gp_stub **out, gp_status *st);

/* Multiplexed: knock, wait for the ack, open the stream and wait until the
 * peer has accepted (routed) it, all under dial_mu so that streams open in
 * the order of the acks (addendum A2.5) and at most one armed knock of ours
 * waits for its stream at the peer: many dials in a row cannot fill the
 * peer's GP__MUX_MAX_ARMED. */
static gp_err mux_dial(gp__grpc_broker *b, uint32_t id, gp_stub **out, gp_status *st)
{
    char err[GP_STATUS_MSG_MAX] = "";
    pthread_mutex_lock(&b->dial_mu);
    pthread_mutex_lock(&b->mu);
    free(gp__idtable_take(&b->acks, id)); /* a stale ack must not count */
    pthread_mutex_unlock(&b->mu);
    gp_err rc = send_knock(b, id, false, NULL);
    if (rc) {
        pthread_mutex_unlock(&b->dial_mu);
        return gp__status_set(st, rc, 0, "broker: knocking for id %u: %s", (unsigned)id,
                              gp_strerror(rc));
    }
    if (b->o.want_recv)
        b->o.want_recv(b->o.send_ctx, 1);
    pthread_mutex_lock(&b->mu);
    char *ack = gp__idtable_wait(&b->acks, id, &b->mu, &b->cv, &b->closing, b->wait_ms);
    int closing = b->closing;
    pthread_mutex_unlock(&b->mu);
    if (b->o.want_recv)
        b->o.want_recv(b->o.send_ctx, 0);
    if (!ack || ack[0]) {
        pthread_mutex_unlock(&b->dial_mu);
        /* go-plugin's words */
        if (ack)
            rc = gp__status_set(st, GP_EREMOTE, 0,
                                "failed to knock before dialling client: failed to knock for "
                                "id %u: %s",
                                (unsigned)id, ack);
        else if (closing)
            rc = gp__status_set(st, GP_ECLOSED, 0, "broker: the connection is closed");
        else
            rc = gp__status_set(st, GP_ETIMEDOUT, 0,
                                "failed to knock before dialling client: timeout waiting for "
                                "multiplexing knock handshake on id %u",
                                (unsigned)id);
        free(ack);
        return rc;
    }
    free(ack);
    gp__grpc_client_opts co = {.call_timeout_ms = b->o.call_timeout_ms,
                               .logger = b->has_log ? &b->log : NULL,
                               .log_name = b->log_name};
    gp_conn *conn = NULL;
    gp__grpc_tls tls;
    if (broker_tls(b, &tls)) {
        char path[108];
        rc = gp__grpc_mux_open_path(b->mux, b->wait_ms, path, sizeof path, err, sizeof err);
        pthread_mutex_unlock(&b->dial_mu);
        if (!rc)
            rc = gp__grpc_conn_dial_tls("unix", path, &tls, GP_BROKER_WAIT_MS, &co, &conn, err,
                                        sizeof err);
    } else {
        int fd = -1;
        rc = gp__grpc_mux_open_fd(b->mux, b->wait_ms, &fd, err, sizeof err);
        pthread_mutex_unlock(&b->dial_mu);
        if (!rc)
            rc = gp__grpc_conn_from_fd(fd, &co, &conn, err, sizeof err);
    }
    if (rc)
        return gp__status_set(st, rc, 0,
                              "broker: dialing id %u over the multiplexed "
                              "connection: %s",
                              (unsigned)id, err);
    return wrap_stub(conn, out, st);
}

static gp_err gb_dial(gp_broker *gb, uint32_t id, gp_stub **out, gp_status *st)
{
    gp__grpc_broker *b = (gp__grpc_broker *)gb;
    pthread_mutex_lock(&b->mu);
    int mux = b->mux != NULL;
    pthread_mutex_unlock(&b->mu);
    if (mux)
        return mux_dial(b, id, out, st);
    if (b->o.want_recv)
        b->o.want_recv(b->o.send_ctx, 1);
    pthread_mutex_lock(&b->mu);
    info *i = gp__idtable_wait(&b->infos, id, &b->mu, &b->cv, &b->closing, GP_BROKER_WAIT_MS);
    int closing = b->closing;
    pthread_mutex_unlock(&b->mu);
    if (b->o.want_recv)
        b->o.want_recv(b->o.send_ctx, 0);
    if (!i)
        return closing ? gp__status_set(st, GP_ECLOSED, 0, "broker: the connection is closed")
                       : gp__status_set(st, GP_ETIMEDOUT, 0,
                                        "broker: timeout waiting for connection info for id "
                                        "%u (the peer announced none within %d ms)",
                                        (unsigned)id, GP_BROKER_WAIT_MS);
    char err[GP_STATUS_MSG_MAX] = "";
    gp__grpc_client_opts co = {.call_timeout_ms = b->o.call_timeout_ms,
                               .logger = b->has_log ? &b->log : NULL,
                               .log_name = b->log_name};
    gp_conn *conn = NULL;
    gp__grpc_tls tls;
    gp_err rc;
    if (broker_tls(b, &tls)) {
        /* As go-plugin (1.4.4+): the serving side is TLS server. */
        rc = gp__grpc_conn_dial_tls(i->network, i->address, &tls, GP_BROKER_WAIT_MS, &co, &conn,
                                    err, sizeof err);
        info_free(i);
        if (rc)
            return gp__status_set(st, rc, 0, "broker: dialing id %u over TLS: %s", (unsigned)id,
                                  err);
    } else {
        int fd = -1;
        rc = gp__net_dial(i->network, i->address, GP_BROKER_WAIT_MS, 0, &fd, err, sizeof err);
        info_free(i);
        if (rc)
            return gp__status_set(st, rc, 0, "broker: dialing id %u: %s", (unsigned)id, err);
        rc = gp__grpc_conn_from_fd(fd, &co, &conn, err, sizeof err);
        if (rc)
            return gp__status_set(st, rc, 0, "broker: gRPC client for id %u: %s", (unsigned)id,
                                  err);
    }
    return wrap_stub(conn, out, st);
}

/* A stub that owns its brokered conn. Takes conn. */
static gp_err wrap_stub(gp_conn *conn, gp_stub **out, gp_status *st)
{
    bstub *s = calloc(1, sizeof *s);
    if (!s) {
        gp__conn_close(conn);
        return gp__status_set(st, GP_ENOMEM, 0, "broker: out of memory");
    }
    gp_err rc = conn->ops->dispense(conn, "", &s->inner_stub, st);
    if (rc) {
        gp__conn_close(conn);
        free(s);
        return rc;
    }
    s->inner = conn;
    s->conn.ops = &bstub_ops;
    s->base.conn = &s->conn;
    *out = &s->base;
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static const gp__broker_ops grpc_broker_ops = {
    .next_id = gb_next_id,
    .accept_and_serve = gb_accept_and_serve,
    .dial = gb_dial,
};

gp_err gp__grpc_broker_new(const gp__grpc_broker_opts *o, gp__grpc_broker **out)
{
    gp__grpc_broker *b = calloc(1, sizeof *b);
    if (!b)
        return GP_ENOMEM;
    b->base.ops = &grpc_broker_ops;
    b->o = *o;
    if (o->logger) {
        b->log = *o->logger;
        b->has_log = 1;
    }
    snprintf(b->log_name, sizeof b->log_name, "%s", o->log_name ? o->log_name : "grpc-broker");
    b->o.log_name = b->log_name;
    b->o.logger = NULL;
    pthread_mutex_init(&b->mu, NULL);
    gp__cond_init_monotonic(&b->cv);
    b->wait_ms = o->limits.broker_wait_ms > 0 ? o->limits.broker_wait_ms : GP_BROKER_WAIT_MS;
    size_t max_ids =
        o->limits.max_pending_ids > 0 ? (size_t)o->limits.max_pending_ids : (size_t)GP__IDTABLE_MAX;
    gp__idtable_init(&b->infos, b->wait_ms, info_drop, b);
    gp__idtable_init(&b->acks, b->wait_ms, ack_drop, b);
    b->infos.max = b->acks.max = max_ids;
    pthread_mutex_init(&b->dial_mu, NULL);
    *out = b;
    return GP_OK;
}

gp_broker *gp__grpc_broker_base(gp__grpc_broker *b)
{
    return b ? &b->base : NULL;
}

gp_err gp__grpc_broker_use_mux(gp__grpc_broker *b, gp__grpc_mux *mux)
{
    if (!b || !mux)
        return GP_EINVAL;
    pthread_mutex_lock(&b->mu);
    int set = b->mux != NULL;
    if (!set) {
        b->mux = mux;
        gp__grpc_mux_on_ack(mux, ack_armed, b);
    }
    pthread_mutex_unlock(&b->mu);
    return set ? GP_ESTATE : GP_OK;
}

gp__grpc_broker *gp__grpc_broker_of(gp_broker *gb)
{
    return gb && gb->ops == &grpc_broker_ops ? (gp__grpc_broker *)gb : NULL;
}

void gp__grpc_broker_free(gp__grpc_broker *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->closing = 1;
    pthread_cond_broadcast(&b->cv);
    served *servers = b->servers;
    b->servers = NULL;
    gp__idtable_clear(&b->infos);
    gp__idtable_clear(&b->acks);
    gp__grpc_mux *mux = b->mux;
    pthread_mutex_unlock(&b->mu);
    /* The session first: its bridges lead into the servers below. */
    gp__grpc_mux_free(mux);
    while (servers) {
        served *s = servers;
        servers = s->next;
        served_free(s);
    }
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->dial_mu);
    pthread_cond_destroy(&b->cv);
    if (b->tls_key) /* private key material */
        memset(b->tls_key, 0, strlen(b->tls_key));
    free(b->tls_root);
    free(b->tls_cert);
    free(b->tls_key);
    free(b->tls_name);
    free(b);
}
