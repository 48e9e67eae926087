/* Internal: the gp_conn vtable that each wire implements.
 *
 * An implementation embeds `struct gp_conn` as its first member, so a
 * pointer to it is a gp_conn. Likewise for gp_stub.
 */
#ifndef GP_TRANSPORT_CONN_H
#define GP_TRANSPORT_CONN_H

#include <goplugin/conn.h>

typedef struct gp__conn_ops {
    const char *name; /* "grpc" | "netrpc" */
    gp_err (*dispense)(gp_conn *c, const char *name, gp_stub **out, gp_status *st);
    gp_err (*invoke)(gp_stub *s, const gp_method *m, const void *req, void *resp, gp_status *st);
    gp_err (*ping)(gp_conn *c, gp_status *st);
    void (*stub_free)(gp_stub *s);
    /* Ask the plugin to exit (GRPCController.Shutdown / Control.Quit).
     * GP_OK means the request was delivered. Bounded by timeout_ms. */
    gp_err (*shutdown)(gp_conn *c, int timeout_ms, gp_status *st);
    /* Close the connection and free it. Pending calls fail with GP_ECLOSED. */
    void (*close)(gp_conn *c);
    /* The connection's broker (include/goplugin/broker.h); NULL: none. */
    struct gp_broker *(*broker)(gp_conn *c);
    /* Start a streaming call (goplugin/conn.h gp_call_open; m is checked
     * streaming). NULL: the wire has none (netrpc). */
    gp_err (*call_open)(gp_stub *s, const gp_method *m, gp_call **out, gp_status *st);
} gp__conn_ops;

/* A streaming call; each wire (and side) implements the ops and embeds
 * struct gp_call first. core/call.c dispatches the public calls. */
typedef struct gp__call_ops {
    gp_err (*send)(gp_call *c, const void *msg, gp_status *st);
    gp_err (*close_send)(gp_call *c, gp_status *st);
    gp_err (*recv)(gp_call *c, void *msg, gp_status *st);
    gp_err (*finish)(gp_call *c, gp_status *st);
    void (*cancel)(gp_call *c);
    void (*free)(gp_call *c); /* NULL: not the caller's to free (plugin side) */
} gp__call_ops;

struct gp_call {
    const gp__call_ops *ops;
    const gp_method *m;
};

/* A failed call on a conn passes through its `lost` hook, when one was set
 * as the call began, which may turn the status into better words and
 * returns the code to give the caller. The host that owns the conn sets it
 * (host/client_exit.c: "the plugin exited (...) during the call"); core
 * knows no clients. The hook may run after the conn was closed and freed,
 * and after it was cleared: ctx must stay safe to use (client_exit.c makes
 * it a key into its own locked table, never dereferenced). */
typedef gp_err (*gp__conn_lost_fn)(void *ctx, gp_status *st, gp_err rc);

struct gp_conn {
    const gp__conn_ops *ops; /* the wire's; an implementation zero-fills the rest */
    _Atomic(gp__conn_lost_fn) lost;
    void *_Atomic lost_ctx;
};

struct gp_stub {
    gp_conn *conn;
};

/* Helpers for implementations: fill a status and return its code. */
gp_err gp__status_set(gp_status *st, gp_err err, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Set or clear (fn NULL) c's lost hook. Clearing waits for nothing: see
 * gp__conn_lost_fn for what a hook must therefore bear. */
void gp__conn_set_lost(gp_conn *c, gp__conn_lost_fn fn, void *ctx);

/* Shutdown and close through the vtable (used by gp_client). */
gp_err gp__conn_shutdown(gp_conn *c, int timeout_ms, gp_status *st);
void gp__conn_close(gp_conn *c);

#endif
