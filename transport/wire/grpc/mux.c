/* go-plugin 1.6+'s multiplexed broker transport; see mux.h. */
#include "transport/wire/grpc/mux.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/base/clock.h"
#include "transport/base/sync.h"
#include "transport/net/net.h"
#include "transport/yamux/mux_session.h"

#define PUMP_CHUNK 32768
#define ONESHOT_MS 10000 /* core dials a one-shot path at once; be generous */
#define SLICE_MS 100     /* waits in accept() check for closing this often */

typedef struct bridge {
    gp__grpc_mux *m;
    gp__mux_stream *st;
    int fd;  /* our end of the local socket; -1 until a one-shot is dialed */
    int lfd; /* one-shot listener, or -1 */
    char path[108];
    pthread_t down; /* peer -> local; it runs `up` and joins it */
    int done;       /* under m->mu: down has finished and cleaned up */
    struct bridge *next;
} bridge;

typedef struct armed {
    uint32_t id;
    char path[108];
    int64_t deadline_ms; /* acked: of the arm; else: of the wait for room */
    int acked;           /* live: the next stream may be this one's */
} armed;

struct gp__grpc_mux {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the session came, or failed */
    gp_logger log;
    int has_log;
    char log_name[64];
    char main_path[108];
    void (*ended)(void *);
    void *ended_ctx;
    int server;         /* plugin role */
    int lfd;            /* plugin: the listener until the raw connection came */
    gp__mux_session *s; /* set once (under mu) */
    pthread_t thread;   /* accepts the raw connection (plugin), then streams */
    int thread_started;
    int closing;
    char err[256];
    bridge *bridges;
    int nbridges, max_bridges;
    gp__mux_config mc; /* the session's caps */
    /* Knocks in arrival order: the acked ones (at most GP__MUX_MAX_ARMED)
     * first, then those held back until one of them is used (at most
     * max_bridges: each would become a bridge anyway). */
    armed *arms;
    int narms, cap_arms;
    /* Acks to send, in the order the arms went live: one thread at a time
     * sends them (outside mu), so the peer reads them in that order and
     * opens its streams in the order route() spends the arms. */
    uint32_t *unsent;
    int nunsent, sending;
    void (*ack)(void *, uint32_t);
    void *ack_ctx;
    /* While a knock is held, a thread wakes at the next deadline of an arm,
     * so room an unused arm leaves goes to the held knock then, not only
     * when a stream or a knock comes (started by arm, rarely needed). */
    pthread_t expiry;
    pthread_cond_t expiry_cv; /* closing */
    int expiry_started, expiry_running;
};

#define LOGF(m, lvl, ...)                                                   \
    do {                                                                    \
        if ((m)->has_log)                                                   \
            gp_logf(&(m)->log, (lvl), (m)->log_name, NULL, 0, __VA_ARGS__); \
    } while (0)

/* ---- bridges: a yamux stream <-> a local socket ---------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* local -> peer: until core closes its end (FIN to the peer) or the
 * stream is gone. */
static void *pump_up(void *arg)
{
    bridge *b = arg;
    uint8_t *buf = malloc(PUMP_CHUNK);
    for (;;) {
        ssize_t n = -1;
        if (!buf) {
            gp__mux_stream_close(b->st);
            break;
        }
        n = read(b->fd, buf, PUMP_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) { /* core closed (or reset) its end: FIN, as Go's Close */
            gp__mux_stream_close(b->st);
            break;
        }
        if (gp__mux_stream_write(b->st, buf, (size_t)n, -1) != GP_OK) {
            /* The stream is gone already (RST, session end): nothing to tell. */
            shutdown(b->fd, SHUT_RDWR);
            break;
        }
    }
    free(buf);
    return NULL;
}

/* A one-shot listener: wait for core's connection. */
static int accept_oneshot(bridge *b)
{
    int64_t end = gp__now_ms() + ONESHOT_MS;
    int fd = -1;
    while (fd < 0 && gp__now_ms() < end) {
        pthread_mutex_lock(&b->m->mu);
        int closing = b->m->closing;
        pthread_mutex_unlock(&b->m->mu);
        if (closing)
            break;
        struct pollfd p = {.fd = b->lfd, .events = POLLIN};
        if (poll(&p, 1, SLICE_MS) > 0)
            fd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC);
    }
    close(b->lfd);
    b->lfd = -1;
    unlink(b->path);
    return fd;
}

