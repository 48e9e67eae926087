/* The manager's runner against real plugins: this binary re-executed
 * (helper "plugin") as a gp_serve plugin that may exit with status 3 after
 * MGR_CRASH_AFTER_MS. Short backoff times make the policy visible: restarts
 * after exits with the delays of the backoff machine, a new pid and a new
 * run file each time; a stop is graceful and removes the run file; a stop
 * that leaves the plugin running keeps both, and the next runner adopts
 * the same pid; a wrong checksum is final and names both digests; a
 * plugin on TCP is refused without the "tcp" privilege; a hung plugin
 * fails its health check and is replaced. */
#include <goplugin/reattach.h>
#include <goplugin/server.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/store/manager_runner.h"
#include "transport/testing/gp_test.h"

#define COOKIE_KEY "GP_MANAGER_TEST"
#define COOKIE_VALUE "runner"
#define MAX_EVENTS 64

static void *crash_later(void *arg)
{
    usleep((useconds_t)atoi(arg) * 1000);
    _exit(3);
    return NULL;
}

static void *hang_later(void *arg)
{
    usleep((useconds_t)atoi(arg) * 1000);
    raise(SIGSTOP); /* the whole process stops: no answers, no exit */
    return NULL;
}

GP_HELPER(plugin)
{
    const char *crash = getenv("MGR_CRASH_AFTER_MS"), *hang = getenv("MGR_HANG_AFTER_MS");
    if (getenv("MGR_SILENT")) /* never a handshake line */
        for (;;)
            pause();
    if (crash || hang) {
        pthread_t t;
        pthread_create(&t, NULL, crash ? crash_later : hang_later, (void *)(crash ? crash : hang));
        pthread_detach(t);
    }
    static const gp_service noop = {.name = "noop"};
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = &noop,
        .nservices = 1,
        .network = getenv("MGR_NETWORK"), /* "tcp" for the privilege test */
    };
    return gp_serve(&cfg);
}

/* ---- recording events, with what the run file said at that moment ---- */

typedef struct rec_event {
    gp__runner_event_kind kind;
    pid_t pid;
    bool adopted;
    char reason[512];
    gp_err code;
    int64_t delay_ms;
    pid_t file_pid; /* the run file's Pid, 0 when there was none */
} rec_event;

typedef struct recorder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *run_file;
    rec_event ev[MAX_EVENTS];
    int n;
} recorder;

static void record(const gp__runner_event *ev, void *ctx)
{
    recorder *r = ctx;
    rec_event e = {.kind = ev->kind,
                   .pid = ev->pid,
                   .adopted = ev->adopted,
                   .code = ev->code,
                   .delay_ms = ev->delay_ms};
    snprintf(e.reason, sizeof e.reason, "%s", ev->reason ? ev->reason : "");
    gp_reattach_config rc;
    if (gp_reattach_file_read(r->run_file, &rc, NULL) == GP_OK) {
        e.file_pid = rc.pid;
        gp_reattach_config_clear(&rc);
    }
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_EVENTS)
        r->ev[r->n++] = e;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Wait until `n` events have come (up to 10 s, scaled). */
static int wait_events(recorder *r, int n)
{
    int64_t deadline_ms = (int64_t)(10000 * gp_test_scale());
    for (int64_t waited = 0; waited < deadline_ms; waited += 20) {
        pthread_mutex_lock(&r->mu);
        int have = r->n;
        pthread_mutex_unlock(&r->mu);
        if (have >= n)
            return have;
        usleep(20000);
    }
    pthread_mutex_lock(&r->mu);
    int have = r->n;
    pthread_mutex_unlock(&r->mu);
    return have;
}

typedef struct fixture {
    char dir[64];
    char run_file[128];
    const char *env[3];
    gp_client_config cc;
    recorder rec;
    gp__runner_spec spec;
} fixture;

/* crash_ms > 0: the plugin exits with status 3 that long after its start,
 * scaled by GP_TEST_SCALE (the crash must come after each start's health
 * check, which ASan on a loaded machine slows past 100 ms, CI). */
