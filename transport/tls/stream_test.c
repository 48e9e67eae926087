/* mbedTLS over a socketpair: real handshakes between two threads, with the
 * right and the wrong certificates, and peers that misbehave. */
#include "transport/tls/certgen.h"
#include "transport/tls/stream.h"
#include "transport/testing/gp_test.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static gp__tls_keypair host_kp, plugin_kp, other_kp, expired_kp;

typedef struct side {
    int fd;
    gp__tls_params p;
    gp__tls *t;
    gp_err rc;
    char err[512];
    size_t bytes; /* exchange: how much to send and receive */
    int ok_data;
} side;

static void params(side *s, gp__tls_role role, const gp__tls_keypair *own,
                   const gp__tls_keypair *trust)
{
    memset(&s->p, 0, sizeof s->p);
    s->p.role = role;
    s->p.cert_pem = own->cert_pem;
    s->p.key_pem = own->key_pem;
    s->p.peer_ca_pem = trust->cert_pem;
    s->p.handshake_timeout_ms = 5000;
}

static unsigned char pattern(size_t i, int role)
{
    return (unsigned char)((i * 31u + (unsigned)role * 7u) ^ (i >> 11));
}

typedef struct writer_arg {
    side *s;
    gp_err rc;
    char err[256];
} writer_arg;

static void *writer(void *arg)
{
    writer_arg *w = arg;
    size_t total = w->s->bytes, off = 0;
    unsigned char chunk[7000]; /* odd size: records do not line up with writes */
    w->rc = GP_OK;
    while (off < total && w->rc == GP_OK) {
        size_t n = total - off < sizeof chunk ? total - off : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(off + i, w->s->p.role);
        w->rc = gp__tls_write(w->s->t, chunk, n, 10000, w->err, sizeof w->err);
        off += n;
    }
    return NULL;
}

/* Handshake, then send `bytes` from a second thread while reading the
 * peer's `bytes` here: read and write run concurrently on one stream. */
static void *run_side(void *arg)
{
    side *s = arg;
    s->rc = gp__tls_open(s->fd, &s->p, &s->t, s->err, sizeof s->err);
    if (s->rc != GP_OK || !s->bytes)
        return NULL;
    writer_arg w = {.s = s};
    pthread_t th;
    pthread_create(&th, NULL, writer, &w);
    int peer_role = s->p.role == GP_TLS_CLIENT ? GP_TLS_SERVER : GP_TLS_CLIENT;
    size_t got = 0;
    int good = 1;
    unsigned char buf[5000];
    while (got < s->bytes) {
        size_t n = 0;
        gp_err rc = gp__tls_read(s->t, buf, sizeof buf, 10000, &n, s->err, sizeof s->err);
        if (rc != GP_OK || n == 0) {
            good = 0;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (buf[i] != pattern(got + i, peer_role))
                good = 0;
        got += n;
    }
    pthread_join(th, NULL);
    s->ok_data = good && got == s->bytes && w.rc == GP_OK;
    if (w.rc != GP_OK)
        snprintf(s->err, sizeof s->err, "writer: %s", w.err);
    return NULL;
}

static void pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        perror("socketpair");
        exit(2);
    }
}

/* Runs client and server to completion; fds not taken over are closed. */
static void run_both(side *c, side *s)
{
    pthread_t tc, ts;
    pthread_create(&ts, NULL, run_side, s);
    pthread_create(&tc, NULL, run_side, c);
    pthread_join(tc, NULL);
    pthread_join(ts, NULL);
}

static void finish(side *s)
{
    if (s->t)
        gp__tls_close(s->t);
    else
        close(s->fd);
    s->t = NULL;
}

