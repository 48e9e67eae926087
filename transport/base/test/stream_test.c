/* The fd stream (stream.h) over socketpairs: short reads, writes larger
 * than the socket buffer, EOF, timeouts, half-close, shutdown from another
 * thread, and who closes the fd. */
#include "transport/base/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A socketpair with sv[0] wrapped; *s owns sv[0]. */
static void pair(int sv[2], gp__stream **s)
{
    GP_CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    GP_CHECK_INT(gp__stream_fd_new(sv[0], s), ==, GP_OK);
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

GP_TEST(reads_are_short_when_little_is_there)
{
    int sv[2];
    gp__stream *s;
    pair(sv, &s);
    GP_CHECK_INT(write(sv[1], "0123456789", 10), ==, 10);
    char buf[4];
    size_t n = 0;
    char why[128] = "";
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, 1000, &n, why, sizeof why), ==, GP_OK);
    GP_CHECK_INT(n, ==, 4);
    GP_CHECK(memcmp(buf, "0123", 4) == 0);
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, 1000, &n, why, sizeof why), ==, GP_OK);
    GP_CHECK_INT(n, ==, 4);
    GP_CHECK(memcmp(buf, "4567", 4) == 0);
    /* Fewer than asked: what is there, without waiting for more. */
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, -1, &n, why, sizeof why), ==, GP_OK);
    GP_CHECK_INT(n, ==, 2);
    GP_CHECK(memcmp(buf, "89", 2) == 0);
    GP_CHECK_INT(gp__stream_read(s, buf, 0, 0, &n, why, sizeof why), ==, GP_EINVAL);
    gp__stream_close(s);
    close(sv[1]);
}

GP_TEST(eof_is_ok_with_zero_bytes)
{
    int sv[2];
    gp__stream *s;
    pair(sv, &s);
    GP_CHECK_INT(write(sv[1], "ab", 2), ==, 2);
    close(sv[1]);
    char buf[16];
    size_t n = 99;
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, 1000, &n, NULL, 0), ==, GP_OK);
    GP_CHECK_INT(n, ==, 2); /* the data first, then the end */
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, 1000, &n, NULL, 0), ==, GP_OK);
    GP_CHECK_INT(n, ==, 0);
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, -1, &n, NULL, 0), ==, GP_OK);
    GP_CHECK_INT(n, ==, 0);
    gp__stream_close(s);
}

GP_TEST(read_times_out)
{
    int sv[2];
    gp__stream *s;
    pair(sv, &s);
    char buf[16], why[128] = "";
    size_t n = 99;
    int64_t t0 = now_ms();
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, 0, &n, why, sizeof why), ==, GP_ETIMEDOUT);
    GP_CHECK_INT(n, ==, 0);
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, 80, &n, why, sizeof why), ==, GP_ETIMEDOUT);
    int64_t took = now_ms() - t0;
    GP_CHECK_INT(took, >=, 79);
    GP_CHECK_INT(took, <, 2000);
    GP_CHECK_CONTAINS(why, "80 ms");
    /* Data that comes later is still read whole. */
    GP_CHECK_INT(write(sv[1], "x", 1), ==, 1);
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, 0, &n, why, sizeof why), ==, GP_OK);
    GP_CHECK_INT(n, ==, 1);
    gp__stream_close(s);
    close(sv[1]);
}

/* Reads the peer end in small pieces until EOF and checks the pattern. */
typedef struct drain {
    int fd;
    size_t got;
    int bad;
} drain;

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 11));
}

static void *drain_main(void *arg)
{
    drain *d = arg;
    uint8_t buf[1000]; /* odd size: the writer's pieces never line up with ours */
    for (;;) {
        ssize_t n = read(d->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(d->got + (size_t)i))
                d->bad = 1;
        d->got += (size_t)n;
        if (d->got % 50000 < sizeof buf)
            usleep(1000); /* a slow reader: the writer has to wait for room */
    }
    return NULL;
}

