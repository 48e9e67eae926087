/* goplugin-c: caps on what a peer can make one connection hold
 * (gp_client_config.limits on the host, gp_serve_config.limits in the
 * plugin). Zero in any field means its default; the defaults suit every
 * go-plugin peer we know, and a peer past a cap gets a refusal (a reset
 * stream, a dropped announcement), never a thread or unbounded memory.
 * docs/security.md lists what each one bounds and the test that shows it.
 */
#ifndef GOPLUGIN_LIMITS_H
#define GOPLUGIN_LIMITS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gp_limits {
    /* Yamux streams the peer opened and holds open on one session (netrpc,
     * and the multiplexed gRPC broker); a stream past it is reset at once.
     * 0 = 1024. */
    int max_streams;
    /* Brokered streams the peer opened that wait for their id or for a
     * matching gp_broker_accept_and_serve (netrpc; one thread each). 0 = 64. */
    int max_pending_streams;
    /* Brokered connections served or bridged at once per connection (netrpc
     * streams; multiplexed gRPC bridges). 0 = 128. */
    int max_broker_conns;
    /* Broker ids the peer announced that wait to be dialed (gRPC ConnInfo),
     * or that Dispense reserved for the peer's stream (netrpc). 0 = 1024. */
    int max_pending_ids;
    /* How long each of those waits (a pending stream for its id and match,
     * an announced id for its dial). 0 = 5000 ms, go-plugin's wait. */
    int broker_wait_ms;
    /* Plugin, netrpc: connections served at once (a few threads each); a
     * connection past it is closed at once. gRPC core serves connections
     * without a thread each. Ignored on the host. 0 = 32. */
    int max_connections;
    /* Plugin, gRPC: streaming handlers running at once per connection (a
     * thread each); past it a new streaming call is refused with
     * RESOURCE_EXHAUSTED and words, no thread is made. 0 = 128. */
    int max_stream_handlers;
} gp_limits;

#ifdef __cplusplus
}
#endif
#endif
