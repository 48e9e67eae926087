/* The control socket, both ends (ctl.h has the protocol). */
#include "tools/gpctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A serve answers within this, or the client gives up (a command may
 * start a plugin, whose own start timeout is 60 s). */
#define CLIENT_TIMEOUT_MS 120000
/* A client must send its whole request within this. */
#define SERVER_READ_TIMEOUT_MS 5000

/* Connections answered at once: an enable waits for its plugin's start
 * (up to 67 s with the manager's defaults), and must not hold up a
 * disable, or a second enable. A ninth waits in the listen queue until
 * one ends. */
#define CTL_WORKERS 8

typedef struct worker {
    struct gpctl_ctl *c;
    int fd;
    pthread_t thread;
    bool used, done; /* guarded by c->mu */
} worker;

struct gpctl_ctl {
    int dirfd, lfd, wake[2];
    char path[64]; /* /proc/self/fd/N/gpctl.sock */
    gpctl_ctl_handler h;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a worker is done */
    worker w[CTL_WORKERS];
};

/* The socket's address through an O_PATH fd of the root: short whatever
 * the root's length. */
static int sock_addr(int dirfd, struct sockaddr_un *sa, char *path, size_t cap)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(path, cap, "/proc/self/fd/%d/%s", dirfd, GPCTL_SOCK_NAME);
    if (n < 0 || (size_t)n >= cap || (size_t)n >= sizeof sa->sun_path)
        return -1;
    memcpy(sa->sun_path, path, (size_t)n + 1);
    return 0;
}

typedef struct reader {
    int fd;
    char buf[GPCTL_CTL_MAX_LINE + 1];
    size_t len;
    int timeout_ms;     /* for each wait; */
    long long until_ms; /* or, if not 0, one deadline for all (now_ms) */
} reader;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read one line (without its newline) into `line` within the timeout;
 * 1 = a line, 0 = end of stream before one, -1 = error, timeout, a line
 * too long or holding a NUL byte (it could not be passed on as a C
 * string). */
static int read_line(reader *r, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl) {
            size_t n = (size_t)(nl - r->buf);
            if (n >= cap || memchr(r->buf, '\0', n))
                return -1;
            memcpy(line, r->buf, n);
            line[n] = '\0';
            memmove(r->buf, nl + 1, r->len - n - 1);
            r->len -= n + 1;
            return 1;
        }
        if (r->len >= GPCTL_CTL_MAX_LINE)
            return -1;
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        long long left = r->until_ms ? r->until_ms - now_ms() : r->timeout_ms;
        int pr = left <= 0 ? 0 : poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t got = read(r->fd, r->buf + r->len, GPCTL_CTL_MAX_LINE - r->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            return 0;
        r->len += (size_t)got;
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- client ---- */

int gpctl_forward(const char *root, int argc, char *const *argv)
{
    for (int i = 0; i < argc; i++)
        if (strchr(argv[i], '\n')) {
            fprintf(stderr, "gpctl: argument %d: expected no newline in it\n", i + 1);
            return 1;
        }
    int dirfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -1; /* no root: nobody serves it */
    struct sockaddr_un sa;
    char path[64];
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sock_addr(dirfd, &sa, path, sizeof path) != 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        /* ENOENT: no socket; ECONNREFUSED: a serve that died left it. */
        if (fd >= 0)
            close(fd);
        close(dirfd);
        return -1;
    }
    close(dirfd);
    char head[64];
    snprintf(head, sizeof head, "%s %d\n", GPCTL_CTL_VERSION, argc);
    char cwd[4096];
    errno = 0;
    if (!getcwd(cwd, sizeof cwd) || strchr(cwd, '\n')) {
        fprintf(stderr, "gpctl: the working directory: %s\n",
                errno ? strerror(errno) : "it holds a newline");
        close(fd);
        return 1;
    }
    int bad = write_all(fd, head, strlen(head)) || write_all(fd, cwd, strlen(cwd)) ||
              write_all(fd, "\n", 1);
    for (int i = 0; i < argc && !bad; i++)
        bad = write_all(fd, argv[i], strlen(argv[i])) || write_all(fd, "\n", 1);
    if (bad) {
        fprintf(stderr, "gpctl: send to the running serve (%s/%s): %s\n", root, GPCTL_SOCK_NAME,
                strerror(errno));
        close(fd);
        return 1;
    }
    reader *r = calloc(1, sizeof *r);
    char *line = malloc(GPCTL_CTL_MAX_LINE + 1);
    int code = 1;
    if (!r || !line) {
        fprintf(stderr, "gpctl: out of memory\n");
        goto out;
    }
    r->fd = fd;
    r->timeout_ms = CLIENT_TIMEOUT_MS;
    for (;;) {
        int got = read_line(r, line, GPCTL_CTL_MAX_LINE + 1);
        if (got <= 0) {
            fprintf(stderr, "gpctl: the running serve (%s/%s) %s\n", root, GPCTL_SOCK_NAME,
                    got == 0 ? "closed the connection before an exit line"
                             : "did not answer in time, or sent a garbled line");
            break;
        }
        if (strncmp(line, "out ", 4) == 0) {
            printf("%s\n", line + 4);
        } else if (strncmp(line, "err ", 4) == 0) {
            fprintf(stderr, "%s\n", line + 4);
        } else if (strncmp(line, "exit ", 5) == 0) {
            char *end;
            long v = strtol(line + 5, &end, 10);
            if (*end || end == line + 5 || v < 0 || v > 255) {
                fprintf(stderr, "gpctl: the running serve sent \"%s\": expected exit 0..255\n",
                        line);
                break;
            }
            code = (int)v;
            break;
        } else {
            fprintf(stderr, "gpctl: the running serve sent \"%.60s\": expected out, err or exit\n",
                    line);
            break;
        }
    }
out:
    fflush(stdout);
    free(line);
    free(r);
    close(fd);
    return code;
}

