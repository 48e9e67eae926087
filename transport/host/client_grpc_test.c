/* gp_client against a real gRPC plugin: this binary re-executed (helper
 * "test-grpc") as a gp_serve plugin with one empty service (so: health, controller, broker).
 * Checks connect + health check, the graceful kill (no grace period wait),
 * reattach to the live plugin, and that sessions leak no descriptors. */
#include <goplugin/client.h>
#include <goplugin/server.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"

#define COOKIE_KEY "GP_CLIENT_GRPC_TEST"
#define COOKIE_VALUE "7f3a"

/* go-plugin's "test-grpc": a plugin served over gRPC. */
GP_HELPER(test_grpc)
{
    static const gp_service noop = {.name = "noop"};
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = &noop,
        .nservices = 1,
    };
    return gp_serve(&cfg);
}

static gp_client_config config(void)
{
    static const char *argv[4];
    argv[0] = gp_test_self_exe();
    argv[1] = GP_TEST_HELPER_FLAG;
    argv[2] = "test-grpc";
    argv[3] = NULL;
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC,
        .start_timeout_ms = 5000,
        .kill_grace_ms = (int)(3000 * gp_test_scale()),
    };
    return cfg;
}

static void session(void)
{
    gp_client_config cfg = config();
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_conn *conn = NULL;
    gp_status st;
    gp_err rc = gp_client_connect(c, &conn, &st);
    if (rc)
        GP_FAILF("connect: %s: %s", gp_strerror(rc), st.msg);
    GP_CHECK(conn != NULL);
    gp_conn *again = NULL;
    GP_CHECK_ERR(gp_client_connect(c, &again, NULL), GP_OK);
    GP_CHECK(again == conn);
    GP_CHECK_STR(gp_conn_protocol(conn), "grpc");
    GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
    pid_t pid = gp_client_pid(c);
    gp_reattach_config ra;
    GP_CHECK_ERR(gp_client_reattach_config(c, &ra), GP_OK);
    char sock[256];
    snprintf(sock, sizeof sock, "%s", ra.address);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gp_client_kill(c);
    long ms = gp_test_ms_since(&t0);
    /* GRPCController.Shutdown worked: well under the 3 s grace period
     * (both scaled: a sanitizer's leak check runs at the plugin's exit). */
    GP_CHECK(ms < 1500 * gp_test_scale());
    GP_CHECK(gp_client_exited(c));
    GP_CHECK_INT(kill(pid, 0), ==, -1);
    struct stat sb;
    GP_CHECK_INT(lstat(sock, &sb), ==, -1);
    gp_client_free(c);
}

GP_TEST(connect_ping_graceful_kill)
{
    /* The first session also initialises gRPC, whose process-wide poller
     * keeps a couple of descriptors: count from after it. */
    session();
    int fds = gp_test_count_fds();
    session();
    session();
    GP_CHECK_FDS_AT_MOST(fds);
}

GP_TEST(reattach_to_a_live_plugin)
{
    session(); /* as above: gRPC's process-wide descriptors first */
    int fds = gp_test_count_fds();
    gp_client_config cfg = config();
    gp_client *first;
    GP_CHECK_ERR(gp_client_new(&cfg, &first, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(first, NULL), GP_OK);
    gp_reattach_config ra;
    GP_CHECK_ERR(gp_client_reattach_config(first, &ra), GP_OK);
    gp_client_config rcfg = {.reattach = &ra,
                             .allowed_protocols = GP_PROTO_GRPC,
                             .kill_grace_ms = (int)(3000 * gp_test_scale())};
    gp_client *second;
    GP_CHECK_ERR(gp_client_new(&rcfg, &second, NULL), GP_OK);
    gp_conn *conn = NULL;
    gp_status st;
    gp_err rc = gp_client_connect(second, &conn, &st);
    if (rc)
        GP_FAILF("reattach connect: %s: %s", gp_strerror(rc), st.msg);
    GP_CHECK(conn && gp_conn_ping(conn, &st) == GP_OK);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gp_client_kill(second); /* Shutdown over its own connection */
    GP_CHECK(gp_test_ms_since(&t0) < 1500 * gp_test_scale());
    GP_CHECK(gp_client_exited(second));
    /* The first client (its parent) reaps it. */
    GP_CHECK(gp_client_exited(first) || (usleep(200000), gp_client_exited(first)));
    gp_client_free(second);
    gp_client_free(first);
    /* gRPC core closes released sockets on its own threads, some of them
     * the first session's, after the count above (seen in CI: 8 then 5):
     * wait for closes in flight; a leaked fd never closes and still fails. */
    GP_CHECK_FDS_AT_MOST(fds);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(connect_ping_graceful_kill);
    GP_RUN(reattach_to_a_live_plugin);
    return gp_test_done();
}
