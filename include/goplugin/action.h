/* goplugin-c: self re-exec of named actions.
 *
 * A binary registers named actions and runs one of them in a fresh copy of
 * itself (/proc/self/exe): JSON in on stdin, JSON out on stdout, stderr as
 * the error text. docs/supervision.md has an example.
 *
 *   static int add(const char *params, char **result) { ... }
 *   int main(int argc, char **argv) {
 *       gp_action_register("add", add, NULL);
 *       gp_action_dispatch(argc, argv);     // in the re-exec'd child: runs
 *       ...                                 //   "add" and exits
 *       char *res;  gp_status st;
 *       if (gp_action_run("add", "[1,2]", 5000, &res, &st) != GP_OK)
 *           fprintf(stderr, "%s\n", st.msg);
 *   }
 *
 * Errors follow docs/errors.md: each fallible call returns a gp_err and
 * writes its words into `st` (NULL: not wanted).
 */
#ifndef GOPLUGIN_ACTION_H
#define GOPLUGIN_ACTION_H

#include <goplugin/err.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GP_ACTION_ENV "GP_ACTION" /* the marker: the action's name */
#define GP_ACTION_MAX 64          /* registered actions */
#define GP_ACTION_MAX_NAME 128
#define GP_ACTION_MAX_IO (16u << 20) /* params, result bytes */
#define GP_ACTION_KILL_GRACE_MS 1000 /* SIGTERM, then this, then SIGKILL */

/* An action: `params` is the JSON text the host passed (NUL-terminated).
 * On success return 0 and set *result to malloc'd JSON text (or leave it
 * NULL for "null"); the library frees it. On failure write why on stderr
 * and return non-zero: that becomes the exit status (clamped to 1..125).
 * Runs in the re-exec'd child, on its main thread. */
typedef int (*gp_action_fn)(const char *params, char **result);

/* Register `fn` under `name` ([A-Za-z0-9._-], 1..GP_ACTION_MAX_NAME
 * bytes; the name is copied). Errors: GP_EINVAL (bad or duplicate name,
 * NULL fn), GP_EMSGSIZE (table full).
 * Thread safety: none; the table has no lock. Register at the top of main,
 * before any thread starts (and before gp_action_dispatch). */
gp_err gp_action_register(const char *name, gp_action_fn fn, gp_status *st);

/* Call first thing in main, after registering. Without the marker in the
 * environment it returns at once and does nothing (so running the binary by
 * hand never runs an action). With it, it removes the marker from the
 * environment, reads the params from stdin, runs the action, writes the
 * result on stdout and exits: it does not return. An unknown action name
 * exits with status 127 and a message on stderr.
 * Thread safety: it changes the environment; call it before any thread
 * starts. */
void gp_action_dispatch(int argc, char **argv);

/* Run a registered action in a fresh process of this binary and wait for it,
 * at most `timeout_ms` (<= 0: 60 s); then SIGTERM its process group, wait
 * GP_ACTION_KILL_GRACE_MS, SIGKILL. The child is always reaped.
 * On GP_OK *result is malloc'd JSON text, owned by the caller (free it);
 * on failure it is NULL. Errors, with words in st:
 * GP_EREMOTE: non-zero exit; st->msg is the end of its stderr (the last
 * GP_ERRMSG_MAX - 1 bytes), or the exit status when it wrote nothing.
 * GP_EPROTO: the result is not one JSON value. GP_ETIMEDOUT, GP_EEXITED
 * (killed by a signal), GP_ENOTFOUND (not registered here), GP_EINVAL
 * (params not JSON), GP_EMSGSIZE, GP_ESYS, GP_ENOMEM.
 * Thread safety: any thread, concurrently (the table is only read; each
 * child is reaped by its pid). Do not change the environment meanwhile
 * (the child gets a copy of it), and do not reap with waitpid(-1) in a
 * SIGCHLD handler: that would take the child's status. */
gp_err gp_action_run(const char *name, const char *params_json, int timeout_ms, char **result,
                     gp_status *st);

#ifdef __cplusplus
}
#endif
#endif
