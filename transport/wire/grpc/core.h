/* Internal to transport/grpc: what the client and the server share — the
 * grpc_init/grpc_shutdown pairing with gpr log routing, nanopb messages in
 * and out of grpc_byte_buffers, and status code names. */
#ifndef GP_GRPC_CORE_H
#define GP_GRPC_CORE_H

#include <goplugin/err.h>
#include <goplugin/log.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/status.h>

#include <pb.h>
#include <stddef.h>

/* grpc_init (once per process; core is never shut down), and route core's log lines (file:line message) to `lg` at
 * DEBUG; core never writes to stderr while a client or server lives. The
 * last non-NULL logger given wins. Pair with gp__grpc_core_unref. */
void gp__grpc_core_ref(const gp_logger *lg);
void gp__grpc_core_unref(const gp_logger *lg);

/* Core reports why a TLS handshake failed only in its log (ERROR lines
 * such as "Handshake failed with fatal error SSL_ERROR_SSL: ... certificate
 * verify failed"). A capture collects the ERROR lines core logs between
 * begin and end, from any thread, for the error message of a connect.
 * Lines of other connections made at the same time may land in it too.
 * Hold a core ref while capturing. */
typedef struct gp__grpc_log_capture {
    char text[1024]; /* lines joined with "; ", truncated */
    size_t len;
    struct gp__grpc_log_capture *next;
} gp__grpc_log_capture;

void gp__grpc_capture_begin(gp__grpc_log_capture *cap);
void gp__grpc_capture_end(gp__grpc_log_capture *cap);
/* A copy of what was captured so far (other threads may still add). */
void gp__grpc_capture_text(gp__grpc_log_capture *cap, char *buf, size_t n);

/* Encode `msg` into a new byte buffer (*out; destroy it). A proto3 string
 * that is not UTF-8 is refused (GP_EPROTO, msg.h gp__msg_check_utf8). */
gp_err gp__grpc_encode(const pb_msgdesc_t *desc, const void *msg, grpc_byte_buffer **out,
                       const char *what, char *err, size_t errlen);

/* Decode `bb` (NULL: no message) into zeroed `msg`, reading slices in place.
 * A proto3 string that is not UTF-8 fails it (GP_EPROTO), as in Go.
 * On failure nothing is left to free in msg. */
gp_err gp__grpc_decode(grpc_byte_buffer *bb, const pb_msgdesc_t *desc, void *msg, const char *what,
                       char *err, size_t errlen);

/* "UNIMPLEMENTED", ... ("code 42" style for unknown codes, in buf). */
const char *gp__grpc_code_name(grpc_status_code code, char *buf, size_t cap);

/* A tag handed to core (start_batch, request_call) comes back on another
 * thread through core's own locks, which TSan cannot see (core is not
 * instrumented). Mark the hand-off so TSan sees the happens-before edge:
 * GP_TAG_RELEASE(tag) before giving it to core, GP_TAG_ACQUIRE(tag) when a
 * queue returns it. No-ops in other builds. */
#if defined(__SANITIZE_THREAD__)
#define GP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GP_TSAN 1
#endif
#endif
#ifdef GP_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define GP_TAG_RELEASE(tag) __tsan_release(tag)
#define GP_TAG_ACQUIRE(tag) __tsan_acquire(tag)
#else
#define GP_TAG_RELEASE(tag) ((void)(tag))
#define GP_TAG_ACQUIRE(tag) ((void)(tag))
#endif

/* grpc_call_start_batch with the tag hand-off marked. */
static inline grpc_call_error gp__grpc_start(grpc_call *call, const grpc_op *ops, size_t n,
                                             void *tag)
{
    GP_TAG_RELEASE(tag);
    return grpc_call_start_batch(call, ops, n, tag, NULL);
}

/* Now on CLOCK_MONOTONIC in ms (for idle tracking). */
long long gp__grpc_now_ms(void);

#endif
