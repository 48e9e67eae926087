/* Resource caps of the netrpc wire under a hostile peer, both roles, in
 * one process (each case runs in its own forked child, so /proc/self is
 * the side under test plus the hostile peer's few threads):
 *   - a peer opening 10,000 yamux streams after the handshake and leaving
 *     them silent;
 *   - a peer opening 10,000 streams, each with a broker id nobody serves;
 *   - a peer announcing a 4 GiB gob message on a dispensed stream.
 * The side under test must keep its threads, fds and RSS under the
 * figures below (sampled every 2 ms from /proc/self/status "Threads" and
 * "VmRSS" and /proc/self/fd while the attack runs), and a normal call must
 * still work afterwards. The hostile peer is a yamux session of ours
 * driven by hand, so it speaks valid frames. */
#include "transport/wire/netrpc/netrpc.h"

#include <goplugin/gob.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/core/conn.h"
#include "transport/msg/msg.h"
#include "transport/net/net.h"
#include "transport/testing/gp_test.h"
#include "transport/wire/netrpc/gob/gob_pb_test.pb.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"
#include "transport/yamux/mux_session.h"

/* ASan keeps freed memory in a quarantine (256 MiB by default), which
 * VmRSS would count as if the code held it: keep it small here, so the
 * figures measure what the code holds under ASan too. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=8";
}

#define FLOOD 10000
/* What the side under test may add while a flood runs: the pending-stream
 * cap (64 by default, one thread each) plus its own few threads; a few
 * fds (none per stream: streams live inside the one socket); RSS as
 * stated (the hostile side's 10,000 stream objects live in this process
 * too, ~3 MiB, and sanitizers inflate everything). */
#define MAX_EXTRA_THREADS 80
#define MAX_EXTRA_FDS 4
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

/* ---- resource checks (the sampler: gp_test.h) ------------------------- */

/* Stops sampling, prints the figures and checks them against the given
 * maxima (+1 thread: the sampler itself). */
static void sampler_check_max(gp_test_sampler *s, const char *what, long max_threads, long max_fds,
                              long max_rss_kb)
{
    gp_test_sampler_stop(s);
    fprintf(stderr,
            "%s: threads %ld -> peak %ld (+%ld, max +%ld); fds %ld -> peak %ld (max +%ld); "
            "VmRSS %ld kB -> peak %ld kB (+%ld kB, max +%ld kB)\n",
            what, s->base_threads, s->peak_threads, s->peak_threads - s->base_threads, max_threads,
            s->base_fds, s->peak_fds, max_fds, s->base_rss, s->peak_rss, s->peak_rss - s->base_rss,
            max_rss_kb);
    GP_CHECK_INT(s->peak_threads - s->base_threads, <=, max_threads + 1);
    GP_CHECK_INT(s->peak_fds - s->base_fds, <=, max_fds);
    GP_CHECK_INT(s->peak_rss - s->base_rss, <=, max_rss_kb);
}

static void sampler_check(gp_test_sampler *s, const char *what)
{
    sampler_check_max(s, what, MAX_EXTRA_THREADS, MAX_EXTRA_FDS, MAX_EXTRA_RSS_KB);
}

/* ---- the service -------------------------------------------------------- */

static const gp_gob_field put_request_fields[] = {{"Key", &gp_gob_string_type, 1},
                                                  {"Value", &gp_gob_bytes_type, 2}};
static const gp_gob_type put_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "PutRequest", .fields = put_request_fields, .nfields = 2};
static const gp_method echo_method = {.netrpc_name = "Plugin.Echo",
                                      .req_pb = gobpbtest_PutRequest_fields,
                                      .resp_pb = gobpbtest_PutRequest_fields,
                                      .req_gob = &put_request_gob,
                                      .resp_gob = &put_request_gob};

static gp_err echo(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl;
    (void)st;
    const gobpbtest_PutRequest *in = req;
    gobpbtest_PutRequest *out = resp;
    out->key = in->key ? strdup(in->key) : NULL;
    return GP_OK;
}

static const gp_service_method methods[] = {{&echo_method, echo}};
static const gp_service svc = {.name = "kv", .methods = methods, .nmethods = 1};

