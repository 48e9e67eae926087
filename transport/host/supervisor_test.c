/* The supervisor against real plugins: this binary re-executed (helper
 * "test-grpc") as a gp_serve plugin that crashes (SUP_CRASH_AFTER_MS) or
 * hangs (SIGSTOPs itself after SUP_HANG_AFTER_MS); the knobs are in the
 * environment because the supervisor relaunches with the same config.
 * Short backoff times make the policy observable: the delays between
 * restarts, the reset after a healthy run, a restart after a failed health
 * check, a prompt stop during a backoff wait; and no descriptor, thread or
 * child is left behind. */
#include <goplugin/server.h>
#include <goplugin/supervise.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"

#define COOKIE_KEY "GP_SUPERVISOR_TEST"
#define COOKIE_VALUE "c0ffee"
#define MAX_EVENTS 256

/* ---- the plugin ---- */

static void *misbehave(void *arg)
{
    (void)arg;
    const char *crash = getenv("SUP_CRASH_AFTER_MS");
    const char *hang = getenv("SUP_HANG_AFTER_MS");
    int ms = atoi(crash ? crash : hang);
    usleep((useconds_t)ms * 1000);
    if (crash)
        _exit(3);
    raise(SIGSTOP); /* the whole process stops: no answers, no exit */
    return NULL;
}

/* go-plugin's "test-grpc" (or, with SUP_PROTO=netrpc, its
 * "test-interface"): a plugin with one empty service. */
GP_HELPER(test_grpc)
{
    if (getenv("SUP_CRASH_AFTER_MS") || getenv("SUP_HANG_AFTER_MS")) {
        pthread_t t;
        pthread_create(&t, NULL, misbehave, NULL);
        pthread_detach(t);
    }
    static const gp_service noop = {.name = "noop"};
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = &noop,
        .nservices = 1,
    };
    const char *proto = getenv("SUP_PROTO");
    if (proto && strcmp(proto, "netrpc") == 0)
        cfg.protocol = GP_PROTO_NETRPC;
    return gp_serve(&cfg);
}

/* ---- recording events ---- */

typedef struct rec_event {
    gp_sup_event_kind kind;
    char reason[256];
    int64_t delay_ms;
    int64_t at_ms;
    unsigned starts;
    bool conn_ok; /* STARTED: a ping on the new conn worked */
} rec_event;

typedef struct recorder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rec_event ev[MAX_EVENTS];
    int n;
} recorder;

