/* gp_client against misbehaving plugins: this binary re-executes itself
 * (a GP_HELPER each) as each one. Every case checks the
 * error words (what was expected, what came), that it came within the
 * start timeout, and that no child, zombie or descriptor is left. */
#include <goplugin/client.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/process/checksum.h"
#include "transport/process/proc.h"
#include "transport/testing/gp_test.h"

#define COOKIE_KEY "GP_CLIENT_TEST_COOKIE"
#define COOKIE_VALUE "d1e5b2f0"
/* The start timeout of the test plugins, scaled: a slow exec under a
 * sanitizer on a loaded machine must not look like a plugin's fault. */
#define START_MS ((int)(2000 * gp_test_scale()))

/* ---- the misbehaving plugins ---- */

static void say(const char *line)
{
    gp_test_write_all(1, line, strlen(line));
}

/* A port on 127.0.0.1 where nobody listens (bound then closed). */
static int dead_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        return 1;
    close(s);
    return ntohs(a.sin_port);
}

/* Like go-plugin's Serve: no cookie, no service. 0 when it is there. */
static int check_cookie(void)
{
    const char *cookie = getenv(COOKIE_KEY);
    if (!cookie || strcmp(cookie, COOKIE_VALUE) != 0) {
        fprintf(stderr, "This binary is a plugin. These are not meant to be executed "
                        "directly. Please execute the program that consumes these plugins, "
                        "which will load any plugins automatically\n");
        return 1;
    }
    return 0;
}

/* Says `line` and waits to be killed. */
static int say_and_wait(const char *line)
{
    if (check_cookie())
        return 1;
    say(line);
    sleep(30);
    return 0;
}

/* go-plugin's "start-timeout": never a handshake line. */
GP_HELPER(start_timeout)
{
    if (check_cookie())
        return 1;
    sleep(30);
    return 0;
}

/* go-plugin's "invalid-rpc-address": a line that is no handshake. */
GP_HELPER(invalid_rpc_address)
{
    return say_and_wait("hello there, I am not a handshake\n");
}

GP_HELPER(noise)
{
    return say_and_wait("Starting plugin v2...\n1|1|tcp|127.0.0.1:1234|grpc\n");
}

GP_HELPER(bad_core_version)
{
    return say_and_wait("2|1|tcp|127.0.0.1:1234|grpc\n");
}

/* go-plugin's "bad-version": an app version the host does not accept. */
GP_HELPER(bad_version)
{
    return say_and_wait("1|9|tcp|127.0.0.1:1234|grpc\n");
}

GP_HELPER(udp)
{
    return say_and_wait("1|1|udp|127.0.0.1:1234|grpc\n");
}

GP_HELPER(proto_unknown)
{
    return say_and_wait("1|1|tcp|127.0.0.1:1234|carrier-pigeon\n");
}

GP_HELPER(proto_empty)
{
    return say_and_wait("1|1|tcp|127.0.0.1:1234|\n");
}

GP_HELPER(netrpc)
{
    return say_and_wait("1|1|tcp|127.0.0.1:1234|netrpc\n");
}

GP_HELPER(exit_msg)
{
    if (check_cookie())
        return 1;
    fprintf(stderr, "{\"@level\":\"error\",\"@message\":\"config file missing\","
                    "\"path\":\"/etc/kv.conf\"}\n");
    fprintf(stderr, "fatal: cannot continue without /etc/kv.conf\n");
    return 3;
}

/* More stderr than a gp_status holds, then exit. */
GP_HELPER(exit_long_stderr)
{
    if (check_cookie())
        return 1;
    for (int i = 0; i < 40; i++)
        fprintf(stderr, "line %02d: the plugin is saying quite a lot before it goes\n", i);
    fprintf(stderr, "fatal: the last words\n");
    return 3;
}

GP_HELPER(nolisten)
{
    char line[256];
    snprintf(line, sizeof line, "1|1|tcp|127.0.0.1:%d|grpc\n", dead_port());
    return say_and_wait(line);
}

GP_HELPER(nolisten_unix)
{
    return say_and_wait("1|1|unix|/tmp/gp-client-test-nobody-here.sock|grpc\n");
}

GP_HELPER(huge)
{
    if (check_cookie())
        return 1;
    size_t n = 1 << 20;
    char *b = malloc(n);
    memset(b, 'z', n);
    gp_test_write_all(1, b, n);
    free(b);
    sleep(30);
    return 0;
}

GP_HELPER(grandchild)
{
    if (check_cookie())
        return 1;
    pid_t kid = fork();
    if (kid == 0) {
        sleep(60);
        _exit(0);
    }
    fprintf(stderr, "grandchild %d\n", (int)kid);
    return say_and_wait("1|1|tcp|127.0.0.1:1234|grpc\n");
}

GP_HELPER(ignore_term)
{
    signal(SIGTERM, SIG_IGN);
    return say_and_wait("1|1|tcp|127.0.0.1:1234|grpc\n");
}

