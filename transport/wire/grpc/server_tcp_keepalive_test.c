/* TCP keepalive on the sockets gRPC core accepts for our server itself (a
 * TCP listener, plaintext or TLS as under AutoMTLS): gp_keepalive's TCP
 * settings, as Go's net package sets keepalive on the connections a
 * go-plugin plugin accepts. Server and client run in this process, so the
 * accepted socket is one of our descriptors: the one whose local port is
 * the listener's and which has a peer. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/core/conn.h"
#include "transport/net/net.h"
#include "transport/testing/gp_test.h"
#include "transport/tls/certgen.h"
#include "transport/wire/grpc/grpc.h"

static gp__tls_keypair host_kp, plugin_kp;

/* Serve on 127.0.0.1 (TLS or not) with gp_keepalive ka, connect and call
 * once, then check the accepted socket. */
static void check(int tls, gp_keepalive ka, gp_test_tcp_ka want)
{
    char err[512];
    gp__grpc_server_opts so = {.keepalive_ms = ka.time_ms, .keepalive_timeout_ms = ka.timeout_ms};
    gp__grpc_server *s = NULL;
    GP_CHECK_ERR(gp__grpc_server_new(&so, &s, err, sizeof err), GP_OK);
    gp__grpc_tls plugin_side = {
        .root_pem = host_kp.cert_pem, .cert_pem = plugin_kp.cert_pem, .key_pem = plugin_kp.key_pem};
    gp__grpc_tls host_side = {
        .root_pem = plugin_kp.cert_pem, .cert_pem = host_kp.cert_pem, .key_pem = host_kp.key_pem};
    if (tls)
        GP_CHECK_ERR(gp__grpc_server_use_tls(s, &plugin_side, err, sizeof err), GP_OK);
    int port = 0;
    GP_CHECK_ERR(gp__grpc_server_listen(s, "127.0.0.1:0", &port, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__grpc_server_start(s, err, sizeof err), GP_OK);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    gp__grpc_client_opts co = {.call_timeout_ms = 10000};
    gp_conn *conn = NULL;
    gp_err rc;
    if (tls) {
        rc = gp__grpc_conn_dial_tls("tcp", addr, &host_side, 10000, &co, &conn, err, sizeof err);
    } else {
        int fd = -1;
        rc = gp__net_dial("tcp", addr, 10000, 0, &fd, err, sizeof err);
        if (!rc)
            rc = gp__grpc_conn_from_fd(fd, &co, &conn, err, sizeof err);
    }
    if (rc)
        GP_FAILF("connect to %s: %s", addr, err);
    gp_status st = {0};
    if (conn && gp_conn_ping(conn, &st) != GP_OK)
        GP_FAILF("ping: %s", st.msg);
    gp_test_tcp_ka got[8];
    int n = gp_test_tcp_ka_of(port, true, got, 8);
    GP_CHECK_INT(n, ==, 1);
    gp_test_check_tcp_ka(got, n, want);
    if (conn)
        gp__conn_close(conn);
    gp__grpc_server_free(s);
}

GP_TEST(tls_accepted_socket_has_keepalive)
{
    /* Set: first probe after time_ms, three probes timeout_ms / 3 apart,
     * TCP_USER_TIMEOUT timeout_ms (transport/net/keepalive.c). */
    check(1, (gp_keepalive){.time_ms = 4000, .timeout_ms = 6000},
          (gp_test_tcp_ka){.on = 1, .idle_s = 4, .intvl_s = 2, .cnt = 3, .user_ms = 6000});
    /* Default: Go's 15 s, Linux's 9 probes; the TCP_USER_TIMEOUT core sets
     * from the server's HTTP/2 keepalive timeout (20 s) stays. */
    check(1, (gp_keepalive){0},
          (gp_test_tcp_ka){.on = 1, .idle_s = 15, .intvl_s = 15, .cnt = 9, .user_ms = 20000});
    /* Off. */
    check(1, (gp_keepalive){.time_ms = -1}, (gp_test_tcp_ka){.on = 0});
}

GP_TEST(plaintext_tcp_accepted_socket_has_keepalive)
{
    check(0, (gp_keepalive){0},
          (gp_test_tcp_ka){.on = 1, .idle_s = 15, .intvl_s = 15, .cnt = 9, .user_ms = 20000});
}

int main(void)
{
    char err[256];
    if (gp__tls_certgen(NULL, &host_kp, err, sizeof err) ||
        gp__tls_certgen(NULL, &plugin_kp, err, sizeof err)) {
        fprintf(stderr, "certgen: %s\n", err);
        return 1;
    }
    GP_RUN(tls_accepted_socket_has_keepalive);
    GP_RUN(plaintext_tcp_accepted_socket_has_keepalive);
    gp__tls_keypair_free(&host_kp);
    gp__tls_keypair_free(&plugin_kp);
    return gp_test_done();
}
