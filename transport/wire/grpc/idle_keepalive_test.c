/* Keepalive on an idle gRPC channel with the caller-driven threading
 * (docs/grpc.md): no call in flight, so only the idle poller reads the
 * socket. The server runs in a child process, so none of its threads polls
 * our fd (in one process core's pollers serve every fd and would hide an
 * unread socket).
 *
 * - answered: with 300 ms pings and a 2 s ack timeout (times
 *   GP_TEST_SCALE), a channel idle for 2 s longer than that is still up
 *   (acks unread would make core drop it after the ack timeout);
 * - sent: the same channel, idle, notices a stopped (SIGSTOP) peer within
 *   the keepalive bound, so the next call with no deadline fails at once
 *   with GP_ECLOSED instead of hanging.
 * (grpc_test's idle_across_processes_keepalive_and_shutdown checks the
 * first with a shutdown after; this file keeps its own copy on purpose.) */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <goplugin/conn.h>

#include "transport/wire/grpc/proto/health.pb.h"
#include "transport/core/conn.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/testing/gp_test.h"

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "ignore_noninstrumented_modules=1";
}

enum { PING_MS = 300, ACK_TIMEOUT_MS = 2000 };

/* The child: the standard services only, on the unix socket argv[1]. */
GP_HELPER(serve)
{
    if (argc != 2)
        return 2;
    char err[256], addr[600];
    snprintf(addr, sizeof addr, "unix:%s", argv[1]);
    gp__grpc_server_opts so = {.min_ping_interval_ms = 50};
    gp__grpc_server *s = NULL;
    if (gp__grpc_server_new(&so, &s, err, sizeof err) != GP_OK ||
        gp__grpc_server_listen(s, addr, NULL, err, sizeof err) != GP_OK ||
        gp__grpc_server_start(s, err, sizeof err) != GP_OK) {
        fprintf(stderr, "child server: %s\n", err);
        return 1;
    }
    gp__grpc_server_wait(s);
    gp__grpc_server_free(s);
    return 0;
}

static int dial(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

GP_TEST(idle_channel_answers_pings_and_detects_a_stopped_peer)
{
    char dir[] = "/tmp/gpidleXXXXXX", path[100], err[256];
    if (!mkdtemp(dir)) {
        GP_FAILF("mkdtemp: %s", strerror(errno));
        return;
    }
    snprintf(path, sizeof path, "%s/child.sock", dir);
    pid_t pid;
    if (posix_spawn(&pid, gp_test_self_exe(), NULL, NULL,
                    (char **)gp_test_helper_argv("serve", path), NULL) != 0) {
        GP_FAILF("spawn: %s", strerror(errno));
        rmdir(dir);
        return;
    }
    int fd = -1;
    for (int i = 0; i < 1000 && fd < 0; i++) {
        fd = dial(path);
        if (fd < 0)
            usleep(10 * 1000);
    }
    /* A loaded machine (or a sanitizer) may delay an ack past a tight
     * timeout; the test's point holds at any timeout. */
    int ack_ms = (int)(ACK_TIMEOUT_MS * gp_test_scale());
    /* No call deadline: only keepalive can end a call to a stopped peer. */
    gp__grpc_client_opts co = {.call_timeout_ms = 0,
                               .log_name = "test",
                               .keepalive_ms = PING_MS,
                               .keepalive_timeout_ms = ack_ms};
    gp_conn *conn = NULL;
    gp_status st;
    if (fd < 0) {
        GP_FAILF("the child never listened on %s", path);
    } else if (gp__grpc_conn_from_fd(fd, &co, &conn, err, sizeof err) != GP_OK) {
        GP_FAILF("conn: %s", err);
    } else {
        GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
        /* Idle past the ack timeout: each ping acked in time, or the
         * channel is gone. */
        usleep((useconds_t)(ack_ms + 2000) * 1000);
        GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);
        if (st.err != GP_OK)
            GP_FAILF("after %d ms idle: %s", ack_ms + 2000, st.msg);

        /* Stop the peer while idle; within ping + ack timeout the channel
         * must have noticed on its own. */
        sleep(2); /* idle again (the poller takes over after 1 s) */
        GP_CHECK_INT(kill(pid, SIGSTOP), ==, 0);
        usleep((useconds_t)(PING_MS + ack_ms + 1200) * 1000);
        long long t0 = gp_test_now_ms();
        GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_ECLOSED);
        long long took = gp_test_now_ms() - t0;
        fprintf(stderr, "call after the stopped peer was idle-detected: %s (%lld ms)\n", st.msg,
                took);
        GP_CHECK_INT(took, <, 500); /* already known lost, not found out now */
        GP_CHECK_INT(kill(pid, SIGCONT), ==, 0);
        gp__conn_close(conn);
    }
    /* The child's host connection is gone: it waits for a Shutdown that
     * will not come; SIGTERM is not wired in this bare server. */
    kill(pid, SIGKILL);
    GP_CHECK_INT(gp_test_reap(pid, 10000), ==, 128 + SIGKILL);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN_TIMEOUT(idle_channel_answers_pings_and_detects_a_stopped_peer, 120);
    return gp_test_done();
}
