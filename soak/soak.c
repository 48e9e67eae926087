/* soak: 8 callers on each wire (gRPC and netrpc) against KV plugins that a
 * killer thread SIGKILLs at random and gp_supervisor restarts, for a while
 * (make soak: SOAK_SECONDS, default 600). Checked, each a violation that
 * makes the exit status 1:
 *   - every call succeeds or fails with words (a non-empty gp_status)
 *     within its deadline (call_timeout_ms) plus a margin;
 *   - a Get right after a Put on the same plugin reads what was put;
 *   - each wire made calls, had successes and was restarted;
 *   - every plugin ended by our SIGKILL, or with exit status 0 when the
 *     supervisor stopped it (a crash, another signal or ASan's leak exit
 *     status is a violation);
 *   - at the end no fd, thread (gRPC core's own pools aside, which it keeps
 *     for the process's life), child or zombie is left, against a baseline
 *     taken after gRPC core was first used;
 *   - RSS is flat: at the end at most RSS_SLACK_KB over the RSS after the
 *     warm-up (a fifth of the run, 5 s to 60 s); not under ASan, whose
 *     quarantine grows RSS by design (LeakSanitizer checks at exit there).
 * Prints calls, errors by kind (with an example of their words), kills,
 * restarts, and peak fds, threads and RSS.
 *
 *   soak --plugin path/to/kv-plugin [--seconds N] [--callers N] [--verbose]
 */
#include "examples/kv/kv.h"

#include <goplugin/supervisor.h>

#include "transport/testing/gp_test.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 2000  /* every call's deadline */
#define MARGIN_MS 1000    /* a call may end this much after it */
#define RSS_SLACK_KB 8192 /* RSS growth allowed after the warm-up */
#define MAX_CALLERS 64

/* Under ASan the allocator's quarantine (256 MiB) grows RSS by design: the
 * RSS figure is printed, not checked, and LeakSanitizer checks at exit. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_CHECKED 0
#endif
#endif
#ifndef RSS_CHECKED
#define RSS_CHECKED 1
#endif

typedef struct wire {
    const char *name;
    char env_proto[32];
    const char *env[3];
    const char *argv[2];
    gp_client_config cfg;
    gp_supervisor *sup;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    gp_stub *kv; /* the current plugin's stub; NULL between plugins */
    unsigned gen;
    int inflight; /* callers using kv */
    pid_t pid;    /* the current plugin, 0 when none */

    atomic_long calls, ok, slow, kills, started, exited, dispense_failed;
    atomic_long ends_killed, ends_clean, ends_health; /* how plugins ended */
    atomic_long errs[GP_ERR_COUNT_];
    atomic_long max_ms;
    char example[GP_ERR_COUNT_][160]; /* first words seen per kind (under mu) */
} wire;

static wire wires[2];
static atomic_int stop;
static atomic_long violations;
static bool verbose;
static atomic_int npids;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void violation(const char *fmt, const char *a, const char *b)
{
    long n = atomic_fetch_add(&violations, 1);
    if (n < 20) { /* the first ones say enough */
        fprintf(stderr, "soak: VIOLATION: ");
        fprintf(stderr, fmt, a, b);
        fputc('\n', stderr);
    }
}

static void quiet_log(void *ctx, gp_log_level level, const char *name, const char *msg,
                      const gp_log_kv *kv, size_t nkv)
{
    (void)ctx;
    (void)kv;
    (void)nkv;
    if (verbose)
        fprintf(stderr, "  [%s] %s: %s\n", gp_log_level_name(level), name, msg);
}

static long rss_kb(void)
{
    char *text = gp_test_read_file("/proc/self/status", NULL);
    const char *p = text ? strstr(text, "\nVmRSS:") : NULL;
    long v = p ? strtol(p + 7, NULL, 10) : -1;
    free(text);
    return v;
}

static int count_all_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* ---- supervisor events ---- */

