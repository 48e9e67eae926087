/* Tests for the handshake line and the env contract (spec §1.1-§1.5). */
#include "transport/handshake/handshake.h"

#include <stdlib.h>
#include <string.h>

#include "transport/testing/gp_test.h"

static char err[1024];

#define CERT60 "MIICTzCCAbCgAwIBAgIQJtpQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* Parse a C string; the result must be an error with code `code` whose
 * text contains `needle`. */
static void expect_fail(const char *line, size_t len, gp_err code, const char *needle)
{
    gp__hs_line l;
    gp_err e = gp__hs_parse(line, len, &l, err, sizeof err);
    if (e != code)
        GP_FAILF("parse of \"%.80s\": expected code %d, got %d (%s)", line, code, e, err);
    GP_CHECK_CONTAINS(err, needle);
    GP_CHECK(l.cert_b64 == NULL);
}

static void expect_fail_s(const char *line, const char *needle)
{
    expect_fail(line, strlen(line), GP_EPROTO, needle);
}

static gp_err parse_s(const char *line, gp__hs_line *l)
{
    return gp__hs_parse(line, strlen(line), l, err, sizeof err);
}

GP_TEST(parses_go_netrpc_line)
{
    gp__hs_line l;
    GP_CHECK_ERR(parse_s("1|3|unix|/tmp/plugin3392581192|netrpc|\n", &l), GP_OK);
    GP_CHECK_INT(l.core_version, ==, 1);
    GP_CHECK_INT(l.app_version, ==, 3);
    GP_CHECK_STR(l.network, "unix");
    GP_CHECK_STR(l.address, "/tmp/plugin3392581192");
    GP_CHECK_INT(l.protocol, ==, GP_PROTO_NETRPC);
    GP_CHECK(l.cert_b64 == NULL);
    GP_CHECK(!l.mux);
    GP_CHECK_STR(err, "");
    gp__hs_line_free(&l);
}

GP_TEST(parses_minimal_tcp_grpc_line)
{
    gp__hs_line l;
    GP_CHECK_ERR(parse_s("1|1|tcp|127.0.0.1:1234|grpc", &l), GP_OK);
    GP_CHECK_STR(l.network, "tcp");
    GP_CHECK_STR(l.address, "127.0.0.1:1234");
    GP_CHECK_INT(l.protocol, ==, GP_PROTO_GRPC);
    gp__hs_line_free(&l);
    GP_CHECK_ERR(parse_s("1|1|tcp|[::1]:80|grpc|", &l), GP_OK);
    GP_CHECK_STR(l.address, "[::1]:80");
    GP_CHECK_ERR(parse_s("1|1|tcp|localhost:80|grpc|", &l), GP_OK);
    GP_CHECK_STR(l.address, "localhost:80");
}

GP_TEST(four_fields_mean_netrpc)
{
    gp__hs_line l;
    GP_CHECK_ERR(parse_s("1|2|unix|/tmp/plugin1", &l), GP_OK);
    GP_CHECK_INT(l.protocol, ==, GP_PROTO_NETRPC);
    GP_CHECK_INT(l.app_version, ==, 2);
}

GP_TEST(seven_fields_mux)
{
    gp__hs_line l;
    /* As go-plugin 1.8 prints it (captured lines, spec A1.2). */
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/plugin1047336547|grpc||true\n", &l), ==, GP_OK);
    GP_CHECK(l.mux);
    GP_CHECK_INT(l.mux_field, ==, GP_HS_MUX_TRUE);
    GP_CHECK(l.cert_b64 == NULL);
    GP_CHECK(l.mux_text == NULL);
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|netrpc||true\n", &l), ==, GP_OK);
    GP_CHECK_INT(l.mux_field, ==, GP_HS_MUX_TRUE);
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc||false\n", &l), ==, GP_OK);
    GP_CHECK(!l.mux);
    GP_CHECK_INT(l.mux_field, ==, GP_HS_MUX_FALSE);
    /* Every spelling of Go's strconv.ParseBool. */
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    char line[64];
    for (size_t i = 0; i < 6; i++) {
        snprintf(line, sizeof line, "1|1|unix|/tmp/p|grpc||%s", yes[i]);
        GP_CHECK_INT(parse_s(line, &l), ==, GP_OK);
        GP_CHECK(l.mux && l.mux_field == GP_HS_MUX_TRUE);
        snprintf(line, sizeof line, "1|1|unix|/tmp/p|grpc||%s", no[i]);
        GP_CHECK_INT(parse_s(line, &l), ==, GP_OK);
        GP_CHECK(!l.mux && l.mux_field == GP_HS_MUX_FALSE);
    }
    /* Six fields or fewer: absent. */
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc|", &l), ==, GP_OK);
    GP_CHECK_INT(l.mux_field, ==, GP_HS_MUX_ABSENT);
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc", &l), ==, GP_OK);
    GP_CHECK_INT(l.mux_field, ==, GP_HS_MUX_ABSENT);
}

