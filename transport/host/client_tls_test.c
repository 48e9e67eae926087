/* TLS on the gRPC wire, host and plugin, with real processes: this binary
 * re-executed as the plugin. Helper "test-mtls" is gp_serve itself (AutoMTLS
 * when the host sends PLUGIN_CLIENT_CERT); the other helpers are plugins that
 * lie in their handshake line, built from the same internal pieces (a real
 * gRPC TLS server, real certificates), to check that each refusal says
 * which side refused what. */
#include <goplugin/client.h>
#include <goplugin/server.h>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/core/conn.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/handshake/handshake.h"
#include "transport/testing/gp_test.h"
#include "transport/tls/certfield.h"
#include "transport/tls/certgen.h"

#define COOKIE_KEY "GP_CLIENT_TLS_TEST"
#define COOKIE_VALUE "c3e1"

/* ---- the plugin side ---- */

static int good_plugin(const char *network)
{
    static const gp_service noop = {.name = "noop"};
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = &noop,
        .nservices = 1,
        .network = network,
    };
    return gp_serve(&cfg);
}

#define PKI "transport/tls/testdata/userpki/"

/* gp_serve with the user's TLS (the test PKI's server certificate). */
static int user_tls_plugin(void)
{
    static const gp_service noop = {.name = "noop"};
    gp_tls_config tls = {.cert = {.path = PKI "server.pem"},
                         .key = {.path = PKI "server.key"},
                         .ca = {.path = PKI "ca.pem"}};
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = &noop,
        .nservices = 1,
        .tls = &tls,
    };
    return gp_serve(&cfg);
}

static int die(const char *what, const char *err)
{
    fprintf(stderr, "test plugin: %s: %s\n", what, err);
    return 1;
}

/* Print a handshake line with `field` as field 6 for a socket at `path`. */
static int print_line(const char *path, const char *field)
{
    gp__hs_line l = {
        .core_version = 1, .app_version = 1, .protocol = GP_PROTO_GRPC, .cert_b64 = (char *)field};
    snprintf(l.network, sizeof l.network, "unix");
    snprintf(l.address, sizeof l.address, "%s", path);
    char line[8192];
    int n = gp__hs_format(&l, line, sizeof line);
    if (n < 0)
        return die("format", "line too long");
    fwrite(line, 1, (size_t)n, stdout);
    fflush(stdout);
    return 0;
}

/* A plugin that serves TLS with one certificate but shows another, an
 * expired one, or does not trust the host; or prints a broken field 6. */
static int lying_plugin(const char *mode)
{
    char err[1024];
    char path[128];
    snprintf(path, sizeof path, "/tmp/gp-tls-test-%d.sock", (int)getpid());
    if (strcmp(mode, "garbage-b64") == 0 || strcmp(mode, "garbage-der") == 0) {
        /* 108 base64 characters: '#' at byte 60 (bad alphabet), or 81
         * bytes of 'A' (base64 fine, not a certificate). */
        char field[128] = "";
        for (int i = 0; i < 27; i++)
            strcat(field, "QUFB");
        if (mode[8] == 'b')
            field[60] = '#';
        if (print_line(path, field))
            return 1;
        pause(); /* the host kills us */
        return 0;
    }
    const char *host_pem = getenv("PLUGIN_CLIENT_CERT");
    if (!host_pem || !*host_pem)
        return die(mode, "no PLUGIN_CLIENT_CERT");
    gp__tls_keypair served, shown, other;
    memset(&shown, 0, sizeof shown);
    memset(&other, 0, sizeof other);
    time_t now = time(NULL);
    gp__tls_certgen_opts expired = {.not_before = now - 7200, .not_after = now - 3600};
    bool exp = strcmp(mode, "expired-cert") == 0;
    if (gp__tls_certgen(exp ? &expired : NULL, &served, err, sizeof err))
        return die("certgen", err);
    const gp__tls_keypair *show = &served;
    const char *root = host_pem;
    if (strcmp(mode, "wrong-cert") == 0) {
        if (gp__tls_certgen(NULL, &shown, err, sizeof err))
            return die("certgen", err);
        show = &shown;
    } else if (strcmp(mode, "distrust-host") == 0) {
        if (gp__tls_certgen(NULL, &other, err, sizeof err))
            return die("certgen", err);
        root = other.cert_pem;
    }
    char *field = NULL;
    if (gp__tls_certfield_encode(show->cert_der, show->cert_der_len, &field, err, sizeof err))
        return die("encode", err);
    gp__grpc_server *srv = NULL;
    gp__grpc_server_opts o = {.workers = 1};
    gp__grpc_tls tls = {.root_pem = root, .cert_pem = served.cert_pem, .key_pem = served.key_pem};
    char addr[160];
    snprintf(addr, sizeof addr, "unix:%s", path);
    unlink(path);
    if (gp__grpc_server_new(&o, &srv, err, sizeof err) ||
        gp__grpc_server_use_tls(srv, &tls, err, sizeof err) ||
        gp__grpc_server_listen(srv, addr, NULL, err, sizeof err) ||
        gp__grpc_server_start(srv, err, sizeof err))
        return die("server", err);
    if (print_line(path, field))
        return 1;
    gp__grpc_server_wait(srv); /* until Shutdown, else SIGTERM ends us */
    gp__grpc_server_free(srv);
    unlink(path);
    free(field);
    gp__tls_keypair_free(&served);
    gp__tls_keypair_free(&shown);
    gp__tls_keypair_free(&other);
    return 0;
}