static void on_event(const gp_sup_event *ev, void *ctx)
{
    recorder *r = ctx;
    rec_event e = {.kind = ev->kind,
                   .delay_ms = ev->delay_ms,
                   .at_ms = gp_test_now_ms(),
                   .starts = ev->starts};
    snprintf(e.reason, sizeof e.reason, "%s", ev->reason);
    if (ev->kind == GP_SUP_STARTED) {
        gp_status st;
        e.conn_ok = ev->conn && gp_conn_ping(ev->conn, &st) == GP_OK;
    }
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_EVENTS)
        r->ev[r->n++] = e;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void rec_init(recorder *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void rec_free(recorder *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static int count_kind(recorder *r, gp_sup_event_kind k)
{
    int c = 0;
    for (int i = 0; i < r->n; i++)
        c += r->ev[i].kind == k;
    return c;
}

/* Wait until `want` events of kind k were seen; false on timeout. */
/* timeout_ms is scaled here (GP_TEST_SCALE). */
static bool wait_for(recorder *r, gp_sup_event_kind k, int want, int timeout_ms)
{
    int64_t deadline = gp_test_now_ms() + (int64_t)(timeout_ms * gp_test_scale());
    pthread_mutex_lock(&r->mu);
    while (count_kind(r, k) < want && gp_test_now_ms() < deadline) {
        pthread_mutex_unlock(&r->mu);
        usleep(10000);
        pthread_mutex_lock(&r->mu);
    }
    bool ok = count_kind(r, k) >= want;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* "KEY=ms" into buf, ms scaled: a plugin's crash or hang must come after
 * its start (exec, handshake, dial, health check), which a sanitizer on a
 * loaded machine makes several times slower. */
static const char *scaled_env(char *buf, size_t cap, const char *key, int ms)
{
    snprintf(buf, cap, "%s=%d", key, (int)(ms * gp_test_scale()));
    return buf;
}

/* The i-th event of kind k (0-based), or NULL. mu not needed after stop. */
static rec_event *nth(recorder *r, gp_sup_event_kind k, int i)
{
    for (int j = 0; j < r->n; j++)
        if (r->ev[j].kind == k && i-- == 0)
            return &r->ev[j];
    return NULL;
}

/* ---- leak accounting ---- */

/* No more threads than `before`, once the ones that are ending are gone
 * (gRPC's own may come and go: fewer is fine, more is a leak). */
static bool threads_settle(int before)
{
    return gp_test_wait_threads_at_most(before, (int)(3000 * gp_test_scale())) <= before;
}

/* ---- config ---- */

static gp_client_config client_config(const char *const *env)
{
    static const char *argv[4];
    argv[0] = gp_test_self_exe();
    argv[1] = GP_TEST_HELPER_FLAG;
    argv[2] = "test-grpc";
    argv[3] = NULL;
    gp_client_config cfg = {
        .argv = argv,
        .env = env,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC,
        .start_timeout_ms = 10000,
        .kill_grace_ms = 300,
        .logger = {.level = GP_LOG_OFF},
    };
    return cfg;
}

static void print_events(recorder *r)
{
    static const char *names[] = {"?", "STARTED", "EXITED", "RESTARTING", "STOPPED"};
    for (int i = 0; i < r->n; i++)
        fprintf(stderr, "  #%d %s starts=%u delay=%lld reason=%s\n", i, names[r->ev[i].kind],
                r->ev[i].starts, (long long)r->ev[i].delay_ms, r->ev[i].reason);
}

/* ---- tests ---- */

/* gRPC's process-wide state (a poller, its descriptors and threads)
 * appears at first use: make it exist before anything is counted. Every
 * case runs in a fresh process, so every case that counts calls this. */
static void warm_up_grpc(void)
{
    const char *env[] = {NULL};
    gp_client_config cfg = client_config(env);
    gp_client *c;
    gp_conn *conn;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_connect(c, &conn, NULL), GP_OK);
    gp_client_free(c);
}

GP_TEST(crash_at_once_backs_off)
{
    warm_up_grpc();
    int fds = gp_test_count_fds(), threads = gp_test_count_threads();
    /* Long enough to connect even on a loaded machine, far below
     * healthy_after_ms (both scaled). */
    char crash[64];
    const char *env[] = {scaled_env(crash, sizeof crash, "SUP_CRASH_AFTER_MS", 300), NULL};
    gp_client_config cc = client_config(env);
    gp_backoff_config b = {.immediate = 2,
                           .first_delay_ms = 200,
                           .max_delay_ms = 400,
                           .healthy_after_ms = (int)(5000 * gp_test_scale())};
    recorder r;
    rec_init(&r);
    gp_supervisor_config sc = {
        .client = &cc, .backoff = &b, .health_interval_ms = -1, .on_event = on_event, .ctx = &r};
    gp_supervisor *s;
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_OK);
    GP_CHECK_ERR(gp_supervisor_start(s, NULL), GP_OK);
    GP_CHECK_ERR(gp_supervisor_start(s, NULL), GP_ESTATE);
    GP_CHECK(wait_for(&r, GP_SUP_RESTARTING, 5, 20000));
    gp_supervisor_stop(s);
    gp_supervisor_free(s);

    static const int64_t want[] = {0, 0, 200, 400, 400};
    for (int i = 0; i < 5; i++) {
        rec_event *e = nth(&r, GP_SUP_RESTARTING, i);
        GP_CHECK(e != NULL);
        if (e)
            GP_CHECK_INT((int)e->delay_ms, ==, (int)want[i]);
    }
    /* The delay is really waited: the start after a 200 ms delay comes
     * no sooner. */
    rec_event *d = nth(&r, GP_SUP_RESTARTING, 2), *st = nth(&r, GP_SUP_STARTED, 3);
    GP_CHECK(d && st && st->at_ms - d->at_ms >= 190);
    rec_event *s0 = nth(&r, GP_SUP_STARTED, 0);
    GP_CHECK(s0 && s0->conn_ok);
    /* The exits are the plugin's own (a start that lost the race with the
     * crash would say "start failed: ..."; it counts the same). */
    int crashes = 0;
    for (int i = 0; i < r.n; i++)
        crashes += r.ev[i].kind == GP_SUP_EXITED && strcmp(r.ev[i].reason, "exit status 3") == 0;
    GP_CHECK(crashes >= 3);
    GP_CHECK(r.n > 0 && r.ev[r.n - 1].kind == GP_SUP_STOPPED);
    if (gp_test_failed_checks)
        print_events(&r);
    rec_free(&r);
    GP_CHECK(gp_test_no_children());
    GP_CHECK_FDS_AT_MOST(fds);
    GP_CHECK(threads_settle(threads));
}

GP_TEST(crash_after_a_while_resets)
{
    warm_up_grpc();
    int fds = gp_test_count_fds(), threads = gp_test_count_threads();
    char crash[64];
    const char *env[] = {scaled_env(crash, sizeof crash, "SUP_CRASH_AFTER_MS", 1000), NULL};
    gp_client_config cc = client_config(env);
    /* Up 300 ms counts as healthy: every exit starts the count again, so
     * each restart is immediate although only one is allowed in a row.
     * Scaled as the crash is: the start must take less than their gap. */
    gp_backoff_config b = {.immediate = 1,
                           .first_delay_ms = 3000,
                           .max_delay_ms = 3000,
                           .healthy_after_ms = (int)(300 * gp_test_scale())};
    recorder r;
    rec_init(&r);
    gp_supervisor_config sc = {
        .client = &cc, .backoff = &b, .health_interval_ms = 100, .on_event = on_event, .ctx = &r};
    gp_supervisor *s;
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_OK);
    GP_CHECK_ERR(gp_supervisor_start(s, NULL), GP_OK);
    GP_CHECK(wait_for(&r, GP_SUP_RESTARTING, 3, 20000));
    gp_supervisor_stop(s);
    gp_supervisor_free(s);
    for (int i = 0; i < 3; i++) {
        rec_event *e = nth(&r, GP_SUP_RESTARTING, i);
        GP_CHECK(e && e->delay_ms == 0);
        rec_event *x = nth(&r, GP_SUP_EXITED, i);
        GP_CHECK(x != NULL);
        if (x)
            GP_CHECK_STR(x->reason, "exit status 3");
    }
    if (gp_test_failed_checks)
        print_events(&r);
    rec_free(&r);
    GP_CHECK(gp_test_no_children());
    GP_CHECK_FDS_AT_MOST(fds);
    GP_CHECK(threads_settle(threads));
}

