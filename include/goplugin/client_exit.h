/* goplugin-c: whether and how a client's plugin exited. Included by
 * goplugin/client.h; the client itself (gp_client_new, _kill, _free) is
 * there. docs/lifecycle.md rules 25-26.
 *
 *   gp_client_kill(c);
 *   gp_exit_info e;
 *   if (gp_client_exit_info(c, &e, NULL) == GP_OK && gp_exit_info_unexpected(&e)) {
 *       char how[96];
 *       gp_exit_info_describe(&e, how, sizeof how);
 *       fprintf(stderr, "plugin exited unexpectedly: %s\n", how);
 *   }
 *   gp_client_free(c);
 */
#ifndef GOPLUGIN_CLIENT_EXIT_H
#define GOPLUGIN_CLIENT_EXIT_H

#include <stdbool.h>
#include <stddef.h>

#include <goplugin/err.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gp_client gp_client; /* opaque; goplugin/client.h */

/* True once the plugin process has exited (and been reaped).
 * Thread safety: any thread. */
bool gp_client_exited(gp_client *c);

/* Wait up to timeout_ms (< 0: no limit) for the plugin process to exit;
 * true if it has. Then, if why is non-NULL, it gets how ("exit status 3",
 * "killed by signal 9 (Killed)", "exited" for a reattached plugin).
 * Thread safety: any thread. */
bool gp_client_wait_exit(gp_client *c, int timeout_ms, char *why, size_t cap);

/* How the plugin process ended, for a host to tell an expected end from
 * a crash or a leak report (a plugin built with LeakSanitizer exits
 * non-zero when it leaks). */
typedef struct gp_exit_info {
    bool exited; /* it has ended (a launched plugin: and been reaped) */
    /* Not our child: its exit status is not ours to read, so code is -1
     * and signal 0 even once exited is true. */
    bool reattached;
    int code;   /* exit code (0..255) when it exited by itself; else -1 */
    int signal; /* the signal that ended it; else 0 */
    /* The signal was one gp_client_kill sent: SIGKILL after the grace
     * period (or at once, for a failed start), or SIGTERM to a plugin with
     * no connection. A plugin that exits by itself after our graceful
     * Shutdown has its own code here and killed_by_us false: a non-zero
     * code then is still a failure. (The same signal sent by someone else
     * at the same moment cannot be told apart.) */
    bool killed_by_us;
} gp_exit_info;

/* Fill *out with how the plugin ended so far; does not wait (wait first
 * with gp_client_wait_exit, or gp_client_kill). Before start, or while it
 * runs, exited is false. A detached plugin let go by this client is not
 * followed: exited stays false. Errors: GP_EINVAL (NULL c or out).
 * Thread safety: any thread. */
gp_err gp_client_exit_info(gp_client *c, gp_exit_info *out, gp_status *st);

/* True for an end a host should report: exited by itself with a non-zero
 * code, or killed by a signal we did not send. False while running, for a
 * clean exit 0, for our own kill, and for a reattached plugin (no status).
 * Thread safety: any thread. */
bool gp_exit_info_unexpected(const gp_exit_info *e);

/* "exit status 3", "killed by signal 6 (Aborted)", "killed by signal 9
 * (Killed), sent by us", "exited" (reattached), "running". Writes at most
 * cap bytes, NUL-terminated. Thread safety: any thread. */
void gp_exit_info_describe(const gp_exit_info *e, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
