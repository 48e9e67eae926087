/* Internal to gp_serve: GRPCStdio, plugin side (spec addendum A4.1). From
 * the handshake line on, fd 1 and fd 2 are pipes; one thread reads both,
 * in chunks of at most 1024 bytes, and the wire's plugin.GRPCStdio/StreamStdio
 * (wire/grpc/stdio.c, through gp__stdio_source) sends one StdioData per
 * chunk (channel 1 or 2) to the host that opened it. So
 * whatever the plugin prints (printf, fprintf(stderr), write(1, ...), child
 * processes that inherit the fds) reaches a go-plugin host's SyncStdout /
 * SyncStderr. Our own log lines keep going to the real stderr, where hosts
 * parse them (base/logfd.h).
 *
 * A host that never opens the stream (go-plugin 1.0, older C hosts) must
 * not make the plugin block on a full pipe: chunks wait for a stream at
 * most GP__STDIO_WAIT_MS after the handshake (and at most
 * GP__STDIO_QUEUE chunks), then go to the real fd 1 / fd 2 as before.
 * Likewise what is still in the pipes or the queue when the server stops
 * (the host's Shutdown) goes to the real fds: never lost, but not over the
 * stream. */
#ifndef GP_PLUGIN_SERVE_STDIO_H
#define GP_PLUGIN_SERVE_STDIO_H

#include <goplugin/server.h>

#include "transport/core/wire.h"

#define GP__STDIO_CHUNK 1024
#define GP__STDIO_QUEUE 256
#define GP__STDIO_WAIT_MS 10000

typedef struct gp__serve_stdio gp__serve_stdio;

/* Before the server is made: what the wire's GRPCStdio handler sends
 * (gp__wire_server_opts.stdio). NULL on ENOMEM. */
gp__serve_stdio *gp__serve_stdio_new(void);
const gp__stdio_source *gp__serve_stdio_source(gp__serve_stdio *s);

/* Once the server is listening, before the handshake line (so that no
 * call can print before it): redirect fd 1 and fd 2. On failure nothing is
 * redirected (err says why). */
gp_err gp__serve_stdio_redirect(gp__serve_stdio *s, char *err, size_t errlen);

/* After the redirect: start the thread that reads both pipes. On failure
 * fd 1 and fd 2 are put back (err says why). */
gp_err gp__serve_stdio_start(gp__serve_stdio *s, char *err, size_t errlen);

/* Where the handshake line goes: the real stdout (1 when not redirected,
 * or s NULL). */
int gp__serve_stdio_real_stdout(gp__serve_stdio *s);

/* The server is stopping (after the Shutdown reply, the call still open):
 * send what is pending for up to 200 ms, then open StreamStdio handlers
 * return (call before the server is freed, which waits for them). */
void gp__serve_stdio_stopping(gp__serve_stdio *s);

/* After the server is freed: put fd 1 and fd 2 back, write what was not
 * sent to them, join the readers, free. NULL is a no-op. */
void gp__serve_stdio_free(gp__serve_stdio *s);

#endif
