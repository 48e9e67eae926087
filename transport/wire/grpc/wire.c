/* The gRPC wire in the wire table (wire.h). */
#include "transport/core/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <goplugin/broker.h>

#include "transport/core/conn.h"
#include "transport/net/net.h"
#include "transport/wire/grpc/broker.h"
#include "transport/wire/grpc/mux.h"
#include "transport/wire/grpc/stdio.h"
#include "transport/wire/grpc/grpc.h"

static gp__grpc_client_opts client_opts(const gp__wire_client_opts *o)
{
    /* gp_keepalive on gRPC (client.h): HTTP/2 pings never more often than
     * the default (Go servers GOAWAY them), a set time_ms adds health
     * checks. */
    int t = o->keepalive.time_ms;
    return (gp__grpc_client_opts){.call_timeout_ms = o->call_timeout_ms,
                                  .logger = o->logger,
                                  .log_name = o->log_name,
                                  .keepalive_ms = t < 0 ? -1 : 0,
                                  .keepalive_timeout_ms = o->keepalive.timeout_ms,
                                  .check_ms = t > 0 ? t : 0,
                                  .check_timeout_ms = o->keepalive.timeout_ms,
                                  .max_message_bytes = o->max_message_bytes,
                                  .limits = o->limits};
}

static gp_err conn_from_fd(int fd, const gp__wire_client_opts *o, gp_conn **out, char *err,
                           size_t errlen)
{
    gp__grpc_client_opts g = client_opts(o);
    return gp__grpc_conn_from_fd(fd, &g, out, err, errlen);
}

/* Multiplexed (go-plugin 1.6+, handshake field 7 confirmed): one raw
 * connection and a yamux client on it; the main gRPC connection is its
 * first stream, and the broker carries the others (mux.h). */
static gp_err dial_mux(const char *network, const char *address, int timeout_ms,
                       const gp__wire_client_opts *o, const gp__grpc_tls *t, gp_conn **out,
                       char *err, size_t errlen)
{
    gp__grpc_client_opts g = client_opts(o);
    int fd = -1;
    gp_err e = gp__net_dial(network, address, timeout_ms, 0, &fd, err, errlen);
    if (!e)
        (void)gp__net_keepalive(fd, o->keepalive.time_ms, o->keepalive.timeout_ms);
    gp__grpc_mux *m = NULL;
    gp__grpc_mux_opts mo = {.logger = o->logger,
                            .log_name = o->log_name,
                            .max_bridges = o->limits.max_broker_conns,
                            .max_streams = o->limits.max_streams};
    if (!e)
        e = gp__grpc_mux_client(fd, &mo, &m, err, errlen);
    if (e)
        return e;
    if (t) {
        char path[108];
        e = gp__grpc_mux_open_path(m, 0, path, sizeof path, err, errlen);
        if (!e)
            e = gp__grpc_conn_dial_tls("unix", path, t, o->tls_timeout_ms, &g, out, err, errlen);
    } else {
        int cfd = -1;
        e = gp__grpc_mux_open_fd(m, 0, &cfd, err, errlen);
        if (!e)
            e = gp__grpc_conn_from_fd(cfd, &g, out, err, errlen);
    }
    if (e) {
        gp__grpc_mux_free(m);
        return e;
    }
    if (gp__grpc_broker_use_mux(gp__grpc_broker_of(gp_conn_broker(*out)), m) != GP_OK) {
        gp__conn_close(*out);
        *out = NULL;
        gp__grpc_mux_free(m);
        snprintf(err, errlen, "grpc: the connection has no broker to multiplex");
        return GP_ENOMEM;
    }
    return GP_OK;
}

/* Plaintext: our own socket (clear connect errors, TCP keepalive) handed to
 * core. TLS: core dials, since its TLS needs a channel it connects itself. */
static gp_err dial(const char *network, const char *address, int timeout_ms,
                   const gp__wire_client_opts *o, gp_conn **out, char *err, size_t errlen)
{
    gp__grpc_client_opts g = client_opts(o);
    gp__grpc_tls t = {.root_pem = o->tls_root_pem,
                      .cert_pem = o->tls_cert_pem,
                      .key_pem = o->tls_key_pem,
                      .server_name = o->tls_server_name};
    gp_err e;
    if (o->multiplex)
        e = dial_mux(network, address, timeout_ms, o, o->tls_root_pem ? &t : NULL, out, err,
                     errlen);
    else if (o->tls_root_pem)
        e = gp__grpc_conn_dial_tls(network, address, &t, o->tls_timeout_ms, &g, out, err, errlen);
    else {
        int fd = -1;
        e = gp__net_dial(network, address, timeout_ms, 0, &fd, err, errlen);
        if (e)
            return e;
        (void)gp__net_keepalive(fd, o->keepalive.time_ms, o->keepalive.timeout_ms);
        return gp__grpc_conn_from_fd(fd, &g, out, err, errlen);
    }
    /* Brokered connections get the main connection's TLS (go-plugin
     * 1.4.4+): our certificate when we serve an id, the same roots and name
     * when we dial one. */
    if (!e && o->tls_root_pem &&
        gp__grpc_broker_use_tls(gp__grpc_broker_of(gp_conn_broker(*out)), &t) == GP_ENOMEM) {
        gp__conn_close(*out);
        *out = NULL;
        snprintf(err, errlen, "grpc: out of memory for the broker's TLS");
        return GP_ENOMEM;
    }
    return e;
}

