/* Internal: go-plugin's MuxBroker (spec §2.5) on one yamux session, for
 * either side; the gp_broker of the netrpc wire.
 *
 * Ids are per accepting side (our counter, from 1). A dial opens a stream,
 * writes the id as 4 bytes little-endian and waits GP_BROKER_WAIT_MS for
 * the same 4 bytes back. A stream the peer opens is handed to take(): its
 * id is matched with an accept_and_serve registration (either may come
 * first; each waits GP_BROKER_WAIT_MS for the other), acked, and served
 * with net/rpc (service name "Plugin", as go-plugin's brokered servers). */
#ifndef GP_NETRPC_MUX_BROKER_H
#define GP_NETRPC_MUX_BROKER_H

#include <goplugin/broker.h>
#include <goplugin/log.h>

#include "transport/yamux/mux_session.h"

typedef struct gp__mux_broker gp__mux_broker;

typedef struct gp__mux_broker_opts {
    gp__mux_session *sess;   /* borrowed; outlives the broker */
    const gp_logger *logger; /* copied; NULL: no logging */
    const char *log_name;
    int workers;         /* concurrent calls per served stream; 0 = 8 */
    int call_timeout_ms; /* calls on dialed stubs; 0 = none */
} gp__mux_broker_opts;

gp_err gp__mux_broker_new(const gp__mux_broker_opts *o, gp__mux_broker **out);

/* The public face (its vtable), valid until gp__mux_broker_free. */
gp_broker *gp__mux_broker_base(gp__mux_broker *b);

uint32_t gp__mux_broker_next_id(gp__mux_broker *b);

/* Takes ownership of a stream the peer opened. have_id: the caller already
 * read its 4-byte id (the plugin's Dispense path), else it is read here
 * (GP_BROKER_WAIT_MS). Never blocks: the stream gets its own thread. */
void gp__mux_broker_take(gp__mux_broker *b, gp__mux_stream *st, int have_id, uint32_t id);

/* Call after the session closed (so served streams end): joins every
 * thread and frees. NULL is a no-op. */
void gp__mux_broker_free(gp__mux_broker *b);

#endif
