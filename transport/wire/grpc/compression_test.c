/* Compressed messages from a peer. Our client and server never compress
 * (GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION = 0 in both channel-args blocks:
 * one filter fewer per call, docs/grpc.md "Measured"), but a peer may
 * (grpc-go's UseCompressor, grpcio's compression=), so core's decompress
 * filter must stay in both stacks. The peer here is gRPC core itself, used
 * raw, with gzip as its channel default: a raw client sends gzipped
 * requests to our server, and a raw server sends a gzipped reply to our
 * client. Large, compressible values, so core really compresses them. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include <goplugin/conn.h>

#include "transport/core/conn.h"
#include "transport/testing/gp_test.h"
#include "transport/testing/proto/kv.pb.h"
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/grpc.h"

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "ignore_noninstrumented_modules=1";
}

#define VALUE_LEN (64 * 1024)

static const gp_method kv_get_m = {.grpc_path = "/proto.KV/Get",
                                   .req_pb = proto_GetRequest_fields,
                                   .resp_pb = proto_GetResponse_fields};
static const gp_method kv_put_m = {
    .grpc_path = "/proto.KV/Put", .req_pb = proto_PutRequest_fields, .resp_pb = proto_Empty_fields};

static void fill(uint8_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (uint8_t)('a' + (i / 1000) % 26); /* compresses well */
}

/* Our server's one-slot store. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static gp_bytes g_value;

static gp_err kv_get(void *impl, const void *reqp, void *respp, gp_status *st)
{
    (void)impl;
    (void)reqp;
    (void)st;
    proto_GetResponse *resp = respp;
    pthread_mutex_lock(&g_mu);
    if (g_value.len) {
        resp->value.data = malloc(g_value.len);
        memcpy(resp->value.data, g_value.data, g_value.len);
        resp->value.len = g_value.len;
    }
    pthread_mutex_unlock(&g_mu);
    return GP_OK;
}

static gp_err kv_put(void *impl, const void *reqp, void *respp, gp_status *st)
{
    (void)impl;
    (void)respp;
    (void)st;
    const proto_PutRequest *req = reqp;
    uint8_t *copy = malloc(req->value.len ? req->value.len : 1);
    memcpy(copy, req->value.data, req->value.len);
    pthread_mutex_lock(&g_mu);
    free(g_value.data);
    g_value.data = copy;
    g_value.len = req->value.len;
    pthread_mutex_unlock(&g_mu);
    return GP_OK;
}

static const gp_service_method kv_methods[] = {{&kv_get_m, kv_get}, {&kv_put_m, kv_put}};
static const gp_service kv_service = {.name = "kv", .methods = kv_methods, .nmethods = 2};

static grpc_channel_args gzip_args(grpc_arg *a)
{
    *a = (grpc_arg){.type = GRPC_ARG_INTEGER,
                    .key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM,
                    .value.integer = GRPC_COMPRESS_GZIP};
    return (grpc_channel_args){.num_args = 1, .args = a};
}

static gpr_timespec in_10s(void)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(10, GPR_TIMESPAN));
}

/* One unary call on a raw core channel: the status, *resp the reply (may be
 * NULL when the call failed; destroy it). */
static grpc_status_code raw_unary(grpc_channel *ch, const char *method, grpc_byte_buffer *req,
                                  grpc_byte_buffer **resp, char *details, size_t dlen)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice path = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(ch, NULL, 0, cq, path, NULL, in_10s(), NULL);
    grpc_metadata_array md, trailing;
    grpc_metadata_array_init(&md);
    grpc_metadata_array_init(&trailing);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice det = grpc_empty_slice();
    *resp = NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &det;
    int tag;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
        GP_FAILF("start_batch %s", method);
    } else {
        grpc_event ev = grpc_completion_queue_pluck(cq, &tag, in_10s(), NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success)
            GP_FAILF("%s: no completion (type %d)", method, (int)ev.type);
    }
    snprintf(details, dlen, "%.*s", (int)GRPC_SLICE_LENGTH(det),
             (const char *)GRPC_SLICE_START_PTR(det));
    grpc_slice_unref(det);
    grpc_metadata_array_destroy(&md);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return code;
}

static void tmp_socket(char *dir, size_t dn, char *path, size_t pn)
{
    snprintf(dir, dn, "/tmp/gpgzipXXXXXX");
    if (!mkdtemp(dir))
        GP_FAILF("mkdtemp: %s", strerror(errno));
    snprintf(path, pn, "%s/s.sock", dir);
}

