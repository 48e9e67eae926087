/* goplugin-c: restart backoff, a pure state machine.
 *
 * No clock and no sleeping inside; the caller passes "now" in milliseconds
 * from any monotonic clock.
 *
 *   gp_backoff b;  gp_backoff_init(&b, NULL, NULL);
 *   gp_backoff_started(&b, now);           // plugin launched
 *   ... it exits ...
 *   int64_t wait = gp_backoff_exited(&b, now);   // 0, 0, 0, 1000, 2000, ...
 *
 * Thread safety: a gp_backoff is plain memory owned by the caller; calls on
 * one gp_backoff must not run concurrently (const calls may run together).
 * Distinct ones are independent.
 */
#ifndef GOPLUGIN_BACKOFF_H
#define GOPLUGIN_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include <goplugin/err.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gp_backoff_config {
    unsigned immediate;       /* restarts with no delay (3) */
    int64_t first_delay_ms;   /* delay after the immediate ones (1000) */
    int64_t max_delay_ms;     /* the delay doubles up to this (60000) */
    int64_t healthy_after_ms; /* up this long resets the count (10000) */
} gp_backoff_config;

/* The defaults above; take them and change what you need. Any thread. */
gp_backoff_config gp_backoff_defaults(void);

/* Fields are private; the struct is public so it can live on the stack. */
typedef struct gp_backoff {
    gp_backoff_config cfg;
    unsigned failures; /* consecutive quick exits */
    bool running;
    int64_t started_ms;
} gp_backoff;

/* cfg NULL: the defaults (cfg is copied). GP_EINVAL if a delay is negative
 * or first_delay_ms > max_delay_ms (b then holds the defaults).
 * Thread safety: not concurrently with another call on b. */
gp_err gp_backoff_init(gp_backoff *b, const gp_backoff_config *cfg, gp_status *st);

/* The process was (re)started at now_ms. Thread safety: not concurrently
 * with another call on b. */
void gp_backoff_started(gp_backoff *b, int64_t now_ms);

/* The process exited (or was found unhealthy and killed) at now_ms. If it
 * had been up for healthy_after_ms, the count starts again. Returns the
 * delay in ms before the next start: 0 for the first `immediate` exits in a
 * row, then first_delay_ms doubling up to max_delay_ms. Thread safety: not
 * concurrently with another call on b. */
int64_t gp_backoff_exited(gp_backoff *b, int64_t now_ms);

/* True when the running process has been up for healthy_after_ms by
 * now_ms (a supervisor may report "healthy" then). Thread safety: with
 * other const calls, not with one that changes b. */
bool gp_backoff_healthy(const gp_backoff *b, int64_t now_ms);

/* Consecutive quick exits so far (0 after a healthy run). Thread safety:
 * as gp_backoff_healthy. */
unsigned gp_backoff_failures(const gp_backoff *b);

/* Forget the history (e.g. after a deliberate stop). Keeps cfg.
 * Thread safety: not concurrently with another call on b. */
void gp_backoff_reset(gp_backoff *b);

#ifdef __cplusplus
}
#endif
#endif
