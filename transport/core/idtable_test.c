/* The pending-id table both brokers use: put/take, which value wins, expiry,
 * and waits that end on a put, on close, or on time. */
#include "transport/core/idtable.h"

#include <pthread.h>
#include <time.h>

#include "transport/base/clock.h"
#include "transport/base/sync.h"
#include "transport/testing/gp_test.h"

typedef struct drops {
    int expired, cleared;
    uint32_t last_id;
    void *last_val;
} drops;

static void count_drop(void *ctx, uint32_t id, void *val, bool expired)
{
    drops *d = ctx;
    if (expired)
        d->expired++;
    else
        d->cleared++;
    d->last_id = id;
    d->last_val = val;
}

static int a, b, c;

GP_TEST(put_then_take_returns_the_value_once)
{
    drops d = {0};
    gp__idtable t;
    gp__idtable_init(&t, 5000, count_drop, &d);
    GP_CHECK_INT(gp__idtable_put(&t, 7, &a, false), ==, GP_OK);
    GP_CHECK_INT(gp__idtable_put(&t, 8, &b, false), ==, GP_OK);
    GP_CHECK(gp__idtable_take(&t, 9) == NULL);
    GP_CHECK(gp__idtable_take(&t, 7) == &a);
    GP_CHECK(gp__idtable_take(&t, 7) == NULL);
    GP_CHECK(gp__idtable_take(&t, 8) == &b);
    GP_CHECK_INT(d.expired + d.cleared, ==, 0);
}

GP_TEST(first_offer_stands_unless_replacing)
{
    drops d = {0};
    gp__idtable t;
    gp__idtable_init(&t, 5000, count_drop, &d);
    GP_CHECK_INT(gp__idtable_put(&t, 1, &a, false), ==, GP_OK);
    GP_CHECK_INT(gp__idtable_put(&t, 1, &b, false), ==, GP_ESTATE);
    GP_CHECK_INT(d.cleared, ==, 0); /* the refused value stays the caller's */
    GP_CHECK_INT(gp__idtable_put(&t, 1, &c, true), ==, GP_OK);
    GP_CHECK_INT(d.cleared, ==, 1);
    GP_CHECK(d.last_val == &a);
    GP_CHECK(gp__idtable_take(&t, 1) == &c);
}

GP_TEST(expired_values_are_dropped_as_expired)
{
    drops d = {0};
    gp__idtable t;
    gp__idtable_init(&t, 20, count_drop, &d);
    GP_CHECK_INT(gp__idtable_put(&t, 3, &a, false), ==, GP_OK);
    nanosleep(&(struct timespec){0, 40 * 1000000L}, NULL);
    GP_CHECK(gp__idtable_take(&t, 3) == NULL);
    GP_CHECK_INT(d.expired, ==, 1);
    GP_CHECK_INT(d.last_id, ==, 3);
}

GP_TEST(clear_drops_everything)
{
    drops d = {0};
    gp__idtable t;
    gp__idtable_init(&t, 5000, count_drop, &d);
    for (uint32_t id = 1; id <= 10; id++)
        GP_CHECK_INT(gp__idtable_put(&t, id, &a, false), ==, GP_OK);
    gp__idtable_clear(&t);
    GP_CHECK_INT(d.cleared, ==, 10);
    GP_CHECK(gp__idtable_take(&t, 1) == NULL);
}

GP_TEST(a_full_table_refuses_more)
{
    drops d = {0};
    gp__idtable t;
    gp__idtable_init(&t, 5000, count_drop, &d);
    for (uint32_t id = 1; id <= GP__IDTABLE_MAX; id++)
        GP_CHECK_ERR(gp__idtable_put(&t, id, &a, false), GP_OK);
    GP_CHECK_ERR(gp__idtable_put(&t, GP__IDTABLE_MAX + 1, &b, false), GP_ENOMEM);
    /* Replacing a held id is not growth. */
    GP_CHECK_ERR(gp__idtable_put(&t, 7, &b, true), GP_OK);
    GP_CHECK(gp__idtable_take(&t, 7) == &b);
    GP_CHECK_ERR(gp__idtable_put(&t, GP__IDTABLE_MAX + 1, &b, false), GP_OK);
    gp__idtable_clear(&t);
    GP_CHECK_ERR(gp__idtable_put(&t, 1, &a, false), GP_OK);
    gp__idtable_clear(&t);
}

