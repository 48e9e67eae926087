/* A store record and its config.json: strict parse, format, copy, checks.
 * The file is read from disk, where anything may have written it, so the
 * parser checks every field a later step would trust (names become file
 * names, the digest a blob path, privileges what a child gets). */
#include "transport/store/internal.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/base/errf.h"

#define RECORD_VERSION 1
#define MAX_LIST 256 /* args, env, privileges */
#define MAX_STRING 4096
#define MAX_VERSIONS 16

bool gp__store_name_valid(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

static bool shell_name(const char *s, size_t n)
{
    if (n == 0 || n > 128 || isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

bool gp__store_env_valid(const char *kv)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    return eq && shell_name(kv, (size_t)(eq - kv)) && strlen(kv) <= MAX_STRING;
}

bool gp__store_hex64_valid(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return false;
    return true;
}

bool gp_store_privilege_valid(const char *p)
{
    if (!p)
        return false;
    if (strcmp(p, "tcp") == 0)
        return true;
    if (strncmp(p, "env:", 4) == 0)
        return shell_name(p + 4, strlen(p + 4));
    if (strncmp(p, "unix-socket-group:", 18) == 0)
        return gp__store_name_valid(p + 18, 32);
    return false;
}

size_t gp__store_strv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void gp__store_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

char **gp__store_strv_dup(const char *const *v)
{
    size_t n = gp__store_strv_len(v);
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(out[i] = strdup(v[i]))) {
            gp__store_strv_free(out);
            return NULL;
        }
    }
    return out;
}

static bool strv_has(const char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

void gp__store_strv_minus(const char *const *a, const char *const *b, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; a && a[i]; i++) {
        if (strv_has(b, a[i]))
            continue;
        int k = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", a[i]);
        if (k < 0 || (size_t)k >= cap - used)
            return;
        used += (size_t)k;
    }
}

bool gp_store_record_has_privilege(const gp_store_record *r, const char *priv)
{
    return r && priv && strv_has((const char *const *)r->granted, priv);
}

void gp_store_record_free(gp_store_record *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->tag);
    gp__store_strv_free(r->args);
    free(r->cookie_key);
    free(r->cookie_value);
    free(r->versions);
    gp__store_strv_free(r->env);
    gp__store_strv_free(r->required);
    gp__store_strv_free(r->granted);
    free(r);
}

void gp_store_record_list_free(gp_store_record **list)
{
    for (size_t i = 0; list && list[i]; i++)
        gp_store_record_free(list[i]);
    free(list);
}

gp_store_record *gp_store_record_copy(const gp_store_record *r)
{
    gp_store_record *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    memcpy(c->id, r->id, sizeof c->id);
    memcpy(c->digest, r->digest, sizeof c->digest);
    c->protocols = r->protocols;
    c->enabled = r->enabled;
    c->restart = r->restart;
    c->nversions = r->nversions;
    c->name = strdup(r->name);
    c->tag = strdup(r->tag);
    c->cookie_key = strdup(r->cookie_key);
    c->cookie_value = strdup(r->cookie_value);
    c->versions = malloc((r->nversions ? r->nversions : 1) * sizeof *c->versions);
    c->args = gp__store_strv_dup((const char *const *)r->args);
    c->env = gp__store_strv_dup((const char *const *)r->env);
    c->required = gp__store_strv_dup((const char *const *)r->required);
    c->granted = gp__store_strv_dup((const char *const *)r->granted);
    if (!c->name || !c->tag || !c->cookie_key || !c->cookie_value || !c->versions || !c->args ||
        !c->env || !c->required || !c->granted) {
        gp_store_record_free(c);
        return NULL;
    }
    memcpy(c->versions, r->versions, r->nversions * sizeof *c->versions);
    return c;
}

/* ---- format ---- */

