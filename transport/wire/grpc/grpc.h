/* Internal: the gRPC wire, on the gRPC C core surface API with nanopb.
 *
 * Client: a gp_conn over a socket we dialled ourselves (so errors are ours
 * and TCP keepalive is on), with the go-plugin host behaviour: health check,
 * broker stream held open, GRPCController.Shutdown on close.
 * Server: the standard plugin services (grpc.health.v1.Health,
 * plugin.GRPCController, plugin.GRPCBroker, plugin.GRPCStdio) plus the
 * application's gp_service methods; unknown methods get UNIMPLEMENTED.
 * grpc_init/grpc_shutdown are paired inside; callers never see gRPC types.
 */
#ifndef GP_GRPC_GRPC_H
#define GP_GRPC_GRPC_H

#include <goplugin/conn.h>
#include <goplugin/log.h>
#include <goplugin/server.h>

#include <limits.h>
#include <stddef.h>

/* Default message cap both ways: netrpc's 64 MiB (gob.h). go-plugin's Go
 * host sets 2^31-1; a peer that big can make us allocate that much, so we
 * cap lower and let the config raise it. */
#define GP__GRPC_MAX_MESSAGE ((size_t)64 << 20)

/* A memory quota for one server or channel whose receive cap is max_msg
 * (the arg value below): gRPC core 1.51 assembles a whole message before
 * its size check and opens HTTP/2 flow control to fit the announced
 * length, so without a quota a peer announcing 4 GiB and sending it makes
 * core buffer all of it. Past the quota core's reclaimer ends the
 * connection holding the memory. Caller unrefs. */
struct grpc_resource_quota *gp__grpc_memory_quota(int max_msg);

/* The channel/server arg value for a cap (0: the default; at most INT_MAX). */
static inline int gp__grpc_max_message_arg(size_t max_message_bytes)
{
    size_t n = max_message_bytes ? max_message_bytes : GP__GRPC_MAX_MESSAGE;
    return n > (size_t)INT_MAX ? INT_MAX : (int)n;
}

typedef struct gp__grpc_client_opts {
    int call_timeout_ms;     /* per-call deadline; 0 = none */
    const gp_logger *logger; /* borrowed for the conn's life; may be NULL */
    const char *log_name;    /* logger name for our messages */
    /* HTTP/2 keepalive ping interval and ack timeout; 0 = 6 min / 20 s
     * (grpc-go and grpcio servers GOAWAY pings more often than 5 min);
     * keepalive_ms < 0: no pings. */
    int keepalive_ms;
    int keepalive_timeout_ms;
    /* A Health/Check every check_ms (0 = none) with a deadline of
     * check_timeout_ms (0 = 20 s), on a thread of the conn's: no answer
     * ends the conn, calls in flight and later ones fail with GP_ECLOSED.
     * Go servers take calls at any rate, unlike pings. */
    int check_ms;
    int check_timeout_ms;
    /* The idle poller reads the socket only after this long without a call
     * in flight; 0 = 1 s. -1 = poll always, even during calls (what a
     * parked cq_next thread costs: calls then hop threads; for measuring). */
    int idle_after_ms;
    /* One message's cap, received or sent; 0 = GP__GRPC_MAX_MESSAGE. */
    size_t max_message_bytes;
    gp_limits limits; /* the broker's caps (broker.h); zeros: defaults */
} gp__grpc_client_opts;

/* A gp_conn over the connected socket `fd` (blocking or not; we set
 * O_NONBLOCK). Takes ownership of fd, on failure too. Does not health-check
 * (the caller pings). Free with gp__conn_close; it cancels calls in flight
 * (they return GP_ECLOSED) and waits for them. Stubs may outlive the close:
 * calls on them fail with GP_ECLOSED, and gp_stub_free stays valid. */
gp_err gp__grpc_conn_from_fd(int fd, const gp__grpc_client_opts *o, gp_conn **out, char *err,
                             size_t errlen);

/* Mutual TLS for one side of a gRPC connection: PEM texts, borrowed (core
 * copies them). Both sides present their certificate and require the
 * peer's, which must chain to root_pem (AutoMTLS: the peer's own
 * self-signed certificate, the only one trusted). TLS 1.2 and up. */
