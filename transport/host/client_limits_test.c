/* Message size caps (gp_client_config / gp_serve_config .max_message_bytes)
 * with real processes, both wires, both directions: this binary re-executed
 * as a KV plugin (gp_serve) with a cap of its own. A message over the
 * receiver's cap (1 MiB) fails the call with words (gRPC:
 * RESOURCE_EXHAUSTED; netrpc: the gob limit), and the receiver's peak RSS
 * (VmHWM) while it refuses a 32 MiB message stays within:
 *   netrpc: 16 MiB over its RSS before — the announced length is checked
 *           before the body is read, and yamux's window bounds what is
 *           buffered;
 *   gRPC:   32 MiB + 24 MiB — gRPC core 1.51 assembles a whole message
 *           before its size check (HTTP/2 flow control opens the window to
 *           fit the announced length), so the cap bounds what reaches us
 *           and what we send, not one message's transient memory. */
#include <goplugin/client.h>
#include <goplugin/server.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"
#include "transport/testing/proto/kv.gp.h"

#define COOKIE_KEY "GP_CLIENT_LIMITS_TEST"
#define COOKIE_VALUE "9c1d"
#define CAP ((size_t)1 << 20)
#define OVER ((size_t)2 << 20)
#define HUGE ((size_t)32 << 20)
#define SLACK_KB (16 * 1024)
#define GRPC_SLACK_KB (24 * 1024) /* ASan measured +42 MiB for 32 MiB */

/* Get("size:N") answers N bytes; anything else 1 byte. Put accepts. */
static gp_err kv_get(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl;
    (void)st;
    const proto_GetRequest *in = req;
    proto_GetResponse *out = resp;
    size_t n = 1;
    if (in->key && strncmp(in->key, "size:", 5) == 0)
        n = strtoul(in->key + 5, NULL, 10);
    out->value.data = malloc(n ? n : 1);
    if (!out->value.data)
        return GP_ENOMEM;
    memset(out->value.data, 'v', n);
    out->value.len = n;
    return GP_OK;
}

static gp_err kv_put(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl;
    (void)req;
    (void)resp;
    (void)st;
    return GP_OK;
}

static int plugin_main(const char *wire, const char *cap)
{
    static const gp_service_method methods[] = {
        {.method = &proto_KV_Get_method, .handler = kv_get},
        {.method = &proto_KV_Put_method, .handler = kv_put},
    };
    static const gp_service kv = {.name = "kv", .methods = methods, .nmethods = 2};
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = &kv,
        .nservices = 1,
        .protocol = gp_protocol_parse(wire),
        .max_message_bytes = strtoul(cap, NULL, 10),
        .logger = {.fn = gp_log_json_stderr, .level = GP_LOG_WARN},
    };
    return gp_serve(&cfg);
}

/* kB from /proc/PID/status ("VmHWM", "VmRSS"); -1 if unreadable. */
static long status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

/* Forget our peak RSS so VmHWM measures from now (Linux >= 4.0). */
static void reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

typedef struct session {
    gp_client *c;
    gp_stub *kv;
    pid_t pid;
} session;

static int open_session(session *s, gp_protocol wire, size_t host_cap, size_t plugin_cap)
{
    char capbuf[32];
    snprintf(capbuf, sizeof capbuf, "%zu", plugin_cap);
    const char **argv = gp_test_helper_argv("plugin", gp_protocol_name(wire), capbuf);
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC | GP_PROTO_NETRPC,
        .start_timeout_ms = 10000,
        .call_timeout_ms = 20000,
        .max_message_bytes = host_cap,
    };
    memset(s, 0, sizeof *s);
    gp_status st;
    if (gp_client_new(&cfg, &s->c, &st) != GP_OK) {
        GP_FAILF("gp_client_new: %s", st.msg);
        return -1;
    }
    gp_conn *conn;
    gp_err rc = gp_client_connect(s->c, &conn, &st);
    if (rc == GP_OK)
        rc = gp_conn_dispense(conn, "kv", &s->kv, &st);
    if (rc != GP_OK) {
        GP_FAILF("connect: %s: %s", gp_strerror(rc), st.msg);
        gp_client_free(s->c);
        return -1;
    }
    s->pid = gp_client_pid(s->c);
    return 0;
}

