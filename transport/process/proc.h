/* Internal: one running plugin process and the thread that owns it.
 *
 * Threading: each process has one owner thread. It forks the child (so
 * PR_SET_PDEATHSIG, which fires when the *thread* that forked exits, stays
 * armed exactly as long as we look after the child, whichever application
 * thread called start), then polls stdout, stderr, the child's pidfd and a
 * wake eventfd. One thread instead of one per pipe: all state changes
 * (handshake line, exit, stderr tail) happen in one place, in order — e.g.
 * the pipes are drained before the exit is published, so an error message
 * always carries the plugin's last stderr words.
 *
 * stdout: the first line (at most GP__PROC_LINE_MAX bytes) is the
 * handshake; later lines are logged at DEBUG. stderr: every line goes to
 * the logger (hclog.h), any length (long lines in GP__PROC_LINE_MAX pieces),
 * and its last bytes are kept for error messages.
 *
 * When the plugin's main process exits, the rest of its process group is
 * killed before it is reaped: helpers must not outlive the plugin (and
 * keep our pipes open), and while the zombie is unreaped its pid cannot be
 * reused, so the group kill cannot hit a stranger.
 */
#ifndef GP_PROCESS_PROC_H
#define GP_PROCESS_PROC_H

#include <goplugin/err.h>
#include <goplugin/log.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define GP__PROC_LINE_MAX 65536

typedef struct gp__proc gp__proc;

typedef struct gp__proc_opts {
    const char *path; /* resolved executable */
    char *const *argv;
    char *const *envp;
    int exec_fd;             /* >= 0: fexecve it (checksummed); borrowed */
    bool exec_fd_script;     /* see gp__spawn_opts.exec_fd_script */
    const gp_logger *logger; /* borrowed for the proc's life; NULL = stderr text */
    const char *log_name;    /* copied */
    bool detached;           /* see gp__spawn_opts.detached */
    /* Non-NULL: stdout / stderr go to this file (appended) instead of a
     * pipe (gp__spawn_opts.out_path); copied. The owner thread follows the
     * file while the plugin runs, so everything above (handshake line,
     * logger, stderr tail) works the same. */
    const char *out_path, *err_path;
} gp__proc_opts;

/* Spawn. Returns after the exec succeeded or failed; o's path, argv, envp
 * and exec_fd are only used until then. Caller owns *out:
 * gp__proc_free. Errors: GP_ESYS (with the reason), GP_ENOMEM. */
gp_err gp__proc_start(const gp__proc_opts *o, gp__proc **out, char *err, size_t errlen);

/* Wait up to timeout_ms for the first stdout line. On GP_OK *line is a
 * malloc'd NUL-terminated copy (caller frees). Errors: GP_ETIMEDOUT,
 * GP_EMSGSIZE (line over the limit), GP_EEXITED (the process exited
 * first). The message says what was expected and what came. */
gp_err gp__proc_wait_line(gp__proc *p, int timeout_ms, char **line, size_t *len, char *err,
                          size_t errlen);

/* Ask the plugin to stop: `graceful` (may be NULL) is called first; if it
 * returns GP_OK we wait up to grace_ms for the exit. Then SIGKILL to the
 * process group, reap, stop the owner thread, close every descriptor.
 * Idempotent; thread safe (a second caller waits for the first). */
typedef gp_err (*gp__proc_graceful_fn)(void *ctx);
void gp__proc_kill(gp__proc *p, int grace_ms, gp__proc_graceful_fn graceful, void *ctx);

/* Send `sig` to the plugin's main process if it is not yet reaped (so the
 * pid is still ours). GP_ESTATE when it has already exited. */
gp_err gp__proc_signal(gp__proc *p, int sig);

/* Wait up to timeout_ms for the process to exit; true if it has. */
bool gp__proc_wait_exit(gp__proc *p, int timeout_ms);

/* True once reaped; *status (may be NULL) gets the wait status. */
bool gp__proc_exited(gp__proc *p, int *status);

/* True if we sent `sig` to the plugin's main process while it was still
 * ours: gp__proc_signal, or gp__proc_kill's SIGKILL (not the SIGKILL that
 * reap sends to the group of an already exited main process). A plugin
 * killed by that signal from elsewhere at the same moment looks the same. */
bool gp__proc_sent_signal(gp__proc *p, int sig);

pid_t gp__proc_pid(const gp__proc *p);

/* The last stderr lines (at most ~4 KiB) into out (NUL-terminated). */
size_t gp__proc_stderr_tail(gp__proc *p, char *out, size_t cap);

/* "exit status 3" / "killed by signal 9" for a wait status. */
void gp__proc_describe_status(int status, char *out, size_t cap);

/* Let a detached plugin go: stop the owner thread and close our pipes and
 * pidfd, but neither signal nor reap the process (it keeps running; if it
 * exits while this host still runs it stays a zombie until the host exits,
 * and then init reaps it). Later kills are no-ops. Idempotent. */
void gp__proc_release(gp__proc *p);

/* Kill (no grace) if needed and free. NULL is a no-op. */
void gp__proc_free(gp__proc *p);

#endif
