/* TLS on brokered gRPC connections (broker.h): two real brokers linked by
 * a direct hand-over of ConnInfo, each given AutoMTLS material as its
 * connection's owner would. Serving and dialing work both ways over TLS; a
 * dialer without TLS, a dialer with the wrong certificate and a server
 * without a certificate of its own all fail with words, and no thread or
 * descriptor is left behind. */
#include "transport/wire/grpc/broker.h"

#include <string.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"
#include "transport/testing/proto/counter.gp.h"
#include "transport/tls/certgen.h"
#include "transport/wire/grpc/grpc.h"

static gp_err deliver(void *ctx, grpc_byte_buffer *bb)
{
    gp__grpc_broker **peer = ctx;
    if (*peer)
        gp__grpc_broker_received(*peer, bb);
    grpc_byte_buffer_destroy(bb);
    return GP_OK;
}

typedef struct pair {
    gp__grpc_broker *host, *plugin;
    gp__grpc_broker *to_plugin, *to_host; /* what deliver hands to */
} pair;

static void pair_start(pair *p)
{
    memset(p, 0, sizeof *p);
    gp__grpc_broker_opts ho = {.send = deliver, .send_ctx = &p->to_plugin};
    gp__grpc_broker_opts po = {.send = deliver, .send_ctx = &p->to_host};
    GP_CHECK_INT(gp__grpc_broker_new(&ho, &p->host), ==, GP_OK);
    GP_CHECK_INT(gp__grpc_broker_new(&po, &p->plugin), ==, GP_OK);
    p->to_plugin = p->plugin;
    p->to_host = p->host;
}

