/* goplugin-c: the host side. Launch a plugin, handshake, connect, kill.
 *
 *   const char *argv[] = {"./kv-plugin", NULL};
 *   gp_client_config cfg = {
 *       .argv = argv,
 *       .handshake = {.protocol_version = 1,
 *                     .magic_cookie_key = "BASIC_PLUGIN",
 *                     .magic_cookie_value = "hello"},
 *       .allowed_protocols = GP_PROTO_GRPC,
 *   };
 *   gp_client *c;  gp_conn *conn;  gp_stub *kv;  gp_status st;
 *   if (gp_client_new(&cfg, &c, &st))       // words in st, as every call
 *       die(st.msg);
 *   if (gp_client_connect(c, &conn, &st))   // starts it
 *       die(st.msg);
 *   if (gp_conn_dispense(conn, "kv", &kv, &st))
 *       die(st.msg);
 *   ...
 *   gp_stub_free(kv);
 *   gp_client_free(c);          // graceful shutdown, grace period, SIGKILL
 *
 * Ownership, threads and teardown order: docs/lifecycle.md. Errors:
 * docs/errors.md: a fallible call's words go into the caller's gp_status
 * (last parameter, NULL allowed): a copy, the caller's to read on any
 * thread without a lock; cleared on success.
 */
#ifndef GOPLUGIN_CLIENT_H
#define GOPLUGIN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <goplugin/client_exit.h>
#include <goplugin/conn.h>
#include <goplugin/err.h>
#include <goplugin/log.h>
#include <goplugin/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gp_protocol {
    GP_PROTO_NONE = 0,
    GP_PROTO_NETRPC = 1 << 0,
    GP_PROTO_GRPC = 1 << 1
} gp_protocol;

/* "netrpc" / "grpc" / "" (static storage); and back (GP_PROTO_NONE when
 * unknown). Thread safety: any thread. */
const char *gp_protocol_name(gp_protocol p);
gp_protocol gp_protocol_parse(const char *name);

/* What both sides must agree on before anything else (go-plugin's
 * HandshakeConfig). The cookie is a guard against running a plugin by hand,
 * not a security feature. */
typedef struct gp_handshake_config {
    unsigned protocol_version; /* app protocol version; 0 = none */
    const char *magic_cookie_key;
    const char *magic_cookie_value;
} gp_handshake_config;

/* Where to find an already running plugin (go-plugin's ReattachConfig). */
typedef struct gp_reattach_config {
    gp_protocol protocol; /* NONE = netrpc, as go-plugin */
    unsigned protocol_version;
    pid_t pid;           /* 0: unknown, kill by protocol only */
    const char *network; /* "unix" | "tcp" */
    const char *address;
    bool test; /* test mode: kill does nothing */
    /* The process's start time, field 22 of /proc/<pid>/stat (clock ticks
     * since boot); 0 = unknown. With it, reattach refuses a pid that now
     * names another process ("PidStartTime" in reattach files). */
    uint64_t start_time;
} gp_reattach_config;

typedef struct gp_client_config {
    /* The plugin command: argv[0] is the path; NULL-terminated. Copied by
     * gp_client_new, as everything in this config (only logger.ctx is kept). */
    const char *const *argv;
    /* Extra "KEY=VALUE" entries for the child, NULL-terminated; they come
     * before the host's environment and go-plugin's variables. */
    const char *const *env;
    bool skip_host_env; /* do not pass the host's environment */

    gp_handshake_config handshake;
    /* More app protocol versions this host accepts, besides
     * handshake.protocol_version (go-plugin's VersionedPlugins keys). */
    const unsigned *versions;
    size_t nversions;

    unsigned allowed_protocols; /* gp_protocol bits; 0 = netrpc only */
    int start_timeout_ms;       /* 0 = 60000 */
    int kill_grace_ms;          /* wait after graceful shutdown; 0 = 2000 */
    int call_timeout_ms;        /* per RPC deadline; 0 = none */
    /* Largest message received or sent on the connection, either wire
     * (gRPC: one message; netrpc: one gob message); 0 = 64 MiB, netrpc's
     * cap; at most 2147483647. Past it the call fails: GP_EMSGSIZE with
     * RESOURCE_EXHAUSTED words on gRPC; on netrpc GP_EMSGSIZE, or
     * GP_EREMOTE with the plugin's words when its own cap refused. netrpc
     * checks the announced length before reading a body; gRPC core
     * assembles one whole message before its check. Brokered connections
     * keep the default. */
    size_t max_message_bytes;

    gp_logger logger; /* plugin stderr and our own messages */
    bool managed;     /* killed by gp_cleanup_clients() */

    /* SecureConfig: SHA-256 the plugin binary must have (32 bytes), or NULL. */
    const uint8_t *sha256;

    unsigned min_port, max_port;   /* PLUGIN_MIN/MAX_PORT; 0,0 = 10000..25000 */
    const char *unix_socket_dir;   /* PLUGIN_UNIX_SOCKET_DIR, or NULL */
    const char *unix_socket_group; /* PLUGIN_UNIX_SOCKET_GROUP, or NULL */

    /* Attach to a running plugin instead of launching argv. */
    const gp_reattach_config *reattach;

    /* The plugin outlives this host: launched without the parent-death
     * signal, and gp_client_free closes the connection but leaves the
     * plugin running (also for a reattached one). gp_client_kill still
     * stops it. Write gp_client_reattach_config to a file to find it again. */
    bool detached;
    /* Where a launched plugin's stdout and stderr go: appended to these
     * files (created 0600 if missing) instead of pipes to this host, so the
     * plugin can write after this host has gone (a detached plugin writing
     * into a pipe nobody reads gets EPIPE; a Go plugin dies of SIGPIPE on
     * its next log line). While this host runs it follows the files, so the
     * handshake line, the logger and the stderr tail work as with pipes;
     * it reads only what is written after the launch. NULL: a pipe. Two
     * different files, each used by one plugin at a time; relative paths
     * are from the host's working directory at start. Not with reattach
     * (the plugin keeps the output it has). For detached plugins
     * docs/lifecycle.md suggests FILE.stdout and FILE.stderr beside the
     * reattach file FILE, as kv-host --detach does. */
    const char *stdout_file;
    const char *stderr_file;

    /* TLS on the connection (docs/security.md); at most one of the two.
     * auto_mtls: go-plugin's AutoMTLS — fresh certificates on both sides,
     * exchanged at launch, each side trusting only the other's (the plugin
     * must support it; not with reattach). tls: your own certificates
     * (borrowed; read and checked by gp_client_new). */
    bool auto_mtls;
    const gp_tls_config *tls;

    /* go-plugin 1.6+'s GRPCBrokerMultiplex: ask a gRPC plugin to carry
     * brokered connections over its main connection (docs/broker.md).
     * PLUGIN_MULTIPLEX_GRPC is always set for the plugin, "true" or "false",
     * so a value in the host's own environment never leaks through. A gRPC
     * plugin that does not confirm (handshake field 7) is refused with
     * go-plugin's words. Not with reattach. Off by default. */
    bool grpc_broker_multiplex;

    /* What the plugin writes to its stdout and stderr after the handshake,
     * which it forwards to the host (gRPC: go-plugin's GRPCStdio stream,
     * which the host opens at connect and reads until the end, so the
     * plugin never blocks on a full pipe; netrpc: its stdout and stderr
     * streams). go-plugin's SyncStdout / SyncStderr: each sink gets the
     * bytes as they come, on a thread of the client's (do not block there
     * for long). NULL: to `logger`, line by line, stdout at debug and
     * stderr at info with key "stream". */
    void (*stdout_sink)(void *ctx, const void *data, size_t len);
    void (*stderr_sink)(void *ctx, const void *data, size_t len);
    void *stdio_ctx; /* kept, as logger.ctx */
} gp_client_config;

