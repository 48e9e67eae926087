/* goplugin-c: TLS with your own certificates (go-plugin's
 * ClientConfig.TLSConfig on the host, ServeConfig.TLSProvider on the plugin).
 *
 * Each item comes from a PEM file or from PEM text in memory:
 *
 *   gp_tls_config tls = {
 *       .cert = {.path = "/etc/kv/host.pem"},
 *       .key = {.path = "/etc/kv/host.key"},
 *       .ca = {.pem = ca_pem_text},          // roots the peer must chain to
 *   };
 *
 * Both sides present their certificate and require the peer's, which must
 * chain to `ca` (TLS 1.2 and up). The host checks the plugin's certificate
 * for `server_name`. Without a gp_tls_config, AutoMTLS (when enabled) makes
 * throwaway certificates instead. All strings are borrowed and copied when
 * the config is used; nothing is kept.
 */
#ifndef GOPLUGIN_TLS_H
#define GOPLUGIN_TLS_H

#ifdef __cplusplus
extern "C" {
#endif

/* One PEM item: `path` wins when set; else `pem` (NUL-terminated text). */
typedef struct gp_tls_source {
    const char *path;
    const char *pem;
} gp_tls_source;

typedef struct gp_tls_config {
    gp_tls_source cert;       /* own certificate, then any intermediates */
    gp_tls_source key;        /* own private key (EC, RSA; SEC1, PKCS#1/#8) */
    const char *key_password; /* for an encrypted key; NULL if none */
    gp_tls_source ca;         /* trusted roots for the peer (one or more) */
    const char *server_name;  /* host: name checked in the plugin's
                                  certificate; NULL = "localhost" */
} gp_tls_config;

#ifdef __cplusplus
}
#endif
#endif
