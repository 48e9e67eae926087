/* yamux session tests over socketpairs: C session against C session, and
 * against a raw socket driven byte by byte (the hostile-peer cases). */
#include "transport/yamux/mux_session.h"
#include "transport/yamux/mux_frame.h"
#include "transport/testing/gp_test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
}

static const gp__mux_config quiet = {.keepalive_interval_ms = -1};

/* Two sessions on a socketpair: client on sv[0], server on sv[1]. */
static void two_sessions(gp__mux_session **c, gp__mux_session **s, const gp__mux_config *cfg)
{
    int sv[2];
    pair(sv);
    GP_CHECK_ERR(gp__mux_session_new(sv[0], GP_MUX_CLIENT, cfg, c), GP_OK);
    GP_CHECK_ERR(gp__mux_session_new(sv[1], GP_MUX_SERVER, cfg, s), GP_OK);
}

/* A session on sv[0] and the raw peer socket in *raw. */
static gp__mux_session *session_and_raw(gp__mux_role role, const gp__mux_config *cfg, int *raw)
{
    int sv[2];
    pair(sv);
    gp__mux_session *s = NULL;
    GP_CHECK_ERR(gp__mux_session_new(sv[0], role, cfg, &s), GP_OK);
    *raw = sv[1];
    return s;
}

static void raw_send(int fd, const void *b, size_t n)
{
    GP_CHECK_INT(send(fd, b, n, MSG_NOSIGNAL), ==, (long long)n);
}

static void raw_frame(int fd, uint8_t type, uint16_t flags, uint32_t id, uint32_t len)
{
    gp__mux_header h = {0, type, flags, id, len};
    uint8_t b[12];
    gp__mux_header_encode(&h, b);
    raw_send(fd, b, 12);
}

/* Reads the next frame header from the raw side (skipping its payload);
 * returns 0 on EOF or timeout. */
static int raw_next(int fd, gp__mux_header *h, int timeout_ms)
{
    uint8_t b[12];
    size_t got = 0;
    while (got < 12) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            return 0;
        ssize_t n = recv(fd, b + got, 12 - got, 0);
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    gp__mux_header_decode(b, h);
    if (h->type == GP_MUX_TYPE_DATA) {
        uint8_t sink[4096];
        size_t left = h->length;
        while (left > 0) {
            ssize_t n = recv(fd, sink, left < sizeof sink ? left : sizeof sink, 0);
            if (n <= 0)
                return 0;
            left -= (size_t)n;
        }
    }
    return 1;
}

/* Waits until the session reports an error. */
static const char *wait_closed(gp__mux_session *s, int ms)
{
    for (int i = 0; i < ms / 5 && !gp__mux_session_is_closed(s); i++)
        usleep(5000);
    return gp__mux_session_error(s);
}

GP_TEST(open_accept_and_echo_on_a_hundred_streams)
{
    int fds = gp_test_count_fds();
    gp__mux_session *c, *s;
    two_sessions(&c, &s, &quiet);
    gp__mux_stream *cs[100], *ss[100];
    for (int i = 0; i < 100; i++)
        GP_CHECK_ERR(gp__mux_open(c, &cs[i]), GP_OK);
    for (int i = 0; i < 100; i++) {
        GP_CHECK_ERR(gp__mux_accept(s, 2000, &ss[i]), GP_OK);
        GP_CHECK_INT(gp__mux_stream_id(ss[i]), ==, 2 * i + 1);
    }
    for (int i = 0; i < 100; i++) {
        char msg[24];
        snprintf(msg, sizeof msg, "hello %03d", i);
        GP_CHECK_ERR(gp__mux_stream_write(cs[i], msg, 9, 1000), GP_OK);
    }
    for (int i = 99; i >= 0; i--) {
        char got[24] = {0}, want[24];
        snprintf(want, sizeof want, "hello %03d", i);
        GP_CHECK_ERR(gp__mux_stream_read_full(ss[i], got, 9, 1000), GP_OK);
        GP_CHECK_STR(got, want);
    }
    /* The server side opens even ids. */
    gp__mux_stream *back, *back_acc;
    GP_CHECK_ERR(gp__mux_open(s, &back), GP_OK);
    GP_CHECK_INT(gp__mux_stream_id(back), ==, 2);
    GP_CHECK_ERR(gp__mux_accept(c, 1000, &back_acc), GP_OK);
    GP_CHECK_INT(gp__mux_stream_id(back_acc), ==, 2);
    gp__mux_stream_free(back);
    gp__mux_stream_free(back_acc);
    for (int i = 0; i < 100; i++) {
        gp__mux_stream_free(cs[i]);
        gp__mux_stream_free(ss[i]);
    }
    GP_CHECK_STR(gp__mux_session_error(c), "");
    gp__mux_session_free(c);
    gp__mux_session_free(s);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

typedef struct xfer {
    gp__mux_stream *st;
    size_t len;
    int ok;
} xfer;

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 131 + (i >> 9));
}

