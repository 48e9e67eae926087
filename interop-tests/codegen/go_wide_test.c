/* The generated C host against a Go plugin (go-wide-plugin, go-plugin 1.0.1):
 * every kind of field of gp.interop.All round-trips field for field through
 * Wide.Echo over grpc (Go's protoc-gen-go structs) and over netrpc (Go gob
 * structs mirroring the proto); a server-streaming RPC (Count) and one on a
 * well-known type (Ping) over grpc. argv[1]: the Go plugin. */
#include "interop-tests/codegen/wide.gp.h"

#include "transport/testing/gp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *plugin_path;
static const char *wire;
static gp_client *client;
static gp_stub *wide;

typedef struct fixture {
    gp_interop_All msg;
    int64_t ids[3];
    gp_interop_Inner inners[2];
    char *tags[3];
    gp_interop_All_CountsEntry counts[2];
} fixture;

static void fill(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->ids[0] = 1;
    fx->ids[1] = -(1LL << 40);
    fx->ids[2] = 3;
    fx->inners[0] = (gp_interop_Inner){.name = "first"};
    fx->inners[1] = (gp_interop_Inner){.name = "second", .ids_count = 3, .ids = fx->ids};
    fx->tags[0] = "x";
    fx->tags[1] = "y y";
    fx->tags[2] = "z";
    fx->counts[0] = (gp_interop_All_CountsEntry){.key = "a", .value = -7};
    fx->counts[1] = (gp_interop_All_CountsEntry){.key = "b", .value = 1 << 30};
    fx->msg = (gp_interop_All){
        .f_double = 2.5,
        .f_float = -1.25f,
        .f_int32 = -5,
        .f_int64 = -(1LL << 50),
        .f_uint32 = 4000000000u,
        .f_uint64 = 1ULL << 63,
        .f_sint32 = -123,
        .f_sint64 = -(1LL << 40),
        .f_fixed32 = 7,
        .f_fixed64 = 1ULL << 60,
        .f_sfixed32 = -9,
        .f_sfixed64 = -10,
        .f_bool = true,
        .f_string = "str\xc3\xa9",
        .f_bytes = {(uint8_t *)"b\0y", 3},
        .mood = gp_interop_Mood_GRUMPY,
        .has_inner = true,
        .inner = {.name = "in", .ids_count = 1, .ids = fx->ids},
        .inners_count = 2,
        .inners = fx->inners,
        .tags_count = 3,
        .tags = fx->tags,
        .counts_count = 2,
        .counts = fx->counts,
        .which_choice = gp_interop_All_number_tag,
        .choice = {.number = -42},
        .user_id = "u-1",
    };
}

static void check(const gp_interop_All *g)
{
    GP_CHECK(g->f_double == 2.5 && g->f_float == -1.25f);
    GP_CHECK_INT(g->f_int32, ==, -5);
    GP_CHECK_INT(g->f_int64, ==, -(1LL << 50));
    GP_CHECK(g->f_uint32 == 4000000000u && g->f_uint64 == 1ULL << 63);
    GP_CHECK_INT(g->f_sint32, ==, -123);
    GP_CHECK_INT(g->f_sint64, ==, -(1LL << 40));
    GP_CHECK(g->f_fixed32 == 7 && g->f_fixed64 == 1ULL << 60);
    GP_CHECK_INT(g->f_sfixed32, ==, -9);
    GP_CHECK_INT(g->f_sfixed64, ==, -10);
    GP_CHECK(g->f_bool);
    GP_CHECK_STR(g->f_string, "str\xc3\xa9");
    GP_CHECK(g->f_bytes.len == 3 && memcmp(g->f_bytes.data, "b\0y", 3) == 0);
    GP_CHECK_INT(g->mood, ==, gp_interop_Mood_GRUMPY);
    GP_CHECK(g->has_inner);
    GP_CHECK_STR(g->inner.name, "in");
    GP_CHECK(g->inner.ids_count == 1 && g->inner.ids && g->inner.ids[0] == 1);
    GP_CHECK_INT(g->inners_count, ==, 2);
    if (g->inners_count == 2) {
        GP_CHECK_STR(g->inners[0].name, "first");
        GP_CHECK_INT(g->inners[0].ids_count, ==, 0);
        GP_CHECK_STR(g->inners[1].name, "second");
        GP_CHECK(g->inners[1].ids_count == 3 && g->inners[1].ids[1] == -(1LL << 40));
    }
    GP_CHECK_INT(g->tags_count, ==, 3);
    if (g->tags_count == 3) {
        GP_CHECK_STR(g->tags[0], "x");
        GP_CHECK_STR(g->tags[1], "y y");
        GP_CHECK_STR(g->tags[2], "z");
    }
    /* A Go map comes back in any order. */
    GP_CHECK_INT(g->counts_count, ==, 2);
    int seen = 0;
    for (pb_size_t i = 0; i < g->counts_count; i++) {
        if (g->counts[i].key && strcmp(g->counts[i].key, "a") == 0 && g->counts[i].value == -7)
            seen |= 1;
        if (g->counts[i].key && strcmp(g->counts[i].key, "b") == 0 && g->counts[i].value == 1 << 30)
            seen |= 2;
    }
    GP_CHECK_INT(seen, ==, 3);
    GP_CHECK_INT(g->which_choice, ==, gp_interop_All_number_tag);
    GP_CHECK_INT(g->choice.number, ==, -42);
    GP_CHECK_STR(g->user_id, "u-1");
}

