/* goplugin-c: keeping plugin processes alive and handing them what they need.
 *
 * Independent pieces, each usable alone:
 *
 *  - Hand-off: a host gives a child a key/value configuration and a secret
 *    over an inherited pipe (never argv or the environment, which other users
 *    can read in /proc), and the child reports "ready" or "failed: reason" on
 *    a second pipe. Both directions have deadlines.
 *  - Self re-exec: a binary registers named actions and runs one of them in a
 *    fresh copy of itself (/proc/self/exe), JSON in on stdin, JSON out on
 *    stdout, stderr as the error text.
 *  - Reattach files: go-plugin's ReattachConfig as a JSON file, written
 *    atomically, read strictly.
 *  - Restart backoff: a pure state machine (time is passed in) that says how
 *    long to wait before the next restart.
 *  - Supervisor: keeps a plugin running with that backoff (exit and health
 *    watch, callbacks on each change, graceful stop); it needs the client,
 *    so it is its own library, //transport/supervise:supervisor.
 *
 * Detaching a plugin from its host is gp_client_config.detached (client.h).
 *
 * docs/supervision.md has an example of each.
 */
#ifndef GOPLUGIN_SUPERVISE_H
#define GOPLUGIN_SUPERVISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <goplugin/client.h>
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
    int fd;         /* open in the parent (may be close-on-exec) */
    int child_fd;   /* the number it gets in the child (>= 3) */
} gp_extra_fd;

/* In the child, after fork and before exec: dup every fd to its child_fd
 * and clear close-on-exec there. Copes with overlaps (a child_fd that is
 * another entry's fd). Async-signal-safe (only fcntl, dup2, close). Returns
 * 0, or -1 with errno set. */
int gp_extra_fds_apply(const gp_extra_fd *fds, size_t n);

/* ------------------------------------------------------------------------
 * Hand-off, host side.
 *
 *   gp_handoff *h;
 *   gp_handoff_new(&h);
 *   gp_handoff_set(h, "region", "eu-1");
 *   gp_handoff_set_secret(h, key, keylen);
 *   gp_handoff_prepare(h, 3, &spawn);   // fds 3,4 in the child + 2 env vars
 *   pid = fork(); if (!pid) { gp_extra_fds_apply(spawn.fds, spawn.nfds);
 *                             execve(path, argv, env + spawn.env); }
 *   gp_handoff_started(h);              // closes the parent's copies
 *   if (gp_handoff_send(h, 5000) || gp_handoff_wait_ready(h, 5000))
 *       fprintf(stderr, "%s\n", gp_handoff_error(h));
 *   gp_handoff_free(h);                 // zeroes the secret
 *
 * Wire format and limits: transport/supervise/handoff.h.
 */
#define GP_HANDOFF_ENV_FD "GP_HANDOFF_FD"               /* config + secret, child reads */
#define GP_HANDOFF_ENV_STATUS_FD "GP_HANDOFF_STATUS_FD" /* status, child writes */

#define GP_HANDOFF_MAX_KEY 1024               /* bytes in one key */
#define GP_HANDOFF_MAX_ENTRIES 65536
#define GP_HANDOFF_MAX_CONFIG (16u << 20)     /* keys + values, bytes */
#define GP_HANDOFF_MAX_SECRET (64u << 10)
#define GP_HANDOFF_MAX_REASON 4096            /* bytes of a failure reason */

typedef struct gp_handoff gp_handoff;   /* opaque */

/* What to give the spawn: the fds to keep open in the child and the env
 * entries ("KEY=VALUE") that tell the child their numbers. Everything
 * points into the gp_handoff; valid until gp_handoff_started/free. */
typedef struct gp_handoff_spawn {
    gp_extra_fd fds[2];
    size_t nfds;
    const char *env[3];          /* NULL-terminated */
} gp_handoff_spawn;

/* Caller owns *out; free with gp_handoff_free. Errors: GP_ENOMEM. */
gp_err gp_handoff_new(gp_handoff **out);

/* Add one configuration entry (copied). Keys are 1..GP_HANDOFF_MAX_KEY
 * bytes; setting a key twice replaces its value. Errors: GP_EINVAL (empty
 * or oversize key, NULL value), GP_EMSGSIZE (over the total or entry
 * limits), GP_ESTATE (already prepared), GP_ENOMEM. */
gp_err gp_handoff_set(gp_handoff *h, const char *key, const char *value);

