/* Host-side TLS: AutoMTLS certificates and field 6, or the user's TLS
 * material, handed to the wire that dials (spec §4.2, §4.3). */
#include "transport/host/client_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "transport/net/net.h"
#include "transport/tls/certfield.h"
#include "transport/tls/certgen.h"
#include "transport/tls/config.h"
#include "transport/tls/pem.h"
#include "transport/tls/stream.h"

struct gp__client_tls {
    bool auto_mtls;
    gp__tls_keypair own; /* AutoMTLS: ours, made before the launch */
    char *env_var;       /* "PLUGIN_CLIENT_CERT=<PEM>" */
    char *peer_pem;      /* AutoMTLS: the plugin's, from field 6 */
    bool have_user;
    gp__tls_material user; /* the user's gp_tls_config */
};

gp_err gp__client_tls_new(const gp_client_config *cfg, gp__client_tls **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    if (!cfg->auto_mtls && !cfg->tls)
        return GP_OK;
    if (cfg->auto_mtls && cfg->tls) {
        snprintf(err, errlen,
                 "auto_mtls and tls: expected one of them (AutoMTLS makes its own "
                 "certificates), got both");
        return GP_EINVAL;
    }
    if (cfg->auto_mtls && cfg->reattach) {
        snprintf(err, errlen,
                 "auto_mtls: a running plugin (reattach) cannot take part in the "
                 "certificate exchange; expected false with reattach (use tls)");
        return GP_EINVAL;
    }
    gp__client_tls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return GP_ENOMEM;
    }
    t->auto_mtls = cfg->auto_mtls;
    if (cfg->tls) {
        gp_err e = gp__tls_material_load(cfg->tls, &t->user, err, errlen);
        if (e != GP_OK) {
            free(t);
            return e;
        }
        t->have_user = true;
    }
    *out = t;
    return GP_OK;
}

void gp__client_tls_free(gp__client_tls *t)
{
    if (!t)
        return;
    gp__tls_keypair_free(&t->own);
    free(t->env_var);
    free(t->peer_pem);
    if (t->have_user)
        gp__tls_material_free(&t->user);
    free(t);
}

gp_err gp__client_tls_prepare(gp__client_tls *t, const char **env_var, char *err, size_t errlen)
{
    *env_var = NULL;
    if (!t || !t->auto_mtls)
        return GP_OK;
    if (!t->env_var) {
        gp_err e = gp__tls_certgen(NULL, &t->own, err, errlen);
        if (e != GP_OK)
            return e;
        size_t n = strlen("PLUGIN_CLIENT_CERT=") + strlen(t->own.cert_pem) + 1;
        t->env_var = malloc(n);
        if (!t->env_var) {
            snprintf(err, errlen, "out of memory");
            return GP_ENOMEM;
        }
        snprintf(t->env_var, n, "PLUGIN_CLIENT_CERT=%s", t->own.cert_pem);
    }
    *env_var = t->env_var;
    return GP_OK;
}

gp_err gp__client_tls_check_line(gp__client_tls *t, const gp__hs_line *hs, const gp_logger *lg,
                                 const char *log_name, char *err, size_t errlen)
{
    const char *f = hs->cert_b64;
    size_t flen = f ? strlen(f) : 0;
    bool present = gp__tls_certfield_present(f, flen);
    if (!t) {
        if (present) {
            snprintf(err, errlen,
                     "plugin handshake: the plugin offered a TLS certificate (field 6, %zu "
                     "bytes) but this host has no TLS configured (auto_mtls or tls); refusing "
                     "to talk to it in plain text",
                     flen);
            return GP_ETLS;
        }
        return GP_OK;
    }
    if (!t->auto_mtls) {
        if (present)
            gp_logf(lg, GP_LOG_WARN, log_name, NULL, 0,
                    "plugin sent an AutoMTLS certificate (handshake field 6) that this host "
                    "did not ask for; ignored, the host's TLS config decides");
        return GP_OK;
    }
    if (!present) {
        snprintf(err, errlen,
                 "AutoMTLS: expected the plugin's certificate in handshake field 6, got %s; "
                 "the plugin does not support AutoMTLS (PLUGIN_CLIENT_CERT was ignored)",
                 f ? "a field of 50 bytes or less" : "no field 6");
        return GP_ETLS;
    }
    unsigned char *der = NULL;
    size_t der_len = 0;
    char why[768];
    gp_err e = gp__tls_certfield_decode(f, flen, &der, &der_len, why, sizeof why);
    if (e == GP_OK)
        e = gp__tls_autocert_check(der, der_len, true, "the plugin's handshake certificate", why,
                                   sizeof why);
    char *pem = NULL;
    if (e == GP_OK)
        e = gp__tls_der_to_pem(der, der_len, &pem, why, sizeof why);
    free(der);
    if (e != GP_OK) {
        snprintf(err, errlen, "AutoMTLS: the host refuses the plugin's certificate: %s", why);
        return e;
    }
    free(t->peer_pem);
    t->peer_pem = pem;
    return GP_OK;
}

/* Our own TLS 1.2 handshake with the same material: mbedTLS names the
 * refusal ("the server refused the handshake with alert bad_certificate",
 * "peer certificate not trusted ... (the server's certificate, checked by
 * this client)"). "" when the handshake works or nothing answers. */
static void diagnose(const gp__wire_client_opts *o, const char *network, const char *address,
                     char *why, size_t cap)
{
    why[0] = 0;
    int fd = -1;
    char err[512];
    if (gp__net_dial(network, address, o->tls_timeout_ms, 0, &fd, err, sizeof err) != GP_OK)
        return;
    gp__tls_params p = {.role = GP_TLS_CLIENT,
                        .cert_pem = o->tls_cert_pem,
                        .key_pem = o->tls_key_pem,
                        .peer_ca_pem = o->tls_root_pem,
                        .server_name = o->tls_server_name,
                        .handshake_timeout_ms = o->tls_timeout_ms};
    gp__tls *tls = NULL;
    if (gp__tls_open(fd, &p, &tls, err, sizeof err) == GP_OK) {
        gp__tls_close(tls);
        return;
    }
    close(fd);
    snprintf(why, cap, "%s", err);
}

void gp__client_tls_wire_opts(const gp__client_tls *t, int timeout_ms, gp__wire_client_opts *o)
{
    if (t->auto_mtls) {
        o->tls_root_pem = t->peer_pem;
        o->tls_cert_pem = t->own.cert_pem;
        o->tls_key_pem = t->own.key_pem;
        o->tls_server_name = "localhost";
    } else {
        o->tls_root_pem = t->user.ca_pem;
        o->tls_cert_pem = t->user.cert_pem;
        o->tls_key_pem = t->user.key_pem;
        o->tls_server_name = t->user.server_name;
    }
    o->tls_timeout_ms = timeout_ms > 0 && timeout_ms < 10000 ? timeout_ms : 10000;
}

gp_err gp__client_tls_explain(const gp__wire_client_opts *o, const char *network,
                              const char *address, gp_err e, char *err, size_t errlen)
{
    if (e != GP_ETLS && e != GP_ECONNECT)
        return e;
    char why[600];
    diagnose(o, network, address, why, sizeof why);
    if (why[0]) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, "; a TLS handshake of our own says: %s", why);
        e = GP_ETLS;
    }
    return e;
}
