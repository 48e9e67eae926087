/* A gp_client_config from a record: how the manager and any host start a
 * stored plugin the same way (the digest as SecureConfig, every time). */
#include "transport/store/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/base/errf.h"

struct gp_store_launch {
    gp_client_config cfg;
    char **argv;
    char **env;
    unsigned *versions;
    char *group;
    char *cookie_key, *cookie_value;
    uint8_t sha256[32];
};

void gp_store_launch_free(gp_store_launch *l)
{
    if (!l)
        return;
    gp__store_strv_free(l->argv);
    gp__store_strv_free(l->env);
    free(l->versions);
    free(l->group);
    free(l->cookie_key);
    free(l->cookie_value);
    free(l);
}

const gp_client_config *gp_store_launch_config(const gp_store_launch *l)
{
    return &l->cfg;
}

static int unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "NAME=value" for each granted env:NAME the host has. */
static gp_err build_env(gp_store_launch *l, const gp_store_record *r)
{
    size_t n = gp__store_strv_len((const char *const *)r->env);
    size_t g = gp__store_strv_len((const char *const *)r->granted);
    l->env = calloc(n + g + 1, sizeof *l->env);
    if (!l->env)
        return GP_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!(l->env[k++] = strdup(r->env[i])))
            return GP_ENOMEM;
    for (size_t i = 0; i < g; i++) {
        const char *p = r->granted[i];
        if (strncmp(p, "env:", 4) != 0)
            continue;
        const char *v = getenv(p + 4);
        if (!v)
            continue;
        size_t len = strlen(p + 4) + strlen(v) + 2;
        if (!(l->env[k] = malloc(len)))
            return GP_ENOMEM;
        snprintf(l->env[k++], len, "%s=%s", p + 4, v);
    }
    return GP_OK;
}

gp_err gp_store_launch_new(gp_store *s, const gp_store_record *r, gp_store_launch **out,
                           gp_status *st)
{
    gp__status_clear(st);
    *out = NULL;
    if (!r || !gp__store_hex64_valid(r->digest) || r->nversions == 0)
        return gp__status_setf(st, GP_EINVAL, "launch: not a complete record");
    gp_store_launch *l = calloc(1, sizeof *l);
    if (!l)
        return gp__status_setf(st, GP_ENOMEM, "launch: out of memory");
    size_t nargs = gp__store_strv_len((const char *const *)r->args);
    char blob[GP__STORE_PATH_CAP];
    gp_err rc = gp_store_blob_path(s, r->digest, blob, sizeof blob) ? GP_OK : GP_EINVAL;
    if (rc == GP_OK && !(l->argv = calloc(nargs + 2, sizeof *l->argv)))
        rc = GP_ENOMEM;
    if (rc == GP_OK && !(l->argv[0] = strdup(blob)))
        rc = GP_ENOMEM;
    for (size_t i = 0; rc == GP_OK && i < nargs; i++)
        if (!(l->argv[i + 1] = strdup(r->args[i])))
            rc = GP_ENOMEM;
    if (rc == GP_OK)
        rc = build_env(l, r);
    if (rc == GP_OK &&
        (!(l->cookie_key = strdup(r->cookie_key)) || !(l->cookie_value = strdup(r->cookie_value))))
        rc = GP_ENOMEM;
    if (rc == GP_OK && !(l->versions = malloc(r->nversions * sizeof *l->versions)))
        rc = GP_ENOMEM;
    for (size_t i = 0; rc == GP_OK && r->granted[i]; i++) {
        const char *p = r->granted[i];
        if (strncmp(p, "unix-socket-group:", 18) == 0 && !l->group && !(l->group = strdup(p + 18)))
            rc = GP_ENOMEM;
    }
    if (rc != GP_OK) {
        gp_store_launch_free(l);
        return gp__status_setf(st, rc, "launch %s: %s", r->name,
                               rc == GP_ENOMEM ? "out of memory" : "the store's path is too long");
    }
    for (int i = 0; i < 32; i++)
        l->sha256[i] = (uint8_t)(unhex(r->digest[2 * i]) << 4 | unhex(r->digest[2 * i + 1]));
    memcpy(l->versions, r->versions, r->nversions * sizeof *l->versions);
    gp_client_config *c = &l->cfg;
    c->argv = (const char *const *)l->argv;
    c->env = (const char *const *)l->env;
    c->skip_host_env = true;
    c->handshake.protocol_version = l->versions[0];
    c->handshake.magic_cookie_key = l->cookie_key;
    c->handshake.magic_cookie_value = l->cookie_value;
    c->versions = r->nversions > 1 ? l->versions + 1 : NULL;
    c->nversions = r->nversions - 1;
    c->allowed_protocols = r->protocols;
    c->sha256 = l->sha256;
    c->unix_socket_group = l->group;
    *out = l;
    return GP_OK;
}
