/* Internal: a yamux session (hashicorp/yamux compatible) over a byte
 * stream (transport/base/stream.h: a connected socket, or TLS over one).
 * A thread that waits for the peer (stream read, window, accept, ping)
 * reads the socket itself while no other thread does (leader/follower);
 * a background reader thread takes over when nobody has for 2 ms. Writes
 * are serialized by a mutex, one writev per frame.
 *
 * Blocking API with timeouts (timeout_ms < 0: wait forever, 0: don't wait).
 * When the session ends (gp__mux_session_close, a protocol error, a lost
 * connection, a keepalive timeout), every blocked call wakes with
 * GP_ECLOSED and gp__mux_session_error tells why. */
#ifndef GP_NETRPC_MUX_SESSION_H
#define GP_NETRPC_MUX_SESSION_H

#include <goplugin/err.h>

#include "transport/base/stream.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gp__mux_session gp__mux_session;
typedef struct gp__mux_stream gp__mux_stream;

typedef enum gp__mux_role {
    GP_MUX_CLIENT = 1, /* opens odd stream ids (go-plugin host) */
    GP_MUX_SERVER = 2  /* opens even stream ids (go-plugin plugin) */
} gp__mux_role;

/* Zero means default for every field. */
typedef struct gp__mux_config {
    int keepalive_interval_ms; /* 0: 30000 (Go); < 0: no keepalive pings */
    int keepalive_timeout_ms;  /* 0: 10000 (Go); ping answer deadline */
    int write_timeout_ms;      /* 0: 10000 (Go); one frame onto the socket */
    int accept_backlog;        /* 0: 256 (Go); unaccepted streams beyond it get RST */
    /* Streams the peer opened that are still open (accepted or queued, not
     * yet finished both ways); a SYN beyond it gets RST, so a peer cannot
     * make us hold unbounded stream state. 0: GP_MUX_MAX_STREAMS (1024);
     * Go's yamux has no such cap. */
    int max_streams;
} gp__mux_config;

/* Streams the peer opened that this session refused with RST because
 * max_streams were open (for the wires' logs). Thread-safe. */
uint64_t gp__mux_session_refused(gp__mux_session *s);

/* Starts a session over the byte stream `io`: its reader thread waits in
 * io's read (with the keepalive's timeout), frames go out through io's
 * writev, the session's end calls io's shutdown. Takes ownership of io on
 * success only (gp__mux_session_free closes it); cfg may be NULL. Errors:
 * GP_ENOMEM, GP_ESYS (thread), GP_EINVAL. Caller owns *out; free with
 * gp__mux_session_free. */
gp_err gp__mux_session_new_stream(gp__stream *io, gp__mux_role role, const gp__mux_config *cfg,
                                  gp__mux_session **out);

/* As gp__mux_session_new_stream over the connected socket `fd` (an fd
 * stream). Takes ownership of fd on success only. */
gp_err gp__mux_session_new(int fd, gp__mux_role role, const gp__mux_config *cfg,
                           gp__mux_session **out);

/* Ends the session: wakes every blocked call with GP_ECLOSED, shuts the
 * stream down. Sends no GoAway (as Go's Close). Idempotent, thread-safe,
 * does not block. */
void gp__mux_session_close(gp__mux_session *s);

/* Closes, joins the reader thread, closes the stream, drops the caller's
 * reference. Streams not yet freed stay valid (they return GP_ECLOSED) and
 * the memory goes with the last of them. Not from a callback. NULL is ok. */
void gp__mux_session_free(gp__mux_session *s);

/* Sends GoAway(normal): the peer must not open more streams; incoming SYNs
 * are refused with RST from now on. */
gp_err gp__mux_session_go_away(gp__mux_session *s);

/* Why the session ended, "" while it is alive. The string is stable once
 * set and lives as long as the session. */
const char *gp__mux_session_error(gp__mux_session *s);
int gp__mux_session_is_closed(gp__mux_session *s);

/* Sends a Ping and waits for its answer. *rtt_us (may be NULL) gets the
 * round trip. GP_ETIMEDOUT, GP_ECLOSED. */
gp_err gp__mux_session_ping(gp__mux_session *s, int timeout_ms, int64_t *rtt_us);

