/* The MuxBroker (mux_broker.c) on a real yamux session pair over a
 * socketpair: served and dialed both ways with a real service, and a raw
 * peer that breaks the protocol (wrong ack, no id, ids nobody serves). */
#include "transport/wire/netrpc/mux_broker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/testing/proto/counter.gp.h"
#include "transport/testing/gp_test.h"

typedef struct side {
    gp__mux_session *sess;
    gp__mux_broker *b; /* NULL: raw (the test speaks for it) */
    pthread_t acceptor;
    int accepting;
} side;

typedef struct pair {
    side host, plugin;
} pair;

static void *accept_main(void *arg)
{
    side *s = arg;
    for (;;) {
        gp__mux_stream *st = NULL;
        if (gp__mux_accept(s->sess, -1, &st) != GP_OK)
            return NULL;
        gp__mux_broker_take(s->b, st, 0, 0);
    }
}

static void side_start(side *s, int fd, gp__mux_role role, int with_broker)
{
    GP_CHECK_ERR(gp__mux_session_new(fd, role, NULL, &s->sess), GP_OK);
    if (!with_broker)
        return;
    gp__mux_broker_opts o = {.sess = s->sess};
    GP_CHECK_ERR(gp__mux_broker_new(&o, &s->b), GP_OK);
    s->accepting = pthread_create(&s->acceptor, NULL, accept_main, s) == 0;
}

static void side_stop(side *s)
{
    gp__mux_session_close(s->sess);
    if (s->accepting)
        pthread_join(s->acceptor, NULL);
    gp__mux_broker_free(s->b);
    gp__mux_session_free(s->sess);
}

static void pair_start(pair *p, int host_broker, int plugin_broker)
{
    int fds[2];
    memset(p, 0, sizeof *p);
    GP_CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    side_start(&p->host, fds[0], GP_MUX_CLIENT, host_broker);
    side_start(&p->plugin, fds[1], GP_MUX_SERVER, plugin_broker);
}

static void pair_stop(pair *p)
{
    side_stop(&p->host);
    side_stop(&p->plugin);
}

/* AddHelper.Sum; records which broker its handler saw. */
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

static void call_sum(gp_broker *dialer, uint32_t id, int64_t want)
{
    gp_stub *s = NULL;
    gp_status st = {0};
    gp_err rc = gp_broker_dial(dialer, id, &s, &st);
    GP_CHECK_ERR(rc, GP_OK);
    if (rc) {
        fprintf(stderr, "dial: %s\n", st.msg);
        return;
    }
    proto_SumRequest q = {.a = 40, .b = 2};
    proto_SumResponse r = {0};
    GP_CHECK_ERR(gp_invoke(s, &proto_AddHelper_Sum_method, &q, &r, &st), GP_OK);
    GP_CHECK_INT(r.r, ==, want);
    gp_stub_free(s);
}

GP_TEST(serves_and_dials_both_ways)
{
    pair p;
    pair_start(&p, 1, 1);
    gp_broker *h = gp__mux_broker_base(p.host.b), *pl = gp__mux_broker_base(p.plugin.b);
    gp_status st = {0};
    /* host serves, plugin dials (the callback direction) */
    uint32_t id = gp_broker_next_id(h);
    GP_CHECK_INT(id, ==, 1);
    GP_CHECK_ERR(gp_broker_accept_and_serve(h, id, &adder, &st), GP_OK);
    seen_broker = NULL;
    call_sum(pl, id, 42);
    GP_CHECK(seen_broker == h);
    /* plugin serves, host dials; the id spaces are independent */
    uint32_t pid = gp_broker_next_id(pl);
    GP_CHECK_INT(pid, ==, 1);
    GP_CHECK_ERR(gp_broker_accept_and_serve(pl, pid, &adder, &st), GP_OK);
    call_sum(h, pid, 42);
    GP_CHECK(seen_broker == pl);
    GP_CHECK(gp_serve_broker() == NULL); /* only inside handlers */
    pair_stop(&p);
}

typedef struct late {
    gp_broker *b;
    uint32_t id;
} late;

static void *serve_late(void *arg)
{
    late *l = arg;
    usleep(800 * 1000);
    gp_status st;
    GP_CHECK_ERR(gp_broker_accept_and_serve(l->b, l->id, &adder, &st), GP_OK);
    return NULL;
}

GP_TEST(stream_waits_for_a_late_accept)
{
    pair p;
    pair_start(&p, 1, 1);
    late l = {gp__mux_broker_base(p.host.b), 9};
    pthread_t t;
    pthread_create(&t, NULL, serve_late, &l);
    call_sum(gp__mux_broker_base(p.plugin.b), 9, 42);
    pthread_join(t, NULL);
    pair_stop(&p);
}

GP_TEST(dial_of_an_id_nobody_serves_fails_with_words)
{
    pair p;
    pair_start(&p, 1, 1);
    gp_stub *s = NULL;
    gp_status st = {0};
    double t0 = gp_test_now_s();
    gp_err rc = gp_broker_dial(gp__mux_broker_base(p.plugin.b), 77, &s, &st);
    double took = gp_test_now_s() - t0;
    GP_CHECK(rc == GP_ETIMEDOUT || rc == GP_ECLOSED);
    GP_CHECK(s == NULL);
    GP_CHECK_CONTAINS(st.msg, "id 77");
    GP_CHECK(took > 4.0 && took < 8.0);
    pair_stop(&p);
}

