/* Internal: go-plugin's AutoMTLS certificate (spec §4.1), made with mbedTLS.
 *
 * ECDSA P-521 key, self-signed with ecdsa-with-SHA512, random 128-bit
 * serial, subject = issuer "O=HashiCorp, CN=localhost", SAN DNS localhost,
 * valid from now-30 s for 262980 h, CA:TRUE (critical), key usage
 * digitalSignature|keyEncipherment|keyAgreement|keyCertSign (critical), EKU
 * clientAuth+serverAuth, a subject key identifier. Host and plugin each make
 * one per process start. */
#ifndef GP_TLS_CERTGEN_H
#define GP_TLS_CERTGEN_H

#include <goplugin/err.h>

#include <stddef.h>
#include <time.h>

#define GP_TLS_AUTOCERT_HOURS 262980 /* go-plugin's lifetime, ~30 years */
#define GP_TLS_AUTOCERT_BACKDATE 30  /* seconds before now */

/* A certificate and its key. All three buffers are malloc'd and owned by
 * the struct; free with gp__tls_keypair_free. */
typedef struct gp__tls_keypair {
    char *cert_pem;          /* "-----BEGIN CERTIFICATE-----", NUL-terminated */
    char *key_pem;           /* SEC1 "-----BEGIN EC PRIVATE KEY-----", NUL-terminated */
    unsigned char *cert_der; /* the very certificate in cert_pem, as DER */
    size_t cert_der_len;
} gp__tls_keypair;

/* Validity override for tests (expired or not-yet-valid certificates).
 * Zero fields mean go-plugin's values. */
typedef struct gp__tls_certgen_opts {
    time_t not_before; /* 0: now - 30 s */
    time_t not_after;  /* 0: now + 262980 h */
} gp__tls_certgen_opts;

/* Makes a fresh AutoMTLS key and certificate into *out (zeroed first).
 * opts may be NULL. Errors: GP_ETLS (mbedTLS failed, its words in err),
 * GP_ENOMEM, GP_EINVAL (not_after <= not_before). On error *out holds
 * nothing to free. Thread safety: safe (own random generator per call). */
gp_err gp__tls_certgen(const gp__tls_certgen_opts *opts, gp__tls_keypair *out, char *err,
                       size_t errlen);

/* Frees the buffers (the key wiped first) and zeroes *kp. NULL is ok. */
void gp__tls_keypair_free(gp__tls_keypair *kp);

#endif
