/* Internal to transport/net. */
#ifndef GP_NET_ERRF_H
#define GP_NET_ERRF_H

#include <stddef.h>

/* sizeof(sockaddr_un.sun_path) - 1 on Linux. */
#define GP_NET_UNIX_PATH_MAX 107u

/* gp__errf (transport/base/errf.h): the first error wins; "" clears. */
void gp__net_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
