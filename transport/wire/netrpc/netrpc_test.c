/* The netrpc wire end to end in one process: the plugin server on a unix
 * socket, the host gp_conn dialled to it. Control.Ping, Dispense, calls
 * through the gob descriptors, Go's error texts, concurrent callers,
 * Control.Quit, stubs outliving their connection, and no fd left over. */
#include "transport/wire/netrpc/netrpc.h"

#include <goplugin/gob.h>

#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/core/conn.h"
#include "transport/msg/msg.h"
#include "transport/net/net.h"
#include "transport/wire/netrpc/gob/gob_pb_test.pb.h"
#include "transport/wire/netrpc/gob/gob_rpc.h"
#include "transport/yamux/mux_session.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"
#include "transport/testing/gp_test.h"

static const gp_gob_field get_request_fields[] = {{"Key", &gp_gob_string_type, 1}};
static const gp_gob_type get_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "GetRequest", .fields = get_request_fields, .nfields = 1};
static const gp_gob_field put_request_fields[] = {{"Key", &gp_gob_string_type, 1},
                                                  {"Value", &gp_gob_bytes_type, 2}};
static const gp_gob_type put_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "PutRequest", .fields = put_request_fields, .nfields = 2};

/* Echo: PutRequest in, the same back; Fail: always an error; Nope: the
 * host knows it, the plugin does not serve it; NoGob: no descriptors. */
static const gp_method echo_method = {.netrpc_name = "Plugin.Echo",
                                      .req_pb = gobpbtest_PutRequest_fields,
                                      .resp_pb = gobpbtest_PutRequest_fields,
                                      .req_gob = &put_request_gob,
                                      .resp_gob = &put_request_gob};
static const gp_method fail_method = {.netrpc_name = "Plugin.Fail",
                                      .req_pb = gobpbtest_GetRequest_fields,
                                      .resp_pb = gobpbtest_GetRequest_fields,
                                      .req_gob = &get_request_gob,
                                      .resp_gob = &get_request_gob};
static const gp_method nope_method = {.netrpc_name = "Plugin.Nope",
                                      .req_pb = gobpbtest_GetRequest_fields,
                                      .resp_pb = gobpbtest_GetRequest_fields,
                                      .req_gob = &get_request_gob,
                                      .resp_gob = &get_request_gob};
static const gp_method nogob_method = {.netrpc_name = "Plugin.NoGob",
                                       .req_pb = gobpbtest_GetRequest_fields,
                                       .resp_pb = gobpbtest_GetRequest_fields};

static gp_err echo(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl;
    (void)st;
    const gobpbtest_PutRequest *in = req;
    gobpbtest_PutRequest *out = resp;
    if (in->key && strcmp(in->key, "slow") == 0)
        usleep(200000);
    out->key = in->key ? strdup(in->key) : NULL;
    if (in->value.len) {
        out->value.data = malloc(in->value.len);
        memcpy(out->value.data, in->value.data, in->value.len);
        out->value.len = in->value.len;
    }
    return GP_OK;
}

static gp_err fail(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl;
    (void)req;
    (void)resp;
    snprintf(st->msg, sizeof st->msg, "boom");
    return GP_EREMOTE;
}

static const gp_service_method methods[] = {{&echo_method, echo}, {&fail_method, fail}};
static const gp_service svc = {.name = "kv", .methods = methods, .nmethods = 2};

typedef struct fixture {
    gp__netrpc_server *srv;
    char path[128];
    gp_conn *conn;
} fixture;

static int setup(fixture *f)
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
    int fd = -1;
    GP_CHECK_ERR(gp__net_dial("unix", f->path, 5000, 0, &fd, err, sizeof err), GP_OK);
    gp__netrpc_client_opts co = {.call_timeout_ms = 10000};
    GP_CHECK_ERR(gp__netrpc_conn_from_fd(fd, &co, &f->conn, err, sizeof err), GP_OK);
    if (!f->conn)
        GP_FAILF("setup: %s", err);
    return f->conn ? 0 : -1;
}

