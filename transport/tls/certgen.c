/* AutoMTLS certificate generation: go-plugin's generateCert, field for field.
 *
 * mbedTLS 2.28 has no setters for subjectAltName or extKeyUsage, so those
 * two extensions are DER-encoded here by hand. The asn1 writers fill the
 * buffer from its end backwards, hence the reversed order below. It also
 * writes a NULL parameter into the ecdsa-with-SHA512 AlgorithmIdentifier,
 * which Go and RFC 5758 omit and strict parsers refuse, so the TBS is
 * patched and signed again. */
#include "transport/tls/certgen.h"

#include "transport/tls/util.h"

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>

#include <stdlib.h>
#include <string.h>

#define PEM_CAP 4096 /* a P-521 certificate is ~1 KiB of PEM, its key ~0.4 KiB */

/* SEQUENCE { [2] IMPLICIT IA5String "localhost" } */
static int write_san(unsigned char *buf, size_t cap, unsigned char **start)
{
    static const char host[] = "localhost";
    unsigned char *p = buf + cap;
    int ret;
    size_t len = 0;
    if ((ret = mbedtls_asn1_write_raw_buffer(&p, buf, (const unsigned char *)host,
                                             sizeof host - 1)) < 0)
        return ret;
    len += (size_t)ret;
    if ((ret = mbedtls_asn1_write_len(&p, buf, sizeof host - 1)) < 0)
        return ret;
    len += (size_t)ret;
    if ((ret = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)) < 0)
        return ret;
    len += (size_t)ret;
    if ((ret = mbedtls_asn1_write_len(&p, buf, len)) < 0)
        return ret;
    len += (size_t)ret;
    if ((ret = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) <
        0)
        return ret;
    len += (size_t)ret;
    *start = p;
    return (int)len;
}

/* SEQUENCE { clientAuth, serverAuth } in Go's order. */
static int write_eku(unsigned char *buf, size_t cap, unsigned char **start)
{
    unsigned char *p = buf + cap;
    int ret;
    size_t len = 0;
    if ((ret = mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_SERVER_AUTH,
                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))) < 0)
        return ret;
    len += (size_t)ret;
    if ((ret = mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_CLIENT_AUTH,
                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH))) < 0)
        return ret;
    len += (size_t)ret;
    if ((ret = mbedtls_asn1_write_len(&p, buf, len)) < 0)
        return ret;
    len += (size_t)ret;
    if ((ret = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) <
        0)
        return ret;
    len += (size_t)ret;
    *start = p;
    return (int)len;
}

/* The signature AlgorithmIdentifier as Go (and RFC 5758) writes it for
 * ecdsa-with-SHA512: no parameters. mbedTLS 2.28 adds a NULL. */
static const unsigned char ALG_NULL[] = {0x30, 0x0C, 0x06, 0x08, 0x2A, 0x86, 0x48,
                                         0xCE, 0x3D, 0x04, 0x03, 0x04, 0x05, 0x00};

static int write_alg(unsigned char **p, unsigned char *start, size_t *len)
{
    int ret;
    size_t l = 0;
    if ((ret = mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_ECDSA_SHA512,
                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_ECDSA_SHA512))) < 0)
        return ret;
    l += (size_t)ret;
    if ((ret = mbedtls_asn1_write_len(p, start, l)) < 0)
        return ret;
    l += (size_t)ret;
    if ((ret = mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) <
        0)
        return ret;
    *len += l + (size_t)ret;
    return 0;
}

/* Takes the DER mbedTLS signed, drops the NULL from the TBS signature
 * algorithm, signs the new TBS and writes the certificate Go would write
 * into the end of out[cap]; *der points at it. */
