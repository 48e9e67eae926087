/* kv-host --detach / --reattach / --kill: the plugin's address, pid and
 * start time go into a go-plugin ReattachConfig file, written atomically;
 * a later kv-host attaches to it, or stops it. Reattaching never signals a
 * process that is not the one in the file (the client checks its start
 * time), and a failed reattach kills nothing. */
#include "examples/kv/detach.h"

#include <goplugin/reattach.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "examples/kv/kv.h"

kv_detach_opts kv_detach;

static int fail(const char *what)
{
    fprintf(stderr, "kv-host: %s\n", what);
    return 1;
}

/* Read FILE and make a client for the plugin in it. detached: free leaves
 * the plugin running. */
static int reattach_client(const kv_host_opts *o, bool detached, gp_client **out)
{
    *out = NULL;
    gp_reattach_config rc;
    gp_status st = {0};
    gp_err e = gp_reattach_file_read(kv_detach.reattach_file, &rc, &st);
    if (e == GP_ENOTFOUND) {
        fprintf(stderr, "kv-host: --reattach %s: no such file\n", kv_detach.reattach_file);
        return -1;
    }
    if (e) {
        fprintf(stderr, "kv-host: --reattach %s: %s\n", kv_detach.reattach_file, st.msg);
        return -1;
    }
    gp_client_config cfg = {
        .reattach = &rc,
        .allowed_protocols = rc.protocol == GP_PROTO_NONE ? GP_PROTO_NETRPC : rc.protocol,
        .start_timeout_ms = o->start_timeout_s * 1000,
        .kill_grace_ms = o->kill_grace_ms,
        .logger = {.level = o->log_level},
        .detached = detached,
    };
    e = gp_client_new(&cfg, out, &st);
    gp_reattach_config_clear(&rc); /* the client copied what it needs */
    if (e) {
        fprintf(stderr, "kv-host: %s\n", st.msg);
        return -1;
    }
    return 0;
}

/* --reattach FILE --kill: graceful Shutdown, the grace period, then
 * SIGKILL, only to the very process the file describes. */
static int kill_plugin(const kv_host_opts *o)
{
    gp_client *c;
    if (reattach_client(o, false, &c) != 0)
        return 1;
    gp_conn *conn;
    gp_status st;
    if (gp_client_start(c, &st) != GP_OK) {
        fprintf(stderr, "kv-host: %s\n", st.msg);
        gp_client_free(c); /* a failed reattach kills nothing */
        return 1;
    }
    /* The connection carries the graceful Shutdown; without one the kill
     * falls back to SIGKILL of the verified process. */
    if (gp_client_connect(c, &conn, &st) != GP_OK)
        fprintf(stderr, "kv-host: warning: %s\n", st.msg);
    pid_t pid = gp_client_pid(c);
    gp_client_kill(c);
    bool gone = gp_client_exited(c);
    gp_client_free(c);
    if (!gone) {
        fprintf(stderr, "kv-host: plugin pid %d is still running; %s kept\n", (int)pid,
                kv_detach.reattach_file);
        return 1;
    }
    if (unlink(kv_detach.reattach_file) != 0 && errno != ENOENT) {
        fprintf(stderr, "kv-host: remove %s: %s\n", kv_detach.reattach_file, strerror(errno));
        return 1;
    }
    return 0;
}

int kv_detach_check(kv_host_opts *o, char **cmd, int ncmd)
{
    const kv_detach_opts *d = &kv_detach;
    if (!d->detach_file && !d->reattach_file && !d->kill && !d->output_prefix)
        return -1;
    if (d->detach_file && d->reattach_file)
        return fail("--detach and --reattach: expected one of them, got both");
    if (d->kill && !d->reattach_file)
        return fail("--kill needs --reattach FILE");
    if (d->reattach_file && o->plugin)
        return fail("--reattach FILE and --plugin PATH: expected one of them, got both");
    if (d->detach_file && !o->plugin)
        return fail("--detach FILE needs --plugin PATH");
    if (d->output_prefix && !d->detach_file)
        return fail("--detach-output PREFIX needs --detach FILE");
    if (o->automtls)
        return fail("--automtls cannot be combined with --detach or --reattach (a reattach "
                    "file carries no certificates)");
    if (o->multiplex) /* go-plugin refuses it too: the plugin serves one raw connection */
        return fail("--multiplex cannot be combined with --detach or --reattach (gRPC broker "
                    "multiplexing is not supported with Reattach config)");
    if (d->kill) {
        if (ncmd > 0)
            return fail("--kill takes no commands");
        return kill_plugin(o);
    }
    if (ncmd == 0)
        return fail("no command given");
    if (strcmp(cmd[0], "bench") == 0)
        return fail("bench cannot be combined with --detach or --reattach");
    o->detached = d->detach_file != NULL;
    if (o->detached) {
        static char out[4096], err[4096];
        const char *prefix = d->output_prefix ? d->output_prefix : d->detach_file;
        if ((size_t)snprintf(out, sizeof out, "%s.stdout", prefix) >= sizeof out ||
            (size_t)snprintf(err, sizeof err, "%s.stderr", prefix) >= sizeof err)
            return fail("--detach: the output file names are too long");
        o->stdout_file = out;
        o->stderr_file = err;
    }
    return -1;
}

int kv_detach_open(const kv_host_opts *o, kv_session *s)
{
    if (!kv_detach.reattach_file)
        return kv_session_open(o, s);
    memset(s, 0, sizeof *s);
    s->detached = true;
    if (reattach_client(o, true, &s->client) != 0)
        return -1;
    gp_status st = {0};
    if (gp_client_connect(s->client, &s->conn, &st) != GP_OK) {
        fprintf(stderr, "kv-host: %s\n", st.msg);
        kv_session_close(s); /* detached: nothing is killed */
        return -1;
    }
    if (gp_conn_dispense(s->conn, KV_PLUGIN_NAME, &s->kv, &st) != GP_OK) {
        fprintf(stderr, "kv-host: dispense %s: %s\n", KV_PLUGIN_NAME, st.msg);
        kv_session_close(s);
        return -1;
    }
    return 0;
}

int kv_detach_close(kv_session *s, int rc)
{
    if (kv_detach.detach_file && s->client) {
        gp_reattach_config ra;
        gp_status st = {0};
        gp_err e = rc == 0 ? gp_client_reattach_config(s->client, &ra) : GP_OK;
        if (e != GP_OK) { /* it has no words: the code says it */
            fprintf(stderr, "kv-host: --detach: no reattach config: %s\n", gp_strerror(e));
            rc = 1;
        }
        if (rc == 0 && gp_reattach_file_write(kv_detach.detach_file, &ra, &st) != GP_OK) {
            fprintf(stderr, "kv-host: --detach %s: %s\n", kv_detach.detach_file, st.msg);
            rc = 1;
        }
        /* Nobody could find a plugin without its file: do not leave one. */
        if (rc != 0)
            gp_client_kill(s->client);
    }
    /* detached: gp_client_free leaves the plugin running; else it is
     * stopped and a bad end (a leak under ASan, a crash) fails us. */
    if (kv_session_close(s) != 0 && rc == 0)
        rc = 1;
    return rc;
}
