/* yamux over mbedTLS on socketpairs: C session against C session with
 * real certificates, keepalive through TLS, and peers that vanish or send
 * bytes that are not TLS records. */
#include "transport/yamux/mux_tls.h"
#include "transport/testing/gp_test.h"
#include "transport/tls/certgen.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static gp__tls_keypair host_kp, plugin_kp;

typedef struct {
    int fd;
    gp__tls *t;
    gp_err e;
    char err[512];
} server_side;

static void *server_open(void *arg)
{
    server_side *s = arg;
    gp__tls_params p = {.role = GP_TLS_SERVER,
                        .cert_pem = plugin_kp.cert_pem,
                        .key_pem = plugin_kp.key_pem,
                        .peer_ca_pem = host_kp.cert_pem};
    s->e = gp__tls_open(s->fd, &p, &s->t, s->err, sizeof s->err);
    return NULL;
}

/* TLS on both ends of a socketpair: the host's (client) and plugin's. */
static void tls_pair(gp__tls **c, gp__tls **s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    server_side ss = {.fd = sv[1]};
    pthread_t th;
    pthread_create(&th, NULL, server_open, &ss);
    gp__tls_params p = {.role = GP_TLS_CLIENT,
                        .cert_pem = host_kp.cert_pem,
                        .key_pem = host_kp.key_pem,
                        .peer_ca_pem = plugin_kp.cert_pem};
    char err[512] = "";
    gp_err e = gp__tls_open(sv[0], &p, c, err, sizeof err);
    pthread_join(th, NULL);
    if (e != GP_OK || ss.e != GP_OK) {
        fprintf(stderr, "handshake: client %s / server %s\n", err, ss.err);
        abort();
    }
    *s = ss.t;
}

static void two_sessions(gp__mux_session **c, gp__mux_session **s, const gp__mux_config *cfg)
{
    gp__tls *tc, *ts;
    tls_pair(&tc, &ts);
    GP_CHECK_ERR(gp__mux_session_new_tls(tc, GP_MUX_CLIENT, cfg, c), GP_OK);
    GP_CHECK_ERR(gp__mux_session_new_tls(ts, GP_MUX_SERVER, cfg, s), GP_OK);
}

typedef struct {
    gp__mux_stream *st;
    size_t len;
} writer_arg;

static void *writer_main(void *arg)
{
    writer_arg *w = arg;
    uint8_t *b = malloc(w->len);
    for (size_t i = 0; i < w->len; i++)
        b[i] = (uint8_t)(i * 7 + 3);
    GP_CHECK_ERR(gp__mux_stream_write(w->st, b, w->len, 10000), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_close(w->st), GP_OK);
    free(b);
    return NULL;
}