static void *writer_main(void *arg)
{
    xfer *x = arg;
    uint8_t *b = malloc(x->len);
    for (size_t i = 0; i < x->len; i++)
        b[i] = pattern(i);
    x->ok = gp__mux_stream_write(x->st, b, x->len, 10000) == GP_OK &&
            gp__mux_stream_close(x->st) == GP_OK;
    free(b);
    return NULL;
}

static void *reader_main(void *arg)
{
    xfer *x = arg;
    uint8_t b[7000];
    size_t got = 0;
    int ok = 1;
    for (;;) {
        size_t n;
        if (gp__mux_stream_read(x->st, b, sizeof b, 10000, &n) != GP_OK) {
            ok = 0;
            break;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            if (b[i] != pattern(got + i))
                ok = 0;
        got += n;
    }
    x->ok = ok && got == x->len;
    return NULL;
}

GP_TEST(one_mib_both_ways_at_once_through_window_updates)
{
    gp__mux_session *c, *s;
    two_sessions(&c, &s, &quiet);
    gp__mux_stream *a, *b;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &b), GP_OK);
    xfer w1 = {a, 1 << 20, 0}, r1 = {b, 1 << 20, 0}, w2 = {b, (1 << 20) + 3, 0},
         r2 = {a, (1 << 20) + 3, 0};
    pthread_t t[4];
    pthread_create(&t[0], NULL, writer_main, &w1);
    pthread_create(&t[1], NULL, reader_main, &r1);
    pthread_create(&t[2], NULL, writer_main, &w2);
    pthread_create(&t[3], NULL, reader_main, &r2);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    GP_CHECK(w1.ok && r1.ok && w2.ok && r2.ok);
    GP_CHECK_STR(gp__mux_session_error(c), "");
    GP_CHECK_STR(gp__mux_session_error(s), "");
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_session_free(c);
    gp__mux_session_free(s);
}

GP_TEST(half_close_gives_eof_after_the_data_and_the_other_way_still_works)
{
    gp__mux_session *c, *s;
    two_sessions(&c, &s, &quiet);
    gp__mux_stream *a, *b;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_write(a, "ping", 4, 1000), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_close(a), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_write(a, "x", 1, 1000), GP_ECLOSED);
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &b), GP_OK);
    char buf[8] = {0};
    size_t n;
    GP_CHECK_ERR(gp__mux_stream_read_full(b, buf, 4, 1000), GP_OK);
    GP_CHECK_STR(buf, "ping");
    GP_CHECK_ERR(gp__mux_stream_read(b, buf, sizeof buf, 1000, &n), GP_OK);
    GP_CHECK_INT(n, ==, 0);
    GP_CHECK_ERR(gp__mux_stream_write(b, "pong", 4, 1000), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_close(b), GP_OK);
    memset(buf, 0, sizeof buf);
    GP_CHECK_ERR(gp__mux_stream_read_full(a, buf, 4, 1000), GP_OK);
    GP_CHECK_STR(buf, "pong");
    GP_CHECK_ERR(gp__mux_stream_read(a, buf, sizeof buf, 1000, &n), GP_OK);
    GP_CHECK_INT(n, ==, 0);
    GP_CHECK_ERR(gp__mux_stream_read_full(a, buf, 1, 1000), GP_EIO);
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_session_free(c);
    gp__mux_session_free(s);
}