GP_TEST(echo_every_field)
{
    fixture fx;
    fill(&fx);
    gp_interop_All got = {0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_interop_Wide_Echo(wide, &fx.msg, &got, &st), GP_OK);
    if (st.err)
        fprintf(stderr, "Echo over %s: %s\n", wire, st.msg);
    check(&got);
    gp_msg_release(gp_interop_All_fields, &got);

    /* The other oneof member, and an all-zero message. */
    fx.msg.which_choice = gp_interop_All_text_tag;
    fx.msg.choice.text = "words";
    memset(&got, 0, sizeof got);
    GP_CHECK_ERR(gp_interop_Wide_Echo(wide, &fx.msg, &got, &st), GP_OK);
    GP_CHECK_INT(got.which_choice, ==, gp_interop_All_text_tag);
    GP_CHECK_STR(got.choice.text, "words");
    gp_msg_release(gp_interop_All_fields, &got);
    gp_interop_All zero = {0};
    memset(&got, 0, sizeof got); /* responses start zeroed (gp_msg_release frees pointers only) */
    GP_CHECK_ERR(gp_interop_Wide_Echo(wide, &zero, &got, &st), GP_OK);
    GP_CHECK_INT(got.f_int32, ==, 0);
    GP_CHECK_INT(got.inner.ids_count, ==, 0); /* (gob has no presence: has_inner may be set) */
    GP_CHECK_INT(got.tags_count, ==, 0);
    GP_CHECK_INT(got.which_choice, ==, 0);
    gp_msg_release(gp_interop_All_fields, &got);
}

GP_TEST(a_repeated_field_past_65535_from_go)
{
    /* Go answers with inner.ids = 0..69999: past 16-bit nanopb's 65535
     * counts, within our 32-bit ones. */
    gp_interop_All req = {.f_string = "big"}, got = {0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_interop_Wide_Echo(wide, &req, &got, &st), GP_OK);
    GP_CHECK(got.has_inner);
    GP_CHECK_STR(got.inner.name, "big");
    GP_CHECK_INT(got.inner.ids_count, ==, 70000);
    size_t ok = 0;
    for (size_t i = 0; got.inner.ids && i < got.inner.ids_count; i++)
        ok += got.inner.ids[i] == (int64_t)i;
    GP_CHECK_INT(ok, ==, 70000);
    GP_CHECK_STR(got.f_string, "big");
    gp_msg_release(gp_interop_All_fields, &got);
    /* The connection still works. */
    gp_interop_All small = {.f_string = "small"};
    GP_CHECK_ERR(gp_interop_Wide_Echo(wide, &small, &got, &st), GP_OK);
    GP_CHECK_STR(got.f_string, "small");
    GP_CHECK_INT(got.inner.ids_count, ==, 0); /* (gob has no presence: has_inner may be set) */
    gp_msg_release(gp_interop_All_fields, &got);
}

/* A reply that would cost far more to decode than it weighs (issue 13):
 * 1.39 Mi empty tags are 3 bytes each from Go (4 MiB, Go's default cap
 * on what its server receives) but a 32-byte block and a pointer each
 * here, past the gRPC decode budget of 8x + 16 MiB (~48 MiB). netrpc's
 * gob decoder refuses it first, on its cap of values per message, and
 * that ends the connection. */
GP_TEST(a_reply_too_costly_to_decode_is_refused)
{
    size_t n = 1390000;
    gp_interop_All req = {0}, got = {0};
    req.tags = malloc(n * sizeof *req.tags);
    GP_CHECK(req.tags != NULL);
    if (!req.tags)
        return;
    for (size_t i = 0; i < n; i++)
        req.tags[i] = "";
    req.tags_count = (pb_size_t)n;
    gp_status st = {0};
    gp_err e = gp_interop_Wide_Echo(wide, &req, &got, &st);
    fprintf(stderr, "Echo of %zu empty tags over %s: %s (%s)\n", n, wire, gp_strerror(e), st.msg);
    GP_CHECK(got.tags == NULL && got.tags_count == 0);
    gp_msg_release(gp_interop_All_fields, &got);
    free(req.tags);
    if (strcmp(wire, "netrpc") == 0) {
        GP_CHECK_ERR(e, GP_EPROTO);
        GP_CHECK_CONTAINS(st.msg, "gob: message decodes into more than");
        return;
    }
    GP_CHECK_ERR(e, GP_EMSGSIZE);
    char want[128];
    snprintf(want, sizeof want, "message would take more than %zu MiB to decode",
             (8 * 3 * n + ((size_t)16 << 20)) >> 20);
    GP_CHECK_CONTAINS(st.msg, want);
    /* The connection still works. */
    gp_interop_All small = {.f_string = "small"};
    memset(&got, 0, sizeof got);
    GP_CHECK_ERR(gp_interop_Wide_Echo(wide, &small, &got, &st), GP_OK);
    GP_CHECK_STR(got.f_string, "small");
    gp_msg_release(gp_interop_All_fields, &got);
}