/* Logs the plugin variables it got, as hclog JSON on stderr. */
GP_HELPER(env)
{
    if (check_cookie())
        return 1;
    const char *keys[] = {"PLUGIN_MIN_PORT",
                          "PLUGIN_MAX_PORT",
                          "PLUGIN_PROTOCOL_VERSIONS",
                          "PLUGIN_UNIX_SOCKET_DIR",
                          "PLUGIN_UNIX_SOCKET_GROUP",
                          "GP_FROM_CFG",
                          "GP_FROM_HOST",
                          "GP_BOTH"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = getenv(keys[i]);
        fprintf(stderr,
                "{\"@level\":\"info\",\"@message\":\"env\",\"key\":\"%s\","
                "\"value\":\"%s\"}\n",
                keys[i], v ? v : "<unset>");
    }
    return say_and_wait("1|3|tcp|127.0.0.1:1234|grpc\n");
}

/* A real socket file, left behind when we are SIGKILLed. */
GP_HELPER(good)
{
    if (check_cookie())
        return 1;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "/tmp/gp-client-test-%d.sock", (int)getpid());
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 4) != 0)
        return 4;
    char line[256];
    snprintf(line, sizeof line, "1|3|unix|%s|grpc\n", a.sun_path);
    return say_and_wait(line);
}

/* ---- a logger that records what arrives ---- */

typedef struct rec {
    gp_log_level level;
    char name[64];
    char msg[128];
    char kv[256];
} rec;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static rec logs[128];
static int nlogs;

static void capture(void *ctx, gp_log_level level, const char *name, const char *msg,
                    const gp_log_kv *kv, size_t nkv)
{
    (void)ctx;
    pthread_mutex_lock(&log_mu);
    if (nlogs < 128) {
        rec *r = &logs[nlogs++];
        r->level = level;
        snprintf(r->name, sizeof r->name, "%s", name);
        snprintf(r->msg, sizeof r->msg, "%s", msg);
        r->kv[0] = '\0';
        for (size_t i = 0; i < nkv; i++) {
            size_t l = strlen(r->kv);
            snprintf(r->kv + l, sizeof r->kv - l, "%s=%s;", kv[i].key, kv[i].value);
        }
    }
    pthread_mutex_unlock(&log_mu);
}

static void logs_reset(void)
{
    pthread_mutex_lock(&log_mu);
    nlogs = 0;
    pthread_mutex_unlock(&log_mu);
}

