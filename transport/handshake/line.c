/* The handshake line: parse (host side), check (host side), format
 * (plugin side). Pure functions; see handshake.h and spec §1.3, §1.5. */
#include "transport/handshake/handshake.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/handshake/util.h"

/* go-plugin hosts read the line with a 64 KiB scanner; nothing longer can
 * be a handshake. */
#define LINE_MAX_BYTES (64u * 1024u)
/* sizeof(sockaddr_un.sun_path) - 1 on Linux. */
#define UNIX_PATH_MAX_BYTES 107u
/* go-plugin hosts only decode field 6 when it is longer than this; shorter
 * text is legacy filler from old servers. */
#define CERT_MIN_BYTES 50u
#define MAX_FIELDS 7

typedef struct span {
    const char *p;
    size_t n;
} span;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int has_control(span s)
{
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c == 0x7f)
            return 1;
    }
    return 0;
}

static int span_is(span s, const char *word)
{
    size_t n = strlen(word);
    return s.n == n && memcmp(s.p, word, n) == 0;
}

/* Write "<prefix><quoted s><suffix>" into err and return `code`. */
static gp_err fail_quoted(gp_err code, char *err, size_t errlen, const char *prefix, span s,
                          const char *suffix)
{
    gp__strbuf q;
    gp__hs_errf(err, errlen, "%s%s%s", prefix, gp__hs_quote(&q, s.p, s.n), suffix);
    gp__strbuf_free(&q);
    return code;
}

static gp_err parse_version(span s, const char *what, unsigned *out, char *err, size_t errlen)
{
    unsigned long v;
    int r = gp__hs_decimal(s.p, s.n, 0xffffffffUL, &v);
    if (r == 0) {
        *out = (unsigned)v;
        return GP_OK;
    }
    gp__strbuf q;
    gp__hs_errf(err, errlen, "bad %s in handshake line: expected %s, got %s", what,
                r == -2 ? "a decimal number up to 4294967295" : "a decimal number",
                gp__hs_quote(&q, s.p, s.n));
    gp__strbuf_free(&q);
    return GP_EPROTO;
}

/* "HOST:PORT" with a numeric IPv4 host, a bracketed IPv6 host or
 * "localhost", and a port 1..65535: what gp__net_dial can reach without
 * a resolver. */
static int tcp_address_ok(span a)
{
    const char *colon = NULL;
    for (size_t i = a.n; i > 0; i--)
        if (a.p[i - 1] == ':') {
            colon = a.p + i - 1;
            break;
        }
    if (!colon)
        return 0;
    size_t hn = (size_t)(colon - a.p);
    unsigned long port;
    if (gp__hs_decimal(colon + 1, a.n - hn - 1, 65535, &port) != 0 || port == 0)
        return 0;
    char host[64];
    if (hn == 0 || hn >= sizeof host)
        return 0;
    if (a.p[0] == '[') {
        if (hn < 3 || a.p[hn - 1] != ']')
            return 0;
        memcpy(host, a.p + 1, hn - 2);
        host[hn - 2] = 0;
        struct in6_addr a6;
        return inet_pton(AF_INET6, host, &a6) == 1;
    }
    memcpy(host, a.p, hn);
    host[hn] = 0;
    if (strcmp(host, "localhost") == 0)
        return 1;
    struct in_addr a4;
    return inet_pton(AF_INET, host, &a4) == 1;
}

static gp_err parse_address(span net, span a, gp__hs_line *out, char *err, size_t errlen)
{
    if (a.n == 0) {
        gp__hs_errf(err, errlen,
                    "empty address in handshake line (expected a socket path "
                    "or 127.0.0.1:PORT)");
        return GP_EPROTO;
    }
    if (has_control(a))
        return fail_quoted(GP_EPROTO, err, errlen,
                           "address in handshake line has control bytes: ", a, "");
    int is_unix = span_is(net, "unix");
    size_t max = is_unix ? UNIX_PATH_MAX_BYTES : GP_HS_ADDR_MAX - 1;
    if (a.n > max) {
        gp__strbuf q;
        gp__hs_errf(err, errlen, "%s in handshake line is %zu bytes; expected at most %zu: %s",
                    is_unix ? "unix socket path" : "address", a.n, max, gp__hs_quote(&q, a.p, a.n));
        gp__strbuf_free(&q);
        return GP_EPROTO;
    }
    if (!is_unix && !tcp_address_ok(a))
        return fail_quoted(GP_EPROTO, err, errlen, "bad tcp address ", a,
                           " in handshake line (expected HOST:PORT with a numeric "
                           "IP or localhost, port 1..65535)");
    memcpy(out->address, a.p, a.n);
    out->address[a.n] = 0;
    return GP_OK;
}

