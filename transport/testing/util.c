/* Small things many tests need: counting fds, threads and children,
 * clocks, writing everything. */
#include "transport/testing/gp_test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goplugin/err.h"

int gp_test_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own descriptor */
}

static int is_grpc_pool_thread(const char *comm)
{
    static const char *const pools[] = {"default-executo", "resolver-execut", "event_engine",
                                        "grpc_global_tim", "timer_manager"};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
        if (strncmp(comm, pools[i], strlen(pools[i])) == 0)
            return 1;
    return 0;
}

/* Walks this process's threads: fn(ctx, tid, name) for each (the name
 * without its newline). Returns how many, -1 if /proc cannot be read. */
static int each_thread(void (*fn)(void *ctx, const char *tid, const char *comm), void *ctx)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = 0;
            fclose(f);
        }
        comm[strcspn(comm, "\n")] = 0;
        fn(ctx, e->d_name, comm);
        n++;
    }
    closedir(d);
    return n;
}

static void count_ours(void *ctx, const char *tid, const char *comm)
{
    (void)tid;
    *(int *)ctx += !is_grpc_pool_thread(comm);
}

int gp_test_count_threads(void)
{
    int n = 0;
    return each_thread(count_ours, &n) < 0 ? -1 : n;
}

static void print_one(void *ctx, const char *tid, const char *comm)
{
    (void)ctx;
    fprintf(stderr, " %s(%s)%s", tid, comm, is_grpc_pool_thread(comm) ? "*" : "");
}

void gp_test_print_threads(void)
{
    fprintf(stderr, "threads:");
    each_thread(print_one, NULL);
    fprintf(stderr, "  (*: gRPC core's pools, not counted)\n");
}

/* count() every 10 ms until at most limit or timeout_ms passed: the last
 * sample. */
static int wait_count_at_most(int (*count)(void), int limit, int timeout_ms)
{
    long long end = gp_test_now_ms() + timeout_ms;
    int n = count();
    while (n > limit && gp_test_now_ms() < end) {
        usleep(10 * 1000);
        n = count();
    }
    return n;
}

int gp_test_wait_threads_at_most(int limit, int timeout_ms)
{
    int n = wait_count_at_most(gp_test_count_threads, limit, timeout_ms);
    if (n > limit)
        gp_test_print_threads();
    return n;
}

int gp_test_wait_fds_at_most(int limit, int timeout_ms)
{
    return wait_count_at_most(gp_test_count_fds, limit, timeout_ms);
}