static int resign(const unsigned char *in, size_t in_len, mbedtls_pk_context *pk, gp__tls_rng *rng,
                  unsigned char *out, size_t cap, unsigned char **der, size_t *der_len)
{
    unsigned char *p = (unsigned char *)in, *end = p + in_len, *tbs_body, *tbs_end;
    size_t len;
    int ret;
    /* Certificate ::= SEQUENCE { tbs SEQUENCE { [0] version, serial, alg, ... } ... } */
    if ((ret = mbedtls_asn1_get_tag(&p, end, &len,
                                    MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) ||
        (ret =
             mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)))
        return ret;
    tbs_body = p;
    tbs_end = p + len;
    if ((ret = mbedtls_asn1_get_tag(&p, tbs_end, &len,
                                    MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0)))
        return ret;
    p += len;
    if ((ret = mbedtls_asn1_get_tag(&p, tbs_end, &len, MBEDTLS_ASN1_INTEGER)))
        return ret;
    p += len;
    if ((size_t)(tbs_end - p) < sizeof ALG_NULL || memcmp(p, ALG_NULL, sizeof ALG_NULL) != 0)
        return MBEDTLS_ERR_X509_INVALID_ALG;
    unsigned char *alg = p, *after = p + sizeof ALG_NULL;

    /* new TBS, backwards into the end of out */
    unsigned char *w = out + cap;
    size_t tl = 0;
    if ((ret = mbedtls_asn1_write_raw_buffer(&w, out, after, (size_t)(tbs_end - after))) < 0)
        return ret;
    tl += (size_t)ret;
    if ((ret = write_alg(&w, out, &tl)) != 0)
        return ret;
    if ((ret = mbedtls_asn1_write_raw_buffer(&w, out, tbs_body, (size_t)(alg - tbs_body))) < 0)
        return ret;
    tl += (size_t)ret;
    if ((ret = mbedtls_asn1_write_len(&w, out, tl)) < 0)
        return ret;
    tl += (size_t)ret;
    if ((ret = mbedtls_asn1_write_tag(&w, out, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) <
        0)
        return ret;
    tl += (size_t)ret;

    unsigned char hash[64], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0;
    if ((ret = mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA512), w, tl, hash)) != 0 ||
        (ret = mbedtls_pk_sign(pk, MBEDTLS_MD_SHA512, hash, sizeof hash, sig, &sig_len,
                               mbedtls_ctr_drbg_random, &rng->drbg)) != 0)
        return ret;

    /* Certificate: TBS (already in place), algorithm, BIT STRING signature.
     * Move the TBS down first to make room after it. */
    size_t tail_cap = 16 + 16 + sig_len;
    if (tl + tail_cap > cap)
        return MBEDTLS_ERR_ASN1_BUF_TOO_SMALL;
    unsigned char *tbs = out + cap - tl - tail_cap;
    memmove(tbs, w, tl);
    unsigned char *t = out + cap;
    size_t cl = 0;
    if ((ret = mbedtls_asn1_write_bitstring(&t, tbs + tl, sig, sig_len * 8)) < 0)
        return ret;
    cl += (size_t)ret;
    if ((ret = write_alg(&t, tbs + tl, &cl)) != 0)
        return ret;
    /* close the gap between TBS and the tail */
    memmove(tbs + tl, t, cl);
    size_t body = tl + cl;
    /* outer header goes in front of the TBS */
    unsigned char *h = tbs;
    if ((ret = mbedtls_asn1_write_len(&h, out, body)) < 0)
        return ret;
    body += (size_t)ret;
    if ((ret = mbedtls_asn1_write_tag(&h, out, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) <
        0)
        return ret;
    body += (size_t)ret;
    *der = h;
    *der_len = body;
    return 0;
}

/* "YYYYMMDDhhmmss" in UTC, the form mbedtls_x509write_crt_set_validity takes. */
static int format_time(time_t t, char out[16])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1950)
        return -1;
    return strftime(out, 16, "%Y%m%d%H%M%S", &tm) == 14 ? 0 : -1;
}

