/* Internal: Go net/rpc with the gob codec over one byte stream (spec §2.6).
 * Each direction is one gob stream: the client sends (Request header,
 * argument) pairs, the server (Response header, reply) pairs.
 *
 * The client allows concurrent calls: requests go out under a lock; a
 * waiting caller takes the reading role and hands responses to their
 * callers by Seq (no reader thread: a lone caller reads its own reply).
 * The server runs calls in order or on a leader/follower pool. */
#ifndef GP_NETRPC_RPC_CODEC_H
#define GP_NETRPC_RPC_CODEC_H

#include <goplugin/err.h>

#include "transport/wire/netrpc/gob/gob.h"
#include "transport/wire/netrpc/yamux/mux_session.h"

/* The byte stream under the codec. read: *n == 0 means EOF. */
typedef struct gp_rpc_io {
    void *ctx;
    gp_err (*read)(void *ctx, void *buf, size_t cap, int timeout_ms, size_t *n);
    gp_err (*write)(void *ctx, const void *buf, size_t len, int timeout_ms);
    /* Called once when the codec stops (EOF, error, free): half-close or
     * abort so the peer sees the end. May be NULL. */
    void (*close)(void *ctx);
    /* Ends both directions at once and wakes a blocked read (the client's
     * free uses it so it never waits for the peer). May be NULL. */
    void (*abort)(void *ctx);
} gp_rpc_io;

/* An io over a yamux stream (borrowed: the caller frees the stream after
 * the codec). close = FIN, abort = RST. */
gp_rpc_io gp__rpc_io_mux(gp_mux_stream *st);

/* ---- client ---- */

typedef struct gp_rpc_client gp_rpc_client;

/* io is copied; its ctx must outlive the client.
 * lim may be NULL (gob defaults). Caller owns *out. */
gp_err gp__rpc_client_new(gp_rpc_io io, const gp_gob_limits *lim, gp_rpc_client **out);

/* Calls `method` ("Service.Method") with args (borrowed) and waits for the
 * reply. On GP_OK, *reply (if reply is not NULL) is the decoded reply
 * value; caller owns it, free with gp__gob_value_free before freeing the
 * client (it points at the client's gob types). Errors, with words in st
 * (may be NULL): GP_EREMOTE (the server's Error string, verbatim),
 * GP_ETIMEDOUT (the call is abandoned; its late reply is dropped),
 * GP_ECLOSED / GP_EPROTO / GP_EIO (the client is dead: every call fails
 * with the same words). Thread safety: any number of concurrent calls. */
gp_err gp__rpc_call(gp_rpc_client *c, const char *method, const gp_gob_value *args,
                    gp_gob_value **reply, int timeout_ms, gp_status *st);

/* Fails pending and future calls with GP_ECLOSED, closes the io, joins the
 * reader, frees. Not from a call in progress on another thread. NULL ok. */
void gp__rpc_client_free(gp_rpc_client *c);

/* ---- server ---- */

/* Handles one call. args is borrowed. Fill *reply (zeroed on entry) with a
 * value whose contents the codec frees afterwards with gp__gob_value_clear
 * (heap-allocate strings and items, or leave it typed with no contents).
 * Return GP_OK, or an error with the text for the Response's Error in
 * errmsg (empty: gp_strerror of the code); the reply is then struct{}. */
typedef gp_err (*gp_rpc_handler)(void *ctx, const char *method, const gp_gob_value *args,
                                 gp_gob_value *reply, char *errmsg, size_t errlen);

/* Serves calls one after another until EOF (GP_OK) or an error (returned,
 * words in err). A method name without a dot is answered, as Go does, with
 * "rpc: service/method request ill-formed: X" without calling the handler. */
gp_err gp__rpc_serve(gp_rpc_io io, const gp_gob_limits *lim, gp_rpc_handler h, void *ctx,
                     char *err, size_t errlen);

/* The general server: replies that borrow memory, concurrent calls, and a
 * hook after each reply is on the wire. */
typedef struct gp_rpc_reply {
    gp_gob_value value; /* zeroed on entry; the reply to encode */
    /* Called once the reply was written (or dropped); NULL means
     * gp__gob_value_clear(&value). Lets a reply borrow from `owner`. */
    void (*release)(struct gp_rpc_reply *r);
    void *owner;
} gp_rpc_reply;

/* Handles one call. args belongs to the codec but the handler may move
 * strings and items out of it (it is freed, as a tree, afterwards). Return
 * GP_OK and fill reply, or an error with the Response's Error text in
 * errmsg (empty: gp_strerror); then reply->release still runs and the body
 * sent is struct{}. */
typedef gp_err (*gp_rpc_call_fn)(void *ctx, const char *method, gp_gob_value *args,
                                 gp_rpc_reply *reply, char *errmsg, size_t errlen);

typedef struct gp_rpc_serve_opts {
    const gp_gob_limits *lim;   /* NULL: gob defaults */
    gp_rpc_call_fn call;
    void *ctx;
    /* 0 or 1: each call runs on the reading thread, in order. N > 1: calls
     * run on up to N worker threads (started as needed), so replies may go
     * out of order, as from Go's server (one goroutine per call). */
    int workers;
    /* After a call's reply was written (result: the handler's code, or the
     * write error). May be NULL. Runs on the thread that ran the call. */
    void (*after_reply)(void *ctx, const char *method, gp_err result);
} gp_rpc_serve_opts;

/* Serves until EOF (GP_OK, after the calls in flight finished) or an error
 * (returned, words in err). Closes the io at the end. */
gp_err gp__rpc_serve_ex(gp_rpc_io io, const gp_rpc_serve_opts *o, char *err, size_t errlen);

#endif
