/* Internal to transport/grpc: the client conn around a channel that a
 * caller makes (an fd we dialled, in client.c; a TLS channel core dials
 * itself, in client_tls.c). Same vtable, keepalive args and idle poller. */
#ifndef GP_GRPC_CHANNEL_H
#define GP_GRPC_CHANNEL_H

#include <goplugin/conn.h>

#include <grpc/grpc.h>

#include <stddef.h>

#include "transport/wire/grpc/grpc.h"

typedef struct gp__grpc_channel_maker {
    /* Make the channel with `args` (core copies them). Never NULL: core
     * returns a lame channel on failure. */
    grpc_channel *(*make)(const grpc_channel_args *args, void *ctx);
    /* Optional: wait until the channel can carry calls, before the broker
     * stream starts on it. An error aborts the conn (the channel is
     * destroyed); err gets why. */
    gp_err (*ready)(grpc_channel *ch, void *ctx, char *err, size_t errlen);
    void *ctx;
    const char *authority; /* :authority of calls; NULL = "unused" */
    const grpc_arg *extra; /* one more channel arg, or NULL */
} gp__grpc_channel_maker;

/* The conn as gp__grpc_conn_from_fd describes it, over mk's channel. */
gp_err gp__grpc_conn_make(const gp__grpc_client_opts *o, const gp__grpc_channel_maker *mk,
                          gp_conn **out, char *err, size_t errlen);

#endif
