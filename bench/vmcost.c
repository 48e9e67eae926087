/* What this machine charges for the things a plugin's start-up is made of:
 * a page fault, a page fault that needs a new page-table page, a thread's
 * start in a fresh process, and spawning a binary until it prints a line.
 * On some VMs (page tables kept by the hypervisor) these cost ten times or
 * more what they cost elsewhere, and exec -> first call follows them.
 *
 *   vmcost [--spawn PATH]   the figures, one line each
 *   vmcost --line           prints a handshake-like line, waits for stdin EOF
 *
 * --spawn PATH also times posix_spawn of PATH (environment: the KV
 * example's handshake variables, netrpc) to its first stdout line; the
 * floor for that is vmcost's own --line (linked static), timed always.
 * Medians of several runs; wall-clock microseconds. */
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/timing.h"

#define RUNS 41

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

/* Touches n fresh pages `stride` bytes apart; us per touch. A stride of
 * 2 MiB puts each in a range no page-table page covers yet. */
static double fault_us(size_t n, size_t stride)
{
    char *p = mmap(NULL, n * stride, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    double a = now_us();
    for (size_t i = 0; i < n; i++)
        p[i * stride] = 1;
    double us = (now_us() - a) / (double)n;
    munmap(p, n * stride);
    return us;
}

static void *nothing(void *arg)
{
    return arg;
}

/* In a fresh child: the first and the second pthread_create + join, with
 * the default stack or a 256 KiB one. Written to fd as two doubles. */
static void thread_child(int fd, size_t stack)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    if (stack)
        pthread_attr_setstacksize(&a, stack);
    double t[2];
    for (int i = 0; i < 2; i++) {
        pthread_t th;
        double s = now_us();
        if (pthread_create(&th, &a, nothing, NULL) != 0)
            _exit(1);
        pthread_join(th, NULL);
        t[i] = now_us() - s;
    }
    _exit(write(fd, t, sizeof t) == (ssize_t)sizeof t ? 0 : 1);
}

static int thread_us(size_t stack, double *first, double *second)
{
    double f[RUNS], s[RUNS];
    for (int i = 0; i < RUNS; i++) {
        int p[2];
        if (pipe(p) != 0)
            return -1;
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            thread_child(p[1], stack);
        }
        close(p[1]);
        double t[2] = {0, 0};
        ssize_t r = pid > 0 ? read(p[0], t, sizeof t) : -1;
        close(p[0]);
        if (pid > 0)
            waitpid(pid, NULL, 0);
        if (r != (ssize_t)sizeof t)
            return -1;
        f[i] = t[0];
        s[i] = t[1];
    }
    *first = median(f, RUNS);
    *second = median(s, RUNS);
    return 0;
}

extern char **environ;

/* posix_spawn PATH (argv: PATH, arg) until its first stdout line; median us.
 * Its stdin is a pipe we close after, so a --line child ends; others are
 * killed. */
static double spawn_line_us(const char *path, const char *arg)
{
    char *env[] = {"BASIC_PLUGIN=hello",    "PLUGIN_PROTOCOL_VERSIONS=1", "KV_PLUGIN_PROTO=netrpc",
                   "PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000",      NULL};
    double v[RUNS];
    for (int i = 0; i < RUNS; i++) {
        int out[2], in[2];
        if (pipe(out) != 0)
            return -1;
        if (pipe(in) != 0) {
            close(out[0]);
            close(out[1]);
            return -1;
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        posix_spawn_file_actions_addclose(&fa, in[1]);
        char *argv[] = {(char *)path, (char *)arg, NULL};
        pid_t pid;
        double a = now_us();
        int rc = posix_spawn(&pid, path, &fa, NULL, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        close(out[1]);
        close(in[0]);
        char buf[512];
        ssize_t r = rc == 0 ? read(out[0], buf, sizeof buf) : -1;
        v[i] = now_us() - a;
        close(in[1]);
        if (rc == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        close(out[0]);
        if (r <= 0) {
            fprintf(stderr, "vmcost: %s printed no line\n", path);
            return -1;
        }
    }
    return median(v, RUNS);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--line") == 0) {
        printf("1|1|unix|/nowhere|netrpc|\n");
        fflush(stdout);
        char c;
        while (read(0, &c, 1) > 0)
            ;
        return 0;
    }
    const char *spawn = NULL;
    if (argc == 3 && strcmp(argv[1], "--spawn") == 0)
        spawn = argv[2];
    else if (argc != 1) {
        fprintf(stderr, "usage: vmcost [--spawn PATH] | --line\n");
        return 2;
    }
    double v[RUNS];
    for (int i = 0; i < RUNS; i++)
        v[i] = fault_us(256, 4096);
    printf("page fault, fresh anonymous page (us):                  %.2f\n", median(v, RUNS));
    for (int i = 0; i < RUNS; i++)
        v[i] = fault_us(32, 2u << 20);
    printf("page fault that needs a new page-table page (us):       %.2f\n", median(v, RUNS));
    double f, s;
    if (thread_us(0, &f, &s) == 0)
        printf("pthread_create+join, default stack, 1st / 2nd (us):     %.0f / %.0f\n", f, s);
    if (thread_us(256 * 1024, &f, &s) == 0)
        printf("pthread_create+join, 256 KiB stack, 1st / 2nd (us):     %.0f / %.0f\n", f, s);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        double us = spawn_line_us(self, "--line");
        if (us >= 0)
            printf("posix_spawn -> first line, vmcost --line (us):          %.0f\n", us);
    }
    if (spawn) {
        double us = spawn_line_us(spawn, NULL);
        if (us >= 0)
            printf("posix_spawn -> first line, %s (us): %.0f\n", spawn, us);
    }
    return 0;
}
