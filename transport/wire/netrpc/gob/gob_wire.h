/* Internal: gob primitives (encoding/gob's integer, float, string and
 * message-length encodings) on a bounded reader and a capped byte buffer.
 * See docs/netrpc.md. */
#ifndef GP_NETRPC_GOB_WIRE_H
#define GP_NETRPC_GOB_WIRE_H

#include <goplugin/err.h>

#include <stddef.h>
#include <stdint.h>

/* Predefined type ids (never sent as definitions). */
#define GP_GOB_ID_BOOL 1
#define GP_GOB_ID_INT 2
#define GP_GOB_ID_UINT 3
#define GP_GOB_ID_FLOAT 4
#define GP_GOB_ID_BYTES 5
#define GP_GOB_ID_STRING 6
#define GP_GOB_ID_COMPLEX 7
#define GP_GOB_ID_INTERFACE 8
/* Ids of gob's own description types (wireType 16 ... mapType 23). */
#define GP_GOB_ID_WIRETYPE 16
#define GP_GOB_ID_MAPTYPE 23
/* The first id Go's decoder accepts in a definition; our encoder starts at 65. */
#define GP_GOB_FIRST_USER_ID 64
#define GP_GOB_FIRST_ENCODER_ID 65

/* A reader over bytes that cannot run past its end. Every failure writes
 * the first error into err (later ones are dropped: the deepest cause wins)
 * and latches `failed`. */
typedef struct gp__gob_rd {
    const uint8_t *p;
    size_t left;
    int failed;
    char *err;
    size_t errlen;
} gp__gob_rd;

void gp__gob_rd_init(gp__gob_rd *r, const uint8_t *p, size_t n, char *err, size_t errlen);
/* Sets the error (if none yet); returns GP_EPROTO. */
gp_err gp__gob_rd_fail(gp__gob_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
gp_err gp__gob_read_uint(gp__gob_rd *r, uint64_t *v);
gp_err gp__gob_read_int(gp__gob_rd *r, int64_t *v);
gp_err gp__gob_read_float(gp__gob_rd *r, double *v);
/* A length (uint) no larger than the bytes left, then those bytes: *p
 * points into the input. `what` names it in errors. */
gp_err gp__gob_read_bytes(gp__gob_rd *r, const char *what, const uint8_t **p, size_t *n);

/* Float64 <-> the gob unsigned form (IEEE bits, byte-reversed). */
uint64_t gp__gob_float_bits(double f);
double gp__gob_bits_float(uint64_t u);

/* A growable byte buffer with a hard cap (max, 0 = 64 MiB). Any failure
 * latches ok = 0. */
typedef struct gp__gob_buf {
    uint8_t *data;
    size_t len, cap, max;
    int ok;
} gp__gob_buf;

void gp__gob_buf_init(gp__gob_buf *b, size_t max);
void gp__gob_buf_free(gp__gob_buf *b);
void gp__gob_put_bytes(gp__gob_buf *b, const void *p, size_t n);
void gp__gob_put_uint(gp__gob_buf *b, uint64_t v);
void gp__gob_put_int(gp__gob_buf *b, int64_t v);
void gp__gob_put_float(gp__gob_buf *b, double f);
void gp__gob_put_string(gp__gob_buf *b, const void *p, size_t n);

/* Message framing on a byte stream: the first message in in[0..n).
 * GP_OK with *body, *body_len set and *used = prefix + body bytes;
 * GP_OK with *body == NULL when more bytes are needed; GP_EMSGSIZE when
 * the announced length exceeds max_message; GP_EPROTO for a bad prefix
 * or an empty message. */
gp_err gp__gob_frame(const uint8_t *in, size_t n, size_t max_message, const uint8_t **body,
                     size_t *body_len, size_t *used, char *err, size_t errlen);

#endif
