/* The generator without protoc: decoding requests (real ones captured from
 * protoc, and broken ones) and the errors it answers with. */
#include "codegen/protoc-gen-goplugin-c/codegen.h"
#include "transport/testing/gp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS "codegen/protoc-gen-goplugin-c/testdata/corpus/"

static const google_protobuf_compiler_CodeGeneratorResponse_File *find_out(const gp__cg_response *r,
                                                                           const char *name)
{
    for (pb_size_t i = 0; i < r->file_count; i++)
        if (r->file[i].name && strcmp(r->file[i].name, name) == 0)
            return &r->file[i];
    return NULL;
}

GP_TEST(decodes_a_real_request)
{
    size_t len;
    uint8_t *buf = (uint8_t *)gp_test_read_file(CORPUS "wide_request.bin", &len);
    GP_CHECK(buf != NULL);
    if (!buf)
        return;
    gp__cg_request req;
    gp__strbuf err;
    gp__strbuf_init(&err);
    GP_CHECK_ERR(gp__cg_request_decode(buf, len, &req, &err), GP_OK);
    GP_CHECK_INT(req.file_to_generate_count, ==, 1);
    GP_CHECK_STR(req.file_to_generate[0], "codegen/protoc-gen-goplugin-c/testdata/wide.proto");
    /* empty.proto, common.proto, wide.proto: imports come first. */
    GP_CHECK_INT(req.proto_file_count, ==, 3);
    const gp__cg_file *wide = &req.proto_file[req.proto_file_count - 1];
    GP_CHECK_STR(wide->package, "gp.test.wide");
    GP_CHECK_INT(wide->service_count, ==, 2);
    GP_CHECK_STR(wide->service[0].name, "Wider");
    GP_CHECK_STR(wide->service[0].method[0].input_type, ".gp.test.wide.Wide");
    GP_CHECK(wide->service[0].method[4].server_streaming);

    gp__cg_response resp;
    GP_CHECK_ERR(gp__cg_generate(&req, &resp), GP_OK);
    GP_CHECK(resp.error == NULL);
    GP_CHECK_INT(resp.supported_features, ==, 1);
    GP_CHECK_INT(resp.file_count, ==, 2);
    const google_protobuf_compiler_CodeGeneratorResponse_File *h =
        find_out(&resp, "codegen/protoc-gen-goplugin-c/testdata/wide.gp.h");
    GP_CHECK(h != NULL);
    if (h) {
        GP_CHECK_CONTAINS(h->content, "extern const gp_method gp_test_wide_Wider_Echo_method;");
        GP_CHECK_CONTAINS(h->content,
                          "#include \"codegen/protoc-gen-goplugin-c/testdata/wide.pb.h\"");
    }
    gp__cg_response_free(&resp);

    /* The same request asking for options. */
    char *saved = req.parameter;
    req.parameter = "options";
    GP_CHECK_ERR(gp__cg_generate(&req, &resp), GP_OK);
    req.parameter = saved;
    GP_CHECK_INT(resp.file_count, ==, 1);
    const google_protobuf_compiler_CodeGeneratorResponse_File *o =
        find_out(&resp, "codegen/protoc-gen-goplugin-c/testdata/wide.options");
    GP_CHECK(o != NULL);
    if (o) {
        GP_CHECK_CONTAINS(o->content, "gp.test.wide.Wide.Inner.blob  type:FT_CALLBACK");
        GP_CHECK_CONTAINS(o->content, "gp.test.wide.Node.left  type:FT_POINTER");
    }
    gp__cg_response_free(&resp);
    gp__cg_request_free(&req);
    gp__strbuf_free(&err);
    free(buf);
}

/* Every proper prefix of a real request either decodes (a cut between
 * fields) or fails with words; nothing leaks either way (ASan). */
GP_TEST(truncated_requests_fail_cleanly)
{
    size_t len;
    uint8_t *buf = (uint8_t *)gp_test_read_file(CORPUS "wide_request.bin", &len);
    GP_CHECK(buf != NULL);
    if (!buf)
        return;
    int failed = 0;
    for (size_t n = 0; n < len; n++) {
        gp__cg_request req;
        gp__strbuf err;
        gp__strbuf_init(&err);
        gp_err e = gp__cg_request_decode(buf, n, &req, &err);
        if (e) {
            failed++;
            GP_CHECK_ERR(e, GP_EPROTO);
            GP_CHECK_CONTAINS(err.data, "does not decode");
        } else {
            gp__cg_response resp;
            GP_CHECK_ERR(gp__cg_generate(&req, &resp), GP_OK);
            gp__cg_response_free(&resp);
            gp__cg_request_free(&req);
        }
        gp__strbuf_free(&err);
    }
    GP_CHECK_INT(failed, >, (int)(len / 2));
    free(buf);
}

