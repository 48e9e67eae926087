#include "transport/base/sync.h"

#include <limits.h>
#include <time.h>

void gp__cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GP__SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GP__SANITIZED 1
#endif

int gp__thread_start_small(pthread_t *t, void *(*fn)(void *), void *arg)
{
#ifdef GP__SANITIZED
    size_t size = 4 * GP__SMALL_STACK; /* redzones make frames larger */
#else
    size_t size = GP__SMALL_STACK;
#endif
    if (size < (size_t)PTHREAD_STACK_MIN)
        size = (size_t)PTHREAD_STACK_MIN;
    pthread_attr_t a;
    int rc = pthread_attr_init(&a);
    if (rc != 0)
        return rc;
    rc = pthread_attr_setstacksize(&a, size);
    if (rc == 0)
        rc = pthread_create(t, &a, fn, arg);
    pthread_attr_destroy(&a);
    return rc;
}