/* The secret: `len` bytes, any values, copied (and zeroed on free). */
gp_err gp_handoff_set_secret(gp_handoff *h, const void *secret, size_t len);

/* Encode, make both pipes, and say how the child must get them: the data
 * pipe as child fd `first_child_fd` (0 = 3), the status pipe as the next.
 * Errors: GP_EINVAL, GP_ESTATE (called twice), GP_ESYS. */
gp_err gp_handoff_prepare(gp_handoff *h, int first_child_fd, gp_handoff_spawn *out);

/* After the fork (successful or not): close the parent's copies of the
 * child's ends, so a child exit shows as end-of-file. */
void gp_handoff_started(gp_handoff *h);

/* Write the configuration and the secret within `timeout_ms` (<= 0: 30 s),
 * never blocking past it, then close the data pipe. A child that reports
 * failure meanwhile ends the wait with its reason.
 * Errors: GP_ETIMEDOUT (the child did not read it all), GP_EEXITED (the
 * child closed the pipe or exited), GP_EREMOTE (it reported failure),
 * GP_ESTATE, GP_ESYS. The words are in gp_handoff_error. */
gp_err gp_handoff_send(gp_handoff *h, int timeout_ms);

/* Wait for the child's status within `timeout_ms` (<= 0: 60 s).
 * GP_OK: ready. GP_EREMOTE: it reported failure (reason in
 * gp_handoff_error and gp_handoff_reason). GP_EEXITED: "child exited
 * before reporting ready". GP_ETIMEDOUT, GP_EPROTO (garbled status). Once a
 * status has arrived, later calls return the same result. */
gp_err gp_handoff_wait_ready(gp_handoff *h, int timeout_ms);

/* The last error's words, "" if none. Valid until the next call. */
const char *gp_handoff_error(const gp_handoff *h);
/* The child's failure reason, "" unless it reported failure. */
const char *gp_handoff_reason(const gp_handoff *h);

/* Close every fd, zero the secret and encoded bytes, free. NULL: no-op. */
void gp_handoff_free(gp_handoff *h);

/* ------------------------------------------------------------------------
 * Hand-off, child side.
 *
 *   gp_handoff_child *hc;
 *   if (gp_handoff_child_open(&hc, 10000) != GP_OK) { ...error... }
 *   const char *region = gp_handoff_child_get(hc, "region");
 *   uint8_t key[64]; size_t keylen;
 *   gp_handoff_child_take_secret(hc, key, sizeof key, &keylen);
 *   ... set up ...
 *   gp_handoff_child_ready(hc);            // or _failed(hc, "no disk")
 *   gp_handoff_child_free(hc);
 */
typedef struct gp_handoff_child gp_handoff_child;   /* opaque */

/* Read the configuration and secret from the fd named by GP_HANDOFF_FD
 * within `timeout_ms` (<= 0: 30 s) and remember the status fd. Both fds are
 * made close-on-exec so the child's own children never inherit them.
 * *out is set even on failure (when non-NULL) so the error can be read with
 * gp_handoff_child_error and failure still reported; free it either way.
 * Errors: GP_ENOTFOUND (no GP_HANDOFF_FD: not started with a hand-off),
 * GP_EINVAL (bad fd number), GP_ETIMEDOUT, GP_EPROTO/GP_EMSGSIZE (garbled
 * stream), GP_EIO, GP_ENOMEM. */
gp_err gp_handoff_child_open(gp_handoff_child **out, int timeout_ms);

/* The value for `key`, or NULL. Points into hc. */
const char *gp_handoff_child_get(const gp_handoff_child *hc, const char *key);
/* Iterate: entries 0..count-1, in the order the host set them. */
size_t gp_handoff_child_count(const gp_handoff_child *hc);
const char *gp_handoff_child_key(const gp_handoff_child *hc, size_t i);
const char *gp_handoff_child_value(const gp_handoff_child *hc, size_t i);

/* Copy the secret into buf (cap bytes) and zero the library's copy; a
 * second call finds nothing (GP_ESTATE). Errors: GP_EMSGSIZE (cap too
 * small; nothing is zeroed), GP_ESTATE. The caller zeroes buf when done. */
gp_err gp_handoff_child_take_secret(gp_handoff_child *hc, void *buf, size_t cap,
                                    size_t *len);

