/* The handshake certificate field: RawStdEncoding base64 of one DER cert.
 *
 * mbedtls_base64_encode pads and mbedtls_base64_decode requires padding, and
 * both differ from Go in what they skip. So the field is first scanned with
 * Go's rules (which also gives Go's error offsets), then re-padded and
 * handed to mbedTLS. */
#include "transport/tls/certfield.h"

#include "transport/base/strbuf.h"
#include "transport/tls/pem.h"
#include "transport/tls/util.h"

#include <mbedtls/base64.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "handshake certificate field: "

bool gp__tls_certfield_present(const char *field, size_t len)
{
    return field && len > GP_TLS_CERTFIELD_IGNORED_MAX;
}

gp_err gp__tls_certfield_encode(const unsigned char *der, size_t len, char **out, char *err,
                                size_t errlen)
{
    if (!der || !len || !out) {
        gp__tls_seterr(err, errlen, PREFIX "no certificate bytes to encode");
        return GP_EINVAL;
    }
    *out = NULL;
    size_t cap = (len + 2) / 3 * 4 + 1, olen = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        gp__tls_seterr(err, errlen, PREFIX "out of memory");
        return GP_ENOMEM;
    }
    if (mbedtls_base64_encode(buf, cap, &olen, der, len) != 0) {
        free(buf); /* cannot happen: cap is exact */
        gp__tls_seterr(err, errlen, PREFIX "base64 encoding failed");
        return GP_ENOMEM;
    }
    while (olen > 0 && buf[olen - 1] == '=')
        olen--;
    buf[olen] = '\0';
    *out = (char *)buf;
    return GP_OK;
}

static bool is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

static void illegal_at(const char *field, size_t len, size_t at, char *err, size_t errlen)
{
    gp__strbuf b;
    gp__strbuf_init(&b);
    gp__strbuf_printf(&b, PREFIX "illegal base64 data at byte %zu: ", at);
    gp__strbuf_quote(&b, field + at, len - at, 16);
    gp__tls_seterr(err, errlen, "%s", b.ok ? b.data : PREFIX "illegal base64 data");
    gp__strbuf_free(&b);
}

/* Go's RawStdEncoding.DecodeString, result parsed by nobody yet. */
static gp_err decode_b64(const char *field, size_t len, unsigned char **der, size_t *der_len,
                         char *err, size_t errlen)
{
    unsigned char *clean = malloc(len + 3);
    if (!clean) {
        gp__tls_seterr(err, errlen, PREFIX "out of memory");
        return GP_ENOMEM;
    }
    size_t n = 0, last = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)field[i];
        if (c == '\r' || c == '\n')
            continue;
        if (!is_b64(c)) {
            free(clean);
            illegal_at(field, len, i, err, errlen);
            return GP_EPROTO;
        }
        clean[n++] = c;
        last = i;
    }
    /* A lone character in the final quantum holds less than one byte. */
    if (n % 4 == 1) {
        free(clean);
        illegal_at(field, len, last, err, errlen);
        return GP_EPROTO;
    }
    if (n == 0) {
        free(clean);
        gp__tls_seterr(err, errlen, PREFIX "empty");
        return GP_EPROTO;
    }
    while (n % 4)
        clean[n++] = '=';

    size_t cap = n / 4 * 3, olen = 0;
    unsigned char *out = malloc(cap);
    int ret = out ? mbedtls_base64_decode(out, cap, &olen, clean, n) : 0;
    free(clean);
    if (!out) {
        gp__tls_seterr(err, errlen, PREFIX "out of memory");
        return GP_ENOMEM;
    }
    if (ret != 0) { /* the scan above should have caught everything */
        char text[256];
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, PREFIX "%s", text);
        free(out);
        return GP_EPROTO;
    }
    *der = out;
    *der_len = olen;
    return GP_OK;
}

gp_err gp__tls_certfield_decode(const char *field, size_t len, unsigned char **der, size_t *der_len,
                                char *err, size_t errlen)
{
    if (!der || !der_len || (!field && len)) {
        gp__tls_seterr(err, errlen, PREFIX "missing argument");
        return GP_EINVAL;
    }
    *der = NULL;
    *der_len = 0;
    if (len > GP_TLS_CERTFIELD_MAX) {
        gp__tls_seterr(err, errlen, PREFIX "%zu bytes, more than the %d allowed", len,
                       GP_TLS_CERTFIELD_MAX);
        return GP_EMSGSIZE;
    }
    unsigned char *bytes;
    size_t n;
    gp_err rc = decode_b64(field, len, &bytes, &n, err, errlen);
    if (rc != GP_OK)
        return rc;

    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int ret = mbedtls_x509_crt_parse_der(&crt, bytes, n);
    if (ret != 0) {
        char text[256];
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, PREFIX "not a DER X.509 certificate: %s", text);
        rc = GP_ETLS;
    } else if (crt.raw.len != n) {
        /* mbedTLS stops at the end of the outer SEQUENCE; Go refuses the
         * rest ("x509: trailing data"), and so do we. */
        gp__tls_seterr(err, errlen,
                       PREFIX "not a DER X.509 certificate: %zu bytes of trailing data after it",
                       n - crt.raw.len);
        rc = GP_ETLS;
    }
    mbedtls_x509_crt_free(&crt);
    if (rc != GP_OK) {
        free(bytes);
        return rc;
    }
    *der = bytes;
    *der_len = n;
    return GP_OK;
}

gp_err gp__tls_certfield_to_pem(const char *field, size_t len, char **pem, char *err, size_t errlen)
{
    if (!pem) {
        gp__tls_seterr(err, errlen, PREFIX "missing argument");
        return GP_EINVAL;
    }
    *pem = NULL;
    unsigned char *der;
    size_t n;
    gp_err rc = gp__tls_certfield_decode(field, len, &der, &n, err, errlen);
    if (rc != GP_OK)
        return rc;
    rc = gp__tls_der_to_pem(der, n, pem, err, errlen);
    free(der);
    return rc;
}

gp_err gp__tls_autocert_check(const unsigned char *der, size_t len, bool as_server, const char *who,
                              char *err, size_t errlen)
{
    const char *role = as_server ? "server" : "client";
    if (!der || !len || !who) {
        gp__tls_seterr(err, errlen, "certificate check: missing argument");
        return GP_EINVAL;
    }
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    char text[512];
    gp_err rc = GP_OK;
    int ret = mbedtls_x509_crt_parse_der(&crt, der, len);
    if (ret != 0) {
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "%s: not a DER X.509 certificate: %s", who, text);
        rc = GP_ETLS;
        goto done;
    }
    /* The handshake will verify the peer's chain against this very cert. */
    uint32_t flags = 0;
    ret = mbedtls_x509_crt_verify(&crt, &crt, NULL, as_server ? "localhost" : NULL, &flags, NULL,
                                  NULL);
    if (ret != 0) {
        gp__tls_verify_text(flags, text, sizeof text);
        gp__tls_seterr(err, errlen, "%s: not usable as the %s's certificate: %s", who, role, text);
        rc = GP_ETLS;
        goto done;
    }
    const char *oid = as_server ? MBEDTLS_OID_SERVER_AUTH : MBEDTLS_OID_CLIENT_AUTH;
    if (mbedtls_x509_crt_check_extended_key_usage(&crt, oid,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) != 0) {
        gp__tls_seterr(err, errlen,
                       "%s: not usable as the %s's certificate: its extended key usage lacks %s",
                       who, role, as_server ? "serverAuth" : "clientAuth");
        rc = GP_ETLS;
    }
done:
    mbedtls_x509_crt_free(&crt);
    return rc;
}