static gp_err parse_protocol(span s, gp__hs_line *out, char *err, size_t errlen)
{
    /* go-plugin 1.0.1 hosts reject an empty field 5 (the protocol ""). */
    if (s.n == 0) {
        gp__hs_errf(err, errlen, "empty protocol in handshake line (expected grpc or netrpc)");
        return GP_EPROTO;
    }
    gp_protocol p = GP_PROTO_NONE;
    if (span_is(s, "grpc"))
        p = GP_PROTO_GRPC;
    else if (span_is(s, "netrpc"))
        p = GP_PROTO_NETRPC;
    if (p == GP_PROTO_NONE)
        return fail_quoted(GP_EPROTO, err, errlen, "unknown protocol ", s,
                           " in handshake line (expected grpc or netrpc)");
    out->protocol = p;
    return GP_OK;
}

static int b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

static gp_err parse_cert(span s, gp__hs_line *out, char *err, size_t errlen)
{
    if (s.n <= CERT_MIN_BYTES)
        return GP_OK;
    for (size_t i = 0; i < s.n; i++) {
        if (b64_char(s.p[i]))
            continue;
        gp__strbuf q;
        gp__hs_errf(err, errlen,
                    "bad certificate in handshake line: expected unpadded "
                    "standard base64, got byte %s at offset %zu of %s",
                    s.p[i] == '=' ? "'=' (padding)" : "outside the alphabet", i,
                    gp__hs_quote(&q, s.p, s.n));
        gp__strbuf_free(&q);
        return GP_EPROTO;
    }
    /* Unpadded base64 never leaves a single character in the last group. */
    if (s.n % 4 == 1) {
        gp__hs_errf(err, errlen,
                    "bad certificate in handshake line: %zu base64 characters "
                    "cannot be a whole number of bytes",
                    s.n);
        return GP_EPROTO;
    }
    out->cert_b64 = malloc(s.n + 1);
    if (!out->cert_b64) {
        gp__hs_errf(err, errlen, "out of memory reading the plugin's certificate");
        return GP_ENOMEM;
    }
    memcpy(out->cert_b64, s.p, s.n);
    out->cert_b64[s.n] = 0;
    return GP_OK;
}

/* Field 7 is only recorded here: go-plugin 1.8 hosts judge it (with
 * strconv.ParseBool) only when they asked to multiplex, gp__hs_check_mux. */
static gp_err parse_mux(span s, gp__hs_line *out, char *err, size_t errlen)
{
    switch (gp__hs_parse_bool(s.p, s.n)) {
    case 1:
        out->mux = true;
        out->mux_field = GP_HS_MUX_TRUE;
        return GP_OK;
    case 0:
        out->mux_field = GP_HS_MUX_FALSE;
        return GP_OK;
    default:
        break;
    }
    /* Nothing legitimate carries control bytes; refusing them keeps the
     * text safe to show in an error. */
    if (has_control(s))
        return fail_quoted(GP_EPROTO, err, errlen,
                           "multiplex field (7) in handshake line has control bytes: ", s, "");
    out->mux_text = malloc(s.n + 1);
    if (!out->mux_text) {
        gp__hs_errf(err, errlen, "out of memory reading the handshake line");
        return GP_ENOMEM;
    }
    memcpy(out->mux_text, s.p, s.n);
    out->mux_text[s.n] = 0;
    out->mux_field = GP_HS_MUX_INVALID;
    return GP_OK;
}