GP_TEST(reset_fails_both_directions_on_the_peer)
{
    gp__mux_session *c, *s;
    two_sessions(&c, &s, &quiet);
    gp__mux_stream *a, *b;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &b), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_reset(a), GP_OK);
    char buf[4];
    size_t n;
    GP_CHECK_ERR(gp__mux_stream_read(b, buf, sizeof buf, 2000, &n), GP_ECLOSED);
    GP_CHECK_ERR(gp__mux_stream_write(b, "x", 1, 1000), GP_ECLOSED);
    GP_CHECK_ERR(gp__mux_stream_read(a, buf, sizeof buf, 0, &n), GP_ECLOSED);
    /* The session itself lives on. */
    gp__mux_stream *a2, *b2;
    GP_CHECK_ERR(gp__mux_open(c, &a2), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &b2), GP_OK);
    GP_CHECK_INT(gp__mux_stream_id(b2), ==, 3);
    GP_CHECK_ERR(gp__mux_session_ping(c, 1000, NULL), GP_OK);
    GP_CHECK_ERR(gp__mux_session_ping(s, 1000, NULL), GP_OK);
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_stream_free(a2);
    gp__mux_stream_free(b2);
    gp__mux_session_free(c);
    gp__mux_session_free(s);
}

GP_TEST(a_write_blocks_when_the_window_is_used_up)
{
    gp__mux_session *c, *s;
    two_sessions(&c, &s, &quiet);
    gp__mux_stream *a, *b;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &b), GP_OK);
    size_t len = GP_MUX_INITIAL_WINDOW + 10;
    uint8_t *big = calloc(1, len);
    GP_CHECK_ERR(gp__mux_stream_write(a, big, len, 300), GP_ETIMEDOUT);
    /* Reading half the window sends credit; the rest then goes through. */
    GP_CHECK_ERR(gp__mux_stream_read_full(b, big, GP_MUX_INITIAL_WINDOW / 2, 1000), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_write(a, big, 10, 1000), GP_OK);
    free(big);
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_session_free(c);
    gp__mux_session_free(s);
}

typedef struct blocked {
    gp__mux_session *s;
    gp__mux_stream *st;
    gp_err accept_err, read_err;
} blocked;

static void *block_accept(void *arg)
{
    blocked *b = arg;
    gp__mux_stream *st;
    b->accept_err = gp__mux_accept(b->s, -1, &st);
    return NULL;
}

static void *block_read(void *arg)
{
    blocked *b = arg;
    char c;
    size_t n;
    b->read_err = gp__mux_stream_read(b->st, &c, 1, -1, &n);
    return NULL;
}

GP_TEST(close_wakes_every_blocked_reader_and_accepter)
{
    gp__mux_session *c, *s;
    two_sessions(&c, &s, &quiet);
    gp__mux_stream *a;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    blocked b = {c, a, GP_OK, GP_OK};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, block_accept, &b);
    pthread_create(&t2, NULL, block_read, &b);
    usleep(50000);
    gp__mux_session_close(c);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    GP_CHECK_ERR(b.accept_err, GP_ECLOSED);
    GP_CHECK_ERR(b.read_err, GP_ECLOSED);
    GP_CHECK_STR(gp__mux_session_error(c), "yamux: session closed");
    gp__mux_stream *x;
    GP_CHECK_ERR(gp__mux_open(c, &x), GP_ECLOSED);
    /* The peer sees the connection go. */
    GP_CHECK_CONTAINS(wait_closed(s, 2000), "connection closed by the peer");
    /* Free the session first: the stream keeps it alive until freed. */
    gp__mux_session_free(c);
    GP_CHECK_ERR(gp__mux_stream_write(a, "x", 1, 100), GP_ECLOSED);
    gp__mux_stream_free(a);
    gp__mux_session_free(s);
}

GP_TEST(accept_sends_the_exact_ack_go_expects_and_answers_pings)
{
    int raw;
    gp__mux_session *s = session_and_raw(GP_MUX_SERVER, &quiet, &raw);
    const uint8_t syn[12] = {0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    raw_send(raw, syn, 12);
    gp__mux_stream *st;
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &st), GP_OK);
    uint8_t got[12];
    GP_CHECK_INT(recv(raw, got, 12, MSG_WAITALL), ==, 12);
    const uint8_t ack[12] = {0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0};
    GP_CHECK(memcmp(got, ack, 12) == 0);
    raw_frame(raw, GP_MUX_TYPE_PING, GP_MUX_FLAG_SYN, 0, 77);
    gp__mux_header h;
    GP_CHECK(raw_next(raw, &h, 1000));
    GP_CHECK_INT(h.type, ==, GP_MUX_TYPE_PING);
    GP_CHECK_INT(h.flags, ==, GP_MUX_FLAG_ACK);
    GP_CHECK_INT(h.length, ==, 77);
    /* The captured broker dial: 4-byte id, echoed. */
    const uint8_t data[16] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 1, 0, 0, 0};
    raw_send(raw, data, 16);
    uint8_t id[4];
    GP_CHECK_ERR(gp__mux_stream_read_full(st, id, 4, 1000), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_write(st, id, 4, 1000), GP_OK);
    uint8_t echo[16];
    GP_CHECK_INT(recv(raw, echo, 16, MSG_WAITALL), ==, 16);
    GP_CHECK(memcmp(echo, data, 16) == 0);
    gp__mux_stream_free(st);
    GP_CHECK(raw_next(raw, &h, 1000));
    GP_CHECK_INT(h.flags, ==, GP_MUX_FLAG_FIN);
    gp__mux_session_free(s);
    close(raw);
}

