/* The gRPC wire in the wire table (wire.h). */
#include "transport/core/wire.h"

#include "transport/net/net.h"
#include "transport/wire/grpc/grpc.h"

static gp__grpc_client_opts client_opts(const gp__wire_client_opts *o)
{
    return (gp__grpc_client_opts){.call_timeout_ms = o->call_timeout_ms,
                                  .logger = o->logger,
                                  .log_name = o->log_name,
                                  .max_message_bytes = o->max_message_bytes};
}

static gp_err conn_from_fd(int fd, const gp__wire_client_opts *o, gp_conn **out, char *err,
                           size_t errlen)
{
    gp__grpc_client_opts g = client_opts(o);
    return gp__grpc_conn_from_fd(fd, &g, out, err, errlen);
}

/* Plaintext: our own socket (clear connect errors, TCP keepalive) handed to
 * core. TLS: core dials, since its TLS needs a channel it connects itself. */
static gp_err dial(const char *network, const char *address, int timeout_ms,
                   const gp__wire_client_opts *o, gp_conn **out, char *err, size_t errlen)
{
    gp__grpc_client_opts g = client_opts(o);
    if (o->tls_root_pem) {
        gp__grpc_tls t = {.root_pem = o->tls_root_pem,
                          .cert_pem = o->tls_cert_pem,
                          .key_pem = o->tls_key_pem,
                          .server_name = o->tls_server_name};
        return gp__grpc_conn_dial_tls(network, address, &t, o->tls_timeout_ms, &g, out, err,
                                      errlen);
    }
    int fd = -1;
    gp_err e = gp__net_dial(network, address, timeout_ms, 0, &fd, err, errlen);
    return e ? e : gp__grpc_conn_from_fd(fd, &g, out, err, errlen);
}

static gp_err server_new(const gp__wire_server_opts *o, void **out, char *err, size_t errlen)
{
    gp__grpc_server_opts g = {.services = o->services,
                              .nservices = o->nservices,
                              .workers = o->workers,
                              .logger = o->logger,
                              .max_message_bytes = o->max_message_bytes};
    gp__grpc_server *s = NULL;
    gp_err e = gp__grpc_server_new(&g, &s, err, errlen);
    *out = s;
    return e;
}

static gp_err server_listen(void *s, const char *addr, int *port, char *err, size_t errlen)
{
    return gp__grpc_server_listen(s, addr, port, err, errlen);
}

static gp_err server_start(void *s, char *err, size_t errlen)
{
    return gp__grpc_server_start(s, err, errlen);
}

static void server_wait(void *s)
{
    gp__grpc_server_wait(s);
}

static void server_stop(void *s)
{
    gp__grpc_server_stop(s);
}

static void server_free(void *s)
{
    gp__grpc_server_free(s);
}

static gp_err server_use_tls(void *s, const char *root_pem, const char *cert_pem,
                             const char *key_pem, char *err, size_t errlen)
{
    gp__grpc_tls t = {.root_pem = root_pem, .cert_pem = cert_pem, .key_pem = key_pem};
    return gp__grpc_server_use_tls(s, &t, err, errlen);
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
};
