/* The owner thread of a plugin process: spawn, watch, drain, reap. */
#include "transport/base/sync.h"
#include "transport/process/proc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/base/strbuf.h"
#include "transport/process/hclog.h"
#include "transport/process/lines.h"
#include "transport/process/spawn.h"
#include "transport/process/tail.h"

enum { LINE_WAIT, LINE_GOT, LINE_TOO_LONG };

/* Per poll round and pipe: read at most this much, so one chatty pipe
 * cannot starve the other or the exit check. */
#define READ_CHUNK 65536
/* After the exit, what is left in the pipes is drained up to this. */
#define DRAIN_MAX (4u << 20)
/* Output files (gp__proc_opts.out_path) are followed through inotify;
 * without it, looked at this often. */
#define FOLLOW_POLL_MS 50
/* How long kill waits for a SIGKILLed process to be reaped before it
 * gives up on it (a process stuck in the kernel). */
#define REAP_WAIT_MS 10000

/* The last bytes read from an output file, which end at our read offset.
 * The plugin only appends, so they stay as they are unless the file was
 * cut back (the store's log cap) since: then the bytes there differ, or
 * are gone. */
#define FOLLOW_MARK 32
typedef struct follow_mark {
    unsigned char b[FOLLOW_MARK];
    size_t n;
} follow_mark;

struct gp__proc {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t kill_mu; /* serialises gp__proc_kill */

    /* Set before the thread starts, read-only after. */
    gp__spawn_opts sopts;
    const gp_logger *logger;
    char *log_name;
    char *out_path, *err_path; /* output files, or NULL */
    int wake_fd;

    /* Guarded by mu. */
    int spawned; /* 0 pending, 1 ok, -1 failed */
    gp_err spawn_err;
    char spawn_msg[512];
    gp__spawned sp;
    int line_state;
    char *line;
    size_t line_len;
    char long_start[48]; /* the start of an over-long first line */
    size_t long_start_len;
    bool reaped;
    int status;
    unsigned sent_sigs; /* bit n: we sent signal n (gp__proc_sent_signal) */
    bool stop;
    bool killed;
    bool thread_live;
    gp__tail tail;

    /* Owner thread only. */
    pthread_t thread;
    gp__lines out_lines, err_lines;
    bool out_eof, err_eof;
    follow_mark out_mark, err_mark; /* output files only */
    bool panicking;                 /* a Go panic began on stderr */
};

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait on p->cv until *flag or the deadline; mu held. */
static bool wait_flag(gp__proc *p, const bool *flag, int ms)
{
    struct timespec dl;
    deadline_after(&dl, ms < 0 ? 0 : ms);
    while (!*flag) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
            break;
    }
    return *flag;
}

