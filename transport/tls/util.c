/* Random generator and error wording for the tls layer. */
#include "transport/tls/util.h"

#include <mbedtls/error.h>
#include <mbedtls/x509_crt.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gp__tls_rng_init(gp__tls_rng *r)
{
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
}

int gp__tls_rng_seed(gp__tls_rng *r, const char *who)
{
    return mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
                                 (const unsigned char *)who, strlen(who));
}

void gp__tls_rng_free(gp__tls_rng *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
}

void gp__tls_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void gp__tls_mbed_text(int code, char *buf, size_t cap)
{
    char text[200];
    mbedtls_strerror(code, text, sizeof text);
    unsigned mag = code < 0 ? (unsigned)-code : (unsigned)code;
    snprintf(buf, cap, "%s (%s0x%04X)", text, code < 0 ? "-" : "", mag);
}

/* mbedtls_x509_crt_verify_info's lines joined with "; ". */
void gp__tls_verify_text(uint32_t flags, char *out, size_t cap)
{
    char raw[512];
    int n = mbedtls_x509_crt_verify_info(raw, sizeof raw, "", flags);
    if (n < 0)
        snprintf(raw, sizeof raw, "verification flags 0x%08x", (unsigned)flags);
    size_t o = 0;
    for (const char *p = raw; *p && o + 3 < cap; p++) {
        if (*p == '\n') {
            if (p[1] && o + 3 < cap) {
                out[o++] = ';';
                out[o++] = ' ';
            }
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}
