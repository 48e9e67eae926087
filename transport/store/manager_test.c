/* The manager over a real store, with real plugins: this binary, installed
 * into the store (its blob is a copy of it) and run as helper "plugin".
 * Events in order for install, enable, disable, remove; restarts with
 * backoff after exits until disable; none for "restart": "no"; one
 * manager per root; live restore and adoption by the next manager; a
 * changed blob refused at enable with both digests; a plugin left running
 * but no longer enabled is stopped at restore; logs held to their cap at
 * launch and while a plugin runs; an enable that waits for a start blocks
 * no other call. */
#include <goplugin/reattach.h>
#include <goplugin/server.h>
#include <goplugin/store_manager.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"

#define COOKIE_KEY "GP_MANAGER_TEST"
#define COOKIE_VALUE "manager"
#define MAX_EVENTS 64

static void *crash_later(void *arg)
{
    usleep((useconds_t)atoi(arg) * 1000);
    _exit(3);
    return NULL;
}

/* MGR_CHATTER: hclog lines on the real stderr (raw fd 2 writes would go
 * to the host over GRPCStdio instead): a burst of over 6000 bytes at
 * once, then "tick N" every 100 ms: over a 4096-byte cap at the first
 * look, under it for seconds after. */
static void *chatter(void *arg)
{
    (void)arg;
    gp_logger lg = {.fn = gp_log_json_stderr, .level = GP_LOG_TRACE};
    char a[101];
    memset(a, 'a', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    for (int i = 0; i < 60; i++)
        gp_logf(&lg, GP_LOG_INFO, "chatter", NULL, 0, "%s", a);
    for (int i = 0;; i++) {
        gp_logf(&lg, GP_LOG_INFO, "chatter", NULL, 0, "tick %d", i);
        usleep(100000);
    }
    return NULL;
}

GP_HELPER(plugin)
{
    const char *crash = getenv("MGR_CRASH_AFTER_MS");
    if (crash) {
        pthread_t t;
        pthread_create(&t, NULL, crash_later, (void *)crash);
        pthread_detach(t);
    }
    if (getenv("MGR_SILENT")) /* never a handshake line */
        for (;;)
            pause();
    const char *slow = getenv("MGR_SLOW_START_MS"); /* a handshake line that late */
    if (slow)
        usleep((useconds_t)atoi(slow) * 1000);
    if (getenv("MGR_CHATTER")) {
        pthread_t t;
        pthread_create(&t, NULL, chatter, NULL);
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
    return gp_serve(&cfg);
}

typedef struct rec_event {
    gp_manager_event_kind kind;
    char name[64];
    pid_t pid;
    bool adopted;
    char reason[512];
    int64_t delay_ms;
} rec_event;

typedef struct recorder {
    pthread_mutex_t mu;
    rec_event ev[MAX_EVENTS];
    int n;
} recorder;

static void record(const gp_manager_event *ev, void *ctx)
{
    recorder *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_EVENTS) {
        rec_event *e = &r->ev[r->n++];
        e->kind = ev->kind;
        snprintf(e->name, sizeof e->name, "%s", ev->name);
        e->pid = ev->pid;
        e->adopted = ev->adopted;
        snprintf(e->reason, sizeof e->reason, "%s", ev->reason);
        e->delay_ms = ev->delay_ms;
    }
    pthread_mutex_unlock(&r->mu);
}

static int count(recorder *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static int wait_events(recorder *r, int n)
{
    for (int waited = 0; waited < (int)(10000 * gp_test_scale()); waited += 20) {
        if (count(r) >= n)
            break;
        usleep(20000);
    }
    return count(r);
}

/* "install start ..." of the events so far, for one readable check. */
static void kinds(recorder *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s", i ? " " : "", gp_manager_event_name(r->ev[i].kind));
    }
    pthread_mutex_unlock(&r->mu);
}

static char root[64];
static recorder rec;

static int setup(void)
{
    snprintf(root, sizeof root, "/tmp/gp-mgrt-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    memset(&rec, 0, sizeof rec);
    pthread_mutex_init(&rec.mu, NULL);
    return 0;
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", root);
}

/* The manager's logger (a case may point it elsewhere: each runs in a
 * process of its own). */
static gp_logger mgr_logger = {.level = GP_LOG_WARN};

static gp_manager *open_manager_rotating(bool live_restore, long long log_rotate_bytes)
{
    gp_backoff_config bo = {
        .immediate = 1, .first_delay_ms = 200, .max_delay_ms = 400, .healthy_after_ms = 60000};
    gp_manager_config mc = {.root = root,
                            .live_restore = live_restore,
                            .log_rotate_bytes = log_rotate_bytes,
                            .backoff = &bo,
                            .logger = mgr_logger,
                            .on_event = record,
                            .ctx = &rec};
    gp_manager *m = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_manager_open(&mc, &m, &st), GP_OK);
    return m;
}

static gp_manager *open_manager(bool live_restore)
{
    return open_manager_rotating(live_restore, 0);
}

static void install_restart(gp_manager *m, const char *name, const char *crash_env,
                            gp_store_restart restart)
{
    const char *args[] = {GP_TEST_HELPER_FLAG, "plugin", NULL};
    const char *env[] = {crash_env, NULL};
    gp_store_install_opts o = {.path = gp_test_self_exe(),
                               .name = name,
                               .args = args,
                               .cookie_key = COOKIE_KEY,
                               .cookie_value = COOKIE_VALUE,
                               .protocols = GP_PROTO_GRPC,
                               .env = crash_env ? env : NULL,
                               .restart = restart};
    gp_status st;
    GP_CHECK_ERR(gp_manager_install(m, &o, NULL, &st), GP_OK);
}

static void install(gp_manager *m, const char *name, const char *crash_env)
{
    install_restart(m, name, crash_env, GP_STORE_RESTART_ALWAYS);
}

/* MGR_CRASH_AFTER_MS=ms, scaled: the crash must come after the start's
 * health check, and a start under ASan on a loaded machine took longer
 * than 200 ms (CI). The returned string is static: use it at once. */
static const char *crash_env(int ms)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "MGR_CRASH_AFTER_MS=%d", (int)(ms * gp_test_scale()));
    return buf;
}

