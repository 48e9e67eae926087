/* The handshake's 6th field: Go's RawStdEncoding rules and DER checks. */
#include "transport/tls/certfield.h"
#include "transport/tls/certgen.h"
#include "transport/tls/pem.h"
#include "transport/testing/gp_test.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static gp__tls_keypair kp;
static char *field; /* kp's certificate as the plugin prints it */

static gp_err decode(const char *f, char *err, size_t errlen, size_t *len_out)
{
    unsigned char *der = NULL;
    size_t n = 0;
    gp_err rc = gp__tls_certfield_decode(f, strlen(f), &der, &n, err, errlen);
    if (rc != GP_OK && (der || n))
        GP_FAILF("error %d left output behind", rc);
    if (len_out)
        *len_out = n;
    free(der);
    return rc;
}

GP_TEST(round_trip_without_padding)
{
    GP_CHECK(strchr(field, '=') == NULL);
    GP_CHECK_INT(strlen(field), ==, (kp.cert_der_len * 4 + 2) / 3);
    GP_CHECK(gp__tls_certfield_present(field, strlen(field)));
    unsigned char *der = NULL;
    size_t n = 0;
    char err[256] = "";
    GP_CHECK_ERR(gp__tls_certfield_decode(field, strlen(field), &der, &n, err, sizeof err), GP_OK);
    GP_CHECK(n == kp.cert_der_len && der && memcmp(der, kp.cert_der, n) == 0);
    free(der);

    char *pem = NULL;
    GP_CHECK_ERR(gp__tls_certfield_to_pem(field, strlen(field), &pem, err, sizeof err), GP_OK);
    GP_CHECK_STR(pem, kp.cert_pem);
    free(pem);
}

GP_TEST(all_three_tail_lengths)
{
    /* DER lengths vary with the signature; check the encoder on each n%3 */
    static const unsigned char bytes[] = "abcdef";
    static const char *want[] = {"YQ", "YWI", "YWJj", "YWJjZA", "YWJjZGU", "YWJjZGVm"};
    char err[128];
    for (size_t n = 1; n <= 6; n++) {
        char *out = NULL;
        GP_CHECK_ERR(gp__tls_certfield_encode(bytes, n, &out, err, sizeof err), GP_OK);
        GP_CHECK_STR(out, want[n - 1]);
        free(out);
    }
    char *out = NULL;
    GP_CHECK_ERR(gp__tls_certfield_encode(bytes, 0, &out, err, sizeof err), GP_EINVAL);
}

GP_TEST(go_plugin_length_rule)
{
    GP_CHECK(!gp__tls_certfield_present(NULL, 0));
    GP_CHECK(!gp__tls_certfield_present("", 0));
    char f[52];
    memset(f, 'A', sizeof f);
    GP_CHECK(!gp__tls_certfield_present(f, 50));
    GP_CHECK(gp__tls_certfield_present(f, 51));
}

GP_TEST(newlines_are_skipped_as_in_go)
{
    size_t len = strlen(field);
    char *f = malloc(len + 4);
    memcpy(f, field, 10);
    memcpy(f + 10, "\r\n", 2);
    memcpy(f + 12, field + 10, len - 10);
    f[len + 2] = '\n';
    f[len + 3] = '\0';
    char err[256] = "";
    size_t n = 0;
    GP_CHECK_ERR(decode(f, err, sizeof err, &n), GP_OK);
    GP_CHECK_INT(n, ==, kp.cert_der_len);
    free(f);
}

GP_TEST(illegal_bytes_named_with_offset)
{
    char *f = strdup(field);
    f[17] = '#';
    char err[256] = "";
    GP_CHECK_ERR(decode(f, err, sizeof err, NULL), GP_EPROTO);
    GP_CHECK_CONTAINS(err, "handshake certificate field: illegal base64 data at byte 17: \"#");
    f[17] = '\x01';
    GP_CHECK_ERR(decode(f, err, sizeof err, NULL), GP_EPROTO);
    GP_CHECK_CONTAINS(err, "at byte 17: \"\\x01");
    free(f);

    /* padding is refused, as RawStdEncoding refuses it */
    GP_CHECK_ERR(decode("YWJjZA==", err, sizeof err, NULL), GP_EPROTO);
    GP_CHECK_CONTAINS(err, "illegal base64 data at byte 6: \"==\"");
    /* URL alphabet is not the standard one */
    GP_CHECK_ERR(decode("YW-_", err, sizeof err, NULL), GP_EPROTO);
    GP_CHECK_CONTAINS(err, "at byte 2");
    /* a lone final character holds no whole byte */
    GP_CHECK_ERR(decode("YWJjZ", err, sizeof err, NULL), GP_EPROTO);
    GP_CHECK_CONTAINS(err, "illegal base64 data at byte 4: \"Z\"");
    GP_CHECK_ERR(decode("", err, sizeof err, NULL), GP_EPROTO);
    GP_CHECK_CONTAINS(err, "handshake certificate field: empty");
    GP_CHECK_ERR(decode("\r\n", err, sizeof err, NULL), GP_EPROTO);
}

