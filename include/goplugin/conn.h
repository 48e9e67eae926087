/* goplugin-c: the one client protocol interface.
 *
 * A host that connected to a plugin holds a gp_conn, whatever the wire
 * (grpc or netrpc). It dispenses a plugin by name into a gp_stub and invokes
 * methods on it; generated stubs are thin wrappers around gp_invoke.
 */
#ifndef GOPLUGIN_CONN_H
#define GOPLUGIN_CONN_H

#include <goplugin/err.h>
#include <goplugin/method.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Liveness checks on a connection, so that a call with no deadline to a
 * peer that vanished without a FIN or RST (a stopped process, a dead host)
 * ends within time_ms + timeout_ms (+ 0.5 s while the host looks for an
 * exit status; docs/lifecycle.md "Keepalive"). Zero fields: the default.
 *   netrpc: yamux pings every 30000 ms, answer within 10000 ms (go-plugin).
 *   gRPC:   HTTP/2 pings every 360000 ms, ack within 20000 ms (Go servers
 *           GOAWAY pings more often than every 5 min). A host that sets
 *           time_ms also sends a Health/Check every time_ms with a deadline
 *           of timeout_ms (a call: Go servers take any rate; a C plugin
 *           whose server threads are all busy longer than that looks dead);
 *           a plugin that sets it pings its host every time_ms (HTTP/2).
 *   TCP (plaintext sockets a host dials, netrpc plugins accept): Go's
 *           keepalive (probes after 15 s idle); with time_ms set: after
 *           time_ms, 3 probes timeout_ms / 3 apart, TCP_USER_TIMEOUT
 *           timeout_ms.
 * time_ms < 0 turns all of it off for that side. A lost peer ends the
 * connection: calls in flight and later ones fail with GP_ECLOSED and words
 * naming the keepalive. */
typedef struct gp_keepalive {
    int time_ms;    /* idle time before a check; 0 = default, < 0 = off */
    int timeout_ms; /* how long to wait for the answer; 0 = default */
} gp_keepalive;

typedef struct gp_conn gp_conn; /* opaque; owned by its gp_client */
typedef struct gp_stub gp_stub; /* opaque; a dispensed plugin, the caller's */

/* Errors: every call returns a gp_err and writes its words into the
 * caller's `st` (docs/errors.md). Ownership, threads and teardown order:
 * docs/lifecycle.md. */

/* "grpc" or "netrpc". Static storage. Thread safety: any thread. */
const char *gp_conn_protocol(const gp_conn *c);

/* Dispense the plugin called `name` (as the plugin registered it). On grpc
 * this does no RPC; on netrpc it calls Dispenser.Dispense. `*out` is owned
 * by the caller: free with gp_stub_free, before the connection goes away.
 * Errors: GP_ENOTFOUND (the plugin has no such name), transport errors.
 * `st` may be NULL. Thread safety: any thread, concurrently. */
gp_err gp_conn_dispense(gp_conn *c, const char *name, gp_stub **out, gp_status *st);

/* Call `m` on a dispensed plugin. `req` is borrowed. `resp` is a
 * caller-provided zeroed struct of m->resp_pb's type; on GP_OK its pointer
 * fields are malloc'd and the caller frees them with
 * gp_msg_release(m->resp_pb, resp). On error `resp` holds nothing to free.
 * Errors: GP_EREMOTE (the plugin's handler failed; st->msg has its text),
 * GP_ENOTFOUND (unknown method), GP_ETIMEDOUT, GP_ECLOSED/GP_EEXITED, ...
 * `st` may be NULL. Thread safety: any thread; calls on one stub run
 * concurrently. */
gp_err gp_invoke(gp_stub *s, const gp_method *m, const void *req, void *resp, gp_status *st);

/* Liveness: Health/Check("plugin") on grpc, Control.Ping on netrpc.
 * `st` may be NULL. Thread safety: any thread, concurrently. */
gp_err gp_conn_ping(gp_conn *c, gp_status *st);

/* Free a stub. NULL is a no-op. Thread safety: once no gp_invoke or
 * gp_call_open on it is running (calls opened from it may live on). */
void gp_stub_free(gp_stub *s);

