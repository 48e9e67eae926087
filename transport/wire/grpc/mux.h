/* Internal to transport/grpc: the transport under go-plugin 1.6+'s
 * multiplexed gRPC broker (spec addendum A2). One raw connection between
 * host and plugin carries a yamux session (host: client, plugin: server);
 * every gRPC connection, the main one and each brokered one, is a yamux
 * stream.
 *
 * gRPC core only speaks over sockets, so each stream is bridged to a local
 * socket: a socketpair whose other end becomes a plaintext client channel
 * (open_fd), a one-shot unix listener that core dials when it must run TLS
 * itself (open_path), or a connection to the unix socket of one of our own
 * servers (streams the peer opens). Two threads pump each bridge; at most
 * max_bridges (GP__MUX_MAX_BRIDGES) exist at once (more streams are reset).
 *
 * Which of our servers a peer-opened stream goes to is decided by order
 * alone, as in go-plugin: a knock for a served id arms that id's socket
 * (gp__grpc_mux_arm), and the next stream the peer opens goes there. Without
 * an armed id, the plugin sends the stream to its main server and the host
 * resets it (Go hosts never accept such a stream). Arms not used within
 * GP__MUX_ARM_MS expire; knocks past GP__MUX_MAX_ARMED wait for room before
 * they are acked. broker.c speaks the knocks. */
#ifndef GP_GRPC_MUX_H
#define GP_GRPC_MUX_H

#include <goplugin/err.h>
#include <goplugin/log.h>

#include <stddef.h>
#include <stdint.h>

#define GP__MUX_MAX_BRIDGES 128
#define GP__MUX_MAX_ARMED 16
#define GP__MUX_ARM_MS 5000
#define GP__MUX_CONNECT_MS 5000 /* plugin: the host's raw connection (go-plugin: 5 s) */

typedef struct gp__grpc_mux gp__grpc_mux;

typedef struct gp__grpc_mux_opts {
    const gp_logger *logger; /* copied; NULL: none */
    const char *log_name;
    /* Plugin: core's main server socket, for streams without an armed id
     * (removed by gp__grpc_mux_free). NULL on the host. */
    const char *main_path;
    /* Called once, from the mux's thread, when the session cannot start
     * (no raw connection in time) or has ended: the plugin stops serving,
     * since nobody can reach it any more. May be NULL. */
    void (*ended)(void *ctx);
    void *ended_ctx;
    int max_bridges; /* gp_limits.max_broker_conns; 0 = GP__MUX_MAX_BRIDGES */
    int max_streams; /* gp_limits.max_streams (the yamux session); 0 = its default */
} gp__grpc_mux_opts;

/* Host: a yamux client session over the connected raw socket `fd` (taken,
 * on failure too). */
gp_err gp__grpc_mux_client(int fd, const gp__grpc_mux_opts *o, gp__grpc_mux **out, char *err,
                           size_t errlen);

/* Plugin: take the listening socket `lfd` (on failure too); a thread
 * accepts exactly one raw connection within GP__MUX_CONNECT_MS, closes the
 * listener and runs a yamux server session on it. */
gp_err gp__grpc_mux_server(int lfd, const gp__grpc_mux_opts *o, gp__grpc_mux **out, char *err,
                           size_t errlen);

/* Open a stream now; *fd gets a local socket bridged to it (the caller
 * owns it: a plaintext gRPC channel over it). accept_ms > 0: return only
 * once the peer has accepted the stream (its yamux ACK, sent by the accept
 * loop that routes it), else fail within accept_ms: GP_ETIMEDOUT (no ACK),
 * GP_ECLOSED (the peer reset it, or the session ended), err says which; the
 * stream is reset and nothing is left behind. Brokered dials wait so that
 * the peer's armed knocks (GP__MUX_MAX_ARMED) never pile up; 0: no wait
 * (the main connection, which no knock precedes). */
gp_err gp__grpc_mux_open_fd(gp__grpc_mux *m, int accept_ms, int *fd, char *err, size_t errlen);

/* Open a stream now (accept_ms as above); `path` gets a unix socket path
 * whose first connection (within 10 s) is bridged to the stream: for core
 * to dial with TLS. */
gp_err gp__grpc_mux_open_path(gp__grpc_mux *m, int accept_ms, char *path, size_t cap, char *err,
                              size_t errlen);

/* A knock for a served id: the next stream the peer opens after it reads
 * this knock's ack goes to the unix socket at `path` (id is for the log).
 * The ack is sent through the on_ack callback (in the order the arms went
 * live, outside every lock of ours): at once while fewer than
 * GP__MUX_MAX_ARMED acked knocks wait for their streams, else once one of
 * them is used or expires (GP__MUX_ARM_MS; while a knock is held a thread
 * wakes at each deadline), as go-plugin holds back its ack (AcceptKnock
 * blocks) instead of refusing. A knock that found no room
 * within wait_ms is dropped unanswered (its dialer times out). GP_ESTATE
 * when GP__MUX_MAX_ARMED + max_bridges knocks are pending already (refuse
 * it), GP_ECLOSED after the session ended. May call on_ack itself. */
gp_err gp__grpc_mux_arm(gp__grpc_mux *m, uint32_t id, const char *path, int wait_ms);

/* Set (once, before arming) what sends a knock's ack for id. */
void gp__grpc_mux_on_ack(gp__grpc_mux *m, void (*ack)(void *ctx, uint32_t id), void *ctx);

/* "" while the session is up (or not yet started), else why it ended. */
void gp__grpc_mux_error(gp__grpc_mux *m, char *buf, size_t cap);

/* Wait (up to GP__MUX_CONNECT_MS) until the session is up, as the open
 * calls do: a plugin's comes on the mux's own thread once the host has
 * connected, with the session's reader thread (for tests that count
 * threads). GP_ECLOSED (err says why) when there is none. */
gp_err gp__grpc_mux_wait_session(gp__grpc_mux *m, char *err, size_t errlen);

/* Bridges alive now (for tests). */
int gp__grpc_mux_bridges(gp__grpc_mux *m);

/* End the session, wake and join every thread, close every socket. NULL
 * is a no-op. Not from the `ended` callback. */
void gp__grpc_mux_free(gp__grpc_mux *m);

#endif
