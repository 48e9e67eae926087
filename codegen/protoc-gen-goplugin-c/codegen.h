/* Internal to protoc-gen-goplugin-c: decoding protoc's request and writing
 * the files of the response. Everything here runs once per protoc call, on
 * input protoc wrote; a request that does not decode is still reported in
 * words, never trusted. */
#ifndef GP_CODEGEN_CODEGEN_H
#define GP_CODEGEN_CODEGEN_H

#include <goplugin/err.h>

#include <stddef.h>
#include <stdint.h>

#include <pb_decode.h>

#include "codegen/protoc-gen-goplugin-c/plugin.pb.h"
#include "transport/base/strbuf.h"

typedef google_protobuf_compiler_CodeGeneratorRequest gp__cg_request;
typedef google_protobuf_compiler_CodeGeneratorResponse gp__cg_response;
typedef google_protobuf_FileDescriptorProto gp__cg_file;

/* The largest request read from stdin (protoc's are kilobytes). */
#define GP_CG_REQUEST_MAX (64u << 20)
/* How deep messages may nest inside each other in a request. */
#define GP_CG_NESTING_MAX 64
/* Messages per file the .options writer accepts (its recursion check is
 * quadratic). */
#define GP_CG_OPTIONS_MESSAGES_MAX 4096

/* Decode `buf` into `*req` (zeroed by this call). On error `*req` holds
 * nothing to free and `err` says what was expected and what came. On GP_OK
 * the caller frees with gp__cg_request_free. Errors: GP_EPROTO, GP_EMSGSIZE. */
gp_err gp__cg_request_decode(const uint8_t *buf, size_t len, gp__cg_request *req, gp__strbuf *err);
void gp__cg_request_free(gp__cg_request *req);

/* Build the response for `req`: the .gp.h/.gp.c pair (no parameter) or the
 * nanopb .options file (parameter "options") for each file to generate.
 * Problems with the request go into resp->error, which protoc prints; the
 * return value is GP_ENOMEM only. The caller frees resp with
 * gp__cg_response_free. */
gp_err gp__cg_generate(const gp__cg_request *req, gp__cg_response *resp);
void gp__cg_response_free(gp__cg_response *resp);

/* Emitters for one file. On error `err` has the reason (GP_EINVAL). */
gp_err gp__cg_emit_header(const gp__cg_request *req, const gp__cg_file *f, gp__strbuf *out,
                          gp__strbuf *err);
gp_err gp__cg_emit_source(const gp__cg_request *req, const gp__cg_file *f, gp__strbuf *out,
                          gp__strbuf *err);
gp_err gp__cg_emit_options(const gp__cg_request *req, const gp__cg_file *f, gp__strbuf *out,
                           gp__strbuf *err);
/* The static gob types (goplugin/gob.h) of every message f's RPCs reach,
 * named gob_<nanopb C name>; `req` supplies the imported files. */
gp_err gp__cg_emit_gob(const gp__cg_request *req, const gp__cg_file *f, gp__strbuf *out,
                       gp__strbuf *err);

/* Append head(params...)tail, breaking lines before 90 columns with the
 * parameters aligned after the parenthesis (emit_service.c). */
void gp__cg_wrap_call(gp__strbuf *b, const char *head, const char *const *params, size_t n,
                      const char *tail);

/* Streaming RPCs (emit_stream.c), for service prefix `n`: the typed
 * client and handler functions (declarations, or definitions when
 * `define`), the vtable member, and the static gp_stream_handler
 * trampoline n_M_stream. */
void gp__cg_stream_client(gp__strbuf *b, const char *n,
                          const google_protobuf_MethodDescriptorProto *m, int define);
void gp__cg_stream_entry(gp__strbuf *b, const google_protobuf_MethodDescriptorProto *m);
void gp__cg_stream_trampoline(gp__strbuf *b, const char *n,
                              const google_protobuf_MethodDescriptorProto *m);

/* Names (names.c). */

/* "path/x.proto" -> "path/x" + suffix; GP_EINVAL unless the path ends in
 * .proto and uses only [A-Za-z0-9_./-]. */
gp_err gp__cg_output_name(const char *proto, const char *suffix, gp__strbuf *out, gp__strbuf *err);
/* True for [A-Za-z_][A-Za-z0-9_]* ; with dots allowed between such parts
 * when `dotted`. */
int gp__cg_is_ident(const char *s, int dotted);
/* True when `s` is a C11 keyword (a method named so cannot be a member). */
int gp__cg_is_c_keyword(const char *s);
/* Append `dotted` with '.' turned into '_' (nanopb's C names). A leading dot
 * (a fully qualified type name) is dropped. */
void gp__cg_append_c_name(gp__strbuf *b, const char *dotted);
/* Append the include guard for `path`: upper case, non-alnum -> '_'. */
void gp__cg_append_guard(gp__strbuf *b, const char *path);

#endif