/* Report ready, or failure with a reason (cut at GP_HANDOFF_MAX_REASON),
 * then close the status fd. Only the first report counts (GP_ESTATE after).
 * Errors: GP_EIO (host gone), GP_ENOTFOUND (no status fd). */
gp_err gp_handoff_child_ready(gp_handoff_child *hc);
gp_err gp_handoff_child_failed(gp_handoff_child *hc, const char *reason);

const char *gp_handoff_child_error(const gp_handoff_child *hc);
/* Zero and free everything; closes the fds. NULL: no-op. */
void gp_handoff_child_free(gp_handoff_child *hc);

/* ------------------------------------------------------------------------
 * Self re-exec.
 *
 *   static int add(const char *params, char **result) { ... }
 *   int main(int argc, char **argv) {
 *       gp_action_register("add", add);
 *       gp_action_dispatch(argc, argv);     // in the re-exec'd child: runs
 *       ...                                 //   "add" and exits
 *       char *res, *err;
 *       if (gp_action_run("add", "[1,2]", 5000, &res, &err) != GP_OK) ...
 *   }
 */
#define GP_ACTION_ENV "GP_ACTION"          /* the marker: the action's name */
#define GP_ACTION_MAX 64                   /* registered actions */
#define GP_ACTION_MAX_NAME 128
#define GP_ACTION_MAX_IO (16u << 20)       /* params, result bytes */
#define GP_ACTION_MAX_STDERR (64u << 10)   /* stderr kept (the tail) */
#define GP_ACTION_KILL_GRACE_MS 1000       /* SIGTERM, then this, then SIGKILL */

/* An action: `params` is the JSON text the host passed (NUL-terminated).
 * On success return 0 and set *result to malloc'd JSON text (or leave it
 * NULL for "null"). On failure write why on stderr and return non-zero:
 * that becomes the exit status (clamped to 1..125). */
typedef int (*gp_action_fn)(const char *params, char **result);

/* Register before any thread starts (at the top of main). Names are
 * [A-Za-z0-9._-], 1..GP_ACTION_MAX_NAME bytes. Errors: GP_EINVAL (bad or
 * duplicate name), GP_EMSGSIZE (table full). */
gp_err gp_action_register(const char *name, gp_action_fn fn);

/* Call first thing in main, after registering. Without the marker in the
 * environment it returns 0 and does nothing (so running the binary by hand
 * never runs an action). With it, it removes the marker from the
 * environment, reads the params from stdin, runs the action, writes the
 * result on stdout and exits; it does not return. An unknown action name
 * exits with status 127 and a message on stderr. */
int gp_action_dispatch(int argc, char **argv);

/* Run a registered action in a fresh process of this binary and wait for it,
 * at most `timeout_ms` (<= 0: 60 s); then SIGTERM its process group, wait
 * GP_ACTION_KILL_GRACE_MS, SIGKILL. The child is always reaped.
 * On GP_OK *result is malloc'd JSON text (caller frees) and *err_text NULL.
 * On failure *result is NULL and *err_text is malloc'd words (caller frees):
 * GP_EREMOTE: non-zero exit, err_text = its stderr (or the exit status).
 * GP_EPROTO: the result is not one JSON value. GP_ETIMEDOUT, GP_EEXITED
 * (killed by a signal), GP_ENOTFOUND (not registered here), GP_EINVAL
 * (params not JSON), GP_EMSGSIZE, GP_ESYS, GP_ENOMEM.
 * Thread safety: safe; children are reaped by pid only. */
gp_err gp_action_run(const char *name, const char *params_json, int timeout_ms,
                     char **result, char **err_text);

/* ------------------------------------------------------------------------
 * Reattach files: go-plugin's ReattachConfig as JSON.
 *
 *   {"Protocol":"grpc","ProtocolVersion":1,
 *    "Addr":{"Network":"unix","String":"/tmp/plugin123"},
 *    "Pid":4242,"Test":false}
 *
 * Protocol ("grpc" | "netrpc" | ""), Addr and Pid are required;
 * ProtocolVersion and Test are optional (go-plugin 1.0.1 has neither).
 * "PidStartTime" (ours, optional, written when start_time != 0) is the
 * plugin's /proc start time, so a reattach can tell a reused pid; Go's
 * encoding/json ignores it.
 * Unknown or duplicate keys, wrong types, non-integers, and values out of
 * range are errors. At most GP_REATTACH_FILE_MAX bytes.
 */
