/* The netrpc wire with TLS under yamux, C host against C plugin: a ping
 * through TLS, a stalled handshake that holds up nobody, a host with the
 * wrong trust, a plain host against a TLS plugin, and a free while a
 * handshake is pending. */
#include "transport/wire/netrpc/netrpc.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/core/conn.h"
#include "transport/net/net.h"
#include "transport/testing/gp_test.h"
#include "transport/tls/certgen.h"

static const gp_service svc = {.name = "kv"};
static gp__tls_keypair host_kp, plugin_kp, stranger_kp;

static gp__netrpc_server *tls_server(char *path, size_t cap)
{
    char err[512] = "";
    gp__netrpc_server_opts o = {.services = &svc, .nservices = 1};
    gp__netrpc_server *s = NULL;
    GP_CHECK_ERR(gp__netrpc_server_new(&o, &s, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__netrpc_server_use_tls(s, host_kp.cert_pem, plugin_kp.cert_pem,
                                           plugin_kp.key_pem, err, sizeof err),
                 GP_OK);
    GP_CHECK_ERR(gp__net_unix_path("/tmp", path, cap, err, sizeof err), GP_OK);
    char addr[160];
    snprintf(addr, sizeof addr, "unix:%s", path);
    GP_CHECK_ERR(gp__netrpc_server_listen(s, addr, NULL, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__netrpc_server_start(s, err, sizeof err), GP_OK);
    return s;
}

static gp_err host_conn(const char *path, const gp__tls_keypair *own, const char *root,
                        gp_conn **out, char *err, size_t errlen)
{
    int fd = -1;
    GP_CHECK_ERR(gp__net_dial("unix", path, 5000, 0, &fd, err, errlen), GP_OK);
    gp__netrpc_client_opts co = {.call_timeout_ms = 5000};
    if (own) {
        co.tls_cert_pem = own->cert_pem;
        co.tls_key_pem = own->key_pem;
        co.tls_root_pem = root;
    }
    return gp__netrpc_conn_from_fd(fd, &co, out, err, errlen);
}

GP_TEST(ping_through_tls_while_another_handshake_stalls)
{
    char path[128], err[512] = "";
    gp__netrpc_server *s = tls_server(path, sizeof path);
    int stalled = -1; /* connects and never says a word */
    GP_CHECK_ERR(gp__net_dial("unix", path, 5000, 0, &stalled, err, sizeof err), GP_OK);
    double t0 = gp_test_now_s();
    gp_conn *c = NULL;
    GP_CHECK_ERR(host_conn(path, &host_kp, plugin_kp.cert_pem, &c, err, sizeof err), GP_OK);
    gp_status st;
    memset(&st, 0, sizeof st);
    GP_CHECK_ERR(c ? gp_conn_ping(c, &st) : GP_EIO, GP_OK);
    GP_CHECK(gp_test_now_s() - t0 < 3.0); /* not after the stalled one's 10 s */
    gp__conn_close(c);
    t0 = gp_test_now_s();
    gp__netrpc_server_free(s); /* the stalled handshake is cut, not waited for */
    GP_CHECK(gp_test_now_s() - t0 < 3.0);
    close(stalled);
    unlink(path);
}

GP_TEST(host_with_the_wrong_trust_is_refused_with_words)
{
    char path[128], err[512] = "";
    gp__netrpc_server *s = tls_server(path, sizeof path);
    gp_conn *c = NULL;
    /* Trusts a stranger instead of the plugin's certificate. */
    GP_CHECK_ERR(host_conn(path, &host_kp, stranger_kp.cert_pem, &c, err, sizeof err), GP_ETLS);
    GP_CHECK_CONTAINS(err, "TLS handshake with the plugin (netrpc): tls:");
    fprintf(stderr, "  %s\n", err);
    /* Presents a certificate the plugin was not given. */
    GP_CHECK_ERR(host_conn(path, &stranger_kp, plugin_kp.cert_pem, &c, err, sizeof err), GP_ETLS);
    GP_CHECK_CONTAINS(err, "TLS handshake with the plugin (netrpc): tls:");
    fprintf(stderr, "  %s\n", err);
    gp__netrpc_server_free(s);
    unlink(path);
}

GP_TEST(plain_host_against_a_tls_plugin_fails_fast)
{
    char path[128], err[512] = "";
    gp__netrpc_server *s = tls_server(path, sizeof path);
    gp_conn *c = NULL;
    double t0 = gp_test_now_s();
    gp_err e = host_conn(path, NULL, NULL, &c, err, sizeof err);
    if (e == GP_OK) {
        gp_status st;
        memset(&st, 0, sizeof st);
        e = gp_conn_ping(c, &st);
        gp__conn_close(c);
    }
    GP_CHECK(e != GP_OK);
    GP_CHECK(gp_test_now_s() - t0 < 5.5);
    gp__netrpc_server_free(s);
    unlink(path);
}

int main(void)
{
    char err[256];
    if (gp__tls_certgen(NULL, &host_kp, err, sizeof err) != GP_OK ||
        gp__tls_certgen(NULL, &plugin_kp, err, sizeof err) != GP_OK ||
        gp__tls_certgen(NULL, &stranger_kp, err, sizeof err) != GP_OK) {
        fprintf(stderr, "certgen: %s\n", err);
        return 1;
    }
    GP_RUN(ping_through_tls_while_another_handshake_stalls);
    GP_RUN(host_with_the_wrong_trust_is_refused_with_words);
    GP_RUN(plain_host_against_a_tls_plugin_fails_fast);
    gp__tls_keypair_free(&host_kp);
    gp__tls_keypair_free(&plugin_kp);
    gp__tls_keypair_free(&stranger_kp);
    return gp_test_done();
}