/* Is there a record whose kv text contains `needle`? */
static bool logged_kv(const char *needle)
{
    pthread_mutex_lock(&log_mu);
    bool found = false;
    for (int i = 0; i < nlogs && !found; i++)
        found = strstr(logs[i].kv, needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

/* ---- helpers ---- */

/* Runs helper `mode` as the plugin. */
static gp_client_config config(const char *mode)
{
    /* Static: the config borrows it past this function. */
    static const char *argv[4];
    argv[0] = gp_test_self_exe();
    argv[1] = GP_TEST_HELPER_FLAG;
    argv[2] = mode;
    argv[3] = NULL;
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC,
        .start_timeout_ms = START_MS,
        .logger = {.fn = capture, .level = GP_LOG_TRACE},
    };
    return cfg;
}

/* Start a plugin that must fail; check code, words, time and cleanup. */
static void expect_start_failure(const char *mode, gp_client_config cfg, gp_err want,
                                 const char *const *words)
{
    int fds = gp_test_count_fds();
    gp_client *c = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    if (!c)
        return;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gp_conn *conn = NULL;
    gp_status st;
    gp_err rc = gp_client_connect(c, &conn, &st);
    long ms = gp_test_ms_since(&t0);
    if (rc != want)
        GP_FAILF("mode %s: expected %s, got %s: %s", mode, gp_strerror(want), gp_strerror(rc),
                 st.msg);
    if (getenv("GP_TEST_VERBOSE"))
        fprintf(stderr, "--- %s (%ld ms): %s\n", mode, ms, st.msg);
    GP_CHECK(conn == NULL);
    GP_CHECK(ms < START_MS + 1000);
    for (size_t i = 0; words[i]; i++)
        GP_CHECK_CONTAINS(st.msg, words[i]);
    pid_t pid = gp_client_pid(c);
    /* Failed starts leave nothing running even before free. */
    if (pid > 0) {
        GP_CHECK(gp_client_exited(c));
        gp_test_check_gone(pid);
    }
    /* A failed start gives the same error again and runs nothing new; a
     * failed connect has killed the plugin, so the client is spent. */
    gp_status again;
    GP_CHECK_ERR(gp_client_start(c, &again), want == GP_ECONNECT ? GP_ESTATE : want);
    GP_CHECK_INT(again.err, ==, want == GP_ECONNECT ? GP_ESTATE : want);
    if (want != GP_ECONNECT)
        GP_CHECK_STR(again.msg, st.msg);
    GP_CHECK_INT(gp_client_pid(c), ==, pid);
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- bad input ---- */

GP_TEST(no_handshake_before_timeout)
{
    char within[32];
    snprintf(within, sizeof within, "within %d ms", START_MS);
    expect_start_failure(
        "start-timeout", config("start-timeout"), GP_ETIMEDOUT,
        WORDS("timeout while waiting for plugin to start", "expected a handshake line", within));
}

GP_TEST(garbage_line)
{
    expect_start_failure(
        "invalid-rpc-address", config("invalid-rpc-address"), GP_EPROTO,
        WORDS("expected CORE|APP|NETWORK|ADDRESS|PROTOCOL", "hello there, I am not a handshake"));
}

GP_TEST(stdout_noise_before_handshake)
{
    expect_start_failure("noise", config("noise"), GP_EPROTO,
                         WORDS("unrecognized handshake line", "Starting plugin v2..."));
}

GP_TEST(wrong_core_version)
{
    expect_start_failure("bad-core-version", config("bad-core-version"), GP_EVERSION,
                         WORDS("core protocol version", "plugin offered 2", "host speaks 1"));
}

GP_TEST(app_version_not_offered)
{
    gp_client_config cfg = config("bad-version");
    static const unsigned more[] = {3};
    cfg.versions = more;
    cfg.nversions = 1;
    expect_start_failure("bad-version", cfg, GP_EVERSION,
                         WORDS("incompatible API version", "plugin offered 9", "host accepts 1,3"));
}

GP_TEST(unknown_network)
{
    expect_start_failure("udp", config("udp"), GP_EPROTO,
                         WORDS("unknown network \"udp\"", "expected unix or tcp"));
}

GP_TEST(unknown_protocol)
{
    expect_start_failure("proto_unknown", config("proto_unknown"), GP_EPROTO,
                         WORDS("unknown protocol \"carrier-pigeon\"", "expected grpc or netrpc"));
}

GP_TEST(empty_protocol)
{
    expect_start_failure("proto_empty", config("proto_empty"), GP_EPROTO,
                         WORDS("empty protocol", "expected grpc or netrpc"));
}

GP_TEST(protocol_not_allowed)
{
    expect_start_failure("netrpc", config("netrpc"), GP_EPROTO,
                         WORDS("unsupported plugin protocol \"netrpc\"", "host allows grpc"));
}

GP_TEST(early_exit_with_stderr)
{
    logs_reset();
    expect_start_failure(
        "exit_msg", config("exit_msg"), GP_EEXITED,
        WORDS("plugin exited before we could connect", "exit status 3",
              "plugin stderr (last lines):", "fatal: cannot continue without /etc/kv.conf"));
    /* Its hclog line reached the logger at ERROR, with its pair. */
    GP_CHECK(logged_kv("path=/etc/kv.conf;"));
}

GP_TEST(long_stderr_keeps_its_last_lines)
{
    gp_client_config cfg = config("exit_long_stderr");
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_status st;
    GP_CHECK_ERR(gp_client_start(c, &st), GP_EEXITED);
    GP_CHECK_INT(st.err, ==, GP_EEXITED);
    GP_CHECK_CONTAINS(st.msg, "plugin exited before we could connect");
    GP_CHECK_CONTAINS(st.msg, "fatal: the last words");
    GP_CHECK(strstr(st.msg, "line 00:") == NULL); /* the start did not fit */
    GP_CHECK_INT(strlen(st.msg), <, GP_ERRMSG_MAX);
    /* The kept tail begins at a line start. */
    const char *head = "\nplugin stderr (last lines):\n";
    const char *t = strstr(st.msg, head);
    GP_CHECK(t != NULL);
    if (t)
        GP_CHECK(strncmp(t + strlen(head), "line ", 5) == 0);
    gp_client_free(c);
}

GP_TEST(address_where_nobody_listens)
{
    expect_start_failure("nolisten", config("nolisten"), GP_ECONNECT,
                         WORDS("connect to plugin", "127.0.0.1:", "refused"));
    expect_start_failure("nolisten_unix", config("nolisten_unix"), GP_ECONNECT,
                         WORDS("connect to plugin", "/tmp/gp-client-test-nobody-here.sock"));
}

GP_TEST(megabyte_line_without_newline)
{
    expect_start_failure("huge", config("huge"), GP_EMSGSIZE,
                         WORDS("handshake line longer than 65536 bytes"));
}

GP_TEST(plugin_run_without_the_cookie)
{
    gp_client_config cfg = config("start-timeout");
    cfg.handshake.magic_cookie_value = "not-the-cookie";
    expect_start_failure(
        "cookie", cfg, GP_EEXITED,
        WORDS("plugin exited before we could connect", "exit status 1", "This binary is a plugin"));
}

GP_TEST(checksum_mismatch_runs_nothing)
{
    gp_client_config cfg = config("good");
    static const uint8_t zero[32];
    cfg.sha256 = zero;
    int fds = gp_test_count_fds();
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_status st;
    GP_CHECK_ERR(gp_client_start(c, &st), GP_ECHECKSUM);
    GP_CHECK_CONTAINS(st.msg, "checksums did not match: expected 000000");
    GP_CHECK_CONTAINS(st.msg, "binary has ");
    GP_CHECK_INT(gp_client_pid(c), <=, 0);
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
}

/* ---- what works up to the handshake ---- */

GP_TEST(handshake_parsed_with_checksum)
{
    int fds = gp_test_count_fds();
    int f = open(gp_test_self_exe(), O_RDONLY | O_CLOEXEC);
    uint8_t sum[32];
    GP_CHECK_ERR(gp__sha256_fd(f, sum), GP_OK);
    close(f);
    gp_client_config cfg = config("good");
    static const unsigned more[] = {3, 2};
    cfg.versions = more;
    cfg.nversions = 2;
    cfg.sha256 = sum;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK);
    gp_status ok = {.err = GP_EINVAL, .grpc_code = 3, .msg = "left from before"};
    GP_CHECK_ERR(gp_client_start(c, &ok), GP_OK); /* idempotent; clears st */
    GP_CHECK_INT(ok.err, ==, GP_OK);
    GP_CHECK_INT(ok.grpc_code, ==, 0);
    GP_CHECK_STR(ok.msg, "");
    GP_CHECK_INT(gp_client_protocol_version(c), ==, 3);
    GP_CHECK_INT(gp_client_protocol(c), ==, GP_PROTO_GRPC);
    pid_t pid = gp_client_pid(c);
    GP_CHECK(pid > 0);
    GP_CHECK(!gp_client_exited(c));
    gp_reattach_config ra;
    GP_CHECK_ERR(gp_client_reattach_config(c, &ra), GP_OK);
    char sock[64];
    snprintf(sock, sizeof sock, "/tmp/gp-client-test-%d.sock", (int)pid);
    GP_CHECK_STR(ra.network, "unix");
    GP_CHECK_STR(ra.address, sock);
    GP_CHECK_INT(ra.pid, ==, pid);
    GP_CHECK_INT(ra.protocol_version, ==, 3);
    GP_CHECK_INT(ra.protocol, ==, GP_PROTO_GRPC);
    struct stat st;
    GP_CHECK_INT(lstat(sock, &st), ==, 0);
    gp_client_kill(c);
    GP_CHECK(gp_client_exited(c));
    gp_test_check_gone(pid);
    /* The socket file the killed plugin left is gone too. */
    GP_CHECK_INT(lstat(sock, &st), ==, -1);
    gp_client_kill(c);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_ESTATE);
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
}

