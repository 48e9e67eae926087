/* The floor under every RPC here: 64 bytes there and back over a unix
 * socketpair between two processes, blocking read/write. One JSON line
 * with the same latency fields as kv-host bench.
 *
 *   pingpong [N] [--cpus A,B]
 *
 * --cpus pins the measuring parent to CPU A and the echoing child to CPU B
 * (A == B: the same-CPU floor, two context switches per round trip;
 * A != B: the cross-CPU floor, two cross-CPU wake-ups). Without it the
 * scheduler places them. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/timing.h"

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

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int main(int argc, char **argv)
{
    long n = 20000;
    int cpu_a = -1, cpu_b = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc) {
            if (sscanf(argv[++i], "%d,%d", &cpu_a, &cpu_b) != 2) {
                fprintf(stderr, "pingpong: --cpus A,B\n");
                return 2;
            }
        } else {
            n = atol(argv[i]);
        }
    }
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
        if (cpu_b >= 0 && pin(cpu_b) != 0)
            _exit(1);
        close(sv[0]);
        while (full(read, sv[1], buf, sizeof buf) == 0 && full(wr, sv[1], buf, sizeof buf) == 0)
            ;
        _exit(0);
    }
    close(sv[1]);
    if (cpu_a >= 0 && pin(cpu_a) != 0) {
        perror("pingpong: sched_setaffinity");
        return 1;
    }
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
    printf(
        "{\"impl\":\"raw\",\"mode\":\"pingpong\",\"cpus\":\"%d,%d\",\"n\":%ld,\"lat_us_p50\":%.1f,"
        "\"lat_us_p99\":%.1f,\"lat_us_mean\":%.1f}\n",
        cpu_a, cpu_b, n, lat[n / 2], lat[(size_t)((double)(n - 1) * 0.99)], sum / (double)n);
    free(lat);
    return 0;
}
