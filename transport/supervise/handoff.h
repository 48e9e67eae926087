/* Internal: the hand-off wire format, pure encode/decode (no I/O).
 *
 * Data pipe, host -> child, all integers unsigned 32-bit big-endian:
 *
 *   "GPH1"           magic, 4 bytes
 *   body_len         bytes of body that follow (<= GP__HANDOFF_MAX_BODY)
 *   body:
 *     count          configuration entries (<= GP_HANDOFF_MAX_ENTRIES)
 *     count times:   key_len (1..GP_HANDOFF_MAX_KEY), key bytes,
 *                    value_len, value bytes
 *     secret_len     (<= GP_HANDOFF_MAX_SECRET), secret bytes
 *
 * Keys and values are text without NUL bytes; keys are unique; the sum of
 * key and value bytes is <= GP_HANDOFF_MAX_CONFIG; the body must be used up
 * exactly. The secret is any bytes. The host closes the pipe after it.
 *
 * Status pipe, child -> host, one message then end of file:
 *
 *   "GPS1"           magic, 4 bytes
 *   kind             1 byte: 'R' ready, 'F' failed
 *   reason_len       0 for 'R'; 0..GP_HANDOFF_MAX_REASON for 'F'
 *   reason bytes     text without NUL
 */
#ifndef GP_SUPERVISE_HANDOFF_H
#define GP_SUPERVISE_HANDOFF_H

#include <goplugin/err.h>
#include <goplugin/handoff.h>

#include <stddef.h>
#include <stdint.h>

#include "transport/base/strbuf.h"

#define GP__HANDOFF_MAGIC "GPH1"
#define GP__HANDOFF_STATUS_MAGIC "GPS1"
#define GP__HANDOFF_HEADER 8
#define GP__HANDOFF_MAX_BODY \
    (4u + 8u * GP_HANDOFF_MAX_ENTRIES + GP_HANDOFF_MAX_CONFIG + 4u + GP_HANDOFF_MAX_SECRET)
#define GP__HANDOFF_STATUS_HEADER 9

typedef struct gp__handoff_entry {
    char *key; /* malloc'd, NUL-terminated */
    char *value;
} gp__handoff_entry;

typedef struct gp__handoff_msg {
    gp__handoff_entry *entries;
    size_t n;
    uint8_t *secret; /* malloc'd (NULL when empty) */
    size_t secret_len;
} gp__handoff_msg;

/* Zero the secret and every string, free, and zero *m. */
void gp__handoff_msg_free(gp__handoff_msg *m);

/* Encode header and body into one malloc'd buffer (*out, *outlen).
 * Errors: GP_EINVAL, GP_EMSGSIZE, GP_ENOMEM (words in err). */
gp_err gp__handoff_encode(const gp__handoff_entry *entries, size_t n, const uint8_t *secret,
                          size_t secret_len, uint8_t **out, size_t *outlen, gp__strbuf *err);

/* Check the 8-byte header and return the body length. GP_EPROTO for a bad
 * magic, GP_EMSGSIZE for an oversize body. */
gp_err gp__handoff_decode_header(const uint8_t *hdr, uint32_t *body_len, gp__strbuf *err);

/* Decode a whole body into *out (caller frees with gp__handoff_msg_free;
 * zeroed on failure). GP_EPROTO (truncated, trailing bytes, NUL bytes,
 * duplicate or empty key), GP_EMSGSIZE (over a limit), GP_ENOMEM. */
gp_err gp__handoff_decode_body(const uint8_t *body, size_t len, gp__handoff_msg *out,
                               gp__strbuf *err);

/* Status message: encode into buf (cap >= GP__HANDOFF_STATUS_HEADER +
 * GP_HANDOFF_MAX_REASON); returns its length. The reason is cut at
 * GP_HANDOFF_MAX_REASON bytes (and at a NUL). */
size_t gp__handoff_status_encode(char kind, const char *reason, uint8_t *buf, size_t cap);

/* Decode a status message from the bytes so far. Returns 0 when more bytes
 * are needed (the prefix is valid), 1 when complete (*kind, reason copied
 * NUL-terminated into reason[GP_HANDOFF_MAX_REASON + 1], *used bytes), or -1
 * with words in err for a garbled message. */
int gp__handoff_status_decode(const uint8_t *buf, size_t len, char *kind, char *reason,
                              size_t *used, gp__strbuf *err);

#endif
