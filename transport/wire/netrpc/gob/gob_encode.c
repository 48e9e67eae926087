/* gob encoder: type definitions once per stream, then value messages.
 * See gob.h. */
#include "transport/wire/netrpc/gob/gob.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct sent_type {
    const gp_gob_type *t;
    int64_t id;
} sent_type;

struct gp__gob_encoder {
    sent_type *sent;
    size_t nsent, cap; /* [0, nsent) are on the wire; staged ones follow */
    size_t nstaged;
    int64_t next_id;
    /* One message's body before its length prefix: kept between calls so
     * a call allocates nothing (dropped when a big value grew it). */
    gp__gob_buf body;
};

#define BODY_KEEP (64 * 1024)

void gp__gob_encoder_set_next_id(gp__gob_encoder *e, int64_t id)
{
    if (id >= GP_GOB_FIRST_USER_ID)
        e->next_id = id;
}

gp_err gp__gob_encoder_new(gp__gob_encoder **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return GP_ENOMEM;
    (*out)->next_id = GP_GOB_FIRST_ENCODER_ID;
    return GP_OK;
}

void gp__gob_encoder_free(gp__gob_encoder *e)
{
    if (!e)
        return;
    free(e->sent);
    gp__gob_buf_free(&e->body);
    free(e);
}

typedef struct enc_ctx {
    gp__gob_encoder *e;
    char *err;
    size_t errlen;
    gp_err failed;
} enc_ctx;

static gp_err fail(enc_ctx *c, gp_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static gp_err fail(enc_ctx *c, gp_err code, const char *fmt, ...)
{
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
        c->failed = code;
    }
    return c->failed;
}

static int predefined_kind(gp_gob_kind k)
{
    return k >= GP_GOB_BOOL && k <= GP_GOB_INTERFACE;
}

static int64_t id_of(gp__gob_encoder *e, const gp_gob_type *t)
{
    if (predefined_kind(t->kind))
        return (int64_t)t->kind;
    for (size_t i = 0; i < e->nsent + e->nstaged; i++)
        if (e->sent[i].t == t)
            return e->sent[i].id;
    return 0;
}

static const char *tname(const gp_gob_type *t)
{
    return t->name && t->name[0] ? t->name : "(unnamed)";
}

/* Stages t and everything it refers to, outer type first (as Go). */
static gp_err stage_type(enc_ctx *c, const gp_gob_type *t, int depth)
{
    gp__gob_encoder *e = c->e;
    if (!t)
        return fail(c, GP_EINVAL, "gob: encode: a type is missing (NULL)");
    if (depth > MAX_DEPTH)
        return fail(c, GP_EINVAL, "gob: encode: types nested deeper than %d", MAX_DEPTH);
    if (t->kind < GP_GOB_BOOL || t->kind > GP_GOB_OPAQUE)
        return fail(c, GP_EINVAL, "gob: encode: type %s has unknown kind %d", tname(t),
                    (int)t->kind);
    if (id_of(e, t))
        return GP_OK;
    if (e->nsent + e->nstaged == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        sent_type *s = realloc(e->sent, cap * sizeof *s);
        if (!s)
            return fail(c, GP_ENOMEM, "gob: encode: out of memory");
        e->sent = s;
        e->cap = cap;
    }
    e->sent[e->nsent + e->nstaged++] = (sent_type){t, e->next_id++};
    switch (t->kind) {
    case GP_GOB_STRUCT:
        if (t->nfields && !t->fields)
            return fail(c, GP_EINVAL, "gob: encode: struct %s has %zu fields but no field list",
                        tname(t), t->nfields);
        for (size_t i = 0; i < t->nfields; i++)
            if (stage_type(c, t->fields[i].type, depth + 1) != GP_OK)
                return c->failed;
        return GP_OK;
    case GP_GOB_MAP:
        if (stage_type(c, t->key, depth + 1) != GP_OK)
            return c->failed;
        /* fall through */
    case GP_GOB_SLICE:
    case GP_GOB_ARRAY:
        return stage_type(c, t->elem, depth + 1);
    default:
        return GP_OK;
    }
}