static void teardown(fixture *f)
{
    gp__conn_close(f->conn);
    gp__netrpc_server_free(f->srv);
    unlink(f->path);
}

GP_TEST(ping_dispense_call_and_go_error_texts)
{
    int fds = gp_test_count_fds();
    fixture f;
    if (setup(&f) == 0) {
        gp_status st;
        GP_CHECK_ERR(gp_conn_ping(f.conn, &st), GP_OK);
        GP_CHECK_STR(gp_conn_protocol(f.conn), "netrpc");
        gp_stub *stub = NULL;
        GP_CHECK_ERR(gp_conn_dispense(f.conn, "other", &stub, &st), GP_ENOTFOUND);
        GP_CHECK_STR(st.msg, "unknown plugin type: other");
        GP_CHECK_ERR(gp_conn_dispense(f.conn, "kv", &stub, &st), GP_OK);

        gobpbtest_PutRequest req = {.key = "k", .value = {(uint8_t *)"v1", 2}};
        gobpbtest_PutRequest resp;
        memset(&resp, 0, sizeof resp);
        GP_CHECK_ERR(gp_invoke(stub, &echo_method, &req, &resp, &st), GP_OK);
        GP_CHECK_STR(resp.key, "k");
        GP_CHECK(resp.value.len == 2 && memcmp(resp.value.data, "v1", 2) == 0);
        gp_msg_release(gobpbtest_PutRequest_fields, &resp);

        /* Zero values: nothing on the wire, NULL back. */
        gobpbtest_PutRequest empty = {0};
        GP_CHECK_ERR(gp_invoke(stub, &echo_method, &empty, &resp, &st), GP_OK);
        GP_CHECK(resp.key == NULL && resp.value.len == 0);

        gobpbtest_GetRequest g = {.key = "x"}, gr;
        memset(&gr, 0, sizeof gr);
        GP_CHECK_ERR(gp_invoke(stub, &fail_method, &g, &gr, &st), GP_EREMOTE);
        GP_CHECK_STR(st.msg, "boom");
        GP_CHECK_ERR(gp_invoke(stub, &nope_method, &g, &gr, &st), GP_ENOTFOUND);
        GP_CHECK_STR(st.msg, "rpc: can't find method Plugin.Nope");
        GP_CHECK_ERR(gp_invoke(stub, &nogob_method, &g, &gr, &st), GP_EUNSUPPORTED);
        GP_CHECK_CONTAINS(st.msg, "Plugin.NoGob has no netrpc name or gob descriptors");
        /* The stub still works after the errors. */
        GP_CHECK_ERR(gp_invoke(stub, &echo_method, &req, &resp, &st), GP_OK);
        gp_msg_release(gobpbtest_PutRequest_fields, &resp);

        /* A second stub gets its own broker id and stream. */
        gp_stub *stub2 = NULL;
        GP_CHECK_ERR(gp_conn_dispense(f.conn, "kv", &stub2, &st), GP_OK);
        GP_CHECK_ERR(gp_invoke(stub2, &echo_method, &req, &resp, &st), GP_OK);
        gp_msg_release(gobpbtest_PutRequest_fields, &resp);
        gp_stub_free(stub2);
        gp_stub_free(stub);
        teardown(&f);
    }
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

typedef struct caller {
    gp_stub *stub;
    int id, ok;
    long long done_ms; /* call_slow: when its answer came */
} caller;

static void *call_many(void *arg)
{
    caller *c = arg;
    char key[32], val[64];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "t%d-%d", c->id, i);
        snprintf(val, sizeof val, "value %d of thread %d", i, c->id);
        gobpbtest_PutRequest req = {.key = key, .value = {(uint8_t *)val, strlen(val)}}, resp;
        memset(&resp, 0, sizeof resp);
        gp_status st;
        if (gp_invoke(c->stub, &echo_method, &req, &resp, &st) == GP_OK && resp.key &&
            strcmp(resp.key, key) == 0 && resp.value.len == strlen(val) &&
            memcmp(resp.value.data, val, resp.value.len) == 0)
            c->ok++;
        gp_msg_release(gobpbtest_PutRequest_fields, &resp);
    }
    return NULL;
}