static gp_err parse_fields(span *f, size_t nf, gp__hs_line *out, char *err, size_t errlen)
{
    gp_err e;
    if ((e = parse_version(f[0], "core protocol version", &out->core_version, err, errlen)))
        return e;
    if ((e = parse_version(f[1], "app protocol version", &out->app_version, err, errlen)))
        return e;
    if (!span_is(f[2], "unix") && !span_is(f[2], "tcp"))
        return fail_quoted(GP_EPROTO, err, errlen, "unknown network ", f[2],
                           " in handshake line (expected unix or tcp)");
    memcpy(out->network, f[2].p, f[2].n);
    out->network[f[2].n] = 0;
    if ((e = parse_address(f[2], f[3], out, err, errlen)))
        return e;
    /* Four fields: an old server that only speaks net/rpc. */
    out->protocol = GP_PROTO_NETRPC;
    if (nf >= 5 && (e = parse_protocol(f[4], out, err, errlen)))
        return e;
    if (nf >= 6 && (e = parse_cert(f[5], out, err, errlen)))
        return e;
    if (nf >= 7 && (e = parse_mux(f[6], out, err, errlen)))
        return e;
    return GP_OK;
}

gp_err gp__hs_parse(const char *line, size_t len, gp__hs_line *out, char *err, size_t errlen)
{
    gp__hs_errf(err, errlen, "%s", "");
    if (!out || (!line && len)) {
        gp__hs_errf(err, errlen, "gp__hs_parse: NULL argument");
        return GP_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (!line)
        line = "";
    if (len > LINE_MAX_BYTES) {
        gp__strbuf q;
        gp__hs_errf(err, errlen, "handshake line from plugin is %zu bytes; expected at most %u: %s",
                    len, LINE_MAX_BYTES, gp__hs_quote(&q, line, len));
        gp__strbuf_free(&q);
        return GP_EPROTO;
    }
    span all = {line, len};
    while (all.n && is_space(all.p[0])) {
        all.p++;
        all.n--;
    }
    while (all.n && is_space(all.p[all.n - 1]))
        all.n--;
    const char *nul = memchr(all.p, 0, all.n);
    if (nul) {
        gp__strbuf q;
        gp__hs_errf(err, errlen, "handshake line from plugin has a NUL byte at offset %zu: %s",
                    (size_t)(nul - line), gp__hs_quote(&q, line, len));
        gp__strbuf_free(&q);
        return GP_EPROTO;
    }

    span f[MAX_FIELDS];
    size_t nf = 0;
    const char *p = all.p, *end = all.p + all.n;
    for (;;) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        const char *stop = bar ? bar : end;
        if (nf < MAX_FIELDS)
            f[nf] = (span){p, (size_t)(stop - p)};
        nf++;
        if (!bar)
            break;
        p = bar + 1;
    }
    if (nf < 4)
        return fail_quoted(GP_EPROTO, err, errlen,
                           "unrecognized handshake line from plugin: expected "
                           "CORE|APP|NETWORK|ADDRESS|PROTOCOL, got ",
                           all, "");
    /* go-plugin 1.8 hosts split on every '|' and ignore what follows
     * field 7. */
    if (nf > MAX_FIELDS)
        nf = MAX_FIELDS;
    gp_err e = parse_fields(f, nf, out, err, errlen);
    if (e)
        gp__hs_line_free(out);
    return e;
}

void gp__hs_line_free(gp__hs_line *l)
{
    if (!l)
        return;
    free(l->cert_b64);
    l->cert_b64 = NULL;
    free(l->mux_text);
    l->mux_text = NULL;
}

#define MUX_REFUSED \
    "client requested gRPC broker multiplexing but plugin does not support the feature"

gp_err gp__hs_check_mux(const gp__hs_line *l, bool requested, bool *use, char *err, size_t errlen)
{
    gp__hs_errf(err, errlen, "%s", "");
    if (use)
        *use = false;
    if (!l) {
        gp__hs_errf(err, errlen, "gp__hs_check_mux: NULL argument");
        return GP_EINVAL;
    }
    if (!requested || l->protocol != GP_PROTO_GRPC)
        return GP_OK;
    switch (l->mux_field) {
    case GP_HS_MUX_TRUE:
        if (use)
            *use = true;
        return GP_OK;
    case GP_HS_MUX_ABSENT:
        gp__hs_errf(err, errlen,
                    "%s; for Go plugins, you will need to update the "
                    "github.com/hashicorp/go-plugin dependency and recompile",
                    MUX_REFUSED);
        return GP_EPROTO;
    case GP_HS_MUX_FALSE:
        gp__hs_errf(err, errlen, "%s", MUX_REFUSED);
        return GP_EPROTO;
    default: {
        const char *t = l->mux_text ? l->mux_text : "";
        gp__strbuf q;
        gp__hs_errf(err, errlen,
                    "error parsing %s as a boolean for gRPC broker multiplexing support",
                    gp__hs_quote(&q, t, strlen(t)));
        gp__strbuf_free(&q);
        return GP_EPROTO;
    }
    }
}