static pid_t run_file_pid(const char *name)
{
    char path[256];
    GP_CHECK(gp_manager_run_file(root, name, path, sizeof path) > 0);
    gp_reattach_config rc;
    if (gp_reattach_file_read(path, &rc, NULL) != GP_OK)
        return 0;
    pid_t pid = rc.pid;
    gp_reattach_config_clear(&rc);
    return pid;
}

GP_TEST(events_in_order)
{
    gp_manager *m = open_manager(false);
    GP_CHECK_ERR(gp_manager_restore(m, NULL), GP_OK);
    install(m, "p", NULL);
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    pid_t pid = gp_manager_pid(m, "p");
    GP_CHECK_INT(pid, >, 0);
    GP_CHECK_INT(run_file_pid("p"), ==, pid);
    GP_CHECK(gp_test_alive(pid));
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_ESTATE);
    GP_CHECK_ERR(gp_manager_remove(m, "p", false, &st), GP_ESTATE);
    GP_CHECK_ERR(gp_manager_disable(m, "p", &st), GP_OK);
    GP_CHECK_INT(gp_manager_pid(m, "p"), ==, 0);
    GP_CHECK_INT(run_file_pid("p"), ==, 0);
    gp_test_check_gone(pid);
    GP_CHECK_ERR(gp_manager_remove(m, "p", false, &st), GP_OK);
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_ENOTFOUND);
    char k[256];
    kinds(&rec, k, sizeof k);
    GP_CHECK_STR(k, "install enable start exit disable remove");
    GP_CHECK_STR(rec.ev[2].name, "p");
    GP_CHECK_INT(rec.ev[2].pid, ==, pid);
    GP_CHECK_STR(rec.ev[3].reason, "stopped");
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(restarts_until_disabled)
{
    gp_manager *m = open_manager(false);
    GP_CHECK_ERR(gp_manager_restore(m, NULL), GP_OK);
    install(m, "crashy", crash_env(300));
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "crashy", &st), GP_OK);
    /* install enable start exit restart(0) start exit restart(200) start */
    GP_CHECK_INT(wait_events(&rec, 9), >=, 9);
    GP_CHECK_ERR(gp_manager_disable(m, "crashy", &st), GP_OK);
    int n = count(&rec);
    usleep(800000);
    GP_CHECK_INT(count(&rec), ==, n); /* nothing after disable */
    char k[512];
    kinds(&rec, k, sizeof k);
    GP_CHECK_CONTAINS(k, "install enable start exit restart start exit restart start");
    GP_CHECK_STR(rec.ev[3].reason, "exit status 3");
    GP_CHECK_INT(rec.ev[4].delay_ms, ==, 0);
    GP_CHECK_INT(rec.ev[7].delay_ms, ==, 200);
    GP_CHECK_INT(rec.ev[2].pid, !=, rec.ev[5].pid);
    GP_CHECK_STR(gp_manager_event_name(rec.ev[n - 1].kind), "disable");
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
}

