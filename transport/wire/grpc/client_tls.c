/* The gRPC client over mutual TLS. Core's TLS works only on a channel core
 * dials itself (grpc_channel_create_from_fd is insecure only), so here core
 * dials "unix:/path" or "ipv4:127.0.0.1:PORT" with SSL credentials fed our
 * PEMs, and the name checked in the server's certificate is overridden to
 * "localhost" (go-plugin's ServerName) instead of the socket address.
 *
 * Core dials the socket, so our TCP keepalive (gp__net_keepalive, as on
 * the sockets we dial for plaintext) goes in through its socket mutator
 * (tcp_keepalive.h).
 *
 * Core says why a handshake failed only in its log, and a refused client
 * certificate often only as "Socket closed" on the next call: so we wait
 * for the channel to connect, health-check once, and on failure give the
 * ERROR lines core logged meanwhile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "transport/core/conn.h"
#include "transport/wire/grpc/channel.h"
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/grpc.h"
#include "transport/wire/grpc/tcp_keepalive.h"
#include "transport/net/net.h"

enum { CONNECT_TIMEOUT_MS = 10000 };

typedef struct dial {
    char target[4200];
    const char *where; /* "unix /tmp/plugin123" for messages */
    const char *network, *address;
    const gp__grpc_tls *tls;
    int timeout_ms;
    int ka_time_ms, ka_timeout_ms; /* gp_keepalive, for the TCP socket */
    gp__grpc_log_capture cap;
    char why[1100];
} dial;

static grpc_channel *make_tls(const grpc_channel_args *args, void *ctx)
{
    dial *d = ctx;
    grpc_ssl_pem_key_cert_pair pair = {.private_key = d->tls->key_pem,
                                       .cert_chain = d->tls->cert_pem};
    int own = d->tls->cert_pem && d->tls->key_pem;
    grpc_channel_credentials *creds =
        grpc_ssl_credentials_create(d->tls->root_pem, own ? &pair : NULL, NULL, NULL);
    /* args plus the keepalive mutator; without it (memory, another core)
     * the channel still works, as a socket whose setsockopt failed would. */
    grpc_arg ka;
    int has_ka = gp__grpc_tcp_keepalive_arg(d->ka_time_ms, d->ka_timeout_ms, &ka) == 0;
    size_t n = args ? args->num_args : 0;
    grpc_arg *all = has_ka ? malloc((n + 1) * sizeof *all) : NULL;
    grpc_channel_args with = {0};
    if (all) {
        if (n)
            memcpy(all, args->args, n * sizeof *all);
        all[n] = ka;
        with = (grpc_channel_args){.num_args = n + 1, .args = all};
    }
    grpc_channel *ch = grpc_channel_create(d->target, creds, all ? &with : args);
    free(all);
    if (has_ka)
        gp__grpc_tcp_keepalive_release(&ka);
    grpc_channel_credentials_release(creds);
    return ch;
}

static const char *state_name(grpc_connectivity_state s)
{
    switch (s) {
    case GRPC_CHANNEL_IDLE:
        return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
        return "CONNECTING";
    case GRPC_CHANNEL_READY:
        return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
        return "TRANSIENT_FAILURE";
    default:
        return "SHUTDOWN";
    }
}

/* " (core: <its ERROR lines>)", or "" when it logged none. */
static const char *reason(dial *d)
{
    char text[sizeof d->cap.text];
    gp__grpc_capture_text(&d->cap, text, sizeof text); /* core logs from its threads */
    if (!text[0])
        return "";
    snprintf(d->why, sizeof d->why, " %s", text);
    return d->why;
}

/* Wait for READY; TRANSIENT_FAILURE (refused, no listener, TLS failure) or
 * the deadline ends the wait with an error. */