static void close_session(session *s)
{
    gp_stub_free(s->kv);
    gp_client_free(s->c);
}

static gp_err put(session *s, size_t n, gp_status *st)
{
    uint8_t *big = malloc(n);
    memset(big, 'p', n);
    proto_PutRequest req = {.key = "k", .value = {.data = big, .len = n}};
    proto_Empty resp;
    gp_err rc = gp_invoke(s->kv, &proto_KV_Put_method, &req, &resp, st);
    free(big);
    return rc;
}

static gp_err get(session *s, size_t n, gp_status *st, size_t *got)
{
    char key[48];
    snprintf(key, sizeof key, "size:%zu", n);
    proto_GetRequest req = {.key = key};
    proto_GetResponse resp;
    memset(&resp, 0, sizeof resp);
    gp_err rc = gp_invoke(s->kv, &proto_KV_Get_method, &req, &resp, st);
    *got = resp.value.len;
    gp_msg_release(proto_GetResponse_fields, &resp);
    return rc;
}

/* Over netrpc a refusal breaks that stream (Go's too): dispense anew. */
static void redispense(session *s)
{
    gp_conn *conn;
    gp_status st;
    gp_stub_free(s->kv);
    s->kv = NULL;
    GP_CHECK_INT(gp_client_connect(s->c, &conn, NULL), ==, GP_OK);
    GP_CHECK_INT(gp_conn_dispense(conn, "kv", &s->kv, &st), ==, GP_OK);
}

/* The connection still works after a refusal. */
static void still_usable(session *s, gp_protocol wire)
{
    if (wire == GP_PROTO_NETRPC)
        redispense(s);
    if (!s->kv)
        return;
    gp_status st;
    size_t got = 0;
    GP_CHECK_INT(get(s, 1000, &st, &got), ==, GP_OK);
    GP_CHECK_INT(got, ==, 1000);
}

static void expect_words(gp_protocol wire, const gp_status *st, const char *grpc_words,
                         const char *netrpc_words)
{
    if (wire == GP_PROTO_GRPC) {
        GP_CHECK_CONTAINS(st->msg, "RESOURCE_EXHAUSTED");
        GP_CHECK_CONTAINS(st->msg, grpc_words);
    } else {
        GP_CHECK_CONTAINS(st->msg, netrpc_words);
    }
}

/* The plugin refusing a request: on gRPC it resets the stream while the
 * request is still on its way, so its reset may come before its status;
 * the host then names the reset (GP_EMSGSIZE either way). */
static void expect_refusal(gp_protocol wire, const gp_status *st, const char *grpc_words,
                           const char *netrpc_words)
{
    if (wire == GP_PROTO_GRPC && strstr(st->msg, "reset the stream")) {
        GP_CHECK_INT(st->err, ==, GP_EMSGSIZE);
        GP_CHECK_CONTAINS(st->msg, "RESOURCE_EXHAUSTED");
        return;
    }
    expect_words(wire, st, grpc_words, netrpc_words);
}

/* Peak RSS growth allowed while a HUGE message is refused (see the top). */
static long rss_bound_kb(gp_protocol wire)
{
    return wire == GP_PROTO_GRPC ? (long)(HUGE >> 10) + GRPC_SLACK_KB : SLACK_KB;
}

/* Host -> plugin: the plugin's cap refuses a request over it. */
static void plugin_refuses(gp_protocol wire)
{
    session s;
    if (open_session(&s, wire, 0, CAP))
        return;
    gp_status st;
    GP_CHECK_INT(put(&s, CAP - 4096, &st), ==, GP_OK); /* under the cap: fine */
    GP_CHECK_INT(put(&s, OVER, &st), ==, wire == GP_PROTO_GRPC ? GP_EMSGSIZE : GP_EREMOTE);
    expect_refusal(wire, &st, "Received message larger than max (2097",
                   "exceeds the limit of 1048576");
    still_usable(&s, wire);
    /* 32 MiB at a 1 MiB cap: the plugin's peak RSS. */
    long before = status_kb(s.pid, "VmRSS");
    GP_CHECK_INT(put(&s, HUGE, &st), !=, GP_OK);
    expect_refusal(wire, &st, "Received message larger than max", "exceeds the limit of 1048576");
    long peak = status_kb(s.pid, "VmHWM");
    GP_CHECK(before > 0 && peak > 0);
    GP_CHECK_INT(peak - before, <, rss_bound_kb(wire));
    printf("  %s: peak RSS +%ld kB refusing 32 MiB (bound %ld kB)\n", gp_protocol_name(wire),
           peak - before, rss_bound_kb(wire));
    still_usable(&s, wire);
    close_session(&s);
}

