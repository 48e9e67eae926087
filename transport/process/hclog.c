/* hclog stderr lines -> log records. jansson does the JSON; the rules on
 * top follow go-plugin's host (and refuse what would make it panic). */
#include "transport/process/hclog.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct own {
    json_t *root;  /* NULL for a plain line */
    char *text;    /* the plain line, NUL-terminated */
    char **dumped; /* nkv entries; JSON text of non-string values */
    size_t ndumped;
} own;

gp_log_level gp__hclog_level(const char *w)
{
    static const struct {
        const char *word;
        gp_log_level level;
    } words[] = {
        {"trace", GP_LOG_TRACE}, {"debug", GP_LOG_DEBUG},  {"info", GP_LOG_INFO},
        {"warn", GP_LOG_WARN},   {"warning", GP_LOG_WARN}, {"error", GP_LOG_ERROR},
    };
    for (size_t i = 0; w && i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(w, words[i].word) == 0)
            return words[i].level;
    return GP_LOG_DEFAULT;
}

static bool digits(const char *s, int n, int *val)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *val = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

bool gp__hclog_timestamp_ok(const char *s)
{
    /* 2006-01-02T15:04:05.000000Z07:00: exactly six fractional digits, then
     * "Z" or a +hh:mm / -hh:mm offset (Go's parser is that strict). */
    int y, mo, d, h, mi, se, frac, oh, om;
    if (strlen(s) < 27)
        return false;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se) || s[19] != '.' ||
        !digits(s + 20, 6, &frac))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59)
        return false;
    const char *z = s + 26;
    if (z[0] == 'Z')
        return z[1] == '\0';
    if ((z[0] != '+' && z[0] != '-') || !digits(z + 1, 2, &oh) || z[3] != ':' ||
        !digits(z + 4, 2, &om) || z[6] != '\0')
        return false;
    return oh <= 23 && om <= 59;
}

static void own_free(own *o, size_t nkv)
{
    if (!o)
        return;
    for (size_t i = 0; i < nkv && o->dumped; i++)
        free(o->dumped[i]);
    free(o->dumped);
    json_decref(o->root);
    free(o->text);
    free(o);
}

void gp__hclog_rec_free(gp__hclog_rec *r)
{
    if (!r)
        return;
    own_free(r->own_, r->nkv);
    free(r->kv);
    memset(r, 0, sizeof *r);
}

static gp_err plain(const char *line, size_t len, gp__hclog_rec *out)
{
    static const struct {
        const char *prefix;
        gp_log_level level;
    } prefixes[] = {
        {"[TRACE]", GP_LOG_TRACE}, {"[DEBUG]", GP_LOG_DEBUG}, {"[INFO]", GP_LOG_INFO},
        {"[WARN]", GP_LOG_WARN},   {"[ERROR]", GP_LOG_ERROR},
    };
    own *o = calloc(1, sizeof *o);
    char *text = malloc(len + 1);
    if (!o || !text) {
        free(o);
        free(text);
        return GP_ENOMEM;
    }
    memcpy(text, line, len);
    text[len] = '\0';
    o->text = text;
    out->level = GP_LOG_DEBUG;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i].prefix);
        if (len >= n && memcmp(line, prefixes[i].prefix, n) == 0) {
            out->level = prefixes[i].level;
            break;
        }
    }
    out->msg = text;
    out->own_ = o;
    return GP_OK;
}

/* 1: hclog JSON, filled in; 0: not hclog JSON; -1: out of memory. */
static int try_json(const char *line, size_t len, gp__hclog_rec *out)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (i == len || line[i] != '{')
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb(line, len, 0, &jerr);
    if (!root)
        return 0;
    if (!json_is_object(root)) {
        json_decref(root);
        return 0;
    }
    json_t *lv = json_object_get(root, "@level");
    json_t *msg = json_object_get(root, "@message");
    json_t *ts = json_object_get(root, "@timestamp");
    if ((lv && !json_is_string(lv)) || (msg && !json_is_string(msg)) ||
        (ts && (!json_is_string(ts) || !gp__hclog_timestamp_ok(json_string_value(ts))))) {
        json_decref(root);
        return 0;
    }
    gp_log_level level = lv ? gp__hclog_level(json_string_value(lv)) : GP_LOG_DEFAULT;
    if (level == GP_LOG_DEFAULT) {
        /* A JSON line without a level word: verbatim at DEBUG (go-plugin). */
        json_decref(root);
        int rc = plain(line, len, out) == GP_OK ? 1 : -1;
        if (rc == 1)
            out->level = GP_LOG_DEBUG;
        return rc;
    }
    size_t n = json_object_size(root);
    own *o = calloc(1, sizeof *o);
    gp_log_kv *kv = n ? calloc(n, sizeof *kv) : NULL;
    char **dumped = n ? calloc(n, sizeof *dumped) : NULL;
    if (!o || (n && (!kv || !dumped))) {
        free(o);
        free(kv);
        free(dumped);
        json_decref(root);
        return -1;
    }
    o->root = root;
    o->dumped = dumped;
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "@level") == 0 || strcmp(key, "@message") == 0 ||
            strcmp(key, "@timestamp") == 0)
            continue;
        kv[k].key = key;
        if (json_is_string(val)) {
            kv[k].value = json_string_value(val);
        } else {
            dumped[k] = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
            if (!dumped[k]) {
                own_free(o, n);
                free(kv);
                return -1;
            }
            kv[k].value = dumped[k];
        }
        k++;
    }
    out->level = level;
    out->msg = msg ? json_string_value(msg) : "";
    out->kv = k ? kv : NULL;
    if (!k)
        free(kv);
    out->nkv = k;
    out->json = true;
    out->own_ = o;
    /* own_free walks `dumped` up to nkv; the unused tail is NULL. */
    return 1;
}

gp_err gp__hclog_parse(const char *line, size_t len, gp__hclog_rec *out)
{
    memset(out, 0, sizeof *out);
    int rc = try_json(line, len, out);
    if (rc == 1)
        return GP_OK;
    if (rc < 0) {
        memset(out, 0, sizeof *out);
        return GP_ENOMEM;
    }
    return plain(line, len, out);
}
