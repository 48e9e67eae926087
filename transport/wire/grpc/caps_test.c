/* A gRPC peer announcing a 4 GiB message (a length prefix of 2^32 - 1,
 * the most its 4 bytes can say, and then a trickle), both roles, spoken
 * as raw HTTP/2 by the test itself:
 *   - a host sending it as a request to our server (the plugin side);
 *   - a plugin answering our host's call with it.
 * The side under test must refuse it or wait for it without allocating
 * it: threads, fds and RSS stay under the figures below (sampled every
 * 2 ms from /proc/self while it happens), and a normal call works after.
 * gp_client_config/gp_serve_config.max_message_bytes (64 MiB by default)
 * is the cap; client_limits_test covers messages just over it. */
#include <goplugin/conn.h>

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "transport/core/conn.h"
#include "transport/testing/gp_test.h"
#include "transport/testing/proto/kv.pb.h"
#include "transport/wire/grpc/grpc.h"

/* gRPC core is not instrumented: TSan cannot see its locks. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "ignore_noninstrumented_modules=1";
}

/* ASan keeps freed memory in a quarantine (256 MiB by default), which
 * VmRSS would count as if the code held it: keep it small here, so the
 * figures measure what the code holds under ASan too. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=8";
}

#define MAX_EXTRA_THREADS 16
#define MAX_EXTRA_FDS 8
#if defined(__SANITIZE_THREAD__)
#define GP_CAPS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GP_CAPS_TSAN 1
#endif
#endif
#ifdef GP_CAPS_TSAN /* TSan's shadow and its per-thread state: ~4x */
#define MAX_EXTRA_RSS_KB (256 * 1024)
#else
#define MAX_EXTRA_RSS_KB (64 * 1024)
#endif
/* A peer that sends the body too: core buffers up to its memory quota
 * (160 MiB); sanitizers add shadow memory and redzones to each buffer
 * (TSan's shadow is a multiple of what core buffers: +368 MiB seen for
 * the 160 MiB quota; still far below the 4 GiB the peer sends). */
#if defined(GP_CAPS_TSAN)
#define MAX_BODY_RSS_KB (512 * 1024)
#elif defined(__SANITIZE_ADDRESS__)
#define MAX_BODY_RSS_KB (288 * 1024)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAX_BODY_RSS_KB (288 * 1024)
#endif
#endif
#ifndef MAX_BODY_RSS_KB
#define MAX_BODY_RSS_KB (192 * 1024)
#endif

/* ---- resource checks (the sampler: gp_test.h) ---------------------------- */

static void sampler_check_rss(gp_test_sampler *s, const char *what, long max_rss_kb)
{
    gp_test_sampler_stop(s);
    fprintf(stderr,
            "%s: threads %ld -> peak %ld (max +%d); fds %ld -> peak %ld (max +%d); VmRSS %ld kB "
            "-> peak %ld kB (+%ld kB, max +%ld kB)\n",
            what, s->base_threads, s->peak_threads, MAX_EXTRA_THREADS, s->base_fds, s->peak_fds,
            MAX_EXTRA_FDS, s->base_rss, s->peak_rss, s->peak_rss - s->base_rss, max_rss_kb);
    GP_CHECK_INT(s->peak_threads - s->base_threads, <=, MAX_EXTRA_THREADS + 1);
    GP_CHECK_INT(s->peak_fds - s->base_fds, <=, MAX_EXTRA_FDS);
    GP_CHECK_INT(s->peak_rss - s->base_rss, <=, max_rss_kb);
}

static void sampler_check(gp_test_sampler *s, const char *what)
{
    sampler_check_rss(s, what, MAX_EXTRA_RSS_KB);
}

/* ---- raw HTTP/2 --------------------------------------------------------- */

enum { H2_DATA = 0, H2_HEADERS = 1, H2_RST = 3, H2_SETTINGS = 4, H2_PING = 6, H2_GOAWAY = 7 };
enum { F_END_STREAM = 1, F_ACK = 1, F_END_HEADERS = 4 };