static void *pump_down(void *arg)
{
    bridge *b = arg;
    gp__grpc_mux *m = b->m;
    if (b->fd < 0) {
        int fd = accept_oneshot(b);
        pthread_mutex_lock(&m->mu);
        b->fd = fd;
        pthread_mutex_unlock(&m->mu);
        if (fd < 0) {
            LOGF(m, GP_LOG_WARN, "grpc mux: nobody dialed the stream's local socket %s", b->path);
            gp__mux_stream_reset(b->st);
        }
    }
    pthread_t up;
    int up_started = b->fd >= 0 && pthread_create(&up, NULL, pump_up, b) == 0;
    if (b->fd >= 0 && !up_started)
        gp__mux_stream_reset(b->st);
    uint8_t *buf = up_started ? malloc(PUMP_CHUNK) : NULL;
    while (buf) {
        size_t n = 0;
        gp_err e = gp__mux_stream_read(b->st, buf, PUMP_CHUNK, -1, &n);
        if (e == GP_OK && n == 0) { /* the peer's FIN */
            shutdown(b->fd, SHUT_WR);
            break;
        }
        if (e != GP_OK) { /* RST or session end */
            shutdown(b->fd, SHUT_RDWR);
            break;
        }
        if (write_all(b->fd, buf, n) != 0) { /* our side went away */
            gp__mux_stream_reset(b->st);
            shutdown(b->fd, SHUT_RDWR);
            break;
        }
    }
    free(buf);
    if (up_started)
        pthread_join(up, NULL);
    gp__mux_stream_free(b->st);
    b->st = NULL;
    pthread_mutex_lock(&m->mu);
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    b->done = 1;
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* Join and free the bridges that have finished. */
static void reap(gp__grpc_mux *m, int all)
{
    bridge *gone = NULL;
    pthread_mutex_lock(&m->mu);
    for (bridge **pp = &m->bridges; *pp;) {
        bridge *b = *pp;
        if (b->done || all) {
            *pp = b->next;
            b->next = gone;
            gone = b;
            m->nbridges--;
        } else {
            pp = &b->next;
        }
    }
    pthread_mutex_unlock(&m->mu);
    while (gone) {
        bridge *b = gone;
        gone = b->next;
        pthread_join(b->down, NULL);
        free(b);
    }
}

/* Takes st, fd and lfd (on failure too: the stream is reset). */
static gp_err bridge_start(gp__grpc_mux *m, gp__mux_stream *st, int fd, int lfd, const char *path,
                           char *err, size_t errlen)
{
    reap(m, 0);
    bridge *b = calloc(1, sizeof *b);
    pthread_mutex_lock(&m->mu);
    int full = m->nbridges >= m->max_bridges, closing = m->closing;
    if (b && !full && !closing) {
        b->m = m;
        b->st = st;
        b->fd = fd;
        b->lfd = lfd;
        snprintf(b->path, sizeof b->path, "%s", path ? path : "");
        if (pthread_create(&b->down, NULL, pump_down, b) == 0) {
            b->next = m->bridges;
            m->bridges = b;
            m->nbridges++;
            pthread_mutex_unlock(&m->mu);
            return GP_OK;
        }
    }
    pthread_mutex_unlock(&m->mu);
    free(b);
    gp__mux_stream_reset(st);
    gp__mux_stream_free(st);
    if (fd >= 0)
        close(fd);
    if (lfd >= 0) {
        close(lfd);
        unlink(path);
    }
    snprintf(err, errlen, "%s",
             closing ? "grpc mux: the session is closed"
             : full  ? "grpc mux: too many brokered connections at once (the limit is "
                       "gp_limits.max_broker_conns)"
                     : "grpc mux: out of memory or threads for a stream");
    return closing ? GP_ECLOSED : full ? GP_ESTATE : GP_ESYS;
}

/* ---- knocks: arms and held knocks ------------------------------------------ */

/* Under mu: drop expired arms (the peer never opened their stream) and
 * held knocks that found no room in time (unanswered, as go-plugin leaves
 * a knock whose AcceptKnock still blocks; the dialer times out). */
static void prune_locked(gp__grpc_mux *m, int64_t now)
{
    int kept = 0;
    for (int i = 0; i < m->narms; i++) {
        armed *a = &m->arms[i];
        if (a->deadline_ms >= now) {
            m->arms[kept++] = *a;
            continue;
        }
        LOGF(m, GP_LOG_DEBUG, "grpc mux: knock for id %u %s", (unsigned)a->id,
             a->acked ? "expired unused" : "found no room in time; left unanswered");
    }
    m->narms = kept;
}

/* Under mu: held knocks go live (in order) while fewer than
 * GP__MUX_MAX_ARMED are; their acks are queued for send_acks. */
static void promote_locked(gp__grpc_mux *m, int64_t now)
{
    int live = 0;
    for (int i = 0; i < m->narms && live < GP__MUX_MAX_ARMED; i++) {
        armed *a = &m->arms[i];
        if (!a->acked) {
            a->acked = 1;
            a->deadline_ms = now + GP__MUX_ARM_MS;
            /* Full only if a hostile peer opens streams for acks it has not
             * been sent yet: that arm goes unanswered. */
            if (m->nunsent < 2 * m->cap_arms)
                m->unsent[m->nunsent++] = a->id;
        }
        live++;
    }
}

static void send_acks(gp__grpc_mux *m);

/* Under mu: whether a knock waits for room; and the next deadline of any
 * knock (an arm's end or a held knock's), the time something may change. */
static int held_locked(const gp__grpc_mux *m, int64_t *next)
{
    int held = 0;
    *next = INT64_MAX;
    for (int i = 0; i < m->narms; i++) {
        held |= !m->arms[i].acked;
        if (m->arms[i].deadline_ms < *next)
            *next = m->arms[i].deadline_ms;
    }
    return held;
}

/* The held knocks' clock: prunes and promotes at each deadline until no
 * knock is held (or the mux closes, or its session ended), then ends. */
static void *expiry_main(void *arg)
{
    gp__grpc_mux *m = arg;
    pthread_mutex_lock(&m->mu);
    int64_t next;
    while (!m->closing && !m->err[0] && held_locked(m, &next)) {
        int64_t now = gp__now_ms();
        if (now <= next) {
            struct timespec ts = gp__deadline_in(next - now + 1);
            pthread_cond_timedwait(&m->expiry_cv, &m->mu, &ts);
            continue;
        }
        prune_locked(m, now);
        promote_locked(m, now);
        if (m->nunsent > 0) {
            pthread_mutex_unlock(&m->mu);
            send_acks(m);
            pthread_mutex_lock(&m->mu);
        }
    }
    m->expiry_running = 0;
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* Under mu, with a knock just held: make sure the clock runs. */
static void expiry_ensure_locked(gp__grpc_mux *m)
{
    if (m->expiry_running || m->closing)
        return;
    if (m->expiry_started) /* it ended (under mu, its last use of it) */
        pthread_join(m->expiry, NULL);
    /* A default stack: the acks it sends go into gRPC core (a batch on the
     * broker stream), which may write and encrypt on this thread. */
    m->expiry_started = m->expiry_running = pthread_create(&m->expiry, NULL, expiry_main, m) == 0;
    if (!m->expiry_started)
        LOGF(m, GP_LOG_WARN, "%s",
             "grpc mux: no thread for held knocks' deadlines; a held knock goes live "
             "only when a stream or a knock comes");
}

/* Send the queued acks, unless another thread is at it (it sends ours too,
 * after its own: the order stays that of the arms). */
static void send_acks(gp__grpc_mux *m)
{
    pthread_mutex_lock(&m->mu);
    if (m->sending) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    m->sending = 1;
    while (m->nunsent > 0) {
        uint32_t id = m->unsent[0];
        memmove(m->unsent, m->unsent + 1, (size_t)(m->nunsent - 1) * sizeof *m->unsent);
        m->nunsent--;
        void (*ack)(void *, uint32_t) = m->ack;
        void *ctx = m->ack_ctx;
        pthread_mutex_unlock(&m->mu);
        if (ack)
            ack(ctx, id);
        pthread_mutex_lock(&m->mu);
    }
    m->sending = 0;
    pthread_mutex_unlock(&m->mu);
}

/* ---- streams the peer opens ---------------------------------------------- */

static void route(gp__grpc_mux *m, gp__mux_stream *st)
{
    char path[108] = "";
    uint32_t id = 0;
    pthread_mutex_lock(&m->mu);
    prune_locked(m, gp__now_ms());
    if (m->narms > 0 && m->arms[0].acked) {
        memcpy(path, m->arms[0].path, sizeof path);
        id = m->arms[0].id;
        memmove(m->arms, m->arms + 1, (size_t)(m->narms - 1) * sizeof *m->arms);
        m->narms--;
    }
    promote_locked(m, gp__now_ms()); /* the room it left goes to a held knock */
    pthread_mutex_unlock(&m->mu);
    send_acks(m);
    if (path[0]) {
        LOGF(m, GP_LOG_DEBUG, "grpc mux: sending conn to brokered listener, id %u", (unsigned)id);
    } else if (m->main_path[0]) {
        memcpy(path, m->main_path, sizeof path);
        LOGF(m, GP_LOG_DEBUG, "%s", "grpc mux: sending conn to default listener");
    } else {
        /* As go-plugin's host: a stream nobody knocked for is not taken. */
        LOGF(m, GP_LOG_WARN, "grpc mux: refused stream %u: the peer opened it without a knock",
             (unsigned)gp__mux_stream_id(st));
        gp__mux_stream_reset(st);
        gp__mux_stream_free(st);
        return;
    }
    int fd = -1;
    char err[256];
    if (gp__net_dial("unix", path, 2000, 0, &fd, err, sizeof err) != GP_OK) {
        LOGF(m, GP_LOG_WARN, "grpc mux: stream %u: %s", (unsigned)gp__mux_stream_id(st), err);
        gp__mux_stream_reset(st);
        gp__mux_stream_free(st);
        return;
    }
    if (bridge_start(m, st, fd, -1, NULL, err, sizeof err) != GP_OK)
        LOGF(m, GP_LOG_WARN, "%s", err);
}

static void set_err(gp__grpc_mux *m, const char *why)
{
    pthread_mutex_lock(&m->mu);
    if (!m->err[0])
        snprintf(m->err, sizeof m->err, "%s", why && *why ? why : "session closed");
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

/* Plugin: the host's one raw connection, within GP__MUX_CONNECT_MS. */
static int accept_raw(gp__grpc_mux *m)
{
    int64_t end = gp__now_ms() + GP__MUX_CONNECT_MS;
    int fd = -1;
    while (fd < 0 && gp__now_ms() < end) {
        pthread_mutex_lock(&m->mu);
        int closing = m->closing;
        pthread_mutex_unlock(&m->mu);
        if (closing)
            break;
        struct pollfd p = {.fd = m->lfd, .events = POLLIN};
        if (poll(&p, 1, SLICE_MS) > 0)
            fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);
    }
    /* go-plugin serves exactly one raw connection. */
    close(m->lfd);
    m->lfd = -1;
    return fd;
}

static void *run(void *arg)
{
    gp__grpc_mux *m = arg;
    if (m->server) {
        LOGF(m, GP_LOG_DEBUG, "%s", "grpc mux: accepting initial connection");
        int fd = accept_raw(m);
        gp__mux_session *s = NULL;
        if (fd < 0) {
            set_err(m, "error establishing yamux session: timed out waiting for connection "
                       "to be established");
        } else if (gp__mux_session_new(fd, GP_MUX_SERVER, &m->mc, &s) != GP_OK) {
            close(fd);
            set_err(m, "error establishing yamux session: out of memory or threads");
        } else {
            LOGF(m, GP_LOG_DEBUG, "%s", "grpc mux: initial server connection accepted");
        }
        pthread_mutex_lock(&m->mu);
        m->s = s;
        int closing = m->closing;
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
        if (!s || closing) {
            if (!s) {
                pthread_mutex_lock(&m->mu);
                LOGF(m, GP_LOG_ERROR, "grpc mux: %s", m->err);
                pthread_mutex_unlock(&m->mu);
            }
            if (!closing && m->ended)
                m->ended(m->ended_ctx);
            return NULL;
        }
    }
    for (;;) {
        gp__mux_stream *st = NULL;
        if (gp__mux_accept(m->s, -1, &st) != GP_OK)
            break;
        route(m, st);
    }
    set_err(m, gp__mux_session_error(m->s));
    pthread_mutex_lock(&m->mu);
    int closing = m->closing;
    pthread_mutex_unlock(&m->mu);
    if (!closing) {
        LOGF(m, GP_LOG_DEBUG, "grpc mux: session ended: %s", m->err);
        if (m->ended)
            m->ended(m->ended_ctx);
    }
    return NULL;
}

/* ---- API ----------------------------------------------------------------- */

static void mux_dealloc(gp__grpc_mux *m)
{
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    pthread_cond_destroy(&m->expiry_cv);
    free(m->arms);
    free(m->unsent);
    free(m);
}

static gp__grpc_mux *mux_alloc(const gp__grpc_mux_opts *o)
{
    gp__grpc_mux *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    gp__cond_init_monotonic(&m->cv);
    gp__cond_init_monotonic(&m->expiry_cv);
    if (o && o->logger) {
        m->log = *o->logger;
        m->has_log = 1;
    }
    snprintf(m->log_name, sizeof m->log_name, "%s", o && o->log_name ? o->log_name : "grpc-mux");
    if (o && o->main_path)
        snprintf(m->main_path, sizeof m->main_path, "%s", o->main_path);
    m->ended = o ? o->ended : NULL;
    m->ended_ctx = o ? o->ended_ctx : NULL;
    m->lfd = -1;
    m->max_bridges = o && o->max_bridges > 0 ? o->max_bridges : GP__MUX_MAX_BRIDGES;
    m->mc.max_streams = o ? o->max_streams : 0;
    m->cap_arms = GP__MUX_MAX_ARMED + m->max_bridges;
    m->arms = calloc((size_t)m->cap_arms, sizeof *m->arms);
    m->unsent = calloc(2 * (size_t)m->cap_arms, sizeof *m->unsent);
    if (!m->arms || !m->unsent) {
        mux_dealloc(m);
        return NULL;
    }
    return m;
}

gp_err gp__grpc_mux_client(int fd, const gp__grpc_mux_opts *o, gp__grpc_mux **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    gp__grpc_mux *m = mux_alloc(o);
    if (!m || gp__mux_session_new(fd, GP_MUX_CLIENT, &m->mc, &m->s) != GP_OK) {
        if (m)
            mux_dealloc(m);
        close(fd);
        snprintf(err, errlen, "grpc mux: cannot start the yamux session (memory or threads)");
        return GP_ESYS;
    }
    LOGF(m, GP_LOG_DEBUG, "%s", "grpc mux: client muxer connected");
    if (pthread_create(&m->thread, NULL, run, m) != 0) {
        gp__mux_session_free(m->s);
        mux_dealloc(m);
        snprintf(err, errlen, "grpc mux: cannot start a thread");
        return GP_ESYS;
    }
    m->thread_started = 1;
    *out = m;
    return GP_OK;
}

gp_err gp__grpc_mux_server(int lfd, const gp__grpc_mux_opts *o, gp__grpc_mux **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    gp__grpc_mux *m = mux_alloc(o);
    if (!m) {
        close(lfd);
        snprintf(err, errlen, "grpc mux: out of memory");
        return GP_ENOMEM;
    }
    m->server = 1;
    m->lfd = lfd;
    if (pthread_create(&m->thread, NULL, run, m) != 0) {
        close(lfd);
        mux_dealloc(m);
        snprintf(err, errlen, "grpc mux: cannot start a thread");
        return GP_ESYS;
    }
    m->thread_started = 1;
    *out = m;
    return GP_OK;
}

/* The session, or NULL (with words) when there is none to open on. A
 * plugin's may still be starting: wait for it as long as the host may take
 * to connect. */
static gp__mux_session *session(gp__grpc_mux *m, char *err, size_t errlen)
{
    pthread_mutex_lock(&m->mu);
    struct timespec end = gp__deadline_in(GP__MUX_CONNECT_MS);
    while (!m->s && !m->err[0] && !m->closing && !gp__deadline_passed(&end))
        pthread_cond_timedwait(&m->cv, &m->mu, &end);
    gp__mux_session *s = m->closing ? NULL : m->s;
    if (!s)
        snprintf(err, errlen, "grpc mux: no session: %s",
                 m->err[0] ? m->err : "the host has not connected yet");
    pthread_mutex_unlock(&m->mu);
    return s;
}

/* Opens a stream and, with accept_ms > 0, waits for the peer's yamux ACK:
 * it comes from the peer's accept loop, which routes the stream to the
 * knocked id's server (spending the armed knock) right there. A dial that
 * returns only then never lets the peer's armed knocks pile up, however
 * many dials follow. */
static gp_err open_accepted(gp__grpc_mux *m, gp__mux_session *s, int accept_ms,
                            gp__mux_stream **out, char *err, size_t errlen)
{
    *out = NULL;
    gp__mux_stream *st = NULL;
    if (gp__mux_open(s, &st) != GP_OK) {
        snprintf(err, errlen, "grpc mux: opening a stream: %s", gp__mux_session_error(s));
        return GP_ECLOSED;
    }
    if (accept_ms <= 0) {
        *out = st;
        return GP_OK;
    }
    int reset = 0;
    gp_err e = gp__mux_stream_wait_accepted(st, accept_ms, &reset);
    if (e == GP_OK) {
        *out = st;
        return GP_OK;
    }
    unsigned id = (unsigned)gp__mux_stream_id(st);
    if (e == GP_ETIMEDOUT)
        snprintf(err, errlen,
                 "grpc mux: expected the peer to accept stream %u (its yamux ACK) within %d "
                 "ms, but nothing came",
                 id, accept_ms);
    else if (reset)
        snprintf(err, errlen,
                 "grpc mux: expected the peer to accept stream %u (its yamux ACK), but it "
                 "reset the stream (it had no knock armed for it, or no room for another "
                 "connection)",
                 id);
    else
        snprintf(err, errlen,
                 "grpc mux: expected the peer to accept stream %u (its yamux ACK), but the "
                 "session ended: %s",
                 id, gp__mux_session_error(s));
    LOGF(m, GP_LOG_WARN, "%s", err);
    /* A late ACK must find nothing: the peer's side of it is reset too. */
    gp__mux_stream_reset(st);
    gp__mux_stream_free(st);
    return e == GP_ETIMEDOUT ? GP_ETIMEDOUT : GP_ECLOSED;
}

gp_err gp__grpc_mux_open_fd(gp__grpc_mux *m, int accept_ms, int *fd, char *err, size_t errlen)
{
    *fd = -1;
    gp__mux_session *s = session(m, err, errlen);
    if (!s)
        return GP_ECLOSED;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errlen, "grpc mux: socketpair: %s", strerror(errno));
        return GP_ESYS;
    }
    gp__mux_stream *st = NULL;
    gp_err e = open_accepted(m, s, accept_ms, &st, err, errlen);
    if (e) {
        close(sv[0]);
        close(sv[1]);
        return e;
    }
    e = bridge_start(m, st, sv[1], -1, NULL, err, errlen);
    if (e) {
        close(sv[0]);
        return e;
    }
    *fd = sv[0];
    return GP_OK;
}