/* "restart": "no": an exit is final; the record stays enabled. */
GP_TEST(restart_no_is_not_restarted)
{
    gp_manager *m = open_manager(false);
    install_restart(m, "once", crash_env(200), GP_STORE_RESTART_NO);
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "once", &st), GP_OK);
    GP_CHECK_INT(wait_events(&rec, 4), >=, 4);
    usleep(800000);
    char k[256];
    kinds(&rec, k, sizeof k);
    GP_CHECK_STR(k, "install enable start exit");
    GP_CHECK_STR(rec.ev[3].reason, "exit status 3");
    GP_CHECK_INT(gp_manager_pid(m, "once"), ==, 0);
    GP_CHECK_INT(run_file_pid("once"), ==, 0);
    GP_CHECK_ERR(gp_manager_disable(m, "once", &st), GP_OK);
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
}

typedef struct enabler {
    gp_manager *m;
    const char *name;
    gp_err rc;
    gp_status st;
} enabler;

static void *enable_main(void *arg)
{
    enabler *a = arg;
    a->rc = gp_manager_enable(a->m, a->name, &a->st);
    return NULL;
}

/* gp_manager_enable(m, name) on a thread of its own (its result in *a
 * after the join); returns once its ENABLE event came and its launch has
 * had a moment to get under way. */
static pthread_t enable_in_background(enabler *a, gp_manager *m, const char *name)
{
    *a = (enabler){.m = m, .name = name};
    int n = count(&rec);
    pthread_t t;
    GP_CHECK_INT(pthread_create(&t, NULL, enable_main, a), ==, 0);
    GP_CHECK_INT(wait_events(&rec, n + 1), >=, n + 1);
    usleep((useconds_t)(200000 * gp_test_scale()));
    return t;
}

/* An enable waits for its start without holding the manager: while a
 * plugin that never answers is being started (60 s start timeout), another
 * plugin is enabled, and a disable stops the launch; the waiting enable
 * then fails saying so. */
static atomic_int errors_logged;

static void count_errors(void *ctx, gp_log_level level, const char *name, const char *msg,
                         const gp_log_kv *kv, size_t nkv)
{
    gp_log_text_stderr(ctx, level, name, msg, kv, nkv);
    if (level >= GP_LOG_ERROR)
        atomic_fetch_add(&errors_logged, 1);
}

GP_TEST(an_enable_waiting_for_a_start_blocks_nothing)
{
    /* A stop during a start is what was asked for: said, not as an error. */
    mgr_logger = (gp_logger){.fn = count_errors, .level = GP_LOG_INFO};
    gp_manager *m = open_manager(false);
    GP_CHECK_ERR(gp_manager_restore(m, NULL), GP_OK); /* after it: waits unlocked */
    install(m, "silent", "MGR_SILENT=1");
    install(m, "p", NULL);
    enabler a;
    pthread_t t = enable_in_background(&a, m, "silent");
    int64_t t0 = gp_test_now_ms();
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    GP_CHECK(gp_manager_pid(m, "p") > 0);
    GP_CHECK_ERR(gp_manager_disable(m, "silent", &st), GP_OK);
    pthread_join(t, NULL);
    GP_CHECK_INT(gp_test_now_ms() - t0, <, (int64_t)(10000 * gp_test_scale()));
    GP_CHECK_ERR(a.rc, GP_ESTATE);
    GP_CHECK_STR(a.st.msg, "plugin silent was disabled or removed while it started");
    GP_CHECK_INT(gp_manager_pid(m, "silent"), ==, 0);
    gp_store_record *r = NULL;
    GP_CHECK_ERR(gp_store_get(gp_manager_store(m), "silent", &r, &st), GP_OK);
    GP_CHECK(r && !r->enabled);
    gp_store_record_free(r);
    /* Enabled again, and removed with force while it starts: the same. */
    t = enable_in_background(&a, m, "silent");
    GP_CHECK_ERR(gp_manager_remove(m, "silent", true, &st), GP_OK);
    pthread_join(t, NULL);
    GP_CHECK_ERR(a.rc, GP_ESTATE);
    GP_CHECK_ERR(gp_store_get(gp_manager_store(m), "silent", &r, &st), GP_ENOTFOUND);
    GP_CHECK_ERR(gp_manager_disable(m, "p", &st), GP_OK);
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
    GP_CHECK_INT(atomic_load(&errors_logged), ==, 0);
}

