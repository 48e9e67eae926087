/* Internal: the ids a broker is waiting on, shared by both wires' brokers.
 *
 * A brokered connection is announced under an id by one side and claimed by
 * the other; whichever comes first waits for the other (go-plugin waits
 * 5 s). The table holds one value per id until it is taken or expires. It
 * has no lock of its own: the owning broker's mutex guards it, and waits
 * use the broker's condition variable (made with gp__cond_init_monotonic),
 * which the broker broadcasts on every put and when it closes. */
#ifndef GP_CORE_IDTABLE_H
#define GP_CORE_IDTABLE_H

#include <goplugin/err.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct gp__identry gp__identry;

/* By default at most this many values wait in one table: what a peer can
 * make us hold by announcing ids nobody takes (gp_limits.max_pending_ids). */
#define GP__IDTABLE_MAX 1024

typedef struct gp__idtable {
    gp__identry *head;
    size_t n;   /* values held */
    size_t max; /* at most this many; 0: GP__IDTABLE_MAX (set after init) */
    int ttl_ms; /* how long a value waits to be taken */
    /* Frees a value the table drops: expired (nobody took it in ttl_ms), or
     * cleared. ctx is the broker's, for its log. */
    void (*drop)(void *ctx, uint32_t id, void *val, bool expired);
    void *ctx;
} gp__idtable;

/* An empty table; nothing to free until a put. */
void gp__idtable_init(gp__idtable *t, int ttl_ms,
                      void (*drop)(void *ctx, uint32_t id, void *val, bool expired), void *ctx);

/* Holds val under id for ttl_ms. When id is already held: replace drops the
 * old value (a newer announcement wins) and returns GP_OK; otherwise the
 * first stands and GP_ESTATE is returned (val stays the caller's).
 * GP_ENOMEM: out of memory, or the table's max values already wait; val
 * stays the caller's. */
gp_err gp__idtable_put(gp__idtable *t, uint32_t id, void *val, bool replace);

/* Removes and returns id's value, or NULL; drops expired values on the way. */
void *gp__idtable_take(gp__idtable *t, uint32_t id);

/* With mu held: waits on cv up to timeout_ms for id's value and takes it.
 * NULL when the time passed or *closing became true (the caller tells
 * which by *closing). */
void *gp__idtable_wait(gp__idtable *t, uint32_t id, pthread_mutex_t *mu, pthread_cond_t *cv,
                       const int *closing, int timeout_ms);

/* Drops every value (as not expired). */
void gp__idtable_clear(gp__idtable *t);

#endif