GP_TEST(mutual_auth_and_a_mebibyte_each_way)
{
    int fds = gp_test_count_fds();
    int sv[2];
    pair(sv);
    /* one side non-blocking (as the netrpc multiplexer leaves its fd), the
     * other blocking: both must work */
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    side c = {.fd = sv[0], .bytes = 1 << 20}, s = {.fd = sv[1], .bytes = 1 << 20};
    params(&c, GP_TLS_CLIENT, &host_kp, &plugin_kp);
    params(&s, GP_TLS_SERVER, &plugin_kp, &host_kp);
    run_both(&c, &s);
    GP_CHECK_ERR(c.rc, GP_OK);
    GP_CHECK_ERR(s.rc, GP_OK);
    if (c.rc || s.rc)
        GP_FAILF("client: %s / server: %s", c.err, s.err);
    GP_CHECK(c.ok_data);
    GP_CHECK(s.ok_data);
    if (!c.ok_data || !s.ok_data)
        GP_FAILF("data: client: %s / server: %s", c.err, s.err);
    if (c.t && s.t) {
        char d[128];
        gp__tls_describe(c.t, d, sizeof d);
        GP_CHECK_CONTAINS(d, "TLSv1.2");
        GP_CHECK_INT(gp__tls_fd(c.t), ==, sv[0]);
        /* the client's close_notify is a clean end for the server */
        gp__tls_close(c.t);
        c.t = NULL;
        unsigned char b[16];
        size_t n = 99;
        char err[256] = "";
        GP_CHECK_ERR(gp__tls_read(s.t, b, sizeof b, 2000, &n, err, sizeof err), GP_OK);
        GP_CHECK_INT(n, ==, 0);
    }
    finish(&c);
    finish(&s);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(client_refuses_wrong_server_cert)
{
    int fds = gp_test_count_fds();
    int sv[2];
    pair(sv);
    side c = {.fd = sv[0]}, s = {.fd = sv[1]};
    params(&c, GP_TLS_CLIENT, &host_kp, &plugin_kp);
    params(&s, GP_TLS_SERVER, &other_kp, &host_kp); /* not the cert of field 6 */
    run_both(&c, &s);
    GP_CHECK_ERR(c.rc, GP_ETLS);
    GP_CHECK_CONTAINS(c.err, "tls: peer certificate not trusted: The certificate is not "
                             "correctly signed by the trusted CA");
    GP_CHECK_CONTAINS(c.err, "the server's certificate, checked by this client");
    GP_CHECK_ERR_NE(s.rc, GP_OK);
    GP_CHECK_CONTAINS(s.err, "client");
    fprintf(stderr, "    client: %s\n    server: %s\n", c.err, s.err);
    finish(&c);
    finish(&s);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(client_refuses_expired_server_cert)
{
    int sv[2];
    pair(sv);
    side c = {.fd = sv[0]}, s = {.fd = sv[1]};
    params(&c, GP_TLS_CLIENT, &host_kp, &expired_kp);
    params(&s, GP_TLS_SERVER, &expired_kp, &host_kp);
    run_both(&c, &s);
    GP_CHECK_ERR(c.rc, GP_ETLS);
    GP_CHECK_CONTAINS(c.err, "The certificate validity has expired");
    finish(&c);
    finish(&s);
}

GP_TEST(server_refuses_wrong_client_cert)
{
    int sv[2];
    pair(sv);
    side c = {.fd = sv[0]}, s = {.fd = sv[1]};
    params(&c, GP_TLS_CLIENT, &other_kp, &plugin_kp); /* not PLUGIN_CLIENT_CERT's */
    params(&s, GP_TLS_SERVER, &plugin_kp, &host_kp);
    run_both(&c, &s);
    GP_CHECK_ERR(s.rc, GP_ETLS);
    GP_CHECK_CONTAINS(s.err, "tls: peer certificate not trusted: The certificate is not "
                             "correctly signed by the trusted CA");
    GP_CHECK_CONTAINS(s.err, "the client's certificate, checked by this server");
    GP_CHECK_ERR_NE(c.rc, GP_OK);
    GP_CHECK_CONTAINS(c.err, "server");
    fprintf(stderr, "    client: %s\n    server: %s\n", c.err, s.err);
    finish(&c);
    finish(&s);
}

/* A bare mbedTLS client that presents no certificate at all. */
typedef struct bare {
    int fd;
    int ret;
} bare;

static int bare_send(void *ctx, const unsigned char *b, size_t n)
{
    ssize_t r = send(*(int *)ctx, b, n, MSG_NOSIGNAL);
    return r < 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : (int)r;
}

static int bare_recv(void *ctx, unsigned char *b, size_t n)
{
    ssize_t r = recv(*(int *)ctx, b, n, 0);
    return r < 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : (int)r;
}

static void *certless_client(void *arg)
{
    bare *b = arg;
    mbedtls_entropy_context e;
    mbedtls_ctr_drbg_context d;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_entropy_init(&e);
    mbedtls_ctr_drbg_init(&d);
    mbedtls_ssl_config_init(&conf);
    mbedtls_ssl_init(&ssl);
    mbedtls_ctr_drbg_seed(&d, mbedtls_entropy_func, &e, NULL, 0);
    mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                MBEDTLS_SSL_PRESET_DEFAULT);
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &d);
    mbedtls_ssl_setup(&ssl, &conf);
    mbedtls_ssl_set_bio(&ssl, &b->fd, bare_send, bare_recv, NULL);
    b->ret = mbedtls_ssl_handshake(&ssl);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_ctr_drbg_free(&d);
    mbedtls_entropy_free(&e);
    close(b->fd);
    return NULL;
}

