/* x.gp.h and x.gp.c: method descriptors, client stubs and the server
 * vtable for every service of one .proto file. */
#include "codegen/protoc-gen-goplugin-c/codegen.h"

#include <string.h>

typedef google_protobuf_ServiceDescriptorProto service_desc;
typedef google_protobuf_MethodDescriptorProto method_desc;

static int is_streaming(const method_desc *m)
{
    return m->client_streaming || m->server_streaming;
}

static const char *kind_name(const method_desc *m)
{
    if (m->client_streaming && m->server_streaming)
        return "GP_BIDI_STREAM";
    if (m->client_streaming)
        return "GP_CLIENT_STREAM";
    if (m->server_streaming)
        return "GP_SERVER_STREAM";
    return "GP_UNARY";
}

/* "pkg_sub_Service" (nanopb's prefix style) or "Service" without a package. */
static void service_c_name(gp__strbuf *b, const gp__cg_file *f, const service_desc *s)
{
    if (f->package && *f->package) {
        gp__cg_append_c_name(b, f->package);
        gp__strbuf_append(b, "_");
    }
    gp__strbuf_append(b, s->name);
}

/* "pkg.sub.Service" as gRPC names it. */
static void service_full_name(gp__strbuf *b, const gp__cg_file *f, const service_desc *s)
{
    if (f->package && *f->package)
        gp__strbuf_printf(b, "%s.", f->package);
    gp__strbuf_append(b, s->name);
}

static size_t unary_count(const service_desc *s)
{
    size_t n = 0;
    for (pb_size_t i = 0; i < s->method_count; i++)
        n += !is_streaming(&s->method[i]);
    return n;
}

/* Everything the emitters print comes from names checked here, so the
 * output is always C that compiles (or the request is refused in words). */
static gp_err check_file(const gp__cg_file *f, gp__strbuf *err)
{
    if (f->package && *f->package && !gp__cg_is_ident(f->package, 1)) {
        gp__strbuf_printf(err, "%s: package ", f->name);
        gp__strbuf_quote(err, f->package, strlen(f->package), 80);
        gp__strbuf_append(err, " is not a dotted identifier");
        return GP_EINVAL;
    }
    for (pb_size_t i = 0; i < f->service_count; i++) {
        const service_desc *s = &f->service[i];
        if (!gp__cg_is_ident(s->name, 0)) {
            gp__strbuf_printf(err, "%s: service name ", f->name);
            gp__strbuf_quote(err, s->name ? s->name : "", s->name ? strlen(s->name) : 0, 80);
            gp__strbuf_append(err, " is not an identifier");
            return GP_EINVAL;
        }
        for (pb_size_t j = 0; j < s->method_count; j++) {
            const method_desc *m = &s->method[j];
            if (!gp__cg_is_ident(m->name, 0)) {
                gp__strbuf_printf(err, "%s: service %s: method name ", f->name, s->name);
                gp__strbuf_quote(err, m->name ? m->name : "", m->name ? strlen(m->name) : 0, 80);
                gp__strbuf_append(err, " is not an identifier");
                return GP_EINVAL;
            }
            if (gp__cg_is_c_keyword(m->name)) {
                gp__strbuf_printf(err,
                                  "%s: method %s.%s is named like a C keyword; it cannot be a "
                                  "member of the server vtable, rename the rpc",
                                  f->name, s->name, m->name);
                return GP_EINVAL;
            }
            const char *types[2] = {m->input_type, m->output_type};
            for (int k = 0; k < 2; k++) {
                if (!types[k] || types[k][0] != '.' || !gp__cg_is_ident(types[k] + 1, 1)) {
                    gp__strbuf_printf(err,
                                      "%s: method %s.%s: expected a fully qualified %s type "
                                      "name like \".pkg.Message\", got ",
                                      f->name, s->name, m->name, k ? "output" : "input");
                    gp__strbuf_quote(err, types[k] ? types[k] : "", types[k] ? strlen(types[k]) : 0,
                                     80);
                    return GP_EINVAL;
                }
            }
        }
    }
    return GP_OK;
}

/* Append head(params...)tail, breaking lines before 90 columns with the
 * parameters aligned after the parenthesis, as a person would. */
