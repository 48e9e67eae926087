/* The multiplexed broker (mux.h, broker.c's knocks): a host broker and a
 * plugin broker whose StartStream is a direct hand-over of messages, over
 * one real yamux session on a unix socket. Serving and dialing both ways,
 * plain and TLS, many at once; and bad input: a knock for an unknown id, a
 * flood of knocks, a dial whose ack never comes, a stream opened without a
 * knock. Threads and descriptors come back to where they were. */
#include "transport/wire/grpc/broker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/base/clock.h"
#include "transport/core/conn.h"
#include "transport/net/net.h"
#include "transport/testing/gp_test.h"
#include "transport/testing/proto/counter.gp.h"
#include "transport/tls/certgen.h"
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/wire/grpc/mux.h"
#include "transport/wire/grpc/proto/grpc_broker.pb.h"

typedef struct mlink {
    gp__grpc_broker *peer;
    atomic_int drop; /* lose every message (a peer that never answers) */
    atomic_int acks, refusals;
    char last_error[200]; /* of the last refusing ack */
    pthread_mutex_t mu;
} mlink;

static gp_err deliver(void *ctx, grpc_byte_buffer *bb)
{
    mlink *l = ctx;
    plugin_ConnInfo ci;
    memset(&ci, 0, sizeof ci);
    char err[128];
    if (gp__grpc_decode(bb, plugin_ConnInfo_fields, &ci, "ConnInfo", err, sizeof err) == GP_OK) {
        if (ci.has_knock && ci.knock.ack) {
            if (ci.knock.error && ci.knock.error[0]) {
                l->refusals++;
                pthread_mutex_lock(&l->mu);
                snprintf(l->last_error, sizeof l->last_error, "%s", ci.knock.error);
                pthread_mutex_unlock(&l->mu);
            } else {
                l->acks++;
            }
        }
        gp_msg_release(plugin_ConnInfo_fields, &ci);
    }
    if (!l->drop && l->peer)
        gp__grpc_broker_received(l->peer, bb);
    grpc_byte_buffer_destroy(bb);
    return GP_OK;
}

typedef struct pair {
    mlink to_plugin, to_host;
    gp__grpc_broker *host, *plugin;
    gp__grpc_mux *hmux, *pmux;
} pair;

/* max_bridges: the host mux's gp_limits.max_broker_conns (0: default);
 * wait_ms: both brokers' gp_limits.broker_wait_ms (0: default). */
static void pair_start_with(pair *p, int max_bridges, int wait_ms)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->to_plugin.mu, NULL);
    pthread_mutex_init(&p->to_host.mu, NULL);
    gp__grpc_broker_opts ho = {
        .send = deliver, .send_ctx = &p->to_plugin, .limits.broker_wait_ms = wait_ms};
    gp__grpc_broker_opts po = {
        .send = deliver, .send_ctx = &p->to_host, .limits.broker_wait_ms = wait_ms};
    GP_CHECK_INT(gp__grpc_broker_new(&ho, &p->host), ==, GP_OK);
    GP_CHECK_INT(gp__grpc_broker_new(&po, &p->plugin), ==, GP_OK);
    p->to_plugin.peer = p->plugin;
    p->to_host.peer = p->host;

    char path[108], err[256];
    int lfd = -1, fd = -1;
    GP_CHECK_INT(gp__net_unix_path(NULL, path, sizeof path, err, sizeof err), ==, GP_OK);
    GP_CHECK_INT(gp__net_listen_unix(path, NULL, &lfd, err, sizeof err), ==, GP_OK);
    gp__grpc_mux_opts popts = {.log_name = "plugin-mux"};
    GP_CHECK_INT(gp__grpc_mux_server(lfd, &popts, &p->pmux, err, sizeof err), ==, GP_OK);
    GP_CHECK_INT(gp__net_dial("unix", path, 2000, 0, &fd, err, sizeof err), ==, GP_OK);
    gp__grpc_mux_opts hopts = {.log_name = "host-mux", .max_bridges = max_bridges};
    GP_CHECK_INT(gp__grpc_mux_client(fd, &hopts, &p->hmux, err, sizeof err), ==, GP_OK);
    unlink(path);
    GP_CHECK_INT(gp__grpc_broker_use_mux(p->host, p->hmux), ==, GP_OK);
    GP_CHECK_INT(gp__grpc_broker_use_mux(p->plugin, p->pmux), ==, GP_OK);
    GP_CHECK_INT(gp__grpc_broker_use_mux(p->plugin, p->pmux), ==, GP_ESTATE);
    /* The plugin's session (and its reader thread) comes on the mux's own
     * thread once it accepted our dial: a case that counts threads must
     * not count that one as started by what it tests (it did, under load). */
    GP_CHECK_INT(gp__grpc_mux_wait_session(p->pmux, err, sizeof err), ==, GP_OK);
}

