/* Internal to transport/grpc: streaming calls (gp_call, goplugin/conn.h)
 * on gRPC core, for both sides.
 *
 * Client: each call has its own pluck queue and plucks its batches on the
 * caller's thread; client.c lends it the channel and keeps it in the conn's
 * books (close cancels it; the conn's memory outlives it). A background
 * call (the host's stdio reader) instead completes on the conn's background
 * queue, whose poller runs its tags, and its thread sleeps on a condvar: a
 * thread parked in a pluck would poll beside the unary callers and take
 * their socket events (a hop per call; docs/grpc.md).
 * Server: the handler runs on a thread of its own; its batches complete
 * on the server's queue, whose workers call the tag and wake it. */
#ifndef GP_GRPC_STREAM_H
#define GP_GRPC_STREAM_H

#include <goplugin/conn.h>
#include <goplugin/server.h>

#include <grpc/grpc.h>

#include "transport/core/conn.h"

/* A tag on a completion queue the server's workers drain: they call fn.
 * server.c's own tags have this type too. */
typedef struct gp__grpc_tag {
    void (*fn)(struct gp__grpc_tag *t, int ok);
} gp__grpc_tag;

/* ---- client (client.c calls these) ---- */

/* What a client stream needs from its conn; client.c lends it, so this
 * file never names the conn's code. */
typedef struct gp__grpc_stream_conn {
    /* A new call of m on the conn's channel, bound to `cq` (NULL: the
     * conn's background queue), with no deadline, listed for cancelling at
     * close; *link is its entry for end. NULL with st set (GP_ECLOSED,
     * GP_ENOMEM). */
    grpc_call *(*begin)(gp_conn *c, const gp_method *m, grpc_completion_queue *cq, void **link,
                        gp_status *st);
    /* Unlist the call (before grpc_call_unref); may free a closed conn. */
    void (*end)(gp_conn *c, void *link);
    /* Whether the conn was closed (a cancelled call then says GP_ECLOSED). */
    int (*is_closed)(gp_conn *c);
    /* A background call was cancelled: have the background queue's poller
     * run its completion now rather than at its next sweep. */
    void (*poke)(gp_conn *c);
    /* A background call waits for a short batch (on != 0) or is done
     * waiting (0): the conn's poller polls meanwhile, even beside calls. */
    void (*want)(gp_conn *c, int on);
} gp__grpc_stream_conn;

/* Open a streaming call of m on the conn behind stub s (the body of the
 * conn's gp__conn_ops.call_open). ops is static, borrowed for the call's life. */
gp_err gp__grpc_call_open(const gp__grpc_stream_conn *ops, gp_stub *s, const gp_method *m,
                          int background, gp_call **out, gp_status *st);

/* gp_call_open on a gRPC conn's stub as a background call (see above; in
 * client.c). For long-lived streams whose latency does not matter: while
 * unary calls run, their messages are delivered every 20 ms. Free it
 * before the conn closes. */
gp_err gp__grpc_call_open_background(gp_stub *s, const gp_method *m, gp_call **out, gp_status *st);

/* While on, the conn's poller polls for the background call `c` even
 * beside other calls, so what the peer already sent is delivered now (the
 * stdio reader drains this way before it stops). Pair on and off. */
void gp__grpc_call_background_poll(gp_call *c, int on);

/* ---- server (server.c calls these) ---- */

typedef struct gp__grpc_stream_host {
    /* Start a batch on the server's queue unless it is shutting down. */
    grpc_call_error (*start)(void *ctx, grpc_call *call, const grpc_op *ops, size_t n,
                             gp__grpc_tag *tag);
    /* The handler's thread is done with everything the host lent. Called
     * on that thread, which is joinable: the host joins it (pthread_self()
     * here) or detaches it. */
    void (*done)(void *ctx);
    void *ctx;
    struct gp_broker *broker; /* gp_serve_broker() inside the handler */
    const gp_logger *logger;
} gp__grpc_stream_host;

/* Serve `call` (taken over: unref'd at the end) with `fn` on a new thread.
 * On GP_OK host->done is called once, when it has finished; on error the
 * caller still owns the call (cancel and unref it) and done is not called. */
/* Plugin side, from a streaming handler: whether its call has ended (the
 * host cancelled it or went away), without waiting. */
bool gp__grpc_stream_ended(gp_call *c);

gp_err gp__grpc_stream_serve(const gp__grpc_stream_host *host, grpc_call *call, const gp_method *m,
                             gp_stream_handler fn, void *impl);

#endif
