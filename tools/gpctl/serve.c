/* gpctl serve: the manager in the foreground, the control socket for the
 * other gpctl commands, and a clean stop on SIGTERM/SIGINT. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <goplugin/log.h>
#include <goplugin/store.h>
#include <goplugin/store_manager.h>

#include "tools/gpctl/ctl.h"

typedef struct serve {
    const char *root;
    gp_manager *m;
} serve;

/* One line per event on stderr, for operators and tests:
 *   gpctl serve: event start kv pid=123 adopted=false */
static void on_event(const gp_manager_event *ev, void *ctx)
{
    (void)ctx;
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
    fprintf(stderr, "gpctl serve: event %s %s%s\n", gp_manager_event_name(ev->kind), ev->name,
            extra);
}

static int usage_err(FILE *err, const char *cmd, const char *what)
{
    fprintf(err, "gpctl: %s: %s\n", cmd, what);
    return 1;
}

static int handle(void *ctx, int argc, char **argv, FILE *out, FILE *err)
{
    serve *s = ctx;
    const char *cmd = argv[0];
    gp_status st = {0};
    gp_err rc;
    if (strcmp(cmd, "enable") == 0 || strcmp(cmd, "disable") == 0) {
        if (argc != 2)
            return usage_err(err, cmd, "expected one NAME");
        rc = cmd[0] == 'e' ? gp_manager_enable(s->m, argv[1], &st)
                           : gp_manager_disable(s->m, argv[1], &st);
        if (rc) {
            fprintf(err, "gpctl: %s %s: %s\n", cmd, argv[1], st.msg);
            return 1;
        }
        return 0;
    }
    if (strcmp(cmd, "rm") == 0) {
        bool force = argc == 3 && strcmp(argv[1], "-f") == 0;
        if (argc != 2 + force)
            return usage_err(err, cmd, "expected [-f] NAME");
        if (gp_manager_remove(s->m, argv[argc - 1], force, &st)) {
            fprintf(err, "gpctl: rm %s: %s\n", argv[argc - 1], st.msg);
            return 1;
        }
        return 0;
    }
    if (strcmp(cmd, "gc") == 0) {
        if (argc != 1)
            return usage_err(err, cmd, "expected no arguments");
        size_t blobs = 0;
        uint64_t bytes = 0;
        if (gp_store_gc(gp_manager_store(s->m), &blobs, &bytes, &st)) {
            fprintf(err, "gpctl: gc: %s\n", st.msg);
            return 1;
        }
        fprintf(out, "%zu blobs, %" PRIu64 " bytes freed\n", blobs, bytes);
        return 0;
    }
    if (strcmp(cmd, "install") == 0)
        return gpctl_serve_install(s->m, argc, argv, out, err);
    fprintf(err, "gpctl: %s: not a command a running serve takes\n", cmd);
    return 1;
}

int gpctl_serve(const char *root, int argc, char **argv)
{
    bool live_restore = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--live-restore") == 0) {
            live_restore = true;
        } else {
            fprintf(stderr, "gpctl: serve: unknown option %s (expected --live-restore)\n", argv[i]);
            return 1;
        }
    }
    /* The signals are taken by sigwait below: blocked before any thread
     * starts, so every thread (and no handler) inherits the mask. Plugins
     * get the default mask back at exec (the library's spawn resets it). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    serve s = {.root = root};
    gp_manager_config mc = {
        .root = root,
        .live_restore = live_restore,
        .logger = {.level = GP_LOG_INFO},
        .on_event = on_event,
        .ctx = &s,
    };
    gp_status st = {0};
    if (gp_manager_open(&mc, &s.m, &st)) {
        fprintf(stderr, "gpctl: serve: %s\n", st.msg);
        return 1;
    }
    gpctl_ctl *ctl = gpctl_ctl_start(root, handle, &s);
    if (!ctl) {
        gp_manager_close(s.m);
        return 1;
    }
    if (gp_manager_restore(s.m, &st))
        fprintf(stderr, "gpctl: serve: restore: %s\n", st.msg);
    fprintf(stderr, "gpctl serve: serving %s%s\n", root, live_restore ? " (live restore)" : "");
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    fprintf(stderr, "gpctl serve: %s: %s\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            live_restore ? "leaving the plugins running" : "stopping the plugins");
    gpctl_ctl_stop(ctl);
    gp_manager_close(s.m);
    fprintf(stderr, "gpctl serve: stopped\n");
    return 0;
}