static gp_err wait_ready(grpc_channel *ch, void *ctx, char *err, size_t errlen)
{
    dial *d = ctx;
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(d->timeout_ms, GPR_TIMESPAN));
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
    int tag, timed_out = 0;
    while (st != GRPC_CHANNEL_READY && st != GRPC_CHANNEL_TRANSIENT_FAILURE &&
           st != GRPC_CHANNEL_SHUTDOWN) {
        GP_TAG_RELEASE(&tag);
        grpc_channel_watch_connectivity_state(ch, st, deadline, cq, &tag);
        grpc_event ev =
            grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        GP_TAG_ACQUIRE(&tag);
        if (!ev.success) {
            timed_out = 1;
            break;
        }
        st = grpc_channel_check_connectivity_state(ch, 1);
    }
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_completion_queue_destroy(cq);
    if (st == GRPC_CHANNEL_READY)
        return GP_OK;
    if (timed_out) {
        snprintf(err, errlen,
                 "TLS connection to the plugin at %s: expected the handshake to finish within "
                 "%d ms, the channel is still %s%s",
                 d->where, d->timeout_ms, state_name(st), reason(d));
        return GP_ETIMEDOUT;
    }
    /* The log says whether TLS or the socket failed. */
    char text[sizeof d->cap.text];
    gp__grpc_capture_text(&d->cap, text, sizeof text);
    int tls = strstr(text, "andshake") || strstr(text, "SSL") || strstr(text, "ssl") ||
              strstr(text, "TLS");
    if (tls) {
        snprintf(err, errlen, "TLS handshake to the plugin at %s failed: channel %s%s", d->where,
                 state_name(st), reason(d));
        return GP_ETLS;
    }
    /* No reason logged: a server that refuses our certificate after a TLS
     * 1.3 handshake just hangs up, and a wrong name in the server's
     * certificate is not logged as an error either. Whether the socket
     * answers at least tells that apart from nothing listening. */
    char why[256];
    int fd = -1;
    if (gp__net_dial(d->network, d->address, d->timeout_ms, 0, &fd, why, sizeof why) == GP_OK) {
        close(fd);
        snprintf(err, errlen,
                 "TLS session with the plugin at %s failed: it accepts connections, but the "
                 "session ended before it was usable (a certificate refused by either side, "
                 "or a peer without TLS; gRPC core gives no reason); channel %s%s",
                 d->where, state_name(st), reason(d));
        return GP_ETLS;
    }
    snprintf(err, errlen, "connection to the plugin at %s failed: %s; channel %s%s", d->where, why,
             state_name(st), reason(d));
    return GP_ECONNECT;
}

gp_err gp__grpc_conn_dial_tls(const char *network, const char *address, const gp__grpc_tls *tls,
                              int connect_timeout_ms, const gp__grpc_client_opts *o, gp_conn **out,
                              char *err, size_t errlen)
{
    *out = NULL;
    if (!tls || !tls->root_pem || !tls->cert_pem != !tls->key_pem) {
        snprintf(err, errlen, "grpc: TLS dial needs a root, and a certificate with its key");
        return GP_EINVAL;
    }
    /* gp_keepalive's time_ms, as wire.c's client_opts split it: < 0 turns
     * the pings off, > 0 is the check interval; timeout_ms as given. */
    dial d = {.tls = tls,
              .timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms : CONNECT_TIMEOUT_MS,
              .ka_time_ms = o && o->keepalive_ms < 0 ? -1
                            : o                      ? o->check_ms
                                                     : 0,
              .ka_timeout_ms = o ? o->keepalive_timeout_ms : 0};
    char where[4200];
    snprintf(where, sizeof where, "%s %s", network, address);
    d.where = where;
    d.network = network;
    d.address = address;
    if (strcmp(network, "unix") == 0) {
        snprintf(d.target, sizeof d.target, "unix:%s", address);
    } else if (strcmp(network, "tcp") == 0) {
        /* ipv4:/ipv6: skip the resolver; anything else is a name. */
        const char *scheme = address[0] == '[' ? "ipv6:" : strchr(address, '.') ? "ipv4:" : "";
        snprintf(d.target, sizeof d.target, "%s%s", scheme, address);
    } else {
        snprintf(err, errlen, "grpc: TLS dial: expected network unix or tcp, got \"%.20s\"",
                 network);
        return GP_EINVAL;
    }
    const char *name = tls->server_name && tls->server_name[0] ? tls->server_name : "localhost";
    grpc_arg override = {.type = GRPC_ARG_STRING,
                         .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                         .value.string = (char *)name};
    gp__grpc_channel_maker mk = {
        .make = make_tls, .ready = wait_ready, .ctx = &d, .authority = name, .extra = &override};

    gp__grpc_core_ref(NULL); /* keeps the log route up while we capture */
    gp__grpc_capture_begin(&d.cap);
    gp_conn *conn = NULL;
    gp_err e = gp__grpc_conn_make(o, &mk, &conn, err, errlen);
    if (e == GP_OK) {
        /* With TLS 1.3 the client finishes its handshake before the server
         * has judged the client's certificate: a refusal shows on the
         * first call. */
        gp_status st;
        memset(&st, 0, sizeof st);
        e = gp_conn_ping(conn, &st);
        /* A server without the health service (a Go peer's brokered
         * server) answered over TLS all the same: the session works. */
        if (e != GP_OK && st.grpc_code == GRPC_STATUS_UNIMPLEMENTED)
            e = GP_OK;
        if (e != GP_OK) {
            gp__conn_close(conn);
            conn = NULL;
            int refused = e == GP_ECLOSED;
            snprintf(err, errlen, "%s with the plugin at %s: %s%s",
                     refused ? "TLS connection refused" : "health check over TLS", where,
                     st.msg[0] ? st.msg : gp_strerror(e), reason(&d));
            if (refused)
                e = GP_ETLS;
        }
    }
    gp__grpc_capture_end(&d.cap);
    gp__grpc_core_unref(NULL);
    *out = conn;
    return e;
}
