/* gob decoder: type definitions and value trees. See gob.h. */
#include "transport/wire/netrpc/gob/gob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 1024

const gp_gob_type gp_gob_bool_type = {.kind = GP_GOB_BOOL, .name = "bool"};
const gp_gob_type gp_gob_int_type = {.kind = GP_GOB_INT, .name = "int"};
const gp_gob_type gp_gob_uint_type = {.kind = GP_GOB_UINT, .name = "uint"};
const gp_gob_type gp_gob_float_type = {.kind = GP_GOB_FLOAT, .name = "float"};
const gp_gob_type gp_gob_bytes_type = {.kind = GP_GOB_BYTES, .name = "bytes"};
const gp_gob_type gp_gob_string_type = {.kind = GP_GOB_STRING, .name = "string"};
const gp_gob_type gp_gob_complex_type = {.kind = GP_GOB_COMPLEX, .name = "complex"};
const gp_gob_type gp_gob_interface_type = {.kind = GP_GOB_INTERFACE, .name = "interface"};
const gp_gob_type gp_gob_empty_struct_type = {.kind = GP_GOB_STRUCT, .name = ""};

static const gp_gob_type *const predefined[9] = {
    NULL,
    &gp_gob_bool_type,
    &gp_gob_int_type,
    &gp_gob_uint_type,
    &gp_gob_float_type,
    &gp_gob_bytes_type,
    &gp_gob_string_type,
    &gp_gob_complex_type,
    &gp_gob_interface_type,
};

/* A type the peer defined. `t` gets its pointers when first used. */
typedef struct wtype {
    int64_t id;
    gp_gob_type t;
    char *name;
    int64_t elem_id, key_id;
    int64_t *field_ids;
    gp_gob_field *fields;
    size_t nfields;
    int resolved;
} wtype;

struct gp__gob_decoder {
    gp__gob_limits lim;
    wtype **types;
    size_t ntypes, cap;
    size_t nodes_left; /* of this message's budget */
    int broken;
};

static const char *kind_word(gp_gob_kind k)
{
    switch (k) {
    case GP_GOB_STRUCT:
        return "struct";
    case GP_GOB_SLICE:
        return "slice";
    case GP_GOB_ARRAY:
        return "array";
    case GP_GOB_MAP:
        return "map";
    case GP_GOB_OPAQUE:
        return "marshaler";
    default:
        return "basic";
    }
}

gp_err gp__gob_decoder_new(const gp__gob_limits *lim, gp__gob_decoder **out)
{
    *out = NULL;
    gp__gob_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return GP_ENOMEM;
    if (lim)
        d->lim = *lim;
    if (!d->lim.max_message)
        d->lim.max_message = (size_t)64 << 20;
    if (d->lim.max_depth <= 0)
        d->lim.max_depth = 64;
    if (!d->lim.max_types)
        d->lim.max_types = 4096;
    if (!d->lim.max_nodes)
        d->lim.max_nodes = (size_t)1 << 20;
    *out = d;
    return GP_OK;
}

static void wtype_free(wtype *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nfields; i++)
        free((char *)w->fields[i].name);
    free(w->fields);
    free(w->field_ids);
    free(w->name);
    free(w);
}

void gp__gob_decoder_free(gp__gob_decoder *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->ntypes; i++)
        wtype_free(d->types[i]);
    free(d->types);
    free(d);
}

size_t gp__gob_decoder_max_message(const gp__gob_decoder *d)
{
    return d->lim.max_message;
}