GP_TEST(gzipped_requests_reach_our_server)
{
    char dir[64], path[100], addr[120], err[256] = "", details[256] = "";
    tmp_socket(dir, sizeof dir, path, sizeof path);
    snprintf(addr, sizeof addr, "unix:%s", path);
    gp__grpc_server_opts so = {.services = &kv_service, .nservices = 1, .workers = 2};
    gp__grpc_server *srv = NULL;
    GP_CHECK_ERR(gp__grpc_server_new(&so, &srv, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__grpc_server_listen(srv, addr, NULL, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__grpc_server_start(srv, err, sizeof err), GP_OK);

    gp__grpc_core_ref(NULL);
    grpc_arg a;
    grpc_channel_args args = gzip_args(&a);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(addr, creds, &args);
    grpc_channel_credentials_release(creds);

    uint8_t *v = malloc(VALUE_LEN);
    fill(v, VALUE_LEN);
    proto_PutRequest put = {.key = "k", .value = {.data = v, .len = VALUE_LEN}};
    grpc_byte_buffer *req = NULL, *resp = NULL;
    GP_CHECK_ERR(
        gp__grpc_encode(proto_PutRequest_fields, &put, &req, "PutRequest", err, sizeof err), GP_OK);
    GP_CHECK_INT(raw_unary(ch, "/proto.KV/Put", req, &resp, details, sizeof details), ==,
                 GRPC_STATUS_OK);
    grpc_byte_buffer_destroy(req);
    if (resp)
        grpc_byte_buffer_destroy(resp);
    pthread_mutex_lock(&g_mu);
    GP_CHECK_INT(g_value.len, ==, VALUE_LEN);
    GP_CHECK(g_value.len == VALUE_LEN && memcmp(g_value.data, v, VALUE_LEN) == 0);
    pthread_mutex_unlock(&g_mu);

    /* The reply comes back uncompressed; the raw client takes either. */
    proto_GetRequest get = {.key = "k"};
    GP_CHECK_ERR(
        gp__grpc_encode(proto_GetRequest_fields, &get, &req, "GetRequest", err, sizeof err), GP_OK);
    GP_CHECK_INT(raw_unary(ch, "/proto.KV/Get", req, &resp, details, sizeof details), ==,
                 GRPC_STATUS_OK);
    grpc_byte_buffer_destroy(req);
    proto_GetResponse got;
    memset(&got, 0, sizeof got);
    GP_CHECK_ERR(
        gp__grpc_decode(resp, proto_GetResponse_fields, &got, "GetResponse", err, sizeof err),
        GP_OK);
    GP_CHECK(got.value.len == VALUE_LEN && memcmp(got.value.data, v, VALUE_LEN) == 0);
    gp_msg_release(proto_GetResponse_fields, &got);
    if (resp)
        grpc_byte_buffer_destroy(resp);

    grpc_channel_destroy(ch);
    gp__grpc_core_unref(NULL);
    gp__grpc_server_free(srv);
    pthread_mutex_lock(&g_mu);
    free(g_value.data);
    g_value = (gp_bytes){0};
    pthread_mutex_unlock(&g_mu);
    free(v);
    unlink(path);
    rmdir(dir);
}

/* A raw core server answering a Get with a gzipped VALUE_LEN value. */
typedef struct raw_server {
    grpc_server *srv;
    grpc_completion_queue *cq;
    const uint8_t *value;
    int served; /* calls answered with a message */
} raw_server;

/* One call's batch, waited for (calls are taken one at a time). */
static int raw_batch(raw_server *rs, grpc_call *call, const grpc_op *ops, size_t n)
{
    int tag;
    if (grpc_call_start_batch(call, ops, n, &tag, NULL) != GRPC_CALL_OK)
        return 0;
    grpc_event ev = grpc_completion_queue_next(rs->cq, in_10s(), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.tag == &tag && ev.success;
}

/* Takes calls until a Get has been answered; anything else (our client's
 * broker and stdio streams) gets UNIMPLEMENTED. */
static void *raw_serve(void *arg)
{
    raw_server *rs = arg;
    while (!rs->served) {
        grpc_call *call = NULL;
        grpc_call_details cd;
        grpc_metadata_array md;
        grpc_call_details_init(&cd);
        grpc_metadata_array_init(&md);
        int t_new;
        if (grpc_server_request_call(rs->srv, &call, &cd, &md, rs->cq, rs->cq, &t_new) !=
            GRPC_CALL_OK) {
            GP_FAILF("request_call");
            return NULL;
        }
        grpc_event ev = grpc_completion_queue_next(rs->cq, in_10s(), NULL);
        if (ev.type != GRPC_OP_COMPLETE || ev.tag != &t_new || !ev.success) {
            GP_FAILF("raw server: no call arrived");
            return NULL;
        }
        int is_get = grpc_slice_str_cmp(cd.method, "/proto.KV/Get") == 0;
        grpc_byte_buffer *req = NULL, *out = NULL;
        int cancelled = 0;
        grpc_op ops[4];
        memset(ops, 0, sizeof ops);
        size_t n = 0;
        if (is_get) {
            ops[0].op = GRPC_OP_RECV_MESSAGE;
            ops[0].data.recv_message.recv_message = &req;
            if (!raw_batch(rs, call, ops, 1))
                GP_FAILF("raw server: Get without a request");
            if (req)
                grpc_byte_buffer_destroy(req);
            char err[256] = "";
            proto_GetResponse resp = {.value = {.data = (uint8_t *)rs->value, .len = VALUE_LEN}};
            if (gp__grpc_encode(proto_GetResponse_fields, &resp, &out, "GetResponse", err,
                                sizeof err) != GP_OK)
                GP_FAILF("encode: %s", err);
        }
        memset(ops, 0, sizeof ops);
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        if (out) {
            ops[n].op = GRPC_OP_SEND_MESSAGE;
            ops[n++].data.send_message.send_message = out;
        }
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n++].data.send_status_from_server.status =
            is_get ? GRPC_STATUS_OK : GRPC_STATUS_UNIMPLEMENTED;
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &cancelled;
        if (raw_batch(rs, call, ops, n) && is_get)
            rs->served++;
        if (out)
            grpc_byte_buffer_destroy(out);
        grpc_call_unref(call);
        grpc_call_details_destroy(&cd);
        grpc_metadata_array_destroy(&md);
    }
    return NULL;
}

static int dial_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        GP_FAILF("connect %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

GP_TEST(gzipped_reply_reaches_our_client)
{
    char dir[64], path[100], addr[120], err[256] = "";
    tmp_socket(dir, sizeof dir, path, sizeof path);
    snprintf(addr, sizeof addr, "unix:%s", path);
    uint8_t *v = malloc(VALUE_LEN);
    fill(v, VALUE_LEN);

    gp__grpc_core_ref(NULL);
    grpc_arg a;
    grpc_channel_args args = gzip_args(&a);
    raw_server rs = {.value = v};
    rs.srv = grpc_server_create(&args, NULL);
    rs.cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(rs.srv, rs.cq, NULL);
    grpc_server_credentials *sc = grpc_insecure_server_credentials_create();
    GP_CHECK(grpc_server_add_http2_port(rs.srv, addr, sc) != 0);
    grpc_server_credentials_release(sc);
    grpc_server_start(rs.srv);
    pthread_t th;
    pthread_create(&th, NULL, raw_serve, &rs);

    int fd = dial_unix(path);
    gp_conn *conn = NULL;
    gp__grpc_client_opts co = {.call_timeout_ms = 10000, .log_name = "test"};
    if (fd >= 0)
        GP_CHECK_ERR(gp__grpc_conn_from_fd(fd, &co, &conn, err, sizeof err), GP_OK);
    gp_stub *stub = NULL;
    gp_status st;
    memset(&st, 0, sizeof st);
    if (conn)
        GP_CHECK_ERR(gp_conn_dispense(conn, "kv", &stub, &st), GP_OK);
    proto_GetRequest req = {.key = "k"};
    proto_GetResponse got;
    memset(&got, 0, sizeof got);
    if (stub) {
        GP_CHECK_ERR(gp_invoke(stub, &kv_get_m, &req, &got, &st), GP_OK);
    }
    GP_CHECK_INT(got.value.len, ==, VALUE_LEN);
    GP_CHECK(got.value.len == VALUE_LEN && memcmp(got.value.data, v, VALUE_LEN) == 0);
    gp_msg_release(proto_GetResponse_fields, &got);
    pthread_join(th, NULL);
    GP_CHECK_INT(rs.served, ==, 1);

    gp_stub_free(stub);
    if (conn)
        gp__conn_close(conn);
    int t_down;
    grpc_server_shutdown_and_notify(rs.srv, rs.cq, &t_down);
    grpc_server_cancel_all_calls(rs.srv);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(rs.cq, in_10s(), NULL);
        if (ev.type != GRPC_OP_COMPLETE || ev.tag == &t_down)
            break;
    }
    grpc_server_destroy(rs.srv);
    grpc_completion_queue_shutdown(rs.cq);
    while (grpc_completion_queue_next(rs.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(rs.cq);
    gp__grpc_core_unref(NULL);
    free(v);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(gzipped_requests_reach_our_server);
    GP_RUN(gzipped_reply_reaches_our_client);
    return gp_test_done();
}
