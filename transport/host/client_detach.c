/* Plugins that outlive their host: letting a detached plugin go on
 * gp_client_free, checking a reattach target's identity before we ever
 * signal it; and a plugin's exit: waiting for it, and how it went
 * (gp_client_exit_info). */
#include <goplugin/client.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/base/clock.h"
#include "transport/base/errf.h"
#include "transport/host/client_internal.h"
#include "transport/core/conn.h"
#include "transport/process/pidstat.h"
#include "transport/process/proc.h"

/* Without a pidfd, how often a wait looks at a reattached pid. */
#define PID_POLL_MS 50

gp_err gp__client_verify_pid(gp_client *c, int pidfd)
{
    const gp_reattach_config *r = &c->ra;
    if (r->pid <= 0 || r->start_time == 0)
        return GP_OK; /* nothing recorded to compare (a go-plugin file) */
    uint64_t now = 0;
    gp_err rc = gp__pid_start_time(r->pid, &now);
    if (rc == GP_ENOTFOUND)
        return gp__client_fail(c, GP_ENOTFOUND,
                               "reattach: expected a running plugin with pid %d, got no such "
                               "process",
                               (int)r->pid);
    if (rc)
        return gp__client_fail(c, rc,
                               "reattach: cannot read /proc/%d/stat to check the "
                               "plugin's identity: %s",
                               (int)r->pid, gp_strerror(rc));
    if (now != r->start_time)
        return gp__client_fail(c, GP_ENOTFOUND,
                               "reattach: pid %d is another process now: expected start time "
                               "%llu, got %llu; refusing it (nothing was signalled)",
                               (int)r->pid, (unsigned long long)r->start_time,
                               (unsigned long long)now);
    /* The pidfd was opened before the check: if the process it names still
     * runs, it is the one whose start time we just read. */
    if (pidfd >= 0) {
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        if (poll(&pfd, 1, 0) > 0)
            return gp__client_fail(c, GP_ENOTFOUND,
                                   "reattach: expected a running plugin with pid %d, it has "
                                   "exited",
                                   (int)r->pid);
    }
    return GP_OK;
}

bool gp__client_release(gp_client *c)
{
    if (!c->detached)
        return false;
    pthread_mutex_lock(&c->kill_mu);
    pthread_mutex_lock(&c->conn_mu);
    pthread_mutex_lock(&c->mu);
    c->dying = true;
    gp_conn *conn = c->conn;
    c->conn = NULL;
    struct gp__client_stdio *stdio = c->stdio;
    c->stdio = NULL;
    gp__proc *proc = c->proc;
    c->state = GP__CLIENT_KILLED;
    if (c->ra_pidfd >= 0) {
        close(c->ra_pidfd);
        c->ra_pidfd = -1;
    }
    pthread_mutex_unlock(&c->mu);
    gp__client_stdio_stop(stdio); /* before its conn goes */
    if (conn) {
        gp__client_exit_unwatch(conn);
        gp__conn_close(conn);
    }
    if (proc)
        gp__proc_release(proc);
    pthread_mutex_unlock(&c->conn_mu);
    pthread_mutex_unlock(&c->kill_mu);
    return true;
}

/* A reattached plugin is not our child: no status, only "gone". */
static bool wait_reattached(gp_client *c, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : gp__now_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int pidfd = c->ra_pidfd;
        pid_t pid = c->pid;
        bool killed = c->state == GP__CLIENT_KILLED;
        pthread_mutex_unlock(&c->mu);
        if (killed)
            return true;
        int64_t left = deadline - gp__now_ms();
        if (left < 0)
            left = 0;
        int step = left > PID_POLL_MS ? PID_POLL_MS : (int)left;
        if (pidfd >= 0) {
            struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
            /* Short steps: a kill from another thread closes the pidfd. */
            if (poll(&pfd, 1, step) > 0)
                return true;
        } else {
            if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH))
                return true;
            if (step > 0)
                poll(NULL, 0, step);
        }
        if (gp__now_ms() >= deadline)
            return false;
    }
}

bool gp_client_wait_exit(gp_client *c, int timeout_ms, char *why, size_t cap)
{
    if (why && cap)
        why[0] = '\0';
    if (!c)
        return true;
    if (c->reattach) {
        bool gone = wait_reattached(c, timeout_ms);
        if (gone && why && cap)
            snprintf(why, cap, "exited");
        return gone;
    }
    pthread_mutex_lock(&c->mu);
    gp__proc *p = c->proc;
    pthread_mutex_unlock(&c->mu);
    if (!p)
        return false;
    bool done = gp__proc_wait_exit(p, timeout_ms < 0 ? 1 << 30 : timeout_ms);
    int status = 0;
    if (done && gp__proc_exited(p, &status) && why && cap)
        gp__proc_describe_status(status, why, cap);
    return done;
}

gp_err gp_client_exit_info(gp_client *c, gp_exit_info *out, gp_status *st)
{
    gp__status_clear(st);
    if (!out)
        return gp__status_setf(st, GP_EINVAL, "out: expected a place for the exit info, got NULL");
    *out = (gp_exit_info){.code = -1};
    if (!c)
        return gp__status_setf(st, GP_EINVAL, "client: expected a client, got NULL");
    if (c->reattach) {
        out->reattached = true;
        out->exited = gp_client_exited(c);
        return GP_OK;
    }
    pthread_mutex_lock(&c->mu);
    gp__proc *p = c->proc;
    pthread_mutex_unlock(&c->mu);
    int status = 0;
    if (!p || !gp__proc_exited(p, &status))
        return GP_OK;
    out->exited = true;
    if (WIFEXITED(status)) {
        out->code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        out->signal = WTERMSIG(status);
        out->killed_by_us = gp__proc_sent_signal(p, out->signal);
    }
    return GP_OK;
}

bool gp_exit_info_unexpected(const gp_exit_info *e)
{
    if (!e || !e->exited || e->reattached)
        return false;
    return e->code > 0 || (e->signal > 0 && !e->killed_by_us);
}

void gp_exit_info_describe(const gp_exit_info *e, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    if (!e || !e->exited)
        snprintf(buf, cap, "running");
    else if (e->reattached)
        snprintf(buf, cap, "exited");
    else if (e->signal > 0)
        snprintf(buf, cap, "killed by signal %d (%s)%s", e->signal, strsignal(e->signal),
                 e->killed_by_us ? ", sent by us" : "");
    else
        snprintf(buf, cap, "exit status %d", e->code);
}