GP_TEST(keepalive_tears_down_a_peer_that_stops_answering)
{
    /* All three times scaled together: the check after the sleep has 30 ms
     * (scaled) before the second ping's deadline. */
    int interval = (int)(50 * gp_test_scale()), timeout = (int)(100 * gp_test_scale());
    gp__mux_config cfg = {.keepalive_interval_ms = interval, .keepalive_timeout_ms = timeout};
    int raw;
    gp__mux_session *s = session_and_raw(GP_MUX_CLIENT, &cfg, &raw);
    /* Answer the first ping: the session stays up past one timeout. */
    gp__mux_header h;
    GP_CHECK(raw_next(raw, &h, 1000));
    GP_CHECK_INT(h.type, ==, GP_MUX_TYPE_PING);
    GP_CHECK_INT(h.flags, ==, GP_MUX_FLAG_SYN);
    raw_frame(raw, GP_MUX_TYPE_PING, GP_MUX_FLAG_ACK, 0, h.length);
    usleep((useconds_t)(120000 * gp_test_scale()));
    GP_CHECK_STR(gp__mux_session_error(s), "");
    /* Now go silent. */
    GP_CHECK_CONTAINS(wait_closed(s, (int)(3000 * gp_test_scale())),
                      "yamux: keepalive timeout: no answer to ping");
    char within[32];
    snprintf(within, sizeof within, "within %d ms", timeout);
    GP_CHECK_CONTAINS(gp__mux_session_error(s), within);
    gp__mux_session_free(s);
    close(raw);
}

/* Sends bytes from the raw side and expects a GoAway(protocol error), the
 * connection closed, and `words` in the session's error. */