/* go-plugin's "test-mtls": a gRPC plugin with AutoMTLS. */
GP_HELPER(test_mtls)
{
    return good_plugin(NULL);
}

GP_HELPER(test_mtls_tcp)
{
    return good_plugin("tcp");
}

GP_HELPER(user_tls)
{
    return user_tls_plugin();
}

GP_HELPER(no_automtls)
{
    unsetenv("PLUGIN_CLIENT_CERT");
    return good_plugin(NULL);
}

GP_HELPER(wrong_cert)
{
    return lying_plugin("wrong-cert");
}

GP_HELPER(expired_cert)
{
    return lying_plugin("expired-cert");
}

GP_HELPER(garbage_b64)
{
    return lying_plugin("garbage-b64");
}

GP_HELPER(garbage_der)
{
    return lying_plugin("garbage-der");
}

GP_HELPER(distrust_host)
{
    return lying_plugin("distrust-host");
}

/* ---- the host side ---- */

static gp_client_config config(const char *mode, bool auto_mtls)
{
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
        .start_timeout_ms = 10000,
        .kill_grace_ms = (int)(3000 * gp_test_scale()),
        .auto_mtls = auto_mtls,
    };
    return cfg;
}

/* Connects c and pings once; the connection stays c's. */
static void connect_and_ping(gp_client *c, const char *what)
{
    gp_conn *conn = NULL;
    gp_status st;
    gp_err rc = gp_client_connect(c, &conn, &st);
    if (rc)
        GP_FAILF("connect (%s): %s: %s", what, gp_strerror(rc), st.msg);
    GP_CHECK(conn && gp_conn_ping(conn, &st) == GP_OK);
}

static void good_session(const char *mode)
{
    gp_client_config cfg = config(mode, true);
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    connect_and_ping(c, mode);
    pid_t pid = gp_client_pid(c);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gp_client_kill(c);
    /* GRPCController.Shutdown went through over TLS: no grace period. */
    GP_CHECK(gp_test_ms_since(&t0) < 1500 * gp_test_scale());
    GP_CHECK_INT(kill(pid, 0), ==, -1);
    gp_client_free(c);
}

GP_TEST(automtls_unix_and_tcp)
{
    good_session("test-mtls"); /* gRPC's process-wide fds exist after this */
    int fds = gp_test_count_fds();
    good_session("test-mtls");
    good_session("test-mtls-tcp");
    GP_CHECK_FDS_AT_MOST(fds);
}

/* gp_keepalive ka on an AutoMTLS connection to a plugin on TCP: the socket
 * gRPC core dialed for TLS carries the TCP keepalive a plaintext one gets
 * from gp__net_keepalive. */
static void tcp_keepalive_on_tls(gp_keepalive ka, gp_test_tcp_ka want)
{
    gp_client_config cfg = config("test-mtls-tcp", true);
    cfg.keepalive = ka;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    connect_and_ping(c, "test-mtls-tcp");
    gp_reattach_config ra;
    GP_CHECK_ERR(gp_client_reattach_config(c, &ra), GP_OK);
    GP_CHECK_STR(ra.network, "tcp");
    const char *colon = strrchr(ra.address, ':');
    int port = colon ? atoi(colon + 1) : -1;
    gp_test_tcp_ka got[8];
    int n = gp_test_tcp_ka_of(port, false, got, 8);
    GP_CHECK_INT(n, >=, 1);
    gp_test_check_tcp_ka(got, n, want);
    gp_client_free(c);
}

