/* Tests for transport/net against real sockets (loopback and unix). */
#include "transport/net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"

static char err[512];
static char tmpdir[64];

static void make_tmpdir(void)
{
    const char *base = getenv("TEST_TMPDIR");
    /* Bazel's TEST_TMPDIR can be too deep for a sockaddr_un: use /tmp. */
    (void)base;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gp_net_test.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(2);
    }
}

static int is_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl >= 0 && (fl & FD_CLOEXEC);
}

static int is_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

static int sockopt(int fd, int level, int opt)
{
    int v = -1;
    socklen_t l = sizeof v;
    getsockopt(fd, level, opt, &v, &l);
    return v;
}

/* Send a byte one way and back to prove the pair is connected. */
static void check_pair(int a, int b)
{
    char c = 'x';
    GP_CHECK_INT(write(a, "p", 1), ==, 1);
    GP_CHECK_INT(read(b, &c, 1), ==, 1);
    GP_CHECK_INT(c, ==, 'p');
    GP_CHECK_INT(write(b, "q", 1), ==, 1);
    GP_CHECK_INT(read(a, &c, 1), ==, 1);
    GP_CHECK_INT(c, ==, 'q');
}

GP_TEST(unix_path_dirs)
{
    char path[128];
    GP_CHECK_ERR(gp__net_unix_path(tmpdir, path, sizeof path, err, sizeof err), GP_OK);
    GP_CHECK(strncmp(path, tmpdir, strlen(tmpdir)) == 0);
    GP_CHECK_CONTAINS(path, "/plugin");
    const char *digits = strstr(path, "/plugin") + 7;
    GP_CHECK(*digits && strspn(digits, "0123456789") == strlen(digits));

    char again[128];
    gp__net_unix_path(tmpdir, again, sizeof again, err, sizeof err);
    GP_CHECK(strcmp(path, again) != 0);

    /* Trailing slashes do not double up. */
    char slashed[300];
    snprintf(slashed, sizeof slashed, "%s//", tmpdir);
    GP_CHECK_ERR(gp__net_unix_path(slashed, path, sizeof path, err, sizeof err), GP_OK);
    GP_CHECK(strstr(path, "//") == NULL);

    /* Empty dir: $TMPDIR, then /tmp. */
    char *old = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
    setenv("TMPDIR", tmpdir, 1);
    GP_CHECK_ERR(gp__net_unix_path("", path, sizeof path, err, sizeof err), GP_OK);
    GP_CHECK(strncmp(path, tmpdir, strlen(tmpdir)) == 0);
    unsetenv("TMPDIR");
    GP_CHECK_ERR(gp__net_unix_path(NULL, path, sizeof path, err, sizeof err), GP_OK);
    GP_CHECK(strncmp(path, "/tmp/plugin", 11) == 0);
    if (old) {
        setenv("TMPDIR", old, 1);
        free(old);
    }

    /* A relative dir becomes absolute (the host has another cwd). */
    char cwd[4096];
    GP_CHECK(getcwd(cwd, sizeof cwd) != NULL);
    GP_CHECK_INT(chdir(tmpdir), ==, 0);
    GP_CHECK_INT(mkdir("rel", 0700), ==, 0);
    GP_CHECK_ERR(gp__net_unix_path("rel", path, sizeof path, err, sizeof err), GP_OK);
    GP_CHECK(path[0] == '/');
    GP_CHECK_CONTAINS(path, "/rel/plugin");
    GP_CHECK_INT(chdir(cwd), ==, 0);

    GP_CHECK_ERR(gp__net_unix_path("/nonexistent/gp", path, sizeof path, err, sizeof err),
                 GP_EINVAL);
    GP_CHECK_STR(err, "unix socket dir /nonexistent/gp: No such file or directory");
    GP_CHECK_ERR(gp__net_unix_path("/etc/passwd", path, sizeof path, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "not a directory");
    /* Output buffer too small. */
    GP_CHECK_ERR(gp__net_unix_path(tmpdir, path, 10, err, sizeof err), GP_EINVAL);
}

GP_TEST(unix_path_too_long)
{
    char deep[200];
    snprintf(deep, sizeof deep, "%s/%s", tmpdir,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
             "aaaaaaaaaaa");
    GP_CHECK_INT(mkdir(deep, 0700), ==, 0);
    char path[256];
    GP_CHECK_ERR(gp__net_unix_path(deep, path, sizeof path, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "expected at most 107 (set PLUGIN_UNIX_SOCKET_DIR or TMPDIR to a "
                           "shorter directory)");
    char longp[200];
    memset(longp, 'b', sizeof longp);
    longp[0] = '/';
    longp[120] = 0;
    int fd;
    GP_CHECK_ERR(gp__net_listen_unix(longp, NULL, &fd, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "path is 120 bytes; expected 1..107");
    GP_CHECK_ERR(gp__net_dial("unix", longp, 100, 0, &fd, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "dial unix /bbb");
    GP_CHECK_INT(fd, ==, -1);
}

GP_TEST(unix_listen_dial)
{
    int fds = gp_test_count_fds();
    char path[128];
    GP_CHECK_ERR(gp__net_unix_path(tmpdir, path, sizeof path, err, sizeof err), GP_OK);
    int l = -1, c = -1;
    GP_CHECK_ERR(gp__net_listen_unix(path, NULL, &l, err, sizeof err), GP_OK);
    GP_CHECK(is_cloexec(l));
    struct stat st;
    GP_CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    GP_CHECK_ERR(gp__net_dial("unix", path, 1000, 0, &c, err, sizeof err), GP_OK);
    GP_CHECK_STR(err, "");
    GP_CHECK(is_cloexec(c));
    GP_CHECK(!is_nonblock(c));
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    GP_CHECK(a >= 0);
    check_pair(c, a);
    close(a);
    close(c);

    /* nonblock keeps O_NONBLOCK. */
    GP_CHECK_ERR(gp__net_dial("unix", path, 1000, 1, &c, err, sizeof err), GP_OK);
    GP_CHECK(is_nonblock(c));
    close(c);
    close(l);

    /* The file is still there, nobody listens: refused. */
    GP_CHECK_ERR(gp__net_dial("unix", path, 1000, 0, &c, err, sizeof err), GP_ECONNECT);
    char want[256];
    snprintf(want, sizeof want, "dial unix %s: Connection refused (is the plugin listening?)",
             path);
    GP_CHECK_STR(err, want);
    GP_CHECK_INT(c, ==, -1);

    /* A stale socket file is replaced by a new listener. */
    GP_CHECK_ERR(gp__net_listen_unix(path, "", &l, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__net_dial("unix", path, 1000, 0, &c, err, sizeof err), GP_OK);
    close(c);
    close(l);
    unlink(path);

    GP_CHECK_ERR(gp__net_dial("unix", path, 1000, 0, &c, err, sizeof err), GP_ECONNECT);
    snprintf(want, sizeof want,
             "dial unix %s: No such file or directory (is the plugin listening?)", path);
    GP_CHECK_STR(err, want);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(unix_listen_refuses_regular_file)
{
    char path[256];
    snprintf(path, sizeof path, "%s/regular", tmpdir);
    FILE *f = fopen(path, "w");
    GP_CHECK(f != NULL);
    if (f)
        fclose(f);
    int fd;
    GP_CHECK_ERR(gp__net_listen_unix(path, NULL, &fd, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "exists and is not a socket");
    struct stat st;
    GP_CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
}

GP_TEST(unix_group)
{
    int fds = gp_test_count_fds();
    char path[128], gid[32];
    snprintf(gid, sizeof gid, "%u", (unsigned)getgid());
    gp__net_unix_path(tmpdir, path, sizeof path, err, sizeof err);
    int l;
    GP_CHECK_ERR(gp__net_listen_unix(path, gid, &l, err, sizeof err), GP_OK);
    struct stat st;
    GP_CHECK(stat(path, &st) == 0);
    GP_CHECK_INT(st.st_mode & 0777, ==, 0660);
    GP_CHECK_INT(st.st_gid, ==, getgid());
    close(l);
    unlink(path);

    struct group *g = getgrgid(getgid());
    if (g) {
        char name[64];
        snprintf(name, sizeof name, "%s", g->gr_name);
        GP_CHECK_ERR(gp__net_listen_unix(path, name, &l, err, sizeof err), GP_OK);
        GP_CHECK(stat(path, &st) == 0);
        GP_CHECK_INT(st.st_mode & 0777, ==, 0660);
        close(l);
        unlink(path);
    }

    l = 12345;
    GP_CHECK_ERR(gp__net_listen_unix(path, "no-such-group-gp", &l, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "unknown group \"no-such-group-gp\" for the plugin's unix socket "
                           "(PLUGIN_UNIX_SOCKET_GROUP)");
    GP_CHECK_INT(l, ==, -1);
    /* Nothing left behind. */
    GP_CHECK(stat(path, &st) != 0);
    GP_CHECK_ERR(gp__net_unix_set_group(path, "", err, sizeof err), GP_EINVAL);
    GP_CHECK_ERR(gp__net_unix_set_group(path, gid, err, sizeof err), GP_ESYS);
    GP_CHECK_CONTAINS(err, "No such file or directory");
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(tcp_listen_dial)
{
    int fds = gp_test_count_fds();
    int l = -1, c = -1;
    unsigned port = 0;
    GP_CHECK_ERR(gp__net_listen_tcp(0, 0, &l, &port, err, sizeof err), GP_OK);
    GP_CHECK(port > 0);
    GP_CHECK(is_cloexec(l));
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    GP_CHECK_ERR(gp__net_dial("tcp", addr, 1000, 0, &c, err, sizeof err), GP_OK);
    GP_CHECK(is_cloexec(c));
    GP_CHECK(!is_nonblock(c));
    GP_CHECK_INT(sockopt(c, SOL_SOCKET, SO_KEEPALIVE), ==, 1);
    GP_CHECK_INT(sockopt(c, IPPROTO_TCP, TCP_NODELAY), ==, 1);
    GP_CHECK_INT(sockopt(c, IPPROTO_TCP, TCP_KEEPIDLE), ==, 15);
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    GP_CHECK(a >= 0);
    check_pair(c, a);
    close(a);
    close(c);

    snprintf(addr, sizeof addr, "localhost:%u", port);
    GP_CHECK_ERR(gp__net_dial("tcp", addr, 1000, 1, &c, err, sizeof err), GP_OK);
    GP_CHECK(is_nonblock(c));
    close(c);
    close(l);

    /* Closed listener: refused. */
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    GP_CHECK_ERR(gp__net_dial("tcp", addr, 1000, 0, &c, err, sizeof err), GP_ECONNECT);
    char want[128];
    snprintf(want, sizeof want, "dial tcp %s: Connection refused (is the plugin listening?)", addr);
    GP_CHECK_STR(err, want);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(tcp_ipv6)
{
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t len = sizeof sa;
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 4) != 0) {
        fprintf(stderr, "  (no IPv6 loopback here; skipped)\n");
        if (s >= 0)
            close(s);
        return;
    }
    getsockname(s, (struct sockaddr *)&sa, &len);
    char addr[64];
    snprintf(addr, sizeof addr, "[::1]:%u", ntohs(sa.sin6_port));
    int c;
    GP_CHECK_ERR(gp__net_dial("tcp", addr, 1000, 0, &c, err, sizeof err), GP_OK);
    GP_CHECK_INT(sockopt(c, IPPROTO_TCP, TCP_NODELAY), ==, 1);
    close(c);
    close(s);
}

GP_TEST(tcp_port_range)
{
    int fds = gp_test_count_fds();
    int busy;
    unsigned p;
    GP_CHECK_ERR(gp__net_listen_tcp(0, 0, &busy, &p, err, sizeof err), GP_OK);
    int l = -1;
    unsigned got = 0;
    GP_CHECK_ERR(gp__net_listen_tcp(p, p, &l, &got, err, sizeof err), GP_ECONNECT);
    char want[96];
    snprintf(want, sizeof want, "listen tcp 127.0.0.1:%u: Address already in use", p);
    GP_CHECK_STR(err, want);
    GP_CHECK_INT(l, ==, -1);
    if (p < 65000) {
        /* The busy port is skipped; the next free one above it wins. */
        GP_CHECK_ERR(gp__net_listen_tcp(p, p + 50, &l, &got, err, sizeof err), GP_OK);
        GP_CHECK(got > p && got <= p + 50);
        close(l);
    }
    close(busy);
    GP_CHECK_ERR(gp__net_listen_tcp(10, 9, &l, &got, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "bad port range 10..9");
    GP_CHECK_ERR(gp__net_listen_tcp(1, 70000, &l, &got, err, sizeof err), GP_EINVAL);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

/* A listener that never accepts, with the smallest backlog. */
static int stuck_listener(int family, const char *path, unsigned *port)
{
    int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (family == AF_UNIX) {
        struct sockaddr_un su = {.sun_family = AF_UNIX};
        if (snprintf(su.sun_path, sizeof su.sun_path, "%s", path) >= (int)sizeof su.sun_path)
            abort();
        bind(s, (struct sockaddr *)&su, sizeof su);
    } else {
        struct sockaddr_in si = {.sin_family = AF_INET};
        si.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof si;
        bind(s, (struct sockaddr *)&si, sizeof si);
        getsockname(s, (struct sockaddr *)&si, &len);
        *port = ntohs(si.sin_port);
    }
    listen(s, 0);
    return s;
}

/* Dial until the backlog is full; the first dial that does not connect
 * must be a timeout near the deadline. */
static void expect_timeout(const char *network, const char *addr, const char *needle)
{
    int fds = gp_test_count_fds();
    int held[16], nheld = 0;
    gp_err e = GP_OK;
    while (nheld < 16) {
        int c;
        e = gp__net_dial(network, addr, 200, 0, &c, err, sizeof err);
        if (e != GP_OK)
            break;
        held[nheld++] = c;
    }
    GP_CHECK_ERR(e, GP_ETIMEDOUT);
    char want[160];
    snprintf(want, sizeof want, "dial %s %s: timed out after 200 ms%s", network, addr, needle);
    GP_CHECK_STR(err, want);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(dial_timeout_full_backlog)
{
    char path[100];
    snprintf(path, sizeof path, "%s/stuck", tmpdir);
    unsigned port = 0;
    int u = stuck_listener(AF_UNIX, path, NULL);
    expect_timeout("unix", path, " (the plugin is not accepting connections)");
    close(u);
    unlink(path);

    int t = stuck_listener(AF_INET, NULL, &port);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    expect_timeout("tcp", addr, "");
    close(t);
}

GP_TEST(dial_bad_addresses)
{
    int fd = 7;
    GP_CHECK_ERR(gp__net_dial("udp", "127.0.0.1:1", 100, 0, &fd, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "dial udp 127.0.0.1:1: unknown network \"udp\" (expected unix or tcp)");
    GP_CHECK_INT(fd, ==, -1);
    static const char *const bad[] = {
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",  "127.0.0.1:65536", ":80", "example.com:80",
        "[::1]",     "[::1:80",    "127.0.0.1:8x", "127.0.0.1:-1",    ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gp_err e = gp__net_dial("tcp", bad[i], 100, 0, &fd, err, sizeof err);
        if (e != GP_EINVAL)
            GP_FAILF("dial tcp \"%s\": expected GP_EINVAL, got %d (%s)", bad[i], e, err);
        GP_CHECK_CONTAINS(err, "expected HOST:PORT with a numeric IP or localhost");
    }
    GP_CHECK_ERR(gp__net_dial("unix", "", 100, 0, &fd, err, sizeof err), GP_EINVAL);
    GP_CHECK_ERR(gp__net_dial(NULL, "x", 100, 0, &fd, err, sizeof err), GP_EINVAL);
}

/* gp_keepalive's TCP half: options from time_ms/timeout_ms, off, and
 * nothing on a unix socket. */
GP_TEST(tcp_keepalive_options)
{
    int l = -1, c = -1;
    unsigned port = 0;
    char addr[64];
    GP_CHECK_ERR(gp__net_listen_tcp(0, 0, &l, &port, err, sizeof err), GP_OK);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    GP_CHECK_ERR(gp__net_dial("tcp", addr, 1000, 0, &c, err, sizeof err), GP_OK);
    GP_CHECK_INT(gp__net_keepalive(c, 2000, 3000), ==, 0);
    GP_CHECK_INT(sockopt(c, SOL_SOCKET, SO_KEEPALIVE), ==, 1);
    GP_CHECK_INT(sockopt(c, IPPROTO_TCP, TCP_KEEPIDLE), ==, 2);
    GP_CHECK_INT(sockopt(c, IPPROTO_TCP, TCP_KEEPINTVL), ==, 1);
    GP_CHECK_INT(sockopt(c, IPPROTO_TCP, TCP_KEEPCNT), ==, 3);
    GP_CHECK_INT(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), ==, 3000);
    GP_CHECK_INT(gp__net_keepalive(c, 0, 0), ==, 0); /* Go's default again */
    GP_CHECK_INT(sockopt(c, IPPROTO_TCP, TCP_KEEPIDLE), ==, 15);
    GP_CHECK_INT(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), ==, 0);
    GP_CHECK_INT(gp__net_keepalive(c, -1, 0), ==, 0);
    GP_CHECK_INT(sockopt(c, SOL_SOCKET, SO_KEEPALIVE), ==, 0);
    close(c);
    close(l);
    int sv[2];
    GP_CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    GP_CHECK_INT(gp__net_keepalive(sv[0], 2000, 3000), ==, 0);
    GP_CHECK_INT(sockopt(sv[0], SOL_SOCKET, SO_KEEPALIVE), ==, 0);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    make_tmpdir();
    GP_RUN(unix_path_dirs);
    GP_RUN(unix_path_too_long);
    GP_RUN(unix_listen_dial);
    GP_RUN(unix_listen_refuses_regular_file);
    GP_RUN(unix_group);
    GP_RUN(tcp_listen_dial);
    GP_RUN(tcp_keepalive_options);
    GP_RUN(tcp_ipv6);
    GP_RUN(tcp_port_range);
    GP_RUN(dial_timeout_full_backlog);
    GP_RUN(dial_bad_addresses);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return gp_test_done();
}
