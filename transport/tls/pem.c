/* PEM <-> DER for single certificates. */
#include "transport/tls/pem.h"

#include "transport/tls/util.h"

#include <mbedtls/pem.h>
#include <mbedtls/x509_crt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----\n"
#define PEM_END "-----END CERTIFICATE-----\n"

gp_err gp__tls_der_to_pem(const unsigned char *der, size_t len, char **pem, char *err,
                          size_t errlen)
{
    if (!der || !len || !pem) {
        gp__tls_seterr(err, errlen, "DER to PEM: no certificate bytes");
        return GP_EINVAL;
    }
    *pem = NULL;
    /* base64 grows 4/3, a newline per 64 columns, the two armour lines, NUL */
    size_t b64 = (len + 2) / 3 * 4;
    size_t cap = b64 + b64 / 64 + 2 + sizeof PEM_BEGIN + sizeof PEM_END;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        gp__tls_seterr(err, errlen, "DER to PEM: out of memory");
        return GP_ENOMEM;
    }
    size_t olen = 0;
    int ret = mbedtls_pem_write_buffer(PEM_BEGIN, PEM_END, der, len, buf, cap, &olen);
    if (ret != 0) {
        char text[256];
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "DER to PEM: %s", text);
        free(buf);
        return GP_ETLS;
    }
    *pem = (char *)buf;
    return GP_OK;
}

gp_err gp__tls_pem_to_der(const char *pem, unsigned char **der, size_t *der_len, char *err,
                          size_t errlen)
{
    if (!pem || !der || !der_len) {
        gp__tls_seterr(err, errlen, "PEM certificate: missing argument");
        return GP_EINVAL;
    }
    *der = NULL;
    *der_len = 0;
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----")) {
        gp__tls_seterr(err, errlen,
                       "PEM certificate: no \"-----BEGIN CERTIFICATE-----\" line in %zu bytes",
                       strlen(pem));
        return GP_ETLS;
    }
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    /* The PEM parser needs the NUL counted in the length. */
    int ret = mbedtls_x509_crt_parse(&crt, (const unsigned char *)pem, strlen(pem) + 1);
    gp_err rc = GP_OK;
    if (ret != 0) {
        char text[256];
        /* A positive return counts certificates that failed in a bundle. */
        if (ret > 0)
            snprintf(text, sizeof text, "%d certificate(s) in it did not parse", ret);
        else
            gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "PEM certificate: %s", text);
        rc = GP_ETLS;
    } else if (!(*der = malloc(crt.raw.len))) {
        gp__tls_seterr(err, errlen, "PEM certificate: out of memory");
        rc = GP_ENOMEM;
    } else {
        memcpy(*der, crt.raw.p, crt.raw.len);
        *der_len = crt.raw.len;
    }
    mbedtls_x509_crt_free(&crt);
    return rc;
}
