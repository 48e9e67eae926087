/* Managed clients (go-plugin's Managed + CleanupClients): the library's
 * only global state. */
#include <pthread.h>
#include <stdlib.h>

#include "transport/host/client_internal.h"

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static gp_client *reg_head;

void gp__client_registry_add(gp_client *c)
{
    pthread_mutex_lock(&reg_mu);
    c->reg_next = reg_head;
    reg_head = c;
    c->registered = true;
    pthread_mutex_unlock(&reg_mu);
}

void gp__client_registry_remove(gp_client *c)
{
    pthread_mutex_lock(&reg_mu);
    if (c->registered) {
        for (gp_client **pp = &reg_head; *pp; pp = &(*pp)->reg_next) {
            if (*pp == c) {
                *pp = c->reg_next;
                break;
            }
        }
        c->registered = false;
    }
    pthread_mutex_unlock(&reg_mu);
}

static void *kill_thread(void *arg)
{
    gp_client_kill(arg);
    return NULL;
}

void gp_cleanup_clients(void)
{
    /* The registry stays locked while the kills run, so gp_client_free on
     * one of them waits instead of freeing it under us. Kills run in
     * parallel: each may wait out its grace period. */
    pthread_mutex_lock(&reg_mu);
    size_t n = 0;
    for (gp_client *c = reg_head; c; c = c->reg_next)
        n++;
    pthread_t *t = calloc(n ? n : 1, sizeof *t);
    bool *started = calloc(n ? n : 1, sizeof *started);
    size_t i = 0;
    for (gp_client *c = reg_head; c; c = c->reg_next, i++) {
        if (t && started && pthread_create(&t[i], NULL, kill_thread, c) == 0)
            started[i] = true;
        else
            gp_client_kill(c);
    }
    for (i = 0; t && started && i < n; i++)
        if (started[i])
            pthread_join(t[i], NULL);
    free(t);
    free(started);
    pthread_mutex_unlock(&reg_mu);
}
