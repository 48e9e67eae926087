/* Code from protoc-gen-goplugin-c, built by goplugin_c_proto_library under
 * the project's flags, and used: descriptors, the register function and its
 * trampolines, client stubs over an in-process wire that encodes and
 * decodes every message with nanopb (as both real wires do), and the memory
 * style the generated .options give (malloc'd strings, gp_bytes, pointers
 * for repeated, map and recursive fields, all freed by gp_msg_release). */
#include <goplugin/gob.h>

#include "codegen/protoc-gen-goplugin-c/testdata/kv.gp.h"
#include "codegen/protoc-gen-goplugin-c/testdata/nopkg.gp.h"
#include "codegen/protoc-gen-goplugin-c/testdata/opts.gp.h"
#include "codegen/protoc-gen-goplugin-c/testdata/wide.gp.h"
#include "codegen/protoc-gen-goplugin-c/testdata/wkt.gp.h"

#include "codegen/protoc-gen-goplugin-c/wide_fixture.h"
#include "transport/core/conn.h"
#include "transport/msg/msg.h"
#include "transport/testing/gp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- an in-process wire: gp_invoke -> encode -> handler -> decode ---- */

typedef struct loop_conn {
    gp_conn base;
    const gp_service *svc;
} loop_conn;

static gp_err copy_msg(const pb_msgdesc_t *desc, const void *from, void *to, const char *what,
                       gp_status *st)
{
    size_t size = 0;
    gp_err e = gp__msg_size(desc, from, &size, what, st->msg, sizeof st->msg);
    if (e)
        return e;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return GP_ENOMEM;
    e = gp__msg_encode_buf(desc, from, buf, size, NULL, what, st->msg, sizeof st->msg);
    if (!e)
        e = gp__msg_decode_buf(desc, buf, size, to, what, st->msg, sizeof st->msg);
    free(buf);
    return e;
}

static gp_err loop_invoke(gp_stub *s, const gp_method *m, const void *req, void *resp,
                          gp_status *st)
{
    const gp_service *svc = ((loop_conn *)s->conn)->svc;
    const gp_service_method *sm = NULL;
    for (size_t i = 0; i < svc->nmethods; i++)
        if (strcmp(svc->methods[i].method->grpc_path, m->grpc_path) == 0)
            sm = &svc->methods[i];
    if (!sm) {
        snprintf(st->msg, sizeof st->msg, "unknown method %s", m->grpc_path);
        return GP_ENOTFOUND;
    }
    /* The server side only has the descriptors, like a real server. */
    void *sreq = calloc(1, gp__msg_struct_size(sm->method->req_pb));
    void *sresp = calloc(1, gp__msg_struct_size(sm->method->resp_pb));
    gp_err e = sreq && sresp ? GP_OK : GP_ENOMEM;
    if (!e)
        e = copy_msg(m->req_pb, req, sreq, "request", st);
    if (!e)
        e = sm->handler(svc->impl, sreq, sresp, st);
    if (!e)
        e = copy_msg(m->resp_pb, sresp, resp, "response", st);
    if (sreq)
        gp_msg_release(sm->method->req_pb, sreq);
    if (sresp)
        gp_msg_release(sm->method->resp_pb, sresp);
    free(sreq);
    free(sresp);
    return e;
}

static const gp__conn_ops loop_ops = {.name = "loop", .invoke = loop_invoke};

typedef struct loop {
    loop_conn conn;
    gp_stub stub;
} loop;

static gp_stub *loop_open(loop *l, const gp_service *svc)
{
    l->conn.base.ops = &loop_ops;
    l->conn.svc = svc;
    l->stub.conn = &l->conn.base;
    return &l->stub;
}

static char *dup_str(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    if (d)
        strcpy(d, s);
    return d;
}

static gp_bytes dup_bytes(const void *p, size_t n)
{
    gp_bytes b = {malloc(n), n};
    if (b.data)
        memcpy(b.data, p, n);
    else
        b.len = 0;
    return b;
}

/* ---- descriptors ---- */

