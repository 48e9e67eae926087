/* Internal: Go net/rpc with the gob codec over one byte stream (spec §2.6).
 * Each direction is one gob stream: the client sends (Request header,
 * argument) pairs, the server (Response header, reply) pairs.
 *
 * The client allows concurrent calls: one caller at a time writes, and
 * sends the requests others queued meanwhile; a waiting caller takes the
 * reading role and hands responses to their callers by Seq (no reader
 * thread: a lone caller reads its own reply), every one it read before it
 * passes the role on.
 * The server runs calls in order or on a leader/follower pool: a call runs
 * on the thread that read it, with every further request already received
 * (a batch, whose replies go out together), and that thread hands reading
 * on only when more is pending (or keeps it, with a watch hook on the io,
 * until a request arrives while the calls run). */
#ifndef GP_NETRPC_RPC_CODEC_H
#define GP_NETRPC_RPC_CODEC_H

#include <goplugin/err.h>

#include "transport/base/stream.h"
#include "transport/wire/netrpc/gob/gob.h"

/* The byte stream under the codec (a yamux stream: gp__mux_stream_io) is
 * borrowed: the codec never closes it, and it must outlive the client or
 * the serve call. The codec ends its side with the stream's close_write
 * (the server, when it stops) or shutdown (the client's free, and a
 * server whose write failed: wakes a blocked read at once). */

/* ---- client ---- */

typedef struct gp__rpc_client gp__rpc_client;

/* io is borrowed and must outlive the client. lim may be NULL (gob
 * defaults). Caller owns *out. */
gp_err gp__rpc_client_new(gp__stream *io, const gp__gob_limits *lim, gp__rpc_client **out);

/* Calls `method` ("Service.Method") with args (borrowed) and waits for the
 * reply. On GP_OK, *reply (if reply is not NULL) is the decoded reply
 * value; caller owns it, free with gp__gob_value_free before freeing the
 * client (it points at the client's gob types). Errors, with words in st
 * (may be NULL): GP_EREMOTE (the server's Error string, verbatim),
 * GP_ETIMEDOUT (the call is abandoned; its late reply is dropped),
 * GP_ECLOSED / GP_EPROTO / GP_EIO (the client is dead: every call fails
 * with the same words). Thread safety: any number of concurrent calls. */
gp_err gp__rpc_call(gp__rpc_client *c, const char *method, const gp__gob_value *args,
                    gp__gob_value **reply, int timeout_ms, gp_status *st);

/* Fails pending and future calls with GP_ECLOSED, shuts the io down,
 * frees. Not from a call in progress on another thread. NULL ok. */
void gp__rpc_client_free(gp__rpc_client *c);

/* ---- server ---- */

/* Handles one call. args is borrowed. Fill *reply (zeroed on entry) with a
 * value whose contents the codec frees afterwards with gp__gob_value_clear
 * (heap-allocate strings and items, or leave it typed with no contents).
 * Return GP_OK, or an error with the text for the Response's Error in
 * errmsg (empty: gp_strerror of the code); the reply is then struct{}. */
typedef gp_err (*gp__rpc_handler)(void *ctx, const char *method, const gp__gob_value *args,
                                  gp__gob_value *reply, char *errmsg, size_t errlen);

/* Serves calls one after another until EOF (GP_OK) or an error (returned,
 * words in err). A method name without a dot is answered, as Go does, with
 * "rpc: service/method request ill-formed: X" without calling the handler. */
gp_err gp__rpc_serve(gp__stream *io, const gp__gob_limits *lim, gp__rpc_handler h, void *ctx,
                     char *err, size_t errlen);

/* The general server: replies that borrow memory, concurrent calls, and a
 * hook after each reply is on the wire. */
typedef struct gp__rpc_reply {
    gp__gob_value value; /* zeroed on entry; the reply to encode */
    /* Called once the reply was written (or dropped); NULL means
     * gp__gob_value_clear(&value). Lets a reply borrow from `owner`. */
    void (*release)(struct gp__rpc_reply *r);
    void *owner;
} gp__rpc_reply;

/* Handles one call. args belongs to the codec but the handler may move
 * strings and items out of it (it is freed, as a tree, afterwards). Return
 * GP_OK and fill reply, or an error with the Response's Error text in
 * errmsg (empty: gp_strerror); then reply->release still runs and the body
 * sent is struct{}. */
typedef gp_err (*gp__rpc_call_fn)(void *ctx, const char *method, gp__gob_value *args,
                                  gp__rpc_reply *reply, char *errmsg, size_t errlen);

typedef struct gp__rpc_serve_opts {
    const gp__gob_limits *lim; /* NULL: gob defaults */
    gp__rpc_call_fn call;
    void *ctx;
    /* 0 or 1: each call runs on the reading thread, in order. N > 1: calls
     * run on up to N worker threads (started as needed), so replies may go
     * out of order, as from Go's server (one goroutine per call). */
    int workers;
    /* After a call's reply was written (result: the handler's code, or the
     * write error). May be NULL. Runs on the thread that ran the call. */
    void (*after_reply)(void *ctx, const char *method, gp_err result);
    /* Optional, with workers > 1: lets a call (or a batch of requests that
     * arrived together) run on the thread that read it, with no thread
     * woken; a follower takes over when more arrives meanwhile. The server
     * calls watch(watch_ctx, fn, arg) before serving: from then on the io
     * must call fn(arg) whenever bytes arrive for it that no thread is
     * reading (fn only signals: it may run with the io's locks held); and
     * watch(watch_ctx, NULL, NULL) at the end, after which fn is not
     * called. NULL: a reader always hands the role on before its call. */
    void (*watch)(void *watch_ctx, void (*fn)(void *arg), void *arg);
    void *watch_ctx;
} gp__rpc_serve_opts;

/* Serves until EOF (GP_OK, after the calls in flight finished) or an error
 * (returned, words in err). Half-closes the io at the end. */
gp_err gp__rpc_serve_ex(gp__stream *io, const gp__rpc_serve_opts *o, char *err, size_t errlen);

#endif