#define GP_REATTACH_FILE_MAX (64u << 10)

/* Parse `len` bytes. Strings in *out are malloc'd: release them with
 * gp_reattach_config_clear. On failure *out is zeroed and st->msg (if st)
 * says what was expected and what came. Errors: GP_EPROTO, GP_EMSGSIZE,
 * GP_ENOMEM. */
gp_err gp_reattach_parse(const char *data, size_t len, gp_reattach_config *out,
                         gp_status *st);

/* The JSON text for rc (malloc'd, NUL-terminated, caller frees).
 * Errors: GP_EINVAL (missing network/address, bad protocol), GP_ENOMEM. */
gp_err gp_reattach_format(const gp_reattach_config *rc, char **out, gp_status *st);

/* Write atomically: a temp file in the same directory, fsync, rename over
 * `path`, fsync the directory. Mode 0600. Readers see the old file or the
 * whole new one, never a part. Errors: GP_EINVAL, GP_ESYS (with the path
 * and errno words in st). */
gp_err gp_reattach_file_write(const char *path, const gp_reattach_config *rc,
                              gp_status *st);

/* Read and parse; GP_ENOTFOUND when the file does not exist. */
gp_err gp_reattach_file_read(const char *path, gp_reattach_config *out,
                             gp_status *st);

/* Free the strings of a config filled by gp_reattach_parse/_file_read and
 * zero it. */
void gp_reattach_config_clear(gp_reattach_config *rc);

/* ------------------------------------------------------------------------
 * Restart backoff: a pure state machine. No clock and no sleeping inside;
 * the caller passes "now" in milliseconds from any monotonic clock.
 *
 *   gp_backoff b;  gp_backoff_init(&b, NULL);
 *   gp_backoff_started(&b, now);           // plugin launched
 *   ... it exits ...
 *   int64_t wait = gp_backoff_exited(&b, now);   // 0, 0, 0, 1000, 2000, ...
 */
typedef struct gp_backoff_config {
    unsigned immediate;          /* restarts with no delay (3) */
    int64_t first_delay_ms;      /* delay after the immediate ones (1000) */
    int64_t max_delay_ms;        /* the delay doubles up to this (60000) */
    int64_t healthy_after_ms;    /* up this long resets the count (10000) */
} gp_backoff_config;

/* The defaults above; take them and change what you need. */
gp_backoff_config gp_backoff_defaults(void);

/* Fields are private; the struct is public so it can live on the stack. */
typedef struct gp_backoff {
    gp_backoff_config cfg;
    unsigned failures;           /* consecutive quick exits */
    bool running;
    int64_t started_ms;
} gp_backoff;

/* cfg NULL: the defaults. GP_EINVAL if a delay is negative or
 * first_delay_ms > max_delay_ms (b then holds the defaults). */
gp_err gp_backoff_init(gp_backoff *b, const gp_backoff_config *cfg);

/* The process was (re)started at now_ms. */
void gp_backoff_started(gp_backoff *b, int64_t now_ms);

/* The process exited (or was found unhealthy and killed) at now_ms. If it
 * had been up for healthy_after_ms, the count starts again. Returns the
 * delay in ms before the next start: 0 for the first `immediate` exits in a
 * row, then first_delay_ms doubling up to max_delay_ms. */
int64_t gp_backoff_exited(gp_backoff *b, int64_t now_ms);

/* True when the running process has been up for healthy_after_ms by
 * now_ms (a supervisor may report "healthy" then). */
bool gp_backoff_healthy(const gp_backoff *b, int64_t now_ms);

/* Consecutive quick exits so far (0 after a healthy run). */
unsigned gp_backoff_failures(const gp_backoff *b);

/* Forget the history (e.g. after a deliberate stop). Keeps cfg. */
void gp_backoff_reset(gp_backoff *b);

