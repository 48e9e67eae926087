/* GRPCStdio over gRPC, both sides; see stdio.h. */
#include "transport/wire/grpc/stdio.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/core/conn.h"
#include "transport/wire/grpc/proto/grpc_controller.pb.h"
#include "transport/wire/grpc/proto/grpc_stdio.pb.h"
#include "transport/wire/grpc/stream.h"

#define CHUNK_MAX 4096

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
        if (!src->next(src->ctx, &ch, buf, sizeof buf, &n))
            break;
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
    }
    /* UNIMPLEMENTED: a plugin without the service (go-plugin 1.0, old C). */
    r->ended(r->ctx, rc == GP_ENOTFOUND, st.msg[0] ? st.msg : gp_strerror(rc));
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
        free(r);
    }
    return NULL;
}

void gp__grpc_stdio_stop(void *h)
{
    reader *r = h;
    if (!r)
        return;
    gp_call_cancel(r->call);
    pthread_join(r->thread, NULL);
    gp_call_free(r->call);
    gp_stub_free(r->stub);
    free(r);
}
