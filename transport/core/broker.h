/* Internal: the gp_broker vtable each wire implements, and the thread's
 * current broker behind gp_serve_broker().
 *
 * An implementation embeds `struct gp_broker` as its first member. */
#ifndef GP_TRANSPORT_BROKER_H
#define GP_TRANSPORT_BROKER_H

#include <goplugin/broker.h>

#include "transport/core/conn.h"

typedef struct gp__broker_ops {
    uint32_t (*next_id)(gp_broker *b);
    gp_err (*accept_and_serve)(gp_broker *b, uint32_t id, const gp_service *svc, gp_status *st);
    gp_err (*dial)(gp_broker *b, uint32_t id, gp_stub **out, gp_status *st);
} gp__broker_ops;

struct gp_broker {
    const gp__broker_ops *ops;
};

/* Servers call handlers between these: gp_serve_broker() then returns b.
 * enter returns the previous value for leave (handlers may nest when a
 * brokered call is served on a thread that is itself in a handler). */
gp_broker *gp__broker_enter(gp_broker *b);
void gp__broker_leave(gp_broker *prev);

/* The conn behind a stub gp_broker_dial returned serves one service, which
 * that stub reaches: both wires' brokered conns use this as their
 * gp__conn_ops.dispense, which refuses with words. */
gp_err gp__broker_conn_dispense(gp_conn *c, const char *name, gp_stub **out, gp_status *st);

#endif
