/* User-supplied TLS: loading files and texts, the refusals, and a real
 * handshake over a CA-signed chain (not only AutoMTLS's self-signed). */
#include "transport/tls/certgen.h"
#include "transport/tls/config.h"
#include "transport/tls/stream.h"
#include "transport/testing/gp_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PKI "transport/tls/testdata/userpki/"

GP_TEST(loads_files)
{
    gp_tls_config cfg = {.cert = {.path = PKI "server.pem"},
                         .key = {.path = PKI "server.key"},
                         .ca = {.path = PKI "ca.pem"}};
    gp__tls_material m;
    char err[512] = "";
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_OK);
    if (!m.cert_pem) {
        GP_FAILF("load: %s", err);
        return;
    }
    GP_CHECK_CONTAINS(m.cert_pem, "-----BEGIN CERTIFICATE-----");
    GP_CHECK_CONTAINS(m.ca_pem, "-----BEGIN CERTIFICATE-----");
    GP_CHECK_CONTAINS(m.key_pem, "-----BEGIN EC PRIVATE KEY-----");
    GP_CHECK_STR(m.server_name, "localhost");
    gp__tls_material_free(&m);
    GP_CHECK(m.cert_pem == NULL && m.key_pem == NULL);
}

GP_TEST(loads_texts_and_encrypted_key)
{
    char *cert = gp_test_read_file(PKI "client.pem", NULL);
    char *key = gp_test_read_file(PKI "client_encrypted.key", NULL);
    char *ca = gp_test_read_file(PKI "ca.pem", NULL);
    GP_CHECK(cert && key && ca);
    gp_tls_config cfg = {.cert = {.pem = cert},
                         .key = {.pem = key},
                         .ca = {.pem = ca},
                         .server_name = "plugin.example"};
    gp__tls_material m;
    char err[512] = "";
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "tls config: key (PEM text): it is encrypted and no key_password was given");
    cfg.key_password = "wrong";
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "wrong key_password");
    cfg.key_password = "secret";
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_OK);
    GP_CHECK(m.key_pem && !strstr(m.key_pem, "ENCRYPTED"));
    GP_CHECK_STR(m.server_name, "plugin.example");
    gp__tls_material_free(&m);
    free(cert);
    free(key);
    free(ca);
}

GP_TEST(refusals_name_the_item)
{
    gp__tls_material m;
    char err[512] = "";
    gp_tls_config cfg = {.cert = {.path = PKI "server.pem"},
                         .key = {.path = "/nonexistent/server.key"},
                         .ca = {.path = PKI "ca.pem"}};
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "tls config: key file /nonexistent/server.key: No such file or directory");
    GP_CHECK(m.cert_pem == NULL && m.ca_pem == NULL);

    cfg.key.path = PKI "client.key";
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "tls config: key " PKI "client.key does not match the certificate " PKI
                      "server.pem");

    cfg.key.path = PKI "server.key";
    cfg.ca = (gp_tls_source){.pem = "hello"};
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "tls config: ca (PEM text): no \"-----BEGIN CERTIFICATE-----\" in it");

    cfg.ca =
        (gp_tls_source){.pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"};
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "tls config: ca (PEM text): ");

    cfg.ca = (gp_tls_source){0};
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "tls config: ca: neither a file path nor PEM text given");

    cfg.ca.path = PKI "server.key"; /* a key where a certificate belongs */
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "no \"-----BEGIN CERTIFICATE-----\"");

    /* DER is refused with words, not misparsed */
    char der_path[] = "/tmp/gp_tls_der_XXXXXX";
    int fd = mkstemp(der_path);
    static const unsigned char der[] = {0x30, 0x82, 0x01, 0x00, 0x30, 0x00};
    GP_CHECK(write(fd, der, sizeof der) == (ssize_t)sizeof der);
    close(fd);
    cfg.ca.path = der_path;
    GP_CHECK_ERR(gp__tls_material_load(&cfg, &m, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "not PEM text");
    unlink(der_path);
    GP_CHECK_ERR(gp__tls_material_load(NULL, &m, err, sizeof err), GP_EINVAL);
}

typedef struct end {
    int fd;
    gp__tls_params p;
    gp__tls *t;
    gp_err rc;
    char err[512];
} end;