/* Interface values carry types the type graph does not show. */
static gp_err stage_value(enc_ctx *c, const gp__gob_value *v, int depth)
{
    if (!v->type)
        return GP_OK;
    if (depth > MAX_DEPTH)
        return fail(c, GP_EINVAL, "gob: encode: value nested deeper than %d", MAX_DEPTH);
    switch (v->type->kind) {
    case GP_GOB_INTERFACE:
        if (v->u.iface.name && v->u.iface.name[0] && v->u.iface.value) {
            if (stage_type(c, v->u.iface.value->type, 0) != GP_OK)
                return c->failed;
            return stage_value(c, v->u.iface.value, depth + 1);
        }
        return GP_OK;
    case GP_GOB_STRUCT:
    case GP_GOB_SLICE:
    case GP_GOB_ARRAY:
    case GP_GOB_MAP: {
        size_t n = v->u.list.len * (v->type->kind == GP_GOB_MAP ? 2 : 1);
        if (v->u.list.items)
            for (size_t i = 0; i < n; i++)
                if (stage_value(c, &v->u.list.items[i], depth + 1) != GP_OK)
                    return c->failed;
        return GP_OK;
    }
    default:
        return GP_OK;
    }
}

static void put_common(gp__gob_buf *b, const gp_gob_type *t, int64_t id)
{
    gp__gob_put_uint(b, 1); /* field 0: CommonType */
    if (t->name && t->name[0]) {
        gp__gob_put_uint(b, 1);
        gp__gob_put_string(b, t->name, strlen(t->name));
        gp__gob_put_uint(b, 1);
    } else {
        gp__gob_put_uint(b, 2); /* Name omitted: straight to Id */
    }
    gp__gob_put_int(b, id);
    gp__gob_put_uint(b, 0);
}

static void put_definition(gp__gob_encoder *e, gp__gob_buf *b, const gp_gob_type *t, int64_t id)
{
    gp__gob_put_int(b, -id);
    switch (t->kind) {
    case GP_GOB_ARRAY:
        gp__gob_put_uint(b, 1); /* wireType.ArrayT */
        put_common(b, t, id);
        gp__gob_put_uint(b, 1);
        gp__gob_put_int(b, id_of(e, t->elem));
        if (t->len) {
            gp__gob_put_uint(b, 1);
            gp__gob_put_int(b, (int64_t)t->len);
        }
        break;
    case GP_GOB_SLICE:
        gp__gob_put_uint(b, 2); /* SliceT */
        put_common(b, t, id);
        gp__gob_put_uint(b, 1);
        gp__gob_put_int(b, id_of(e, t->elem));
        break;
    case GP_GOB_STRUCT:
        gp__gob_put_uint(b, 3); /* StructT */
        put_common(b, t, id);
        if (t->nfields) {
            gp__gob_put_uint(b, 1);
            gp__gob_put_uint(b, t->nfields);
            for (size_t i = 0; i < t->nfields; i++) {
                const char *n = t->fields[i].name ? t->fields[i].name : "";
                if (n[0]) {
                    gp__gob_put_uint(b, 1);
                    gp__gob_put_string(b, n, strlen(n));
                    gp__gob_put_uint(b, 1);
                } else {
                    gp__gob_put_uint(b, 2);
                }
                gp__gob_put_int(b, id_of(e, t->fields[i].type));
                gp__gob_put_uint(b, 0);
            }
        }
        break;
    case GP_GOB_MAP:
        gp__gob_put_uint(b, 4); /* MapT */
        put_common(b, t, id);
        gp__gob_put_uint(b, 1);
        gp__gob_put_int(b, id_of(e, t->key));
        gp__gob_put_uint(b, 1);
        gp__gob_put_int(b, id_of(e, t->elem));
        break;
    default: /* OPAQUE: GobEncoderT */
        gp__gob_put_uint(b, 5);
        put_common(b, t, id);
        break;
    }
    gp__gob_put_uint(b, 0); /* end of the kind's struct */
    gp__gob_put_uint(b, 0); /* end of wireType */
}

/* Appends body as one message: uint(length) then the bytes. */
static void put_message(gp__gob_buf *out, const gp__gob_buf *body)
{
    if (!body->ok) {
        out->ok = 0;
        return;
    }
    gp__gob_put_uint(out, body->len);
    gp__gob_put_bytes(out, body->data, body->len);
}