/* gp_client (opaque) is declared in goplugin/client_exit.h, with the
 * calls that say whether and how the plugin exited. */

/* Check `cfg` and make a client; nothing is launched yet. Everything cfg
 * points to is copied (tls files are read now), so cfg may go once this
 * returns; logger.ctx is kept and used until gp_client_free. Caller owns
 * *out: free with gp_client_free.
 * Errors: GP_EINVAL naming the bad field, GP_ENOMEM; words in st.
 * Thread safety: any thread. */
gp_err gp_client_new(const gp_client_config *cfg, gp_client **out, gp_status *st);

/* Launch the plugin (or check the reattach target) and read its handshake
 * line within the start timeout. Idempotent. On failure the child is killed
 * and reaped and st says what was expected, what came, and the tail of the
 * plugin's stderr (its last lines, as many as fit). A failed start gives
 * the same code and words again.
 * Thread safety: not concurrently with another gp_client_start or
 * gp_client_connect on the same client until the first has returned;
 * gp_client_kill from another thread aborts it (GP_ESTATE). */
gp_err gp_client_start(gp_client *c, gp_status *st);

/* Start if needed, then connect (once) and health-check. The connection is
 * owned by the client and valid until gp_client_kill/gp_client_free; later
 * calls return the same one. Errors: words in st, as gp_client_start.
 * Thread safety: as gp_client_start for the first call; once connected,
 * any thread. The words in st are a copy of the client's last failure,
 * taken under its lock when the call returns: with several threads
 * failing on one client at once, each may get the other's words. */
gp_err gp_client_connect(gp_client *c, gp_conn **out, gp_status *st);

/* Graceful shutdown (GRPCController.Shutdown / Control.Quit), wait up to the
 * grace period, then SIGKILL the plugin's process group; always reaps.
 * Closes the connection: free its stubs first; calls in flight fail with
 * GP_ECLOSED. Thread safety: any thread, repeatedly, concurrently (kills
 * are serialised); not from the client's logger, which runs on the thread
 * a kill waits for. */
void gp_client_kill(gp_client *c);

/* Kill (if running; a detached plugin is left running) and free. NULL is
 * a no-op. Thread safety: once, when no other call on c (or its conn,
 * stubs) runs and none follows. */
void gp_client_free(gp_client *c);

/* Copy the last bytes the plugin wrote on stderr (at most cap-1 of them,
 * NUL-terminated) into buf; returns the length copied. For error reports
 * after a call failed. Thread safety: any thread. */
size_t gp_client_stderr_tail(const gp_client *c, char *buf, size_t cap);

/* After start: the plugin's pid, negotiated version and protocol.
 * Thread safety: any thread, once gp_client_start has returned. */
pid_t gp_client_pid(const gp_client *c);
unsigned gp_client_protocol_version(const gp_client *c);
gp_protocol gp_client_protocol(const gp_client *c);

/* After start: how to reattach later. Strings point into the client: valid
 * until gp_client_free (do not gp_reattach_config_clear it).
 * Errors: GP_EINVAL, GP_ESTATE (not running); the code says it all. Thread safety: as gp_client_pid. */
gp_err gp_client_reattach_config(const gp_client *c, gp_reattach_config *out);

/* Kill every client made with .managed = true (go-plugin CleanupClients),
 * in parallel; they still need gp_client_free. Thread safety: any thread;
 * a gp_client_free of a managed client waits for it. */
void gp_cleanup_clients(void);

#ifdef __cplusplus
}
#endif
#endif
