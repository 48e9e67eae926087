/* gp_bytes fields, release and hostile input, on the real generated KV and
 * plugin-service messages. */
#include <goplugin/method.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/wire/grpc/proto/grpc_broker.pb.h"
#include "transport/wire/grpc/proto/grpc_stdio.pb.h"
#include "transport/wire/grpc/proto/health.pb.h"
#include "transport/testing/proto/kv.pb.h"
#include "transport/msg/test/utf8.pb.h"
#include "transport/msg/msg.h"
#include "transport/testing/gp_test.h"

static uint8_t *encode(const pb_msgdesc_t *d, const void *m, size_t *n)
{
    char err[128] = "";
    if (gp__msg_size(d, m, n, "msg", err, sizeof err) != GP_OK) {
        GP_FAILF("size: %s", err);
        return NULL;
    }
    uint8_t *buf = malloc(*n ? *n : 1);
    size_t w = 0;
    if (gp__msg_encode_buf(d, m, buf, *n, &w, "msg", err, sizeof err) != GP_OK) {
        GP_FAILF("encode: %s", err);
        free(buf);
        return NULL;
    }
    GP_CHECK_INT(w, ==, *n);
    return buf;
}

GP_TEST(put_request_round_trips_one_mib)
{
    size_t big = 1 << 20;
    proto_PutRequest req;
    memset(&req, 0, sizeof req);
    req.key = "k";
    req.value.data = malloc(big);
    req.value.len = big;
    for (size_t i = 0; i < big; i++)
        req.value.data[i] = (uint8_t)(i * 7);
    size_t n = 0;
    uint8_t *buf = encode(proto_PutRequest_fields, &req, &n);
    GP_CHECK_INT(n, ==, big + 3 + 4); /* key tag+len+1, value tag + 3-byte len */

    proto_PutRequest out;
    memset(&out, 0, sizeof out);
    char err[128] = "";
    GP_CHECK_ERR(
        gp__msg_decode_buf(proto_PutRequest_fields, buf, n, &out, "PutRequest", err, sizeof err),
        GP_OK);
    GP_CHECK_STR(out.key, "k");
    GP_CHECK_INT(out.value.len, ==, big);
    GP_CHECK(out.value.data && memcmp(out.value.data, req.value.data, big) == 0);
    gp_msg_release(proto_PutRequest_fields, &out);
    GP_CHECK(out.key == NULL && out.value.data == NULL && out.value.len == 0);
    free(req.value.data);
    free(buf);
}

GP_TEST(empty_values_encode_to_nothing)
{
    proto_PutRequest req;
    memset(&req, 0, sizeof req);
    size_t n = 99;
    uint8_t *buf = encode(proto_PutRequest_fields, &req, &n);
    GP_CHECK_INT(n, ==, 0);
    proto_PutRequest out;
    memset(&out, 0, sizeof out);
    char err[128];
    GP_CHECK_ERR(
        gp__msg_decode_buf(proto_PutRequest_fields, buf, 0, &out, "PutRequest", err, sizeof err),
        GP_OK);
    GP_CHECK(out.key == NULL && out.value.data == NULL && out.value.len == 0);
    gp_msg_release(proto_PutRequest_fields, &out);
    free(buf);
    gp_msg_release(proto_PutRequest_fields, NULL); /* no-op */
}

GP_TEST(repeated_bytes_field_keeps_the_last)
{
    /* value=2 twice: "ab" then "xyz"; the first must be freed (ASan). */
    const uint8_t in[] = {0x12, 2, 'a', 'b', 0x12, 3, 'x', 'y', 'z'};
    proto_PutRequest out;
    memset(&out, 0, sizeof out);
    char err[128];
    GP_CHECK_ERR(gp__msg_decode_buf(proto_PutRequest_fields, in, sizeof in, &out, "PutRequest", err,
                                    sizeof err),
                 GP_OK);
    GP_CHECK_INT(out.value.len, ==, 3);
    GP_CHECK(out.value.data && memcmp(out.value.data, "xyz", 3) == 0);
    gp_msg_release(proto_PutRequest_fields, &out);
}

