/* Shared pieces of the gRPC wire: init/log routing and message buffers. */
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/absl_tune.h"

#include <grpc/support/log.h>
#include <openssl/crypto.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gp_pb_alloc.h>
#include "transport/msg/msg.h"
#include "transport/wire/grpc/grpc.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_refs;
static gp_logger g_logger;
static int g_have_logger;
static gp__grpc_log_capture *g_captures;

/* Under g_mu. */
static void capture_line(const gpr_log_func_args *a)
{
    if (a->severity < GPR_LOG_SEVERITY_ERROR || !a->message)
        return;
    for (gp__grpc_log_capture *c = g_captures; c; c = c->next) {
        size_t cap = sizeof c->text;
        if (c->len + 4 >= cap)
            continue;
        int n = snprintf(c->text + c->len, cap - c->len, "%s%s", c->len ? "; " : "", a->message);
        c->len = n < 0 ? c->len : c->len + (size_t)n >= cap ? cap - 1 : c->len + (size_t)n;
    }
}

void gp__grpc_capture_begin(gp__grpc_log_capture *cap)
{
    cap->text[0] = 0;
    cap->len = 0;
    pthread_mutex_lock(&g_mu);
    cap->next = g_captures;
    g_captures = cap;
    pthread_mutex_unlock(&g_mu);
}

void gp__grpc_capture_text(gp__grpc_log_capture *cap, char *buf, size_t n)
{
    pthread_mutex_lock(&g_mu);
    snprintf(buf, n, "%s", cap->text);
    pthread_mutex_unlock(&g_mu);
}

void gp__grpc_capture_end(gp__grpc_log_capture *cap)
{
    pthread_mutex_lock(&g_mu);
    for (gp__grpc_log_capture **p = &g_captures; *p; p = &(*p)->next)
        if (*p == cap) {
            *p = cap->next;
            break;
        }
    pthread_mutex_unlock(&g_mu);
}

/* Core's GPR_ASSERT (and, in Debian's build, which keeps debug asserts,
 * GPR_DEBUG_ASSERT) logs this at ERROR and then calls abort(). */
static int is_fatal(const gpr_log_func_args *a)
{
    static const char prefix[] = "assertion failed";
    return a->severity == GPR_LOG_SEVERITY_ERROR && a->message &&
           strncmp(a->message, prefix, sizeof prefix - 1) == 0;
}

static void route_log(gpr_log_func_args *a)
{
    pthread_mutex_lock(&g_mu);
    gp_logger lg = g_logger;
    int have = g_have_logger;
    capture_line(a);
    pthread_mutex_unlock(&g_mu);
    char line[16];
    snprintf(line, sizeof line, "%d", a->line);
    gp_log_kv kv[] = {{"file", a->file ? a->file : ""},
                      {"line", line},
                      {"severity", gpr_log_severity_string(a->severity)}};
    if (is_fatal(a)) {
        /* The process aborts next: the one line that says why must reach
         * the host whatever the log level (a plugin's stderr is its log
         * channel; with no logger, text on stderr). */
        gp_logf(have ? &lg : NULL, GP_LOG_ERROR, "grpc", kv, 3, "gRPC core is aborting: %s",
                a->message);
        return;
    }
    if (!have)
        return; /* never core's own stderr: that is the plugin's log channel */
    gp_logf(&lg, GP_LOG_DEBUG, "grpc", kv, 3, "%s", a->message ? a->message : "");
}

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;

static void init_core(void)
{
    gp__grpc_absl_tune(); /* before core's threads take any mutex */
    /* Core's TLS is OpenSSL 3, which by default frees its globals in an
     * atexit handler. Core is never shut down and its threads (and ours
     * that wrote through TLS) may still be ending at exit: their
     * thread-local OpenSSL cleanup then races that handler, a double free
     * and SIGABRT (gRPC issue 38539; later gRPC releases do this too). The
     * first initialisation decides; the process's exit frees the rest. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    grpc_init();
}

void gp__grpc_core_ref(const gp_logger *lg)
{
    pthread_mutex_lock(&g_mu);
    if (g_refs++ == 0)
        gpr_set_log_function(route_log);
    if (lg && lg->fn) {
        g_logger = *lg;
        g_have_logger = 1;
    }
    pthread_mutex_unlock(&g_mu);
    pthread_once(&g_init_once, init_core); /* never shut down: see unref */
}

void gp__grpc_core_unref(const gp_logger *lg)
{
    /* No grpc_shutdown: core is initialised once and kept for the process's
     * life. grpc_shutdown joins core's executor threads, and one of them can
     * sit in epoll_wait for ~10 s; a plugin asked to exit then outlived the
     * host's 2 s grace period and was SIGKILLed (seen 1 run in 3 under load
     * with a go-plugin host). Core's globals stay reachable, so leak checkers
     * are quiet, and a process that exits with core up is what grpc expects
     * of most programs. */
    pthread_mutex_lock(&g_mu);
    /* Its ctx may die with its owner. */
    if (lg && g_have_logger && lg->fn == g_logger.fn && lg->ctx == g_logger.ctx)
        g_have_logger = 0;
    if (--g_refs == 0)
        g_have_logger = 0;
    pthread_mutex_unlock(&g_mu);
}

