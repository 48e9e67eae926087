/* goplugin-c: the supervisor keeps a plugin running.
 *
 * One thread owns the plugin's gp_client: it starts it (gp_client_connect),
 * watches for the process to exit and pings it every health interval, and
 * when it exits or fails a ping it kills it and starts a new one after the
 * backoff delay (goplugin/backoff.h). Callbacks run on that thread, in order:
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
 *   gp_supervisor *s;  gp_status st;
 *   if (gp_supervisor_new(&sc, &s, &st) || gp_supervisor_start(s, &st))
 *       fprintf(stderr, "%s\n", st.msg);
 *   ...
 *   gp_supervisor_stop(s);      // graceful: Shutdown, grace period, SIGKILL
 *   gp_supervisor_free(s);
 *
 * It is part of //transport:goplugin (it needs the client). Errors follow
 * docs/errors.md: words in `st` (NULL: not wanted).
 */
#ifndef GOPLUGIN_SUPERVISOR_H
#define GOPLUGIN_SUPERVISOR_H

#include <stdint.h>

#include <goplugin/backoff.h>
#include <goplugin/client.h>
#include <goplugin/conn.h>
#include <goplugin/err.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gp_sup_event_kind {
    GP_SUP_STARTED = 1, /* a plugin is up: conn is new, re-dispense from it */
    GP_SUP_EXITED,      /* it exited, failed its health check, or failed to
                           * start; reason says which. It is dead and reaped
                           * by now; conn (the last STARTED one) is still
                           * open until the callback returns, then closed:
                           * drop every stub of it here. */
    GP_SUP_RESTARTING,  /* the next start comes after delay_ms */
    GP_SUP_STOPPED      /* final: gp_supervisor_stop ran; nothing follows */
} gp_sup_event_kind;

/* Everything in an event is borrowed for the duration of the callback. */
typedef struct gp_sup_event {
    gp_sup_event_kind kind;
    gp_client *client;  /* STARTED, EXITED: the current client (owned by the
                             * supervisor: never kill or free it) */
    gp_conn *conn;      /* STARTED, EXITED: its connection (NULL if the start failed) */
    const char *reason; /* EXITED: e.g. "exit status 3", "health check failed: ...",
                             * "start failed: ...", "stopped"; else "" */
    int64_t delay_ms;   /* RESTARTING */
    unsigned starts;    /* start attempts so far, this one included */
} gp_sup_event;

/* Called on the supervisor thread, one event at a time. It may call RPCs
 * on ev->conn and dispense (stubs are the callback's to free, by EXITED at
 * the latest), but must not call gp_supervisor_stop/free (they wait for
 * this thread) nor kill or free ev->client. A slow callback delays the
 * watch. */
typedef void (*gp_sup_callback)(const gp_sup_event *ev, void *ctx);

typedef struct gp_supervisor_config {
    /* The plugin to run. Borrowed, with everything it points to, until
     * gp_supervisor_free: each (re)start makes a new client from it.
     * reattach and detached are not allowed (a supervisor launches). */
    const gp_client_config *client;
    /* Restart policy; NULL = gp_backoff_defaults() (3 at once, then 1 s
     * doubling to 60 s, up 10 s resets). Copied. */
    const gp_backoff_config *backoff;
    int health_interval_ms;   /* ping every; 0 = 5000, < 0 = never */
    int health_timeout_ms;    /* a ping slower than this fails; 0 = 2000 */
    gp_sup_callback on_event; /* may be NULL */
    void *ctx;                /* passed to on_event; borrowed */
} gp_supervisor_config;

typedef struct gp_supervisor gp_supervisor; /* opaque */

/* Check and copy the config (not cfg->client, borrowed). Caller owns *out:
 * gp_supervisor_free. Errors: GP_EINVAL (st says which field; also logged
 * on cfg->client->logger), GP_ENOMEM, GP_ESYS.
 * Thread safety: any thread. */
gp_err gp_supervisor_new(const gp_supervisor_config *cfg, gp_supervisor **out, gp_status *st);

/* Start the supervisor thread, which starts the plugin. Returns at once;
 * STARTED (or EXITED with "start failed: ...") follows on that thread.
 * Errors: GP_EINVAL (s NULL), GP_ESTATE (already started, or stopped),
 * GP_ESYS (no thread). Thread safety: any thread. */
gp_err gp_supervisor_start(gp_supervisor *s, gp_status *st);

/* Stop for good and wait: wakes the thread wherever it is (a backoff wait
 * ends at once; a start in progress is aborted), stops the plugin
 * gracefully (Shutdown, the client's kill_grace_ms, SIGKILL), delivers
 * EXITED ("stopped") and STOPPED, joins the thread. Never races a restart:
 * only the supervisor thread starts or kills. Idempotent.
 * Thread safety: any thread but the supervisor's own (never from a
 * callback); concurrent stops are serialised. */
void gp_supervisor_stop(gp_supervisor *s);

/* Stop if needed and free. NULL is a no-op. Thread safety: as stop, and
 * once: no other call on s may run at the same time or come after. */
void gp_supervisor_free(gp_supervisor *s);

/* Start attempts so far. Thread safety: any thread. */
unsigned gp_supervisor_starts(const gp_supervisor *s);

#ifdef __cplusplus
}
#endif
#endif