static void pair_start(pair *p)
{
    pair_start_with(p, 0, 0);
}

static void pair_stop(pair *p)
{
    /* A mux thread of the one freed second (the held knocks' clock) may
     * still send: let it reach no freed peer. */
    p->to_host.drop = 1;
    p->to_plugin.drop = 1;
    gp__grpc_broker_free(p->host); /* each frees its mux */
    gp__grpc_broker_free(p->plugin);
    pthread_mutex_destroy(&p->to_plugin.mu);
    pthread_mutex_destroy(&p->to_host.mu);
}

static gp_err sum(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl;
    (void)st;
    ((proto_SumResponse *)resp)->r =
        ((const proto_SumRequest *)req)->a + ((const proto_SumRequest *)req)->b;
    return GP_OK;
}
static const gp_service_method sum_methods[] = {
    {.method = &proto_AddHelper_Sum_method, .handler = sum}};
static const gp_service adder = {.name = "adder", .methods = sum_methods, .nmethods = 1};

static gp_err call(gp__grpc_broker *dialer, uint32_t id, int a, gp_status *st)
{
    gp_stub *s = NULL;
    gp_err rc = gp_broker_dial(gp__grpc_broker_base(dialer), id, &s, st);
    if (rc)
        return rc;
    proto_SumRequest q = {.a = a, .b = 1};
    proto_SumResponse r = {0};
    rc = gp_invoke(s, &proto_AddHelper_Sum_method, &q, &r, st);
    if (!rc && r.r != a + 1)
        rc = GP_EREMOTE;
    gp_stub_free(s);
    return rc;
}

static uint32_t serve(gp__grpc_broker *b)
{
    gp_status st = {0};
    uint32_t id = gp_broker_next_id(gp__grpc_broker_base(b));
    GP_CHECK_INT(gp_broker_accept_and_serve(gp__grpc_broker_base(b), id, &adder, &st), ==, GP_OK);
    return id;
}

static void both_ways(pair *p)
{
    gp_status st = {0};
    uint32_t hid = serve(p->host);
    if (call(p->plugin, hid, 41, &st) != GP_OK)
        GP_FAILF("plugin dials host id %u: %s", (unsigned)hid, st.msg);
    uint32_t pid = serve(p->plugin);
    if (call(p->host, pid, 9, &st) != GP_OK)
        GP_FAILF("host dials plugin id %u: %s", (unsigned)pid, st.msg);
    /* The same ids again: each dial knocks anew. */
    if (call(p->plugin, hid, 1, &st) != GP_OK || call(p->host, pid, 2, &st) != GP_OK)
        GP_FAILF("second dials: %s", st.msg);
}

GP_TEST(serves_and_dials_both_ways)
{
    pair p;
    pair_start(&p);
    both_ways(&p);
    GP_CHECK_INT(p.to_host.refusals + p.to_plugin.refusals, ==, 0);
    pair_stop(&p);
}

static gp__tls_keypair host_kp, plugin_kp;

