/* libFuzzer target: net/rpc headers as both ends read them. The input is
 * fed twice over an in-memory io: once to the server loop as a stream of
 * (Request header, argument) pairs, once to a client as the replies
 * (Response header, reply) to one call it made. Either must end with a
 * result (never crash, hang or leak). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "transport/wire/netrpc/gob/gob_rpc.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct mem_io {
    gp__stream base; /* first: the ops receive this pointer */
    const uint8_t *data;
    size_t size, off;
    /* The client's reader waits for its request to be written, so the
     * replies answer a call that exists. */
    int wait_write, written;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} mem_io;

static gp_err mem_read(gp__stream *io, void *buf, size_t cap, int timeout_ms, size_t *n, char *why,
                       size_t whylen)
{
    (void)timeout_ms;
    (void)why;
    (void)whylen;
    mem_io *m = (mem_io *)io;
    pthread_mutex_lock(&m->mu);
    while (m->wait_write && !m->written)
        pthread_cond_wait(&m->cv, &m->mu);
    /* Odd sizes: the codec must reassemble messages split anywhere. */
    size_t k = m->size - m->off;
    if (k > cap)
        k = cap;
    if (k > 7)
        k = 7 + (m->off % 61);
    if (k > m->size - m->off)
        k = m->size - m->off;
    memcpy(buf, m->data + m->off, k);
    m->off += k;
    *n = k;
    pthread_mutex_unlock(&m->mu);
    return GP_OK;
}

static gp_err mem_writev(gp__stream *io, struct iovec *iov, int iovcnt, int timeout_ms, char *why,
                         size_t whylen)
{
    (void)iov;
    (void)iovcnt;
    (void)timeout_ms;
    (void)why;
    (void)whylen;
    mem_io *m = (mem_io *)io;
    pthread_mutex_lock(&m->mu);
    m->written = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return GP_OK;
}

static void mem_abort(gp__stream *io)
{
    mem_io *m = (mem_io *)io;
    pthread_mutex_lock(&m->mu);
    m->written = 1;
    m->off = m->size;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static void mem_nothing(gp__stream *io)
{
    (void)io;
}

/* The server's stream: its end and its shutdown change nothing (the input
 * is fixed). The client's: shutdown ends the input, as a reset would. */
static const gp__stream_ops server_ops = {mem_read, mem_writev, mem_nothing, mem_nothing,
                                          mem_nothing};
static const gp__stream_ops client_ops = {mem_read, mem_writev, mem_nothing, mem_abort,
                                          mem_nothing};

static gp_err refuse(void *ctx, const char *method, const gp__gob_value *args, gp__gob_value *reply,
                     char *errmsg, size_t errlen)
{
    (void)ctx;
    (void)args;
    (void)reply;
    /* An error reply: the header is what is under test, not the body. */
    strncpy(errmsg, method, errlen - 1);
    errmsg[errlen - 1] = 0;
    return GP_EREMOTE;
}

static void mem_init(mem_io *m, const gp__stream_ops *ops, const uint8_t *data, size_t size,
                     int wait_write)
{
    memset(m, 0, sizeof *m);
    m->base.ops = ops;
    m->data = data;
    m->size = size;
    m->wait_write = wait_write;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
}

static void mem_destroy(mem_io *m)
{
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp__gob_limits lim = {
        .max_message = 1 << 16, .max_depth = 32, .max_types = 64, .max_nodes = 1 << 14};
    char err[256];

    mem_io s;
    mem_init(&s, &server_ops, data, size, 0);
    gp__rpc_serve(&s.base, &lim, refuse, NULL, err, sizeof err);
    mem_destroy(&s);

    mem_io c;
    mem_init(&c, &client_ops, data, size, 1);
    gp__rpc_client *cl;
    if (gp__rpc_client_new(&c.base, &lim, &cl) == GP_OK) {
        /* Request{} as the argument: any value will do. */
        gp__gob_value args = {.type = &gp__gob_rpc_request_type};
        args.u.list.len = 2;
        gp__gob_value *reply = NULL;
        gp_status st;
        if (gp__rpc_call(cl, "Plugin.Get", &args, &reply, 2000, &st) == GP_OK)
            gp__gob_value_free(reply);
        gp__rpc_client_free(cl);
    }
    mem_destroy(&c);
    return 0;
}
