/* Self re-exec: run a registered action in a fresh copy of this binary.
 * JSON params on the child's stdin, JSON result on its stdout, stderr as
 * the error text; a deadline, then SIGTERM, grace, SIGKILL to its group. */
#include <goplugin/action.h>
#include <goplugin/handoff.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/base/errf.h"
#include "transport/base/strbuf.h"
#include "transport/supervise/fdutil.h"

extern char **environ;

typedef struct action {
    char name[GP_ACTION_MAX_NAME + 1];
    gp_action_fn fn;
} action;

static action actions[GP_ACTION_MAX];
static size_t nactions;

static const action *find(const char *name)
{
    for (size_t i = 0; i < nactions; i++)
        if (strcmp(actions[i].name, name) == 0)
            return &actions[i];
    return NULL;
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > GP_ACTION_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

gp_err gp_action_register(const char *name, gp_action_fn fn, gp_status *st)
{
    gp__status_clear(st);
    if (!name || !fn)
        return gp__status_setf(st, GP_EINVAL, "action: NULL %s", name ? "function" : "name");
    if (!valid_name(name))
        return gp__status_setf(st, GP_EINVAL, "action \"%.*s\": expected 1..%d of [A-Za-z0-9._-]",
                               GP_ACTION_MAX_NAME + 8, name, GP_ACTION_MAX_NAME);
    if (find(name))
        return gp__status_setf(st, GP_EINVAL, "action \"%s\" is already registered", name);
    if (nactions == GP_ACTION_MAX)
        return gp__status_setf(st, GP_EMSGSIZE, "action \"%s\": all %d slots are taken", name,
                               GP_ACTION_MAX);
    snprintf(actions[nactions].name, sizeof actions[nactions].name, "%s", name);
    actions[nactions].fn = fn;
    nactions++;
    return GP_OK;
}

/* ---- the child: dispatch ---- */

static char *read_stdin(size_t *len)
{
    gp__strbuf b;
    gp__strbuf_init(&b);
    b.max = GP_ACTION_MAX_IO + 1;
    char chunk[65536];
    for (;;) {
        ssize_t r = read(0, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        gp__strbuf_appendn(&b, chunk, (size_t)r);
        if (!b.ok)
            break;
    }
    if (!b.ok) {
        gp__strbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? b.data : strdup("");
}

void gp_action_dispatch(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *marker = getenv(GP_ACTION_ENV);
    if (!marker)
        return;
    char name[GP_ACTION_MAX_NAME + 1];
    snprintf(name, sizeof name, "%s", marker);
    /* Anything this action runs must not re-dispatch. */
    unsetenv(GP_ACTION_ENV);
    const action *a = find(name);
    if (!a) {
        fprintf(stderr, "goplugin: no action \"%s\" is registered in this binary\n", name);
        exit(127);
    }
    size_t len = 0;
    char *params = read_stdin(&len);
    if (!params) {
        fprintf(stderr, "goplugin: action \"%s\": parameters over %u bytes or unreadable\n", name,
                (unsigned)GP_ACTION_MAX_IO);
        exit(2);
    }
    char *result = NULL;
    int rc = a->fn(params, &result);
    free(params);
    if (rc != 0) {
        free(result);
        fflush(stdout);
        fflush(stderr);
        exit(rc < 1 ? 1 : rc > 125 ? 125 : rc);
    }
    fputs(result ? result : "null", stdout);
    fputc('\n', stdout);
    free(result);
    exit(fflush(stdout) == 0 ? 0 : 2);
}

/* ---- the host: run ---- */

/* Keep the last bytes that fit in a gp_status: the end of stderr says
 * why it failed. */
#define STDERR_KEEP (GP_ERRMSG_MAX - 1)

static void tail_add(gp__strbuf *t, const char *p, size_t n)
{
    size_t max = STDERR_KEEP;
    if (n >= max) {
        gp__strbuf_reset(t);
        gp__strbuf_appendn(t, p + n - max, max);
        return;
    }
    if (t->len + n > max) {
        size_t drop = t->len + n - max;
        memmove(t->data, t->data + drop, t->len - drop);
        t->len -= drop;
        t->data[t->len] = 0;
    }
    gp__strbuf_appendn(t, p, n);
}

static char **child_env(const char *name)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0, ml = strlen(GP_ACTION_ENV);
    for (size_t i = 0; i < n; i++)
        if (!(strncmp(environ[i], GP_ACTION_ENV, ml) == 0 && environ[i][ml] == '='))
            env[k++] = environ[i];
    if (asprintf(&env[k], "%s=%s", GP_ACTION_ENV, name) < 0) {
        free(env);
        return NULL;
    }
    return env;
}

typedef struct run {
    pid_t pid;
    int pidfd;
    int in, out, err; /* our ends, -1 once closed */
    const char *params;
    size_t params_len, params_off;
    gp__strbuf result, errtail;
    bool reaped, timed_out, too_big;
    int status;
} run;

static bool try_reap(run *r)
{
    if (r->reaped)
        return true;
    pid_t w;
    while ((w = waitpid(r->pid, &r->status, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (w == r->pid || (w < 0 && errno == ECHILD))
        r->reaped = true;
    return r->reaped;
}

static void drain(run *r, int *fd, gp__strbuf *into, bool tail)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(*fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            gp__sup_close(fd);
            return;
        }
        if (tail) {
            tail_add(into, chunk, (size_t)n);
        } else {
            gp__strbuf_appendn(into, chunk, (size_t)n);
            if (!into->ok) {
                r->too_big = true;
                gp__sup_close(fd);
                return;
            }
        }
    }
}

static void feed(run *r)
{
    while (r->params_off < r->params_len) {
        ssize_t n = gp__sup_write_nosigpipe(r->in, r->params + r->params_off,
                                            r->params_len - r->params_off);
        if (n > 0) {
            r->params_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EAGAIN)
            return;
        break; /* the action closed stdin: it may not want params */
    }
    gp__sup_close(&r->in);
}

/* SIGTERM the group, wait the grace period, SIGKILL; always reap. */
static void stop(run *r)
{
    if (!r->reaped) {
        kill(-r->pid, SIGTERM);
        int64_t until = gp__sup_now_ms() + GP_ACTION_KILL_GRACE_MS;
        while (!try_reap(r) && gp__sup_now_ms() < until)
            poll(NULL, 0, 5);
    }
    /* Helpers it started in its group go too, even when it went itself. */
    kill(-r->pid, SIGKILL);
    while (!r->reaped) {
        if (waitpid(r->pid, &r->status, 0) == r->pid || errno == ECHILD)
            r->reaped = true;
    }
}

static void wait_child(run *r, int64_t deadline)
{
    for (;;) {
        if (r->out < 0 && r->err < 0 && try_reap(r))
            return;
        if (r->too_big)
            return;
        struct pollfd p[4];
        int np = 0, iin = -1, iout = -1, ierr = -1;
        if (r->in >= 0) {
            iin = np;
            p[np++] = (struct pollfd){.fd = r->in, .events = POLLOUT};
        }
        if (r->out >= 0) {
            iout = np;
            p[np++] = (struct pollfd){.fd = r->out, .events = POLLIN};
        }
        if (r->err >= 0) {
            ierr = np;
            p[np++] = (struct pollfd){.fd = r->err, .events = POLLIN};
        }
        int left = gp__sup_left_ms(deadline);
        if (left == 0) {
            r->timed_out = !try_reap(r) || r->out >= 0 || r->err >= 0;
            return;
        }
        if (r->pidfd >= 0 && !r->reaped)
            p[np++] = (struct pollfd){.fd = r->pidfd, .events = POLLIN};
        else if (left > 20)
            left = 20; /* no pidfd, or outputs still open after exit */
        int n = poll(p, (nfds_t)np, left);
        if (n < 0 && errno != EINTR)
            return;
        if (n <= 0)
            goto check_exit;
        if (iin >= 0 && p[iin].revents)
            feed(r);
        if (iout >= 0 && p[iout].revents)
            drain(r, &r->out, &r->result, false);
        if (ierr >= 0 && p[ierr].revents)
            drain(r, &r->err, &r->errtail, true);
    check_exit:
        if (try_reap(r) && (r->out >= 0 || r->err >= 0)) {
            /* It is gone; what it wrote is in the pipes now. Anything
             * still holding them open is a leftover of its group. */
            if (r->out >= 0)
                drain(r, &r->out, &r->result, false);
            if (r->err >= 0)
                drain(r, &r->err, &r->errtail, true);
            if (r->out >= 0 || r->err >= 0) {
                kill(-r->pid, SIGKILL);
                if (r->out >= 0)
                    poll(&(struct pollfd){.fd = r->out, .events = POLLIN}, 1, 100);
                if (r->out >= 0)
                    drain(r, &r->out, &r->result, false);
                if (r->err >= 0)
                    drain(r, &r->err, &r->errtail, true);
                gp__sup_close(&r->out);
                gp__sup_close(&r->err);
            }
        }
    }
}

static gp_err spawn(run *r, const char *name, gp_status *st)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            gp__sup_close(&in[i]);
            gp__sup_close(&out[i]);
            gp__sup_close(&err[i]);
        }
        return gp__status_setf(st, GP_ESYS, "action \"%s\": pipe: %s", name, strerror(e));
    }
    char **env = child_env(name);
    char *argv0 = program_invocation_name;
    char *argv[] = {argv0, NULL};
    pid_t pid = env ? fork() : -1;
    if (pid == 0) {
        /* Between fork and exec: async-signal-safe calls only. */
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGPIPE, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        gp_extra_fd fds[] = {{in[0], 0}, {out[1], 1}, {err[1], 2}};
        if (gp_extra_fds_apply(fds, 3, NULL) != GP_OK)
            _exit(126);
        execve("/proc/self/exe", argv, env);
        _exit(127);
    }
    int e = errno;
    if (env) {
        for (size_t i = 0; env[i]; i++)
            if (!env[i + 1])
                free(env[i]); /* only the marker entry is ours */
        free(env);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return gp__status_setf(st, env ? GP_ESYS : GP_ENOMEM, "action \"%s\": fork: %s", name,
                               strerror(e));
    }
    /* Both sides set the group, so a kill right after fork still hits it. */
    setpgid(pid, pid);
    r->pid = pid;
    r->in = in[1];
    r->out = out[0];
    r->err = err[0];
    gp__sup_set_nonblock(r->in, true);
    gp__sup_set_nonblock(r->out, true);
    gp__sup_set_nonblock(r->err, true);
#ifdef SYS_pidfd_open
    r->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (r->pidfd >= 0)
        gp__sup_set_cloexec(r->pidfd, true);
#endif
    return GP_OK;
}

