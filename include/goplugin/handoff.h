/* goplugin-c: handing a child its configuration and a secret.
 *
 * A host gives a child a key/value configuration and a secret over an
 * inherited pipe (never argv or the environment, which other users can
 * read in /proc), and the child reports "ready" or "failed: reason" on a
 * second pipe. Both directions have deadlines. docs/supervision.md has an
 * example; the wire format is in transport/supervise/handoff.h.
 *
 * Errors follow docs/errors.md: each fallible call returns a gp_err and
 * writes its words into `st` (NULL: not wanted).
 */
#ifndef GOPLUGIN_HANDOFF_H
#define GOPLUGIN_HANDOFF_H

#include <stddef.h>

#include <goplugin/err.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Extra file descriptors for a child.
 *
 * "Make the parent's `fd` appear as `child_fd` in the child, without
 * close-on-exec". Whoever forks honours a list of these between fork and
 * exec with gp_extra_fds_apply. The parent's fds stay close-on-exec, so
 * other children never inherit them by accident.
 */
typedef struct gp_extra_fd {
    int fd;       /* open in the parent (may be close-on-exec) */
    int child_fd; /* the number it gets in the child (>= 3) */
} gp_extra_fd;

/* In the child, after fork and before exec: dup every fd to its child_fd
 * and clear close-on-exec there. Copes with overlaps (a child_fd that is
 * another entry's fd). Errors: GP_EINVAL (over 64 entries, a negative
 * fd), GP_ESYS (errno is set too). Thread safety: async-signal-safe (only
 * fcntl, dup2, close; st's words are built without stdio or malloc). */
gp_err gp_extra_fds_apply(const gp_extra_fd *fds, size_t n, gp_status *st);

/* ------------------------------------------------------------------------
 * Hand-off, host side.
 *
 *   gp_handoff *h;  gp_status st;
 *   gp_handoff_new(&h, &st);
 *   gp_handoff_set(h, "region", "eu-1", &st);
 *   gp_handoff_set_secret(h, key, keylen, &st);
 *   gp_handoff_prepare(h, 3, &spawn, &st);  // fds 3,4 in the child + 2 env vars
 *   pid = fork(); if (!pid) { gp_extra_fds_apply(spawn.fds, spawn.nfds, NULL);
 *                             execve(path, argv, env + spawn.env); }
 *   gp_handoff_started(h);                  // closes the parent's copies
 *   if (gp_handoff_send(h, 5000, &st) || gp_handoff_wait_ready(h, 5000, &st))
 *       fprintf(stderr, "%s\n", st.msg);
 *   gp_handoff_free(h);                     // zeroes the secret
 *
 * Thread safety: a gp_handoff is used by one thread at a time (no call
 * runs concurrently with another on the same handle); distinct handles are
 * independent.
 */
#define GP_HANDOFF_ENV_FD "GP_HANDOFF_FD"               /* config + secret, child reads */
#define GP_HANDOFF_ENV_STATUS_FD "GP_HANDOFF_STATUS_FD" /* status, child writes */

#define GP_HANDOFF_MAX_KEY 1024 /* bytes in one key */
#define GP_HANDOFF_MAX_ENTRIES 65536
#define GP_HANDOFF_MAX_CONFIG (16u << 20) /* keys + values, bytes */
#define GP_HANDOFF_MAX_SECRET (64u << 10)
#define GP_HANDOFF_MAX_REASON 4096 /* bytes of a failure reason */

typedef struct gp_handoff gp_handoff; /* opaque */

/* What to give the spawn: the fds to keep open in the child and the env
 * entries ("KEY=VALUE") that tell the child their numbers. Everything
 * points into the gp_handoff; valid until gp_handoff_started/free. */
typedef struct gp_handoff_spawn {
    gp_extra_fd fds[2];
    size_t nfds;
    const char *env[3]; /* NULL-terminated */
} gp_handoff_spawn;

/* Caller owns *out; free with gp_handoff_free. Errors: GP_ENOMEM.
 * Thread safety: any thread. */
gp_err gp_handoff_new(gp_handoff **out, gp_status *st);

/* Add one configuration entry (copied). Keys are 1..GP_HANDOFF_MAX_KEY
 * bytes; setting a key twice replaces its value. Errors: GP_EINVAL (empty
 * or oversize key, NULL value), GP_EMSGSIZE (over the total or entry
 * limits), GP_ESTATE (already prepared), GP_ENOMEM.
 * Thread safety: one call at a time per handle. */
gp_err gp_handoff_set(gp_handoff *h, const char *key, const char *value, gp_status *st);

/* The secret: `len` bytes, any values, copied (and zeroed on free).
 * Errors: GP_EMSGSIZE, GP_EINVAL, GP_ESTATE, GP_ENOMEM.
 * Thread safety: one call at a time per handle. */
gp_err gp_handoff_set_secret(gp_handoff *h, const void *secret, size_t len, gp_status *st);

/* Encode, make both pipes, and say how the child must get them: the data
 * pipe as child fd `first_child_fd` (0 = 3), the status pipe as the next.
 * `*out` points into h (see gp_handoff_spawn).
 * Errors: GP_EINVAL, GP_ESTATE (called twice), GP_ESYS.
 * Thread safety: one call at a time per handle. */
gp_err gp_handoff_prepare(gp_handoff *h, int first_child_fd, gp_handoff_spawn *out, gp_status *st);

