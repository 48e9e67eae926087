/* Internal: small pthread helpers. */
#ifndef GP_BASE_SYNC_H
#define GP_BASE_SYNC_H

#include <pthread.h>

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines, so
 * a wall-clock jump never stretches or cuts a timeout. */
void gp__cond_init_monotonic(pthread_cond_t *cv);

#endif
