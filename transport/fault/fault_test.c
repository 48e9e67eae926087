/* Faults a host must survive, end to end through gp_client over gRPC: a
 * plugin killed or stopped mid-call, a host killed under its plugins, a
 * plugin with a grandchild, many start/call/kill cycles (no fd, thread or
 * child leaks), a plugin that turns hostile after a correct handshake, and
 * SIGPIPE on both sides. This binary re-executes itself (GP_HELPERs) as
 * each plugin and as a host. Every test runs over gRPC, then over netrpc
 * (the wire is the helpers' first argument).
 *
 * GP_FAULT_CYCLES: start/call/kill cycles (default 1000; 200 under TSan).
 * GP_FAULT_WIRES: the wires to test ("grpc", "netrpc"; default both).
 * GP_TEST_FILTER picks tests by name ("netrpc: hostile"). */
#include <goplugin/client.h>
#include <goplugin/server.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/testing/proto/kv.gp.h"
#include "transport/testing/gp_test.h"

#define COOKIE_KEY "GP_FAULT_TEST"
#define COOKIE_VALUE "c0ffee"

#if defined(__SANITIZE_THREAD__)
#define GP_FAULT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GP_FAULT_TSAN 1
#endif
#endif

/* The wire under test; helpers get it as their first argument. */
static gp_protocol wire = GP_PROTO_GRPC;

static void now(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* True if the process behind pidfd exits within ms. */
static bool pidfd_gone(int pidfd, int ms)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

/* ---------------- the plugins ---------------- */

static void say_err(const char *fmt, long v)
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, fmt, v);
    if (write(2, buf, (size_t)n) < 0) {
        /* the host is gone: nothing to tell */
    }
}

/* Get: key "hang" never answers; "slow-big" answers 1 MiB after 600 ms
 * (scaled, as the host's 200 ms call timeout is),
 * writing to stdout and stderr first (the host may be gone by then);
 * anything else answers "v". Put: accepted. */
static gp_err kv_get(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl;
    (void)st;
    const proto_GetRequest *in = req;
    proto_GetResponse *out = resp;
    const char *key = in->key ? in->key : "";
    if (strcmp(key, "hang") == 0) {
        say_err("in-call %ld\n", (long)getpid());
        for (;;)
            sleep(100);
    }
    size_t n = 1;
    if (strcmp(key, "slow-big") == 0) {
        usleep((useconds_t)(600 * 1000 * gp_test_scale()));
        for (int i = 0; i < 64; i++) {
            printf("stdout noise after the host left %d\n", i);
            fflush(stdout);
            say_err("stderr noise after the host left %ld\n", i);
        }
        n = 1 << 20;
    }
    out->value.data = malloc(n);
    if (!out->value.data)
        return GP_ENOMEM;
    memset(out->value.data, 'v', n);
    out->value.len = n;
    return GP_OK;
}

static gp_err kv_put(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl;
    (void)req;
    (void)resp;
    (void)st;
    return GP_OK;
}

/* Helpers take the wire as argv[1]. */
static void set_wire(int argc, char **argv)
{
    if (argc > 1)
        wire = gp_protocol_parse(argv[1]);
}

static int serve_kv(void)
{
    static const gp_service_method methods[] = {
        {.method = &proto_KV_Get_method, .handler = kv_get},
        {.method = &proto_KV_Put_method, .handler = kv_put},
    };
    static const gp_service kv = {.name = "kv", .methods = methods, .nmethods = 2};
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = &kv,
        .nservices = 1,
        .protocol = wire,
        .logger = {.fn = gp_log_json_stderr, .level = GP_LOG_WARN},
    };
    return gp_serve(&cfg);
}

/* A kv plugin over the wire in argv[1]. */
GP_HELPER(kv)
{
    set_wire(argc, argv);
    return serve_kv();
}

/* A plugin that leaves a grandchild in its process group, then serves. */
GP_HELPER(forker)
{
    set_wire(argc, argv);
    pid_t g = fork();
    if (g == 0) {
        for (;;)
            sleep(100);
    }
    say_err("grandchild %ld\n", (long)g);
    return serve_kv();
}