/* go-plugin 1.8 hosts ignore field 7 unless they asked to multiplex, so a
 * word that is not a Go boolean parses; gp__hs_check_mux judges it. */
GP_TEST(seven_fields_not_a_boolean)
{
    gp__hs_line l;
    static const char *const words[] = {"maybe", "", "yes", "tRUE", "true ", " 1", "10"};
    char line[64];
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        snprintf(line, sizeof line, "1|1|unix|/tmp/p|grpc||%s|x", words[i]);
        GP_CHECK_INT(parse_s(line, &l), ==, GP_OK);
        GP_CHECK(!l.mux);
        GP_CHECK_INT(l.mux_field, ==, GP_HS_MUX_INVALID);
        GP_CHECK_STR(l.mux_text, words[i]);
        gp__hs_line_free(&l);
        GP_CHECK(l.mux_text == NULL);
    }
    /* Trailing white space of the line is not part of field 7. */
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc||true \r\n", &l), ==, GP_OK);
    GP_CHECK_INT(l.mux_field, ==, GP_HS_MUX_TRUE);
    /* Control bytes are refused outright. */
    expect_fail_s("1|1|unix|/tmp/p|grpc||tr\tue|x",
                  "multiplex field (7) in handshake line has control bytes: \"tr\\x09ue\"");
}

GP_TEST(extra_fields_ignored)
{
    /* go-plugin 1.8 hosts split on every '|' and ignore fields after the
     * 7th ("...|true|extra" is accepted, spec A1.2). */
    gp__hs_line l;
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc||true|x", &l), ==, GP_OK);
    GP_CHECK_INT(l.mux_field, ==, GP_HS_MUX_TRUE);
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc||false|x|y|z|||", &l), ==, GP_OK);
    GP_CHECK_INT(l.mux_field, ==, GP_HS_MUX_FALSE);
    GP_CHECK_STR(l.address, "/tmp/p");
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc|" CERT60 "|true|\x01", &l), ==, GP_OK);
    GP_CHECK_STR(l.cert_b64, CERT60);
    gp__hs_line_free(&l);
    /* ...but the first seven are still checked. */
    expect_fail_s("1|1|unix|/tmp/p|grpcx||true|x", "unknown protocol \"grpcx\"");
}

GP_TEST(check_mux)
{
    gp__hs_line l;
    bool use = true;
    /* Not requested: nothing is checked, garbage included. */
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc||maybe", &l), ==, GP_OK);
    GP_CHECK_INT(gp__hs_check_mux(&l, false, &use, err, sizeof err), ==, GP_OK);
    GP_CHECK(!use);
    GP_CHECK_STR(err, "");
    /* Requested: go-plugin 1.8's words, quoted Go-style. */
    GP_CHECK_INT(gp__hs_check_mux(&l, true, &use, err, sizeof err), ==, GP_EPROTO);
    GP_CHECK_STR(err, "error parsing \"maybe\" as a boolean for gRPC broker multiplexing support");
    GP_CHECK(!use);
    gp__hs_line_free(&l);
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc||", &l), ==, GP_OK);
    GP_CHECK_INT(gp__hs_check_mux(&l, true, NULL, err, sizeof err), ==, GP_EPROTO);
    GP_CHECK_STR(err, "error parsing \"\" as a boolean for gRPC broker multiplexing support");
    gp__hs_line_free(&l);

    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc|", &l), ==, GP_OK);
    GP_CHECK_INT(gp__hs_check_mux(&l, true, &use, err, sizeof err), ==, GP_EPROTO);
    GP_CHECK_STR(err, "client requested gRPC broker multiplexing but plugin does not support the "
                      "feature; for Go plugins, you will need to update the "
                      "github.com/hashicorp/go-plugin dependency and recompile");
    GP_CHECK_INT(gp__hs_check_mux(&l, false, &use, err, sizeof err), ==, GP_OK);

    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc||0", &l), ==, GP_OK);
    GP_CHECK_INT(gp__hs_check_mux(&l, true, &use, err, sizeof err), ==, GP_EPROTO);
    GP_CHECK_STR(err, "client requested gRPC broker multiplexing but plugin does not support the "
                      "feature");

    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|grpc||true", &l), ==, GP_OK);
    GP_CHECK_INT(gp__hs_check_mux(&l, true, &use, err, sizeof err), ==, GP_OK);
    GP_CHECK(use);
    GP_CHECK_STR(err, "");
    GP_CHECK_INT(gp__hs_check_mux(&l, false, &use, err, sizeof err), ==, GP_OK);
    GP_CHECK(!use);

    /* netrpc: field 7 is ignored, present or not, even when requested. */
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|netrpc|", &l), ==, GP_OK);
    GP_CHECK_INT(gp__hs_check_mux(&l, true, &use, err, sizeof err), ==, GP_OK);
    GP_CHECK(!use);
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|netrpc||true", &l), ==, GP_OK);
    GP_CHECK_INT(gp__hs_check_mux(&l, true, &use, err, sizeof err), ==, GP_OK);
    GP_CHECK(!use);
    GP_CHECK_INT(parse_s("1|1|unix|/tmp/p|netrpc||maybe", &l), ==, GP_OK);
    GP_CHECK_INT(gp__hs_check_mux(&l, true, &use, err, sizeof err), ==, GP_OK);
    gp__hs_line_free(&l);

    GP_CHECK_INT(gp__hs_check_mux(NULL, true, &use, err, sizeof err), ==, GP_EINVAL);
}