GP_TEST(descriptors_name_paths_and_tables)
{
    GP_CHECK_STR(proto_KV_Get_method.grpc_path, "/proto.KV/Get");
    GP_CHECK_STR(proto_KV_Get_method.netrpc_name, "Plugin.Get");
    GP_CHECK(proto_KV_Get_method.req_pb == proto_GetRequest_fields);
    GP_CHECK(proto_KV_Get_method.resp_pb == proto_GetResponse_fields);
    GP_CHECK(proto_KV_Put_method.resp_pb == proto_Empty_fields);
    /* Gob types with Go's names and nanopb's tags: the netrpc wire. */
    const gp_gob_type *g = proto_KV_Put_method.req_gob;
    GP_CHECK(g != NULL && proto_KV_Get_method.resp_gob != NULL);
    if (g) {
        GP_CHECK_INT(g->kind, ==, GP_GOB_STRUCT);
        GP_CHECK_INT(g->nfields, ==, 2);
        GP_CHECK_STR(g->fields[0].name, "Key");
        GP_CHECK(g->fields[0].type == &gp_gob_string_type && g->fields[0].tag == 1);
        GP_CHECK_STR(g->fields[1].name, "Value");
        GP_CHECK(g->fields[1].type == &gp_gob_bytes_type && g->fields[1].tag == 2);
    }
    GP_CHECK_INT(proto_KV_Put_method.kind, ==, GP_UNARY);

    GP_CHECK_STR(gp_test_wide_Wider_Echo_method.grpc_path, "/gp.test.wide.Wider/Echo");
    GP_CHECK_STR(gp_test_wide_Wider_Echo_method.netrpc_name, "Plugin.Echo");
    GP_CHECK(gp_test_wide_Wider_Ping_method.req_pb == google_protobuf_Empty_fields);
    GP_CHECK(gp_test_wide_Wider_Where_method.req_pb == gp_test_common_Point_fields);
    GP_CHECK(gp_test_wide_Wider_Where_method.resp_pb == gp_test_wide_Scalars_fields);
    GP_CHECK_INT(gp_test_wide_Wider_Watch_method.kind, ==, GP_SERVER_STREAM);
    GP_CHECK_INT(gp_test_wide_Wider_Upload_method.kind, ==, GP_CLIENT_STREAM);
    GP_CHECK_INT(gp_test_wide_Wider_Chat_method.kind, ==, GP_BIDI_STREAM);
    GP_CHECK_STR(gp_test_wide_Second_Get_method.grpc_path, "/gp.test.wide.Second/Get");
    GP_CHECK_INT(gp_test_wide_Wider_SERVED_METHODS, ==, 4);
    GP_CHECK_INT(gp_test_wide_Second_SERVED_METHODS, ==, 1);

    GP_CHECK_STR(Lonely_Call_method.grpc_path, "/Lonely/Call");
    GP_CHECK_STR(Lonely_Call_method.netrpc_name, "Plugin.Call");
    GP_CHECK(Lonely_Call_method.req_pb == Msg_fields);
    GP_CHECK_INT(Lonely_Call_method.kind, ==, GP_BIDI_STREAM);
    GP_CHECK_INT(Lonely_SERVED_METHODS, ==, 0);
}

/* The caller's own .options replace the generated ones. */
_Static_assert(sizeof(((gp_test_opts_Req *)0)->code) == 8, "opts.options max_size:8 applies");
_Static_assert(sizeof(((gp_test_opts_Req *)0)->name) == sizeof(char *), "name is a pointer");

/* ---- KV: register, trampolines, stubs ---- */

typedef struct store {
    int gets;
} store;

static gp_err kv_get(void *impl, const proto_GetRequest *req, proto_GetResponse *resp,
                     gp_status *st)
{
    store *s = impl;
    s->gets++;
    if (!req->key || strcmp(req->key, "missing") == 0) {
        snprintf(st->msg, sizeof st->msg, "no key %s", req->key ? req->key : "(none)");
        return GP_ENOTFOUND;
    }
    char v[64];
    int n = snprintf(v, sizeof v, "v:%s", req->key);
    resp->value = dup_bytes(v, (size_t)n);
    return GP_OK;
}

static const proto_KV_server kv_vtable = {.Get = kv_get}; /* Put left out */

GP_TEST(register_fills_a_servable_service)
{
    store st0 = {0};
    proto_KV_service svc;
    const gp_service *s = proto_KV_register(&svc, "kv", &kv_vtable, &st0);
    GP_CHECK(s == &svc.service);
    GP_CHECK_STR(s->name, "kv");
    GP_CHECK_INT(s->nmethods, ==, 2);
    GP_CHECK(s->methods[0].method == &proto_KV_Get_method);
    GP_CHECK(s->methods[1].method == &proto_KV_Put_method);
    GP_CHECK(s->impl == &svc);

    /* The trampoline as a transport calls it: untyped, through gp_handler. */
    proto_GetRequest req = {.key = "a"};
    proto_GetResponse resp = {0};
    gp_status status = {0};
    GP_CHECK_ERR(s->methods[0].handler(s->impl, &req, &resp, &status), GP_OK);
    GP_CHECK_INT(st0.gets, ==, 1);
    GP_CHECK_INT(resp.value.len, ==, 3);
    GP_CHECK(resp.value.data && memcmp(resp.value.data, "v:a", 3) == 0);
    gp_msg_release(proto_GetResponse_fields, &resp);

    proto_PutRequest preq = {.key = "k"};
    proto_Empty presp = {0};
    GP_CHECK_ERR(s->methods[1].handler(s->impl, &preq, &presp, &status), GP_EUNSUPPORTED);
    GP_CHECK_STR(status.msg, "/proto.KV/Put is not implemented by this plugin");
}