/* One hostile answer on a connection that has just been accepted. */
static void hostile_conn(int fd, const char *kind)
{
    char buf[4096];
    /* Let the client's preface arrive first, so what follows is an answer. */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) > 0 && recv(fd, buf, sizeof buf, 0) < 0)
        return;
    if (strcmp(kind, "random") == 0) {
        for (int i = 0; i < 64; i++) {
            if (getrandom(buf, sizeof buf, 0) < 0)
                memset(buf, 0x5a, sizeof buf);
            gp_test_write_all(fd, buf, sizeof buf);
        }
    } else if (strcmp(kind, "bigframe") == 0 && wire == GP_PROTO_NETRPC) {
        /* A yamux Data frame (ACK of the host's stream 1) of 4 GiB - 1. */
        static const unsigned char big[12] = {0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
        gp_test_write_all(fd, big, sizeof big);
        memset(buf, 0, sizeof buf);
        gp_test_write_all(fd, buf, sizeof buf);
    } else if (strcmp(kind, "badversion") == 0 && wire == GP_PROTO_NETRPC) {
        /* A yamux WindowUpdate ACK for stream 1, but version 1. */
        static const unsigned char hdr[12] = {1, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0};
        gp_test_write_all(fd, hdr, sizeof hdr);
    } else if (strcmp(kind, "badversion") == 0) {
        /* Some other protocol's answer where an HTTP/2 server preface
         * (SETTINGS) belongs. */
        static const char http1[] = "HTTP/1.1 505 HTTP Version Not Supported\r\n\r\n";
        gp_test_write_all(fd, http1, sizeof http1 - 1);
    } else if (strcmp(kind, "bigframe") == 0) {
        /* An empty SETTINGS frame (valid), then a DATA frame header
         * claiming the largest length HTTP/2 can say (2^24-1; the 24-bit
         * field cannot say 4 GiB) on stream 1, followed by a trickle. */
        static const unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
        static const unsigned char big[9] = {0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1};
        gp_test_write_all(fd, settings, sizeof settings);
        gp_test_write_all(fd, big, sizeof big);
        memset(buf, 0, sizeof buf);
        gp_test_write_all(fd, buf, sizeof buf);
    } else if (strcmp(kind, "reset") == 0) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(fd);
        return;
    } else if (strcmp(kind, "silent") == 0) {
        /* accept, read, never answer */
    }
    /* Keep the connection open (silent from now on) until killed. */
    for (;;)
        if (recv(fd, buf, sizeof buf, 0) <= 0)
            break;
    close(fd);
}

/* Prints a correct handshake line for a unix socket, then misbehaves on
 * every connection. */
static int hostile_main(const char *kind)
{
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "/tmp/gp-fault-%ld.sock", (long)getpid());
    unlink(a.sun_path);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 8) != 0) {
        perror("hostile plugin: listen");
        return 1;
    }
    printf("1|1|unix|%s|%s\n", a.sun_path, gp_protocol_name(wire));
    fflush(stdout);
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        hostile_conn(fd, kind);
    }
}

GP_HELPER(random)
{
    set_wire(argc, argv);
    return hostile_main("random");
}

GP_HELPER(bigframe)
{
    set_wire(argc, argv);
    return hostile_main("bigframe");
}

GP_HELPER(badversion)
{
    set_wire(argc, argv);
    return hostile_main("badversion");
}

GP_HELPER(reset)
{
    set_wire(argc, argv);
    return hostile_main("reset");
}

GP_HELPER(silent)
{
    set_wire(argc, argv);
    return hostile_main("silent");
}

/* ---------------- host side helpers ---------------- */

typedef struct watch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_call;
    long grandchild;
} watch;

static watch w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

/* The plugin's stderr lines arrive here. */
static void capture(void *ctx, gp_log_level level, const char *name, const char *msg,
                    const gp_log_kv *kv, size_t nkv)
{
    (void)ctx;
    (void)level;
    (void)name;
    (void)kv;
    (void)nkv;
    long v;
    pthread_mutex_lock(&w.mu);
    if (strncmp(msg, "in-call ", 8) == 0)
        w.in_call = 1;
    else if (sscanf(msg, "grandchild %ld", &v) == 1)
        w.grandchild = v;
    pthread_cond_broadcast(&w.cv);
    pthread_mutex_unlock(&w.mu);
    if (getenv("GP_TEST_VERBOSE"))
        fprintf(stderr, "  plugin: %s\n", msg);
}

static void watch_reset(void)
{
    pthread_mutex_lock(&w.mu);
    w.in_call = 0;
    w.grandchild = 0;
    pthread_mutex_unlock(&w.mu);
}

