/* GRPCStdio end to end (and netrpc's stdout/stderr streams), both sides in
 * C: this binary re-executed as a
 * gp_serve plugin whose handler printf()s, writes to fd 2 and floods fd 1;
 * the host's stdout_sink / stderr_sink get every byte, in order per
 * channel, and the plugin never blocks. Also: the default sinks (the
 * logger) and a second session that leaks nothing. */
#include <goplugin/client.h>
#include <goplugin/server.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"
#include "transport/testing/proto/counter.gp.h"

#define COOKIE_KEY "GP_CLIENT_STDIO_TEST"
#define COOKIE_VALUE "5ab1"
#define FLOOD (1 << 20)

/* Sum(a, b): prints "sum a b" on stdout and "err a" on stderr; b < 0
 * floods stdout with FLOOD bytes of 'x' first (raw writes to fd 1). */
static gp_err sum(void *impl, const proto_SumRequest *req, proto_SumResponse *resp, gp_status *st)
{
    (void)impl;
    (void)st;
    if (req->b < 0) {
        static char block[65536];
        memset(block, 'x', sizeof block);
        for (int i = 0; i < FLOOD / (int)sizeof block; i++)
            if (write(1, block, sizeof block) != (ssize_t)sizeof block)
                return GP_EIO;
    }
    printf("sum %lld %lld\n", (long long)req->a, (long long)req->b);
    fflush(stdout);
    dprintf(2, "err %lld\n", (long long)req->a);
    resp->r = req->a + req->b;
    return GP_OK;
}

static int plugin_main(gp_protocol proto)
{
    static const proto_AddHelper_server vt = {.Sum = sum};
    static proto_AddHelper_service svc;
    gp_serve_config cfg = {
        .protocol = proto,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = proto_AddHelper_register(&svc, "adder", &vt, NULL),
        .nservices = 1,
    };
    return gp_serve(&cfg);
}

typedef struct sink {
    pthread_mutex_t mu;
    char *buf;
    size_t len, cap;
} sink;

