/* Says why a call failed when the plugin died under it: a call that ends
 * with a closed connection on a client's conn asks here whether that
 * client's plugin exited, and if so the status becomes GP_EEXITED with
 * the exit in words ("plugin exited (killed by signal 9 (Killed)) during
 * the call"). The conn layer knows no clients: gp_client sets the conn's
 * lost hook on connect and clears it on kill, before the conn closes. */
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