GP_TEST(automtls_tcp_socket_has_keepalive)
{
    /* Set: first probe after time_ms, three probes timeout_ms / 3 apart,
     * TCP_USER_TIMEOUT timeout_ms (transport/net/keepalive.c). */
    tcp_keepalive_on_tls(
        (gp_keepalive){.time_ms = 4000, .timeout_ms = 6000},
        (gp_test_tcp_ka){.on = 1, .idle_s = 4, .intvl_s = 2, .cnt = 3, .user_ms = 6000});
    /* Default: Go's 15 s, Linux's 9 probes, no user timeout. */
    tcp_keepalive_on_tls(
        (gp_keepalive){0},
        (gp_test_tcp_ka){.on = 1, .idle_s = 15, .intvl_s = 15, .cnt = 9, .user_ms = 0});
    /* Off. */
    tcp_keepalive_on_tls((gp_keepalive){.time_ms = -1}, (gp_test_tcp_ka){.on = 0});
}

/* Start (and connect) a client that must fail; returns its error text in
 * buf and checks that no plugin is left. */
static gp_err failing(gp_client_config *cfg, char *buf, size_t cap)
{
    gp_client *c;
    gp_status st;
    gp_err rc = gp_client_new(cfg, &c, &st);
    if (rc) {
        snprintf(buf, cap, "%s", st.msg);
        return rc;
    }
    gp_conn *conn = NULL;
    rc = gp_client_connect(c, &conn, &st);
    snprintf(buf, cap, "%s", st.msg);
    if (rc == GP_OK)
        GP_FAILF("expected the connect to fail, it worked");
    GP_CHECK(gp_client_exited(c));
    gp_client_free(c);
    return rc;
}

GP_TEST(plugin_shows_another_cert_than_it_serves)
{
    char e[8192];
    gp_client_config cfg = config("wrong-cert", true);
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_ETLS);
    GP_CHECK_CONTAINS(e, "TLS handshake to the plugin at unix /tmp/gp-tls-test-");
    GP_CHECK_CONTAINS(e, "certificate verify failed");
}

GP_TEST(plugin_shows_an_expired_cert)
{
    char e[8192];
    gp_client_config cfg = config("expired-cert", true);
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_ETLS);
    GP_CHECK_CONTAINS(e, "AutoMTLS: the host refuses the plugin's certificate");
    GP_CHECK_CONTAINS(e, "expired");
}

GP_TEST(garbage_in_field_6)
{
    char e[8192];
    gp_client_config cfg = config("garbage-b64", true);
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_EPROTO);
    /* The handshake parser catches it first. */
    GP_CHECK_CONTAINS(e, "bad certificate in handshake line: expected unpadded standard base64");
    GP_CHECK_CONTAINS(e, "at offset 60");
    cfg = config("garbage-der", true);
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_ETLS);
    GP_CHECK_CONTAINS(e, "not a DER X.509 certificate");
}

GP_TEST(plugin_refuses_the_hosts_cert)
{
    char e[8192];
    gp_client_config cfg = config("distrust-host", true);
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_ETLS);
    GP_CHECK_CONTAINS(e, "the plugin at unix /tmp/gp-tls-test-");
    GP_CHECK_CONTAINS(e, "TLS session with the plugin at unix /tmp/gp-tls-test-");
    GP_CHECK_CONTAINS(e, "a TLS handshake of our own says: tls: the server");
    GP_CHECK_CONTAINS(e, "refused this client's certificate");
    fprintf(stderr, "(the host's words: %s)\n", e);
}

GP_TEST(plugin_without_automtls)
{
    /* gp_serve would do AutoMTLS: hide the host's certificate from it. */
    char e[8192];
    gp_client_config cfg = config("no-automtls", true);
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_ETLS);
    GP_CHECK_CONTAINS(e, "expected the plugin's certificate in handshake field 6, got no field "
                         "6");
}

/* A host certificate for the env of a host without TLS. */
static char *host_cert_var(bool expired)
{
    char err[512];
    gp__tls_keypair kp;
    time_t now = time(NULL);
    gp__tls_certgen_opts o = {.not_before = now - 7200, .not_after = now - 3600};
    if (gp__tls_certgen(expired ? &o : NULL, &kp, err, sizeof err)) {
        GP_FAILF("certgen: %s", err);
        return NULL;
    }
    size_t n = strlen(kp.cert_pem) + 32;
    char *v = malloc(n);
    snprintf(v, n, "PLUGIN_CLIENT_CERT=%s", kp.cert_pem);
    gp__tls_keypair_free(&kp);
    return v;
}