GP_TEST(declared_two_gib_fails_before_allocating)
{
    /* Length varint 0x80000000 for the bytes field and for the string. */
    const uint8_t bytes2g[] = {0x12, 0x80, 0x80, 0x80, 0x80, 0x08, 'x'};
    const uint8_t str2g[] = {0x0a, 0x80, 0x80, 0x80, 0x80, 0x08, 'x'};
    proto_PutRequest out;
    memset(&out, 0, sizeof out);
    char err[128] = "";
    GP_CHECK_ERR(gp__msg_decode_buf(proto_PutRequest_fields, bytes2g, sizeof bytes2g, &out,
                                    "PutRequest", err, sizeof err),
                 GP_EPROTO);
    /* The stream-length check fires, not an allocation failure. */
    GP_CHECK_CONTAINS(err, "decode PutRequest: parent stream too short");
    GP_CHECK(out.key == NULL && out.value.data == NULL);
    GP_CHECK_ERR(gp__msg_decode_buf(proto_PutRequest_fields, str2g, sizeof str2g, &out,
                                    "PutRequest", err, sizeof err),
                 GP_EPROTO);
    GP_CHECK_CONTAINS(err, "decode PutRequest:");
    GP_CHECK(strstr(err, "memory") == NULL);
    GP_CHECK(out.key == NULL && out.value.data == NULL);
}

GP_TEST(truncated_input_fails_and_frees)
{
    proto_PutRequest req;
    memset(&req, 0, sizeof req);
    req.key = "hello";
    uint8_t val[300];
    memset(val, 'v', sizeof val);
    req.value.data = val;
    req.value.len = sizeof val;
    size_t n = 0;
    uint8_t *buf = encode(proto_PutRequest_fields, &req, &n);
    int failures = 0;
    for (size_t cut = 1; cut < n; cut++) {
        proto_PutRequest out;
        memset(&out, 0, sizeof out);
        char err[128] = "";
        gp_err e = gp__msg_decode_buf(proto_PutRequest_fields, buf, cut, &out, "PutRequest", err,
                                      sizeof err);
        if (e != GP_OK) {
            failures++;
            GP_CHECK(out.key == NULL && out.value.data == NULL); /* nothing left to free */
            GP_CHECK_CONTAINS(err, "decode PutRequest: ");
        } else {
            gp_msg_release(proto_PutRequest_fields, &out); /* cut at a field boundary */
        }
    }
    GP_CHECK_INT(failures, >=, (int)n - 3);
    free(buf);
}

GP_TEST(garbage_fails_cleanly)
{
    const uint8_t junk[][4] = {{0xff, 0xff, 0xff, 0xff}, {0x0f, 0, 0, 0}, {0x0a, 0x05, 'a', 0}};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        proto_PutRequest out;
        memset(&out, 0, sizeof out);
        char err[128] = "";
        GP_CHECK_ERR(gp__msg_decode_buf(proto_PutRequest_fields, junk[i], 4, &out, "PutRequest",
                                        err, sizeof err),
                     GP_EPROTO);
        GP_CHECK(err[0] != '\0');
    }
}

GP_TEST(release_recurses_into_submessages)
{
    plugin_ConnInfo ci;
    memset(&ci, 0, sizeof ci);
    ci.service_id = 7;
    ci.network = "unix";
    ci.address = "/tmp/x";
    ci.has_knock = true;
    ci.knock.knock = true;
    ci.knock.error = "no listener";
    size_t n = 0;
    uint8_t *buf = encode(plugin_ConnInfo_fields, &ci, &n);
    plugin_ConnInfo out;
    memset(&out, 0, sizeof out);
    char err[128];
    GP_CHECK_ERR(
        gp__msg_decode_buf(plugin_ConnInfo_fields, buf, n, &out, "ConnInfo", err, sizeof err),
        GP_OK);
    GP_CHECK_INT(out.service_id, ==, 7);
    GP_CHECK_STR(out.address, "/tmp/x");
    GP_CHECK(out.has_knock && out.knock.knock);
    GP_CHECK_STR(out.knock.error, "no listener");
    gp_msg_release(plugin_ConnInfo_fields, &out);
    GP_CHECK(out.knock.error == NULL && out.network == NULL);
    free(buf);
}

GP_TEST(stdio_data_and_health_round_trip)
{
    plugin_StdioData sd;
    memset(&sd, 0, sizeof sd);
    sd.channel = plugin_StdioData_Channel_STDERR;
    sd.data.data = (uint8_t *)"line\n";
    sd.data.len = 5;
    size_t n = 0;
    uint8_t *buf = encode(plugin_StdioData_fields, &sd, &n);
    plugin_StdioData out;
    memset(&out, 0, sizeof out);
    char err[128];
    GP_CHECK_ERR(
        gp__msg_decode_buf(plugin_StdioData_fields, buf, n, &out, "StdioData", err, sizeof err),
        GP_OK);
    GP_CHECK_INT(out.channel, ==, plugin_StdioData_Channel_STDERR);
    GP_CHECK(out.data.len == 5 && memcmp(out.data.data, "line\n", 5) == 0);
    gp_msg_release(plugin_StdioData_fields, &out);
    free(buf);

    /* Check{service:"plugin"} is 0a 06 "plugin" on the wire. */
    grpc_health_v1_HealthCheckRequest hc = {.service = "plugin"};
    buf = encode(grpc_health_v1_HealthCheckRequest_fields, &hc, &n);
    GP_CHECK_INT(n, ==, 8);
    GP_CHECK(buf && buf[0] == 0x0a && buf[1] == 6 && memcmp(buf + 2, "plugin", 6) == 0);
    free(buf);
}