GP_TEST(serves_and_dials_both_ways_over_tls)
{
    pair p;
    pair_start(&p);
    gp__grpc_tls h = {
        .root_pem = plugin_kp.cert_pem, .cert_pem = host_kp.cert_pem, .key_pem = host_kp.key_pem};
    gp__grpc_tls pl = {
        .root_pem = host_kp.cert_pem, .cert_pem = plugin_kp.cert_pem, .key_pem = plugin_kp.key_pem};
    GP_CHECK_INT(gp__grpc_broker_use_tls(p.host, &h), ==, GP_OK);
    GP_CHECK_INT(gp__grpc_broker_use_tls(p.plugin, &pl), ==, GP_OK);
    both_ways(&p);
    pair_stop(&p);
}

typedef struct job {
    pair *p;
    gp__grpc_broker *server, *dialer;
    int n;
    atomic_int *fails;
} job;

static void *many_calls(void *arg)
{
    job *j = arg;
    for (int i = 0; i < j->n; i++) {
        gp_status st = {0};
        uint32_t id = serve(j->server);
        if (call(j->dialer, id, i, &st) != GP_OK) {
            fprintf(stderr, "many: %s\n", st.msg);
            (*j->fails)++;
        }
    }
    return NULL;
}

/* Dials from both sides at once, and many brokered connections open
 * together (stubs kept until the end). */
