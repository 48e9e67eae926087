/* The gRPC broker (broker.c): two real brokers whose StartStream is a
 * direct hand-over of the encoded ConnInfo, real servers and sockets under
 * them; and ConnInfo a hostile peer might send (garbage, id 0, unknown
 * network, ids nobody dials, addresses nobody listens on). */
#include "transport/wire/grpc/broker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "transport/wire/grpc/proto/grpc_broker.pb.h"
#include "transport/testing/proto/counter.gp.h"
#include "transport/wire/grpc/core.h"
#include "transport/testing/gp_test.h"

typedef struct wire_link {
    gp__grpc_broker *peer;
    int fail; /* the stream is gone */
    char last_addr[128];
} wire_link;

static gp_err deliver(void *ctx, grpc_byte_buffer *bb)
{
    wire_link *l = ctx;
    if (l->fail) {
        grpc_byte_buffer_destroy(bb);
        return GP_ECLOSED;
    }
    plugin_ConnInfo ci;
    memset(&ci, 0, sizeof ci);
    char err[128];
    if (gp__grpc_decode(bb, plugin_ConnInfo_fields, &ci, "ConnInfo", err, sizeof err) == GP_OK) {
        snprintf(l->last_addr, sizeof l->last_addr, "%s", ci.address ? ci.address : "");
        gp_msg_release(plugin_ConnInfo_fields, &ci);
    }
    if (l->peer)
        gp__grpc_broker_received(l->peer, bb);
    grpc_byte_buffer_destroy(bb);
    return GP_OK;
}

typedef struct pair {
    wire_link to_plugin, to_host;
    gp__grpc_broker *host, *plugin;
} pair;

/* Core is held per pair, in the case's own process: the harness forks
 * each case, and core set up before a fork does not work after it. */
static void pair_start(pair *p)
{
    memset(p, 0, sizeof *p);
    gp__grpc_core_ref(NULL);
    gp__grpc_broker_opts ho = {.send = deliver, .send_ctx = &p->to_plugin};
    gp__grpc_broker_opts po = {.send = deliver, .send_ctx = &p->to_host};
    GP_CHECK_ERR(gp__grpc_broker_new(&ho, &p->host), GP_OK);
    GP_CHECK_ERR(gp__grpc_broker_new(&po, &p->plugin), GP_OK);
    p->to_plugin.peer = p->plugin;
    p->to_host.peer = p->host;
}

static void pair_stop(pair *p)
{
    gp__grpc_broker_free(p->host);
    gp__grpc_broker_free(p->plugin);
    gp__grpc_core_unref(NULL);
}

static _Atomic(gp_broker *) seen_broker; /* handlers run on server threads */
static gp_err sum(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl;
    (void)st;
    seen_broker = gp_serve_broker();
    ((proto_SumResponse *)resp)->r =
        ((const proto_SumRequest *)req)->a + ((const proto_SumRequest *)req)->b;
    return GP_OK;
}
static const gp_service_method sum_methods[] = {
    {.method = &proto_AddHelper_Sum_method, .handler = sum}};
static const gp_service adder = {.name = "adder", .methods = sum_methods, .nmethods = 1};

static void call_sum(gp_broker *dialer, uint32_t id)
{
    gp_stub *s = NULL;
    gp_status st = {0};
    gp_err rc = gp_broker_dial(dialer, id, &s, &st);
    GP_CHECK_ERR(rc, GP_OK);
    if (rc) {
        fprintf(stderr, "dial: %s\n", st.msg);
        return;
    }
    proto_SumRequest q = {.a = -7, .b = 10};
    proto_SumResponse r = {0};
    GP_CHECK_ERR(gp_invoke(s, &proto_AddHelper_Sum_method, &q, &r, &st), GP_OK);
    GP_CHECK_INT(r.r, ==, 3);
    gp_stub_free(s);
}

GP_TEST(serves_and_dials_both_ways)
{
    pair p;
    pair_start(&p);
    gp_broker *h = gp__grpc_broker_base(p.host), *pl = gp__grpc_broker_base(p.plugin);
    gp_status st = {0};
    uint32_t id = gp_broker_next_id(h);
    GP_CHECK_INT(id, ==, 1);
    GP_CHECK_ERR(gp_broker_accept_and_serve(h, id, &adder, &st), GP_OK);
    seen_broker = NULL;
    call_sum(pl, id);
    GP_CHECK(seen_broker == h);
    uint32_t pid = gp_broker_next_id(pl);
    GP_CHECK_ERR(gp_broker_accept_and_serve(pl, pid, &adder, &st), GP_OK);
    call_sum(h, pid);
    GP_CHECK(seen_broker == pl);
    GP_CHECK_ERR(gp_broker_accept_and_serve(h, id, &adder, &st), GP_ESTATE);
    GP_CHECK_CONTAINS(st.msg, "already being served");
    char path[128];
    snprintf(path, sizeof path, "%s", p.to_plugin.last_addr);
    struct stat sb;
    GP_CHECK_INT(stat(path, &sb), ==, 0);
    pair_stop(&p);
    GP_CHECK_INT(stat(path, &sb), ==, -1); /* the broker removed its socket */
}