GP_TEST(stubs_call_through_gp_invoke)
{
    store st0 = {0};
    proto_KV_service svc;
    loop l;
    gp_stub *stub = loop_open(&l, proto_KV_register(&svc, "kv", &kv_vtable, &st0));

    proto_GetRequest req = {.key = "hello"};
    proto_GetResponse resp = {0};
    gp_status st = {0};
    GP_CHECK_ERR(proto_KV_Get(stub, &req, &resp, &st), GP_OK);
    GP_CHECK_INT(resp.value.len, ==, 7);
    GP_CHECK(resp.value.data && memcmp(resp.value.data, "v:hello", 7) == 0);
    gp_msg_release(proto_KV_Get_method.resp_pb, &resp);
    GP_CHECK(resp.value.data == NULL);

    req.key = "missing";
    GP_CHECK_ERR(proto_KV_Get(stub, &req, &resp, &st), GP_ENOTFOUND);
    GP_CHECK_STR(st.msg, "no key missing");

    proto_PutRequest preq = {.key = "k", .value = {(uint8_t *)"v", 1}};
    proto_Empty presp = {0};
    GP_CHECK_ERR(proto_KV_Put(stub, &preq, &presp, &st), GP_EUNSUPPORTED);
    GP_CHECK_CONTAINS(st.msg, "not implemented");
    GP_CHECK_INT(st0.gets, ==, 2);

    /* gp_invoke's own argument checks reach the stub's caller. */
    GP_CHECK_ERR(proto_KV_Get(NULL, &req, &resp, &st), GP_EINVAL);
}

/* ---- the wide proto: every field kind through a round trip ---- */

static gp_err wide_echo(void *impl, const gp_test_wide_Wide *req, gp_test_wide_Wide *resp,
                        gp_status *st)
{
    (void)impl;
    /* A deep copy: the response owns its own malloc'd fields. */
    return copy_msg(gp_test_wide_Wide_fields, req, resp, "echo", st);
}

static void preorder(const gp_test_wide_Node *n, char *out, size_t cap)
{
    if (!n)
        return;
    if (n->name && strlen(out) + strlen(n->name) + 1 < cap) {
        strcat(out, n->name);
        strcat(out, ",");
    }
    preorder(n->left, out, cap);
    preorder(n->right, out, cap);
    for (pb_size_t i = 0; i < n->children_count; i++)
        preorder(&n->children[i], out, cap);
}

static gp_err wide_walk(void *impl, const gp_test_wide_Node *req, gp_test_wide_Node *resp,
                        gp_status *st)
{
    (void)impl;
    (void)st;
    char names[256] = "";
    preorder(req, names, sizeof names);
    resp->name = dup_str(names);
    return resp->name ? GP_OK : GP_ENOMEM;
}

static gp_err wide_where(void *impl, const gp_test_common_Point *req, gp_test_wide_Scalars *resp,
                         gp_status *st)
{
    (void)impl;
    (void)st;
    resp->f_int32 = req->x + req->y;
    resp->f_string = dup_str(req->label ? req->label : "");
    resp->maybe_name = dup_str("here");
    return GP_OK;
}

static const gp_test_wide_Wider_server wider_vtable = {
    .Echo = wide_echo, .Walk = wide_walk, .Where = wide_where, /* Ping: NULL */
};

