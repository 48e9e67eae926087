/* Internal: a user's gp_tls_config turned into checked PEM texts, ready for
 * gp__tls_open (and for gRPC core's credentials, which also take PEM). */
#ifndef GP_TLS_CONFIG_H
#define GP_TLS_CONFIG_H

#include <goplugin/err.h>
#include <goplugin/tls.h>

#include <stddef.h>

#define GP_TLS_PEM_FILE_MAX (1024 * 1024) /* larger PEM files are refused */

/* All malloc'd and NUL-terminated; free with gp__tls_material_free. */
typedef struct gp__tls_material {
    char *cert_pem;    /* as given (chain kept) */
    char *key_pem;     /* re-written unencrypted, so TLS needs no password */
    char *ca_pem;      /* as given */
    char *server_name; /* "localhost" when the config had none */
} gp__tls_material;

/* Reads the files or copies the texts, parses each item with mbedTLS,
 * decrypts the key, checks that it belongs to the certificate. Errors
 * (GP_EINVAL) name the item and the source: "tls config: key file
 * /etc/x.key: No such file or directory", "tls config: key does not match
 * the certificate". GP_ENOMEM. On error *out holds nothing. */
gp_err gp__tls_material_load(const gp_tls_config *cfg, gp__tls_material *out, char *err,
                             size_t errlen);

/* Wipes the key and frees everything; NULL is ok. */
void gp__tls_material_free(gp__tls_material *m);

#endif