GP_TEST(dial_of_an_id_nobody_announced_times_out_with_words)
{
    pair p;
    pair_start(&p);
    gp_stub *s = NULL;
    gp_status st = {0};
    double t0 = gp_test_now_s();
    GP_CHECK_ERR(gp_broker_dial(gp__grpc_broker_base(p.plugin), 99, &s, &st), GP_ETIMEDOUT);
    double took = gp_test_now_s() - t0;
    GP_CHECK_CONTAINS(st.msg, "timeout waiting for connection info for id 99");
    GP_CHECK(took > 4.5 && took < 7.0);
    GP_CHECK(s == NULL);
    pair_stop(&p);
}

static void feed(gp__grpc_broker *b, const plugin_ConnInfo *ci)
{
    grpc_byte_buffer *bb = NULL;
    char err[128];
    GP_CHECK_ERR(gp__grpc_encode(plugin_ConnInfo_fields, ci, &bb, "ConnInfo", err, sizeof err),
                 GP_OK);
    gp__grpc_broker_received(b, bb);
    grpc_byte_buffer_destroy(bb);
}

static void feed_raw(gp__grpc_broker *b, const void *data, size_t n)
{
    grpc_slice s = grpc_slice_from_copied_buffer(data, n);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    gp__grpc_broker_received(b, bb);
    grpc_byte_buffer_destroy(bb);
}

GP_TEST(bad_conninfo_is_dropped)
{
    pair p;
    pair_start(&p);
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80};
    feed_raw(p.plugin, garbage, sizeof garbage);
    feed_raw(p.plugin, "", 0);                                      /* empty: id 0 */
    const uint8_t truncated[] = {0x08, 0x05, 0x12, 0x10, 'u', 'n'}; /* string cut short */
    feed_raw(p.plugin, truncated, sizeof truncated);
    plugin_ConnInfo pigeon = {.service_id = 3, .network = "pigeon", .address = "/tmp/x"};
    feed(p.plugin, &pigeon);
    plugin_ConnInfo noaddr = {.service_id = 4, .network = "unix", .address = ""};
    feed(p.plugin, &noaddr);
    /* None of them became a dialable entry: id 3 still times out. */
    gp_stub *s = NULL;
    gp_status st = {0};
    GP_CHECK_ERR(gp_broker_dial(gp__grpc_broker_base(p.plugin), 3, &s, &st), GP_ETIMEDOUT);
    pair_stop(&p);
}

GP_TEST(conninfo_for_a_dead_address_fails_the_dial_with_words)
{
    pair p;
    pair_start(&p);
    plugin_ConnInfo dead = {
        .service_id = 50, .network = "unix", .address = "/nonexistent/goplugin-broker.sock"};
    feed(p.plugin, &dead);
    /* and one for an id nobody ever dials: freed with the broker */
    plugin_ConnInfo unclaimed = {.service_id = 51, .network = "tcp", .address = "127.0.0.1:1"};
    feed(p.plugin, &unclaimed);
    gp_stub *s = NULL;
    gp_status st = {0};
    GP_CHECK_ERR(gp_broker_dial(gp__grpc_broker_base(p.plugin), 50, &s, &st), GP_ECONNECT);
    GP_CHECK_CONTAINS(st.msg, "id 50");
    GP_CHECK_CONTAINS(st.msg, "/nonexistent/goplugin-broker.sock");
    pair_stop(&p);
}

GP_TEST(accept_fails_when_the_stream_is_gone)
{
    pair p;
    pair_start(&p);
    p.to_plugin.fail = 1;
    gp_status st = {0};
    GP_CHECK_ERR(gp_broker_accept_and_serve(gp__grpc_broker_base(p.host), 1, &adder, &st),
                 GP_ECLOSED);
    GP_CHECK_CONTAINS(st.msg, "announcing id 1");
    pair_stop(&p);
}

/* Many callbacks at once, both directions: ids, offers and dials race. */
typedef struct racer {
    gp_broker *server, *dialer;
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 5; i++) {
        gp_status st;
        uint32_t id = gp_broker_next_id(r->server);
        GP_CHECK_ERR(gp_broker_accept_and_serve(r->server, id, &adder, &st), GP_OK);
        call_sum(r->dialer, id);
    }
    return NULL;
}

