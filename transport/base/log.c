/* Logging: a printf front end and two sinks (text for people, hclog JSON
 * for go-plugin hosts). Each record is written with one write(2) so lines
 * from several threads never interleave. */
#include <goplugin/log.h>

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/base/logfd.h"
#include "transport/base/strbuf.h"

static const char *const level_names[] = {
    [GP_LOG_DEFAULT] = "info", [GP_LOG_TRACE] = "trace", [GP_LOG_DEBUG] = "debug",
    [GP_LOG_INFO] = "info",    [GP_LOG_WARN] = "warn",   [GP_LOG_ERROR] = "error",
    [GP_LOG_OFF] = "off",
};

const char *gp_log_level_name(gp_log_level level)
{
    if ((unsigned)level > GP_LOG_OFF)
        return "info";
    return level_names[level];
}

static void timestamp(char *buf, size_t n, int json)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    /* hclog's JSON timestamps carry exactly 6 fractional digits; go-plugin
     * hosts reject the whole line as JSON otherwise. */
    if (json)
        snprintf(buf + k, n - k, ".%06ldZ", ts.tv_nsec / 1000);
    else
        snprintf(buf + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

static atomic_int g_stderr_fd = 2;

void gp__log_set_stderr_fd(int fd)
{
    atomic_store(&g_stderr_fd, fd < 0 ? 2 : fd);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void gp_log_text_stderr(void *ctx, gp_log_level level, const char *name, const char *msg,
                        const gp_log_kv *kv, size_t nkv)
{
    (void)ctx;
    char ts[40];
    timestamp(ts, sizeof ts, 0);
    gp__strbuf b;
    gp__strbuf_init(&b);
    char lv[8];
    snprintf(lv, sizeof lv, "%s", gp_log_level_name(level));
    for (char *p = lv; *p; p++)
        *p = (char)(*p - 'a' + 'A');
    gp__strbuf_printf(&b, "%s [%s]%*s", ts, lv, (int)(6 - strlen(lv)), "");
    if (name && *name)
        gp__strbuf_printf(&b, "%s: ", name);
    gp__strbuf_append(&b, msg ? msg : "");
    for (size_t i = 0; i < nkv; i++)
        gp__strbuf_printf(&b, ": %s=%s", kv[i].key, kv[i].value ? kv[i].value : "");
    gp__strbuf_append(&b, "\n");
    if (b.ok)
        write_all(atomic_load(&g_stderr_fd), b.data, b.len);
    gp__strbuf_free(&b);
}

void gp_log_json_stderr(void *ctx, gp_log_level level, const char *name, const char *msg,
                        const gp_log_kv *kv, size_t nkv)
{
    (void)ctx;
    char ts[40];
    timestamp(ts, sizeof ts, 1);
    gp__strbuf b;
    gp__strbuf_init(&b);
    /* @level and @message must be JSON strings: a go-plugin host panics on
     * anything else. */
    gp__strbuf_append(&b, "{\"@level\":");
    gp__strbuf_json_string(&b, gp_log_level_name(level));
    gp__strbuf_append(&b, ",\"@message\":");
    gp__strbuf_json_string(&b, msg ? msg : "");
    gp__strbuf_printf(&b, ",\"@timestamp\":\"%s\"", ts);
    if (name && *name) {
        gp__strbuf_append(&b, ",\"@module\":");
        gp__strbuf_json_string(&b, name);
    }
    for (size_t i = 0; i < nkv; i++) {
        gp__strbuf_append(&b, ",");
        gp__strbuf_json_string(&b, kv[i].key ? kv[i].key : "");
        gp__strbuf_append(&b, ":");
        gp__strbuf_json_string(&b, kv[i].value ? kv[i].value : "");
    }
    gp__strbuf_append(&b, "}\n");
    if (b.ok)
        write_all(atomic_load(&g_stderr_fd), b.data, b.len);
    gp__strbuf_free(&b);
}

void gp_logf(const gp_logger *lg, gp_log_level level, const char *name, const gp_log_kv *kv,
             size_t nkv, const char *fmt, ...)
{
    gp_log_level min = (lg && lg->level) ? lg->level : GP_LOG_INFO;
    if (level < min || level >= GP_LOG_OFF)
        return;
    gp__strbuf b;
    gp__strbuf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    gp__strbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    gp_log_fn fn = (lg && lg->fn) ? lg->fn : gp_log_text_stderr;
    fn(lg ? lg->ctx : NULL, level, name ? name : "", b.ok ? b.data : fmt, kv, nkv);
    gp__strbuf_free(&b);
}
