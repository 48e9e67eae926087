/* One protoc call: the files asked for, or an error in words. */
#include "codegen/protoc-gen-goplugin-c/codegen.h"

#include <stdlib.h>
#include <string.h>

typedef google_protobuf_compiler_CodeGeneratorResponse_File out_file;

/* protoc's FEATURE_PROTO3_OPTIONAL: nanopb generates proto3 optional fields. */
#define FEATURE_PROTO3_OPTIONAL 1u

typedef gp_err (*emitter)(const gp__cg_request *req, const gp__cg_file *f, gp__strbuf *out,
                          gp__strbuf *err);

static const gp__cg_file *find_file(const gp__cg_request *req, const char *name)
{
    for (pb_size_t i = 0; i < req->proto_file_count; i++)
        if (req->proto_file[i].name && strcmp(req->proto_file[i].name, name) == 0)
            return &req->proto_file[i];
    return NULL;
}

/* Append a file to resp; takes `content` (a gp__strbuf's data). */
static gp_err add_file(gp__cg_response *resp, size_t cap, gp__strbuf *name, gp__strbuf *content)
{
    if (!name->ok || !content->ok || !name->data || !content->data)
        return GP_ENOMEM;
    if (resp->file_count >= cap)
        return GP_ENOMEM;
    out_file *o = &resp->file[resp->file_count++];
    o->name = name->data;
    o->content = content->data;
    gp__strbuf_init(name); /* ownership moved to resp */
    gp__strbuf_init(content);
    return GP_OK;
}

static gp_err set_error(gp__cg_response *resp, gp__strbuf *err)
{
    if (!err->ok || !err->data)
        return GP_ENOMEM;
    resp->error = err->data;
    gp__strbuf_init(err);
    return GP_OK;
}

gp_err gp__cg_generate(const gp__cg_request *req, gp__cg_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->has_supported_features = true;
    resp->supported_features = FEATURE_PROTO3_OPTIONAL;

    gp__strbuf err;
    gp__strbuf_init(&err);
    const char *param = req->parameter ? req->parameter : "";
    int options_mode = 0;
    if (strcmp(param, "options") == 0) {
        options_mode = 1;
    } else if (*param) {
        gp__strbuf_append(&err, "protoc-gen-goplugin-c: unknown parameter ");
        gp__strbuf_quote(&err, param, strlen(param), 80);
        gp__strbuf_append(&err, "; expected none (x.gp.h and x.gp.c) or \"options\" "
                                "(nanopb x.options)");
        return set_error(resp, &err);
    }
    if (req->file_to_generate_count == 0) {
        gp__strbuf_append(&err, "protoc-gen-goplugin-c: the request names no file to generate");
        return set_error(resp, &err);
    }
    size_t per = options_mode ? 1 : 2;
    size_t cap = (size_t)req->file_to_generate_count * per;
    if (cap > (pb_size_t)-1) {
        gp__strbuf_printf(&err,
                          "protoc-gen-goplugin-c: %u files to generate is more than this "
                          "build can answer at once",
                          (unsigned)req->file_to_generate_count);
        return set_error(resp, &err);
    }
    resp->file = calloc(cap, sizeof *resp->file);
    if (!resp->file)
        return GP_ENOMEM;

    gp_err e = GP_OK;
    for (pb_size_t i = 0; i < req->file_to_generate_count && !e; i++) {
        const char *want = req->file_to_generate[i] ? req->file_to_generate[i] : "";
        const gp__cg_file *f = find_file(req, want);
        if (!f) {
            gp__strbuf_append(&err, "protoc-gen-goplugin-c: the request asks for ");
            gp__strbuf_quote(&err, want, strlen(want), 80);
            gp__strbuf_append(&err, " but carries no descriptor for it");
            e = GP_EINVAL;
            break;
        }
        static const char *const gp_suffix[] = {".gp.h", ".gp.c"};
        static const emitter gp_emit[] = {gp__cg_emit_header, gp__cg_emit_source};
        static const char *const opt_suffix[] = {".options"};
        static const emitter opt_emit[] = {gp__cg_emit_options};
        for (size_t k = 0; k < per && !e; k++) {
            gp__strbuf name, content;
            gp__strbuf_init(&name);
            gp__strbuf_init(&content);
            e = gp__cg_output_name(want, options_mode ? opt_suffix[k] : gp_suffix[k], &name, &err);
            if (!e)
                e = (options_mode ? opt_emit[k] : gp_emit[k])(req, f, &content, &err);
            if (!e)
                e = add_file(resp, cap, &name, &content);
            gp__strbuf_free(&name);
            gp__strbuf_free(&content);
        }
    }
    if (e == GP_ENOMEM) {
        gp__strbuf_free(&err);
        return GP_ENOMEM;
    }
    if (e) {
        /* protoc shows the error and writes nothing; drop partial output. */
        for (pb_size_t i = 0; i < resp->file_count; i++) {
            free(resp->file[i].name);
            free(resp->file[i].content);
        }
        resp->file_count = 0;
        return set_error(resp, &err);
    }
    gp__strbuf_free(&err);
    return GP_OK;
}

void gp__cg_response_free(gp__cg_response *resp)
{
    pb_release(google_protobuf_compiler_CodeGeneratorResponse_fields, resp);
    memset(resp, 0, sizeof *resp);
}
