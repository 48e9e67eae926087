/* End-to-end tests of gp_serve: this binary re-executes itself as a plugin
 * (argv[1] == "plugin") and plays the host against it with real pipes,
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

static int plugin_main(void)
{
    const char *mode = getenv("GP_SERVE_MODE");
    mode = mode ? mode : "basic";
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = "BASIC_PLUGIN",
                      .magic_cookie_value = "hello"},
        .services = svc_v1,
        .nservices = 1,
        .network = getenv("GP_SERVE_NET"),
    };
    static const gp_plugin_set sets[] = {{2, svc_v2, 1}, {3, svc_v3, 1}};
    if (strcmp(mode, "versions") == 0) {
        cfg.versions = sets;
        cfg.nversions = 2;
    } else if (strcmp(mode, "netrpc") == 0) {
        cfg.protocol = GP_PROTO_NETRPC;
    } else if (strcmp(mode, "nocookie") == 0) {
        cfg.handshake.magic_cookie_value = "";
    }
    return gp_serve(&cfg);
}

/* ---- the host side ------------------------------------------------------ */

static char tmpdir[64];
static char err[1024];

typedef struct child {
    pid_t pid;
    int out, errp;
    char line[512];     /* first stdout line, "" if none */
    char stderr_text[16384];
    int status;         /* from waitpid, -1 while running */
} child;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start ourselves as a plugin with the host's env minus the plugin
 * variables, plus `extra` ("K=V"). Built before fork: the child only
 * calls async-signal-safe functions. */