static json_t *strv_json(char **v)
{
    json_t *a = json_array();
    for (size_t i = 0; a && v && v[i]; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

gp_err gp_store_record_json(const gp_store_record *r, char **out, gp_status *st)
{
    gp__status_clear(st);
    *out = NULL;
    json_t *vers = json_array(), *protos = json_array();
    for (size_t i = 0; vers && i < r->nversions; i++)
        json_array_append_new(vers, json_integer(r->versions[i]));
    if (protos && (r->protocols & GP_PROTO_GRPC))
        json_array_append_new(protos, json_string("grpc"));
    if (protos && (r->protocols & GP_PROTO_NETRPC))
        json_array_append_new(protos, json_string("netrpc"));
    char digest[80];
    snprintf(digest, sizeof digest, "sha256:%s", r->digest);
    json_t *o = json_pack(
        "{s:i, s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s, s:o, s:o}, s:o, "
        "s:o, s:o, s:b, s:s}",
        "version", RECORD_VERSION, "id", r->id, "name", r->name, "tag", r->tag, "digest", digest,
        "args", strv_json(r->args), "handshake", "cookie_key", r->cookie_key, "cookie_value",
        r->cookie_value, "protocol_versions", vers, "protocols", protos, "env", strv_json(r->env),
        "required_privileges", strv_json(r->required), "granted_privileges", strv_json(r->granted),
        "enabled", r->enabled, "restart", r->restart == GP_STORE_RESTART_NO ? "no" : "always");
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text)
        return gp__status_setf(st, GP_ENOMEM, "store: cannot format the record of %s", r->name);
    size_t n = strlen(text);
    char *with_nl = realloc(text, n + 2);
    if (!with_nl) {
        free(text);
        return gp__status_setf(st, GP_ENOMEM, "store: out of memory");
    }
    with_nl[n] = '\n';
    with_nl[n + 1] = '\0';
    *out = with_nl;
    return GP_OK;
}

/* ---- parse ---- */

typedef struct parser {
    gp_status *st;
    gp_err err;
} parser;

#define BAD(p, ...) ((p)->err = gp__status_setf((p)->st, GP_EPROTO, __VA_ARGS__), false)

static bool only_keys(parser *p, json_t *o, const char *where, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        (void)v;
        if (!strv_has(keys, k))
            return BAD(p, "record: unknown key \"%.64s\" in %s", k, where);
    }
    for (size_t i = 0; keys[i]; i++)
        if (!json_object_get(o, keys[i]))
            return BAD(p, "record: %s has no \"%s\"", where, keys[i]);
    return true;
}

/* A string without NUL bytes, at most max bytes. */
static bool get_str(parser *p, json_t *o, const char *key, size_t max, char **out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return BAD(p, "record: \"%s\" is not a string", key);
    size_t n = json_string_length(v);
    if (n > max || strlen(json_string_value(v)) != n)
        return BAD(p, "record: \"%s\" is too long or holds a NUL byte", key);
    if (!(*out = strdup(json_string_value(v)))) {
        p->err = gp__status_setf(p->st, GP_ENOMEM, "record: out of memory");
        return false;
    }
    return true;
}

typedef bool (*item_check)(const char *s);

static bool any_item(const char *s)
{
    (void)s;
    return true;
}

static bool get_strv(parser *p, json_t *o, const char *key, item_check check, bool unique,
                     char ***out)
{
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a) || json_array_size(a) > MAX_LIST)
        return BAD(p, "record: \"%s\" is not an array of at most %d strings", key, MAX_LIST);
    size_t n = json_array_size(a);
    if (!(*out = calloc(n + 1, sizeof **out))) {
        p->err = gp__status_setf(p->st, GP_ENOMEM, "record: out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v) || json_string_length(v) > MAX_STRING ||
            strlen(json_string_value(v)) != json_string_length(v))
            return BAD(p, "record: \"%s\"[%zu] is not a string (without NUL, at most %d bytes)",
                       key, i, MAX_STRING);
        const char *s = json_string_value(v);
        if (!check(s))
            return BAD(p, "record: \"%s\"[%zu] \"%.64s\" is not valid", key, i, s);
        if (unique && strv_has((const char *const *)*out, s))
            return BAD(p, "record: \"%s\" names \"%.64s\" twice", key, s);
        if (!((*out)[i] = strdup(s))) {
            p->err = gp__status_setf(p->st, GP_ENOMEM, "record: out of memory");
            return false;
        }
    }
    return true;
}

static bool parse_handshake(parser *p, json_t *h, gp_store_record *r)
{
    static const char *const keys[] = {"cookie_key", "cookie_value", "protocol_versions",
                                       "protocols", NULL};
    if (!json_is_object(h))
        return BAD(p, "record: \"handshake\" is not an object");
    if (!only_keys(p, h, "\"handshake\"", keys) ||
        !get_str(p, h, "cookie_key", MAX_STRING, &r->cookie_key) ||
        !get_str(p, h, "cookie_value", MAX_STRING, &r->cookie_value))
        return false;
    json_t *vers = json_object_get(h, "protocol_versions");
    size_t n = json_is_array(vers) ? json_array_size(vers) : 0;
    if (n == 0 || n > MAX_VERSIONS)
        return BAD(p, "record: \"protocol_versions\" is not an array of 1 to %d versions",
                   MAX_VERSIONS);
    if (!(r->versions = calloc(n, sizeof *r->versions))) {
        p->err = gp__status_setf(p->st, GP_ENOMEM, "record: out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(vers, i);
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 0x7fffffff)
            return BAD(p, "record: \"protocol_versions\"[%zu] is not an integer 1..2147483647", i);
        r->versions[i] = (unsigned)json_integer_value(v);
    }
    r->nversions = n;
    json_t *protos = json_object_get(h, "protocols");
    n = json_is_array(protos) ? json_array_size(protos) : 0;
    if (n == 0 || n > 2)
        return BAD(p, "record: \"protocols\" is not an array of \"grpc\" and/or \"netrpc\"");
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(protos, i));
        unsigned bit = !s                         ? 0
                       : strcmp(s, "grpc") == 0   ? GP_PROTO_GRPC
                       : strcmp(s, "netrpc") == 0 ? GP_PROTO_NETRPC
                                                  : 0;
        if (!bit || (r->protocols & bit))
            return BAD(p, "record: \"protocols\"[%zu] is not \"grpc\" or \"netrpc\" (once)", i);
        r->protocols |= bit;
    }
    return true;
}