static void *call_slow(void *arg)
{
    caller *c = arg;
    gobpbtest_PutRequest req = {.key = "slow"}, resp;
    memset(&resp, 0, sizeof resp);
    gp_status st;
    c->ok = gp_invoke(c->stub, &echo_method, &req, &resp, &st) == GP_OK;
    c->done_ms = gp_test_now_ms();
    gp_msg_release(gobpbtest_PutRequest_fields, &resp);
    return NULL;
}

GP_TEST(eight_concurrent_callers_on_one_stub_overlap)
{
    fixture f;
    if (setup(&f) != 0)
        return;
    gp_status st;
    gp_stub *stub = NULL;
    GP_CHECK_ERR(gp_conn_dispense(f.conn, "kv", &stub, &st), GP_OK);
    pthread_t t[8];
    caller c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = (caller){.stub = stub, .id = i};
        pthread_create(&t[i], NULL, call_many, &c[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        GP_CHECK_INT(c[i].ok, ==, 200);
    }
    /* Eight 200 ms calls at once finish in well under 8 x 200 ms. */
    long long t0 = gp_test_now_ms();
    for (int i = 0; i < 8; i++) {
        c[i] = (caller){.stub = stub, .id = i};
        pthread_create(&t[i], NULL, call_slow, &c[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        GP_CHECK(c[i].ok);
    }
    long long took = gp_test_now_ms() - t0;
    if (took > 1000)
        GP_FAILF("8 concurrent 200 ms calls took %lld ms (expected them to overlap)", took);
    gp_stub_free(stub);
    teardown(&f);
}

/* A lone caller's call runs on the plugin thread that read it, which keeps
 * reading afterwards (nothing else pending: no thread is woken). A request
 * that arrives while such a call runs long must not wait for it: a
 * follower takes the reading over. */
GP_TEST(a_call_arriving_while_a_long_call_runs_on_the_reading_thread_does_not_wait)
{
    fixture f;
    if (setup(&f) != 0)
        return;
    gp_status st;
    gp_stub *stub = NULL;
    GP_CHECK_ERR(gp_conn_dispense(f.conn, "kv", &stub, &st), GP_OK);
    caller warm = {.stub = stub, .id = 9};
    call_many(&warm); /* 200 sequential calls: the steady state */
    GP_CHECK_INT(warm.ok, ==, 200);
    for (int round = 0; round < 3; round++) {
        caller slow = {.stub = stub, .id = 0};
        pthread_t t;
        pthread_create(&t, NULL, call_slow, &slow); /* 200 ms in the handler */
        usleep(20000);
        long long t0 = gp_test_now_ms();
        gobpbtest_PutRequest req = {.key = "fast"}, resp;
        memset(&resp, 0, sizeof resp);
        GP_CHECK_ERR(gp_invoke(stub, &echo_method, &req, &resp, &st), GP_OK);
        long long done = gp_test_now_ms();
        gp_msg_release(gobpbtest_PutRequest_fields, &resp);
        pthread_join(t, NULL);
        GP_CHECK(slow.ok);
        /* Had it waited for the slow call, its answer would come after the
         * slow one's (the order, unlike a time limit, holds on a loaded
         * machine). */
        if (done >= slow.done_ms)
            GP_FAILF("round %d: a fast call sent 20 ms into a 200 ms call took %lld ms and "
                     "ended %lld ms after it (expected before)",
                     round, done - t0, done - slow.done_ms);
    }
    gp_stub_free(stub);
    teardown(&f);
}

GP_TEST(quit_stops_the_server_and_stubs_outlive_the_conn)
{
    fixture f;
    if (setup(&f) != 0)
        return;
    gp_status st;
    gp_stub *stub = NULL;
    GP_CHECK_ERR(gp_conn_dispense(f.conn, "kv", &stub, &st), GP_OK);
    GP_CHECK_ERR(gp__conn_shutdown(f.conn, 5000, &st), GP_OK);
    gp__netrpc_server_wait(f.srv); /* returns: Quit asked for the stop */
    gobpbtest_PutRequest req = {.key = "k"}, resp;
    memset(&resp, 0, sizeof resp);
    GP_CHECK_ERR(gp_invoke(stub, &echo_method, &req, &resp, &st), GP_ECLOSED);
    gp__conn_close(f.conn);
    f.conn = NULL;
    GP_CHECK_ERR(gp_invoke(stub, &echo_method, &req, &resp, &st), GP_ECLOSED);
    gp_stub_free(stub);
    gp__netrpc_server_free(f.srv);
    unlink(f.path);
}

GP_TEST(listen_addresses)
{
    char err[256] = "";
    gp__netrpc_server *s = NULL;
    gp__netrpc_server_opts o = {.services = &svc, .nservices = 1};
    GP_CHECK_ERR(gp__netrpc_server_new(&o, &s, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__netrpc_server_start(s, err, sizeof err), GP_ESTATE);
    GP_CHECK_ERR(gp__netrpc_server_listen(s, "10.0.0.1:5", NULL, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "expected unix:/path or 127.0.0.1:PORT, got 10.0.0.1:5");
    int port = 0;
    GP_CHECK_ERR(gp__netrpc_server_listen(s, "127.0.0.1:0", &port, err, sizeof err), GP_OK);
    GP_CHECK(port > 0);
    GP_CHECK_ERR(gp__netrpc_server_start(s, err, sizeof err), GP_OK);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fd = -1;
    gp_conn *conn = NULL;
    GP_CHECK_ERR(gp__net_dial("tcp", addr, 5000, 0, &fd, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__netrpc_conn_from_fd(fd, NULL, &conn, err, sizeof err), GP_OK);
    gp_status st;
    if (conn)
        GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
    gp__conn_close(conn);
    gp__netrpc_server_free(s);
}

/* A host that misbehaves, driven through the raw session and codec. */
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
    if (gp__mux_session_new(fd, GP_MUX_CLIENT, NULL, &h->sess) != GP_OK) {
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

GP_TEST(hostile_hosts_get_errors_and_the_server_goes_on)
{
    int fds = gp_test_count_fds();
    fixture f;
    if (setup(&f) != 0)
        return;
    raw_host h;
    GP_CHECK_INT(raw_connect(&f, &h), ==, 0);
    gp_status st;
    gp__gob_value str = {.type = &gp_gob_string_type};
    str.u.bytes.data = (uint8_t *)"x";
    str.u.bytes.len = 1;
    /* Wrong argument types, unknown methods and services: Go's texts. */
    GP_CHECK_ERR(gp__rpc_call(h.rpc, "Control.Ping", &str, NULL, 5000, &st), GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "Control.Ping: ");
    GP_CHECK_ERR(gp__rpc_call(h.rpc, "Control.Nope", &str, NULL, 5000, &st), GP_EREMOTE);
    GP_CHECK_STR(st.msg, "rpc: can't find method Control.Nope");
    GP_CHECK_ERR(gp__rpc_call(h.rpc, "Foo.Bar", &str, NULL, 5000, &st), GP_EREMOTE);
    GP_CHECK_STR(st.msg, "rpc: can't find service Foo.Bar");
    gp__gob_value b = {.type = &gp_gob_bool_type, .u.b = 1};
    GP_CHECK_ERR(gp__rpc_call(h.rpc, "Dispenser.Dispense", &b, NULL, 5000, &st), GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "Dispenser.Dispense: ");

    /* A broker stream for an id nobody reserved is reset. */
    gp__mux_stream *bs = NULL;
    GP_CHECK_ERR(gp__mux_open(h.sess, &bs), GP_OK);
    uint8_t id[4] = {77, 0, 0, 0}, ack[4];
    GP_CHECK_ERR(gp__mux_stream_write(bs, id, 4, 5000), GP_OK);
    GP_CHECK(gp__mux_stream_read_full(bs, ack, 4, 5000) != GP_OK);
    gp__mux_stream_free(bs);
    /* A reserved id answered with another id: reset too (after the 5 s the
     * MuxBroker waits for someone to accept it); the reserved one still
     * works meanwhile, within its own 5 s, as go-plugin's. */
    gp__gob_value kv = {.type = &gp_gob_string_type};
    kv.u.bytes.data = (uint8_t *)"kv";
    kv.u.bytes.len = 2;
    gp__gob_value *reply = NULL;
    GP_CHECK_ERR(gp__rpc_call(h.rpc, "Dispenser.Dispense", &kv, &reply, 5000, &st), GP_OK);
    GP_CHECK(reply && reply->type && reply->type->kind == GP_GOB_UINT && reply->u.u == 1);
    gp__gob_value_free(reply);
    gp__mux_stream *wrong = NULL;
    GP_CHECK_INT(gp__mux_open(h.sess, &wrong), ==, GP_OK);
    id[0] = 2;
    GP_CHECK_INT(gp__mux_stream_write(wrong, id, 4, 5000), ==, GP_OK);
    GP_CHECK_INT(gp__mux_open(h.sess, &bs), ==, GP_OK);
    id[0] = 1;
    GP_CHECK_ERR(gp__mux_stream_write(bs, id, 4, 5000), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_read_full(bs, ack, 4, 5000), GP_OK);
    GP_CHECK(memcmp(ack, id, 4) == 0);
    GP_CHECK(gp__mux_stream_read_full(wrong, ack, 4, 8000) != GP_OK);
    gp__mux_stream_free(wrong);
    /* Garbage on the dispensed stream ends that stream only. */
    GP_CHECK_ERR(gp__mux_stream_write(bs, "\x05\xff\xff\xff\xff\xff", 6, 5000), GP_OK);
    size_t n = 1;
    char buf[16];
    gp_err rc = gp__mux_stream_read(bs, buf, sizeof buf, 5000, &n);
    GP_CHECK(rc != GP_OK || n == 0);
    gp__mux_stream_free(bs);
    GP_CHECK_ERR(gp__rpc_call(h.rpc, "Control.Ping", &b, NULL, 5000, &st), GP_OK);

    /* Garbage on the control stream ends the connection... */
    GP_CHECK_ERR(gp__mux_stream_write(h.ctl, "\x03\x00\x00\x00", 4, 5000), GP_OK);
    for (int i = 0; i < 100 && !gp__mux_session_is_closed(h.sess); i++)
        usleep(10000);
    GP_CHECK(gp__mux_session_is_closed(h.sess));
    raw_close(&h);
    /* ... and the server still serves new ones. */
    GP_CHECK_ERR(gp_conn_ping(f.conn, &st), GP_OK);
    teardown(&f);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

/* ---- a raw plugin, to see what the host does with the broker's ack ---- */

/* What the raw plugin does with the dispensed stream, once it has the id. */
enum { ACK_WRONG, ACK_NONE };

typedef struct raw_plugin {
    gp__mux_session *sess;
    gp__mux_stream *ctl, *out, *errs, *bs;
    int mode;
    uint8_t id[4];
    size_t early; /* bytes behind the id before we answered: the first call */
    pthread_t thread, ctl_thread;
    bool ctl_running;
} raw_plugin;

/* Control.Ping and Dispenser.Dispense (id 7). */
static gp_err raw_control(void *ctx, const char *method, const gp__gob_value *args,
                          gp__gob_value *reply, char *errmsg, size_t errlen)
{
    (void)ctx;
    (void)args;
    (void)errmsg;
    (void)errlen;
    if (strcmp(method, "Dispenser.Dispense") == 0) {
        reply->type = &gp_gob_uint_type;
        reply->u.u = 7;
    } else {
        reply->type = &gp_gob_empty_struct_type;
    }
    return GP_OK;
}

static void *raw_serve_control(void *arg)
{
    raw_plugin *p = arg;
    char err[256];
    gp__rpc_serve(gp__mux_stream_io(p->ctl), NULL, raw_control, p, err, sizeof err);
    return NULL;
}

static void *raw_plugin_main(void *arg)
{
    raw_plugin *p = arg;
    if (gp__mux_accept(p->sess, 5000, &p->ctl) || gp__mux_accept(p->sess, 5000, &p->out) ||
        gp__mux_accept(p->sess, 5000, &p->errs))
        return NULL;
    p->ctl_running = pthread_create(&p->ctl_thread, NULL, raw_serve_control, p) == 0;
    if (gp__mux_accept(p->sess, 5000, &p->bs) || gp__mux_stream_read_full(p->bs, p->id, 4, 5000))
        return NULL;
    /* The host's first call comes right behind the id, before any ack. */
    char buf[256];
    gp__mux_stream_read(p->bs, buf, sizeof buf, 5000, &p->early);
    if (p->mode == ACK_WRONG) {
        uint8_t wrong[4] = {(uint8_t)(p->id[0] + 1), p->id[1], p->id[2], p->id[3]};
        gp__mux_stream_write(p->bs, wrong, 4, 5000);
    } else {
        gp__mux_stream_reset(p->bs);
    }
    return NULL;
}

/* Dispense no longer waits for the MuxBroker's ack: the first call goes
 * out behind the id, and a wrong or missing ack fails that call (and the
 * stub's later ones) with the words Dispense used to give. */
GP_TEST(the_broker_ack_is_checked_with_the_first_call)
{
    int fds = gp_test_count_fds();
    for (int mode = ACK_WRONG; mode <= ACK_NONE; mode++) {
        int sv[2];
        GP_CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        raw_plugin p = {.mode = mode};
        GP_CHECK_ERR(gp__mux_session_new(sv[1], GP_MUX_SERVER, NULL, &p.sess), GP_OK);
        GP_CHECK_INT(pthread_create(&p.thread, NULL, raw_plugin_main, &p), ==, 0);
        char err[256] = "";
        gp_conn *conn = NULL;
        gp__netrpc_client_opts co = {.call_timeout_ms = 10000};
        GP_CHECK_ERR(gp__netrpc_conn_from_fd(sv[0], &co, &conn, err, sizeof err), GP_OK);
        gp_status st;
        gp_stub *kv = NULL;
        if (conn) {
            GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
            GP_CHECK_ERR(gp_conn_dispense(conn, "kv", &kv, &st), GP_OK);
        }
        gp__gob_value arg = {.type = &gp_gob_string_type};
        arg.u.bytes.data = (uint8_t *)"k";
        arg.u.bytes.len = 1;
        for (int i = 0; i < 2 && kv; i++) { /* the stub stays failed */
            gp__gob_value *reply = NULL;
            GP_CHECK(gp__netrpc_stub_call(kv, "Plugin.Get", &arg, &reply, &st) != GP_OK);
            GP_CHECK_CONTAINS(st.msg, mode == ACK_WRONG ? "bad ack: expected id 7, got 8"
                                                        : "expected the plugin to ack id 7");
            gp__gob_value_free(reply);
        }
        pthread_join(p.thread, NULL);
        GP_CHECK(p.id[0] == 7 && p.id[1] == 0 && p.id[2] == 0 && p.id[3] == 0);
        GP_CHECK_INT(p.early, >, 0);
        gp_stub_free(kv);
        gp__conn_close(conn);
        gp__mux_session_close(p.sess);
        if (p.ctl_running)
            pthread_join(p.ctl_thread, NULL);
        gp__mux_stream_free(p.ctl);
        gp__mux_stream_free(p.out);
        gp__mux_stream_free(p.errs);
        gp__mux_stream_free(p.bs);
        gp__mux_session_free(p.sess);
    }
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

int main(void)
{
    GP_RUN(ping_dispense_call_and_go_error_texts);
    GP_RUN(eight_concurrent_callers_on_one_stub_overlap);
    GP_RUN(a_call_arriving_while_a_long_call_runs_on_the_reading_thread_does_not_wait);
    GP_RUN(quit_stops_the_server_and_stubs_outlive_the_conn);
    GP_RUN(listen_addresses);
    GP_RUN_TIMEOUT(hostile_hosts_get_errors_and_the_server_goes_on, 25);
    GP_RUN(the_broker_ack_is_checked_with_the_first_call);
    return gp_test_done();
}
