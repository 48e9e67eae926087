/* The manager's per-plugin thread: adopt or launch, publish the run file,
 * wait for the exit, back off, launch again. Only this thread starts,
 * kills or frees its clients; stop reaches a start in progress through
 * gp_client_kill, which the client allows from another thread. */
#include "transport/store/manager_runner.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <goplugin/log.h>
#include <goplugin/reattach.h>

#include "transport/base/clock.h"
#include "transport/base/errf.h"
#include "transport/base/sync.h"
#include "transport/store/log_rotate.h"

/* How often the exit wait looks for a stop. */
#define WATCH_STEP_MS 100
/* How often a running plugin's log files are held to their cap: a file
 * can pass it by what the plugin writes in this time. */
#define LOG_CHECK_MS 1000
/* After a cut that failed (or was outpaced). */
#define LOG_RETRY_MS 60000
#define REASON_MAX 1024

struct gp__runner {
    gp__runner_spec spec;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Guarded by mu. */
    bool stop, leave;
    gp_client *starting; /* being started: stop kills it */
    pid_t pid;
    bool first_done;
    bool first_cut; /* it ended because of a stop */
    gp_err first_rc;
    char first_msg[GP_ERRMSG_MAX];
};

static void emit(gp__runner *r, const gp__runner_event *ev)
{
    if (r->spec.on_event)
        r->spec.on_event(ev, r->spec.ctx);
}

static bool stopping(gp__runner *r)
{
    pthread_mutex_lock(&r->mu);
    bool s = r->stop;
    pthread_mutex_unlock(&r->mu);
    return s;
}

