/* The public broker calls: argument checks, then the wire's vtable. */
#include "transport/core/broker.h"

#include <stddef.h>

#include "transport/core/conn.h"

static _Thread_local gp_broker *current;

gp_broker *gp__broker_enter(gp_broker *b)
{
    gp_broker *prev = current;
    current = b;
    return prev;
}

void gp__broker_leave(gp_broker *prev)
{
    current = prev;
}

gp_broker *gp_serve_broker(void)
{
    return current;
}

gp_broker *gp_conn_broker(gp_conn *c)
{
    return c && c->ops->broker ? c->ops->broker(c) : NULL;
}

uint32_t gp_broker_next_id(gp_broker *b)
{
    return b ? b->ops->next_id(b) : 0;
}

gp_err gp_broker_accept_and_serve(gp_broker *b, uint32_t id, const gp_service *svc, gp_status *st)
{
    if (!b || !svc || id == 0)
        return gp__status_set(st, GP_EINVAL, 0,
                              "broker accept: expected a broker, an id > 0 "
                              "and a service, got %s",
                              !b     ? "no broker"
                              : !svc ? "no service"
                                     : "id 0");
    return b->ops->accept_and_serve(b, id, svc, st);
}

gp_err gp_broker_dial(gp_broker *b, uint32_t id, gp_stub **out, gp_status *st)
{
    if (out)
        *out = NULL;
    if (!b || !out || id == 0)
        return gp__status_set(st, GP_EINVAL, 0,
                              "broker dial: expected a broker, an id > 0 and "
                              "an out pointer, got %s",
                              !b     ? "no broker"
                              : !out ? "no out pointer"
                                     : "id 0");
    return b->ops->dial(b, id, out, st);
}

gp_err gp__broker_conn_dispense(gp_conn *c, const char *name, gp_stub **out, gp_status *st)
{
    (void)c;
    (void)out;
    return gp__status_set(st, GP_EUNSUPPORTED, 0,
                          "dispense %s: a brokered connection serves one service; call it "
                          "through the stub gp_broker_dial returned",
                          name);
}
