/* Internal: the gob values net/rpc and go-plugin exchange, typed: the
 * request and response headers and the singleton bodies of Control and
 * Dispenser (spec §2.4, §2.6). */
#ifndef GP_NETRPC_GOB_RPC_H
#define GP_NETRPC_GOB_RPC_H

#include "transport/wire/netrpc/gob/gob.h"

/* rpc.Request{ServiceMethod string; Seq uint64} */
extern const gp_gob_type gp__gob_rpc_request_type;
/* rpc.Response{ServiceMethod string; Seq uint64; Error string} */
extern const gp_gob_type gp__gob_rpc_response_type;

/* Each appends (type definitions as needed and) one value message to out.
 * Strings are borrowed. Errors as gp__gob_encode. */
gp_err gp__gob_put_request(gp__gob_encoder *e, gp__gob_buf *out, const char *method, uint64_t seq,
                           char *err, size_t errlen);
gp_err gp__gob_put_response(gp__gob_encoder *e, gp__gob_buf *out, const char *method, uint64_t seq,
                            const char *error, char *err, size_t errlen);
gp_err gp__gob_put_bool_value(gp__gob_encoder *e, gp__gob_buf *out, int b, char *err,
                              size_t errlen);
gp_err gp__gob_put_string_value(gp__gob_encoder *e, gp__gob_buf *out, const char *s, char *err,
                                size_t errlen);
gp_err gp__gob_put_uint_value(gp__gob_encoder *e, gp__gob_buf *out, uint64_t u, char *err,
                              size_t errlen);
/* struct{}{}: Go's reply for Ping/Quit and the body of an error reply. */
gp_err gp__gob_put_empty_struct(gp__gob_encoder *e, gp__gob_buf *out, char *err, size_t errlen);

/* Read decoded headers, matching fields by name as Go does (absent fields
 * are zero; a field of the wrong kind is GP_EPROTO with words). The
 * strings point into v. */
gp_err gp__gob_get_request(const gp__gob_value *v, const char **method, uint64_t *seq, char *err,
                           size_t errlen);
gp_err gp__gob_get_response(const gp__gob_value *v, const char **method, uint64_t *seq,
                            const char **error, char *err, size_t errlen);
gp_err gp__gob_get_bool(const gp__gob_value *v, int *b, char *err, size_t errlen);
gp_err gp__gob_get_string(const gp__gob_value *v, const char **s, char *err, size_t errlen);
gp_err gp__gob_get_uint(const gp__gob_value *v, uint64_t *u, char *err, size_t errlen);

#endif
