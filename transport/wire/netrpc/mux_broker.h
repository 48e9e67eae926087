/* Internal: go-plugin's MuxBroker (spec §2.5) on one yamux session, for
 * either side; the gp_broker of the netrpc wire.
 *
 * Ids are per accepting side (our counter, from 1). A dial opens a stream,
 * writes the id as 4 bytes little-endian and waits GP_BROKER_WAIT_MS for
 * the same 4 bytes back. A stream the peer opens is handed to take(): its
 * id is matched with an accept_and_serve registration (either may come
 * first; each waits GP_BROKER_WAIT_MS for the other), acked, and served
 * with net/rpc (service name "Plugin", as go-plugin's brokered servers).
 *
 * Caps (a peer opens streams at will): at most max_pending streams wait
 * for their id and match at once, each for at most wait_ms in all, and at
 * most max_served are served at once; a stream past either cap is reset
 * at once (no thread), and logged once per burst of refusals. */
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
    int workers;              /* concurrent calls per served stream; 0 = 8 */
    int call_timeout_ms;      /* calls on dialed stubs; 0 = none */
    size_t max_message_bytes; /* gob cap of streams for reserved() ids; 0 = 64 MiB */
    int max_pending;          /* 0 = GP__MUX_BROKER_MAX_PENDING */
    int max_served;           /* 0 = GP__MUX_BROKER_MAX_SERVED */
    int wait_ms;              /* a pending stream's id + match; 0 = GP_BROKER_WAIT_MS */
    /* Looked up before the broker's own registrations, with the id a
     * stream brought: the plugin's Dispense reservations. Returns the
     * service to serve (taking the reservation), or NULL. May be NULL. */
    const gp_service *(*reserved)(void *ctx, uint32_t id);
    void *reserved_ctx;
} gp__mux_broker_opts;

#define GP__MUX_BROKER_MAX_PENDING 64
#define GP__MUX_BROKER_MAX_SERVED 128

gp_err gp__mux_broker_new(const gp__mux_broker_opts *o, gp__mux_broker **out);

/* The public face (its vtable), valid until gp__mux_broker_free. */
gp_broker *gp__mux_broker_base(gp__mux_broker *b);

uint32_t gp__mux_broker_next_id(gp__mux_broker *b);

/* Takes ownership of a stream the peer opened. have_id: the caller already
 * read its 4-byte id, else it is read here (within wait_ms). Never blocks:
 * the stream gets its own thread, or is reset past max_pending. */
void gp__mux_broker_take(gp__mux_broker *b, gp__mux_stream *st, int have_id, uint32_t id);

/* Call after the session closed (so served streams end): joins every
 * thread and frees. NULL is a no-op. */
void gp__mux_broker_free(gp__mux_broker *b);

#endif
