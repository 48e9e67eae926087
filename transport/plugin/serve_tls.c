/* gp_serve's TLS: the user's material, or AutoMTLS from PLUGIN_CLIENT_CERT. */
#include "transport/plugin/serve_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/base/strbuf.h"
#include "transport/tls/certfield.h"
#include "transport/tls/pem.h"

gp_err gp__serve_tls_host_cert(const char *pem, char **host_pem, char *err, size_t errlen)
{
    *host_pem = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    char why[768];
    gp_err e = gp__tls_pem_to_der(pem, &der, &der_len, why, sizeof why);
    if (e != GP_OK) {
        gp__strbuf q;
        gp__strbuf_init(&q);
        gp__strbuf_quote(&q, pem, strlen(pem), 60);
        snprintf(err, errlen,
                 "AutoMTLS: the plugin refuses the host's certificate: PLUGIN_CLIENT_CERT is "
                 "not a PEM certificate (%s); got %s",
                 why, q.ok ? q.data : "?");
        gp__strbuf_free(&q);
        return e;
    }
    e = gp__tls_autocert_check(der, der_len, false, "the host's PLUGIN_CLIENT_CERT", why,
                               sizeof why);
    if (e == GP_OK)
        e = gp__tls_der_to_pem(der, der_len, host_pem, why, sizeof why);
    free(der);
    if (e != GP_OK)
        snprintf(err, errlen, "AutoMTLS: the plugin refuses the host's certificate: %s", why);
    return e;
}

static gp_err auto_mtls(gp__serve_tls *t, const char *env_cert, char *err, size_t errlen)
{
    char why[768];
    gp_err e = gp__serve_tls_host_cert(env_cert, &t->host_pem, err, errlen);
    if (e != GP_OK)
        return e;
    if ((e = gp__tls_certgen(NULL, &t->own, why, sizeof why)) != GP_OK ||
        (e = gp__tls_certfield_encode(t->own.cert_der, t->own.cert_der_len, &t->cert_b64, why,
                                      sizeof why)) != GP_OK) {
        snprintf(err, errlen, "AutoMTLS: cannot make the plugin's certificate: %s", why);
        return e;
    }
    t->root_pem = t->host_pem;
    t->cert_pem = t->own.cert_pem;
    t->key_pem = t->own.key_pem;
    return GP_OK;
}

gp_err gp__serve_tls_setup(const gp_serve_config *cfg, const char *env_cert, gp__serve_tls *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    bool want_auto = env_cert && *env_cert;
    if (!cfg->tls && !want_auto)
        return GP_OK;
    gp_err e;
    if (cfg->tls) {
        /* As go-plugin: a TLSProvider wins over AutoMTLS. */
        e = gp__tls_material_load(cfg->tls, &out->user, err, errlen);
        if (e != GP_OK)
            return e;
        out->have_user = true;
        out->root_pem = out->user.ca_pem;
        out->cert_pem = out->user.cert_pem;
        out->key_pem = out->user.key_pem;
    } else {
        e = auto_mtls(out, env_cert, err, errlen);
        if (e != GP_OK) {
            gp__serve_tls_free(out);
            return e;
        }
    }
    out->on = true;
    return GP_OK;
}

gp_err gp__serve_tls_apply(const gp__serve_tls *t, const gp__wire *w, void *srv, char *err,
                           size_t errlen)
{
    if (!t->on)
        return GP_OK;
    const char *what = t->have_user ? "TLS (the plugin's tls config)"
                                    : "AutoMTLS (the host sent PLUGIN_CLIENT_CERT)";
    if (!w->server_use_tls) {
        snprintf(err, errlen, "%s over %s is not built into this plugin yet", what,
                 gp_protocol_name(w->protocol));
        return GP_EUNSUPPORTED;
    }
    char why[512];
    gp_err e = w->server_use_tls(srv, t->root_pem, t->cert_pem, t->key_pem, why, sizeof why);
    if (e != GP_OK)
        snprintf(err, errlen, "%s: %s", what, why);
    return e;
}

void gp__serve_tls_free(gp__serve_tls *t)
{
    if (!t)
        return;
    free(t->cert_b64);
    gp__tls_keypair_free(&t->own);
    free(t->host_pem);
    if (t->have_user)
        gp__tls_material_free(&t->user);
    memset(t, 0, sizeof *t);
}
