/* Internal to transport/grpc: go-plugin's GRPCBroker (spec §3.5), the
 * gp_broker of the gRPC wire, for either side; non-multiplexed as below,
 * or multiplexed (go-plugin 1.6+) after gp__grpc_broker_use_mux.
 *
 * Serving an id: a new unix socket (PLUGIN_UNIX_SOCKET_DIR, else TMPDIR,
 * else /tmp), a new gRPC server on it with the one service, and a
 * ConnInfo{id, "unix", path} sent on the StartStream stream. Dialing an id:
 * wait GP_BROKER_WAIT_MS for the peer's ConnInfo with that id (entries
 * expire GP_BROKER_WAIT_MS after arrival), dial it, gRPC client on it.
 * The stream itself belongs to client.c (host) or server.c (plugin): they
 * pass what arrives to gp__grpc_broker_received and send through `send`.
 *
 * TLS: when the main connection uses TLS (AutoMTLS or the user's
 * certificates), its owner hands the same material to
 * gp__grpc_broker_use_tls and every brokered connection uses it, as
 * go-plugin 1.4.4+ does on both sides (spec addendum A3): the side serving
 * an id is TLS server and requires the peer's certificate, the dialing
 * side is TLS client checking the server name ("localhost" by default).
 * go-plugin 1.0.1 hosts serve TLS too; 1.0.1 plugins dial in a way that
 * cannot verify our certificate (addendum A3.4).
 */
#ifndef GP_GRPC_BROKER_H
#define GP_GRPC_BROKER_H

#include <goplugin/broker.h>
#include <goplugin/log.h>

#include <grpc/grpc.h>

#include <pthread.h>
#include <stdint.h>

typedef struct gp__grpc_broker gp__grpc_broker;

typedef struct gp__grpc_broker_opts {
    /* Sends one encoded ConnInfo on the StartStream stream; takes bb (on
     * failure too). GP_ECLOSED when there is no stream. */
    gp_err (*send)(void *ctx, grpc_byte_buffer *bb);
    void *send_ctx;
    const gp_logger *logger; /* copied; NULL: none */
    const char *log_name;
    int call_timeout_ms; /* calls on dialed stubs; 0 = none */
    /* Called while a dial waits for a ConnInfo (want = 1) and after (0):
     * the host makes its idle poller read the stream meanwhile. May be NULL. */
    void (*want_recv)(void *ctx, int want);
    /* max_pending_ids: ConnInfo announcements (and knock acks) waiting to
     * be dialed; broker_wait_ms: how long each waits. Zeros: 1024, 5 s. */
    gp_limits limits;
} gp__grpc_broker_opts;

/* A ConnInfo address longer than this is dropped: a unix path is at most
 * 107 bytes and host:port far less, and each waiting announcement keeps
 * its address. */
#define GP__GRPC_BROKER_ADDR_MAX 1024

/* Messages one broker stream's send queue holds while the peer does not
 * read; past it a send fails (knock answers are dropped, a serve fails),
 * so a peer flooding knocks cannot grow it without bound. */
#define GP__GRPC_SENDQ_MAX 256

gp_err gp__grpc_broker_new(const gp__grpc_broker_opts *o, gp__grpc_broker **out);

gp_broker *gp__grpc_broker_base(gp__grpc_broker *b);

/* The gRPC broker behind a gp_broker (gp_conn_broker of a gRPC conn), or
 * NULL when gb is another wire's. */
gp__grpc_broker *gp__grpc_broker_of(gp_broker *gb);

/* Use TLS on every brokered connection from now on (serving: our
 * certificate, peers must present one chaining to root_pem; dialing: root
 * for the server's certificate, ours if we have one). Copies the texts.
 * Once, before the broker is used: GP_ESTATE when already set, GP_EINVAL
 * without root_pem. Serving without a certificate of our own then fails
 * with GP_ETLS (go-plugin: "tls: unrecognized name" at the peer). */
struct gp__grpc_tls;
gp_err gp__grpc_broker_use_tls(gp__grpc_broker *b, const struct gp__grpc_tls *t);

/* Multiplexed mode (go-plugin 1.6+, PLUGIN_MULTIPLEX_GRPC; mux.h): from
 * now on serving an id sends nothing (the peer knocks: we arm the id's
 * server on `mux` and ack, or ack with an error such as "no listener for
 * id N"), and dialing knocks, waits GP_BROKER_WAIT_MS for the ack (then
 * fails with go-plugin's words) and opens a stream of the session. The
 * broker owns `mux` (freed with it). Once: GP_ESTATE after the first. */
struct gp__grpc_mux;
gp_err gp__grpc_broker_use_mux(gp__grpc_broker *b, struct gp__grpc_mux *mux);

/* The broker a server runs on its host's StartStream (server.c), or NULL
 * (a brokered server uses its parent's). */
struct gp__grpc_server;
gp__grpc_broker *gp__grpc_server_own_broker(struct gp__grpc_server *s);

/* A ConnInfo message arrived on the stream (bb borrowed). Bad ones are
 * logged and dropped. */
void gp__grpc_broker_received(gp__grpc_broker *b, grpc_byte_buffer *bb);

/* Stops and frees the brokered servers (removing their sockets), wakes
 * dials. Call before the stream's owner goes away. NULL is a no-op. */
void gp__grpc_broker_free(gp__grpc_broker *b);

/* A queue of messages for one streaming call: core takes one send at a
 * time. start(ctx, bb) starts a SEND_MESSAGE batch for bb and returns 1
 * (its completion must call gp__grpc_sendq_done), 0 when the stream is not
 * there yet (bb stays queued: call gp__grpc_sendq_kick once it is), or -1
 * (bb is dropped). */
typedef struct gp__grpc_sendq {
    pthread_mutex_t mu;
    grpc_byte_buffer **items;
    size_t n, cap;
    grpc_byte_buffer *cur; /* in flight */
    int closed;
    int (*start)(void *ctx, grpc_byte_buffer *bb);
    void *ctx;
} gp__grpc_sendq;

void gp__grpc_sendq_init(gp__grpc_sendq *q, int (*start)(void *, grpc_byte_buffer *), void *ctx);
/* Takes bb. GP_ECLOSED after close; GP_ESTATE when GP__GRPC_SENDQ_MAX
 * messages already wait (bb is dropped). */
gp_err gp__grpc_sendq_push(gp__grpc_sendq *q, grpc_byte_buffer *bb);
/* The in-flight send completed: free it, start the next. */
void gp__grpc_sendq_done(gp__grpc_sendq *q);
/* The stream appeared: start what is queued. */
void gp__grpc_sendq_kick(gp__grpc_sendq *q);
/* No more sends start; queued ones are dropped. The one in flight (if
 * any) still completes through gp__grpc_sendq_done. */
void gp__grpc_sendq_close(gp__grpc_sendq *q);
/* After close and the last completion. */
void gp__grpc_sendq_destroy(gp__grpc_sendq *q);

#endif