static void on_stdout_line(void *ctx, const char *line, size_t len, int piece)
{
    gp__proc *p = ctx;
    pthread_mutex_lock(&p->mu);
    if (p->line_state == LINE_WAIT) {
        if (piece) {
            p->line_state = LINE_TOO_LONG;
            /* Keep its start for the error message. */
            size_t n = len < sizeof p->long_start - 1 ? len : sizeof p->long_start - 1;
            memcpy(p->long_start, line, n);
            p->long_start_len = n;
        } else {
            p->line = malloc(len + 1);
            if (p->line) {
                memcpy(p->line, line, len + 1);
                p->line_len = len;
                p->line_state = LINE_GOT;
            } else {
                p->line_state = LINE_TOO_LONG;
            }
        }
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    pthread_mutex_unlock(&p->mu);
    /* go-plugin throws later stdout away; we keep it visible at DEBUG. */
    gp_log_kv kv = {"stream", "stdout"};
    gp_logf(p->logger, GP_LOG_DEBUG, p->log_name, &kv, 1, "%s", line);
}

static void on_stderr_line(void *ctx, const char *line, size_t len, int piece)
{
    gp__proc *p = ctx;
    (void)piece;
    gp__hclog_rec r;
    if (gp__hclog_parse(line, len, &r) != GP_OK) {
        gp_logf(p->logger, GP_LOG_DEBUG, p->log_name, NULL, 0, "%s", line);
        return;
    }
    /* As go-plugin ≥1.7: a Go crash ("panic: ", "fatal error: ") turns the
     * plain lines after it (the goroutine dump) into errors. */
    if (!r.json && (strncmp(line, "panic: ", 7) == 0 || strncmp(line, "fatal error: ", 13) == 0))
        p->panicking = true;
    gp_log_level level = (!r.json && p->panicking) ? GP_LOG_ERROR : r.level;
    gp_logf(p->logger, level, p->log_name, r.kv, r.nkv, "%s", r.msg);
    gp__hclog_rec_free(&r);
}

static void mark_read(follow_mark *m, const char *buf, size_t r)
{
    if (r >= FOLLOW_MARK) {
        memcpy(m->b, buf + r - FOLLOW_MARK, FOLLOW_MARK);
        m->n = FOLLOW_MARK;
        return;
    }
    size_t keep = m->n < FOLLOW_MARK - r ? m->n : FOLLOW_MARK - r;
    memmove(m->b, m->b + m->n - keep, keep);
    memcpy(m->b + keep, buf, r);
    m->n = keep + r;
}

/* Before each read of an output file: was it cut back since we read it
 * (shorter than our offset, or grown back past it with other bytes)? Then
 * read on from its new start. */
static void rewind_if_cut(int fd, follow_mark *m)
{
    off_t at = lseek(fd, 0, SEEK_CUR);
    if (at <= 0)
        return;
    if (m->n == 0) {
        /* Nothing read here yet (we start at the end of a file that was
         * there): a file now shorter than our offset was cut. */
        struct stat sb;
        if (fstat(fd, &sb) == 0 && at > sb.st_size)
            lseek(fd, 0, SEEK_SET);
        return;
    }
    if (at < (off_t)m->n)
        return; /* not where we left it: nothing to compare */
    unsigned char now[FOLLOW_MARK];
    ssize_t r = pread(fd, now, m->n, at - (off_t)m->n);
    if (r < 0 || (r == (ssize_t)m->n && memcmp(now, m->b, m->n) == 0))
        return; /* a read error is no cut: the read below will say */
    if (lseek(fd, 0, SEEK_SET) == 0)
        m->n = 0;
}

/* Reads from a pipe or an output file up to *budget; false at EOF or on
 * a hard error. follow: the stream is a file the plugin may still write,
 * so its end is "nothing yet", not EOF. */
static bool pump(gp__proc *p, int fd, bool is_err, size_t *budget, bool follow)
{
    char buf[8192];
    size_t got = 0;
    follow_mark *mark =
        (is_err ? p->sp.err_file : p->sp.out_file) ? (is_err ? &p->err_mark : &p->out_mark) : NULL;
    while (got < *budget) {
        if (mark)
            rewind_if_cut(fd, mark);
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r > 0 && mark)
            mark_read(mark, buf, (size_t)r);
        if (r == 0 && follow)
            break;
        if (r <= 0) {
            gp__lines *l = is_err ? &p->err_lines : &p->out_lines;
            gp__lines_finish(l, is_err ? on_stderr_line : on_stdout_line, p);
            return false;
        }
        got += (size_t)r;
        if (is_err) {
            pthread_mutex_lock(&p->mu);
            gp__tail_add(&p->tail, buf, (size_t)r);
            pthread_mutex_unlock(&p->mu);
            gp__lines_feed(&p->err_lines, buf, (size_t)r, on_stderr_line, p);
        } else {
            gp__lines_feed(&p->out_lines, buf, (size_t)r, on_stdout_line, p);
        }
    }
    *budget -= got < *budget ? got : *budget;
    return true;
}

/* What is left, up to DRAIN_MAX a stream; a file's current end is its
 * end here (the plugin has exited, or we stop following it). */
static void drain(gp__proc *p)
{
    size_t budget = DRAIN_MAX;
    if (!p->out_eof && !pump(p, p->sp.out_fd, false, &budget, false))
        p->out_eof = true;
    budget = DRAIN_MAX;
    if (!p->err_eof && !pump(p, p->sp.err_fd, true, &budget, false))
        p->err_eof = true;
}

/* An inotify descriptor that wakes us when an output file grows; -1 when
 * there is no file or no inotify (then we look every FOLLOW_POLL_MS). */