/* After the fork (successful or not): close the parent's copies of the
 * child's ends, so a child exit shows as end-of-file. Call it in the
 * parent. Thread safety: one call at a time per handle. */
void gp_handoff_started(gp_handoff *h);

/* Write the configuration and the secret within `timeout_ms` (<= 0: 30 s),
 * never blocking past it, then close the data pipe. A child that reports
 * failure meanwhile ends the wait with its reason.
 * Errors: GP_ETIMEDOUT (the child did not read it all), GP_EEXITED (the
 * child closed the pipe or exited), GP_EREMOTE (it reported failure),
 * GP_EPROTO (garbled status), GP_ESTATE, GP_ESYS, GP_EIO.
 * Thread safety: one call at a time per handle. */
gp_err gp_handoff_send(gp_handoff *h, int timeout_ms, gp_status *st);

/* Wait for the child's status within `timeout_ms` (<= 0: 60 s).
 * GP_OK: ready. GP_EREMOTE: it reported failure (st->msg says so, cut at
 * GP_ERRMSG_MAX; the whole reason is in gp_handoff_reason). GP_EEXITED:
 * "child exited before reporting ready". GP_ETIMEDOUT, GP_EPROTO (garbled
 * status). Once a status has arrived, later calls return the same result.
 * Thread safety: one call at a time per handle. */
gp_err gp_handoff_wait_ready(gp_handoff *h, int timeout_ms, gp_status *st);

/* The child's failure reason, "" unless it reported failure. Points into
 * h: valid until gp_handoff_free. Thread safety: one call at a time per
 * handle. */
const char *gp_handoff_reason(const gp_handoff *h);

/* Close every fd, zero the secret and encoded bytes, free. NULL: no-op.
 * Thread safety: alone and last on h. */
void gp_handoff_free(gp_handoff *h);

/* ------------------------------------------------------------------------
 * Hand-off, child side.
 *
 *   gp_handoff_child *hc;  gp_status st;
 *   if (gp_handoff_child_open(&hc, 10000, &st) != GP_OK) { ...st.msg... }
 *   const char *region = gp_handoff_child_get(hc, "region");
 *   uint8_t key[64]; size_t keylen;
 *   gp_handoff_child_take_secret(hc, key, sizeof key, &keylen, &st);
 *   ... set up ...
 *   gp_handoff_child_ready(hc, &st);       // or _failed(hc, "no disk", &st)
 *   gp_handoff_child_free(hc);
 *
 * Thread safety: the readers (get, count, key, value) may run concurrently
 * with each other; every other call on one handle runs alone.
 */
typedef struct gp_handoff_child gp_handoff_child; /* opaque */

/* Read the configuration and secret from the fd named by GP_HANDOFF_FD
 * within `timeout_ms` (<= 0: 30 s) and remember the status fd. Both fds are
 * made close-on-exec so the child's own children never inherit them, and
 * both variables are removed from the environment.
 * *out is set even on failure (unless GP_ENOMEM) so failure can still be
 * reported with gp_handoff_child_failed; the caller owns it either way and
 * frees it with gp_handoff_child_free.
 * Errors: GP_ENOTFOUND (no GP_HANDOFF_FD: not started with a hand-off),
 * GP_EINVAL (bad fd number), GP_ETIMEDOUT, GP_EPROTO/GP_EMSGSIZE (garbled
 * stream), GP_EIO, GP_ENOMEM.
 * Thread safety: it changes the environment (unsetenv), so call it before
 * other threads start, as early in main as you can. */
gp_err gp_handoff_child_open(gp_handoff_child **out, int timeout_ms, gp_status *st);

/* The value for `key`, or NULL. Points into hc: valid until
 * gp_handoff_child_free. Thread safety: concurrently with the other
 * getters, not with a call that changes hc. */
const char *gp_handoff_child_get(const gp_handoff_child *hc, const char *key);
/* Iterate: entries 0..count-1, in the order the host set them (NULL past
 * the end). Pointers into hc; threads as gp_handoff_child_get. */
size_t gp_handoff_child_count(const gp_handoff_child *hc);
const char *gp_handoff_child_key(const gp_handoff_child *hc, size_t i);
const char *gp_handoff_child_value(const gp_handoff_child *hc, size_t i);

/* Copy the secret into buf (cap bytes) and zero the library's copy; a
 * second call finds nothing (GP_ESTATE). Errors: GP_EMSGSIZE (cap too
 * small; nothing is zeroed), GP_ESTATE. The caller owns buf and zeroes it
 * when done. Thread safety: one call at a time per handle. */
gp_err gp_handoff_child_take_secret(gp_handoff_child *hc, void *buf, size_t cap, size_t *len,
                                    gp_status *st);

/* Report ready, or failure with a reason (cut at GP_HANDOFF_MAX_REASON),
 * then close the status fd. Only the first report counts (GP_ESTATE after).
 * Errors: GP_EIO (host gone), GP_ENOTFOUND (no status fd). `reason` may
 * be st->msg. Thread safety: one call at a time per handle. */
gp_err gp_handoff_child_ready(gp_handoff_child *hc, gp_status *st);
gp_err gp_handoff_child_failed(gp_handoff_child *hc, const char *reason, gp_status *st);

/* Zero and free everything; closes the fds. NULL: no-op.
 * Thread safety: alone and last on hc. */
void gp_handoff_child_free(gp_handoff_child *hc);

#ifdef __cplusplus
}
#endif
#endif
