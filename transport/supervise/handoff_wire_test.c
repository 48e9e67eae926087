/* The hand-off wire format: round trips, garbage, truncation, oversize. */
#include <stdlib.h>
#include <string.h>

#include "transport/supervise/handoff.h"
#include "transport/testing/gp_test.h"

static uint8_t *encode3(size_t *len)
{
    gp__handoff_entry e[] = {{"a", "1"}, {"region", "eu-1"}, {"empty", ""}};
    gp__strbuf err;
    gp__strbuf_init(&err);
    uint8_t *buf = NULL;
    gp_err rc = gp__handoff_encode(e, 3, (const uint8_t *)"s\0x", 3, &buf, len, &err);
    GP_CHECK_ERR(rc, GP_OK);
    gp__strbuf_free(&err);
    return buf;
}

/* Decode a whole stream (header + body). */
static gp_err decode(const uint8_t *buf, size_t len, gp__handoff_msg *m, gp__strbuf *err)
{
    memset(m, 0, sizeof *m);
    if (len < GP__HANDOFF_HEADER) {
        gp__strbuf_append(err, "short");
        return GP_EPROTO;
    }
    uint32_t body;
    gp_err rc = gp__handoff_decode_header(buf, &body, err);
    if (rc)
        return rc;
    if (body != len - GP__HANDOFF_HEADER) {
        gp__strbuf_append(err, "length mismatch");
        return GP_EPROTO;
    }
    return gp__handoff_decode_body(buf + GP__HANDOFF_HEADER, body, m, err);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

GP_TEST(round_trip)
{
    size_t len;
    uint8_t *buf = encode3(&len);
    GP_CHECK_INT(len, ==, 8 + 4 + (8 + 2) + (8 + 10) + (8 + 5) + 4 + 3);
    GP_CHECK(memcmp(buf, "GPH1", 4) == 0);
    gp__handoff_msg m;
    gp__strbuf err;
    gp__strbuf_init(&err);
    GP_CHECK_ERR(decode(buf, len, &m, &err), GP_OK);
    GP_CHECK_INT(m.n, ==, 3);
    if (m.n == 3) {
        GP_CHECK_STR(m.entries[1].key, "region");
        GP_CHECK_STR(m.entries[1].value, "eu-1");
        GP_CHECK_STR(m.entries[2].value, "");
    }
    GP_CHECK_INT(m.secret_len, ==, 3);
    GP_CHECK(m.secret && memcmp(m.secret, "s\0x", 3) == 0);
    gp__handoff_msg_free(&m);
    gp__strbuf_free(&err);
    free(buf);
}

GP_TEST(every_truncation_is_an_error)
{
    size_t len;
    uint8_t *buf = encode3(&len);
    for (size_t cut = GP__HANDOFF_HEADER; cut < len; cut++) {
        gp__handoff_msg m;
        gp__strbuf err;
        gp__strbuf_init(&err);
        gp_err rc =
            gp__handoff_decode_body(buf + GP__HANDOFF_HEADER, cut - GP__HANDOFF_HEADER, &m, &err);
        if (rc != GP_EPROTO)
            GP_FAILF("cut at %zu: expected GP_EPROTO, got %d", cut, rc);
        if (!strstr(err.data ? err.data : "", "truncated"))
            GP_FAILF("cut at %zu: words \"%s\"", cut, err.data ? err.data : "");
        GP_CHECK(m.n == 0 && m.entries == NULL && m.secret == NULL);
        gp__strbuf_free(&err);
    }
    free(buf);
}

GP_TEST(garbage_magic_is_quoted)
{
    gp__strbuf err;
    gp__strbuf_init(&err);
    uint32_t body;
    GP_CHECK_ERR(gp__handoff_decode_header((const uint8_t *)"HTTP\0\0\0\0", &body, &err),
                 GP_EPROTO);
    GP_CHECK_CONTAINS(err.data, "expected magic \"GPH1\", got \"HTTP\"");
    gp__strbuf_free(&err);
}

GP_TEST(oversize_fields)
{
    gp__strbuf err;
    gp__strbuf_init(&err);
    uint32_t body;
    uint8_t hdr[8] = {'G', 'P', 'H', '1'};
    put32(hdr + 4, 0xffffffffu);
    GP_CHECK_ERR(gp__handoff_decode_header(hdr, &body, &err), GP_EMSGSIZE);
    GP_CHECK_CONTAINS(err.data, "body of 4294967295 bytes");

    uint8_t b[64] = {0};
    gp__handoff_msg m;
    put32(b, GP_HANDOFF_MAX_ENTRIES + 1);
    gp__strbuf_reset(&err);
    GP_CHECK_ERR(gp__handoff_decode_body(b, sizeof b, &m, &err), GP_EMSGSIZE);
    GP_CHECK_CONTAINS(err.data, "65537 configuration entries");

    put32(b, 1);
    put32(b + 4, GP_HANDOFF_MAX_KEY + 1);
    gp__strbuf_reset(&err);
    GP_CHECK_ERR(gp__handoff_decode_body(b, sizeof b, &m, &err), GP_EMSGSIZE);
    GP_CHECK_CONTAINS(err.data, "key 0 is 1025 bytes");

    put32(b, 0);
    put32(b + 4, GP_HANDOFF_MAX_SECRET + 1);
    gp__strbuf_reset(&err);
    GP_CHECK_ERR(gp__handoff_decode_body(b, 8, &m, &err), GP_EMSGSIZE);
    GP_CHECK_CONTAINS(err.data, "secret of 65537 bytes");

    /* A value claiming more than the config limit is refused before any
     * allocation for it. */
    memset(b, 0, sizeof b);
    put32(b, 1);
    put32(b + 4, 1);
    b[8] = 'k';
    put32(b + 9, GP_HANDOFF_MAX_CONFIG);
    gp__strbuf_reset(&err);
    GP_CHECK_ERR(gp__handoff_decode_body(b, sizeof b, &m, &err), GP_EMSGSIZE);
    GP_CHECK_CONTAINS(err.data, "configuration over");

    /* Many entries claimed, few bytes: no big calloc. */
    put32(b, 60000);
    gp__strbuf_reset(&err);
    GP_CHECK_ERR(gp__handoff_decode_body(b, sizeof b, &m, &err), GP_EPROTO);
    GP_CHECK_CONTAINS(err.data, "cannot fit");
    gp__strbuf_free(&err);
}

GP_TEST(nul_duplicate_trailing_and_empty_key)
{
    gp__strbuf err;
    gp__strbuf_init(&err);
    gp__handoff_msg m;
    /* one entry, key "a\0", value "" , secret 0 */
    uint8_t nul[] = {0, 0, 0, 1, 0, 0, 0, 2, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0};
    GP_CHECK_ERR(gp__handoff_decode_body(nul, sizeof nul, &m, &err), GP_EPROTO);
    GP_CHECK_CONTAINS(err.data, "key 0 contains a NUL byte: \"a\\x00\"");

    uint8_t dup[] = {0, 0, 0, 2, 0,   0, 0, 1, 'k', 0, 0, 0, 1, 'x',
                     0, 0, 0, 1, 'k', 0, 0, 0, 0,   0, 0, 0, 0};
    gp__strbuf_reset(&err);
    GP_CHECK_ERR(gp__handoff_decode_body(dup, sizeof dup, &m, &err), GP_EPROTO);
    GP_CHECK_CONTAINS(err.data, "duplicate key \"k\"");

    uint8_t trail[] = {0, 0, 0, 0, 0, 0, 0, 1, 'z', '!'};
    gp__strbuf_reset(&err);
    GP_CHECK_ERR(gp__handoff_decode_body(trail, sizeof trail, &m, &err), GP_EPROTO);
    GP_CHECK_CONTAINS(err.data, "1 unexpected bytes after the secret");

    uint8_t empty[] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    gp__strbuf_reset(&err);
    GP_CHECK_ERR(gp__handoff_decode_body(empty, sizeof empty, &m, &err), GP_EPROTO);
    GP_CHECK_CONTAINS(err.data, "key 0 is 0 bytes");
    gp__strbuf_free(&err);
}

GP_TEST(status_round_trip_and_prefixes)
{
    uint8_t buf[GP__HANDOFF_STATUS_HEADER + GP_HANDOFF_MAX_REASON];
    size_t n = gp__handoff_status_encode('F', "disk full", buf, sizeof buf);
    GP_CHECK_INT(n, ==, 9 + 9);
    char kind = 0, reason[GP_HANDOFF_MAX_REASON + 1];
    size_t used = 0;
    gp__strbuf err;
    gp__strbuf_init(&err);
    for (size_t i = 0; i < n; i++)
        GP_CHECK_INT(gp__handoff_status_decode(buf, i, &kind, reason, &used, &err), ==, 0);
    GP_CHECK_INT(gp__handoff_status_decode(buf, n, &kind, reason, &used, &err), ==, 1);
    GP_CHECK_INT(kind, ==, 'F');
    GP_CHECK_STR(reason, "disk full");
    GP_CHECK_INT(used, ==, n);

    n = gp__handoff_status_encode('R', "ignored", buf, sizeof buf);
    GP_CHECK_INT(n, ==, 9);
    GP_CHECK_INT(gp__handoff_status_decode(buf, n, &kind, reason, &used, &err), ==, 1);
    GP_CHECK_INT(kind, ==, 'R');

    /* A long reason is cut, not refused. */
    char *lng = malloc(10000);
    memset(lng, 'x', 9999);
    lng[9999] = 0;
    n = gp__handoff_status_encode('F', lng, buf, sizeof buf);
    GP_CHECK_INT(n, ==, 9 + GP_HANDOFF_MAX_REASON);
    free(lng);
    gp__strbuf_free(&err);
}

GP_TEST(status_garbage)
{
    char kind, reason[GP_HANDOFF_MAX_REASON + 1];
    size_t used;
    gp__strbuf err;
    gp__strbuf_init(&err);
    GP_CHECK_INT(gp__handoff_status_decode((const uint8_t *)"ok\n", 3, &kind, reason, &used, &err),
                 ==, -1);
    GP_CHECK_CONTAINS(err.data, "expected magic \"GPS1\", got \"ok\\x0a\"");
    gp__strbuf_reset(&err);
    GP_CHECK_INT(gp__handoff_status_decode((const uint8_t *)"GPS1X", 5, &kind, reason, &used, &err),
                 ==, -1);
    GP_CHECK_CONTAINS(err.data, "expected kind 'R' or 'F', got \"X\"");
    gp__strbuf_reset(&err);
    uint8_t r[] = {'G', 'P', 'S', '1', 'R', 0, 0, 0, 1, 'x'};
    GP_CHECK_INT(gp__handoff_status_decode(r, sizeof r, &kind, reason, &used, &err), ==, -1);
    GP_CHECK_CONTAINS(err.data, "ready with a 1-byte reason");
    gp__strbuf_reset(&err);
    uint8_t big[] = {'G', 'P', 'S', '1', 'F', 0, 0, 0x10, 1};
    GP_CHECK_INT(gp__handoff_status_decode(big, sizeof big, &kind, reason, &used, &err), ==, -1);
    GP_CHECK_CONTAINS(err.data, "reason of 4097 bytes");
    gp__strbuf_reset(&err);
    uint8_t nul[] = {'G', 'P', 'S', '1', 'F', 0, 0, 0, 2, 'a', 0};
    GP_CHECK_INT(gp__handoff_status_decode(nul, sizeof nul, &kind, reason, &used, &err), ==, -1);
    GP_CHECK_CONTAINS(err.data, "NUL byte");
    gp__strbuf_free(&err);
}

GP_TEST(encode_refuses_bad_input)
{
    gp__strbuf err;
    gp__strbuf_init(&err);
    uint8_t *buf;
    size_t len;
    gp__handoff_entry e[] = {{"", "x"}};
    GP_CHECK_ERR(gp__handoff_encode(e, 1, NULL, 0, &buf, &len, &err), GP_EINVAL);
    GP_CHECK(buf == NULL);
    GP_CHECK_ERR(gp__handoff_encode(NULL, 0, (const uint8_t *)"", GP_HANDOFF_MAX_SECRET + 1, &buf,
                                    &len, &err),
                 GP_EMSGSIZE);
    gp__strbuf_free(&err);
}

int main(void)
{
    GP_RUN(round_trip);
    GP_RUN(every_truncation_is_an_error);
    GP_RUN(garbage_magic_is_quoted);
    GP_RUN(oversize_fields);
    GP_RUN(nul_duplicate_trailing_and_empty_key);
    GP_RUN(status_round_trip_and_prefixes);
    GP_RUN(status_garbage);
    GP_RUN(encode_refuses_bad_input);
    return gp_test_done();
}
