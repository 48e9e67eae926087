/* The AutoMTLS certificate, checked field by field after parsing it back
 * with mbedTLS (independent of the writer's code paths). */
#include "transport/tls/certgen.h"
#include "transport/tls/pem.h"
#include "transport/testing/gp_test.h"

#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

static time_t x509_time_to_unix(const mbedtls_x509_time *t)
{
    struct tm tm = {0};
    tm.tm_year = t->year - 1900;
    tm.tm_mon = t->mon - 1;
    tm.tm_mday = t->day;
    tm.tm_hour = t->hour;
    tm.tm_min = t->min;
    tm.tm_sec = t->sec;
    return timegm(&tm);
}

GP_TEST(fields_match_go_plugin)
{
    char err[256] = "";
    gp__tls_keypair kp;
    time_t before = time(NULL);
    GP_CHECK_ERR(gp__tls_certgen(NULL, &kp, err, sizeof err), GP_OK);
    time_t after = time(NULL);
    if (!kp.cert_pem) {
        GP_FAILF("certgen: %s", err);
        return;
    }
    GP_CHECK(strncmp(kp.cert_pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    GP_CHECK(strncmp(kp.key_pem, "-----BEGIN EC PRIVATE KEY-----\n", 31) == 0);

    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    GP_CHECK_INT(
        mbedtls_x509_crt_parse(&crt, (const unsigned char *)kp.cert_pem, strlen(kp.cert_pem) + 1),
        ==, 0);
    /* DER is the very same certificate as the PEM. */
    GP_CHECK_INT(crt.raw.len, ==, kp.cert_der_len);
    GP_CHECK(crt.raw.len == kp.cert_der_len &&
             memcmp(crt.raw.p, kp.cert_der, kp.cert_der_len) == 0);

    GP_CHECK_INT(crt.version, ==, 3);
    GP_CHECK_INT(crt.sig_md, ==, MBEDTLS_MD_SHA512);
    GP_CHECK_INT(crt.sig_pk, ==, MBEDTLS_PK_ECDSA);
    GP_CHECK_INT(mbedtls_pk_get_type(&crt.pk), ==, MBEDTLS_PK_ECKEY);
    GP_CHECK_INT(mbedtls_pk_ec(crt.pk)->grp.id, ==, MBEDTLS_ECP_DP_SECP521R1);

    char dn[256];
    mbedtls_x509_dn_gets(dn, sizeof dn, &crt.subject);
    GP_CHECK_STR(dn, "O=HashiCorp, CN=localhost");
    mbedtls_x509_dn_gets(dn, sizeof dn, &crt.issuer);
    GP_CHECK_STR(dn, "O=HashiCorp, CN=localhost");

    /* serial: positive, at most 128 bits (17 bytes with a leading zero) */
    GP_CHECK(crt.serial.len >= 1 && crt.serial.len <= 17);
    if (crt.serial.len == 17)
        GP_CHECK_INT(crt.serial.p[0], ==, 0);
    GP_CHECK((crt.serial.p[0] & 0x80) == 0);

    time_t nb = x509_time_to_unix(&crt.valid_from), na = x509_time_to_unix(&crt.valid_to);
    GP_CHECK_INT(nb, >=, before - 30);
    GP_CHECK_INT(nb, <=, after - 30);
    GP_CHECK_INT(na - nb, ==, 262980LL * 3600 + 30);

    GP_CHECK_INT(crt.ca_istrue, ==, 1);
    GP_CHECK(crt.ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS);
    GP_CHECK(crt.ext_types & MBEDTLS_X509_EXT_KEY_USAGE);
    GP_CHECK(crt.ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE);
    GP_CHECK(crt.ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME);
    GP_CHECK_INT(crt.key_usage, ==,
                 MBEDTLS_X509_KU_DIGITAL_SIGNATURE | MBEDTLS_X509_KU_KEY_ENCIPHERMENT |
                     MBEDTLS_X509_KU_KEY_AGREEMENT | MBEDTLS_X509_KU_KEY_CERT_SIGN);
    GP_CHECK_INT(mbedtls_x509_crt_check_extended_key_usage(
                     &crt, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
                 ==, 0);
    GP_CHECK_INT(mbedtls_x509_crt_check_extended_key_usage(
                     &crt, MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)),
                 ==, 0);
    GP_CHECK_INT(mbedtls_x509_crt_check_extended_key_usage(
                     &crt, MBEDTLS_OID_CODE_SIGNING, MBEDTLS_OID_SIZE(MBEDTLS_OID_CODE_SIGNING)),
                 !=, 0);
    /* exactly one SAN: dNSName "localhost" */
    GP_CHECK(crt.subject_alt_names.next == NULL);
    GP_CHECK_INT(crt.subject_alt_names.buf.tag, ==, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2);
    GP_CHECK(crt.subject_alt_names.buf.len == 9 &&
             memcmp(crt.subject_alt_names.buf.p, "localhost", 9) == 0);

    /* self-signed and trusted as its own root, for name localhost only */
    uint32_t flags = 0;
    GP_CHECK_INT(mbedtls_x509_crt_verify(&crt, &crt, NULL, "localhost", &flags, NULL, NULL), ==, 0);
    GP_CHECK_INT(flags, ==, 0);
    GP_CHECK_INT(mbedtls_x509_crt_verify(&crt, &crt, NULL, "example.com", &flags, NULL, NULL), !=,
                 0);
    GP_CHECK(flags & MBEDTLS_X509_BADCERT_CN_MISMATCH);

    /* the key belongs to the certificate */
    mbedtls_pk_context key;
    mbedtls_pk_init(&key);
    GP_CHECK_INT(mbedtls_pk_parse_key(&key, (const unsigned char *)kp.key_pem,
                                      strlen(kp.key_pem) + 1, NULL, 0),
                 ==, 0);
    GP_CHECK_INT(mbedtls_pk_check_pair(&crt.pk, &key), ==, 0);
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&crt);
    gp__tls_keypair_free(&kp);
    GP_CHECK(kp.cert_pem == NULL && kp.key_pem == NULL && kp.cert_der == NULL);
}

GP_TEST(two_certs_differ)
{
    gp__tls_keypair a, b;
    char err[256];
    GP_CHECK_ERR(gp__tls_certgen(NULL, &a, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__tls_certgen(NULL, &b, err, sizeof err), GP_OK);
    GP_CHECK(a.cert_der && b.cert_der);
    if (a.cert_der && b.cert_der)
        GP_CHECK(a.cert_der_len != b.cert_der_len ||
                 memcmp(a.cert_der, b.cert_der, a.cert_der_len) != 0);
    GP_CHECK(a.key_pem && b.key_pem && strcmp(a.key_pem, b.key_pem) != 0);
    gp__tls_keypair_free(&a);
    gp__tls_keypair_free(&b);
}

GP_TEST(validity_override_makes_expired_cert)
{
    gp__tls_keypair kp;
    char err[256];
    time_t now = time(NULL);
    gp__tls_certgen_opts o = {.not_before = now - 7200, .not_after = now - 3600};
    GP_CHECK_ERR(gp__tls_certgen(&o, &kp, err, sizeof err), GP_OK);
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    GP_CHECK_INT(mbedtls_x509_crt_parse_der(&crt, kp.cert_der, kp.cert_der_len), ==, 0);
    uint32_t flags = 0;
    GP_CHECK_INT(mbedtls_x509_crt_verify(&crt, &crt, NULL, "localhost", &flags, NULL, NULL), !=, 0);
    GP_CHECK(flags & MBEDTLS_X509_BADCERT_EXPIRED);
    mbedtls_x509_crt_free(&crt);
    gp__tls_keypair_free(&kp);

    gp__tls_certgen_opts bad = {.not_before = now, .not_after = now - 1};
    GP_CHECK_ERR(gp__tls_certgen(&bad, &kp, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "not after");
    GP_CHECK_ERR(gp__tls_certgen(NULL, NULL, err, sizeof err), GP_EINVAL);
}

GP_TEST(pem_der_round_trip)
{
    gp__tls_keypair kp;
    char err[256] = "";
    GP_CHECK_ERR(gp__tls_certgen(NULL, &kp, err, sizeof err), GP_OK);
    char *pem = NULL;
    GP_CHECK_ERR(gp__tls_der_to_pem(kp.cert_der, kp.cert_der_len, &pem, err, sizeof err), GP_OK);
    /* mbedTLS and Go both wrap at 64 columns: the texts are identical */
    GP_CHECK_STR(pem, kp.cert_pem);
    unsigned char *der = NULL;
    size_t n = 0;
    GP_CHECK_ERR(gp__tls_pem_to_der(pem, &der, &n, err, sizeof err), GP_OK);
    GP_CHECK(n == kp.cert_der_len && der && memcmp(der, kp.cert_der, n) == 0);
    free(der);
    free(pem);

    GP_CHECK_ERR(gp__tls_pem_to_der("hello", &der, &n, err, sizeof err), GP_ETLS);
    GP_CHECK_CONTAINS(err, "no \"-----BEGIN CERTIFICATE-----\" line");
    GP_CHECK_ERR(
        gp__tls_pem_to_der("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &der,
                           &n, err, sizeof err),
        GP_ETLS);
    GP_CHECK_CONTAINS(err, "PEM certificate: ");
    GP_CHECK(der == NULL);
    GP_CHECK_ERR(gp__tls_der_to_pem(NULL, 0, &pem, err, sizeof err), GP_EINVAL);
    gp__tls_keypair_free(&kp);
}

int main(void)
{
    GP_RUN(fields_match_go_plugin);
    GP_RUN(two_certs_differ);
    GP_RUN(validity_override_makes_expired_cert);
    GP_RUN(pem_der_round_trip);
    return gp_test_done();
}