static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int h2_frame(int fd, uint8_t type, uint8_t flags, uint32_t stream, const void *p, size_t n)
{
    uint8_t h[9] = {(uint8_t)(n >> 16),
                    (uint8_t)(n >> 8),
                    (uint8_t)n,
                    type,
                    flags,
                    (uint8_t)(stream >> 24),
                    (uint8_t)(stream >> 16),
                    (uint8_t)(stream >> 8),
                    (uint8_t)stream};
    return send_all(fd, h, 9) || (n && send_all(fd, p, n)) ? -1 : 0;
}

/* HPACK "literal header field without indexing, new name", no Huffman:
 * every string here is shorter than 127 bytes. */
static size_t hpack_lit(uint8_t *out, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), k = 0;
    out[k++] = 0x00;
    out[k++] = (uint8_t)nl;
    memcpy(out + k, name, nl);
    k += nl;
    out[k++] = (uint8_t)vl;
    memcpy(out + k, value, vl);
    return k + vl;
}

/* Reads exactly n bytes within ms; 0 on success. */
static int recv_full(int fd, void *p, size_t n, int ms)
{
    uint8_t *b = p;
    while (n > 0) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, ms) <= 0)
            return -1;
        ssize_t r = recv(fd, b, n, 0);
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

typedef struct h2_hdr {
    uint32_t len, stream;
    uint8_t type, flags;
} h2_hdr;

