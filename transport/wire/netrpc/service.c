/* A gp_method call over a net/rpc client; see service.h. */
#include "transport/wire/netrpc/service.h"

#include <string.h>

#include "transport/core/conn.h"
#include "transport/wire/netrpc/gob/gob_pb.h"

gp_err gp__netrpc_invoke(struct gp_rpc_client *rpc, const gp_method *m, const void *req,
                         void *resp, int timeout_ms, gp_status *st)
{
    const char *name = m->netrpc_name ? m->netrpc_name : "(unnamed)";
    if (!m->netrpc_name || !m->req_gob || !m->resp_gob || !m->req_pb || !m->resp_pb)
        return gp__status_set(st, GP_EUNSUPPORTED, 0,
                              "method %s has no netrpc name or gob descriptors: it cannot be "
                              "called over netrpc",
                              name);
    char err[GP_STATUS_MSG_MAX];
    gp_gob_value args;
    gp_err rc = gp__gob_pb_to_tree(m->req_gob, m->req_pb, req, &args, err, sizeof err);
    if (rc)
        return gp__status_set(st, rc, 0, "%s request: %s", name, err);
    gp_gob_value *reply = NULL;
    rc = gp__rpc_call(rpc, name, &args, &reply, timeout_ms, st);
    gp__gob_pb_tree_free(&args);
    /* Go's texts: "rpc: can't find method Plugin.X" / "... service X". */
    if (rc == GP_EREMOTE && strncmp(st->msg, "rpc: can't find ", 16) == 0)
        st->err = rc = GP_ENOTFOUND;
    if (rc)
        return rc;
    rc = gp__gob_pb_from_tree(reply, m->resp_gob, m->resp_pb, resp, err, sizeof err);
    gp__gob_value_free(reply);
    if (rc)
        return gp__status_set(st, rc, 0, "%s reply: %s", name, err);
    return GP_OK;
}
