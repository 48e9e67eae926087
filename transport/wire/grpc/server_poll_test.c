/* The server's polling (server.c, docs/grpc.md): one worker polls and runs
 * handlers on its own thread; a standby polls only while a handler has
 * run for a while. So a slow handler must not hold up other calls: with
 * the default two workers, calls keep being answered while one handler
 * blocks, and the slow call still finishes once released. A server with
 * one worker is the contrast: the same fast call waits for the slow one. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <goplugin/conn.h>
#include <goplugin/server.h>

#include "transport/testing/proto/kv.pb.h"
#include "transport/core/conn.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/testing/gp_test.h"

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "ignore_noninstrumented_modules=1";
}

static const gp_method get_m = {.grpc_path = "/proto.KV/Get",
                                .req_pb = proto_GetRequest_fields,
                                .resp_pb = proto_GetResponse_fields};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int released;
static atomic_int slow_in;

/* "slow" blocks until released (at most 10 s); anything else answers. */
static gp_err get(void *impl, const void *reqp, void *respp, gp_status *st)
{
    (void)impl;
    (void)respp;
    (void)st;
    const proto_GetRequest *req = reqp;
    if (req->key && strcmp(req->key, "slow") == 0) {
        atomic_fetch_add(&slow_in, 1);
        long long until = gp_test_now_ms() + 10000;
        pthread_mutex_lock(&mu);
        while (!released && gp_test_now_ms() < until) {
            pthread_mutex_unlock(&mu);
            usleep(2000);
            pthread_mutex_lock(&mu);
        }
        pthread_mutex_unlock(&mu);
    }
    return GP_OK;
}

static const gp_service_method methods[] = {{&get_m, get}};
static const gp_service svc = {.name = "kv", .methods = methods, .nmethods = 1};

typedef struct fx {
    gp__grpc_server *srv;
    gp_conn *conn;
    gp_stub *stub;
    char dir[64], path[100];
} fx;

static int up(fx *f, int workers)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gppollXXXXXX");
    if (!mkdtemp(f->dir)) {
        GP_FAILF("mkdtemp: %s", strerror(errno));
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/s.sock", f->dir);
    char err[256] = "", addr[160];
    snprintf(addr, sizeof addr, "unix:%s", f->path);
    gp__grpc_server_opts so = {.services = &svc, .nservices = 1, .workers = workers};
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
    gp__grpc_client_opts co = {.call_timeout_ms = 20000, .log_name = "test"};
    gp_status st;
    if (gp__grpc_conn_from_fd(fd, &co, &f->conn, err, sizeof err) != GP_OK) {
        GP_FAILF("conn: %s", err);
        return -1;
    }
    if (gp_conn_dispense(f->conn, "kv", &f->stub, &st) != GP_OK) {
        GP_FAILF("dispense: %s", st.msg);
        return -1;
    }
    return 0;
}

static void down(fx *f)
{
    if (f->stub)
        gp_stub_free(f->stub);
    if (f->conn)
        gp__conn_close(f->conn);
    gp__grpc_server_free(f->srv);
    unlink(f->path);
    rmdir(f->dir);
}

static gp_err call(gp_stub *stub, const char *key, gp_status *st)
{
    proto_GetRequest req = {.key = (char *)key};
    proto_GetResponse resp;
    memset(&resp, 0, sizeof resp);
    gp_err e = gp_invoke(stub, &get_m, &req, &resp, st);
    if (e == GP_OK)
        gp_msg_release(proto_GetResponse_fields, &resp);
    return e;
}

static void *slow_call(void *arg)
{
    gp_status st;
    if (call(arg, "slow", &st) != GP_OK)
        GP_FAILF("slow call: %s", st.msg);
    return NULL;
}

/* Starts "slow", waits until its handler runs, then times `fast` calls
 * made while it blocks; releases it. The time of the first fast call. */
static long long fast_beside_slow(fx *f, int fast)
{
    atomic_store(&slow_in, 0);
    pthread_mutex_lock(&mu);
    released = 0;
    pthread_mutex_unlock(&mu);
    pthread_t th;
    pthread_create(&th, NULL, slow_call, f->stub);
    for (int i = 0; i < 1000 && atomic_load(&slow_in) == 0; i++)
        usleep(2000);
    GP_CHECK_INT(atomic_load(&slow_in), ==, 1);
    gp_status st;
    long long t0 = gp_test_now_ms(), first = -1;
    for (int i = 0; i < fast; i++) {
        GP_CHECK_ERR(call(f->stub, "fast", &st), GP_OK);
        if (first < 0)
            first = gp_test_now_ms() - t0;
    }
    pthread_mutex_lock(&mu);
    released = 1;
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    return first;
}

GP_TEST(slow_handler_does_not_hold_up_other_calls)
{
    fx f;
    if (up(&f, 0) == 0) { /* the default: two workers */
        gp_status st;
        GP_CHECK_ERR(call(f.stub, "warm", &st), GP_OK);
        /* 200 calls answered while the slow handler blocks. */
        long long first = fast_beside_slow(&f, 200);
        fprintf(stderr, "first call beside a blocked handler: %lld ms\n", first);
        GP_CHECK_INT(first, <, (long long)(1000 * gp_test_scale()));
        /* Again after a quiet spell (the standby asleep, woken by the
         * handler's start). */
        usleep(400 * 1000);
        first = fast_beside_slow(&f, 1);
        GP_CHECK_INT(first, <, (long long)(1000 * gp_test_scale()));
    }
    down(&f);
}

/* The contrast that shows the check above can fail: one worker, so the
 * fast call waits until the slow handler is released (~3 s here). */
static void *release_later(void *arg)
{
    (void)arg;
    usleep(3000 * 1000);
    pthread_mutex_lock(&mu);
    released = 1;
    pthread_mutex_unlock(&mu);
    return NULL;
}

GP_TEST(one_worker_serialises_calls)
{
    fx f;
    if (up(&f, 1) == 0) {
        atomic_store(&slow_in, 0);
        pthread_mutex_lock(&mu);
        released = 0;
        pthread_mutex_unlock(&mu);
        pthread_t th, rel;
        pthread_create(&th, NULL, slow_call, f.stub);
        for (int i = 0; i < 1000 && atomic_load(&slow_in) == 0; i++)
            usleep(2000);
        pthread_create(&rel, NULL, release_later, NULL);
        gp_status st;
        long long t0 = gp_test_now_ms();
        GP_CHECK_ERR(call(f.stub, "fast", &st), GP_OK);
        GP_CHECK_INT(gp_test_now_ms() - t0, >=, 2000);
        pthread_join(rel, NULL);
        pthread_join(th, NULL);
    }
    down(&f);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(slow_handler_does_not_hold_up_other_calls);
    GP_RUN(one_worker_serialises_calls);
    return gp_test_done();
}