GP_TEST(hang_fails_health_check_and_restarts)
{
    warm_up_grpc();
    int fds = gp_test_count_fds(), threads = gp_test_count_threads();
    char hang[64];
    const char *env[] = {scaled_env(hang, sizeof hang, "SUP_HANG_AFTER_MS", 800), NULL};
    gp_client_config cc = client_config(env);
    cc.call_timeout_ms = 3000; /* bounds connect's own ping should a start meet the hang */
    recorder r;
    rec_init(&r);
    gp_supervisor_config sc = {.client = &cc,
                               .health_interval_ms = 100,
                               .health_timeout_ms = 300,
                               .on_event = on_event,
                               .ctx = &r};
    gp_supervisor *s;
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_OK);
    GP_CHECK_ERR(gp_supervisor_start(s, NULL), GP_OK);
    GP_CHECK(wait_for(&r, GP_SUP_STARTED, 2, 20000));
    gp_supervisor_stop(s);
    gp_supervisor_free(s);
    rec_event *x = nth(&r, GP_SUP_EXITED, 0);
    GP_CHECK(x != NULL);
    if (x)
        GP_CHECK_CONTAINS(x->reason, "health check failed");
    rec_event *d = nth(&r, GP_SUP_RESTARTING, 0);
    GP_CHECK(d && d->delay_ms == 0);
    rec_event *s1 = nth(&r, GP_SUP_STARTED, 1);
    GP_CHECK(s1 && s1->conn_ok && s1->starts >= 2);
    if (gp_test_failed_checks)
        print_events(&r);
    rec_free(&r);
    GP_CHECK(gp_test_no_children());
    GP_CHECK_FDS_AT_MOST(fds);
    GP_CHECK(threads_settle(threads));
}

