/* The plugin side of the netrpc wire: accept connections, run a yamux
 * server session on each, serve Control and Dispenser on stream 1 and the
 * dispensed `Plugin` services on MuxBroker streams. See netrpc.h and spec
 * §2.2-§2.5. */
#include "transport/base/clock.h"
#include "transport/base/sync.h"
#include "transport/wire/netrpc/netrpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/core/broker.h"
#include "transport/core/wire.h"
#include "transport/core/idtable.h"
#include "transport/msg/msg.h"
#include "transport/net/net.h"
#include "transport/wire/netrpc/gob/gob_pb.h"
#include "transport/wire/netrpc/gob/gob_rpc.h"
#include "transport/wire/netrpc/mux_broker.h"
#include "transport/yamux/mux_session.h"
#include "transport/yamux/mux_tls.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"
#include "transport/wire/netrpc/service.h"

/* gp_limits.max_connections by default. */
#define MAX_CONNECTIONS 32
/* How long a stopping server lets hosts close their sessions themselves. */
#define CLOSE_GRACE_MS 500

typedef struct sconn sconn;

struct sconn {
    gp__netrpc_server *srv;
    gp__mux_stream *out, *errs; /* stdout (3), stderr (5) */
    pthread_t fwd;              /* sends what the plugin printed on them */
    int fwd_running;
    gp__mux_session *sess; /* with TLS set by conn_main after the handshake (under srv->mu) */
    int fd;                /* with TLS: the socket until the session owns it (under srv->mu) */
    pthread_t thread, broker;
    int broker_running;
    int done;           /* the connection thread has finished (under srv->mu) */
    pthread_mutex_t mu; /* ids, reservations, streams */
    uint32_t next_id;
    gp__mux_broker *mb; /* ids, and streams for ids that are not Dispense's */
    gp__idtable res;    /* id handed out by Dispense -> its gp_service, until the host's stream */
    sconn *next;
};

struct gp__netrpc_server {
    gp__netrpc_server_opts o;
    gp_logger log;
    int has_log;
    int lfd;
    int wake[2]; /* a byte here stops the accept loop */
    pthread_t acceptor;
    int accepting;
    pthread_mutex_t mu; /* conns, stop */
    pthread_cond_t cv;
    int stop;
    int cut;                             /* free is ending every session: new ones end at once */
    int refused_conns;                   /* connections closed past max_connections in this burst */
    char *tls_root, *tls_cert, *tls_key; /* gp__netrpc_server_use_tls; NULL: plain */
    sconn *conns;
};

static void logf_(gp__netrpc_server *s, gp_log_level lv, const char *fmt, const char *arg)
{
    if (s->has_log)
        gp_logf(&s->log, lv, "netrpc", NULL, 0, fmt, arg);
}

/* gp_serve_config.keepalive (yamux pings) and .limits (streams) per session. */
static gp__mux_config mux_config(const gp__netrpc_server *s)
{
    return (gp__mux_config){.keepalive_interval_ms = s->o.keepalive.time_ms,
                            .keepalive_timeout_ms = s->o.keepalive.timeout_ms,
                            .max_streams = s->o.limits.max_streams};
}

/* ---- the MuxBroker: streams the host opens after stdout/stderr ----------- */

static void res_drop(void *ctx, uint32_t id, void *svc, bool expired)
{
    (void)ctx, (void)id, (void)svc, (void)expired; /* nobody came: nothing to free */
}

/* The MuxBroker asks here first: a stream for a Dispense reservation
 * serves that plugin. */
static const gp_service *reserved(void *ctx, uint32_t id)
{
    sconn *c = ctx;
    pthread_mutex_lock(&c->mu);
    const gp_service *svc = gp__idtable_take(&c->res, id);
    pthread_mutex_unlock(&c->mu);
    return svc;
}

static void *fwd_main(void *arg);

/* The thread that copies what the plugin prints to the host's stdout and
 * stderr streams; without one they are half-closed, so the host's copiers
 * see EOF. Joined by conn_main, after the broker's thread. */
static void start_fwd(sconn *c)
{
    c->fwd_running = c->srv->o.stdio && gp__thread_start_small(&c->fwd, fwd_main, c) == 0;
    if (!c->fwd_running) {
        gp__mux_stream_close(c->out);
        gp__mux_stream_close(c->errs);
    }
}

