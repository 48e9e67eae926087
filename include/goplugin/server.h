/* goplugin-c: the plugin side. Serve an implementation to a host.
 *
 *   static const gp_service_method kv_methods[] = {
 *       {&kv_get_method, kv_get}, {&kv_put_method, kv_put}};
 *   static const gp_service kv = {.name = "kv", .methods = kv_methods,
 *                                 .nmethods = 2, .impl = &store};
 *   int main(void) {
 *       gp_serve_config cfg = {
 *           .handshake = {.protocol_version = 1,
 *                         .magic_cookie_key = "BASIC_PLUGIN",
 *                         .magic_cookie_value = "hello"},
 *           .services = &kv, .nservices = 1,
 *       };
 *       return gp_serve(&cfg);
 *   }
 */
#ifndef GOPLUGIN_SERVER_H
#define GOPLUGIN_SERVER_H

#include <stddef.h>

#include <goplugin/client.h>
#include <goplugin/conn.h>
#include <goplugin/err.h>
#include <goplugin/log.h>
#include <goplugin/method.h>
#include <goplugin/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A method implementation. `req` is decoded and borrowed; `resp` is zeroed
 * and the handler fills it (pointer fields malloc'd: the transport frees
 * them after sending). Return GP_OK, or an error with words in st->msg
 * (the host sees them as the RPC's error text). Called from server threads,
 * concurrently. */
typedef gp_err (*gp_handler)(void *impl, const void *req, void *resp, gp_status *st);

/* A streaming method implementation (method->kind is not GP_UNARY; grpc
 * wire only). Receive the client's messages with gp_call_recv (GP_EOF when
 * it closed its side) and send with gp_call_send (goplugin/conn.h); the
 * call belongs to the transport and ends when the handler returns: GP_OK
 * finishes it with OK, an error with st->msg as the status text. Runs on
 * a thread of its own per call; gp_serve's stop waits for it to return
 * (its recv/send fail with GP_ECLOSED once the call is cancelled). */
typedef gp_err (*gp_stream_handler)(void *impl, gp_call *call, gp_status *st);

typedef struct gp_service_method {
    const gp_method *method;
    gp_handler handler;
} gp_service_method;

/* A streaming method of a service (method->kind is not GP_UNARY). */
typedef struct gp_service_stream {
    const gp_method *method;
    gp_stream_handler handler;
} gp_service_stream;

/* One plugin: the name a host dispenses, and its methods. */
typedef struct gp_service {
    const char *name; /* "kv" */
    const gp_service_method *methods;
    size_t nmethods;
    void *impl; /* passed to every handler */
    /* Streaming methods, served on the grpc wire only (a netrpc host
     * cannot call them: gp_call_open refuses). */
    const gp_service_stream *streams;
    size_t nstreams;
} gp_service;

/* The plugins offered at one app protocol version (VersionedPlugins). */
typedef struct gp_plugin_set {
    unsigned version;
    const gp_service *services;
    size_t nservices;
} gp_plugin_set;

typedef struct gp_serve_config {
    gp_handshake_config handshake;
    /* The plugins at handshake.protocol_version ... */
    const gp_service *services;
    size_t nservices;
    /* ... and at other versions. The highest version both sides accept wins. */
    const gp_plugin_set *versions;
    size_t nversions;

    gp_protocol protocol; /* wire to serve; NONE = grpc */
    const char *network;  /* "unix" (NULL: default, as go-plugin on
                                   Linux) or "tcp" (127.0.0.1, port range) */
    int workers;          /* handler threads; 0 = 2 on gRPC, 8 per stream on netrpc */
    /* Largest message received or sent, either wire; 0 = 64 MiB (see
     * gp_client_config.max_message_bytes); gRPC takes at most 2147483647. */
    size_t max_message_bytes;
    /* Streaming handlers running at once per connection (each runs on a
     * thread of its own); past it a new streaming call is refused with
     * RESOURCE_EXHAUSTED and words, no thread is made. 0 = 128. gRPC. */
    int max_stream_handlers;
    gp_logger logger; /* NULL fn: hclog JSON lines on stderr */
    /* Your own TLS certificates (go-plugin's TLSProvider; borrowed). NULL:
     * AutoMTLS when the host asks for it (PLUGIN_CLIENT_CERT), else none. */
    const gp_tls_config *tls;
} gp_serve_config;

/* Run the plugin: check the cookie, negotiate the version, listen, print the
 * handshake line on stdout, serve until the host shuts us down (or SIGTERM).
 * Returns the process exit status to use: 0 after a clean stop, 1 when run
 * without the cookie or on a setup error (the reason is on stderr: a plugin
 * has no caller to hand words to, so it returns a status, not a gp_err).
 * cfg and everything it points to are borrowed until it returns.
 * Thread safety: once per process, from main, before other threads start:
 * it blocks SIGTERM and SIGINT in the threads it makes (a thread started
 * earlier would take the signal and die of it) and owns stdout. */
int gp_serve(const gp_serve_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