gp_err gp__grpc_mux_wait_session(gp__grpc_mux *m, char *err, size_t errlen)
{
    return session(m, err, errlen) ? GP_OK : GP_ECLOSED;
}

gp_err gp__grpc_mux_open_path(gp__grpc_mux *m, int accept_ms, char *path, size_t cap, char *err,
                              size_t errlen)
{
    gp__mux_session *s = session(m, err, errlen);
    if (!s)
        return GP_ECLOSED;
    char p[108];
    int lfd = -1;
    gp_err e = gp__net_unix_path(NULL, p, sizeof p, err, errlen);
    if (!e)
        e = gp__net_listen_unix(p, NULL, &lfd, err, errlen);
    if (e)
        return e;
    gp__mux_stream *st = NULL;
    e = open_accepted(m, s, accept_ms, &st, err, errlen);
    if (e) {
        close(lfd);
        unlink(p);
        return e;
    }
    e = bridge_start(m, st, -1, lfd, p, err, errlen);
    if (!e)
        snprintf(path, cap, "%s", p);
    return e;
}

void gp__grpc_mux_on_ack(gp__grpc_mux *m, void (*ack)(void *ctx, uint32_t id), void *ctx)
{
    pthread_mutex_lock(&m->mu);
    m->ack = ack;
    m->ack_ctx = ctx;
    pthread_mutex_unlock(&m->mu);
}

