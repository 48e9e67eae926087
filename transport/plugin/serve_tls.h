/* Internal: TLS on the plugin side (spec §4.2, §4.3). With the user's
 * gp_tls_config (go-plugin's TLSProvider) that wins; else AutoMTLS when the
 * host sent PLUGIN_CLIENT_CERT: check the host's certificate, make ours,
 * print it as handshake field 6, require the host's on every connection. */
#ifndef GP_TRANSPORT_SERVE_TLS_H
#define GP_TRANSPORT_SERVE_TLS_H

#include <goplugin/server.h>

#include <stdbool.h>
#include <stddef.h>

#include "transport/tls/certgen.h"
#include "transport/tls/config.h"
#include "transport/core/wire.h"

typedef struct gp__serve_tls {
    bool on;
    /* When on, what the wire serves with (point into the members below). */
    const char *root_pem, *cert_pem, *key_pem;
    char *cert_b64;      /* AutoMTLS: our certificate as field 6, else NULL */
    gp__tls_keypair own; /* AutoMTLS: our key and certificate */
    char *host_pem;      /* AutoMTLS: the host's certificate, re-encoded */
    bool have_user;
    gp__tls_material user; /* cfg->tls */
} gp__serve_tls;

/* Decide and prepare. `env_cert` is getenv("PLUGIN_CLIENT_CERT") (may be
 * NULL). *out is zeroed first and always safe to free. Errors (err says
 * which side refused what): GP_ETLS for a host certificate that does not
 * parse or cannot be a client certificate, GP_EINVAL for the user's files,
 * GP_ENOMEM. */
gp_err gp__serve_tls_setup(const gp_serve_config *cfg, const char *env_cert, gp__serve_tls *out,
                           char *err, size_t errlen);

/* When t->on: make the new server `srv` of wire `w` serve TLS (before any
 * listen). GP_EUNSUPPORTED when the wire has no TLS yet. */
gp_err gp__serve_tls_apply(const gp__serve_tls *t, const gp__wire *w, void *srv, char *err,
                           size_t errlen);

void gp__serve_tls_free(gp__serve_tls *t);

/* The AutoMTLS check of the host's certificate (PLUGIN_CLIENT_CERT, a
 * NUL-terminated PEM text from the peer): parse, fit for client use, valid
 * now. *host_pem gets it re-encoded (only that certificate, nothing else
 * from the text), malloc'd. Errors: GP_ETLS, GP_EINVAL, GP_ENOMEM, with
 * the offending text quoted. */
gp_err gp__serve_tls_host_cert(const char *pem, char **host_pem, char *err, size_t errlen);

#endif