/* ---- Streaming calls (server, client and bidi streaming methods) ----
 *
 * Only the grpc wire carries them; on netrpc gp_call_open fails with
 * GP_EUNSUPPORTED "streaming RPCs need the grpc protocol (method /p.S/M)".
 *
 *   gp_call *call;
 *   if (gp_call_open(stub, &pkg_S_Watch_method, &call, &st) == GP_OK) {
 *       gp_call_send(call, &req, &st);          // what the client streams
 *       gp_call_close_send(call, &st);
 *       pkg_Event ev = {0};
 *       while (gp_call_recv(call, &ev, &st) == GP_OK) {
 *           use(&ev);
 *           gp_msg_release(pkg_S_Watch_method.resp_pb, &ev);
 *       }
 *       // GP_EOF: the server finished with OK; anything else: st says why
 *       gp_call_free(call);
 *   }
 *
 * Messages: send borrows `msg` (of m->req_pb's type); recv fills a zeroed
 * `msg` of m->resp_pb's type whose pointers the caller frees with
 * gp_msg_release, as gp_invoke's response. On the plugin side (a
 * gp_stream_handler, goplugin/server.h) the same calls send m->resp_pb
 * messages and receive m->req_pb ones.
 * Thread safety: one thread may send (and close_send) while another
 * receives; no two threads may send, or receive, at once. finish, cancel
 * and free are for when no send or recv is running (cancel: any time). */
typedef struct gp_call gp_call;

/* Start method `m` (a streaming one) on a dispensed stub. *out is the
 * caller's: free with gp_call_free (it may outlive the stub, and the
 * connection's close, which cancels it; not the gp_client). The call has no
 * deadline (the conn's call timeout is for unary calls); cancel it.
 * Errors: GP_EINVAL (a unary method: use gp_invoke), GP_EUNSUPPORTED
 * (netrpc), GP_ECLOSED. `st` may be NULL (in every gp_call function).
 * Thread safety: any thread, concurrently with other calls on the stub. */
gp_err gp_call_open(gp_stub *s, const gp_method *m, gp_call **out, gp_status *st);

/* Send one message. Errors: GP_ESTATE (after close_send), GP_ECLOSED
 * (the call ended: the server finished or failed, the connection went;
 * gp_call_finish then gives the server's status), encoding errors.
 * Thread safety: one sender at a time (it may overlap a recv). */
gp_err gp_call_send(gp_call *c, const void *msg, gp_status *st);

/* Client: say that no more messages follow (the server's recv sees
 * GP_EOF). Idempotent. On the plugin side GP_ESTATE. Thread safety: as
 * gp_call_send. */
gp_err gp_call_close_send(gp_call *c, gp_status *st);

/* Receive the next message. GP_EOF when the peer has sent its last one
 * (client side: the server finished with OK; server side: the client
 * closed its send side). When the server finished with an error, the
 * error (GP_EREMOTE with its text, GP_ENOTFOUND for an unknown method,
 * ...). GP_ECLOSED when the call was cancelled or the connection lost;
 * GP_EPROTO/GP_EMSGSIZE when a message does not decode as m's type.
 * Thread safety: one receiver at a time (it may overlap a send). */
gp_err gp_call_recv(gp_call *c, void *msg, gp_status *st);

/* Client: close the send side if still open and wait for the server's
 * final status: GP_OK, or the error recv would give. Read every message
 * up to GP_EOF first (or cancel): a server blocked sending to a reader
 * that stopped never finishes. On the plugin side GP_ESTATE.
 * Thread safety: when no send or recv on c is running. */
gp_err gp_call_finish(gp_call *c, gp_status *st);

/* Cancel the call (either side): sends and receives in progress or later
 * return GP_ECLOSED; the peer sees the call cancelled. NULL is a no-op.
 * Thread safety: any thread, any time before gp_call_free. */
void gp_call_cancel(gp_call *c);

/* Client: free a call from gp_call_open, cancelling it if the server has
 * not finished. NULL is a no-op. (The plugin side's call belongs to the
 * transport: never free it.) Thread safety: alone and last: no send, recv
 * or cancel on c may be running. */
void gp_call_free(gp_call *c);

#ifdef __cplusplus
}
#endif
#endif
