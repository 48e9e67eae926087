/* Reading a process's start time from /proc/<pid>/stat. */
#include "transport/process/pidstat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Fields after the command name: field 3 is the first. */
#define START_FIELD 22
#define FIRST_AFTER_COMM 3

gp_err gp__pidstat_parse_start(const char *text, size_t len, uint64_t *out)
{
    *out = 0;
    const char *close = NULL;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ')')
            close = text + i;
    if (!close)
        return GP_EPROTO;
    const char *p = close + 1, *end = text + len;
    int field = FIRST_AFTER_COMM - 1;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        if (p >= end || *p == '\n')
            break;
        field++;
        if (field == START_FIELD) {
            uint64_t v = 0;
            const char *d = p;
            while (p < end && *p >= '0' && *p <= '9') {
                if (v > (UINT64_MAX - 9) / 10)
                    return GP_EPROTO;
                v = v * 10 + (uint64_t)(*p - '0');
                p++;
            }
            if (p == d || (p < end && *p != ' ' && *p != '\n'))
                return GP_EPROTO;
            *out = v;
            return GP_OK;
        }
        while (p < end && *p != ' ' && *p != '\n')
            p++;
    }
    return GP_EPROTO;
}

gp_err gp__pid_start_time(pid_t pid, uint64_t *out)
{
    *out = 0;
    if (pid <= 0)
        return GP_ENOTFOUND;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? GP_ENOTFOUND : GP_ESYS;
    char buf[2048];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return e == ESRCH ? GP_ENOTFOUND : GP_ESYS;
        }
        if (r == 0 || (n += (size_t)r) == sizeof buf)
            break;
    }
    close(fd);
    return gp__pidstat_parse_start(buf, n, out);
}
