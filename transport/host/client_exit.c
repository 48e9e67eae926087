/* How a launched plugin ended (gp_client_exit_info), and why a call failed
 * when the plugin died under it: a call that ends with a closed connection on a client's conn asks here whether that
 * client's plugin exited, and if so the status becomes GP_EEXITED with
 * the exit in words ("plugin exited (killed by signal 9 (Killed)) during
 * the call"). The conn layer knows no clients: gp_client sets the conn's
 * lost hook on connect and clears it on kill, before the conn closes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "transport/host/client_internal.h"
#include "transport/base/errf.h"
#include "transport/core/conn.h"

/* The socket closes when the process dies; its owner thread reaps it a
 * moment later. Wait this long for the reap before keeping the words we
 * have (a connection can also drop while the plugin lives). */
#define REAP_WAIT_MS 500
#define REAP_STEP_MS 10

typedef struct watched {
    struct watched *next;
    const gp_conn *conn;
    gp_client *client;
} watched;

/* Conns of launched plugins, with their clients. A conn's lost hook gets
 * the conn pointer as a key and looks it up here, under mu, so it never
 * touches a conn or a client that kill has let go. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static watched *head;

/* Under mu: the launched plugin behind conn, or NULL. */
static gp__proc *proc_of(const gp_conn *conn)
{
    for (watched *w = head; w; w = w->next)
        if (w->conn == conn)
            return w->client->proc;
    return NULL;
}

static gp_err explain(void *key, gp_status *st, gp_err rc)
{
    for (int waited = 0;; waited += REAP_STEP_MS) {
        pthread_mutex_lock(&mu);
        gp__proc *p = proc_of(key);
        int status = 0;
        bool gone = p && gp__proc_exited(p, &status);
        pthread_mutex_unlock(&mu);
        if (!p)
            return rc; /* being killed by us, or already let go */
        if (gone) {
            char how[96], was[GP_STATUS_MSG_MAX];
            gp__proc_describe_status(status, how, sizeof how);
            snprintf(was, sizeof was, "%s", st ? st->msg : "");
            return gp__status_set(st, GP_EEXITED, st ? st->grpc_code : 0,
                                  "plugin exited (%s) during the call: %s", how, was);
        }
        if (waited >= REAP_WAIT_MS)
            return rc;
        nanosleep(&(struct timespec){0, REAP_STEP_MS * 1000000L}, NULL);
    }
}

void gp__client_exit_watch(gp_client *c, gp_conn *conn)
{
    if (!c->proc)
        return; /* reattached: not our child, no exit status to give */
    watched *w = calloc(1, sizeof *w);
    if (!w)
        return; /* only the words of a later failure are poorer */
    w->conn = conn;
    w->client = c;
    pthread_mutex_lock(&mu);
    w->next = head;
    head = w;
    pthread_mutex_unlock(&mu);
    gp__conn_set_lost(conn, explain, conn);
}

void gp__client_exit_unwatch(gp_conn *conn)
{
    gp__conn_set_lost(conn, NULL, NULL);
    pthread_mutex_lock(&mu);
    for (watched **pp = &head; *pp; pp = &(*pp)->next) {
        if ((*pp)->conn == conn) {
            watched *w = *pp;
            *pp = w->next;
            free(w);
            break;
        }
    }
    pthread_mutex_unlock(&mu);
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
