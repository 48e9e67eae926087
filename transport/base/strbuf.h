/* Internal: a growable NUL-terminated string with a hard cap. Any failure
 * (allocation, cap) latches `ok = 0`; callers check once at the end. */
#ifndef GP_BASE_STRBUF_H
#define GP_BASE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct gp__strbuf {
    char *data; /* always NUL-terminated when ok */
    size_t len;
    size_t cap;
    size_t max; /* growth limit in bytes; 0 = 64 MiB */
    int ok;
} gp__strbuf;

void gp__strbuf_init(gp__strbuf *b);
void gp__strbuf_free(gp__strbuf *b);
void gp__strbuf_reset(gp__strbuf *b);
void gp__strbuf_appendn(gp__strbuf *b, const char *s, size_t n);
void gp__strbuf_append(gp__strbuf *b, const char *s);
void gp__strbuf_printf(gp__strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gp__strbuf_vprintf(gp__strbuf *b, const char *fmt, va_list ap);
/* Append `s` as a quoted JSON string. */
void gp__strbuf_json_string(gp__strbuf *b, const char *s);
/* Append `s` (n bytes) quoted for an error message: printable ASCII kept,
 * the rest escaped, cut at `limit` bytes with "..." after. */
void gp__strbuf_quote(gp__strbuf *b, const char *s, size_t n, size_t limit);

#endif
