/* Fuzz the env contract a plugin reads: PLUGIN_PROTOCOL_VERSIONS,
 * PLUGIN_MIN_PORT/PLUGIN_MAX_PORT and PLUGIN_MULTIPLEX_GRPC. Input: the four
 * values separated by '\n'. Checks: versions come back without duplicates
 * and survive a format/parse round trip; negotiation picks the highest
 * common version or our lowest; an accepted port range is ordered and in
 * range; field 7 is printed iff the multiplex value is non-empty, and only a
 * Go boolean true multiplexes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/handshake/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_env invariant broken: %s\n", what);
        abort();
    }
}

/* The next '\n'-separated part as a C string (env values cannot hold NUL,
 * so the string simply ends at one). */
static char *next_part(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *stop = nl ? nl : end;
    size_t n = (size_t)(stop - *p);
    char *s = malloc(n + 1);
    expect(s != NULL, "malloc");
    memcpy(s, *p, n);
    s[n] = 0;
    *p = nl ? nl + 1 : end;
    return s;
}

static void check_versions(const char *env)
{
    unsigned v[GP_HS_MAX_VERSIONS];
    size_t n = 99;
    char err[512];
    expect(gp__hs_parse_versions(env, v, GP_HS_MAX_VERSIONS, &n, err, sizeof err) == GP_OK,
           "parse_versions returns OK");
    expect(n <= GP_HS_MAX_VERSIONS, "count within max");
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            expect(v[i] != v[j], "no duplicate versions");

    char text[GP_HS_MAX_VERSIONS * 11 + 1];
    int k = gp__hs_format_versions(v, n, text, sizeof text);
    expect(k >= 0 && (size_t)k == strlen(text), "versions format");
    unsigned w[GP_HS_MAX_VERSIONS];
    size_t m;
    expect(gp__hs_parse_versions(text, w, GP_HS_MAX_VERSIONS, &m, err, sizeof err) == GP_OK,
           "formatted versions parse");
    expect(m == n && err[0] == 0, "formatted versions parse cleanly");
    expect(n == 0 || memcmp(v, w, n * sizeof *v) == 0, "versions round trip");

    static const unsigned ours[] = {3, 1, 4, 2};
    bool common;
    unsigned got = gp__hs_negotiate(v, n, ours, 4, &common);
    unsigned best = 0;
    bool any = false;
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < n; j++)
            if (ours[i] == v[j] && (!any || ours[i] > best)) {
                best = ours[i];
                any = true;
            }
    expect(common == any, "negotiate finds a common version iff there is one");
    expect(got == (any ? best : 1u), "negotiate: highest common, else our lowest");
}

static void check_ports(const char *lo, const char *hi)
{
    unsigned min = 7, max = 7;
    char err[512];
    gp_err e = gp__hs_parse_ports(lo, hi, &min, &max, err, sizeof err);
    if (e != GP_OK) {
        expect(e == GP_EINVAL && err[0], "port errors say why");
        return;
    }
    expect(min <= max && max <= 65535, "accepted range is ordered and in range");
    char a[16], b[16];
    snprintf(a, sizeof a, "%u", min);
    snprintf(b, sizeof b, "%u", max);
    unsigned min2, max2;
    expect(gp__hs_parse_ports(a, b, &min2, &max2, err, sizeof err) == GP_OK && min2 == min &&
               max2 == max,
           "ports round trip");
}

static void check_mux(const char *value)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    bool is_true = false;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        is_true |= strcmp(value, yes[i]) == 0;
    bool print = !value[0], mux = !is_true;
    gp__hs_mux_env(value, &print, &mux);
    expect(print == (value[0] != 0), "field 7 printed iff PLUGIN_MULTIPLEX_GRPC is non-empty");
    expect(mux == is_true, "multiplex iff PLUGIN_MULTIPLEX_GRPC is a Go boolean true");
    /* What a host sets reads back as what it meant. */
    bool want = value[0] & 1;
    gp__hs_mux_env(gp__hs_mux_env_value(want), &print, &mux);
    expect(print && mux == want, "the host's PLUGIN_MULTIPLEX_GRPC value reads back");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *versions = next_part(&p, end);
    char *lo = next_part(&p, end);
    char *hi = next_part(&p, end);
    char *mux = next_part(&p, end);
    check_versions(versions);
    check_ports(lo, hi);
    check_mux(mux);
    free(versions);
    free(lo);
    free(hi);
    free(mux);
    return 0;
}
