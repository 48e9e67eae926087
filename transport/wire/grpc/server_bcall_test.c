/* Broker streams (plugin.GRPCBroker/StartStream) that a host opens and
 * ends at once, many times over, then the server freed: the server keeps
 * its ConnInfo stream's call in a ref of its own (server.c, start_stream),
 * and a stream that ended on another worker before that ref was taken left
 * a freed call behind that the free unref'd again (go-plugin hosts aborted
 * "pure virtual method called" in gp__grpc_server_free about 1 run in 150
 * under load). A race: this stresses it (ASan reports the use after free
 * when it hits) and checks the server still answers and frees cleanly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <goplugin/conn.h>

#include "transport/core/conn.h"
#include "transport/testing/gp_test.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/wire/grpc/proto/grpc_broker.pb.h"

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "ignore_noninstrumented_modules=1";
}

static const gp_method start_stream_m = {.grpc_path = "/plugin.GRPCBroker/StartStream",
                                         .req_pb = plugin_ConnInfo_fields,
                                         .resp_pb = plugin_ConnInfo_fields,
                                         .kind = GP_BIDI_STREAM};

static int dial(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        GP_FAILF("socket path %s is too long", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        GP_FAILF("connect %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

GP_TEST(broker_streams_ended_at_once)
{
    char dir[] = "/tmp/gpbcallXXXXXX";
    if (!mkdtemp(dir)) {
        GP_FAILF("mkdtemp: %s", strerror(errno));
        return;
    }
    char path[64], addr[80], err[256] = "";
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(addr, sizeof addr, "unix:%s", path);
    gp__grpc_server_opts so = {.workers = 2}; /* its own broker: no .broker */
    gp__grpc_server *srv = NULL;
    GP_CHECK_ERR(gp__grpc_server_new(&so, &srv, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__grpc_server_listen(srv, addr, NULL, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__grpc_server_start(srv, err, sizeof err), GP_OK);
    int fd = dial(path);
    gp_conn *conn = NULL;
    gp__grpc_client_opts co = {.call_timeout_ms = 10000, .log_name = "test"};
    if (fd >= 0)
        GP_CHECK_ERR(gp__grpc_conn_from_fd(fd, &co, &conn, err, sizeof err), GP_OK);
    gp_stub *stub = NULL;
    gp_status st = {0};
    if (conn)
        GP_CHECK_ERR(conn->ops->dispense(conn, "", &stub, &st), GP_OK);
    int opened = 0;
    for (int i = 0; stub && i < 300; i++) {
        gp_call *call = NULL;
        if (gp_call_open(stub, &start_stream_m, &call, &st) != GP_OK) {
            GP_FAILF("open StartStream %d: %s", i, st.msg);
            break;
        }
        opened++;
        /* Half the time the host half-closes (the server then ends the
         * stream with OK), half the time it cancels; a varying pause puts
         * the end anywhere around the server's start of the stream. */
        if (i % 2)
            (void)gp_call_close_send(call, &st);
        usleep((useconds_t)(i % 7) * 50);
        gp_call_cancel(call);
        gp_call_free(call);
    }
    GP_CHECK_INT(opened, ==, 300);
    if (conn) /* the server still serves */
        GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
    gp_stub_free(stub);
    if (conn)
        gp__conn_close(conn);
    gp__grpc_server_free(srv); /* where the second unref of a freed call was */
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(broker_streams_ended_at_once);
    return gp_test_done();
}