GP_TEST(concurrent_callbacks_both_ways)
{
    pair p;
    pair_start(&p);
    gp_broker *h = gp__grpc_broker_base(p.host), *pl = gp__grpc_broker_base(p.plugin);
    racer rs[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        rs[i] = i % 2 ? (racer){h, pl} : (racer){pl, h};
        pthread_create(&t[i], NULL, race_main, &rs[i]);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    pair_stop(&p);
}

/* ASan keeps freed memory in a quarantine (256 MiB by default) that VmRSS
 * counts: keep it small, so the RSS check below measures what the broker
 * holds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=8";
}

/* kB of VmRSS, or -1. */
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* A peer announcing 10,000 ids nobody dials: at most max_pending_ids wait
 * (here 100; the rest are dropped), each for broker_wait_ms; announcements
 * with addresses over GP__GRPC_BROKER_ADDR_MAX are dropped whole, so 100
 * of 1 MiB each leave RSS within 16 MiB of where it was. */
GP_TEST(announced_ids_are_capped_in_number_size_and_time)
{
    pair p;
    memset(&p, 0, sizeof p);
    gp__grpc_core_ref(NULL);
    gp__grpc_broker_opts o = {.send = deliver,
                              .send_ctx = &p.to_host,
                              .limits = {.max_pending_ids = 100, .broker_wait_ms = 8000}};
    GP_CHECK_ERR(gp__grpc_broker_new(&o, &p.plugin), GP_OK);
    char addr[64];
    for (uint32_t id = 1; id <= 10000; id++) {
        snprintf(addr, sizeof addr, "/nonexistent/gp-%u.sock", (unsigned)id);
        plugin_ConnInfo ci = {.service_id = id, .network = "unix", .address = addr};
        feed(p.plugin, &ci);
    }
    double fed = gp_test_now_s();
    gp_stub *s = NULL;
    gp_status st = {0};
    /* id 1 waits (a dead address: the dial fails at once, with words). */
    GP_CHECK_ERR(gp_broker_dial(gp__grpc_broker_base(p.plugin), 1, &s, &st), GP_ECONNECT);
    GP_CHECK_CONTAINS(st.msg, "/nonexistent/gp-1.sock");
    size_t big = (size_t)1 << 20;
    char *huge = malloc(big + 1);
    memset(huge, 'a', big);
    huge[0] = '/';
    huge[big] = '\0';
    long before = rss_kb();
    for (uint32_t id = 20001; id <= 20100; id++) {
        plugin_ConnInfo ci = {.service_id = id, .network = "unix", .address = huge};
        feed(p.plugin, &ci);
    }
    long after = rss_kb();
    free(huge);
    fprintf(stderr, "100 ConnInfo of 1 MiB: VmRSS %ld -> %ld kB\n", before, after);
    GP_CHECK_INT(after - before, <, 16 * 1024);
    /* id 101 came past the cap and was dropped; so was the 1 MiB one. */
    GP_CHECK_ERR(gp_broker_dial(gp__grpc_broker_base(p.plugin), 101, &s, &st), GP_ETIMEDOUT);
    GP_CHECK_ERR(gp_broker_dial(gp__grpc_broker_base(p.plugin), 20001, &s, &st), GP_ETIMEDOUT);
    /* The 100 expired after broker_wait_ms: room again for new ones. */
    while (gp_test_now_s() < fed + 8.5)
        usleep(100000);
    plugin_ConnInfo late = {.service_id = 30000, .network = "unix", .address = "/nonexistent/l"};
    feed(p.plugin, &late);
    GP_CHECK_ERR(gp_broker_dial(gp__grpc_broker_base(p.plugin), 30000, &s, &st), GP_ECONNECT);
    GP_CHECK_ERR(gp_broker_dial(gp__grpc_broker_base(p.plugin), 2, &s, &st), GP_ETIMEDOUT);
    gp__grpc_broker_free(p.plugin);
    gp__grpc_core_unref(NULL);
}

static int never_starts(void *ctx, grpc_byte_buffer *bb)
{
    (void)ctx;
    (void)bb;
    return 0; /* the stream is not there: everything stays queued */
}

/* A peer that never reads its broker stream: the queue stops at
 * GP__GRPC_SENDQ_MAX messages; further sends fail and are dropped. */
GP_TEST(send_queue_is_bounded)
{
    gp__grpc_core_ref(NULL);
    gp__grpc_sendq q;
    gp__grpc_sendq_init(&q, never_starts, NULL);
    int ok = 0, refused = 0;
    for (int i = 0; i < 10000; i++) {
        grpc_slice sl = grpc_slice_from_static_string("x");
        grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
        gp_err rc = gp__grpc_sendq_push(&q, bb);
        ok += rc == GP_OK;
        refused += rc == GP_ESTATE;
    }
    GP_CHECK_INT(ok, ==, GP__GRPC_SENDQ_MAX);
    GP_CHECK_INT(refused, ==, 10000 - GP__GRPC_SENDQ_MAX);
    gp__grpc_sendq_close(&q);
    gp__grpc_sendq_destroy(&q);
    gp__grpc_core_unref(NULL);
}

int main(void)
{
    GP_RUN(serves_and_dials_both_ways);
    GP_RUN(concurrent_callbacks_both_ways);
    GP_RUN_TIMEOUT(bad_conninfo_is_dropped, 15);
    GP_RUN(conninfo_for_a_dead_address_fails_the_dial_with_words);
    GP_RUN(accept_fails_when_the_stream_is_gone);
    GP_RUN_TIMEOUT(dial_of_an_id_nobody_announced_times_out_with_words, 15);
    GP_RUN_TIMEOUT(announced_ids_are_capped_in_number_size_and_time, 40);
    GP_RUN(send_queue_is_bounded);
    return gp_test_done();
}