gp_err gp__grpc_mux_arm(gp__grpc_mux *m, uint32_t id, const char *path, int wait_ms)
{
    pthread_mutex_lock(&m->mu);
    int64_t now = gp__now_ms();
    prune_locked(m, now); /* expired arms make room */
    promote_locked(m, now);
    gp_err e = GP_OK;
    if (m->closing || m->err[0])
        e = GP_ECLOSED;
    else if (m->narms >= m->cap_arms)
        e = GP_ESTATE;
    else {
        armed *a = &m->arms[m->narms++];
        a->id = id;
        snprintf(a->path, sizeof a->path, "%s", path);
        a->acked = 0;
        a->deadline_ms = now + (wait_ms > 0 ? wait_ms : GP__MUX_ARM_MS);
        promote_locked(m, now); /* live at once if there is room */
        if (!a->acked) {
            LOGF(m, GP_LOG_DEBUG,
                 "grpc mux: knock for id %u held: %d knocks wait for their streams", (unsigned)id,
                 GP__MUX_MAX_ARMED);
            expiry_ensure_locked(m);
        }
    }
    pthread_mutex_unlock(&m->mu);
    send_acks(m);
    return e;
}

void gp__grpc_mux_error(gp__grpc_mux *m, char *buf, size_t cap)
{
    pthread_mutex_lock(&m->mu);
    snprintf(buf, cap, "%s", m->err);
    pthread_mutex_unlock(&m->mu);
}