GP_TEST(bad_arguments)
{
    pair p;
    pair_start(&p, 1, 0);
    gp_broker *h = gp__mux_broker_base(p.host.b);
    gp_status st = {0};
    gp_stub *s = (gp_stub *)1;
    GP_CHECK_ERR(gp_broker_dial(NULL, 1, &s, &st), GP_EINVAL);
    GP_CHECK(s == NULL);
    GP_CHECK_ERR(gp_broker_dial(h, 0, &s, &st), GP_EINVAL);
    GP_CHECK_ERR(gp_broker_accept_and_serve(h, 1, NULL, &st), GP_EINVAL);
    GP_CHECK_ERR(gp_broker_accept_and_serve(NULL, 1, &adder, &st), GP_EINVAL);
    GP_CHECK_INT(gp_broker_next_id(NULL), ==, 0);
    GP_CHECK_ERR(gp_broker_accept_and_serve(h, 3, &adder, &st), GP_OK);
    GP_CHECK_ERR(gp_broker_accept_and_serve(h, 3, &adder, &st), GP_ESTATE);
    GP_CHECK_CONTAINS(st.msg, "id 3 is already being served");
    pair_stop(&p);
}

/* The raw plugin acks a different id. */
static void *wrong_ack_peer(void *arg)
{
    gp__mux_session *sess = arg;
    gp__mux_stream *st = NULL;
    if (gp__mux_accept(sess, 5000, &st) != GP_OK)
        return NULL;
    uint8_t b[4];
    if (gp__mux_stream_read_full(st, b, 4, 5000) == GP_OK) {
        b[0]++;
        gp__mux_stream_write(st, b, 4, 5000);
    }
    usleep(200 * 1000);
    gp__mux_stream_free(st);
    return NULL;
}

GP_TEST(wrong_ack_id_is_refused)
{
    pair p;
    pair_start(&p, 1, 0);
    pthread_t t;
    pthread_create(&t, NULL, wrong_ack_peer, p.plugin.sess);
    gp_stub *s = NULL;
    gp_status st = {0};
    GP_CHECK_ERR(gp_broker_dial(gp__mux_broker_base(p.host.b), 5, &s, &st), GP_EPROTO);
    GP_CHECK_CONTAINS(st.msg, "bad ack: expected id 5, got 6");
    GP_CHECK(s == NULL);
    pthread_join(t, NULL);
    pair_stop(&p);
}

/* A raw plugin opens a broker stream; the host's broker must close it
 * after 5 s without an ack when nobody claims `id` (or no id comes). */
static void raw_stream_is_closed(const uint8_t *idbytes, size_t n)
{
    pair p;
    pair_start(&p, 1, 0);
    gp__mux_stream *st = NULL;
    GP_CHECK_ERR(gp__mux_open(p.plugin.sess, &st), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_write(st, idbytes, n, 1000), GP_OK);
    double t0 = gp_test_now_s();
    uint8_t buf[8];
    size_t got = 0;
    gp_err rc = gp__mux_stream_read(st, buf, sizeof buf, 9000, &got);
    double took = gp_test_now_s() - t0;
    GP_CHECK(rc == GP_ECLOSED || (rc == GP_OK && got == 0));
    GP_CHECK(took > 4.0 && took < 8.0);
    gp__mux_stream_free(st);
    pair_stop(&p);
}

GP_TEST(stream_for_an_unclaimed_id_is_closed)
{
    const uint8_t id42[4] = {42, 0, 0, 0};
    raw_stream_is_closed(id42, 4);
}

GP_TEST(stream_without_a_whole_id_is_closed)
{
    const uint8_t half[2] = {1, 0};
    raw_stream_is_closed(half, 2);
}

GP_TEST(an_offer_nobody_dials_expires)
{
    pair p;
    pair_start(&p, 1, 1);
    gp_status st = {0};
    GP_CHECK_ERR(gp_broker_accept_and_serve(gp__mux_broker_base(p.host.b), 4, &adder, &st), GP_OK);
    usleep(5300 * 1000);
    gp_stub *s = NULL;
    gp_err rc = gp_broker_dial(gp__mux_broker_base(p.plugin.b), 4, &s, &st);
    GP_CHECK(rc != GP_OK);
    GP_CHECK(s == NULL);
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
        call_sum(r->dialer, id, 42);
    }
    return NULL;
}

GP_TEST(concurrent_callbacks_both_ways)
{
    pair p;
    pair_start(&p, 1, 1);
    gp_broker *h = gp__mux_broker_base(p.host.b), *pl = gp__mux_broker_base(p.plugin.b);
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

int main(void)
{
    GP_RUN(serves_and_dials_both_ways);
    GP_RUN(concurrent_callbacks_both_ways);
    GP_RUN(stream_waits_for_a_late_accept);
    GP_RUN(bad_arguments);
    GP_RUN(wrong_ack_id_is_refused);
    GP_RUN_TIMEOUT(dial_of_an_id_nobody_serves_fails_with_words, 15);
    GP_RUN_TIMEOUT(stream_for_an_unclaimed_id_is_closed, 15);
    GP_RUN_TIMEOUT(stream_without_a_whole_id_is_closed, 15);
    GP_RUN_TIMEOUT(an_offer_nobody_dials_expires, 25);
    return gp_test_done();
}