static sink out_sink = {.mu = PTHREAD_MUTEX_INITIALIZER};
static sink err_sink = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void sink_write(sink *s, const void *data, size_t len)
{
    pthread_mutex_lock(&s->mu);
    if (s->len + len + 1 > s->cap) {
        size_t cap = (s->len + len + 1) * 2;
        char *p = realloc(s->buf, cap);
        if (!p) {
            pthread_mutex_unlock(&s->mu);
            return;
        }
        s->buf = p;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = 0;
    pthread_mutex_unlock(&s->mu);
}

static void *_Atomic seen_ctx;

static void to_out(void *ctx, const void *data, size_t len)
{
    seen_ctx = ctx;
    sink_write(&out_sink, data, len);
}

static void to_err(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    sink_write(&err_sink, data, len);
}

static void sink_reset(sink *s)
{
    pthread_mutex_lock(&s->mu);
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    pthread_mutex_unlock(&s->mu);
}

/* What the default logger sink saw. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];

static void log_fn(void *ctx, gp_log_level level, const char *name, const char *msg,
                   const gp_log_kv *kv, size_t nkv)
{
    (void)ctx;
    (void)name;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(log_text);
    snprintf(log_text + n, sizeof log_text - n, "[%s] %s", gp_log_level_name(level), msg);
    for (size_t i = 0; i < nkv; i++) {
        n = strlen(log_text);
        snprintf(log_text + n, sizeof log_text - n, " %s=%s", kv[i].key, kv[i].value);
    }
    n = strlen(log_text);
    snprintf(log_text + n, sizeof log_text - n, "\n");
    pthread_mutex_unlock(&log_mu);
}

static gp_client_config config_proto(bool sinks, gp_protocol proto)
{
    static const char *argv[5];
    argv[0] = gp_test_self_exe();
    argv[1] = GP_TEST_HELPER_FLAG;
    argv[2] = "plugin";
    argv[3] = proto == GP_PROTO_NETRPC ? "netrpc" : "grpc";
    argv[4] = NULL;
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = proto,
        .start_timeout_ms = 5000,
        .kill_grace_ms = 3000,
        .logger = {.fn = log_fn, .level = GP_LOG_DEBUG},
    };
    if (sinks) {
        cfg.stdout_sink = to_out;
        cfg.stderr_sink = to_err;
        cfg.stdio_ctx = &out_sink;
    }
    return cfg;
}

static gp_client_config config(bool sinks)
{
    return config_proto(sinks, GP_PROTO_GRPC);
}

static gp_err call_sum(gp_conn *conn, long long a, long long b)
{
    gp_stub *stub = NULL;
    gp_status st = {0};
    gp_err rc = gp_conn_dispense(conn, "adder", &stub, &st);
    proto_SumRequest q = {.a = a, .b = b};
    proto_SumResponse r = {0};
    if (!rc)
        rc = proto_AddHelper_Sum(stub, &q, &r, &st);
    if (rc)
        fprintf(stderr, "sum: %s\n", st.msg);
    else
        GP_CHECK_INT(r.r, ==, a + b);
    gp_stub_free(stub);
    return rc;
}

/* Wait up to 5 s for `text` in a sink. */
static bool sink_has(sink *s, const char *text)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&s->mu);
        bool ok = s->buf && strstr(s->buf, text);
        pthread_mutex_unlock(&s->mu);
        if (ok)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static void session_with_sinks_on(gp_protocol proto)
{
    sink_reset(&out_sink);
    sink_reset(&err_sink);
    gp_client_config cfg = config_proto(true, proto);
    gp_client *c = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_conn *conn = NULL;
    gp_status cst;
    if (gp_client_connect(c, &conn, &cst) != GP_OK) {
        GP_FAILF("connect: %s", cst.msg);
        gp_client_free(c);
        return;
    }
    GP_CHECK_INT(call_sum(conn, 1, 2), ==, GP_OK);
    GP_CHECK_INT(call_sum(conn, 3, 4), ==, GP_OK);
    GP_CHECK(sink_has(&out_sink, "sum 1 2\nsum 3 4\n"));
    GP_CHECK(sink_has(&err_sink, "err 1\nerr 3\n"));
    GP_CHECK(seen_ctx == &out_sink);
    /* A flood the host drains while the call runs: the plugin never blocks
     * and every byte arrives, in order. */
    GP_CHECK_INT(call_sum(conn, 5, -1), ==, GP_OK);
    GP_CHECK(sink_has(&out_sink, "sum 5 -1\n"));
    pthread_mutex_lock(&out_sink.mu);
    size_t xs = 0;
    for (size_t i = 0; out_sink.buf && i < out_sink.len; i++)
        xs += out_sink.buf[i] == 'x';
    GP_CHECK_INT(xs, ==, FLOOD);
    GP_CHECK(out_sink.buf && strstr(out_sink.buf, "sum 3 4\nxxx") != NULL);
    pthread_mutex_unlock(&out_sink.mu);
    gp_client_free(c);
}

static void session_with_sinks(void)
{
    session_with_sinks_on(GP_PROTO_GRPC);
}

GP_TEST(printf_reaches_the_sinks)
{
    session_with_sinks();
}

/* netrpc: the same bytes on the stdout and stderr streams. */
GP_TEST(printf_reaches_the_sinks_over_netrpc)
{
    session_with_sinks_on(GP_PROTO_NETRPC);
}

GP_TEST(default_sink_is_the_logger)
{
    pthread_mutex_lock(&log_mu);
    log_text[0] = 0;
    pthread_mutex_unlock(&log_mu);
    gp_client_config cfg = config(false);
    gp_client *c = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_conn *conn = NULL;
    GP_CHECK_ERR(gp_client_connect(c, &conn, NULL), GP_OK);
    if (conn)
        GP_CHECK_INT(call_sum(conn, 7, 8), ==, GP_OK);
    /* Written just before a shutdown, bytes may still be in the pipe and
     * then go to the real stderr instead: wait for them first. */
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&log_mu);
        bool both = strstr(log_text, "err 7 stream=stderr") && strstr(log_text, "sum 7 8");
        pthread_mutex_unlock(&log_mu);
        if (both)
            break;
        usleep(10 * 1000);
    }
    gp_client_free(c);
    pthread_mutex_lock(&log_mu);
    GP_CHECK_CONTAINS(log_text, "[debug] sum 7 8 stream=stdout");
    GP_CHECK_CONTAINS(log_text, "[info] err 7 stream=stderr");
    pthread_mutex_unlock(&log_mu);
}