GP_TEST(writev_sends_everything_through_a_full_socket)
{
    int sv[2];
    gp__stream *s;
    pair(sv, &s);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    size_t total = 3 * 1024 * 1024 + 17;
    uint8_t *data = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = pattern(i);
    drain d = {.fd = sv[1]};
    pthread_t th;
    pthread_create(&th, NULL, drain_main, &d);
    /* Uneven pieces, one of them empty. */
    struct iovec iov[4] = {{data, 5}, {data + 5, 0}, {data + 5, 1000003}, {data + 1000008, 0}};
    iov[3].iov_len = total - 1000008;
    char why[128] = "";
    GP_CHECK_INT(gp__stream_writev(s, iov, 4, 10000, why, sizeof why), ==, GP_OK);
    GP_CHECK_INT(gp__stream_write(s, "", 0, 0, why, sizeof why), ==, GP_OK);
    gp__stream_close_write(s);
    pthread_join(th, NULL);
    GP_CHECK_INT(d.got, ==, total);
    GP_CHECK(!d.bad);
    free(data);
    gp__stream_close(s);
    close(sv[1]);
}

GP_TEST(write_times_out_when_the_peer_does_not_read)
{
    int sv[2];
    gp__stream *s;
    pair(sv, &s);
    static uint8_t big[1 << 20];
    char why[128] = "";
    int64_t t0 = now_ms();
    GP_CHECK_INT(gp__stream_write(s, big, sizeof big, 100, why, sizeof why), ==, GP_ETIMEDOUT);
    int64_t took = now_ms() - t0;
    GP_CHECK_INT(took, >=, 99);
    GP_CHECK_INT(took, <, 2000);
    GP_CHECK_CONTAINS(why, "timed out");
    /* 0 ms: tries once, does not wait. */
    GP_CHECK_INT(gp__stream_write(s, big, sizeof big, 0, why, sizeof why), ==, GP_ETIMEDOUT);
    gp__stream_close(s);
    close(sv[1]);
}

GP_TEST(write_to_a_closed_peer_fails_without_sigpipe)
{
    int sv[2];
    gp__stream *s;
    pair(sv, &s);
    close(sv[1]);
    char why[128] = "";
    GP_CHECK_INT(gp__stream_write(s, "hello", 5, 1000, why, sizeof why), ==, GP_EIO);
    GP_CHECK_STR(why, strerror(EPIPE));
    gp__stream_close(s);
}

GP_TEST(close_write_is_a_half_close)
{
    int sv[2];
    gp__stream *s;
    pair(sv, &s);
    gp__stream_close_write(s);
    gp__stream_close_write(s); /* idempotent */
    char buf[8];
    GP_CHECK_INT(read(sv[1], buf, sizeof buf), ==, 0); /* the peer sees the end */
    GP_CHECK_INT(write(sv[1], "back", 4), ==, 4);      /* and can still answer */
    size_t n = 0;
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, 1000, &n, NULL, 0), ==, GP_OK);
    GP_CHECK_INT(n, ==, 4);
    gp__stream_close(s);
    close(sv[1]);
}

typedef struct blocked {
    gp__stream *s;
    gp_err rc;
    char why[128];
} blocked;

static void *blocked_read(void *arg)
{
    blocked *b = arg;
    char buf[16];
    size_t n;
    b->rc = gp__stream_read(b->s, buf, sizeof buf, -1, &n, b->why, sizeof b->why);
    return NULL;
}

GP_TEST(shutdown_wakes_a_blocked_read)
{
    int sv[2];
    gp__stream *s;
    pair(sv, &s);
    blocked b = {.s = s, .rc = GP_OK};
    pthread_t th;
    pthread_create(&th, NULL, blocked_read, &b);
    usleep(50 * 1000); /* let it block in poll */
    gp__stream_shutdown(s);
    gp__stream_shutdown(s); /* idempotent */
    pthread_join(th, NULL);
    GP_CHECK_INT(b.rc, ==, GP_ECLOSED);
    GP_CHECK_CONTAINS(b.why, "shut down locally");
    char why[128] = "";
    GP_CHECK_INT(gp__stream_write(s, "x", 1, 100, why, sizeof why), ==, GP_ECLOSED);
    size_t n;
    char buf[4];
    GP_CHECK_INT(gp__stream_read(s, buf, sizeof buf, 0, &n, why, sizeof why), ==, GP_ECLOSED);
    /* The peer sees the end too. */
    GP_CHECK_INT(read(sv[1], buf, sizeof buf), ==, 0);
    gp__stream_close(s);
    close(sv[1]);
}

