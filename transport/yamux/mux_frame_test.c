/* Tests for the yamux frame codec, including one-byte-at-a-time feeding
 * of the frames captured from a real go-plugin 1.0.1 session. */
#include "transport/yamux/mux_frame.h"
#include "transport/testing/gp_test.h"

#include <stdlib.h>
#include <string.h>

/* Spec §2.5: the host opens broker stream 7, sends id 1, plugin ACKs and echoes. */
static const uint8_t captured[] = {
    0x00, 0x01, 0x00, 0x01, 0, 0, 0, 7, 0, 0, 0, 0,             /* WU SYN sid=7 */
    0x00, 0x00, 0x00, 0x00, 0, 0, 0, 7, 0, 0, 0, 4, 1, 0, 0, 0, /* Data id=1 LE */
    0x00, 0x01, 0x00, 0x02, 0, 0, 0, 7, 0, 0, 0, 0,             /* WU ACK sid=7 */
    0x00, 0x00, 0x00, 0x00, 0, 0, 0, 7, 0, 0, 0, 4, 1, 0, 0, 0, /* Data ack */
};

typedef struct collected {
    gp__mux_header hdr[16];
    int n;
    uint8_t body[64];
    size_t body_len;
    gp__mux_event last;
    char err[256];
} collected;

/* Feeds `len` bytes in chunks of `step`, collecting headers and payload. */
static void feed_all(gp__mux_parser *p, const uint8_t *in, size_t len, size_t step, collected *c)
{
    memset(c, 0, sizeof *c);
    size_t off = 0;
    while (off < len) {
        size_t chunk = len - off < step ? len - off : step;
        const uint8_t *cur = in + off;
        size_t left = chunk;
        while (left > 0) {
            size_t used;
            const uint8_t *d;
            size_t dl;
            gp__mux_event ev = gp__mux_parser_feed(p, cur, left, &used, &d, &dl);
            c->last = ev;
            if (ev == GP_MUX_EV_ERROR) {
                snprintf(c->err, sizeof c->err, "%s", p->err);
                return;
            }
            if (ev == GP_MUX_EV_HEADER && c->n < 16)
                c->hdr[c->n++] = p->hdr;
            if (ev == GP_MUX_EV_DATA && c->body_len + dl <= sizeof c->body) {
                memcpy(c->body + c->body_len, d, dl);
                c->body_len += dl;
            }
            cur += used;
            left -= used;
        }
        off += chunk;
    }
}

GP_TEST(encodes_the_captured_syn_header)
{
    gp__mux_header h = {0, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_SYN, 7, 0};
    uint8_t out[12];
    gp__mux_header_encode(&h, out);
    GP_CHECK(memcmp(out, captured, 12) == 0);
    gp__mux_header back;
    gp__mux_header_decode(out, &back);
    GP_CHECK_INT(back.flags, ==, GP_MUX_FLAG_SYN);
    GP_CHECK_INT(back.stream_id, ==, 7);
    h = (gp__mux_header){0, GP_MUX_TYPE_GO_AWAY, 0xabcd, 0x01020304, 0xfffffffe};
    gp__mux_header_encode(&h, out);
    const uint8_t want[12] = {0, 3, 0xab, 0xcd, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe};
    GP_CHECK(memcmp(out, want, 12) == 0);
}

static void check_captured(size_t step)
{
    gp__mux_parser p;
    gp__mux_parser_init(&p, 0);
    collected c;
    feed_all(&p, captured, sizeof captured, step, &c);
    GP_CHECK_INT(c.last, !=, GP_MUX_EV_ERROR);
    GP_CHECK_INT(c.n, ==, 4);
    GP_CHECK_INT(c.hdr[0].type, ==, GP_MUX_TYPE_WINDOW_UPDATE);
    GP_CHECK_INT(c.hdr[0].flags, ==, GP_MUX_FLAG_SYN);
    GP_CHECK_INT(c.hdr[1].type, ==, GP_MUX_TYPE_DATA);
    GP_CHECK_INT(c.hdr[1].length, ==, 4);
    GP_CHECK_INT(c.hdr[2].flags, ==, GP_MUX_FLAG_ACK);
    GP_CHECK_INT(c.hdr[3].stream_id, ==, 7);
    GP_CHECK_INT(c.body_len, ==, 8);
    GP_CHECK(memcmp(c.body, "\1\0\0\0\1\0\0\0", 8) == 0);
}

GP_TEST(parses_the_captured_broker_exchange_one_byte_at_a_time)
{
    check_captured(1);
}
GP_TEST(parses_the_captured_broker_exchange_in_odd_chunks)
{
    check_captured(5);
}
GP_TEST(parses_the_captured_broker_exchange_in_one_piece)
{
    check_captured(sizeof captured);
}