/* Everything that uses mbedTLS contexts; `what` names the failed step. */
static int build(const gp__tls_certgen_opts *opts, mbedtls_pk_context *pk,
                 mbedtls_x509write_cert *crt, gp__tls_rng *rng, unsigned char *cert_pem,
                 unsigned char *key_pem, const char **what)
{
    int ret;
    *what = "generating the P-521 key";
    if ((ret = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) != 0)
        return ret;
    if ((ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP521R1, mbedtls_pk_ec(*pk),
                                   mbedtls_ctr_drbg_random, &rng->drbg)) != 0)
        return ret;

    /* The serial is uniform in [0, 2^128) as Go's rand.Int; the writer adds
     * the leading zero byte DER needs when the top bit is set. */
    *what = "drawing the serial number";
    unsigned char serial_bytes[16];
    if ((ret = mbedtls_ctr_drbg_random(&rng->drbg, serial_bytes, sizeof serial_bytes)) != 0)
        return ret;
    mbedtls_mpi serial;
    mbedtls_mpi_init(&serial);
    ret = mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof serial_bytes);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_serial(crt, &serial);
    mbedtls_mpi_free(&serial);
    if (ret != 0)
        return ret;

    *what = "writing the certificate fields";
    mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA512);
    mbedtls_x509write_crt_set_subject_key(crt, pk);
    mbedtls_x509write_crt_set_issuer_key(crt, pk);
    /* O before CN in the DER, as Go orders a pkix.Name. */
    if ((ret = mbedtls_x509write_crt_set_subject_name(crt, "O=HashiCorp,CN=localhost")) != 0 ||
        (ret = mbedtls_x509write_crt_set_issuer_name(crt, "O=HashiCorp,CN=localhost")) != 0)
        return ret;
    /* mbedTLS tags every value UTF8String; Go uses PrintableString when the
     * text allows it. Match Go so the name bytes are the same. */
    for (mbedtls_asn1_named_data *n = crt->subject; n; n = n->next)
        n->val.tag = MBEDTLS_ASN1_PRINTABLE_STRING;
    for (mbedtls_asn1_named_data *n = crt->issuer; n; n = n->next)
        n->val.tag = MBEDTLS_ASN1_PRINTABLE_STRING;

    time_t now = time(NULL);
    time_t nb = opts && opts->not_before ? opts->not_before : now - GP_TLS_AUTOCERT_BACKDATE;
    time_t na =
        opts && opts->not_after ? opts->not_after : now + (time_t)GP_TLS_AUTOCERT_HOURS * 3600;
    char nbs[16], nas[16];
    *what = "formatting the validity dates";
    if (format_time(nb, nbs) != 0 || format_time(na, nas) != 0)
        return MBEDTLS_ERR_X509_BAD_INPUT_DATA;
    if ((ret = mbedtls_x509write_crt_set_validity(crt, nbs, nas)) != 0)
        return ret;

    /* In Go's order (key usage, EKU, basic constraints, SKI, SAN): mbedTLS
     * writes extensions in the order they are set. */
    *what = "writing the certificate extensions";
    unsigned char ext[64], *start;
    if ((ret = mbedtls_x509write_crt_set_key_usage(
             crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE | MBEDTLS_X509_KU_KEY_ENCIPHERMENT |
                      MBEDTLS_X509_KU_KEY_AGREEMENT | MBEDTLS_X509_KU_KEY_CERT_SIGN)) != 0)
        return ret;
    if ((ret = write_eku(ext, sizeof ext, &start)) < 0)
        return ret;
    if ((ret = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                   MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                   0, start, (size_t)ret)) != 0)
        return ret;
    if ((ret = mbedtls_x509write_crt_set_basic_constraints(crt, 1, -1)) != 0 ||
        (ret = mbedtls_x509write_crt_set_subject_key_identifier(crt)) != 0)
        return ret;
    if ((ret = write_san(ext, sizeof ext, &start)) < 0)
        return ret;
    if ((ret = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                   MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                   0, start, (size_t)ret)) != 0)
        return ret;

    *what = "signing the certificate";
    unsigned char first[2048], final[2048], *der;
    size_t der_len;
    if ((ret = mbedtls_x509write_crt_der(crt, first, sizeof first, mbedtls_ctr_drbg_random,
                                         &rng->drbg)) < 0)
        return ret;
    *what = "re-signing without the NULL algorithm parameter";
    if ((ret = resign(first + sizeof first - ret, (size_t)ret, pk, rng, final, sizeof final, &der,
                      &der_len)) != 0)
        return ret;
    size_t olen;
    *what = "writing the certificate PEM";
    if ((ret = mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n",
                                        "-----END CERTIFICATE-----\n", der, der_len, cert_pem,
                                        PEM_CAP, &olen)) != 0)
        return ret;
    *what = "writing the private key";
    return mbedtls_pk_write_key_pem(pk, key_pem, PEM_CAP);
}