GP_TEST(mux_env)
{
    bool print = false, mux = true;
    gp__hs_mux_env(NULL, &print, &mux);
    GP_CHECK(!print && !mux);
    gp__hs_mux_env("", &print, &mux);
    GP_CHECK(!print && !mux);
    /* Any non-empty value prints field 7 (go-plugin 1.8, spec A1.2)... */
    static const char *const off[] = {"false", "0", "yes", "F", " true", "maybe"};
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        print = false, mux = true;
        gp__hs_mux_env(off[i], &print, &mux);
        GP_CHECK(print);
        GP_CHECK(!mux);
    }
    /* ...and only a Go boolean true multiplexes. */
    static const char *const on[] = {"true", "1", "T", "t", "TRUE", "True"};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        print = false, mux = false;
        gp__hs_mux_env(on[i], &print, &mux);
        GP_CHECK(print && mux);
    }
    gp__hs_mux_env("true", NULL, NULL);
    GP_CHECK_STR(gp__hs_mux_env_value(true), "true");
    GP_CHECK_STR(gp__hs_mux_env_value(false), "false");
}

GP_TEST(crlf_and_surrounding_space)
{
    gp__hs_line l;
    GP_CHECK_ERR(parse_s("1|1|unix|/tmp/p|grpc|\r\n", &l), GP_OK);
    GP_CHECK_INT(l.protocol, ==, GP_PROTO_GRPC);
    GP_CHECK_ERR(parse_s("  \t1|1|unix|/tmp/p|grpc  \r\n", &l), GP_OK);
    GP_CHECK_STR(l.address, "/tmp/p");
    GP_CHECK_INT(l.core_version, ==, 1);
    GP_CHECK_INT(l.protocol, ==, GP_PROTO_GRPC);
    /* Space inside a field is not trimmed (Go does not either). */
    expect_fail_s("1| 1|unix|/tmp/p|grpc", "bad app protocol version");
    expect_fail_s("1|1|unix|/tmp/p|grpc |", "unknown protocol \"grpc \"");
}

GP_TEST(fewer_than_four_fields)
{
    expect_fail_s("garbage\n", "unrecognized handshake line from plugin: expected "
                               "CORE|APP|NETWORK|ADDRESS|PROTOCOL, got \"garbage\"");
    expect_fail_s("1|1|unix", "unrecognized handshake line");
    expect_fail_s("", "got \"\"");
    expect_fail_s("   \r\n", "got \"\"");
    /* Raw bytes are escaped in the message. */
    expect_fail_s("\x1b[31mred\xff", "got \"\\x1b[31mred\\xff\"");
}

GP_TEST(bad_core_version)
{
    expect_fail_s("x|1|unix|/tmp/p|grpc|",
                  "bad core protocol version in handshake line: expected a "
                  "decimal number, got \"x\"");
    expect_fail_s("|1|unix|/tmp/p|grpc|", "bad core protocol version");
    expect_fail_s("-1|1|unix|/tmp/p|grpc|", "got \"-1\"");
    expect_fail_s("+1|1|unix|/tmp/p|grpc|", "got \"+1\"");
    expect_fail_s("1.0|1|unix|/tmp/p|grpc|", "got \"1.0\"");
    /* Syntax is fine, so parse accepts 2; check rejects it. */
    gp__hs_line l;
    GP_CHECK_ERR(parse_s("2|1|unix|/tmp/p|grpc|", &l), GP_OK);
    unsigned v[] = {1};
    GP_CHECK_ERR(gp__hs_check(&l, v, 1, GP_PROTO_GRPC, err, sizeof err), GP_EVERSION);
    GP_CHECK_CONTAINS(err, "incompatible core protocol version with plugin: plugin offered 2, "
                           "host speaks 1");
}

