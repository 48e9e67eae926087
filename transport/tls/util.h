/* Internal to transport/tls: a seeded random generator and error wording
 * shared by certgen, certfield and stream. */
#ifndef GP_TLS_UTIL_H
#define GP_TLS_UTIL_H

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

#include <stddef.h>
#include <stdint.h>

/* One CTR-DRBG over the system entropy. Not thread-safe: each user (one
 * certificate generation, one TLS connection) owns its own. */
typedef struct gp__tls_rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
} gp__tls_rng;

/* Init makes `r` safe to free; seed (personalised with `who`) returns 0
 * or an mbedTLS error code. */
void gp__tls_rng_init(gp__tls_rng *r);
int gp__tls_rng_seed(gp__tls_rng *r, const char *who);
void gp__tls_rng_free(gp__tls_rng *r);

/* snprintf into err[errlen] when err is non-NULL and errlen > 0. */
void gp__tls_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* mbedTLS's text for an error code, with the code in hex:
 * "X509 - The date tag or value is invalid (-0x2400)". */
void gp__tls_mbed_text(int code, char *buf, size_t cap);

/* mbedtls_x509_crt_verify_info's lines for `flags`, joined with "; ". */
void gp__tls_verify_text(uint32_t flags, char *out, size_t cap);

#endif
