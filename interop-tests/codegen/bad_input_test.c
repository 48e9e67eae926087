/* Bad input against a generated plugin, over grpc and netrpc: this binary
 * re-executes itself as a plugin serving gp.test.bad.Bad (generated code),
 * and as the host sends it messages of another type than the one declared
 * and unknown method names (each gets an error in words, and the plugin
 * keeps serving), and a repeated field of 70000 elements (past 16-bit
 * nanopb's 65535; it round-trips). Under
 * --config=asan both processes are checked for leaks. */
#include "interop-tests/codegen/bad.gp.h"

#include <goplugin/gob.h>

#include "transport/testing/gp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COOKIE_KEY "GP_BAD_INPUT"
#define COOKIE_VALUE "bad"

/* ---- the plugin ---- */

static gp_err take(void *impl, const gp_test_bad_Numbers *req, gp_test_bad_Numbers *resp,
                   gp_status *st)
{
    (void)impl;
    (void)st;
    if (req->values_count) {
        resp->values = malloc(req->values_count * sizeof *resp->values);
        if (!resp->values)
            return GP_ENOMEM;
        memcpy(resp->values, req->values, req->values_count * sizeof *resp->values);
        resp->values_count = req->values_count;
    }
    resp->note = req->note ? strdup(req->note) : NULL;
    return GP_OK;
}

static gp_err watch(void *impl, const gp_test_bad_Numbers *req, gp_call *call, gp_status *st)
{
    (void)impl;
    gp_test_bad_Numbers out = {.note = req->note};
    for (int i = 0; i < 2; i++) {
        gp_err e = gp_test_bad_Bad_Watch_reply(call, &out, st);
        if (e != GP_OK)
            return e;
    }
    return GP_OK;
}

/* The plugin, over the wire in argv[1] ("grpc" or "netrpc"). */
GP_HELPER(plugin)
{
    const char *wire = argc > 1 ? argv[1] : "grpc";
    static const gp_test_bad_Bad_server vt = {.Take = take, .Watch = watch};
    static gp_test_bad_Bad_service bad;
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = gp_test_bad_Bad_register(&bad, "bad", &vt, NULL),
        .nservices = 1,
        .protocol = strcmp(wire, "netrpc") == 0 ? GP_PROTO_NETRPC : GP_PROTO_GRPC,
        .logger = {.level = GP_LOG_ERROR},
    };
    return gp_serve(&cfg);
}

/* ---- the host ---- */

static const char *wire = "grpc";
static gp_client *client;
static gp_stub *bad;

/* Take, but sending a Blob: on grpc its bytes, on netrpc a gob struct
 * Numbers{Values []byte; Note int} where the plugin's has []int32 and
 * string. */
static const gp_gob_field blob_fields[] = {{"Values", &gp_gob_bytes_type, 1},
                                           {"Note", &gp_gob_int_type, 2}};
static const gp_gob_type blob_gob = {
    .kind = GP_GOB_STRUCT, .name = "Numbers", .fields = blob_fields, .nfields = 2};
static const gp_method take_blob = {
    .grpc_path = "/gp.test.bad.Bad/Take",
    .netrpc_name = "Plugin.Take",
    .req_pb = gp_test_bad_Blob_fields,
    .resp_pb = gp_test_bad_Numbers_fields,
    .req_gob = &blob_gob,
    .resp_gob = &blob_gob, /* never reached: the plugin refuses gob first */
};

static void check_still_serving(void)
{
    int32_t v[2] = {7, -7};
    gp_test_bad_Numbers req = {.values_count = 2, .values = v, .note = "ok"};
    gp_test_bad_Numbers resp = {0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_test_bad_Bad_Take(bad, &req, &resp, &st), GP_OK);
    GP_CHECK(resp.values_count == 2 && resp.values && resp.values[1] == -7);
    GP_CHECK_STR(resp.note, "ok");
    gp_msg_release(gp_test_bad_Numbers_fields, &resp);
}

GP_TEST(a_message_of_another_type)
{
    check_still_serving();
    gp_test_bad_Blob blob = {.note = 5};
    gp_test_bad_Numbers resp = {0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_invoke(bad, &take_blob, &blob, &resp, &st), GP_EREMOTE);
    if (strcmp(wire, "grpc") == 0) {
        /* field 2: a varint where Numbers declares a string */
        GP_CHECK_CONTAINS(st.msg, "/gp.test.bad.Bad/Take");
    } else {
        /* gob: []byte where the plugin's struct has []int32 */
        GP_CHECK_CONTAINS(st.msg, "Values");
    }
    GP_CHECK(resp.values == NULL && resp.note == NULL);
    check_still_serving();
}

