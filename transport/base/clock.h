/* Internal: the one monotonic clock every timeout here is measured on. */
#ifndef GP_BASE_CLOCK_H
#define GP_BASE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC (never jumps with the wall clock). */
int64_t gp__now_ms(void);

/* The CLOCK_MONOTONIC time `ms` from now, for pthread_cond_timedwait on a
 * condition variable made with gp__cond_init_monotonic (base/sync.h). */
struct timespec gp__deadline_in(int64_t ms);

/* Has the CLOCK_MONOTONIC time t passed? */
bool gp__deadline_passed(const struct timespec *t);

#endif