/* Every stream the host opens after 1, 3, 5 is a broker stream: the
 * MuxBroker reads its id on a thread of its own (bounded in number and
 * time), so a silent stream holds up no other. */
static void *broker_main(void *arg)
{
    sconn *c = arg;
    start_fwd(c);
    for (;;) {
        gp__mux_stream *st = NULL;
        if (gp__mux_accept(c->sess, -1, &st) != GP_OK)
            return NULL;
        if (c->mb) {
            gp__mux_broker_take(c->mb, st, 0, 0);
        } else {
            gp__mux_stream_reset(st);
            gp__mux_stream_free(st);
        }
    }
}

/* ---- Control and Dispenser on stream 1 ---------------------------------- */

static gp_err control_call(void *ctx, const char *method, gp__gob_value *args, gp__rpc_reply *reply,
                           char *errmsg, size_t errlen)
{
    sconn *c = ctx;
    char err[256];
    if (strcmp(method, "Control.Ping") == 0 || strcmp(method, "Control.Quit") == 0) {
        int b;
        if (gp__gob_get_bool(args, &b, err, sizeof err) != GP_OK) {
            snprintf(errmsg, errlen, "%s: %s", method, err);
            return GP_EPROTO;
        }
        reply->value.type = &gp_gob_empty_struct_type;
        return GP_OK;
    }
    if (strcmp(method, "Dispenser.Dispense") == 0) {
        const char *name;
        if (gp__gob_get_string(args, &name, err, sizeof err) != GP_OK) {
            snprintf(errmsg, errlen, "%s: %s", method, err);
            return GP_EPROTO;
        }
        const gp_service *svc = NULL;
        for (size_t i = 0; i < c->srv->o.nservices && !svc; i++)
            if (c->srv->o.services[i].name && strcmp(c->srv->o.services[i].name, name) == 0)
                svc = &c->srv->o.services[i];
        if (!svc) {
            snprintf(errmsg, errlen, "unknown plugin type: %s", name);
            return GP_ENOTFOUND;
        }
        pthread_mutex_lock(&c->mu);
        uint32_t id = c->mb ? gp__mux_broker_next_id(c->mb) : ++c->next_id;
        gp_err rc = gp__idtable_put(&c->res, id, (void *)svc, false);
        pthread_mutex_unlock(&c->mu);
        if (rc) {
            snprintf(errmsg, errlen,
                     "out of memory, or %zu dispensed plugins already wait for "
                     "their stream",
                     c->res.max ? c->res.max : (size_t)GP__IDTABLE_MAX);
            return GP_ENOMEM;
        }
        reply->value.type = &gp_gob_uint_type;
        reply->value.u.u = id;
        return GP_OK;
    }
    if (strncmp(method, "Control.", 8) == 0 || strncmp(method, "Dispenser.", 10) == 0)
        snprintf(errmsg, errlen, "rpc: can't find method %s", method);
    else
        snprintf(errmsg, errlen, "rpc: can't find service %s", method);
    return GP_ENOTFOUND;
}

static void control_after(void *ctx, const char *method, gp_err result)
{
    sconn *c = ctx;
    (void)result;
    /* Quit: the reply is on the wire; now the serving loop ends. */
    if (strcmp(method, "Control.Quit") == 0)
        gp__netrpc_server_stop(c->srv);
}

/* The TLS handshake as the server, then the session over it. Here, on
 * the connection's thread, so a stalled handshake holds up nobody. */
static int open_tls_session(sconn *c)
{
    gp__netrpc_server *s = c->srv;
    gp__tls_params p = {.role = GP_TLS_SERVER,
                        .cert_pem = s->tls_cert,
                        .key_pem = s->tls_key,
                        .peer_ca_pem = s->tls_root};
    gp__tls *t = NULL;
    char why[512];
    gp_err e = gp__tls_open(c->fd, &p, &t, why, sizeof why);
    gp__mux_session *sess = NULL;
    gp__mux_config mc = mux_config(s);
    if (e == GP_OK && gp__mux_session_new_tls(t, GP_MUX_SERVER, &mc, &sess) != GP_OK) {
        snprintf(why, sizeof why, "cannot start the yamux session");
        e = GP_ESYS;
    }
    pthread_mutex_lock(&s->mu);
    if (e != GP_OK) {
        if (t)
            gp__tls_close(t); /* closes the fd; sends close_notify without waiting */
        else
            close(c->fd);
    } else {
        c->sess = sess;
        if (s->cut)
            gp__mux_session_close(sess);
    }
    c->fd = -1;
    pthread_mutex_unlock(&s->mu);
    if (e != GP_OK)
        logf_(s, GP_LOG_WARN, "refused a connection: %s", why);
    return e == GP_OK;
}

