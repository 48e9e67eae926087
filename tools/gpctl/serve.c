/* gpctl serve: the manager in the foreground, the control socket for the
 * other gpctl commands, and a clean stop on SIGTERM/SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <goplugin/log.h>
#include <goplugin/store.h>
#include <goplugin/store_manager.h>

#include "tools/gpctl/ctl.h"
#include "tools/gpctl/gpctl.h"

typedef struct serve {
    const char *root; /* absolute */
    gp_manager *m;
    FILE *log; /* serve's own lines: a stream of its own (see captured) */
    pthread_mutex_t log_mu;
    pthread_mutex_t cmd_mu; /* see captured */
    bool live_restore;
    bool stopping; /* under log_mu: a signal came; no "serving" line now */
} serve;

static const char *level_word(gp_log_level l)
{
    static const char *const words[] = {"INFO", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"};
    return (unsigned)l < sizeof words / sizeof words[0] ? words[l] : "INFO";
}

/* The manager's words and the plugins' lines, tagged with their name:
 *   2026-12-06T05:13:06.058Z [INFO]  kv: message: k=v */
static void serve_log(void *ctx, gp_log_level level, const char *name, const char *msg,
                      const gp_log_kv *kv, size_t nkv)
{
    serve *s = ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&s->log_mu);
    fprintf(s->log, "%s.%03ldZ [%-5s] %s: %s", when, ts.tv_nsec / 1000000, level_word(level),
            name && name[0] ? name : "gpctl", msg);
    for (size_t i = 0; i < nkv; i++)
        fprintf(s->log, "%s%s=%s", i ? " " : ": ", kv[i].key, kv[i].value);
    fputc('\n', s->log);
    fflush(s->log);
    pthread_mutex_unlock(&s->log_mu);
}

/* One line per event, for operators and tests:
 *   gpctl serve: event start kv pid=123 adopted=false */
static void on_event(const gp_manager_event *ev, void *ctx)
{
    serve *s = ctx;
    char extra[600] = "";
    switch (ev->kind) {
    case GP_MANAGER_START:
        snprintf(extra, sizeof extra, " pid=%d adopted=%s", (int)ev->pid,
                 ev->adopted ? "true" : "false");
        break;
    case GP_MANAGER_EXIT:
        snprintf(extra, sizeof extra, " pid=%d reason=%s", (int)ev->pid, ev->reason);
        break;
    case GP_MANAGER_RESTART:
        snprintf(extra, sizeof extra, " delay_ms=%" PRId64, ev->delay_ms);
        break;
    default:
        break;
    }
    pthread_mutex_lock(&s->log_mu);
    fprintf(s->log, "gpctl serve: event %s %s%s\n", gp_manager_event_name(ev->kind), ev->name,
            extra);
    fflush(s->log);
    pthread_mutex_unlock(&s->log_mu);
}

/* Run one of the direct-mode commands (store_cmds.c, which write to
 * gpctl_out and gpctl_err) on the manager's store, its output into
 * out/err. Forwarded commands run concurrently (ctl.h), and these share
 * the two globals: one at a time, under cmd_mu (they are quick: no plugin
 * starts). Serve's own lines go to s->log, never through them. */
static int captured(serve *s, int (*fn)(gp_store *, int, char **), int argc, char **argv, FILE *out,
                    FILE *err)
{
    pthread_mutex_lock(&s->cmd_mu);
    FILE *o = gpctl_out, *e = gpctl_err;
    gpctl_out = out;
    gpctl_err = err;
    int code = fn(gp_manager_store(s->m), argc, argv);
    fflush(out);
    fflush(err);
    gpctl_out = o;
    gpctl_err = e;
    pthread_mutex_unlock(&s->cmd_mu);
    return code;
}

/* install with its PATH made absolute against the client's directory cwd
 * (a chdir would move every thread, and the plugins started meanwhile). */
static int install_from(serve *s, const char *cwd, int argc, char **argv, FILE *out, FILE *err)
{
    int at = gpctl_install_path_index(argc, argv);
    char *given = at > 0 ? argv[at] : NULL, *abs = NULL;
    if (given && given[0] != '/') {
        if (asprintf(&abs, "%s/%s", cwd, given) < 0) {
            fprintf(err, "gpctl: out of memory\n");
            return 1;
        }
        argv[at] = abs;
    }
    int code = captured(s, gpctl_install, argc, argv, out, err);
    if (abs)
        argv[at] = given; /* argv is the caller's to free */
    free(abs);
    return code;
}

static int one_name(int argc, char **argv, FILE *err, const char **name, bool *force)
{
    *force = argc == 3 && strcmp(argv[0], "rm") == 0 && strcmp(argv[1], "-f") == 0;
    if (argc != 2 + *force) {
        fprintf(err, "gpctl: %s: exactly one NAME is required\n", argv[0]);
        return 1;
    }
    *name = argv[argc - 1];
    return 0;
}