GP_TEST(close_closes_the_fd_and_release_does_not)
{
    int sv[2];
    gp__stream *s;
    pair(sv, &s);
    gp__stream_close(s);
    GP_CHECK(!fd_is_open(sv[0]));
    gp__stream_close(NULL); /* NULL is ok */

    pair(sv, &s);
    GP_CHECK_INT(gp__stream_fd_release(s), ==, sv[0]);
    GP_CHECK(fd_is_open(sv[0]));
    close(sv[0]);
    close(sv[1]);

    GP_CHECK_INT(gp__stream_fd_new(-1, &s), ==, GP_EINVAL);
    GP_CHECK(s == NULL);
    GP_CHECK_INT(gp__stream_fd_release(NULL), ==, -1);
    gp__stream other = {.ops = NULL}; /* not an fd stream: left alone */
    GP_CHECK_INT(gp__stream_fd_release(&other), ==, -1);
}

/* In a child (the length is fixed per process): GOPLUGIN_READ_SPIN_US as
 * given (NULL: unset), on one CPU or not; the spin's length in us, or -1. */
static long spin_us_in_child(const char *env, int one_cpu)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (env)
            setenv("GOPLUGIN_READ_SPIN_US", env, 1);
        else
            unsetenv("GOPLUGIN_READ_SPIN_US");
        if (one_cpu) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &set);
            if (sched_setaffinity(0, sizeof set, &set) != 0)
                _exit(255);
        }
        _exit((int)(gp__stream_read_spin_ns() / 1000 / 10)); /* in 10 us */
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) == 255)
        return -1;
    return (long)WEXITSTATUS(st) * 10;
}

/* A read that finds nothing tries again for 20 us before it sleeps, as
 * GOPLUGIN_READ_SPIN_US says (0: never; at most 1000 us; junk: the
 * default), and never when the process may run on one CPU only (there
 * the peer it waits for cannot answer meanwhile). The latency it buys is
 * measured in the bench (docs/netrpc.md), not here. */
GP_TEST(a_read_spins_only_where_the_peer_can_answer_meanwhile)
{
    cpu_set_t set;
    GP_CHECK_INT(sched_getaffinity(0, sizeof set, &set), ==, 0);
    long many = CPU_COUNT(&set) > 1; /* else every answer is 0 */
    GP_CHECK_INT(spin_us_in_child(NULL, 0), ==, many * 20);
    GP_CHECK_INT(spin_us_in_child("0", 0), ==, 0);
    GP_CHECK_INT(spin_us_in_child("50", 0), ==, many * 50);
    GP_CHECK_INT(spin_us_in_child("99999", 0), ==, many * 1000);
    GP_CHECK_INT(spin_us_in_child("junk", 0), ==, many * 20);
    GP_CHECK_INT(spin_us_in_child(NULL, 1), ==, 0);
    GP_CHECK_INT(spin_us_in_child("50", 1), ==, 0);
}

int main(void)
{
    GP_RUN(reads_are_short_when_little_is_there);
    GP_RUN(eof_is_ok_with_zero_bytes);
    GP_RUN(read_times_out);
    GP_RUN(writev_sends_everything_through_a_full_socket);
    GP_RUN(write_times_out_when_the_peer_does_not_read);
    GP_RUN(write_to_a_closed_peer_fails_without_sigpipe);
    GP_RUN(close_write_is_a_half_close);
    GP_RUN(shutdown_wakes_a_blocked_read);
    GP_RUN(close_closes_the_fd_and_release_does_not);
    GP_RUN(a_read_spins_only_where_the_peer_can_answer_meanwhile);
    return gp_test_done();
}
