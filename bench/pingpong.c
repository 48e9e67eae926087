/* The floor under every RPC here: 64 bytes there and back over a unix
 * socketpair between two processes, blocking read/write. One JSON line
 * with the same latency fields as kv-host bench. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int full(ssize_t (*io)(int, void *, size_t), int fd, char *buf, size_t n)
{
    for (size_t k = 0; k < n;) {
        ssize_t r = io(fd, buf + k, n - k);
        if (r <= 0)
            return -1;
        k += (size_t)r;
    }
    return 0;
}

static ssize_t wr(int fd, void *b, size_t n)
{
    return write(fd, b, n);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    if (n < 1)
        n = 1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 1;
    char buf[64] = {0};
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(sv[0]);
        while (full(read, sv[1], buf, sizeof buf) == 0 && full(wr, sv[1], buf, sizeof buf) == 0)
            ;
        _exit(0);
    }
    close(sv[1]);
    double *lat = malloc((size_t)n * sizeof *lat), sum = 0;
    if (!lat)
        return 1;
    for (long i = 0; i < n; i++) {
        double a = now_us();
        if (full(wr, sv[0], buf, sizeof buf) || full(read, sv[0], buf, sizeof buf))
            return 1;
        lat[i] = now_us() - a;
        sum += lat[i];
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("{\"impl\":\"raw\",\"mode\":\"pingpong\",\"n\":%ld,\"lat_us_p50\":%.1f,"
           "\"lat_us_p99\":%.1f,\"lat_us_mean\":%.1f}\n",
           n, lat[n / 2], lat[(size_t)((double)(n - 1) * 0.99)], sum / (double)n);
    free(lat);
    return 0;
}