GP_TEST(child_environment)
{
    logs_reset();
    setenv("GP_FROM_HOST", "host", 1);
    setenv("GP_BOTH", "host", 1);
    gp_client_config cfg = config("env");
    static const char *env[] = {"GP_FROM_CFG=cfg", "GP_BOTH=cfg", "PLUGIN_MIN_PORT=1", NULL};
    static const unsigned more[] = {3};
    cfg.env = env;
    cfg.versions = more;
    cfg.nversions = 1;
    cfg.unix_socket_dir = "/tmp/gp-sockets";
    cfg.unix_socket_group = "plugins";
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK);
    gp_client_free(c); /* drains stderr before it returns */
    GP_CHECK(logged_kv("key=PLUGIN_MIN_PORT;value=10000;"));
    GP_CHECK(logged_kv("key=PLUGIN_MAX_PORT;value=25000;"));
    GP_CHECK(logged_kv("key=PLUGIN_PROTOCOL_VERSIONS;value=1,3;"));
    GP_CHECK(logged_kv("key=PLUGIN_UNIX_SOCKET_DIR;value=/tmp/gp-sockets;"));
    GP_CHECK(logged_kv("key=PLUGIN_UNIX_SOCKET_GROUP;value=plugins;"));
    GP_CHECK(logged_kv("key=GP_FROM_CFG;value=cfg;"));
    GP_CHECK(logged_kv("key=GP_FROM_HOST;value=host;"));
    GP_CHECK(logged_kv("key=GP_BOTH;value=host;"));

    /* skip_host_env: only the config and go-plugin's variables. */
    logs_reset();
    cfg.skip_host_env = true;
    cfg.unix_socket_dir = NULL;
    cfg.unix_socket_group = NULL;
    cfg.min_port = 2000;
    cfg.max_port = 3000;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK);
    gp_client_free(c);
    GP_CHECK(logged_kv("key=GP_FROM_HOST;value=<unset>;"));
    GP_CHECK(logged_kv("key=GP_BOTH;value=cfg;"));
    GP_CHECK(logged_kv("key=PLUGIN_MIN_PORT;value=2000;"));
    GP_CHECK(logged_kv("key=PLUGIN_MAX_PORT;value=3000;"));
    GP_CHECK(logged_kv("key=PLUGIN_UNIX_SOCKET_DIR;value=<unset>;"));
    pthread_mutex_lock(&log_mu);
    int env_logs = 0;
    for (int i = 0; i < nlogs; i++) {
        if (strcmp(logs[i].msg, "env") != 0)
            continue;
        env_logs++;
        GP_CHECK_STR(logs[i].name, strrchr(gp_test_self_exe(), '/') + 1);
        GP_CHECK_INT(logs[i].level, ==, GP_LOG_INFO);
    }
    GP_CHECK_INT(env_logs, ==, 8);
    pthread_mutex_unlock(&log_mu);
    unsetenv("GP_FROM_HOST");
    unsetenv("GP_BOTH");
}