/* 4 MiB one way (window updates, many records), a ping, a clean close. */
GP_TEST(big_stream_over_tls)
{
    gp__mux_session *c, *s;
    const gp__mux_config cfg = {.keepalive_interval_ms = -1};
    two_sessions(&c, &s, &cfg);
    gp__mux_stream *a = NULL, *b = NULL;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    writer_arg w = {a, 4u << 20};
    pthread_t th;
    pthread_create(&th, NULL, writer_main, &w);
    GP_CHECK_ERR(gp__mux_accept(s, 5000, &b), GP_OK);
    size_t total = 0;
    int bad = 0;
    uint8_t buf[70000];
    for (;;) {
        size_t n = 0;
        if (gp__mux_stream_read(b, buf, sizeof buf, 10000, &n) != GP_OK || n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            bad |= buf[i] != (uint8_t)((total + i) * 7 + 3);
        total += n;
    }
    pthread_join(th, NULL);
    GP_CHECK_INT(total, ==, 4u << 20);
    GP_CHECK_INT(bad, ==, 0);
    int64_t rtt = 0;
    GP_CHECK_ERR(gp__mux_session_ping(s, 5000, &rtt), GP_OK);
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_session_free(c);
    gp__mux_session_free(s);
}

/* Keepalive pings go through TLS: an idle session stays up past several
 * intervals (the reader waits in gp__tls_read's timeout, not poll). */
GP_TEST(keepalive_through_tls)
{
    gp__mux_session *c, *s;
    const gp__mux_config cfg = {.keepalive_interval_ms = 30, .keepalive_timeout_ms = 2000};
    two_sessions(&c, &s, &cfg);
    usleep(300 * 1000);
    GP_CHECK_INT(gp__mux_session_is_closed(c), ==, 0);
    GP_CHECK_INT(gp__mux_session_is_closed(s), ==, 0);
    GP_CHECK_ERR(gp__mux_session_ping(c, 2000, NULL), GP_OK);
    gp__mux_session_free(c);
    gp__mux_session_free(s);
}

/* The peer goes away: blocked calls wake with GP_ECLOSED and say why. */
GP_TEST(peer_closes)
{
    gp__tls *tc, *ts;
    tls_pair(&tc, &ts);
    gp__mux_session *c = NULL;
    const gp__mux_config cfg = {.keepalive_interval_ms = -1};
    GP_CHECK_ERR(gp__mux_session_new_tls(tc, GP_MUX_CLIENT, &cfg, &c), GP_OK);
    gp__mux_stream *st = NULL;
    GP_CHECK_ERR(gp__mux_accept(c, 50, &st), GP_ETIMEDOUT);
    gp__tls_close(ts); /* close_notify, then the socket closes */
    GP_CHECK_ERR(gp__mux_accept(c, 5000, &st), GP_ECLOSED);
    GP_CHECK(gp__mux_session_error(c)[0] != 0);
    gp__mux_session_free(c);
}

/* Bytes that are not a TLS record end the session with the TLS layer's
 * words, no crash, no hang. */
GP_TEST(garbage_instead_of_records)
{
    gp__tls *tc, *ts;
    tls_pair(&tc, &ts);
    gp__mux_session *c = NULL;
    const gp__mux_config cfg = {.keepalive_interval_ms = -1};
    GP_CHECK_ERR(gp__mux_session_new_tls(tc, GP_MUX_CLIENT, &cfg, &c), GP_OK);
    static const char junk[] = "\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00garbage!";
    GP_CHECK_INT(send(gp__tls_fd(ts), junk, sizeof junk - 1, MSG_NOSIGNAL), ==,
                 (long long)(sizeof junk - 1));
    gp__mux_stream *st = NULL;
    GP_CHECK_ERR(gp__mux_accept(c, 5000, &st), GP_ECLOSED);
    GP_CHECK_CONTAINS(gp__mux_session_error(c), "yamux: read: ");
    fprintf(stderr, "  session error: %s\n", gp__mux_session_error(c));
    gp__mux_session_free(c);
    gp__tls_close(ts);
}

/* A forged record whose integrity check fails. */
GP_TEST(forged_record)
{
    gp__tls *tc, *ts;
    tls_pair(&tc, &ts);
    gp__mux_session *c = NULL;
    const gp__mux_config cfg = {.keepalive_interval_ms = -1};
    GP_CHECK_ERR(gp__mux_session_new_tls(tc, GP_MUX_CLIENT, &cfg, &c), GP_OK);
    uint8_t rec[5 + 64] = {0x17, 0x03, 0x03, 0x00, 64};
    memset(rec + 5, 0xAB, 64);
    GP_CHECK_INT(send(gp__tls_fd(ts), rec, sizeof rec, MSG_NOSIGNAL), ==, (long long)sizeof rec);
    gp__mux_stream *st = NULL;
    GP_CHECK_ERR(gp__mux_accept(c, 5000, &st), GP_ECLOSED);
    GP_CHECK_CONTAINS(gp__mux_session_error(c), "yamux: read: ");
    fprintf(stderr, "  session error: %s\n", gp__mux_session_error(c));
    gp__mux_session_free(c);
    gp__tls_close(ts);
}

int main(void)
{
    char err[256];
    if (gp__tls_certgen(NULL, &host_kp, err, sizeof err) != GP_OK ||
        gp__tls_certgen(NULL, &plugin_kp, err, sizeof err) != GP_OK) {
        fprintf(stderr, "certgen: %s\n", err);
        return 1;
    }
    GP_RUN(big_stream_over_tls);
    GP_RUN(keepalive_through_tls);
    GP_RUN(peer_closes);
    GP_RUN(garbage_instead_of_records);
    GP_RUN(forged_record);
    gp__tls_keypair_free(&host_kp);
    gp__tls_keypair_free(&plugin_kp);
    return gp_test_done();
}
