#include "transport/base/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX ((size_t)64 << 20)

void gp__strbuf_init(gp__strbuf *b)
{
    b->data = NULL;
    b->len = b->cap = b->max = 0;
    b->ok = 1;
}

void gp__strbuf_free(gp__strbuf *b)
{
    free(b->data);
    gp__strbuf_init(b);
}

void gp__strbuf_reset(gp__strbuf *b)
{
    b->len = 0;
    b->ok = 1;
    if (b->data)
        b->data[0] = 0;
}

static int reserve(gp__strbuf *b, size_t extra)
{
    size_t max = b->max ? b->max : DEFAULT_MAX;
    if (!b->ok || extra > max || b->len + 1 > max - extra) {
        b->ok = 0;
        return 0;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->ok = 0;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void gp__strbuf_appendn(gp__strbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void gp__strbuf_append(gp__strbuf *b, const char *s)
{
    gp__strbuf_appendn(b, s, strlen(s));
}

void gp__strbuf_vprintf(gp__strbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !reserve(b, (size_t)n)) {
        b->ok = 0;
        return;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void gp__strbuf_printf(gp__strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp__strbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

void gp__strbuf_json_string(gp__strbuf *b, const char *s)
{
    gp__strbuf_append(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"':
            gp__strbuf_append(b, "\\\"");
            break;
        case '\\':
            gp__strbuf_append(b, "\\\\");
            break;
        case '\n':
            gp__strbuf_append(b, "\\n");
            break;
        case '\r':
            gp__strbuf_append(b, "\\r");
            break;
        case '\t':
            gp__strbuf_append(b, "\\t");
            break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                gp__strbuf_append(b, esc);
            } else {
                gp__strbuf_appendn(b, (const char *)p, 1);
            }
        }
    }
    gp__strbuf_append(b, "\"");
}

void gp__strbuf_quote(gp__strbuf *b, const char *s, size_t n, size_t limit)
{
    gp__strbuf_append(b, "\"");
    size_t shown = n < limit ? n : limit;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            gp__strbuf_appendn(b, esc, 2);
        } else if (c >= 0x20 && c < 0x7f) {
            gp__strbuf_appendn(b, (const char *)&c, 1);
        } else {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            gp__strbuf_append(b, esc);
        }
    }
    gp__strbuf_append(b, "\"");
    if (shown < n)
        gp__strbuf_printf(b, "... (%zu bytes)", n);
}
