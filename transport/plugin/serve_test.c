/* End-to-end tests of gp_serve: this binary re-executes itself as a plugin
 * (a GP_HELPER) and plays the host against it with real pipes,
 * sockets and the gRPC client. */
#include <goplugin/server.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/core/conn.h"
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/handshake/handshake.h"
#include "transport/wire/netrpc/netrpc.h"
#include "transport/net/net.h"
#include "transport/testing/gp_test.h"

extern char **environ;

/* ---- the plugin side ---------------------------------------------------- */

static const gp_service svc_v1[] = {{.name = "kv"}};
static const gp_service svc_v2[] = {{.name = "kv2"}};
static const gp_service svc_v3[] = {{.name = "kv3"}};

/* Serves kv at version 1; argv[1], if there, is PLUGIN network ("tcp"). */
static gp_serve_config basic_config(int argc, char **argv)
{
    return (gp_serve_config){
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = "BASIC_PLUGIN",
                      .magic_cookie_value = "hello"},
        .services = svc_v1,
        .nservices = 1,
        .network = argc > 1 ? argv[1] : NULL,
    };
}

/* go-plugin's "test-grpc": a plugin served over gRPC. */
GP_HELPER(test_grpc)
{
    gp_serve_config cfg = basic_config(argc, argv);
    return gp_serve(&cfg);
}

/* go-plugin's "test-interface": the same over net/rpc. */
GP_HELPER(test_interface)
{
    gp_serve_config cfg = basic_config(argc, argv);
    cfg.protocol = GP_PROTO_NETRPC;
    return gp_serve(&cfg);
}

/* go-plugin's "test-versioned-plugins": more sets, at versions 2 and 3. */
GP_HELPER(test_versioned_plugins)
{
    static const gp_plugin_set sets[] = {{2, svc_v2, 1}, {3, svc_v3, 1}};
    gp_serve_config cfg = basic_config(argc, argv);
    cfg.versions = sets;
    cfg.nversions = 2;
    return gp_serve(&cfg);
}

/* A plugin whose own cookie value is empty: misconfigured. */
GP_HELPER(no_cookie)
{
    gp_serve_config cfg = basic_config(argc, argv);
    cfg.handshake.magic_cookie_value = "";
    return gp_serve(&cfg);
}

/* ---- the host side ------------------------------------------------------ */

static char tmpdir[64];
static char err[1024];

typedef struct child {
    pid_t pid;
    int out, errp;
    char line[512]; /* first stdout line, "" if none */
    char stderr_text[16384];
    int status; /* from waitpid, -1 while running */
} child;

/* Start helper `argv` as a plugin with the host's env minus the plugin
 * variables, plus `extra` ("K=V"). Built before fork: the child only
 * calls async-signal-safe functions. */
