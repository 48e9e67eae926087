/* gp_serve: the plugin side of go-plugin (spec §1.2, §7). Check the
 * cookie, negotiate the version, listen, print the handshake line, serve
 * the chosen wire (gRPC or netrpc, through the wire table of wire.h) until
 * the host shuts us down or SIGTERM arrives. */
#include <goplugin/server.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/base/sync.h"
#include "transport/handshake/handshake.h"
#include "transport/net/net.h"
#include "transport/plugin/serve_config.h"
#include "transport/plugin/serve_stdio.h"
#include "transport/plugin/serve_tls.h"
#include "transport/core/wire.h"

#define ERR_MAX 1024

static void write_all(int fd, const char *p, size_t n)
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

/* SIGTERM and SIGINT are blocked in every thread and taken here with
 * sigwait, so no wire call ever runs in a signal handler. */
typedef struct sig_watch {
    pthread_t thread;
    bool running;
    sigset_t set;
    sigset_t old_mask;
    const gp__wire *wire;
    void *server;
    const gp_logger *log;
    atomic_int done;
} sig_watch;

static void *watch_signals(void *arg)
{
    sig_watch *w = arg;
    unsigned interrupts = 0;
    for (;;) {
        int sig;
        if (sigwait(&w->set, &sig) != 0)
            continue;
        if (atomic_load(&w->done))
            return NULL;
        if (sig == SIGINT) {
            /* As go-plugin: a Ctrl-C in the host's terminal reaches the
             * whole process group; the host decides when we stop. */
            char count[16];
            snprintf(count, sizeof count, "%u", ++interrupts);
            gp_log_kv kv = {"count", count};
            gp_logf(w->log, GP_LOG_DEBUG, "", &kv, 1, "plugin received interrupt signal, ignoring");
            continue;
        }
        gp_logf(w->log, GP_LOG_INFO, "", NULL, 0, "plugin received SIGTERM, stopping");
        w->wire->server_stop(w->server);
    }
}

/* Block the signals before any server thread exists so that all of them
 * inherit the mask. */
static void block_signals(sig_watch *w)
{
    sigemptyset(&w->set);
    sigaddset(&w->set, SIGTERM);
    sigaddset(&w->set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &w->set, &w->old_mask);
    /* A host that went away must not kill us mid-write. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void unblock_signals(sig_watch *w)
{
    if (w->running) {
        atomic_store(&w->done, 1);
        pthread_kill(w->thread, SIGTERM);
        pthread_join(w->thread, NULL);
        w->running = false;
    }
    /* Drop what arrived while we were stopping: we are stopped already. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&w->set, NULL, &zero) > 0)
        ;
    pthread_sigmask(SIG_SETMASK, &w->old_mask, NULL);
}

static gp_err listen_unix(const gp__wire *w, void *srv, bool mux, char *path, size_t cap, char *err,
                          size_t errlen)
{
    gp_err e = gp__net_unix_path(getenv("PLUGIN_UNIX_SOCKET_DIR"), path, cap, err, errlen);
    if (e)
        return e;
    char addr[GP_HS_ADDR_MAX + 8];
    snprintf(addr, sizeof addr, "unix:%s", path);
    if ((e = mux ? w->server_listen_mux(srv, addr, err, errlen)
                 : w->server_listen(srv, addr, NULL, err, errlen))) {
        path[0] = 0;
        return e;
    }
    const char *group = getenv("PLUGIN_UNIX_SOCKET_GROUP");
    if (group && *group)
        e = gp__net_unix_set_group(path, group, err, errlen);
    return e;
}

/* go-plugin's order: ports min..max ascending, the first that binds wins.
 * A plain bind probe skips busy ports cheaply; the wire then binds the
 * port the probe found (and we move on if it lost a race for it). */
static gp_err listen_tcp(const gp__wire *w, void *srv, char *address, size_t cap, char *err,
                         size_t errlen)
{
    unsigned min, max;
    gp_err e = gp__hs_parse_ports(getenv("PLUGIN_MIN_PORT"), getenv("PLUGIN_MAX_PORT"), &min, &max,
                                  err, errlen);
    if (e)
        return e;
    char addr[64];
    if (min == 0 && max == 0) {
        int port = 0;
        if ((e = w->server_listen(srv, "127.0.0.1:0", &port, err, errlen)))
            return e;
        snprintf(address, cap, "127.0.0.1:%d", port);
        return GP_OK;
    }
    char last[256] = "every port is busy";
    for (unsigned p = min; p <= max;) {
        int fd;
        unsigned got;
        if (gp__net_listen_tcp(p, max, &fd, &got, last, sizeof last) != GP_OK)
            break;
        close(fd);
        snprintf(addr, sizeof addr, "127.0.0.1:%u", got);
        int port = 0;
        if (w->server_listen(srv, addr, &port, last, sizeof last) == GP_OK) {
            snprintf(address, cap, "127.0.0.1:%d", port);
            return GP_OK;
        }
        p = got + 1;
    }
    snprintf(err, errlen, "listen tcp 127.0.0.1: no usable port in %u..%u (last: %s)", min, max,
             last);
    return GP_ECONNECT;
}

static gp_err print_handshake(int fd, const gp__hs_line *l, char *err, size_t errlen)
{
    char line[GP_HS_ADDR_MAX + 64 + 4096]; /* + an AutoMTLS certificate */
    int n = gp__hs_format(l, line, sizeof line);
    if (n < 0) {
        snprintf(err, errlen, "cannot format the handshake line for address %s", l->address);
        return GP_EINVAL;
    }
    /* One write: the host reads the line as soon as it appears. */
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = write(fd, line + off, (size_t)n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "writing the handshake line to stdout: %s",
                     w < 0 ? strerror(errno) : "short write");
            return GP_EIO;
        }
        off += (size_t)w;
    }
    return GP_OK;
}