/* Our server handle: core's server, and what we made for it. */
typedef struct wserver {
    gp__grpc_server *s;
    gp_service *services; /* the plugin's, then GRPCStdio; NULL without stdio */
    gp_service *stdio;
    gp_limits limits; /* for the multiplexed session, if any */
} wserver;

#define SRV(v) (((wserver *)(v))->s)

static gp_err server_new(const gp__wire_server_opts *o, void **out, char *err, size_t errlen)
{
    *out = NULL;
    wserver *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "grpc server: out of memory");
        return GP_ENOMEM;
    }
    w->limits = o->limits;
    gp__grpc_server_opts g = {.services = o->services,
                              .nservices = o->nservices,
                              .workers = o->workers,
                              .logger = o->logger,
                              .keepalive_ms = o->keepalive.time_ms,
                              .keepalive_timeout_ms = o->keepalive.timeout_ms,
                              .max_message_bytes = o->max_message_bytes,
                              .limits = o->limits,
                              .max_stream_handlers = o->limits.max_stream_handlers};
    if (o->stdio) { /* GRPCStdio from the source, beside the plugin's services */
        w->stdio = gp__grpc_stdio_service_new(o->stdio);
        w->services = calloc(o->nservices + 1, sizeof *w->services);
        if (!w->stdio || !w->services) {
            gp__grpc_stdio_service_free(w->stdio);
            free(w->services);
            free(w);
            snprintf(err, errlen, "grpc server: out of memory");
            return GP_ENOMEM;
        }
        if (o->nservices)
            memcpy(w->services, o->services, o->nservices * sizeof *w->services);
        w->services[o->nservices] = *w->stdio;
        g.services = w->services;
        g.nservices = o->nservices + 1;
    }
    gp_err e = gp__grpc_server_new(&g, &w->s, err, errlen);
    if (e) {
        gp__grpc_stdio_service_free(w->stdio);
        free(w->services);
        free(w);
        return e;
    }
    *out = w;
    return GP_OK;
}

static gp_err server_listen(void *s, const char *addr, int *port, char *err, size_t errlen)
{
    return gp__grpc_server_listen(SRV(s), addr, port, err, errlen);
}

static gp_err server_start(void *s, char *err, size_t errlen)
{
    return gp__grpc_server_start(SRV(s), err, errlen);
}

static void server_wait(void *s)
{
    gp__grpc_server_wait(SRV(s));
}

static void server_stop(void *s)
{
    gp__grpc_server_stop(SRV(s));
}

static void server_free(void *s)
{
    wserver *w = s;
    if (!w)
        return;
    gp__grpc_server_free(w->s);
    gp__grpc_stdio_service_free(w->stdio);
    free(w->services);
    free(w);
}

static gp_err server_use_tls(void *s, const char *root_pem, const char *cert_pem,
                             const char *key_pem, char *err, size_t errlen)
{
    gp__grpc_tls t = {.root_pem = root_pem, .cert_pem = cert_pem, .key_pem = key_pem};
    return gp__grpc_server_use_tls(SRV(s), &t, err, errlen);
}

static void mux_ended(void *srv)
{
    /* Nobody can reach us any more (the host never came, or left). */
    gp__grpc_server_stop(srv);
}

/* Core's main server listens on a private socket; the address the host
 * was given is ours, for the one raw connection (mux.h). */
static gp_err server_listen_mux(void *ws, const char *addr, char *err, size_t errlen)
{
    gp__grpc_server *s = SRV(ws);
    if (strncmp(addr, "unix:", 5) != 0) {
        snprintf(err, errlen, "grpc mux: expected a unix address, got \"%s\"", addr);
        return GP_EUNSUPPORTED;
    }
    char priv[108], a[120];
    int lfd = -1;
    gp_err e = gp__net_unix_path(getenv("PLUGIN_UNIX_SOCKET_DIR"), priv, sizeof priv, err, errlen);
    if (!e) {
        snprintf(a, sizeof a, "unix:%s", priv);
        e = gp__grpc_server_listen(s, a, NULL, err, errlen);
    }
    if (!e)
        e = gp__net_listen_unix(addr + 5, NULL, &lfd, err, errlen);
    gp__grpc_mux *m = NULL;
    const gp_limits *l = &((wserver *)ws)->limits;
    gp__grpc_mux_opts mo = {.main_path = priv,
                            .ended = mux_ended,
                            .ended_ctx = s,
                            .max_bridges = l->max_broker_conns,
                            .max_streams = l->max_streams};
    if (!e)
        e = gp__grpc_mux_server(lfd, &mo, &m, err, errlen);
    if (!e && gp__grpc_broker_use_mux(gp__grpc_server_own_broker(s), m) != GP_OK) {
        gp__grpc_mux_free(m); /* removes priv */
        snprintf(err, errlen, "grpc mux: the server has no broker of its own");
        return GP_ESTATE;
    }
    if (e && !m)
        unlink(priv);
    return e;
}

const gp__wire gp__wire_grpc = {
    .protocol = GP_PROTO_GRPC,
    .ping_name = "health check",
    .ping_expect = "SERVING",
    .tls_errors_opaque = true,
    .dial = dial,
    .conn_from_fd = conn_from_fd,
    .server_new = server_new,
    .server_listen = server_listen,
    .server_start = server_start,
    .server_wait = server_wait,
    .server_stop = server_stop,
    .server_free = server_free,
    .server_use_tls = server_use_tls,
    .server_listen_mux = server_listen_mux,
    .serves_stdio = true,
    .stdio_start = gp__grpc_stdio_start,
    .stdio_stop = gp__grpc_stdio_stop,
    .stdio_follow = gp__grpc_stdio_follow,
};
