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

typedef struct gp_conn gp_conn;   /* opaque; owned by its gp_client */
typedef struct gp_stub gp_stub;   /* opaque; a dispensed plugin */

/* "grpc" or "netrpc". Static storage. */
const char *gp_conn_protocol(const gp_conn *c);

/* Dispense the plugin called `name` (as the plugin registered it). On grpc
 * this does no RPC; on netrpc it calls Dispenser.Dispense. `*out` is owned
 * by the caller: free with gp_stub_free, before the connection goes away.
 * Errors: GP_ENOTFOUND (the plugin has no such name), transport errors.
 * `st` may be NULL. Thread safety: safe. */
gp_err gp_conn_dispense(gp_conn *c, const char *name, gp_stub **out,
                        gp_status *st);

/* Call `m` on a dispensed plugin. `req` is borrowed. `resp` is a
 * caller-provided zeroed struct of m->resp_pb's type; on GP_OK its pointer
 * fields are malloc'd and the caller frees them with
 * gp_msg_release(m->resp_pb, resp). On error `resp` holds nothing to free.
 * Errors: GP_EREMOTE (the plugin's handler failed; st->msg has its text),
 * GP_ENOTFOUND (unknown method), GP_ETIMEDOUT, GP_ECLOSED/GP_EEXITED, ...
 * `st` may be NULL. Thread safety: safe; calls run concurrently. */
gp_err gp_invoke(gp_stub *s, const gp_method *m, const void *req, void *resp,
                 gp_status *st);

/* Liveness: Health/Check("plugin") on grpc, Control.Ping on netrpc. */
gp_err gp_conn_ping(gp_conn *c, gp_status *st);

/* Free a stub. NULL is a no-op. */
void gp_stub_free(gp_stub *s);

#ifdef __cplusplus
}
#endif
#endif
