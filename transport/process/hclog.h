/* Internal: read one plugin stderr line the way go-plugin hosts do (spec
 * §5.8). Pure: a line in, a level, a message and key/value pairs out.
 *
 * hclog JSON: a JSON object whose "@level" and "@message" are strings (when
 * present) and whose "@timestamp" (when present) is a string in hclog's
 * layout "2006-01-02T15:04:05.000000Z07:00". Every other key becomes a
 * pair: string values as they are, other values as compact JSON text. A
 * JSON line with a missing or unknown level is logged verbatim at DEBUG.
 * Any other line: a "[TRACE]".."[ERROR]" prefix selects the level, else
 * DEBUG; the message is the whole line.
 */
#ifndef GP_PROCESS_HCLOG_H
#define GP_PROCESS_HCLOG_H

#include <goplugin/err.h>
#include <goplugin/log.h>

#include <stdbool.h>
#include <stddef.h>

typedef struct gp__hclog_rec {
    gp_log_level level;
    const char *msg; /* NUL-terminated; never NULL after GP_OK */
    gp_log_kv *kv;   /* nkv pairs; NULL when none */
    size_t nkv;
    bool json;  /* the line was hclog JSON */
    void *own_; /* storage behind the pointers above */
} gp__hclog_rec;

/* Parse `len` bytes of `line` (no "\n"; need not be NUL-terminated; may
 * contain any bytes). Errors: GP_ENOMEM only; on error nothing to free.
 * On GP_OK free with gp__hclog_rec_free. */
gp_err gp__hclog_parse(const char *line, size_t len, gp__hclog_rec *out);
void gp__hclog_rec_free(gp__hclog_rec *r);

/* hclog's level words, case-insensitive: "trace".."error" (also "warning").
 * GP_LOG_DEFAULT when unknown. */
gp_log_level gp__hclog_level(const char *word);

/* True when `s` is a timestamp in hclog's JSON layout. */
bool gp__hclog_timestamp_ok(const char *s);

#endif