typedef struct gp__grpc_tls {
    const char *root_pem;    /* trusted roots for the peer */
    const char *cert_pem;    /* own certificate, then any intermediates
                                 (client: NULL with key_pem NULL = present
                                 none, which our servers refuse) */
    const char *key_pem;     /* own private key */
    const char *server_name; /* client: name the server's certificate must
                                 carry; NULL = "localhost" */
} gp__grpc_tls;

/* Dial `network` ("unix" | "tcp") `address` with TLS (core dials: its TLS
 * needs a channel it connects itself, so there is no TCP keepalive, only
 * HTTP/2 pings), wait up to connect_timeout_ms (0 = 10 s) for the TLS
 * handshake, and health-check once, so a refused certificate fails here
 * with words: GP_ETLS "TLS handshake with the plugin at unix /tmp/x
 * failed: ... (core: ... certificate verify failed)". GP_ECONNECT when
 * nothing answers, GP_ETIMEDOUT. The conn is as gp__grpc_conn_from_fd's. */
gp_err gp__grpc_conn_dial_tls(const char *network, const char *address, const gp__grpc_tls *tls,
                              int connect_timeout_ms, const gp__grpc_client_opts *o, gp_conn **out,
                              char *err, size_t errlen);

typedef struct gp__grpc_server gp__grpc_server;

typedef struct gp__grpc_server_opts {
    const gp_service *services; /* borrowed for the server's life */
    size_t nservices;
    int workers;             /* threads polling the server cq; 0 = 2 */
    const gp_logger *logger; /* may be NULL */
    /* Shortest client ping interval tolerated without GOAWAY; 0 = 5 min. */
    int min_ping_interval_ms;
    /* The server's own HTTP/2 pings to the host and their ack timeout;
     * 0 = 6 min / 20 s; keepalive_ms < 0: none. A host that stops acking
     * has its transport closed (its calls are cancelled). */
    int keepalive_ms;
    int keepalive_timeout_ms;
    /* What handlers see as gp_serve_broker() (a brokered server gets its
     * parent's). NULL: the server runs its own GRPCBroker on the host's
     * StartStream stream (transport/grpc/broker.h). */
    struct gp_broker *broker;
    /* One message's cap, received or sent; 0 = GP__GRPC_MAX_MESSAGE. */
    size_t max_message_bytes;
    gp_limits limits; /* its own broker's caps (broker.h); zeros: defaults */
    /* Streaming handlers (a thread each) running at once; past it a call
     * is refused with RESOURCE_EXHAUSTED. 0 = GP__GRPC_MAX_STREAM_HANDLERS.
     * A plugin's server serves its host's one connection, and each
     * brokered server has its own, so this is a cap per connection. */
    int max_stream_handlers;
} gp__grpc_server_opts;

#define GP__GRPC_MAX_STREAM_HANDLERS 128

gp_err gp__grpc_server_new(const gp__grpc_server_opts *o, gp__grpc_server **out, char *err,
                           size_t errlen);

/* Before start: listen on "unix:/abs/path" or "127.0.0.1:PORT" (PORT 0 =
 * any). *port (may be NULL) gets the bound TCP port. GP_ECONNECT when the
 * address cannot be bound. */
gp_err gp__grpc_server_listen(gp__grpc_server *s, const char *addr, int *port, char *err,
                              size_t errlen);

/* Before any listen: every later gp__grpc_server_listen serves mutual TLS
 * with `tls` (own cert/key, clients must present a certificate that chains
 * to root_pem). GP_ESTATE after a listen, GP_EINVAL without cert/key/root. */
gp_err gp__grpc_server_use_tls(gp__grpc_server *s, const gp__grpc_tls *tls, char *err,
                               size_t errlen);

gp_err gp__grpc_server_start(gp__grpc_server *s, char *err, size_t errlen);

/* Block until a stop is requested: GRPCController.Shutdown (after its reply
 * is sent) or gp__grpc_server_stop. */
void gp__grpc_server_wait(gp__grpc_server *s);

/* Request a stop from any thread (not from a signal handler). */
void gp__grpc_server_stop(gp__grpc_server *s);

/* Stop serving (in-flight calls are cancelled), join the workers, free.
 * NULL is a no-op. */
void gp__grpc_server_free(gp__grpc_server *s);

#endif
