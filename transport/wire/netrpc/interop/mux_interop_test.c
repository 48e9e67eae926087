/* The C yamux session against Go's hashicorp/yamux (the copy go-plugin
 * 1.0.1 builds with), both roles: many concurrent streams of 1 MiB (window
 * updates both ways), half-close, pings and keepalive from both sides.
 * argv[1] is the Go peer (interop/yamux_peer.go). */
#include "transport/yamux/mux_session.h"
#include "transport/testing/gp_test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *peer_path;

/* Starts the Go peer with our socket's other end as its fd 3. */
static pid_t start_peer(char *const argv[], int *fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(sv[1], 3); /* dup2 clears CLOEXEC on the copy */
        execv(peer_path, argv);
        _exit(127);
    }
    close(sv[1]);
    *fd = sv[0];
    return pid;
}

static uint8_t pattern(size_t i, int seed)
{
    return (uint8_t)(i * 131 + (i >> 9) + (size_t)seed);
}

typedef struct job {
    gp__mux_session *s;
    size_t size;
    int seed;
    int ok;
    char why[160];
} job;

static void *write_all_then_fin(void *arg)
{
    void **a = arg;
    gp__mux_stream *st = a[0];
    job *j = a[1];
    uint8_t *b = malloc(j->size);
    for (size_t i = 0; i < j->size; i++)
        b[i] = pattern(i, j->seed);
    if (gp__mux_stream_write(st, b, j->size, 20000) != GP_OK || gp__mux_stream_close(st) != GP_OK)
        snprintf(j->why, sizeof j->why, "write failed");
    free(b);
    return NULL;
}

/* Opens a stream to the Go echo server, sends size bytes and FIN, reads the
 * echo to EOF. */
static void *echo_roundtrip(void *arg)
{
    job *j = arg;
    gp__mux_stream *st;
    if (gp__mux_open(j->s, &st) != GP_OK) {
        snprintf(j->why, sizeof j->why, "open failed");
        return NULL;
    }
    void *a[2] = {st, j};
    pthread_t w;
    pthread_create(&w, NULL, write_all_then_fin, a);
    uint8_t buf[10000];
    size_t got = 0;
    int same = 1;
    for (;;) {
        size_t n;
        gp_err e = gp__mux_stream_read(st, buf, sizeof buf, 20000, &n);
        if (e != GP_OK) {
            snprintf(j->why, sizeof j->why, "read: %s after %zu bytes", gp_strerror(e), got);
            break;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            same &= buf[i] == pattern(got + i, j->seed);
        got += n;
    }
    pthread_join(w, NULL);
    j->ok = !j->why[0] && same && got == j->size;
    if (!j->why[0] && !j->ok)
        snprintf(j->why, sizeof j->why, "echo of %zu bytes, wanted %zu, same=%d", got, j->size,
                 same);
    gp__mux_stream_free(st);
    return NULL;
}

GP_TEST(c_client_against_go_yamux_server)
{
    int fd;
    char *argv[] = {"yamux_peer", "server", NULL};
    pid_t pid = start_peer(argv, &fd);
    gp__mux_config cfg = {.keepalive_interval_ms = 100, .keepalive_timeout_ms = 2000};
    gp__mux_session *s;
    GP_CHECK_ERR(gp__mux_session_new(fd, GP_MUX_CLIENT, &cfg, &s), GP_OK);
    enum { BIG = 8, SMALL = 40 };
    job jobs[BIG + SMALL];
    pthread_t t[BIG + SMALL];
    for (int i = 0; i < BIG + SMALL; i++) {
        jobs[i] = (job){s, i < BIG ? (size_t)1 << 20 : (size_t)(i * 997), i, 0, ""};
        pthread_create(&t[i], NULL, echo_roundtrip, &jobs[i]);
    }
    for (int i = 0; i < BIG + SMALL; i++) {
        pthread_join(t[i], NULL);
        if (!jobs[i].ok)
            GP_FAILF("stream job %d: %s", i, jobs[i].why);
    }
    int64_t rtt = 0;
    GP_CHECK_ERR(gp__mux_session_ping(s, 2000, &rtt), GP_OK);
    usleep(400000); /* several keepalive rounds in both directions */
    GP_CHECK_STR(gp__mux_session_error(s), "");
    gp__mux_session_free(s);
    GP_CHECK_INT(gp_test_reap(pid, 5000), ==, 0);
}

static void *echo_server_stream(void *arg)
{
    gp__mux_stream *st = arg;
    uint8_t buf[20000];
    for (;;) {
        size_t n;
        if (gp__mux_stream_read(st, buf, sizeof buf, 20000, &n) != GP_OK || n == 0)
            break;
        if (gp__mux_stream_write(st, buf, n, 20000) != GP_OK)
            break;
    }
    gp__mux_stream_close(st);
    gp__mux_stream_free(st);
    return NULL;
}

GP_TEST(go_yamux_client_against_c_server)
{
    int fd;
    char *argv[] = {"yamux_peer", "client", "24", "1048576", "500", NULL};
    pid_t pid = start_peer(argv, &fd);
    gp__mux_config cfg = {.keepalive_interval_ms = 100, .keepalive_timeout_ms = 2000};
    gp__mux_session *s;
    GP_CHECK_ERR(gp__mux_session_new(fd, GP_MUX_SERVER, &cfg, &s), GP_OK);
    pthread_t t[64];
    int n = 0;
    for (;;) {
        gp__mux_stream *st;
        gp_err e = gp__mux_accept(s, 20000, &st);
        if (e != GP_OK)
            break;
        if (n == 64) {
            gp__mux_stream_free(st);
            continue;
        }
        pthread_create(&t[n++], NULL, echo_server_stream, st);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    GP_CHECK_INT(n, ==, 24);
    /* The Go client closed its session at the end: that is how ours ended. */
    GP_CHECK_STR(gp__mux_session_error(s), "yamux: connection closed by the peer");
    gp__mux_session_free(s);
    GP_CHECK_INT(gp_test_reap(pid, 5000), ==, 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mux_interop_test PATH_TO_YAMUX_PEER\n");
        return 2;
    }
    peer_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    GP_RUN(c_client_against_go_yamux_server);
    GP_RUN(go_yamux_client_against_c_server);
    return gp_test_done();
}
