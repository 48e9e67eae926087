/* Internal: one certificate between PEM and DER, checked by parsing. */
#ifndef GP_TLS_PEM_H
#define GP_TLS_PEM_H

#include <goplugin/err.h>

#include <stddef.h>

/* DER -> "-----BEGIN CERTIFICATE-----\n...-----END CERTIFICATE-----\n",
 * 64 columns like Go's pem.Encode. Does not parse the DER. *pem is
 * malloc'd, NUL-terminated, caller frees. Errors: GP_EINVAL (empty),
 * GP_ENOMEM, GP_ETLS. */
gp_err gp__tls_der_to_pem(const unsigned char *der, size_t len, char **pem, char *err,
                          size_t errlen);

/* The first certificate of a PEM text (NUL-terminated) -> its DER, after
 * mbedTLS has parsed it as X.509. *der is malloc'd, caller frees.
 * Errors: GP_ETLS ("PEM certificate: <mbedTLS words>"), GP_EINVAL, GP_ENOMEM. */
gp_err gp__tls_pem_to_der(const char *pem, unsigned char **der, size_t *der_len, char *err,
                          size_t errlen);

#endif
