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
#include <pthread.h>
#include <sys/stat.h>
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

/* A gRPC plugin that writes to its real stdout and stderr (kept before
 * gp_serve redirects fd 1 and 2 for GRPCStdio): "early" at once, "late"
 * lines once the file argv[1] exists (its host is gone by then). */
static const char *late_trigger;
static int late_out = -1, late_err = -1;

static void *late_lines(void *arg)
{
    (void)arg;
    while (access(late_trigger, F_OK) != 0)
        usleep(20000);
    for (int i = 0; i < 3; i++) {
        dprintf(late_err, "late line %d on stderr\n", i);
        dprintf(late_out, "late line %d on stdout\n", i);
    }
    return NULL;
}

GP_HELPER(late_writer)
{
    if (argc < 2)
        return 2;
    late_trigger = argv[1];
    late_out = dup(1);
    late_err = dup(2);
    dprintf(late_err, "early line on stderr\n");
    pthread_t t;
    if (late_out < 0 || late_err < 0 || pthread_create(&t, NULL, late_lines, NULL) != 0)
        return 1;
    pthread_detach(t); /* it ends on its own, before or after gp_serve */
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
    GP_CHECK_FDS_AT_MOST(fds);

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
    GP_CHECK_FDS_AT_MOST(fds);
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

static bool file_has(const char *path, const char *needle, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        char *text = gp_test_read_file(path, NULL);
        bool has = text && strstr(text, needle);
        free(text);
        if (has || waited >= timeout_ms)
            return has;
        usleep(20000);
    }
}

GP_TEST(detached_output_goes_to_files_and_outlives_the_host)
{
    char dir[512], out_path[600], err_path[600], trigger[600];
    const char *base = getenv("TEST_TMPDIR");
    snprintf(dir, sizeof dir, "%s/gpdetachXXXXXX", base ? base : "/tmp");
    GP_CHECK(mkdtemp(dir) != NULL);
    snprintf(out_path, sizeof out_path, "%s/p.json.stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/p.json.stderr", dir);
    snprintf(trigger, sizeof trigger, "%s/go", dir);
    /* Something already there stays: the files are appended to. */
    FILE *f = fopen(err_path, "w");
    GP_CHECK(f != NULL);
    fputs("from before\n", f);
    fclose(f);

    gp_client_config cfg = config();
    cfg.argv = gp_test_helper_argv("late_writer", trigger);
    cfg.detached = true;
    cfg.stdout_file = out_path;
    cfg.stderr_file = err_path;
    gp_client *c;
    gp_conn *conn;
    gp_status st;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    if (gp_client_connect(c, &conn, &st) != GP_OK) /* the handshake came through the file */
        GP_FAILF("connect: %s", st.msg);
    GP_CHECK(gp_conn_ping(conn, &st) == GP_OK);
    pid_t pid = gp_client_pid(c);
    /* While the host runs it follows the stderr file (the tail, the logger). */
    char tail[256] = "";
    for (int i = 0; i < 100 && !strstr(tail, "early line"); i++) {
        gp_client_stderr_tail(c, tail, sizeof tail);
        usleep(20000);
    }
    GP_CHECK_CONTAINS(tail, "early line on stderr");
    GP_CHECK(!strstr(tail, "from before")); /* only what this launch wrote */
    struct stat sb;
    GP_CHECK_INT(stat(out_path, &sb), ==, 0); /* made by the client: private */
    GP_CHECK_INT(sb.st_mode & 0777, ==, 0600);
    gp_client_free(c); /* let go: nobody reads its output now */

    /* It writes after its host let go: the lines land in the files and it
     * lives on (a pipe would have ended it with SIGPIPE). */
    f = fopen(trigger, "w");
    GP_CHECK(f != NULL);
    fclose(f);
    GP_CHECK(file_has(err_path, "late line 2 on stderr", 5000));
    GP_CHECK(file_has(out_path, "late line 2 on stdout", 5000));
    char *text = gp_test_read_file(err_path, NULL);
    GP_CHECK(text && strncmp(text, "from before\n", 12) == 0 && strstr(text, "early line"));
    free(text);
    text = gp_test_read_file(out_path, NULL);
    GP_CHECK(text && strncmp(text, "1|1|", 4) == 0); /* the handshake line is there too */
    free(text);
    usleep(100000);
    GP_CHECK(gp_test_alive(pid));
    kill(pid, SIGTERM); /* gp_serve stops cleanly on it */
    int status = gp_test_wait_child(pid, 10000);
    if (!(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        text = gp_test_read_file(err_path, NULL);
        GP_FAILF("plugin wait status %#x; its stderr:\n%s", (unsigned)status, text ? text : "");
        free(text);
    }
    unlink(out_path);
    unlink(err_path);
    unlink(trigger);
    rmdir(dir);
}

GP_TEST(output_files_config_checks)
{
    gp_client_config cfg = config();
    gp_client *c = NULL;
    gp_status st;
    cfg.stdout_file = "/tmp/same";
    cfg.stderr_file = "/tmp/same";
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "expected two files");
    cfg.stdout_file = "";
    cfg.stderr_file = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "expected a path or NULL");
    gp_reattach_config ra = {.network = "unix", .address = "/tmp/nowhere.sock"};
    gp_client_config rcfg = {
        .reattach = &ra, .stderr_file = "/tmp/x.stderr", .logger = {.level = GP_LOG_OFF}};
    GP_CHECK_ERR(gp_client_new(&rcfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "expected NULL with reattach");
    /* A file that cannot be opened fails the start with its name. */
    cfg = config();
    cfg.stderr_file = "/nonexistent-dir/x.stderr";
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK(gp_client_start(c, &st) != GP_OK);
    GP_CHECK_CONTAINS(st.msg, "/nonexistent-dir/x.stderr");
    gp_client_free(c);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(pidstat_parse);
    GP_RUN(detached_plugin_outlives_free_and_is_found_again);
    GP_RUN(wait_exit_reports_status);
    GP_RUN(detached_output_goes_to_files_and_outlives_the_host);
    GP_RUN(output_files_config_checks);
    return gp_test_done();
}
