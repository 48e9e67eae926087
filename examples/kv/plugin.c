/* kv-plugin: an in-memory key/value store served as a go-plugin plugin.
 *
 * Environment: KV_PLUGIN_PROTO = grpc (default) | netrpc;
 * KV_PLUGIN_LOG_LEVEL = trace|debug|info|warn|error (default info; every
 * put and get is logged at debug); KV_PLUGIN_PRINT=1: every put also
 * printf()s "kv-plugin: put KEY" and writes "kv-plugin: stderr put KEY" to
 * stderr (on grpc both reach the host over GRPCStdio: go-plugin's
 * SyncStdout/SyncStderr, gp_client_config.stdout_sink/stderr_sink). */
#include <goplugin/goplugin.h>

#include <pthread.h>
#include <stdio.h>
#ifdef KV_PLUGIN_STATIC
#include <nss.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "examples/kv/kv.h"

typedef struct entry {
    struct entry *next;
    char *key;
    uint8_t *val;
    size_t len;
} entry;

#define NBUCKETS 1024

typedef struct store {
    pthread_mutex_t mu;
    entry *buckets[NBUCKETS];
    gp_logger log;
} store;

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h % NBUCKETS;
}

static entry **find(store *st, const char *key)
{
    entry **p = &st->buckets[hash(key)];
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

static gp_err kv_get(void *impl, const proto_GetRequest *in, proto_GetResponse *out,
                     gp_status *status)
{
    (void)status;
    store *st = impl;
    const char *key = in->key ? in->key : "";
    gp_err err = GP_OK;

    pthread_mutex_lock(&st->mu);
    entry *e = *find(st, key);
    if (e && e->len) {
        out->value.data = malloc(e->len);
        if (out->value.data) {
            memcpy(out->value.data, e->val, e->len);
            out->value.len = e->len;
        } else {
            err = GP_ENOMEM;
        }
    }
    pthread_mutex_unlock(&st->mu);
    /* A key never put reads as an empty value, as in go-plugin's example. */
    gp_logf(&st->log, GP_LOG_DEBUG, "kv", (gp_log_kv[]){{"key", key}}, 1, "get (%zu bytes)",
            out->value.len);
    return err;
}

static gp_err kv_put(void *impl, const proto_PutRequest *in, proto_Empty *out, gp_status *status)
{
    (void)out;
    store *st = impl;
    const char *key = in->key ? in->key : "";
    /* After the handshake: over grpc both reach the host (GRPCStdio). */
    if (getenv("KV_PLUGIN_PRINT")) {
        printf("kv-plugin: put %s\n", key);
        fflush(stdout);
        fprintf(stderr, "kv-plugin: stderr put %s\n", key);
    }

    uint8_t *val = NULL;
    if (in->value.len) {
        val = malloc(in->value.len);
        if (!val) {
            snprintf(status->msg, sizeof status->msg, "out of memory storing %zu bytes",
                     in->value.len);
            return GP_ENOMEM;
        }
        memcpy(val, in->value.data, in->value.len);
    }

    pthread_mutex_lock(&st->mu);
    entry **p = find(st, key);
    entry *e = *p;
    if (!e) {
        e = calloc(1, sizeof *e);
        char *k = strdup(key);
        if (!e || !k) {
            pthread_mutex_unlock(&st->mu);
            free(e);
            free(k);
            free(val);
            snprintf(status->msg, sizeof status->msg, "out of memory storing key");
            return GP_ENOMEM;
        }
        e->key = k;
        *p = e;
    }
    free(e->val);
    e->val = val;
    e->len = in->value.len;
    pthread_mutex_unlock(&st->mu);
    gp_logf(&st->log, GP_LOG_DEBUG, "kv", (gp_log_kv[]){{"key", key}}, 1, "put (%zu bytes)",
            in->value.len);
    return GP_OK;
}

static void store_free(store *st)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        entry *e = st->buckets[i];
        while (e) {
            entry *next = e->next;
            free(e->key);
            free(e->val);
            free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&st->mu);
}

static gp_log_level parse_level(const char *s)
{
    static const char *const names[] = {"trace", "debug", "info", "warn", "error"};
    for (int i = 0; s && i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return (gp_log_level)(GP_LOG_TRACE + i);
    return GP_LOG_INFO;
}

int main(void)
{
#ifdef KV_PLUGIN_STATIC
    /* Linked static (BUILD): glibc cannot load an NSS module here, and
     * trying one (nsswitch.conf's "group: files systemd", for a group
     * /etc/group lacks) crashes. A PLUGIN_UNIX_SOCKET_GROUP name is looked
     * up in /etc/group alone. Only then: NSS's set-up costs start time. */
    const char *group = getenv("PLUGIN_UNIX_SOCKET_GROUP");
    if (group && *group && (*group < '0' || *group > '9'))
        __nss_configure_lookup("group", "files");
#endif
    const char *proto_env = getenv("KV_PLUGIN_PROTO");
    gp_protocol proto = GP_PROTO_GRPC;
    if (proto_env && *proto_env) {
        proto = gp_protocol_parse(proto_env);
        if (proto == GP_PROTO_NONE) {
            fprintf(stderr, "kv-plugin: unknown KV_PLUGIN_PROTO \"%s\" (expected grpc or netrpc)\n",
                    proto_env);
            return 1;
        }
    }

    static store st = {.mu = PTHREAD_MUTEX_INITIALIZER};
    st.log =
        (gp_logger){.fn = gp_log_json_stderr, .level = parse_level(getenv("KV_PLUGIN_LOG_LEVEL"))};

    /* One implementation; the generated descriptors carry it over grpc
     * (protobuf) and netrpc (gob) alike. */
    static const proto_KV_server impl = {.Get = kv_get, .Put = kv_put};
    static proto_KV_service kv;
    gp_serve_config cfg = {
        .handshake = {.protocol_version = KV_PROTOCOL_VERSION,
                      .magic_cookie_key = KV_COOKIE_KEY,
                      .magic_cookie_value = KV_COOKIE_VALUE},
        .services = proto_KV_register(&kv, KV_PLUGIN_NAME, &impl, &st),
        .nservices = 1,
        .protocol = proto,
        /* "tcp" serves on 127.0.0.1 (PLUGIN_MIN_PORT..MAX_PORT); unset or
         * "unix", a Unix socket; gp_serve refuses anything else, in words. */
        .network = getenv("KV_PLUGIN_NETWORK"),
        .logger = st.log,
    };
    int rc = gp_serve(&cfg);
    store_free(&st);
    return rc;
}