GP_TEST(server_refuses_client_without_cert)
{
    int sv[2];
    pair(sv);
    bare b = {.fd = sv[0]};
    side s = {.fd = sv[1]};
    params(&s, GP_TLS_SERVER, &plugin_kp, &host_kp);
    pthread_t th;
    pthread_create(&th, NULL, certless_client, &b);
    run_side(&s);
    finish(&s); /* the bare client waits for our hang-up */
    pthread_join(th, NULL);
    GP_CHECK_ERR(s.rc, GP_ETLS);
    GP_CHECK_CONTAINS(s.err, "the client presented no certificate; this server requires one");
    GP_CHECK_INT(b.ret, !=, 0);
}

/* A peer that reads a few bytes of the ClientHello and hangs up. */
static void *hang_up_early(void *arg)
{
    int fd = *(int *)arg;
    char buf[10];
    (void)!read(fd, buf, sizeof buf);
    close(fd);
    return NULL;
}

GP_TEST(peer_closes_mid_handshake)
{
    int fds = gp_test_count_fds();
    int sv[2];
    pair(sv);
    side c = {.fd = sv[0]};
    params(&c, GP_TLS_CLIENT, &host_kp, &plugin_kp);
    pthread_t th;
    pthread_create(&th, NULL, hang_up_early, &sv[1]);
    int64_t t0 = gp_test_now_ms();
    run_side(&c);
    pthread_join(th, NULL);
    GP_CHECK_INT(gp_test_now_ms() - t0, <, 2000);
    GP_CHECK(c.rc == GP_ECLOSED || c.rc == GP_EIO);
    GP_CHECK_CONTAINS(c.err, "the server closed the connection during the handshake");
    GP_CHECK(c.t == NULL);
    close(sv[0]); /* still the caller's after a failed open */
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

/* A client that sends half a ClientHello record and hangs up. */
static void *half_hello(void *arg)
{
    int fd = *(int *)arg;
    static const unsigned char part[] = {0x16, 0x03, 0x01, 0x00, 0xC8, 0x01, 0x00, 0x00};
    (void)!send(fd, part, sizeof part, MSG_NOSIGNAL);
    close(fd);
    return NULL;
}

GP_TEST(client_closes_mid_handshake)
{
    int sv[2];
    pair(sv);
    side s = {.fd = sv[1]};
    params(&s, GP_TLS_SERVER, &plugin_kp, &host_kp);
    pthread_t th;
    pthread_create(&th, NULL, half_hello, &sv[0]);
    int64_t t0 = gp_test_now_ms();
    run_side(&s);
    pthread_join(th, NULL);
    GP_CHECK_INT(gp_test_now_ms() - t0, <, 2000);
    GP_CHECK_ERR(s.rc, GP_ECLOSED);
    GP_CHECK_CONTAINS(s.err, "tls: the client closed the connection during the handshake (EOF)");
    close(sv[1]);
}

/* A server that answers the ClientHello with junk. */
static void *answer_junk(void *arg)
{
    int fd = *(int *)arg;
    char buf[512];
    (void)!read(fd, buf, sizeof buf);
    static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    (void)!send(fd, junk, sizeof junk - 1, MSG_NOSIGNAL);
    return NULL;
}

GP_TEST(garbage_from_server)
{
    int sv[2];
    pair(sv);
    side c = {.fd = sv[0]};
    params(&c, GP_TLS_CLIENT, &host_kp, &plugin_kp);
    pthread_t th;
    pthread_create(&th, NULL, answer_junk, &sv[1]);
    run_side(&c);
    pthread_join(th, NULL);
    GP_CHECK_ERR(c.rc, GP_EPROTO);
    GP_CHECK_CONTAINS(
        c.err, "tls: handshake: the server sent data that is not a TLS record (header \"HTTP/\")");
    fprintf(stderr, "    client: %s\n", c.err);
    close(sv[0]);
    close(sv[1]);
}

GP_TEST(silent_server_times_out)
{
    int sv[2];
    pair(sv);
    side c = {.fd = sv[0]};
    params(&c, GP_TLS_CLIENT, &host_kp, &plugin_kp);
    c.p.handshake_timeout_ms = 300;
    int64_t t0 = gp_test_now_ms();
    run_side(&c);
    int64_t took = gp_test_now_ms() - t0;
    GP_CHECK_ERR(c.rc, GP_ETIMEDOUT);
    GP_CHECK_CONTAINS(c.err, "tls: handshake timed out after 300 ms waiting for the server");
    GP_CHECK_INT(took, >=, 290);
    GP_CHECK_INT(took, <, 2000);
    close(sv[0]);
    close(sv[1]);
}

/* A relay between client and server that, once armed, flips one bit in
 * the next bytes going to the server: a tampered TLS record. */
typedef struct relay {
    int from, to;
    atomic_int armed;
} relay;

static void *relay_run(void *arg)
{
    relay *r = arg;
    unsigned char buf[4096];
    for (;;) {
        ssize_t n = read(r->from, buf, sizeof buf);
        if (n <= 0)
            break;
        if (atomic_exchange(&r->armed, 0))
            buf[n - 1] ^= 0x01; /* inside the AEAD tag or ciphertext */
        if (send(r->to, buf, (size_t)n, MSG_NOSIGNAL) != n)
            break;
    }
    shutdown(r->to, SHUT_WR);
    return NULL;
}

GP_TEST(tampered_record_is_refused)
{
    int a[2], b[2];
    pair(a); /* client <-> relay */
    pair(b); /* relay <-> server */
    relay up = {.from = a[1], .to = b[0]}, down = {.from = b[0], .to = a[1]};
    atomic_init(&up.armed, 0);
    atomic_init(&down.armed, 0);
    pthread_t tu, td;
    pthread_create(&tu, NULL, relay_run, &up);
    pthread_create(&td, NULL, relay_run, &down);
    side c = {.fd = a[0]}, s = {.fd = b[1]};
    params(&c, GP_TLS_CLIENT, &host_kp, &plugin_kp);
    params(&s, GP_TLS_SERVER, &plugin_kp, &host_kp);
    run_both(&c, &s);
    GP_CHECK(c.t && s.t);
    if (c.t && s.t) {
        char err[256] = "", buf[64];
        size_t n = 0;
        GP_CHECK_ERR(gp__tls_write(c.t, "hello", 5, 1000, err, sizeof err), GP_OK);
        GP_CHECK_ERR(gp__tls_read(s.t, buf, sizeof buf, 1000, &n, err, sizeof err), GP_OK);
        GP_CHECK_INT(n, ==, 5);
        atomic_store(&up.armed, 1);
        GP_CHECK_ERR(gp__tls_write(c.t, "world", 5, 1000, err, sizeof err), GP_OK);
        n = 0;
        GP_CHECK_ERR(gp__tls_read(s.t, buf, sizeof buf, 1000, &n, err, sizeof err), GP_ETLS);
        GP_CHECK_INT(n, ==, 0);
        GP_CHECK_STR(err, "tls: read: a record from the client failed its integrity check "
                          "(tampered or corrupted on the way)");
    }
    finish(&c);
    finish(&s);
    /* the relay threads end when both sides have hung up */
    shutdown(a[1], SHUT_RDWR);
    shutdown(b[0], SHUT_RDWR);
    pthread_join(tu, NULL);
    pthread_join(td, NULL);
    close(a[1]);
    close(b[0]);
}

GP_TEST(forged_record_length_after_handshake)
{
    int sv[2];
    pair(sv);
    side c = {.fd = sv[0]}, s = {.fd = sv[1]};
    params(&c, GP_TLS_CLIENT, &host_kp, &plugin_kp);
    params(&s, GP_TLS_SERVER, &plugin_kp, &host_kp);
    run_both(&c, &s);
    GP_CHECK(c.t && s.t);
    if (c.t && s.t) {
        /* an application-data record claiming 65535 bytes, beyond TLS's limit */
        static const unsigned char forged[] = {0x17, 0x03, 0x03, 0xFF, 0xFF, 0, 0, 0};
        GP_CHECK(send(gp__tls_fd(s.t), forged, sizeof forged, MSG_NOSIGNAL) ==
                 (ssize_t)sizeof forged);
        char err[256] = "", buf[64];
        size_t n = 0;
        int64_t t0 = gp_test_now_ms();
        GP_CHECK_ERR(gp__tls_read(c.t, buf, sizeof buf, 2000, &n, err, sizeof err), GP_EPROTO);
        GP_CHECK_INT(gp_test_now_ms() - t0, <, 1000);
        GP_CHECK_STR(err, "tls: read: the server sent data that is not a TLS record (header "
                          "\"\\x17\\x03\\x03\\xff\\xff\")");
    }
    finish(&c);
    finish(&s);
}

static void open_pair(side *c, side *s)
{
    int sv[2];
    pair(sv);
    memset(c, 0, sizeof *c);
    memset(s, 0, sizeof *s);
    c->fd = sv[0];
    s->fd = sv[1];
    params(c, GP_TLS_CLIENT, &host_kp, &plugin_kp);
    params(s, GP_TLS_SERVER, &plugin_kp, &host_kp);
    run_both(c, s);
}

static void *read_one(void *arg)
{
    side *s = arg;
    unsigned char b[64];
    size_t n;
    s->rc = gp__tls_read(s->t, b, sizeof b, -1, &n, s->err, sizeof s->err);
    return NULL;
}

GP_TEST(shutdown_wakes_blocked_reader)
{
    side c, s;
    open_pair(&c, &s);
    GP_CHECK(c.t && s.t);
    if (!c.t || !s.t)
        return;
    pthread_t th;
    pthread_create(&th, NULL, read_one, &s);
    struct timespec d = {0, 50 * 1000 * 1000};
    nanosleep(&d, NULL);
    int64_t t0 = gp_test_now_ms();
    gp__tls_shutdown(s.t);
    gp__tls_shutdown(s.t); /* idempotent */
    pthread_join(th, NULL);
    GP_CHECK_INT(gp_test_now_ms() - t0, <, 1000);
    GP_CHECK_ERR(s.rc, GP_ECLOSED);
    GP_CHECK_CONTAINS(s.err, "shut down locally");
    char err[256];
    GP_CHECK_ERR(gp__tls_write(s.t, "x", 1, 100, err, sizeof err), GP_ECLOSED);
    /* the client sees its peer go away without close_notify */
    unsigned char b[8];
    size_t n;
    GP_CHECK_ERR(gp__tls_read(c.t, b, sizeof b, 2000, &n, err, sizeof err), GP_ECLOSED);
    GP_CHECK_CONTAINS(err, "the server closed the connection without close_notify");
    finish(&c);
    finish(&s);
}

GP_TEST(read_timeout_and_write_after_peer_gone_no_sigpipe)
{
    side c, s;
    open_pair(&c, &s);
    GP_CHECK(c.t && s.t);
    if (!c.t || !s.t)
        return;
    unsigned char b[8];
    size_t n;
    char err[256];
    int64_t t0 = gp_test_now_ms();
    GP_CHECK_ERR(gp__tls_read(c.t, b, sizeof b, 100, &n, err, sizeof err), GP_ETIMEDOUT);
    GP_CHECK_INT(gp_test_now_ms() - t0, >=, 90);
    GP_CHECK_CONTAINS(err, "timed out after 100 ms");
    GP_CHECK_ERR(gp__tls_read(c.t, b, sizeof b, 0, &n, err, sizeof err), GP_ETIMEDOUT);

    /* The server vanishes without close_notify; writing must fail with
     * words, not kill us with SIGPIPE (no handler is installed here). */
    shutdown(gp__tls_fd(s.t), SHUT_RDWR);
    static unsigned char big[256 * 1024];
    gp_err rc = GP_OK;
    for (int i = 0; i < 8 && rc == GP_OK; i++)
        rc = gp__tls_write(c.t, big, sizeof big, 2000, err, sizeof err);
    GP_CHECK_ERR(rc, GP_ECLOSED);
    GP_CHECK_CONTAINS(err, "tls: write: connection reset by the server");
    finish(&c);
    finish(&s);
}

GP_TEST(as_a_byte_stream_writev_gathers_records_and_close_write_ends_cleanly)
{
    int fds = gp_test_count_fds();
    side c, s;
    open_pair(&c, &s);
    GP_CHECK(c.t && s.t);
    if (!c.t || !s.t)
        return;
    gp__stream *cs = gp__tls_stream(c.t), *ss = gp__tls_stream(s.t);
    static unsigned char big[40000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = pattern(i, 1);
    struct iovec iov[4] = {{"head", 4}, {big, 0}, {big, sizeof big}, {"tail", 4}};
    char err[256] = "";
    GP_CHECK_INT(gp__stream_writev(cs, iov, 4, 5000, err, sizeof err), ==, GP_OK);
    /* mbedTLS hands out one record per read: the first one holds the
     * header and the start of the payload together. */
    static unsigned char got[sizeof big + 8];
    size_t n = 0, total = 0;
    GP_CHECK_INT(gp__stream_read(ss, got, sizeof got, 2000, &n, err, sizeof err), ==, GP_OK);
    GP_CHECK_INT(n, ==, 16384);
    total = n;
    while (total < sizeof got) {
        gp_err rc = gp__stream_read(ss, got + total, sizeof got - total, 2000, &n, err, sizeof err);
        GP_CHECK_INT(rc, ==, GP_OK);
        if (rc != GP_OK || n == 0)
            break;
        total += n;
    }
    GP_CHECK_INT(total, ==, sizeof got);
    GP_CHECK(memcmp(got, "head", 4) == 0 && memcmp(got + 4, big, sizeof big) == 0 &&
             memcmp(got + 4 + sizeof big, "tail", 4) == 0);
    /* close_write is close_notify: a clean end for the reader. */
    gp__stream_close_write(cs);
    GP_CHECK_INT(gp__stream_read(ss, got, sizeof got, 2000, &n, err, sizeof err), ==, GP_OK);
    GP_CHECK_INT(n, ==, 0);
    gp__stream_shutdown(ss);
    GP_CHECK_INT(gp__stream_read(ss, got, sizeof got, 0, &n, err, sizeof err), ==, GP_ECLOSED);
    GP_CHECK_CONTAINS(err, "shut down locally");
    /* close is gp__tls_close: the TLS state and the fd go. */
    gp__stream_close(cs);
    c.t = NULL;
    c.fd = -1;
    gp__stream_close(ss);
    s.t = NULL;
    s.fd = -1;
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(bad_parameters_say_what)
{
    int sv[2];
    pair(sv);
    gp__tls *t = NULL;
    char err[512];
    gp__tls_params p = {.role = GP_TLS_CLIENT,
                        .cert_pem = host_kp.cert_pem,
                        .key_pem =
                            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                        .peer_ca_pem = plugin_kp.cert_pem};
    GP_CHECK_ERR(gp__tls_open(sv[0], &p, &t, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "tls: own private key: ");
    p.key_pem = plugin_kp.key_pem;
    GP_CHECK_ERR(gp__tls_open(sv[0], &p, &t, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "own private key does not match own certificate");
    p.key_pem = host_kp.key_pem;
    p.peer_ca_pem = "not a certificate";
    GP_CHECK_ERR(gp__tls_open(sv[0], &p, &t, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "tls: peer's certificate (trust root): ");
    p.cert_pem = "";
    GP_CHECK_ERR(gp__tls_open(sv[0], &p, &t, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "tls: own certificate: ");
    p.cert_pem = NULL;
    GP_CHECK_ERR(gp__tls_open(sv[0], &p, &t, err, sizeof err), GP_EINVAL);
    GP_CHECK(t == NULL);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    char err[512];
    time_t now = time(NULL);
    gp__tls_certgen_opts expired = {.not_before = now - 7200, .not_after = now - 3600};
    if (gp__tls_certgen(NULL, &host_kp, err, sizeof err) ||
        gp__tls_certgen(NULL, &plugin_kp, err, sizeof err) ||
        gp__tls_certgen(NULL, &other_kp, err, sizeof err) ||
        gp__tls_certgen(&expired, &expired_kp, err, sizeof err)) {
        fprintf(stderr, "certgen: %s\n", err);
        return 1;
    }
    GP_RUN(mutual_auth_and_a_mebibyte_each_way);
    GP_RUN(client_refuses_wrong_server_cert);
    GP_RUN(client_refuses_expired_server_cert);
    GP_RUN(server_refuses_wrong_client_cert);
    GP_RUN(server_refuses_client_without_cert);
    GP_RUN(peer_closes_mid_handshake);
    GP_RUN(client_closes_mid_handshake);
    GP_RUN(garbage_from_server);
    GP_RUN(silent_server_times_out);
    GP_RUN(tampered_record_is_refused);
    GP_RUN(forged_record_length_after_handshake);
    GP_RUN(shutdown_wakes_blocked_reader);
    GP_RUN(read_timeout_and_write_after_peer_gone_no_sigpipe);
    GP_RUN(as_a_byte_stream_writev_gathers_records_and_close_write_ends_cleanly);
    GP_RUN(bad_parameters_say_what);
    gp__tls_keypair_free(&host_kp);
    gp__tls_keypair_free(&plugin_kp);
    gp__tls_keypair_free(&other_kp);
    gp__tls_keypair_free(&expired_kp);
    return gp_test_done();
}
