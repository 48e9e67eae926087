/* Line splitting with a fixed buffer: the peer decides line lengths, we
 * decide memory. */
#include "transport/process/lines.h"

#include <stdlib.h>
#include <string.h>

gp_err gp__lines_init(gp__lines *l, size_t max)
{
    memset(l, 0, sizeof *l);
    if (max == 0)
        return GP_EINVAL;
    l->buf = malloc(max + 1);
    if (!l->buf)
        return GP_ENOMEM;
    l->max = max;
    return GP_OK;
}

void gp__lines_free(gp__lines *l)
{
    free(l->buf);
    memset(l, 0, sizeof *l);
}

static void emit(gp__lines *l, int piece, gp__lines_fn fn, void *ctx)
{
    size_t n = l->len;
    /* A "\r" right before the "\n" belongs to the line ending. */
    if (!piece && n > 0 && l->buf[n - 1] == '\r')
        n--;
    l->buf[n] = '\0';
    fn(ctx, l->buf, n, piece);
    l->len = 0;
    l->cut = piece;
}

void gp__lines_feed(gp__lines *l, const char *data, size_t n, gp__lines_fn fn, void *ctx)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        size_t room = l->max - l->len;
        if (take > room) {
            /* The line does not fit: deliver a full piece and go on. A
             * "\r" at the cut stays in the piece (it is not a line end). */
            memcpy(l->buf + l->len, data, room);
            l->len += room;
            data += room;
            n -= room;
            emit(l, 1, fn, ctx);
            continue;
        }
        memcpy(l->buf + l->len, data, take);
        l->len += take;
        data += take;
        n -= take;
        if (nl) {
            data++;
            n--;
            /* A line that ends exactly at a cut gives no empty last piece. */
            if (!(l->cut && l->len == 0))
                emit(l, 0, fn, ctx);
            l->cut = 0;
        }
    }
}

void gp__lines_finish(gp__lines *l, gp__lines_fn fn, void *ctx)
{
    if (l->len > 0)
        emit(l, 0, fn, ctx);
    l->cut = 0;
}
