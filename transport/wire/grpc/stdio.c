/* GRPCStdio over gRPC, both sides; see stdio.h. */
#include "transport/wire/grpc/stdio.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/base/sync.h"
#include "transport/core/conn.h"
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/proto/grpc_controller.pb.h"
#include "transport/wire/grpc/proto/grpc_stdio.pb.h"
#include "transport/wire/grpc/stream.h"

#define CHUNK_MAX 4096

enum { DRAIN_QUIET_MS = 50, DRAIN_MAX_MS = 500 };

/* While the plugin prints nothing, how often its stream looks whether the
 * host is still there (a thread per stream waits meanwhile). */
enum { HOST_CHECK_MS = 1000 };

/* google.protobuf.Empty in, a stream of StdioData out (plugin.Empty is the
 * same empty message). */
static const gp_method stream_stdio_method = {
    .grpc_path = "/plugin.GRPCStdio/StreamStdio",
    .req_pb = plugin_Empty_fields,
    .resp_pb = plugin_StdioData_fields,
    .kind = GP_SERVER_STREAM,
};

/* ---- plugin: the service ---------------------------------------------------- */

typedef struct stdio_service {
    gp_service service; /* first: freed through it */
    gp_service_stream stream;
    const gp__stdio_source *src;
} stdio_service;

static gp_err stream_stdio(void *impl, gp_call *call, gp_status *st)
{
    const gp__stdio_source *src = ((stdio_service *)impl)->src;
    plugin_Empty req;
    memset(&req, 0, sizeof req);
    gp_err rc = gp_call_recv(call, &req, st); /* the (empty) request */
    if (rc != GP_OK && rc != GP_EOF)
        return rc;
    uint8_t buf[CHUNK_MAX];
    src->open(src->ctx);
    for (;;) {
        int ch = 0;
        size_t n = 0;
        int got = src->next(src->ctx, &ch, buf, sizeof buf, &n, HOST_CHECK_MS);
        if (got == 0 || (got < 0 && gp__grpc_stream_ended(call)))
            break; /* stopping, or the host cancelled the stream or went away */
        if (got < 0)
            continue;
        plugin_StdioData d = {.channel = ch == 1 ? plugin_StdioData_Channel_STDOUT
                                                 : plugin_StdioData_Channel_STDERR,
                              .data = {.data = buf, .len = n}};
        rc = gp_call_send(call, &d, st);
        src->sent(src->ctx);
        if (rc) /* the host went away; that chunk is lost, as in go-plugin */
            break;
    }
    src->close(src->ctx);
    return GP_OK;
}

gp_service *gp__grpc_stdio_service_new(const gp__stdio_source *src)
{
    stdio_service *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->src = src;
    s->stream = (gp_service_stream){.method = &stream_stdio_method, .handler = stream_stdio};
    s->service =
        (gp_service){.name = "plugin.GRPCStdio", .impl = s, .streams = &s->stream, .nstreams = 1};
    return &s->service;
}

void gp__grpc_stdio_service_free(gp_service *svc)
{
    free(svc); /* the first member of stdio_service */
}

/* ---- host: the reader --------------------------------------------------------- */

typedef struct reader {
    gp_stub *stub;
    gp_call *call;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;       /* read_loop has ended, under mu */
    unsigned nread; /* chunks delivered, under mu */
    void (*sink)(void *ctx, int channel, const void *data, size_t len);
    void (*ended)(void *ctx, bool unimplemented, const char *why);
    void *ctx;
} reader;

static void *read_loop(void *arg)
{
    reader *r = arg;
    gp_status st = {0};
    gp_err rc;
    for (;;) {
        plugin_StdioData d;
        memset(&d, 0, sizeof d);
        rc = gp_call_recv(r->call, &d, &st);
        if (rc != GP_OK)
            break;
        if (d.data.len)
            r->sink(r->ctx, (int)d.channel, d.data.data, d.data.len);
        gp_msg_release(plugin_StdioData_fields, &d);
        pthread_mutex_lock(&r->mu);
        r->nread++;
        pthread_mutex_unlock(&r->mu);
    }
    /* UNIMPLEMENTED: a plugin without the service (go-plugin 1.0, old C). */
    r->ended(r->ctx, rc == GP_ENOTFOUND, st.msg[0] ? st.msg : gp_strerror(rc));
    pthread_mutex_lock(&r->mu);
    r->done = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

void *gp__grpc_stdio_start(gp_conn *conn,
                           void (*sink)(void *ctx, int channel, const void *data, size_t len),
                           void (*ended)(void *ctx, bool unimplemented, const char *why), void *ctx,
                           char *err, size_t errlen)
{
    reader *r = calloc(1, sizeof *r);
    gp_status st = {0};
    gp_err rc = r ? GP_OK : GP_ENOMEM;
    if (r) {
        pthread_mutex_init(&r->mu, NULL);
        gp__cond_init_monotonic(&r->cv);
    }
    if (!rc)
        rc = conn->ops->dispense(conn, "", &r->stub, &st);
    plugin_Empty empty;
    memset(&empty, 0, sizeof empty);
    if (!rc)
        rc = gp__grpc_call_open_background(r->stub, &stream_stdio_method, &r->call, &st);
    if (!rc)
        rc = gp_call_send(r->call, &empty, &st);
    if (!rc)
        rc = gp_call_close_send(r->call, &st);
    if (!rc) {
        r->sink = sink;
        r->ended = ended;
        r->ctx = ctx;
        if (pthread_create(&r->thread, NULL, read_loop, r) != 0) {
            rc = GP_ESYS;
            snprintf(st.msg, sizeof st.msg, "cannot start a thread");
        }
    }
    if (!rc)
        return r;
    snprintf(err, errlen, "%s", st.msg[0] ? st.msg : gp_strerror(rc));
    if (r) {
        gp_call_free(r->call);
        gp_stub_free(r->stub);
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
    return NULL;
}

void gp__grpc_stdio_follow(void *h, int on)
{
    reader *r = h;
    if (r)
        gp__grpc_call_background_poll(r->call, on);
}

void gp__grpc_stdio_stop(void *h)
{
    reader *r = h;
    if (!r)
        return;
    /* What the plugin sent before it stopped may still wait in the
     * transport (a background call is read in sweeps): poll for it until
     * the stream ends (a plugin that exited) or brings nothing new for
     * DRAIN_QUIET_MS, at most DRAIN_MAX_MS; then cancel. */
    gp__grpc_call_background_poll(r->call, 1);
    long long until = gp__grpc_now_ms() + DRAIN_MAX_MS;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        unsigned seen = r->nread;
        long long now = gp__grpc_now_ms(), t = now + DRAIN_QUIET_MS;
        if (r->done || now >= until)
            break;
        if (t > until)
            t = until;
        struct timespec ts = {.tv_sec = t / 1000, .tv_nsec = (t % 1000) * 1000000};
        while (!r->done && r->nread == seen && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
            ;
        if (!r->done && r->nread == seen)
            break; /* quiet */
    }
    pthread_mutex_unlock(&r->mu);
    gp__grpc_call_background_poll(r->call, 0);
    gp_call_cancel(r->call);
    pthread_join(r->thread, NULL);
    gp_call_free(r->call);
    gp_stub_free(r->stub);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