GP_TEST(huge_numbers)
{
    gp__hs_line l;
    GP_CHECK_ERR(parse_s("1|4294967295|unix|/tmp/p|grpc|", &l), GP_OK);
    GP_CHECK_INT(l.app_version, ==, 4294967295u);
    GP_CHECK_ERR(parse_s("0001|007|unix|/tmp/p|grpc|", &l), GP_OK);
    GP_CHECK_INT(l.core_version, ==, 1);
    GP_CHECK_INT(l.app_version, ==, 7);
    expect_fail_s("1|4294967296|unix|/tmp/p|grpc|",
                  "bad app protocol version in handshake line: expected a decimal "
                  "number up to 4294967295, got \"4294967296\"");
    expect_fail_s("99999999999999999999999999999999|1|unix|/tmp/p|grpc|", "up to 4294967295");
    expect_fail_s("1|18446744073709551617|unix|/tmp/p|grpc|", "up to 4294967295");
    expect_fail_s("1|99999999999999999999x|unix|/tmp/p|grpc|", "expected a decimal number, got");
    expect_fail_s("1|1|tcp|127.0.0.1:65536|grpc|", "bad tcp address \"127.0.0.1:65536\"");
    expect_fail_s("1|1|tcp|127.0.0.1:4294967297|grpc|", "bad tcp address");
}

GP_TEST(bad_app_version)
{
    expect_fail_s("1|v2|unix|/tmp/p|grpc|", "bad app protocol version");
    gp__hs_line l;
    GP_CHECK_ERR(parse_s("1|2|unix|/tmp/p|grpc|", &l), GP_OK);
    unsigned v[] = {3, 1};
    GP_CHECK_ERR(gp__hs_check(&l, v, 2, GP_PROTO_GRPC, err, sizeof err), GP_EVERSION);
    GP_CHECK_STR(err, "incompatible API version with plugin: plugin offered 2, host accepts 1,3");
    GP_CHECK_ERR(gp__hs_check(&l, NULL, 0, GP_PROTO_GRPC, err, sizeof err), GP_EVERSION);
    GP_CHECK_CONTAINS(err, "host accepts none");
    unsigned ok[] = {1, 2};
    GP_CHECK_ERR(gp__hs_check(&l, ok, 2, GP_PROTO_GRPC, err, sizeof err), GP_OK);
}

GP_TEST(unknown_network)
{
    expect_fail_s("1|1|udp|127.0.0.1:1|grpc|",
                  "unknown network \"udp\" in handshake line (expected unix or tcp)");
    expect_fail_s("1|1|UNIX|/tmp/p|grpc|", "unknown network \"UNIX\"");
    expect_fail_s("1|1||/tmp/p|grpc|", "unknown network \"\"");
    expect_fail_s("1|1|unixgram|/tmp/p|grpc|", "unknown network \"unixgram\"");
}

GP_TEST(bad_address)
{
    expect_fail_s("1|1|unix||grpc|", "empty address");
    expect_fail_s("1|1|tcp||grpc|", "empty address");
    expect_fail_s("1|1|tcp|127.0.0.1|grpc|", "bad tcp address \"127.0.0.1\"");
    expect_fail_s("1|1|tcp|127.0.0.1:|grpc|", "bad tcp address");
    expect_fail_s("1|1|tcp|127.0.0.1:0|grpc|", "bad tcp address");
    expect_fail_s("1|1|tcp|:80|grpc|", "bad tcp address");
    expect_fail_s("1|1|tcp|example.com:80|grpc|", "numeric IP or localhost");
    expect_fail_s("1|1|tcp|::1:80|grpc|", "bad tcp address");
    expect_fail_s("1|1|tcp|[::1:80|grpc|", "bad tcp address");
    expect_fail_s("1|1|tcp|[]:80|grpc|", "bad tcp address");
    expect_fail_s("1|1|tcp|256.0.0.1:80|grpc|", "bad tcp address");
    expect_fail_s("1|1|unix|/tmp/a\tb|grpc|", "has control bytes: \"/tmp/a\\x09b\"");

    char line[400], path[200];
    memset(path, 'a', sizeof path);
    path[0] = '/';
    path[107] = 0;
    snprintf(line, sizeof line, "1|1|unix|%s|grpc|", path);
    gp__hs_line l;
    GP_CHECK_ERR(parse_s(line, &l), GP_OK);
    GP_CHECK_INT(strlen(l.address), ==, 107);
    path[107] = 'a';
    path[108] = 0;
    snprintf(line, sizeof line, "1|1|unix|%s|grpc|", path);
    expect_fail_s(line, "unix socket path in handshake line is 108 bytes; expected "
                        "at most 107");
}

