/* Internal: the handshake's 6th field, the plugin's AutoMTLS certificate.
 *
 * It holds the certificate's DER in standard-alphabet base64 without
 * padding (Go's base64.RawStdEncoding). Decoding follows Go: '\r' and '\n'
 * are skipped, any other byte outside the alphabet (also '=') is an error
 * at its offset, and the bytes must be exactly one X.509 certificate.
 * go-plugin's host looks at the field only when it is longer than 50
 * characters; gp__tls_certfield_present applies that rule. */
#ifndef GP_TLS_CERTFIELD_H
#define GP_TLS_CERTFIELD_H

#include <goplugin/err.h>

#include <stdbool.h>
#include <stddef.h>

#define GP_TLS_CERTFIELD_IGNORED_MAX 50  /* go-plugin: len <= 50 means "no cert" */
#define GP_TLS_CERTFIELD_MAX (64 * 1024) /* longer fields are refused */

/* True when go-plugin's host would treat `field` (may be NULL) as a
 * certificate: more than 50 bytes. */
bool gp__tls_certfield_present(const char *field, size_t len);

/* DER -> unpadded base64. *out is malloc'd and NUL-terminated; caller
 * frees. Errors: GP_EINVAL (empty), GP_ENOMEM. */
gp_err gp__tls_certfield_encode(const unsigned char *der, size_t len, char **out, char *err,
                                size_t errlen);

/* Field text (len bytes, need not be NUL-terminated) -> DER of a parsed
 * X.509 certificate. Applies no length rule of its own beyond
 * GP_TLS_CERTFIELD_MAX. *der is malloc'd, caller frees. Errors:
 *   GP_EPROTO  "handshake certificate field: illegal base64 data at byte 17: \"#..\""
 *   GP_ETLS    "handshake certificate field: not a DER X.509 certificate: <mbedTLS words>"
 *   GP_EMSGSIZE, GP_EINVAL, GP_ENOMEM. */
gp_err gp__tls_certfield_decode(const char *field, size_t len, unsigned char **der, size_t *der_len,
                                char *err, size_t errlen);

/* Decode, then PEM-encode: what the host hands to TLS as the sole trust
 * root. *pem is malloc'd, caller frees. Errors as gp__tls_certfield_decode. */
gp_err gp__tls_certfield_to_pem(const char *field, size_t len, char **pem, char *err,
                                size_t errlen);

/* Checks, before any connection, that a peer's AutoMTLS certificate will
 * pass the TLS handshake as its own trust root: self-signed and valid now,
 * EKU fit for `as_server` (serverAuth, name "localhost") or not
 * (clientAuth). Gives clear words early, where gRPC core would only say
 * "handshake failed". Errors: GP_ETLS ("handshake certificate field: not
 * usable as the server's certificate: The certificate validity has
 * expired"), GP_EINVAL. `who` names the source in the message. */
gp_err gp__tls_autocert_check(const unsigned char *der, size_t len, bool as_server, const char *who,
                              char *err, size_t errlen);

#endif