GP_TEST(many_at_once)
{
    pair p;
    pair_start(&p);
    atomic_int fails = 0;
    enum { T = 8 };
    pthread_t t[T];
    job jobs[T];
    for (int i = 0; i < T; i++) {
        jobs[i] = (job){.p = &p,
                        .server = i % 2 ? p.host : p.plugin,
                        .dialer = i % 2 ? p.plugin : p.host,
                        .n = 5,
                        .fails = &fails};
        pthread_create(&t[i], NULL, many_calls, &jobs[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(t[i], NULL);
    GP_CHECK_INT(fails, ==, 0);
    /* 20 open at the same time, each used once as it is dialed (dials in
     * a row with no use between: many_dials_back_to_back). */
    gp_stub *stubs[20];
    gp_status st = {0};
    for (int i = 0; i < 20; i++) {
        uint32_t id = serve(p.host);
        stubs[i] = NULL;
        if (gp_broker_dial(gp__grpc_broker_base(p.plugin), id, &stubs[i], &st) != GP_OK) {
            GP_FAILF("dial %d: %s", i, st.msg);
            continue;
        }
        proto_SumRequest q = {.a = i, .b = 0};
        proto_SumResponse r = {0};
        GP_CHECK_INT(gp_invoke(stubs[i], &proto_AddHelper_Sum_method, &q, &r, &st), ==, GP_OK);
    }
    for (int i = 0; i < 20; i++) {
        proto_SumRequest q = {.a = i, .b = 1};
        proto_SumResponse r = {0};
        if (stubs[i]) {
            GP_CHECK_INT(gp_invoke(stubs[i], &proto_AddHelper_Sum_method, &q, &r, &st), ==, GP_OK);
            GP_CHECK_INT(r.r, ==, i + 1);
        }
    }
    GP_CHECK(gp__grpc_mux_bridges(p.hmux) >= 20);
    for (int i = 0; i < 20; i++)
        gp_stub_free(stubs[i]);
    pair_stop(&p);
}

/* 64 dials of one id back to back, nothing used in between, each way.
 * Here the knock and its ack are a direct hand-over, so a dial that
 * returned as soon as its stream was open would outrun the serving side's
 * accept loop at once and fill its GP__MUX_MAX_ARMED (16) armed knocks;
 * the dial waits until the peer accepted (routed) its stream, so none is
 * refused. Then every one of them works. */
static void dial_back_to_back(pair *p, gp__grpc_broker *server, gp__grpc_broker *dialer,
                              gp__grpc_mux *server_mux)
{
    enum { N = 64 };
    gp_stub *stubs[N];
    gp_status st = {0};
    uint32_t id = serve(server);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        stubs[i] = NULL;
        if (gp_broker_dial(gp__grpc_broker_base(dialer), id, &stubs[i], &st) != GP_OK)
            GP_FAILF("dial %d of %d: %s", i + 1, (int)N, st.msg);
        else
            ok++;
    }
    GP_CHECK_INT(ok, ==, N);
    GP_CHECK_INT(p->to_host.refusals + p->to_plugin.refusals, ==, 0);
    for (int i = 0; i < N; i++) {
        proto_SumRequest q = {.a = i, .b = 1};
        proto_SumResponse r = {0};
        if (!stubs[i])
            continue;
        if (gp_invoke(stubs[i], &proto_AddHelper_Sum_method, &q, &r, &st) != GP_OK)
            GP_FAILF("call on dial %d: %s", i + 1, st.msg);
        else
            GP_CHECK_INT(r.r, ==, i + 1);
    }
    GP_CHECK_INT(gp__grpc_mux_bridges(server_mux), >=, N);
    for (int i = 0; i < N; i++)
        gp_stub_free(stubs[i]);
}

GP_TEST(many_dials_back_to_back)
{
    pair p;
    pair_start(&p);
    dial_back_to_back(&p, p.host, p.plugin, p.hmux);
    dial_back_to_back(&p, p.plugin, p.host, p.pmux);
    pair_stop(&p);
}

/* A peer whose yamux never accepts our stream (a raw socket that reads
 * nothing): the brokered open fails after the wait it was given, naming
 * what it expected and that nothing came, and leaves no bridge, socket or
 * file behind. */
GP_TEST(open_the_peer_never_accepts_times_out)
{
    int base_fds = gp_test_count_fds();
    int sv[2];
    GP_CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    gp__grpc_mux *m = NULL;
    char err[256];
    gp__grpc_mux_opts o = {.log_name = "host-mux"};
    GP_CHECK_ERR(gp__grpc_mux_client(sv[0], &o, &m, err, sizeof err), GP_OK);
    int fd = -1;
    int64_t t0 = gp__now_ms();
    GP_CHECK_ERR(gp__grpc_mux_open_fd(m, 300, &fd, err, sizeof err), GP_ETIMEDOUT);
    int64_t took = gp__now_ms() - t0;
    GP_CHECK(took >= 290 && took < 3000);
    GP_CHECK_INT(fd, ==, -1);
    GP_CHECK_CONTAINS(err, "expected the peer to accept stream 1 (its yamux ACK) within 300 ms, "
                           "but nothing came");
    char path[108] = "";
    GP_CHECK_ERR(gp__grpc_mux_open_path(m, 300, path, sizeof path, err, sizeof err), GP_ETIMEDOUT);
    GP_CHECK_CONTAINS(err, "stream 3");
    GP_CHECK_INT(path[0], ==, 0);
    GP_CHECK_INT(gp__grpc_mux_bridges(m), ==, 0);
    gp__grpc_mux_free(m);
    close(sv[1]);
    GP_CHECK_INT(gp_test_count_fds(), <=, base_fds);
}

/* A knock for an id nobody serves: the refusal comes in the ack and the
 * dial fails at once with go-plugin's words. */
GP_TEST(knock_for_unknown_id)
{
    pair p;
    pair_start(&p);
    gp_status st = {0};
    int64_t t0 = gp__now_ms();
    GP_CHECK_INT(call(p.plugin, 99, 1, &st), ==, GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "failed to knock before dialling client: failed to knock for id "
                              "99: no listener for id 99");
    GP_CHECK_INT(call(p.host, 77, 1, &st), ==, GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "no listener for id 77");
    GP_CHECK(gp__now_ms() - t0 < 2000);
    /* The session still works. */
    both_ways(&p);
    pair_stop(&p);
}

/* The peer never answers the knock: the dial fails after 5 s, with
 * go-plugin's words, and the next dial works. */
GP_TEST(dial_whose_ack_never_comes)
{
    pair p;
    pair_start(&p);
    uint32_t id = serve(p.host);
    p.to_host.drop = 1; /* the plugin's knocks and acks are lost */
    gp_status st = {0};
    int64_t t0 = gp__now_ms();
    GP_CHECK_INT(call(p.plugin, id, 1, &st), ==, GP_ETIMEDOUT);
    int64_t took = gp__now_ms() - t0;
    GP_CHECK(took >= GP_BROKER_WAIT_MS - 100 && took < GP_BROKER_WAIT_MS + 2000);
    GP_CHECK_CONTAINS(st.msg, "timeout waiting for multiplexing knock handshake on id 1");
    p.to_host.drop = 0;
    if (call(p.plugin, id, 1, &st) != GP_OK)
        GP_FAILF("dial after the lost knock: %s", st.msg);
    pair_stop(&p);
}

/* The wait for the ack is the configured broker_wait_ms, not go-plugin's
 * fixed 5 s. */
GP_TEST(dial_whose_ack_never_comes_waits_broker_wait_ms)
{
    pair p;
    pair_start_with(&p, 0, 700);
    uint32_t id = serve(p.host);
    p.to_host.drop = 1;
    gp_status st = {0};
    int64_t t0 = gp__now_ms();
    GP_CHECK_INT(call(p.plugin, id, 1, &st), ==, GP_ETIMEDOUT);
    int64_t took = gp__now_ms() - t0;
    GP_CHECK(took >= 650 && took < 3500);
    GP_CHECK_CONTAINS(st.msg, "timeout waiting for multiplexing knock handshake on id 1");
    p.to_host.drop = 0;
    if (call(p.plugin, id, 1, &st) != GP_OK)
        GP_FAILF("dial after the lost knock: %s", st.msg);
    pair_stop(&p);
}

static grpc_byte_buffer *knock_bb(uint32_t id);

/* A dialer like go-plugin 1.8's, which opens its stream as soon as it has
 * the ack and does not wait for our accept loop (here it does not even wait
 * for the acks): 64 knocks back to back. GP__MUX_MAX_ARMED are acked at
 * once; the rest are held, neither acked nor refused (go-plugin holds its
 * ack back the same way), and each is acked once a stream spent an arm.
 * Opening one stream per ack, unaccepted, all 64 reach the served id. */
GP_TEST(knocks_past_the_armed_wait_for_room)
{
    enum { N = 64 };
    pair p;
    pair_start(&p);
    uint32_t id = serve(p.plugin);
    for (int i = 0; i < N; i++) {
        grpc_byte_buffer *bb = knock_bb(id);
        gp__grpc_broker_received(p.plugin, bb);
        grpc_byte_buffer_destroy(bb);
    }
    GP_CHECK_INT(p.to_host.acks, ==, GP__MUX_MAX_ARMED);
    GP_CHECK_INT(p.to_host.refusals, ==, 0);
    gp_conn *conns[N];
    int opened = 0;
    int64_t end = gp__now_ms() + 20000;
    while (opened < N && gp__now_ms() < end) {
        if (opened >= p.to_host.acks) { /* as Go: no stream before its ack */
            usleep(1000);
            continue;
        }
        int fd = -1;
        char err[256];
        gp__grpc_client_opts co = {.call_timeout_ms = 10000};
        if (gp__grpc_mux_open_fd(p.hmux, 0, &fd, err, sizeof err) != GP_OK ||
            gp__grpc_conn_from_fd(fd, &co, &conns[opened], err, sizeof err) != GP_OK) {
            GP_FAILF("stream %d: %s", opened + 1, err);
            break;
        }
        opened++;
    }
    GP_CHECK_INT(opened, ==, N);
    GP_CHECK_INT(p.to_host.acks, ==, N);
    GP_CHECK_INT(p.to_host.refusals, ==, 0);
    for (int i = 0; i < opened; i++) {
        gp_status st = {0};
        gp_stub *s = NULL;
        proto_SumRequest q = {.a = i, .b = 1};
        proto_SumResponse r = {0};
        if (conns[i]->ops->dispense(conns[i], "", &s, &st) != GP_OK ||
            gp_invoke(s, &proto_AddHelper_Sum_method, &q, &r, &st) != GP_OK)
            GP_FAILF("call on stream %d: %s", i + 1, st.msg);
        else
            GP_CHECK_INT(r.r, ==, i + 1);
        gp_stub_free(s);
    }
    for (int i = 0; i < opened; i++)
        gp__conn_close(conns[i]);
    pair_stop(&p);
}

/* A held knock goes live when an arm expires unused (its stream never
 * came), not only when a stream or another knock comes: its dialer gets
 * the ack then and its stream works. The clock's thread ends with it. */
GP_TEST(a_held_knock_goes_live_when_an_arm_expires)
{
    pair p;
    pair_start_with(&p, 0, 3 * GP__MUX_ARM_MS); /* the held knock outlives the arms */
    uint32_t id = serve(p.plugin);
    int threads = gp_test_count_threads();
    int64_t t0 = gp__now_ms();
    for (int i = 0; i < GP__MUX_MAX_ARMED; i++) {
        grpc_byte_buffer *bb = knock_bb(id);
        gp__grpc_broker_received(p.plugin, bb);
        grpc_byte_buffer_destroy(bb);
    }
    GP_CHECK_INT(p.to_host.acks, ==, GP__MUX_MAX_ARMED);
    usleep(500 * 1000);
    grpc_byte_buffer *bb = knock_bb(id);
    gp__grpc_broker_received(p.plugin, bb);
    grpc_byte_buffer_destroy(bb);
    GP_CHECK_INT(p.to_host.acks, ==, GP__MUX_MAX_ARMED); /* held */
    while (gp__now_ms() - t0 < GP__MUX_ARM_MS - 300 && p.to_host.acks == GP__MUX_MAX_ARMED)
        usleep(10 * 1000);
    GP_CHECK_INT(p.to_host.acks, ==, GP__MUX_MAX_ARMED); /* not before the arms' end */
    while (gp__now_ms() - t0 < GP__MUX_ARM_MS + 2000 && p.to_host.acks == GP__MUX_MAX_ARMED)
        usleep(10 * 1000);
    GP_CHECK_INT(p.to_host.acks, ==, GP__MUX_MAX_ARMED + 1);
    GP_CHECK_INT(p.to_host.refusals, ==, 0);
    /* Its stream reaches the served id. */
    int fd = -1;
    char err[256];
    gp_conn *conn = NULL;
    gp__grpc_client_opts co = {.call_timeout_ms = 10000};
    if (gp__grpc_mux_open_fd(p.hmux, 0, &fd, err, sizeof err) != GP_OK ||
        gp__grpc_conn_from_fd(fd, &co, &conn, err, sizeof err) != GP_OK) {
        GP_FAILF("the held knock's stream: %s", err);
    } else {
        gp_status st = {0};
        gp_stub *s = NULL;
        proto_SumRequest q = {.a = 2, .b = 3};
        proto_SumResponse r = {0};
        if (conn->ops->dispense(conn, "", &s, &st) != GP_OK ||
            gp_invoke(s, &proto_AddHelper_Sum_method, &q, &r, &st) != GP_OK)
            GP_FAILF("call on the held knock's stream: %s", st.msg);
        else
            GP_CHECK_INT(r.r, ==, 5);
        gp_stub_free(s);
        gp__conn_close(conn);
    }
    /* Nothing is held any more: the clock's thread has ended. The stream's
     * bridge may take a moment to go. */
    GP_CHECK_THREADS_AT_MOST(threads);
    pair_stop(&p);
}

static grpc_byte_buffer *knock_bb(uint32_t id)
{
    plugin_ConnInfo ci = {.service_id = id, .has_knock = true, .knock = {.knock = true}};
    grpc_byte_buffer *bb = NULL;
    char err[128];
    GP_CHECK_INT(gp__grpc_encode(plugin_ConnInfo_fields, &ci, &bb, "ConnInfo", err, sizeof err), ==,
                 GP_OK);
    return bb;
}

/* A flood of knocks (a served id and unknown ones) arms at most
 * GP__MUX_MAX_ARMED streams, holds back max_broker_conns (128) more without
 * an answer, refuses the rest in the ack, starts one thread (the held
 * knocks' clock), and the session still serves afterwards once the arms
 * and held knocks expire. */
GP_TEST(flood_of_knocks)
{
    pair p;
    pair_start(&p);
    uint32_t id = serve(p.plugin);
    int threads = gp_test_count_threads();
    int64_t t0 = gp_test_now_ms();
    for (int i = 0; i < 2000; i++) {
        grpc_byte_buffer *bb = knock_bb(i % 2 ? id : 1000 + (uint32_t)i);
        gp__grpc_broker_received(p.plugin, bb);
        grpc_byte_buffer_destroy(bb);
    }
    /* The flood spans this many clock seconds (slow under a sanitizer). */
    int64_t seconds = gp_test_now_ms() / 1000 - t0 / 1000 + 1;
    /* 16 armed, 128 held (unanswered while no stream spends an arm); of
     * the refusals at most 64 a second are answered (the send queue stays
     * small), the rest go unanswered. */
    GP_CHECK_INT(p.to_host.acks, ==, GP__MUX_MAX_ARMED);
    GP_CHECK(p.to_host.refusals >= 1 && p.to_host.refusals <= seconds * 64);
    /* One thread at most: the held knocks' clock. */
    GP_CHECK_INT(gp_test_wait_threads_at_most(threads + 1, (int)(5000 * gp_test_scale())), <=,
                 threads + 1);
    /* Garbled messages on the stream are dropped. */
    grpc_slice s = grpc_slice_from_static_string("\x22\x05\x08");
    grpc_byte_buffer *bad = grpc_raw_byte_buffer_create(&s, 1);
    gp__grpc_broker_received(p.plugin, bad);
    gp__grpc_broker_received(p.host, bad);
    grpc_byte_buffer_destroy(bad);
    /* The arms end after GP__MUX_ARM_MS; the held knocks that arrived
     * after them are still waiting then and go live for as long again. */
    usleep((2 * GP__MUX_ARM_MS + 500) * 1000);
    gp_status st = {0};
    if (call(p.host, id, 5, &st) != GP_OK)
        GP_FAILF("dial after the flood: %s", st.msg);
    pair_stop(&p);
}

/* A stream the plugin opens without a knock is not taken by the host. */
GP_TEST(stream_without_knock_is_refused)
{
    pair p;
    pair_start(&p);
    int fd = -1;
    char err[256];
    GP_CHECK_INT(gp__grpc_mux_open_fd(p.pmux, 0, &fd, err, sizeof err), ==, GP_OK);
    char buf[8];
    /* The reset may come first: then the send fails (no SIGPIPE). */
    ssize_t w = send(fd, "hello", 5, MSG_NOSIGNAL);
    GP_CHECK(w == 5 || w < 0);
    /* The host resets it: our end sees the stream close. */
    ssize_t n = read(fd, buf, sizeof buf);
    GP_CHECK(n <= 0);
    close(fd);
    both_ways(&p);
    pair_stop(&p);
}

GP_TEST(nothing_left_behind)
{
    /* The first sessions start core's threads and descriptors, which stay
     * for the process's life: count after them, then run everything. */
    serves_and_dials_both_ways();
    serves_and_dials_both_ways_over_tls();
    int base_fds = gp_test_count_fds(), base_threads = gp_test_count_threads();
    serves_and_dials_both_ways();
    serves_and_dials_both_ways_over_tls();
    many_at_once();
    many_dials_back_to_back();
    knock_for_unknown_id();
    stream_without_knock_is_refused();
    GP_CHECK_FDS_AT_MOST(base_fds);
    /* Threads that end late under a sanitizer on a loaded machine still
     * end; a leaked one never does. */
    GP_CHECK_THREADS_AT_MOST(base_threads);
}

/* The host mux with max_broker_conns = 4: four of the plugin's dials of a
 * host id are bridged, the fifth is reset (its call fails), and once a
 * stub is freed a new dial is bridged again. */
GP_TEST(bridges_past_max_broker_conns_are_refused)
{
    pair p;
    pair_start_with(&p, 4, 0);
    gp_status st = {0};
    uint32_t id = serve(p.host);
    gp_stub *stubs[4];
    for (int i = 0; i < 4; i++) {
        stubs[i] = NULL;
        GP_CHECK_ERR(gp_broker_dial(gp__grpc_broker_base(p.plugin), id, &stubs[i], &st), GP_OK);
        proto_SumRequest q = {.a = i, .b = 1};
        proto_SumResponse r = {0};
        if (stubs[i])
            GP_CHECK_ERR(gp_invoke(stubs[i], &proto_AddHelper_Sum_method, &q, &r, &st), GP_OK);
    }
    GP_CHECK_INT(gp__grpc_mux_bridges(p.hmux), ==, 4);
    gp_stub *extra = NULL;
    gp_err rc = gp_broker_dial(gp__grpc_broker_base(p.plugin), id, &extra, &st);
    if (rc == GP_OK) {
        proto_SumRequest q = {.a = 9, .b = 1};
        proto_SumResponse r = {0};
        rc = gp_invoke(extra, &proto_AddHelper_Sum_method, &q, &r, &st);
        gp_stub_free(extra);
    }
    GP_CHECK(rc != GP_OK);
    GP_CHECK_INT(gp__grpc_mux_bridges(p.hmux), <=, 4);
    gp_stub_free(stubs[0]);
    rc = GP_ECLOSED;
    for (int tries = 0; tries < 40 && rc != GP_OK; tries++) {
        rc = call(p.plugin, id, 5, &st);
        if (rc)
            usleep(50000);
    }
    GP_CHECK_ERR(rc, GP_OK);
    for (int i = 1; i < 4; i++)
        gp_stub_free(stubs[i]);
    pair_stop(&p);
}

int main(void)
{
    char err[256];
    if (gp__tls_certgen(NULL, &host_kp, err, sizeof err) ||
        gp__tls_certgen(NULL, &plugin_kp, err, sizeof err)) {
        fprintf(stderr, "certgen: %s\n", err);
        return 1;
    }
    GP_RUN(serves_and_dials_both_ways);
    GP_RUN(serves_and_dials_both_ways_over_tls);
    GP_RUN(many_at_once);
    GP_RUN(many_dials_back_to_back);
    GP_RUN(open_the_peer_never_accepts_times_out);
    GP_RUN(knock_for_unknown_id);
    GP_RUN_TIMEOUT(knocks_past_the_armed_wait_for_room, 30);
    GP_RUN_TIMEOUT(a_held_knock_goes_live_when_an_arm_expires, 30);
    /* Both wait out go-plugin's 5 s broker deadline, some of it twice. */
    GP_RUN_TIMEOUT(dial_whose_ack_never_comes, 20);
    GP_RUN_TIMEOUT(flood_of_knocks, 30);
    GP_RUN(dial_whose_ack_never_comes_waits_broker_wait_ms);
    GP_RUN(stream_without_knock_is_refused);
    GP_RUN(bridges_past_max_broker_conns_are_refused);
    GP_RUN_TIMEOUT(nothing_left_behind, 20);
    gp__tls_keypair_free(&host_kp);
    gp__tls_keypair_free(&plugin_kp);
    return gp_test_done();
}
