/* libFuzzer target: a plugin's stdout and stderr bytes into the netrpc
 * host's line forwarding (stdio_main, static: reached only through a live
 * session, so the target plays the plugin's side of the yamux session on a
 * socketpair and gp__netrpc_conn_from_fd is the host).
 *
 * Input: [0..1] little-endian length of the stdout bytes, then they, then
 * the stderr bytes. Each goes on its stream (3, 5) in frames of odd sizes,
 * followed by one "\n" and a FIN. Checks: every logged line is at most
 * STDIO_LINE_MAX (4096) bytes with no "\n" in it, and the host logs
 * exactly the lines the bytes make (one per "\n", one per full buffer),
 * so no byte is lost or left behind; then the conn closes without a leak. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/core/conn.h"
#include "transport/wire/netrpc/netrpc.h"
#include "transport/yamux/mux_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_MAX_ 4096 /* host.c's STDIO_LINE_MAX */

typedef struct seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t lines[2]; /* stdout, stderr */
} seen;

static void on_log(void *ctx, gp_log_level level, const char *name, const char *msg,
                   const gp_log_kv *kv, size_t nkv)
{
    (void)level;
    (void)name;
    seen *s = ctx;
    if (nkv != 1 || strcmp(kv[0].key, "stream") != 0)
        return; /* the host's own messages */
    int i = strcmp(kv[0].value, "stderr") == 0;
    if (strlen(msg) > LINE_MAX_ || strchr(msg, '\n'))
        abort();
    pthread_mutex_lock(&s->mu);
    s->lines[i]++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* How many lines the host must log for these bytes followed by "\n"
 * (host.c's rule). */
static size_t expected_lines(const uint8_t *p, size_t n)
{
    size_t lines = 0, len = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            lines++;
            len = 0;
        } else if (len < LINE_MAX_) {
            len++;
        } else {
            lines++; /* full: flushed, the byte starts the next line */
            len = 1;
        }
    }
    return lines + 1; /* the "\n" ends the last line, or logs an empty one */
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

static void frame(int fd, int flags, uint32_t id, const uint8_t *p, size_t len)
{
    uint8_t h[GP_MUX_HEADER_SIZE] = {
        GP_MUX_VERSION,       GP_MUX_TYPE_DATA,    0,
        (uint8_t)flags,       (uint8_t)(id >> 24), (uint8_t)(id >> 16),
        (uint8_t)(id >> 8),   (uint8_t)id,         (uint8_t)(len >> 24),
        (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    send_all(fd, h, sizeof h);
    send_all(fd, p, len);
}

/* The bytes in frames of 1..61 bytes, then "\n" with FIN. */
static void send_stream(int fd, uint32_t id, const uint8_t *p, size_t n)
{
    int flags = GP_MUX_FLAG_ACK;
    for (size_t off = 0; off < n;) {
        size_t k = 1 + (off * 7 + n) % 61;
        if (k > n - off)
            k = n - off;
        frame(fd, flags, id, p + off, k);
        flags = 0;
        off += k;
    }
    frame(fd, flags | GP_MUX_FLAG_FIN, id, (const uint8_t *)"\n", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 15)
        return 0;
    size_t olen = (size_t)data[0] | (size_t)data[1] << 8;
    if (olen > size - 2)
        olen = size - 2;
    const uint8_t *out = data + 2, *errs = data + 2 + olen;
    size_t elen = size - 2 - olen;

    size_t want[2] = {expected_lines(out, olen), expected_lines(errs, elen)};

    seen s = {0};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    gp_logger lg = {.fn = on_log, .ctx = &s, .level = GP_LOG_TRACE};
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    gp__netrpc_client_opts o = {.logger = &lg, .keepalive_ms = -1};
    gp_conn *c;
    char err[256];
    if (gp__netrpc_conn_from_fd(sv[0], &o, &c, err, sizeof err) != GP_OK)
        abort();
    send_stream(sv[1], 3, out, olen);
    send_stream(sv[1], 5, errs, elen);

    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30; /* ms normally; generous for a loaded CI machine */
    pthread_mutex_lock(&s.mu);
    while ((s.lines[0] < want[0] || s.lines[1] < want[1]) &&
           pthread_cond_timedwait(&s.cv, &s.mu, &until) == 0)
        ;
    int ok = s.lines[0] == want[0] && s.lines[1] == want[1];
    pthread_mutex_unlock(&s.mu);
    if (!ok)
        abort(); /* lines lost, or more lines than the bytes make */

    shutdown(sv[1], SHUT_WR);
    gp__conn_close(c); /* joins the stdio threads: no line after this */
    if (s.lines[0] != want[0] || s.lines[1] != want[1])
        abort();
    close(sv[1]);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return 0;
}
