/* Internal: the wires a binary links, behind one small table, so that the
 * host and gp_serve reach gRPC or netrpc without naming them (go-plugin's
 * client.go picks its wire with one switch; here the switch is
 * gp__wire_find and each wire registers its entry). Which
 * wires exist is a link-time choice: //transport:goplugin links both,
 * //transport:goplugin_netrpc only netrpc (no gRPC core in the binary).
 * Exactly one wires_*.c defines gp__wire_find. */
#ifndef GP_TRANSPORT_WIRE_H
#define GP_TRANSPORT_WIRE_H

#include <goplugin/client.h>
#include <goplugin/conn.h>
#include <goplugin/log.h>
#include <goplugin/server.h>

#include <stdbool.h>
#include <stddef.h>

typedef struct gp__wire_client_opts {
    int call_timeout_ms;     /* 0 = none */
    const gp_logger *logger; /* borrowed for the conn's life; may be NULL */
    const char *log_name;
    /* TLS when tls_root_pem is set (borrowed for the call; host/client_tls.c
     * fills them); NULL server name: "localhost". */
    const char *tls_cert_pem, *tls_key_pem, *tls_root_pem, *tls_server_name;
    int tls_timeout_ms;       /* connect + handshake; 0 = 10 s */
    size_t max_message_bytes; /* one message, received or sent; 0 = 64 MiB */
    gp_keepalive keepalive;   /* gp_client_config.keepalive */
    gp_limits limits;         /* gp_client_config.limits: caps per connection */
    /* gRPC broker multiplexing negotiated (handshake field 7): brokered
     * connections ride the main connection (docs/broker.md). */
    bool multiplex;
    /* A wire that reads the plugin's stdout/stderr itself (netrpc's streams)
     * hands them here when set (called on its thread), else logs them. */
    void (*stdout_sink)(void *ctx, const void *data, size_t len);
    void (*stderr_sink)(void *ctx, const void *data, size_t len);
    void *stdio_ctx;
} gp__wire_client_opts;

/* GRPCStdio, plugin side: where the wire's stream handler takes what the
 * plugin printed (plugin/serve_stdio.c fills it; borrowed for the server's
 * life). */
typedef struct gp__stdio_source {
    void *ctx;
    void (*open)(void *ctx); /* a host opened the stream */
    /* Wait up to wait_ms for the next chunk into buf (cap bytes): 1 with
     * *channel (1 stdout, 2 stderr) and *n, 0 once the server is stopping,
     * -1 when nothing came in time. The bound lets a stream whose host went
     * away end while the plugin prints nothing (its thread, and on netrpc
     * its connection, are held until it does). */
    int (*next)(void *ctx, int *channel, void *buf, size_t cap, size_t *n, int wait_ms);
    void (*sent)(void *ctx);  /* the chunk from next is out (or lost) */
    void (*close)(void *ctx); /* the stream ended */
} gp__stdio_source;

typedef struct gp__wire_server_opts {
    const gp_service *services; /* borrowed for the server's life */
    size_t nservices;
    int workers;                   /* gp_serve_config.workers */
    const gp_logger *logger;       /* may be NULL */
    size_t max_message_bytes;      /* one message, received or sent; 0 = 64 MiB */
    gp_keepalive keepalive;        /* gp_serve_config.keepalive */
    gp_limits limits;              /* gp_serve_config.limits: caps per connection */
    const gp__stdio_source *stdio; /* serve GRPCStdio from it; NULL: none */
} gp__wire_server_opts;

/* One wire. The server calls have the contract of grpc.h's server (listen
 * on "unix:/path" or "127.0.0.1:PORT", start, wait until a stop, free). */
typedef struct gp__wire {
    gp_protocol protocol;
    /* The first call a host makes on a new conn (gp_conn_ping), and what it
     * expects back: for error words ("health check ... expected SERVING"). */
    const char *ping_name, *ping_expect;
    /* TLS failures come back without a reason (gRPC core often closes the
     * channel and says nothing): the host runs a handshake of its own to
     * find one. */
    bool tls_errors_opaque;
    /* Dial network ("unix" | "tcp") and address (TCP keepalive on), with
     * TLS when o->tls_root_pem is set, and make a conn. Does not ping.
     * timeout_ms bounds the connect (0: none). */
    gp_err (*dial)(const char *network, const char *address, int timeout_ms,
                   const gp__wire_client_opts *o, gp_conn **out, char *err, size_t errlen);
    /* A conn over an already connected socket; takes fd, on failure too. */
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
     * the wire has no TLS yet (plugin/serve_tls.c says so). */
    gp_err (*server_use_tls)(void *s, const char *root_pem, const char *cert_pem,
                             const char *key_pem, char *err, size_t errlen);
    /* Instead of server_listen, when the host asked for gRPC broker
     * multiplexing (go-plugin 1.6+): take one raw connection on
     * "unix:/path" and carry the main and every brokered connection over it
     * (docs/broker.md). After server_use_tls, if any. NULL: the wire cannot
     * (the plugin then says so in handshake field 7). */
    gp_err (*server_listen_mux)(void *s, const char *addr, char *err, size_t errlen);
    /* Its servers send what opts.stdio gives to the host (gRPC: GRPCStdio;
     * netrpc: the stdout and stderr streams). */
    bool serves_stdio;
    /* GRPCStdio, host side: read conn's stdout/stderr stream on a thread of
     * the wire's, passing each chunk to sink (channel 1 stdout, 2 stderr),
     * then `ended` once (unimplemented: the plugin has no such service;
     * why: the end's words). stdio_stop (cancel, join) before conn closes.
     * NULL (words in err) when it cannot start. NULL entries: the wire
     * reads the plugin's stdout/stderr itself (netrpc: its conn). */
    void *(*stdio_start)(gp_conn *conn,
                         void (*sink)(void *ctx, int channel, const void *data, size_t len),
                         void (*ended)(void *ctx, bool unimplemented, const char *why), void *ctx,
                         char *err, size_t errlen);
    void (*stdio_stop)(void *h);
    /* While on (counted), read the stream as its bytes come rather than in
     * the wire's sweeps: around a stop, so that what the plugin sends as
     * it ends is read before the connection goes. NULL: always read so. */
    void (*stdio_follow)(void *h, int on);
} gp__wire;

extern const gp__wire gp__wire_grpc;   /* wire/grpc/wire.c */
extern const gp__wire gp__wire_netrpc; /* wire/netrpc/wire.c */

/* The wire for `p` linked into this binary, or NULL. */
const gp__wire *gp__wire_find(gp_protocol p);

#endif