GP_TEST(kill_reaches_grandchild)
{
    int fds = gp_test_count_fds();
    logs_reset();
    gp_client_config cfg = config("grandchild");
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK);
    pid_t kid = 0;
    for (int i = 0; i < 300 && kid == 0; i++) {
        pthread_mutex_lock(&log_mu);
        for (int j = 0; j < nlogs; j++)
            if (strncmp(logs[j].msg, "grandchild ", 11) == 0)
                kid = (pid_t)atoi(logs[j].msg + 11);
        pthread_mutex_unlock(&log_mu);
        if (kid == 0)
            usleep(10000);
    }
    GP_CHECK(kid > 0);
    GP_CHECK_INT(kill(kid, 0), ==, 0);
    pid_t pid = gp_client_pid(c);
    gp_client_kill(c);
    gp_test_check_gone(pid);
    bool alive = true;
    for (int i = 0; i < 200 && alive; i++) {
        alive = kill(kid, 0) == 0;
        if (alive)
            usleep(10000);
    }
    GP_CHECK(!alive);
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
}

/* Without a connection, kill asks with SIGTERM, waits the grace period,
 * then SIGKILLs. */
GP_TEST(kill_without_conn_terms_then_kills)
{
    int fds = gp_test_count_fds();
    gp_client_config cfg = config("ignore_term");
    cfg.kill_grace_ms = 400;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK);
    pid_t pid = gp_client_pid(c);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gp_client_kill(c);
    long ms = gp_test_ms_since(&t0);
    GP_CHECK(ms >= 390 && ms < 2000);
    gp_test_check_gone(pid);
    gp_client_free(c);

    /* One that obeys SIGTERM does not cost the grace period. */
    cfg = config("start-timeout");
    cfg.kill_grace_ms = 5000;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_ETIMEDOUT);
    gp_client_free(c);
    static const unsigned more[] = {3};
    cfg = config("good");
    cfg.versions = more;
    cfg.nversions = 1;
    cfg.kill_grace_ms = 5000;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK);
    pid = gp_client_pid(c);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gp_client_kill(c);
    GP_CHECK(gp_test_ms_since(&t0) < 1000);
    gp_test_check_gone(pid);
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
}

/* A netrpc plugin whose address nobody listens on: the dial fails with
 * words and the plugin is stopped. */
GP_TEST(netrpc_dial_failure_kills_plugin)
{
    gp_client_config cfg = config("netrpc");
    cfg.allowed_protocols = GP_PROTO_GRPC | GP_PROTO_NETRPC;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_conn *conn;
    gp_status st;
    GP_CHECK(gp_client_connect(c, &conn, &st) != GP_OK);
    GP_CHECK_CONTAINS(st.msg, "connect to plugin: dial tcp 127.0.0.1:1234");
    pid_t pid = gp_client_pid(c);
    gp_client_free(c);
    gp_test_check_gone(pid);
}

/* ---- config and reattach ---- */

GP_TEST(config_errors_name_the_field)
{
    gp_client *c = (gp_client *)1;
    gp_client_config cfg = config("good");
    cfg.handshake.magic_cookie_key = "";
    gp_status st;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK(c == NULL);
    GP_CHECK_CONTAINS(st.msg, "handshake.magic_cookie_key");

    cfg = config("good");
    cfg.handshake.magic_cookie_value = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "handshake.magic_cookie_value");

    cfg = config("good");
    cfg.argv = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "argv");

    cfg = config("good");
    static const char *env[] = {"OK=1", "NOEQUALS", NULL};
    cfg.env = env;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "env[1]: expected KEY=VALUE, got \"NOEQUALS\"");

    cfg = config("good");
    cfg.min_port = 30000;
    cfg.max_port = 20000;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "min_port/max_port");

    cfg = config("good");
    cfg.handshake.protocol_version = 0;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "handshake.protocol_version");

    cfg = config("good");
    cfg.start_timeout_ms = -1;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "start_timeout_ms");

    cfg = config("good");
    cfg.limits.max_pending_streams = -1;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "limits: expected every field >= 0 (0 = default), got max_streams 0, "
                              "max_pending_streams -1");

    cfg = config("good");
    cfg.allowed_protocols = 8;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "allowed_protocols");

    gp_reattach_config ra = {.protocol = GP_PROTO_GRPC, .network = "udp", .address = "x"};
    cfg = config("good");
    cfg.argv = NULL;
    cfg.reattach = &ra;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "reattach->network");

    ra.network = "unix";
    cfg = config("good");
    cfg.reattach = &ra;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "argv and reattach");

    GP_CHECK_ERR(gp_client_new(NULL, &c, NULL), GP_EINVAL);
    GP_CHECK_ERR(gp_client_new(&cfg, NULL, NULL), GP_EINVAL);
}

