/* yamux frame header codec: see mux_frame.h. */
#include "transport/yamux/mux_frame.h"

#include <stdio.h>
#include <string.h>

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void gp__mux_header_encode(const gp__mux_header *h, uint8_t out[GP_MUX_HEADER_SIZE])
{
    out[0] = h->version;
    out[1] = h->type;
    put_be16(out + 2, h->flags);
    put_be32(out + 4, h->stream_id);
    put_be32(out + 8, h->length);
}

void gp__mux_header_decode(const uint8_t in[GP_MUX_HEADER_SIZE], gp__mux_header *h)
{
    h->version = in[0];
    h->type = in[1];
    h->flags = (uint16_t)(in[2] << 8 | in[3]);
    h->stream_id = get_be32(in + 4);
    h->length = get_be32(in + 8);
}

const char *gp__mux_type_name(uint8_t type, char *buf, size_t cap)
{
    switch (type) {
    case GP_MUX_TYPE_DATA:
        return "Data";
    case GP_MUX_TYPE_WINDOW_UPDATE:
        return "WindowUpdate";
    case GP_MUX_TYPE_PING:
        return "Ping";
    case GP_MUX_TYPE_GO_AWAY:
        return "GoAway";
    default:
        snprintf(buf, cap, "type %u", type);
        return buf;
    }
}

gp_err gp__mux_header_check(const gp__mux_header *h, uint32_t max_data, char *err, size_t errlen)
{
    char tb[16];
    if (h->version != GP_MUX_VERSION) {
        snprintf(err, errlen, "yamux: expected version %d, got %u", GP_MUX_VERSION, h->version);
        return GP_EPROTO;
    }
    if (h->type > GP_MUX_TYPE_GO_AWAY) {
        snprintf(err, errlen,
                 "yamux: expected frame type 0-3 (Data, WindowUpdate, Ping, GoAway), got %u",
                 h->type);
        return GP_EPROTO;
    }
    const char *name = gp__mux_type_name(h->type, tb, sizeof tb);
    int session_level = h->type == GP_MUX_TYPE_PING || h->type == GP_MUX_TYPE_GO_AWAY;
    if (session_level && h->stream_id != GP_MUX_SESSION_ID) {
        snprintf(err, errlen, "yamux: expected %s on stream 0, got stream %u", name, h->stream_id);
        return GP_EPROTO;
    }
    if (!session_level && h->stream_id == GP_MUX_SESSION_ID) {
        snprintf(err, errlen, "yamux: %s frame on stream 0 (the session), expected a stream id",
                 name);
        return GP_EPROTO;
    }
    if (h->type == GP_MUX_TYPE_DATA && h->length > max_data) {
        snprintf(err, errlen,
                 "yamux: Data frame on stream %u of %u bytes exceeds the receive window of %u",
                 h->stream_id, h->length, max_data);
        return GP_EMSGSIZE;
    }
    return GP_OK;
}

void gp__mux_parser_init(gp__mux_parser *p, uint32_t max_data)
{
    memset(p, 0, sizeof *p);
    p->max_data = max_data ? max_data : GP_MUX_INITIAL_WINDOW;
}

gp__mux_event gp__mux_parser_feed(gp__mux_parser *p, const uint8_t *in, size_t len, size_t *used,
                                  const uint8_t **data, size_t *data_len)
{
    *used = 0;
    *data = NULL;
    *data_len = 0;
    if (p->failed)
        return GP_MUX_EV_ERROR;
    if (p->body_left > 0) {
        if (len == 0)
            return GP_MUX_EV_NEED_MORE;
        size_t n = len < p->body_left ? len : p->body_left;
        p->body_left -= (uint32_t)n;
        *used = n;
        *data = in;
        *data_len = n;
        return GP_MUX_EV_DATA;
    }
    size_t want = GP_MUX_HEADER_SIZE - p->raw_len;
    size_t n = len < want ? len : want;
    memcpy(p->raw + p->raw_len, in, n);
    p->raw_len += n;
    *used = n;
    if (p->raw_len < GP_MUX_HEADER_SIZE)
        return GP_MUX_EV_NEED_MORE;
    p->raw_len = 0;
    gp__mux_header_decode(p->raw, &p->hdr);
    gp_err e = gp__mux_header_check(&p->hdr, p->max_data, p->err, sizeof p->err);
    if (e != GP_OK) {
        p->failed = e;
        return GP_MUX_EV_ERROR;
    }
    if (p->hdr.type == GP_MUX_TYPE_DATA)
        p->body_left = p->hdr.length;
    return GP_MUX_EV_HEADER;
}