GP_TEST(server_streaming_and_wkt)
{
    gp_status st = {0};
    fixture fx;
    fill(&fx);
    fx.msg.f_int32 = 4;
    gp_call *call = NULL;
    if (strcmp(wire, "netrpc") == 0) {
        GP_CHECK_ERR(gp_interop_Wide_Count_open(wide, &fx.msg, &call, &st), GP_EUNSUPPORTED);
        GP_CHECK_CONTAINS(st.msg, "streaming RPCs need the grpc protocol (method "
                                  "/gp.interop.Wide/Count)");
        return;
    }
    GP_CHECK_ERR(gp_interop_Wide_Count_open(wide, &fx.msg, &call, &st), GP_OK);
    int n = 0;
    gp_interop_All got = {0};
    while (gp_interop_Wide_Count_recv(call, &got, &st) == GP_OK) {
        GP_CHECK_INT(got.f_int64, ==, n);
        GP_CHECK_STR(got.user_id, "u-1");
        gp_msg_release(gp_interop_All_fields, &got);
        n++;
    }
    GP_CHECK_ERR(st.err, GP_EOF);
    GP_CHECK_INT(n, ==, 4);
    gp_call_free(call);

    /* Go's handler failing after its messages: its error text. */
    fx.msg.f_int32 = 2;
    fx.msg.f_string = "fail";
    GP_CHECK_ERR(gp_interop_Wide_Count_open(wide, &fx.msg, &call, &st), GP_OK);
    n = 0;
    gp_err e;
    while ((e = gp_interop_Wide_Count_recv(call, &got, &st)) == GP_OK) {
        gp_msg_release(gp_interop_All_fields, &got);
        n++;
    }
    GP_CHECK_INT(n, ==, 2);
    GP_CHECK_ERR(e, GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "count failed after 2 messages");
    gp_call_free(call);

    google_protobuf_Empty in = {0}, out = {0};
    GP_CHECK_ERR(gp_interop_Wide_Ping(wide, &in, &out, &st), GP_OK);
}

/* The fixture: a Go plugin per case, started in the case's own process
 * (gRPC must not be set up in the harness's, which forks). */
static int connect_plugin(void)
{
    char env0[64];
    snprintf(env0, sizeof env0, "WIDE_PROTO=%s", wire);
    const char *env[] = {env0, NULL};
    const char *argv[] = {plugin_path, NULL};
    gp_client_config cfg = {
        .argv = argv,
        .env = env,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = "GP_WIDE_INTEROP",
                      .magic_cookie_value = "wide"},
        .allowed_protocols = GP_PROTO_GRPC | GP_PROTO_NETRPC,
        .start_timeout_ms = 30000,
        .logger = {.level = GP_LOG_WARN},
    };
    gp_conn *conn = NULL;
    gp_status st = {0};
    if (gp_client_new(&cfg, &client, &st) != GP_OK ||
        gp_client_connect(client, &conn, &st) != GP_OK ||
        gp_conn_dispense(conn, "wide", &wide, &st) != GP_OK) {
        fprintf(stderr, "go_wide_test: %s\n", st.msg);
        return -1;
    }
    if (strcmp(gp_conn_protocol(conn), wire) != 0) {
        fprintf(stderr, "go_wide_test: expected %s, the plugin speaks %s\n", wire,
                gp_conn_protocol(conn));
        return -1;
    }
    return 0;
}

static void disconnect_plugin(void)
{
    gp_stub_free(wide);
    wide = NULL;
    gp_client_free(client);
    client = NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: go_wide_test path/to/go-wide-plugin\n");
        return 2;
    }
    plugin_path = argv[1];
    gp_test_fixture(connect_plugin, disconnect_plugin);
    static const char *const wires[] = {"grpc", "netrpc"};
    for (size_t i = 0; i < 2; i++) {
        wire = wires[i];
#define RUN(t, s) gp_test_run(i ? "netrpc: " #t : "grpc: " #t, t, (s))
        RUN(echo_every_field, GP_TEST_TIMEOUT_S);
        RUN(a_repeated_field_past_65535_from_go, 4 * GP_TEST_TIMEOUT_S);
        RUN(a_reply_too_costly_to_decode_is_refused, 6 * GP_TEST_TIMEOUT_S);
        RUN(server_streaming_and_wkt, GP_TEST_TIMEOUT_S);
#undef RUN
    }
    return gp_test_done();
}
