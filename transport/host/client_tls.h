/* Internal to the client files: TLS on the host side — AutoMTLS (spec §4:
 * our certificate in PLUGIN_CLIENT_CERT, the plugin's from handshake field
 * 6 as the only trusted root) or the user's gp_tls_config — handed to
 * whichever wire dials. client.c calls these from small hooks. */
#ifndef GP_TRANSPORT_CLIENT_TLS_H
#define GP_TRANSPORT_CLIENT_TLS_H

#include <goplugin/client.h>
#include <goplugin/log.h>

#include <stddef.h>

#include "transport/handshake/handshake.h"
#include "transport/core/wire.h"

typedef struct gp__client_tls gp__client_tls;

/* From cfg->auto_mtls / cfg->tls: *out = NULL when neither is set. Loads
 * and checks the user's TLS files now. Errors: GP_EINVAL (the message
 * names the field), GP_ENOMEM. Free with gp__client_tls_free. */
gp_err gp__client_tls_new(const gp_client_config *cfg, gp__client_tls **out, char *err,
                          size_t errlen);
void gp__client_tls_free(gp__client_tls *t);

/* Before the launch. AutoMTLS: make the host's certificate; *env_var =
 * "PLUGIN_CLIENT_CERT=<PEM>" (owned by t). Else *env_var = NULL. t may be
 * NULL. Errors: GP_ETLS, GP_ENOMEM. */
gp_err gp__client_tls_prepare(gp__client_tls *t, const char **env_var, char *err, size_t errlen);

/* After the plugin's handshake line: field 6 against what this host asked
 * for. AutoMTLS: the certificate must be there, decode, and be usable as
 * the plugin's server certificate; it becomes the only trusted root. No
 * TLS (t NULL): a certificate is refused (go-plugin's host panics here).
 * The user's TLS: field 6 is ignored. Either wire (gRPC, netrpc).
 * Errors: GP_ETLS, GP_EPROTO, GP_ENOMEM. */
gp_err gp__client_tls_check_line(gp__client_tls *t, const gp__hs_line *hs, const gp_logger *lg,
                                 const char *log_name, char *err, size_t errlen);

/* The TLS material (borrowed from t) into o's tls_* fields for the wire's
 * dial, and the connect + handshake timeout from the start timeout (at
 * most 10 s). */
void gp__client_tls_wire_opts(const gp__client_tls *t, int timeout_ms, gp__wire_client_opts *o);

/* After a wire whose TLS errors carry no reason failed to connect with e
 * (GP_ETLS or GP_ECONNECT): a TLS handshake of our own (mbedTLS, the same
 * material) finds out which side refused what, appended to err. Returns
 * the code to report (GP_ETLS when our handshake found a reason). */
gp_err gp__client_tls_explain(const gp__wire_client_opts *o, const char *network,
                              const char *address, gp_err e, char *err, size_t errlen);

#endif