/* Wait up to ms for *field to become non-zero. */
static long watch_wait(long *lfield, int *ifield, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w.mu);
    while (!(lfield ? *lfield : *ifield))
        if (pthread_cond_timedwait(&w.cv, &w.mu, &dl) == ETIMEDOUT)
            break;
    long v = lfield ? *lfield : *ifield;
    pthread_mutex_unlock(&w.mu);
    return v;
}

static gp_client_config config(const char *mode)
{
    static const char *argv[5];
    argv[0] = gp_test_self_exe();
    argv[1] = GP_TEST_HELPER_FLAG;
    argv[2] = mode;
    argv[3] = gp_protocol_name(wire);
    argv[4] = NULL;
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC | GP_PROTO_NETRPC,
        .start_timeout_ms = 10000,
        .kill_grace_ms = 1000,
        .logger = {.fn = capture, .level = GP_LOG_DEBUG},
    };
    return cfg;
}

/* Start mode and connect; dispense "kv". NULL client on failure (reported). */
static gp_client *open_kv(gp_client_config *cfg, gp_stub **kv)
{
    gp_client *c = NULL;
    *kv = NULL;
    gp_status st;
    if (gp_client_new(cfg, &c, &st) != GP_OK) {
        GP_FAILF("gp_client_new: %s", st.msg);
        return NULL;
    }
    gp_conn *conn;
    gp_err rc = gp_client_connect(c, &conn, &st);
    if (rc == GP_OK)
        rc = gp_conn_dispense(conn, "kv", kv, &st);
    if (rc != GP_OK) {
        GP_FAILF("connect: %s: %s", gp_strerror(rc), st.msg);
        gp_client_free(c);
        return NULL;
    }
    return c;
}

typedef struct call {
    gp_stub *kv;
    const char *key;
    gp_err rc;
    gp_status st;
    struct timespec done;
    atomic_int finished;
} call;

static void *call_thread(void *arg)
{
    call *cl = arg;
    proto_GetRequest req = {.key = (char *)cl->key};
    proto_GetResponse resp;
    memset(&resp, 0, sizeof resp);
    cl->rc = gp_invoke(cl->kv, &proto_KV_Get_method, &req, &resp, &cl->st);
    gp_msg_release(proto_GetResponse_fields, &resp);
    now(&cl->done);
    atomic_store(&cl->finished, 1);
    return NULL;
}

