/* gp__fd_copy: sendfile first; its EINVAL/ENOSYS (a pair it does not
 * take) falls back to a plain loop from where it stopped. */
#include "transport/base/fdcopy.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define CHUNK (1LL << 30)

static int by_hand(int in, int out, long long left)
{
    char buf[65536];
    while (left > 0) {
        ssize_t n = read(in, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 1;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -1;
            off += w;
        }
        left -= n;
    }
    return 0;
}

int gp__fd_copy(int in, int out, long long limit)
{
    long long left = limit;
    while (left > 0) {
        ssize_t n = sendfile(out, in, NULL, (size_t)(left < CHUNK ? left : CHUNK));
        if (n > 0) {
            left -= n;
            continue;
        }
        if (n == 0)
            return 1;
        if (errno == EINTR)
            continue;
        if (errno != EINVAL && errno != ENOSYS)
            return -1;
        return by_hand(in, out, left);
    }
    return 0;
}
