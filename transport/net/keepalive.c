/* TCP keepalive from a gp_keepalive: the kernel's own probes, for a peer
 * whose host or network died (a stopped process still has a kernel that
 * answers; the wires' pings cover that). */
#include "transport/net/net.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* Go's default TCP keepalive period, so dead peers are noticed alike. */
#define DEFAULT_IDLE_S 15

static int secs_of(int ms)
{
    int s = (ms + 999) / 1000;
    return s < 1 ? 1 : s;
}

int gp__net_keepalive(int fd, int time_ms, int timeout_ms)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return 0; /* unix sockets have no keepalive of their own */
    int on = time_ms >= 0, r = 0;
    r |= setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    if (!on)
        return r;
    int idle = time_ms > 0 ? secs_of(time_ms) : DEFAULT_IDLE_S;
    int intvl = idle, cnt = 9, user_ms = 0; /* Linux's count; no user timeout */
    if (time_ms > 0) {
        int t = timeout_ms > 0 ? timeout_ms : 10000;
        intvl = secs_of(t / 3);
        cnt = 3;
        user_ms = t; /* also bounds unacknowledged data, not only probes */
    }
    r |= setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    r |= setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    r |= setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    r |= setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof user_ms);
    return r ? -1 : 0;
}
