/* Internal: the wires a binary links, behind one small table, so that the
 * client and gp_serve reach gRPC or netrpc without naming them. Which
 * wires exist is a link-time choice: //transport:goplugin links both,
 * //transport:goplugin_netrpc only netrpc (no gRPC core in the binary).
 * Exactly one wires_*.c defines gp__wire_find. */
#ifndef GP_TRANSPORT_WIRE_H
#define GP_TRANSPORT_WIRE_H

#include <goplugin/client.h>
#include <goplugin/conn.h>
#include <goplugin/log.h>
#include <goplugin/server.h>

#include <stddef.h>

typedef struct gp__wire_client_opts {
    int call_timeout_ms;     /* 0 = none */
    const gp_logger *logger; /* borrowed for the conn's life; may be NULL */
    const char *log_name;
    /* TLS on the dialled socket when tls_cert_pem or tls_root_pem is set (borrowed
     * for the call; client_tls.c fills them); NULL server name: "localhost". */
    const char *tls_cert_pem, *tls_key_pem, *tls_root_pem, *tls_server_name;
    int tls_timeout_ms; /* handshake; 0 = 10 s */
} gp__wire_client_opts;

typedef struct gp__wire_server_opts {
    const gp_service *services; /* borrowed for the server's life */
    size_t nservices;
    int workers;                /* gp_serve_config.workers */
    const gp_logger *logger;    /* may be NULL */
} gp__wire_server_opts;

/* One wire. The server calls have the contract of grpc.h's server (listen
 * on "unix:/path" or "127.0.0.1:PORT", start, wait until a stop, free). */
typedef struct gp__wire {
    gp_protocol protocol;
    gp_err (*conn_from_fd)(int fd, const gp__wire_client_opts *o, gp_conn **out, char *err,
                           size_t errlen);
    gp_err (*server_new)(const gp__wire_server_opts *o, void **out, char *err, size_t errlen);
    gp_err (*server_listen)(void *s, const char *addr, int *port, char *err, size_t errlen);
    gp_err (*server_start)(void *s, char *err, size_t errlen);
    void (*server_wait)(void *s);
    void (*server_stop)(void *s);
    void (*server_free)(void *s);
    /* Before any listen: serve mutual TLS with these PEM texts (borrowed;
     * clients must present a certificate chaining to root_pem). NULL when
     * the wire has no TLS yet (transport/serve_tls.c says so). */
    gp_err (*server_use_tls)(void *s, const char *root_pem, const char *cert_pem,
                             const char *key_pem, char *err, size_t errlen);
} gp__wire;

extern const gp__wire gp__wire_grpc;   /* wire_grpc.c */
extern const gp__wire gp__wire_netrpc; /* wire_netrpc.c */

/* The wire for `p` linked into this binary, or NULL. */
const gp__wire *gp__wire_find(gp_protocol p);

#endif