static void list_protocols(unsigned allowed, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", (allowed & GP_PROTO_GRPC) ? "grpc" : "",
             (allowed & GP_PROTO_GRPC) && (allowed & GP_PROTO_NETRPC) ? "," : "",
             (allowed & GP_PROTO_NETRPC) ? "netrpc" : "");
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

gp_err gp__hs_check(const gp__hs_line *l, const unsigned *versions, size_t nversions,
                    unsigned allowed, char *err, size_t errlen)
{
    gp__hs_errf(err, errlen, "%s", "");
    if (!l || (!versions && nversions)) {
        gp__hs_errf(err, errlen, "gp__hs_check: NULL argument");
        return GP_EINVAL;
    }
    if (l->core_version != GP_HS_CORE_VERSION) {
        gp__hs_errf(err, errlen,
                    "incompatible core protocol version with plugin: plugin offered %u, host "
                    "speaks %u (the plugin was built for another go-plugin protocol)",
                    l->core_version, GP_HS_CORE_VERSION);
        return GP_EVERSION;
    }
    int found = 0;
    for (size_t i = 0; i < nversions; i++)
        found |= versions[i] == l->app_version;
    if (!found) {
        unsigned sorted[GP_HS_MAX_VERSIONS];
        size_t n = nversions < GP_HS_MAX_VERSIONS ? nversions : GP_HS_MAX_VERSIONS;
        if (n)
            memcpy(sorted, versions, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_unsigned);
        char list[GP_HS_MAX_VERSIONS * 11 + 1];
        if (gp__hs_format_versions(sorted, n, list, sizeof list) <= 0)
            snprintf(list, sizeof list, "none");
        gp__hs_errf(err, errlen,
                    "incompatible API version with plugin: plugin offered %u, host accepts %s",
                    l->app_version, list);
        return GP_EVERSION;
    }
    /* As go-plugin: no explicit choice means net/rpc only. */
    if (allowed == 0)
        allowed = GP_PROTO_NETRPC;
    if (!(l->protocol & allowed)) {
        char list[32];
        list_protocols(allowed, list, sizeof list);
        gp__hs_errf(err, errlen, "unsupported plugin protocol \"%s\": host allows %s",
                    gp_protocol_name(l->protocol), list[0] ? list : "none");
        return GP_EPROTO;
    }
    return GP_OK;
}

static int text_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '|')
            return 0;
    return 1;
}

int gp__hs_format(const gp__hs_line *l, char *buf, size_t cap)
{
    if (!l || !buf || cap == 0)
        return -1;
    const char *mux = "";
    if (l->mux || l->mux_field == GP_HS_MUX_TRUE)
        mux = "|true";
    else if (l->mux_field == GP_HS_MUX_FALSE)
        mux = "|false";
    else if (l->mux_field != GP_HS_MUX_ABSENT)
        return -1; /* a plugin says true or false, nothing else */
    const char *proto = gp_protocol_name(l->protocol);
    /* Refuse anything the host could not read back as the same line. */
    if (!memchr(l->network, 0, sizeof l->network) ||
        (strcmp(l->network, "unix") != 0 && strcmp(l->network, "tcp") != 0) || !proto[0] ||
        !l->address[0] || !memchr(l->address, 0, sizeof l->address) || !text_ok(l->address) ||
        (l->cert_b64 && !text_ok(l->cert_b64)))
        return -1;
    int n = snprintf(buf, cap, "%u|%u|%s|%s|%s|%s%s\n", l->core_version, l->app_version, l->network,
                     l->address, proto, l->cert_b64 ? l->cert_b64 : "", mux);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}
