/* Generated code over the real wires: this binary re-executes itself as a
 * plugin serving two generated services (proto.KV and gp.test.wide.Wider)
 * through gp_serve, over grpc and then over netrpc (the generated gob
 * descriptors), and as the host calls them through the generated stubs,
 * field for field. */
#include "codegen/protoc-gen-goplugin-c/testdata/kv.gp.h"
#include "codegen/protoc-gen-goplugin-c/wide_fixture.h"

#include "transport/msg/msg.h"
#include "transport/testing/gp_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COOKIE_KEY "GP_CODEGEN_E2E"
#define COOKIE_VALUE "generated"

/* ---- the plugin ---- */

typedef struct store {
    pthread_mutex_t mu;
    char *key;
    gp_bytes value;
} store;

static gp_err kv_put(void *impl, const proto_PutRequest *req, proto_Empty *resp, gp_status *st)
{
    (void)resp;
    (void)st;
    store *s = impl;
    size_t n = req->key ? strlen(req->key) : 0;
    char *key = malloc(n + 1);
    uint8_t *val = malloc(req->value.len ? req->value.len : 1);
    if (!key || !val) {
        free(key);
        free(val);
        return GP_ENOMEM;
    }
    memcpy(key, req->key ? req->key : "", n + 1);
    if (req->value.len)
        memcpy(val, req->value.data, req->value.len);
    pthread_mutex_lock(&s->mu);
    free(s->key);
    free(s->value.data);
    s->key = key;
    s->value = (gp_bytes){val, req->value.len};
    pthread_mutex_unlock(&s->mu);
    return GP_OK;
}