/* While the plugin prints nothing, how often fwd_main looks whether the
 * connection has ended (conn_main joins it before the connection is let go). */
enum { HOST_CHECK_MS = 1000 };

/* What the plugin prints goes on the stdout and stderr streams, as a Go
 * netrpc plugin copies its os.Stdout/os.Stderr pipes there. */
static void *fwd_main(void *arg)
{
    sconn *c = arg;
    const gp__stdio_source *src = c->srv->o.stdio;
    uint8_t buf[4096];
    src->open(src->ctx);
    for (;;) {
        int ch = 0;
        size_t n = 0;
        int got = src->next(src->ctx, &ch, buf, sizeof buf, &n, HOST_CHECK_MS);
        if (got == 0 || (got < 0 && gp__mux_session_is_closed(c->sess)))
            break; /* stopping, or the host went away: conn_main waits for us */
        if (got < 0)
            continue;
        gp_err rc = gp__mux_stream_write(ch == 1 ? c->out : c->errs, buf, n, -1);
        src->sent(src->ctx);
        if (rc) /* the host went away; that chunk is lost, as in go-plugin */
            break;
    }
    src->close(src->ctx);
    gp__mux_stream_close(c->out);
    gp__mux_stream_close(c->errs);
    return NULL;
}

static void *conn_main(void *arg)
{
    sconn *c = arg;
    gp__netrpc_server *s = c->srv;
    if (!c->sess && !open_tls_session(c)) {
        pthread_mutex_lock(&s->mu);
        c->done = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    gp__mux_stream *ctl = NULL, *out = NULL, *errs = NULL;
    gp__mux_broker_opts bo = {.sess = c->sess,
                              .logger = s->has_log ? &s->log : NULL,
                              .log_name = "netrpc-broker",
                              .workers = s->o.workers,
                              .max_message_bytes = s->o.max_message_bytes,
                              .max_pending = s->o.limits.max_pending_streams,
                              .max_served = s->o.limits.max_broker_conns,
                              .wait_ms = s->o.limits.broker_wait_ms,
                              .reserved = reserved,
                              .reserved_ctx = c};
    if (gp__mux_broker_new(&bo, &c->mb) != GP_OK)
        logf_(s, GP_LOG_WARN, "%s", "no memory for the MuxBroker: no plugin can be dispensed");
    /* Streams 1, 3, 5 by order of arrival: control, stdout, stderr. What
     * the plugin prints goes on 3 and 5 (fwd_main) when gp_serve gave us a
     * source; else they are half-closed, so the host's copiers see EOF. */
    gp_err rc = gp__mux_accept(c->sess, -1, &ctl);
    if (!rc)
        rc = gp__mux_accept(c->sess, -1, &out);
    if (!rc)
        rc = gp__mux_accept(c->sess, -1, &errs);
    if (!rc) {
        c->out = out;
        c->errs = errs;
        /* The broker's thread starts the stdio forwarder (one thread start
         * fewer before the host's Ping is answered). */
        c->broker_running = gp__thread_start_small(&c->broker, broker_main, c) == 0;
        if (!c->broker_running)
            start_fwd(c);
        gp__rpc_serve_opts o = {.call = control_call, .ctx = c, .after_reply = control_after};
        char err[GP_STATUS_MSG_MAX] = "";
        rc = gp__rpc_serve_ex(gp__mux_stream_io(ctl), &o, err, sizeof err);
        if (rc && !gp__mux_session_is_closed(c->sess))
            logf_(s, GP_LOG_DEBUG, "control stream ended: %s", err);
        else if (rc) /* e.g. the keepalive gave the host up */
            logf_(s, GP_LOG_DEBUG, "connection ended: %s", gp__mux_session_error(c->sess));
    }
    /* The control stream is the connection: when it ends, so does the rest.
     * A host that is closing (go-plugin: Quit, then FIN on 1, 3, 5, then
     * the session) gets a moment to finish, so its last writes do not hit
     * a closed socket; the broker thread ends when the session does. */
    if (c->broker_running) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)CLOSE_GRACE_MS * 1000000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        if (pthread_timedjoin_np(c->broker, NULL, &ts) == 0)
            c->broker_running = 0;
    }
    gp__mux_session_close(c->sess);
    if (c->broker_running)
        pthread_join(c->broker, NULL);
    if (c->fwd_running) /* its next chunk fails on the closed session, or the stop ends it */
        pthread_join(c->fwd, NULL);
    gp__mux_broker_free(c->mb); /* joins the served streams, which may call reserved() */
    gp__idtable_clear(&c->res);
    c->mb = NULL;
    gp__mux_stream_free(ctl);
    gp__mux_stream_free(out);
    gp__mux_stream_free(errs);
    pthread_mutex_lock(&s->mu);
    c->done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void sconn_free(sconn *c)
{
    pthread_join(c->thread, NULL);
    gp__mux_session_free(c->sess);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Joins connections whose thread has finished. */
static void reap(gp__netrpc_server *s)
{
    pthread_mutex_lock(&s->mu);
    sconn *done = NULL;
    for (sconn **p = &s->conns; *p;) {
        if ((*p)->done) {
            sconn *c = *p;
            *p = c->next;
            c->next = done;
            done = c;
        } else {
            p = &(*p)->next;
        }
    }
    pthread_mutex_unlock(&s->mu);
    while (done) {
        sconn *c = done;
        done = c->next;
        sconn_free(c);
    }
}

static void start_conn(gp__netrpc_server *s, int fd)
{
    sconn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    /* Dispense reservations wait for the host's stream as go-plugin's
     * MuxBroker waits (5 s), or as configured. */
    gp__idtable_init(
        &c->res, s->o.limits.broker_wait_ms > 0 ? s->o.limits.broker_wait_ms : GP_BROKER_WAIT_MS,
        res_drop, c);
    c->res.max = (size_t)(s->o.limits.max_pending_ids > 0 ? s->o.limits.max_pending_ids : 0);
    (void)gp__net_keepalive(fd, s->o.keepalive.time_ms, s->o.keepalive.timeout_ms);
    gp__mux_config mc = mux_config(s);
    if (s->tls_cert) {
        c->fd = fd; /* the handshake runs on the connection's thread */
    } else if (gp__mux_session_new(fd, GP_MUX_SERVER, &mc, &c->sess) != GP_OK) {
        close(fd);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (s->stop || gp__thread_start_small(&c->thread, conn_main, c) != 0) {
        pthread_mutex_unlock(&s->mu);
        if (c->fd >= 0)
            close(c->fd);
        gp__mux_session_free(c->sess);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return;
    }
    c->next = s->conns;
    s->conns = c;
    pthread_mutex_unlock(&s->mu);
}

/* Whether another connection may start (gp_limits.max_connections). The
 * first refusal of a burst is logged, and the burst's count when a
 * connection gets in again. */
static int room_for_a_conn(gp__netrpc_server *s)
{
    int max = s->o.limits.max_connections > 0 ? s->o.limits.max_connections : MAX_CONNECTIONS;
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (sconn *c = s->conns; c; c = c->next)
        n++;
    int room = n < max, first = 0, burst = s->refused_conns;
    if (!room)
        first = s->refused_conns++ == 0;
    else
        s->refused_conns = 0;
    pthread_mutex_unlock(&s->mu);
    char m[96];
    if (first) {
        snprintf(m, sizeof m, "%d", max);
        logf_(s, GP_LOG_WARN,
              "%s connections already served (the cap); closing new ones (logged once per burst)",
              m);
    } else if (room && burst > 0) {
        snprintf(m, sizeof m, "%d", burst);
        logf_(s, GP_LOG_WARN, "closed %s connections past the cap", m);
    }
    return room;
}

static void *accept_main(void *arg)
{
    gp__netrpc_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                              {.fd = s->wake[0], .events = POLLIN}};
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || p[1].revents)
            return NULL;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                logf_(s, GP_LOG_WARN, "accept: %s (retrying in 100 ms)", strerror(errno));
                poll(&p[1], 1, 100);
                continue;
            }
            logf_(s, GP_LOG_ERROR, "accept: %s", strerror(errno));
            return NULL;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on unix */
        reap(s);
        if (!room_for_a_conn(s)) {
            close(fd);
            continue;
        }
        start_conn(s, fd);
    }
}

