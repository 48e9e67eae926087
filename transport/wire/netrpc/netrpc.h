/* Internal: go-plugin's netrpc wire (spec §2): a yamux session over the
 * plugin's socket, net/rpc with gob on its streams.
 *
 * Host: a gp_conn over a socket we dialled. It opens streams 1 (control),
 * 3 (plugin stdout) and 5 (plugin stderr), forwards 3 and 5 to the logger
 * (stdout lines at debug, stderr lines at info), pings with Control.Ping,
 * dispenses with Dispenser.Dispense plus a MuxBroker stream per stub, and
 * asks the plugin to exit with Control.Quit.
 * Plugin: a server that accepts connections, each its own yamux session,
 * and serves Control, Dispenser and the dispensed `Plugin` service from
 * the gp_service methods' gob descriptors. No gRPC anywhere. */
#ifndef GP_NETRPC_NETRPC_H
#define GP_NETRPC_NETRPC_H

#include <goplugin/conn.h>
#include <goplugin/limits.h>
#include <goplugin/log.h>
#include <goplugin/server.h>

#include <stddef.h>

typedef struct gp__netrpc_client_opts {
    int call_timeout_ms;      /* per-call deadline; 0 = none */
    const gp_logger *logger;  /* borrowed for the conn's life; may be NULL */
    const char *log_name;     /* logger name for our messages */
    int keepalive_ms;         /* yamux keepalive interval; 0 = 30 s, < 0 off */
    int keepalive_timeout_ms; /* ping answer deadline; 0 = 10 s */
    /* TLS under yamux when tls_cert_pem or tls_root_pem is set: our
     * certificate and key, the plugin's certificate as the only root, the
     * name to check (NULL = "localhost"). Borrowed for the call. */
    const char *tls_cert_pem, *tls_key_pem, *tls_root_pem, *tls_server_name;
    int tls_timeout_ms;       /* handshake; 0 = 10 s */
    size_t max_message_bytes; /* one gob message on a dispensed stream; 0 = 64 MiB */
    /* Caps on what the plugin can make us hold: yamux streams, pending and
     * served broker streams and how long they wait. Zeros: defaults. */
    gp_limits limits;
    /* The plugin's stdout (stream 3) / stderr (stream 5) bytes, on the
     * stream's thread; NULL: logged line by line (debug / info). */
    void (*stdout_sink)(void *ctx, const void *data, size_t len);
    void (*stderr_sink)(void *ctx, const void *data, size_t len);
    void *stdio_ctx;
} gp__netrpc_client_opts;

/* A gp_conn over the connected socket `fd`: with TLS first runs the TLS
 * handshake as the client (GP_ETLS and friends, see tls/stream.h), then
 * starts the yamux session and
 * opens streams 1, 3, 5. Takes ownership of fd, on failure too. Does not
 * ping (the caller does). Free with gp__conn_close: calls in flight fail
 * with GP_ECLOSED. Stubs may outlive the close: calls on them fail with
 * GP_ECLOSED, and gp_stub_free stays valid. */
gp_err gp__netrpc_conn_from_fd(int fd, const gp__netrpc_client_opts *o, gp_conn **out, char *err,
                               size_t errlen);

/* For hand-written callers (and peers whose types are dynamic, such as
 * go-plugin's examples with interface{} arguments): calls `method` on a
 * netrpc stub with a gob value tree (transport/netrpc/gob.h). args is
 * borrowed; on GP_OK *reply (if not NULL) is the decoded reply, owned by
 * the caller, freed with gp__gob_value_free before the stub. Errors as
 * gp_invoke (GP_EREMOTE with Go's text verbatim, GP_ENOTFOUND for "rpc:
 * can't find ..."); GP_EINVAL when the stub is not a netrpc one. */
struct gp__gob_value;
gp_err gp__netrpc_stub_call(gp_stub *s, const char *method, const struct gp__gob_value *args,
                            struct gp__gob_value **reply, gp_status *st);

typedef struct gp__netrpc_server gp__netrpc_server;

typedef struct gp__netrpc_server_opts {
    const gp_service *services; /* borrowed for the server's life */
    size_t nservices;
    int workers;              /* concurrent calls per dispensed stream; 0 = 8 */
    const gp_logger *logger;  /* may be NULL */
    size_t max_message_bytes; /* one gob message on a dispensed stream; 0 = 64 MiB */
    gp_keepalive keepalive;   /* yamux pings (and TCP keepalive) per session */
    /* Caps per connection on what a host can make us hold: yamux streams,
     * pending and served broker streams, Dispense reservations, and how
     * long they wait. Zeros: defaults. */
    gp_limits limits;
    /* What the plugin printed (core/wire.h), sent on the stdout (3) and
     * stderr (5) streams of each connection; NULL: they are half-closed. */
    const struct gp__stdio_source *stdio;
} gp__netrpc_server_opts;

gp_err gp__netrpc_server_new(const gp__netrpc_server_opts *o, gp__netrpc_server **out, char *err,
                             size_t errlen);

/* Before start: listen on "unix:/abs/path" or "127.0.0.1:PORT" (PORT 0 =
 * any). *port (may be NULL) gets the bound TCP port. GP_ECONNECT when the
 * address cannot be bound. (Same contract as the gRPC server's listen.) */
gp_err gp__netrpc_server_listen(gp__netrpc_server *s, const char *addr, int *port, char *err,
                                size_t errlen);

/* Before start: every connection runs a TLS handshake as the server first
 * (on its own thread, so a stalled one does not block accepting); the
 * client must present a certificate chaining to root_pem. PEM texts are
 * copied. Errors: GP_ENOMEM, GP_EINVAL. */
gp_err gp__netrpc_server_use_tls(gp__netrpc_server *s, const char *root_pem, const char *cert_pem,
                                 const char *key_pem, char *err, size_t errlen);

/* Starts accepting connections on a thread. */
gp_err gp__netrpc_server_start(gp__netrpc_server *s, char *err, size_t errlen);

/* Blocks until a stop is requested: Control.Quit (after its reply was
 * written) or gp__netrpc_server_stop. */
void gp__netrpc_server_wait(gp__netrpc_server *s);

/* Requests a stop from any thread (not from a signal handler). */
void gp__netrpc_server_stop(gp__netrpc_server *s);

/* Closes the listener and every session (calls in flight end), joins the
 * threads, frees. NULL is a no-op. */
void gp__netrpc_server_free(gp__netrpc_server *s);

#endif