/* A shutdown while an enable waits for a plugin that never answers: the
 * wait ends at once (not after the 60 s start timeout), the record stays
 * enabled for the next manager, and nothing new starts or stops. */
GP_TEST(a_shutdown_ends_an_enable_s_wait)
{
    gp_manager *m = open_manager(false);
    GP_CHECK_ERR(gp_manager_restore(m, NULL), GP_OK);
    install(m, "silent", "MGR_SILENT=1");
    install(m, "p", NULL);
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    pid_t pid = gp_manager_pid(m, "p");
    enabler a;
    pthread_t t = enable_in_background(&a, m, "silent");
    int64_t t0 = gp_test_now_ms();
    gp_manager_shutdown(m);
    pthread_join(t, NULL);
    GP_CHECK_INT(gp_test_now_ms() - t0, <, (int64_t)(10000 * gp_test_scale()));
    GP_CHECK_ERR(a.rc, GP_ESTATE);
    GP_CHECK_STR(a.st.msg, "manager: shutting down while plugin silent started; it stays "
                           "enabled and starts with the next manager");
    gp_test_check_gone(pid);
    gp_store_record *r = NULL;
    GP_CHECK_ERR(gp_store_get(gp_manager_store(m), "silent", &r, &st), GP_OK);
    GP_CHECK(r && r->enabled);
    gp_store_record_free(r);
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_ESTATE);
    GP_CHECK_STR(st.msg, "manager: shutting down; plugin p not enabled");
    GP_CHECK_ERR(gp_manager_disable(m, "p", &st), GP_ESTATE);
    GP_CHECK_ERR(gp_manager_remove(m, "p", true, &st), GP_ESTATE);
    GP_CHECK_ERR(gp_store_get(gp_manager_store(m), "p", &r, &st), GP_OK);
    GP_CHECK(r && r->enabled);
    gp_store_record_free(r);
    gp_manager_shutdown(m); /* again: nothing */
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
    char k[256];
    kinds(&rec, k, sizeof k);
    GP_CHECK_STR(k, "install install enable start enable exit exit");
}

typedef struct restorer {
    gp_manager *m;
    gp_err rc;
} restorer;

static void *restore_main(void *arg)
{
    restorer *a = arg;
    a->rc = gp_manager_restore(a->m, NULL);
    return NULL;
}

/* Restore waits for first starts without holding the manager: a shutdown
 * ends its wait for a plugin that never answers at once, and the record
 * stays enabled. */
GP_TEST(a_shutdown_ends_restore_s_wait)
{
    gp_manager *m = open_manager(false);
    install(m, "silent", "MGR_SILENT=1");
    gp_status st;
    GP_CHECK_ERR(gp_store_enable(gp_manager_store(m), "silent", &st), GP_OK);
    restorer a = {.m = m};
    pthread_t t;
    GP_CHECK_INT(pthread_create(&t, NULL, restore_main, &a), ==, 0);
    usleep((useconds_t)(200000 * gp_test_scale())); /* its launch under way */
    int64_t t0 = gp_test_now_ms();
    gp_manager_shutdown(m);
    pthread_join(t, NULL);
    GP_CHECK_INT(gp_test_now_ms() - t0, <, (int64_t)(10000 * gp_test_scale()));
    GP_CHECK_ERR(a.rc, GP_OK);
    gp_store_record *r = NULL;
    GP_CHECK_ERR(gp_store_get(gp_manager_store(m), "silent", &r, &st), GP_OK);
    GP_CHECK(r && r->enabled);
    gp_store_record_free(r);
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
}