static long elapsed_ms(const struct timespec *a, const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* Join t, waiting at most ms; false if the call is still running. */
static bool join_within(pthread_t t, call *cl, int ms)
{
    struct timespec t0;
    now(&t0);
    while (!atomic_load(&cl->finished) && gp_test_ms_since(&t0) < ms)
        usleep(5000);
    if (!atomic_load(&cl->finished))
        return false;
    pthread_join(t, NULL);
    return true;
}

/* ---------------- the tests ---------------- */

GP_TEST(plugin_killed_mid_call)
{
    watch_reset();
    gp_client_config cfg = config("kv");
    gp_stub *kv;
    gp_client *c = open_kv(&cfg, &kv);
    if (!c)
        return;
    pid_t pid = gp_client_pid(c);
    call cl = {.kv = kv, .key = "hang"};
    pthread_t t;
    pthread_create(&t, NULL, call_thread, &cl);
    GP_CHECK(watch_wait(NULL, &w.in_call, 5000));
    struct timespec t0;
    now(&t0);
    kill(pid, SIGKILL);
    if (!join_within(t, &cl, 5000)) {
        GP_FAILF("call still running 5 s after the plugin was killed");
        gp_client_kill(c);
        pthread_join(t, NULL);
    } else {
        /* Scaled: the exit is seen at once, but a sanitizer's loaded
         * machine may be slow to run the thread that sees it. */
        long ms = elapsed_ms(&t0, &cl.done), limit = (long)(1000 * gp_test_scale());
        if (ms >= limit)
            GP_FAILF("call failed %ld ms after SIGKILL; expected under %ld", ms, limit);
        GP_CHECK_ERR(cl.rc, GP_EEXITED);
        GP_CHECK_CONTAINS(cl.st.msg, "plugin exited");
        GP_CHECK_CONTAINS(cl.st.msg, "killed by signal 9");
        GP_CHECK_CONTAINS(cl.st.msg, "during the call");
    }
    GP_CHECK(gp_client_exited(c));
    /* Later calls fail the same way, quickly. */
    proto_GetRequest req = {.key = "x"};
    proto_GetResponse resp;
    memset(&resp, 0, sizeof resp);
    gp_status st;
    GP_CHECK_ERR_NE(gp_invoke(kv, &proto_KV_Get_method, &req, &resp, &st), GP_OK);
    gp_stub_free(kv);
    gp_client_free(c);
}

/* Wait up to ms for /proc/pid/stat to show state `want`. */
static bool wait_state(pid_t pid, char want, int ms)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int waited = 0; waited <= ms; waited += 10) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        const char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ' && rp[2] == want)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static void stopped_mid_call(bool sigstop)
{
    watch_reset();
    gp_client_config cfg = config("kv");
    cfg.call_timeout_ms = 800;
    gp_stub *kv;
    gp_client *c = open_kv(&cfg, &kv);
    if (!c)
        return;
    pid_t pid = gp_client_pid(c);
    call cl = {.kv = kv, .key = sigstop ? "x" : "hang"};
    if (sigstop) {
        kill(pid, SIGSTOP);
        if (!wait_state(pid, 'T', 2000))
            GP_FAILF("plugin %d not stopped 2 s after SIGSTOP", (int)pid);
    }
    struct timespec t0;
    now(&t0);
    pthread_t t;
    pthread_create(&t, NULL, call_thread, &cl);
    if (!join_within(t, &cl, 5000)) {
        GP_FAILF("call still running 5 s after its 800 ms deadline");
        gp_client_kill(c);
        pthread_join(t, NULL);
    } else {
        long ms = elapsed_ms(&t0, &cl.done);
        GP_CHECK_ERR(cl.rc, GP_ETIMEDOUT);
        if (ms < 700 || ms > 2000 * gp_test_scale())
            GP_FAILF("deadline ended the call after %ld ms; expected about 800", ms);
        GP_CHECK_CONTAINS(cl.st.msg, "800 ms");
    }
    /* Kill still works: graceful Shutdown cannot be answered, so the grace
     * period (1 s) passes and SIGKILL (which works on a stopped process)
     * follows. */
    now(&t0);
    gp_client_kill(c);
    long ms = gp_test_ms_since(&t0);
    if (ms > 4000 * gp_test_scale())
        GP_FAILF("kill took %ld ms; expected within grace (1000 ms) + shutdown call + 1 s", ms);
    GP_CHECK(gp_client_exited(c));
    GP_CHECK_INT(kill(pid, 0), ==, -1);
    gp_stub_free(kv);
    gp_client_free(c);
}

GP_TEST(plugin_handler_hangs_deadline_then_kill)
{
    stopped_mid_call(false);
}

GP_TEST(plugin_sigstopped_deadline_then_kill)
{
    stopped_mid_call(true);
}

/* A host: starts a kv plugin, prints its pid, waits to be killed. */
GP_HELPER(host)
{
    set_wire(argc, argv);
    gp_client_config cfg = config("kv");
    cfg.logger = (gp_logger){0};
    gp_client *c;
    gp_conn *conn;
    gp_status st;
    if (gp_client_new(&cfg, &c, &st) || gp_client_connect(c, &conn, &st)) {
        fprintf(stderr, "host: %s\n", st.msg);
        return 1;
    }
    printf("%ld\n", (long)gp_client_pid(c));
    fflush(stdout);
    for (;;)
        pause();
}

GP_TEST(host_killed_takes_its_plugin)
{
    int p[2];
    GP_CHECK_INT(pipe2(p, O_CLOEXEC), ==, 0);
    pid_t host = fork();
    if (host == 0) {
        dup2(p[1], 1);
        execv(gp_test_self_exe(), (char **)gp_test_helper_argv("host", gp_protocol_name(wire)));
        _exit(127);
    }
    close(p[1]);
    char line[64] = "";
    size_t n = 0;
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    while (n < sizeof line - 1 && poll(&pf, 1, 10000) > 0) {
        ssize_t r = read(p[0], line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(line, '\n', n))
            break;
    }
    close(p[0]);
    long plugin = strtol(line, NULL, 10);
    if (plugin <= 0) {
        GP_FAILF("host printed no plugin pid: \"%s\"", line);
        kill(host, SIGKILL);
        waitpid(host, NULL, 0);
        return;
    }
    int pidfd = pidfd_open_((pid_t)plugin);
    GP_CHECK(pidfd >= 0);
    struct timespec t0;
    now(&t0);
    kill(host, SIGKILL);
    int status;
    waitpid(host, &status, 0);
    if (pidfd >= 0) {
        int limit = (int)(1000 * gp_test_scale()); /* its exit runs ASan's leak check */
        if (!pidfd_gone(pidfd, limit))
            GP_FAILF("plugin %ld still running %d ms after its host was killed", plugin, limit);
        else
            GP_CHECK(gp_test_ms_since(&t0) < limit);
        close(pidfd);
    }
    kill((pid_t)plugin, SIGKILL); /* in case */
}

