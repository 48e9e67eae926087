/* goplugin-c: how one RPC method is described, once, for both wires.
 *
 * Generated code (and hand-written callers) describe each method with a
 * gp_method. The transport picks the encoding: protobuf (nanopb) on the grpc
 * wire, gob on the netrpc wire. Messages are nanopb structs.
 *
 * Message memory: strings are `char *` (nanopb FT_POINTER) and bytes are
 * gp_bytes (see below); both are malloc'd by decoding. A caller frees a
 * decoded response with gp_msg_release(method->resp_pb, resp). A server
 * handler fills its response with malloc'd (or NULL) pointers; the transport
 * releases them after sending.
 */
#ifndef GOPLUGIN_METHOD_H
#define GOPLUGIN_METHOD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pb_msgdesc_s; /* nanopb's message descriptor (pb_msgdesc_t) */
struct gp_gob_type;  /* a gob type descriptor (netrpc wire) */

typedef enum gp_method_kind {
    GP_UNARY = 0,
    GP_SERVER_STREAM = 1,
    GP_CLIENT_STREAM = 2,
    GP_BIDI_STREAM = 3
} gp_method_kind;

typedef struct gp_method {
    const char *grpc_path;             /* "/proto.KV/Get" */
    const char *netrpc_name;           /* "Plugin.Get" */
    const struct pb_msgdesc_s *req_pb; /* e.g. proto_GetRequest_fields */
    const struct pb_msgdesc_s *resp_pb;
    const struct gp_gob_type *req_gob; /* NULL: method not on netrpc */
    const struct gp_gob_type *resp_gob;
    gp_method_kind kind;
} gp_method;

/* A bytes field of any length (nanopb's 16-bit build caps pb_bytes_array_t
 * at 64 KiB, so bytes travel through this callback type instead). `data` is
 * malloc'd when decoded; NULL with len 0 is the empty value. */
typedef struct gp_bytes {
    uint8_t *data;
    size_t len;
} gp_bytes;

/* Free every malloc'd field of a nanopb message (pointer strings, gp_bytes,
 * repeated and nested fields) and zero them. NULL msg is a no-op.
 * Thread safety: any thread; not concurrently on one message. */
void gp_msg_release(const struct pb_msgdesc_s *desc, void *msg);

#ifdef __cplusplus
}
#endif
#endif