GP_TEST(reattach_failure_kills_nothing)
{
    int fds = gp_test_count_fds();
    /* A live process of ours that is no plugin. */
    pid_t bystander = fork();
    if (bystander == 0) {
        sleep(30);
        _exit(0);
    }
    gp_reattach_config ra = {.protocol = GP_PROTO_GRPC,
                             .protocol_version = 1,
                             .pid = bystander,
                             .network = "unix",
                             .address = "/tmp/gp-client-test-nobody-here.sock"};
    gp_client_config cfg = {.reattach = &ra,
                            .start_timeout_ms = START_MS,
                            .allowed_protocols = GP_PROTO_GRPC,
                            .logger = {.fn = capture, .level = GP_LOG_TRACE}};
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_status st;
    GP_CHECK_ERR(gp_client_start(c, &st), GP_ENOTFOUND);
    GP_CHECK_CONTAINS(st.msg, "expected a plugin listening on unix");
    gp_client_free(c);
    GP_CHECK_INT(kill(bystander, 0), ==, 0);
    GP_CHECK_INT(waitpid(bystander, NULL, WNOHANG), ==, 0);

    /* A pid that is gone. */
    kill(bystander, SIGKILL);
    waitpid(bystander, NULL, 0);
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, &st), GP_ENOTFOUND);
    GP_CHECK_CONTAINS(st.msg, "no such process");
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
}

/* A listening unix socket at a fresh path; returns the fd. */
static int listen_unix(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/gp-client-test-ra-%d.sock", (int)getpid());
    unlink(path);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 8) != 0)
        return -1;
    return s;
}

GP_TEST(reattach_then_kill_by_pidfd)
{
    int fds = gp_test_count_fds();
    char path[108];
    int ls = listen_unix(path, sizeof path);
    GP_CHECK(ls >= 0);
    pid_t plugin = fork();
    if (plugin == 0) {
        sleep(30);
        _exit(0);
    }
    gp_reattach_config ra = {.protocol = GP_PROTO_GRPC,
                             .protocol_version = 5,
                             .pid = plugin,
                             .network = "unix",
                             .address = path};
    gp_client_config cfg = {.reattach = &ra,
                            .start_timeout_ms = START_MS,
                            .kill_grace_ms = 100,
                            .allowed_protocols = GP_PROTO_GRPC,
                            .logger = {.fn = capture, .level = GP_LOG_TRACE}};
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK);
    GP_CHECK_INT(gp_client_pid(c), ==, plugin);
    GP_CHECK_INT(gp_client_protocol_version(c), ==, 5);
    GP_CHECK(!gp_client_exited(c));
    gp_client_kill(c);
    GP_CHECK(gp_client_exited(c));
    int status = 0;
    GP_CHECK_INT(waitpid(plugin, &status, 0), ==, plugin);
    GP_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    gp_client_free(c);

    /* Test mode: kill leaves the plugin alone. */
    plugin = fork();
    if (plugin == 0) {
        sleep(30);
        _exit(0);
    }
    ra.pid = plugin;
    ra.test = true;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK);
    gp_client_free(c);
    GP_CHECK_INT(kill(plugin, 0), ==, 0);
    kill(plugin, SIGKILL);
    waitpid(plugin, NULL, 0);
    close(ls);
    unlink(path);
    GP_CHECK_FDS_AT_MOST(fds);
}