/* Plugin -> host: the host's cap refuses a reply over it. */
static void host_refuses(gp_protocol wire)
{
    session s;
    if (open_session(&s, wire, CAP, 0))
        return;
    gp_status st;
    size_t got = 0;
    GP_CHECK_INT(get(&s, CAP - 4096, &st, &got), ==, GP_OK);
    GP_CHECK_INT(got, ==, CAP - 4096);
    GP_CHECK_INT(get(&s, OVER, &st, &got), ==, GP_EMSGSIZE);
    expect_words(wire, &st, "Received message larger than max (2097",
                 "exceeds the limit of 1048576");
    still_usable(&s, wire);
    /* Our own peak RSS, from here. */
    long before = status_kb(getpid(), "VmRSS");
    reset_peak();
    GP_CHECK_INT(get(&s, HUGE, &st, &got), ==, GP_EMSGSIZE);
    long peak = status_kb(getpid(), "VmHWM");
    GP_CHECK(before > 0 && peak > 0);
    GP_CHECK_INT(peak - before, <, rss_bound_kb(wire));
    printf("  %s: peak RSS +%ld kB refusing 32 MiB (bound %ld kB)\n", gp_protocol_name(wire),
           peak - before, rss_bound_kb(wire));
    still_usable(&s, wire);
    close_session(&s);
}

/* The host's own cap also stops what it would send: nothing goes out. */
static void host_will_not_send(gp_protocol wire)
{
    session s;
    if (open_session(&s, wire, CAP, 0))
        return;
    gp_status st;
    GP_CHECK_INT(put(&s, OVER, &st), !=, GP_OK);
    expect_words(wire, &st, "Sent message larger than max (2097", "limit");
    still_usable(&s, wire);
    close_session(&s);
}

GP_TEST(grpc_plugin_refuses_a_request_over_its_cap)
{
    plugin_refuses(GP_PROTO_GRPC);
}

GP_TEST(grpc_host_refuses_a_reply_over_its_cap)
{
    host_refuses(GP_PROTO_GRPC);
}

GP_TEST(grpc_host_does_not_send_over_its_cap)
{
    host_will_not_send(GP_PROTO_GRPC);
}

GP_TEST(netrpc_plugin_refuses_a_request_over_its_cap)
{
    plugin_refuses(GP_PROTO_NETRPC);
}

GP_TEST(netrpc_host_refuses_a_reply_over_its_cap)
{
    host_refuses(GP_PROTO_NETRPC);
}

GP_TEST(netrpc_host_does_not_send_over_its_cap)
{
    host_will_not_send(GP_PROTO_NETRPC);
}

GP_TEST(cap_over_int_max_is_a_config_error)
{
    gp_client_config cfg = {
        .argv = (const char *const[]){"x", NULL},
        .handshake = {.protocol_version = 1, .magic_cookie_key = "K", .magic_cookie_value = "V"},
        .max_message_bytes = (size_t)1 << 31,
    };
    gp_client *c = NULL;
    gp_status st;
    GP_CHECK_INT(gp_client_new(&cfg, &c, &st), ==, GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "max_message_bytes");
    gp_client_free(c);
}

/* The plugin: argv[1] is the wire, argv[2] its message cap. */
GP_HELPER(plugin)
{
    return argc < 3 ? 2 : plugin_main(argv[1], argv[2]);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(grpc_plugin_refuses_a_request_over_its_cap);
    GP_RUN(grpc_host_refuses_a_reply_over_its_cap);
    GP_RUN(grpc_host_does_not_send_over_its_cap);
    GP_RUN(netrpc_plugin_refuses_a_request_over_its_cap);
    GP_RUN(netrpc_host_refuses_a_reply_over_its_cap);
    GP_RUN(netrpc_host_does_not_send_over_its_cap);
    GP_RUN(cap_over_int_max_is_a_config_error);
    return gp_test_done();
}