/* ---- server ---- */

/* Send `text` (what the handler wrote) as `tag` lines. */
static int send_lines(int fd, const char *tag, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        if (write_all(fd, tag, strlen(tag)) || write_all(fd, " ", 1) ||
            write_all(fd, text + i, n) || write_all(fd, "\n", 1))
            return -1;
        i += n + (nl ? 1 : 0);
    }
    return 0;
}

void gpctl_ctl_answer(int fd, gpctl_ctl_handler h, void *ctx)
{
    reader *r = calloc(1, sizeof *r);
    char *line = malloc(GPCTL_CTL_MAX_LINE + 1);
    char **argv = calloc(GPCTL_CTL_MAX_ARGS + 1, sizeof *argv);
    int argc = 0, code = 1;
    char *cwd = NULL;
    char *obuf = NULL, *ebuf = NULL;
    size_t olen = 0, elen = 0;
    FILE *out = open_memstream(&obuf, &olen), *err = open_memstream(&ebuf, &elen);
    if (!r || !line || !argv || !out || !err)
        goto done;
    r->fd = fd;
    /* The whole request within it: a client that trickles bytes must
     * not hold a worker (and a stop) for longer. */
    r->until_ms = now_ms() + SERVER_READ_TIMEOUT_MS;
    long n = -1;
    const size_t vlen = strlen(GPCTL_CTL_VERSION);
    if (read_line(r, line, GPCTL_CTL_MAX_LINE + 1) == 1 &&
        strncmp(line, GPCTL_CTL_VERSION " ", vlen + 1) == 0 && line[vlen + 1] >= '1' &&
        line[vlen + 1] <= '9') {
        char *end;
        n = strtol(line + vlen + 1, &end, 10);
        if (*end)
            n = -1;
    }
    if (n < 1 || n > GPCTL_CTL_MAX_ARGS) {
        fprintf(err, "gpctl serve: expected \"%s N\" (1..%d arguments) first\n", GPCTL_CTL_VERSION,
                GPCTL_CTL_MAX_ARGS);
        goto done;
    }
    if (read_line(r, line, GPCTL_CTL_MAX_LINE + 1) != 1 || line[0] != '/' ||
        !(cwd = strdup(line))) {
        fprintf(err, "gpctl serve: expected the client's working directory (absolute)\n");
        goto done;
    }
    for (argc = 0; argc < n; argc++) {
        if (read_line(r, line, GPCTL_CTL_MAX_LINE + 1) != 1 || !(argv[argc] = strdup(line))) {
            fprintf(err, "gpctl serve: expected %ld argument lines, got %d\n", n, argc);
            goto done;
        }
    }
    code = h(ctx, cwd, argc, argv, out, err);
done:
    free(cwd);
    if (out)
        fclose(out);
    if (err)
        fclose(err);
    if (obuf && olen)
        send_lines(fd, "out", obuf, olen);
    if (ebuf && elen)
        send_lines(fd, "err", ebuf, elen);
    char tail[32];
    snprintf(tail, sizeof tail, "exit %d\n", code);
    write_all(fd, tail, strlen(tail));
    free(obuf);
    free(ebuf);
    for (int i = 0; argv && i < argc; i++)
        free(argv[i]);
    free(argv);
    free(line);
    free(r);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    gpctl_ctl_answer(w->fd, w->c->h, w->c->ctx);
    close(w->fd);
    pthread_mutex_lock(&w->c->mu);
    w->done = true;
    pthread_cond_broadcast(&w->c->cv);
    pthread_mutex_unlock(&w->c->mu);
    return NULL;
}

