/* The supervisor: one thread owns the plugin's client, watches it (process
 * exit through a pidfd, health pings on a helper thread with a deadline)
 * and restarts it with the backoff machine. Stop wakes it through an
 * eventfd; only this thread ever starts or frees a client, so a stop can
 * never race a restart. */
#include <goplugin/supervisor.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "transport/base/clock.h"
#include "transport/base/errf.h"
#include "transport/process/spawn.h"

#define DEFAULT_HEALTH_INTERVAL_MS 5000
#define DEFAULT_HEALTH_TIMEOUT_MS 2000
/* Without a pidfd, how often the exit is looked for. */
#define EXIT_POLL_MS 100
/* After the pidfd fires, how long the client's owner thread may take to
 * reap before we describe the exit without a status. */
#define REAP_WAIT_MS 2000
#define REASON_MAX 1024

struct gp_supervisor {
    pthread_mutex_t mu;
    const gp_client_config *client_cfg;
    gp_backoff_config backoff;
    int interval_ms, timeout_ms;
    gp_sup_callback on_event;
    void *ctx;
    int wake_fd;

    /* Guarded by mu. */
    bool stop;
    bool running;        /* the thread was started and not joined */
    gp_client *starting; /* the client being started, for stop to abort */
    atomic_uint starts;
    pthread_t thread;
    pthread_mutex_t stop_mu; /* one stop at a time */
};

/* One health ping on its own thread, so a hung plugin cannot hang us. */
typedef struct pinger {
    gp_supervisor *s;
    gp_conn *conn;
    pthread_t thread;
    atomic_bool done;
    gp_err rc;
    gp_status st;
} pinger;

static void wake(gp_supervisor *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->wake_fd, &one, sizeof one);
    (void)w;
}