static void expect_teardown(gp__mux_role role, const uint8_t *b, size_t n, const char *words)
{
    int fds = gp_test_count_fds();
    int raw;
    gp__mux_session *s = session_and_raw(role, &quiet, &raw);
    raw_send(raw, b, n);
    GP_CHECK_CONTAINS(wait_closed(s, 3000), words);
    gp__mux_header h;
    int saw_goaway = 0;
    while (raw_next(raw, &h, 1000))
        if (h.type == GP_MUX_TYPE_GO_AWAY && h.length == GP_MUX_GOAWAY_PROTO_ERR)
            saw_goaway = 1;
    GP_CHECK(saw_goaway);
    /* Streams queued before the error are still handed out, then ECLOSED. */
    gp__mux_stream *st;
    gp_err e;
    int queued = 0;
    while ((e = gp__mux_accept(s, 100, &st)) == GP_OK && queued++ < 10)
        gp__mux_stream_free(st);
    GP_CHECK_ERR(e, GP_ECLOSED);
    gp__mux_session_free(s);
    close(raw);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(garbled_bytes_tear_down_with_a_clear_error)
{
    const uint8_t b[] = "\x07\x01\x00\x01garbage garbage";
    expect_teardown(GP_MUX_SERVER, b, sizeof b - 1, "yamux: expected version 0, got 7");
    const uint8_t t[12] = {0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    expect_teardown(GP_MUX_SERVER, t, 12, "got 9");
}

GP_TEST(a_forged_4_gib_length_is_refused_before_any_allocation)
{
    const uint8_t b[24] = {0, 1, 0, 1, 0, 0, 0, 1, 0,    0,    0,    0,
                           0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
    expect_teardown(GP_MUX_SERVER, b, sizeof b, "4294967295 bytes exceeds the receive window");
}

GP_TEST(data_beyond_the_stream_window_is_a_protocol_error)
{
    size_t n = 12 + 12 + GP_MUX_INITIAL_WINDOW + 12 + 1;
    uint8_t *b = calloc(1, n);
    gp__mux_header syn = {0, 1, GP_MUX_FLAG_SYN, 1, 0};
    gp__mux_header d1 = {0, 0, 0, 1, GP_MUX_INITIAL_WINDOW};
    gp__mux_header d2 = {0, 0, 0, 1, 1};
    gp__mux_header_encode(&syn, b);
    gp__mux_header_encode(&d1, b + 12);
    gp__mux_header_encode(&d2, b + 24 + GP_MUX_INITIAL_WINDOW);
    /* Send from a thread-free loop: the socket buffer may be smaller. */
    int raw;
    gp__mux_session *s = session_and_raw(GP_MUX_SERVER, &quiet, &raw);
    size_t off = 0;
    while (off < n) {
        ssize_t k = send(raw, b + off, n - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    GP_CHECK_CONTAINS(wait_closed(s, 3000),
                      "stream 1 received a Data frame of 1 bytes beyond its window of 0");
    free(b);
    gp__mux_session_free(s);
    close(raw);
}

GP_TEST(a_duplicate_syn_tears_the_session_down)
{
    const uint8_t b[24] = {0, 1, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0};
    expect_teardown(GP_MUX_SERVER, b, sizeof b, "yamux: duplicate stream id 3");
}

GP_TEST(a_syn_with_our_own_parity_is_refused)
{
    const uint8_t b[12] = {0, 1, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0};
    expect_teardown(GP_MUX_SERVER, b, sizeof b, "peer opened stream 4, expected an odd id");
}

GP_TEST(a_full_accept_backlog_refuses_with_rst)
{
    gp__mux_config cfg = {.keepalive_interval_ms = -1, .accept_backlog = 2};
    int raw;
    gp__mux_session *s = session_and_raw(GP_MUX_SERVER, &cfg, &raw);
    for (uint32_t id = 1; id <= 5; id += 2)
        raw_frame(raw, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_SYN, id, 0);
    gp__mux_header h;
    GP_CHECK(raw_next(raw, &h, 1000));
    GP_CHECK_INT(h.stream_id, ==, 5);
    GP_CHECK_INT(h.flags, ==, GP_MUX_FLAG_RST);
    gp__mux_stream *a, *b;
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &a), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &b), GP_OK);
    GP_CHECK_INT(gp__mux_stream_id(b), ==, 3);
    GP_CHECK_STR(gp__mux_session_error(s), "");
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_session_free(s);
    close(raw);
}

/* A peer opening 10,000 streams: past max_streams open ones each SYN gets
 * RST at once (no state kept), and a slot frees when one of them ends. */
GP_TEST(a_peer_past_max_streams_gets_rst)
{
    gp__mux_config cfg = {.keepalive_interval_ms = -1, .max_streams = 3};
    int raw;
    gp__mux_session *s = session_and_raw(GP_MUX_SERVER, &cfg, &raw);
    int rst = 0, acks = 0;
    gp__mux_stream *held[3] = {0};
    int nheld = 0;
    uint32_t id = 1;
    for (int batch = 0; batch < 100; batch++) {
        uint8_t b[100 * 12];
        for (int i = 0; i < 100; i++, id += 2) {
            gp__mux_header h = {0, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_SYN, id, 0};
            gp__mux_header_encode(&h, b + 12 * i);
        }
        raw_send(raw, b, sizeof b);
        gp__mux_stream *st;
        while (nheld < 3 && gp__mux_accept(s, 0, &st) == GP_OK)
            held[nheld++] = st;
        gp__mux_header h;
        while (raw_next(raw, &h, 0)) {
            rst += h.flags == GP_MUX_FLAG_RST;
            acks += h.flags == GP_MUX_FLAG_ACK;
        }
    }
    gp__mux_stream *st;
    while (nheld < 3 && gp__mux_accept(s, 1000, &st) == GP_OK)
        held[nheld++] = st;
    gp__mux_header h;
    while (rst + acks < 10000 && raw_next(raw, &h, 2000)) {
        rst += h.flags == GP_MUX_FLAG_RST;
        acks += h.flags == GP_MUX_FLAG_ACK;
    }
    GP_CHECK_INT(nheld, ==, 3);
    GP_CHECK_INT(acks, ==, 3);
    GP_CHECK_INT(rst, ==, 9997);
    GP_CHECK_INT(gp__mux_session_refused(s), ==, 9997);
    GP_CHECK_ERR(gp__mux_accept(s, 0, &st), GP_ETIMEDOUT);
    /* The peer resets stream 1: its slot is free for the next SYN. */
    raw_frame(raw, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_RST, 1, 0);
    usleep(50000);
    raw_frame(raw, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_SYN, id, 0);
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &st), GP_OK);
    GP_CHECK_INT(gp__mux_stream_id(st), ==, id);
    GP_CHECK_STR(gp__mux_session_error(s), "");
    gp__mux_stream_free(st);
    for (int i = 0; i < nheld; i++)
        gp__mux_stream_free(held[i]);
    gp__mux_session_free(s);
    close(raw);
}