GP_TEST(netrpc_hang_and_crash)
{
    warm_up_grpc();
    int fds = gp_test_count_fds(), threads = gp_test_count_threads();
    char hang[64];
    const char *env[] = {"SUP_PROTO=netrpc",
                         scaled_env(hang, sizeof hang, "SUP_HANG_AFTER_MS", 800), NULL};
    gp_client_config cc = client_config(env);
    cc.allowed_protocols = GP_PROTO_NETRPC;
    cc.call_timeout_ms = 3000;
    recorder r;
    rec_init(&r);
    gp_supervisor_config sc = {.client = &cc,
                               .health_interval_ms = 100,
                               .health_timeout_ms = 300,
                               .on_event = on_event,
                               .ctx = &r};
    gp_supervisor *s;
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_OK);
    GP_CHECK_ERR(gp_supervisor_start(s, NULL), GP_OK);
    GP_CHECK(wait_for(&r, GP_SUP_STARTED, 2, 20000));
    gp_supervisor_free(s);
    rec_event *x = nth(&r, GP_SUP_EXITED, 0), *s0 = nth(&r, GP_SUP_STARTED, 0);
    GP_CHECK(s0 && s0->conn_ok);
    GP_CHECK(x != NULL);
    if (x)
        GP_CHECK_CONTAINS(x->reason, "health check failed");
    if (gp_test_failed_checks)
        print_events(&r);
    rec_free(&r);

    char crash[64];
    const char *env2[] = {"SUP_PROTO=netrpc",
                          scaled_env(crash, sizeof crash, "SUP_CRASH_AFTER_MS", 300), NULL};
    cc.env = env2;
    rec_init(&r);
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_OK);
    GP_CHECK_ERR(gp_supervisor_start(s, NULL), GP_OK);
    GP_CHECK(wait_for(&r, GP_SUP_RESTARTING, 2, 20000));
    gp_supervisor_free(s);
    int crashes = 0;
    for (int i = 0; i < r.n; i++)
        crashes += r.ev[i].kind == GP_SUP_EXITED && strcmp(r.ev[i].reason, "exit status 3") == 0;
    GP_CHECK(crashes >= 1);
    if (gp_test_failed_checks)
        print_events(&r);
    rec_free(&r);
    GP_CHECK(gp_test_no_children());
    GP_CHECK_FDS_AT_MOST(fds);
    GP_CHECK(threads_settle(threads));
}

GP_TEST(stop_during_backoff_is_prompt)
{
    warm_up_grpc();
    int fds = gp_test_count_fds(), threads = gp_test_count_threads();
    /* The crash must come after the start (handshake, dial, health check):
     * 50 ms was shorter than a start under ASan on a loaded machine (CI). */
    char crash[64];
    const char *env[] = {scaled_env(crash, sizeof crash, "SUP_CRASH_AFTER_MS", 300), NULL};
    gp_client_config cc = client_config(env);
    gp_backoff_config b = {
        .immediate = 0, .first_delay_ms = 30000, .max_delay_ms = 60000, .healthy_after_ms = 10000};
    recorder r;
    rec_init(&r);
    gp_supervisor_config sc = {.client = &cc, .backoff = &b, .on_event = on_event, .ctx = &r};
    gp_supervisor *s;
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_OK);
    GP_CHECK_ERR(gp_supervisor_start(s, NULL), GP_OK);
    GP_CHECK(wait_for(&r, GP_SUP_RESTARTING, 1, 20000));
    int64_t t0 = gp_test_now_ms();
    gp_supervisor_stop(s);
    int64_t took = gp_test_now_ms() - t0;
    GP_CHECK(took < 500 * gp_test_scale()); /* not the 30 s delay */
    gp_supervisor_stop(s);                  /* idempotent */
    gp_supervisor_free(s);
    rec_event *d = nth(&r, GP_SUP_RESTARTING, 0);
    GP_CHECK(d && d->delay_ms == 30000);
    GP_CHECK_INT(count_kind(&r, GP_SUP_STARTED), ==, 1);
    GP_CHECK(r.n > 0 && r.ev[r.n - 1].kind == GP_SUP_STOPPED);
    if (gp_test_failed_checks)
        print_events(&r);
    rec_free(&r);
    GP_CHECK(gp_test_no_children());
    GP_CHECK_FDS_AT_MOST(fds);
    GP_CHECK(threads_settle(threads));
}

GP_TEST(stop_running_plugin_is_graceful)
{
    warm_up_grpc();
    int fds = gp_test_count_fds(), threads = gp_test_count_threads();
    const char *env[] = {NULL};
    gp_client_config cc = client_config(env);
    cc.kill_grace_ms = (int)(5000 * gp_test_scale());
    recorder r;
    rec_init(&r);
    gp_supervisor_config sc = {
        .client = &cc, .health_interval_ms = 50, .on_event = on_event, .ctx = &r};
    gp_supervisor *s;
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_OK);
    GP_CHECK_ERR(gp_supervisor_start(s, NULL), GP_OK);
    GP_CHECK(wait_for(&r, GP_SUP_STARTED, 1, 20000));
    usleep(300000); /* a few healthy pings */
    int64_t t0 = gp_test_now_ms();
    gp_supervisor_stop(s);
    /* The Shutdown RPC worked: well under the 5 s grace period. */
    GP_CHECK(gp_test_now_ms() - t0 < 2500 * gp_test_scale());
    gp_supervisor_free(s);
    GP_CHECK_INT(count_kind(&r, GP_SUP_STARTED), ==, 1);
    GP_CHECK_INT(count_kind(&r, GP_SUP_RESTARTING), ==, 0);
    rec_event *x = nth(&r, GP_SUP_EXITED, 0);
    GP_CHECK(x != NULL);
    if (x)
        GP_CHECK_STR(x->reason, "stopped");
    GP_CHECK(r.n == 3 && r.ev[2].kind == GP_SUP_STOPPED);
    if (gp_test_failed_checks)
        print_events(&r);
    rec_free(&r);
    GP_CHECK(gp_test_no_children());
    GP_CHECK_FDS_AT_MOST(fds);
    GP_CHECK(threads_settle(threads));
}

