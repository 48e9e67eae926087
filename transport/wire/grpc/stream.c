/* Streaming calls on gRPC core (stream.h): one gp_call type, two sides.
 *
 * Every operation is one batch that the calling thread waits for: on the
 * client by plucking its own queue, on the server by sleeping until a
 * worker of the server's queue runs the tag. A call has one tag per kind of
 * batch (send, recv, status, close), so a sender and a receiver may wait at
 * the same time, as gRPC allows one batch of each kind in flight. */
#include "transport/wire/grpc/stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "transport/core/broker.h"
#include "transport/wire/grpc/core.h"

typedef struct gstream gstream;

/* A batch's tag. The server's workers call t.fn; the client plucks it. */
typedef struct wtag {
    gp__grpc_tag t;
    gstream *g;
    int done, ok;
} wtag;

struct gstream {
    struct gp_call base;
    int server;
    grpc_call *call;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wtag t_send, t_recv, t_status, t_close;
    atomic_int cancelled; /* by our side (gp_call_cancel) */
    int half_closed;      /* client: SEND_CLOSE done */
    int md_sent;          /* server: initial metadata out */
    int md_recv;          /* client: initial metadata in */
    int eof;              /* recv saw the end */
    int status_done;      /* client: RECV_STATUS done */
    grpc_metadata_array md_in, trailing;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
    /* client */
    gp_conn *conn; /* its memory outlives the call (client.c) */
    const gp__grpc_stream_conn *conn_ops;
    void *link;
    grpc_completion_queue *cq; /* own pluck queue; NULL for a background call */
    int background;            /* batches complete on the conn's queue: wait */
    /* server */
    gp__grpc_stream_host host;
    gp_stream_handler fn;
    void *impl;
    int close_cancelled; /* RECV_CLOSE_ON_SERVER's answer */
};

static const char *path_of(const gstream *g)
{
    return g->base.m->grpc_path;
}

/* ---- batches ---- */

static void woken(gp__grpc_tag *t, int ok)
{
    wtag *w = (wtag *)t;
    gstream *g = w->g;
    pthread_mutex_lock(&g->mu);
    w->done = 1;
    w->ok = ok;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu); /* the waiter may free g from here on */
}

static grpc_call_error begin(gstream *g, const grpc_op *ops, size_t n, wtag *w)
{
    w->g = g;
    w->t.fn = woken;
    if (g->cq)
        return gp__grpc_start(g->call, ops, n, w);
    pthread_mutex_lock(&g->mu);
    w->done = 0;
    pthread_mutex_unlock(&g->mu);
    if (g->background)
        return gp__grpc_start(g->call, ops, n, &w->t);
    return g->host.start(g->host.ctx, g->call, ops, n, &w->t);
}