GP_TEST(nothing_left_behind)
{
    /* The first session starts gRPC core's own threads and descriptors,
     * which stay for the process's life: count after it. */
    session_with_sinks();
    int fds = gp_test_count_fds(), threads = gp_test_count_threads();
    session_with_sinks();
    GP_CHECK_FDS_AT_MOST(fds);
    /* Our threads are joined by gp_client_free; gRPC core ends some of its
     * own a little later. */
    GP_CHECK_THREADS_AT_MOST(threads);
}

/* Threads of process pid (its /proc status). */
static int threads_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

/* The plugin starts its signal and stdio threads just after its line,
 * while the host dials: its count once it holds still for 200 ms. */
static int settled_threads_of(pid_t pid)
{
    int n = threads_of(pid);
    for (int same = 0, i = 0; same < 4 && i < 100; i++) {
        usleep(50 * 1000);
        int m = threads_of(pid);
        same = m == n ? same + 1 : 0;
        n = m;
    }
    return n;
}

/* Hosts that reattach, call and leave: each opened the stdio stream, and
 * the plugin, which prints nothing meanwhile, must let each stream go
 * (before: a thread per gRPC host, and on netrpc the whole connection,
 * held until the plugin next printed; past gp_limits.max_connections a
 * netrpc plugin then refused every new host). */
static void hosts_that_leave_leave_nothing(gp_protocol proto)
{
    gp_client_config cfg = config_proto(false, proto);
    gp_client *owner = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &owner, NULL), GP_OK);
    gp_conn *conn = NULL;
    gp_status st;
    if (gp_client_connect(owner, &conn, &st) != GP_OK) {
        GP_FAILF("connect: %s", st.msg);
        gp_client_free(owner);
        return;
    }
    GP_CHECK_INT(call_sum(conn, 1, 1), ==, GP_OK);
    gp_reattach_config rc;
    GP_CHECK_ERR(gp_client_reattach_config(owner, &rc), GP_OK);
    int base = settled_threads_of(rc.pid);
    GP_CHECK_INT(base, >, 0);
    enum { HOSTS = 8 };
    for (int i = 0; i < HOSTS; i++) {
        gp_client_config rcfg = {.reattach = &rc,
                                 .handshake = cfg.handshake,
                                 .allowed_protocols = proto,
                                 .logger = cfg.logger,
                                 .detached = true}; /* free lets it run */
        gp_client *c = NULL;
        GP_CHECK_ERR(gp_client_new(&rcfg, &c, NULL), GP_OK);
        gp_conn *rconn = NULL;
        if (c && gp_client_connect(c, &rconn, &st) == GP_OK)
            GP_CHECK_INT(call_sum(rconn, i, 1), ==, GP_OK);
        else
            GP_FAILF("reattach %d: %s", i, st.msg);
        gp_client_free(c);
    }
    /* Each stream looks for its host every second while nothing is printed. */
    int deadline_ms = (int)(4000 * gp_test_scale()), now = threads_of(rc.pid);
    for (int t = 0; t < deadline_ms && now > base + 1; t += 50) {
        usleep(50 * 1000);
        now = threads_of(rc.pid);
    }
    fprintf(stderr, "plugin threads: %d before %d hosts came and went, %d after\n", base, HOSTS,
            now);
    GP_CHECK_INT(now, <=, base + 1);
    GP_CHECK_INT(call_sum(conn, 2, 2), ==, GP_OK); /* the owner's connection still works */
    gp_client_free(owner);
}

GP_TEST(hosts_that_leave_leave_no_stdio_threads)
{
    hosts_that_leave_leave_nothing(GP_PROTO_GRPC);
}

GP_TEST(hosts_that_leave_leave_no_stdio_threads_over_netrpc)
{
    hosts_that_leave_leave_nothing(GP_PROTO_NETRPC);
}

/* The plugin: argv[1] is the wire. */
GP_HELPER(plugin)
{
    return plugin_main(argc > 1 && strcmp(argv[1], "netrpc") == 0 ? GP_PROTO_NETRPC
                                                                  : GP_PROTO_GRPC);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(printf_reaches_the_sinks);
    GP_RUN(printf_reaches_the_sinks_over_netrpc);
    GP_RUN(default_sink_is_the_logger);
    GP_RUN(nothing_left_behind);
    GP_RUN_TIMEOUT(hosts_that_leave_leave_no_stdio_threads, 30);
    GP_RUN_TIMEOUT(hosts_that_leave_leave_no_stdio_threads_over_netrpc, 30);
    return gp_test_done();
}
