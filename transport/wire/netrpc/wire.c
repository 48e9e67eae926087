/* The netrpc wire in the wire table (wire.h). */
#include "transport/core/wire.h"

#include "transport/net/net.h"
#include "transport/wire/netrpc/netrpc.h"

static gp_err conn_from_fd(int fd, const gp__wire_client_opts *o, gp_conn **out, char *err,
                           size_t errlen)
{
    gp__netrpc_client_opts g = {.call_timeout_ms = o->call_timeout_ms,
                                .logger = o->logger,
                                .log_name = o->log_name,
                                .keepalive_ms = o->keepalive.time_ms,
                                .keepalive_timeout_ms = o->keepalive.timeout_ms,
                                .tls_cert_pem = o->tls_cert_pem,
                                .tls_key_pem = o->tls_key_pem,
                                .tls_root_pem = o->tls_root_pem,
                                .tls_server_name = o->tls_server_name,
                                .tls_timeout_ms = o->tls_timeout_ms,
                                .max_message_bytes = o->max_message_bytes,
                                .limits = o->limits,
                                .stdout_sink = o->stdout_sink,
                                .stderr_sink = o->stderr_sink,
                                .stdio_ctx = o->stdio_ctx};
    return gp__netrpc_conn_from_fd(fd, &g, out, err, errlen);
}

/* TLS, when asked for, runs under yamux on the socket we dial. */
static gp_err dial(const char *network, const char *address, int timeout_ms,
                   const gp__wire_client_opts *o, gp_conn **out, char *err, size_t errlen)
{
    int fd = -1;
    gp_err e = gp__net_dial(network, address, timeout_ms, 0, &fd, err, errlen);
    if (e)
        return e;
    (void)gp__net_keepalive(fd, o->keepalive.time_ms, o->keepalive.timeout_ms);
    return conn_from_fd(fd, o, out, err, errlen);
}

static gp_err server_new(const gp__wire_server_opts *o, void **out, char *err, size_t errlen)
{
    gp__netrpc_server_opts g = {.services = o->services,
                                .nservices = o->nservices,
                                .workers = o->workers,
                                .logger = o->logger,
                                .max_message_bytes = o->max_message_bytes,
                                .keepalive = o->keepalive,
                                .limits = o->limits,
                                .stdio = o->stdio};
    gp__netrpc_server *s = NULL;
    gp_err e = gp__netrpc_server_new(&g, &s, err, errlen);
    *out = s;
    return e;
}

static gp_err server_listen(void *s, const char *addr, int *port, char *err, size_t errlen)
{
    return gp__netrpc_server_listen(s, addr, port, err, errlen);
}

static gp_err server_start(void *s, char *err, size_t errlen)
{
    return gp__netrpc_server_start(s, err, errlen);
}

static void server_wait(void *s)
{
    gp__netrpc_server_wait(s);
}

static void server_stop(void *s)
{
    gp__netrpc_server_stop(s);
}

static gp_err server_use_tls(void *s, const char *root_pem, const char *cert_pem,
                             const char *key_pem, char *err, size_t errlen)
{
    return gp__netrpc_server_use_tls(s, root_pem, cert_pem, key_pem, err, errlen);
}

static void server_free(void *s)
{
    gp__netrpc_server_free(s);
}

const gp__wire gp__wire_netrpc = {
    .protocol = GP_PROTO_NETRPC,
    .ping_name = "Control.Ping",
    .ping_expect = "a reply",
    .dial = dial,
    .conn_from_fd = conn_from_fd,
    .server_new = server_new,
    .serves_stdio = true,
    .server_listen = server_listen,
    .server_start = server_start,
    .server_wait = server_wait,
    .server_stop = server_stop,
    .server_free = server_free,
    .server_use_tls = server_use_tls,
};
