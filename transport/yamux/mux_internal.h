/* Internal to the yamux session: the state shared by mux_session.c (the
 * session, its reader thread and frame writing) and mux_stream.c (the
 * stream calls). Locking: `mu` guards all session and stream state; `wmu`
 * serializes frames onto the byte stream; order wmu before mu. */
#ifndef GP_NETRPC_MUX_INTERNAL_H
#define GP_NETRPC_MUX_INTERNAL_H

#include "transport/yamux/mux_frame.h"
#include "transport/yamux/mux_session.h"

#include <pthread.h>
#include <stdint.h>

#define NBUCKETS 64
#define CTRL_MAX (GP_MUX_HEADER_SIZE * 256)
#define READ_CHUNK 65536
#define ACKED_RING 16
/* How long the read role may stay free (every waiter busy elsewhere)
 * before the background reader takes the socket again; see "Who reads the
 * socket" in mux_session.c. */
#define LEAD_GRACE_NS (2 * 1000000)
/* The background reader's longest nap while another thread holds the role. */
#define BG_NAP_MAX_NS (100 * 1000000)

/* A thread waiting for the peer without holding the read role: the leader
 * wakes `cv` when it hands the role over. On the waiter's stack; in the
 * session's list (under mu) while it waits. */
typedef struct gp__mux_waiter {
    pthread_cond_t *cv;
    int prompt; /* waits for an answer to something it sent: gets the role first */
    int eager;  /* not prompt, but takes a free role (it did not step back for traffic) */
    struct gp__mux_waiter *next;
} gp__mux_waiter;

struct gp__mux_stream {
    gp__stream io; /* first: its ops (mux_stream.c) receive this pointer */
    gp__mux_session *s;
    uint32_t id;
    int refs; /* app handle, session table, reader's current frame */
    int in_table;
    int local_fin, remote_fin, reset, orphan;
    int peer_acked; /* a frame with ACK came (the peer accepted our stream) */
    uint8_t *rbuf;
    size_t roff, rlen, rcap;
    uint32_t inflight;           /* payload of the frame being received, not yet in rbuf */
    uint32_t recv_window;        /* bytes the peer may still send */
    uint32_t send_window;        /* bytes we may still send */
    int nwait;                   /* threads waiting on rcond without the read role */
    int prompt;                  /* reads here wait for replies (gp__mux_stream_set_prompt) */
    void (*watch_fn)(void *arg); /* gp__mux_stream_watch, called under mu */
    void *watch_arg;
    pthread_cond_t rcond, wcond;
    gp__mux_stream *next;        /* hash bucket chain */
    gp__mux_stream *accept_next; /* accept queue */
};

struct gp__mux_session {
    gp__stream *io; /* the socket or TLS stream; owned, NULL once freed */
    gp__mux_role role;
    gp__mux_config cfg;
    pthread_mutex_t mu, wmu;
    pthread_cond_t accept_cond, ping_cond;
    pthread_cond_t bg_cond; /* the background reader's nap; free waits here for `leading` to end */
    pthread_t reader;       /* the background reader (reads only while no waiter leads) */
    int refs;               /* app handle + every stream object */
    int closed;
    char err[256];
    uint32_t next_id;
    int local_goaway, remote_goaway;
    gp__mux_stream *buckets[NBUCKETS];
    gp__mux_stream *acc_head, *acc_tail;
    int acc_len;
    void (*accept_fn)(void *arg); /* gp__mux_accept_watch */
    void *accept_arg;
    int peer_streams; /* in the table and opened by the peer (max_streams) */
    uint64_t refused; /* SYNs refused because max_streams were open */
    uint8_t ctrl[CTRL_MAX];
    size_t ctrl_len;
    uint32_t ping_next;
    uint32_t acked[ACKED_RING];
    unsigned acked_n;
    /* The read role: one thread at a time reads the socket (a waiting
     * caller or the background reader). The fields below `leading` belong
     * to whoever holds it; the role is taken and given up under mu. */
    int leading;
    int delivered;           /* the leader fed another stream (or woke its reader) */
    gp__mux_stream *lead_st; /* the leader's own stream, NULL: none (the background) */
    int64_t released_ns;     /* a waiter last gave the role up (the background's grace) */
    gp__mux_waiter *waiters; /* threads waiting for the peer without the role */
    int nprompt;             /* how many of them are prompt */
    int neager;              /* how many are eager */
    /* keepalive, the role holder's */
    int64_t ka_next_ns, ka_deadline_ns;
    uint32_t ka_id;
    int ka_waiting;
    /* the frame in progress, the role holder's */
    gp__mux_parser parser;
    gp__mux_stream *cur;
    gp__mux_header cur_hdr;
    uint8_t rdbuf[READ_CHUNK]; /* last: the session's allocation zeroes all but it */
};

int64_t gp__mux_now_ns(void);
/* Monotonic deadline in ns for a timeout in ms; -1 for timeout_ms < 0. */
int64_t gp__mux_deadline_of(int timeout_ms);
/* Waits on cv (mu held) until signalled or the deadline; GP_ETIMEDOUT once
 * it passed. */
gp_err gp__mux_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline);
/* One step of waiting (mu held) for something the peer sends: when no
 * thread reads the socket, this one does (one read, its frames handled),
 * else it sleeps on cv (its stream `st`, may be NULL) until woken or the
 * deadline. The caller re-checks its condition after every return and,
 * when its loop ends, calls gp__mux_await_done_locked. prompt: the caller
 * waits for an answer to something it sent (a reply, a window update, a
 * ping): it keeps the role until then and gets it first from a leaving
 * leader; others give the role up once they woke someone. *back is the
 * loop's state (start at 0; 1: stepped back for another stream's traffic,
 * 2: lent the role to a prompt waiter). GP_ETIMEDOUT once the deadline
 * passed. */
gp_err gp__mux_await_locked(gp__mux_session *s, pthread_cond_t *cv, gp__mux_stream *st,
                            int64_t deadline, int prompt, int *back);
/* A wait loop ended (mu held): if the role is free, wake a prompt waiter to
 * take it, else an eager one. */
void gp__mux_await_done_locked(gp__mux_session *s);
/* Writes one frame (after pending control frames). Takes wmu; caller
 * holds neither lock. A failed write ends the session. */
gp_err gp__mux_write_frame(gp__mux_session *s, uint8_t type, uint16_t flags, uint32_t id,
                           uint32_t length, const void *payload, size_t plen);
/* The gp__stream table of every stream (mux_stream.c). */
extern const gp__stream_ops gp__mux_stream_ops;
/* A new stream in the table, two references (table, app). mu held. */
gp__mux_stream *gp__mux_stream_new_locked(gp__mux_session *s, uint32_t id);
/* Takes the stream out of the table; mu held. Both return 1 when the
 * session's last reference went: call gp__mux_session_destroy after
 * unlocking. */
int gp__mux_remove_locked(gp__mux_stream *st);
int gp__mux_stream_unref_locked(gp__mux_stream *st);
/* Window credit due after the application consumed data (0: not yet). */
uint32_t gp__mux_window_credit_locked(gp__mux_stream *st);
void gp__mux_session_destroy(gp__mux_session *s);

#endif