static bool env_item(const char *s)
{
    return gp__store_env_valid(s);
}

static bool parse_root(parser *p, json_t *o, gp_store_record *r)
{
    static const char *const keys[] = {"version",
                                       "id",
                                       "name",
                                       "tag",
                                       "digest",
                                       "args",
                                       "handshake",
                                       "env",
                                       "required_privileges",
                                       "granted_privileges",
                                       "enabled",
                                       "restart",
                                       NULL};
    if (!json_is_object(o))
        return BAD(p, "record: not a JSON object");
    json_t *ver = json_object_get(o, "version");
    if (json_is_integer(ver) && json_integer_value(ver) != RECORD_VERSION)
        return BAD(p, "record: version %lld, this store reads version %d",
                   (long long)json_integer_value(ver), RECORD_VERSION);
    if (!only_keys(p, o, "the record", keys))
        return false;
    if (!json_is_integer(ver))
        return BAD(p, "record: \"version\" is not an integer");
    char *id = NULL, *digest = NULL, *restart = NULL;
    bool ok = get_str(p, o, "id", 64, &id) && get_str(p, o, "digest", 71, &digest) &&
              get_str(p, o, "restart", 16, &restart);
    if (ok && !gp__store_hex64_valid(id))
        ok = BAD(p, "record: \"id\" is not 64 lowercase hex digits");
    if (ok && (strncmp(digest, "sha256:", 7) != 0 || !gp__store_hex64_valid(digest + 7)))
        ok = BAD(p, "record: \"digest\" is not \"sha256:\" and 64 lowercase hex digits");
    if (ok && strcmp(restart, "always") != 0 && strcmp(restart, "no") != 0)
        ok = BAD(p, "record: \"restart\" is not \"always\" or \"no\"");
    if (ok) {
        memcpy(r->id, id, 65);
        memcpy(r->digest, digest + 7, 65);
        r->restart = strcmp(restart, "no") == 0 ? GP_STORE_RESTART_NO : GP_STORE_RESTART_ALWAYS;
    }
    free(id);
    free(digest);
    free(restart);
    if (!ok || !get_str(p, o, "name", GP_STORE_NAME_MAX, &r->name) ||
        !get_str(p, o, "tag", GP_STORE_TAG_MAX, &r->tag))
        return false;
    if (!gp__store_name_valid(r->name, GP_STORE_NAME_MAX))
        return BAD(p, "record: \"name\" \"%s\" is not a valid plugin name", r->name);
    if (!gp__store_name_valid(r->tag, GP_STORE_TAG_MAX))
        return BAD(p, "record: \"tag\" \"%s\" is not a valid tag", r->tag);
    json_t *en = json_object_get(o, "enabled");
    if (!json_is_boolean(en))
        return BAD(p, "record: \"enabled\" is not true or false");
    r->enabled = json_is_true(en);
    return get_strv(p, o, "args", any_item, false, &r->args) &&
           parse_handshake(p, json_object_get(o, "handshake"), r) &&
           get_strv(p, o, "env", env_item, false, &r->env) &&
           get_strv(p, o, "required_privileges", gp_store_privilege_valid, true, &r->required) &&
           get_strv(p, o, "granted_privileges", gp_store_privilege_valid, true, &r->granted);
}

gp_err gp_store_record_parse(const char *data, size_t len, gp_store_record **out, gp_status *st)
{
    gp__status_clear(st);
    *out = NULL;
    if (len > GP_STORE_RECORD_MAX)
        return gp__status_setf(st, GP_EMSGSIZE, "record: %zu bytes, at most %u", len,
                               GP_STORE_RECORD_MAX);
    json_error_t jerr;
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return gp__status_setf(st, GP_EPROTO, "record: not JSON: %s (line %d)", jerr.text,
                               jerr.line);
    gp_store_record *r = calloc(1, sizeof *r);
    parser p = {.st = st, .err = GP_OK};
    if (!r)
        p.err = gp__status_setf(st, GP_ENOMEM, "record: out of memory");
    else
        parse_root(&p, o, r);
    json_decref(o);
    if (p.err != GP_OK) {
        gp_store_record_free(r);
        return p.err;
    }
    *out = r;
    return GP_OK;
}