GP_TEST(cert_offered_to_a_host_without_tls)
{
    char e[8192];
    char *var = host_cert_var(false);
    const char *env[] = {var, NULL};
    gp_client_config cfg = config("test-mtls", false);
    cfg.env = env;
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_ETLS);
    GP_CHECK_CONTAINS(e, "the plugin offered a TLS certificate (field 6");
    GP_CHECK_CONTAINS(e, "this host has no TLS configured");
    free(var);
}

GP_TEST(plugin_refuses_bad_host_certs)
{
    char e[8192];
    char *var = host_cert_var(true);
    const char *env[] = {var, NULL};
    gp_client_config cfg = config("test-mtls", false);
    cfg.env = env;
    GP_CHECK(failing(&cfg, e, sizeof e) != GP_OK);
    GP_CHECK_CONTAINS(e, "the plugin refuses the host's certificate");
    GP_CHECK_CONTAINS(e, "expired");
    free(var);
    const char *env2[] = {"PLUGIN_CLIENT_CERT=not a certificate", NULL};
    cfg.env = env2;
    GP_CHECK(failing(&cfg, e, sizeof e) != GP_OK);
    GP_CHECK_CONTAINS(e, "PLUGIN_CLIENT_CERT is not a PEM certificate");
    GP_CHECK_CONTAINS(e, "\\\"not a certificate\\\"");
}

GP_TEST(config_checks)
{
    char e[8192];
    gp_tls_config user = {.cert = {.pem = "x"}, .key = {.pem = "y"}, .ca = {.pem = "z"}};
    gp_client_config cfg = config("test-mtls", true);
    cfg.tls = &user;
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_EINVAL);
    GP_CHECK_CONTAINS(e, "auto_mtls and tls: expected one of them");
    gp_reattach_config ra = {.network = "unix", .address = "/tmp/x"};
    gp_client_config rcfg = {.reattach = &ra, .auto_mtls = true};
    GP_CHECK_ERR(failing(&rcfg, e, sizeof e), GP_EINVAL);
    GP_CHECK_CONTAINS(e, "auto_mtls: a running plugin (reattach)");
    cfg = config("test-mtls", false);
    cfg.tls = &user;
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_EINVAL);
    GP_CHECK_CONTAINS(e, "tls config");
}

GP_TEST(user_tls_both_sides)
{
    gp_tls_config tls = {.cert = {.path = PKI "client.pem"},
                         .key = {.path = PKI "client_encrypted.key"},
                         .key_password = "secret",
                         .ca = {.path = PKI "ca.pem"}};
    gp_client_config cfg = config("user-tls", false);
    cfg.tls = &tls;
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    connect_and_ping(c, "user-tls");
    /* Reattach with the same TLS config. */
    gp_reattach_config ra;
    GP_CHECK_ERR(gp_client_reattach_config(c, &ra), GP_OK);
    gp_client_config rcfg = {.reattach = &ra,
                             .allowed_protocols = GP_PROTO_GRPC,
                             .kill_grace_ms = (int)(3000 * gp_test_scale()),
                             .tls = &tls};
    gp_client *again;
    GP_CHECK_ERR(gp_client_new(&rcfg, &again, NULL), GP_OK);
    connect_and_ping(again, "reattach over TLS");
    gp_client_free(again);
    gp_client_free(c);

    /* The plugin's certificate is for "localhost", not this name. */
    char e[8192];
    tls.server_name = "plugin.example";
    cfg.tls = &tls;
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_ETLS);
    GP_CHECK_CONTAINS(e, "TLS session with the plugin at unix /");
    GP_CHECK_CONTAINS(e, "a TLS handshake of our own says: tls: peer certificate not trusted");
    GP_CHECK_CONTAINS(e, "(the server's certificate, checked by this client)");

    /* AutoMTLS against a plugin with its own TLS: it sends no field 6. */
    cfg = config("user-tls", true);
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_ETLS);
    GP_CHECK_CONTAINS(e, "expected the plugin's certificate in handshake field 6");

    /* The host's own certificate as its CA: the plugin's is not trusted. */
    gp_tls_config self = {.cert = {.path = PKI "client.pem"},
                          .key = {.path = PKI "client.key"},
                          .ca = {.path = PKI "client.pem"}};
    cfg = config("user-tls", false);
    cfg.tls = &self;
    GP_CHECK_ERR(failing(&cfg, e, sizeof e), GP_ETLS);
    GP_CHECK_CONTAINS(e, "certificate verify failed");
}