static void expect_error(const uint8_t hdr[12], uint32_t max, const char *words)
{
    gp__mux_parser p;
    gp__mux_parser_init(&p, max);
    collected c;
    feed_all(&p, hdr, 12, 1, &c);
    GP_CHECK_INT(c.last, ==, GP_MUX_EV_ERROR);
    GP_CHECK_CONTAINS(c.err, words);
    /* Sticky: more bytes do not revive it. */
    size_t used;
    const uint8_t *d;
    size_t dl;
    GP_CHECK_INT(gp__mux_parser_feed(&p, captured, 12, &used, &d, &dl), ==, GP_MUX_EV_ERROR);
}

GP_TEST(rejects_a_wrong_version_with_both_numbers)
{
    const uint8_t h[12] = {7, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    expect_error(h, 0, "yamux: expected version 0, got 7");
}

GP_TEST(rejects_an_unknown_frame_type)
{
    const uint8_t h[12] = {0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    expect_error(h, 0, "got 4");
}

GP_TEST(rejects_a_forged_4_gib_length)
{
    const uint8_t h[12] = {0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
    expect_error(h, 0, "4294967295 bytes exceeds the receive window of 262144");
}

GP_TEST(rejects_data_one_byte_over_a_caller_cap)
{
    const uint8_t h[12] = {0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0x10, 0x01};
    expect_error(h, 4096, "stream 3 of 4097 bytes exceeds the receive window of 4096");
    gp__mux_parser p;
    gp__mux_parser_init(&p, 4097);
    collected c;
    feed_all(&p, h, 12, 12, &c);
    GP_CHECK_INT(c.last, ==, GP_MUX_EV_HEADER);
}

GP_TEST(rejects_ping_and_goaway_on_a_stream)
{
    const uint8_t ping[12] = {0, 2, 0, 1, 0, 0, 0, 5, 0, 0, 0, 9};
    expect_error(ping, 0, "expected Ping on stream 0, got stream 5");
    const uint8_t ga[12] = {0, 3, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0};
    expect_error(ga, 0, "expected GoAway on stream 0, got stream 2");
}

GP_TEST(rejects_stream_frames_on_stream_zero)
{
    const uint8_t d[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    expect_error(d, 0, "Data frame on stream 0");
    const uint8_t wu[12] = {0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    expect_error(wu, 0, "WindowUpdate frame on stream 0");
}

GP_TEST(zero_length_data_has_no_payload_event)
{
    const uint8_t h[24] = {0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, /* Data FIN, empty */
                           0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42};
    gp__mux_parser p;
    gp__mux_parser_init(&p, 0);
    collected c;
    feed_all(&p, h, sizeof h, 1, &c);
    GP_CHECK_INT(c.n, ==, 2);
    GP_CHECK_INT(c.hdr[0].flags, ==, GP_MUX_FLAG_FIN);
    GP_CHECK_INT(c.body_len, ==, 0);
    GP_CHECK_INT(c.hdr[1].type, ==, GP_MUX_TYPE_PING);
    GP_CHECK_INT(c.hdr[1].length, ==, 42);
}

GP_TEST(random_garbage_never_crashes_and_errors_are_sticky)
{
    srand(7);
    uint8_t buf[4096];
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (uint8_t)rand();
        gp__mux_parser p;
        gp__mux_parser_init(&p, 1024);
        collected c;
        feed_all(&p, buf, sizeof buf, (size_t)(round % 13) + 1, &c);
        if (c.last == GP_MUX_EV_ERROR)
            GP_CHECK(c.err[0] != '\0');
    }
}

int main(void)
{
    GP_RUN(encodes_the_captured_syn_header);
    GP_RUN(parses_the_captured_broker_exchange_one_byte_at_a_time);
    GP_RUN(parses_the_captured_broker_exchange_in_odd_chunks);
    GP_RUN(parses_the_captured_broker_exchange_in_one_piece);
    GP_RUN(rejects_a_wrong_version_with_both_numbers);
    GP_RUN(rejects_an_unknown_frame_type);
    GP_RUN(rejects_a_forged_4_gib_length);
    GP_RUN(rejects_data_one_byte_over_a_caller_cap);
    GP_RUN(rejects_ping_and_goaway_on_a_stream);
    GP_RUN(rejects_stream_frames_on_stream_zero);
    GP_RUN(zero_length_data_has_no_payload_event);
    GP_RUN(random_garbage_never_crashes_and_errors_are_sticky);
    return gp_test_done();
}