/* One Echo on a fresh stub: the normal call after an attack. */
static gp_err echo_once(gp_conn *c, gp_status *st)
{
    gp_stub *stub = NULL;
    gp_err rc = gp_conn_dispense(c, "kv", &stub, st);
    if (rc)
        return rc;
    gobpbtest_PutRequest req = {.key = "after"}, resp;
    memset(&resp, 0, sizeof resp);
    rc = gp_invoke(stub, &echo_method, &req, &resp, st);
    if (rc == GP_OK && (!resp.key || strcmp(resp.key, "after") != 0))
        rc = GP_EPROTO;
    gp_msg_release(gobpbtest_PutRequest_fields, &resp);
    gp_stub_free(stub);
    return rc;
}

static void put_le32(uint8_t b[4], uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

/* Opens FLOOD streams on sess and keeps them; with_ids: each carries a
 * broker id nobody serves (from 100000 up). Writes to a stream the other
 * side already reset fail; that is the point. */
static gp__mux_stream **flood(gp__mux_session *sess, int with_ids)
{
    gp__mux_stream **all = calloc(FLOOD, sizeof *all);
    for (int i = 0; i < FLOOD; i++) {
        if (gp__mux_open(sess, &all[i]) != GP_OK)
            break;
        if (with_ids) {
            uint8_t id[4];
            put_le32(id, 100000u + (uint32_t)i);
            (void)gp__mux_stream_write(all[i], id, 4, 1000);
        }
    }
    return all;
}

static void flood_free(gp__mux_stream **all)
{
    for (int i = 0; i < FLOOD; i++)
        gp__mux_stream_free(all[i]);
    free(all);
}

/* ---- host facing a hostile plugin ---------------------------------------- */

/* The plugin side, by hand: a yamux server on the socketpair, Control and
 * Dispenser on stream 1 (Dispense answers id 1), and, for the 4 GiB case,
 * an answer on the dispensed stream whose length says 4 GiB. */
typedef struct fake_plugin {
    gp__mux_session *sess;
    gp__mux_stream *ctl, *out, *errs;
    pthread_t ctl_thread;
} fake_plugin;

static gp_err fake_control(void *ctx, const char *method, gp__gob_value *args, gp__rpc_reply *reply,
                           char *errmsg, size_t errlen)
{
    (void)ctx;
    (void)args;
    if (strcmp(method, "Dispenser.Dispense") == 0) {
        reply->value.type = &gp_gob_uint_type;
        reply->value.u.u = 1;
        return GP_OK;
    }
    if (strcmp(method, "Control.Ping") == 0 || strcmp(method, "Control.Quit") == 0) {
        reply->value.type = &gp_gob_empty_struct_type;
        return GP_OK;
    }
    snprintf(errmsg, errlen, "rpc: can't find method %s", method);
    return GP_ENOTFOUND;
}

static void *fake_ctl_main(void *arg)
{
    fake_plugin *p = arg;
    gp__rpc_serve_opts o = {.call = fake_control};
    char err[256];
    gp__rpc_serve_ex(gp__mux_stream_io(p->ctl), &o, err, sizeof err);
    return NULL;
}

/* The host's warnings about refused broker streams: logged once per
 * burst, not once per stream. */
static atomic_int broker_warnings;

static void count_warnings(void *ctx, gp_log_level level, const char *name, const char *msg,
                           const gp_log_kv *kv, size_t nkv)
{
    (void)ctx, (void)name, (void)kv, (void)nkv;
    if (level == GP_LOG_WARN && strstr(msg, "broker: "))
        atomic_fetch_add(&broker_warnings, 1);
}

static const gp_logger warn_counter = {.fn = count_warnings, .level = GP_LOG_WARN};

/* A host conn on sv[0], the fake plugin on sv[1]. */
static int host_and_fake_plugin(gp_conn **conn, fake_plugin *p, const gp_limits *lim)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    memset(p, 0, sizeof *p);
    gp__mux_config mc = {.keepalive_interval_ms = -1};
    GP_CHECK_ERR(gp__mux_session_new(sv[1], GP_MUX_SERVER, &mc, &p->sess), GP_OK);
    gp__netrpc_client_opts o = {
        .call_timeout_ms = 10000, .keepalive_ms = -1, .logger = &warn_counter};
    if (lim)
        o.limits = *lim;
    char err[256] = "";
    GP_CHECK_ERR(gp__netrpc_conn_from_fd(sv[0], &o, conn, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(p->sess, 5000, &p->ctl), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(p->sess, 5000, &p->out), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(p->sess, 5000, &p->errs), GP_OK);
    if (!*conn || !p->ctl || !p->out || !p->errs)
        return -1;
    gp__mux_stream_close(p->out);
    gp__mux_stream_close(p->errs);
    pthread_create(&p->ctl_thread, NULL, fake_ctl_main, p);
    return 0;
}

static void fake_plugin_free(fake_plugin *p)
{
    gp__mux_session_close(p->sess);
    pthread_join(p->ctl_thread, NULL);
    gp__mux_stream_free(p->ctl);
    gp__mux_stream_free(p->out);
    gp__mux_stream_free(p->errs);
    gp__mux_session_free(p->sess);
}

static void host_facing_a_flood(int with_ids, const gp_limits *lim, int max_threads)
{
    gp_conn *conn = NULL;
    fake_plugin p;
    if (host_and_fake_plugin(&conn, &p, lim) != 0)
        return;
    gp_status st;
    GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
    gp_test_sampler s;
    gp_test_sampler_start(&s);
    gp__mux_stream **all = flood(p.sess, with_ids);
    usleep(300000); /* the host sees the last SYNs */
    GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
    sampler_check(&s, with_ids ? "host, 10,000 broker ids" : "host, 10,000 streams");
    GP_CHECK_INT(s.peak_threads - s.base_threads, <=, max_threads + 1);
    /* Refusals are logged per burst (its first, then its count once a
     * stream gets through), not per stream: usually 1-2 lines. On a slow
     * machine the host's accepts interleave with the flood and split it
     * into a few bursts; 10,000 refusals must still not make more than a
     * handful of lines. */
    /* Under TSan the host may still be working through the SYNs: give
     * the first refusal time to be logged. */
    for (int k = 0; k < (int)(100 * gp_test_scale()) && atomic_load(&broker_warnings) < 1; k++)
        usleep(50000);
    int warned = atomic_load(&broker_warnings);
    if (warned < 1 || warned > 20)
        GP_FAILF("expected 1 to 20 warnings about refused broker streams, got %d", warned);
    flood_free(all);
    fake_plugin_free(&p);
    gp__conn_close(conn);
}

GP_TEST(host_facing_a_plugin_opening_10000_streams)
{
    host_facing_a_flood(0, NULL, MAX_EXTRA_THREADS);
}

GP_TEST(host_facing_a_plugin_sending_10000_broker_ids)
{
    host_facing_a_flood(1, NULL, MAX_EXTRA_THREADS);
}

/* gp_limits set lower: the pending cap is 8, so 8 threads and a few. */
GP_TEST(host_with_configured_caps_facing_10000_broker_ids)
{
    gp_limits lim = {.max_pending_streams = 8, .max_streams = 100, .broker_wait_ms = 1000};
    host_facing_a_flood(1, &lim, 12);
}

/* The fake plugin's side of a dispensed stream: ack the id, wait for the
 * request, answer with a length that says 4 GiB and a trickle of body. */
typedef struct fake_dispensed {
    fake_plugin *p;
    gp__mux_stream *bs;
} fake_dispensed;

static void *fake_dispensed_main(void *arg)
{
    fake_dispensed *d = arg;
    uint8_t id[4], req[64];
    size_t n = 0;
    if (gp__mux_accept(d->p->sess, 5000, &d->bs) != GP_OK ||
        gp__mux_stream_read_full(d->bs, id, 4, 5000) != GP_OK ||
        gp__mux_stream_write(d->bs, id, 4, 5000) != GP_OK ||
        gp__mux_stream_read(d->bs, req, sizeof req, 5000, &n) != GP_OK)
        return NULL;
    /* gob's length prefix: 0xfb = five bytes follow, 0x0100000000 = 4 GiB. */
    static const uint8_t announce[6] = {0xfb, 0x01, 0x00, 0x00, 0x00, 0x00};
    if (gp__mux_stream_write(d->bs, announce, sizeof announce, 5000) != GP_OK)
        return NULL;
    uint8_t zeros[4096] = {0};
    for (int i = 0; i < 16; i++)
        if (gp__mux_stream_write(d->bs, zeros, sizeof zeros, 1000) != GP_OK)
            break;
    return NULL;
}

/* The dispensed stream's reply announces 4 GiB: that call fails with
 * GP_EMSGSIZE before any body is read, and the connection goes on. */
GP_TEST(host_facing_a_plugin_announcing_a_4gib_message)
{
    gp_conn *conn = NULL;
    fake_plugin p;
    if (host_and_fake_plugin(&conn, &p, NULL) != 0)
        return;
    fake_dispensed d = {.p = &p};
    pthread_t t;
    pthread_create(&t, NULL, fake_dispensed_main, &d);
    gp_status st;
    gp_stub *stub = NULL;
    GP_CHECK_ERR(gp_conn_dispense(conn, "kv", &stub, &st), GP_OK);
    gp_test_sampler s;
    gp_test_sampler_start(&s);
    gobpbtest_PutRequest req = {.key = "k"}, resp;
    memset(&resp, 0, sizeof resp);
    if (stub) {
        GP_CHECK_ERR(gp_invoke(stub, &echo_method, &req, &resp, &st), GP_EMSGSIZE);
        fprintf(stderr, "4 GiB reply: %s\n", st.msg);
    }
    gp_msg_release(gobpbtest_PutRequest_fields, &resp);
    pthread_join(t, NULL);
    GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
    sampler_check(&s, "host, 4 GiB message");
    gp_stub_free(stub);
    gp__mux_stream_free(d.bs);
    fake_plugin_free(&p);
    gp__conn_close(conn);
}

/* ---- plugin facing a hostile host ----------------------------------------- */

typedef struct fixture {
    gp__netrpc_server *srv;
    char path[128];
} fixture;

static int server_up(fixture *f)
{
    char err[512] = "";
    memset(f, 0, sizeof *f);
    gp__netrpc_server_opts o = {.services = &svc, .nservices = 1};
    GP_CHECK_ERR(gp__netrpc_server_new(&o, &f->srv, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__net_unix_path("/tmp", f->path, sizeof f->path, err, sizeof err), GP_OK);
    char addr[160];
    snprintf(addr, sizeof addr, "unix:%s", f->path);
    GP_CHECK_ERR(gp__netrpc_server_listen(f->srv, addr, NULL, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__netrpc_server_start(f->srv, err, sizeof err), GP_OK);
    return f->srv ? 0 : -1;
}

static void server_down(fixture *f)
{
    gp__netrpc_server_free(f->srv);
    unlink(f->path);
}

static gp_conn *good_host(fixture *f)
{
    char err[256] = "";
    int fd = -1;
    gp_conn *c = NULL;
    GP_CHECK_ERR(gp__net_dial("unix", f->path, 5000, 0, &fd, err, sizeof err), GP_OK);
    gp__netrpc_client_opts co = {.call_timeout_ms = 10000, .keepalive_ms = -1};
    GP_CHECK_ERR(gp__netrpc_conn_from_fd(fd, &co, &c, err, sizeof err), GP_OK);
    return c;
}

/* A host by hand: its session and Control client. */
typedef struct raw_host {
    gp__mux_session *sess;
    gp__mux_stream *ctl, *out, *errs;
    gp__rpc_client *rpc;
} raw_host;

static int raw_connect(const fixture *f, raw_host *h)
{
    char err[256];
    int fd = -1;
    memset(h, 0, sizeof *h);
    if (gp__net_dial("unix", f->path, 5000, 0, &fd, err, sizeof err) != GP_OK)
        return -1;
    gp__mux_config mc = {.keepalive_interval_ms = -1};
    if (gp__mux_session_new(fd, GP_MUX_CLIENT, &mc, &h->sess) != GP_OK) {
        close(fd);
        return -1;
    }
    if (gp__mux_open(h->sess, &h->ctl) || gp__mux_open(h->sess, &h->out) ||
        gp__mux_open(h->sess, &h->errs) ||
        gp__rpc_client_new(gp__mux_stream_io(h->ctl), NULL, &h->rpc))
        return -1;
    return 0;
}

static void raw_close(raw_host *h)
{
    gp__rpc_client_free(h->rpc);
    gp__mux_stream_free(h->ctl);
    gp__mux_stream_free(h->out);
    gp__mux_stream_free(h->errs);
    gp__mux_session_free(h->sess);
}

static gp_err raw_ping(raw_host *h)
{
    gp__gob_value b = {.type = &gp_gob_bool_type, .u.b = 1};
    gp_status st;
    return gp__rpc_call(h->rpc, "Control.Ping", &b, NULL, 5000, &st);
}

/* Dispense "kv" on the raw host; the broker id, or 0. */
static uint32_t raw_dispense(raw_host *h)
{
    gp__gob_value kv = {.type = &gp_gob_string_type};
    kv.u.bytes.data = (uint8_t *)"kv";
    kv.u.bytes.len = 2;
    gp__gob_value *reply = NULL;
    gp_status st;
    uint32_t id = 0;
    if (gp__rpc_call(h->rpc, "Dispenser.Dispense", &kv, &reply, 5000, &st) == GP_OK && reply &&
        reply->type && reply->type->kind == GP_GOB_UINT)
        id = (uint32_t)reply->u.u;
    gp__gob_value_free(reply);
    return id;
}

static void plugin_facing_a_flood(int with_ids)
{
    fixture f;
    if (server_up(&f) != 0)
        return;
    raw_host h;
    GP_CHECK_INT(raw_connect(&f, &h), ==, 0);
    GP_CHECK_ERR(raw_ping(&h), GP_OK);
    gp_test_sampler s;
    gp_test_sampler_start(&s);
    gp__mux_stream **all = flood(h.sess, with_ids);
    usleep(300000);
    /* The same host's control stream answers during the flood. */
    GP_CHECK_ERR(raw_ping(&h), GP_OK);
    sampler_check(&s, with_ids ? "plugin, 10,000 broker ids" : "plugin, 10,000 streams");
    /* A well-behaved host gets served: at once on a new connection... */
    gp_conn *good = good_host(&f);
    gp_status st;
    if (good)
        GP_CHECK_ERR(echo_once(good, &st), GP_OK);
    gp__conn_close(good);
    /* ... and on the flooding one once its pending streams timed out
     * (they stay open: the peer never closes them). */
    uint32_t id = raw_dispense(&h);
    GP_CHECK(id > 0);
    gp_err rc = GP_ETIMEDOUT;
    for (int tries = 0; tries < 20 && rc != GP_OK; tries++) {
        gp__mux_stream *bs = NULL;
        uint8_t b[4], ack[4];
        put_le32(b, id);
        rc = gp__mux_open(h.sess, &bs);
        if (!rc)
            rc = gp__mux_stream_write(bs, b, 4, 2000);
        if (!rc)
            rc = gp__mux_stream_read_full(bs, ack, 4, 2000);
        gp__mux_stream_free(bs);
        if (rc) {
            usleep(250000);
            id = raw_dispense(&h); /* a refused stream took the reservation */
        }
    }
    GP_CHECK_ERR(rc, GP_OK);
    flood_free(all);
    raw_close(&h);
    server_down(&f);
}

GP_TEST(plugin_facing_a_host_opening_10000_streams)
{
    plugin_facing_a_flood(0);
}

GP_TEST(plugin_facing_a_host_sending_10000_broker_ids)
{
    plugin_facing_a_flood(1);
}

/* A request on a dispensed stream announces 4 GiB: the plugin ends that
 * stream without reading a body, and serves on. */
GP_TEST(plugin_facing_a_host_announcing_a_4gib_message)
{
    fixture f;
    if (server_up(&f) != 0)
        return;
    raw_host h;
    GP_CHECK_INT(raw_connect(&f, &h), ==, 0);
    uint32_t id = raw_dispense(&h);
    GP_CHECK(id > 0);
    gp__mux_stream *bs = NULL;
    uint8_t b[4], ack[4];
    put_le32(b, id);
    GP_CHECK_ERR(gp__mux_open(h.sess, &bs), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_write(bs, b, 4, 5000), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_read_full(bs, ack, 4, 5000), GP_OK);
    gp_test_sampler s;
    gp_test_sampler_start(&s);
    static const uint8_t announce[6] = {0xfb, 0x01, 0x00, 0x00, 0x00, 0x00};
    GP_CHECK_ERR(gp__mux_stream_write(bs, announce, sizeof announce, 5000), GP_OK);
    uint8_t zeros[4096] = {0};
    for (int i = 0; i < 16; i++)
        if (gp__mux_stream_write(bs, zeros, sizeof zeros, 1000) != GP_OK)
            break;
    /* The plugin ends the stream: EOF or reset, no reply. */
    size_t n = 1;
    char buf[64];
    gp_err rc = GP_OK;
    while (rc == GP_OK && n > 0)
        rc = gp__mux_stream_read(bs, buf, sizeof buf, 5000, &n);
    GP_CHECK(rc != GP_ETIMEDOUT);
    GP_CHECK_ERR(raw_ping(&h), GP_OK);
    sampler_check(&s, "plugin, 4 GiB message");
    gp__mux_stream_free(bs);
    gp_conn *good = good_host(&f);
    gp_status st;
    if (good)
        GP_CHECK_ERR(echo_once(good, &st), GP_OK);
    gp__conn_close(good);
    raw_close(&h);
    server_down(&f);
}

/* A local process opening 500 connections to the plugin's socket and
 * saying nothing: at most max_connections (32 by default, the host's
 * own included) are served, two threads each until their streams come;
 * the rest are closed at once. The host that connected first is served
 * throughout, and new connections are taken again once the flood ends. */
#define CONN_FLOOD 500
GP_TEST(plugin_facing_500_connections)
{
    fixture f;
    if (server_up(&f) != 0)
        return;
    gp_conn *good = good_host(&f);
    gp_status st;
    if (good)
        GP_CHECK_ERR(gp_conn_ping(good, &st), GP_OK);
    gp_test_sampler s;
    gp_test_sampler_start(&s);
    int *fds = calloc(CONN_FLOOD, sizeof *fds);
    for (int i = 0; i < CONN_FLOOD; i++) {
        char err[256];
        fds[i] = -1;
        (void)gp__net_dial("unix", f.path, 2000, 0, &fds[i], err, sizeof err);
    }
    usleep(300000);
    if (good)
        GP_CHECK_ERR(echo_once(good, &st), GP_OK);
    /* fds: the flood's own 500 in this process, and the server's side of
     * at most 31 connections. */
    sampler_check_max(&s, "plugin, 500 connections", 2 * 32 + 8, CONN_FLOOD + 32 + 4,
                      MAX_EXTRA_RSS_KB);
    for (int i = 0; i < CONN_FLOOD; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    gp_err rc = GP_ECLOSED;
    for (int tries = 0; tries < 50 && rc != GP_OK; tries++) {
        gp_conn *again = good_host(&f);
        rc = again ? gp_conn_ping(again, &st) : GP_ECLOSED;
        gp__conn_close(again);
        if (rc != GP_OK)
            usleep(100000);
    }
    GP_CHECK_ERR(rc, GP_OK);
    gp__conn_close(good);
    server_down(&f);
}

int main(void)
{
    GP_RUN_TIMEOUT(host_facing_a_plugin_opening_10000_streams, 60);
    GP_RUN_TIMEOUT(host_facing_a_plugin_sending_10000_broker_ids, 60);
    GP_RUN_TIMEOUT(host_with_configured_caps_facing_10000_broker_ids, 60);
    GP_RUN_TIMEOUT(host_facing_a_plugin_announcing_a_4gib_message, 30);
    GP_RUN_TIMEOUT(plugin_facing_a_host_opening_10000_streams, 60);
    GP_RUN_TIMEOUT(plugin_facing_a_host_sending_10000_broker_ids, 60);
    GP_RUN_TIMEOUT(plugin_facing_a_host_announcing_a_4gib_message, 30);
    GP_RUN_TIMEOUT(plugin_facing_500_connections, 60);
    return gp_test_done();
}