/* The next frame; its payload (up to cap bytes kept) in buf. */
static int h2_next(int fd, h2_hdr *h, uint8_t *buf, size_t cap, int ms)
{
    uint8_t b[9];
    if (recv_full(fd, b, 9, ms))
        return -1;
    h->len = (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
    h->type = b[3];
    h->flags = b[4];
    h->stream =
        ((uint32_t)b[5] << 24 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 8 | b[8]) & 0x7fffffffu;
    uint8_t sink[4096];
    for (uint32_t left = h->len; left > 0;) {
        uint32_t k = left < sizeof sink ? left : sizeof sink;
        if (recv_full(fd, sink, k, ms))
            return -1;
        uint32_t off = h->len - left;
        if (off < cap)
            memcpy(buf + off, sink, cap - off < k ? cap - off : k);
        left -= k;
    }
    return 0;
}

/* The 5-byte gRPC message prefix announcing 2^32 - 1 bytes, then 16 KiB of
 * them (within HTTP/2's initial window), as DATA frames on `stream`. */
static int send_4gib_announcement(int fd, uint32_t stream)
{
    static const uint8_t prefix[5] = {0, 0xff, 0xff, 0xff, 0xff};
    static uint8_t zeros[8192];
    return h2_frame(fd, H2_DATA, 0, stream, prefix, sizeof prefix) ||
                   h2_frame(fd, H2_DATA, 0, stream, zeros, sizeof zeros) ||
                   h2_frame(fd, H2_DATA, 0, stream, zeros, sizeof zeros)
               ? -1
               : 0;
}

/* ---- the service -------------------------------------------------------- */

static const gp_method kv_get_m = {.grpc_path = "/proto.KV/Get",
                                   .req_pb = proto_GetRequest_fields,
                                   .resp_pb = proto_GetResponse_fields};

static gp_err kv_get(void *impl, const void *reqp, void *respp, gp_status *st)
{
    (void)impl;
    (void)st;
    const proto_GetRequest *req = reqp;
    proto_GetResponse *resp = respp;
    size_t n = req->key ? strlen(req->key) : 0;
    resp->value.data = malloc(n + 1);
    memcpy(resp->value.data, req->key ? req->key : "", n);
    resp->value.len = n;
    return GP_OK;
}

static const gp_service_method kv_methods[] = {{&kv_get_m, kv_get}};
static const gp_service kv_service = {.name = "kv", .methods = kv_methods, .nmethods = 1};

/* ---- plugin facing a hostile host ---------------------------------------- */

static int dial_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static gp_err get_echo(gp_conn *c, const char *key)
{
    gp_stub *stub = NULL;
    gp_status st;
    gp_err rc = gp_conn_dispense(c, "kv", &stub, &st);
    if (rc)
        return rc;
    proto_GetRequest req = {.key = (char *)key};
    proto_GetResponse resp = {0};
    rc = gp_invoke(stub, &kv_get_m, &req, &resp, &st);
    if (rc == GP_OK &&
        (resp.value.len != strlen(key) || memcmp(resp.value.data, key, resp.value.len)))
        rc = GP_EPROTO;
    free(resp.value.data);
    gp_stub_free(stub);
    return rc;
}

GP_TEST(server_facing_a_host_announcing_a_4gib_message)
{
    char dir[] = "/tmp/gp-caps-XXXXXX", path[128], addr[160], err[512] = "";
    GP_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(addr, sizeof addr, "unix:%s", path);
    gp__grpc_server *srv = NULL;
    gp__grpc_server_opts so = {.services = &kv_service, .nservices = 1};
    GP_CHECK_ERR(gp__grpc_server_new(&so, &srv, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__grpc_server_listen(srv, addr, NULL, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__grpc_server_start(srv, err, sizeof err), GP_OK);
    /* A first normal call: core's threads exist before the baseline. */
    gp__grpc_client_opts co = {.call_timeout_ms = 10000};
    gp_conn *good = NULL;
    GP_CHECK_ERR(gp__grpc_conn_from_fd(dial_unix(path), &co, &good, err, sizeof err), GP_OK);
    GP_CHECK_ERR(get_echo(good, "before"), GP_OK);

    gp_test_sampler s;
    gp_test_sampler_start(&s);
    int fd = dial_unix(path);
    GP_CHECK(fd >= 0);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    GP_CHECK_INT(send_all(fd, preface, sizeof preface - 1), ==, 0);
    GP_CHECK_INT(h2_frame(fd, H2_SETTINGS, 0, 0, NULL, 0), ==, 0);
    uint8_t hb[512];
    size_t n = 0;
    n += hpack_lit(hb + n, ":method", "POST");
    n += hpack_lit(hb + n, ":scheme", "http");
    n += hpack_lit(hb + n, ":path", "/proto.KV/Get");
    n += hpack_lit(hb + n, ":authority", "localhost");
    n += hpack_lit(hb + n, "content-type", "application/grpc");
    n += hpack_lit(hb + n, "te", "trailers");
    GP_CHECK_INT(h2_frame(fd, H2_HEADERS, F_END_HEADERS, 1, hb, n), ==, 0);
    GP_CHECK_INT(send_4gib_announcement(fd, 1), ==, 0);
    /* What the server says about stream 1 within 3 s (RST_STREAM, or
     * trailers with a status), answering its SETTINGS and PINGs. */
    const char *verdict = "nothing within 3 s (it waits for the rest)";
    h2_hdr h;
    uint8_t pl[256];
    while (h2_next(fd, &h, pl, sizeof pl, 3000) == 0) {
        if (h.type == H2_SETTINGS && !(h.flags & F_ACK))
            h2_frame(fd, H2_SETTINGS, F_ACK, 0, NULL, 0);
        else if (h.type == H2_PING && !(h.flags & F_ACK))
            h2_frame(fd, H2_PING, F_ACK, 0, pl, 8);
        else if (h.stream == 1 && h.type == H2_RST) {
            verdict = "RST_STREAM";
            break;
        } else if (h.stream == 1 && h.type == H2_HEADERS && (h.flags & F_END_STREAM)) {
            verdict = "trailers (a status)";
            break;
        } else if (h.type == H2_GOAWAY) {
            verdict = "GOAWAY";
            break;
        }
    }
    fprintf(stderr, "server's answer to a 4 GiB request: %s\n", verdict);
    /* The server goes on: a call on the other connection, and on a new one. */
    GP_CHECK_ERR(get_echo(good, "after"), GP_OK);
    gp_conn *again = NULL;
    GP_CHECK_ERR(gp__grpc_conn_from_fd(dial_unix(path), &co, &again, err, sizeof err), GP_OK);
    if (again)
        GP_CHECK_ERR(get_echo(again, "again"), GP_OK);
    sampler_check(&s, "gRPC server, 4 GiB request");
    close(fd);
    gp__conn_close(again);
    gp__conn_close(good);
    gp__grpc_server_free(srv);
    unlink(path);
    rmdir(dir);
}

/* ---- the same host, then sending the body as fast as flow control lets
 * it: what the server's memory does while the bytes really come. */
typedef struct h2_window {
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t conn, stream; /* send windows */
    int ended;            /* the stream or connection ended */
    char why[96];
} h2_window;

static void *window_main(void *arg)
{
    h2_window *w = arg;
    h2_hdr h;
    uint8_t pl[256];
    while (h2_next(w->fd, &h, pl, sizeof pl, 30000) == 0) {
        pthread_mutex_lock(&w->mu);
        if (h.type == 8 && h.len == 4) { /* WINDOW_UPDATE */
            int64_t inc = ((int64_t)pl[0] << 24 | pl[1] << 16 | pl[2] << 8 | pl[3]) & 0x7fffffff;
            if (h.stream == 0)
                w->conn += inc;
            else if (h.stream == 1)
                w->stream += inc;
        } else if ((h.stream == 1 &&
                    (h.type == H2_RST || (h.type == H2_HEADERS && (h.flags & F_END_STREAM)))) ||
                   h.type == H2_GOAWAY) {
            w->ended = 1;
            snprintf(w->why, sizeof w->why, "frame type %d flags %d, code %u", h.type, h.flags,
                     h.len >= 4 ? (unsigned)pl[h.type == H2_GOAWAY ? 7 : 3] : 0u);
        } else if (h.type == H2_SETTINGS && !(h.flags & F_ACK)) {
            for (uint32_t i = 0; i + 6 <= h.len && i + 6 <= sizeof pl; i += 6)
                fprintf(stderr, "server setting %d = %u\n", pl[i] << 8 | pl[i + 1],
                        (unsigned)pl[i + 2] << 24 | pl[i + 3] << 16 | pl[i + 4] << 8 | pl[i + 5]);
        }
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        if (h.type == H2_SETTINGS && !(h.flags & F_ACK))
            h2_frame(w->fd, H2_SETTINGS, F_ACK, 0, NULL, 0);
        else if (h.type == H2_PING && !(h.flags & F_ACK))
            h2_frame(w->fd, H2_PING, F_ACK, 0, pl, 8);
    }
    pthread_mutex_lock(&w->mu);
    if (!w->ended)
        snprintf(w->why, sizeof w->why, "(the connection closed)");
    w->ended = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

GP_TEST(server_facing_a_host_sending_a_4gib_message)
{
    char dir[] = "/tmp/gp-caps-XXXXXX", path[128], addr[160], err[512] = "";
    GP_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(addr, sizeof addr, "unix:%s", path);
    gp__grpc_server *srv = NULL;
    gp__grpc_server_opts so = {.services = &kv_service, .nservices = 1};
    GP_CHECK_ERR(gp__grpc_server_new(&so, &srv, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__grpc_server_listen(srv, addr, NULL, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__grpc_server_start(srv, err, sizeof err), GP_OK);
    gp__grpc_client_opts co = {.call_timeout_ms = 10000};
    gp_conn *good = NULL;
    GP_CHECK_ERR(gp__grpc_conn_from_fd(dial_unix(path), &co, &good, err, sizeof err), GP_OK);
    GP_CHECK_ERR(get_echo(good, "before"), GP_OK);

    gp_test_sampler s;
    gp_test_sampler_start(&s);
    int fd = dial_unix(path);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    GP_CHECK_INT(send_all(fd, preface, sizeof preface - 1), ==, 0);
    GP_CHECK_INT(h2_frame(fd, H2_SETTINGS, 0, 0, NULL, 0), ==, 0);
    uint8_t hb[512];
    size_t n = 0;
    n += hpack_lit(hb + n, ":method", "POST");
    n += hpack_lit(hb + n, ":scheme", "http");
    n += hpack_lit(hb + n, ":path", "/proto.KV/Get");
    n += hpack_lit(hb + n, ":authority", "localhost");
    n += hpack_lit(hb + n, "content-type", "application/grpc");
    n += hpack_lit(hb + n, "te", "trailers");
    GP_CHECK_INT(h2_frame(fd, H2_HEADERS, F_END_HEADERS, 1, hb, n), ==, 0);
    h2_window w = {.fd = fd, .conn = 65535, .stream = 65535};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    pthread_t rt;
    pthread_create(&rt, NULL, window_main, &w);
    static const uint8_t prefix[5] = {0, 0xff, 0xff, 0xff, 0xff};
    h2_frame(fd, H2_DATA, 0, 1, prefix, sizeof prefix);
    pthread_mutex_lock(&w.mu);
    w.conn -= 5;
    w.stream -= 5;
    pthread_mutex_unlock(&w.mu);
    static uint8_t chunk[16384];
    int64_t sent = 0, limit = (int64_t)512 << 20;
    double t0 = gp_test_now_s();
    while (sent < limit && gp_test_now_s() - t0 < 20) {
        pthread_mutex_lock(&w.mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        int stalled = 0;
        while (!w.ended && (w.conn <= 0 || w.stream <= 0))
            if (pthread_cond_timedwait(&w.cv, &w.mu, &until) != 0) {
                stalled = 1;
                break;
            }
        int64_t k = w.conn < w.stream ? w.conn : w.stream;
        if (k > (int64_t)sizeof chunk)
            k = sizeof chunk;
        int ended = w.ended;
        if (!stalled && !ended) {
            w.conn -= k;
            w.stream -= k;
        }
        pthread_mutex_unlock(&w.mu);
        if (stalled || ended)
            break;
        if (h2_frame(fd, H2_DATA, 0, 1, chunk, (size_t)k))
            break;
        sent += k;
    }
    pthread_mutex_lock(&w.mu);
    int ended = w.ended;
    pthread_mutex_unlock(&w.mu);
    fprintf(stderr, "sent %lld bytes of the 4 GiB body in %.1f s; the server %s %s\n",
            (long long)sent, gp_test_now_s() - t0,
            ended ? "ended the stream:" : "stopped opening its window", w.why);
    /* The quota is the server's, for all its connections: when it runs
     * out, core's reclaimer may close another connection too (seen: the
     * good one, GP_ECLOSED). The server itself serves on. */
    gp_err rc = get_echo(good, "after");
    fprintf(stderr, "the other connection after it: %s\n", gp_strerror(rc));
    GP_CHECK(rc == GP_OK || rc == GP_ECLOSED);
    gp_conn *again = NULL;
    GP_CHECK_ERR(gp__grpc_conn_from_fd(dial_unix(path), &co, &again, err, sizeof err), GP_OK);
    if (again)
        GP_CHECK_ERR(get_echo(again, "again"), GP_OK);
    gp__conn_close(again);
    /* Core's memory quota (grpc.h: two messages at the cap and 32 MiB, so
     * 160 MiB here) bounds it: core resets the stream (seen at 109 and 168
     * MB sent) or stops opening its window. Without the quota core took
     * all of a 512 MiB body (+526 MB RSS). */
    sampler_check_rss(&s, "gRPC server, 4 GiB request sent", MAX_BODY_RSS_KB);
    shutdown(fd, SHUT_RDWR);
    pthread_join(rt, NULL);
    close(fd);
    gp__conn_close(good);
    gp__grpc_server_free(srv);
    unlink(path);
    rmdir(dir);
}

/* ---- host facing a hostile plugin ---------------------------------------- */

/* The plugin side by hand: answers the host's first unary call (a
 * request DATA frame with END_STREAM) with a 4 GiB announcement, and every
 * later one as a health check saying SERVING; streams without a request
 * (the broker's StartStream) get nothing. */
typedef struct fake_server {
    int fd;
    atomic_int unary;
} fake_server;

static void answer_serving(int fd, uint32_t stream)
{
    uint8_t hb[256];
    size_t n = hpack_lit(hb, ":status", "200");
    n += hpack_lit(hb + n, "content-type", "application/grpc");
    h2_frame(fd, H2_HEADERS, F_END_HEADERS, stream, hb, n);
    static const uint8_t msg[7] = {0, 0, 0, 0, 2, 0x08, 0x01}; /* status: SERVING */
    h2_frame(fd, H2_DATA, 0, stream, msg, sizeof msg);
    n = hpack_lit(hb, "grpc-status", "0");
    h2_frame(fd, H2_HEADERS, F_END_HEADERS | F_END_STREAM, stream, hb, n);
}

static void *fake_server_main(void *arg)
{
    fake_server *f = arg;
    uint8_t pre[24];
    if (recv_full(f->fd, pre, sizeof pre, 5000) || h2_frame(f->fd, H2_SETTINGS, 0, 0, NULL, 0))
        return NULL;
    h2_hdr h;
    uint8_t pl[256];
    while (h2_next(f->fd, &h, pl, sizeof pl, 20000) == 0) {
        if (h.type == H2_SETTINGS && !(h.flags & F_ACK)) {
            h2_frame(f->fd, H2_SETTINGS, F_ACK, 0, NULL, 0);
        } else if (h.type == H2_PING && !(h.flags & F_ACK)) {
            h2_frame(f->fd, H2_PING, F_ACK, 0, pl, 8);
        } else if (h.type == H2_DATA && (h.flags & F_END_STREAM)) {
            if (atomic_fetch_add(&f->unary, 1) == 0) {
                uint8_t hb[128];
                size_t n = hpack_lit(hb, ":status", "200");
                n += hpack_lit(hb + n, "content-type", "application/grpc");
                h2_frame(f->fd, H2_HEADERS, F_END_HEADERS, h.stream, hb, n);
                send_4gib_announcement(f->fd, h.stream);
            } else {
                answer_serving(f->fd, h.stream);
            }
        } else if (h.type == H2_GOAWAY) {
            break;
        }
    }
    return NULL;
}

GP_TEST(host_facing_a_plugin_announcing_a_4gib_message)
{
    int sv[2];
    GP_CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    fake_server f = {.fd = sv[1]};
    pthread_t t;
    pthread_create(&t, NULL, fake_server_main, &f);
    gp__grpc_client_opts co = {.call_timeout_ms = 3000};
    gp_conn *conn = NULL;
    char err[512] = "";
    GP_CHECK_ERR(gp__grpc_conn_from_fd(sv[0], &co, &conn, err, sizeof err), GP_OK);
    if (!conn) {
        fprintf(stderr, "conn: %s\n", err);
        shutdown(sv[1], SHUT_RDWR);
        pthread_join(t, NULL);
        close(sv[1]);
        return;
    }
    gp_test_sampler s;
    gp_test_sampler_start(&s);
    gp_status st;
    /* The first health check gets the 4 GiB answer: refused, or left
     * waiting until the call's deadline, never allocated. */
    gp_err rc = gp_conn_ping(conn, &st);
    fprintf(stderr, "host's call answered with 4 GiB: %s: %s\n", gp_strerror(rc), st.msg);
    GP_CHECK(rc == GP_EMSGSIZE || rc == GP_ETIMEDOUT);
    /* The next call on the same connection works. */
    GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
    sampler_check(&s, "gRPC host, 4 GiB answer");
    gp__conn_close(conn);
    shutdown(sv[1], SHUT_RDWR);
    pthread_join(t, NULL);
    close(sv[1]);
}

int main(void)
{
    GP_RUN_TIMEOUT(server_facing_a_host_announcing_a_4gib_message, 60);
    GP_RUN_TIMEOUT(server_facing_a_host_sending_a_4gib_message, 60);
    GP_RUN_TIMEOUT(host_facing_a_plugin_announcing_a_4gib_message, 60);
    return gp_test_done();
}