GP_TEST(start_failure_counts_as_exit)
{
    warm_up_grpc();
    int fds = gp_test_count_fds(), threads = gp_test_count_threads();
    const char *env[] = {NULL};
    gp_client_config cc = client_config(env);
    static const char *argv[] = {"/bin/false", NULL};
    cc.argv = argv;
    gp_backoff_config b = {
        .immediate = 1, .first_delay_ms = 50, .max_delay_ms = 50, .healthy_after_ms = 10000};
    recorder r;
    rec_init(&r);
    gp_supervisor_config sc = {.client = &cc, .backoff = &b, .on_event = on_event, .ctx = &r};
    gp_supervisor *s;
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_OK);
    GP_CHECK_ERR(gp_supervisor_start(s, NULL), GP_OK);
    GP_CHECK(wait_for(&r, GP_SUP_EXITED, 3, 20000));
    GP_CHECK(gp_supervisor_starts(s) >= 3);
    gp_supervisor_free(s);
    GP_CHECK_INT(count_kind(&r, GP_SUP_STARTED), ==, 0);
    rec_event *x = nth(&r, GP_SUP_EXITED, 0);
    GP_CHECK(x != NULL);
    if (x)
        GP_CHECK_CONTAINS(x->reason, "start failed: plugin exited before we could connect");
    rec_event *d0 = nth(&r, GP_SUP_RESTARTING, 0), *d1 = nth(&r, GP_SUP_RESTARTING, 1);
    GP_CHECK(d0 && d0->delay_ms == 0 && d1 && d1->delay_ms == 50);
    if (gp_test_failed_checks)
        print_events(&r);
    rec_free(&r);
    GP_CHECK(gp_test_no_children());
    GP_CHECK_FDS_AT_MOST(fds);
    GP_CHECK(threads_settle(threads));
}

GP_TEST(bad_configs)
{
    const char *env[] = {NULL};
    gp_client_config cc = client_config(env);
    gp_supervisor *s = (gp_supervisor *)1;
    gp_supervisor_config sc = {.client = NULL};
    gp_status st;
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "client is NULL");
    GP_CHECK(s == NULL);
    gp_backoff_config b = {.first_delay_ms = 5000, .max_delay_ms = 10};
    sc = (gp_supervisor_config){.client = &cc, .backoff = &b};
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "first_delay_ms <= max_delay_ms");
    gp_client_config detached = cc;
    detached.detached = true;
    sc = (gp_supervisor_config){.client = &detached};
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_EINVAL);
    gp_client_config nocookie = cc;
    nocookie.handshake.magic_cookie_key = NULL;
    sc = (gp_supervisor_config){.client = &nocookie};
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, &st), GP_EINVAL);
    GP_CHECK_ERR(st.err, GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "magic_cookie_key");
    /* Never started: stop and free are fine. */
    sc = (gp_supervisor_config){.client = &cc};
    GP_CHECK_ERR(gp_supervisor_new(&sc, &s, NULL), GP_OK);
    gp_supervisor_stop(s);
    GP_CHECK_ERR(gp_supervisor_start(s, &st), GP_ESTATE);
    GP_CHECK_STR(st.msg, "supervisor: stopped for good");
    gp_supervisor_free(s);
    gp_supervisor_free(NULL);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(bad_configs);
    GP_RUN_TIMEOUT(crash_at_once_backs_off, 30);
    GP_RUN_TIMEOUT(crash_after_a_while_resets, 30);
    GP_RUN_TIMEOUT(hang_fails_health_check_and_restarts, 30);
    GP_RUN_TIMEOUT(netrpc_hang_and_crash, 30);
    GP_RUN(stop_during_backoff_is_prompt);
    GP_RUN(stop_running_plugin_is_graceful);
    GP_RUN(start_failure_counts_as_exit);
    return gp_test_done();
}