static void fixture_init(fixture *f, int crash_ms)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gp-mgr-XXXXXX");
    GP_CHECK(mkdtemp(f->dir) != NULL);
    snprintf(f->run_file, sizeof f->run_file, "%s/p.json", f->dir);
    static char crash_env[64];
    snprintf(crash_env, sizeof crash_env, "MGR_CRASH_AFTER_MS=%d",
             (int)(crash_ms * gp_test_scale()));
    f->env[0] = crash_ms > 0 ? crash_env : NULL;
    static const char *argv[4];
    argv[0] = gp_test_self_exe();
    argv[1] = GP_TEST_HELPER_FLAG;
    argv[2] = "plugin";
    argv[3] = NULL;
    f->cc = (gp_client_config){
        .argv = argv,
        .env = f->env,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC,
        .logger = {.level = GP_LOG_WARN},
    };
    pthread_mutex_init(&f->rec.mu, NULL);
    pthread_cond_init(&f->rec.cv, NULL);
    f->rec.run_file = f->run_file;
    f->spec = (gp__runner_spec){
        .client = &f->cc,
        .run_file = f->run_file,
        .restart = true,
        .backoff = {.immediate = 1,
                    .first_delay_ms = 200,
                    .max_delay_ms = 400,
                    .healthy_after_ms = 60000},
        .on_event = record,
        .ctx = &f->rec,
    };
}

static void fixture_done(fixture *f)
{
    unlink(f->run_file);
    rmdir(f->dir);
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Exits restart the plugin: 0 ms after the first (immediate = 1), then
 * 200, then 400 (the cap); each START has a new pid, published in the run
 * file before the event; each EXIT comes after the file is gone. */
GP_TEST(restarts_on_exit_with_backoff)
{
    fixture f;
    fixture_init(&f, 300);
    gp__runner *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_OK);
    /* START EXIT RESTART x3, then START */
    GP_CHECK_INT(wait_events(&f.rec, 10), >=, 10);
    gp__runner_stop(r, false);
    gp__runner_event_kind want[] = {GP__RUNNER_START, GP__RUNNER_EXIT, GP__RUNNER_RESTART};
    int64_t delays[] = {0, 200, 400};
    pid_t seen[4] = {0};
    for (int i = 0; i < 10; i++) {
        rec_event *e = &f.rec.ev[i];
        GP_CHECK_INT(e->kind, ==, want[i % 3]);
        if (e->kind == GP__RUNNER_START) {
            GP_CHECK(!e->adopted);
            GP_CHECK_INT(e->pid, >, 0);
            GP_CHECK_INT(e->file_pid, ==, e->pid);
            for (int j = 0; j < i / 3; j++)
                GP_CHECK_INT(seen[j], !=, e->pid);
            seen[i / 3] = e->pid;
        } else if (e->kind == GP__RUNNER_EXIT) {
            GP_CHECK_STR(e->reason, "exit status 3");
            GP_CHECK_INT(e->file_pid, ==, 0);
        } else {
            GP_CHECK_INT(e->delay_ms, ==, delays[i / 3]);
        }
    }
    GP_CHECK(!file_exists(f.run_file));
    GP_CHECK(gp_test_no_children());
    gp__runner_free(r);
    fixture_done(&f);
}

/* A stop ends a running plugin gracefully: EXIT "stopped", no RESTART,
 * the run file gone, the process gone. */
GP_TEST(stop_is_graceful_and_final)
{
    fixture f;
    fixture_init(&f, 0);
    gp__runner *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_OK);
    pid_t pid = gp__runner_pid(r);
    GP_CHECK_INT(pid, >, 0);
    GP_CHECK(file_exists(f.run_file));
    gp__runner_stop(r, false);
    GP_CHECK_INT(gp__runner_pid(r), ==, 0);
    GP_CHECK_INT(f.rec.n, ==, 2);
    GP_CHECK_INT(f.rec.ev[1].kind, ==, GP__RUNNER_EXIT);
    GP_CHECK_STR(f.rec.ev[1].reason, "stopped");
    GP_CHECK(!file_exists(f.run_file));
    gp_test_check_gone(pid);
    usleep(300000); /* nothing more comes */
    GP_CHECK_INT(f.rec.n, ==, 2);
    gp__runner_free(r);
    fixture_done(&f);
}

/* live restore: a stop that leaves the plugin running keeps its process
 * and run file; a new runner adopts the same pid (no launch); its stop
 * then ends it. */