int gp_serve(const gp_serve_config *cfg)
{
    char err[ERR_MAX];
    if (!cfg) {
        static const char msg[] = "gp_serve: no config\n";
        write_all(2, msg, sizeof msg - 1);
        return 1;
    }
    const char *key = cfg->handshake.magic_cookie_key;
    gp_err e =
        gp__serve_check_cookie(&cfg->handshake, key && *key ? getenv(key) : NULL, err, sizeof err);
    if (e) {
        write_all(2, err, strlen(err));
        return 1;
    }

    gp_logger log = cfg->logger;
    if (!log.fn) {
        /* Like go-plugin's own logger: everything, as hclog JSON on the
         * real stderr; the host filters by its level. */
        log.fn = gp_log_json_stderr;
        log.ctx = NULL;
        log.level = GP_LOG_TRACE;
    }

    gp_protocol protocol;
    const char *network;
    gp__serve_choice choice;
    char warn[512];
    if ((e = gp__serve_transport(cfg, &protocol, &network, err, sizeof err)) ||
        (e = gp__serve_choose(cfg, getenv("PLUGIN_PROTOCOL_VERSIONS"), &choice, warn, sizeof warn,
                              err, sizeof err))) {
        gp_log_kv kv = {"error", err};
        gp_logf(&log, GP_LOG_ERROR, "", &kv, 1, "plugin init error");
        return 1;
    }
    if (warn[0]) {
        gp_log_kv kv = {"error", warn};
        gp_logf(&log, GP_LOG_WARN, "", &kv, 1, "bad PLUGIN_PROTOCOL_VERSIONS from host");
    }

    /* TLS: our tls config, or AutoMTLS when the host sent its certificate
     * (serve_tls.c). */
    gp__serve_tls tls;
    if ((e = gp__serve_tls_setup(cfg, getenv("PLUGIN_CLIENT_CERT"), &tls, err, sizeof err))) {
        gp_log_kv kv = {"error", err};
        gp_logf(&log, GP_LOG_ERROR, "", &kv, 1, "plugin init error");
        return 1;
    }
    if (tls.on) /* go-plugin's words */
        gp_logf(&log, GP_LOG_INFO, "", NULL, 0, "%s",
                tls.cert_b64 ? "configuring server automatic mTLS" : "configuring server TLS");

    sig_watch watch;
    memset(&watch, 0, sizeof watch);
    block_signals(&watch);

    gp__hs_line line = {
        .core_version = GP_HS_CORE_VERSION, .app_version = choice.version, .protocol = protocol};
    snprintf(line.network, sizeof line.network, "%s", network);
    line.cert_b64 = tls.cert_b64; /* AutoMTLS: field 6 */
    /* Field 7 as go-plugin 1.6+ prints it: whenever the host set
     * PLUGIN_MULTIPLEX_GRPC, whatever the value; we multiplex only for a Go
     * boolean true on gRPC. */
    bool mux_field = false, mux = false;
    gp__hs_mux_env(getenv("PLUGIN_MULTIPLEX_GRPC"), &mux_field, &mux);
    mux = mux && protocol == GP_PROTO_GRPC;
    char unix_path[GP_HS_ADDR_MAX] = "";
    void *srv = NULL;
    gp__serve_stdio *stdio = NULL;
    /* Only the chosen wire starts: serving netrpc never initialises gRPC. */
    const gp__wire *w = gp__wire_find(protocol);
    /* A wire that cannot multiplex (or a TCP listener) says "false": the
     * host then refuses us with a reason instead of failing later. */
    bool can_mux = w && w->server_listen_mux && strcmp(network, "unix") == 0;
    if (mux_field)
        line.mux_field = mux && !can_mux ? GP_HS_MUX_FALSE : GP_HS_MUX_TRUE;
    mux = mux && can_mux;
    if (!w) {
        snprintf(err, sizeof err, "%s is not built into this plugin (link //transport:goplugin)",
                 gp_protocol_name(protocol));
        e = GP_EUNSUPPORTED;
    } else {
        gp__wire_server_opts opts = {.services = choice.services,
                                     .nservices = choice.nservices,
                                     .workers = cfg->workers,
                                     .logger = &log,
                                     .max_message_bytes = cfg->max_message_bytes,
                                     .keepalive = cfg->keepalive,
                                     .limits = cfg->limits};
        /* What we print after the handshake goes to the host over the
         * wire (GRPCStdio, netrpc's stdout/stderr streams: serve_stdio.h). */
        if (w->serves_stdio && (stdio = gp__serve_stdio_new()))
            opts.stdio = gp__serve_stdio_source(stdio);
        e = w->server_new(&opts, &srv, err, sizeof err);
        if (!e)
            e = gp__serve_tls_apply(&tls, w, srv, err, sizeof err);
    }
    if (!e && strcmp(network, "unix") == 0) {
        e = listen_unix(w, srv, mux, unix_path, sizeof unix_path, err, sizeof err);
        snprintf(line.address, sizeof line.address, "%s", unix_path);
    } else if (!e) {
        e = listen_tcp(w, srv, line.address, sizeof line.address, err, sizeof err);
    }
    /* Before the line: a call may print as soon as the host reads it. */
    char why[256] = "";
    bool redirected = !e && stdio && gp__serve_stdio_redirect(stdio, why, sizeof why) == GP_OK;
    if (!e) {
        gp_log_kv kv[2] = {{"network", line.network}, {"address", line.address}};
        gp_logf(&log, GP_LOG_DEBUG, "", kv, 2, "plugin address");
        e = print_handshake(gp__serve_stdio_real_stdout(stdio), &line, err, sizeof err);
    }
    /* The threads start after the line, while the host dials: the socket
     * listens already (a dial waits in its backlog), what a call prints
     * waits in the pipe, a signal stays pending (blocked). A process's
     * first thread is its costliest to start (bench/vmcost). */
    if (!e)
        e = w->server_start(srv, err, sizeof err);
    if (!e && stdio && (!redirected || gp__serve_stdio_start(stdio, why, sizeof why) != GP_OK)) {
        gp_log_kv kv = {"error", why};
        gp_logf(&log, GP_LOG_WARN, "", &kv, 1, "stdout/stderr are not forwarded to the host");
    }
    if (!e) {
        watch.wire = w;
        watch.server = srv;
        watch.log = &log;
        if (gp__thread_start_small(&watch.thread, watch_signals, &watch) == 0) {
            watch.running = true;
        } else {
            snprintf(err, sizeof err, "cannot start the signal thread");
            e = GP_ESYS;
        }
    }
    if (!e)
        w->server_wait(srv);
    gp__serve_stdio_stopping(stdio); /* its handlers end before the server frees */

    int status = 0;
    if (e) {
        gp_log_kv kv = {"error", err};
        gp_logf(&log, GP_LOG_ERROR, "", &kv, 1, "plugin init error");
        status = 1;
    }
    /* The signal thread may still call stop on srv: end it first. */
    unblock_signals(&watch);
    if (srv)
        w->server_free(srv);
    gp__serve_stdio_free(stdio); /* fd 1 and fd 2 back */
    gp__serve_tls_free(&tls);
    if (unix_path[0])
        unlink(unix_path);
    if (!e)
        gp_logf(&log, GP_LOG_DEBUG, "", NULL, 0, "plugin server stopped");
    return status;
}