static gp_err kv_get(void *impl, const proto_GetRequest *req, proto_GetResponse *resp,
                     gp_status *st)
{
    store *s = impl;
    gp_err e = GP_OK;
    pthread_mutex_lock(&s->mu);
    if (!s->key || !req->key || strcmp(s->key, req->key) != 0) {
        snprintf(st->msg, sizeof st->msg, "no key %s", req->key ? req->key : "");
        e = GP_ENOTFOUND;
    } else if (s->value.len) {
        resp->value.data = malloc(s->value.len);
        if (resp->value.data) {
            memcpy(resp->value.data, s->value.data, s->value.len);
            resp->value.len = s->value.len;
        } else {
            e = GP_ENOMEM;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

static gp_err wide_echo(void *impl, const gp_test_wide_Wide *req, gp_test_wide_Wide *resp,
                        gp_status *st)
{
    (void)impl;
    size_t size = 0;
    gp_err e = gp__msg_size(gp_test_wide_Wide_fields, req, &size, "echo", st->msg, sizeof st->msg);
    uint8_t *buf = e ? NULL : malloc(size ? size : 1);
    if (!e && !buf)
        e = GP_ENOMEM;
    if (!e)
        e = gp__msg_encode_buf(gp_test_wide_Wide_fields, req, buf, size, NULL, "echo", st->msg,
                               sizeof st->msg);
    if (!e)
        e = gp__msg_decode_buf(gp_test_wide_Wide_fields, buf, size, resp, "echo", st->msg,
                               sizeof st->msg);
    free(buf);
    return e;
}

/* Streaming handlers (grpc only). Watch sends req.f_int32 messages
 * numbered 0.. (f_int64), then finishes OK; f_int32 < 0 sends -f_int32 and
 * then fails; f_int32 >= 1000000 streams until the host cancels. Upload
 * counts Wide messages and refuses one whose oneof text is "fail". Chat
 * answers each Scalars with f_int64 doubled. Where reports (f_int32) how
 * many handlers saw their call cancelled. */
static atomic_int cancelled_streams;

static gp_err wide_watch(void *impl, const gp_test_wide_Scalars *req, gp_call *call, gp_status *st)
{
    (void)impl;
    long n = req->f_int32 < 0 ? -(long)req->f_int32 : req->f_int32;
    for (long i = 0; i < n; i++) {
        gp_test_wide_Scalars out = {.f_int64 = i, .f_string = "tick"};
        gp_err e = gp_test_wide_Wider_Watch_reply(call, &out, st);
        if (e != GP_OK) {
            atomic_fetch_add(&cancelled_streams, 1);
            return e;
        }
    }
    if (req->f_int32 < 0) {
        snprintf(st->msg, sizeof st->msg, "watch failed after %ld messages", n);
        return GP_EINVAL;
    }
    return GP_OK;
}

static gp_err wide_upload(void *impl, gp_call *call, gp_status *st)
{
    (void)impl;
    for (int count = 0;; count++) {
        gp_test_wide_Wide in = {0};
        gp_err e = gp_test_wide_Wider_Upload_next(call, &in, st);
        if (e == GP_EOF) {
            if (count != 3) {
                snprintf(st->msg, sizeof st->msg, "upload: expected 3 messages, got %d", count);
                return GP_EINVAL;
            }
            google_protobuf_Empty done = {0};
            return gp_test_wide_Wider_Upload_reply(call, &done, st);
        }
        if (e != GP_OK)
            return e;
        int fail = in.which_choice == gp_test_wide_Wide_text_tag && in.choice.text &&
                   strcmp(in.choice.text, "fail") == 0;
        int ok = in.tags_count == 3 && in.has_scalars && in.scalars.f_sint64 == -(1LL << 40);
        gp_msg_release(gp_test_wide_Wide_fields, &in);
        if (fail || !ok) {
            snprintf(st->msg, sizeof st->msg, "upload refused at message %d (%s)", count,
                     fail ? "asked to fail" : "fields differ");
            return GP_EINVAL;
        }
    }
}

static gp_err wide_chat(void *impl, gp_call *call, gp_status *st)
{
    (void)impl;
    for (;;) {
        gp_test_wide_Scalars in = {0};
        gp_err e = gp_test_wide_Wider_Chat_next(call, &in, st);
        if (e == GP_EOF)
            return GP_OK;
        if (e != GP_OK)
            return e;
        gp_test_wide_Scalars out = {.f_int64 = in.f_int64 * 2, .f_string = in.f_string};
        e = gp_test_wide_Wider_Chat_reply(call, &out, st);
        gp_msg_release(gp_test_wide_Scalars_fields, &in);
        if (e != GP_OK)
            return e;
    }
}

static gp_err wide_where(void *impl, const gp_test_common_Point *req, gp_test_wide_Scalars *resp,
                         gp_status *st)
{
    (void)impl;
    (void)req;
    (void)st;
    resp->f_int32 = atomic_load(&cancelled_streams);
    return GP_OK;
}

/* Serves both services over the wire in argv[1] ("grpc" or "netrpc"). */
GP_HELPER(plugin)
{
    const char *wire = argc > 1 ? argv[1] : "grpc";
    static store kv_store = {.mu = PTHREAD_MUTEX_INITIALIZER};
    static const proto_KV_server kv_vt = {.Get = kv_get, .Put = kv_put};
    static const gp_test_wide_Wider_server wide_vt = {.Echo = wide_echo,
                                                      .Where = wide_where,
                                                      .Watch = wide_watch,
                                                      .Upload = wide_upload,
                                                      .Chat = wide_chat}; /* the rest: NULL */
    static proto_KV_service kv;
    static gp_test_wide_Wider_service wide;
    gp_service services[2];
    services[0] = *proto_KV_register(&kv, "kv", &kv_vt, &kv_store);
    services[1] = *gp_test_wide_Wider_register(&wide, "wide", &wide_vt, NULL);
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = services,
        .nservices = 2,
        .protocol = strcmp(wire, "netrpc") == 0 ? GP_PROTO_NETRPC : GP_PROTO_GRPC,
    };
    int rc = gp_serve(&cfg);
    free(kv_store.key);
    free(kv_store.value.data);
    return rc;
}

/* ---- the host ---- */

static gp_client *client;
static gp_conn *conn;

static const char *wire = "grpc";

/* The fixture: every case gets a plugin of its own, started in the case's
 * process (gRPC must not be set up in the harness's, which forks). */
static int connect_plugin(void)
{
    const char *const *argv = gp_test_helper_argv("plugin", wire);
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC | GP_PROTO_NETRPC,
        .start_timeout_ms = 20000,
        .logger = {.level = GP_LOG_WARN},
    };
    gp_status st;
    if (gp_client_new(&cfg, &client, &st) != GP_OK ||
        gp_client_connect(client, &conn, &st) != GP_OK) {
        fprintf(stderr, "e2e: %s\n", st.msg);
        return -1;
    }
    return 0;
}

static void disconnect_plugin(void)
{
    gp_client_free(client);
    client = NULL;
    conn = NULL;
}

GP_TEST(kv_calls)
{
    GP_CHECK_STR(gp_conn_protocol(conn), wire);
    gp_stub *kv = NULL;
    gp_status st = {0};
    GP_CHECK_ERR(gp_conn_dispense(conn, "kv", &kv, &st), GP_OK);
    if (!kv)
        return;
    proto_PutRequest put = {.key = "answer", .value = {(uint8_t *)"42\0x", 4}};
    proto_Empty empty = {0};
    GP_CHECK_ERR(proto_KV_Put(kv, &put, &empty, &st), GP_OK);

    proto_GetRequest get = {.key = "answer"};
    proto_GetResponse got = {0};
    GP_CHECK_ERR(proto_KV_Get(kv, &get, &got, &st), GP_OK);
    GP_CHECK(got.value.len == 4 && memcmp(got.value.data, "42\0x", 4) == 0);
    gp_msg_release(proto_KV_Get_method.resp_pb, &got);

    get.key = "question";
    GP_CHECK_ERR(proto_KV_Get(kv, &get, &got, &st), GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "no key question");
    GP_CHECK(got.value.data == NULL);
    gp_stub_free(kv);
}

GP_TEST(wide_calls)
{
    gp_stub *wide = NULL;
    gp_status st = {0};
    GP_CHECK_ERR(gp_conn_dispense(conn, "wide", &wide, &st), GP_OK);
    if (!wide)
        return;
    wide_fixture fx;
    wide_fixture_fill(&fx);
    gp_test_wide_Wide resp = {0};
    GP_CHECK_ERR(gp_test_wide_Wider_Echo(wide, &fx.msg, &resp, &st), GP_OK);
    if (st.err)
        fprintf(stderr, "Echo over %s: %s\n", wire, st.msg);
    wide_fixture_check(&resp);
    gp_msg_release(gp_test_wide_Wider_Echo_method.resp_pb, &resp);
    wide_fixture_free(&fx);

    /* A vtable entry left NULL: the plugin answers in words. */
    gp_test_wide_Node node = {.name = "n"}, out = {0};
    GP_CHECK_ERR(gp_test_wide_Wider_Walk(wide, &node, &out, &st), GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "/gp.test.wide.Wider/Walk is not implemented by this plugin");
    gp_stub_free(wide);
}

/* A request that would cost the plugin far more to decode than it weighs
 * (issue 13): 2 Mi empty tags, 4 MiB on the wire, a 32-byte block and a
 * pointer each once decoded, past the budget of 8 x 4 + 16 = 48 MiB. The
 * gRPC plugin answers RESOURCE_EXHAUSTED in words and keeps serving; the
 * netrpc one refuses it in its gob decoder (1 Mi values per message). */
GP_TEST(a_request_too_costly_to_decode)
{
    gp_stub *wide = NULL;
    gp_status st = {0};
    GP_CHECK_ERR(gp_conn_dispense(conn, "wide", &wide, &st), GP_OK);
    if (!wide)
        return;
    size_t n = (size_t)2 << 20;
    gp_test_wide_Wide req = {0}, resp = {0};
    req.tags = malloc(n * sizeof *req.tags);
    GP_CHECK(req.tags != NULL);
    for (size_t i = 0; req.tags && i < n; i++)
        req.tags[i] = "";
    req.tags_count = req.tags ? (pb_size_t)n : 0;
    gp_err e = gp_test_wide_Wider_Echo(wide, &req, &resp, &st);
    fprintf(stderr, "Echo of %zu empty tags over %s: %s (%s)\n", n, wire, gp_strerror(e), st.msg);
    free(req.tags);
    GP_CHECK(resp.tags == NULL);
    if (strcmp(wire, "grpc") == 0) {
        GP_CHECK_ERR(e, GP_EREMOTE);
        GP_CHECK_INT(st.grpc_code, ==, 8); /* RESOURCE_EXHAUSTED */
        GP_CHECK_CONTAINS(st.msg, "message would take more than 48 MiB to decode");
        gp_test_wide_Wide small = {.tags_count = 0}, out = {0};
        GP_CHECK_ERR(gp_test_wide_Wider_Echo(wide, &small, &out, &st), GP_OK);
        gp_msg_release(gp_test_wide_Wider_Echo_method.resp_pb, &out);
    } else {
        GP_CHECK_ERR_NE(e, GP_OK);
    }
    gp_stub_free(wide);
}

/* ---- streaming ---- */

GP_TEST(streams)
{
    gp_stub *wide = NULL;
    gp_status st = {0};
    GP_CHECK_ERR(gp_conn_dispense(conn, "wide", &wide, &st), GP_OK);
    if (!wide)
        return;
    gp_call *call = NULL;
    gp_test_wide_Scalars req = {.f_int32 = 3};
    if (strcmp(wire, "netrpc") == 0) {
        GP_CHECK_ERR(gp_test_wide_Wider_Watch_open(wide, &req, &call, &st), GP_EUNSUPPORTED);
        GP_CHECK_CONTAINS(st.msg, "streaming RPCs need the grpc protocol (method "
                                  "/gp.test.wide.Wider/Watch)");
        GP_CHECK(call == NULL);
        GP_CHECK_ERR(gp_test_wide_Wider_Chat_open(wide, &call, &st), GP_EUNSUPPORTED);
        gp_stub_free(wide);
        return;
    }

    /* Server streaming: three messages, then the end. */
    GP_CHECK_ERR(gp_test_wide_Wider_Watch_open(wide, &req, &call, &st), GP_OK);
    for (int i = 0; call && i < 3; i++) {
        gp_test_wide_Scalars ev = {0};
        GP_CHECK_ERR(gp_test_wide_Wider_Watch_recv(call, &ev, &st), GP_OK);
        GP_CHECK_INT(ev.f_int64, ==, i);
        GP_CHECK_STR(ev.f_string, "tick");
        gp_msg_release(gp_test_wide_Scalars_fields, &ev);
    }
    gp_test_wide_Scalars none = {0};
    GP_CHECK_ERR(gp_test_wide_Wider_Watch_recv(call, &none, &st), GP_EOF);
    GP_CHECK_ERR(gp_test_wide_Wider_Watch_recv(call, &none, &st), GP_EOF);
    GP_CHECK_ERR(gp_call_finish(call, &st), GP_OK);
    gp_call_free(call);
    call = NULL;

    /* A server that fails mid-stream: two messages, then its error. */
    req.f_int32 = -2;
    GP_CHECK_ERR(gp_test_wide_Wider_Watch_open(wide, &req, &call, &st), GP_OK);
    int got = 0;
    gp_err e;
    gp_test_wide_Scalars ev = {0};
    while ((e = gp_test_wide_Wider_Watch_recv(call, &ev, &st)) == GP_OK) {
        got++;
        gp_msg_release(gp_test_wide_Scalars_fields, &ev);
    }
    GP_CHECK_INT(got, ==, 2);
    GP_CHECK_ERR(e, GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "watch failed after 2 messages");
    GP_CHECK_ERR(gp_call_finish(call, &st), GP_EREMOTE);
    gp_call_free(call);
    call = NULL;

    /* Client streaming: three full messages, then the one response. */
    wide_fixture fx;
    wide_fixture_fill(&fx);
    GP_CHECK_ERR(gp_test_wide_Wider_Upload_open(wide, &call, &st), GP_OK);
    for (int i = 0; call && i < 3; i++)
        GP_CHECK_ERR(gp_test_wide_Wider_Upload_send(call, &fx.msg, &st), GP_OK);
    google_protobuf_Empty empty = {0};
    GP_CHECK_ERR(gp_test_wide_Wider_Upload_close_and_recv(call, &empty, &st), GP_OK);
    GP_CHECK_ERR(gp_test_wide_Wider_Upload_send(call, &fx.msg, &st), GP_ESTATE);
    gp_call_free(call);
    call = NULL;

    /* ... and one the server refuses mid-way: its words come back. */
    GP_CHECK_ERR(gp_test_wide_Wider_Upload_open(wide, &call, &st), GP_OK);
    GP_CHECK_ERR(gp_test_wide_Wider_Upload_send(call, &fx.msg, &st), GP_OK);
    fx.msg.which_choice = gp_test_wide_Wide_text_tag;
    fx.msg.choice.text = "fail";
    gp_test_wide_Wider_Upload_send(call, &fx.msg, &st); /* may already see the end */
    GP_CHECK_ERR(gp_test_wide_Wider_Upload_close_and_recv(call, &empty, &st), GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "upload refused at message 1 (asked to fail)");
    gp_call_free(call);
    call = NULL;
    wide_fixture_free(&fx);

    /* Bidi: each answer as it comes. */
    GP_CHECK_ERR(gp_test_wide_Wider_Chat_open(wide, &call, &st), GP_OK);
    for (int i = 1; call && i <= 3; i++) {
        gp_test_wide_Scalars q = {.f_int64 = i, .f_string = "q"}, a = {0};
        GP_CHECK_ERR(gp_test_wide_Wider_Chat_send(call, &q, &st), GP_OK);
        GP_CHECK_ERR(gp_test_wide_Wider_Chat_recv(call, &a, &st), GP_OK);
        GP_CHECK_INT(a.f_int64, ==, 2 * i);
        GP_CHECK_STR(a.f_string, "q");
        gp_msg_release(gp_test_wide_Scalars_fields, &a);
    }
    GP_CHECK_ERR(gp_call_close_send(call, &st), GP_OK);
    GP_CHECK_ERR(gp_test_wide_Wider_Chat_recv(call, &none, &st), GP_EOF);
    GP_CHECK_ERR(gp_call_finish(call, &st), GP_OK);
    gp_call_free(call);
    call = NULL;

    /* Cancelled mid-way: the host stops reading an endless stream; the
     * plugin's handler sees its send fail and returns. */
    req.f_int32 = 1000000;
    GP_CHECK_ERR(gp_test_wide_Wider_Watch_open(wide, &req, &call, &st), GP_OK);
    for (int i = 0; call && i < 5; i++) {
        GP_CHECK_ERR(gp_test_wide_Wider_Watch_recv(call, &ev, &st), GP_OK);
        gp_msg_release(gp_test_wide_Scalars_fields, &ev);
    }
    gp_call_cancel(call);
    do /* messages already in flight may still arrive */
        gp_msg_release(gp_test_wide_Scalars_fields, &ev);
    while ((e = gp_test_wide_Wider_Watch_recv(call, &ev, &st)) == GP_OK);
    GP_CHECK_ERR(e, GP_ECLOSED);
    GP_CHECK_CONTAINS(st.msg, "the call was cancelled");
    gp_call_free(call);
    call = NULL;
    gp_test_wide_Scalars seen = {0};
    gp_test_common_Point pt = {0};
    for (int i = 0; i < 200; i++) {
        GP_CHECK_ERR(gp_test_wide_Wider_Where(wide, &pt, &seen, &st), GP_OK);
        if (seen.f_int32 >= 1)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    GP_CHECK_INT(seen.f_int32, ==, 1);

    /* A method the plugin does not serve, and a unary method as a stream. */
    static const gp_method nope = {.grpc_path = "/gp.test.wide.Wider/Nope",
                                   .netrpc_name = "Plugin.Nope",
                                   .req_pb = gp_test_wide_Scalars_fields,
                                   .resp_pb = gp_test_wide_Scalars_fields,
                                   .kind = GP_BIDI_STREAM};
    GP_CHECK_ERR(gp_call_open(wide, &nope, &call, &st), GP_OK);
    GP_CHECK_ERR(gp_call_recv(call, &none, &st), GP_ENOTFOUND);
    GP_CHECK_CONTAINS(st.msg, "unknown method /gp.test.wide.Wider/Nope");
    gp_call_free(call);
    call = NULL;
    GP_CHECK_ERR(gp_call_open(wide, &gp_test_wide_Wider_Echo_method, &call, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "is a unary method");

    /* A call left open when the stub goes: freeing it later is fine. */
    req.f_int32 = 1000000;
    GP_CHECK_ERR(gp_test_wide_Wider_Watch_open(wide, &req, &call, &st), GP_OK);
    gp_stub_free(wide);
    gp_call_free(call);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    gp_test_fixture(connect_plugin, disconnect_plugin);
    static const char *const wires[] = {"grpc", "netrpc"};
    for (size_t i = 0; i < 2; i++) {
        wire = wires[i];
#define RUN(t) gp_test_run(i ? "netrpc: " #t : "grpc: " #t, t, GP_TEST_TIMEOUT_S)
        RUN(kv_calls);
        RUN(wide_calls);
        gp_test_run(i ? "netrpc: a_request_too_costly_to_decode"
                      : "grpc: a_request_too_costly_to_decode",
                    a_request_too_costly_to_decode, 6 * GP_TEST_TIMEOUT_S);
        RUN(streams);
#undef RUN
    }
    return gp_test_done();
}