/* A table's own max (gp_limits.max_pending_ids) replaces the default. */
GP_TEST(a_table_with_its_own_max_refuses_past_it)
{
    drops d = {0};
    gp__idtable t;
    gp__idtable_init(&t, 5000, count_drop, &d);
    t.max = 3;
    for (uint32_t id = 1; id <= 3; id++)
        GP_CHECK_ERR(gp__idtable_put(&t, id, &a, false), GP_OK);
    GP_CHECK_ERR(gp__idtable_put(&t, 4, &b, false), GP_ENOMEM);
    GP_CHECK(gp__idtable_take(&t, 2) == &a);
    GP_CHECK_ERR(gp__idtable_put(&t, 4, &b, false), GP_OK);
    gp__idtable_clear(&t);
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gp__idtable t;
    int closing;
} waiter;

static void waiter_init(waiter *w, drops *d)
{
    pthread_mutex_init(&w->mu, NULL);
    gp__cond_init_monotonic(&w->cv);
    gp__idtable_init(&w->t, 5000, count_drop, d);
    w->closing = 0;
}

static void waiter_destroy(waiter *w)
{
    gp__idtable_clear(&w->t);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

static void *put_later(void *arg)
{
    waiter *w = arg;
    nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    pthread_mutex_lock(&w->mu);
    gp__idtable_put(&w->t, 42, &b, false);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void *close_later(void *arg)
{
    waiter *w = arg;
    nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    pthread_mutex_lock(&w->mu);
    w->closing = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void *wait_for(waiter *w, uint32_t id, int timeout_ms, int64_t *took_ms)
{
    int64_t t0 = gp__now_ms();
    pthread_mutex_lock(&w->mu);
    void *v = gp__idtable_wait(&w->t, id, &w->mu, &w->cv, &w->closing, timeout_ms);
    pthread_mutex_unlock(&w->mu);
    *took_ms = gp__now_ms() - t0;
    return v;
}

GP_TEST(wait_ends_when_the_value_arrives)
{
    drops d = {0};
    waiter w;
    waiter_init(&w, &d);
    pthread_t th;
    pthread_create(&th, NULL, put_later, &w);
    int64_t ms = 0;
    GP_CHECK(wait_for(&w, 42, 5000, &ms) == &b);
    GP_CHECK_INT(ms, <, 2000);
    pthread_join(th, NULL);
    waiter_destroy(&w);
}

GP_TEST(wait_ends_on_close_and_on_time)
{
    drops d = {0};
    waiter w;
    waiter_init(&w, &d);
    pthread_t th;
    pthread_create(&th, NULL, close_later, &w);
    int64_t ms = 0;
    GP_CHECK(wait_for(&w, 42, 5000, &ms) == NULL);
    GP_CHECK_INT(w.closing, ==, 1);
    GP_CHECK_INT(ms, <, 2000);
    pthread_join(th, NULL);
    w.closing = 0;
    GP_CHECK(wait_for(&w, 43, 100, &ms) == NULL);
    GP_CHECK_INT(ms, >=, 90);
    GP_CHECK_INT(ms, <, 2000);
    waiter_destroy(&w);
}

int main(void)
{
    GP_RUN(put_then_take_returns_the_value_once);
    GP_RUN(first_offer_stands_unless_replacing);
    GP_RUN(expired_values_are_dropped_as_expired);
    GP_RUN(clear_drops_everything);
    GP_RUN(a_full_table_refuses_more);
    GP_RUN(a_table_with_its_own_max_refuses_past_it);
    GP_RUN(wait_ends_when_the_value_arrives);
    GP_RUN(wait_ends_on_close_and_on_time);
    return gp_test_done();
}
