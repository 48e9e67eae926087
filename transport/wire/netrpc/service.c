/* One gp_service over net/rpc, both ends: calling a gp_method through a
 * net/rpc client, and serving a gp_service as "Plugin"; see service.h. */
#include "transport/wire/netrpc/service.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/core/broker.h"
#include "transport/core/conn.h"
#include "transport/msg/msg.h"
#include "transport/wire/netrpc/gob/gob_pb.h"

/* Handler threads per served stream unless the server says otherwise. */
#define DEFAULT_WORKERS 8

gp_err gp__netrpc_invoke(struct gp__rpc_client *rpc, const gp_method *m, const void *req,
                         void *resp, int timeout_ms, gp_status *st)
{
    const char *name = m->netrpc_name ? m->netrpc_name : "(unnamed)";
    if (!m->netrpc_name || !m->req_gob || !m->resp_gob || !m->req_pb || !m->resp_pb)
        return gp__status_set(st, GP_EUNSUPPORTED, 0,
                              "method %s has no netrpc name or gob descriptors: it cannot be "
                              "called over netrpc",
                              name);
    char err[GP_STATUS_MSG_MAX];
    gp__gob_value args;
    gp_err rc = gp__gob_pb_to_tree(m->req_gob, m->req_pb, req, &args, err, sizeof err);
    if (rc)
        return gp__status_set(st, rc, 0, "%s request: %s", name, err);
    gp__gob_value *reply = NULL;
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

/* ---- serving: the Plugin service on a stream ------------------------------ */

typedef struct held_reply {
    const pb_msgdesc_t *desc;
    void *msg;
} held_reply;

static void release_reply(gp__rpc_reply *r)
{
    held_reply *h = r->owner;
    gp__gob_pb_tree_free(&r->value);
    if (h) {
        gp_msg_release(h->desc, h->msg);
        free(h); /* the block holds the request and the reply too */
    }
}

static const gp_service_method *find_method(const gp_service *svc, const char *name)
{
    for (size_t i = 0; i < svc->nmethods; i++) {
        const gp_method *m = svc->methods[i].method;
        if (m && m->netrpc_name && m->req_gob && m->resp_gob && strcmp(m->netrpc_name, name) == 0)
            return &svc->methods[i];
    }
    return NULL;
}

typedef struct served {
    const gp_service *svc;
    gp_broker *broker; /* gp_serve_broker() in handlers */
} served;

static gp_err plugin_call(void *ctx, const char *method, gp__gob_value *args, gp__rpc_reply *reply,
                          char *errmsg, size_t errlen)
{
    served *p = ctx;
    const gp_service_method *sm = find_method(p->svc, method);
    if (!sm) {
        /* Go's texts: the service is always "Plugin" on this stream. */
        if (strncmp(method, "Plugin.", 7) != 0)
            snprintf(errmsg, errlen, "rpc: can't find service %s", method);
        else
            snprintf(errmsg, errlen, "rpc: can't find method %s", method);
        return GP_ENOTFOUND;
    }
    const gp_method *m = sm->method;
    /* One block per call: the reply's holder, the request, the reply. */
    size_t a = sizeof(max_align_t);
    size_t hsize = (sizeof(held_reply) + a - 1) / a * a;
    size_t qsize = (gp__msg_struct_size(m->req_pb) + a - 1) / a * a;
    size_t rsize = gp__msg_struct_size(m->resp_pb);
    held_reply *h = calloc(1, hsize + qsize + rsize);
    if (!h) {
        snprintf(errmsg, errlen, "plugin: out of memory for %s", method);
        return GP_ENOMEM;
    }
    void *req = (char *)h + hsize, *resp = (char *)h + hsize + qsize;
    char err[GP_STATUS_MSG_MAX];
    gp_err rc = gp__gob_pb_from_tree(args, m->req_gob, m->req_pb, req, err, sizeof err);
    if (rc) {
        free(h);
        snprintf(errmsg, errlen, "%s", err);
        return rc;
    }
    gp_status st;
    memset(&st, 0, sizeof st);
    gp_broker *prev = gp__broker_enter(p->broker);
    rc = sm->handler(p->svc->impl, req, resp, &st);
    gp__broker_leave(prev);
    gp_msg_release(m->req_pb, req);
    h->desc = m->resp_pb;
    h->msg = resp;
    reply->owner = h;
    reply->release = release_reply;
    if (rc) {
        snprintf(errmsg, errlen, "%s", st.msg[0] ? st.msg : gp_strerror(rc));
        return rc;
    }
    rc = gp__gob_pb_to_tree(m->resp_gob, m->resp_pb, resp, &reply->value, err, sizeof err);
    if (rc)
        snprintf(errmsg, errlen, "plugin: encoding the reply of %s: %s", method, err);
    return rc;
}

/* The net/rpc server's watch hook on a yamux stream (rpc_codec.h). */
static void watch_stream(void *ctx, void (*fn)(void *arg), void *arg)
{
    gp__mux_stream_watch(ctx, fn, arg);
}

gp_err gp__netrpc_serve_service(gp__mux_stream *st, const gp_service *svc, gp_broker *broker,
                                int workers, size_t max_message, char *err, size_t errlen)
{
    served p = {.svc = svc, .broker = broker};
    gp__gob_limits lim = {.max_message = max_message};
    gp__rpc_serve_opts o = {.lim = &lim,
                            .call = plugin_call,
                            .ctx = &p,
                            .workers = workers > 0 ? workers : DEFAULT_WORKERS,
                            .watch = watch_stream,
                            .watch_ctx = st};
    return gp__rpc_serve_ex(gp__mux_stream_io(st), &o, err, errlen);
}