#define WRAP_AT 90
void gp__cg_wrap_call(gp__strbuf *b, const char *head, const char *const *params, size_t n,
                      const char *tail)
{
    size_t indent = strlen(head), col = indent;
    gp__strbuf_append(b, head);
    for (size_t i = 0; i < n; i++) {
        size_t w = strlen(params[i]) + (i + 1 < n ? 1 : strlen(tail));
        if (i > 0) {
            if (col + 1 + w > WRAP_AT) {
                gp__strbuf_printf(b, "\n%*s", (int)indent, "");
                col = indent;
            } else {
                gp__strbuf_append(b, " ");
                col++;
            }
        }
        gp__strbuf_append(b, params[i]);
        gp__strbuf_append(b, i + 1 < n ? "," : tail);
        col += w;
    }
}

/* "const pkg_Req *req" and "pkg_Resp *resp" for method m. */
static void typed_params(const method_desc *m, gp__strbuf *req, gp__strbuf *resp)
{
    gp__strbuf_append(req, "const ");
    gp__cg_append_c_name(req, m->input_type);
    gp__strbuf_append(req, " *req");
    gp__cg_append_c_name(resp, m->output_type);
    gp__strbuf_append(resp, " *resp");
}

static const char *str(const gp__strbuf *b)
{
    return b->data ? b->data : "";
}

static void banner(gp__strbuf *b, const gp__cg_file *f)
{
    gp__strbuf_printf(b,
                      "/* Code generated by protoc-gen-goplugin-c from %s. DO NOT EDIT.\n"
                      " *\n"
                      " * For each service: a gp_method per RPC (one description for the grpc\n"
                      " * and netrpc wires), typed client stubs that call gp_invoke, and a server\n"
                      " * vtable with its register function. Messages are nanopb structs; who\n"
                      " * frees what is in goplugin/method.h and docs/codegen.md.\n"
                      " */\n",
                      f->name);
}

/* "gob_pkg_Msg": the static gob type emit_gob.c writes for ".pkg.Msg". */
static void gob_ident(gp__strbuf *b, const char *type)
{
    gp__strbuf_append(b, "gob_");
    gp__cg_append_c_name(b, type);
}

/* A type as the .proto spells it: relative to the file's package when
 * inside it ("Wide"), else fully qualified ("google.protobuf.Empty"). */
static void proto_type_name(gp__strbuf *b, const gp__cg_file *f, const char *type)
{
    const char *t = type[0] == '.' ? type + 1 : type;
    size_t pl = f->package ? strlen(f->package) : 0;
    if (pl && strncmp(t, f->package, pl) == 0 && t[pl] == '.')
        t += pl + 1;
    gp__strbuf_append(b, t);
}

static void register_head(gp__strbuf *b, const char *n, const char *tail)
{
    gp__strbuf head, p0, p2;
    gp__strbuf_init(&head);
    gp__strbuf_init(&p0);
    gp__strbuf_init(&p2);
    gp__strbuf_printf(&head, "const gp_service *%s_register(", n);
    gp__strbuf_printf(&p0, "%s_service *svc", n);
    gp__strbuf_printf(&p2, "const %s_server *vtable", n);
    const char *params[] = {str(&p0), "const char *name", str(&p2), "void *impl"};
    gp__cg_wrap_call(b, str(&head), params, 4, tail);
    gp__strbuf_free(&head);
    gp__strbuf_free(&p0);
    gp__strbuf_free(&p2);
}