GP_TEST(protocol_field)
{
    /* go-plugin 1.0.1 rejects an empty protocol field. */
    expect_fail_s("1|1|unix|/tmp/p||", "empty protocol in handshake line (expected "
                                       "grpc or netrpc)");
    expect_fail_s("1|1|unix|/tmp/p|", "empty protocol");
    expect_fail_s("1|1|unix|/tmp/p|http2|", "unknown protocol \"http2\" in handshake line");
    expect_fail_s("1|1|unix|/tmp/p|GRPC|", "unknown protocol \"GRPC\"");

    gp__hs_line l;
    GP_CHECK_ERR(parse_s("1|1|unix|/tmp/p|grpc|", &l), GP_OK);
    unsigned v[] = {1};
    GP_CHECK_ERR(gp__hs_check(&l, v, 1, GP_PROTO_NETRPC, err, sizeof err), GP_EPROTO);
    GP_CHECK_STR(err, "unsupported plugin protocol \"grpc\": host allows netrpc");
    /* 0 allowed = go-plugin's default list, netrpc only. */
    GP_CHECK_ERR(gp__hs_check(&l, v, 1, 0, err, sizeof err), GP_EPROTO);
    GP_CHECK_ERR(gp__hs_check(&l, v, 1, GP_PROTO_GRPC | GP_PROTO_NETRPC, err, sizeof err), GP_OK);
    GP_CHECK_ERR(parse_s("1|1|unix|/tmp/p|netrpc|", &l), GP_OK);
    GP_CHECK_ERR(gp__hs_check(&l, v, 1, GP_PROTO_GRPC, err, sizeof err), GP_EPROTO);
    GP_CHECK_STR(err, "unsupported plugin protocol \"netrpc\": host allows grpc");
    GP_CHECK_ERR(gp__hs_check(&l, v, 1, 0, err, sizeof err), GP_OK);
}

GP_TEST(cert_field)
{
    gp__hs_line l;
    GP_CHECK_ERR(parse_s("1|1|unix|/tmp/p|grpc|" CERT60 "\n", &l), GP_OK);
    GP_CHECK_STR(l.cert_b64, CERT60);
    gp__hs_line_free(&l);
    GP_CHECK(l.cert_b64 == NULL);
    gp__hs_line_free(&l); /* twice is fine */

    /* 50 bytes or fewer: legacy filler, ignored as go-plugin does. */
    GP_CHECK_ERR(parse_s("1|1|unix|/tmp/p|grpc|not a cert at all, just words", &l), GP_OK);
    GP_CHECK(l.cert_b64 == NULL);

    expect_fail_s("1|1|unix|/tmp/p|grpc|" CERT60 "AA==",
                  "expected unpadded standard base64, got byte '=' (padding) at offset 62");
    expect_fail_s("1|1|unix|/tmp/p|grpc|" CERT60 "-_", "byte outside the alphabet at offset 60");
    expect_fail_s("1|1|unix|/tmp/p|grpc|" CERT60 "A", "61 base64 characters");
    /* The cert is freed when a later field fails. */
    expect_fail_s("1|1|unix|/tmp/p|grpc|" CERT60 "|no\x01pe", "multiplex field (7)");
}

GP_TEST(megabyte_line)
{
    size_t n = 1u << 20;
    char *big = malloc(n);
    memset(big, 'A', n);
    expect_fail(big, n, GP_EPROTO,
                "handshake line from plugin is 1048576 bytes; expected at most 65536");
    GP_CHECK_CONTAINS(err, "... (1048576 bytes)");
    GP_CHECK_INT(strlen(err), <, 300);
    /* Just under the limit, but one giant field: still a clear error. */
    memcpy(big, "1|1|unix|/", 10);
    expect_fail(big, 60000, GP_EPROTO,
                "unix socket path in handshake line is 59991 bytes; expected at "
                "most 107");
    GP_CHECK_CONTAINS(err, "... (59991 bytes)");
    memcpy(big, "1|1|unix|/tmp/p|grpc|", 21);
    memset(big + 21, 'B', 60000 - 21);
    gp__hs_line l;
    GP_CHECK_ERR(gp__hs_parse(big, 60000, &l, err, sizeof err), GP_OK);
    GP_CHECK_INT(strlen(l.cert_b64), ==, 60000 - 21);
    gp__hs_line_free(&l);
    free(big);
}

GP_TEST(embedded_nul)
{
    static const char line[] = "1|1|unix|/tmp/p\0x|grpc|\n";
    expect_fail(line, sizeof line - 1, GP_EPROTO,
                "has a NUL byte at offset 15: \"1|1|unix|/tmp/p\\x00x|grpc|\\x0a\"");
    static const char head[] = "\0"
                               "1|1|unix|/tmp/p|grpc|";
    expect_fail(head, sizeof head - 1, GP_EPROTO, "NUL byte at offset 0");
}

