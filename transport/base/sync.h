/* Internal: small pthread helpers. */
#ifndef GP_BASE_SYNC_H
#define GP_BASE_SYNC_H

#include <pthread.h>

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines, so
 * a wall-clock jump never stretches or cuts a timeout. */
void gp__cond_init_monotonic(pthread_cond_t *cv);

/* The stack of a thread that runs only the library's own code (accept
 * loops, pipe and stream copiers, signal waits): GP__SMALL_STACK bytes,
 * larger under sanitizers. Threads that may run a handler keep the
 * default (RLIMIT_STACK, 8 MiB on Debian). */
#define GP__SMALL_STACK (256 * 1024)

/* pthread_create with a GP__SMALL_STACK stack; its return value. Why: each
 * fresh 8 MiB stack lands in its own 2 MiB page-table range, and a new
 * page-table page is the costliest page fault a new plugin process takes
 * (bench/RESULTS.md, "Where a netrpc start-up goes"). */
int gp__thread_start_small(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
