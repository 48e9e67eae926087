/* The host side: gp_client_start/connect/kill over the process,
 * handshake, net and wire layers (spec §1, §5). Config checking is in
 * client_config.c, managed clients in client_registry.c. */
#include <goplugin/client.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/base/errf.h"
#include "transport/base/strbuf.h"
#include "transport/host/client_internal.h"
#include "transport/host/client_tls.h"
#include "transport/core/conn.h"
#include "transport/handshake/handshake.h"
#include "transport/net/net.h"
#include "transport/process/checksum.h"
#include "transport/process/env.h"
#include "transport/process/pidstat.h"
#include "transport/process/proc.h"
#include "transport/process/spawn.h"
#include "transport/core/wire.h"

extern char **environ;

/* GRPCController.Shutdown gets at most this long to be delivered. */
#define SHUTDOWN_CALL_MAX_MS 2000
/* After SIGKILL to a reattached plugin (not our child: we cannot reap it),
 * how long to watch for it to go. */
#define REATTACH_KILL_WAIT_MS 2000

/* ---- errors ---- */

static void set_errv(gp_client *c, bool with_tail, const char *fmt, va_list ap)
{
    char msg[sizeof c->errmsg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char tail[sizeof c->errtail] = "";
    if (with_tail && c->proc)
        gp__proc_stderr_tail(c->proc, tail, sizeof tail);
    pthread_mutex_lock(&c->mu);
    memcpy(c->errmsg, msg, sizeof msg);
    memcpy(c->errtail, tail, sizeof tail);
    pthread_mutex_unlock(&c->mu);
}

gp_err gp__client_fail(gp_client *c, gp_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_errv(c, true, fmt, ap);
    va_end(ap);
    return code;
}

#define TAIL_HEAD "\nplugin stderr (last lines):\n"

gp_err gp__client_status(gp_client *c, gp_err rc, gp_status *st)
{
    if (!st)
        return rc;
    gp__status_clear(st);
    if (rc == GP_OK)
        return rc;
    st->err = rc;
    if (!c) {
        snprintf(st->msg, sizeof st->msg, "%s", gp_strerror(rc));
        return rc;
    }
    size_t cap = sizeof st->msg;
    pthread_mutex_lock(&c->mu);
    size_t n = strlen(c->errmsg);
    size_t tn = strlen(c->errtail);
    if (n == 0) {
        snprintf(st->msg, cap, "%s", gp_strerror(rc));
    } else if (tn == 0 || n + sizeof TAIL_HEAD >= cap) {
        gp__errf(st->msg, cap, "%s", c->errmsg); /* cut at the end */
    } else {
        /* The stderr tail is the end of the plugin's output: when it does
         * not fit, keep its last bytes, from a line start if there is one. */
        size_t room = cap - 1 - n - (sizeof TAIL_HEAD - 1);
        const char *t = c->errtail;
        if (tn > room) {
            t += tn - room;
            const char *nl = memchr(t, '\n', strlen(t));
            if (nl && nl[1])
                t = nl + 1;
        }
        gp__errf(st->msg, cap, "%s" TAIL_HEAD "%s", c->errmsg, t);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- start ---- */

static gp_err build_env(gp_client *c, char ***envp)
{
    char ver[GP_HS_MAX_VERSIONS * 11 + 1] = "";
    if (gp__hs_format_versions(c->versions, c->nversions, ver, sizeof ver) < 0)
        return gp__client_fail(c, GP_EINVAL, "cannot format PLUGIN_PROTOCOL_VERSIONS");
    const char *cert_var = NULL;
    char terr[512];
    gp_err trc = gp__client_tls_prepare(c->tls, &cert_var, terr, sizeof terr);
    if (trc)
        return gp__client_fail(c, trc, "AutoMTLS: cannot make the host's certificate: %s", terr);
    gp__strbuf vars[7];
    const char *list[9];
    size_t n = 0;
    for (size_t i = 0; i < 7; i++)
        gp__strbuf_init(&vars[i]);
    gp__strbuf_printf(&vars[n++], "%s=%s", c->cookie_key, c->cookie_value);
    gp__strbuf_printf(&vars[n++], "PLUGIN_MIN_PORT=%u", c->min_port);
    gp__strbuf_printf(&vars[n++], "PLUGIN_MAX_PORT=%u", c->max_port);
    gp__strbuf_printf(&vars[n++], "PLUGIN_PROTOCOL_VERSIONS=%s", ver);
    /* Always, true or false: an inherited "true" would switch a 1.6+
     * plugin to multiplexing behind our back. */
    gp__strbuf_printf(&vars[n++], "PLUGIN_MULTIPLEX_GRPC=%s",
                      gp__hs_mux_env_value(c->mux_requested));
    if (c->unix_dir)
        gp__strbuf_printf(&vars[n++], "PLUGIN_UNIX_SOCKET_DIR=%s", c->unix_dir);
    if (c->unix_group)
        gp__strbuf_printf(&vars[n++], "PLUGIN_UNIX_SOCKET_GROUP=%s", c->unix_group);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        ok = ok && vars[i].ok;
        list[i] = vars[i].data;
    }
    if (cert_var) /* AutoMTLS: our certificate */
        list[n++] = cert_var;
    list[n] = NULL;
    gp_err rc =
        ok ? gp__env_build((const char *const *)c->env,
                           c->skip_host_env ? NULL : (const char *const *)environ, list, envp)
           : GP_ENOMEM;
    for (size_t i = 0; i < 7; i++)
        gp__strbuf_free(&vars[i]);
    if (rc)
        return gp__client_fail(c, rc, "building the plugin environment: out of memory");
    return GP_OK;
}

static gp_err launch(gp_client *c)
{
    char err[1024] = "";
    char path[4096];
    gp_err rc = gp__find_exec(c->argv[0], getenv("PATH"), path, sizeof path, err, sizeof err);
    if (rc)
        return gp__client_fail(c, rc, "%s", err);
    int exec_fd = -1;
    bool script = false;
    if (c->has_sha) {
        rc = gp__checksum_open(path, c->sha256, &exec_fd, &script, err, sizeof err);
        if (rc)
            return gp__client_fail(c, rc, "%s", err);
    }
    char **envp = NULL;
    rc = build_env(c, &envp);
    if (rc) {
        if (exec_fd >= 0)
            close(exec_fd);
        return rc;
    }
    gp__proc_opts po = {.path = path,
                        .argv = c->argv,
                        .envp = envp,
                        .exec_fd = exec_fd,
                        .exec_fd_script = script,
                        .logger = &c->logger,
                        .log_name = c->log_name,
                        .detached = c->detached,
                        .out_path = c->stdout_file,
                        .err_path = c->stderr_file};
    gp__proc *proc = NULL;
    rc = gp__proc_start(&po, &proc, err, sizeof err);
    free(envp);
    if (exec_fd >= 0)
        close(exec_fd);
    if (rc)
        return gp__client_fail(c, rc, "%s", err);
    pthread_mutex_lock(&c->mu);
    c->proc = proc;
    c->pid = gp__proc_pid(proc);
    /* Our unreaped child: the pid cannot name anyone else yet. */
    gp__pid_start_time(c->pid, &c->start_time);
    bool dying = c->dying;
    pthread_mutex_unlock(&c->mu);
    if (dying) {
        /* A kill from another thread came first and saw no process. */
        gp__proc_kill(proc, 0, NULL, NULL);
        return gp__client_fail(c, GP_ESTATE, "client was killed while the plugin was starting");
    }

    char *line = NULL;
    size_t len = 0;
    rc = gp__proc_wait_line(proc, c->start_timeout_ms, &line, &len, err, sizeof err);
    gp__hs_line hs;
    memset(&hs, 0, sizeof hs);
    if (!rc)
        rc = gp__hs_parse(line, len, &hs, err, sizeof err);
    if (!rc)
        rc = gp__hs_check(&hs, c->versions, c->nversions, c->allowed, err, sizeof err);
    if (!rc) /* field 6 against our TLS setting */
        rc = gp__client_tls_check_line(c->tls, &hs, &c->logger, c->log_name, err, sizeof err);
    bool mux = false;
    if (!rc) /* field 7, after the certificate, as go-plugin */
        rc = gp__hs_check_mux(&hs, c->mux_requested, &mux, err, sizeof err);
    free(line);
    if (rc) {
        gp__hs_line_free(&hs);
        /* The child is killed and reaped before we report. */
        gp__proc_kill(proc, 0, NULL, NULL);
        return gp__client_fail(c, rc, "%s", err);
    }
    pthread_mutex_lock(&c->mu);
    c->version = hs.app_version;
    c->protocol = hs.protocol;
    c->mux = mux;
    snprintf(c->network, sizeof c->network, "%s", hs.network);
    snprintf(c->address, sizeof c->address, "%s", hs.address);
    pthread_mutex_unlock(&c->mu);
    gp__hs_line_free(&hs);
    gp_log_kv kv[] = {{"network", c->network}, {"address", c->address}};
    gp_logf(&c->logger, GP_LOG_DEBUG, c->log_name, kv, 2, "plugin started, pid %d", (int)c->pid);
    return GP_OK;
}

static bool pidfd_exited(int pidfd, int timeout_ms)
{
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    int r;
    do
        r = poll(&pfd, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

/* Reattach: check the process and make one test connection. Whatever
 * fails here, nothing is killed (go-plugin ≤1.6.1 killed the pid). */
static gp_err reattach(gp_client *c)
{
    char err[1024] = "";
    const gp_reattach_config *r = &c->ra;
    int pidfd = -1;
    if (r->pid > 0) {
        pidfd = gp__pidfd_open(r->pid);
        if (pidfd < 0 && errno == ESRCH)
            return gp__client_fail(c, GP_ENOTFOUND,
                                   "reattach: expected a running plugin with pid %d, got "
                                   "no such process",
                                   (int)r->pid);
        if (pidfd >= 0 && pidfd_exited(pidfd, 0)) {
            close(pidfd);
            return gp__client_fail(c, GP_ENOTFOUND,
                                   "reattach: expected a running plugin with pid %d, it has exited",
                                   (int)r->pid);
        }
        /* pidfd_open unavailable: the test dial below is the only check. */
    }
    int fd = -1;
    gp_err rc = gp__net_dial(r->network, r->address, c->start_timeout_ms, 0, &fd, err, sizeof err);
    if (rc) {
        if (pidfd >= 0)
            close(pidfd);
        return gp__client_fail(c, GP_ENOTFOUND,
                               "reattach: expected a plugin listening on %s %s, got: %s",
                               r->network, r->address, err);
    }
    close(fd);
    rc = gp__client_verify_pid(c, pidfd);
    if (rc) {
        if (pidfd >= 0)
            close(pidfd);
        return rc;
    }
    pthread_mutex_lock(&c->mu);
    if (c->dying) {
        pthread_mutex_unlock(&c->mu);
        if (pidfd >= 0)
            close(pidfd);
        return gp__client_fail(c, GP_ESTATE, "client was killed while reattaching");
    }
    c->ra_pidfd = pidfd;
    c->pid = r->pid;
    c->version = r->protocol_version;
    c->protocol = r->protocol == GP_PROTO_NONE ? GP_PROTO_NETRPC : r->protocol;
    snprintf(c->network, sizeof c->network, "%s", r->network);
    snprintf(c->address, sizeof c->address, "%s", r->address);
    pthread_mutex_unlock(&c->mu);
    return GP_OK;
}

static gp_err start(gp_client *c)
{
    pthread_mutex_lock(&c->mu);
    int state = c->state;
    gp_err prev = c->start_err;
    pthread_mutex_unlock(&c->mu);
    if (state == GP__CLIENT_RUNNING)
        return GP_OK;
    if (state == GP__CLIENT_FAILED)
        return prev; /* the message from that failure stays */
    if (state == GP__CLIENT_KILLED)
        return gp__client_fail(c, GP_ESTATE,
                               "client was killed; expected a new client to start again");
    gp_err rc = c->reattach ? reattach(c) : launch(c);
    pthread_mutex_lock(&c->mu);
    if (c->state == GP__CLIENT_NEW) {
        c->state = rc ? GP__CLIENT_FAILED : GP__CLIENT_RUNNING;
        c->start_err = rc;
    } else if (!rc) {
        rc = GP_ESTATE; /* killed while starting */
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

gp_err gp_client_start(gp_client *c, gp_status *st)
{
    if (!c) {
        gp__status_clear(st);
        return gp__status_setf(st, GP_EINVAL, "c: expected a client, got NULL");
    }
    return gp__client_status(c, start(c), st);
}

/* ---- connect ---- */

static gp_err connect_once(gp_client *c, gp_conn **out)
{
    gp_err rc = start(c);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->conn_mu);
    pthread_mutex_lock(&c->mu);
    gp_conn *conn = c->conn;
    int state = c->state;
    gp_protocol proto = c->protocol;
    char network[sizeof c->network], address[sizeof c->address];
    memcpy(network, c->network, sizeof network);
    memcpy(address, c->address, sizeof address);
    pthread_mutex_unlock(&c->mu);
    if (conn || state != GP__CLIENT_RUNNING) {
        pthread_mutex_unlock(&c->conn_mu);
        *out = conn;
        return conn ? GP_OK
                    : gp__client_fail(c, GP_ESTATE, "client was killed; expected a running plugin");
    }
    const gp__wire *w = gp__wire_find(proto);
    if (!w) {
        pthread_mutex_unlock(&c->conn_mu);
        return gp__client_fail(c, GP_EUNSUPPORTED,
                               "plugin speaks %s, which this host does not "
                               "have built in",
                               gp_protocol_name(proto));
    }
    char err[1024] = "";
    gp__wire_client_opts wo = {.call_timeout_ms = c->call_timeout_ms,
                               .logger = &c->logger,
                               .log_name = c->log_name,
                               .max_message_bytes = c->max_message_bytes,
                               .keepalive = c->keepalive,
                               .limits = c->limits,
                               .multiplex = c->mux,
                               .stdout_sink = c->stdout_sink,
                               .stderr_sink = c->stderr_sink,
                               .stdio_ctx = c->stdio_ctx};
    if (c->tls)
        gp__client_tls_wire_opts(c->tls, c->start_timeout_ms, &wo);
    rc = w->dial(network, address, c->start_timeout_ms, &wo, &conn, err, sizeof err);
    if (rc && c->tls && w->tls_errors_opaque)
        rc = gp__client_tls_explain(&wo, network, address, rc, err, sizeof err);
    if (rc)
        conn = NULL;
    if (!rc) {
        gp_status st;
        memset(&st, 0, sizeof st);
        rc = gp_conn_ping(conn, &st);
        if (rc) {
            snprintf(err, sizeof err, "%s of the plugin at %s %s failed: expected %s, got: %s",
                     w->ping_name, network, address, w->ping_expect,
                     st.msg[0] ? st.msg : gp_strerror(rc));
            gp__conn_close(conn);
            conn = NULL;
        }
    }
    if (rc) {
        pthread_mutex_unlock(&c->conn_mu);
        /* A launched plugin we cannot talk to is of no use: stop it now, so
         * nothing is left running. A reattached one is not ours to kill. */
        if (!c->reattach)
            gp_client_kill(c);
        return gp__client_fail(c, rc, "connect to plugin: %s", err);
    }
    gp__client_exit_watch(c, conn);
    struct gp__client_stdio *stdio = gp__client_stdio_start(c, conn);
    pthread_mutex_lock(&c->mu);
    c->stdio = stdio;
    c->conn = conn;
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->conn_mu);
    *out = conn;
    return GP_OK;
}

gp_err gp_client_connect(gp_client *c, gp_conn **out, gp_status *st)
{
    gp__status_clear(st);
    if (!c)
        return gp__status_setf(st, GP_EINVAL, "c: expected a client, got NULL");
    if (!out)
        return gp__status_setf(st, GP_EINVAL, "out: expected a place for the connection, got NULL");
    *out = NULL;
    return gp__client_status(c, connect_once(c, out), st);
}

/* ---- kill ---- */

static int shutdown_ms(const gp_client *c)
{
    return c->kill_grace_ms < SHUTDOWN_CALL_MAX_MS ? c->kill_grace_ms : SHUTDOWN_CALL_MAX_MS;
}

static gp_err graceful(void *ctx)
{
    gp_client *c = ctx;
    gp_status st;
    memset(&st, 0, sizeof st);
    gp_err rc = gp__conn_shutdown(c->conn, shutdown_ms(c), &st);
    if (rc)
        gp_logf(&c->logger, GP_LOG_DEBUG, c->log_name, NULL, 0,
                "graceful shutdown request failed: %s", st.msg[0] ? st.msg : gp_strerror(rc));
    return rc;
}

/* Without a connection there is no Shutdown RPC to send: SIGTERM is the
 * polite request then (a C plugin stops cleanly on it; a Go plugin dies at
 * once, SIGTERM's default), and the grace period still applies. */
static gp_err terminate(void *ctx)
{
    gp_client *c = ctx;
    return gp__proc_signal(c->proc, SIGTERM);
}

static void kill_reattached(gp_client *c)
{
    if (c->ra.test)
        return; /* test mode: go-plugin's Kill does nothing at all */
    bool asked = c->conn && graceful(c) == GP_OK;
    if (c->ra_pidfd < 0)
        return; /* no pid (or no pidfd): we cannot be sure whom we would kill */
    if (asked && pidfd_exited(c->ra_pidfd, c->kill_grace_ms))
        return;
    /* The pidfd names the very process we verified, even if its pid number
     * was reused since (go-plugin #320). */
    if (!pidfd_exited(c->ra_pidfd, 0)) {
        gp_logf(&c->logger, GP_LOG_WARN, c->log_name, NULL, 0, "plugin failed to exit gracefully");
        gp__pidfd_signal(c->ra_pidfd, SIGKILL);
        pidfd_exited(c->ra_pidfd, REATTACH_KILL_WAIT_MS);
    }
}

/* The plugin is gone; a unix socket it left behind is litter. */
static void unlink_socket(gp_client *c)
{
    if (strcmp(c->network, "unix") != 0 || c->address[0] != '/')
        return;
    struct stat st;
    if (lstat(c->address, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(c->address);
}

void gp_client_kill(gp_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->kill_mu);
    pthread_mutex_lock(&c->mu);
    int state = c->state;
    c->dying = true;
    gp__proc *proc = c->proc;
    pthread_mutex_unlock(&c->mu);
    if (state == GP__CLIENT_KILLED) {
        pthread_mutex_unlock(&c->kill_mu);
        return;
    }
    /* Wait for a connect in progress, so the conn we close is final. */
    pthread_mutex_lock(&c->conn_mu);
    /* What the plugin sends as it stops (its last prints, then the stream's
     * end) is read as it comes: left in the socket, a write of ours that
     * met the closed peer would drop it with the connection (CI: a line
     * printed in the last call lost, 1 run in 30 under ASan). conn_mu
     * keeps c->stdio as it is until we free it below. */
    pthread_mutex_lock(&c->mu);
    struct gp__client_stdio *follow = c->stdio;
    pthread_mutex_unlock(&c->mu);
    gp__client_stdio_follow(follow, 1);
    if (c->reattach) {
        if (state == GP__CLIENT_RUNNING)
            kill_reattached(c);
    } else if (proc) {
        gp__proc_kill(proc, c->kill_grace_ms, c->conn ? graceful : terminate, c);
        if (state == GP__CLIENT_RUNNING)
            unlink_socket(c);
    }
    gp__client_stdio_follow(follow, 0);
    gp_conn *conn;
    pthread_mutex_lock(&c->mu);
    conn = c->conn;
    c->conn = NULL;
    c->state = GP__CLIENT_KILLED;
    struct gp__client_stdio *stdio = c->stdio;
    c->stdio = NULL;
    pthread_mutex_unlock(&c->mu);
    gp__client_stdio_stop(stdio); /* before its conn goes */
    if (conn) {
        gp__client_exit_unwatch(conn);
        gp__conn_close(conn);
    }
    pthread_mutex_lock(&c->mu);
    if (c->ra_pidfd >= 0) {
        close(c->ra_pidfd);
        c->ra_pidfd = -1;
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->conn_mu);
    pthread_mutex_unlock(&c->kill_mu);
}

/* ---- queries ---- */

bool gp_client_exited(gp_client *c)
{
    if (!c)
        return true;
    if (c->reattach) {
        /* Not our child: the pidfd (or, without one, signal 0) tells. */
        pthread_mutex_lock(&c->mu);
        bool gone = c->state == GP__CLIENT_KILLED ||
                    (c->ra_pidfd >= 0 ? pidfd_exited(c->ra_pidfd, 0)
                                      : (c->pid > 0 && kill(c->pid, 0) != 0 && errno == ESRCH));
        pthread_mutex_unlock(&c->mu);
        return gone;
    }
    pthread_mutex_lock(&c->mu);
    gp__proc *p = c->proc;
    pthread_mutex_unlock(&c->mu);
    return p ? gp__proc_exited(p, NULL) : false;
}

size_t gp_client_stderr_tail(const gp_client *c, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return 0;
    buf[0] = 0;
    /* proc is set once by start and freed only with the client. */
    if (!c || !c->proc)
        return 0;
    return gp__proc_stderr_tail(c->proc, buf, cap);
}

pid_t gp_client_pid(const gp_client *c)
{
    return c ? c->pid : -1;
}

unsigned gp_client_protocol_version(const gp_client *c)
{
    return c ? c->version : 0;
}

gp_protocol gp_client_protocol(const gp_client *c)
{
    return c ? c->protocol : GP_PROTO_NONE;
}

gp_err gp_client_reattach_config(const gp_client *c, gp_reattach_config *out)
{
    if (!c || !out)
        return GP_EINVAL;
    if (c->state != GP__CLIENT_RUNNING)
        return GP_ESTATE;
    memset(out, 0, sizeof *out);
    out->protocol = c->protocol;
    out->protocol_version = c->version;
    out->pid = c->pid > 0 ? c->pid : 0;
    out->network = c->network;
    out->address = c->address;
    out->test = false;
    out->start_time = c->reattach ? c->ra.start_time : c->start_time;
    return GP_OK;
}

void gp_client_free(gp_client *c)
{
    if (!c)
        return;
    gp__client_registry_remove(c);
    if (!gp__client_release(c))
        gp_client_kill(c);
    gp__client_destroy(c);
}
