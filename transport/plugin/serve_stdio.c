/* GRPCStdio, plugin side; see serve_stdio.h. */
#include "transport/plugin/serve_stdio.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "transport/base/clock.h"
#include "transport/base/logfd.h"
#include "transport/base/sync.h"

#define POLL_MS 100  /* readers check for the end this often */
#define DRAIN_MS 200 /* at stop, the longest we keep sending what is pending */

typedef struct chunk {
    int ch; /* 1 stdout, 2 stderr */
    size_t n;
    uint8_t data[GP__STDIO_CHUNK];
} chunk;

struct gp__serve_stdio {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a chunk came, room was made, a stream came or went, stopping */
    chunk q[GP__STDIO_QUEUE];
    size_t head, count;
    int orig[3];      /* the real fd 1 and fd 2 (index by channel); -1 before redirect */
    int rfd[3];       /* the pipes' read ends (index by channel); -1 before redirect */
    pthread_t reader; /* one thread reads both pipes */
    bool reader_running;
    int streams;      /* StreamStdio calls being served */
    int sending;      /* chunks taken off the queue, reply in progress */
    int taking;       /* readers between poll and queueing what they read */
    bool passthrough; /* no stream came in time: write to orig */
    bool stopping, closing;
    int64_t deadline_ms;
    gp__stdio_source src;
};

static void write_fd(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* ---- a fatal signal while redirected ----
 * A plugin that aborts (abort(), a sanitizer's report with abort_on_error,
 * std::terminate, an assertion) writes its last words to fd 2, our pipe:
 * the readers and the stream die with the process and the words are lost
 * (a CI abort under ASan left nothing). On such a signal, while fd 1 and
 * fd 2 are redirected, what is queued and what is still in the pipes goes
 * to the real stderr, then the process dies of the same signal. Only
 * signals still at their default action: a sanitizer's own handlers stay. */
static const int fatal_sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
#define NFATAL (sizeof fatal_sigs / sizeof fatal_sigs[0])
static struct gp__serve_stdio *_Atomic g_fatal; /* the redirect in force */
static bool g_fatal_ours[NFATAL];               /* handlers we installed */

static void on_fatal_signal(int sig)
{
    struct gp__serve_stdio *s = atomic_exchange(&g_fatal, NULL);
    int out = s ? s->orig[2] : -1;
    if (out >= 0) {
        /* No locks here: the process is ending; reads are bounded. */
        char line[96] = "plugin: fatal signal ";
        size_t n = sizeof "plugin: fatal signal " - 1;
        char digits[12];
        size_t nd = 0;
        for (unsigned v = (unsigned)sig; nd == 0 || v > 0; v /= 10)
            digits[nd++] = (char)('0' + v % 10);
        while (nd > 0)
            line[n++] = digits[--nd];
        static const char tail[] = "; its output not yet sent to the host follows\n";
        memcpy(line + n, tail, sizeof tail - 1);
        write_fd(out, (const uint8_t *)line, n + sizeof tail - 1);
        size_t count = s->count < GP__STDIO_QUEUE ? s->count : GP__STDIO_QUEUE;
        for (size_t i = 0; i < count; i++) {
            const chunk *c = &s->q[(s->head + i) % GP__STDIO_QUEUE];
            write_fd(out, c->data, c->n < sizeof c->data ? c->n : sizeof c->data);
        }
        uint8_t buf[GP__STDIO_CHUNK];
        for (int ch = 2; ch >= 1; ch--) {
            int fd = s->rfd[ch];
            if (fd < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
                continue;
            for (int k = 0; k < 64; k++) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r <= 0)
                    break;
                write_fd(out, buf, (size_t)r);
            }
        }
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    raise(sig); /* blocked in here: delivered, at its default, on return */
}

static void fatal_watch_on(struct gp__serve_stdio *s)
{
    atomic_store(&g_fatal, s);
    for (size_t i = 0; i < NFATAL; i++) {
        struct sigaction old, sa;
        if (sigaction(fatal_sigs[i], NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
            old.sa_handler != SIG_DFL)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        g_fatal_ours[i] = sigaction(fatal_sigs[i], &sa, NULL) == 0;
    }
}

static void fatal_watch_off(struct gp__serve_stdio *s)
{
    struct gp__serve_stdio *want = s;
    if (!atomic_compare_exchange_strong(&g_fatal, &want, NULL))
        return; /* not the redirect in force */
    for (size_t i = 0; i < NFATAL; i++) {
        struct sigaction cur;
        if (g_fatal_ours[i] && sigaction(fatal_sigs[i], NULL, &cur) == 0 &&
            !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == on_fatal_signal) {
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            sigaction(fatal_sigs[i], &dfl, NULL);
        }
        g_fatal_ours[i] = false;
    }
}

/* Under mu. */
static void flush_queue_locked(struct gp__serve_stdio *s)
{
    while (s->count > 0) {
        chunk *c = &s->q[s->head];
        if (s->orig[c->ch] >= 0)
            write_fd(s->orig[c->ch], c->data, c->n);
        s->head = (s->head + 1) % GP__STDIO_QUEUE;
        s->count--;
    }
}

static void push_locked(struct gp__serve_stdio *s, int ch, const uint8_t *p, size_t n)
{
    chunk *c = &s->q[(s->head + s->count) % GP__STDIO_QUEUE];
    c->ch = ch;
    c->n = n;
    memcpy(c->data, p, n);
    s->count++;
    pthread_cond_broadcast(&s->cv);
}

/* One chunk read from a pipe: to the stream, queued until one comes, or
 * (none in time, or stopping) to the real fd. */
static void take_chunk(struct gp__serve_stdio *s, int ch, const uint8_t *p, size_t n)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->streams > 0 && !s->stopping) {
            if (s->count < GP__STDIO_QUEUE) {
                push_locked(s, ch, p, n);
                break;
            }
            pthread_cond_wait(&s->cv, &s->mu); /* the host reads: wait for it, as Go */
            continue;
        }
        if (!s->passthrough && !s->stopping && gp__now_ms() < s->deadline_ms &&
            s->count < GP__STDIO_QUEUE) {
            push_locked(s, ch, p, n);
            break;
        }
        /* Nobody to send to: never block the plugin; old bytes first. */
        s->passthrough = true;
        flush_queue_locked(s);
        write_fd(s->orig[ch], p, n);
        break;
    }
    pthread_mutex_unlock(&s->mu);
}

