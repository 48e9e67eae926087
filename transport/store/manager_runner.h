/* Internal: one thread that keeps one stored plugin running for the
 * manager. It adopts a live process through the plugin's run file or
 * launches the blob, publishes the run file while the plugin runs, waits
 * for the process to exit, and restarts it after the backoff delay.
 *
 * Not gp_supervisor: that one launches only (no reattach, no detached
 * plugins), and the manager needs both to adopt plugins and to leave them
 * running for the next manager (live restore).
 *
 * Events come on the runner's thread, in order:
 *   START (pid, adopted) -> EXIT (reason) -> RESTART (delay) -> START ...
 * and nothing after gp__runner_stop returns. gp__runner_wait_first returns
 * after the first attempt's event. A start that fails is an EXIT
 * whose reason begins "start failed: ". A checksum mismatch (the blob is
 * not the one installed) is final: EXIT, then the runner waits for stop
 * without restarting, as a restart cannot fix it; so is a plugin that
 * serves on TCP without the "tcp" privilege (GP_EUNSUPPORTED).
 */
#ifndef GP_STORE_MANAGER_RUNNER_H
#define GP_STORE_MANAGER_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <goplugin/backoff.h>
#include <goplugin/client.h>
#include <goplugin/err.h>

typedef enum gp__runner_event_kind {
    GP__RUNNER_START = 1,
    GP__RUNNER_EXIT,
    GP__RUNNER_RESTART
} gp__runner_event_kind;

typedef struct gp__runner_event {
    gp__runner_event_kind kind;
    pid_t pid;          /* START, EXIT: the process (0 if a start failed) */
    bool adopted;       /* START: a live process found through the run file */
    const char *reason; /* EXIT: "exit status 1", "start failed: ...", ... */
    gp_err code;        /* EXIT: the start's error; GP_OK for an exit or a start a stop cut short */
    int64_t delay_ms;   /* RESTART */
} gp__runner_event;

typedef void (*gp__runner_cb)(const gp__runner_event *ev, void *ctx);

typedef struct gp__runner_spec {
    /* How to launch. Borrowed until gp__runner_free. detached and reattach
     * are set by the runner. */
    const gp_client_config *client;
    const char *run_file; /* published here while running; borrowed */
    bool adopt;           /* try the run file's process first */
    bool live_restore;    /* launch detached, so a stop may leave it running */
    bool restart;         /* launch again after an exit (the record's policy) */
    bool allow_tcp;       /* else a plugin that serves on TCP is stopped */
    /* client->stdout_file / stderr_file of this size or more become PATH.1:
     * renamed before a launch, copied and cut while a plugin runs
     * (log_rotate.h); <= 0: never. */
    long long log_rotate_bytes;
    /* Ping the plugin every health_interval_ms (< 0: never; 0 = 5000); one
     * that fails or does not answer within health_timeout_ms (0 = 2000)
     * is killed and counts as an exit ("health check failed: ..."). */
    int health_interval_ms;
    int health_timeout_ms;
    gp_backoff_config backoff;
    gp__runner_cb on_event; /* may be NULL; called on the runner thread */
    /* Crash-test hook (GP_STORE_CRASH_AT): called at each point where a
     * SIGKILL must leave a state the next manager recovers from. NULL: none. */
    void (*crash_point)(const char *where);
    void *ctx;
} gp__runner_spec;

typedef struct gp__runner gp__runner;

/* Start the thread. Errors: GP_ENOMEM, GP_ESYS. */
gp_err gp__runner_start(const gp__runner_spec *spec, gp__runner **out, gp_status *st);

/* Wait up to timeout_ms for the first start attempt to end; GP_OK when the
 * plugin is running, else that attempt's code and words (GP_ETIMEDOUT if
 * it is still starting). Any thread. */
gp_err gp__runner_wait_first(gp__runner *r, int timeout_ms, gp_status *st);

/* The first attempt has ended, failed, because a stop came ("start
 * failed: stopped"), not on its own (a checksum verdict never counts as
 * cut). Any thread. */
bool gp__runner_first_cut(gp__runner *r);

/* Stop for good and join. leave_running: a running plugin is let go (its
 * run file stays, for the next manager to adopt); else it is stopped
 * gracefully (Shutdown, grace period, SIGKILL) and its run file removed.
 * Any thread but the runner's own; once. */
void gp__runner_stop(gp__runner *r, bool leave_running);

/* The running plugin's pid, 0 when none. Any thread. */
pid_t gp__runner_pid(gp__runner *r);

/* Stop (not leaving it running) if needed, and free. NULL: no-op. */
void gp__runner_free(gp__runner *r);

#endif
