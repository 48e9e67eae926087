/* Internal: typed gob <-> nanopb. A gp_gob_type STRUCT whose fields carry
 * nanopb tags (goplugin/gob.h) maps a nanopb message to and from a gob
 * value tree, so the same C structs travel on both wires. Go's rules:
 * zero fields are omitted (the tree encoder does that), fields are matched
 * by exact name on decode, and fields the peer has but we do not are
 * skipped. The kinds that fit each nanopb field are in docs/netrpc.md. */
#ifndef GP_NETRPC_GOB_PB_H
#define GP_NETRPC_GOB_PB_H

#include <goplugin/err.h>
#include <goplugin/gob.h>

#include <pb.h>

#include "transport/wire/netrpc/gob/gob.h"

/* Builds in *out a tree of type t for the nanopb message msg (of desc).
 * Strings and bytes point into msg (borrowed: msg must outlive the tree);
 * only the item arrays are allocated. Free with gp__gob_pb_tree_free.
 * GP_EINVAL with words when t does not fit desc (unknown tag, kind that
 * does not match the nanopb type, unsupported field); GP_ENOMEM. */
gp_err gp__gob_pb_to_tree(const gp_gob_type *t, const pb_msgdesc_t *desc, const void *msg,
                          gp__gob_value *out, char *err, size_t errlen);

/* Frees the item arrays of a tree from gp__gob_pb_to_tree (not the
 * strings it borrows) and zeroes it. NULL is ok. */
void gp__gob_pb_tree_free(gp__gob_value *v);

/* Fills the zeroed nanopb message msg (of desc) from the decoded value v,
 * as type t describes: each of t's fields is looked up in v by name and
 * stored under its tag. Strings and bytes are moved out of v (v stays a
 * valid tree, with those emptied). On GP_OK the caller releases msg with
 * gp_msg_release(desc, msg); on error msg holds nothing to free.
 * GP_EPROTO with words when the peer's value does not fit (a field of
 * another kind, an int out of range, a slice longer than a fixed array, a
 * string with a NUL byte); GP_EINVAL when t does not fit desc; GP_ENOMEM. */
gp_err gp__gob_pb_from_tree(gp__gob_value *v, const gp_gob_type *t, const pb_msgdesc_t *desc,
                            void *msg, char *err, size_t errlen);

#endif