static void on_event(const gp_sup_event *ev, void *ctx)
{
    wire *w = ctx;
    if (ev->kind == GP_SUP_STARTED) {
        atomic_fetch_add(&w->started, 1);
        gp_stub *kv = NULL;
        gp_status st;
        if (gp_conn_dispense(ev->conn, KV_PLUGIN_NAME, &kv, &st) != GP_OK) {
            /* The killer may have struck already: not a violation. */
            atomic_fetch_add(&w->dispense_failed, 1);
            return;
        }
        pid_t pid = gp_client_pid(ev->client);
        atomic_fetch_add(&npids, 1);
        pthread_mutex_lock(&w->mu);
        w->kv = kv;
        w->gen++;
        w->pid = pid;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    } else if (ev->kind == GP_SUP_EXITED) {
        atomic_fetch_add(&w->exited, 1);
        /* How it ended: our SIGKILL, or a clean exit when stopped; a
         * crash, a leak report under ASan (exit 23) or another signal is a
         * violation. A failed health check is counted (the supervisor
         * then kills it). */
        char why[128] = "";
        if (ev->client && !gp_client_wait_exit(ev->client, 0, why, sizeof why))
            snprintf(why, sizeof why, "still running");
        if (strncmp(ev->reason, "health check failed", 19) == 0)
            atomic_fetch_add(&w->ends_health, 1);
        if (strncmp(ev->reason, "start failed", 12) == 0)
            violation("%s: a plugin failed to start: %s", w->name, ev->reason);
        else if (strcmp(why, "exit status 0") == 0 && strcmp(ev->reason, "stopped") == 0)
            atomic_fetch_add(&w->ends_clean, 1);
        else if (strstr(why, "killed by signal 9"))
            atomic_fetch_add(&w->ends_killed, 1);
        else
            violation("%s: a plugin ended with %s", w->name, why);
        /* The conn closes when we return: wait for the callers using its
         * stub (their calls end, the plugin being dead), then free it. */
        pthread_mutex_lock(&w->mu);
        gp_stub *kv = w->kv;
        w->kv = NULL;
        w->pid = 0;
        while (w->inflight > 0)
            pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
        gp_stub_free(kv);
    }
}

/* ---- callers ---- */

typedef struct caller {
    wire *w;
    int id;
    pthread_t t;
} caller;

static void record(wire *w, gp_err rc, const gp_status *st, long long ms, const char *what)
{
    atomic_fetch_add(&w->calls, 1);
    long prev = atomic_load(&w->max_ms);
    while (ms > prev && !atomic_compare_exchange_weak(&w->max_ms, &prev, (long)ms))
        ;
    if (ms > DEADLINE_MS + MARGIN_MS) {
        atomic_fetch_add(&w->slow, 1);
        char t[32];
        snprintf(t, sizeof t, "%lld ms", ms);
        violation("%s took %s, over its deadline and margin", what, t);
    }
    if (rc == GP_OK) {
        atomic_fetch_add(&w->ok, 1);
        return;
    }
    if (rc < 0 || rc >= GP_ERR_COUNT_) {
        violation("%s: %s: not a gp_err", what, st->msg);
        return;
    }
    atomic_fetch_add(&w->errs[rc], 1);
    if (!st->msg[0])
        violation("%s failed with %s and no words", what, gp_strerror(rc));
    pthread_mutex_lock(&w->mu);
    if (!w->example[rc][0])
        snprintf(w->example[rc], sizeof w->example[rc], "%.150s", st->msg);
    pthread_mutex_unlock(&w->mu);
}