GP_TEST(null_arguments)
{
    gp__hs_line l;
    GP_CHECK_ERR(gp__hs_parse(NULL, 3, &l, err, sizeof err), GP_EINVAL);
    GP_CHECK_ERR(gp__hs_parse("x", 1, NULL, err, sizeof err), GP_EINVAL);
    GP_CHECK_ERR(gp__hs_parse(NULL, 0, &l, NULL, 0), GP_EPROTO);
    /* A tiny error buffer is truncated, not overrun. */
    char small[8];
    GP_CHECK_ERR(gp__hs_parse("garbage", 7, &l, small, sizeof small), GP_EPROTO);
    GP_CHECK_INT(strlen(small), ==, 7);
}

GP_TEST(format_lines)
{
    gp__hs_line l = {.core_version = 1,
                     .app_version = 1,
                     .network = "unix",
                     .address = "/tmp/plugin123",
                     .protocol = GP_PROTO_GRPC};
    char buf[512];
    /* Six fields, empty cert, as Go servers print. */
    GP_CHECK_INT(gp__hs_format(&l, buf, sizeof buf), ==, 30);
    GP_CHECK_STR(buf, "1|1|unix|/tmp/plugin123|grpc|\n");
    l.mux = true;
    gp__hs_format(&l, buf, sizeof buf);
    GP_CHECK_STR(buf, "1|1|unix|/tmp/plugin123|grpc||true\n");
    l.mux = false;
    l.mux_field = GP_HS_MUX_TRUE;
    gp__hs_format(&l, buf, sizeof buf);
    GP_CHECK_STR(buf, "1|1|unix|/tmp/plugin123|grpc||true\n");
    /* A plugin that does not multiplex but was asked (the variable set). */
    l.mux_field = GP_HS_MUX_FALSE;
    gp__hs_format(&l, buf, sizeof buf);
    GP_CHECK_STR(buf, "1|1|unix|/tmp/plugin123|grpc||false\n");
    /* A plugin prints true or false, never anything else. */
    l.mux_field = GP_HS_MUX_INVALID;
    l.mux_text = (char *)"maybe";
    GP_CHECK_INT(gp__hs_format(&l, buf, sizeof buf), ==, -1);
    l.mux_text = NULL;
    l.mux_field = GP_HS_MUX_ABSENT;
    l.cert_b64 = (char *)CERT60;
    gp__hs_format(&l, buf, sizeof buf);
    GP_CHECK_STR(buf, "1|1|unix|/tmp/plugin123|grpc|" CERT60 "\n");
    l.cert_b64 = NULL;
    l.protocol = GP_PROTO_NETRPC;
    strcpy(l.network, "tcp");
    strcpy(l.address, "127.0.0.1:10000");
    gp__hs_format(&l, buf, sizeof buf);
    GP_CHECK_STR(buf, "1|1|tcp|127.0.0.1:10000|netrpc|\n");

    /* Exactly fitting vs one byte short. */
    GP_CHECK_INT(gp__hs_format(&l, buf, 33), ==, 32);
    GP_CHECK_INT(gp__hs_format(&l, buf, 32), ==, -1);
    /* Lines a host could not read back are refused. */
    gp__hs_line bad = l;
    strcpy(bad.network, "udp");
    GP_CHECK_INT(gp__hs_format(&bad, buf, sizeof buf), ==, -1);
    bad = l;
    bad.protocol = GP_PROTO_NONE;
    GP_CHECK_INT(gp__hs_format(&bad, buf, sizeof buf), ==, -1);
    bad = l;
    strcpy(bad.address, "/tmp/a|b");
    GP_CHECK_INT(gp__hs_format(&bad, buf, sizeof buf), ==, -1);
    bad.address[0] = 0;
    GP_CHECK_INT(gp__hs_format(&bad, buf, sizeof buf), ==, -1);
    bad = l;
    memset(bad.address, 'a', sizeof bad.address);
    GP_CHECK_INT(gp__hs_format(&bad, buf, sizeof buf), ==, -1);
    bad = l;
    memcpy(bad.network, "tcptcptc", sizeof bad.network);
    GP_CHECK_INT(gp__hs_format(&bad, buf, sizeof buf), ==, -1);
    GP_CHECK_INT(gp__hs_format(NULL, buf, sizeof buf), ==, -1);
}