bool gp_test_no_children(void)
{
    /* WNOWAIT: looking must not reap a zombie someone else will wait for. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

void gp_test_check_gone(pid_t pid)
{
    GP_CHECK(pid > 0);
    errno = 0;
    GP_CHECK_INT(kill(pid, 0), ==, -1);
    GP_CHECK_INT(errno, ==, ESRCH);
    GP_CHECK_INT(waitpid(pid, NULL, WNOHANG), ==, -1);
}

bool gp_test_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close = strrchr(buf, ')');
    return close && close[1] == ' ' && close[2] != 'Z';
}

int gp_test_wait_child(pid_t pid, int timeout_ms)
{
    long long end = gp_test_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return st;
        if (w < 0 && errno != EINTR)
            return -1;
        if (gp_test_now_ms() >= end)
            return -1;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

char *gp_test_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (n + 1 == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

int gp_test_reap(pid_t pid, int timeout_ms)
{
    int st = gp_test_wait_child(pid, timeout_ms);
    if (st == -1) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

long long gp_test_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

double gp_test_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

long gp_test_ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int gp_test_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    bool sock = true;
    while (n > 0) {
        ssize_t w = sock ? send(fd, c, n, MSG_NOSIGNAL) : write(fd, c, n);
        if (w < 0 && sock && errno == ENOTSOCK) {
            sock = false;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

const char *gp__err_name(int err)
{
    static const char *const names[] = {
        [GP_OK] = "GP_OK",
        [GP_EINVAL] = "GP_EINVAL",
        [GP_ENOMEM] = "GP_ENOMEM",
        [GP_ESTATE] = "GP_ESTATE",
        [GP_ETIMEDOUT] = "GP_ETIMEDOUT",
        [GP_EPROTO] = "GP_EPROTO",
        [GP_EVERSION] = "GP_EVERSION",
        [GP_EEXITED] = "GP_EEXITED",
        [GP_ECONNECT] = "GP_ECONNECT",
        [GP_ECLOSED] = "GP_ECLOSED",
        [GP_EIO] = "GP_EIO",
        [GP_EREMOTE] = "GP_EREMOTE",
        [GP_ENOTFOUND] = "GP_ENOTFOUND",
        [GP_EMSGSIZE] = "GP_EMSGSIZE",
        [GP_ECHECKSUM] = "GP_ECHECKSUM",
        [GP_EUNSUPPORTED] = "GP_EUNSUPPORTED",
        [GP_ESYS] = "GP_ESYS",
        [GP_ETLS] = "GP_ETLS",
        [GP_EOF] = "GP_EOF",
        [GP_EBUSY] = "GP_EBUSY",
    };
    _Static_assert(sizeof names / sizeof names[0] == GP_ERR_COUNT_,
                   "a gp_err code has no name here");
    return err >= 0 && err < GP_ERR_COUNT_ ? names[err] : NULL;
}

const char *gp_test_err_text(int err, char *buf, size_t cap)
{
    const char *name = gp__err_name(err);
    if (name)
        snprintf(buf, cap, "%s (%s)", name, gp_strerror((gp_err)err));
    else
        snprintf(buf, cap, "%d (not a gp_err)", err);
    return buf;
}

long gp_test_status_field(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = strtol(line + kl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static void *sampler_main(void *arg)
{
    gp_test_sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        long th = gp_test_status_field("Threads"), rss = gp_test_status_field("VmRSS");
        long fds = gp_test_count_fds();
        if (th > s->peak_threads)
            s->peak_threads = th;
        if (rss > s->peak_rss)
            s->peak_rss = rss;
        if (fds > s->peak_fds)
            s->peak_fds = fds;
        usleep(2000);
    }
    return NULL;
}

void gp_test_sampler_start(gp_test_sampler *s)
{
    memset(s, 0, sizeof *s);
    s->base_threads = gp_test_status_field("Threads");
    s->base_rss = gp_test_status_field("VmRSS");
    s->base_fds = gp_test_count_fds();
    pthread_create(&s->t, NULL, sampler_main, s);
}

void gp_test_sampler_stop(gp_test_sampler *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->t, NULL);
}

static int port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET    ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
           : ss->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
                                       : -1;
}

int gp_test_tcp_ka_of(int port, bool local, gp_test_tcp_ka *out, int cap)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < cap) {
        int fd = atoi(e->d_name);
        /* Connected sockets only; a dual-stack listener's 127.0.0.1 shows
         * as ::ffff:127.0.0.1 (AF_INET6). */
        struct sockaddr_storage me, peer;
        socklen_t ml = sizeof me, pl = sizeof peer;
        if (e->d_name[0] == '.' || fd == dirfd(d) ||
            getsockname(fd, (struct sockaddr *)&me, &ml) != 0 ||
            getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
            port_of(local ? &me : &peer) != port)
            continue;
        gp_test_tcp_ka *k = &out[n++];
        *k = (gp_test_tcp_ka){0}; /* a getsockopt that fails leaves 0 */
        socklen_t l = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &k->on, &l);
        l = sizeof(int);
        getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &k->idle_s, &l);
        l = sizeof(int);
        getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &k->intvl_s, &l);
        l = sizeof(int);
        getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &k->cnt, &l);
        l = sizeof(int);
        getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &k->user_ms, &l);
    }
    if (d)
        closedir(d);
    return n;
}

void gp_test_check_tcp_ka(const gp_test_tcp_ka *got, int n, gp_test_tcp_ka want)
{
    for (int i = 0; i < n; i++) {
        GP_CHECK_INT(got[i].on, ==, want.on);
        if (!want.on)
            continue;
        GP_CHECK_INT(got[i].idle_s, ==, want.idle_s);
        GP_CHECK_INT(got[i].intvl_s, ==, want.intvl_s);
        GP_CHECK_INT(got[i].cnt, ==, want.cnt);
        GP_CHECK_INT(got[i].user_ms, ==, want.user_ms);
    }
}
