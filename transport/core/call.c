/* The public gp_call functions (goplugin/conn.h): argument checks, then the
 * wire's gp__call_ops. A wire without streaming (netrpc) has no call_open. */
#include "transport/core/conn.h"

#include <stddef.h>

static gp_err null_arg(gp_status *st, const char *what)
{
    return gp__status_set(st, GP_EINVAL, 0, "%s is NULL", what);
}

gp_err gp_call_open(gp_stub *s, const gp_method *m, gp_call **out, gp_status *st)
{
    if (!out)
        return null_arg(st, "out");
    *out = NULL;
    if (!s || !m)
        return null_arg(st, !s ? "stub" : "method");
    const char *path = m->grpc_path ? m->grpc_path : "(no grpc path)";
    if (m->kind == GP_UNARY)
        return gp__status_set(st, GP_EINVAL, 0,
                              "%s is a unary method: call it with gp_invoke, not gp_call_open",
                              path);
    if (!s->conn->ops->call_open)
        return gp__status_set(st, GP_EUNSUPPORTED, 0,
                              "streaming RPCs need the grpc protocol (method %s); this "
                              "connection is %s",
                              path, s->conn->ops->name);
    return s->conn->ops->call_open(s, m, out, st);
}

gp_err gp_call_send(gp_call *c, const void *msg, gp_status *st)
{
    if (!c || !msg)
        return null_arg(st, !c ? "call" : "msg");
    return c->ops->send(c, msg, st);
}

gp_err gp_call_close_send(gp_call *c, gp_status *st)
{
    if (!c)
        return null_arg(st, "call");
    return c->ops->close_send(c, st);
}

gp_err gp_call_recv(gp_call *c, void *msg, gp_status *st)
{
    if (!c || !msg)
        return null_arg(st, !c ? "call" : "msg");
    return c->ops->recv(c, msg, st);
}

gp_err gp_call_finish(gp_call *c, gp_status *st)
{
    if (!c)
        return null_arg(st, "call");
    return c->ops->finish(c, st);
}

void gp_call_cancel(gp_call *c)
{
    if (c)
        c->ops->cancel(c);
}

void gp_call_free(gp_call *c)
{
    if (c && c->ops->free)
        c->ops->free(c);
}
