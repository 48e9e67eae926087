/* Unit tests for the pure parts of the process layer: hclog lines, line
 * splitting, the stderr tail, the child environment, checksums. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/process/checksum.h"
#include "transport/process/env.h"
#include "transport/process/hclog.h"
#include "transport/process/lines.h"
#include "transport/process/tail.h"
#include "transport/testing/gp_test.h"

static const char *kv_get(const gp__hclog_rec *r, const char *key)
{
    for (size_t i = 0; i < r->nkv; i++)
        if (strcmp(r->kv[i].key, key) == 0)
            return r->kv[i].value;
    return NULL;
}

static gp__hclog_rec parse(const char *s)
{
    gp__hclog_rec r;
    if (gp__hclog_parse(s, strlen(s), &r) != GP_OK)
        memset(&r, 0, sizeof r);
    return r;
}

GP_TEST(hclog_json_line)
{
    gp__hclog_rec r = parse("{\"@level\":\"debug\",\"@message\":\"plugin address\","
                            "\"@timestamp\":\"2026-11-23T06:46:12.527071Z\","
                            "\"address\":\"/tmp/p1\",\"network\":\"unix\"}");
    GP_CHECK(r.json);
    GP_CHECK_INT(r.level, ==, GP_LOG_DEBUG);
    GP_CHECK_STR(r.msg, "plugin address");
    GP_CHECK_INT(r.nkv, ==, 2);
    GP_CHECK_STR(kv_get(&r, "address"), "/tmp/p1");
    GP_CHECK_STR(kv_get(&r, "network"), "unix");
    gp__hclog_rec_free(&r);
}

GP_TEST(hclog_json_values_and_levels)
{
    gp__hclog_rec r = parse("{\"@level\":\"WARN\",\"@message\":\"m\",\"n\":3,"
                            "\"o\":{\"a\":[1,true]},\"z\":null,\"@module\":\"kv\"}");
    GP_CHECK(r.json);
    GP_CHECK_INT(r.level, ==, GP_LOG_WARN);
    GP_CHECK_STR(kv_get(&r, "n"), "3");
    GP_CHECK_STR(kv_get(&r, "o"), "{\"a\":[1,true]}");
    GP_CHECK_STR(kv_get(&r, "z"), "null");
    GP_CHECK_STR(kv_get(&r, "@module"), "kv");
    gp__hclog_rec_free(&r);
    const char *words[] = {"trace", "debug", "info", "warn", "error"};
    for (int i = 0; i < 5; i++) {
        char line[128];
        snprintf(line, sizeof line, "{\"@level\":\"%s\",\"@message\":\"x\"}", words[i]);
        r = parse(line);
        GP_CHECK_INT(r.level, ==, GP_LOG_TRACE + i);
        GP_CHECK(r.json);
        gp__hclog_rec_free(&r);
    }
}

GP_TEST(hclog_not_json)
{
    /* Non-string @level/@message (a go-plugin host panics on these), a bad
     * timestamp, an unknown level word, truncated JSON, arrays: all raw. */
    const char *raw[] = {
        "{\"@level\":5,\"@message\":\"x\"}",
        "{\"@level\":\"info\",\"@message\":null}",
        "{\"@level\":\"info\",\"@message\":\"x\",\"@timestamp\":\"2026-11-23T06:46:12.52Z\"}",
        "{\"@level\":\"info\",\"@message\":\"x\",\"@timestamp\":\"2026-02-30T06:46:12.527071Z\"}",
        "{\"@level\":\"info\",\"@message\":\"x\",\"@timestamp\":7}",
        "{\"@level\":\"nope\",\"@message\":\"x\"}",
        "{\"@message\":\"x\"}",
        "{\"@level\":\"info\",\"@message\":\"x\"",
        "[1,2]",
        "",
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        gp__hclog_rec r = parse(raw[i]);
        GP_CHECK(!r.json);
        GP_CHECK_INT(r.level, ==, GP_LOG_DEBUG);
        GP_CHECK_STR(r.msg, raw[i]);
        GP_CHECK_INT(r.nkv, ==, 0);
        gp__hclog_rec_free(&r);
    }
}