static void header_service(gp__strbuf *b, const gp__cg_file *f, const service_desc *s)
{
    gp__strbuf sn, full;
    gp__strbuf_init(&sn);
    gp__strbuf_init(&full);
    service_c_name(&sn, f, s);
    service_full_name(&full, f, s);
    const char *n = sn.data ? sn.data : "";

    gp__strbuf_printf(b, "\n/* ---- service %s ---- */\n\n", full.data ? full.data : "");
    /* The RPCs as the .proto declares them, then their descriptors. */
    int width = 0;
    for (pb_size_t j = 0; j < s->method_count; j++)
        if ((int)strlen(s->method[j].name) > width)
            width = (int)strlen(s->method[j].name);
    gp__strbuf_append(b, "/* Method descriptors, for gp_invoke and gp_service:\n");
    for (pb_size_t j = 0; j < s->method_count; j++) {
        const method_desc *m = &s->method[j];
        gp__strbuf_printf(b, " *   %-*s  %s", width, m->name, m->client_streaming ? "stream " : "");
        proto_type_name(b, f, m->input_type);
        gp__strbuf_printf(b, " -> %s", m->server_streaming ? "stream " : "");
        proto_type_name(b, f, m->output_type);
        gp__strbuf_append(b, "\n");
    }
    gp__strbuf_append(b, " */\n");
    for (pb_size_t j = 0; j < s->method_count; j++)
        gp__strbuf_printf(b, "extern const gp_method %s_%s_method;\n", n, s->method[j].name);

    size_t nu = unary_count(s);
    gp__strbuf_append(b, "\n");
    if (nu)
        gp__strbuf_append(b,
                          "/* Client: call the method on a stub from gp_conn_dispense. `req` is\n"
                          " * borrowed; `resp` must be zeroed. On GP_OK free `resp` with\n"
                          " * gp_msg_release(<Method>_method.resp_pb, resp); on error it holds\n"
                          " * nothing to free. `st` may be NULL. Same contract as gp_invoke. */\n");
    for (pb_size_t j = 0; j < s->method_count; j++) {
        const method_desc *m = &s->method[j];
        if (is_streaming(m))
            continue;
        gp__strbuf head, rq, rs;
        gp__strbuf_init(&head);
        gp__strbuf_init(&rq);
        gp__strbuf_init(&rs);
        gp__strbuf_printf(&head, "gp_err %s_%s(", n, m->name);
        typed_params(m, &rq, &rs);
        const char *params[] = {"gp_stub *s", str(&rq), str(&rs), "gp_status *st"};
        gp__cg_wrap_call(b, str(&head), params, 4, ");\n");
        gp__strbuf_free(&head);
        gp__strbuf_free(&rq);
        gp__strbuf_free(&rs);
    }

    if (nu < s->method_count)
        gp__strbuf_append(b,
                          "\n/* Streaming RPCs (grpc wire only; goplugin/conn.h gp_call). Client:\n"
                          " * _open starts the call (a server-streaming one sends its request\n"
                          " * and closes the send side), _send/_recv move messages (_recv gives\n"
                          " * GP_EOF after the last; free each message with gp_msg_release),\n"
                          " * _close_and_recv ends a client stream and takes the one response;\n"
                          " * then gp_call_free. Handler: _next receives (GP_EOF when the host\n"
                          " * closed its side), _reply sends. */\n");
    for (pb_size_t j = 0; j < s->method_count; j++)
        if (is_streaming(&s->method[j]))
            gp__cg_stream_client(b, n, &s->method[j], 0);

    gp__strbuf_printf(b,
                      "\n/* Server: the plugin's implementation, one function per RPC. Unary ones\n"
                      " * are called as a gp_handler (goplugin/server.h): `req` is borrowed,\n"
                      " * `resp` is zeroed and filled with malloc'd pointers that the transport\n"
                      " * frees. Streaming ones run on a thread of their own per call until they\n"
                      " * return (a server-streaming one gets its request, borrowed). A NULL\n"
                      " * entry answers GP_EUNSUPPORTED \"not implemented\". */\n"
                      "typedef struct %s_server {\n",
                      n);
    for (pb_size_t j = 0; j < s->method_count; j++) {
        const method_desc *m = &s->method[j];
        if (is_streaming(m)) {
            gp__cg_stream_entry(b, m);
            continue;
        }
        gp__strbuf head, rq, rs;
        gp__strbuf_init(&head);
        gp__strbuf_init(&rq);
        gp__strbuf_init(&rs);
        gp__strbuf_printf(&head, "    gp_err (*%s)(", m->name);
        typed_params(m, &rq, &rs);
        const char *params[] = {"void *impl", str(&rq), str(&rs), "gp_status *st"};
        gp__cg_wrap_call(b, str(&head), params, 4, ");\n");
        gp__strbuf_free(&head);
        gp__strbuf_free(&rq);
        gp__strbuf_free(&rs);
    }
    if (s->method_count == 0)
        gp__strbuf_append(b, "    char unused_; /* no RPCs */\n");
    gp__strbuf_printf(b, "} %s_server;\n\n", n);

    gp__strbuf_printf(b, "#define %s_SERVED_METHODS %zu\n", n, nu);
    gp__strbuf_printf(b, "#define %s_SERVED_STREAMS %zu\n\n", n, (size_t)s->method_count - nu);
    gp__strbuf_printf(b,
                      "/* A served %s: its gp_service and what the handlers\n"
                      " * need. Storage is the caller's (static, or alive until gp_serve\n"
                      " * returns); fill it with %s_register. */\n"
                      "typedef struct %s_service {\n"
                      "    gp_service service; /* pass this (a copy is fine) to gp_serve */\n"
                      "    gp_service_method methods[%zu];\n"
                      "    gp_service_stream streams[%zu];\n"
                      "    const %s_server *vtable;\n"
                      "    void *impl;\n"
                      "} %s_service;\n\n",
                      full.data ? full.data : "", n, n, nu ? nu : 1,
                      s->method_count - nu ? (size_t)s->method_count - nu : 1, n, n);
    gp__strbuf_append(b,
                      "/* Make svc->service serve `vtable` under the plugin name `name` (\"kv\"):\n"
                      " * each handler gets `impl`. `name` and `vtable` are borrowed for as long\n"
                      " * as the service is served. Returns &svc->service. */\n");
    register_head(b, n, ");\n");
    gp__strbuf_free(&sn);
    gp__strbuf_free(&full);
}