/* Before restore too, an enable waits without holding the manager: another
 * enable and a disable of the starting plugin go on, and restore then
 * starts nothing twice. */
GP_TEST(before_restore_an_enable_waits_unlocked_too)
{
    gp_manager *m = open_manager(false);
    install(m, "silent", "MGR_SILENT=1");
    install(m, "p", NULL);
    enabler a;
    pthread_t t = enable_in_background(&a, m, "silent");
    int64_t t0 = gp_test_now_ms();
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    pid_t pid = gp_manager_pid(m, "p");
    GP_CHECK(pid > 0);
    GP_CHECK_ERR(gp_manager_disable(m, "silent", &st), GP_OK);
    pthread_join(t, NULL);
    GP_CHECK_INT(gp_test_now_ms() - t0, <, (int64_t)(10000 * gp_test_scale()));
    GP_CHECK_ERR(a.rc, GP_ESTATE);
    GP_CHECK_STR(a.st.msg, "plugin silent was disabled or removed while it started");
    GP_CHECK_ERR(gp_manager_restore(m, &st), GP_OK);
    GP_CHECK_INT(gp_manager_pid(m, "p"), ==, pid);
    char k[256];
    kinds(&rec, k, sizeof k);
    GP_CHECK_STR(k, "install install enable enable start exit disable");
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
}

/* An enable before restore: restore leaves that plugin to its runner
 * (before, it adopted it a second time through its run file). */
GP_TEST(restore_after_an_enable_starts_nothing_twice)
{
    gp_manager *m = open_manager(false);
    install(m, "p", NULL);
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    pid_t pid = gp_manager_pid(m, "p");
    GP_CHECK_ERR(gp_manager_restore(m, &st), GP_OK);
    GP_CHECK_INT(gp_manager_pid(m, "p"), ==, pid);
    char k[256];
    kinds(&rec, k, sizeof k);
    GP_CHECK_STR(k, "install enable start");
    GP_CHECK_ERR(gp_manager_disable(m, "p", &st), GP_OK);
    gp_test_check_gone(pid);
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
}

/* Restore stops a process of this root that no run file names: one an
 * earlier manager launched and never published. Not one of its own
 * manager's, unpublished only for now (a restart under way of a plugin
 * enabled before restore): here its run file is removed by hand. */
GP_TEST(restore_leaves_its_own_unpublished_launch_alone)
{
    gp_manager *m = open_manager(false);
    install(m, "p", NULL);
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    pid_t pid = gp_manager_pid(m, "p");
    char run[512];
    snprintf(run, sizeof run, "%s/run/p.json", root);
    GP_CHECK_INT(unlink(run), ==, 0);
    GP_CHECK_ERR(gp_manager_restore(m, &st), GP_OK);
    GP_CHECK(gp_test_alive(pid));
    GP_CHECK_INT(gp_manager_pid(m, "p"), ==, pid);
    usleep(300000); /* an exit would be seen by now */
    char k[256];
    kinds(&rec, k, sizeof k);
    GP_CHECK_STR(k, "install enable start");
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(one_manager_per_root)
{
    gp_manager *m = open_manager(false);
    gp_manager_config mc = {.root = root};
    gp_manager *m2 = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_manager_open(&mc, &m2, &st), GP_EBUSY);
    GP_CHECK(m2 == NULL);
    gp_manager_close(m);
    GP_CHECK_ERR(gp_manager_open(&mc, &m2, &st), GP_OK);
    gp_manager_close(m2);
}

/* A live-restore manager installs and enables "p" (env: one entry or
 * NULL), and closes, leaving it running: its pid. */
static pid_t left_running(const char *env)
{
    gp_manager *m = open_manager(true);
    GP_CHECK_ERR(gp_manager_restore(m, NULL), GP_OK);
    install(m, "p", env);
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    pid_t pid = gp_manager_pid(m, "p");
    gp_manager_close(m);
    GP_CHECK(gp_test_alive(pid));
    return pid;
}

