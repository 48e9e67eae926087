/* gp_tls_config -> checked PEM texts. */
#include "transport/tls/config.h"

#include "transport/tls/util.h"

#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PEM_CAP 16384 /* an RSA-8192 key in PEM fits */

/* The item's text, malloc'd: a file's contents or a copy of the text. */
static gp_err fetch(const gp_tls_source *src, const char *what, char **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (!src->path && !src->pem) {
        gp__tls_seterr(err, errlen, "tls config: %s: neither a file path nor PEM text given", what);
        return GP_EINVAL;
    }
    if (!src->path) {
        if (!(*out = strdup(src->pem))) {
            gp__tls_seterr(err, errlen, "tls config: out of memory");
            return GP_ENOMEM;
        }
        return GP_OK;
    }
    FILE *f = fopen(src->path, "rb");
    if (!f) {
        gp__tls_seterr(err, errlen, "tls config: %s file %s: %s", what, src->path, strerror(errno));
        return GP_EINVAL;
    }
    char *buf = malloc(GP_TLS_PEM_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, GP_TLS_PEM_FILE_MAX + 1, f) : 0;
    int bad = buf ? ferror(f) : 0;
    fclose(f);
    if (!buf) {
        gp__tls_seterr(err, errlen, "tls config: out of memory");
        return GP_ENOMEM;
    }
    if (bad || n > GP_TLS_PEM_FILE_MAX) {
        gp__tls_seterr(err, errlen,
                       bad ? "tls config: %s file %s: read error"
                           : "tls config: %s file %s: larger than 1 MiB",
                       what, src->path);
        free(buf);
        return GP_EINVAL;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        gp__tls_seterr(err, errlen,
                       "tls config: %s file %s: not PEM text (binary data; DER is not accepted)",
                       what, src->path);
        free(buf);
        return GP_EINVAL;
    }
    *out = buf;
    return GP_OK;
}

static const char *origin(const gp_tls_source *src)
{
    return src->path ? src->path : "(PEM text)";
}

static gp_err parse_certs(const char *pem, const char *what, const gp_tls_source *src,
                          mbedtls_x509_crt *crt, char *err, size_t errlen)
{
    char text[256];
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----")) {
        gp__tls_seterr(err, errlen, "tls config: %s %s: no \"-----BEGIN CERTIFICATE-----\" in it",
                       what, origin(src));
        return GP_EINVAL;
    }
    int ret = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1);
    if (ret == 0)
        return GP_OK;
    if (ret > 0)
        snprintf(text, sizeof text, "%d certificate(s) in it did not parse", ret);
    else
        gp__tls_mbed_text(ret, text, sizeof text);
    gp__tls_seterr(err, errlen, "tls config: %s %s: %s", what, origin(src), text);
    return GP_EINVAL;
}

gp_err gp__tls_material_load(const gp_tls_config *cfg, gp__tls_material *out, char *err,
                             size_t errlen)
{
    if (!cfg || !out) {
        gp__tls_seterr(err, errlen, "tls config: missing argument");
        return GP_EINVAL;
    }
    memset(out, 0, sizeof *out);
    mbedtls_x509_crt cert, ca;
    mbedtls_pk_context key;
    mbedtls_x509_crt_init(&cert);
    mbedtls_x509_crt_init(&ca);
    mbedtls_pk_init(&key);
    char *key_text = NULL;
    unsigned char *key_pem = NULL;
    char text[256];
    int ret;

    gp_err rc = fetch(&cfg->cert, "cert", &out->cert_pem, err, errlen);
    if (rc == GP_OK)
        rc = parse_certs(out->cert_pem, "cert", &cfg->cert, &cert, err, errlen);
    if (rc == GP_OK)
        rc = fetch(&cfg->ca, "ca", &out->ca_pem, err, errlen);
    if (rc == GP_OK)
        rc = parse_certs(out->ca_pem, "ca", &cfg->ca, &ca, err, errlen);
    if (rc == GP_OK)
        rc = fetch(&cfg->key, "key", &key_text, err, errlen);
    if (rc != GP_OK)
        goto done;

    const char *pw = cfg->key_password;
    ret = mbedtls_pk_parse_key(&key, (const unsigned char *)key_text, strlen(key_text) + 1,
                               (const unsigned char *)pw, pw ? strlen(pw) : 0);
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        gp__tls_seterr(err, errlen, "tls config: key %s: %s", origin(&cfg->key),
                       pw ? "wrong key_password" : "it is encrypted and no key_password was given");
        rc = GP_EINVAL;
        goto done;
    }
    if (ret != 0) {
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "tls config: key %s: %s", origin(&cfg->key), text);
        rc = GP_EINVAL;
        goto done;
    }
    if (mbedtls_pk_check_pair(&cert.pk, &key) != 0) {
        gp__tls_seterr(err, errlen, "tls config: key %s does not match the certificate %s",
                       origin(&cfg->key), origin(&cfg->cert));
        rc = GP_EINVAL;
        goto done;
    }
    if (!(key_pem = calloc(1, KEY_PEM_CAP)) ||
        !(out->server_name = strdup(cfg->server_name ? cfg->server_name : "localhost"))) {
        gp__tls_seterr(err, errlen, "tls config: out of memory");
        rc = GP_ENOMEM;
        goto done;
    }
    if ((ret = mbedtls_pk_write_key_pem(&key, key_pem, KEY_PEM_CAP)) != 0) {
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "tls config: re-writing the key: %s", text);
        rc = GP_EINVAL;
        goto done;
    }
    out->key_pem = (char *)key_pem;
    key_pem = NULL;

done:
    if (key_text) {
        mbedtls_platform_zeroize(key_text, strlen(key_text));
        free(key_text);
    }
    if (key_pem) {
        mbedtls_platform_zeroize(key_pem, KEY_PEM_CAP);
        free(key_pem);
    }
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&cert);
    mbedtls_x509_crt_free(&ca);
    if (rc != GP_OK)
        gp__tls_material_free(out);
    return rc;
}

void gp__tls_material_free(gp__tls_material *m)
{
    if (!m)
        return;
    if (m->key_pem) {
        mbedtls_platform_zeroize(m->key_pem, strlen(m->key_pem));
        free(m->key_pem);
    }
    free(m->cert_pem);
    free(m->ca_pem);
    free(m->server_name);
    memset(m, 0, sizeof *m);
}
