/* Says why a call failed when the plugin died under it: a call that ends
 * with a closed connection on a client's conn asks here whether that
 * client's plugin exited, and if so the status becomes GP_EEXITED with
 * the exit in words ("plugin exited (killed by signal 9 (Killed)) during
 * the call"). The conn layer knows no clients, so gp_client registers its
 * conn here on connect and removes it on kill, before the conn closes. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/host/client_internal.h"
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

static gp_err explain(const gp_conn *conn, gp_status *st, gp_err rc)
{
    if (rc != GP_ECLOSED && rc != GP_EIO)
        return rc;
    for (int waited = 0;; waited += REAP_STEP_MS) {
        pthread_mutex_lock(&mu);
        gp__proc *p = proc_of(conn);
        int status = 0;
        bool gone = p && gp__proc_exited(p, &status);
        pthread_mutex_unlock(&mu);
        if (!p)
            return rc; /* not a launched plugin, or being killed by us */
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

void gp__client_exit_watch(gp_client *c, const gp_conn *conn)
{
    if (!c->proc)
        return; /* reattached: not our child, no exit status to give */
    watched *w = calloc(1, sizeof *w);
    if (!w)
        return; /* only the words of a later failure are poorer */
    w->conn = conn;
    w->client = c;
    atomic_store(&gp__conn_lost_hook, explain);
    pthread_mutex_lock(&mu);
    w->next = head;
    head = w;
    pthread_mutex_unlock(&mu);
}

void gp__client_exit_unwatch(const gp_conn *conn)
{
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
