/* Internal: cut a byte stream into lines with a bounded buffer.
 *
 * Used for a plugin's stdout and stderr. A line longer than `max` bytes is
 * handed out in pieces of `max` bytes (piece = 1 on every piece but the
 * last), so memory stays bounded whatever the peer sends. The trailing "\n"
 * and one "\r" before it are removed (as Go's bufio.ScanLines does).
 */
#ifndef GP_PROCESS_LINES_H
#define GP_PROCESS_LINES_H

#include <goplugin/err.h>

#include <stddef.h>

/* `line` is NUL-terminated, borrowed for the call. `piece` is 1 when the
 * line was cut at the size limit and more of it follows. */
typedef void (*gp__lines_fn)(void *ctx, const char *line, size_t len, int piece);

typedef struct gp__lines {
    char *buf; /* max + 1 bytes, allocated once */
    size_t len;
    size_t max;
    int cut; /* the line in progress already had a piece delivered */
} gp__lines;

/* Allocate the buffer (max + 1 bytes). Errors: GP_ENOMEM, GP_EINVAL (max 0). */
gp_err gp__lines_init(gp__lines *l, size_t max);
void gp__lines_free(gp__lines *l);

/* Feed n bytes; calls fn for every complete line and every full piece. */
void gp__lines_feed(gp__lines *l, const char *data, size_t n, gp__lines_fn fn, void *ctx);

/* End of stream: a last line without "\n" is delivered (piece = 0). */
void gp__lines_finish(gp__lines *l, gp__lines_fn fn, void *ctx);

#endif