GP_TEST(leave_running_then_adopt)
{
    fixture f;
    fixture_init(&f, 0);
    f.spec.live_restore = true;
    gp__runner *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_OK);
    pid_t pid = gp__runner_pid(r);
    gp__runner_stop(r, true);
    gp__runner_free(r);
    GP_CHECK_INT(f.rec.n, ==, 1); /* START only: no EXIT for a plugin let go */
    GP_CHECK(gp_test_alive(pid));
    GP_CHECK(file_exists(f.run_file));

    f.spec.adopt = true;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_OK);
    GP_CHECK_INT(gp__runner_pid(r), ==, pid);
    GP_CHECK_INT(f.rec.n, ==, 2);
    GP_CHECK(f.rec.ev[1].adopted);
    GP_CHECK_INT(f.rec.ev[1].pid, ==, pid);
    gp__runner_stop(r, false);
    gp__runner_free(r);
    GP_CHECK(!file_exists(f.run_file));
    /* It is still this process's child (launched here, then let go). */
    GP_CHECK_INT(gp_test_wait_child(pid, 5000), !=, -1);
    fixture_done(&f);
}

/* A run file whose process is gone: the runner launches a new one and
 * replaces the file. */
GP_TEST(stale_run_file_launches_anew)
{
    fixture f;
    fixture_init(&f, 0);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    GP_CHECK_INT(gp_test_wait_child(dead, 5000), ==, 0);
    FILE *fp = fopen(f.run_file, "w");
    GP_CHECK(fp != NULL);
    fprintf(fp,
            "{\"Protocol\":\"grpc\",\"ProtocolVersion\":1,\"Addr\":{\"Network\":\"unix\","
            "\"String\":\"%s/nothing.sock\"},\"Pid\":%d}\n",
            f.dir, (int)dead);
    fclose(fp);
    f.spec.adopt = true;
    gp__runner *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_OK);
    GP_CHECK_INT(f.rec.n, ==, 1);
    GP_CHECK(!f.rec.ev[0].adopted);
    GP_CHECK_INT(f.rec.ev[0].file_pid, ==, gp__runner_pid(r));
    gp__runner_stop(r, false);
    gp__runner_free(r);
    fixture_done(&f);
}

/* A binary that is not the one recorded: refused at start with both
 * digests, and not launched again. */
GP_TEST(checksum_mismatch_is_final)
{
    fixture f;
    fixture_init(&f, 0);
    uint8_t want[32];
    memset(want, 0x11, sizeof want);
    f.cc.sha256 = want;
    gp__runner *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_ECHECKSUM);
    GP_CHECK_CONTAINS(st.msg, "start failed: checksums did not match: expected "
                              "1111111111111111111111111111111111111111111111111111111111111111"
                              ", binary has ");
    usleep(500000);
    GP_CHECK_INT(f.rec.n, ==, 1);
    GP_CHECK_INT(f.rec.ev[0].kind, ==, GP__RUNNER_EXIT);
    GP_CHECK_INT(f.rec.ev[0].code, ==, GP_ECHECKSUM);
    GP_CHECK(!gp__runner_first_cut(r)); /* a verdict, not a stop's doing */
    GP_CHECK(!file_exists(f.run_file));
    gp__runner_free(r);
    fixture_done(&f);
}

/* A plugin that serves on TCP: stopped at once, for good, without the
 * "tcp" privilege; published with its tcp address with it. */
GP_TEST(tcp_needs_the_privilege)
{
    fixture f;
    fixture_init(&f, 0);
    f.env[0] = "MGR_NETWORK=tcp";
    gp__runner *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_EUNSUPPORTED);
    GP_CHECK_CONTAINS(st.msg, "serves on tcp 127.0.0.1:");
    GP_CHECK_CONTAINS(st.msg, "without the \"tcp\" privilege");
    usleep(300000);
    GP_CHECK_INT(f.rec.n, ==, 1); /* EXIT, no RESTART */
    GP_CHECK(!file_exists(f.run_file));
    GP_CHECK(gp_test_no_children());
    gp__runner_free(r);

    f.rec.n = 0;
    f.spec.allow_tcp = true;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_OK);
    gp_reattach_config rc;
    GP_CHECK_ERR(gp_reattach_file_read(f.run_file, &rc, &st), GP_OK);
    GP_CHECK_STR(rc.network, "tcp");
    gp_reattach_config_clear(&rc);
    gp__runner_free(r);
    fixture_done(&f);
}

/* A plugin that stops answering (SIGSTOPped) fails its health check, is
 * killed and launched again; with pings off it is left alone. */