static void trim(gp__strbuf *b)
{
    while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r' ||
                      b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t'))
        b->data[--b->len] = 0;
}

/* st->msg = prefix, ": ", and as much of the END of tail as still fits
 * (cut on a UTF-8 character boundary). */
static gp_err with_tail(gp_status *st, gp_err rc, const char *prefix, const char *tail)
{
    const char *sep = *prefix && *tail ? ": " : "";
    size_t room = GP_ERRMSG_MAX - 1, used = strlen(prefix) + strlen(sep), tl = strlen(tail);
    if (used < room && tl > room - used) {
        tail += tl - (room - used);
        while ((*tail & 0xC0) == 0x80)
            tail++;
    }
    return gp__status_setf(st, rc, "%s%s%s", prefix, sep, tail);
}

static gp_err verdict(run *r, const char *name, int timeout_ms, char **result, gp_status *st)
{
    trim(&r->errtail);
    const char *tail = r->errtail.len ? r->errtail.data : "";
    char what[GP_ACTION_MAX_NAME + 128];
    if (r->timed_out) {
        snprintf(what, sizeof what, "action \"%s\" did not finish within %d ms", name, timeout_ms);
        return with_tail(st, GP_ETIMEDOUT, what, tail);
    }
    if (r->too_big)
        return gp__status_setf(st, GP_EMSGSIZE, "action \"%s\": result over %u bytes", name,
                               (unsigned)GP_ACTION_MAX_IO);
    if (WIFSIGNALED(r->status)) {
        snprintf(what, sizeof what, "action \"%s\" killed by signal %d (%s)", name,
                 WTERMSIG(r->status), strsignal(WTERMSIG(r->status)));
        return with_tail(st, GP_EEXITED, what, tail);
    }
    int code = WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
    if (code != 0) {
        if (r->errtail.len)
            return with_tail(st, GP_EREMOTE, "", tail);
        return gp__status_setf(st, GP_EREMOTE, "action \"%s\" exited with status %d", name, code);
    }
    trim(&r->result);
    const char *text = r->result.data ? r->result.data : "";
    json_error_t je;
    json_t *v = json_loadb(text, r->result.len, JSON_DECODE_ANY, &je);
    if (!v) {
        gp__strbuf w;
        gp__strbuf_init(&w);
        gp__strbuf_printf(&w, "action \"%s\" returned %s: %s; stdout ", name,
                          r->result.len ? "invalid JSON" : "no result", je.text);
        gp__strbuf_quote(&w, text, r->result.len, 200);
        gp__status_setf(st, GP_EPROTO, "%s", w.ok && w.data ? w.data : "invalid result");
        gp__strbuf_free(&w);
        return GP_EPROTO;
    }
    json_decref(v);
    *result = strdup(text);
    return *result ? GP_OK : gp__status_setf(st, GP_ENOMEM, "action \"%s\": out of memory", name);
}