static void spawn(child *c, const char *const *argv, const char *const *extra)
{
    memset(c, 0, sizeof *c);
    c->status = -1;
    const char *envp[256];
    size_t n = 0;
    for (char **e = environ; *e && n < 200; e++)
        if (strncmp(*e, "PLUGIN_", 7) != 0 && strncmp(*e, "BASIC_PLUGIN", 12) != 0)
            envp[n++] = *e;
    for (; extra && *extra && n < 254; extra++)
        envp[n++] = *extra;
    envp[n] = NULL;
    int o[2], e[2];
    if (pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC))
        abort();
    c->pid = fork();
    if (c->pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        execve(argv[0], (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    c->out = o[0];
    c->errp = e[0];
}

/* Read the first stdout line within `ms`; "" on EOF or timeout. */
static void read_line(child *c, int ms)
{
    size_t len = 0;
    long long end = gp_test_now_ms() + ms;
    while (len + 1 < sizeof c->line) {
        struct pollfd p = {.fd = c->out, .events = POLLIN};
        long long left = end - gp_test_now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t r = read(c->out, c->line + len, 1);
        if (r <= 0)
            break;
        len++;
        if (c->line[len - 1] == '\n')
            break;
    }
    c->line[len] = 0;
}

/* Wait up to `ms` for exit; then SIGKILL (and fail the caller's check). */
static int wait_exit(child *c, int ms)
{
    int code = gp_test_reap(c->pid, ms);
    c->status = code < 0 ? -2 : code;
    size_t len = 0;
    ssize_t r;
    while (len + 1 < sizeof c->stderr_text &&
           (r = read(c->errp, c->stderr_text + len, sizeof c->stderr_text - 1 - len)) > 0)
        len += (size_t)r;
    c->stderr_text[len] = 0;
    /* Anything left on stdout after the line (there should be nothing). */
    char rest[64];
    r = read(c->out, rest, sizeof rest);
    close(c->out);
    close(c->errp);
    return r == 0 ? c->status : 1000;
}

static int running(child *c)
{
    int st;
    return waitpid(c->pid, &st, WNOHANG) == 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int count_sockets_in_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, "plugin", 6) == 0)
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Dial the plugin's address and health-check it through the grpc client. */
static gp_conn *connect_plugin(const gp__hs_line *l)
{
    int fd;
    if (gp__net_dial(l->network, l->address, 5000, 0, &fd, err, sizeof err) != GP_OK) {
        GP_FAILF("dial: %s", err);
        return NULL;
    }
    gp__grpc_client_opts o = {.call_timeout_ms = 10000, .log_name = "test"};
    gp_conn *conn = NULL;
    if (gp__grpc_conn_from_fd(fd, &o, &conn, err, sizeof err) != GP_OK) {
        GP_FAILF("grpc conn: %s", err);
        return NULL;
    }
    gp_status st;
    if (gp_conn_ping(conn, &st) != GP_OK)
        GP_FAILF("health check: %s", st.msg);
    return conn;
}

static int parse_line(const child *c, gp__hs_line *l)
{
    gp_err e = gp__hs_parse(c->line, strlen(c->line), l, err, sizeof err);
    if (e != GP_OK) {
        GP_FAILF("handshake line: %s", err);
        return -1;
    }
    return 0;
}

GP_TEST(no_cookie_explains_and_exits_1)
{
    int fds = gp_test_count_fds();
    child c;
    spawn(&c, gp_test_helper_argv("test-grpc"), NULL);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "This program is a plugin: it is not meant to be run "
                                     "directly.");

    const char *wrong[] = {"BASIC_PLUGIN=goodbye", NULL};
    spawn(&c, gp_test_helper_argv("test-grpc"), wrong);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "not meant to be run directly");

    const char *misconf[] = {"BASIC_PLUGIN=", NULL};
    spawn(&c, gp_test_helper_argv("no-cookie"), misconf);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "magic cookie key or value is empty");
    GP_CHECK_FDS_AT_MOST(fds);
}

GP_TEST(unix_serve_sigint_sigterm)
{
    char dir[128];
    snprintf(dir, sizeof dir, "PLUGIN_UNIX_SOCKET_DIR=%s", tmpdir);
    const char *env[] = {"BASIC_PLUGIN=hello", "PLUGIN_PROTOCOL_VERSIONS=1", dir, NULL};
    child c;
    spawn(&c, gp_test_helper_argv("test-grpc"), env);
    read_line(&c, 10000);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "1|1|unix|%s/plugin", tmpdir);
    GP_CHECK(strncmp(c.line, prefix, strlen(prefix)) == 0);
    size_t n = strlen(c.line);
    GP_CHECK(n > 7 && strcmp(c.line + n - 7, "|grpc|\n") == 0);
    gp__hs_line l;
    if (parse_line(&c, &l) == 0) {
        unsigned v[] = {1};
        GP_CHECK_ERR(gp__hs_check(&l, v, 1, GP_PROTO_GRPC, err, sizeof err), GP_OK);
        struct stat st;
        GP_CHECK(stat(l.address, &st) == 0 && S_ISSOCK(st.st_mode));
        gp_conn *conn = connect_plugin(&l);

        /* SIGINT is ignored (logged), as go-plugin does. */
        kill(c.pid, SIGINT);
        sleep_ms(300);
        GP_CHECK(running(&c));
        gp_status gs;
        if (conn)
            GP_CHECK_ERR(gp_conn_ping(conn, &gs), GP_OK);
        gp__conn_close(conn);

        kill(c.pid, SIGTERM);
        GP_CHECK_INT(wait_exit(&c, 10000), ==, 0);
        GP_CHECK(stat(l.address, &st) != 0);
        GP_CHECK_CONTAINS(c.stderr_text, "\"@message\":\"plugin address\"");
        GP_CHECK_CONTAINS(c.stderr_text, "\"network\":\"unix\"");
        GP_CHECK_CONTAINS(c.stderr_text, "plugin received interrupt signal, ignoring");
        gp__hs_line_free(&l);
    } else {
        kill(c.pid, SIGKILL);
        wait_exit(&c, 10000);
    }
    GP_CHECK_INT(count_sockets_in_tmpdir(), ==, 0);
}

/* Once gRPC core's own process-wide descriptors exist, the count must come
 * back exactly. */