/* ---- the server object ---------------------------------------------------- */

gp_err gp__netrpc_server_new(const gp__netrpc_server_opts *o, gp__netrpc_server **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    gp__netrpc_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return GP_ENOMEM;
    }
    s->o = *o;
    if (o->logger) {
        s->log = *o->logger;
        s->has_log = 1;
    }
    s->lfd = -1;
    if (pipe2(s->wake, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        free(s);
        return GP_ESYS;
    }
    pthread_mutex_init(&s->mu, NULL);
    gp__cond_init_monotonic(&s->cv);
    *out = s;
    return GP_OK;
}

gp_err gp__netrpc_server_listen(gp__netrpc_server *s, const char *addr, int *port, char *err,
                                size_t errlen)
{
    if (s->lfd >= 0) {
        snprintf(err, errlen, "netrpc server: already listening");
        return GP_ESTATE;
    }
    if (strncmp(addr, "unix:", 5) == 0) {
        gp_err e = gp__net_listen_unix(addr + 5, NULL, &s->lfd, err, errlen);
        return e ? GP_ECONNECT : GP_OK;
    }
    const char *colon = strrchr(addr, ':');
    char *end;
    unsigned long p = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || strncmp(addr, "127.0.0.1:", 10) != 0 || *end || p > 65535) {
        snprintf(err, errlen, "netrpc server: expected unix:/path or 127.0.0.1:PORT, got %s", addr);
        return GP_EINVAL;
    }
    unsigned got = 0;
    gp_err e = gp__net_listen_tcp((unsigned)p, (unsigned)p, &s->lfd, &got, err, errlen);
    if (e)
        return GP_ECONNECT;
    if (port)
        *port = (int)got;
    return GP_OK;
}