GP_TEST(hclog_prefixes)
{
    struct {
        const char *line;
        gp_log_level level;
    } cases[] = {
        {"[TRACE] a", GP_LOG_TRACE},   {"[DEBUG] a", GP_LOG_DEBUG}, {"[INFO] a", GP_LOG_INFO},
        {"[WARN] a", GP_LOG_WARN},     {"[ERROR] a", GP_LOG_ERROR}, {"[error] a", GP_LOG_DEBUG},
        {"x [ERROR] a", GP_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gp__hclog_rec r = parse(cases[i].line);
        GP_CHECK_INT(r.level, ==, cases[i].level);
        GP_CHECK_STR(r.msg, cases[i].line);
        gp__hclog_rec_free(&r);
    }
}

GP_TEST(hclog_timestamps)
{
    GP_CHECK(gp__hclog_timestamp_ok("2026-11-23T06:46:12.527071Z"));
    GP_CHECK(gp__hclog_timestamp_ok("2024-02-29T23:59:59.000000-07:00"));
    GP_CHECK(!gp__hclog_timestamp_ok("2023-02-29T23:59:59.000000Z"));
    GP_CHECK(!gp__hclog_timestamp_ok("2026-11-23T06:46:12.5270712Z"));
    GP_CHECK(!gp__hclog_timestamp_ok("2026-11-23T06:46:12.527071"));
    GP_CHECK(!gp__hclog_timestamp_ok("2026-11-23 06:46:12.527071Z"));
    GP_CHECK(!gp__hclog_timestamp_ok("2026-11-23T06:46:12.527071Zjunk"));
    GP_CHECK(!gp__hclog_timestamp_ok(""));
}

GP_TEST(hclog_binary_and_oversize)
{
    char bin[] = "\x00\xff{\"@level\":\"info\"}";
    gp__hclog_rec r;
    GP_CHECK_ERR(gp__hclog_parse(bin, sizeof bin - 1, &r), GP_OK);
    GP_CHECK(!r.json);
    gp__hclog_rec_free(&r);
    size_t n = 300000;
    char *big = malloc(n + 1);
    memset(big, '[', n);
    big[n] = '\0';
    GP_CHECK_ERR(gp__hclog_parse(big, n, &r), GP_OK);
    GP_CHECK(!r.json);
    GP_CHECK_INT(strlen(r.msg), ==, n);
    gp__hclog_rec_free(&r);
    free(big);
}

typedef struct collected {
    char lines[16][64];
    int piece[16];
    int n;
} collected;

static void collect(void *ctx, const char *line, size_t len, int piece)
{
    collected *c = ctx;
    if (c->n < 16) {
        snprintf(c->lines[c->n], sizeof c->lines[0], "%.*s", (int)len, line);
        c->piece[c->n++] = piece;
    }
}

GP_TEST(lines_split_and_pieces)
{
    gp__lines l;
    GP_CHECK_ERR(gp__lines_init(&l, 4), GP_OK);
    collected c = {0};
    const char *in = "ab\r\ncdefghij\n\nxy";
    /* Feed byte by byte: the result must not depend on read sizes. */
    for (size_t i = 0; in[i]; i++)
        gp__lines_feed(&l, in + i, 1, collect, &c);
    gp__lines_finish(&l, collect, &c);
    GP_CHECK_INT(c.n, ==, 5);
    GP_CHECK_STR(c.lines[0], "ab");
    GP_CHECK_STR(c.lines[1], "cdef");
    GP_CHECK_INT(c.piece[1], ==, 1);
    GP_CHECK_STR(c.lines[2], "ghij");
    GP_CHECK_INT(c.piece[2], ==, 0);
    GP_CHECK_STR(c.lines[3], "");
    GP_CHECK_STR(c.lines[4], "xy");
    gp__lines_free(&l);
    GP_CHECK_ERR(gp__lines_init(&l, 0), GP_EINVAL);
}

GP_TEST(tail_keeps_last_lines)
{
    static gp__tail t;
    memset(&t, 0, sizeof t);
    char out[GP__TAIL_SIZE + 1];
    gp__tail_add(&t, "one\ntwo\n", 8);
    gp__tail_copy(&t, out, sizeof out);
    GP_CHECK_STR(out, "one\ntwo");
    for (int i = 0; i < 1000; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        gp__tail_add(&t, line, (size_t)n);
    }
    size_t n = gp__tail_copy(&t, out, sizeof out);
    GP_CHECK(n < GP__TAIL_SIZE);
    GP_CHECK(strncmp(out, "line ", 5) == 0);
    GP_CHECK(strstr(out, "line 999") != NULL);
    GP_CHECK(strstr(out, "line 100\n") == NULL);
    char small[16];
    gp__tail_copy(&t, small, sizeof small);
    GP_CHECK_STR(small, "line 999");
}

GP_TEST(env_order_and_dedupe)
{
    const char *cfg[] = {"A=cfg", "B=cfg", "bad", "=x", NULL};
    const char *host[] = {"B=host", "PATH=/bin", "A=host2", NULL};
    const char *vars[] = {"COOKIE=v", "PATH=/usr/bin", NULL};
    char **env;
    GP_CHECK_ERR(gp__env_build(cfg, host, vars, &env), GP_OK);
    int n = 0;
    while (env[n])
        n++;
    GP_CHECK_INT(n, ==, 4);
    GP_CHECK_STR(env[0], "A=host2");
    GP_CHECK_STR(env[1], "B=host");
    GP_CHECK_STR(env[2], "PATH=/usr/bin");
    GP_CHECK_STR(env[3], "COOKIE=v");
    GP_CHECK_STR(gp__env_get(env, "PATH"), "/usr/bin");
    GP_CHECK(gp__env_get(env, "PAT") == NULL);
    free(env);
    GP_CHECK_ERR(gp__env_build(NULL, NULL, NULL, &env), GP_OK);
    GP_CHECK(env[0] == NULL);
    free(env);
}

GP_TEST(checksum_match_and_mismatch)
{
    char path[] = "/tmp/gp_checksum_XXXXXX";
    int fd = mkstemp(path);
    GP_CHECK(fd >= 0);
    GP_CHECK_INT(write(fd, "abc", 3), ==, 3);
    close(fd);
    /* SHA-256("abc") */
    const uint8_t want[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                              0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                              0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    char err[256] = "";
    int before = gp_test_count_fds();
    bool script = true;
    GP_CHECK_ERR(gp__checksum_open(path, want, &fd, &script, err, sizeof err), GP_OK);
    GP_CHECK(fd >= 0);
    GP_CHECK(!script);
    close(fd);
    uint8_t other[32] = {0};
    GP_CHECK_ERR(gp__checksum_open(path, other, &fd, &script, err, sizeof err), GP_ECHECKSUM);
    GP_CHECK_CONTAINS(err, "checksums did not match: expected 0000");
    GP_CHECK_CONTAINS(err, "binary has ba7816bf");
    GP_CHECK_INT(fd, ==, -1);
    GP_CHECK_ERR(gp__checksum_open("/nonexistent/x", want, &fd, &script, err, sizeof err), GP_ESYS);
    GP_CHECK_CONTAINS(err, "/nonexistent/x");
    GP_CHECK_INT(gp_test_count_fds(), ==, before);
    unlink(path);
    GP_CHECK(gp__ct_equal(want, want, 32));
    GP_CHECK(!gp__ct_equal(want, other, 32));
}

int main(void)
{
    GP_RUN(hclog_json_line);
    GP_RUN(hclog_json_values_and_levels);
    GP_RUN(hclog_not_json);
    GP_RUN(hclog_prefixes);
    GP_RUN(hclog_timestamps);
    GP_RUN(hclog_binary_and_oversize);
    GP_RUN(lines_split_and_pieces);
    GP_RUN(tail_keeps_last_lines);
    GP_RUN(env_order_and_dedupe);
    GP_RUN(checksum_match_and_mismatch);
    return gp_test_done();
}