static bool stopping(gp_supervisor *s)
{
    pthread_mutex_lock(&s->mu);
    bool stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void emit(gp_supervisor *s, gp_sup_event_kind kind, gp_client *c, gp_conn *conn,
                 const char *reason, int64_t delay_ms)
{
    if (!s->on_event)
        return;
    unsigned starts = atomic_load(&s->starts);
    gp_sup_event ev = {.kind = kind,
                       .client = c,
                       .conn = conn,
                       .reason = reason ? reason : "",
                       .delay_ms = delay_ms,
                       .starts = starts};
    s->on_event(&ev, s->ctx);
}

static void *ping_main(void *arg)
{
    pinger *p = arg;
    memset(&p->st, 0, sizeof p->st);
    p->rc = gp_conn_ping(p->conn, &p->st);
    atomic_store(&p->done, true);
    wake(p->s);
    return NULL;
}

static pinger *ping_start(gp_supervisor *s, gp_conn *conn)
{
    pinger *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->s = s;
    p->conn = conn;
    atomic_init(&p->done, false);
    if (pthread_create(&p->thread, NULL, ping_main, p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

static void ping_join(pinger *p)
{
    if (!p)
        return;
    pthread_join(p->thread, NULL);
    free(p);
}

static void drain_wake(gp_supervisor *s)
{
    uint64_t v;
    ssize_t r = read(s->wake_fd, &v, sizeof v);
    (void)r;
}

/* Watch a running plugin until it exits, fails a health check, or stop is
 * asked. Fills reason; *ping is a ping still in flight (join it after the
 * kill, which cancels it). */
static void watch(gp_supervisor *s, gp_client *c, gp_conn *conn, char *reason, pinger **ping)
{
    int pidfd = gp__pidfd_open(gp_client_pid(c));
    /* Reaped before the open: the pid may name someone else now. */
    if (pidfd >= 0 && gp_client_exited(c)) {
        close(pidfd);
        pidfd = -1;
    }
    pinger *pg = NULL;
    int64_t next_ping = gp__now_ms() + s->interval_ms, ping_deadline = 0;
    for (;;) {
        if (stopping(s)) {
            snprintf(reason, REASON_MAX, "stopped");
            break;
        }
        int64_t now = gp__now_ms();
        int64_t until = -1;
        if (pg)
            until = ping_deadline - now;
        else if (s->interval_ms >= 0)
            until = next_ping - now;
        if (until < 0 && (pg || s->interval_ms >= 0))
            until = 0;
        if (pidfd < 0 && (until < 0 || until > EXIT_POLL_MS))
            until = EXIT_POLL_MS;
        struct pollfd fds[2] = {{.fd = s->wake_fd, .events = POLLIN},
                                {.fd = pidfd, .events = POLLIN}};
        int n = poll(fds, pidfd >= 0 ? 2 : 1, until > INT32_MAX ? INT32_MAX : (int)until);
        if (n < 0 && errno != EINTR)
            until = EXIT_POLL_MS; /* cannot happen with valid fds; do not spin */
        if (n > 0 && fds[0].revents)
            drain_wake(s);
        bool exited = pidfd >= 0 ? (n > 0 && fds[1].revents) : gp_client_exited(c);
        if (exited) {
            char why[256];
            if (!gp_client_wait_exit(c, REAP_WAIT_MS, why, sizeof why))
                snprintf(why, sizeof why, "exited");
            snprintf(reason, REASON_MAX, "%s", why);
            break;
        }
        now = gp__now_ms();
        if (pg && atomic_load(&pg->done)) {
            gp_err rc = pg->rc;
            char msg[sizeof pg->st.msg];
            snprintf(msg, sizeof msg, "%s", pg->st.msg[0] ? pg->st.msg : gp_strerror(rc));
            ping_join(pg);
            pg = NULL;
            if (rc != GP_OK) {
                /* A ping that failed because the process just died is an exit. */
                char why[256];
                if (gp_client_wait_exit(c, 0, why, sizeof why))
                    snprintf(reason, REASON_MAX, "%s", why);
                else
                    snprintf(reason, REASON_MAX, "health check failed: %s", msg);
                break;
            }
            next_ping = now + s->interval_ms;
        } else if (pg && now >= ping_deadline) {
            snprintf(reason, REASON_MAX, "health check failed: no answer within %d ms",
                     s->timeout_ms);
            break;
        } else if (!pg && s->interval_ms >= 0 && now >= next_ping) {
            pg = ping_start(s, conn);
            ping_deadline = now + s->timeout_ms;
            if (!pg)
                next_ping = now + s->interval_ms; /* no thread: try again later */
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    *ping = pg;
}

/* Sleep delay_ms unless stop is asked; false if it was. */
static bool backoff_wait(gp_supervisor *s, int64_t delay_ms)
{
    int64_t deadline = gp__now_ms() + delay_ms;
    for (;;) {
        if (stopping(s))
            return false;
        int64_t left = deadline - gp__now_ms();
        if (left <= 0)
            return true;
        struct pollfd pfd = {.fd = s->wake_fd, .events = POLLIN};
        if (poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left) > 0)
            drain_wake(s);
    }
}

/* One plugin life: start, STARTED, watch, kill, EXITED, free. */
static void one_life(gp_supervisor *s, gp_backoff *b)
{
    char reason[REASON_MAX] = "";
    gp_client *c = NULL;
    gp_status cst;
    gp_err rc = gp_client_new(s->client_cfg, &c, &cst);
    atomic_fetch_add(&s->starts, 1);
    pthread_mutex_lock(&s->mu);
    s->starting = rc == GP_OK ? c : NULL;
    bool stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    gp_conn *conn = NULL;
    if (rc == GP_OK && !stop)
        rc = gp_client_connect(c, &conn, &cst);
    else if (rc == GP_OK)
        rc = GP_ESTATE;
    /* From here stop no longer reaches into c: this thread kills it. */
    pthread_mutex_lock(&s->mu);
    s->starting = NULL;
    stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    gp_backoff_started(b, gp__now_ms());
    /* A stop that came during the start may have killed c under us (even
     * after the connect succeeded): its conn is not ours to report. */
    if (rc != GP_OK || stop) {
        if (stop)
            snprintf(reason, sizeof reason, "stopped");
        else
            snprintf(reason, sizeof reason, "start failed: %s", cst.msg);
        gp_client_kill(c);
        emit(s, GP_SUP_EXITED, c, NULL, reason, 0);
        gp_client_free(c);
        return;
    }
    emit(s, GP_SUP_STARTED, c, conn, NULL, 0);
    pinger *pg = NULL;
    watch(s, c, conn, reason, &pg);
    /* Graceful when it is alive (stop, failed health check), a reap when
     * it is not; either way the conn is closed, which ends a hung ping. */
    gp_client_kill(c);
    ping_join(pg);
    emit(s, GP_SUP_EXITED, c, conn, reason, 0);
    gp_client_free(c);
}

static void *supervise_main(void *arg)
{
    gp_supervisor *s = arg;
    gp_backoff b;
    gp_backoff_init(&b, &s->backoff, NULL); /* checked by gp_supervisor_new */
    for (;;) {
        one_life(s, &b);
        if (stopping(s))
            break;
        int64_t delay = gp_backoff_exited(&b, gp__now_ms());
        emit(s, GP_SUP_RESTARTING, NULL, NULL, NULL, delay);
        if (!backoff_wait(s, delay))
            break;
    }
    emit(s, GP_SUP_STOPPED, NULL, NULL, NULL, 0);
    return NULL;
}

/* An invalid config: the words go to st and to the client's logger. */
static gp_err bad_config(const gp_client_config *cc, gp_status *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static gp_err bad_config(const gp_client_config *cc, gp_status *st, const char *fmt, ...)
{
    char msg[GP_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cc)
        gp_logf(&cc->logger, GP_LOG_ERROR, "goplugin", NULL, 0, "%s", msg);
    return gp__status_setf(st, GP_EINVAL, "%s", msg);
}

gp_err gp_supervisor_new(const gp_supervisor_config *cfg, gp_supervisor **out, gp_status *st)
{
    gp__status_clear(st);
    if (!out)
        return bad_config(NULL, st, "gp_supervisor_new: out is NULL");
    *out = NULL;
    if (!cfg || !cfg->client)
        return bad_config(NULL, st, "invalid supervisor config: %s is NULL",
                          cfg ? "client" : "the config");
    const gp_client_config *cc = cfg->client;
    if (cc->reattach || cc->detached)
        return bad_config(cc, st,
                          "invalid supervisor config: client: expected a plugin to launch, "
                          "got %s",
                          cc->reattach ? "a reattach config" : "a detached client");
    /* Every restart makes a client from cfg->client: check it once now. */
    gp_client *probe = NULL;
    gp_status cst;
    gp_err rc = gp_client_new(cc, &probe, &cst);
    if (rc)
        return gp__status_setf(st, rc, "invalid supervisor config: client: %s", cst.msg);
    gp_client_free(probe);
    gp_backoff b;
    gp_status bst;
    if (gp_backoff_init(&b, cfg->backoff, &bst) != GP_OK)
        return bad_config(cc, st, "invalid supervisor config: %s", bst.msg);
    if (cfg->health_timeout_ms < 0)
        return bad_config(cc, st,
                          "invalid supervisor config: health_timeout_ms: expected >= 0, got %d",
                          cfg->health_timeout_ms);
    gp_supervisor *s = calloc(1, sizeof *s);
    if (!s)
        return gp__status_setf(st, GP_ENOMEM, "supervisor: out of memory");
    atomic_init(&s->starts, 0);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0) {
        int e = errno;
        free(s);
        return gp__status_setf(st, GP_ESYS, "supervisor: eventfd: %s", strerror(e));
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->stop_mu, NULL);
    s->client_cfg = cc;
    s->backoff = b.cfg;
    s->interval_ms = cfg->health_interval_ms == 0  ? DEFAULT_HEALTH_INTERVAL_MS
                     : cfg->health_interval_ms < 0 ? -1
                                                   : cfg->health_interval_ms;
    s->timeout_ms = cfg->health_timeout_ms ? cfg->health_timeout_ms : DEFAULT_HEALTH_TIMEOUT_MS;
    s->on_event = cfg->on_event;
    s->ctx = cfg->ctx;
    *out = s;
    return GP_OK;
}

gp_err gp_supervisor_start(gp_supervisor *s, gp_status *st)
{
    gp__status_clear(st);
    if (!s)
        return gp__status_setf(st, GP_EINVAL, "gp_supervisor_start: NULL supervisor");
    pthread_mutex_lock(&s->mu);
    if (s->running || s->stop) {
        bool stopped = s->stop;
        pthread_mutex_unlock(&s->mu);
        return gp__status_setf(st, GP_ESTATE, "supervisor: %s",
                               stopped ? "stopped for good" : "already started");
    }
    int rc = pthread_create(&s->thread, NULL, supervise_main, s);
    s->running = rc == 0;
    pthread_mutex_unlock(&s->mu);
    if (rc != 0)
        return gp__status_setf(st, GP_ESYS, "supervisor: no thread: %s", strerror(rc));
    return GP_OK;
}

void gp_supervisor_stop(gp_supervisor *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->stop_mu);
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    bool running = s->running;
    /* A start in progress (up to the start timeout) ends at once: the
     * client handles a kill from another thread while it starts. The
     * supervisor thread waits for mu before it frees that client. */
    if (s->starting)
        gp_client_kill(s->starting);
    pthread_mutex_unlock(&s->mu);
    wake(s);
    if (running) {
        pthread_join(s->thread, NULL);
        pthread_mutex_lock(&s->mu);
        s->running = false;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&s->stop_mu);
}

void gp_supervisor_free(gp_supervisor *s)
{
    if (!s)
        return;
    gp_supervisor_stop(s);
    close(s->wake_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->stop_mu);
    free(s);
}

unsigned gp_supervisor_starts(const gp_supervisor *s)
{
    return s ? atomic_load(&s->starts) : 0;
}
