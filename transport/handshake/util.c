#include "transport/handshake/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "transport/base/errf.h"

int gp__hs_decimal(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    if (n == 0)
        return -1;
    unsigned long v = 0;
    int over = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        /* Keep scanning after an overflow so "99999x" still says "not a
         * number" rather than "too big". */
        if (over || d > max || v > (max - d) / 10)
            over = 1;
        else
            v = v * 10 + d;
    }
    if (over)
        return -2;
    *out = v;
    return 0;
}

int gp__hs_parse_bool(const char *s, size_t n)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strlen(yes[i]) == n && memcmp(s, yes[i], n) == 0)
            return 1;
        if (strlen(no[i]) == n && memcmp(s, no[i], n) == 0)
            return 0;
    }
    return -1;
}

void gp__hs_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp__verrf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *gp__hs_quote(gp__strbuf *b, const char *s, size_t n)
{
    gp__strbuf_init(b);
    gp__strbuf_quote(b, s, n, GP_HS_QUOTE_LIMIT);
    return b->ok && b->data ? b->data : "\"?\"";
}