GP_TEST(struct_size_covers_the_generated_structs)
{
    GP_CHECK_INT(gp__msg_struct_size(proto_GetRequest_fields), >=, sizeof(proto_GetRequest));
    GP_CHECK_INT(gp__msg_struct_size(proto_PutRequest_fields), >=, sizeof(proto_PutRequest));
    GP_CHECK_INT(gp__msg_struct_size(proto_PutRequest_fields), <=, sizeof(proto_PutRequest) + 8);
    GP_CHECK_INT(gp__msg_struct_size(proto_GetResponse_fields), >=, sizeof(proto_GetResponse));
    GP_CHECK_INT(gp__msg_struct_size(proto_Empty_fields), >=, sizeof(proto_Empty));
    GP_CHECK_INT(gp__msg_struct_size(plugin_ConnInfo_fields), >=, sizeof(plugin_ConnInfo));
    GP_CHECK_INT(gp__msg_struct_size(plugin_ConnInfo_fields), <=, sizeof(plugin_ConnInfo) + 8);
    GP_CHECK_INT(gp__msg_struct_size(plugin_StdioData_fields), >=, sizeof(plugin_StdioData));
    GP_CHECK_INT(gp__msg_struct_size(grpc_health_v1_HealthCheckResponse_fields), >=,
                 sizeof(grpc_health_v1_HealthCheckResponse));
}

/* ---- proto3 strings must be UTF-8 (gp__msg_check_utf8) ---- */