GP_TEST(a_repeated_field_past_65535)
{
    if (strcmp(wire, "grpc") != 0)
        return; /* gob: see docs/codegen.md (checked by gob_pb_test) */
    /* 70000 packed varints of 1 in field 1: Numbers.values gets 70000
     * elements, past what 16-bit nanopb counts held (ours are 32-bit). */
    size_t n = 70000;
    uint8_t *ones = malloc(n);
    GP_CHECK(ones != NULL);
    if (!ones)
        return;
    memset(ones, 1, n);
    gp_test_bad_Blob blob = {.values = {ones, n}};
    gp_test_bad_Numbers resp = {0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_invoke(bad, &take_blob, &blob, &resp, &st), GP_OK);
    GP_CHECK_INT(resp.values_count, ==, 70000);
    size_t ok = 0;
    for (size_t i = 0; resp.values && i < resp.values_count; i++)
        ok += resp.values[i] == 1;
    GP_CHECK_INT(ok, ==, 70000);
    gp_msg_release(gp_test_bad_Numbers_fields, &resp);
    free(ones);
    check_still_serving();
}

GP_TEST(an_unknown_method)
{
    const gp_method nope = {
        .grpc_path = "/gp.test.bad.Bad/Nope",
        .netrpc_name = "Plugin.Nope",
        .req_pb = gp_test_bad_Numbers_fields,
        .resp_pb = gp_test_bad_Numbers_fields,
        .req_gob = gp_test_bad_Bad_Take_method.req_gob,
        .resp_gob = gp_test_bad_Bad_Take_method.resp_gob,
    };
    gp_test_bad_Numbers req = {.note = "x"}, resp = {0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_invoke(bad, &nope, &req, &resp, &st), GP_ENOTFOUND);
    GP_CHECK_CONTAINS(st.msg, "Nope");
    check_still_serving();
}

GP_TEST(a_stream_of_another_type)
{
    if (strcmp(wire, "grpc") != 0)
        return; /* streams are grpc only (e2e_test checks the refusal) */
    static const gp_method watch_blob = {
        .grpc_path = "/gp.test.bad.Bad/Watch",
        .req_pb = gp_test_bad_Blob_fields,
        .resp_pb = gp_test_bad_Numbers_fields,
        .kind = GP_SERVER_STREAM,
    };
    gp_call *call = NULL;
    gp_status st = {0};
    GP_CHECK_ERR(gp_call_open(bad, &watch_blob, &call, &st), GP_OK);
    gp_test_bad_Blob blob = {.note = 5};
    GP_CHECK_ERR(gp_call_send(call, &blob, &st), GP_OK);
    GP_CHECK_ERR(gp_call_close_send(call, &st), GP_OK);
    gp_test_bad_Numbers got = {0};
    GP_CHECK_ERR(gp_call_recv(call, &got, &st), GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "/gp.test.bad.Bad/Watch request");
    gp_call_free(call);

    /* The right type still streams. */
    gp_test_bad_Numbers req = {.note = "w"};
    GP_CHECK_ERR(gp_test_bad_Bad_Watch_open(bad, &req, &call, &st), GP_OK);
    int n = 0;
    while (gp_test_bad_Bad_Watch_recv(call, &got, &st) == GP_OK) {
        GP_CHECK_STR(got.note, "w");
        gp_msg_release(gp_test_bad_Numbers_fields, &got);
        n++;
    }
    GP_CHECK_ERR(st.err, GP_EOF);
    GP_CHECK_INT(n, ==, 2);
    gp_call_free(call);
}

/* The fixture: a plugin per case, started in the case's own process. */
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
        .logger = {.level = GP_LOG_ERROR},
    };
    gp_conn *conn = NULL;
    gp_status st = {0};
    if (gp_client_new(&cfg, &client, &st) != GP_OK ||
        gp_client_connect(client, &conn, &st) != GP_OK ||
        gp_conn_dispense(conn, "bad", &bad, &st) != GP_OK) {
        fprintf(stderr, "bad_input: %s\n", st.msg);
        return -1;
    }
    return 0;
}

static void disconnect_plugin(void)
{
    gp_stub_free(bad);
    bad = NULL;
    gp_client_free(client);
    client = NULL;
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    gp_test_fixture(connect_plugin, disconnect_plugin);
    static const char *const wires[] = {"grpc", "netrpc"};
    for (size_t i = 0; i < 2; i++) {
        wire = wires[i];
#define RUN(t) gp_test_run(i ? "netrpc: " #t : "grpc: " #t, t, GP_TEST_TIMEOUT_S)
        RUN(a_message_of_another_type);
        RUN(a_repeated_field_past_65535);
        RUN(an_unknown_method);
        RUN(a_stream_of_another_type);
#undef RUN
    }
    return gp_test_done();
}