GP_TEST(format_then_parse)
{
    gp__hs_line l = {.core_version = 1,
                     .app_version = 42,
                     .network = "unix",
                     .address = "/tmp/plugin9",
                     .protocol = GP_PROTO_GRPC,
                     .mux = true,
                     .cert_b64 = (char *)CERT60};
    char buf[512];
    int n = gp__hs_format(&l, buf, sizeof buf);
    gp__hs_line back;
    GP_CHECK_ERR(gp__hs_parse(buf, (size_t)n, &back, err, sizeof err), GP_OK);
    GP_CHECK_INT(back.app_version, ==, 42);
    GP_CHECK(back.mux);
    GP_CHECK_INT(back.mux_field, ==, GP_HS_MUX_TRUE);
    GP_CHECK_STR(back.cert_b64, CERT60);
    GP_CHECK_STR(back.address, "/tmp/plugin9");
    gp__hs_line_free(&back);
    /* Field 7 false with a certificate, as a 1.8 host would read it. */
    l.mux = false;
    l.mux_field = GP_HS_MUX_FALSE;
    n = gp__hs_format(&l, buf, sizeof buf);
    GP_CHECK_INT(gp__hs_parse(buf, (size_t)n, &back, err, sizeof err), ==, GP_OK);
    GP_CHECK_INT(back.mux_field, ==, GP_HS_MUX_FALSE);
    GP_CHECK_STR(back.cert_b64, CERT60);
    gp__hs_line_free(&back);
}

