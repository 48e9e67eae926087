/* Fuzz the handshake line parser. Besides "no crash, no leak" it checks:
 * a parsed line formats (unless field 7 is not a boolean: a plugin never
 * prints that), the formatted text parses back to the same value, a failure
 * always explains itself, and check() and check_mux() cope with any parsed
 * line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/handshake/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_line invariant broken: %s\n", what);
        abort();
    }
}

static int same(const gp__hs_line *a, const gp__hs_line *b)
{
    return a->core_version == b->core_version && a->app_version == b->app_version &&
           strcmp(a->network, b->network) == 0 && strcmp(a->address, b->address) == 0 &&
           a->protocol == b->protocol && a->mux == b->mux && a->mux_field == b->mux_field &&
           (a->cert_b64 ? b->cert_b64 && strcmp(a->cert_b64, b->cert_b64) == 0 : !b->cert_b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    gp__hs_line l;
    gp_err e = gp__hs_parse((const char *)data, size, &l, err, sizeof err);
    if (e != GP_OK) {
        expect(e == GP_EPROTO || e == GP_ENOMEM, "parse error code is EPROTO");
        expect(err[0] != 0, "a failed parse says why");
        expect(l.cert_b64 == NULL && l.mux_text == NULL, "a failed parse owns nothing");
        return 0;
    }
    expect(l.mux == (l.mux_field == GP_HS_MUX_TRUE), "mux is field 7 true");
    expect((l.mux_text != NULL) == (l.mux_field == GP_HS_MUX_INVALID),
           "field 7's text is kept iff it is not a boolean");
    for (int requested = 0; requested < 2; requested++) {
        bool use = true;
        e = gp__hs_check_mux(&l, requested, &use, err, sizeof err);
        expect(e == GP_OK || (e == GP_EPROTO && requested && err[0]), "check_mux fails with words");
        expect(use == (e == GP_OK && requested && l.protocol == GP_PROTO_GRPC &&
                       l.mux_field == GP_HS_MUX_TRUE),
               "multiplex only when requested, gRPC and confirmed");
        expect(e == GP_OK || l.protocol == GP_PROTO_GRPC, "netrpc ignores field 7");
    }
    expect(strcmp(l.network, "unix") == 0 || strcmp(l.network, "tcp") == 0, "network word");
    expect(l.protocol == GP_PROTO_GRPC || l.protocol == GP_PROTO_NETRPC, "protocol word");
    expect(l.address[0] != 0, "address non-empty");

    size_t cap = size + 64;
    char *buf = malloc(cap);
    expect(buf != NULL, "malloc");
    int n = gp__hs_format(&l, buf, cap);
    if (l.mux_field == GP_HS_MUX_INVALID) {
        expect(n == -1, "field 7 that is not a boolean is never printed");
        gp__hs_line_free(&l);
        free(buf);
        return 0;
    }
    expect(n > 0 && (size_t)n < cap && buf[n - 1] == '\n', "a parsed line formats");
    gp__hs_line again;
    e = gp__hs_parse(buf, (size_t)n, &again, err, sizeof err);
    expect(e == GP_OK, "a formatted line parses");
    expect(same(&l, &again), "format then parse gives the same value");

    static const unsigned versions[] = {1, 2, 5};
    for (unsigned allowed = 0; allowed < 4; allowed++) {
        e = gp__hs_check(&l, versions, 3, allowed, err, sizeof err);
        expect(e == GP_OK || ((e == GP_EVERSION || e == GP_EPROTO) && err[0]),
               "check fails with words");
    }
    gp__hs_line_free(&again);
    gp__hs_line_free(&l);
    free(buf);
    return 0;
}