GP_TEST(not_a_certificate)
{
    char err[512] = "";
    /* valid base64 of text */
    GP_CHECK_ERR(decode("aGVsbG8gd29ybGQ", err, sizeof err, NULL), GP_ETLS);
    GP_CHECK_CONTAINS(err, "handshake certificate field: not a DER X.509 certificate: ");
    GP_CHECK_CONTAINS(err, "X509 - ");

    /* the real cert cut short */
    char *f = strdup(field);
    f[(strlen(f) / 2) & ~(size_t)3] = '\0'; /* whole quanta: a DER error, not base64 */
    GP_CHECK_ERR(decode(f, err, sizeof err, NULL), GP_ETLS);
    GP_CHECK_CONTAINS(err, "not a DER X.509 certificate: ");
    free(f);

    /* the real cert with bytes after it (Go: "x509: trailing data") */
    unsigned char *der = malloc(kp.cert_der_len + 3);
    memcpy(der, kp.cert_der, kp.cert_der_len);
    memcpy(der + kp.cert_der_len, "\0\0\0", 3);
    char *g = NULL;
    GP_CHECK_ERR(gp__tls_certfield_encode(der, kp.cert_der_len + 3, &g, err, sizeof err), GP_OK);
    GP_CHECK_ERR(decode(g, err, sizeof err, NULL), GP_ETLS);
    GP_CHECK_CONTAINS(err, "not a DER X.509 certificate: 3 bytes of trailing data after it");
    free(g);

    /* one flipped bit in the outer length */
    memcpy(der, kp.cert_der, kp.cert_der_len);
    der[2] ^= 0x40;
    GP_CHECK_ERR(gp__tls_certfield_encode(der, kp.cert_der_len, &g, err, sizeof err), GP_OK);
    GP_CHECK_ERR(decode(g, err, sizeof err, NULL), GP_ETLS);
    free(g);
    free(der);
}

GP_TEST(oversize_refused)
{
    size_t len = GP_TLS_CERTFIELD_MAX + 1;
    char *f = malloc(len + 1);
    memset(f, 'A', len);
    f[len] = '\0';
    char err[256] = "";
    GP_CHECK_ERR(decode(f, err, sizeof err, NULL), GP_EMSGSIZE);
    GP_CHECK_CONTAINS(err, "65537 bytes, more than the 65536 allowed");
    free(f);
    unsigned char *der;
    size_t n;
    GP_CHECK_ERR(gp__tls_certfield_decode(NULL, 3, &der, &n, err, sizeof err), GP_EINVAL);
}

static unsigned char *file_der(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char pem[8192] = "";
    if (f) {
        size_t r = fread(pem, 1, sizeof pem - 1, f);
        pem[r] = '\0';
        fclose(f);
    }
    unsigned char *der = NULL;
    char err[256];
    if (gp__tls_pem_to_der(pem, &der, n, err, sizeof err) != GP_OK)
        GP_FAILF("%s: %s", path, err);
    return der;
}

GP_TEST(autocert_check_before_connecting)
{
    char err[512] = "";
    GP_CHECK_ERR(
        gp__tls_autocert_check(kp.cert_der, kp.cert_der_len, true, "field 6", err, sizeof err),
        GP_OK);
    GP_CHECK_ERR(gp__tls_autocert_check(kp.cert_der, kp.cert_der_len, false, "PLUGIN_CLIENT_CERT",
                                        err, sizeof err),
                 GP_OK);

    gp__tls_keypair old;
    time_t now = time(NULL);
    gp__tls_certgen_opts o = {.not_before = now - 7200, .not_after = now - 3600};
    GP_CHECK_ERR(gp__tls_certgen(&o, &old, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__tls_autocert_check(old.cert_der, old.cert_der_len, true,
                                        "handshake certificate field", err, sizeof err),
                 GP_ETLS);
    GP_CHECK_STR(err, "handshake certificate field: not usable as the server's certificate: The "
                      "certificate validity has expired");
    gp__tls_keypair_free(&old);

    /* CA-signed, not self-signed: cannot be its own trust root */
    size_t n = 0;
    unsigned char *der = file_der("transport/tls/testdata/userpki/server.pem", &n);
    if (der) {
        GP_CHECK_ERR(gp__tls_autocert_check(der, n, true, "field 6", err, sizeof err), GP_ETLS);
        GP_CHECK_CONTAINS(err, "The certificate is not correctly signed by the trusted CA");
        free(der);
    }
    /* self-signed, but not for localhost */
    der = file_der("transport/tls/testdata/userpki/ca.pem", &n);
    if (der) {
        GP_CHECK_ERR(gp__tls_autocert_check(der, n, true, "field 6", err, sizeof err), GP_ETLS);
        GP_CHECK_CONTAINS(err, "field 6: not usable as the server's certificate: The certificate "
                               "Common Name (CN) does not match with the expected CN");
        free(der);
    }
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    GP_CHECK_ERR(
        gp__tls_autocert_check(junk, sizeof junk, false, "PLUGIN_CLIENT_CERT", err, sizeof err),
        GP_ETLS);
    GP_CHECK_CONTAINS(err, "PLUGIN_CLIENT_CERT: not a DER X.509 certificate: ");
}

int main(void)
{
    char err[512];
    if (gp__tls_certgen(NULL, &kp, err, sizeof err) ||
        gp__tls_certfield_encode(kp.cert_der, kp.cert_der_len, &field, err, sizeof err)) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    GP_RUN(round_trip_without_padding);
    GP_RUN(all_three_tail_lengths);
    GP_RUN(go_plugin_length_rule);
    GP_RUN(newlines_are_skipped_as_in_go);
    GP_RUN(illegal_bytes_named_with_offset);
    GP_RUN(not_a_certificate);
    GP_RUN(oversize_refused);
    GP_RUN(autocert_check_before_connecting);
    free(field);
    gp__tls_keypair_free(&kp);
    return gp_test_done();
}
