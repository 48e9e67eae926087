/* The gp_mux_io of a TLS stream: gp__tls_* take the same shape. */
#include "transport/wire/netrpc/yamux/mux_tls.h"

static gp_err tls_read(void *ctx, void *buf, size_t cap, int timeout_ms, size_t *n, char *why,
                       size_t whylen)
{
    return gp__tls_read(ctx, buf, cap, timeout_ms, n, why, whylen);
}

static gp_err tls_write(void *ctx, const void *buf, size_t len, int timeout_ms, char *why,
                        size_t whylen)
{
    return gp__tls_write(ctx, buf, len, timeout_ms, why, whylen);
}

static void tls_shutdown(void *ctx)
{
    gp__tls_shutdown(ctx);
}

static void tls_close(void *ctx)
{
    gp__tls_close(ctx);
}

gp_err gp__mux_session_new_tls(gp__tls *t, gp_mux_role role, const gp_mux_config *cfg,
                               gp_mux_session **out)
{
    gp_mux_io io = {.ctx = t, .read = tls_read, .write = tls_write, .shutdown = tls_shutdown,
                    .close = tls_close};
    return gp__mux_session_new_io(&io, role, cfg, out);
}
