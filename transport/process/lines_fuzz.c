/* libFuzzer target: the stdout/stderr line splitter (lines.h) on any bytes
 * fed in any chunk sizes. Input: [0] picks the line cap (1..64), [1] how
 * many chunk sizes follow (0..15), then those sizes (0..31 bytes, cycled),
 * then the stream. Checks: no line or piece longer than the cap, only
 * pieces of exactly the cap, every line NUL-terminated, and the lines
 * equal a reference split of the whole stream (so every byte is accounted
 * for, whatever the chunks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/process/lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the callbacks delivered: (piece, len, bytes) records, appended. */
typedef struct rec {
    uint8_t *buf;
    size_t len, cap, max;
} rec;

static void put(rec *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n)
            cap *= 2;
        uint8_t *b = realloc(r->buf, cap);
        if (!b)
            abort();
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
}

static void add(rec *r, const char *line, size_t len, int piece)
{
    uint8_t pc = (uint8_t)piece;
    put(r, &pc, 1);
    put(r, &len, sizeof len);
    put(r, line, len);
}

static void on_line(void *ctx, const char *line, size_t len, int piece)
{
    rec *r = ctx;
    if (len > r->max || (piece != 0 && piece != 1) || (piece && len != r->max) || line[len] != '\0')
        abort();
    add(r, line, len, piece);
}

/* The reference: one line (without its "\n") as the splitter must deliver
 * it: pieces of `max` while more than `max` bytes remain, then the rest
 * with one trailing "\r" removed. */
static void ref_line(rec *r, const uint8_t *p, size_t n, size_t max)
{
    while (n > max) {
        add(r, (const char *)p, max, 1);
        p += max;
        n -= max;
    }
    if (n > 0 && p[n - 1] == '\r')
        n--;
    add(r, (const char *)p, n, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 16)
        return 0;
    size_t max = 1 + data[0] % 64;
    size_t nsizes = data[1] % 16;
    if (size < 2 + nsizes)
        return 0;
    const uint8_t *sizes = data + 2;
    const uint8_t *s = data + 2 + nsizes;
    size_t n = size - 2 - nsizes;

    gp__lines l;
    if (gp__lines_init(&l, max) != GP_OK)
        abort();
    rec got = {.max = max};
    size_t off = 0, k = 0;
    while (off < n) {
        size_t c = nsizes ? sizes[k++ % nsizes] % 32 : n - off;
        if (c > n - off)
            c = n - off;
        gp__lines_feed(&l, (const char *)s + off, c, on_line, &got);
        off += c;
        if (nsizes && k > 4 * n + 16) /* all sizes 0: finish the rest at once */
            nsizes = 0;
    }
    gp__lines_finish(&l, on_line, &got);
    gp__lines_free(&l);

    rec want = {.max = max};
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            ref_line(&want, s + start, i - start, max);
            start = i + 1;
        }
    }
    if (start < n)
        ref_line(&want, s + start, n - start, max);

    if (got.len != want.len || (got.len && memcmp(got.buf, want.buf, got.len) != 0))
        abort();
    free(got.buf);
    free(want.buf);
    return 0;
}
