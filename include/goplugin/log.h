/* goplugin-c: logging, hclog style.
 *
 * A host gives a gp_logger; plugin stderr lines that are hclog JSON arrive at
 * their own level with their key/value pairs, other lines arrive raw. A
 * plugin logs hclog JSON lines on stderr (gp_log_json_stderr), which go-plugin
 * hosts parse the same way.
 */
#ifndef GOPLUGIN_LOG_H
#define GOPLUGIN_LOG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gp_log_level {
    GP_LOG_DEFAULT = 0, /* in a config: use the default (INFO) */
    GP_LOG_TRACE = 1,
    GP_LOG_DEBUG = 2,
    GP_LOG_INFO = 3,
    GP_LOG_WARN = 4,
    GP_LOG_ERROR = 5,
    GP_LOG_OFF = 6
} gp_log_level;

/* One key/value pair. `value` is text: a JSON string's contents, or the JSON
 * text of any other value (number, object, ...). Borrowed for the call. */
typedef struct gp_log_kv {
    const char *key;
    const char *value;
} gp_log_kv;

/* A log sink. `name` is the logger name (the plugin's base name on a host),
 * may be "". All pointers are borrowed for the duration of the call. Called
 * from library threads: must be thread safe and must not block for long. */
typedef void (*gp_log_fn)(void *ctx, gp_log_level level, const char *name, const char *msg,
                          const gp_log_kv *kv, size_t nkv);

typedef struct gp_logger {
    gp_log_fn fn; /* NULL: gp_log_text_stderr */
    void *ctx;
    gp_log_level level; /* records below it are dropped; DEFAULT = INFO */
} gp_logger;

/* "2026-11-26T06:46:12.527Z [INFO]  name: msg: k=v" on stderr.
 * Thread safety: any thread (one line per write). */
void gp_log_text_stderr(void *ctx, gp_log_level level, const char *name, const char *msg,
                        const gp_log_kv *kv, size_t nkv);

/* One hclog JSON line on stderr: {"@level","@message","@timestamp",
 * "@module", k: v...}; what go-plugin hosts parse. Thread safety: any
 * thread (one line per write). */
void gp_log_json_stderr(void *ctx, gp_log_level level, const char *name, const char *msg,
                        const gp_log_kv *kv, size_t nkv);

/* Log through `lg` (NULL: text on stderr at INFO). printf-style message,
 * then `nkv` pairs. Thread safety: any thread (lg's fn must be too). */
void gp_logf(const gp_logger *lg, gp_log_level level, const char *name, const gp_log_kv *kv,
             size_t nkv, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* "trace".."error" for a level; "off" for OFF. Static storage; any thread. */
const char *gp_log_level_name(gp_log_level level);

#ifdef __cplusplus
}
#endif
#endif