GP_TEST(cleanup_kills_managed_clients)
{
    int fds = gp_test_count_fds();
    gp_client_config cfg = config("good");
    static const unsigned more[] = {3};
    cfg.versions = more;
    cfg.nversions = 1;
    cfg.managed = true;
    gp_client *a, *b;
    GP_CHECK_ERR(gp_client_new(&cfg, &a, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_new(&cfg, &b, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(a, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(b, NULL), GP_OK);
    pid_t pa = gp_client_pid(a), pb = gp_client_pid(b);
    gp_cleanup_clients();
    GP_CHECK(gp_client_exited(a));
    GP_CHECK(gp_client_exited(b));
    gp_test_check_gone(pa);
    gp_test_check_gone(pb);
    gp_client_free(a);
    gp_client_free(b);
    gp_cleanup_clients(); /* nothing left: no-op */
    GP_CHECK_FDS_AT_MOST(fds);
}

typedef struct race {
    gp_client *c;
} race;

/* Kill, then fail a start: the words are written and copied into each
 * thread's own st while the others do the same. Returns non-NULL if this
 * thread got the right code and words. */
static void *kill_from_thread(void *arg)
{
    gp_client *c = ((race *)arg)->c;
    gp_client_kill(c);
    (void)gp_client_exited(c);
    gp_status st;
    gp_err rc = gp_client_start(c, &st);
    bool ok = rc == GP_ESTATE && st.err == GP_ESTATE &&
              strstr(st.msg, "client was killed; expected a new client") != NULL;
    return ok ? arg : NULL;
}

GP_TEST(kill_from_several_threads)
{
    int fds = gp_test_count_fds();
    gp_client_config cfg = config("good");
    static const unsigned more[] = {3};
    cfg.versions = more;
    cfg.nversions = 1;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK);
    pid_t pid = gp_client_pid(c);
    race r = {c};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, kill_from_thread, &r);
    for (int i = 0; i < 4; i++) {
        void *ok = NULL;
        pthread_join(t[i], &ok);
        GP_CHECK(ok != NULL);
    }
    GP_CHECK(gp_client_exited(c));
    gp_test_check_gone(pid);
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
}

static void *kill_soon(void *arg)
{
    usleep(200000);
    gp_client_kill(arg);
    return NULL;
}

GP_TEST(kill_during_start)
{
    int fds = gp_test_count_fds();
    gp_client_config cfg = config("start-timeout");
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    pthread_t t;
    pthread_create(&t, NULL, kill_soon, c);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gp_err rc = gp_client_start(c, NULL);
    long ms = gp_test_ms_since(&t0);
    pthread_join(t, NULL);
    GP_CHECK(rc != GP_OK);
    GP_CHECK(ms < START_MS - 500); /* the kill ended the wait, not the timeout */
    GP_CHECK(gp_client_exited(c));
    pid_t pid = gp_client_pid(c);
    if (pid > 0)
        gp_test_check_gone(pid);
    GP_CHECK_ERR_NE(gp_client_start(c, NULL), GP_OK);
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
}

/* ---- SecureConfig for `#!` scripts as for ELF binaries ---- */

static void tmp_path(char *out, size_t cap, const char *name)
{
    const char *base = getenv("TEST_TMPDIR");
    snprintf(out, cap, "%s/%s-%d", base && *base ? base : "/tmp", name, (int)getpid());
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    GP_CHECK(f >= 0);
    gp_test_write_all(f, text, strlen(text));
    close(f);
}

static void sha256_of(const char *path, uint8_t sum[32], char hexsum[65])
{
    int f = open(path, O_RDONLY | O_CLOEXEC);
    GP_CHECK(f >= 0);
    GP_CHECK_ERR(gp__sha256_fd(f, sum), GP_OK);
    close(f);
    for (int i = 0; i < 32; i++)
        snprintf(hexsum + 2 * i, 3, "%02x", sum[i]);
}

/* A shell script plugin that execs this binary as the "good" plugin. */
static void write_script_plugin(char *path, size_t cap)
{
    tmp_path(path, cap, "gp-script-plugin");
    char text[4200];
    snprintf(text, sizeof text, "#!/bin/sh\nexec '%s' " GP_TEST_HELPER_FLAG " good\n",
             gp_test_self_exe());
    write_file(path, text, 0755);
}

GP_TEST(script_plugin_with_its_checksum_runs)
{
    char script[4096], hexsum[65];
    uint8_t sum[32];
    write_script_plugin(script, sizeof script);
    sha256_of(script, sum, hexsum);
    int fds = gp_test_count_fds();
    gp_client_config cfg = config("good");
    const char *argv[] = {script, NULL};
    cfg.argv = argv;
    cfg.handshake.protocol_version = 3; /* what "good" offers */
    cfg.sha256 = sum;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_status st;
    GP_CHECK_ERR(gp_client_start(c, &st), GP_OK);
    GP_CHECK_STR(st.msg, "");
    GP_CHECK_INT(gp_client_protocol(c), ==, GP_PROTO_GRPC);
    pid_t pid = gp_client_pid(c);
    gp_client_kill(c);
    gp_test_check_gone(pid);
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
    unlink(script);
}

GP_TEST(script_plugin_with_another_checksum_is_refused)
{
    char script[4096], hexsum[65], want[128];
    uint8_t sum[32];
    write_script_plugin(script, sizeof script);
    sha256_of(script, sum, hexsum);
    uint8_t wrong[32];
    memcpy(wrong, sum, 32);
    wrong[31] ^= 1;
    int fds = gp_test_count_fds();
    gp_client_config cfg = config("good");
    const char *argv[] = {script, NULL};
    cfg.argv = argv;
    cfg.sha256 = wrong;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_status st;
    GP_CHECK_ERR(gp_client_start(c, &st), GP_ECHECKSUM);
    GP_CHECK_CONTAINS(st.msg, "checksums did not match: expected ");
    snprintf(want, sizeof want, "binary has %s", hexsum);
    GP_CHECK_CONTAINS(st.msg, want);
    GP_CHECK_INT(gp_client_pid(c), <=, 0);
    gp_client_free(c);
    GP_CHECK_FDS_AT_MOST(fds);
    unlink(script);
}

GP_TEST(elf_plugin_refusal_names_both_checksums)
{
    char hexsum[65], want[256];
    uint8_t sum[32];
    sha256_of(gp_test_self_exe(), sum, hexsum);
    uint8_t wrong[32];
    memset(wrong, 0xab, sizeof wrong);
    gp_client_config cfg = config("good");
    cfg.sha256 = wrong;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_status st;
    GP_CHECK_ERR(gp_client_start(c, &st), GP_ECHECKSUM);
    snprintf(want, sizeof want, "checksums did not match: expected %s, binary has %s",
             "abababababababababababababababababababababababababababababababab", hexsum);
    GP_CHECK_CONTAINS(st.msg, want);
    gp_client_free(c);
}

/* Hash, then change what sits at the path, then run: the hashed bytes run.
 * `tamper` rewrites the file in place (same inode) or renames a new file
 * over it. */
static void run_after_tamper(const char *path, char *const argv[], bool in_place,
                             const char *expect_line)
{
    char hexsum[65], err[512] = "";
    uint8_t sum[32];
    sha256_of(path, sum, hexsum);
    int fds = gp_test_count_fds();
    int fd = -1;
    bool script = false;
    GP_CHECK_ERR(gp__checksum_open(path, sum, &fd, &script, err, sizeof err), GP_OK);
    static const char tampered[] = "#!/bin/sh\necho tampered\nsleep 30\n";
    if (in_place) {
        write_file(path, tampered, 0755);
    } else {
        char other[4200];
        snprintf(other, sizeof other, "%s.new", path);
        write_file(other, tampered, 0755);
        GP_CHECK_INT(rename(other, path), ==, 0);
    }
    char *envp[] = {NULL};
    gp__proc_opts o = {.path = path,
                       .argv = argv,
                       .envp = envp,
                       .exec_fd = fd,
                       .exec_fd_script = script,
                       .log_name = "tamper"};
    gp__proc *p = NULL;
    GP_CHECK_ERR(gp__proc_start(&o, &p, err, sizeof err), GP_OK);
    close(fd);
    char *line = NULL;
    size_t len = 0;
    if (p)
        GP_CHECK_ERR(gp__proc_wait_line(p, START_MS, &line, &len, err, sizeof err), GP_OK);
    GP_CHECK_STR(line, expect_line);
    free(line);
    gp__proc_free(p);
    GP_CHECK_FDS_AT_MOST(fds);
}

GP_TEST(file_changed_after_hashing_runs_the_hashed_bytes)
{
    char path[4096];
    tmp_path(path, sizeof path, "gp-tamper");
    /* A script rewritten in place: its sealed copy runs. */
    write_file(path, "#!/bin/sh\necho hashed script\nsleep 30\n", 0755);
    char *sargv[] = {path, NULL};
    run_after_tamper(path, sargv, true, "hashed script");
    /* An ELF binary (a system one: no $ORIGIN) replaced by rename: the
     * descriptor we hashed runs. */
    int in = open("/bin/echo", O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    GP_CHECK(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        gp_test_write_all(out, buf, (size_t)r);
    close(in);
    close(out);
    char *eargv[] = {"echo", "hashed binary", NULL};
    run_after_tamper(path, eargv, false, "hashed binary");
    unlink(path);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN_TIMEOUT(no_handshake_before_timeout, 10);
    GP_RUN(garbage_line);
    GP_RUN(stdout_noise_before_handshake);
    GP_RUN(wrong_core_version);
    GP_RUN(app_version_not_offered);
    GP_RUN(unknown_network);
    GP_RUN(unknown_protocol);
    GP_RUN(empty_protocol);
    GP_RUN(protocol_not_allowed);
    GP_RUN(early_exit_with_stderr);
    GP_RUN(long_stderr_keeps_its_last_lines);
    GP_RUN(address_where_nobody_listens);
    GP_RUN(megabyte_line_without_newline);
    GP_RUN(plugin_run_without_the_cookie);
    GP_RUN(checksum_mismatch_runs_nothing);
    GP_RUN(handshake_parsed_with_checksum);
    GP_RUN(child_environment);
    GP_RUN(kill_reaches_grandchild);
    GP_RUN_TIMEOUT(kill_without_conn_terms_then_kills, 10);
    GP_RUN(netrpc_dial_failure_kills_plugin);
    GP_RUN(config_errors_name_the_field);
    GP_RUN(reattach_failure_kills_nothing);
    GP_RUN(reattach_then_kill_by_pidfd);
    GP_RUN(cleanup_kills_managed_clients);
    GP_RUN(kill_from_several_threads);
    GP_RUN(kill_during_start);
    GP_RUN(script_plugin_with_its_checksum_runs);
    GP_RUN(script_plugin_with_another_checksum_is_refused);
    GP_RUN(elf_plugin_refusal_names_both_checksums);
    GP_RUN(file_changed_after_hashing_runs_the_hashed_bytes);
    return gp_test_done();
}