static void *caller_main(void *arg)
{
    caller *c = arg;
    wire *w = c->w;
    unsigned seed = (unsigned)(c->id * 7919 + (w == &wires[1]));
    uint8_t val[1024];
    for (unsigned long i = 0; !atomic_load(&stop); i++) {
        pthread_mutex_lock(&w->mu);
        while (!w->kv && !atomic_load(&stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
        gp_stub *kv = w->kv;
        if (kv)
            w->inflight++;
        pthread_mutex_unlock(&w->mu);
        if (!kv)
            break;

        char key[64];
        snprintf(key, sizeof key, "%s-%d-%lu", w->name, c->id, i);
        size_t n = 1 + (size_t)(rand_r(&seed) % sizeof val);
        for (size_t j = 0; j < n; j++)
            val[j] = (uint8_t)rand_r(&seed);
        gp_status st;
        proto_PutRequest put = {.key = key, .value = {.data = val, .len = n}};
        proto_Empty empty;
        long long t0 = now_ms();
        gp_err rc = proto_KV_Put(kv, &put, &empty, &st);
        record(w, rc, &st, now_ms() - t0, "Put");
        if (rc == GP_OK) {
            proto_GetRequest get = {.key = key};
            proto_GetResponse got;
            memset(&got, 0, sizeof got);
            t0 = now_ms();
            rc = proto_KV_Get(kv, &get, &got, &st);
            record(w, rc, &st, now_ms() - t0, "Get");
            if (rc == GP_OK && (got.value.len != n || memcmp(got.value.data, val, n) != 0))
                violation("Get %s on %s: not the value just put", key, w->name);
            gp_msg_release(proto_GetResponse_fields, &got);
        }

        pthread_mutex_lock(&w->mu);
        if (--w->inflight == 0)
            pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        if (rc != GP_OK)
            usleep(2000); /* a caller that retries, not one that spins */
    }
    return NULL;
}

/* ---- the killer ---- */

static void *killer_main(void *arg)
{
    (void)arg;
    unsigned seed = 12345;
    while (!atomic_load(&stop)) {
        /* 0.2 s to 1.5 s between kills, on either wire. */
        long long until = now_ms() + 200 + rand_r(&seed) % 1300;
        while (!atomic_load(&stop) && now_ms() < until)
            usleep(20 * 1000);
        if (atomic_load(&stop))
            break;
        wire *w = &wires[rand_r(&seed) % 2];
        pthread_mutex_lock(&w->mu);
        pid_t pid = w->pid;
        /* pid is cleared (under mu) by EXITED, which comes just after the
         * supervisor reaps it: only in that short window could the number
         * name a reused pid. */
        if (pid > 0 && kill(pid, SIGKILL) == 0)
            atomic_fetch_add(&w->kills, 1);
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

/* ---- setup ---- */

static void wire_init(wire *w, const char *name, const char *plugin)
{
    memset(w, 0, sizeof *w);
    w->name = name;
    snprintf(w->env_proto, sizeof w->env_proto, "KV_PLUGIN_PROTO=%s", name);
    w->env[0] = w->env_proto;
    w->env[1] = "KV_PLUGIN_LOG_LEVEL=warn";
    w->argv[0] = plugin;
    w->cfg = (gp_client_config){
        .argv = w->argv,
        .env = w->env,
        .handshake = {.protocol_version = KV_PROTOCOL_VERSION,
                      .magic_cookie_key = KV_COOKIE_KEY,
                      .magic_cookie_value = KV_COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC | GP_PROTO_NETRPC,
        .start_timeout_ms = 20000,
        .kill_grace_ms = 3000, /* the final stop is graceful, also under ASan */
        .call_timeout_ms = DEADLINE_MS,
        .logger = {.fn = quiet_log, .level = GP_LOG_WARN},
    };
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

/* One plain client and call on each wire before the baseline: gRPC core's
 * process-wide state (its pools, its fds) exists from then on. */
static int warm_core(wire *w)
{
    gp_client *c = NULL;
    gp_conn *conn;
    gp_stub *kv = NULL;
    gp_status st;
    gp_err rc = gp_client_new(&w->cfg, &c, &st);
    if (!rc)
        rc = gp_client_connect(c, &conn, &st);
    if (!rc)
        rc = gp_conn_dispense(conn, KV_PLUGIN_NAME, &kv, &st);
    if (!rc) {
        proto_GetRequest get = {.key = "warm"};
        proto_GetResponse got;
        memset(&got, 0, sizeof got);
        rc = proto_KV_Get(kv, &get, &got, &st);
        gp_msg_release(proto_GetResponse_fields, &got);
    }
    if (rc)
        fprintf(stderr, "soak: %s: first plugin: %s: %s\n", w->name, gp_strerror(rc), st.msg);
    gp_stub_free(kv);
    gp_client_free(c);
    return rc ? -1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: soak --plugin PATH [--seconds N] [--callers N] [--verbose]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *plugin = NULL;
    long seconds = 600;
    int ncallers = 8;
    const char *env_s = getenv("SOAK_SECONDS");
    if (env_s && *env_s)
        seconds = strtol(env_s, NULL, 10);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--plugin") == 0 && i + 1 < argc)
            plugin = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--callers") == 0 && i + 1 < argc)
            ncallers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = true;
        else
            usage();
    }
    if (!plugin || seconds < 1 || ncallers < 1 || ncallers > MAX_CALLERS)
        usage();
    /* A plugin's SIGPIPE must not end us; the wires write with MSG_NOSIGNAL
     * where they can, a pipe to a dead child is the rest. */
    signal(SIGPIPE, SIG_IGN);

    wire_init(&wires[0], "grpc", plugin);
    wire_init(&wires[1], "netrpc", plugin);
    if (warm_core(&wires[0]) || warm_core(&wires[1]))
        return 1;
    int base_fds = gp_test_count_fds(), base_threads = gp_test_count_threads();
    long base_rss = rss_kb();
    printf("soak: %ld s, %d callers on each wire, plugin %s\n", seconds, ncallers, plugin);
    fflush(stdout);

    gp_backoff_config backoff = {
        .immediate = 3, .first_delay_ms = 50, .max_delay_ms = 400, .healthy_after_ms = 1000};
    for (int i = 0; i < 2; i++) {
        gp_supervisor_config sc = {.client = &wires[i].cfg,
                                   .backoff = &backoff,
                                   .health_interval_ms = 1000,
                                   .health_timeout_ms = DEADLINE_MS,
                                   .on_event = on_event,
                                   .ctx = &wires[i]};
        gp_status st;
        if (gp_supervisor_new(&sc, &wires[i].sup, &st) || gp_supervisor_start(wires[i].sup, &st)) {
            fprintf(stderr, "soak: %s: supervisor: %s\n", wires[i].name, st.msg);
            return 1;
        }
    }
    static caller callers[2][MAX_CALLERS];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < ncallers; j++) {
            callers[i][j] = (caller){.w = &wires[i], .id = j};
            if (pthread_create(&callers[i][j].t, NULL, caller_main, &callers[i][j]) != 0) {
                fprintf(stderr, "soak: cannot start a caller thread\n");
                return 1;
            }
        }
    pthread_t killer;
    if (pthread_create(&killer, NULL, killer_main, NULL) != 0) {
        fprintf(stderr, "soak: cannot start the killer thread\n");
        return 1;
    }

    long long start = now_ms(), end = start + seconds * 1000;
    long long warm_at = start + (seconds * 1000) / 5;
    if (warm_at < start + 5000)
        warm_at = start + 5000;
    if (warm_at > start + 60000)
        warm_at = start + 60000;
    if (warm_at > end)
        warm_at = end;
    long warm_rss = -1, peak_rss = 0;
    int peak_fds = 0, peak_threads = 0;
    long long next_report = start + 30000;
    for (long long t = now_ms(); t < end; t = now_ms()) {
        usleep(200 * 1000);
        int fds = gp_test_count_fds(), threads = count_all_threads();
        long rss = rss_kb();
        peak_fds = fds > peak_fds ? fds : peak_fds;
        peak_threads = threads > peak_threads ? threads : peak_threads;
        peak_rss = rss > peak_rss ? rss : peak_rss;
        if (warm_rss < 0 && t >= warm_at)
            warm_rss = rss;
        if (t >= next_report) {
            printf("soak: %lld s: calls grpc %ld netrpc %ld, kills %ld, fds %d, threads %d, RSS "
                   "%ld kB\n",
                   (t - start) / 1000, atomic_load(&wires[0].calls), atomic_load(&wires[1].calls),
                   atomic_load(&wires[0].kills) + atomic_load(&wires[1].kills), fds, threads, rss);
            fflush(stdout);
            next_report += 30000;
        }
    }
    /* RSS at the end, with everything still running: what a leak grows. */
    long end_rss = rss_kb();
    if (warm_rss < 0)
        warm_rss = end_rss;

    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&wires[i].mu);
        pthread_cond_broadcast(&wires[i].cv);
        pthread_mutex_unlock(&wires[i].mu);
    }
    pthread_join(killer, NULL);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < ncallers; j++)
            pthread_join(callers[i][j].t, NULL);
    for (int i = 0; i < 2; i++) {
        /* Stop a running plugin, not one the last kill left restarting: a
         * stop during a start ends it with SIGTERM, which is right but is
         * not the clean exit checked below. */
        wire *w = &wires[i];
        long long until = now_ms() + 30000;
        pthread_mutex_lock(&w->mu);
        while (w->pid == 0 && now_ms() < until) {
            pthread_mutex_unlock(&w->mu);
            usleep(20 * 1000);
            pthread_mutex_lock(&w->mu);
        }
        bool up = w->pid != 0;
        pthread_mutex_unlock(&w->mu);
        if (!up)
            violation("%s: no plugin running 30 s after the last kill%s", w->name, "");
        gp_supervisor_stop(w->sup);
        gp_supervisor_free(w->sup);
    }

    /* Report. */
    for (int i = 0; i < 2; i++) {
        wire *w = &wires[i];
        long errors = 0;
        for (int k = 0; k < GP_ERR_COUNT_; k++)
            errors += atomic_load(&w->errs[k]);
        long restarts = atomic_load(&w->started) - 1;
        printf("%s: calls %ld, ok %ld, errors %ld, over deadline %ld, slowest %ld ms; kills %ld, "
               "restarts %ld, dispense failures %ld; plugins ended: %ld by SIGKILL, %ld cleanly, "
               "%ld after a failed health check\n",
               w->name, atomic_load(&w->calls), atomic_load(&w->ok), errors, atomic_load(&w->slow),
               atomic_load(&w->max_ms), atomic_load(&w->kills), restarts,
               atomic_load(&w->dispense_failed), atomic_load(&w->ends_killed),
               atomic_load(&w->ends_clean), atomic_load(&w->ends_health));
        for (int k = 0; k < GP_ERR_COUNT_; k++)
            if (atomic_load(&w->errs[k]))
                printf("  %-14s %6ld  e.g. \"%s\"\n", gp__err_name(k), atomic_load(&w->errs[k]),
                       w->example[k]);
        if (atomic_load(&w->calls) == 0 || atomic_load(&w->ok) == 0)
            violation("%s: no successful call%s", w->name, "");
        if (restarts < 1)
            violation("%s: never restarted%s", w->name, "");
        if (atomic_load(&w->ends_clean) != 1)
            violation("%s: the last plugin did not exit cleanly when stopped%s", w->name, "");
    }
    /* Waited for, not sampled once: threads and closes still ending at the
     * stop, and a gRPC thread being born under our name, are not leaks. */
    int left_fds = gp_test_wait_fds_at_most(base_fds, 5000);
    int left_threads = gp_test_wait_threads_at_most(base_threads, 5000);
    bool no_children = gp_test_no_children();
    /* A plugin of ours still running is our child (they start none). */
    printf("peak: fds %d, threads %d, RSS %ld kB (before the callers %ld kB)\n", peak_fds,
           peak_threads, peak_rss, base_rss);
    printf("RSS after warm-up %ld kB, at the end %ld kB (%+ld kB; allowed +%d kB%s)\n", warm_rss,
           end_rss, end_rss - warm_rss, RSS_SLACK_KB, RSS_CHECKED ? "" : ", not checked: ASan");
    printf("left: fds %d (baseline %d), threads %d (baseline %d), children %s (%d plugins "
           "started)\n",
           left_fds, base_fds, left_threads, base_threads, no_children ? "none" : "SOME",
           atomic_load(&npids));
    char a[64], b[64];
    if (RSS_CHECKED && end_rss - warm_rss > RSS_SLACK_KB) {
        snprintf(a, sizeof a, "%ld kB", end_rss - warm_rss);
        snprintf(b, sizeof b, "%d kB", RSS_SLACK_KB);
        violation("RSS grew %s after the warm-up (allowed %s)", a, b);
    }
    if (left_fds != base_fds) {
        snprintf(a, sizeof a, "%d", left_fds);
        snprintf(b, sizeof b, "%d", base_fds);
        violation("fds left: %s, baseline %s", a, b);
    }
    if (left_threads != base_threads) {
        snprintf(a, sizeof a, "%d", left_threads);
        snprintf(b, sizeof b, "%d", base_threads);
        violation("threads left: %s, baseline %s", a, b);
    }
    if (!no_children)
        violation("a child (running or zombie) is left%s%s", "", "");
    long v = atomic_load(&violations);
    printf("soak: %s (%ld violation%s)\n", v ? "FAIL" : "PASS", v, v == 1 ? "" : "s");
    for (int i = 0; i < 2; i++) {
        pthread_mutex_destroy(&wires[i].mu);
        pthread_cond_destroy(&wires[i].cv);
    }
    return v ? 1 : 0;
}