gp_err gp__grpc_encode(const pb_msgdesc_t *desc, const void *msg, grpc_byte_buffer **out,
                       const char *what, char *err, size_t errlen)
{
    *out = NULL;
    size_t n = 0;
    /* Refused here, before a call is made, as protobuf-go refuses to marshal. */
    gp_err e = gp__msg_check_utf8(desc, msg, what, err, errlen);
    if (e != GP_OK)
        return e;
    e = gp__msg_size(desc, msg, &n, what, err, errlen);
    if (e != GP_OK)
        return e;
    grpc_slice s = grpc_slice_malloc(n);
    gp__pb_prefault(GRPC_SLICE_START_PTR(s), n); /* large: written whole just below */
    e = gp__msg_encode_buf(desc, msg, GRPC_SLICE_START_PTR(s), n, NULL, what, err, errlen);
    if (e == GP_OK)
        *out = grpc_raw_byte_buffer_create(&s, 1); /* takes its own ref */
    grpc_slice_unref(s);
    return e;
}

typedef struct bb_reader {
    grpc_byte_buffer_reader r;
    grpc_slice cur;
    size_t off;
    int have;
} bb_reader;

static bool bb_read(pb_istream_t *in, pb_byte_t *buf, size_t count)
{
    bb_reader *br = in->state;
    while (count > 0) {
        if (!br->have || br->off == GRPC_SLICE_LENGTH(br->cur)) {
            if (br->have)
                grpc_slice_unref(br->cur);
            br->have = grpc_byte_buffer_reader_next(&br->r, &br->cur);
            br->off = 0;
            if (!br->have)
                return false;
            continue;
        }
        size_t n = GRPC_SLICE_LENGTH(br->cur) - br->off;
        if (n > count)
            n = count;
        if (buf) { /* NULL: nanopb skips */
            memcpy(buf, GRPC_SLICE_START_PTR(br->cur) + br->off, n);
            buf += n;
        }
        br->off += n;
        count -= n;
    }
    return true;
}

gp_err gp__grpc_decode(grpc_byte_buffer *bb, const pb_msgdesc_t *desc, void *msg, const char *what,
                       char *err, size_t errlen)
{
    if (!bb) {
        snprintf(err, errlen, "decode %s: expected a message, the stream ended without one", what);
        return GP_EPROTO;
    }
    bb_reader br = {.have = 0};
    if (!grpc_byte_buffer_reader_init(&br.r, bb)) {
        snprintf(err, errlen, "decode %s: cannot read the message (decompression failed)", what);
        return GP_EPROTO;
    }
    /* nanopb takes bytes_left == 0 as the clean end of a message, so it
     * must be the exact length. */
    pb_istream_t in = {
        .callback = bb_read, .state = &br, .bytes_left = grpc_byte_buffer_length(bb)};
    gp_err e = gp__msg_decode(desc, &in, msg, what, err, errlen);
    if (br.have)
        grpc_slice_unref(br.cur);
    grpc_byte_buffer_reader_destroy(&br.r);
    /* What protobuf-go would not unmarshal, we do not hand on either. */
    if (e == GP_OK && (e = gp__msg_check_utf8(desc, msg, what, err, errlen)) != GP_OK)
        gp_msg_release(desc, msg);
    return e;
}

const char *gp__grpc_code_name(grpc_status_code code, char *buf, size_t cap)
{
    static const char *const names[] = {"OK",
                                        "CANCELLED",
                                        "UNKNOWN",
                                        "INVALID_ARGUMENT",
                                        "DEADLINE_EXCEEDED",
                                        "NOT_FOUND",
                                        "ALREADY_EXISTS",
                                        "PERMISSION_DENIED",
                                        "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION",
                                        "ABORTED",
                                        "OUT_OF_RANGE",
                                        "UNIMPLEMENTED",
                                        "INTERNAL",
                                        "UNAVAILABLE",
                                        "DATA_LOSS",
                                        "UNAUTHENTICATED"};
    if ((unsigned)code < sizeof names / sizeof names[0])
        return names[code];
    snprintf(buf, cap, "code %d", (int)code);
    return buf;
}

long long gp__grpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

grpc_resource_quota *gp__grpc_memory_quota(int max_msg)
{
    /* Room for two whole messages at the cap, and core's own buffers. */
    size_t bytes = 2 * (size_t)max_msg + ((size_t)32 << 20);
    grpc_resource_quota *q = grpc_resource_quota_create("goplugin");
    grpc_resource_quota_resize(q, bytes);
    return q;
}
