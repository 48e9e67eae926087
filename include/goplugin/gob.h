/* goplugin-c: gob type descriptors (the netrpc wire's encoding).
 *
 * A gp_method names a gob type for its request and response (req_gob,
 * resp_gob). The transport encodes the nanopb struct as that gob type and
 * decodes into it, so one implementation serves both wires. A struct's
 * fields carry the Go field name (matched exactly, as Go's decoder does)
 * and the nanopb tag of the field that holds the value:
 *
 *   static const gp_gob_field get_request_fields[] = {
 *       {"Key", &gp_gob_string_type, 1}};          // proto: string key = 1
 *   const gp_gob_type kv_get_request_gob = {
 *       .kind = GP_GOB_STRUCT, .name = "GetRequest",
 *       .fields = get_request_fields, .nfields = 1};
 *
 * Which gob kinds fit which nanopb fields (docs/netrpc.md has the table):
 * STRING ~ char* or char[N]; BYTES ~ gp_bytes or pb_bytes_array; INT ~
 * int32/int64/sint/sfixed/enum; UINT ~ uint32/uint64/fixed; FLOAT ~
 * float/double; BOOL ~ bool; STRUCT ~ a submessage (its own fields and
 * tags); SLICE ~ a repeated field of any of these. Descriptors are
 * static: the encoder remembers them by address, once per stream.
 */
#ifndef GOPLUGIN_GOB_H
#define GOPLUGIN_GOB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds 1-8 are gob's predefined types and equal their type ids. */
typedef enum gp_gob_kind {
    GP_GOB_BOOL = 1,
    GP_GOB_INT = 2,
    GP_GOB_UINT = 3,
    GP_GOB_FLOAT = 4,
    GP_GOB_BYTES = 5,
    GP_GOB_STRING = 6,
    GP_GOB_COMPLEX = 7,
    GP_GOB_INTERFACE = 8,
    GP_GOB_STRUCT = 9,
    GP_GOB_SLICE = 10,
    GP_GOB_ARRAY = 11,
    GP_GOB_MAP = 12,
    GP_GOB_OPAQUE = 13 /* GobEncoder / BinaryMarshaler / TextMarshaler: bytes */
} gp_gob_kind;

typedef struct gp_gob_type gp_gob_type;

typedef struct gp_gob_field {
    const char *name; /* Go's field name, e.g. "Key" */
    const gp_gob_type *type;
    uint32_t tag; /* nanopb tag of the C field; 0: none (dynamic use) */
} gp_gob_field;

struct gp_gob_type {
    gp_gob_kind kind;
    const char *name;           /* Go's type name; informational, may be NULL */
    const gp_gob_type *elem;    /* SLICE, ARRAY, MAP (the value) */
    const gp_gob_type *key;     /* MAP */
    uint64_t len;               /* ARRAY */
    const gp_gob_field *fields; /* STRUCT, in Go's field order */
    size_t nfields;
};

/* The predefined types. Static storage, read-only: any thread. */
extern const gp_gob_type gp_gob_bool_type, gp_gob_int_type, gp_gob_uint_type, gp_gob_float_type,
    gp_gob_bytes_type, gp_gob_string_type, gp_gob_complex_type, gp_gob_interface_type;
/* struct{} (Go's anonymous empty struct). */
extern const gp_gob_type gp_gob_empty_struct_type;

#ifdef __cplusplus
}
#endif
#endif