static int follow_fd(gp__proc *p)
{
    if (!p->out_path && !p->err_path)
        return -1;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return -1;
    const char *paths[] = {p->out_path, p->err_path};
    for (int i = 0; i < 2; i++) {
        if (paths[i] && inotify_add_watch(fd, paths[i], IN_MODIFY) < 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Read output files as far as they go now. True if a budget ran out
 * (more may be there: look again without waiting). */
static bool pump_files(gp__proc *p)
{
    bool more = false;
    size_t budget = READ_CHUNK;
    if (p->sp.out_file && !p->out_eof) {
        if (!pump(p, p->sp.out_fd, false, &budget, true))
            p->out_eof = true;
        more |= budget == 0;
    }
    budget = READ_CHUNK;
    if (p->sp.err_file && !p->err_eof) {
        if (!pump(p, p->sp.err_fd, true, &budget, true))
            p->err_eof = true;
        more |= budget == 0;
    }
    return more;
}

/* The main process has exited (not yet reaped): take what it wrote, kill
 * what it left in its group, reap, publish. */
static void reap(gp__proc *p)
{
    drain(p);
    int status = 0;
    pthread_mutex_lock(&p->mu);
    /* The zombie still holds the pgid, so this reaches only its group. */
    killpg(p->sp.pid, SIGKILL);
    while (waitpid(p->sp.pid, &status, 0) < 0 && errno == EINTR)
        ;
    p->reaped = true;
    p->status = status;
    if (p->sp.pidfd >= 0) {
        close(p->sp.pidfd);
        p->sp.pidfd = -1;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static bool has_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    /* WNOWAIT: look, but leave the zombie (see reap). */
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return si.si_pid == pid;
}

static void watch(gp__proc *p)
{
    int ino = follow_fd(p);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stop, reaped = p->reaped;
        int pidfd = p->sp.pidfd;
        pthread_mutex_unlock(&p->mu);
        if (stop || (reaped && p->out_eof && p->err_eof))
            break;
        /* Files first: inotify only tells of writes after its watch. */
        bool more = pump_files(p);
        bool following = (p->sp.out_file && !p->out_eof) || (p->sp.err_file && !p->err_eof);
        struct pollfd fds[5];
        int n = 0, i_out = -1, i_err = -1, i_pid = -1, i_ino = -1;
        fds[n] = (struct pollfd){.fd = p->wake_fd, .events = POLLIN};
        n++;
        if (!p->out_eof && !p->sp.out_file) {
            i_out = n;
            fds[n++] = (struct pollfd){.fd = p->sp.out_fd, .events = POLLIN};
        }
        if (!p->err_eof && !p->sp.err_file) {
            i_err = n;
            fds[n++] = (struct pollfd){.fd = p->sp.err_fd, .events = POLLIN};
        }
        if (!reaped && pidfd >= 0) {
            i_pid = n;
            fds[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        }
        if (following && ino >= 0) {
            i_ino = n;
            fds[n++] = (struct pollfd){.fd = ino, .events = POLLIN};
        }
        /* Without a pidfd we look for the exit every 50 ms; files without
         * inotify as often. */
        int timeout = (!reaped && pidfd < 0) ? 50 : -1;
        if (following && ino < 0)
            timeout = FOLLOW_POLL_MS;
        if (more)
            timeout = 0;
        int rc = poll(fds, (nfds_t)n, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && fds[0].revents) {
            uint64_t v;
            ssize_t r = read(p->wake_fd, &v, sizeof v);
            (void)r;
        }
        if (rc > 0 && i_ino >= 0 && fds[i_ino].revents) {
            char ev[4096]; /* the events only say "grew": read them away */
            while (read(ino, ev, sizeof ev) > 0)
                ;
        }
        size_t budget = READ_CHUNK;
        if (i_out >= 0 && fds[i_out].revents && !pump(p, p->sp.out_fd, false, &budget, false))
            p->out_eof = true;
        budget = READ_CHUNK;
        if (i_err >= 0 && fds[i_err].revents && !pump(p, p->sp.err_fd, true, &budget, false))
            p->err_eof = true;
        if (!reaped && ((i_pid >= 0 && fds[i_pid].revents) || (pidfd < 0 && has_exited(p->sp.pid))))
            reap(p);
    }
    if (ino >= 0)
        close(ino);
    /* Stopping: keep what is already in the pipes (and files). */
    drain(p);
    gp__lines_finish(&p->out_lines, on_stdout_line, p);
    gp__lines_finish(&p->err_lines, on_stderr_line, p);
}

static void *owner(void *arg)
{
    gp__proc *p = arg;
    char msg[512] = "";
    gp__spawned sp;
    gp_err rc = gp__spawn(&p->sopts, &sp, msg, sizeof msg);
    pthread_mutex_lock(&p->mu);
    p->spawned = rc == GP_OK ? 1 : -1;
    p->spawn_err = rc;
    snprintf(p->spawn_msg, sizeof p->spawn_msg, "%s", msg);
    if (rc == GP_OK)
        p->sp = sp;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (rc == GP_OK)
        watch(p);
    return NULL;
}

static void proc_destroy(gp__proc *p)
{
    gp__lines_free(&p->out_lines);
    gp__lines_free(&p->err_lines);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    free(p->line);
    free(p->log_name);
    free(p->out_path);
    free(p->err_path);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->kill_mu);
    free(p);
}

gp_err gp__proc_start(const gp__proc_opts *o, gp__proc **out, char *err, size_t errlen)
{
    *out = NULL;
    gp__proc *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return GP_ENOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->kill_mu, NULL);
    gp__cond_init_monotonic(&p->cv);
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p->sp.pid = -1;
    p->sp.pidfd = p->sp.out_fd = p->sp.err_fd = -1;
    p->sopts = (gp__spawn_opts){.path = o->path,
                                .argv = o->argv,
                                .envp = o->envp,
                                .exec_fd = o->exec_fd,
                                .exec_fd_script = o->exec_fd_script,
                                .detached = o->detached};
    p->logger = o->logger;
    p->log_name = strdup(o->log_name ? o->log_name : "");
    p->out_path = o->out_path ? strdup(o->out_path) : NULL;
    p->err_path = o->err_path ? strdup(o->err_path) : NULL;
    p->sopts.out_path = p->out_path;
    p->sopts.err_path = p->err_path;
    if (p->wake_fd < 0 || !p->log_name || (o->out_path && !p->out_path) ||
        (o->err_path && !p->err_path) || gp__lines_init(&p->out_lines, GP__PROC_LINE_MAX) ||
        gp__lines_init(&p->err_lines, GP__PROC_LINE_MAX)) {
        gp_err rc = p->wake_fd < 0 ? GP_ESYS : GP_ENOMEM;
        snprintf(err, errlen, "start plugin %s: %s", o->path,
                 p->wake_fd < 0 ? strerror(errno) : "out of memory");
        proc_destroy(p);
        return rc;
    }
    int trc = pthread_create(&p->thread, NULL, owner, p);
    if (trc != 0) {
        snprintf(err, errlen, "start plugin %s: thread: %s", o->path, strerror(trc));
        proc_destroy(p);
        return GP_ESYS;
    }
    pthread_mutex_lock(&p->mu);
    while (p->spawned == 0)
        pthread_cond_wait(&p->cv, &p->mu);
    bool ok = p->spawned > 0;
    gp_err rc = p->spawn_err;
    if (!ok)
        snprintf(err, errlen, "%s", p->spawn_msg);
    p->thread_live = ok;
    pthread_mutex_unlock(&p->mu);
    if (!ok) {
        pthread_join(p->thread, NULL);
        proc_destroy(p);
        return rc;
    }
    *out = p;
    return GP_OK;
}

pid_t gp__proc_pid(const gp__proc *p)
{
    return p ? p->sp.pid : -1;
}

void gp__proc_describe_status(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "wait status %#x", (unsigned)status);
}

gp_err gp__proc_wait_line(gp__proc *p, int timeout_ms, char **line, size_t *len, char *err,
                          size_t errlen)
{
    *line = NULL;
    *len = 0;
    struct timespec dl;
    deadline_after(&dl, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&p->mu);
    while (p->line_state == LINE_WAIT && !p->reaped) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
            break;
    }
    gp_err rc = GP_OK;
    if (p->line_state == LINE_GOT) {
        *line = malloc(p->line_len + 1);
        if (*line) {
            memcpy(*line, p->line, p->line_len + 1);
            *len = p->line_len;
        } else {
            snprintf(err, errlen, "out of memory");
            rc = GP_ENOMEM;
        }
    } else if (p->line_state == LINE_TOO_LONG) {
        gp__strbuf q;
        gp__strbuf_init(&q);
        gp__strbuf_quote(&q, p->long_start, p->long_start_len, sizeof p->long_start);
        snprintf(err, errlen,
                 "handshake line longer than %d bytes: expected one line on the plugin's "
                 "stdout, got %d bytes and no newline, starting %s...",
                 GP__PROC_LINE_MAX, GP__PROC_LINE_MAX, q.ok ? q.data : "");
        gp__strbuf_free(&q);
        rc = GP_EMSGSIZE;
    } else if (p->reaped) {
        char st[96];
        gp__proc_describe_status(p->status, st, sizeof st);
        snprintf(err, errlen,
                 "plugin exited before we could connect: expected a handshake line on its "
                 "stdout, the process ended first (%s)",
                 st);
        rc = GP_EEXITED;
    } else {
        snprintf(err, errlen,
                 "timeout while waiting for plugin to start: expected a handshake line on "
                 "its stdout within %d ms, got none",
                 timeout_ms);
        rc = GP_ETIMEDOUT;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

gp_err gp__proc_signal(gp__proc *p, int sig)
{
    pthread_mutex_lock(&p->mu);
    gp_err rc = p->reaped ? GP_ESTATE : kill(p->sp.pid, sig) == 0 ? GP_OK : GP_ESYS;
    if (rc == GP_OK && sig > 0 && sig < 32)
        p->sent_sigs |= 1u << sig;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

bool gp__proc_wait_exit(gp__proc *p, int timeout_ms)
{
    pthread_mutex_lock(&p->mu);
    bool done = wait_flag(p, &p->reaped, timeout_ms);
    pthread_mutex_unlock(&p->mu);
    return done;
}

bool gp__proc_exited(gp__proc *p, int *status)
{
    pthread_mutex_lock(&p->mu);
    bool done = p->reaped;
    if (done && status)
        *status = p->status;
    pthread_mutex_unlock(&p->mu);
    return done;
}

bool gp__proc_sent_signal(gp__proc *p, int sig)
{
    pthread_mutex_lock(&p->mu);
    bool sent = sig > 0 && sig < 32 && (p->sent_sigs & (1u << sig));
    pthread_mutex_unlock(&p->mu);
    return sent;
}

size_t gp__proc_stderr_tail(gp__proc *p, char *out, size_t cap)
{
    pthread_mutex_lock(&p->mu);
    size_t n = gp__tail_copy(&p->tail, out, cap);
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Wake the owner thread (p->stop is set), join it, close the child's
 * descriptors and mark the process done. Called with kill_mu held; drops it. */
static void stop_owner(gp__proc *p)
{
    uint64_t one = 1;
    ssize_t w = write(p->wake_fd, &one, sizeof one);
    (void)w;
    pthread_join(p->thread, NULL);
    pthread_mutex_lock(&p->mu);
    if (p->sp.pidfd >= 0)
        close(p->sp.pidfd);
    if (p->sp.out_fd >= 0)
        close(p->sp.out_fd);
    if (p->sp.err_fd >= 0)
        close(p->sp.err_fd);
    p->sp.pidfd = p->sp.out_fd = p->sp.err_fd = -1;
    p->killed = true;
    p->thread_live = false;
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->kill_mu);
}

void gp__proc_kill(gp__proc *p, int grace_ms, gp__proc_graceful_fn graceful, void *ctx)
{
    pthread_mutex_lock(&p->kill_mu);
    pthread_mutex_lock(&p->mu);
    bool killed = p->killed, reaped = p->reaped;
    pthread_mutex_unlock(&p->mu);
    if (killed) {
        pthread_mutex_unlock(&p->kill_mu);
        return;
    }
    if (!reaped && graceful && graceful(ctx) == GP_OK && grace_ms > 0)
        gp__proc_wait_exit(p, grace_ms);
    pthread_mutex_lock(&p->mu);
    if (!p->reaped) {
        /* Not reaped: the pid (and pgid) is still ours. */
        if (grace_ms > 0 && graceful)
            gp_logf(p->logger, GP_LOG_WARN, p->log_name, NULL, 0,
                    "plugin failed to exit gracefully");
        killpg(p->sp.pid, SIGKILL);
        kill(p->sp.pid, SIGKILL);
        p->sent_sigs |= 1u << SIGKILL;
    }
    bool done = wait_flag(p, &p->reaped, REAP_WAIT_MS);
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    if (!done)
        gp_logf(p->logger, GP_LOG_ERROR, p->log_name, NULL, 0,
                "plugin pid %d did not die within %d ms of SIGKILL", (int)p->sp.pid, REAP_WAIT_MS);
    stop_owner(p);
}

void gp__proc_release(gp__proc *p)
{
    pthread_mutex_lock(&p->kill_mu);
    pthread_mutex_lock(&p->mu);
    bool killed = p->killed;
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    if (killed) {
        pthread_mutex_unlock(&p->kill_mu);
        return;
    }
    stop_owner(p);
}

void gp__proc_free(gp__proc *p)
{
    if (!p)
        return;
    gp__proc_kill(p, 0, NULL, NULL);
    proc_destroy(p);
}
