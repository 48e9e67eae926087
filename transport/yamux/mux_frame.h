/* Internal: yamux frame header codec. A push parser (bytes in, frames out,
 * no I/O) and a header encoder. */
#ifndef GP_NETRPC_MUX_FRAME_H
#define GP_NETRPC_MUX_FRAME_H

#include <goplugin/err.h>

#include <stddef.h>
#include <stdint.h>

#include "transport/yamux/mux_wire.h"

typedef struct gp__mux_header {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint32_t stream_id;
    uint32_t length;
} gp__mux_header;

/* Writes the 12 header bytes of `h` to `out`. Never fails. */
void gp__mux_header_encode(const gp__mux_header *h, uint8_t out[GP_MUX_HEADER_SIZE]);

/* Reads 12 bytes into *h without any check. */
void gp__mux_header_decode(const uint8_t in[GP_MUX_HEADER_SIZE], gp__mux_header *h);

/* Checks a decoded header: version 0, type 0-3, Ping/GoAway on stream 0,
 * Data/WindowUpdate on a nonzero stream, Data length <= max_data.
 * GP_EPROTO with a sentence in err[errlen] ("yamux: expected version 0, got 7");
 * GP_EMSGSIZE for a Data length over max_data. */
gp_err gp__mux_header_check(const gp__mux_header *h, uint32_t max_data, char *err, size_t errlen);

/* What gp__mux_parser_feed found. */
typedef enum gp__mux_event {
    GP_MUX_EV_NEED_MORE = 0, /* all input consumed, no complete item */
    GP_MUX_EV_HEADER,        /* a checked header is in p->hdr; for Data with
                                length > 0 the payload follows as EV_DATA */
    GP_MUX_EV_DATA,          /* a piece of the current Data payload:
                                (*data, *data_len) point into the caller's input */
    GP_MUX_EV_ERROR          /* the stream is broken; p->err says why */
} gp__mux_event;

typedef struct gp__mux_parser {
    uint32_t max_data;  /* largest Data payload accepted (the receive window) */
    gp__mux_header hdr; /* the current frame's header */
    uint32_t body_left; /* Data payload bytes still to come */
    uint8_t raw[GP_MUX_HEADER_SIZE];
    size_t raw_len;
    gp_err failed; /* sticky: once set every feed returns EV_ERROR */
    char err[256];
} gp__mux_parser;

/* Resets the parser; max_data == 0 means GP_MUX_INITIAL_WINDOW. */
void gp__mux_parser_init(gp__mux_parser *p, uint32_t max_data);

/* Consumes bytes from in[0..len) up to the next event and reports how many
 * in *used (the caller advances by that and calls again while bytes are
 * left). For EV_DATA, (*data, *data_len) is a slice of `in`. Thread safety:
 * one parser per thread. */
gp__mux_event gp__mux_parser_feed(gp__mux_parser *p, const uint8_t *in, size_t len, size_t *used,
                                  const uint8_t **data, size_t *data_len);

/* "Data", "WindowUpdate", "Ping", "GoAway" or "type 9". Static storage
 * except for the unknown case, which writes into buf. */
const char *gp__mux_type_name(uint8_t type, char *buf, size_t cap);

#endif
