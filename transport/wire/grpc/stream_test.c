/* Streaming calls on the gRPC wire in one process: our server on a unix
 * socket, our client over a socket we dial, real gRPC core both sides, the
 * KV messages as the stream's items. Bidi echo, a message that does not
 * decode as the declared type, a connection closed under an open stream,
 * and a server freed while a handler waits. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <goplugin/conn.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <goplugin/server.h>

#include "transport/wire/grpc/proto/health.pb.h"
#include "transport/testing/proto/kv.pb.h"
#include "transport/core/conn.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/testing/gp_test.h"

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "ignore_noninstrumented_modules=1";
}

/* Echo: each GetRequest{key} comes back as GetResponse{value = key}. */
static const gp_method echo_m = {.grpc_path = "/test.S/Echo",
                                 .req_pb = proto_GetRequest_fields,
                                 .resp_pb = proto_GetResponse_fields,
                                 .kind = GP_BIDI_STREAM};
/* The same path, sending a message whose field 1 has another wire type
 * (an enum varint where the server expects a string). */
static const gp_method echo_wrong_m = {.grpc_path = "/test.S/Echo",
                                       .req_pb = grpc_health_v1_HealthCheckResponse_fields,
                                       .resp_pb = proto_GetResponse_fields,
                                       .kind = GP_BIDI_STREAM};
/* Hold: waits in recv until the call ends. */
static const gp_method hold_m = {.grpc_path = "/test.S/Hold",
                                 .req_pb = proto_GetRequest_fields,
                                 .resp_pb = proto_GetResponse_fields,
                                 .kind = GP_CLIENT_STREAM};

/* Tsd: hold, with a thread-local value whose destructor is slow (as
 * OpenSSL's per-thread cleanup after a TLS write on that thread). */
static const gp_method tsd_m = {.grpc_path = "/test.S/Tsd",
                                .req_pb = proto_GetRequest_fields,
                                .resp_pb = proto_GetResponse_fields,
                                .kind = GP_CLIENT_STREAM};

static atomic_int handlers_done;
static atomic_int hold_entered;

static gp_err echo(void *impl, gp_call *call, gp_status *st)
{
    (void)impl;
    gp_err e;
    for (;;) {
        proto_GetRequest in;
        memset(&in, 0, sizeof in);
        if ((e = gp_call_recv(call, &in, st)) != GP_OK)
            break;
        size_t n = in.key ? strlen(in.key) : 0;
        proto_GetResponse out = {.value = {.data = (uint8_t *)in.key, .len = n}};
        e = gp_call_send(call, &out, st);
        gp_msg_release(proto_GetRequest_fields, &in);
        if (e != GP_OK)
            break;
    }
    atomic_fetch_add(&handlers_done, 1);
    return e == GP_EOF ? GP_OK : e;
}

static gp_err hold(void *impl, gp_call *call, gp_status *st)
{
    (void)impl;
    atomic_fetch_add(&hold_entered, 1);
    proto_GetRequest in;
    memset(&in, 0, sizeof in);
    gp_err e;
    while ((e = gp_call_recv(call, &in, st)) == GP_OK)
        gp_msg_release(proto_GetRequest_fields, &in);
    atomic_fetch_add(&handlers_done, 1);
    return e;
}

static pthread_key_t tsd_key;
static atomic_int tsd_destroyed;

static void tsd_destructor(void *v)
{
    (void)v;
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_fetch_add(&tsd_destroyed, 1);
}

static gp_err tsd_hold(void *impl, gp_call *call, gp_status *st)
{
    pthread_setspecific(tsd_key, &tsd_key);
    return hold(impl, call, st);
}

/* Late: a streaming handler that takes its time to return once its call
 * ended; Block: a unary handler that holds its worker until released. */
static const gp_method late_m = {.grpc_path = "/test.S/Late",
                                 .req_pb = proto_GetRequest_fields,
                                 .resp_pb = proto_GetResponse_fields,
                                 .kind = GP_CLIENT_STREAM};
static const gp_method block_m = {.grpc_path = "/test.S/Block",
                                  .req_pb = proto_GetRequest_fields,
                                  .resp_pb = proto_GetResponse_fields};
static atomic_int late_started, late_returned, block_entered, block_release;

static gp_err late(void *impl, gp_call *call, gp_status *st)
{
    atomic_fetch_add(&late_started, 1);
    gp_err e = hold(impl, call, st);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_fetch_add(&late_returned, 1);
    return e;
}

