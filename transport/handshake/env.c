/* The environment contract between host and plugin (spec §1.1, §1.4):
 * PLUGIN_PROTOCOL_VERSIONS and the port range. Pure functions. */
#include "transport/handshake/handshake.h"

#include <stdio.h>
#include <string.h>

#include "transport/handshake/util.h"

/* Name at most this many bad entries; count the rest. */
#define MAX_NAMED_BAD 3

static int contains(const unsigned *v, size_t n, unsigned x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

gp_err gp__hs_parse_versions(const char *env, unsigned *out, size_t max, size_t *n, char *err,
                             size_t errlen)
{
    gp__hs_errf(err, errlen, "%s", "");
    if (!n || (!out && max)) {
        gp__hs_errf(err, errlen, "gp__hs_parse_versions: NULL argument");
        return GP_EINVAL;
    }
    *n = 0;
    if (!env || !*env)
        return GP_OK;

    gp__strbuf msg;
    gp__strbuf_init(&msg);
    gp__strbuf_append(&msg, "ignoring bad entries in PLUGIN_PROTOCOL_VERSIONS (expected "
                            "decimal numbers): ");
    size_t nbad = 0, dropped = 0;
    const char *p = env;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        unsigned long v;
        if (gp__hs_decimal(p, len, 0xffffffffUL, &v) != 0) {
            /* Go skips what strconv.Atoi rejects and carries on. */
            if (nbad < MAX_NAMED_BAD) {
                gp__strbuf_append(&msg, nbad ? ", " : "");
                gp__strbuf_quote(&msg, p, len, GP_HS_QUOTE_LIMIT);
            }
            nbad++;
        } else if (!contains(out, *n, (unsigned)v)) {
            if (*n < max)
                out[(*n)++] = (unsigned)v;
            else
                dropped++;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (nbad > MAX_NAMED_BAD)
        gp__strbuf_printf(&msg, " and %zu more", nbad - MAX_NAMED_BAD);
    if (nbad || dropped) {
        if (!nbad)
            gp__strbuf_reset(&msg);
        if (dropped)
            gp__strbuf_printf(&msg,
                              "%sPLUGIN_PROTOCOL_VERSIONS has more than %zu versions; "
                              "ignoring %zu",
                              nbad ? "; " : "", max, dropped);
        gp__hs_errf(err, errlen, "%s",
                    msg.ok && msg.data ? msg.data : "bad PLUGIN_PROTOCOL_VERSIONS");
    }
    gp__strbuf_free(&msg);
    return GP_OK;
}

unsigned gp__hs_negotiate(const unsigned *theirs, size_t ntheirs, const unsigned *ours,
                          size_t nours, bool *common)
{
    bool found = false;
    unsigned best = 0, lowest = 0;
    for (size_t i = 0; i < nours; i++) {
        if (i == 0 || ours[i] < lowest)
            lowest = ours[i];
        for (size_t j = 0; j < ntheirs; j++) {
            if (ours[i] == theirs[j] && (!found || ours[i] > best)) {
                best = ours[i];
                found = true;
            }
        }
    }
    if (common)
        *common = found;
    /* No overlap: answer with our lowest and let the host name the
     * mismatch (it knows both lists). */
    return found ? best : lowest;
}

static gp_err parse_port(const char *name, const char *s, unsigned *out, char *err, size_t errlen)
{
    unsigned long v = 0;
    if (s && *s && gp__hs_decimal(s, strlen(s), 65535, &v) != 0) {
        gp__strbuf q;
        gp__hs_errf(err, errlen, "bad %s: expected a port number 0..65535, got %s", name,
                    gp__hs_quote(&q, s, strlen(s)));
        gp__strbuf_free(&q);
        return GP_EINVAL;
    }
    *out = (unsigned)v;
    return GP_OK;
}

gp_err gp__hs_parse_ports(const char *min_s, const char *max_s, unsigned *min, unsigned *max,
                          char *err, size_t errlen)
{
    gp__hs_errf(err, errlen, "%s", "");
    if (!min || !max) {
        gp__hs_errf(err, errlen, "gp__hs_parse_ports: NULL argument");
        return GP_EINVAL;
    }
    unsigned lo, hi;
    gp_err e;
    if ((e = parse_port("PLUGIN_MIN_PORT", min_s, &lo, err, errlen)) ||
        (e = parse_port("PLUGIN_MAX_PORT", max_s, &hi, err, errlen)))
        return e;
    if (lo > hi) {
        gp__hs_errf(err, errlen,
                    "bad port range: PLUGIN_MIN_PORT %u is greater than PLUGIN_MAX_PORT %u", lo,
                    hi);
        return GP_EINVAL;
    }
    *min = lo;
    *max = hi;
    return GP_OK;
}

int gp__hs_format_versions(const unsigned *v, size_t n, char *buf, size_t cap)
{
    if (!buf || cap == 0 || (!v && n))
        return -1;
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(buf + len, cap - len, "%s%u", i ? "," : "", v[i]);
        if (k < 0 || (size_t)k >= cap - len) {
            buf[0] = 0;
            return -1;
        }
        len += (size_t)k;
    }
    return (int)len;
}

void gp__hs_mux_env(const char *value, bool *print_field, bool *multiplex)
{
    bool set = value && *value;
    if (print_field)
        *print_field = set;
    if (multiplex)
        *multiplex = set && gp__hs_parse_bool(value, strlen(value)) == 1;
}

const char *gp__hs_mux_env_value(bool multiplex)
{
    return multiplex ? "true" : "false";
}