static void *open_end(void *arg)
{
    end *e = arg;
    e->rc = gp__tls_open(e->fd, &e->p, &e->t, e->err, sizeof e->err);
    if (e->rc != GP_OK) { /* hang up now, as a real peer would */
        close(e->fd);
        e->fd = -1;
    }
    return NULL;
}

static void handshake(end *c, end *s)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    c->fd = sv[0];
    s->fd = sv[1];
    pthread_t th;
    pthread_create(&th, NULL, open_end, s);
    open_end(c);
    pthread_join(th, NULL);
}

static void close_end(end *e)
{
    if (e->t)
        gp__tls_close(e->t);
    else if (e->fd >= 0)
        close(e->fd);
}

GP_TEST(handshake_over_a_ca_chain)
{
    gp_tls_config sc = {.cert = {.path = PKI "server.pem"},
                        .key = {.path = PKI "server.key"},
                        .ca = {.path = PKI "ca.pem"}};
    gp_tls_config cc = {.cert = {.path = PKI "client.pem"},
                        .key = {.path = PKI "client_encrypted.key"},
                        .key_password = "secret",
                        .ca = {.path = PKI "ca.pem"}};
    gp__tls_material sm, cm;
    char err[512] = "";
    GP_CHECK_ERR(gp__tls_material_load(&sc, &sm, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__tls_material_load(&cc, &cm, err, sizeof err), GP_OK);
    if (!sm.cert_pem || !cm.cert_pem)
        return;

    end c = {.p = {.role = GP_TLS_CLIENT,
                   .cert_pem = cm.cert_pem,
                   .key_pem = cm.key_pem,
                   .peer_ca_pem = cm.ca_pem,
                   .server_name = cm.server_name,
                   .handshake_timeout_ms = 5000}};
    end s = {.p = {.role = GP_TLS_SERVER,
                   .cert_pem = sm.cert_pem,
                   .key_pem = sm.key_pem,
                   .peer_ca_pem = sm.ca_pem,
                   .handshake_timeout_ms = 5000}};
    handshake(&c, &s);
    GP_CHECK_ERR(c.rc, GP_OK);
    GP_CHECK_ERR(s.rc, GP_OK);
    if (c.rc || s.rc)
        GP_FAILF("client: %s / server: %s", c.err, s.err);
    if (c.t && s.t) {
        char buf[8];
        size_t n = 0;
        GP_CHECK_ERR(gp__tls_write(c.t, "ping", 4, 1000, err, sizeof err), GP_OK);
        GP_CHECK_ERR(gp__tls_read(s.t, buf, sizeof buf, 1000, &n, err, sizeof err), GP_OK);
        GP_CHECK(n == 4 && memcmp(buf, "ping", 4) == 0);
    }
    close_end(&c);
    close_end(&s);

    /* The server's certificate does not name "plugin.example". */
    c.t = s.t = NULL;
    c.p.server_name = "plugin.example";
    handshake(&c, &s);
    GP_CHECK_ERR(c.rc, GP_ETLS);
    GP_CHECK_CONTAINS(c.err,
                      "The certificate Common Name (CN) does not match with the expected CN");
    close_end(&c);
    close_end(&s);

    /* A client cert that works for the client must not work as a server
     * cert: its EKU is clientAuth only. */
    c.t = s.t = NULL;
    c.p.server_name = NULL;
    s.p.cert_pem = cm.cert_pem;
    s.p.key_pem = cm.key_pem;
    handshake(&c, &s);
    GP_CHECK_ERR(s.rc, GP_EINVAL);
    GP_CHECK_STR(s.err, "tls: own certificate cannot be used by a TLS server: its extended key "
                        "usage lacks serverAuth");
    GP_CHECK_ERR(c.rc, GP_ECLOSED);
    GP_CHECK_CONTAINS(c.err, "the server closed the connection during the handshake");
    close_end(&c);
    close_end(&s);

    gp__tls_material_free(&sm);
    gp__tls_material_free(&cm);
}

int main(void)
{
    GP_RUN(loads_files);
    GP_RUN(loads_texts_and_encrypted_key);
    GP_RUN(refusals_name_the_item);
    GP_RUN(handshake_over_a_ca_chain);
    return gp_test_done();
}