/* Disabled in the store, with no manager running. */
static void disable_without_manager(const char *name)
{
    gp_store_open_opts o = {.root = root, .lock = true};
    gp_store *s = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_store_open(&o, &s, &st), GP_OK);
    GP_CHECK_ERR(gp_store_disable(s, name, &st), GP_OK);
    gp_store_close(s);
}

/* live restore: the first manager leaves the plugin running; the second
 * adopts the same pid; a manager without live restore stops it at close. */
GP_TEST(live_restore_then_adopt)
{
    pid_t pid = left_running(NULL);
    GP_CHECK_INT(run_file_pid("p"), ==, pid);
    gp_status st;
    gp_manager *m = open_manager(false);
    GP_CHECK_ERR(gp_manager_restore(m, &st), GP_OK);
    GP_CHECK_INT(gp_manager_pid(m, "p"), ==, pid);
    char k[256];
    kinds(&rec, k, sizeof k);
    GP_CHECK_STR(k, "install enable start start");
    GP_CHECK(!rec.ev[2].adopted);
    GP_CHECK(rec.ev[3].adopted);
    GP_CHECK_INT(rec.ev[3].pid, ==, pid);
    gp_manager_close(m);
    GP_CHECK_INT(run_file_pid("p"), ==, 0);
    GP_CHECK_INT(gp_test_wait_child(pid, (int)(5000 * gp_test_scale())), !=,
                 -1); /* launched here, then let go */
}

