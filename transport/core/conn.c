/* The public gp_conn calls: thin dispatch through the wire's vtable. */
#include "transport/core/conn.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

gp_err gp__status_set(gp_status *st, gp_err err, int grpc_code, const char *fmt, ...)
{
    if (st) {
        st->err = err;
        st->grpc_code = grpc_code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->msg, sizeof st->msg, fmt, ap);
        va_end(ap);
    }
    return err;
}

static gp_err bad_arg(gp_status *st, const char *what)
{
    return gp__status_set(st, GP_EINVAL, 0, "%s is NULL", what);
}

const char *gp_conn_protocol(const gp_conn *c)
{
    return c ? c->ops->name : "";
}

gp_err gp_conn_dispense(gp_conn *c, const char *name, gp_stub **out, gp_status *st)
{
    if (!c || !name || !out)
        return bad_arg(st, !c ? "conn" : !name ? "name" : "out");
    *out = NULL;
    return c->ops->dispense(c, name, out, st);
}

void gp__conn_set_lost(gp_conn *c, gp__conn_lost_fn fn, void *ctx)
{
    atomic_store(&c->lost_ctx, ctx);
    atomic_store(&c->lost, fn);
}

/* The hook is read before the call: once a call returns, a concurrent
 * close may have freed the conn (a stub keeps its conn's memory, a bare
 * gp_conn_ping does not). */
typedef struct lost_hook {
    gp__conn_lost_fn fn;
    void *ctx;
} lost_hook;

static lost_hook hook_of(gp_conn *c)
{
    return (lost_hook){.fn = atomic_load(&c->lost), .ctx = atomic_load(&c->lost_ctx)};
}

static gp_err after_call(lost_hook h, gp_status *st, gp_err rc)
{
    if (rc != GP_ECLOSED && rc != GP_EIO)
        return rc;
    return h.fn ? h.fn(h.ctx, st, rc) : rc;
}

gp_err gp_invoke(gp_stub *s, const gp_method *m, const void *req, void *resp, gp_status *st)
{
    if (!s || !m || !req || !resp)
        return bad_arg(st, !s ? "stub" : !m ? "method" : !req ? "req" : "resp");
    if (m->kind != GP_UNARY)
        return gp__status_set(st, GP_EUNSUPPORTED, 0,
                              "%s is a streaming method: call it with gp_call_open, not "
                              "gp_invoke",
                              m->grpc_path     ? m->grpc_path
                              : m->netrpc_name ? m->netrpc_name
                                               : "");
    lost_hook h = hook_of(s->conn);
    return after_call(h, st, s->conn->ops->invoke(s, m, req, resp, st));
}

gp_err gp_conn_ping(gp_conn *c, gp_status *st)
{
    if (!c)
        return bad_arg(st, "conn");
    lost_hook h = hook_of(c);
    return after_call(h, st, c->ops->ping(c, st));
}

void gp_stub_free(gp_stub *s)
{
    if (s)
        s->conn->ops->stub_free(s);
}

gp_err gp__conn_shutdown(gp_conn *c, int timeout_ms, gp_status *st)
{
    return c->ops->shutdown(c, timeout_ms, st);
}

void gp__conn_close(gp_conn *c)
{
    if (c)
        c->ops->close(c);
}