GP_TEST(garbage_is_named)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x0f, 'h',  'i'};
    gp__cg_request req;
    gp__strbuf err;
    gp__strbuf_init(&err);
    GP_CHECK_ERR(gp__cg_request_decode(junk, sizeof junk, &req, &err), GP_EPROTO);
    GP_CHECK_CONTAINS(err.data, "CodeGeneratorRequest does not decode");
    GP_CHECK_CONTAINS(err.data, "expected protoc's request on stdin, got \"\\xff");
    gp__strbuf_free(&err);
}

GP_TEST(oversize_is_refused_before_decoding)
{
    static const uint8_t one = 0;
    gp__cg_request req;
    gp__strbuf err;
    gp__strbuf_init(&err);
    /* The length alone decides; the bytes are never read. */
    GP_CHECK_ERR(gp__cg_request_decode(&one, (size_t)GP_CG_REQUEST_MAX + 1, &req, &err),
                 GP_EMSGSIZE);
    GP_CHECK_CONTAINS(err.data, "over the");
    gp__strbuf_free(&err);
}

/* nanopb recurses per nesting level; a request nesting deeper than any
 * .proto would is refused before it can exhaust the stack. */
GP_TEST(deep_nesting_is_refused)
{
    size_t len;
    uint8_t *buf = (uint8_t *)gp_test_read_file(CORPUS "deep_nesting.bin", &len);
    GP_CHECK(buf != NULL);
    if (!buf)
        return;
    gp__cg_request req;
    gp__strbuf err;
    gp__strbuf_init(&err);
    GP_CHECK_ERR(gp__cg_request_decode(buf, len, &req, &err), GP_EPROTO);
    GP_CHECK_CONTAINS(err.data, "nests messages more than 64 deep");
    gp__strbuf_free(&err);
    free(buf);
}

/* A request built in memory: one file with one service and method. */
typedef struct fixture {
    gp__cg_request req;
    gp__cg_file file;
    google_protobuf_ServiceDescriptorProto svc;
    google_protobuf_MethodDescriptorProto method;
    google_protobuf_DescriptorProto msgs[2];        /* Req, Resp */
    google_protobuf_FieldDescriptorProto fields[3]; /* Req's */
    char *to_generate[1];
} fixture;

static void fixture_init(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->method.name = "Get";
    fx->method.input_type = ".pkg.Req";
    fx->method.output_type = ".pkg.Resp";
    fx->svc.name = "Svc";
    fx->svc.method_count = 1;
    fx->svc.method = &fx->method;
    fx->file.name = "a/b.proto";
    fx->file.package = "pkg";
    fx->file.service_count = 1;
    fx->file.service = &fx->svc;
    /* Req {string user_id = 1; int32 _x = 2; uint64 string = 3;} and Resp {}: the
     * gob field names protoc-gen-go would give them. */
    static const char *const names[] = {"user_id", "_x", "string"};
    static const google_protobuf_FieldDescriptorProto_Type types[] = {
        google_protobuf_FieldDescriptorProto_Type_TYPE_STRING,
        google_protobuf_FieldDescriptorProto_Type_TYPE_INT32,
        google_protobuf_FieldDescriptorProto_Type_TYPE_UINT64};
    for (int i = 0; i < 3; i++) {
        fx->fields[i].name = (char *)names[i];
        fx->fields[i].has_number = true;
        fx->fields[i].number = i + 1;
        fx->fields[i].has_type = true;
        fx->fields[i].type = types[i];
        fx->fields[i].has_label = true;
        fx->fields[i].label = google_protobuf_FieldDescriptorProto_Label_LABEL_OPTIONAL;
    }
    fx->msgs[0].name = "Req";
    fx->msgs[0].field_count = 3;
    fx->msgs[0].field = fx->fields;
    fx->msgs[1].name = "Resp";
    fx->file.message_type_count = 2;
    fx->file.message_type = fx->msgs;
    fx->to_generate[0] = "a/b.proto";
    fx->req.file_to_generate_count = 1;
    fx->req.file_to_generate = fx->to_generate;
    fx->req.proto_file_count = 1;
    fx->req.proto_file = &fx->file;
}

/* Generate and expect resp.error to contain `words` (NULL: no error). */
static void expect_error(const fixture *fx, const char *words)
{
    gp__cg_response resp;
    GP_CHECK_ERR(gp__cg_generate(&fx->req, &resp), GP_OK);
    if (words) {
        GP_CHECK_CONTAINS(resp.error, words);
        GP_CHECK_INT(resp.file_count, ==, 0);
    } else {
        GP_CHECK(resp.error == NULL);
        GP_CHECK_INT(resp.file_count, ==, 2);
    }
    gp__cg_response_free(&resp);
}

