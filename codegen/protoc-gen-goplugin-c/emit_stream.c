/* The typed C of streaming RPCs (goplugin/conn.h gp_call): client
 * functions, the server vtable entry and its trampoline. For
 * `rpc M(stream? Req) returns (stream? Resp)` of service prefix n:
 *
 *   server streaming  n_M_open(s, req, &call, st)  then n_M_recv(call, resp, st)
 *   client streaming  n_M_open(s, &call, st), n_M_send(call, req, st)...,
 *                     n_M_close_and_recv(call, resp, st)
 *   bidi              n_M_open(s, &call, st), n_M_send, n_M_recv
 *
 * The vtable entry: server streaming gets the one request,
 * (impl, const Req *req, gp_call *call, st), the others (impl, call, st);
 * handlers send with n_M_reply(call, resp, st) and receive with
 * n_M_next(call, req, st). */
#include "codegen/protoc-gen-goplugin-c/codegen.h"

#include <string.h>

typedef google_protobuf_MethodDescriptorProto method_desc;

static void c_type(gp_strbuf *b, const char *type)
{
    gp__cg_append_c_name(b, type);
}

void gp__cg_stream_client(gp_strbuf *b, const char *n, const method_desc *m, int define)
{
    const char *end = define ? "\n" : ";\n";
    const char *name = m->name;
    int server_only = m->server_streaming && !m->client_streaming;
    /* open */
    if (server_only) {
        gp_strbuf_printf(b, "gp_err %s_%s_open(gp_stub *s, const ", n, name);
        c_type(b, m->input_type);
        gp_strbuf_printf(b, " *req, gp_call **call,\n%*sgp_status *st)%s",
                         (int)(strlen(n) + strlen(name) + 14), "", end);
        if (define)
            gp_strbuf_printf(b,
                             "{\n"
                             "    gp_err e = gp_call_open(s, &%s_%s_method, call, st);\n"
                             "    if (e == GP_OK && (e = gp_call_send(*call, req, st)) == GP_OK)\n"
                             "        e = gp_call_close_send(*call, st);\n"
                             "    if (e != GP_OK && *call) {\n"
                             "        gp_call_free(*call);\n"
                             "        *call = NULL;\n"
                             "    }\n"
                             "    return e;\n"
                             "}\n",
                             n, name);
    } else {
        gp_strbuf_printf(b, "gp_err %s_%s_open(gp_stub *s, gp_call **call, gp_status *st)%s", n,
                         name, end);
        if (define)
            gp_strbuf_printf(b,
                             "{\n"
                             "    return gp_call_open(s, &%s_%s_method, call, st);\n"
                             "}\n",
                             n, name);
        /* send */
        gp_strbuf_printf(b, "gp_err %s_%s_send(gp_call *call, const ", n, name);
        c_type(b, m->input_type);
        gp_strbuf_printf(b, " *req, gp_status *st)%s", end);
        if (define)
            gp_strbuf_append(b, "{\n    return gp_call_send(call, req, st);\n}\n");
    }
    if (m->server_streaming) {
        gp_strbuf_printf(b, "gp_err %s_%s_recv(gp_call *call, ", n, name);
        c_type(b, m->output_type);
        gp_strbuf_printf(b, " *resp, gp_status *st)%s", end);
        if (define)
            gp_strbuf_append(b, "{\n    return gp_call_recv(call, resp, st);\n}\n");
    } else {
        gp_strbuf_printf(b, "gp_err %s_%s_close_and_recv(gp_call *call, ", n, name);
        c_type(b, m->output_type);
        gp_strbuf_printf(b, " *resp, gp_status *st)%s", end);
        if (define)
            gp_strbuf_printf(b,
                             "{\n"
                             "    gp_err e = gp_call_close_send(call, st);\n"
                             "    if (e == GP_OK)\n"
                             "        e = gp_call_recv(call, resp, st);\n"
                             "    if (e == GP_EOF) { /* the plugin finished OK but sent nothing */\n"
                             "        if (st) {\n"
                             "            st->err = GP_EPROTO;\n"
                             "            snprintf(st->msg, sizeof st->msg,\n"
                             "                     \"%%s: the plugin finished without a response\",\n"
                             "                     %s_%s_method.grpc_path);\n"
                             "        }\n"
                             "        return GP_EPROTO;\n"
                             "    }\n"
                             "    if (e != GP_OK)\n"
                             "        return e;\n"
                             "    e = gp_call_finish(call, st);\n"
                             "    if (e != GP_OK)\n"
                             "        gp_msg_release(%s_%s_method.resp_pb, resp);\n"
                             "    return e;\n"
                             "}\n",
                             n, name, n, name);
    }
    /* The handler's side. */
    gp_strbuf_printf(b, "gp_err %s_%s_reply(gp_call *call, const ", n, name);
    c_type(b, m->output_type);
    gp_strbuf_printf(b, " *resp, gp_status *st)%s", end);
    if (define)
        gp_strbuf_append(b, "{\n    return gp_call_send(call, resp, st);\n}\n");
    if (m->client_streaming) {
        gp_strbuf_printf(b, "gp_err %s_%s_next(gp_call *call, ", n, name);
        c_type(b, m->input_type);
        gp_strbuf_printf(b, " *req, gp_status *st)%s", end);
        if (define)
            gp_strbuf_append(b, "{\n    return gp_call_recv(call, req, st);\n}\n");
    }
}

void gp__cg_stream_entry(gp_strbuf *b, const method_desc *m)
{
    if (m->server_streaming && !m->client_streaming) {
        gp_strbuf_printf(b, "    gp_err (*%s)(void *impl, const ", m->name);
        c_type(b, m->input_type);
        gp_strbuf_append(b, " *req, gp_call *call, gp_status *st);\n");
    } else {
        gp_strbuf_printf(b, "    gp_err (*%s)(void *impl, gp_call *call, gp_status *st);\n",
                         m->name);
    }
}

void gp__cg_stream_trampoline(gp_strbuf *b, const char *n, const method_desc *m)
{
    gp_strbuf_printf(b,
                     "\nstatic gp_err %s_%s_stream(void *impl, gp_call *call, gp_status *st)\n"
                     "{\n"
                     "    const %s_service *svc = impl;\n"
                     "    if (!svc->vtable->%s)\n"
                     "        return unimplemented(&%s_%s_method, st);\n",
                     n, m->name, n, m->name, n, m->name);
    if (m->server_streaming && !m->client_streaming) {
        gp_strbuf_append(b, "    ");
        c_type(b, m->input_type);
        gp_strbuf_printf(b,
                         " req;\n"
                         "    memset(&req, 0, sizeof req);\n"
                         "    gp_err e = gp_call_recv(call, &req, st);\n"
                         "    if (e == GP_EOF) {\n"
                         "        snprintf(st->msg, sizeof st->msg, \"%%s: expected the request "
                         "message, the host sent none\",\n"
                         "                 %s_%s_method.grpc_path);\n"
                         "        return GP_EINVAL;\n"
                         "    }\n"
                         "    if (e != GP_OK)\n"
                         "        return e;\n"
                         "    e = svc->vtable->%s(svc->impl, &req, call, st);\n"
                         "    gp_msg_release(%s_%s_method.req_pb, &req);\n"
                         "    return e;\n"
                         "}\n",
                         n, m->name, m->name, n, m->name);
    } else {
        gp_strbuf_printf(b, "    return svc->vtable->%s(svc->impl, call, st);\n}\n", m->name);
    }
}
