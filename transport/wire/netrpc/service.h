/* Internal: one gp_service / gp_method over net/rpc, for both ends of any
 * stream that carries it (dispensed plugins and brokered connections). */
#ifndef GP_NETRPC_SERVICE_H
#define GP_NETRPC_SERVICE_H

#include <goplugin/broker.h>
#include <goplugin/server.h>

#include "transport/yamux/mux_session.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"

/* Calls `m` through `rpc`: gob-encodes req, waits for the reply (timeout_ms
 * < 0: none), decodes it into resp (the caller's zeroed struct). `st` must
 * not be NULL. GP_EUNSUPPORTED when m has no netrpc name or gob types;
 * GP_ENOTFOUND for Go's "rpc: can't find ..."; else as gp__rpc_call. */
gp_err gp__netrpc_invoke(gp__rpc_client *rpc, const gp_method *m, const void *req, void *resp,
                         int timeout_ms, gp_status *st);

/* Serves `svc` as net/rpc service "Plugin" on `st` until EOF or an error
 * (words in err); handlers see gp_serve_broker() == broker. workers <= 0:
 * 8 handler threads. max_message: one gob message's cap, both ways; 0 =
 * gob's 64 MiB. */
gp_err gp__netrpc_serve_service(gp__mux_stream *st, const gp_service *svc, gp_broker *broker,
                                int workers, size_t max_message, char *err, size_t errlen);

#endif