/* ---- a host that is not ours: no client certificate, or one the plugin
 * does not trust, against gp_serve ---- */

typedef struct raw_plugin {
    pid_t pid;
    gp__hs_line line;
} raw_plugin;

static bool spawn_good(const char *host_pem, raw_plugin *p)
{
    int out[2];
    if (pipe(out) != 0)
        return false;
    memset(p, 0, sizeof *p);
    p->pid = fork();
    if (p->pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        setenv(COOKIE_KEY, COOKIE_VALUE, 1);
        setenv("PLUGIN_PROTOCOL_VERSIONS", "1", 1);
        setenv("PLUGIN_CLIENT_CERT", host_pem, 1);
        execv(gp_test_self_exe(), (char **)gp_test_helper_argv("test-mtls"));
        _exit(127);
    }
    close(out[1]);
    char buf[8192];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = read(out[0], buf + n, 1);
        if (r <= 0 || buf[n] == '\n')
            break;
        n++;
    }
    close(out[0]);
    char err[512];
    if (gp__hs_parse(buf, n, &p->line, err, sizeof err) != GP_OK) {
        GP_FAILF("plugin line: %s", err);
        return false;
    }
    return true;
}

static void stop_raw(raw_plugin *p)
{
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    gp__hs_line_free(&p->line);
}

GP_TEST(plugin_refuses_hosts_without_its_cert)
{
    char err[2048];
    gp__tls_keypair host, stranger;
    GP_CHECK_ERR(gp__tls_certgen(NULL, &host, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__tls_certgen(NULL, &stranger, err, sizeof err), GP_OK);
    raw_plugin p;
    if (!spawn_good(host.cert_pem, &p))
        return;
    char *root = NULL;
    GP_CHECK_ERR(
        gp__tls_certfield_to_pem(p.line.cert_b64, strlen(p.line.cert_b64), &root, err, sizeof err),
        GP_OK);
    gp__grpc_client_opts o = {0};
    gp_conn *conn = NULL;
    /* No client certificate at all. */
    gp__grpc_tls none = {.root_pem = root};
    gp_err rc =
        gp__grpc_conn_dial_tls("unix", p.line.address, &none, 5000, &o, &conn, err, sizeof err);
    GP_CHECK_ERR(rc, GP_ETLS);
    GP_CHECK(conn == NULL);
    GP_CHECK_CONTAINS(err, "TLS session with the plugin at unix /");
    /* A certificate, but not the one the plugin was given. */
    gp__grpc_tls wrong = {
        .root_pem = root, .cert_pem = stranger.cert_pem, .key_pem = stranger.key_pem};
    rc = gp__grpc_conn_dial_tls("unix", p.line.address, &wrong, 5000, &o, &conn, err, sizeof err);
    GP_CHECK_ERR(rc, GP_ETLS);
    GP_CHECK(conn == NULL);
    fprintf(stderr, "(refusal as the host sees it: %s)\n", err);
    /* And the right one works. */
    gp__grpc_tls right = {.root_pem = root, .cert_pem = host.cert_pem, .key_pem = host.key_pem};
    rc = gp__grpc_conn_dial_tls("unix", p.line.address, &right, 5000, &o, &conn, err, sizeof err);
    if (rc)
        GP_FAILF("dial with the host's cert: %s", err);
    else
        gp__conn_close(conn);
    stop_raw(&p);
    free(root);
    gp__tls_keypair_free(&host);
    gp__tls_keypair_free(&stranger);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    GP_RUN(automtls_unix_and_tcp);
    GP_RUN(automtls_tcp_socket_has_keepalive);
    GP_RUN(plugin_shows_another_cert_than_it_serves);
    GP_RUN(plugin_shows_an_expired_cert);
    GP_RUN(garbage_in_field_6);
    GP_RUN(plugin_refuses_the_hosts_cert);
    GP_RUN(plugin_without_automtls);
    GP_RUN(cert_offered_to_a_host_without_tls);
    GP_RUN(plugin_refuses_bad_host_certs);
    GP_RUN(config_checks);
    GP_RUN(user_tls_both_sides);
    GP_RUN(plugin_refuses_hosts_without_its_cert);
    return gp_test_done();
}