GP_TEST(goaway_from_the_peer)
{
    int raw;
    gp__mux_session *s = session_and_raw(GP_MUX_CLIENT, &quiet, &raw);
    raw_frame(raw, GP_MUX_TYPE_GO_AWAY, 0, 0, GP_MUX_GOAWAY_NORMAL);
    usleep(50000);
    gp__mux_stream *st;
    GP_CHECK_ERR(gp__mux_open(s, &st), GP_ECLOSED);
    GP_CHECK_STR(gp__mux_session_error(s), "");
    raw_frame(raw, GP_MUX_TYPE_GO_AWAY, 0, 0, GP_MUX_GOAWAY_INTERNAL_ERR);
    GP_CHECK_CONTAINS(wait_closed(s, 2000), "peer sent GoAway with code 2 (internal error)");
    gp__mux_session_free(s);
    close(raw);
}

GP_TEST(orphaned_stream_discards_data_and_gives_the_window_back)
{
    gp__mux_session *c, *s;
    two_sessions(&c, &s, &quiet);
    gp__mux_stream *a, *b;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &b), GP_OK);
    gp__mux_stream_free(b); /* server no longer reads */
    size_t len = 3 * GP_MUX_INITIAL_WINDOW;
    uint8_t *big = calloc(1, len);
    GP_CHECK_ERR(gp__mux_stream_write(a, big, len, 5000), GP_OK);
    free(big);
    char c1;
    size_t n;
    GP_CHECK_ERR(gp__mux_stream_read(a, &c1, 1, 1000, &n), GP_OK);
    GP_CHECK_INT(n, ==, 0); /* the server's FIN */
    gp__mux_stream_free(a);
    GP_CHECK_STR(gp__mux_session_error(s), "");
    gp__mux_session_free(c);
    gp__mux_session_free(s);
}

GP_TEST(data_and_fin_before_the_connection_drops_still_read_as_data_then_eof)
{
    int raw;
    gp__mux_session *s = session_and_raw(GP_MUX_SERVER, &quiet, &raw);
    const uint8_t b[] = {0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0,                 /* SYN */
                         0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 3, 'a', 'b', 'c'}; /* Data+FIN */
    raw_send(raw, b, sizeof b);
    close(raw); /* as Go's Session.Close right after the stream's Close */
    GP_CHECK_CONTAINS(wait_closed(s, 2000), "connection closed by the peer");
    gp__mux_stream *st;
    GP_CHECK_ERR(gp__mux_accept(s, 1000, &st), GP_OK);
    char buf[8] = {0};
    size_t n;
    GP_CHECK_ERR(gp__mux_stream_read(st, buf, sizeof buf, 1000, &n), GP_OK);
    GP_CHECK_STR(buf, "abc");
    GP_CHECK_ERR(gp__mux_stream_read(st, buf, sizeof buf, 1000, &n), GP_OK);
    GP_CHECK_INT(n, ==, 0);
    gp__mux_stream_free(st);
    gp__mux_session_free(s);
}

/* ---- the session over any gp__stream, and a stream as a gp__stream ------ */

/* Wraps an fd stream: at most 7 bytes per read and 5 per write, so frames
 * arrive and leave in pieces; counts the calls the session makes. */
typedef struct chunky {
    gp__stream base;
    gp__stream *inner;
    int reads, pieces, shutdowns, closes;
} chunky;

static gp_err chunky_read(gp__stream *io, void *buf, size_t cap, int timeout_ms, size_t *n,
                          char *why, size_t whylen)
{
    chunky *c = (chunky *)io;
    __atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
    return gp__stream_read(c->inner, buf, cap < 7 ? cap : 7, timeout_ms, n, why, whylen);
}