GP_TEST(gob_names_are_protoc_gen_go_names)
{
    fixture fx;
    fixture_init(&fx);
    gp__cg_response resp;
    GP_CHECK_ERR(gp__cg_generate(&fx.req, &resp), GP_OK);
    GP_CHECK(resp.error == NULL);
    GP_CHECK_INT(resp.file_count, ==, 2);
    if (resp.file_count == 2) {
        const char *c = resp.file[1].content;
        GP_CHECK_CONTAINS(c, "{\"UserId\", &gp_gob_string_type, 1}");
        GP_CHECK_CONTAINS(c, "{\"XX\", &gp_gob_int_type, 2}");
        /* "String" is a generated method's name: Go appends '_'. */
        GP_CHECK_CONTAINS(c, "{\"String_\", &gp_gob_uint_type, 3}");
        GP_CHECK_CONTAINS(c, ".req_gob = &gob_pkg_Req,");
        GP_CHECK_CONTAINS(c, ".resp_gob = &gob_pkg_Resp,");
    }
    gp__cg_response_free(&resp);
}

GP_TEST(bad_requests_are_answered_in_words)
{
    fixture fx;
    fixture_init(&fx);
    expect_error(&fx, NULL);

    fx.method.output_type = ".pkg.Missing";
    expect_error(&fx, "message type \".pkg.Missing\" is not in the request's files");
    fx.method.output_type = ".pkg.Resp";
    fx.fields[1].name = "a b";
    expect_error(&fx, "has a name that is not an identifier: \"a b\"");
    fx.fields[1].name = "_x";
    fx.fields[1].number = 0;
    expect_error(&fx, "field pkg.Req._x has no field number");
    fx.fields[1].number = 2;
    fx.fields[2].type = google_protobuf_FieldDescriptorProto_Type_TYPE_MESSAGE;
    expect_error(&fx, "a message field names no message type");
    fx.fields[2].type_name = ".pkg.Nowhere";
    expect_error(&fx, "message type \".pkg.Nowhere\" is not in the request's files");
    fx.fields[2].type_name = NULL;
    fx.fields[2].type = google_protobuf_FieldDescriptorProto_Type_TYPE_UINT64;

    fx.req.parameter = "lite";
    expect_error(&fx, "unknown parameter \"lite\"");
    fx.req.parameter = NULL;

    fx.to_generate[0] = "other.proto";
    expect_error(&fx, "asks for \"other.proto\" but carries no descriptor for it");
    fx.to_generate[0] = "a/b.proto";

    fx.file.name = fx.to_generate[0] = "a/b\".proto";
    expect_error(&fx, "has characters other than");
    fx.file.name = fx.to_generate[0] = "a/b.txt";
    expect_error(&fx, "expected a file name ending in .proto");
    fx.file.name = fx.to_generate[0] = "a/b.proto";

    fx.method.input_type = "Req";
    expect_error(&fx, "expected a fully qualified input type name");
    fx.method.input_type = ".pkg.Req";
    fx.method.output_type = NULL;
    expect_error(&fx, "fully qualified output type name like \".pkg.Message\", got \"\"");
    fx.method.output_type = ".pkg.Resp";

    fx.method.name = "9lives";
    expect_error(&fx, "method name \"9lives\" is not an identifier");
    fx.method.name = "switch";
    expect_error(&fx, "Svc.switch is named like a C keyword");
    fx.method.name = "Get";

    fx.svc.name = NULL;
    expect_error(&fx, "service name \"\" is not an identifier");
    fx.svc.name = "Svc";

    fx.file.package = "pkg..x";
    expect_error(&fx, "package \"pkg..x\" is not a dotted identifier");
    fx.file.package = "pkg";

    fx.req.file_to_generate_count = 0;
    expect_error(&fx, "names no file to generate");
}

GP_TEST(names_follow_nanopb)
{
    gp__strbuf b;
    gp__strbuf_init(&b);
    gp__cg_append_c_name(&b, ".a.b.Outer.Inner");
    GP_CHECK_STR(b.data, "a_b_Outer_Inner");
    gp__strbuf_reset(&b);
    gp__cg_append_guard(&b, "x/y-z.gp.h");
    GP_CHECK_STR(b.data, "X_Y_Z_GP_H");
    gp__strbuf_free(&b);
    GP_CHECK(gp__cg_is_ident("a.b_c.D9", 1));
    GP_CHECK(!gp__cg_is_ident("a.b", 0));
    GP_CHECK(!gp__cg_is_ident("a.", 1));
    GP_CHECK(!gp__cg_is_ident(".a", 1));
    GP_CHECK(!gp__cg_is_ident("", 0));
    GP_CHECK(gp__cg_is_c_keyword("_Bool"));
    GP_CHECK(!gp__cg_is_c_keyword("Get"));
}

int main(void)
{
    GP_RUN(decodes_a_real_request);
    GP_RUN(truncated_requests_fail_cleanly);
    GP_RUN(garbage_is_named);
    GP_RUN(oversize_is_refused_before_decoding);
    GP_RUN(deep_nesting_is_refused);
    GP_RUN(gob_names_are_protoc_gen_go_names);
    GP_RUN(bad_requests_are_answered_in_words);
    GP_RUN(names_follow_nanopb);
    return gp_test_done();
}