gp_err gp__netrpc_server_use_tls(gp__netrpc_server *s, const char *root_pem, const char *cert_pem,
                                 const char *key_pem, char *err, size_t errlen)
{
    if (!root_pem || !cert_pem || !key_pem) {
        snprintf(err, errlen, "netrpc server: TLS needs a root, a certificate and a key");
        return GP_EINVAL;
    }
    if (s->accepting) {
        snprintf(err, errlen, "netrpc server: TLS must be set before start");
        return GP_ESTATE;
    }
    char *r = strdup(root_pem), *c = strdup(cert_pem), *k = strdup(key_pem);
    if (!r || !c || !k) {
        free(r);
        free(c);
        free(k);
        snprintf(err, errlen, "out of memory");
        return GP_ENOMEM;
    }
    free(s->tls_root);
    free(s->tls_cert);
    free(s->tls_key);
    s->tls_root = r;
    s->tls_cert = c;
    s->tls_key = k;
    return GP_OK;
}

gp_err gp__netrpc_server_start(gp__netrpc_server *s, char *err, size_t errlen)
{
    if (s->lfd < 0) {
        snprintf(err, errlen, "netrpc server: start before listen");
        return GP_ESTATE;
    }
    if (gp__thread_start_small(&s->acceptor, accept_main, s) != 0) {
        snprintf(err, errlen, "netrpc server: cannot start the accept thread");
        return GP_ESYS;
    }
    s->accepting = 1;
    return GP_OK;
}

void gp__netrpc_server_wait(gp__netrpc_server *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stop)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void gp__netrpc_server_stop(gp__netrpc_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void gp__netrpc_server_free(gp__netrpc_server *s)
{
    if (!s)
        return;
    gp__netrpc_server_stop(s);
    if (s->accepting) {
        ssize_t w;
        do
            w = write(s->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(s->acceptor, NULL);
    }
    if (s->lfd >= 0)
        close(s->lfd);
    /* After Quit the host closes its session at once; wait a little for
     * that before cutting the remaining ones. */
    struct timespec dl = gp__deadline_in(CLOSE_GRACE_MS);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int live = 0;
        for (sconn *c = s->conns; c; c = c->next)
            live += !c->done;
        if (!live || pthread_cond_timedwait(&s->cv, &s->mu, &dl) != 0)
            break;
    }
    sconn *conns = s->conns;
    s->conns = NULL;
    s->cut = 1;
    for (sconn *c = conns; c; c = c->next) {
        if (c->sess)
            gp__mux_session_close(c->sess);
        else if (c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR); /* ends a handshake in progress */
    }
    pthread_mutex_unlock(&s->mu);
    while (conns) {
        sconn *c = conns;
        conns = c->next;
        sconn_free(c);
    }
    close(s->wake[0]);
    close(s->wake[1]);
    free(s->tls_root);
    free(s->tls_cert);
    free(s->tls_key);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
