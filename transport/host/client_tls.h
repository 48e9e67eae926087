/* Internal to the client files: TLS on the host side — AutoMTLS (spec §4:
 * our certificate in PLUGIN_CLIENT_CERT, the plugin's from handshake field
 * 6 as the only trusted root) or the user's gp_tls_config — and the gRPC
 * dial with it. client.c calls these from small hooks. */
#ifndef GP_TRANSPORT_CLIENT_TLS_H
#define GP_TRANSPORT_CLIENT_TLS_H

#include <goplugin/client.h>
#include <goplugin/log.h>

#include <stddef.h>

#include "transport/wire/grpc/grpc.h"
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
gp_err gp__client_tls_prepare(gp__client_tls *t, const char **env_var, char *err,
                              size_t errlen);

/* After the plugin's handshake line: field 6 against what this host asked
 * for. AutoMTLS: the certificate must be there, decode, and be usable as
 * the plugin's server certificate; it becomes the only trusted root. No
 * TLS (t NULL): a certificate is refused (go-plugin's host panics here).
 * The user's TLS: field 6 is ignored. Either wire (gRPC, netrpc).
 * Errors: GP_ETLS, GP_EPROTO, GP_ENOMEM. */
gp_err gp__client_tls_check_line(gp__client_tls *t, const gp_hs_line *hs, const gp_logger *lg,
                                 const char *log_name, char *err, size_t errlen);

/* The gRPC dial with TLS (gp__grpc_conn_dial_tls) and its health check.
 * When it fails, a TLS handshake of our own (mbedTLS, same certificates)
 * finds out which side refused what, since gRPC core often logs no reason
 * (a refused client certificate under TLS 1.3 is just a closed channel).
 * Errors: GP_ETLS, GP_ECONNECT, GP_ETIMEDOUT, GP_ENOMEM. */
/* For the netrpc wire (TLS under yamux on the socket the client dialled):
 * the same material as the gRPC dial into o's tls_* fields (borrowed from
 * t), and the handshake timeout from the start timeout (at most 10 s). */
void gp__client_tls_wire_opts(const gp__client_tls *t, int timeout_ms, gp__wire_client_opts *o);

gp_err gp__client_tls_dial(gp__client_tls *t, const char *network, const char *address,
                           int timeout_ms, const gp__grpc_client_opts *o, gp_conn **out,
                           char *err, size_t errlen);

#endif