GP_TEST(kill_reaches_the_grandchild)
{
    watch_reset();
    gp_client_config cfg = config("forker");
    gp_stub *kv;
    gp_client *c = open_kv(&cfg, &kv);
    if (!c)
        return;
    long g = watch_wait(&w.grandchild, NULL, 5000);
    GP_CHECK(g > 0);
    int gfd = g > 0 ? pidfd_open_((pid_t)g) : -1;
    GP_CHECK(gfd >= 0);
    gp_stub_free(kv);
    gp_client_kill(c);
    if (gfd >= 0) {
        if (!pidfd_gone(gfd, 1000))
            GP_FAILF("grandchild %ld survived the kill of its plugin", g);
        close(gfd);
    }
    gp_client_free(c);
}

static bool one_cycle(int i)
{
    gp_client_config cfg = config("kv");
    cfg.logger = (gp_logger){.fn = capture, .level = GP_LOG_WARN};
    gp_stub *kv;
    gp_client *c = open_kv(&cfg, &kv);
    if (!c) {
        GP_FAILF("cycle %d: no client", i);
        return false;
    }
    proto_PutRequest req = {.key = "k"};
    proto_Empty resp;
    gp_status st;
    gp_err rc = gp_invoke(kv, &proto_KV_Put_method, &req, &resp, &st);
    if (rc != GP_OK)
        GP_FAILF("cycle %d: put: %s: %s", i, gp_strerror(rc), st.msg);
    gp_stub_free(kv);
    gp_client_free(c);
    return rc == GP_OK;
}

GP_TEST(many_start_call_kill_cycles_leak_nothing)
{
#ifdef GP_FAULT_TSAN
    int cycles = 200; /* TSan is ~10x slower per cycle */
#else
    int cycles = 1000; /* ~30 s plain here */
#endif
    const char *env = getenv("GP_FAULT_CYCLES");
    if (env && *env)
        cycles = atoi(env);
    /* Warm-up: gRPC keeps a process-wide poller and a few threads. */
    one_cycle(-1);
    usleep(200 * 1000);
    int fds = gp_test_count_fds(), threads = gp_test_count_threads();
    struct timespec t0;
    now(&t0);
    /* At most 60 s of cycles, at least 100: a cycle costs ~30 ms plain
     * but ~150 ms under ASan on a loaded machine (its start-up and the
     * leak check at each plugin's exit), and 1000 of those outran the
     * case's 240 s (CI). A leak per cycle shows in 100 as in 1000. */
    int i = 0;
    while (i < cycles && (i < 100 || gp_test_ms_since(&t0) < 60000))
        if (!one_cycle(i++))
            break;
    long ms = gp_test_ms_since(&t0);
    fprintf(stderr, "  %d start/call/kill cycles in %ld ms\n", i, ms);
    GP_CHECK(gp_test_no_children());
    /* gRPC core closes released sockets on its own threads, after the call
     * that let them go (seen: 3 still open at once under ASan in CI); a
     * leaked fd never closes and still fails (fewer than before is no
     * leak: the warm-up's own closes may still be in flight at the count). */
    GP_CHECK_FDS_AT_MOST(fds);
    /* gRPC's executor threads come and go on their own: give them time. */
    GP_CHECK_THREADS_AT_MOST(threads);
}