static gp_err chunky_writev(gp__stream *io, struct iovec *iov, int iovcnt, int timeout_ms,
                            char *why, size_t whylen)
{
    chunky *c = (chunky *)io;
    for (int i = 0; i < iovcnt; i++)
        for (size_t off = 0; off < iov[i].iov_len; off += 5) {
            size_t k = iov[i].iov_len - off < 5 ? iov[i].iov_len - off : 5;
            __atomic_add_fetch(&c->pieces, 1, __ATOMIC_RELAXED);
            gp_err e = gp__stream_write(c->inner, (char *)iov[i].iov_base + off, k, timeout_ms, why,
                                        whylen);
            if (e != GP_OK)
                return e;
        }
    return GP_OK;
}

static void chunky_close_write(gp__stream *io)
{
    gp__stream_close_write(((chunky *)io)->inner);
}

static void chunky_shutdown(gp__stream *io)
{
    chunky *c = (chunky *)io;
    __atomic_add_fetch(&c->shutdowns, 1, __ATOMIC_RELAXED);
    gp__stream_shutdown(c->inner);
}

static void chunky_close(gp__stream *io)
{
    chunky *c = (chunky *)io;
    c->closes++;
    gp__stream_close(c->inner);
    c->inner = NULL;
}

static const gp__stream_ops chunky_ops = {chunky_read, chunky_writev, chunky_close_write,
                                          chunky_shutdown, chunky_close};

GP_TEST(a_session_runs_over_any_byte_stream_and_owns_it_on_success_only)
{
    int sv[2];
    pair(sv);
    chunky ck = {.base.ops = &chunky_ops};
    GP_CHECK_INT(gp__stream_fd_new(sv[0], &ck.inner), ==, GP_OK);
    gp__mux_session *bad = NULL;
    /* A failed start leaves the stream (and an fd) with the caller. */
    GP_CHECK_INT(gp__mux_session_new_stream(&ck.base, (gp__mux_role)7, NULL, &bad), ==, GP_EINVAL);
    GP_CHECK_INT(gp__mux_session_new(sv[1], (gp__mux_role)7, NULL, &bad), ==, GP_EINVAL);
    GP_CHECK_INT(gp__mux_session_new(-1, GP_MUX_CLIENT, NULL, &bad), ==, GP_EINVAL);
    GP_CHECK(bad == NULL);
    GP_CHECK_INT(ck.closes, ==, 0);
    GP_CHECK(fcntl(sv[1], F_GETFD) >= 0);

    gp__mux_session *c = NULL, *s = NULL;
    GP_CHECK_INT(gp__mux_session_new_stream(&ck.base, GP_MUX_CLIENT, &quiet, &c), ==, GP_OK);
    GP_CHECK_INT(gp__mux_session_new(sv[1], GP_MUX_SERVER, &quiet, &s), ==, GP_OK);
    gp__mux_stream *a = NULL, *b = NULL;
    GP_CHECK_INT(gp__mux_open(c, &a), ==, GP_OK);
    GP_CHECK_INT(gp__mux_accept(s, 2000, &b), ==, GP_OK);
    /* Through the streams' own gp__stream, both ways. */
    char big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i % 251);
    GP_CHECK_INT(gp__stream_write(gp__mux_stream_io(a), big, sizeof big, 2000, NULL, 0), ==, GP_OK);
    char got[sizeof big];
    GP_CHECK_INT(gp__mux_stream_read_full(b, got, sizeof got, 2000), ==, GP_OK);
    GP_CHECK(memcmp(got, big, sizeof big) == 0);
    struct iovec iov[2] = {{"he", 2}, {"llo", 3}};
    GP_CHECK_INT(gp__stream_writev(gp__mux_stream_io(b), iov, 2, 2000, NULL, 0), ==, GP_OK);
    gp__stream_close_write(gp__mux_stream_io(b)); /* FIN */
    size_t n = 0, total = 0;
    char buf[16];
    do {
        GP_CHECK_INT(gp__stream_read(gp__mux_stream_io(a), buf + total, sizeof buf - total, 2000,
                                     &n, NULL, 0),
                     ==, GP_OK);
        total += n;
    } while (n > 0 && total < sizeof buf);
    GP_CHECK_INT(total, ==, 5);
    GP_CHECK(memcmp(buf, "hello", 5) == 0);
    /* shutdown is RST: the peer's read fails, with words. */
    gp__stream_shutdown(gp__mux_stream_io(a));
    char why[160] = "";
    GP_CHECK_INT(gp__stream_read(gp__mux_stream_io(b), buf, sizeof buf, 2000, &n, why, sizeof why),
                 ==, GP_ECLOSED);
    GP_CHECK_CONTAINS(why, "yamux: stream 1: ");
    /* Everything went through the wrapper, in its small pieces: 3000 bytes
     * out; ACK, two Data frames and a FIN (53 bytes) in. */
    GP_CHECK_INT(__atomic_load_n(&ck.pieces, __ATOMIC_RELAXED), >=, 3000 / 5);
    GP_CHECK_INT(__atomic_load_n(&ck.reads, __ATOMIC_RELAXED), >=, 53 / 7);
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_session_free(s);
    GP_CHECK_CONTAINS(wait_closed(c, 2000), "connection closed by the peer");
    gp__mux_session_free(c);
    GP_CHECK_INT(ck.shutdowns, ==, 1);
    GP_CHECK_INT(ck.closes, ==, 1);
}