static int is_zero(const gp__gob_value *v)
{
    switch (v->type->kind) {
    case GP_GOB_BOOL:
        return !v->u.b;
    case GP_GOB_INT:
        return v->u.i == 0;
    case GP_GOB_UINT:
        return v->u.u == 0;
    case GP_GOB_FLOAT:
        return v->u.f == 0;
    case GP_GOB_COMPLEX:
        return v->u.c[0] == 0 && v->u.c[1] == 0;
    case GP_GOB_BYTES:
    case GP_GOB_STRING:
    case GP_GOB_OPAQUE:
        return v->u.bytes.len == 0;
    case GP_GOB_SLICE:
    case GP_GOB_MAP:
        return v->u.list.len == 0;
    case GP_GOB_INTERFACE:
        return !v->u.iface.name || !v->u.iface.name[0] || !v->u.iface.value;
    /* A struct value with no items is a nil pointer (a message field that is
     * not set, or a type that contains itself): Go omits those. Other
     * structs and arrays are always sent, as Go. */
    case GP_GOB_STRUCT:
        return !v->u.list.items && v->type->nfields > 0;
    default:
        return 0;
    }
}

static gp_err enc_value(enc_ctx *c, gp__gob_buf *b, const gp__gob_value *v, int depth);

static gp_err enc_struct(enc_ctx *c, gp__gob_buf *b, const gp__gob_value *v, int depth)
{
    const gp_gob_type *t = v->type;
    if (v->u.list.items && v->u.list.len != t->nfields)
        return fail(c, GP_EINVAL, "gob: encode: struct %s value has %zu items for %zu fields",
                    tname(t), v->u.list.len, t->nfields);
    size_t last = (size_t)-1;
    for (size_t i = 0; i < t->nfields; i++) {
        gp__gob_value zero = {.type = t->fields[i].type};
        const gp__gob_value *f = v->u.list.items ? &v->u.list.items[i] : &zero;
        if (!f->type)
            f = &zero;
        if (f->type != t->fields[i].type)
            return fail(c, GP_EINVAL, "gob: encode: field %s of struct %s holds a %s, expected %s",
                        t->fields[i].name, tname(t), tname(f->type), tname(t->fields[i].type));
        if (is_zero(f))
            continue;
        gp__gob_put_uint(b, i - last);
        if (enc_value(c, b, f, depth + 1) != GP_OK)
            return c->failed;
        last = i;
    }
    gp__gob_put_uint(b, 0);
    return GP_OK;
}

/* Structs as they are; anything else after a zero delta (Go's singleton). */
static gp_err enc_top(enc_ctx *c, gp__gob_buf *b, const gp__gob_value *v, int depth)
{
    if (v->type->kind == GP_GOB_STRUCT)
        return enc_struct(c, b, v, depth);
    gp__gob_put_uint(b, 0);
    return enc_value(c, b, v, depth);
}

static gp_err enc_items(enc_ctx *c, gp__gob_buf *b, const gp__gob_value *v, size_t n, int depth)
{
    const gp_gob_type *t = v->type;
    int pairs = t->kind == GP_GOB_MAP;
    gp__gob_put_uint(b, n);
    for (size_t i = 0; i < n * (pairs ? 2 : 1); i++) {
        const gp_gob_type *want = pairs && i % 2 == 0 ? t->key : t->elem;
        gp__gob_value zero = {.type = want};
        const gp__gob_value *item = v->u.list.items ? &v->u.list.items[i] : &zero;
        if (!item->type)
            item = &zero;
        if (item->type != want)
            return fail(c, GP_EINVAL, "gob: encode: element of %s holds a %s, expected %s",
                        tname(t), tname(item->type), tname(want));
        if (enc_value(c, b, item, depth + 1) != GP_OK)
            return c->failed;
    }
    return GP_OK;
}

