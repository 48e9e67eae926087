/* Detached plugins and reattach identity checks, against a real gRPC plugin
 * (this binary re-executed, helper "test-grpc", as a gp_serve plugin): a detached plugin
 * survives gp_client_free (so no parent-death signal reached it when the
 * owner thread went), its reattach config carries its start time, a
 * reattach whose start time does not match is refused without a signal,
 * and /proc/<pid>/stat parsing copes with odd command names and garbage. */
#include <goplugin/client.h>
#include <goplugin/server.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/process/pidstat.h"
#include "transport/testing/gp_test.h"

#define COOKIE_KEY "GP_CLIENT_DETACH_TEST"
#define COOKIE_VALUE "d37a"

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
        .start_timeout_ms = 10000,
        .kill_grace_ms = 3000,
        .logger = {.level = GP_LOG_OFF},
    };
    return cfg;
}

GP_TEST(pidstat_parse)
{
    uint64_t v;
    const char *ok = "42 (kv-plugin) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 3 0 "
                     "987654 1000000 200 18446744073709551615\n";
    GP_CHECK_ERR(gp__pidstat_parse_start(ok, strlen(ok), &v), GP_OK);
    GP_CHECK(v == 987654);
    /* A command name with spaces and a ')' of its own. */
    const char *odd = "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0\n";
    GP_CHECK_ERR(gp__pidstat_parse_start(odd, strlen(odd), &v), GP_OK);
    GP_CHECK(v == 55);
    const char *bad[] = {
        "",
        "garbage",
        "1 (x) S 1 2 3",                                         /* truncated */
        "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12x 0\n", /* not a number */
        "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999 0\n", /* overflow */
        "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5 0\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        GP_CHECK_ERR(gp__pidstat_parse_start(bad[i], strlen(bad[i]), &v), GP_EPROTO);
    /* Ourselves, and a pid that does not exist. */
    GP_CHECK_ERR(gp__pid_start_time(getpid(), &v), GP_OK);
    GP_CHECK(v > 0);
    GP_CHECK_ERR(gp__pid_start_time(0, &v), GP_ENOTFOUND);
}

GP_TEST(detached_plugin_outlives_free_and_is_found_again)
{
    /* gRPC keeps process-wide descriptors after its first use. */
    {
        gp_client_config cfg = config();
        gp_client *c;
        gp_conn *conn;
        GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
        GP_CHECK_ERR(gp_client_connect(c, &conn, NULL), GP_OK);
        gp_client_free(c);
    }
    int fds = gp_test_count_fds();
    gp_client_config cfg = config();
    cfg.detached = true;
    gp_client *c;
    gp_conn *conn = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_status st;
    gp_err rc = gp_client_connect(c, &conn, &st);
    if (rc)
        GP_FAILF("connect: %s", st.msg);
    pid_t pid = gp_client_pid(c);
    gp_reattach_config ra;
    GP_CHECK_ERR(gp_client_reattach_config(c, &ra), GP_OK);
    uint64_t st_now = 0;
    GP_CHECK_ERR(gp__pid_start_time(pid, &st_now), GP_OK);
    GP_CHECK(ra.start_time != 0 && ra.start_time == st_now);
    char network[16], address[256];
    snprintf(network, sizeof network, "%s", ra.network);
    snprintf(address, sizeof address, "%s", ra.address);
    ra.network = network;
    ra.address = address;
    gp_client_free(c); /* the owner thread is gone: no parent-death signal came */
    usleep(200000);
    GP_CHECK(gp_test_alive(pid));
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);

    /* A start time that does not match: refused, nothing signalled. */
    gp_reattach_config wrong = ra;
    wrong.start_time = ra.start_time + 1;
    gp_client_config rcfg = {.reattach = &wrong,
                             .allowed_protocols = GP_PROTO_GRPC,
                             .kill_grace_ms = 3000,
                             .logger = {.level = GP_LOG_OFF}};
    GP_CHECK_ERR(gp_client_new(&rcfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, &st), GP_ENOTFOUND);
    GP_CHECK_CONTAINS(st.msg, "is another process now");
    gp_client_kill(c);
    gp_client_free(c);
    GP_CHECK(gp_test_alive(pid));

    /* Detached reattach: used, freed, still running. */
    rcfg.reattach = &ra;
    rcfg.detached = true;
    GP_CHECK_ERR(gp_client_new(&rcfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_connect(c, &conn, NULL), GP_OK);
    GP_CHECK(conn && gp_conn_ping(conn, &st) == GP_OK);
    GP_CHECK(!gp_client_wait_exit(c, 50, NULL, 0));
    gp_client_free(c);
    GP_CHECK(gp_test_alive(pid));

    /* Reattach to kill: graceful, and the pid is verified. */
    rcfg.detached = false;
    GP_CHECK_ERR(gp_client_new(&rcfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_connect(c, &conn, NULL), GP_OK);
    gp_client_kill(c);
    char why[64];
    GP_CHECK(gp_client_wait_exit(c, 1000, why, sizeof why));
    gp_client_free(c);
    int status = 0;
    GP_CHECK_INT(waitpid(pid, &status, 0), ==, pid); /* still our child: reap it */
    GP_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(wait_exit_reports_status)
{
    gp_client_config cfg = config();
    gp_client *c;
    gp_conn *conn;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_connect(c, &conn, NULL), GP_OK);
    char why[64] = "x";
    GP_CHECK(!gp_client_wait_exit(c, 20, why, sizeof why));
    GP_CHECK_STR(why, "");
    kill(gp_client_pid(c), SIGKILL);
    GP_CHECK(gp_client_wait_exit(c, 5000, why, sizeof why));
    GP_CHECK_CONTAINS(why, "killed by signal 9");
    gp_client_free(c);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(pidstat_parse);
    GP_RUN(detached_plugin_outlives_free_and_is_found_again);
    GP_RUN(wait_exit_reports_status);
    return gp_test_done();
}
