/* goplugin-c: the plugin manager, which keeps a store's enabled plugins
 * running (docs/store.md).
 *
 * One manager per store root: it holds the store's lock for its life.
 * Opening it reloads the store (a record that cannot be read is reported
 * and skipped; an interrupted removal is finished). gp_manager_restore
 * brings back every enabled plugin: a live one is adopted through its run
 * file (after the pid and start-time check), any other is launched with
 * the record's digest as its SecureConfig checksum, so a changed blob is
 * refused. A plugin that exits (or fails its health ping) is launched
 * again after the backoff delay (goplugin/backoff.h); disable stops it
 * gracefully and for good.
 *
 * Each launch's environment also gets GP_MANAGER_ROOT=<resolved root>, by
 * which a later manager finds a plugin launched but never published, and
 * GP_MANAGER_SELF=<pid>.<time>, which names the manager that launched it
 * (restore leaves its own manager's launches alone).
 *
 * Every running plugin is published as go-plugin ReattachConfig JSON at
 * ROOT/run/NAME.json (goplugin/reattach.h), written atomically and removed
 * when it stops, so any host (kv-host --reattach, a Go host with
 * plugin.ReattachConfig) can use a plugin the manager keeps alive.
 *
 *   gp_manager_config mc = {.root = "/var/lib/myapp/plugins",
 *                           .on_event = on_event, .ctx = app};
 *   gp_manager *m;  gp_status st;
 *   if (gp_manager_open(&mc, &m, &st) || gp_manager_restore(m, &st))
 *       fprintf(stderr, "%s\n", st.msg);
 *   ...
 *   gp_manager_enable(m, "kv", &st);   // starts it
 *   gp_manager_close(m);               // stops them (live_restore: leaves them)
 *
 * The plugins' log lines reach `logger` with the logger name set to the
 * plugin's name. Errors follow docs/errors.md: a gp_err and words in `st`
 * (NULL: not wanted). Every call may run on any thread, concurrently with
 * the others, except gp_manager_close (alone and last: gp_manager_shutdown
 * first ends the waits of calls on other threads).
 */
#ifndef GOPLUGIN_STORE_MANAGER_H
#define GOPLUGIN_STORE_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <goplugin/backoff.h>
#include <goplugin/err.h>
#include <goplugin/log.h>
#include <goplugin/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gp_manager_event_kind {
    GP_MANAGER_INSTALL = 1, /* a plugin was installed through the manager */
    GP_MANAGER_ENABLE,      /* the record says enabled (START follows) */
    GP_MANAGER_DISABLE,     /* the record says disabled; the plugin is stopped */
    GP_MANAGER_REMOVE,      /* the record is gone */
    GP_MANAGER_START,       /* a process runs: launched, or adopted (adopted) */
    GP_MANAGER_EXIT,        /* it exited, was stopped, or a start failed (reason) */
    GP_MANAGER_RESTART      /* the next launch comes after delay_ms */
} gp_manager_event_kind;

/* "install", "enable", ... (static storage). Any thread. */
const char *gp_manager_event_name(gp_manager_event_kind kind);

/* Everything is borrowed for the duration of the callback. */
typedef struct gp_manager_event {
    gp_manager_event_kind kind;
    const char *name;   /* the plugin's name */
    pid_t pid;          /* START, EXIT: the process (0 when a start failed) */
    bool adopted;       /* START: found running through its run file */
    const char *reason; /* EXIT: "exit status 3", "killed by signal 9 (Killed)",
                             * "stopped", "start failed: ...", "health check
                             * failed: ..."; else "" */
    int64_t delay_ms;   /* RESTART */
} gp_manager_event;

/* Called for each event. The events of one plugin come in order, one at a
 * time; those of different plugins may come at once from different
 * threads. It must not call gp_manager_* (it may run under the manager's
 * lock) and must not block for long. */
typedef void (*gp_manager_callback)(const gp_manager_event *ev, void *ctx);

typedef struct gp_manager_config {
    const char *root; /* the store's root directory (created if missing); copied */
    /* gp_manager_close leaves running plugins running, published in their
     * run files, for the next manager to adopt (Docker's live restore).
     * Launched plugins are detached so they outlive this process. */
    bool live_restore;
    const gp_backoff_config *backoff; /* NULL: gp_backoff_defaults(); copied */
    int start_timeout_ms;             /* per launch; 0 = 60000 */
    int kill_grace_ms;                /* after a graceful Shutdown; 0 = 2000 */
    /* Each plugin is pinged every health_interval_ms (0 = 5000, < 0 =
     * never); one that fails or is silent for health_timeout_ms (0 = 2000)
     * is killed and restarted ("health check failed: ..."). */
    int health_interval_ms;
    int health_timeout_ms;
    /* Live restore: a log file (ROOT/logs/NAME.stdout, .stderr) of
     * log_rotate_bytes or more becomes NAME.stdout.1 (replacing the one
     * before): renamed before each launch, and while the plugin runs
     * (looked at every second) copied and cut back to empty in place, so
     * neither restarts nor one long run can fill the disk. A line written
     * in the microseconds between the copy and the cut is lost. 0 = 16
     * MiB, < 0 = never. */
    long long log_rotate_bytes;
    gp_logger logger;             /* the manager's words and plugin lines */
    gp_manager_callback on_event; /* may be NULL */
    void *ctx;                    /* for on_event; borrowed */
} gp_manager_config;

