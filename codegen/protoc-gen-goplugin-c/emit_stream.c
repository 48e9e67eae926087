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

static void c_type(gp__strbuf *b, const char *type)
{
    gp__cg_append_c_name(b, type);
}

/* "gp_err n_name_suffix(params...)" wrapped as the unary stubs are, then
 * ";" (declaration) or nothing (a body follows). */
static void sig(gp__strbuf *b, const char *n, const char *name, const char *suffix,
                const char *const *params, size_t np, int define)
{
    gp__strbuf head;
    gp__strbuf_init(&head);
    gp__strbuf_printf(&head, "gp_err %s_%s_%s(", n, name, suffix);
    gp__cg_wrap_call(b, head.data ? head.data : "", params, np, define ? ")\n" : ");\n");
    gp__strbuf_free(&head);
}

/* "const pkg_T *var" or "pkg_T *var". */
static void param(gp__strbuf *p, int is_const, const char *type, const char *var)
{
    gp__strbuf_reset(p);
    if (is_const)
        gp__strbuf_append(p, "const ");
    c_type(p, type);
    gp__strbuf_printf(p, " *%s", var);
}

void gp__cg_stream_client(gp__strbuf *b, const char *n, const method_desc *m, int define)
{
    const char *name = m->name;
    int server_only = m->server_streaming && !m->client_streaming;
    gp__strbuf p;
    gp__strbuf_init(&p);
    /* open */
    if (server_only) {
        param(&p, 1, m->input_type, "req");
        const char *ps[] = {"gp_stub *s", p.data ? p.data : "", "gp_call **call", "gp_status *st"};
        sig(b, n, name, "open", ps, 4, define);
        if (define)
            gp__strbuf_printf(b,
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
        const char *ps[] = {"gp_stub *s", "gp_call **call", "gp_status *st"};
        sig(b, n, name, "open", ps, 3, define);
        if (define)
            gp__strbuf_printf(b,
                              "{\n"
                              "    return gp_call_open(s, &%s_%s_method, call, st);\n"
                              "}\n",
                              n, name);
        param(&p, 1, m->input_type, "req");
        const char *pq[] = {"gp_call *call", p.data ? p.data : "", "gp_status *st"};
        sig(b, n, name, "send", pq, 3, define);
        if (define)
            gp__strbuf_append(b, "{\n    return gp_call_send(call, req, st);\n}\n");
    }
    param(&p, 0, m->output_type, "resp");
    const char *pr[] = {"gp_call *call", p.data ? p.data : "", "gp_status *st"};
    if (m->server_streaming) {
        sig(b, n, name, "recv", pr, 3, define);
        if (define)
            gp__strbuf_append(b, "{\n    return gp_call_recv(call, resp, st);\n}\n");
    } else {
        sig(b, n, name, "close_and_recv", pr, 3, define);
        if (define)
            gp__strbuf_printf(
                b,
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
    param(&p, 1, m->output_type, "resp");
    const char *pp[] = {"gp_call *call", p.data ? p.data : "", "gp_status *st"};
    sig(b, n, name, "reply", pp, 3, define);
    if (define)
        gp__strbuf_append(b, "{\n    return gp_call_send(call, resp, st);\n}\n");
    if (m->client_streaming) {
        param(&p, 0, m->input_type, "req");
        const char *pn[] = {"gp_call *call", p.data ? p.data : "", "gp_status *st"};
        sig(b, n, name, "next", pn, 3, define);
        if (define)
            gp__strbuf_append(b, "{\n    return gp_call_recv(call, req, st);\n}\n");
    }
    gp__strbuf_free(&p);
}

void gp__cg_stream_entry(gp__strbuf *b, const method_desc *m)
{
    if (m->server_streaming && !m->client_streaming) {
        gp__strbuf head, p;
        gp__strbuf_init(&head);
        gp__strbuf_init(&p);
        gp__strbuf_printf(&head, "    gp_err (*%s)(", m->name);
        param(&p, 1, m->input_type, "req");
        const char *ps[] = {"void *impl", p.data ? p.data : "", "gp_call *call", "gp_status *st"};
        gp__cg_wrap_call(b, head.data ? head.data : "", ps, 4, ");\n");
        gp__strbuf_free(&head);
        gp__strbuf_free(&p);
    } else {
        gp__strbuf_printf(b, "    gp_err (*%s)(void *impl, gp_call *call, gp_status *st);\n",
                          m->name);
    }
}

void gp__cg_stream_trampoline(gp__strbuf *b, const char *n, const method_desc *m)
{
    gp__strbuf_printf(b,
                      "\nstatic gp_err %s_%s_stream(void *impl, gp_call *call, gp_status *st)\n"
                      "{\n"
                      "    const %s_service *svc = impl;\n"
                      "    if (!svc->vtable->%s)\n"
                      "        return unimplemented(&%s_%s_method, st);\n",
                      n, m->name, n, m->name, n, m->name);
    if (m->server_streaming && !m->client_streaming) {
        gp__strbuf_append(b, "    ");
        c_type(b, m->input_type);
        gp__strbuf_printf(b,
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
        gp__strbuf_printf(b, "    return svc->vtable->%s(svc->impl, call, st);\n}\n", m->name);
    }
}
