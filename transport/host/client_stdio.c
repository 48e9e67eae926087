/* GRPCStdio, host side (spec addendum A4.2): have the wire open
 * plugin.GRPCStdio/StreamStdio right after connecting and read it until the
 * connection ends (wire table stdio_start), handing each chunk to the
 * configured sink (go-plugin's SyncStdout/SyncStderr) or, by default, to
 * the logger line by line. The
 * reading never stops while the plugin runs, so a plugin that prints a lot
 * never blocks on a full pipe (a go-plugin 1.1+ plugin does, under a host
 * that never opens the stream). */
#include <goplugin/conn.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/core/wire.h"
#include "transport/host/client_internal.h"

#define STDIO_LINE_MAX 4096 /* longest line logged in one record, as the netrpc wire */

typedef struct line_buf {
    const char *stream; /* "stdout" | "stderr" */
    gp_log_level level;
    char text[STDIO_LINE_MAX + 1];
    size_t len;
} line_buf;

struct gp__client_stdio {
    gp_client *c;
    const gp__wire *w;
    void *reader; /* the wire's */
    line_buf out, err;
};

static void flush_line(gp_client *c, line_buf *b)
{
    if (b->len && b->text[b->len - 1] == '\r')
        b->len--;
    b->text[b->len] = '\0';
    gp_log_kv kv = {"stream", b->stream};
    gp_logf(&c->logger, b->level, c->log_name, &kv, 1, "%s", b->text);
    b->len = 0;
}

static void to_log(gp_client *c, line_buf *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            flush_line(c, b);
            continue;
        }
        if (b->len == STDIO_LINE_MAX)
            flush_line(c, b);
        b->text[b->len++] = (char)p[i];
    }
}

static void deliver(void *ctx, int channel, const void *data, size_t n)
{
    struct gp__client_stdio *s = ctx;
    gp_client *c = s->c;
    const uint8_t *p = data;
    switch (channel) {
    case 1:
        if (c->stdout_sink)
            c->stdout_sink(c->stdio_ctx, p, n);
        else
            to_log(c, &s->out, p, n);
        break;
    case 2:
        if (c->stderr_sink)
            c->stderr_sink(c->stdio_ctx, p, n);
        else
            to_log(c, &s->err, p, n);
        break;
    default: { /* go-plugin's words */
        char ch[16];
        snprintf(ch, sizeof ch, "%d", channel);
        gp_log_kv kv = {"channel", ch};
        gp_logf(&c->logger, GP_LOG_WARN, c->log_name, &kv, 1, "stdio: unknown channel, dropping");
    }
    }
}

static void ended(void *ctx, bool unimplemented, const char *why)
{
    struct gp__client_stdio *s = ctx;
    gp_log_kv kv = {"err", why};
    if (unimplemented)
        gp_logf(&s->c->logger, GP_LOG_DEBUG, s->c->log_name, &kv, 1,
                "stdio: the plugin has no GRPCStdio service; its stdout/stderr after the "
                "handshake are not forwarded");
    else
        gp_logf(&s->c->logger, GP_LOG_DEBUG, s->c->log_name, &kv, 1,
                "stdio: received EOF, stopping recv loop");
}

struct gp__client_stdio *gp__client_stdio_start(gp_client *c, gp_conn *conn)
{
    const gp__wire *w = gp__wire_find(c->protocol);
    if (!w || !w->stdio_start)
        return NULL; /* netrpc reads its stdout/stderr streams itself */
    struct gp__client_stdio *s = calloc(1, sizeof *s);
    char err[GP_STATUS_MSG_MAX] = "out of memory";
    if (s) {
        s->c = c;
        s->w = w;
        s->out = (line_buf){.stream = "stdout", .level = GP_LOG_DEBUG};
        s->err = (line_buf){.stream = "stderr", .level = GP_LOG_INFO};
        s->reader = w->stdio_start(conn, deliver, ended, s, err, sizeof err);
        if (s->reader)
            return s;
    }
    gp_log_kv kv = {"err", err};
    gp_logf(&c->logger, GP_LOG_WARN, c->log_name, &kv, 1,
            "stdio: stdio service not available, stdout/stderr syncing unavailable");
    free(s);
    return NULL;
}

void gp__client_stdio_follow(struct gp__client_stdio *s, int on)
{
    if (s && s->w->stdio_follow)
        s->w->stdio_follow(s->reader, on);
}

void gp__client_stdio_stop(struct gp__client_stdio *s)
{
    if (!s)
        return;
    s->w->stdio_stop(s->reader); /* no sink call after this */
    if (s->out.len)
        flush_line(s->c, &s->out);
    if (s->err.len)
        flush_line(s->c, &s->err);
    free(s);
}
