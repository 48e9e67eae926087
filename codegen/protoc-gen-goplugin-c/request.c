/* Decoding protoc's CodeGeneratorRequest with nanopb.
 *
 * nanopb decodes nested messages by recursion and has no depth limit, so a
 * request of a few hundred KiB of nested DescriptorProto headers could
 * overflow the stack. A cheap pass over the wire format first bounds the
 * nesting along the only recursive path the decoder follows
 * (request.proto_file -> file.message_type -> message.nested_type...). */
#include "codegen/protoc-gen-goplugin-c/codegen.h"

#include <pb_decode.h>
#include <string.h>

enum level { LVL_REQUEST, LVL_FILE, LVL_MESSAGE };

/* The field number that leads one level down, per level. */
static uint32_t down_field(enum level lv)
{
    switch (lv) {
    case LVL_REQUEST:
        return 15; /* proto_file */
    case LVL_FILE:
        return 4; /* message_type */
    default:
        return 3; /* nested_type */
    }
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p == end)
            return 0;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

/* 0: fine as far as nesting goes (malformed wire data is left for nanopb
 * to name); -1: deeper than GP_CG_NESTING_MAX. */
static int check_nesting(const uint8_t *p, const uint8_t *end, enum level lv, int depth)
{
    if (depth > GP_CG_NESTING_MAX)
        return -1;
    while (p < end) {
        uint64_t key, n;
        if (!read_varint(&p, end, &key))
            return 0;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &n))
                return 0;
            break;
        case 1:
            if (end - p < 8)
                return 0;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return 0;
            p += 4;
            break;
        case 2:
            if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p))
                return 0;
            if ((key >> 3) == down_field(lv)) {
                enum level next = lv == LVL_REQUEST ? LVL_FILE : LVL_MESSAGE;
                if (check_nesting(p, p + n, next, depth + 1) < 0)
                    return -1;
            }
            p += n;
            break;
        default:
            return 0; /* groups and garbage: nanopb says what is wrong */
        }
    }
    return 0;
}

gp_err gp__cg_request_decode(const uint8_t *buf, size_t len, gp__cg_request *req, gp__strbuf *err)
{
    memset(req, 0, sizeof *req);
    if (len > GP_CG_REQUEST_MAX) {
        gp__strbuf_printf(err, "CodeGeneratorRequest of %zu bytes is over the %u byte limit", len,
                          GP_CG_REQUEST_MAX);
        return GP_EMSGSIZE;
    }
    if (check_nesting(buf, buf + len, LVL_REQUEST, 0) < 0) {
        gp__strbuf_printf(err,
                          "CodeGeneratorRequest nests messages more than %d deep; expected a "
                          "request written by protoc",
                          GP_CG_NESTING_MAX);
        return GP_EPROTO;
    }
    pb_istream_t in = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&in, google_protobuf_compiler_CodeGeneratorRequest_fields, req)) {
        gp__strbuf_printf(err,
                          "CodeGeneratorRequest does not decode (%s) at byte %zu of %zu; "
                          "expected protoc's request on stdin, got ",
                          PB_GET_ERROR(&in), len - in.bytes_left, len);
        gp__strbuf_quote(err, (const char *)buf, len, 32);
        pb_release(google_protobuf_compiler_CodeGeneratorRequest_fields, req);
        memset(req, 0, sizeof *req);
        return GP_EPROTO;
    }
    return GP_OK;
}

void gp__cg_request_free(gp__cg_request *req)
{
    pb_release(google_protobuf_compiler_CodeGeneratorRequest_fields, req);
    memset(req, 0, sizeof *req);
}