GP_TEST(shutdown_rpc_stops_plugin)
{
    gp__grpc_core_ref(NULL); /* its first use leaves its process-wide fds */
    gp__grpc_core_unref(NULL);
    int fds = gp_test_count_fds();
    char dir[128];
    snprintf(dir, sizeof dir, "PLUGIN_UNIX_SOCKET_DIR=%s", tmpdir);
    const char *env[] = {"BASIC_PLUGIN=hello", "PLUGIN_PROTOCOL_VERSIONS=1", dir, NULL};
    child c;
    spawn(&c, gp_test_helper_argv("test-grpc"), env);
    read_line(&c, 10000);
    gp__hs_line l;
    if (parse_line(&c, &l) != 0) {
        kill(c.pid, SIGKILL);
        wait_exit(&c, 10000);
        return;
    }
    gp_conn *conn = connect_plugin(&l);
    gp_status st;
    long long t0 = gp_test_now_ms();
    if (conn)
        GP_CHECK_ERR(gp__conn_shutdown(conn, 2000, &st), GP_OK);
    /* go-plugin hosts wait 2 s before SIGKILL: a clean exit beats that
     * (scaled: a sanitizer's leak check runs at the exit). */
    GP_CHECK_INT(wait_exit(&c, (int)(2000 * gp_test_scale())), ==, 0);
    GP_CHECK_INT(gp_test_now_ms() - t0, <, 2000 * gp_test_scale());
    gp__conn_close(conn);
    GP_CHECK_INT(count_sockets_in_tmpdir(), ==, 0);
    gp__hs_line_free(&l);
    GP_CHECK_FDS_AT_MOST(fds);
}

GP_TEST(tcp_port_range_skips_busy_port)
{
    int busy;
    unsigned p;
    GP_CHECK_ERR(gp__net_listen_tcp(0, 0, &busy, &p, err, sizeof err), GP_OK);
    if (p > 65000) {
        close(busy);
        return;
    }
    char lo[40], hi[40];
    snprintf(lo, sizeof lo, "PLUGIN_MIN_PORT=%u", p);
    snprintf(hi, sizeof hi, "PLUGIN_MAX_PORT=%u", p + 30);
    const char *env[] = {"BASIC_PLUGIN=hello", lo, hi, NULL};
    child c;
    spawn(&c, gp_test_helper_argv("test-grpc", "tcp"), env);
    read_line(&c, 10000);
    GP_CHECK(strncmp(c.line, "1|1|tcp|127.0.0.1:", 18) == 0);
    gp__hs_line l;
    if (parse_line(&c, &l) == 0) {
        unsigned port = (unsigned)atoi(strchr(l.address, ':') + 1);
        GP_CHECK(port > p && port <= p + 30);
        gp_conn *conn = connect_plugin(&l);
        gp__conn_close(conn);
        gp__hs_line_free(&l);
    }
    kill(c.pid, SIGTERM);
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 0);
    GP_CHECK_CONTAINS(c.stderr_text, "\"network\":\"tcp\"");
    close(busy);
}

GP_TEST(tcp_bad_port_env)
{
    const char *env[] = {"BASIC_PLUGIN=hello", "PLUGIN_MIN_PORT=abc", "PLUGIN_MAX_PORT=10", NULL};
    child c;
    spawn(&c, gp_test_helper_argv("test-grpc", "tcp"), env);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "bad PLUGIN_MIN_PORT: expected a port number 0..65535");
    GP_CHECK_CONTAINS(c.stderr_text, "\"@message\":\"plugin init error\"");
}

static void expect_version(const char *versions_env, const char *prefix)
{
    char dir[128];
    snprintf(dir, sizeof dir, "PLUGIN_UNIX_SOCKET_DIR=%s", tmpdir);
    const char *env[] = {"BASIC_PLUGIN=hello", versions_env, dir, NULL};
    child c;
    spawn(&c, gp_test_helper_argv("test-versioned-plugins"), env);
    read_line(&c, 10000);
    if (strncmp(c.line, prefix, strlen(prefix)) != 0)
        GP_FAILF("%s: expected a line starting \"%s\", got \"%s\"", versions_env, prefix, c.line);
    kill(c.pid, SIGTERM);
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 0);
}

GP_TEST(version_negotiation)
{
    expect_version("PLUGIN_PROTOCOL_VERSIONS=5,2,3", "1|3|unix|");
    expect_version("PLUGIN_PROTOCOL_VERSIONS=2,1", "1|2|unix|");
    expect_version("PLUGIN_PROTOCOL_VERSIONS=7", "1|1|unix|");
    expect_version("PLUGIN_PROTOCOL_VERSIONS=", "1|1|unix|");
    expect_version("PLUGIN_PROTOCOL_VERSIONS=x,2", "1|2|unix|");
}