static void first_result(gp__runner *r, gp_err rc, const char *msg, bool cut)
{
    pthread_mutex_lock(&r->mu);
    if (!r->first_done) {
        r->first_done = true;
        r->first_cut = cut;
        r->first_rc = rc;
        snprintf(r->first_msg, sizeof r->first_msg, "%s", msg ? msg : "");
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

static void logw(gp__runner *r, gp_log_level lv, const char *fmt, const char *a, const char *b)
{
    gp_logf(&r->spec.client->logger, lv, "manager", NULL, 0, fmt, a, b);
}

static void crash_point(gp__runner *r, const char *where)
{
    if (r->spec.crash_point)
        r->spec.crash_point(where);
}

static void drop_run_file(gp__runner *r)
{
    if (unlink(r->spec.run_file) != 0 && errno != ENOENT)
        logw(r, GP_LOG_WARN, "remove %s: %s", r->spec.run_file, strerror(errno));
}

/* A deadline for every call on our connections: the only call is the
 * health ping, and a hung plugin must not hang a stop that waits for it. */
static int call_deadline(const gp__runner *r)
{
    return r->spec.health_timeout_ms ? r->spec.health_timeout_ms : 2000;
}

/* A client for the process named by the run file, connected; NULL when
 * there is none or it does not answer (the stale file is removed). */
static gp_client *adopt(gp__runner *r, gp_conn **conn)
{
    gp_reattach_config rc;
    gp_status st = {0};
    gp_err e = gp_reattach_file_read(r->spec.run_file, &rc, &st);
    if (e == GP_ENOTFOUND)
        return NULL;
    if (e) {
        logw(r, GP_LOG_WARN, "run file %s: %s; launching anew", r->spec.run_file, st.msg);
        drop_run_file(r);
        return NULL;
    }
    const gp_client_config *base = r->spec.client;
    gp_client_config cfg = {
        .reattach = &rc,
        .allowed_protocols = rc.protocol == GP_PROTO_NONE ? GP_PROTO_NETRPC : rc.protocol,
        .start_timeout_ms = base->start_timeout_ms,
        .kill_grace_ms = base->kill_grace_ms,
        .call_timeout_ms = call_deadline(r),
        .logger = base->logger,
        .detached = true, /* a stop may leave it running again */
    };
    gp_client *c = NULL;
    e = gp_client_new(&cfg, &c, &st);
    gp_reattach_config_clear(&rc);
    /* Not offered to stop as `starting`: a kill would stop a plugin that a
     * live-restore stop means to leave running. A dial is short. */
    if (e == GP_OK)
        e = gp_client_connect(c, conn, &st);
    if (e == GP_OK)
        return c;
    /* Nothing was signalled: a failed reattach kills nothing. */
    gp_client_free(c);
    if (!stopping(r)) {
        logw(r, GP_LOG_WARN, "cannot adopt the plugin in %s: %s; launching anew", r->spec.run_file,
             st.msg);
        drop_run_file(r);
    }
    return NULL;
}

/* Launch. On failure *code/why say why and NULL comes back. */
static gp_client *launch(gp__runner *r, gp_conn **conn, gp_err *code, char *why)
{
    /* The previous plugin is gone: nothing writes the files now. */
    gp__log_rotate_rename(r->spec.client->stdout_file, r->spec.log_rotate_bytes,
                          &r->spec.client->logger);
    gp__log_rotate_rename(r->spec.client->stderr_file, r->spec.log_rotate_bytes,
                          &r->spec.client->logger);
    gp_client_config cfg = *r->spec.client;
    cfg.reattach = NULL;
    cfg.call_timeout_ms = call_deadline(r);
    cfg.detached = r->spec.live_restore;
    gp_client *c = NULL;
    gp_status st = {0};
    gp_err e = gp_client_new(&cfg, &c, &st);
    if (e == GP_OK) {
        pthread_mutex_lock(&r->mu);
        r->starting = r->stop ? NULL : c;
        bool stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        e = stop ? GP_ESTATE : gp_client_connect(c, conn, &st);
        pthread_mutex_lock(&r->mu);
        r->starting = NULL;
        pthread_mutex_unlock(&r->mu);
        if (e == GP_OK) {
            crash_point(r, "runner: launched, run file not yet written");
            gp_reattach_config ra;
            if (gp_client_reattach_config(c, &ra) != GP_OK)
                e = gp__status_setf(&st, GP_ESTATE, "the plugin has no reattach config");
            else if (!r->spec.allow_tcp && ra.network && strcmp(ra.network, "tcp") == 0)
                e = gp__status_setf(&st, GP_EUNSUPPORTED,
                                    "the plugin serves on tcp %s without the \"tcp\" "
                                    "privilege; stopped",
                                    ra.address);
            else if ((e = gp_reattach_file_write(r->spec.run_file, &ra, &st)) != GP_OK) {
                char words[GP_ERRMSG_MAX];
                snprintf(words, sizeof words, "%s", st.msg);
                gp__status_setf(&st, e, "publish %s: %s", r->spec.run_file, words);
            }
        }
    }
    if (e == GP_OK) {
        crash_point(r, "runner: run file written");
        return c;
    }
    *code = e;
    snprintf(why, REASON_MAX, "start failed: %s", st.msg);
    gp_client_kill(c);
    gp_client_free(c);
    return NULL;
}

/* One health ping on a thread of its own, so a hung plugin cannot hang
 * the runner; the runner joins it after the kill, which ends the call. */
typedef struct pinger {
    gp_conn *conn;
    pthread_t thread;
    atomic_bool done;
    gp_err rc;
    gp_status st;
} pinger;

static void *ping_main(void *arg)
{
    pinger *p = arg;
    p->rc = gp_conn_ping(p->conn, &p->st);
    atomic_store(&p->done, true);
    return NULL;
}

static pinger *ping_start(gp_conn *conn)
{
    pinger *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
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
    if (p) {
        pthread_join(p->thread, NULL);
        free(p);
    }
}

/* Held to the cap while the plugin runs (launched or adopted: the paths
 * are the record's either way). The next look in ms: a cut that failed
 * said why in a warning, and is not tried (nor said) again every second. */
static int cut_logs(gp__runner *r)
{
    const gp_client_config *cc = r->spec.client;
    int o = gp__log_rotate_cut(cc->stdout_file, r->spec.log_rotate_bytes, &cc->logger);
    int e = gp__log_rotate_cut(cc->stderr_file, r->spec.log_rotate_bytes, &cc->logger);
    return o < 0 || e < 0 ? LOG_RETRY_MS : LOG_CHECK_MS;
}

/* Wait for the exit, a failed health check, or a stop; true if the
 * plugin is to be counted as exited (why says how). *pg is a ping still
 * in flight, to join after the kill. */
static bool watch(gp__runner *r, gp_client *c, gp_conn *conn, char *why, pinger **pg)
{
    int every = r->spec.health_interval_ms == 0 ? 5000 : r->spec.health_interval_ms;
    int limit = call_deadline(r);
    int64_t next = gp__now_ms() + every, deadline = 0, next_log = gp__now_ms() + LOG_CHECK_MS;
    pinger *p = NULL;
    bool exited = false;
    for (;;) {
        if (stopping(r))
            break;
        char w[256];
        if (gp_client_wait_exit(c, WATCH_STEP_MS, w, sizeof w)) {
            snprintf(why, REASON_MAX, "%s", w[0] ? w : "exited");
            exited = true;
            break;
        }
        int64_t now = gp__now_ms();
        if (now >= next_log)
            next_log = now + cut_logs(r);
        if (every < 0 || !conn)
            continue;
        if (p && atomic_load(&p->done)) {
            gp_err rc = p->rc;
            char msg[GP_ERRMSG_MAX];
            snprintf(msg, sizeof msg, "%s", p->st.msg[0] ? p->st.msg : gp_strerror(rc));
            ping_join(p);
            p = NULL;
            if (rc != GP_OK && !gp_client_wait_exit(c, 0, w, sizeof w)) {
                snprintf(why, REASON_MAX, "health check failed: %s", msg);
                exited = true;
                break;
            }
            next = now + every;
        } else if (p && now >= deadline) {
            snprintf(why, REASON_MAX, "health check failed: no answer within %d ms", limit);
            exited = true;
            break;
        } else if (!p && now >= next) {
            p = ping_start(conn);
            deadline = now + limit;
            if (!p)
                next = now + every; /* no thread now: later */
        }
    }
    *pg = p;
    return exited;
}

/* One life. Returns false when the runner must not launch again (a stop,
 * or a start that cannot succeed). */
static bool one_life(gp__runner *r, gp_backoff *b, bool try_adopt)
{
    char why[REASON_MAX] = "";
    gp_err code = GP_OK;
    gp_conn *conn = NULL;
    gp_client *c = try_adopt ? adopt(r, &conn) : NULL;
    bool adopted = c != NULL;
    if (!c && !stopping(r))
        c = launch(r, &conn, &code, why);
    gp_backoff_started(b, gp__now_ms());
    if (!c) {
        /* Looked at once. A verdict on the blob stands whatever else
         * happened; any other failure during a stop is the stop's doing. */
        bool cut = stopping(r) && code != GP_ECHECKSUM && code != GP_EUNSUPPORTED;
        if (cut && !code)
            return false;
        if (cut)
            snprintf(why, REASON_MAX, "start failed: stopped");
        /* A start cut short by a stop did what was asked: no error (the
         * event's code sets the log level); the first result still fails. */
        gp__runner_event ev = {.kind = GP__RUNNER_EXIT, .reason = why, .code = cut ? GP_OK : code};
        emit(r, &ev);
        first_result(r, code && !cut ? code : GP_ESTATE, why, cut);
        return code != GP_ECHECKSUM && code != GP_EUNSUPPORTED;
    }
    pid_t pid = gp_client_pid(c);
    pthread_mutex_lock(&r->mu);
    r->pid = pid;
    pthread_mutex_unlock(&r->mu);
    gp__runner_event ev = {.kind = GP__RUNNER_START, .pid = pid, .adopted = adopted};
    emit(r, &ev);
    first_result(r, GP_OK, "", false); /* after the event: a waiter has seen it */
    pinger *pg = NULL;
    bool exited = watch(r, c, conn, why, &pg);
    pthread_mutex_lock(&r->mu);
    bool leave = r->leave;
    pthread_mutex_unlock(&r->mu);
    if (!exited && leave) {
        /* The ping first (its call has a deadline): a free under it would
         * pull the connection from a call still using it. */
        ping_join(pg);
        gp_client_free(c); /* detached: the process and its run file stay */
        pthread_mutex_lock(&r->mu);
        r->pid = 0;
        pthread_mutex_unlock(&r->mu);
        return false;
    }
    if (!exited)
        snprintf(why, sizeof why, "stopped");
    /* The file goes first: a host that reads it now would find a dead
     * address, and the next manager must not adopt a stopping plugin. */
    drop_run_file(r);
    crash_point(r, "runner: run file removed, plugin not yet stopped");
    gp_client_kill(c); /* graceful if alive (a failed health check), a reap if not */
    ping_join(pg);     /* the kill closed the connection: a hung ping has ended */
    gp_client_free(c);
    pthread_mutex_lock(&r->mu);
    r->pid = 0;
    pthread_mutex_unlock(&r->mu);
    gp__runner_event ex = {.kind = GP__RUNNER_EXIT, .pid = pid, .reason = why};
    emit(r, &ex);
    return exited;
}

/* Sleep delay_ms unless a stop comes; false if it did. */
static bool backoff_wait(gp__runner *r, int64_t delay_ms)
{
    struct timespec until = gp__deadline_in(delay_ms);
    pthread_mutex_lock(&r->mu);
    while (!r->stop && !gp__deadline_passed(&until))
        pthread_cond_timedwait(&r->cv, &r->mu, &until);
    bool go = !r->stop;
    pthread_mutex_unlock(&r->mu);
    return go;
}

static void *runner_main(void *arg)
{
    gp__runner *r = arg;
    gp_backoff b;
    gp_backoff_init(&b, &r->spec.backoff, NULL);
    bool try_adopt = r->spec.adopt;
    for (;;) {
        bool again = one_life(r, &b, try_adopt);
        try_adopt = false;
        if (!again || !r->spec.restart || stopping(r))
            break;
        crash_point(r, "runner: exited, before the restart");
        int64_t delay = gp_backoff_exited(&b, gp__now_ms());
        gp__runner_event ev = {.kind = GP__RUNNER_RESTART, .delay_ms = delay};
        emit(r, &ev);
        if (!backoff_wait(r, delay))
            break;
    }
    first_result(r, GP_ESTATE, "stopped", true);
    return NULL;
}

gp_err gp__runner_start(const gp__runner_spec *spec, gp__runner **out, gp_status *st)
{
    gp__status_clear(st);
    gp__runner *r = calloc(1, sizeof *r);
    if (!r)
        return gp__status_setf(st, GP_ENOMEM, "runner: out of memory");
    r->spec = *spec;
    pthread_mutex_init(&r->mu, NULL);
    gp__cond_init_monotonic(&r->cv);
    int e = pthread_create(&r->thread, NULL, runner_main, r);
    if (e != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return gp__status_setf(st, GP_ESYS, "runner: no thread: %s", strerror(e));
    }
    *out = r;
    return GP_OK;
}

gp_err gp__runner_wait_first(gp__runner *r, int timeout_ms, gp_status *st)
{
    gp__status_clear(st);
    struct timespec until = gp__deadline_in(timeout_ms);
    pthread_mutex_lock(&r->mu);
    while (!r->first_done && !gp__deadline_passed(&until))
        pthread_cond_timedwait(&r->cv, &r->mu, &until);
    gp_err rc = r->first_done ? r->first_rc : GP_ETIMEDOUT;
    char msg[GP_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", r->first_done ? r->first_msg : "still starting");
    pthread_mutex_unlock(&r->mu);
    return rc ? gp__status_setf(st, rc, "%s", msg) : GP_OK;
}

bool gp__runner_first_cut(gp__runner *r)
{
    pthread_mutex_lock(&r->mu);
    bool cut = r->first_done && r->first_cut;
    pthread_mutex_unlock(&r->mu);
    return cut;
}

void gp__runner_stop(gp__runner *r, bool leave_running)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    bool was = r->stop;
    r->stop = true;
    r->leave = leave_running;
    /* A launch in progress ends at once, also when plugins are left
     * running: it has no run file yet, so no manager could adopt it. */
    if (r->starting)
        gp_client_kill(r->starting);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (!was)
        pthread_join(r->thread, NULL);
}

pid_t gp__runner_pid(gp__runner *r)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->mu);
    pid_t p = r->pid;
    pthread_mutex_unlock(&r->mu);
    return p;
}

void gp__runner_free(gp__runner *r)
{
    if (!r)
        return;
    gp__runner_stop(r, false);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
