/* net/rpc header and body values over gob: see gob_rpc.h. */
#include "transport/wire/netrpc/gob/gob_rpc.h"

#include <stdio.h>
#include <string.h>

static const gp_gob_field request_fields[] = {
    {"ServiceMethod", &gp_gob_string_type, 0},
    {"Seq", &gp_gob_uint_type, 0},
};
const gp_gob_type gp__gob_rpc_request_type = {
    .kind = GP_GOB_STRUCT, .name = "Request", .fields = request_fields, .nfields = 2};

static const gp_gob_field response_fields[] = {
    {"ServiceMethod", &gp_gob_string_type, 0},
    {"Seq", &gp_gob_uint_type, 0},
    {"Error", &gp_gob_string_type, 0},
};
const gp_gob_type gp__gob_rpc_response_type = {
    .kind = GP_GOB_STRUCT, .name = "Response", .fields = response_fields, .nfields = 3};

static gp__gob_value str_value(const char *s)
{
    gp__gob_value v = {.type = &gp_gob_string_type};
    v.u.bytes.data = (uint8_t *)s;
    v.u.bytes.len = s ? strlen(s) : 0;
    return v;
}

gp_err gp__gob_put_request(gp__gob_encoder *e, gp__gob_buf *out, const char *method, uint64_t seq,
                           char *err, size_t errlen)
{
    gp__gob_value items[2] = {str_value(method), {.type = &gp_gob_uint_type}};
    items[1].u.u = seq;
    gp__gob_value v = {.type = &gp__gob_rpc_request_type};
    v.u.list.items = items;
    v.u.list.len = 2;
    return gp__gob_encode(e, &v, out, err, errlen);
}

gp_err gp__gob_put_response(gp__gob_encoder *e, gp__gob_buf *out, const char *method, uint64_t seq,
                            const char *error, char *err, size_t errlen)
{
    gp__gob_value items[3] = {str_value(method), {.type = &gp_gob_uint_type}, str_value(error)};
    items[1].u.u = seq;
    gp__gob_value v = {.type = &gp__gob_rpc_response_type};
    v.u.list.items = items;
    v.u.list.len = 3;
    return gp__gob_encode(e, &v, out, err, errlen);
}

gp_err gp__gob_put_bool_value(gp__gob_encoder *e, gp__gob_buf *out, int b, char *err, size_t errlen)
{
    gp__gob_value v = {.type = &gp_gob_bool_type};
    v.u.b = b != 0;
    return gp__gob_encode(e, &v, out, err, errlen);
}

gp_err gp__gob_put_string_value(gp__gob_encoder *e, gp__gob_buf *out, const char *s, char *err,
                                size_t errlen)
{
    gp__gob_value v = str_value(s);
    return gp__gob_encode(e, &v, out, err, errlen);
}

gp_err gp__gob_put_uint_value(gp__gob_encoder *e, gp__gob_buf *out, uint64_t u, char *err,
                              size_t errlen)
{
    gp__gob_value v = {.type = &gp_gob_uint_type};
    v.u.u = u;
    return gp__gob_encode(e, &v, out, err, errlen);
}

gp_err gp__gob_put_empty_struct(gp__gob_encoder *e, gp__gob_buf *out, char *err, size_t errlen)
{
    gp__gob_value v = {.type = &gp_gob_empty_struct_type};
    return gp__gob_encode(e, &v, out, err, errlen);
}

static const char *kind_name(gp_gob_kind k)
{
    static const char *names[] = {"?",      "bool",   "int",     "uint",      "float",
                                  "[]byte", "string", "complex", "interface", "struct",
                                  "slice",  "array",  "map",     "marshaler"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* A field of kind `want`, or NULL when absent. */
static gp_err field_of(const gp__gob_value *v, const char *what, const char *name, gp_gob_kind want,
                       const gp__gob_value **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!v || !v->type || v->type->kind != GP_GOB_STRUCT) {
        snprintf(err, errlen, "net/rpc: expected a %s struct, got a %s", what,
                 v && v->type ? kind_name(v->type->kind) : "nothing");
        return GP_EPROTO;
    }
    const gp__gob_value *f = gp__gob_field(v, name);
    if (f && f->type && f->type->kind != want) {
        snprintf(err, errlen, "net/rpc: %s field %s is a %s, expected a %s", what, name,
                 kind_name(f->type->kind), kind_name(want));
        return GP_EPROTO;
    }
    *out = f;
    return GP_OK;
}

static const char *str_of(const gp__gob_value *f)
{
    return f && f->u.bytes.data ? (const char *)f->u.bytes.data : "";
}

gp_err gp__gob_get_request(const gp__gob_value *v, const char **method, uint64_t *seq, char *err,
                           size_t errlen)
{
    const gp__gob_value *m, *s;
    if (field_of(v, "request header", "ServiceMethod", GP_GOB_STRING, &m, err, errlen) ||
        field_of(v, "request header", "Seq", GP_GOB_UINT, &s, err, errlen))
        return GP_EPROTO;
    *method = str_of(m);
    *seq = s ? s->u.u : 0;
    return GP_OK;
}

gp_err gp__gob_get_response(const gp__gob_value *v, const char **method, uint64_t *seq,
                            const char **error, char *err, size_t errlen)
{
    const gp__gob_value *m, *s, *e;
    if (field_of(v, "response header", "ServiceMethod", GP_GOB_STRING, &m, err, errlen) ||
        field_of(v, "response header", "Seq", GP_GOB_UINT, &s, err, errlen) ||
        field_of(v, "response header", "Error", GP_GOB_STRING, &e, err, errlen))
        return GP_EPROTO;
    *method = str_of(m);
    *seq = s ? s->u.u : 0;
    *error = str_of(e);
    return GP_OK;
}

static gp_err expect_kind(const gp__gob_value *v, gp_gob_kind k, char *err, size_t errlen)
{
    if (v && v->type && v->type->kind == k)
        return GP_OK;
    snprintf(err, errlen, "net/rpc: expected a %s value, got a %s", kind_name(k),
             v && v->type ? kind_name(v->type->kind) : "nothing");
    return GP_EPROTO;
}

gp_err gp__gob_get_bool(const gp__gob_value *v, int *b, char *err, size_t errlen)
{
    if (expect_kind(v, GP_GOB_BOOL, err, errlen))
        return GP_EPROTO;
    *b = v->u.b;
    return GP_OK;
}

gp_err gp__gob_get_string(const gp__gob_value *v, const char **s, char *err, size_t errlen)
{
    if (expect_kind(v, GP_GOB_STRING, err, errlen))
        return GP_EPROTO;
    *s = str_of(v);
    return GP_OK;
}

gp_err gp__gob_get_uint(const gp__gob_value *v, uint64_t *u, char *err, size_t errlen)
{
    if (expect_kind(v, GP_GOB_UINT, err, errlen))
        return GP_EPROTO;
    *u = v->u.u;
    return GP_OK;
}