/* Opens a stream (WindowUpdate+SYN). Data may be written at once. Fails
 * with GP_ECLOSED after close or a peer GoAway. Caller owns *out; free with
 * gp__mux_stream_free. */
gp_err gp__mux_open(gp__mux_session *s, gp__mux_stream **out);

/* Takes the next stream the peer opened, in SYN order, and ACKs it.
 * Streams queued before the session ended are still handed out (their
 * buffered data stays readable); then GP_ECLOSED. GP_ETIMEDOUT. Caller
 * owns *out. */
gp_err gp__mux_accept(gp__mux_session *s, int timeout_ms, gp__mux_stream **out);

uint32_t gp__mux_stream_id(const gp__mux_stream *st);

/* For a stream we opened: waits until the peer has accepted it (a frame
 * with ACK came: Go's yamux sends it from AcceptStream, we from
 * gp__mux_accept). GP_OK; GP_ECLOSED when the peer reset it or the session
 * ended first (*reset says which; may be NULL); GP_ETIMEDOUT. */
gp_err gp__mux_stream_wait_accepted(gp__mux_stream *st, int timeout_ms, int *reset);

/* Marks reads on st as waits for replies to what this side sent (a net/rpc
 * client's stream): such a reader keeps the socket's read role until its
 * reply came and is first to take it over. Unmarked readers (servers
 * waiting for requests, stdio) give the role up to whoever the traffic is
 * for. Only a performance hint: every reader is served either way. */
void gp__mux_stream_set_prompt(gp__mux_stream *st, int prompt);

/* Calls fn(arg) whenever data arrives on st while no thread waits in a
 * read of it (a net/rpc server running a call on its reading thread learns
 * that the next request came; a host starts the thread that copies a stdio
 * stream once something comes on it), and at once if data already waits
 * unread. fn runs with the session's lock held, on the thread reading the
 * socket: it may signal or start a thread, never call back into the
 * session. fn NULL: no more calls once this returns. */
void gp__mux_stream_watch(gp__mux_stream *st, void (*fn)(void *arg), void *arg);

/* Calls fn(arg) whenever the peer opens a stream (it waits for
 * gp__mux_accept), and at once if one already waits; as
 * gp__mux_stream_watch: lets a side that is rarely dialled start its
 * accepting thread only when a stream comes. */
void gp__mux_accept_watch(gp__mux_session *s, void (*fn)(void *arg), void *arg);

/* Reads up to cap bytes. GP_OK with *n > 0; GP_OK with *n == 0 means EOF
 * (peer sent FIN and everything was read). GP_ECLOSED after RST or session
 * end, GP_ETIMEDOUT. Consumed bytes reopen the peer's window (WindowUpdate
 * once half the window is free, as Go). */
gp_err gp__mux_stream_read(gp__mux_stream *st, void *buf, size_t cap, int timeout_ms, size_t *n);

/* Reads exactly len bytes; GP_EIO ("unexpected EOF") if FIN comes first. */
gp_err gp__mux_stream_read_full(gp__mux_stream *st, void *buf, size_t len, int timeout_ms);

/* Writes all len bytes, waiting for window as needed; the timeout covers
 * the whole call. GP_ECLOSED after local close, RST or session end. */
gp_err gp__mux_stream_write(gp__mux_stream *st, const void *buf, size_t len, int timeout_ms);

/* Half-close: sends FIN; reads still work. Idempotent. */
gp_err gp__mux_stream_close(gp__mux_stream *st);

/* Aborts the stream with RST: both directions fail with GP_ECLOSED. */
gp_err gp__mux_stream_reset(gp__mux_stream *st);

/* st as a byte stream, for the codec on top (net/rpc). Borrowed: it lives
 * as long as st. read and write are the calls above (why: "yamux: stream
 * 3: closed: <the session's end, if it ended>");
 * close_write is gp__mux_stream_close (FIN), shutdown is
 * gp__mux_stream_reset (RST), close is gp__mux_stream_free. */
gp__stream *gp__mux_stream_io(gp__mux_stream *st);

/* Drops the caller's handle: sends FIN if not yet closed; data still
 * arriving is discarded (and its window given back) until the peer's FIN.
 * Wakes nobody: do not free a stream another thread is using. NULL is ok. */
void gp__mux_stream_free(gp__mux_stream *st);

#endif