GP_TEST(utf8_rules_are_go_s)
{
    static const struct {
        const char *s;
        size_t n, at;
    } cases[] = {
        {"", 0, 0},
        {"plain ascii", 11, 11},
        {"\xc3\xa9", 2, 2},         /* é */
        {"\xe6\x97\xa5", 3, 3},     /* 日 */
        {"\xf0\x9f\x98\x80", 4, 4}, /* 😀 */
        {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF */
        {"\xef\xbf\xbf", 3, 3},     /* U+FFFF */
        {"a\x00"
         "b",
         3, 3},                     /* NUL is UTF-8 */
        {"a\x80", 2, 1},            /* lone continuation */
        {"\xc0\xaf", 2, 0},         /* overlong '/' */
        {"\xc1\xbf", 2, 0},         /* overlong */
        {"\xe0\x80\xaf", 3, 0},     /* overlong, 3 bytes */
        {"\xf0\x80\x80\xaf", 4, 0}, /* overlong, 4 bytes */
        {"\xed\xa0\x80", 3, 0},     /* surrogate U+D800 */
        {"\xed\xbf\xbf", 3, 0},     /* surrogate U+DFFF */
        {"\xf4\x90\x80\x80", 4, 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4, 0},
        {"ok\xe6\x97", 4, 2}, /* cut short */
        {"\xe6"
         "a"
         "\x97",
         3, 0}, /* interrupted */
        {"\xff", 1, 0},
        {"\xfe", 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t at = gp__utf8_invalid_at((const uint8_t *)cases[i].s, cases[i].n);
        if (at != cases[i].at)
            GP_FAILF("case %zu: expected invalid at %zu, got %zu", i, cases[i].at, at);
    }
}

/* Valid strings everywhere; each test breaks one. */
typedef struct utf8_fixture {
    char *names[2], *itags[2], *ntags[1];
    utf8test_Inner items[2];
    utf8test_Outer_LabelsEntry labels[2];
    utf8test_Outer m;
} utf8_fixture;

static void utf8_fill(utf8_fixture *f)
{
    memset(f, 0, sizeof *f);
    f->names[0] = "a";
    f->names[1] = "\xf0\x9f\x98\x80";
    f->itags[0] = "t";
    f->itags[1] = "\xe6\x97\xa5";
    f->ntags[0] = "n";
    f->items[0].name = "i0";
    f->items[1].name = "i1";
    f->labels[0].key = "k0";
    f->labels[0].value = "v0";
    f->labels[1].key = "k1";
    f->labels[1].value = "v1";
    utf8test_Outer *m = &f->m;
    m->title = "t\xc3\xadtle";
    m->names_count = 2;
    m->names = f->names;
    m->has_inner = true;
    m->inner.name = "inner";
    m->inner.tags_count = 2;
    m->inner.tags = f->itags;
    m->items_count = 2;
    m->items = f->items;
    m->which_choice = utf8test_Outer_nested_tag;
    m->choice.nested.name = "nested";
    m->choice.nested.tags_count = 1;
    m->choice.nested.tags = f->ntags;
    m->labels_count = 2;
    m->labels = f->labels;
    static uint8_t raw[] = {0xff, 0xfe}; /* bytes: never checked */
    m->raw.data = raw;
    m->raw.len = 2;
}

static void expect_bad(const utf8test_Outer *m, const char *field)
{
    char err[256] = "", want[64];
    GP_CHECK_INT(gp__msg_check_utf8(utf8test_Outer_fields, m, "/utf8test.S/M", err, sizeof err), ==,
                 GP_EPROTO);
    snprintf(want, sizeof want, "invalid UTF-8 in string field %s of /utf8test.S/M", field);
    GP_CHECK_CONTAINS(err, want);
}

GP_TEST(utf8_walker_finds_every_place_a_string_sits)
{
    static char bad[] = "ok\xff";
    utf8_fixture f;
    utf8_fill(&f);
    char err[256] = "";
    GP_CHECK_INT(gp__msg_check_utf8(utf8test_Outer_fields, &f.m, "x", err, sizeof err), ==, GP_OK);
    GP_CHECK_STR(err, "");

    utf8_fill(&f), f.m.title = bad, expect_bad(&f.m, "1");
    utf8_fill(&f), f.names[1] = bad, expect_bad(&f.m, "2");
    utf8_fill(&f), f.m.inner.name = bad, expect_bad(&f.m, "3.1");
    utf8_fill(&f), f.itags[1] = bad, expect_bad(&f.m, "3.2");
    utf8_fill(&f), f.items[1].name = bad, expect_bad(&f.m, "4.1");
    utf8_fill(&f), f.ntags[0] = bad, expect_bad(&f.m, "6.2");
    utf8_fill(&f), f.labels[1].key = bad, expect_bad(&f.m, "8.1");
    utf8_fill(&f), f.labels[0].value = bad, expect_bad(&f.m, "8.2");
    utf8_fill(&f);
    f.m.which_choice = utf8test_Outer_text_tag;
    memset(&f.m.choice, 0, sizeof f.m.choice);
    f.m.choice.text = bad;
    expect_bad(&f.m, "5");
    char e2[256] = "";
    gp__msg_check_utf8(utf8test_Outer_fields, &f.m, "/utf8test.S/M", e2, sizeof e2);
    GP_CHECK_CONTAINS(e2, "(at byte 2)");

    /* Not present, so not looked at: an unset oneof, an absent submessage,
     * entries past the count. */
    utf8_fill(&f);
    f.m.which_choice = 0;
    f.m.choice.nested.name = bad;
    f.m.has_inner = false;
    f.m.inner.name = bad;
    f.m.names_count = 1;
    f.names[1] = bad;
    GP_CHECK_INT(gp__msg_check_utf8(utf8test_Outer_fields, &f.m, "x", err, sizeof err), ==, GP_OK);
}

GP_TEST(utf8_checked_after_decode_not_by_it)
{
    /* nanopb decodes what protobuf-go would refuse; the wire checks after
     * (transport/wire/grpc/core.c), and the message then frees cleanly. */
    static const uint8_t enc[] = {0x22, 0x05, 0x0a, 0x03, 'o', 'k', 0xff}; /* items[0].name */
    utf8test_Outer m;
    memset(&m, 0, sizeof m);
    char err[256] = "";
    GP_CHECK_INT(
        gp__msg_decode_buf(utf8test_Outer_fields, enc, sizeof enc, &m, "Outer", err, sizeof err),
        ==, GP_OK);
    GP_CHECK_INT(m.items_count, ==, 1);
    GP_CHECK_INT(gp__msg_check_utf8(utf8test_Outer_fields, &m, "Outer", err, sizeof err), ==,
                 GP_EPROTO);
    GP_CHECK_CONTAINS(err, "invalid UTF-8 in string field 4.1 of Outer (at byte 2)");
    gp_msg_release(utf8test_Outer_fields, &m);
    GP_CHECK(m.items == NULL);
}

int main(void)
{
    GP_RUN(struct_size_covers_the_generated_structs);
    GP_RUN(put_request_round_trips_one_mib);
    GP_RUN(empty_values_encode_to_nothing);
    GP_RUN(repeated_bytes_field_keeps_the_last);
    GP_RUN(declared_two_gib_fails_before_allocating);
    GP_RUN(truncated_input_fails_and_frees);
    GP_RUN(garbage_fails_cleanly);
    GP_RUN(release_recurses_into_submessages);
    GP_RUN(stdio_data_and_health_round_trip);
    GP_RUN(utf8_rules_are_go_s);
    GP_RUN(utf8_walker_finds_every_place_a_string_sits);
    GP_RUN(utf8_checked_after_decode_not_by_it);
    return gp_test_done();
}