GP_TEST(wide_messages_round_trip)
{
    gp_test_wide_Wider_service svc;
    loop l;
    gp_stub *stub = loop_open(&l, gp_test_wide_Wider_register(&svc, "wide", &wider_vtable, NULL));

    wide_fixture fx;
    wide_fixture_fill(&fx);
    gp_test_wide_Wide resp = {0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_test_wide_Wider_Echo(stub, &fx.msg, &resp, &st), GP_OK);
    wide_fixture_check(&resp);
    gp_msg_release(gp_test_wide_Wider_Echo_method.resp_pb, &resp);
    GP_CHECK(resp.tags == NULL && resp.inner.blob.data == NULL);
    wide_fixture_free(&fx);

    /* Oneof members of other kinds: a string, raw bytes (a pointer). */
    gp_test_wide_Wide one = {.which_choice = gp_test_wide_Wide_text_tag, .choice = {.text = "t"}};
    GP_CHECK_ERR(gp_test_wide_Wider_Echo(stub, &one, &resp, &st), GP_OK);
    GP_CHECK_INT(resp.which_choice, ==, gp_test_wide_Wide_text_tag);
    if (resp.which_choice == gp_test_wide_Wide_text_tag)
        GP_CHECK_STR(resp.choice.text, "t");
    gp_msg_release(gp_test_wide_Wide_fields, &resp);
    pb_bytes_array_t *raw = wide_bytes_array("raw!");
    one.which_choice = gp_test_wide_Wide_raw_tag;
    one.choice.raw = raw;
    GP_CHECK_ERR(gp_test_wide_Wider_Echo(stub, &one, &resp, &st), GP_OK);
    GP_CHECK(resp.which_choice == gp_test_wide_Wide_raw_tag && resp.choice.raw &&
             resp.choice.raw->size == 4 && memcmp(resp.choice.raw->bytes, "raw!", 4) == 0);
    gp_msg_release(gp_test_wide_Wide_fields, &resp);
    free(raw);
}

/* A later oneof member replaces an earlier one while decoding (protobuf's
 * merge): the earlier one's memory is freed, never reused as the new one's. */
GP_TEST(oneof_member_switch_frees_the_old_one)
{
    gp_test_wide_Wide a = {.which_choice = gp_test_wide_Wide_text_tag,
                           .choice = {.text = "old text"}};
    gp_test_wide_Wide b = {.which_choice = gp_test_wide_Wide_nested_tag,
                           .choice = {.nested = {.name = "new", .blob = {(uint8_t *)"xy", 2}}}};
    uint8_t buf[256];
    size_t na = 0, nb = 0;
    char err[128];
    GP_CHECK_ERR(gp__msg_encode_buf(gp_test_wide_Wide_fields, &a, buf, sizeof buf, &na, "a", err,
                                    sizeof err),
                 GP_OK);
    GP_CHECK_ERR(gp__msg_encode_buf(gp_test_wide_Wide_fields, &b, buf + na, sizeof buf - na, &nb,
                                    "b", err, sizeof err),
                 GP_OK);
    gp_test_wide_Wide out = {0};
    GP_CHECK_ERR(
        gp__msg_decode_buf(gp_test_wide_Wide_fields, buf, na + nb, &out, "a+b", err, sizeof err),
        GP_OK);
    GP_CHECK_INT(out.which_choice, ==, gp_test_wide_Wide_nested_tag);
    if (out.which_choice == gp_test_wide_Wide_nested_tag) {
        GP_CHECK_STR(out.choice.nested.name, "new");
        GP_CHECK(out.choice.nested.blob.len == 2 &&
                 memcmp(out.choice.nested.blob.data, "xy", 2) == 0);
    }
    gp_msg_release(gp_test_wide_Wide_fields, &out);
}

GP_TEST(recursive_and_imported_types)
{
    gp_test_wide_Wider_service svc;
    loop l;
    gp_stub *stub = loop_open(&l, gp_test_wide_Wider_register(&svc, "wide", &wider_vtable, NULL));

    gp_test_wide_Node leaf_l = {.name = "l"}, leaf_r = {.name = "r"};
    gp_test_wide_Node kids[] = {{.name = "k1"}, {.name = "k2", .left = &leaf_l}};
    gp_test_wide_Node root = {
        .name = "root", .left = &leaf_l, .right = &leaf_r, .children_count = 2, .children = kids};
    gp_test_wide_Node out = {0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_test_wide_Wider_Walk(stub, &root, &out, &st), GP_OK);
    GP_CHECK_STR(out.name, "root,l,r,k1,k2,l,");
    gp_msg_release(gp_test_wide_Node_fields, &out);

    gp_test_common_Point p = {.x = 40, .y = 2, .label = "answer"};
    gp_test_wide_Scalars sc = {0};
    GP_CHECK_ERR(gp_test_wide_Wider_Where(stub, &p, &sc, &st), GP_OK);
    GP_CHECK_INT(sc.f_int32, ==, 42);
    GP_CHECK_STR(sc.f_string, "answer");
    GP_CHECK_STR(sc.maybe_name, "here");
    gp_msg_release(gp_test_wide_Scalars_fields, &sc);

    google_protobuf_Empty e1 = {0}, e2 = {0};
    GP_CHECK_ERR(gp_test_wide_Wider_Ping(stub, &e1, &e2, &st), GP_EUNSUPPORTED);
    GP_CHECK_STR(st.msg, "/gp.test.wide.Wider/Ping is not implemented by this plugin");
}

