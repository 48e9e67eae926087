/* Internal: nanopb messages in goplugin-c's memory style (goplugin/method.h):
 * strings are FT_POINTER `char *`, bytes are FT_CALLBACK gp_bytes handled by
 * gp__pb_field_callback, so values of any length work whatever nanopb's
 * pb_size_t (ours is 32-bit). gp_msg_release (public) frees both kinds.
 *
 * An .options file selects this style with:
 *   *                 include:"goplugin/method.h" callback_function:"gp__pb_field_callback"
 *   pkg.*.some_string type:FT_POINTER
 *   pkg.*.some_bytes  type:FT_CALLBACK callback_datatype:"gp_bytes"
 */
#ifndef GP_MSG_MSG_H
#define GP_MSG_MSG_H

#include <goplugin/err.h>
#include <goplugin/method.h>

#include <pb.h>
#include <pb_common.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include <stddef.h>
#include <stdint.h>

/* nanopb's per-message field callback for gp_bytes fields (named by the
 * generated code). Decoding allocates exactly the field's length, which the
 * enclosing stream has already checked is present; encoding skips the empty
 * value as proto3 does. */
bool gp__pb_field_callback(pb_istream_t *istream, pb_ostream_t *ostream, const pb_field_t *field);

/* Decode a message from `in` into `msg`, which must be zeroed. On failure
 * `msg` holds nothing to free and err says what broke ("decode <what>:
 * parent stream too short"): GP_EPROTO, or GP_EMSGSIZE when the message
 * would make us allocate more than gp__pb_decode_budget(its length)
 * (8x + 16 MiB: <gp_pb_alloc.h>, bazel/nanopb_alloc.h). `what` names the message for the error. */
gp_err gp__msg_decode(const pb_msgdesc_t *desc, pb_istream_t *in, void *msg, const char *what,
                      char *err, size_t errlen);

/* Same, from a buffer. */
gp_err gp__msg_decode_buf(const pb_msgdesc_t *desc, const uint8_t *buf, size_t len, void *msg,
                          const char *what, char *err, size_t errlen);

/* The encoded size of `msg` (runs the field callbacks once). */
gp_err gp__msg_size(const pb_msgdesc_t *desc, const void *msg, size_t *size, const char *what,
                    char *err, size_t errlen);

/* Encode `msg` into buf[cap]; *len (may be NULL) gets the bytes written. */
gp_err gp__msg_encode_buf(const pb_msgdesc_t *desc, const void *msg, uint8_t *buf, size_t cap,
                          size_t *len, const char *what, char *err, size_t errlen);

/* proto3 `string` fields must hold UTF-8, as protobuf-go insists when it
 * marshals and unmarshals (a Go peer refuses the whole message with
 * "string field contains invalid UTF-8", gRPC code INTERNAL). Walks every
 * string of `msg`: singular, repeated, oneof members, inside submessages at
 * any depth, map keys and values (nanopb maps are repeated entry messages).
 * Bytes fields are not strings and are not looked at; nor are FT_CALLBACK
 * strings (opaque), nor what follows a NUL inside a pointer string (nanopb
 * keeps them NUL-terminated). nanopb descriptors carry no names, so the
 * field is named by number from the top ("3.1": field 1 of the message in
 * field 3). Every message this library puts on the gRPC wire is proto3 (go-
 * plugin's and generated ones); netrpc carries Go strings as gob, which are
 * any bytes in Go, so that wire does not check (a Go netrpc peer sends and
 * accepts them). GP_EPROTO: "invalid UTF-8 in string field 1 of
 * /proto.KV/Put (at byte 3); proto3 strings must be UTF-8". */
gp_err gp__msg_check_utf8(const pb_msgdesc_t *desc, const void *msg, const char *what, char *err,
                          size_t errlen);

/* The offset of the first byte of s[0..n) that is not part of valid UTF-8
 * (Go's utf8.Valid rules: no overlongs, surrogates, or past U+10FFFF), or n
 * when all of it is. */
size_t gp__utf8_invalid_at(const uint8_t *s, size_t n);

/* An upper bound (rounded to 8) on sizeof the struct `desc` describes,
 * from its field offsets, for callers that only have the descriptor (a
 * server allocating a handler's request and response). 0 when the message
 * is too large to measure (over 64 KiB of struct). */
size_t gp__msg_struct_size(const pb_msgdesc_t *desc);

#endif
