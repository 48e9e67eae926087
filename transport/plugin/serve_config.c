/* gp_serve's pure decisions: cookie, version set, wire and network. */
#include "transport/plugin/serve_config.h"

#include <stdio.h>
#include <string.h>

#include "transport/base/errf.h"
#include "transport/handshake/handshake.h"

static void errf(char *err, size_t errlen, const char *msg)
{
    gp__errf(err, errlen, "%s", msg);
}

gp_err gp__serve_check_cookie(const gp_handshake_config *hs, const char *env_value, char *err,
                              size_t errlen)
{
    errf(err, errlen, "");
    if (!hs || !hs->magic_cookie_key || !*hs->magic_cookie_key || !hs->magic_cookie_value ||
        !*hs->magic_cookie_value) {
        errf(err, errlen,
             "This plugin is misconfigured: its magic cookie key or value is empty.\n"
             "That is a bug in the plugin; please tell the plugin's author.\n");
        return GP_EINVAL;
    }
    if (!env_value || strcmp(env_value, hs->magic_cookie_value) != 0) {
        /* Not a security check: it only tells a person who ran the binary
         * by hand what it is. */
        errf(err, errlen,
             "This program is a plugin: it is not meant to be run directly.\n"
             "Run the application that uses it instead; that application starts\n"
             "its plugins by itself.\n");
        return GP_ESTATE;
    }
    return GP_OK;
}

gp_err gp__serve_choose(const gp_serve_config *cfg, const char *env_versions, gp__serve_choice *out,
                        char *warn, size_t warnlen, char *err, size_t errlen)
{
    errf(err, errlen, "");
    errf(warn, warnlen, "");
    if (!cfg || !out) {
        errf(err, errlen, "gp_serve: no config");
        return GP_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if ((!cfg->services && cfg->nservices) || (!cfg->versions && cfg->nversions)) {
        errf(err, errlen, "gp_serve: services or versions is NULL with a non-zero count");
        return GP_EINVAL;
    }
    if (cfg->nversions >= GP_HS_MAX_VERSIONS) {
        errf(err, errlen, "gp_serve: too many plugin versions (at most 63)");
        return GP_EINVAL;
    }
    bool have_main = cfg->services != NULL;
    unsigned ours[GP_HS_MAX_VERSIONS];
    size_t nours = 0;
    if (have_main)
        ours[nours++] = cfg->handshake.protocol_version;
    for (size_t i = 0; i < cfg->nversions; i++) {
        const gp_plugin_set *s = &cfg->versions[i];
        if (!s->services && s->nservices) {
            errf(err, errlen, "gp_serve: a plugin set has NULL services with a non-zero count");
            return GP_EINVAL;
        }
        ours[nours++] = s->version;
    }
    if (nours == 0) {
        errf(err, errlen,
             "gp_serve: nothing to serve (set services, or versions with plugin sets)");
        return GP_EINVAL;
    }

    unsigned theirs[GP_HS_MAX_VERSIONS];
    size_t ntheirs = 0;
    gp__hs_parse_versions(env_versions, theirs, GP_HS_MAX_VERSIONS, &ntheirs, warn, warnlen);
    out->version = gp__hs_negotiate(theirs, ntheirs, ours, nours, &out->common);

    /* handshake.protocol_version's set wins over a versions[] entry with the
     * same number; otherwise the first entry with that number. */
    if (have_main && out->version == cfg->handshake.protocol_version) {
        out->services = cfg->services;
        out->nservices = cfg->nservices;
        return GP_OK;
    }
    for (size_t i = 0; i < cfg->nversions; i++) {
        if (cfg->versions[i].version == out->version) {
            out->services = cfg->versions[i].services;
            out->nservices = cfg->versions[i].nservices;
            return GP_OK;
        }
    }
    errf(err, errlen, "gp_serve: internal error choosing a plugin set");
    return GP_EINVAL;
}

gp_err gp__serve_transport(const gp_serve_config *cfg, gp_protocol *protocol, const char **network,
                           char *err, size_t errlen)
{
    errf(err, errlen, "");
    gp_protocol p = cfg->protocol == GP_PROTO_NONE ? GP_PROTO_GRPC : cfg->protocol;
    if (p != GP_PROTO_GRPC && p != GP_PROTO_NETRPC) {
        if (err && errlen)
            snprintf(err, errlen, "gp_serve: unknown protocol %d (expected grpc or netrpc)",
                     (int)cfg->protocol);
        return GP_EINVAL;
    }
    const char *n = cfg->network;
    if (!n || !*n || strcmp(n, "unix") == 0) {
        *network = "unix";
    } else if (strcmp(n, "tcp") == 0) {
        *network = "tcp";
    } else {
        if (err && errlen)
            snprintf(err, errlen, "gp_serve: unknown network \"%.40s\" (expected unix or tcp)", n);
        return GP_EINVAL;
    }
    const gp_limits *l = &cfg->limits;
    if (l->max_streams < 0 || l->max_pending_streams < 0 || l->max_broker_conns < 0 ||
        l->max_pending_ids < 0 || l->broker_wait_ms < 0 || l->max_connections < 0) {
        if (err && errlen)
            snprintf(err, errlen, "gp_serve: limits: expected fields >= 0 (0 = default)");
        return GP_EINVAL;
    }
    *protocol = p;
    return GP_OK;
}
