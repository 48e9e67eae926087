/* A byte ring: cheap to feed on every read, only read when something fails. */
#include "transport/process/tail.h"

#include <string.h>

void gp__tail_add(gp__tail *t, const char *data, size_t n)
{
    if (n >= GP__TAIL_SIZE) {
        memcpy(t->buf, data + n - GP__TAIL_SIZE, GP__TAIL_SIZE);
        t->start = 0;
        t->len = GP__TAIL_SIZE;
        t->dropped = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = (t->start + t->len) % GP__TAIL_SIZE;
        t->buf[at] = data[i];
        if (t->len < GP__TAIL_SIZE) {
            t->len++;
        } else {
            t->start = (t->start + 1) % GP__TAIL_SIZE;
            t->dropped = 1;
        }
    }
}

size_t gp__tail_copy(const gp__tail *t, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    size_t n = t->len < cap - 1 ? t->len : cap - 1;
    size_t from = (t->start + t->len - n) % GP__TAIL_SIZE;
    for (size_t i = 0; i < n; i++)
        out[i] = t->buf[(from + i) % GP__TAIL_SIZE];
    out[n] = '\0';
    size_t skip = 0;
    if (t->dropped || n < t->len) {
        char *nl = memchr(out, '\n', n);
        if (nl && (size_t)(nl - out) + 1 < n)
            skip = (size_t)(nl - out) + 1;
    }
    if (skip) {
        memmove(out, out + skip, n - skip + 1);
        n -= skip;
    }
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    return n;
}
