/* goplugin-c: the broker, go-plugin's way for host and plugin to serve each
 * other more services over the connection they already have (callbacks).
 *
 *   host:   gp_broker *b = gp_conn_broker(conn);
 *           uint32_t id = gp_broker_next_id(b);
 *           gp_broker_accept_and_serve(b, id, &add_helper.service, &st);
 *           ... pass id to the plugin in an RPC (Counter.Put) ...
 *   plugin, inside that RPC's handler:
 *           gp_stub *h;  gp_broker_dial(gp_serve_broker(), req->add_server, &h, &st);
 *           proto_AddHelper_Sum(h, &sum_req, &sum_resp, &st);   // or gp_invoke
 *           gp_stub_free(h);
 *
 * Both sides may serve and dial; the side that serves allocates the id.
 * On netrpc the brokered connection is a yamux stream (MuxBroker); on gRPC
 * it is a new socket and gRPC server announced on GRPCBroker/StartStream.
 * docs/broker.md has the details.
 */
#ifndef GOPLUGIN_BROKER_H
#define GOPLUGIN_BROKER_H

#include <stdint.h>

#include <goplugin/conn.h>
#include <goplugin/err.h>
#include <goplugin/server.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gp_broker gp_broker; /* opaque; owned by its connection */

/* go-plugin's broker waits: a dial waits this long for the peer to accept
 * (netrpc: the ack; gRPC: the peer's ConnInfo), and a served id waits this
 * long for its dialer before it is dropped. */
#define GP_BROKER_WAIT_MS 5000

/* Host: the broker of a connection (owned by it: never freed by you). NULL
 * when the wire has none. Valid until the connection closes.
 * Thread safety: any thread. */
gp_broker *gp_conn_broker(gp_conn *c);

/* Plugin (and a host serving brokered services): the broker of the
 * connection whose RPC the calling thread is handling right now; NULL
 * outside a gp_handler. Valid until that handler returns (keep the id,
 * not the broker). Thread safety: per thread (thread-local). */
gp_broker *gp_serve_broker(void);

/* A fresh id for something this side will serve (1, 2, ...; ids of the
 * two sides are independent). 0 when b is NULL. Thread safety: safe. */
uint32_t gp_broker_next_id(gp_broker *b);

/* Serve `svc` (borrowed: it must outlive the connection) to the one peer
 * connection that dials `id` within GP_BROKER_WAIT_MS; then until the peer
 * or the connection closes it. Returns at once: GP_OK once the id is
 * offered (gRPC: listener made and ConnInfo sent). Handlers of svc run on
 * server threads and see gp_serve_broker() as this broker.
 * Errors: GP_EINVAL (NULL args), GP_ESTATE (id already offered),
 * GP_ECLOSED, transport errors. `st` may be NULL.
 * Thread safety: any thread, concurrently (the broker locks). */
gp_err gp_broker_accept_and_serve(gp_broker *b, uint32_t id, const gp_service *svc, gp_status *st);

/* Connect to the service the peer serves on `id` and return it as a stub
 * (owned by the caller; gp_stub_free closes the brokered connection; free
 * it before the parent connection goes away). Call it with gp_invoke.
 * Waits up to GP_BROKER_WAIT_MS for the peer: GP_ETIMEDOUT "timeout waiting
 * for ...", GP_EPROTO on a wrong ack, GP_ECLOSED, GP_ECONNECT.
 * Thread safety: any thread, concurrently. */
gp_err gp_broker_dial(gp_broker *b, uint32_t id, gp_stub **out, gp_status *st);

#ifdef __cplusplus
}
#endif
#endif
