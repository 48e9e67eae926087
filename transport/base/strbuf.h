/* Internal: a growable NUL-terminated string with a hard cap. Any failure
 * (allocation, cap) latches `ok = 0`; callers check once at the end. */
#ifndef GP_BASE_STRBUF_H
#define GP_BASE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct gp_strbuf {
    char *data;     /* always NUL-terminated when ok */
    size_t len;
    size_t cap;
    size_t max;     /* growth limit in bytes; 0 = 64 MiB */
    int ok;
} gp_strbuf;

void gp_strbuf_init(gp_strbuf *b);
void gp_strbuf_free(gp_strbuf *b);
void gp_strbuf_reset(gp_strbuf *b);
void gp_strbuf_appendn(gp_strbuf *b, const char *s, size_t n);
void gp_strbuf_append(gp_strbuf *b, const char *s);
void gp_strbuf_printf(gp_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gp_strbuf_vprintf(gp_strbuf *b, const char *fmt, va_list ap);
/* Append `s` as a quoted JSON string. */
void gp_strbuf_json_string(gp_strbuf *b, const char *s);
/* Append `s` (n bytes) quoted for an error message: printable ASCII kept,
 * the rest escaped, cut at `limit` bytes with "..." after. */
void gp_strbuf_quote(gp_strbuf *b, const char *s, size_t n, size_t limit);

#endif