static int wait_tag(gstream *g, wtag *w)
{
    if (g->cq) {
        grpc_event ev =
            grpc_completion_queue_pluck(g->cq, w, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        GP_TAG_ACQUIRE(w);
        return ev.type == GRPC_OP_COMPLETE && ev.success;
    }
    pthread_mutex_lock(&g->mu);
    while (!w->done)
        pthread_cond_wait(&g->cv, &g->mu);
    int ok = w->ok;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* 1: done; 0: the batch failed (the call is over); -1: core refused it. */
static int run(gstream *g, const grpc_op *ops, size_t n, wtag *w)
{
    /* A background call's short batches (open, send, close, status) have
     * the conn's poller poll until they complete, as a caller would; only
     * its long wait for the next message is left to the sweeps. */
    int want = g->background && w != &g->t_recv;
    if (want)
        g->conn_ops->want(g->conn, 1);
    int r = begin(g, ops, n, w) != GRPC_CALL_OK ? -1 : wait_tag(g, w) ? 1 : 0;
    if (want)
        g->conn_ops->want(g->conn, 0);
    return r;
}

/* ---- client ---- */

static void fetch_status(gstream *g)
{
    if (g->status_done)
        return;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &g->trailing;
    op.data.recv_status_on_client.status = &g->status;
    op.data.recv_status_on_client.status_details = &g->details;
    op.data.recv_status_on_client.error_string = &g->error_string;
    g->status = GRPC_STATUS_UNKNOWN;
    if (run(g, &op, 1, &g->t_status) < 0)
        g->status = GRPC_STATUS_INTERNAL;
    g->status_done = 1;
}

/* The server's final status in gp terms (as gp_invoke maps a unary one). */
static gp_err status_err(gstream *g, gp_status *st)
{
    char text[GP_STATUS_MSG_MAX], cbuf[16];
    size_t n = GRPC_SLICE_LENGTH(g->details);
    if (n >= sizeof text)
        n = sizeof text - 1;
    memcpy(text, GRPC_SLICE_START_PTR(g->details), n);
    text[n] = '\0';
    const char *cname = gp__grpc_code_name(g->status, cbuf, sizeof cbuf);
    switch (g->status) {
    case GRPC_STATUS_OK:
        return gp__status_set(st, GP_OK, 0, "%s", "");
    case GRPC_STATUS_UNIMPLEMENTED:
        return gp__status_set(st, GP_ENOTFOUND, g->status,
                              "%s: the plugin does not implement this method (%s: %s)", path_of(g),
                              cname, text);
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return gp__status_set(st, GP_ETIMEDOUT, g->status, "%s: deadline exceeded (%s)", path_of(g),
                              text);
    case GRPC_STATUS_UNAVAILABLE:
        return gp__status_set(st, GP_ECLOSED, g->status,
                              "%s: connection to the plugin lost (%s: %s)", path_of(g), cname,
                              text);
    case GRPC_STATUS_CANCELLED:
        if (atomic_load(&g->cancelled))
            return gp__status_set(st, GP_ECLOSED, g->status, "%s: the call was cancelled",
                                  path_of(g));
        if (g->conn_ops->is_closed(g->conn))
            return gp__status_set(st, GP_ECLOSED, g->status, "%s: the connection was closed",
                                  path_of(g));
        return gp__status_set(st, GP_ECLOSED, g->status, "%s: cancelled (%s)", path_of(g),
                              text[0] ? text : "by the plugin");
    default:
        /* The plugin's own error: st->msg is its text, as a Go host sees it. */
        return gp__status_set(st, GP_EREMOTE, g->status, "%s", text[0] ? text : cname);
    }
}

static gp_err c_send(gp_call *base, const void *msg, gp_status *st)
{
    gstream *g = (gstream *)base;
    if (g->half_closed)
        return gp__status_set(st, GP_ESTATE, 0, "%s: send after gp_call_close_send", path_of(g));
    char err[256];
    grpc_byte_buffer *bb = NULL;
    gp_err e = gp__grpc_encode(base->m->req_pb, msg, &bb, path_of(g), err, sizeof err);
    if (e != GP_OK)
        return gp__status_set(st, e, 0, "%s request: %s", path_of(g), err);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    int r = run(g, &op, 1, &g->t_send);
    grpc_byte_buffer_destroy(bb);
    if (r < 0)
        return gp__status_set(st, GP_EIO, 0, "%s: gRPC core refused the send", path_of(g));
    if (r == 0)
        return gp__status_set(st, GP_ECLOSED, 0,
                              "%s: the call has ended (gp_call_recv or gp_call_finish gives "
                              "the plugin's status)",
                              path_of(g));
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static gp_err c_close_send(gp_call *base, gp_status *st)
{
    gstream *g = (gstream *)base;
    if (g->half_closed)
        return gp__status_set(st, GP_OK, 0, "%s", "");
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    int r = run(g, &op, 1, &g->t_send);
    g->half_closed = 1;
    if (r < 0)
        return gp__status_set(st, GP_EIO, 0, "%s: gRPC core refused the close", path_of(g));
    if (r == 0)
        return gp__status_set(st, GP_ECLOSED, 0, "%s: the call has ended", path_of(g));
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static gp_err end_of_stream(gstream *g, gp_status *st)
{
    g->eof = 1;
    fetch_status(g);
    if (g->status == GRPC_STATUS_OK)
        return gp__status_set(st, GP_EOF, 0, "%s: end of stream", path_of(g));
    return status_err(g, st);
}

static gp_err c_recv(gp_call *base, void *msg, gp_status *st)
{
    gstream *g = (gstream *)base;
    if (g->eof)
        return end_of_stream(g, st);
    grpc_byte_buffer *bb = NULL;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!g->md_recv) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &g->md_in;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &bb;
    int r = run(g, ops, n, &g->t_recv);
    g->md_recv = 1;
    if (r < 0)
        return gp__status_set(st, GP_EIO, 0, "%s: gRPC core refused the receive", path_of(g));
    if (r == 0 || !bb) {
        grpc_byte_buffer_destroy(bb);
        return end_of_stream(g, st);
    }
    char err[256];
    gp_err e = gp__grpc_decode(bb, base->m->resp_pb, msg, path_of(g), err, sizeof err);
    grpc_byte_buffer_destroy(bb);
    if (e != GP_OK)
        return gp__status_set(st, e, 0, "%s response: %s", path_of(g), err);
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static gp_err c_finish(gp_call *base, gp_status *st)
{
    gstream *g = (gstream *)base;
    if (!g->half_closed && !g->status_done)
        c_close_send(base, NULL);
    fetch_status(g);
    return status_err(g, st);
}

static void any_cancel(gp_call *base)
{
    gstream *g = (gstream *)base;
    atomic_store(&g->cancelled, 1);
    grpc_call_cancel(g->call, NULL);
    if (g->background)
        g->conn_ops->poke(g->conn); /* its completion waits for the poller */
}

static void destroy(gstream *g)
{
    grpc_metadata_array_destroy(&g->md_in);
    grpc_metadata_array_destroy(&g->trailing);
    grpc_slice_unref(g->details);
    if (g->error_string)
        gpr_free((void *)g->error_string);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static void drop_cq(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_completion_queue_destroy(cq);
}

static void c_free(gp_call *base)
{
    gstream *g = (gstream *)base;
    if (!g->status_done) {
        any_cancel(base);
        fetch_status(g); /* completes at once after the cancel */
    }
    g->conn_ops->end(g->conn, g->link);
    grpc_call_unref(g->call);
    if (g->cq)
        drop_cq(g->cq);
    destroy(g);
}

static const gp__call_ops client_ops = {
    .send = c_send,
    .close_send = c_close_send,
    .recv = c_recv,
    .finish = c_finish,
    .cancel = any_cancel,
    .free = c_free,
};

static gstream *gstream_new(const gp_method *m, const gp__call_ops *ops)
{
    gstream *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->base.ops = ops;
    g->base.m = m;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    grpc_metadata_array_init(&g->md_in);
    grpc_metadata_array_init(&g->trailing);
    g->details = grpc_empty_slice();
    atomic_init(&g->cancelled, 0);
    return g;
}

gp_err gp__grpc_call_open(const gp__grpc_stream_conn *ops, gp_stub *s, const gp_method *m,
                          int background, gp_call **out, gp_status *st)
{
    if (!m->grpc_path || m->grpc_path[0] != '/' || !m->req_pb || !m->resp_pb)
        return gp__status_set(st, GP_EINVAL, 0,
                              "expected a method with a \"/pkg.Service/Method\" path and "
                              "messages, got %s",
                              m->grpc_path ? m->grpc_path : "none");
    gstream *g = gstream_new(m, &client_ops);
    if (!g)
        return gp__status_set(st, GP_ENOMEM, 0, "%s: out of memory", m->grpc_path);
    g->conn = s->conn;
    g->conn_ops = ops;
    g->background = background;
    g->cq = background ? NULL : grpc_completion_queue_create_for_pluck(NULL);
    g->call = ops->begin(s->conn, m, g->cq, &g->link, st);
    if (!g->call) {
        gp_err e = st ? st->err : GP_ECLOSED;
        if (g->cq)
            drop_cq(g->cq);
        destroy(g);
        return e ? e : GP_ECLOSED;
    }
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    int r = run(g, &op, 1, &g->t_send);
    if (r != 1) {
        gp_err e =
            r < 0 ? gp__status_set(st, GP_EIO, 0, "%s: gRPC core refused the call", m->grpc_path)
                  : (fetch_status(g), status_err(g, st));
        if (e == GP_OK) /* a call that failed at once with OK: not a usable call */
            e = gp__status_set(st, GP_ECLOSED, 0, "%s: the call ended at once", m->grpc_path);
        c_free(&g->base);
        return e;
    }
    *out = &g->base;
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

void gp__grpc_call_background_poll(gp_call *base, int on)
{
    gstream *g = (gstream *)base;
    if (g->background)
        g->conn_ops->want(g->conn, on);
}

/* ---- server ---- */

static gp_err s_send(gp_call *base, const void *msg, gp_status *st)
{
    gstream *g = (gstream *)base;
    char err[256];
    grpc_byte_buffer *bb = NULL;
    gp_err e = gp__grpc_encode(base->m->resp_pb, msg, &bb, path_of(g), err, sizeof err);
    if (e != GP_OK)
        return gp__status_set(st, e, 0, "%s response: %s", path_of(g), err);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!g->md_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = bb;
    int r = run(g, ops, n, &g->t_send);
    g->md_sent = 1;
    grpc_byte_buffer_destroy(bb);
    if (r != 1)
        return gp__status_set(st, GP_ECLOSED, 0,
                              "%s: the call was cancelled (the host went away or cancelled it)",
                              path_of(g));
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static gp_err s_recv(gp_call *base, void *msg, gp_status *st)
{
    gstream *g = (gstream *)base;
    if (g->eof)
        return gp__status_set(st, GP_EOF, 0, "%s: the host closed its side", path_of(g));
    grpc_byte_buffer *bb = NULL;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &bb;
    int r = run(g, &op, 1, &g->t_recv);
    if (r != 1) {
        grpc_byte_buffer_destroy(bb);
        return gp__status_set(st, GP_ECLOSED, 0,
                              "%s: the call was cancelled (the host went away or cancelled it)",
                              path_of(g));
    }
    if (!bb) {
        g->eof = 1;
        return gp__status_set(st, GP_EOF, 0, "%s: the host closed its side", path_of(g));
    }
    char err[256];
    gp_err e = gp__grpc_decode(bb, base->m->req_pb, msg, path_of(g), err, sizeof err);
    grpc_byte_buffer_destroy(bb);
    if (e != GP_OK)
        return gp__status_set(st, e, 0, "%s request: %s", path_of(g), err);
    return gp__status_set(st, GP_OK, 0, "%s", "");
}

static gp_err s_not_here(gp_call *base, gp_status *st)
{
    return gp__status_set(st, GP_ESTATE, 0,
                          "%s: on the plugin side the call ends when the handler returns",
                          path_of((gstream *)base));
}

static const gp__call_ops server_ops = {
    .send = s_send,
    .close_send = s_not_here,
    .recv = s_recv,
    .finish = s_not_here,
    .cancel = any_cancel,
    .free = NULL,
};

static grpc_status_code code_of(gp_err e)
{
    switch (e) {
    case GP_OK:
        return GRPC_STATUS_OK;
    case GP_ENOTFOUND:
        return GRPC_STATUS_NOT_FOUND;
    case GP_EINVAL:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case GP_ECLOSED:
        return GRPC_STATUS_CANCELLED;
    default:
        return GRPC_STATUS_UNKNOWN;
    }
}

static void *serve_thread(void *arg)
{
    gstream *g = arg;
    /* RECV_CLOSE_ON_SERVER: completes when the call ends either way; its
     * tag must come back before the call is released. */
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &g->close_cancelled;
    int close_started = begin(g, &op, 1, &g->t_close) == GRPC_CALL_OK;

    gp_status st;
    memset(&st, 0, sizeof st);
    gp_broker *prev = gp__broker_enter(g->host.broker);
    gp_err e = g->fn(g->impl, &g->base, &st);
    gp__broker_leave(prev);
    if (e != GP_OK && g->host.logger)
        gp_logf(g->host.logger, GP_LOG_DEBUG, "grpc-server", NULL, 0, "%s: handler: %s: %s",
                path_of(g), gp_strerror(e), st.msg);

    const char *text = e == GP_OK ? "" : st.msg[0] ? st.msg : gp_strerror(e);
    grpc_slice details = grpc_slice_from_copied_string(text);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!g->md_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code_of(e);
    ops[n++].data.send_status_from_server.status_details = &details;
    if (run(g, ops, n, &g->t_status) < 0)
        grpc_call_cancel(g->call, NULL); /* no status can go out: end it */
    grpc_slice_unref(details);
    if (close_started)
        wait_tag(g, &g->t_close);
    grpc_call_unref(g->call);
    gp__grpc_stream_host host = g->host;
    destroy(g);
    host.done(host.ctx);
    return NULL;
}

bool gp__grpc_stream_ended(gp_call *c)
{
    gstream *g = (gstream *)c;
    pthread_mutex_lock(&g->mu);
    bool ended = g->t_close.done; /* RECV_CLOSE_ON_SERVER came back */
    pthread_mutex_unlock(&g->mu);
    return ended;
}

gp_err gp__grpc_stream_serve(const gp__grpc_stream_host *host, grpc_call *call, const gp_method *m,
                             gp_stream_handler fn, void *impl)
{
    gstream *g = gstream_new(m, &server_ops);
    if (!g)
        return GP_ENOMEM;
    g->server = 1;
    g->call = call;
    g->host = *host;
    g->fn = fn;
    g->impl = impl;
    pthread_t th; /* joinable: host->done records it for its host to join */
    int rc = pthread_create(&th, NULL, serve_thread, g);
    if (rc != 0) {
        g->call = NULL;
        destroy(g);
        return GP_ESYS;
    }
    return GP_OK;
}
