/* Internal: a yamux session over an mbedTLS stream (TLS under yamux, as
 * go-plugin's AutoMTLS does on the netrpc wire). */
#ifndef GP_NETRPC_MUX_TLS_H
#define GP_NETRPC_MUX_TLS_H

#include "transport/yamux/mux_session.h"
#include "transport/tls/stream.h"

/* As gp__mux_session_new over the open TLS stream t. Takes ownership of t
 * on success only (the session's free closes it). */
gp_err gp__mux_session_new_tls(gp__tls *t, gp__mux_role role, const gp__mux_config *cfg,
                               gp__mux_session **out);

#endif