/* A plugin that handshakes correctly, then answers with `kind`. */
static void hostile(const char *kind)
{
    gp_client_config cfg = config(kind);
    /* No call deadline: the connect's own bounds must end it, except for
     * a peer that says nothing at all: the health check then waits for
     * the call deadline (30 s without one, as netrpc's Control.Ping). */
    if (strcmp(kind, "silent") == 0)
        cfg.call_timeout_ms = 2000;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    long rss0 = 0, rss1 = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%*d %ld", &rss0) != 1)
        rss0 = 0;
    if (f)
        fclose(f);
    struct timespec t0;
    now(&t0);
    gp_conn *conn = NULL;
    gp_status st;
    gp_err rc = gp_client_connect(c, &conn, &st);
    long ms = gp_test_ms_since(&t0);
    f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%*d %ld", &rss1) != 1)
        rss1 = 0;
    if (f)
        fclose(f);
    pid_t pid = gp_client_pid(c);
    if (getenv("GP_TEST_VERBOSE"))
        fprintf(stderr, "  %s: %s after %ld ms: %s\n", kind, gp_strerror(rc), ms, st.msg);
    GP_CHECK_ERR_NE(rc, GP_OK);
    GP_CHECK(conn == NULL);
    if (ms > 15000)
        GP_FAILF("%s: connect failed only after %ld ms; expected within seconds", kind, ms);
    GP_CHECK_CONTAINS(st.msg, "connect to plugin");
    /* The words say what went wrong. */
    if (strcmp(kind, "silent") == 0)
        GP_CHECK_CONTAINS(st.msg, "2000 ms");
    else if (wire == GP_PROTO_NETRPC && strcmp(kind, "reset") != 0)
        /* The session's reason, whether opening the streams or the first
         * ping met the dead session first (a race: either is right). */
        GP_CHECK_CONTAINS(st.msg, ": yamux: ");
    if (wire == GP_PROTO_NETRPC && strcmp(kind, "bigframe") == 0)
        GP_CHECK_CONTAINS(st.msg, "4294967295 bytes");
    if (wire == GP_PROTO_NETRPC && strcmp(kind, "badversion") == 0)
        GP_CHECK_CONTAINS(st.msg, "expected version 0, got 1");
    if (wire == GP_PROTO_GRPC && strcmp(kind, "badversion") == 0)
        GP_CHECK_CONTAINS(st.msg, "http1");
    /* No plugin left running. */
    GP_CHECK(gp_client_exited(c));
    if (pid > 0)
        GP_CHECK_INT(kill(pid, 0), ==, -1);
    long grown_kib = (rss1 - rss0) * (sysconf(_SC_PAGESIZE) / 1024);
    if (grown_kib > 64 * 1024)
        GP_FAILF("%s: resident memory grew by %ld KiB during the connect", kind, grown_kib);
    gp_client_free(c);
}

GP_TEST(hostile_random_bytes)
{
    hostile("random");
}

GP_TEST(hostile_forged_frame_length)
{
    hostile("bigframe");
}

GP_TEST(hostile_wrong_version)
{
    hostile("badversion");
}

GP_TEST(hostile_connection_reset)
{
    hostile("reset");
}

GP_TEST(hostile_silent_after_handshake)
{
    hostile("silent");
}

GP_TEST(host_writes_to_a_dead_plugin_no_sigpipe)
{
    signal(SIGPIPE, SIG_DFL); /* a host that never thought about it */
    gp_client_config cfg = config("kv");
    gp_stub *kv;
    gp_client *c = open_kv(&cfg, &kv);
    if (!c)
        return;
    pid_t pid = gp_client_pid(c);
    kill(pid, SIGKILL);
    for (int i = 0; i < 50 && !gp_client_exited(c); i++)
        usleep(20 * 1000);
    GP_CHECK(gp_client_exited(c));
    size_t n = 1 << 20;
    uint8_t *big = calloc(1, n);
    proto_PutRequest req = {.key = "k", .value = {.data = big, .len = n}};
    for (int i = 0; i < 5; i++) {
        proto_Empty resp;
        gp_status st;
        GP_CHECK_ERR_NE(gp_invoke(kv, &proto_KV_Put_method, &req, &resp, &st), GP_OK);
    }
    free(big);
    gp_stub_free(kv);
    gp_client_free(c);
    /* Reaching here is the check: SIGPIPE would have killed the test. */
}

/* The plugin as a plain child of ours (not through gp_client), so we hold
 * its stdout and stderr and can close them, as a dead host would. */