GP_TEST(services_without_unary_methods_register_empty)
{
    Lonely_server vt = {0};
    Lonely_service svc;
    const gp_service *s = Lonely_register(&svc, "lonely", &vt, NULL);
    GP_CHECK_INT(s->nmethods, ==, 0);
    GP_CHECK_STR(s->name, "lonely");

    /* Two services of one file are independent. */
    gp_test_wide_Second_server second = {0};
    gp_test_wide_Second_service s2;
    const gp_service *g = gp_test_wide_Second_register(&s2, "second", &second, NULL);
    GP_CHECK_INT(g->nmethods, ==, 1);
    GP_CHECK(g->methods[0].method == &gp_test_wide_Second_Get_method);
}

/* ---- well-known types ---- */

static gp_err record(void *impl, const gp_test_wkt_Event *req, google_protobuf_Timestamp *resp,
                     gp_status *st)
{
    (void)impl;
    if (!req->has_at || !req->has_took || !req->has_who || !req->who.value || !req->has_payload ||
        !req->has_detail || !req->detail.type_url || req->detail.value.len != 3 ||
        !req->has_attrs || req->attrs.fields_count != 1 || !req->has_mask ||
        req->mask.paths_count != 2) {
        snprintf(st->msg, sizeof st->msg, "event arrived incomplete");
        return GP_EINVAL;
    }
    const google_protobuf_Struct_FieldsEntry *e = &req->attrs.fields[0];
    if (!e->key || strcmp(e->key, "k") != 0 || !e->has_value ||
        e->value.which_kind != google_protobuf_Value_string_value_tag ||
        strcmp(e->value.kind.string_value, "v") != 0 || req->payload.value.len != 2) {
        snprintf(st->msg, sizeof st->msg, "event fields arrived wrong");
        return GP_EINVAL;
    }
    resp->seconds = req->at.seconds + req->took.seconds;
    resp->nanos = (int32_t)strlen(req->who.value);
    return GP_OK;
}

GP_TEST(well_known_types_round_trip)
{
    static const gp_test_wkt_Events_server vt = {.Record = record};
    gp_test_wkt_Events_service svc;
    loop l;
    gp_stub *stub = loop_open(&l, gp_test_wkt_Events_register(&svc, "events", &vt, NULL));

    char *paths[] = {"a.b", "c"};
    google_protobuf_Struct_FieldsEntry fields[] = {{
        .key = "k",
        .has_value = true,
        .value = {.which_kind = google_protobuf_Value_string_value_tag,
                  .kind = {.string_value = "v"}},
    }};
    gp_test_wkt_Event ev = {
        .has_at = true,
        .at = {.seconds = 1000},
        .has_took = true,
        .took = {.seconds = 5},
        .has_who = true,
        .who = {.value = "someone"},
        .has_payload = true,
        .payload = {.value = {(uint8_t *)"pl", 2}},
        .has_detail = true,
        .detail = {.type_url = "type.googleapis.com/x.Y", .value = {(uint8_t *)"abc", 3}},
        .has_attrs = true,
        .attrs = {.fields_count = 1, .fields = fields},
        .has_mask = true,
        .mask = {.paths_count = 2, .paths = paths},
    };
    google_protobuf_Timestamp ts = {0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_test_wkt_Events_Record(stub, &ev, &ts, &st), GP_OK);
    GP_CHECK_STR(st.msg, "");
    GP_CHECK_INT(ts.seconds, ==, 1005);
    GP_CHECK_INT(ts.nanos, ==, 7);
    GP_CHECK(gp_test_wkt_Events_Record_method.resp_pb == google_protobuf_Timestamp_fields);
    gp_msg_release(google_protobuf_Timestamp_fields, &ts);
}

int main(void)
{
    GP_RUN(descriptors_name_paths_and_tables);
    GP_RUN(register_fills_a_servable_service);
    GP_RUN(stubs_call_through_gp_invoke);
    GP_RUN(wide_messages_round_trip);
    GP_RUN(oneof_member_switch_frees_the_old_one);
    GP_RUN(recursive_and_imported_types);
    GP_RUN(services_without_unary_methods_register_empty);
    GP_RUN(well_known_types_round_trip);
    return gp_test_done();
}
