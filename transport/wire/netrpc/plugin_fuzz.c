/* libFuzzer target: a host's bytes into the netrpc plugin server, through
 * its real entry point (a connection to gp__netrpc_server). Control and
 * Dispenser (control_call) and the MuxBroker's 4-byte id (broker_stream)
 * are static and reached only through a live yamux session, so the target
 * speaks yamux itself and fuzzes what goes inside it.
 *
 * Input: [0..1] little-endian length of A, A, then B. A goes on stream 1
 * (net/rpc requests for Control and Dispenser), streams 3 and 5 are opened
 * empty, and a non-empty B goes on stream 7 (a MuxBroker stream: the id,
 * then requests to the dispensed plugin "greeter", which has no methods).
 * Then the socket is half-closed and the server freed: it must end with
 * no crash, hang or leak whatever A and B are. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "transport/wire/netrpc/netrpc.h"
#include "transport/yamux/mux_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const gp_service svc = {.name = "greeter"};

/* Reads the server's frames until EOF, counting the data frames. */
typedef struct drain {
    int fd;
    unsigned frames;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} drain;

static int read_full(int fd, uint8_t *b, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r <= 0)
            return 0;
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

static void *drain_main(void *arg)
{
    drain *d = arg;
    uint8_t h[GP_MUX_HEADER_SIZE], buf[4096];
    while (read_full(d->fd, h, sizeof h)) {
        uint32_t len = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
        if (h[1] != GP_MUX_TYPE_DATA)
            continue;
        pthread_mutex_lock(&d->mu);
        d->frames++;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        while (len > 0) {
            size_t k = len < sizeof buf ? len : sizeof buf;
            if (!read_full(d->fd, buf, k))
                return NULL;
            len -= (uint32_t)k;
        }
    }
    return NULL;
}

static struct timespec after_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

/* Waits until the server has sent nothing for 3 ms (at most 30 ms): the
 * replies to what we sent are out, as a host would wait for them. */
static void settle(drain *d)
{
    struct timespec cap = after_ms(30);
    pthread_mutex_lock(&d->mu);
    for (;;) {
        unsigned seen = d->frames;
        struct timespec quiet = after_ms(3);
        while (d->frames == seen && pthread_cond_timedwait(&d->cv, &d->mu, &quiet) == 0)
            ;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (d->frames == seen || now.tv_sec > cap.tv_sec ||
            (now.tv_sec == cap.tv_sec && now.tv_nsec >= cap.tv_nsec))
            break;
    }
    pthread_mutex_unlock(&d->mu);
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void frame(int fd, int type, int flags, uint32_t id, const uint8_t *p, size_t len)
{
    uint8_t h[GP_MUX_HEADER_SIZE] = {
        GP_MUX_VERSION,       (uint8_t)type,       0,
        (uint8_t)flags,       (uint8_t)(id >> 24), (uint8_t)(id >> 16),
        (uint8_t)(id >> 8),   (uint8_t)id,         (uint8_t)(len >> 24),
        (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    send_all(fd, h, sizeof h);
    if (type == GP_MUX_TYPE_DATA && len)
        send_all(fd, p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 14)
        return 0;
    size_t alen = (size_t)data[0] | (size_t)data[1] << 8;
    if (alen > size - 2)
        alen = size - 2;
    const uint8_t *a = data + 2, *b = data + 2 + alen;
    size_t blen = size - 2 - alen;

    char path[64], addr[80];
    snprintf(path, sizeof path, "/tmp/gp_netrpc_plugin_fuzz.%d", (int)getpid());
    snprintf(addr, sizeof addr, "unix:%s", path);
    unlink(path);
    gp__netrpc_server_opts o = {.services = &svc, .nservices = 1, .max_message_bytes = 1 << 16};
    gp__netrpc_server *s;
    char err[256];
    if (gp__netrpc_server_new(&o, &s, err, sizeof err) != GP_OK ||
        gp__netrpc_server_listen(s, addr, NULL, err, sizeof err) != GP_OK ||
        gp__netrpc_server_start(s, err, sizeof err) != GP_OK)
        abort();

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        abort();
    drain d = {.fd = fd};
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.cv, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, drain_main, &d) != 0)
        abort();

    /* Streams 1, 3, 5 as a go-plugin host opens them (roles by order). */
    frame(fd, GP_MUX_TYPE_DATA, GP_MUX_FLAG_SYN, 1, a, alen);
    frame(fd, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_SYN, 3, NULL, 0);
    frame(fd, GP_MUX_TYPE_WINDOW_UPDATE, GP_MUX_FLAG_SYN, 5, NULL, 0);
    if (blen) {
        /* A host opens the broker stream after Dispense's reply. */
        if (alen)
            settle(&d);
        frame(fd, GP_MUX_TYPE_DATA, GP_MUX_FLAG_SYN, 7, b, blen);
        settle(&d); /* the broker's id echo and the plugin's replies */
    }
    shutdown(fd, SHUT_WR); /* EOF ends the session once the bytes are read */
    gp__netrpc_server_free(s);
    pthread_join(t, NULL);
    close(fd);
    unlink(path);
    pthread_mutex_destroy(&d.mu);
    pthread_cond_destroy(&d.cv);
    return 0;
}