static void spawn(child *c, const char *const *extra)
{
    memset(c, 0, sizeof *c);
    c->status = -1;
    const char *envp[256];
    size_t n = 0;
    for (char **e = environ; *e && n < 200; e++)
        if (strncmp(*e, "PLUGIN_", 7) != 0 && strncmp(*e, "BASIC_PLUGIN", 12) != 0 &&
            strncmp(*e, "GP_SERVE_", 9) != 0)
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
        char *const argv[] = {"serve_test", "plugin", NULL};
        execve("/proc/self/exe", argv, (char *const *)envp);
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
    long long end = now_ms() + ms;
    while (len + 1 < sizeof c->line) {
        struct pollfd p = {.fd = c->out, .events = POLLIN};
        long long left = end - now_ms();
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
    long long end = now_ms() + ms;
    int st;
    for (;;) {
        pid_t r = waitpid(c->pid, &st, WNOHANG);
        if (r == c->pid)
            break;
        if (now_ms() > end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            c->status = -2;
            goto drain;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
drain:;
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
static gp_conn *connect_plugin(const gp_hs_line *l)
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

static int parse_line(const child *c, gp_hs_line *l)
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
    spawn(&c, NULL);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "This program is a plugin: it is not meant to be run "
                                     "directly.");

    const char *wrong[] = {"BASIC_PLUGIN=goodbye", NULL};
    spawn(&c, wrong);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "not meant to be run directly");

    const char *misconf[] = {"BASIC_PLUGIN=", "GP_SERVE_MODE=nocookie", NULL};
    spawn(&c, misconf);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "magic cookie key or value is empty");
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(unix_serve_sigint_sigterm)
{
    char dir[128];
    snprintf(dir, sizeof dir, "PLUGIN_UNIX_SOCKET_DIR=%s", tmpdir);
    const char *env[] = {"BASIC_PLUGIN=hello", "PLUGIN_PROTOCOL_VERSIONS=1", dir, NULL};
    child c;
    spawn(&c, env);
    read_line(&c, 10000);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "1|1|unix|%s/plugin", tmpdir);
    GP_CHECK(strncmp(c.line, prefix, strlen(prefix)) == 0);
    size_t n = strlen(c.line);
    GP_CHECK(n > 7 && strcmp(c.line + n - 7, "|grpc|\n") == 0);
    gp_hs_line l;
    if (parse_line(&c, &l) == 0) {
        unsigned v[] = {1};
        GP_CHECK_INT(gp__hs_check(&l, v, 1, GP_PROTO_GRPC, err, sizeof err), ==, GP_OK);
        struct stat st;
        GP_CHECK(stat(l.address, &st) == 0 && S_ISSOCK(st.st_mode));
        gp_conn *conn = connect_plugin(&l);

        /* SIGINT is ignored (logged), as go-plugin does. */
        kill(c.pid, SIGINT);
        sleep_ms(300);
        GP_CHECK(running(&c));
        gp_status gs;
        if (conn)
            GP_CHECK_INT(gp_conn_ping(conn, &gs), ==, GP_OK);
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

/* Runs after the first gRPC connection, so gRPC core's own process-wide
 * descriptors already exist and the count must come back exactly. */
GP_TEST(shutdown_rpc_stops_plugin)
{
    int fds = gp_test_count_fds();
    char dir[128];
    snprintf(dir, sizeof dir, "PLUGIN_UNIX_SOCKET_DIR=%s", tmpdir);
    const char *env[] = {"BASIC_PLUGIN=hello", "PLUGIN_PROTOCOL_VERSIONS=1", dir, NULL};
    child c;
    spawn(&c, env);
    read_line(&c, 10000);
    gp_hs_line l;
    if (parse_line(&c, &l) != 0) {
        kill(c.pid, SIGKILL);
        wait_exit(&c, 10000);
        return;
    }
    gp_conn *conn = connect_plugin(&l);
    gp_status st;
    long long t0 = now_ms();
    if (conn)
        GP_CHECK_INT(gp__conn_shutdown(conn, 2000, &st), ==, GP_OK);
    /* go-plugin hosts wait 2 s before SIGKILL: a clean exit beats that. */
    GP_CHECK_INT(wait_exit(&c, 2000), ==, 0);
    GP_CHECK_INT(now_ms() - t0, <, 2000);
    gp__conn_close(conn);
    GP_CHECK_INT(count_sockets_in_tmpdir(), ==, 0);
    gp__hs_line_free(&l);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(tcp_port_range_skips_busy_port)
{
    int busy;
    unsigned p;
    GP_CHECK_INT(gp__net_listen_tcp(0, 0, &busy, &p, err, sizeof err), ==, GP_OK);
    if (p > 65000) {
        close(busy);
        return;
    }
    char lo[40], hi[40];
    snprintf(lo, sizeof lo, "PLUGIN_MIN_PORT=%u", p);
    snprintf(hi, sizeof hi, "PLUGIN_MAX_PORT=%u", p + 30);
    const char *env[] = {"BASIC_PLUGIN=hello", "GP_SERVE_NET=tcp", lo, hi, NULL};
    child c;
    spawn(&c, env);
    read_line(&c, 10000);
    GP_CHECK(strncmp(c.line, "1|1|tcp|127.0.0.1:", 18) == 0);
    gp_hs_line l;
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
    const char *env[] = {"BASIC_PLUGIN=hello", "GP_SERVE_NET=tcp", "PLUGIN_MIN_PORT=abc",
                         "PLUGIN_MAX_PORT=10", NULL};
    child c;
    spawn(&c, env);
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
    const char *env[] = {"BASIC_PLUGIN=hello", "GP_SERVE_MODE=versions", versions_env, dir, NULL};
    child c;
    spawn(&c, env);
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
    const char *env[] = {"BASIC_PLUGIN=hello", "GP_SERVE_MODE=netrpc", dir, NULL};
    child c;
    spawn(&c, env);
    read_line(&c, 10000);
    size_t n = strlen(c.line);
    GP_CHECK(n > 9 && strcmp(c.line + n - 9, "|netrpc|\n") == 0);
    gp_hs_line l;
    if (parse_line(&c, &l) != 0) {
        kill(c.pid, SIGKILL);
        wait_exit(&c, 10000);
        return;
    }
    int fd = -1;
    gp_conn *conn = NULL;
    GP_CHECK_INT(gp__net_dial(l.network, l.address, 5000, 0, &fd, err, sizeof err), ==, GP_OK);
    GP_CHECK_INT(gp__netrpc_conn_from_fd(fd, NULL, &conn, err, sizeof err), ==, GP_OK);
    if (conn) {
        gp_status gs;
        GP_CHECK_INT(gp_conn_ping(conn, &gs), ==, GP_OK);
        gp_stub *stub = NULL;
        GP_CHECK_INT(gp_conn_dispense(conn, "kv", &stub, &gs), ==, GP_OK);
        gp_stub_free(stub);
        GP_CHECK_INT(gp_conn_dispense(conn, "nope", &stub, &gs), ==, GP_ENOTFOUND);
        GP_CHECK_STR(gs.msg, "unknown plugin type: nope");
        GP_CHECK_INT(gp__conn_shutdown(conn, 5000, &gs), ==, GP_OK);
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
    spawn(&c, env);
    read_line(&c, 10000);
    gp_hs_line l;
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
    spawn(&c, bad);
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
    spawn(&c, env);
    read_line(&c, 10000);
    GP_CHECK_STR(c.line, "");
    GP_CHECK_INT(wait_exit(&c, 10000), ==, 1);
    GP_CHECK_CONTAINS(c.stderr_text, "unix socket dir /nonexistent/gp: No such file or directory");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "plugin") == 0)
        return plugin_main();
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
