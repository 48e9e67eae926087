/* Dialers for the address a plugin prints: non-blocking connect bounded
 * by a deadline, then the socket options go-plugin hosts use. */
#include "transport/base/clock.h"
#include "transport/net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "transport/net/errf.h"

/* Go's default TCP keepalive period, so dead peers are noticed alike. */
#define KEEPALIVE_SECONDS 15

typedef struct target {
    struct sockaddr_storage sa;
    socklen_t len;
    int family;
} target;

static gp_err parse_unix(const char *address, target *t, char *err, size_t errlen)
{
    size_t n = strlen(address);
    if (n == 0 || n > GP_NET_UNIX_PATH_MAX) {
        gp__net_errf(err, errlen, "dial unix %s: path is %zu bytes; expected 1..%u", address, n,
                     GP_NET_UNIX_PATH_MAX);
        return GP_EINVAL;
    }
    struct sockaddr_un *su = (struct sockaddr_un *)&t->sa;
    su->sun_family = AF_UNIX;
    memcpy(su->sun_path, address, n + 1);
    t->len = sizeof *su;
    t->family = AF_UNIX;
    return GP_OK;
}

static gp_err parse_tcp(const char *address, target *t, char *err, size_t errlen)
{
    const char *colon = strrchr(address, ':');
    char host[64];
    size_t hn = colon ? (size_t)(colon - address) : 0;
    char *end = NULL;
    unsigned long port = 0;
    if (colon && colon[1] >= '0' && colon[1] <= '9') {
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || *end)
            port = 0;
    }
    if (!colon || hn == 0 || hn >= sizeof host || port == 0 || port > 65535)
        goto bad;
    memcpy(host, address, hn);
    host[hn] = 0;
    if (host[0] == '[') {
        if (hn < 3 || host[hn - 1] != ']')
            goto bad;
        host[hn - 1] = 0;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->sa;
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            goto bad;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        t->len = sizeof *s6;
        t->family = AF_INET6;
        return GP_OK;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&t->sa;
    if (strcmp(host, "localhost") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        goto bad;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    t->len = sizeof *s4;
    t->family = AF_INET;
    return GP_OK;
bad:
    gp__net_errf(err, errlen,
                 "dial tcp %s: expected HOST:PORT with a numeric IP or localhost and a port "
                 "1..65535",
                 address);
    return GP_EINVAL;
}

/* Milliseconds left before `deadline` for poll(): -1 = no deadline. */
static int left_ms(long long deadline)
{
    if (deadline < 0)
        return -1;
    long long left = deadline - gp__now_ms();
    return left <= 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
}

/* Connect the non-blocking socket `s`. Returns 0, an errno value, or
 * ETIMEDOUT when the deadline passed. `*backlog_full` says the peer's
 * accept queue was full the whole time (unix sockets report EAGAIN). */
static int connect_by(int s, const target *t, long long deadline, int *backlog_full)
{
    *backlog_full = 0;
    for (;;) {
        if (connect(s, (const struct sockaddr *)&t->sa, t->len) == 0)
            return 0;
        int e = errno;
        if (e == EAGAIN && t->family == AF_UNIX) {
            /* Linux unix sockets do not queue a non-blocking connect: retry
             * until the plugin accepts or time runs out. */
            *backlog_full = 1;
            int left = left_ms(deadline);
            if (left == 0)
                return ETIMEDOUT;
            struct timespec ts = {0, (left < 0 || left > 5 ? 5 : left) * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (e != EINPROGRESS && e != EINTR)
            return e;
        break;
    }
    for (;;) {
        struct pollfd pfd = {.fd = s, .events = POLLOUT};
        int r = poll(&pfd, 1, left_ms(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return ETIMEDOUT;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            return errno;
        return soerr;
    }
}

static void tune_tcp(int s)
{
    int one = 1, secs = KEEPALIVE_SECONDS;
    setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs);
    setsockopt(s, IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof secs);
}

gp_err gp__net_dial(const char *network, const char *address, int timeout_ms, int nonblock, int *fd,
                    char *err, size_t errlen)
{
    gp__net_errf(err, errlen, "%s", "");
    if (!network || !address || !fd) {
        gp__net_errf(err, errlen, "gp__net_dial: NULL argument");
        return GP_EINVAL;
    }
    *fd = -1;
    target t;
    memset(&t, 0, sizeof t);
    gp_err e;
    if (strcmp(network, "unix") == 0)
        e = parse_unix(address, &t, err, errlen);
    else if (strcmp(network, "tcp") == 0)
        e = parse_tcp(address, &t, err, errlen);
    else {
        gp__net_errf(err, errlen, "dial %s %s: unknown network \"%s\" (expected unix or tcp)",
                     network, address, network);
        return GP_EINVAL;
    }
    if (e)
        return e;

    int s = socket(t.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) {
        gp__net_errf(err, errlen, "dial %s %s: socket: %s", network, address, strerror(errno));
        return GP_ESYS;
    }
    long long deadline = timeout_ms > 0 ? gp__now_ms() + timeout_ms : -1;
    int backlog_full;
    int r = connect_by(s, &t, deadline, &backlog_full);
    if (r != 0) {
        close(s);
        if (r == ETIMEDOUT) {
            gp__net_errf(err, errlen, "dial %s %s: timed out after %d ms%s", network, address,
                         timeout_ms,
                         backlog_full ? " (the plugin is not accepting connections)" : "");
            return GP_ETIMEDOUT;
        }
        gp__net_errf(err, errlen, "dial %s %s: %s%s", network, address, strerror(r),
                     r == ECONNREFUSED || r == ENOENT ? " (is the plugin listening?)" : "");
        return GP_ECONNECT;
    }
    if (t.family != AF_UNIX)
        tune_tcp(s);
    if (!nonblock) {
        int fl = fcntl(s, F_GETFL);
        if (fl < 0 || fcntl(s, F_SETFL, fl & ~O_NONBLOCK) < 0) {
            gp__net_errf(err, errlen, "dial %s %s: fcntl: %s", network, address, strerror(errno));
            close(s);
            return GP_ESYS;
        }
    }
    *fd = s;
    return GP_OK;
}