GP_TEST(plugin_writes_to_a_dead_host_no_sigpipe)
{
    int out[2], err[2];
    GP_CHECK_INT(pipe2(out, O_CLOEXEC), ==, 0);
    GP_CHECK_INT(pipe2(err, O_CLOEXEC), ==, 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        setenv(COOKIE_KEY, COOKIE_VALUE, 1);
        setenv("PLUGIN_PROTOCOL_VERSIONS", "1", 1);
        setenv("PLUGIN_UNIX_SOCKET_DIR", "/tmp", 1);
        execv(gp_test_self_exe(), (char **)gp_test_helper_argv("kv", gp_protocol_name(wire)));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    char line[512] = "";
    size_t n = 0;
    struct pollfd pf = {.fd = out[0], .events = POLLIN};
    while (n < sizeof line - 1 && poll(&pf, 1, 10000) > 0) {
        ssize_t r = read(out[0], line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(line, '\n', n))
            break;
    }
    /* The host's ends of the pipes go away. */
    close(out[0]);
    close(err[0]);
    char network[16] = "", address[300] = "";
    if (sscanf(line, "%*u|%*u|%15[^|]|%299[^|]|", network, address) != 2) {
        GP_FAILF("no handshake line from the plugin: \"%s\"", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return;
    }
    gp_reattach_config ra = {.protocol = wire,
                             .protocol_version = 1,
                             .pid = pid,
                             .network = network,
                             .address = address,
                             .test = true};
    gp_client_config cfg = {.reattach = &ra,
                            .allowed_protocols = GP_PROTO_GRPC | GP_PROTO_NETRPC,
                            /* also connect's health ping: scaled */
                            .call_timeout_ms = (int)(200 * gp_test_scale()),
                            .kill_grace_ms = 1000};
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_conn *conn;
    gp_stub *kv = NULL;
    gp_status st;
    gp_err rc = gp_client_connect(c, &conn, &st);
    if (rc == GP_OK)
        rc = gp_conn_dispense(conn, "kv", &kv, &st);
    if (rc != GP_OK) {
        GP_FAILF("reattach: %s: %s", gp_strerror(rc), st.msg);
    } else {
        call cl = {.kv = kv, .key = "slow-big"};
        call_thread(&cl);
        GP_CHECK_ERR(cl.rc, GP_ETIMEDOUT);
        gp_stub_free(kv);
    }
    /* Test mode: this closes our connection and leaves the plugin alone;
     * its handler then writes 1 MiB to the closed socket and lines to the
     * closed pipes. */
    gp_client_free(c);
    usleep((useconds_t)(1500 * 1000 * gp_test_scale())); /* past slow-big's writes */
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid && WIFSIGNALED(status))
        GP_FAILF("plugin died of signal %d after its host went away", WTERMSIG(status));
    else
        GP_CHECK_INT(r, ==, 0);
    if (r == 0) {
        /* Still serving: a new host can talk to it and stop it. */
        ra.test = false;
        GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
        rc = gp_client_connect(c, &conn, &st);
        if (rc != GP_OK)
            GP_FAILF("reattach after: %s: %s", gp_strerror(rc), st.msg);
        else
            GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
        gp_client_free(c);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    const char *wires = getenv("GP_FAULT_WIRES"); /* e.g. "grpc"; default both */
    static const gp_protocol all[] = {GP_PROTO_GRPC, GP_PROTO_NETRPC};
    for (size_t k = 0; k < 2; k++) {
        wire = all[k];
        if (wires && !strstr(wires, gp_protocol_name(wire)))
            continue;
#define RUN(t, secs) gp_test_run(wire == GP_PROTO_NETRPC ? "netrpc: " #t : "grpc: " #t, t, secs)
        RUN(plugin_killed_mid_call, GP_TEST_TIMEOUT_S);
        RUN(plugin_handler_hangs_deadline_then_kill, 10);
        RUN(plugin_sigstopped_deadline_then_kill, 10);
        RUN(host_killed_takes_its_plugin, GP_TEST_TIMEOUT_S);
        RUN(kill_reaches_the_grandchild, GP_TEST_TIMEOUT_S);
        RUN(hostile_random_bytes, GP_TEST_TIMEOUT_S);
        RUN(hostile_forged_frame_length, GP_TEST_TIMEOUT_S);
        RUN(hostile_wrong_version, GP_TEST_TIMEOUT_S);
        RUN(hostile_connection_reset, GP_TEST_TIMEOUT_S);
        RUN(hostile_silent_after_handshake, 10);
        RUN(host_writes_to_a_dead_plugin_no_sigpipe, GP_TEST_TIMEOUT_S);
        RUN(plugin_writes_to_a_dead_host_no_sigpipe, 10);
        /* ~7 s plain, ~32 s under ASan (GP_TEST_SCALE stretches this). */
        RUN(many_start_call_kill_cycles_leak_nothing, 60);
#undef RUN
    }
    return gp_test_done();
}