int gp__grpc_mux_bridges(gp__grpc_mux *m)
{
    reap(m, 0);
    pthread_mutex_lock(&m->mu);
    int n = m->nbridges;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void gp__grpc_mux_free(gp__grpc_mux *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->closing = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_cond_broadcast(&m->expiry_cv);
    gp__mux_session *s = m->s;
    /* Wake the pumps blocked on local sockets. */
    for (bridge *b = m->bridges; b; b = b->next)
        if (b->fd >= 0)
            shutdown(b->fd, SHUT_RDWR);
    pthread_mutex_unlock(&m->mu);
    if (s)
        gp__mux_session_close(s); /* wakes the stream pumps and the accept loop */
    if (m->thread_started)
        pthread_join(m->thread, NULL);
    if (m->expiry_started) /* closing: no new one starts */
        pthread_join(m->expiry, NULL);
    /* The plugin's thread may have set the session after we looked. */
    pthread_mutex_lock(&m->mu);
    s = m->s;
    pthread_mutex_unlock(&m->mu);
    if (s)
        gp__mux_session_close(s);
    reap(m, 1);
    gp__mux_session_free(s);
    if (m->lfd >= 0)
        close(m->lfd);
    if (m->server && m->main_path[0]) /* core leaves its socket file */
        unlink(m->main_path);
    mux_dealloc(m);
}