/* gp__mux_stream_wait_accepted on streams we open, against a raw peer:
 * silence times out, the peer's ACK (on a WindowUpdate, as Go's
 * AcceptStream sends it) accepts, an RST says reset, the session's end
 * wakes the wait. */
GP_TEST(wait_accepted_sees_ack_reset_silence_and_the_end)
{
    int raw = -1;
    gp__mux_session *s = session_and_raw(GP_MUX_CLIENT, &quiet, &raw);
    gp__mux_stream *a = NULL, *b = NULL, *c = NULL;
    GP_CHECK_ERR(gp__mux_open(s, &a), GP_OK);
    GP_CHECK_ERR(gp__mux_open(s, &b), GP_OK);
    GP_CHECK_ERR(gp__mux_open(s, &c), GP_OK);
    int reset = -1;
    GP_CHECK_ERR(gp__mux_stream_wait_accepted(a, 100, &reset), GP_ETIMEDOUT);
    GP_CHECK_INT(reset, ==, 0);
    raw_frame(raw, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_ACK, gp__mux_stream_id(a), 0);
    GP_CHECK_ERR(gp__mux_stream_wait_accepted(a, 2000, &reset), GP_OK);
    GP_CHECK_INT(reset, ==, 0);
    raw_frame(raw, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_RST, gp__mux_stream_id(b), 0);
    GP_CHECK_ERR(gp__mux_stream_wait_accepted(b, 2000, &reset), GP_ECLOSED);
    GP_CHECK_INT(reset, ==, 1);
    shutdown(raw, SHUT_RDWR); /* the connection drops: c is never accepted */
    GP_CHECK_ERR(gp__mux_stream_wait_accepted(c, 2000, &reset), GP_ECLOSED);
    GP_CHECK_INT(reset, ==, 0);
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_stream_free(c);
    gp__mux_session_free(s);
    close(raw);
}

int main(void)
{
    GP_RUN(open_accept_and_echo_on_a_hundred_streams);
    GP_RUN(one_mib_both_ways_at_once_through_window_updates);
    GP_RUN(half_close_gives_eof_after_the_data_and_the_other_way_still_works);
    GP_RUN(reset_fails_both_directions_on_the_peer);
    GP_RUN(a_write_blocks_when_the_window_is_used_up);
    GP_RUN(close_wakes_every_blocked_reader_and_accepter);
    GP_RUN(accept_sends_the_exact_ack_go_expects_and_answers_pings);
    GP_RUN(keepalive_tears_down_a_peer_that_stops_answering);
    GP_RUN(garbled_bytes_tear_down_with_a_clear_error);
    GP_RUN(a_forged_4_gib_length_is_refused_before_any_allocation);
    GP_RUN(data_beyond_the_stream_window_is_a_protocol_error);
    GP_RUN(a_duplicate_syn_tears_the_session_down);
    GP_RUN(a_syn_with_our_own_parity_is_refused);
    GP_RUN(a_full_accept_backlog_refuses_with_rst);
    GP_RUN(a_peer_past_max_streams_gets_rst);
    GP_RUN(goaway_from_the_peer);
    GP_RUN(orphaned_stream_discards_data_and_gives_the_window_back);
    GP_RUN(data_and_fin_before_the_connection_drops_still_read_as_data_then_eof);
    GP_RUN(a_session_runs_over_any_byte_stream_and_owns_it_on_success_only);
    GP_RUN(wait_accepted_sees_ack_reset_silence_and_the_end);
    return gp_test_done();
}
