/* Internal to transport/grpc: go-plugin's GRPCStdio (spec addendum A4), the
 * gRPC part of both sides. The plugin's service sends one StdioData per
 * chunk a gp__stdio_source gives (plugin/serve_stdio.c redirects the fds);
 * the host's reader opens StreamStdio and hands each StdioData to a sink
 * (host/client_stdio.c). Reached through the wire table (core/wire.h). */
#ifndef GP_GRPC_STDIO_H
#define GP_GRPC_STDIO_H

#include <goplugin/server.h>

#include <stdbool.h>

#include "transport/core/wire.h"

/* Plugin: a plugin.GRPCStdio service serving `src` (borrowed), to serve
 * along with the plugin's. NULL on ENOMEM. Free after the server. */
gp_service *gp__grpc_stdio_service_new(const gp__stdio_source *src);
void gp__grpc_stdio_service_free(gp_service *svc);

/* Host: the wire table's stdio_start / stdio_stop. */
void *gp__grpc_stdio_start(gp_conn *conn,
                           void (*sink)(void *ctx, int channel, const void *data, size_t len),
                           void (*ended)(void *ctx, bool unimplemented, const char *why), void *ctx,
                           char *err, size_t errlen);
void gp__grpc_stdio_stop(void *h);
void gp__grpc_stdio_follow(void *h, int on);

#endif