static gp_err enc_value(enc_ctx *c, gp__gob_buf *b, const gp__gob_value *v, int depth)
{
    const gp_gob_type *t = v->type;
    if (depth > MAX_DEPTH)
        return fail(c, GP_EINVAL, "gob: encode: value nested deeper than %d", MAX_DEPTH);
    switch (t->kind) {
    case GP_GOB_BOOL:
        gp__gob_put_uint(b, v->u.b ? 1 : 0);
        return GP_OK;
    case GP_GOB_INT:
        gp__gob_put_int(b, v->u.i);
        return GP_OK;
    case GP_GOB_UINT:
        gp__gob_put_uint(b, v->u.u);
        return GP_OK;
    case GP_GOB_FLOAT:
        gp__gob_put_float(b, v->u.f);
        return GP_OK;
    case GP_GOB_COMPLEX:
        gp__gob_put_float(b, v->u.c[0]);
        gp__gob_put_float(b, v->u.c[1]);
        return GP_OK;
    case GP_GOB_BYTES:
    case GP_GOB_STRING:
    case GP_GOB_OPAQUE:
        if (v->u.bytes.len && !v->u.bytes.data)
            return fail(c, GP_EINVAL, "gob: encode: %zu bytes of %s with no data", v->u.bytes.len,
                        tname(t));
        gp__gob_put_string(b, v->u.bytes.data, v->u.bytes.len);
        return GP_OK;
    case GP_GOB_STRUCT:
        return enc_struct(c, b, v, depth);
    case GP_GOB_SLICE:
    case GP_GOB_MAP:
        if (v->u.list.len && !v->u.list.items)
            return fail(c, GP_EINVAL, "gob: encode: %s of %zu elements with no items", tname(t),
                        v->u.list.len);
        return enc_items(c, b, v, v->u.list.len, depth);
    case GP_GOB_ARRAY:
        if (v->u.list.items && v->u.list.len != t->len)
            return fail(c, GP_EINVAL,
                        "gob: encode: array %s value has %zu elements, type says %llu", tname(t),
                        v->u.list.len, (unsigned long long)t->len);
        if (t->len > b->max)
            return fail(c, GP_EMSGSIZE, "gob: encode: array of %llu elements",
                        (unsigned long long)t->len);
        return enc_items(c, b, v, (size_t)t->len, depth);
    case GP_GOB_INTERFACE: {
        if (is_zero(v)) {
            gp__gob_put_uint(b, 0); /* nil interface: empty name */
            return GP_OK;
        }
        const gp__gob_value *inner = v->u.iface.value;
        gp__gob_put_string(b, v->u.iface.name, strlen(v->u.iface.name));
        gp__gob_put_int(b, id_of(c->e, inner->type));
        gp__gob_buf sub;
        gp__gob_buf_init(&sub, b->max);
        gp_err e = enc_top(c, &sub, inner, depth + 1);
        if (e == GP_OK)
            put_message(b, &sub); /* the value's byte count, then the value */
        gp__gob_buf_free(&sub);
        return e;
    }
    }
    return fail(c, GP_EINVAL, "gob: encode: unknown kind %d", (int)t->kind);
}

gp_err gp__gob_encode(gp__gob_encoder *e, const gp__gob_value *v, gp__gob_buf *out, char *err,
                      size_t errlen)
{
    enc_ctx c = {e, err, errlen, GP_OK};
    if (errlen)
        err[0] = '\0';
    size_t start = out->len;
    int was_ok = out->ok;
    int64_t next_id = e->next_id;
    e->nstaged = 0;
    gp__gob_buf body = e->body; /* its storage, reused */
    body.len = 0;
    body.ok = 1;
    body.max = out->max;
    if (!v || !v->type)
        fail(&c, GP_EINVAL, "gob: encode: a value without a type");
    else if (stage_type(&c, v->type, 0) == GP_OK)
        stage_value(&c, v, 0);
    for (size_t i = 0; !c.failed && i < e->nstaged; i++) {
        const sent_type *s = &e->sent[e->nsent + i];
        body.len = 0;
        put_definition(e, &body, s->t, s->id);
        put_message(out, &body);
    }
    if (!c.failed) {
        body.len = 0;
        gp__gob_put_int(&body, id_of(e, v->type));
        if (enc_top(&c, &body, v, 0) == GP_OK)
            put_message(out, &body);
    }
    if (body.cap > BODY_KEEP)
        gp__gob_buf_free(&body);
    e->body = body;
    if (!c.failed && !out->ok)
        fail(&c, GP_EMSGSIZE, "gob: encode: message over the %zu byte limit (or out of memory)",
             out->max);
    if (c.failed) {
        out->len = start;
        out->ok = was_ok;
        e->nstaged = 0;
        e->next_id = next_id;
        return c.failed;
    }
    e->nsent += e->nstaged;
    e->nstaged = 0;
    return GP_OK;
}