static void write_bytes(const char *path, char c, size_t n)
{
    FILE *f = fopen(path, "w");
    GP_CHECK(f != NULL);
    if (!f)
        return;
    for (size_t i = 0; i < n; i++)
        fputc(c, f);
    GP_CHECK_INT(fclose(f), ==, 0);
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

static int first_byte(const char *path)
{
    FILE *f = fopen(path, "r");
    int c = f ? fgetc(f) : -2;
    if (f)
        fclose(f);
    return c;
}

/* Live restore: a log file at the cap is moved to NAME.*.1 before the
 * launch; one under it is appended to. */
GP_TEST(live_restore_rotates_full_logs_at_launch)
{
    gp_manager *m = open_manager_rotating(true, 4096);
    GP_CHECK_ERR(gp_manager_restore(m, NULL), GP_OK);
    install(m, "p", NULL);
    char out[128], err[128], out1[256], err1[256];
    snprintf(out, sizeof out, "%s/logs/p.stdout", root);
    snprintf(err, sizeof err, "%s/logs/p.stderr", root);
    snprintf(out1, sizeof out1, "%s.1", out);
    snprintf(err1, sizeof err1, "%s.1", err);
    write_bytes(err, 'x', 5000); /* over: rotated */
    write_bytes(out, 'y', 100);  /* under: kept */
    write_bytes(err1, 'z', 10);  /* the previous .1: replaced */
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    GP_CHECK_INT(file_size(err1), ==, 5000);
    GP_CHECK_INT(first_byte(err1), ==, 'x');
    GP_CHECK(first_byte(err) != 'x'); /* a new file: empty, or the new plugin's lines */
    GP_CHECK_INT(file_size(out1), ==, -1);
    GP_CHECK_INT(first_byte(out), ==, 'y');
    GP_CHECK(file_size(out) > 100); /* the handshake line was appended */
    GP_CHECK_ERR(gp_manager_disable(m, "p", &st), GP_OK);
    gp_manager_close(m);
}

static atomic_int ticks_logged, rotate_warnings;

static void count_ticks(void *ctx, gp_log_level level, const char *name, const char *msg,
                        const gp_log_kv *kv, size_t nkv)
{
    (void)ctx, (void)name, (void)kv, (void)nkv;
    if (strncmp(msg, "tick ", 5) == 0)
        atomic_fetch_add(&ticks_logged, 1);
    if (level == GP_LOG_WARN && strncmp(msg, "rotate ", 7) == 0)
        atomic_fetch_add(&rotate_warnings, 1);
}

static bool wait_until_size(const char *path, long long at_least)
{
    for (int waited = 0; waited < (int)(10000 * gp_test_scale()); waited += 20) {
        if (file_size(path) >= at_least)
            return true;
        usleep(20000);
    }
    return false;
}

/* A running plugin's log at the cap is copied to NAME.*.1 and cut in
 * place: the plugin lives on (same pid, no exit), its next lines start the
 * file again (no hole: it appends), and the manager still follows them. */
GP_TEST(a_running_plugin_s_log_is_cut_at_the_cap)
{
    mgr_logger = (gp_logger){.fn = count_ticks, .level = GP_LOG_TRACE};
    gp_manager *m = open_manager_rotating(true, 4096);
    GP_CHECK_ERR(gp_manager_restore(m, NULL), GP_OK);
    install(m, "p", "MGR_CHATTER=1");
    char err[128], err1[256];
    snprintf(err, sizeof err, "%s/logs/p.stderr", root);
    snprintf(err1, sizeof err1, "%s.1", err);
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    pid_t pid = gp_manager_pid(m, "p");
    GP_CHECK(wait_until_size(err1, 6000));
    char *old = gp_test_read_file(err1, NULL);
    GP_CHECK(old && strstr(old, "\"aaaaaaaaaa"));
    free(old);
    int seen = atomic_load(&ticks_logged);
    /* Three more ticks: in the new file from its first byte, and followed. */
    int64_t until = gp_test_now_ms() + (int64_t)(5000 * gp_test_scale());
    while (atomic_load(&ticks_logged) < seen + 3 && gp_test_now_ms() < until)
        usleep(20000);
    GP_CHECK_INT(atomic_load(&ticks_logged), >=, seen + 3);
    GP_CHECK_INT(first_byte(err), ==, '{');
    GP_CHECK_INT(file_size(err), <, 4096);
    char *now = gp_test_read_file(err, NULL);
    GP_CHECK(now && !strstr(now, "aaaa"));
    free(now);
    GP_CHECK_INT(gp_manager_pid(m, "p"), ==, pid);
    char k[256];
    kinds(&rec, k, sizeof k);
    GP_CHECK_STR(k, "install enable start");
    GP_CHECK_ERR(gp_manager_disable(m, "p", &st), GP_OK);
    gp_manager_close(m);
}

/* A cut that cannot be made (its copy's name is taken by a directory)
 * is said once, then left for a minute: not a warning every second. */
GP_TEST(a_failing_cut_is_not_retried_every_second)
{
    mgr_logger = (gp_logger){.fn = count_ticks, .level = GP_LOG_TRACE};
    gp_manager *m = open_manager_rotating(true, 4096);
    GP_CHECK_ERR(gp_manager_restore(m, NULL), GP_OK);
    install(m, "p", "MGR_CHATTER=1");
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/logs/p.stderr.1.tmp", root);
    GP_CHECK(mkdir(tmp, 0700) == 0);
    gp_status st;
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_OK);
    int64_t until = gp_test_now_ms() + (int64_t)(10000 * gp_test_scale());
    while (atomic_load(&rotate_warnings) == 0 && gp_test_now_ms() < until)
        usleep(20000);
    GP_CHECK_INT(atomic_load(&rotate_warnings), ==, 1);
    usleep(3500000); /* three more looks' time at the 1 s pace */
    GP_CHECK_INT(atomic_load(&rotate_warnings), ==, 1);
    GP_CHECK_ERR(gp_manager_disable(m, "p", &st), GP_OK);
    gp_manager_close(m);
    rmdir(tmp);
}

/* A blob changed after install: enable is refused, naming what the record
 * wants and what the file has, and the record stays disabled. */
GP_TEST(tampered_blob_refused)
{
    gp_manager *m = open_manager(false);
    install(m, "p", NULL);
    gp_store_record *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_store_get(gp_manager_store(m), "p", &r, &st), GP_OK);
    char blob[512];
    GP_CHECK(gp_store_blob_path(gp_manager_store(m), r->digest, blob, sizeof blob) > 0);
    GP_CHECK(chmod(blob, 0755) == 0);
    int fd = open(blob, O_WRONLY | O_APPEND);
    GP_CHECK(fd >= 0);
    GP_CHECK(write(fd, "x", 1) == 1);
    close(fd);
    GP_CHECK_ERR(gp_manager_enable(m, "p", &st), GP_ECHECKSUM);
    GP_CHECK_CONTAINS(st.msg, "checksums did not match: expected ");
    GP_CHECK_CONTAINS(st.msg, r->digest);
    GP_CHECK_CONTAINS(st.msg, ", binary has ");
    gp_store_record_free(r);
    GP_CHECK_ERR(gp_store_get(gp_manager_store(m), "p", &r, &st), GP_OK);
    GP_CHECK(!r->enabled);
    gp_store_record_free(r);
    char k[256];
    kinds(&rec, k, sizeof k);
    GP_CHECK_STR(k, "install enable exit disable");
    gp_manager_close(m);
}

