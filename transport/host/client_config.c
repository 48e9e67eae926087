/* gp_client_new: check the config (naming the bad field), copy it; and the
 * matching destroy. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/base/errf.h"
#include "transport/host/client_internal.h"
#include "transport/host/client_tls.h"

#define DEFAULT_START_TIMEOUT_MS 60000
#define DEFAULT_KILL_GRACE_MS 2000
#define DEFAULT_MIN_PORT 10000
#define DEFAULT_MAX_PORT 25000

/* A config error: logged, and its words into st (gp_client_new has no
 * client to keep them on). */
static gp_err bad(const gp_logger *lg, gp_status *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static gp_err bad(const gp_logger *lg, gp_status *st, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gp_logf(lg, GP_LOG_ERROR, "goplugin", NULL, 0, "invalid client config: %s", msg);
    return gp__status_setf(st, GP_EINVAL, "%s", msg);
}

static const char *nz(const char *s)
{
    return s ? s : "(null)";
}

static gp_err validate(const gp_client_config *cfg, gp_status *st)
{
    const gp_logger *lg = &cfg->logger;
    if ((unsigned)cfg->logger.level > GP_LOG_OFF)
        return bad(lg, st, "logger.level: expected GP_LOG_DEFAULT..GP_LOG_OFF, got %d",
                   (int)cfg->logger.level);
    bool have_cmd = cfg->argv && cfg->argv[0];
    if (have_cmd && cfg->reattach)
        return bad(lg, st, "argv and reattach: expected one of them, got both");
    if (!have_cmd && !cfg->reattach)
        return bad(lg, st,
                   "argv: expected a plugin command (argv[0]) or a reattach config, got "
                   "neither");
    if (cfg->reattach && cfg->grpc_broker_multiplex) /* go-plugin's words */
        return bad(lg, st, "gRPC broker multiplexing is not supported with Reattach config");
    if (cfg->reattach && (cfg->stdout_file || cfg->stderr_file))
        return bad(lg, st,
                   "stdout_file, stderr_file: a running plugin (reattach) keeps the output it "
                   "has; expected NULL with reattach");
    if ((cfg->stdout_file && !cfg->stdout_file[0]) || (cfg->stderr_file && !cfg->stderr_file[0]))
        return bad(lg, st, "stdout_file, stderr_file: expected a path or NULL, got \"\"");
    if (cfg->stdout_file && cfg->stderr_file && strcmp(cfg->stdout_file, cfg->stderr_file) == 0)
        return bad(lg, st,
                   "stdout_file and stderr_file: expected two files (the handshake line is "
                   "read from stdout's), got %s for both",
                   cfg->stdout_file);
    if (cfg->reattach && cfg->sha256)
        return bad(lg, st,
                   "sha256: a running plugin (reattach) cannot be checksummed; expected "
                   "NULL with reattach");
    if (cfg->allowed_protocols & ~(unsigned)(GP_PROTO_NETRPC | GP_PROTO_GRPC))
        return bad(lg, st,
                   "allowed_protocols: expected GP_PROTO_NETRPC|GP_PROTO_GRPC bits, got %#x",
                   cfg->allowed_protocols);
    if (cfg->start_timeout_ms < 0)
        return bad(lg, st, "start_timeout_ms: expected >= 0, got %d", cfg->start_timeout_ms);
    if (cfg->kill_grace_ms < 0)
        return bad(lg, st, "kill_grace_ms: expected >= 0, got %d", cfg->kill_grace_ms);
    if (cfg->call_timeout_ms < 0)
        return bad(lg, st, "call_timeout_ms: expected >= 0, got %d", cfg->call_timeout_ms);
    if (cfg->max_message_bytes > INT_MAX)
        return bad(lg, st, "max_message_bytes: expected at most %d, got %zu", INT_MAX,
                   cfg->max_message_bytes);
    if (cfg->max_port > 65535 || cfg->min_port > 65535)
        return bad(lg, st, "min_port/max_port: expected ports up to 65535, got %u..%u",
                   cfg->min_port, cfg->max_port);
    if (cfg->min_port > cfg->max_port)
        return bad(lg, st, "min_port/max_port: expected min <= max, got %u > %u", cfg->min_port,
                   cfg->max_port);
    if (cfg->nversions && !cfg->versions)
        return bad(lg, st, "versions: NULL with nversions = %zu", cfg->nversions);
    if (cfg->nversions >= GP_HS_MAX_VERSIONS)
        return bad(lg, st, "nversions: expected fewer than %d, got %zu", GP_HS_MAX_VERSIONS,
                   cfg->nversions);
    if (cfg->reattach) {
        const gp_reattach_config *r = cfg->reattach;
        if (!r->network || (strcmp(r->network, "unix") != 0 && strcmp(r->network, "tcp") != 0))
            return bad(lg, st, "reattach->network: expected \"unix\" or \"tcp\", got \"%s\"",
                       nz(r->network));
        if (!r->address || !r->address[0] || strlen(r->address) >= GP_HS_ADDR_MAX)
            return bad(lg, st,
                       "reattach->address: expected a non-empty address shorter than %d "
                       "bytes, got \"%s\"",
                       GP_HS_ADDR_MAX, nz(r->address));
        if (r->protocol != GP_PROTO_NONE && r->protocol != GP_PROTO_NETRPC &&
            r->protocol != GP_PROTO_GRPC)
            return bad(lg, st, "reattach->protocol: expected NONE, NETRPC or GRPC, got %d",
                       (int)r->protocol);
        if (r->pid < 0)
            return bad(lg, st, "reattach->pid: expected >= 0, got %d", (int)r->pid);
        return GP_OK;
    }
    if (!cfg->argv[0][0])
        return bad(lg, st, "argv[0]: expected the plugin path, got \"\"");
    for (size_t i = 0; cfg->env && cfg->env[i]; i++) {
        const char *eq = strchr(cfg->env[i], '=');
        if (!eq || eq == cfg->env[i])
            return bad(lg, st, "env[%zu]: expected KEY=VALUE, got \"%s\"", i, cfg->env[i]);
    }
    const gp_handshake_config *h = &cfg->handshake;
    if (!h->magic_cookie_key || !h->magic_cookie_key[0] || strchr(h->magic_cookie_key, '='))
        return bad(lg, st,
                   "handshake.magic_cookie_key: expected a non-empty name without '=', got "
                   "\"%s\"",
                   nz(h->magic_cookie_key));
    if (!h->magic_cookie_value || !h->magic_cookie_value[0])
        return bad(lg, st,
                   "handshake.magic_cookie_value: expected a non-empty value (plugins refuse "
                   "an empty cookie), got \"%s\"",
                   nz(h->magic_cookie_value));
    if (h->protocol_version == 0 && cfg->nversions == 0)
        return bad(lg, st,
                   "handshake.protocol_version: expected an app protocol version (or "
                   "versions), got none");
    return GP_OK;
}

static char **copy_strv(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            for (size_t j = 0; j < i; j++)
                free(out[j]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static bool dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return true;
    *out = strdup(s);
    return *out != NULL;
}

gp_err gp_client_new(const gp_client_config *cfg, gp_client **out, gp_status *st)
{
    gp__status_clear(st);
    if (!out)
        return bad(NULL, st, "out: expected a place for the client, got NULL");
    *out = NULL;
    if (!cfg)
        return bad(NULL, st, "cfg: expected a config, got NULL");
    gp_err rc = validate(cfg, st);
    if (rc)
        return rc;
    struct gp__client_tls *tls = NULL;
    char err[1024] = "";
    rc = gp__client_tls_new(cfg, &tls, err, sizeof err);
    if (rc) {
        gp_logf(&cfg->logger, GP_LOG_ERROR, "goplugin", NULL, 0, "invalid client config: %s", err);
        return gp__status_setf(st, rc, "%s", err);
    }
    gp_client *c = calloc(1, sizeof *c);
    if (!c) {
        gp__client_tls_free(tls);
        return gp__status_setf(st, GP_ENOMEM, "out of memory");
    }
    c->tls = tls;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->conn_mu, NULL);
    pthread_mutex_init(&c->kill_mu, NULL);
    c->ra_pidfd = -1;
    c->pid = -1;
    c->skip_host_env = cfg->skip_host_env;
    c->allowed = cfg->allowed_protocols ? cfg->allowed_protocols : GP_PROTO_NETRPC;
    c->start_timeout_ms = cfg->start_timeout_ms ? cfg->start_timeout_ms : DEFAULT_START_TIMEOUT_MS;
    c->kill_grace_ms = cfg->kill_grace_ms ? cfg->kill_grace_ms : DEFAULT_KILL_GRACE_MS;
    c->call_timeout_ms = cfg->call_timeout_ms;
    c->max_message_bytes = cfg->max_message_bytes;
    c->logger = cfg->logger;
    c->managed = cfg->managed;
    c->detached = cfg->detached;
    c->mux_requested = cfg->grpc_broker_multiplex;
    c->stdout_sink = cfg->stdout_sink;
    c->stderr_sink = cfg->stderr_sink;
    c->stdio_ctx = cfg->stdio_ctx;
    if (cfg->sha256) {
        c->has_sha = true;
        memcpy(c->sha256, cfg->sha256, 32);
    }
    if (cfg->min_port == 0 && cfg->max_port == 0) {
        c->min_port = DEFAULT_MIN_PORT;
        c->max_port = DEFAULT_MAX_PORT;
    } else {
        c->min_port = cfg->min_port;
        c->max_port = cfg->max_port;
    }
    bool ok = true;
    /* The accepted app versions: handshake.protocol_version plus versions,
     * each once. */
    c->versions = calloc(cfg->nversions + 1, sizeof *c->versions);
    ok = ok && c->versions;
    if (ok && cfg->handshake.protocol_version)
        c->versions[c->nversions++] = cfg->handshake.protocol_version;
    for (size_t i = 0; ok && i < cfg->nversions; i++) {
        bool seen = false;
        for (size_t j = 0; j < c->nversions; j++)
            seen = seen || c->versions[j] == cfg->versions[i];
        if (!seen)
            c->versions[c->nversions++] = cfg->versions[i];
    }
    if (cfg->reattach) {
        c->reattach = true;
        c->ra = *cfg->reattach;
        ok = ok && dup_opt(cfg->reattach->network, &c->ra_network) &&
             dup_opt(cfg->reattach->address, &c->ra_address);
        c->ra.network = c->ra_network;
        c->ra.address = c->ra_address;
        ok = ok && (c->log_name = strdup("plugin"));
    } else {
        ok = ok && (c->argv = copy_strv(cfg->argv));
        ok = ok && (!cfg->env || (c->env = copy_strv(cfg->env)));
        ok = ok && dup_opt(cfg->handshake.magic_cookie_key, &c->cookie_key) &&
             dup_opt(cfg->handshake.magic_cookie_value, &c->cookie_value);
        if (ok) {
            const char *slash = strrchr(c->argv[0], '/');
            ok = (c->log_name = strdup(slash ? slash + 1 : c->argv[0])) != NULL;
        }
    }
    ok = ok && dup_opt(cfg->unix_socket_dir, &c->unix_dir) &&
         dup_opt(cfg->unix_socket_group, &c->unix_group) &&
         dup_opt(cfg->stdout_file, &c->stdout_file) && dup_opt(cfg->stderr_file, &c->stderr_file);
    if (!ok) {
        gp__client_destroy(c);
        return gp__status_setf(st, GP_ENOMEM, "out of memory");
    }
    if (c->managed)
        gp__client_registry_add(c);
    *out = c;
    return GP_OK;
}

void gp__client_destroy(gp_client *c)
{
    gp__client_tls_free(c->tls);
    gp__proc_free(c->proc);
    if (c->ra_pidfd >= 0)
        close(c->ra_pidfd);
    free_strv(c->argv);
    free_strv(c->env);
    free(c->cookie_key);
    free(c->cookie_value);
    free(c->versions);
    free(c->unix_dir);
    free(c->unix_group);
    free(c->stdout_file);
    free(c->stderr_file);
    free(c->ra_network);
    free(c->ra_address);
    free(c->log_name);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->conn_mu);
    pthread_mutex_destroy(&c->kill_mu);
    free(c);
}
