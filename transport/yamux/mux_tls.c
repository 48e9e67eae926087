/* A yamux session over TLS: the session takes the TLS stream's gp__stream. */
#include "transport/yamux/mux_tls.h"

gp_err gp__mux_session_new_tls(gp__tls *t, gp__mux_role role, const gp__mux_config *cfg,
                               gp__mux_session **out)
{
    *out = NULL;
    if (!t)
        return GP_EINVAL;
    return gp__mux_session_new_stream(gp__tls_stream(t), role, cfg, out);
}
