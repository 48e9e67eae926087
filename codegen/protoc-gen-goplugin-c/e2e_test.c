/* Generated code over the real gRPC wire: this binary re-executes itself as
 * a plugin serving two generated services (proto.KV and gp.test.wide.Wider)
 * through gp_serve, and as the host calls them through the generated stubs,
 * field for field. */
#include "codegen/protoc-gen-goplugin-c/testdata/kv.gp.h"
#include "codegen/protoc-gen-goplugin-c/wide_fixture.h"

#include "transport/msg/msg.h"
#include "transport/testing/gp_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int plugin_main(void)
{
    static store kv_store = {.mu = PTHREAD_MUTEX_INITIALIZER};
    static const proto_KV_server kv_vt = {.Get = kv_get, .Put = kv_put};
    static const gp_test_wide_Wider_server wide_vt = {.Echo = wide_echo}; /* the rest: NULL */
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
        .protocol = GP_PROTO_GRPC,
    };
    int rc = gp_serve(&cfg);
    free(kv_store.key);
    free(kv_store.value.data);
    return rc;
}

/* ---- the host ---- */

static gp_client *client;
static gp_conn *conn;

static int connect_plugin(void)
{
    const char *argv[] = {"/proc/self/exe", "plugin", NULL};
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC,
        .start_timeout_ms = 20000,
        .logger = {.level = GP_LOG_WARN},
    };
    if (gp_client_new(&cfg, &client) != GP_OK || gp_client_connect(client, &conn) != GP_OK) {
        fprintf(stderr, "e2e: %s\n", gp_client_error(client));
        return -1;
    }
    return 0;
}

GP_TEST(kv_over_grpc)
{
    gp_stub *kv = NULL;
    gp_status st = {0};
    GP_CHECK_INT(gp_conn_dispense(conn, "kv", &kv, &st), ==, GP_OK);
    if (!kv)
        return;
    proto_PutRequest put = {.key = "answer", .value = {(uint8_t *)"42\0x", 4}};
    proto_Empty empty = {0};
    GP_CHECK_INT(proto_KV_Put(kv, &put, &empty, &st), ==, GP_OK);

    proto_GetRequest get = {.key = "answer"};
    proto_GetResponse got = {0};
    GP_CHECK_INT(proto_KV_Get(kv, &get, &got, &st), ==, GP_OK);
    GP_CHECK(got.value.len == 4 && memcmp(got.value.data, "42\0x", 4) == 0);
    gp_msg_release(proto_KV_Get_method.resp_pb, &got);

    get.key = "question";
    GP_CHECK_INT(proto_KV_Get(kv, &get, &got, &st), ==, GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "no key question");
    GP_CHECK(got.value.data == NULL);
    gp_stub_free(kv);
}

GP_TEST(wide_over_grpc)
{
    gp_stub *wide = NULL;
    gp_status st = {0};
    GP_CHECK_INT(gp_conn_dispense(conn, "wide", &wide, &st), ==, GP_OK);
    if (!wide)
        return;
    wide_fixture fx;
    wide_fixture_fill(&fx);
    gp_test_wide_Wide resp = {0};
    GP_CHECK_INT(gp_test_wide_Wider_Echo(wide, &fx.msg, &resp, &st), ==, GP_OK);
    wide_fixture_check(&resp);
    gp_msg_release(gp_test_wide_Wider_Echo_method.resp_pb, &resp);
    wide_fixture_free(&fx);

    /* A vtable entry left NULL: the plugin answers in words. */
    gp_test_wide_Node node = {.name = "n"}, out = {0};
    GP_CHECK_INT(gp_test_wide_Wider_Walk(wide, &node, &out, &st), ==, GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "/gp.test.wide.Wider/Walk is not implemented by this plugin");
    gp_stub_free(wide);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "plugin") == 0)
        return plugin_main();
    if (connect_plugin() != 0) {
        gp_client_free(client);
        return 1;
    }
    GP_RUN(kv_over_grpc);
    GP_RUN(wide_over_grpc);
    gp_client_free(client);
    return gp_test_done();
}