typedef struct gp_manager gp_manager; /* opaque */

/* Take the store's lock and reload it. Nothing is started yet.
 * Errors: GP_EINVAL (no root), GP_ESTATE (another manager or command holds
 * the store: st names the lock file), GP_ESYS, GP_ENOMEM. Caller owns *out:
 * gp_manager_close. */
gp_err gp_manager_open(const gp_manager_config *cfg, gp_manager **out, gp_status *st);

/* Adopt or launch every enabled plugin; returns once each has had its
 * first attempt. A plugin that fails to start is reported (EXIT, the
 * logger) and retried with backoff; the call fails only for the manager's
 * own trouble (GP_ESTATE: called twice or after gp_manager_shutdown;
 * GP_ENOMEM, GP_ESYS). Other calls go on while it waits; a shutdown ends
 * the wait. */
gp_err gp_manager_restore(gp_manager *m, gp_status *st);

/* Mark enabled (the store checks the granted privileges) and launch; waits
 * for the launch. If it fails the record is set back to disabled and its
 * words come back (a changed blob: GP_ECHECKSUM naming both digests);
 * not when gp_manager_shutdown cut the start short (below).
 * Enabling an enabled plugin is GP_ESTATE. Other calls go on during the
 * wait (gp_manager_close still comes alone and last): a disable or remove
 * of this plugin stops the launch, and this call then fails with
 * GP_ESTATE ("... was disabled or removed while it started"). */
gp_err gp_manager_enable(gp_manager *m, const char *name, gp_status *st);

/* Stop gracefully (no restart) and mark disabled. GP_ESTATE if it is not
 * enabled or after gp_manager_shutdown; GP_ENOTFOUND for an unknown name. */
gp_err gp_manager_disable(gp_manager *m, const char *name, gp_status *st);

/* Remove the record (refused while enabled unless force, which stops the
 * plugin first; GP_ESTATE after gp_manager_shutdown). Blobs stay until
 * gp_manager_gc. */
gp_err gp_manager_remove(gp_manager *m, const char *name, bool force, gp_status *st);

/* gp_store_install through the manager (the store is locked by it), then
 * the INSTALL event. The new plugin is disabled. */
gp_err gp_manager_install(gp_manager *m, const gp_store_install_opts *o, gp_store_record **out,
                          gp_status *st);

/* Report a plugin installed through gp_manager_store (by its name or id):
 * the INSTALL event. Errors: GP_ENOTFOUND. */
gp_err gp_manager_installed(gp_manager *m, const char *ref, gp_status *st);

/* The manager's store, for what needs no process: get, list, gc, grant
 * (of a disabled plugin), record_json. Do not enable, disable, remove or
 * close through it. Valid until gp_manager_close. */
gp_store *gp_manager_store(gp_manager *m);

/* The run file path of `name` into buf (ROOT/run/NAME.json); its length, or
 * 0 when it does not fit. Any thread; no manager needed. */
size_t gp_manager_run_file(const char *root, const char *name, char *buf, size_t cap);

/* The running plugin's pid for `name`; 0 when it is not running (or not
 * known). */
pid_t gp_manager_pid(gp_manager *m, const char *name);

/* Stop every plugin (gracefully, in parallel; with live_restore: let them
 * run on, run files kept), and start nothing more. An enable waiting for
 * its plugin's start returns at once with GP_ESTATE ("manager: shutting
 * down while plugin NAME started; ...") and leaves the record enabled,
 * for the next manager; a restore waiting for first starts returns at
 * once. Later enables, disables, removes and restores fail with GP_ESTATE
 * (records stay as they are); the other calls go on. A server calls this,
 * then ends the threads that call the manager, then gp_manager_close. Any thread but the callbacks' (on_event, the logger:
 * it joins their threads); again: no-op. */
void gp_manager_shutdown(gp_manager *m);

/* gp_manager_shutdown if it has not run, then release the lock and free.
 * Alone and last: no other call on m may be running. NULL: no-op. */
void gp_manager_close(gp_manager *m);

#ifdef __cplusplus
}
#endif
#endif