GP_TEST(versions_env)
{
    unsigned v[GP_HS_MAX_VERSIONS];
    size_t n;
    GP_CHECK_ERR(gp__hs_parse_versions("5,3,4", v, GP_HS_MAX_VERSIONS, &n, err, sizeof err), GP_OK);
    GP_CHECK_INT(n, ==, 3);
    GP_CHECK(v[0] == 5 && v[1] == 3 && v[2] == 4);
    GP_CHECK_STR(err, "");
    GP_CHECK_ERR(gp__hs_parse_versions("", v, GP_HS_MAX_VERSIONS, &n, err, sizeof err), GP_OK);
    GP_CHECK_INT(n, ==, 0);
    GP_CHECK_ERR(gp__hs_parse_versions(NULL, v, GP_HS_MAX_VERSIONS, &n, err, sizeof err), GP_OK);
    GP_CHECK_INT(n, ==, 0);

    /* Bad entries are skipped and named; the good ones are kept. */
    GP_CHECK_ERR(
        gp__hs_parse_versions("1,x,,3, 4,-2,1", v, GP_HS_MAX_VERSIONS, &n, err, sizeof err), GP_OK);
    GP_CHECK_INT(n, ==, 2);
    GP_CHECK(v[0] == 1 && v[1] == 3);
    GP_CHECK_CONTAINS(err, "ignoring bad entries in PLUGIN_PROTOCOL_VERSIONS (expected decimal "
                           "numbers): \"x\", \"\", \" 4\" and 1 more");
    GP_CHECK_ERR(gp__hs_parse_versions("4294967296,2", v, GP_HS_MAX_VERSIONS, &n, err, sizeof err),
                 GP_OK);
    GP_CHECK_INT(n, ==, 1);
    GP_CHECK_CONTAINS(err, "\"4294967296\"");
    GP_CHECK_ERR(gp__hs_parse_versions(",", v, GP_HS_MAX_VERSIONS, &n, err, sizeof err), GP_OK);
    GP_CHECK_INT(n, ==, 0);

    /* More than fit: the first ones are kept. */
    GP_CHECK_ERR(gp__hs_parse_versions("1,2,3,4", v, 2, &n, err, sizeof err), GP_OK);
    GP_CHECK_INT(n, ==, 2);
    GP_CHECK(v[0] == 1 && v[1] == 2);
    GP_CHECK_CONTAINS(err, "more than 2 versions; ignoring 2");
    GP_CHECK_ERR(gp__hs_parse_versions("1", NULL, 0, &n, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__hs_parse_versions("1", v, 4, NULL, err, sizeof err), GP_EINVAL);
}

GP_TEST(negotiation)
{
    bool common;
    unsigned ours[] = {2, 4, 3};
    unsigned t1[] = {5, 3, 4};
    GP_CHECK_INT(gp__hs_negotiate(t1, 3, ours, 3, &common), ==, 4);
    GP_CHECK(common);
    unsigned t2[] = {1, 2};
    GP_CHECK_INT(gp__hs_negotiate(t2, 2, ours, 3, &common), ==, 2);
    GP_CHECK(common);
    unsigned t3[] = {7};
    GP_CHECK_INT(gp__hs_negotiate(t3, 1, ours, 3, &common), ==, 2);
    GP_CHECK(!common);
    GP_CHECK_INT(gp__hs_negotiate(NULL, 0, ours, 3, &common), ==, 2);
    GP_CHECK(!common);
    GP_CHECK_INT(gp__hs_negotiate(t1, 3, NULL, 0, &common), ==, 0);
    GP_CHECK(!common);
    GP_CHECK_INT(gp__hs_negotiate(t1, 3, ours, 3, NULL), ==, 4);
}

GP_TEST(ports_env)
{
    unsigned lo = 9, hi = 9;
    GP_CHECK_ERR(gp__hs_parse_ports("10000", "25000", &lo, &hi, err, sizeof err), GP_OK);
    GP_CHECK(lo == 10000 && hi == 25000);
    GP_CHECK_ERR(gp__hs_parse_ports(NULL, "", &lo, &hi, err, sizeof err), GP_OK);
    GP_CHECK(lo == 0 && hi == 0);
    GP_CHECK_ERR(gp__hs_parse_ports("0", "65535", &lo, &hi, err, sizeof err), GP_OK);
    GP_CHECK(hi == 65535);
    GP_CHECK_ERR(gp__hs_parse_ports("10000", "65536", &lo, &hi, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "bad PLUGIN_MAX_PORT: expected a port number 0..65535, got \"65536\"");
    GP_CHECK_ERR(gp__hs_parse_ports("abc", "1", &lo, &hi, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "bad PLUGIN_MIN_PORT");
    GP_CHECK_ERR(gp__hs_parse_ports("-1", "1", &lo, &hi, err, sizeof err), GP_EINVAL);
    GP_CHECK_ERR(gp__hs_parse_ports("99999999999999999999999", "1", &lo, &hi, err, sizeof err),
                 GP_EINVAL);
    /* As Go: only a minimum set means max 0, which is below it. */
    GP_CHECK_ERR(gp__hs_parse_ports("25000", NULL, &lo, &hi, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "bad port range: PLUGIN_MIN_PORT 25000 is greater than PLUGIN_MAX_PORT 0");
    GP_CHECK_ERR(gp__hs_parse_ports("1", "1", NULL, &hi, err, sizeof err), GP_EINVAL);
}

GP_TEST(format_versions)
{
    char buf[64];
    unsigned v[] = {1, 3, 4294967295u};
    GP_CHECK_INT(gp__hs_format_versions(v, 2, buf, sizeof buf), ==, 3);
    GP_CHECK_STR(buf, "1,3");
    GP_CHECK_INT(gp__hs_format_versions(v, 3, buf, sizeof buf), ==, 14);
    GP_CHECK_STR(buf, "1,3,4294967295");
    GP_CHECK_INT(gp__hs_format_versions(v, 0, buf, sizeof buf), ==, 0);
    GP_CHECK_STR(buf, "");
    GP_CHECK_INT(gp__hs_format_versions(v, 2, buf, 3), ==, -1);
    GP_CHECK_STR(buf, "");
    GP_CHECK_INT(gp__hs_format_versions(v, 2, buf, 4), ==, 3);
}

GP_TEST(protocol_names)
{
    GP_CHECK_STR(gp_protocol_name(GP_PROTO_GRPC), "grpc");
    GP_CHECK_STR(gp_protocol_name(GP_PROTO_NETRPC), "netrpc");
    GP_CHECK_STR(gp_protocol_name(GP_PROTO_NONE), "");
    GP_CHECK_STR(gp_protocol_name((gp_protocol)3), "");
    GP_CHECK_INT(gp_protocol_parse("grpc"), ==, GP_PROTO_GRPC);
    GP_CHECK_INT(gp_protocol_parse("netrpc"), ==, GP_PROTO_NETRPC);
    GP_CHECK_INT(gp_protocol_parse("GRPC"), ==, GP_PROTO_NONE);
    GP_CHECK_INT(gp_protocol_parse(""), ==, GP_PROTO_NONE);
    GP_CHECK_INT(gp_protocol_parse(NULL), ==, GP_PROTO_NONE);
}

int main(void)
{
    GP_RUN(parses_go_netrpc_line);
    GP_RUN(parses_minimal_tcp_grpc_line);
    GP_RUN(four_fields_mean_netrpc);
    GP_RUN(seven_fields_mux);
    GP_RUN(seven_fields_not_a_boolean);
    GP_RUN(extra_fields_ignored);
    GP_RUN(check_mux);
    GP_RUN(mux_env);
    GP_RUN(crlf_and_surrounding_space);
    GP_RUN(fewer_than_four_fields);
    GP_RUN(bad_core_version);
    GP_RUN(huge_numbers);
    GP_RUN(bad_app_version);
    GP_RUN(unknown_network);
    GP_RUN(bad_address);
    GP_RUN(protocol_field);
    GP_RUN(cert_field);
    GP_RUN(megabyte_line);
    GP_RUN(embedded_nul);
    GP_RUN(null_arguments);
    GP_RUN(format_lines);
    GP_RUN(format_then_parse);
    GP_RUN(versions_env);
    GP_RUN(negotiation);
    GP_RUN(ports_env);
    GP_RUN(format_versions);
    GP_RUN(protocol_names);
    return gp_test_done();
}