static void pair_stop(pair *p)
{
    gp__grpc_broker_free(p->host);
    gp__grpc_broker_free(p->plugin);
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

/* Serve on `server`, dial from `dialer`: GP_OK and 3, or the dial's error
 * (words in st). */
static gp_err round_trip(gp__grpc_broker *server, gp__grpc_broker *dialer, gp_status *st)
{
    gp_broker *s = gp__grpc_broker_base(server), *d = gp__grpc_broker_base(dialer);
    uint32_t id = gp_broker_next_id(s);
    gp_err rc = gp_broker_accept_and_serve(s, id, &adder, st);
    if (rc)
        return rc;
    gp_stub *stub = NULL;
    rc = gp_broker_dial(d, id, &stub, st);
    if (rc)
        return rc;
    proto_SumRequest q = {.a = 40, .b = 2};
    proto_SumResponse r = {0};
    rc = gp_invoke(stub, &proto_AddHelper_Sum_method, &q, &r, st);
    if (!rc)
        GP_CHECK_INT(r.r, ==, 42);
    gp_stub_free(stub);
    return rc;
}

static gp__tls_keypair host_kp, plugin_kp, other_kp;

/* AutoMTLS as the owners set it: each side's own pair, the peer's
 * certificate as the only root. */
static void use_automtls(pair *p)
{
    gp__grpc_tls h = {
        .root_pem = plugin_kp.cert_pem, .cert_pem = host_kp.cert_pem, .key_pem = host_kp.key_pem};
    gp__grpc_tls pl = {
        .root_pem = host_kp.cert_pem, .cert_pem = plugin_kp.cert_pem, .key_pem = plugin_kp.key_pem};
    GP_CHECK_INT(gp__grpc_broker_use_tls(p->host, &h), ==, GP_OK);
    GP_CHECK_INT(gp__grpc_broker_use_tls(p->plugin, &pl), ==, GP_OK);
}

GP_TEST(tls_both_ways)
{
    pair p;
    pair_start(&p);
    use_automtls(&p);
    gp_status st = {0};
    gp_err rc = round_trip(p.host, p.plugin, &st);
    if (rc)
        GP_FAILF("plugin dials host over TLS: %s", st.msg);
    rc = round_trip(p.plugin, p.host, &st);
    if (rc)
        GP_FAILF("host dials plugin over TLS: %s", st.msg);
    /* Set once: a second call is refused. */
    gp__grpc_tls again = {.root_pem = host_kp.cert_pem};
    GP_CHECK_INT(gp__grpc_broker_use_tls(p.host, &again), ==, GP_ESTATE);
    GP_CHECK_INT(gp__grpc_broker_use_tls(p.host, NULL), ==, GP_EINVAL);
    pair_stop(&p);
}

GP_TEST(plaintext_dialer_fails_against_tls_server)
{
    pair p;
    pair_start(&p);
    gp__grpc_tls h = {
        .root_pem = plugin_kp.cert_pem, .cert_pem = host_kp.cert_pem, .key_pem = host_kp.key_pem};
    GP_CHECK_INT(gp__grpc_broker_use_tls(p.host, &h), ==, GP_OK);
    gp_status st = {0};
    gp_err rc = round_trip(p.host, p.plugin, &st);
    GP_CHECK(rc != GP_OK);
    GP_CHECK(st.msg[0] != 0);
    pair_stop(&p);
}

GP_TEST(wrong_certificate_is_refused)
{
    pair p;
    pair_start(&p);
    gp__grpc_tls h = {
        .root_pem = plugin_kp.cert_pem, .cert_pem = host_kp.cert_pem, .key_pem = host_kp.key_pem};
    /* The plugin presents a certificate the host does not trust. */
    gp__grpc_tls pl = {
        .root_pem = host_kp.cert_pem, .cert_pem = other_kp.cert_pem, .key_pem = other_kp.key_pem};
    GP_CHECK_INT(gp__grpc_broker_use_tls(p.host, &h), ==, GP_OK);
    GP_CHECK_INT(gp__grpc_broker_use_tls(p.plugin, &pl), ==, GP_OK);
    gp_status st = {0};
    gp_err rc = round_trip(p.host, p.plugin, &st);
    GP_CHECK_INT(rc, ==, GP_ETLS);
    GP_CHECK_CONTAINS(st.msg, "broker: dialing id 1 over TLS");
    pair_stop(&p);
}

GP_TEST(serving_needs_own_certificate)
{
    pair p;
    pair_start(&p);
    /* The user's TLS on a host without a certificate of its own. */
    gp__grpc_tls h = {.root_pem = plugin_kp.cert_pem};
    GP_CHECK_INT(gp__grpc_broker_use_tls(p.host, &h), ==, GP_OK);
    gp_status st = {0};
    gp_broker *b = gp__grpc_broker_base(p.host);
    GP_CHECK_INT(gp_broker_accept_and_serve(b, gp_broker_next_id(b), &adder, &st), ==, GP_ETLS);
    GP_CHECK_CONTAINS(st.msg, "no certificate of its own");
    pair_stop(&p);
}

/* The cases again, in this one process (each GP_RUN is a process of its
 * own, whose counts tell nothing): after the first session has started
 * core's threads and descriptors, the rest leave none behind. */
GP_TEST(nothing_left_behind)
{
    tls_both_ways();
    usleep((useconds_t)(300000 * gp_test_scale())); /* that session's closes settle */
    int base_fds = gp_test_count_fds(), base_threads = gp_test_count_threads();
    tls_both_ways();
    plaintext_dialer_fails_against_tls_server();
    wrong_certificate_is_refused();
    serving_needs_own_certificate();
    /* Core closes a refused TLS socket from its own threads, a little
     * later. */
    GP_CHECK_FDS_AT_MOST(base_fds);
    GP_CHECK_THREADS_AT_MOST(base_threads);
}

int main(void)
{
    char err[256];
    if (gp__tls_certgen(NULL, &host_kp, err, sizeof err) ||
        gp__tls_certgen(NULL, &plugin_kp, err, sizeof err) ||
        gp__tls_certgen(NULL, &other_kp, err, sizeof err)) {
        fprintf(stderr, "certgen: %s\n", err);
        return 1;
    }
    GP_RUN(tls_both_ways);
    GP_RUN(plaintext_dialer_fails_against_tls_server);
    GP_RUN(wrong_certificate_is_refused);
    GP_RUN(serving_needs_own_certificate);
    GP_RUN(nothing_left_behind);
    gp__tls_keypair_free(&host_kp);
    gp__tls_keypair_free(&plugin_kp);
    gp__tls_keypair_free(&other_kp);
    return gp_test_done();
}