static wtype *find(gp__gob_decoder *d, int64_t id)
{
    for (size_t i = 0; i < d->ntypes; i++)
        if (d->types[i]->id == id)
            return d->types[i];
    return NULL;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Reads the next field number of a struct encoding into *field (-1 to
 * start); *field = -1 at the terminator. nfields bounds it. */
static gp_err next_field(gp__gob_rd *r, int64_t *field, int64_t nfields, const char *in)
{
    uint64_t delta;
    if (gp__gob_read_uint(r, &delta) != GP_OK)
        return GP_EPROTO;
    if (delta == 0) {
        *field = -1;
        return GP_OK;
    }
    if (delta > (uint64_t)(nfields - 1 - *field))
        return gp__gob_rd_fail(r,
                               "gob: field delta %llu after field %lld is out of range for %s "
                               "(%lld fields)",
                               (unsigned long long)delta, (long long)*field, in,
                               (long long)nfields);
    *field += (int64_t)delta;
    return GP_OK;
}

/* ---- type definitions --------------------------------------------------- */

/* CommonType{Name string; Id int} */
static gp_err read_common(gp__gob_rd *r, wtype *w)
{
    int64_t f = -1;
    for (;;) {
        if (next_field(r, &f, 2, "CommonType") != GP_OK)
            return GP_EPROTO;
        if (f < 0)
            return GP_OK;
        if (f == 0) {
            const uint8_t *p;
            size_t n;
            if (gp__gob_read_bytes(r, "type name", &p, &n) != GP_OK)
                return GP_EPROTO;
            if (n > MAX_NAME)
                return gp__gob_rd_fail(r, "gob: type name of %zu bytes, limit %d", n, MAX_NAME);
            free(w->name);
            if (!(w->name = dup_bytes(p, n)))
                return gp__gob_rd_fail(r, "gob: out of memory");
        } else {
            int64_t id;
            if (gp__gob_read_int(r, &id) != GP_OK)
                return GP_EPROTO;
        }
    }
}

static gp_err read_type_id(gp__gob_rd *r, int64_t *id, const char *what)
{
    if (gp__gob_read_int(r, id) != GP_OK)
        return GP_EPROTO;
    if (*id <= 0)
        return gp__gob_rd_fail(r, "gob: %s type id %lld, expected a positive id", what,
                               (long long)*id);
    return GP_OK;
}

/* fieldType{Name string; Id int} */
static gp_err read_field_type(gp__gob_rd *r, wtype *w, size_t i)
{
    int64_t f = -1;
    for (;;) {
        if (next_field(r, &f, 2, "fieldType") != GP_OK)
            return GP_EPROTO;
        if (f < 0)
            break;
        if (f == 0) {
            const uint8_t *p;
            size_t n;
            if (gp__gob_read_bytes(r, "field name", &p, &n) != GP_OK)
                return GP_EPROTO;
            if (n > MAX_NAME)
                return gp__gob_rd_fail(r, "gob: field name of %zu bytes, limit %d", n, MAX_NAME);
            free((char *)w->fields[i].name);
            if (!(w->fields[i].name = dup_bytes(p, n)))
                return gp__gob_rd_fail(r, "gob: out of memory");
        } else if (read_type_id(r, &w->field_ids[i], "field") != GP_OK) {
            return GP_EPROTO;
        }
    }
    if (!w->fields[i].name && !(w->fields[i].name = dup_bytes((const uint8_t *)"", 0)))
        return gp__gob_rd_fail(r, "gob: out of memory");
    if (w->field_ids[i] == 0)
        return gp__gob_rd_fail(r, "gob: field %s of a struct definition has no type id",
                               w->fields[i].name);
    return GP_OK;
}

/* The body of arrayType / sliceType / structType / mapType / CommonType. */
static gp_err read_kind(gp__gob_rd *r, wtype *w, int64_t which)
{
    static const int64_t nfields[] = {3, 2, 2, 3, 1, 1, 1};
    static const char *names[] = {"arrayType",  "sliceType",       "structType",   "mapType",
                                  "GobEncoder", "BinaryMarshaler", "TextMarshaler"};
    int64_t f = -1;
    for (;;) {
        if (next_field(r, &f, nfields[which], names[which]) != GP_OK)
            return GP_EPROTO;
        if (f < 0)
            break;
        if (f == 0) {
            if (read_common(r, w) != GP_OK)
                return GP_EPROTO;
            continue;
        }
        if (which == 0 && f == 2) { /* array Len */
            int64_t len;
            if (gp__gob_read_int(r, &len) != GP_OK)
                return GP_EPROTO;
            if (len < 0)
                return gp__gob_rd_fail(r, "gob: array length %lld", (long long)len);
            w->t.len = (uint64_t)len;
        } else if (which == 3 && f == 1) { /* map Key */
            if (read_type_id(r, &w->key_id, "map key") != GP_OK)
                return GP_EPROTO;
        } else if (which == 2) { /* struct Field []fieldType */
            uint64_t n;
            if (gp__gob_read_uint(r, &n) != GP_OK)
                return GP_EPROTO;
            if (n > r->left || w->fields)
                return gp__gob_rd_fail(r, "gob: struct definition with %llu fields in %zu bytes",
                                       (unsigned long long)n, r->left);
            w->fields = calloc(n ? n : 1, sizeof *w->fields);
            w->field_ids = calloc(n ? n : 1, sizeof *w->field_ids);
            if (!w->fields || !w->field_ids)
                return gp__gob_rd_fail(r, "gob: out of memory");
            w->nfields = n;
            for (size_t i = 0; i < n; i++)
                if (read_field_type(r, w, i) != GP_OK)
                    return GP_EPROTO;
        } else if (read_type_id(r, &w->elem_id, "element") != GP_OK) {
            return GP_EPROTO;
        }
    }
    static const gp_gob_kind kinds[] = {GP_GOB_ARRAY,  GP_GOB_SLICE,  GP_GOB_STRUCT, GP_GOB_MAP,
                                        GP_GOB_OPAQUE, GP_GOB_OPAQUE, GP_GOB_OPAQUE};
    w->t.kind = kinds[which];
    if ((which == 0 || which == 1 || which == 3) && w->elem_id == 0)
        return gp__gob_rd_fail(r, "gob: %s definition without an element type", names[which]);
    if (which == 3 && w->key_id == 0)
        return gp__gob_rd_fail(r, "gob: mapType definition without a key type");
    return GP_OK;
}

/* A definition of type `id`: a wireType value. */
static gp_err read_definition(gp__gob_decoder *d, gp__gob_rd *r, int64_t id)
{
    if (id < GP_GOB_FIRST_USER_ID)
        return gp__gob_rd_fail(r, "gob: definition of type id %lld, expected an id >= %d",
                               (long long)id, GP_GOB_FIRST_USER_ID);
    if (find(d, id))
        return gp__gob_rd_fail(r, "gob: duplicate definition of type id %lld", (long long)id);
    if (d->ntypes >= d->lim.max_types)
        return gp__gob_rd_fail(r, "gob: more than %zu type definitions on one stream",
                               d->lim.max_types);
    wtype *w = calloc(1, sizeof *w);
    if (!w)
        return gp__gob_rd_fail(r, "gob: out of memory");
    w->id = id;
    int64_t f = -1;
    int kinds = 0;
    gp_err e = GP_OK;
    for (;;) {
        if ((e = next_field(r, &f, 7, "wireType")) != GP_OK || f < 0)
            break;
        if (kinds++) {
            e = gp__gob_rd_fail(r, "gob: definition of type id %lld has more than one kind",
                                (long long)id);
            break;
        }
        if ((e = read_kind(r, w, f)) != GP_OK)
            break;
    }
    if (e == GP_OK && !kinds)
        e = gp__gob_rd_fail(r, "gob: empty definition of type id %lld", (long long)id);
    if (e == GP_OK && d->ntypes == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        wtype **t = realloc(d->types, cap * sizeof *t);
        if (!t)
            e = gp__gob_rd_fail(r, "gob: out of memory");
        else {
            d->types = t;
            d->cap = cap;
        }
    }
    if (e != GP_OK) {
        wtype_free(w);
        return e;
    }
    w->t.name = w->name ? w->name : "";
    w->t.fields = w->fields;
    w->t.nfields = w->nfields;
    d->types[d->ntypes++] = w;
    return GP_OK;
}

/* The type for `id`, its references resolved (cycles allowed). */
static const gp_gob_type *resolve(gp__gob_decoder *d, gp__gob_rd *r, int64_t id, int depth)
{
    if (id >= 1 && id <= 8)
        return predefined[id];
    if (depth > d->lim.max_depth) {
        gp__gob_rd_fail(r, "gob: types nested deeper than %d", d->lim.max_depth);
        return NULL;
    }
    wtype *w = find(d, id);
    if (!w) {
        if (id >= GP_GOB_ID_WIRETYPE && id <= GP_GOB_ID_MAPTYPE)
            gp__gob_rd_fail(r,
                            "gob: type id %lld is gob's own type description, not supported "
                            "as a value",
                            (long long)id);
        else
            gp__gob_rd_fail(r, "gob: unknown type id %lld (never defined on this stream)",
                            (long long)id);
        return NULL;
    }
    if (w->resolved)
        return &w->t;
    w->resolved = 1;
    if (w->elem_id && !(w->t.elem = resolve(d, r, w->elem_id, depth + 1)))
        return NULL;
    if (w->key_id && !(w->t.key = resolve(d, r, w->key_id, depth + 1)))
        return NULL;
    for (size_t i = 0; i < w->nfields; i++)
        if (!(w->fields[i].type = resolve(d, r, w->field_ids[i], depth + 1)))
            return NULL;
    return &w->t;
}

/* ---- values -------------------------------------------------------------- */

static gp_err dec_value(gp__gob_decoder *d, gp__gob_rd *r, const gp_gob_type *t, gp__gob_value *v,
                        int depth);

/* Zero struct fields cost no bytes on the wire, so bytes alone do not
 * bound memory: every allocated node is charged to the message. */
static gp_err charge(gp__gob_decoder *d, gp__gob_rd *r, size_t n)
{
    if (n > d->nodes_left)
        return gp__gob_rd_fail(r, "gob: message decodes into more than %zu values",
                               d->lim.max_nodes);
    d->nodes_left -= n;
    return GP_OK;
}

static gp_err dec_struct(gp__gob_decoder *d, gp__gob_rd *r, const gp_gob_type *t, gp__gob_value *v,
                         int depth)
{
    v->type = t;
    if (t->nfields) {
        if (charge(d, r, t->nfields) != GP_OK)
            return GP_EPROTO;
        v->u.list.items = calloc(t->nfields, sizeof *v->u.list.items);
        if (!v->u.list.items)
            return gp__gob_rd_fail(r, "gob: out of memory");
        v->u.list.len = t->nfields;
        for (size_t i = 0; i < t->nfields; i++)
            v->u.list.items[i].type = t->fields[i].type;
    }
    char in[96];
    snprintf(in, sizeof in, "struct %s", t->name && t->name[0] ? t->name : "(unnamed)");
    int64_t f = -1;
    for (;;) {
        if (next_field(r, &f, (int64_t)t->nfields, in) != GP_OK)
            return GP_EPROTO;
        if (f < 0)
            return GP_OK;
        gp__gob_value *fv = &v->u.list.items[f];
        gp__gob_value_clear(fv); /* a repeated field number must not leak */
        if (dec_value(d, r, t->fields[f].type, fv, depth + 1) != GP_OK)
            return GP_EPROTO;
    }
}

/* A value as sent at top level or inside an interface: structs as they
 * are, anything else after a zero field delta. */
static gp_err dec_top(gp__gob_decoder *d, gp__gob_rd *r, const gp_gob_type *t, gp__gob_value *v,
                      int depth)
{
    if (t->kind == GP_GOB_STRUCT)
        return dec_struct(d, r, t, v, depth);
    uint64_t delta;
    if (gp__gob_read_uint(r, &delta) != GP_OK)
        return GP_EPROTO;
    if (delta != 0)
        return gp__gob_rd_fail(r, "gob: expected field delta 0 before a singleton value, got %llu",
                               (unsigned long long)delta);
    return dec_value(d, r, t, v, depth);
}

static gp_err dec_items(gp__gob_decoder *d, gp__gob_rd *r, gp__gob_value *v, uint64_t n,
                        int per_item, int depth)
{
    /* Every element takes at least one byte: a bound before allocating. */
    if (n > r->left / (size_t)per_item)
        return gp__gob_rd_fail(r, "gob: %s of %llu elements in %zu bytes", kind_word(v->type->kind),
                               (unsigned long long)n, r->left);
    if (n == 0)
        return GP_OK;
    if (charge(d, r, (size_t)n * (size_t)per_item) != GP_OK)
        return GP_EPROTO;
    v->u.list.items = calloc((size_t)n * (size_t)per_item, sizeof *v->u.list.items);
    if (!v->u.list.items)
        return gp__gob_rd_fail(r, "gob: out of memory");
    v->u.list.len = (size_t)n;
    for (size_t i = 0; i < (size_t)n; i++) {
        if (per_item == 2 &&
            dec_value(d, r, v->type->key, &v->u.list.items[2 * i], depth + 1) != GP_OK)
            return GP_EPROTO;
        gp__gob_value *item = &v->u.list.items[per_item * i + per_item - 1];
        if (dec_value(d, r, v->type->elem, item, depth + 1) != GP_OK)
            return GP_EPROTO;
    }
    return GP_OK;
}

static gp_err dec_interface(gp__gob_decoder *d, gp__gob_rd *r, gp__gob_value *v, int depth)
{
    const uint8_t *p;
    size_t n;
    if (gp__gob_read_bytes(r, "interface type name", &p, &n) != GP_OK)
        return GP_EPROTO;
    if (n == 0)
        return GP_OK; /* nil interface */
    if (n > MAX_NAME)
        return gp__gob_rd_fail(r, "gob: interface type name of %zu bytes, limit %d", n, MAX_NAME);
    if (!(v->u.iface.name = dup_bytes(p, n)))
        return gp__gob_rd_fail(r, "gob: out of memory");
    /* As Go's decoder: definitions may come inline, each maybe followed by
     * a count; then the concrete type id and the value's byte count. */
    int64_t id;
    for (;;) {
        if (gp__gob_read_int(r, &id) != GP_OK)
            return GP_EPROTO;
        if (id >= 0)
            break;
        if (id == INT64_MIN || read_definition(d, r, -id) != GP_OK)
            return gp__gob_rd_fail(r, "gob: bad type definition inside an interface value");
        uint64_t skip;
        if (r->left > 0 && gp__gob_read_uint(r, &skip) != GP_OK)
            return GP_EPROTO;
    }
    const gp_gob_type *t = resolve(d, r, id, 0);
    if (!t)
        return GP_EPROTO;
    uint64_t count;
    if (gp__gob_read_uint(r, &count) != GP_OK)
        return GP_EPROTO;
    if (count > r->left)
        return gp__gob_rd_fail(r, "gob: interface value of %llu bytes runs past the end (%zu left)",
                               (unsigned long long)count, r->left);
    if (charge(d, r, 1) != GP_OK)
        return GP_EPROTO;
    v->u.iface.value = calloc(1, sizeof *v->u.iface.value);
    if (!v->u.iface.value)
        return gp__gob_rd_fail(r, "gob: out of memory");
    return dec_top(d, r, t, v->u.iface.value, depth + 1);
}

static gp_err dec_value(gp__gob_decoder *d, gp__gob_rd *r, const gp_gob_type *t, gp__gob_value *v,
                        int depth)
{
    v->type = t;
    if (depth > d->lim.max_depth)
        return gp__gob_rd_fail(r, "gob: value nested deeper than %d", d->lim.max_depth);
    uint64_t u;
    const uint8_t *p;
    size_t n;
    switch (t->kind) {
    case GP_GOB_BOOL:
        if (gp__gob_read_uint(r, &u) != GP_OK)
            return GP_EPROTO;
        if (u > 1)
            return gp__gob_rd_fail(r, "gob: bool value %llu, expected 0 or 1",
                                   (unsigned long long)u);
        v->u.b = (int)u;
        return GP_OK;
    case GP_GOB_INT:
        return gp__gob_read_int(r, &v->u.i);
    case GP_GOB_UINT:
        return gp__gob_read_uint(r, &v->u.u);
    case GP_GOB_FLOAT:
        return gp__gob_read_float(r, &v->u.f);
    case GP_GOB_COMPLEX:
        if (gp__gob_read_float(r, &v->u.c[0]) != GP_OK)
            return GP_EPROTO;
        return gp__gob_read_float(r, &v->u.c[1]);
    case GP_GOB_BYTES:
    case GP_GOB_STRING:
    case GP_GOB_OPAQUE:
        if (gp__gob_read_bytes(r, t->kind == GP_GOB_STRING ? "string" : "byte slice", &p, &n) !=
            GP_OK)
            return GP_EPROTO;
        if (!(v->u.bytes.data = (uint8_t *)dup_bytes(p, n)))
            return gp__gob_rd_fail(r, "gob: out of memory");
        v->u.bytes.len = n;
        return GP_OK;
    case GP_GOB_INTERFACE:
        return dec_interface(d, r, v, depth);
    case GP_GOB_STRUCT:
        return dec_struct(d, r, t, v, depth);
    case GP_GOB_SLICE:
    case GP_GOB_ARRAY:
    case GP_GOB_MAP:
        if (gp__gob_read_uint(r, &u) != GP_OK)
            return GP_EPROTO;
        if (t->kind == GP_GOB_ARRAY && u != t->len)
            return gp__gob_rd_fail(r, "gob: array of %llu elements, its type says %llu",
                                   (unsigned long long)u, (unsigned long long)t->len);
        return dec_items(d, r, v, u, t->kind == GP_GOB_MAP ? 2 : 1, depth);
    }
    return gp__gob_rd_fail(r, "gob: internal: kind %d", (int)t->kind);
}

gp_err gp__gob_decode_message(gp__gob_decoder *d, const uint8_t *msg, size_t len,
                              gp__gob_value **out, char *err, size_t errlen)
{
    *out = NULL;
    gp__gob_rd r;
    gp__gob_rd_init(&r, msg, len, err, errlen);
    if (d->broken)
        return gp__gob_rd_fail(&r, "gob: stream already failed");
    if (len > d->lim.max_message) {
        d->broken = 1;
        snprintf(err, errlen,
                 "gob: a message of %zu bytes exceeds the limit of %zu (max_message_bytes)", len,
                 d->lim.max_message);
        return GP_EMSGSIZE;
    }
    d->nodes_left = d->lim.max_nodes;
    int64_t id;
    if (gp__gob_read_int(&r, &id) != GP_OK)
        goto fail;
    if (id < 0) {
        if (id == INT64_MIN || read_definition(d, &r, -id) != GP_OK)
            goto fail;
        if (r.left > 0) {
            gp__gob_rd_fail(&r, "gob: %zu bytes of extra data after the definition of type id %lld",
                            r.left, (long long)-id);
            goto fail;
        }
        return GP_OK;
    }
    if (id == 0) {
        gp__gob_rd_fail(&r, "gob: value with type id 0");
        goto fail;
    }
    const gp_gob_type *t = resolve(d, &r, id, 0);
    if (!t)
        goto fail;
    gp__gob_value *v = calloc(1, sizeof *v);
    if (!v) {
        gp__gob_rd_fail(&r, "gob: out of memory");
        goto fail;
    }
    if (dec_top(d, &r, t, v, 0) != GP_OK) {
        gp__gob_value_free(v);
        goto fail;
    }
    if (r.left > 0) {
        gp__gob_value_free(v);
        gp__gob_rd_fail(&r, "gob: %zu bytes of extra data after a value of type id %lld", r.left,
                        (long long)id);
        goto fail;
    }
    *out = v;
    return GP_OK;
fail:
    d->broken = 1;
    return GP_EPROTO;
}
