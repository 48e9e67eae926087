/* Internal: a gob codec (Go's encoding/gob) for net/rpc.
 *
 * Types describe Go types structurally (gp_gob_type); values are trees
 * (gp__gob_value) that point at their type. A decoder is one gob stream's
 * receiving side: it keeps the type definitions the peer sent and turns
 * value messages into trees. An encoder is one gob stream's sending side:
 * it defines each type once (ids from 65) and writes value messages.
 * See docs/netrpc.md for the wire format and the limits. */
#ifndef GP_NETRPC_GOB_H
#define GP_NETRPC_GOB_H

#include <goplugin/err.h>
#include <goplugin/gob.h>

#include <stddef.h>
#include <stdint.h>

#include "transport/wire/netrpc/gob/gob_wire.h"

typedef struct gp__gob_value gp__gob_value;
struct gp__gob_value {
    const gp_gob_type *type; /* NULL only in a zeroed, unset value */
    union {
        int b;
        int64_t i;
        uint64_t u;
        double f;
        double c[2]; /* real, imaginary */
        /* BYTES, STRING, OPAQUE. Decoded strings get a NUL after len. */
        struct {
            uint8_t *data;
            size_t len;
        } bytes;
        /* STRUCT: nfields items in field order (items NULL: all zero);
         * SLICE, ARRAY: len items; MAP: 2*len items, key then value. */
        struct {
            gp__gob_value *items;
            size_t len;
        } list;
        /* INTERFACE: name NULL or "" means a nil interface. */
        struct {
            char *name;
            gp__gob_value *value;
        } iface;
    } u;
};

/* Frees what a decoded value owns (not the value itself); NULL is ok. */
void gp__gob_value_clear(gp__gob_value *v);
/* Clears and frees a heap value from the decoder; NULL is ok. */
void gp__gob_value_free(gp__gob_value *v);

/* Deep-copies src into *dst (which is overwritten, not cleared): strings,
 * items and interface values are new heap memory; types are shared. Free
 * with gp__gob_value_clear. GP_ENOMEM leaves *dst cleared. */
gp_err gp__gob_value_copy(gp__gob_value *dst, const gp__gob_value *src);

/* A struct value's field by exact name; NULL if the type has no such field
 * or the value is not a struct. Items NULL (all zero) also gives NULL. */
const gp__gob_value *gp__gob_field(const gp__gob_value *v, const char *name);

typedef struct gp__gob_limits {
    size_t max_message; /* one message's bytes; 0: 64 MiB */
    int max_depth;      /* nesting of values and types; 0: 64 */
    size_t max_types;   /* type definitions per stream; 0: 4096 */
    size_t max_nodes;   /* value nodes one message may decode into (each
                           ~40 bytes; zero struct fields count too); 0: 1M */
} gp__gob_limits;

/* ---- decoder ---- */

typedef struct gp__gob_decoder gp__gob_decoder;

/* lim may be NULL. Caller owns *out; free with gp__gob_decoder_free. */
gp_err gp__gob_decoder_new(const gp__gob_limits *lim, gp__gob_decoder **out);
/* Frees the decoder and its types: values decoded by it must be freed
 * first (they point at its types). NULL is ok. */
void gp__gob_decoder_free(gp__gob_decoder *d);
size_t gp__gob_decoder_max_message(const gp__gob_decoder *d);

/* One message body (its length prefix already removed, see gp__gob_frame).
 * A type definition is absorbed: GP_OK and *out == NULL. A value: GP_OK and
 * *out is a new tree; caller owns it, free with gp__gob_value_free.
 * GP_EPROTO with words in err for anything malformed: unknown type ids,
 * truncation, extra bytes, depth or limits exceeded; the decoder is then
 * unusable (a gob stream cannot resynchronise). */
gp_err gp__gob_decode_message(gp__gob_decoder *d, const uint8_t *msg, size_t len,
                              gp__gob_value **out, char *err, size_t errlen);

/* ---- encoder ---- */

typedef struct gp__gob_encoder gp__gob_encoder;

gp_err gp__gob_encoder_new(gp__gob_encoder **out);
void gp__gob_encoder_free(gp__gob_encoder *e);
/* The id the next new type gets (>= 64; default 65). Go numbers types per
 * process, so a Go peer's ids start anywhere: tests use this to reproduce
 * captured bytes exactly. */
void gp__gob_encoder_set_next_id(gp__gob_encoder *e, int64_t id);

/* Appends to `out` a definition message for every type of `v` not yet
 * sent on this stream, then the value message. `v` is borrowed; its types
 * are remembered by address, so they must stay alive and unchanged as
 * long as the encoder. On error nothing is appended and no type is
 * recorded as sent. GP_EINVAL (malformed tree), GP_EMSGSIZE (out->max). */
gp_err gp__gob_encode(gp__gob_encoder *e, const gp__gob_value *v, gp__gob_buf *out, char *err,
                      size_t errlen);

#endif
