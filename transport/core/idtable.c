#include "transport/core/idtable.h"

#include <stdlib.h>

#include "transport/base/clock.h"

struct gp__identry {
    gp__identry *next;
    uint32_t id;
    int64_t expires_ms;
    void *val;
};

void gp__idtable_init(gp__idtable *t, int ttl_ms,
                      void (*drop)(void *ctx, uint32_t id, void *val, bool expired), void *ctx)
{
    *t = (gp__idtable){.ttl_ms = ttl_ms, .drop = drop, .ctx = ctx};
}

/* Unlinks and returns id's entry, freeing expired ones met on the way. */
static gp__identry *unlink_id(gp__idtable *t, uint32_t id)
{
    int64_t now = gp__now_ms();
    gp__identry *found = NULL;
    for (gp__identry **p = &t->head; *p;) {
        gp__identry *e = *p;
        if (e->expires_ms <= now) {
            *p = e->next;
            t->n--;
            t->drop(t->ctx, e->id, e->val, true);
            free(e);
        } else if (e->id == id && !found) {
            found = e;
            *p = e->next;
            t->n--;
        } else {
            p = &e->next;
        }
    }
    return found;
}

gp_err gp__idtable_put(gp__idtable *t, uint32_t id, void *val, bool replace)
{
    gp__identry *old = unlink_id(t, id);
    if (old && !replace) {
        old->next = t->head; /* the first stands */
        t->head = old;
        t->n++;
        return GP_ESTATE;
    }
    if (!old && t->n >= (t->max ? t->max : GP__IDTABLE_MAX))
        return GP_ENOMEM;
    gp__identry *e = old ? old : malloc(sizeof *e);
    if (!e)
        return GP_ENOMEM;
    if (old)
        t->drop(t->ctx, id, old->val, false);
    *e = (gp__identry){
        .next = t->head, .id = id, .expires_ms = gp__now_ms() + t->ttl_ms, .val = val};
    t->head = e;
    t->n++;
    return GP_OK;
}

void *gp__idtable_take(gp__idtable *t, uint32_t id)
{
    gp__identry *e = unlink_id(t, id);
    if (!e)
        return NULL;
    void *val = e->val;
    free(e);
    return val;
}

void *gp__idtable_wait(gp__idtable *t, uint32_t id, pthread_mutex_t *mu, pthread_cond_t *cv,
                       const int *closing, int timeout_ms)
{
    struct timespec until = gp__deadline_in(timeout_ms);
    for (;;) {
        void *val = gp__idtable_take(t, id);
        if (val || *closing || gp__deadline_passed(&until))
            return val;
        pthread_cond_timedwait(cv, mu, &until);
    }
}

void gp__idtable_clear(gp__idtable *t)
{
    while (t->head) {
        gp__identry *e = t->head;
        t->head = e->next;
        t->drop(t->ctx, e->id, e->val, false);
        free(e);
    }
    t->n = 0;
}
