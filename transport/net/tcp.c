/* TCP listeners on 127.0.0.1 within go-plugin's port range. */
#include "transport/net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/net/errf.h"

gp_err gp__net_listen_tcp(unsigned min, unsigned max, int *fd, unsigned *port, char *err,
                          size_t errlen)
{
    gp__net_errf(err, errlen, "%s", "");
    if (!fd) {
        gp__net_errf(err, errlen, "gp__net_listen_tcp: NULL argument");
        return GP_EINVAL;
    }
    *fd = -1;
    if (min > max || max > 65535) {
        gp__net_errf(err, errlen,
                     "listen tcp: bad port range %u..%u (expected min <= max <= 65535)", min, max);
        return GP_EINVAL;
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        gp__net_errf(err, errlen, "listen tcp: socket: %s", strerror(errno));
        return GP_ESYS;
    }
    /* As Go's listeners: a port left in TIME_WAIT by an earlier plugin is
     * still usable. */
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int last = 0;
    for (unsigned p = min; p <= max; p++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        /* A failed bind leaves the socket unbound, so it is reused. */
        if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
            last = errno;
            continue;
        }
        if (listen(s, SOMAXCONN) != 0) {
            last = errno;
            break;
        }
        socklen_t len = sizeof sa;
        getsockname(s, (struct sockaddr *)&sa, &len);
        if (port)
            *port = ntohs(sa.sin_port);
        *fd = s;
        return GP_OK;
    }
    close(s);
    if (min == max)
        gp__net_errf(err, errlen, "listen tcp 127.0.0.1:%u: %s", min, strerror(last));
    else
        gp__net_errf(err, errlen, "listen tcp 127.0.0.1: no usable port in %u..%u (last: %s)", min,
                     max, strerror(last));
    return GP_ECONNECT;
}