/* Join every worker (each ends with its command). */
static void join_workers(gpctl_ctl *c)
{
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < CTL_WORKERS; i++) {
        worker *w = &c->w[i];
        while (w->used && !w->done)
            pthread_cond_wait(&c->cv, &c->mu);
        if (w->used)
            pthread_join(w->thread, NULL);
        w->used = w->done = false;
    }
    pthread_mutex_unlock(&c->mu);
}

/* A slot for the next connection: a free one, or a finished worker's
 * (joined here: it has set done, its last touch of c), else wait for one
 * to finish. One hold of the lock, so no finish is missed. */
static worker *free_worker(gpctl_ctl *c)
{
    pthread_mutex_lock(&c->mu);
    for (;;) {
        for (int i = 0; i < CTL_WORKERS; i++) {
            worker *w = &c->w[i];
            if (w->used && w->done) {
                pthread_join(w->thread, NULL);
                w->used = w->done = false;
            }
            if (!w->used) {
                w->used = true;
                pthread_mutex_unlock(&c->mu);
                return w;
            }
        }
        pthread_cond_wait(&c->cv, &c->mu);
    }
}

static void release_slot(gpctl_ctl *c, worker *w)
{
    pthread_mutex_lock(&c->mu);
    w->used = false;
    pthread_mutex_unlock(&c->mu);
}

static void *serve_main(void *arg)
{
    gpctl_ctl *c = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = c->lfd, .events = POLLIN},
                              {.fd = c->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!p[0].revents)
            continue;
        /* A slot first: while all are busy, connections wait in the
         * listen queue (their gpctl waits too). */
        worker *w = free_worker(c);
        /* A stop may have come while we waited for the slot. */
        struct pollfd wake = {.fd = c->wake[0], .events = POLLIN};
        if (poll(&wake, 1, 0) > 0) {
            release_slot(c, w);
            break;
        }
        int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            release_slot(c, w);
            continue;
        }
        w->c = c;
        w->fd = fd;
        w->done = false;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            /* No thread: answer here, one at a time, as before. */
            gpctl_ctl_answer(fd, c->h, c->ctx);
            close(fd);
            release_slot(c, w);
        }
    }
    join_workers(c);
    return NULL;
}

gpctl_ctl *gpctl_ctl_start(const char *root, gpctl_ctl_handler h, void *ctx)
{
    gpctl_ctl *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "gpctl serve: out of memory\n");
        return NULL;
    }
    c->h = h;
    c->ctx = ctx;
    c->lfd = c->wake[0] = c->wake[1] = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    struct sockaddr_un sa;
    const char *what = "open the root";
    c->dirfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c->dirfd < 0)
        goto fail;
    what = "the socket path";
    if (sock_addr(c->dirfd, &sa, c->path, sizeof c->path) != 0)
        goto fail;
    what = "socket";
    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->lfd < 0)
        goto fail;
    /* A socket left by a serve that was killed: ours now (we hold the lock). */
    unlinkat(c->dirfd, GPCTL_SOCK_NAME, 0);
    mode_t old = umask(0177);
    int b = bind(c->lfd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    what = "bind";
    if (b != 0)
        goto fail;
    what = "listen";
    if (listen(c->lfd, 16) != 0)
        goto fail;
    what = "pipe";
    if (pipe2(c->wake, O_CLOEXEC) != 0)
        goto fail;
    what = "thread";
    int e = pthread_create(&c->thread, NULL, serve_main, c);
    if (e != 0) {
        errno = e;
        goto fail;
    }
    return c;
fail:
    fprintf(stderr, "gpctl serve: control socket %s/%s: %s: %s\n", root, GPCTL_SOCK_NAME, what,
            strerror(errno));
    if (c->lfd >= 0) {
        close(c->lfd);
        unlinkat(c->dirfd, GPCTL_SOCK_NAME, 0);
    }
    if (c->wake[0] >= 0) {
        close(c->wake[0]);
        close(c->wake[1]);
    }
    if (c->dirfd >= 0)
        close(c->dirfd);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    return NULL;
}

void gpctl_ctl_unpublish(gpctl_ctl *c)
{
    if (c)
        unlinkat(c->dirfd, GPCTL_SOCK_NAME, 0); /* ENOENT the second time */
}

void gpctl_ctl_stop(gpctl_ctl *c)
{
    if (!c)
        return;
    /* The file first: a gpctl from now on edits the store directly (once
     * the lock is free) instead of talking to a serve that is going. */
    gpctl_ctl_unpublish(c);
    ssize_t w = write(c->wake[1], "x", 1);
    (void)w;
    pthread_join(c->thread, NULL);
    close(c->lfd);
    close(c->wake[0]);
    close(c->wake[1]);
    close(c->dirfd);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}