static gp_err block(void *impl, const void *req, void *resp, gp_status *st)
{
    (void)impl, (void)req, (void)resp, (void)st;
    atomic_fetch_add(&block_entered, 1);
    while (!atomic_load(&block_release)) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return GP_OK;
}

static const gp_service_stream streams[] = {
    {&echo_m, echo}, {&hold_m, hold}, {&tsd_m, tsd_hold}, {&late_m, late}};
static const gp_service_method methods[] = {{&block_m, block}};
static const gp_service svc = {
    .name = "s", .methods = methods, .nmethods = 1, .streams = streams, .nstreams = 4};
static int g_workers = 2; /* for the next up() */

typedef struct fx {
    gp__grpc_server *srv;
    gp_conn *conn;
    gp_stub *stub;
    char dir[64], path[100];
} fx;

static int up(fx *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gpstreamXXXXXX");
    if (!mkdtemp(f->dir)) {
        GP_FAILF("mkdtemp: %s", strerror(errno));
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/s.sock", f->dir);
    char err[256] = "", addr[160];
    snprintf(addr, sizeof addr, "unix:%s", f->path);
    gp__grpc_server_opts so = {.services = &svc, .nservices = 1, .workers = g_workers};
    if (gp__grpc_server_new(&so, &f->srv, err, sizeof err) != GP_OK ||
        gp__grpc_server_listen(f->srv, addr, NULL, err, sizeof err) != GP_OK ||
        gp__grpc_server_start(f->srv, err, sizeof err) != GP_OK) {
        GP_FAILF("server: %s", err);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        GP_FAILF("connect: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    gp__grpc_client_opts co = {.call_timeout_ms = 10000, .log_name = "test"};
    if (gp__grpc_conn_from_fd(fd, &co, &f->conn, err, sizeof err) != GP_OK) {
        GP_FAILF("conn: %s", err);
        return -1;
    }
    gp_status st;
    if (gp_conn_dispense(f->conn, "s", &f->stub, &st) != GP_OK) {
        GP_FAILF("dispense: %s", st.msg);
        return -1;
    }
    return 0;
}

static void down(fx *f)
{
    gp_stub_free(f->stub);
    gp__conn_close(f->conn);
    gp__grpc_server_free(f->srv);
    unlink(f->path);
    rmdir(f->dir);
}

static void wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 500 && atomic_load(v) < want; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

GP_TEST(bidi_echo_in_process)
{
    fx f;
    if (up(&f) != 0)
        return;
    gp_status st;
    gp_call *call = NULL;
    GP_CHECK_ERR(gp_call_open(f.stub, &echo_m, &call, &st), GP_OK);
    static const char *const keys[] = {"a", "", "a longer key"};
    for (int i = 0; call && i < 3; i++) {
        proto_GetRequest q = {.key = (char *)keys[i]};
        proto_GetResponse a;
        memset(&a, 0, sizeof a);
        GP_CHECK_ERR(gp_call_send(call, &q, &st), GP_OK);
        GP_CHECK_ERR(gp_call_recv(call, &a, &st), GP_OK);
        GP_CHECK(a.value.len == strlen(keys[i]) &&
                 (a.value.len == 0 || memcmp(a.value.data, keys[i], a.value.len) == 0));
        gp_msg_release(proto_GetResponse_fields, &a);
    }
    GP_CHECK_ERR(gp_call_close_send(call, &st), GP_OK);
    GP_CHECK_ERR(gp_call_close_send(call, &st), GP_OK); /* idempotent */
    proto_GetResponse none;
    memset(&none, 0, sizeof none);
    GP_CHECK_ERR(gp_call_recv(call, &none, &st), GP_EOF);
    GP_CHECK_ERR(gp_call_finish(call, &st), GP_OK);
    gp_call_free(call);

    /* Argument checks, and the unary API refusing a stream. */
    GP_CHECK_ERR(gp_call_open(f.stub, NULL, &call, &st), GP_EINVAL);
    GP_CHECK_ERR(gp_call_send(NULL, &none, &st), GP_EINVAL);
    GP_CHECK_ERR(gp_invoke(f.stub, &echo_m, &none, &none, &st), GP_EUNSUPPORTED);
    down(&f);
}

GP_TEST(a_message_of_another_type_is_refused_in_words)
{
    fx f;
    if (up(&f) != 0)
        return;
    gp_status st;
    gp_call *call = NULL;
    GP_CHECK_ERR(gp_call_open(f.stub, &echo_wrong_m, &call, &st), GP_OK);
    grpc_health_v1_HealthCheckResponse wrong = {
        .status = grpc_health_v1_HealthCheckResponse_ServingStatus_SERVING};
    gp_call_send(call, &wrong, &st); /* may already see the end */
    proto_GetResponse a;
    memset(&a, 0, sizeof a);
    GP_CHECK_ERR(gp_call_recv(call, &a, &st), GP_EREMOTE);
    GP_CHECK_CONTAINS(st.msg, "/test.S/Echo request");
    gp_call_free(call);

    /* The server still serves the right type afterwards. */
    GP_CHECK_ERR(gp_call_open(f.stub, &echo_m, &call, &st), GP_OK);
    proto_GetRequest q = {.key = "fine"};
    GP_CHECK_ERR(gp_call_send(call, &q, &st), GP_OK);
    GP_CHECK_ERR(gp_call_recv(call, &a, &st), GP_OK);
    gp_msg_release(proto_GetResponse_fields, &a);
    gp_call_free(call); /* unfinished: cancelled */
    down(&f);
}

GP_TEST(closing_the_conn_cancels_open_streams)
{
    fx f;
    if (up(&f) != 0)
        return;
    int before = atomic_load(&handlers_done);
    gp_status st;
    gp_call *call = NULL;
    GP_CHECK_ERR(gp_call_open(f.stub, &echo_m, &call, &st), GP_OK);
    proto_GetRequest q = {.key = "x"};
    proto_GetResponse a;
    memset(&a, 0, sizeof a);
    GP_CHECK_ERR(gp_call_send(call, &q, &st), GP_OK);
    GP_CHECK_ERR(gp_call_recv(call, &a, &st), GP_OK);
    gp_msg_release(proto_GetResponse_fields, &a);
    gp_stub_free(f.stub);
    f.stub = NULL;
    gp__conn_close(f.conn); /* does not wait for the open call */
    f.conn = NULL;
    GP_CHECK_ERR(gp_call_recv(call, &a, &st), GP_ECLOSED);
    GP_CHECK_CONTAINS(st.msg, "closed");
    GP_CHECK_ERR(gp_call_send(call, &q, &st), GP_ECLOSED);
    gp_call_free(call); /* after its conn: still fine */
    wait_for(&handlers_done, before + 1);
    GP_CHECK_INT(atomic_load(&handlers_done), ==, before + 1);
    down(&f);
}

GP_TEST(freeing_the_server_ends_waiting_handlers)
{
    fx f;
    if (up(&f) != 0)
        return;
    int before = atomic_load(&handlers_done);
    gp_status st;
    gp_call *call = NULL;
    GP_CHECK_ERR(gp_call_open(f.stub, &hold_m, &call, &st), GP_OK);
    proto_GetRequest q = {.key = "x"};
    GP_CHECK_ERR(gp_call_send(call, &q, &st), GP_OK);
    wait_for(&hold_entered, 1);
    gp__grpc_server_free(f.srv); /* returns once the handler has */
    f.srv = NULL;
    GP_CHECK_INT(atomic_load(&handlers_done), ==, before + 1);
    /* In one process the server's socket may outlive its free for a while
     * (core closes it asynchronously), so the host side ends its call.
     * The server's own cancel ("Cancelling all calls", UNAVAILABLE) may
     * have arrived first: without core's compress filter in the client's
     * stack (client.c) it always does. */
    gp_call_cancel(call);
    GP_CHECK_ERR(gp_call_finish(call, &st), GP_ECLOSED);
    if (!strstr(st.msg, "connection to the plugin lost"))
        GP_CHECK_CONTAINS(st.msg, "the call was cancelled");
    gp_call_free(call);
    down(&f);
}

/* A plugin exits right after gp_serve frees the server: a handler thread
 * still running its thread-local destructors then raced the process's
 * atexit cleanup (OpenSSL's: a double free, SIGABRT, seen once in CI on
 * the AutoMTLS bench). The free joins the handler threads. */
GP_TEST(a_freed_server_has_joined_its_handler_threads)
{
    fx f;
    if (up(&f) != 0)
        return;
    int entered = atomic_load(&hold_entered);
    int destroyed = atomic_load(&tsd_destroyed);
    gp_status st;
    gp_call *call = NULL;
    GP_CHECK_ERR(gp_call_open(f.stub, &tsd_m, &call, &st), GP_OK);
    proto_GetRequest q = {.key = "x"};
    GP_CHECK_ERR(gp_call_send(call, &q, &st), GP_OK);
    wait_for(&hold_entered, entered + 1);
    gp__grpc_server_free(f.srv);
    f.srv = NULL;
    GP_CHECK_INT(atomic_load(&tsd_destroyed), ==, destroyed + 1);
    gp_call_cancel(call);
    gp_call_free(call);
    down(&f);
}

/* Handler threads that ended while the server runs are joined too (at the
 * next streaming call): none is left to exit behind the free. */
GP_TEST(ended_handler_threads_are_joined_while_serving)
{
    fx f;
    if (up(&f) != 0)
        return;
    int destroyed = atomic_load(&tsd_destroyed);
    gp_status st;
    for (int i = 0; i < 3; i++) {
        int entered = atomic_load(&hold_entered);
        gp_call *call = NULL;
        GP_CHECK_ERR(gp_call_open(f.stub, &tsd_m, &call, &st), GP_OK);
        proto_GetRequest q = {.key = "x"};
        GP_CHECK_ERR(gp_call_send(call, &q, &st), GP_OK);
        wait_for(&hold_entered, entered + 1);
        GP_CHECK_ERR(gp_call_close_send(call, &st), GP_OK);
        proto_GetResponse a;
        memset(&a, 0, sizeof a);
        GP_CHECK_ERR_NE(gp_call_recv(call, &a, &st), GP_OK); /* the handler's end */
        gp_call_free(call);
    }
    gp__grpc_server_free(f.srv);
    f.srv = NULL;
    GP_CHECK_INT(atomic_load(&tsd_destroyed), ==, destroyed + 3);
    down(&f);
}

static void *free_server(void *srv)
{
    gp__grpc_server_free(srv);
    return NULL;
}

typedef struct invoker {
    gp_stub *stub;
    pthread_t t;
} invoker;

static void *invoke_block(void *arg)
{
    invoker *iv = arg;
    proto_GetRequest q = {.key = "b"};
    proto_GetResponse a;
    memset(&a, 0, sizeof a);
    gp_status st;
    gp_invoke(iv->stub, &block_m, &q, &a, &st); /* its outcome does not matter */
    gp_msg_release(proto_GetResponse_fields, &a);
    return NULL;
}

/* A streaming call that core matched before the shutdown, but whose
 * request the (only, busy) worker ran after gp__grpc_server_free's first
 * wait for handlers: its handler started then, and the free returned
 * while it ran, leaving it to use the freed server. The free now waits for
 * it too. */
GP_TEST(a_handler_started_during_the_free_ends_before_it_returns)
{
    g_workers = 1;
    fx f;
    int ok = up(&f);
    g_workers = 2;
    if (ok != 0)
        return;
    atomic_store(&block_release, 0);
    int blocked = atomic_load(&block_entered), started = atomic_load(&late_started);
    int returned = atomic_load(&late_returned);
    invoker iv = {.stub = f.stub};
    GP_CHECK_INT(pthread_create(&iv.t, NULL, invoke_block, &iv), ==, 0);
    wait_for(&block_entered, blocked + 1); /* the worker is taken */
    gp_status st;
    gp_call *call = NULL;
    GP_CHECK_ERR(gp_call_open(f.stub, &late_m, &call, &st), GP_OK);
    /* Poll so that core reads the call's headers and matches it to an
     * armed request (any queue's poll runs the sockets' I/O). */
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_completion_queue_next(
        cq,
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis((int64_t)(300 * gp_test_scale()), GPR_TIMESPAN)),
        NULL);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_completion_queue_destroy(cq);
    GP_CHECK_INT(atomic_load(&late_started), ==, started); /* matched, not run */
    pthread_t freer;
    GP_CHECK_INT(pthread_create(&freer, NULL, free_server, f.srv), ==, 0);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL); /* the free is past its first wait for handlers */
    atomic_store(&block_release, 1);
    pthread_join(freer, NULL);
    f.srv = NULL;
    GP_CHECK_INT(atomic_load(&late_started), ==, started + 1);
    GP_CHECK_INT(atomic_load(&late_returned), ==, returned + 1);
    pthread_join(iv.t, NULL);
    gp_call_cancel(call);
    gp_call_free(call);
    down(&f);
}

int main(void)
{
    pthread_key_create(&tsd_key, tsd_destructor);
    GP_RUN(bidi_echo_in_process);
    GP_RUN(a_message_of_another_type_is_refused_in_words);
    GP_RUN(closing_the_conn_cancels_open_streams);
    GP_RUN(freeing_the_server_ends_waiting_handlers);
    GP_RUN(a_freed_server_has_joined_its_handler_threads);
    GP_RUN(ended_handler_threads_are_joined_while_serving);
    GP_RUN(a_handler_started_during_the_free_ends_before_it_returns);
    return gp_test_done();
}