/* ------------------------------------------------------------------------
 * Supervisor: keep a plugin running.
 *
 * One thread owns the plugin's gp_client: it starts it (gp_client_connect),
 * watches for the process to exit and pings it every health interval, and
 * when it exits or fails a ping it kills it and starts a new one after the
 * backoff delay. Callbacks run on that thread, in order:
 *
 *   STARTED (conn) -> EXITED (reason) -> RESTARTING (delay) -> STARTED ...
 *                                     -> STOPPED (after gp_supervisor_stop)
 *
 *   static void on_event(const gp_sup_event *ev, void *ctx) {
 *       if (ev->kind == GP_SUP_STARTED)
 *           gp_conn_dispense(ev->conn, "kv", &my->kv, NULL);   // re-dispense
 *       else if (ev->kind == GP_SUP_EXITED)
 *           { gp_stub_free(my->kv); my->kv = NULL; }
 *   }
 *   gp_supervisor_config sc = {.client = &cfg, .on_event = on_event, .ctx = my};
 *   gp_supervisor *s;
 *   gp_supervisor_new(&sc, &s);
 *   gp_supervisor_start(s);
 *   ...
 *   gp_supervisor_stop(s);      // graceful: Shutdown, grace period, SIGKILL
 *   gp_supervisor_free(s);
 */
typedef enum gp_sup_event_kind {
    GP_SUP_STARTED = 1,   /* a plugin is up: conn is new, re-dispense from it */
    GP_SUP_EXITED,        /* it exited, failed its health check, or failed to
                           * start; reason says which. It is dead and reaped
                           * by now; conn (the last STARTED one) is still
                           * open until the callback returns, then closed:
                           * drop every stub of it here. */
    GP_SUP_RESTARTING,    /* the next start comes after delay_ms */
    GP_SUP_STOPPED        /* final: gp_supervisor_stop ran; nothing follows */
} gp_sup_event_kind;

typedef struct gp_sup_event {
    gp_sup_event_kind kind;
    gp_client *client;      /* STARTED, EXITED: the current client (owned by the
                             * supervisor; valid during the callback) */
    gp_conn *conn;          /* STARTED, EXITED: its connection (NULL if the start failed) */
    const char *reason;     /* EXITED: e.g. "exit status 3", "health check failed: ...",
                             * "start failed: ...", "stopped"; else "" */
    int64_t delay_ms;       /* RESTARTING */
    unsigned starts;        /* start attempts so far, this one included */
} gp_sup_event;

/* Called on the supervisor thread. It may call RPCs on ev->conn and
 * dispense, but must not call gp_supervisor_stop/free (that would wait for
 * itself). */
typedef void (*gp_sup_callback)(const gp_sup_event *ev, void *ctx);

typedef struct gp_supervisor_config {
    /* The plugin to run. Borrowed, with everything it points to, until
     * gp_supervisor_free: each (re)start makes a new client from it.
     * reattach and detached are not allowed (a supervisor launches). */
    const gp_client_config *client;
    /* Restart policy; NULL = gp_backoff_defaults() (3 at once, then 1 s
     * doubling to 60 s, up 10 s resets). */
    const gp_backoff_config *backoff;
    int health_interval_ms;   /* ping every; 0 = 5000, < 0 = never */
    int health_timeout_ms;    /* a ping slower than this fails; 0 = 2000 */
    gp_sup_callback on_event; /* may be NULL */
    void *ctx;
} gp_supervisor_config;

typedef struct gp_supervisor gp_supervisor;   /* opaque */

/* Check and copy the config (not cfg->client, borrowed). Caller owns *out:
 * gp_supervisor_free. Errors: GP_EINVAL (the reason is in
 * gp_client_error(NULL) and logged on cfg->client->logger), GP_ENOMEM. */
gp_err gp_supervisor_new(const gp_supervisor_config *cfg, gp_supervisor **out);

/* Start the supervisor thread, which starts the plugin. Returns at once;
 * STARTED (or EXITED with "start failed: ...") follows on that thread.
 * Errors: GP_ESTATE (already started), GP_ESYS (no thread). */
gp_err gp_supervisor_start(gp_supervisor *s);

/* Stop for good and wait: wakes the thread wherever it is (a backoff wait
 * ends at once; a start in progress is aborted), stops the plugin
 * gracefully (Shutdown, the client's kill_grace_ms, SIGKILL), delivers
 * EXITED ("stopped") and STOPPED, joins the thread. Never races a restart:
 * only the supervisor thread starts or kills. Idempotent; not from a
 * callback. */
void gp_supervisor_stop(gp_supervisor *s);

/* Stop if needed and free. NULL is a no-op. */
void gp_supervisor_free(gp_supervisor *s);

/* Start attempts so far. Thread safety: safe. */
unsigned gp_supervisor_starts(const gp_supervisor *s);

#ifdef __cplusplus
}
#endif
#endif