/* A plugin left running by a live restore, then disabled while no manager
 * ran (the store edited directly): the next restore stops it. */
/* A plugin left running by a live-restore manager, then disabled with no
 * manager, then enabled again before the next manager's restore: the new
 * launch replaces the old process, which restore stops although the run
 * file still names it while the new one starts (before, it ran on beside
 * the new one, unmanaged). */
GP_TEST(an_enable_before_restore_replaces_a_process_left_running)
{
    char slow[64];
    snprintf(slow, sizeof slow, "MGR_SLOW_START_MS=%d", (int)(1500 * gp_test_scale()));
    pid_t old = left_running(slow);
    disable_without_manager("p");
    gp_status st;
    gp_manager *m = open_manager(false);
    enabler a;
    pthread_t t = enable_in_background(&a, m, "p");
    GP_CHECK_INT(run_file_pid("p"), ==, old); /* the new one is not up yet */
    GP_CHECK_ERR(gp_manager_restore(m, &st), GP_OK);
    pthread_join(t, NULL);
    GP_CHECK_ERR(a.rc, GP_OK);
    pid_t now = gp_manager_pid(m, "p");
    GP_CHECK(now > 0 && now != old);
    GP_CHECK_INT(run_file_pid("p"), ==, now);
    GP_CHECK_INT(gp_test_wait_child(old, (int)(5000 * gp_test_scale())), !=, -1); /* stopped */
    gp_manager_close(m);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(restore_stops_a_plugin_no_longer_enabled)
{
    pid_t pid = left_running(NULL);
    disable_without_manager("p");
    GP_CHECK(gp_test_alive(pid));
    gp_manager *m = open_manager(false);
    gp_status st;
    GP_CHECK_ERR(gp_manager_restore(m, &st), GP_OK);
    GP_CHECK_INT(gp_manager_pid(m, "p"), ==, 0);
    GP_CHECK_INT(run_file_pid("p"), ==, 0);
    GP_CHECK_INT(gp_test_wait_child(pid, (int)(5000 * gp_test_scale())), !=, -1);
    gp_manager_close(m);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    gp_test_fixture(setup, teardown);
    GP_RUN_TIMEOUT(events_in_order, 30);
    GP_RUN_TIMEOUT(restarts_until_disabled, 30);
    GP_RUN_TIMEOUT(restart_no_is_not_restarted, 30);
    GP_RUN_TIMEOUT(one_manager_per_root, 10);
    GP_RUN_TIMEOUT(live_restore_then_adopt, 30);
    GP_RUN_TIMEOUT(live_restore_rotates_full_logs_at_launch, 30);
    GP_RUN_TIMEOUT(an_enable_waiting_for_a_start_blocks_nothing, 30);
    GP_RUN_TIMEOUT(restore_after_an_enable_starts_nothing_twice, 30);
    GP_RUN_TIMEOUT(a_shutdown_ends_an_enable_s_wait, 30);
    GP_RUN_TIMEOUT(restore_leaves_its_own_unpublished_launch_alone, 30);
    GP_RUN_TIMEOUT(a_shutdown_ends_restore_s_wait, 30);
    GP_RUN_TIMEOUT(before_restore_an_enable_waits_unlocked_too, 30);
    GP_RUN_TIMEOUT(an_enable_before_restore_replaces_a_process_left_running, 30);
    GP_RUN_TIMEOUT(a_running_plugin_s_log_is_cut_at_the_cap, 30);
    GP_RUN_TIMEOUT(a_failing_cut_is_not_retried_every_second, 30);
    GP_RUN_TIMEOUT(tampered_blob_refused, 30);
    GP_RUN_TIMEOUT(restore_stops_a_plugin_no_longer_enabled, 30);
    return gp_test_done();
}