static int handle(void *ctx, const char *cwd, int argc, char **argv, FILE *out, FILE *err)
{
    serve *s = ctx;
    const char *cmd = argv[0], *name;
    gp_status st = {0};
    bool force;
    gp_err rc;
    if (strcmp(cmd, "enable") == 0 || strcmp(cmd, "disable") == 0 || strcmp(cmd, "rm") == 0) {
        if (one_name(argc, argv, err, &name, &force))
            return 1;
        rc = cmd[0] == 'e'   ? gp_manager_enable(s->m, name, &st)
             : cmd[0] == 'd' ? gp_manager_disable(s->m, name, &st)
                             : gp_manager_remove(s->m, name, force, &st);
        if (rc) {
            fprintf(err, "gpctl: %s\n", st.msg);
            return 1;
        }
        return 0;
    }
    if (strcmp(cmd, "install") == 0) {
        /* The id it prints names the new record, for the INSTALL event. */
        char *text = NULL;
        size_t len = 0;
        FILE *mine = open_memstream(&text, &len);
        if (!mine) {
            fprintf(err, "gpctl: out of memory\n");
            return 1;
        }
        int code = install_from(s, cwd, argc, argv, mine, err);
        fclose(mine);
        fwrite(text, 1, len, out);
        if (code == 0) {
            text[strcspn(text, "\n")] = '\0';
            gp_manager_installed(s->m, text, NULL);
        }
        free(text);
        return code;
    }
    if (strcmp(cmd, "grant") == 0)
        return captured(s, gpctl_grant, argc, argv, out, err);
    if (strcmp(cmd, "gc") == 0)
        return captured(s, gpctl_gc, argc, argv, out, err);
    fprintf(err, "gpctl: %s: not a command a running serve takes\n", cmd);
    return 1;
}

/* Restore, then say "serving" (tests and operators wait for that line),
 * unless a signal came meanwhile. */
static void *restore_main(void *arg)
{
    serve *s = arg;
    gp_status st = {0};
    gp_err rc = gp_manager_restore(s->m, &st);
    pthread_mutex_lock(&s->log_mu);
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->log_mu);
    if (rc && !stopping)
        serve_log(s, GP_LOG_ERROR, "gpctl", st.msg, NULL, 0);
    pthread_mutex_lock(&s->log_mu);
    if (!s->stopping) {
        fprintf(s->log, "gpctl serve: serving %s%s\n", s->root,
                s->live_restore ? " (live restore)" : "");
        fflush(s->log);
    }
    pthread_mutex_unlock(&s->log_mu);
    return NULL;
}

int gpctl_serve(const char *root_arg, int argc, char **argv)
{
    bool live_restore = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--live-restore") == 0)
            live_restore = true;
        else
            return gpctl_fail("serve: unknown option \"%s\" (expected --live-restore)", argv[i]);
    }
    /* Absolute: a forwarded command runs in its client's directory. */
    char root[PATH_MAX];
    if (mkdir(root_arg, 0700) != 0 && errno != EEXIST)
        return gpctl_fail("serve: mkdir %s: %s", root_arg, strerror(errno));
    if (!realpath(root_arg, root))
        return gpctl_fail("serve: %s: %s", root_arg, strerror(errno));
    /* SIGTERM and SIGINT are taken by sigwait below: blocked before any
     * thread starts, so every thread inherits the mask. Plugins get the
     * default mask back (the library's spawn resets it before exec). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    serve s = {.root = root};
    int logfd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (logfd < 0 || !(s.log = fdopen(logfd, "w")))
        return gpctl_fail("serve: stderr: %s", strerror(errno));
    pthread_mutex_init(&s.log_mu, NULL);
    pthread_mutex_init(&s.cmd_mu, NULL);
    gp_manager_config mc = {
        .root = root,
        .live_restore = live_restore,
        .logger = {.fn = serve_log, .ctx = &s, .level = GP_LOG_INFO},
        .on_event = on_event,
        .ctx = &s,
    };
    gp_status st = {0};
    int code = 0;
    gpctl_ctl *ctl = NULL;
    pthread_t restorer = {0};
    bool restoring = false;
    if (gp_manager_open(&mc, &s.m, &st)) {
        code = gpctl_fail("serve: %s", st.msg);
        goto out;
    }
    if (!(ctl = gpctl_ctl_start(root, handle, &s))) {
        code = 1;
        goto out;
    }
    /* Restore on a thread of its own, so that a signal is taken at once:
     * restore waits for each plugin's first start, up to a minute. */
    s.live_restore = live_restore;
    restoring = pthread_create(&restorer, NULL, restore_main, &s) == 0;
    if (!restoring)
        restore_main(&s);
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    pthread_mutex_lock(&s.log_mu);
    s.stopping = true;
    fprintf(s.log, "gpctl serve: %s: %s\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            live_restore ? "leaving the plugins running" : "stopping the plugins");
    fflush(s.log);
    pthread_mutex_unlock(&s.log_mu);
out:
    /* No new client; then the plugins, which ends a restore's or a
     * worker's wait for a plugin's start (up to a minute), so they end at
     * once. */
    gpctl_ctl_unpublish(ctl);
    gp_manager_shutdown(s.m);
    if (restoring)
        pthread_join(restorer, NULL);
    gpctl_ctl_stop(ctl);
    gp_manager_close(s.m);
    if (code == 0)
        fprintf(s.log, "gpctl serve: stopped\n");
    fclose(s.log);
    pthread_mutex_destroy(&s.log_mu);
    pthread_mutex_destroy(&s.cmd_mu);
    return code;
}