/* One read of channel ch's pipe; false at its end (or a hard error). */
static bool read_one(struct gp__serve_stdio *s, int ch, uint8_t *buf)
{
    /* Counted from before the read until queued, so that a drain at
     * stop never sees an empty pipe and an empty queue in between. */
    pthread_mutex_lock(&s->mu);
    s->taking++;
    pthread_mutex_unlock(&s->mu);
    ssize_t n = read(s->rfd[ch], buf, GP__STDIO_CHUNK);
    if (n > 0)
        take_chunk(s, ch, buf, (size_t)n);
    pthread_mutex_lock(&s->mu);
    s->taking--;
    pthread_mutex_unlock(&s->mu);
    return n > 0 || (n < 0 && (errno == EINTR || errno == EAGAIN));
}

/* Both pipes on one thread (a thread fewer to start with the plugin). */
static void *read_pipes(void *arg)
{
    struct gp__serve_stdio *s = arg;
    uint8_t buf[GP__STDIO_CHUNK];
    bool open[3] = {false, true, true};
    /* Once closing, read what is there for at most POLL_MS more: a child
     * that inherited fd 1 or 2 and keeps writing must not hold the stop. */
    int64_t until_ms = -1;
    while (open[1] || open[2]) {
        struct pollfd p[2];
        int chs[2], n = 0;
        for (int ch = 1; ch <= 2; ch++)
            if (open[ch]) {
                p[n] = (struct pollfd){.fd = s->rfd[ch], .events = POLLIN};
                chs[n++] = ch;
            }
        int pr = poll(p, (nfds_t)n, POLL_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            break;
        for (int i = 0; i < n && pr > 0; i++)
            if (p[i].revents && !read_one(s, chs[i], buf))
                open[chs[i]] = false;
        pthread_mutex_lock(&s->mu);
        bool closing = s->closing;
        pthread_mutex_unlock(&s->mu);
        if (closing && pr == 0) /* a child may still hold the pipe: do not wait for it */
            break;
        if (closing && until_ms < 0)
            until_ms = gp__now_ms() + POLL_MS;
        if (closing && gp__now_ms() >= until_ms)
            break;
    }
    return NULL;
}

/* ---- the source the wire's StreamStdio handler reads (core/wire.h) ---- */

static void src_open(void *ctx)
{
    struct gp__serve_stdio *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->streams++;
    s->passthrough = false;
    pthread_mutex_unlock(&s->mu);
}

static int src_next(void *ctx, int *channel, void *buf, size_t cap, size_t *n, int wait_ms)
{
    struct gp__serve_stdio *s = ctx;
    struct timespec until = gp__deadline_in(wait_ms);
    pthread_mutex_lock(&s->mu);
    while (s->count == 0 && !s->stopping)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT && s->count == 0 &&
            !s->stopping) {
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    chunk *c = &s->q[s->head];
    *channel = c->ch;
    *n = c->n < cap ? c->n : cap;
    memcpy(buf, c->data, *n);
    s->head = (s->head + 1) % GP__STDIO_QUEUE;
    s->count--;
    s->sending++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 1;
}

static void src_sent(void *ctx)
{
    struct gp__serve_stdio *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->sending--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void src_close(void *ctx)
{
    struct gp__serve_stdio *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->streams--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

gp__serve_stdio *gp__serve_stdio_new(void)
{
    struct gp__serve_stdio *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    gp__cond_init_monotonic(&s->cv);
    s->orig[0] = s->orig[1] = s->orig[2] = -1;
    s->rfd[0] = s->rfd[1] = s->rfd[2] = -1;
    s->src = (gp__stdio_source){
        .ctx = s, .open = src_open, .next = src_next, .sent = src_sent, .close = src_close};
    return s;
}

const gp__stdio_source *gp__serve_stdio_source(gp__serve_stdio *s)
{
    return &s->src;
}

int gp__serve_stdio_real_stdout(gp__serve_stdio *s)
{
    return s && s->orig[1] >= 0 ? s->orig[1] : 1;
}

static void restore_fds(gp__serve_stdio *s)
{
    fatal_watch_off(s);
    if (s->orig[1] >= 0) {
        fflush(stdout);
        fflush(stderr);
        /* The pipes' write ends go: the readers drain them to orig. */
        dup2(s->orig[1], 1);
        dup2(s->orig[2], 2);
        gp__log_set_stderr_fd(-1);
    }
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_mutex_unlock(&s->mu);
    if (s->reader_running)
        pthread_join(s->reader, NULL);
    s->reader_running = false;
    for (int ch = 1; ch <= 2; ch++) {
        if (s->rfd[ch] >= 0)
            close(s->rfd[ch]);
        s->rfd[ch] = -1;
    }
    pthread_mutex_lock(&s->mu);
    flush_queue_locked(s);
    pthread_mutex_unlock(&s->mu);
    for (int ch = 1; ch <= 2; ch++) {
        if (s->orig[ch] >= 0)
            close(s->orig[ch]);
        s->orig[ch] = -1;
    }
}

gp_err gp__serve_stdio_redirect(gp__serve_stdio *s, char *err, size_t errlen)
{
    int p1[2] = {-1, -1}, p2[2] = {-1, -1};
    int o1 = -1, o2 = -1;
    if (pipe2(p1, O_CLOEXEC) != 0 || pipe2(p2, O_CLOEXEC) != 0 ||
        (o1 = fcntl(1, F_DUPFD_CLOEXEC, 3)) < 0 || (o2 = fcntl(2, F_DUPFD_CLOEXEC, 3)) < 0) {
        snprintf(err, errlen, "stdio: cannot make pipes: %s", strerror(errno));
        int fds[] = {p1[0], p1[1], p2[0], p2[1], o1, o2};
        for (size_t i = 0; i < 6; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        return GP_ESYS;
    }
    fflush(stdout);
    fflush(stderr);
    /* As Go's unbuffered os.Stdout: a printf line leaves at its newline. */
    setvbuf(stdout, NULL, _IOLBF, BUFSIZ);
    s->orig[1] = o1;
    s->orig[2] = o2;
    gp__log_set_stderr_fd(o2); /* our hclog lines stay on the real stderr */
    dup2(p1[1], 1);            /* without CLOEXEC: children print here too */
    dup2(p2[1], 2);
    close(p1[1]);
    close(p2[1]);
    pthread_mutex_lock(&s->mu);
    s->deadline_ms = gp__now_ms() + GP__STDIO_WAIT_MS;
    pthread_mutex_unlock(&s->mu);
    s->rfd[1] = p1[0];
    s->rfd[2] = p2[0];
    return GP_OK;
}

gp_err gp__serve_stdio_start(gp__serve_stdio *s, char *err, size_t errlen)
{
    if (s->rfd[1] < 0) {
        snprintf(err, errlen, "stdio: not redirected");
        return GP_ESTATE;
    }
    s->reader_running = gp__thread_start_small(&s->reader, read_pipes, s) == 0;
    if (!s->reader_running) {
        /* A channel nobody reads would block the plugin's writes: undo. */
        restore_fds(s);
        snprintf(err, errlen, "stdio: cannot start the pipe reader");
        return GP_ESYS;
    }
    fatal_watch_on(s);
    return GP_OK;
}

static int pipe_pending(const struct gp__serve_stdio *s, int ch)
{
    int n = 0;
    if (s->reader_running && ioctl(s->rfd[ch], FIONREAD, &n) != 0)
        n = 0;
    return n;
}

void gp__serve_stdio_stopping(gp__serve_stdio *s)
{
    if (!s)
        return;
    /* What the plugin wrote before the host asked us to stop still goes
     * over the stream while the call is open (briefly: DRAIN_MS). */
    fflush(stdout);
    fflush(stderr);
    int64_t end = gp__now_ms() + DRAIN_MS;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        /* Without a stream yet, wait too: the host opened it at connect,
         * its handler may just be starting. */
        bool idle = s->count == 0 && s->sending == 0 && s->taking == 0;
        pthread_mutex_unlock(&s->mu);
        if ((idle && pipe_pending(s, 1) == 0 && pipe_pending(s, 2) == 0) || gp__now_ms() >= end)
            break;
        usleep(1000);
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* fd 1 and fd 2 back to what they were, the readers drained (to the real
 * fds) and joined, the pipes and the saved fds closed. Idempotent. */
void gp__serve_stdio_free(gp__serve_stdio *s)
{
    if (!s)
        return;
    gp__serve_stdio_stopping(s);
    restore_fds(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
