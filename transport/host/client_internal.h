/* Internal to the client files: the gp_client handle and what they share.
 * client.c: start, connect, kill, queries. client_config.c: checking and
 * copying the config, freeing. client_registry.c: managed clients. */
#ifndef GP_TRANSPORT_CLIENT_INTERNAL_H
#define GP_TRANSPORT_CLIENT_INTERNAL_H

#include <goplugin/client.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/handshake/handshake.h"
#include "transport/process/proc.h"

enum { GP__CLIENT_NEW, GP__CLIENT_RUNNING, GP__CLIENT_FAILED, GP__CLIENT_KILLED };

struct gp_client {
    pthread_mutex_t mu;      /* state, conn, errmsg */
    pthread_mutex_t conn_mu; /* one connect at a time */
    pthread_mutex_t kill_mu; /* one kill at a time */

    /* Configuration, owned copies. */
    char **argv;
    char **env;
    bool skip_host_env;
    char *cookie_key, *cookie_value;
    unsigned *versions;
    size_t nversions;
    unsigned allowed;
    int start_timeout_ms, kill_grace_ms, call_timeout_ms;
    size_t max_message_bytes;
    gp_keepalive keepalive;
    gp_limits limits;
    gp_logger logger;
    bool managed;
    bool has_sha;
    uint8_t sha256[32];
    unsigned min_port, max_port;
    char *unix_dir, *unix_group;
    bool reattach;
    gp_reattach_config ra; /* strings point to ra_network/ra_address */
    char *ra_network, *ra_address;
    char *log_name;
    bool detached;                   /* free leaves the plugin running */
    char *stdout_file, *stderr_file; /* the plugin's output files, or NULL */
    struct gp__client_tls *tls;      /* TLS on (client_tls.c), or NULL */
    bool mux_requested;              /* cfg.grpc_broker_multiplex */
    void (*stdout_sink)(void *, const void *, size_t);
    void (*stderr_sink)(void *, const void *, size_t);
    void *stdio_ctx;
    struct gp__client_stdio *stdio; /* GRPCStdio reader (client_stdio.c), or NULL */
    bool mux;                       /* requested, gRPC and confirmed by the plugin */

    /* State. */
    int state;
    bool dying; /* gp_client_kill has begun */
    gp_err start_err;
    gp__proc *proc; /* launched plugins */
    int ra_pidfd;   /* reattached plugins with a pid; else -1 */
    pid_t pid;
    unsigned version;
    gp_protocol protocol;
    char network[8];
    char address[GP_HS_ADDR_MAX];
    gp_conn *conn;
    /* The last failure's words and the plugin's stderr tail then; public
     * calls copy them into the caller's gp_status (gp__client_status). */
    char errmsg[3072];
    char errtail[4200];
    uint64_t start_time; /* the plugin's /proc start time; 0 = unknown */

    /* Managed registry links (guarded by reg_mu). */
    struct gp_client *reg_next;
    bool registered;
};

/* Record the failure message on `c` (with the plugin's stderr tail when a
 * process was started) and return `code`. */
gp_err gp__client_fail(gp_client *c, gp_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The end of a public call: clear st on GP_OK, else copy the client's
 * words (with as much of the stderr tail as fits) into it under the lock;
 * st->err = rc. NULL st: nothing. Returns rc. */
gp_err gp__client_status(gp_client *c, gp_err rc, gp_status *st);

/* Free everything the client owns (the process is killed if needed). */
void gp__client_destroy(gp_client *c);

/* Detach and reattach checks (client_detach.c). */
/* Reattach: before we keep `pidfd` (may be -1) for signals, check that
 * c->ra.pid is still the process the reattach config describes (its start
 * time, when known). Fails (recording the message) if not; kills nothing. */
gp_err gp__client_verify_pid(gp_client *c, int pidfd);
/* gp_client_free of a detached client: close the connection, let the
 * process go. Returns false (doing nothing) if c is not detached. */
bool gp__client_release(gp_client *c);

/* Exit words for failed calls (client_exit.c): watch a launched plugin's
 * conn after connect; unwatch before the conn is closed or the proc freed. */
void gp__client_exit_watch(gp_client *c, gp_conn *conn);
void gp__client_exit_unwatch(gp_conn *conn);

/* GRPCStdio (client_stdio.c): start reading the plugin's stdout and stderr
 * stream on conn through the wire table (NULL when the wire has none, or it
 * cannot start: logged); stop it before conn is closed. NULL is a no-op. */
struct gp__client_stdio *gp__client_stdio_start(gp_client *c, gp_conn *conn);
void gp__client_stdio_stop(struct gp__client_stdio *s);
/* Read the stream as its bytes come while on (counted; NULL: no-op): from
 * before the Shutdown request until the plugin is gone, so that what it
 * prints and sends as it stops is read before the connection breaks. */
void gp__client_stdio_follow(struct gp__client_stdio *s, int on);

/* The managed-client registry (client_registry.c). */
void gp__client_registry_add(gp_client *c);
void gp__client_registry_remove(gp_client *c);

#endif