gp_err gp__cg_emit_header(const gp__cg_request *req, const gp__cg_file *f, gp__strbuf *out,
                          gp__strbuf *err)
{
    (void)req;
    gp_err e = check_file(f, err);
    if (e)
        return e;
    gp__strbuf guard, pbh;
    gp__strbuf_init(&guard);
    gp__strbuf_init(&pbh);
    if ((e = gp__cg_output_name(f->name, ".gp.h", &guard, err)) ||
        (e = gp__cg_output_name(f->name, ".pb.h", &pbh, err))) {
        gp__strbuf_free(&guard);
        gp__strbuf_free(&pbh);
        return e;
    }
    gp__strbuf g;
    gp__strbuf_init(&g);
    gp__cg_append_guard(&g, guard.data ? guard.data : "");

    banner(out, f);
    gp__strbuf_printf(out, "#ifndef %s\n#define %s\n\n", g.data, g.data);
    gp__strbuf_printf(out, "#include <goplugin/goplugin.h>\n\n#include \"%s\"\n\n", pbh.data);
    gp__strbuf_append(out, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
    if (f->service_count == 0)
        gp__strbuf_printf(out, "\n/* %s declares no services. */\n", f->name);
    for (pb_size_t i = 0; i < f->service_count; i++)
        header_service(out, f, &f->service[i]);
    gp__strbuf_printf(out, "\n#ifdef __cplusplus\n}\n#endif\n#endif /* %s */\n", g.data);
    gp__strbuf_free(&g);
    gp__strbuf_free(&guard);
    gp__strbuf_free(&pbh);
    return GP_OK;
}

static void source_service(gp__strbuf *b, const gp__cg_file *f, const service_desc *s)
{
    gp__strbuf sn, full;
    gp__strbuf_init(&sn);
    gp__strbuf_init(&full);
    service_c_name(&sn, f, s);
    service_full_name(&full, f, s);
    const char *n = sn.data ? sn.data : "";
    const char *fn = full.data ? full.data : "";

    gp__strbuf_printf(b, "\n/* ---- service %s ---- */\n", fn);
    for (pb_size_t j = 0; j < s->method_count; j++) {
        const method_desc *m = &s->method[j];
        gp__strbuf_printf(b,
                          "\nconst gp_method %s_%s_method = {\n"
                          "    .grpc_path = \"/%s/%s\",\n"
                          "    .netrpc_name = \"Plugin.%s\",\n"
                          "    .req_pb = ",
                          n, m->name, fn, m->name, m->name);
        gp__cg_append_c_name(b, m->input_type);
        gp__strbuf_append(b, "_fields,\n    .resp_pb = ");
        gp__cg_append_c_name(b, m->output_type);
        gp__strbuf_append(b, "_fields,\n");
        gp__strbuf_append(b, "    .req_gob = &");
        gob_ident(b, m->input_type);
        gp__strbuf_append(b, ",\n    .resp_gob = &");
        gob_ident(b, m->output_type);
        gp__strbuf_append(b, ",\n");
        gp__strbuf_printf(b, "    .kind = %s,\n};\n", kind_name(m));
    }
    for (pb_size_t j = 0; j < s->method_count; j++) {
        const method_desc *m = &s->method[j];
        if (is_streaming(m)) {
            gp__strbuf_append(b, "\n");
            gp__cg_stream_client(b, n, m, 1);
            continue;
        }
        gp__strbuf head, rq, rs;
        gp__strbuf_init(&head);
        gp__strbuf_init(&rq);
        gp__strbuf_init(&rs);
        gp__strbuf_printf(&head, "gp_err %s_%s(", n, m->name);
        typed_params(m, &rq, &rs);
        const char *params[] = {"gp_stub *s", str(&rq), str(&rs), "gp_status *st"};
        gp__strbuf_append(b, "\n");
        gp__cg_wrap_call(b, str(&head), params, 4, ")\n");
        gp__strbuf_free(&head);
        gp__strbuf_free(&rq);
        gp__strbuf_free(&rs);
        gp__strbuf_printf(b,
                          "{\n"
                          "    return gp_invoke(s, &%s_%s_method, req, resp, st);\n"
                          "}\n",
                          n, m->name);
    }
    /* Trampolines: real gp_handler functions, so no function pointer is
     * ever called through a type it was not defined with. */
    for (pb_size_t j = 0; j < s->method_count; j++) {
        const method_desc *m = &s->method[j];
        if (is_streaming(m)) {
            gp__cg_stream_trampoline(b, n, m);
            continue;
        }
        gp__strbuf head;
        gp__strbuf_init(&head);
        gp__strbuf_printf(&head, "static gp_err %s_%s_handler(", n, m->name);
        const char *params[] = {"void *impl", "const void *req", "void *resp", "gp_status *st"};
        gp__strbuf_append(b, "\n");
        gp__cg_wrap_call(b, str(&head), params, 4, ")\n");
        gp__strbuf_free(&head);
        gp__strbuf_printf(b,
                          "{\n"
                          "    const %s_service *svc = impl;\n"
                          "    if (!svc->vtable->%s)\n"
                          "        return unimplemented(&%s_%s_method, st);\n"
                          "    return svc->vtable->%s(svc->impl, req, resp, st);\n"
                          "}\n",
                          n, m->name, n, m->name, m->name);
    }
    gp__strbuf_append(b, "\n");
    register_head(b, n, ")\n");
    gp__strbuf_append(b, "{\n    memset(svc, 0, sizeof *svc);\n");
    size_t k = 0, ks = 0;
    for (pb_size_t j = 0; j < s->method_count; j++) {
        const method_desc *m = &s->method[j];
        if (is_streaming(m)) {
            gp__strbuf_printf(b,
                              "    svc->streams[%zu].method = &%s_%s_method;\n"
                              "    svc->streams[%zu].handler = %s_%s_stream;\n",
                              ks, n, m->name, ks, n, m->name);
            ks++;
            continue;
        }
        gp__strbuf_printf(b,
                          "    svc->methods[%zu].method = &%s_%s_method;\n"
                          "    svc->methods[%zu].handler = %s_%s_handler;\n",
                          k, n, m->name, k, n, m->name);
        k++;
    }
    gp__strbuf_printf(b,
                      "    svc->vtable = vtable;\n"
                      "    svc->impl = impl;\n"
                      "    svc->service.name = name;\n"
                      "    svc->service.methods = svc->methods;\n"
                      "    svc->service.nmethods = %s_SERVED_METHODS;\n"
                      "    svc->service.streams = svc->streams;\n"
                      "    svc->service.nstreams = %s_SERVED_STREAMS;\n"
                      "    svc->service.impl = svc;\n"
                      "    return &svc->service;\n"
                      "}\n",
                      n, n);
    gp__strbuf_free(&sn);
    gp__strbuf_free(&full);
}

gp_err gp__cg_emit_source(const gp__cg_request *req, const gp__cg_file *f, gp__strbuf *out,
                          gp__strbuf *err)
{
    gp_err e = check_file(f, err);
    if (e)
        return e;
    gp__strbuf gph;
    gp__strbuf_init(&gph);
    if ((e = gp__cg_output_name(f->name, ".gp.h", &gph, err))) {
        gp__strbuf_free(&gph);
        return e;
    }
    banner(out, f);
    gp__strbuf_printf(out, "#include \"%s\"\n", gph.data);
    gp__strbuf_free(&gph);
    if (f->service_count)
        gp__strbuf_append(out, "\n#include <goplugin/gob.h>\n");

    size_t nu = 0;
    for (pb_size_t i = 0; i < f->service_count; i++)
        nu += f->service[i].method_count;
    if (nu) {
        gp__strbuf_append(out, "\n#include <stdio.h>\n#include <string.h>\n");
        gp__strbuf_append(
            out, "\n/* The answer of a vtable entry left NULL. */\n"
                 "static gp_err unimplemented(const gp_method *m, gp_status *st)\n"
                 "{\n"
                 "    if (st)\n"
                 "        snprintf(st->msg, sizeof st->msg,\n"
                 "                 \"%s is not implemented by this plugin\", m->grpc_path);\n"
                 "    return GP_EUNSUPPORTED;\n"
                 "}\n");
    } else if (f->service_count) {
        gp__strbuf_append(out, "\n#include <string.h>\n");
    }
    if ((e = gp__cg_emit_gob(req, f, out, err)))
        return e;
    for (pb_size_t i = 0; i < f->service_count; i++)
        source_service(out, f, &f->service[i]);
    return GP_OK;
}