GP_TEST(hung_plugin_fails_health_check)
{
    fixture f;
    fixture_init(&f, 0);
    /* Scaled: a hang before the first start's health check would fail
     * the start itself (see stop_during_backoff_is_prompt). */
    char hang[64];
    snprintf(hang, sizeof hang, "MGR_HANG_AFTER_MS=%d", (int)(300 * gp_test_scale()));
    f.env[0] = hang;
    f.spec.health_interval_ms = 100;
    f.spec.health_timeout_ms = 300;
    gp__runner *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_OK);
    pid_t first = gp__runner_pid(r);
    GP_CHECK_INT(wait_events(&f.rec, 4), >=, 4); /* START EXIT RESTART START */
    gp__runner_stop(r, false);
    GP_CHECK_INT(f.rec.ev[1].kind, ==, GP__RUNNER_EXIT);
    GP_CHECK_CONTAINS(f.rec.ev[1].reason, "health check failed: ");
    GP_CHECK_INT(f.rec.ev[1].pid, ==, first);
    GP_CHECK_INT(f.rec.ev[3].kind, ==, GP__RUNNER_START);
    GP_CHECK_INT(f.rec.ev[3].pid, !=, first);
    GP_CHECK(gp_test_no_children());
    gp__runner_free(r);

    f.rec.n = 0;
    f.spec.health_interval_ms = -1;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, (int)(10000 * gp_test_scale()), &st), GP_OK);
    usleep((useconds_t)(300 * gp_test_scale() + 700) * 1000); /* past the hang */
    GP_CHECK_INT(f.rec.n, ==, 1);                             /* hung, but nobody asks */
    gp__runner_free(r); /* the stop still ends it: SIGKILL after the grace */
    GP_CHECK(gp_test_no_children());
    fixture_done(&f);
}

/* A stop while the plugin starts (it never prints its handshake line):
 * the first result fails as cut by the stop, and the EXIT carries no
 * error code (the manager logs it at INFO). */
GP_TEST(a_stop_during_the_start_is_no_failure)
{
    fixture f;
    fixture_init(&f, 0);
    f.env[0] = "MGR_SILENT=1";
    gp__runner *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_ERR(gp__runner_wait_first(r, 200, &st), GP_ETIMEDOUT);
    GP_CHECK(!gp__runner_first_cut(r));             /* no result yet */
    usleep((useconds_t)(200000 * gp_test_scale())); /* its launch under way */
    gp__runner_stop(r, false);
    GP_CHECK_ERR(gp__runner_wait_first(r, 0, &st), GP_ESTATE);
    GP_CHECK(gp__runner_first_cut(r));
    GP_CHECK_INT(f.rec.n, ==, 1);
    GP_CHECK_INT(f.rec.ev[0].kind, ==, GP__RUNNER_EXIT);
    GP_CHECK_INT(f.rec.ev[0].code, ==, GP_OK);
    GP_CHECK_STR(f.rec.ev[0].reason, "start failed: stopped");
    gp__runner_free(r);
    fixture_done(&f);
    GP_CHECK(gp_test_no_children());
}

/* A stop during the backoff wait ends it at once. */
GP_TEST(stop_during_backoff_is_prompt)
{
    fixture f;
    fixture_init(&f, 300); /* START EXIT RESTART */
    f.spec.backoff = (gp_backoff_config){
        .immediate = 0, .first_delay_ms = 30000, .max_delay_ms = 30000, .healthy_after_ms = 60000};
    gp__runner *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp__runner_start(&f.spec, &r, &st), GP_OK);
    GP_CHECK_INT(wait_events(&f.rec, 3), >=, 3);
    GP_CHECK_INT(f.rec.ev[2].kind, ==, GP__RUNNER_RESTART);
    GP_CHECK_INT(f.rec.ev[2].delay_ms, ==, 30000);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    gp__runner_stop(r, false);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    GP_CHECK(ms < 2000 * gp_test_scale());
    GP_CHECK_INT(f.rec.n, ==, 3);
    gp__runner_free(r);
    fixture_done(&f);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN_TIMEOUT(restarts_on_exit_with_backoff, 30);
    GP_RUN_TIMEOUT(stop_is_graceful_and_final, 20);
    GP_RUN_TIMEOUT(a_stop_during_the_start_is_no_failure, 20);
    GP_RUN_TIMEOUT(leave_running_then_adopt, 20);
    GP_RUN_TIMEOUT(stale_run_file_launches_anew, 20);
    GP_RUN_TIMEOUT(checksum_mismatch_is_final, 20);
    GP_RUN_TIMEOUT(tcp_needs_the_privilege, 20);
    GP_RUN_TIMEOUT(hung_plugin_fails_health_check, 30);
    GP_RUN_TIMEOUT(stop_during_backoff_is_prompt, 20);
    return gp_test_done();
}