gp_err gp_action_run(const char *name, const char *params_json, int timeout_ms, char **result,
                     gp_status *st)
{
    gp__status_clear(st);
    *result = NULL;
    if (!name || !find(name))
        return gp__status_setf(st, GP_ENOTFOUND, "action \"%s\" is not registered in this binary",
                               name ? name : "(null)");
    if (!params_json)
        params_json = "null";
    size_t plen = strlen(params_json);
    if (plen > GP_ACTION_MAX_IO)
        return gp__status_setf(st, GP_EMSGSIZE, "action \"%s\": params of %zu bytes, at most %u",
                               name, plen, (unsigned)GP_ACTION_MAX_IO);
    json_error_t je;
    json_t *pv = json_loadb(params_json, plen, JSON_DECODE_ANY, &je);
    if (!pv)
        return gp__status_setf(st, GP_EINVAL, "action \"%s\": params are not JSON: %s (at byte %d)",
                               name, je.text, je.position);
    json_decref(pv);
    if (timeout_ms <= 0)
        timeout_ms = 60000;

    run r = {
        .pidfd = -1, .in = -1, .out = -1, .err = -1, .params = params_json, .params_len = plen};
    gp__strbuf_init(&r.result);
    gp__strbuf_init(&r.errtail);
    r.result.max = GP_ACTION_MAX_IO;
    gp_err rc = spawn(&r, name, st);
    if (rc)
        return rc;
    int64_t deadline = gp__sup_now_ms() + timeout_ms;
    feed(&r);
    wait_child(&r, deadline);
    gp__sup_close(&r.in);
    gp__sup_close(&r.out);
    gp__sup_close(&r.err);
    if (r.timed_out || r.too_big || !r.reaped)
        stop(&r);
    gp__sup_close(&r.pidfd);
    rc = verdict(&r, name, timeout_ms, result, st);
    gp__strbuf_free(&r.result);
    gp__strbuf_free(&r.errtail);
    return rc;
}