gp_err gp__tls_certgen(const gp__tls_certgen_opts *opts, gp__tls_keypair *out, char *err,
                       size_t errlen)
{
    if (!out) {
        gp__tls_seterr(err, errlen, "certgen: no output");
        return GP_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (opts && opts->not_before && opts->not_after && opts->not_after <= opts->not_before) {
        gp__tls_seterr(err, errlen, "certgen: not_after %lld is not after not_before %lld",
                       (long long)opts->not_after, (long long)opts->not_before);
        return GP_EINVAL;
    }

    gp__tls_rng rng;
    mbedtls_pk_context pk;
    mbedtls_x509write_cert crt;
    mbedtls_x509_crt parsed;
    mbedtls_pk_init(&pk);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_x509_crt_init(&parsed);
    unsigned char *cert_pem = calloc(1, PEM_CAP), *key_pem = calloc(1, PEM_CAP);
    gp_err rc = GP_OK;
    const char *what = "allocating";
    gp__tls_rng_init(&rng);
    int ret = gp__tls_rng_seed(&rng, "goplugin-c certgen");

    if (!cert_pem || !key_pem) {
        rc = GP_ENOMEM;
        gp__tls_seterr(err, errlen, "certgen: out of memory");
        goto done;
    }
    if (ret != 0)
        what = "seeding the random generator";
    else
        ret = build(opts, &pk, &crt, &rng, cert_pem, key_pem, &what);
    /* Parse the PEM back (the parser wants the NUL counted): it checks the
     * result, and its raw DER is the very certificate in the PEM (ECDSA
     * signatures are randomised, so DER must never be signed separately). */
    if (ret == 0) {
        what = "parsing the new certificate back";
        ret = mbedtls_x509_crt_parse(&parsed, cert_pem, strlen((char *)cert_pem) + 1);
    }
    if (ret != 0) {
        char text[256];
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "certgen: %s: %s", what, text);
        rc = GP_ETLS;
        goto done;
    }
    out->cert_der = malloc(parsed.raw.len);
    if (!out->cert_der) {
        rc = GP_ENOMEM;
        gp__tls_seterr(err, errlen, "certgen: out of memory");
        goto done;
    }
    memcpy(out->cert_der, parsed.raw.p, parsed.raw.len);
    out->cert_der_len = parsed.raw.len;
    out->cert_pem = (char *)cert_pem;
    out->key_pem = (char *)key_pem;
    cert_pem = key_pem = NULL;

done:
    if (key_pem)
        mbedtls_platform_zeroize(key_pem, PEM_CAP);
    free(cert_pem);
    free(key_pem);
    mbedtls_x509_crt_free(&parsed);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_pk_free(&pk);
    gp__tls_rng_free(&rng);
    return rc;
}

void gp__tls_keypair_free(gp__tls_keypair *kp)
{
    if (!kp)
        return;
    if (kp->key_pem) {
        mbedtls_platform_zeroize(kp->key_pem, strlen(kp->key_pem));
        free(kp->key_pem);
    }
    free(kp->cert_pem);
    free(kp->cert_der);
    memset(kp, 0, sizeof *kp);
}