/* gp_serve over netrpc: handshake line, Control.Ping, Dispense (a known
 * and an unknown name), Control.Quit stops the plugin with status 0. */
GP_TEST(netrpc_serves_control_and_quits)
{
    char dir[128];
    snprintf(dir, sizeof dir, "PLUGIN_UNIX_SOCKET_DIR=%s", tmpdir);
    const char *env[] = {"BASIC_PLUGIN=hello", dir, NULL};
    child c;
    spawn(&c, gp_test_helper_argv("test-interface"), env);
    read_line(&c, 10000);
    size_t n = strlen(c.line);
    GP_CHECK(n > 9 && strcmp(c.line + n - 9, "|netrpc|\n") == 0);
    gp__hs_line l;
    if (parse_line(&c, &l) != 0) {
        kill(c.pid, SIGKILL);
        wait_exit(&c, 10000);
        return;
    }
    int fd = -1;
    gp_conn *conn = NULL;
    GP_CHECK_ERR(gp__net_dial(l.network, l.address, 5000, 0, &fd, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__netrpc_conn_from_fd(fd, NULL, &conn, err, sizeof err), GP_OK);
    if (conn) {
        gp_status gs;
        GP_CHECK_ERR(gp_conn_ping(conn, &gs), GP_OK);
        gp_stub *stub = NULL;
        GP_CHECK_ERR(gp_conn_dispense(conn, "kv", &stub, &gs), GP_OK);
        gp_stub_free(stub);
        GP_CHECK_ERR(gp_conn_dispense(conn, "nope", &stub, &gs), GP_ENOTFOUND);
        GP_CHECK_STR(gs.msg, "unknown plugin type: nope");
        GP_CHECK_ERR(gp__conn_shutdown(conn, 5000, &gs), GP_OK);
        GP_CHECK_INT(wait_exit(&c, 10000), ==, 0);
        gp__conn_close(conn);
    } else {
        kill(c.pid, SIGKILL);
        wait_exit(&c, 10000);
    }
    struct stat st;
    GP_CHECK(stat(l.address, &st) != 0);
    gp__hs_line_free(&l);
}

GP_TEST(unix_socket_group)
{
    char dir[128], grp[64];
    snprintf(dir, sizeof dir, "PLUGIN_UNIX_SOCKET_DIR=%s", tmpdir);
    snprintf(grp, sizeof grp, "PLUGIN_UNIX_SOCKET_GROUP=%u", (unsigned)getgid());
    const char *env[] = {"BASIC_PLUGIN=hello", dir, grp, NULL};
    child c;
    spawn(&c, gp_test_helper_argv("test-grpc"), env);
    read_line(&c, 10000);
    gp__hs_line l;
    if (parse_line(&c, &l) == 0) {
        struct stat st;
        GP_CHECK(stat(l.address, &st) == 0);
        GP_CHECK_INT(st.st_mode & 0777, ==, 0660);
        GP_CHECK_INT(st.st_gid, ==, getgid());
        gp__hs_line_free(&l);
    }
    kill(c.pid, SIGTERM);
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 0);

    const char *bad[] = {"BASIC_PLUGIN=hello", dir, "PLUGIN_UNIX_SOCKET_GROUP=no-such-group-gp",
                         NULL};
    spawn(&c, gp_test_helper_argv("test-grpc"), bad);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "unknown group \\\"no-such-group-gp\\\"");
    GP_CHECK_INT(count_sockets_in_tmpdir(), ==, 0);
}

GP_TEST(bad_socket_dir)
{
    const char *env[] = {"BASIC_PLUGIN=hello", "PLUGIN_UNIX_SOCKET_DIR=/nonexistent/gp", NULL};
    child c;
    spawn(&c, gp_test_helper_argv("test-grpc"), env);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "unix socket dir /nonexistent/gp: No such file or directory");
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gp_serve_test.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    GP_RUN(no_cookie_explains_and_exits_1);
    GP_RUN(unix_serve_sigint_sigterm);
    GP_RUN(shutdown_rpc_stops_plugin);
    GP_RUN(tcp_port_range_skips_busy_port);
    GP_RUN(tcp_bad_port_env);
    GP_RUN(version_negotiation);
    GP_RUN(netrpc_serves_control_and_quits);
    GP_RUN(unix_socket_group);
    GP_RUN(bad_socket_dir);
    rmdir(tmpdir);
    return gp_test_done();
}
