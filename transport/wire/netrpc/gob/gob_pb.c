/* Typed gob <-> nanopb: see gob_pb.h. The nanopb side is walked with
 * pb_field_iter by tag; the gob side is the value tree of gob.h, so type
 * definitions, zero omission and field matching stay in the codec. */
#include "transport/wire/netrpc/gob/gob_pb.h"

#include <pb_common.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/msg/msg.h"

#define MAX_DEPTH 32

typedef struct ctx {
    char *err;
    size_t errlen;
} ctx;

static gp_err fail(ctx *c, gp_err e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static gp_err fail(ctx *c, gp_err e, const char *fmt, ...)
{
    if (c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return e;
}

static const char *tname(const gp_gob_type *t)
{
    return t && t->name && t->name[0] ? t->name : "(unnamed)";
}

static const char *kind_name(gp_gob_kind k)
{
    static const char *const names[] = {"?",      "bool",   "int",     "uint",      "float",
                                        "[]byte", "string", "complex", "interface", "struct",
                                        "slice",  "array",  "map",     "opaque"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static bool is_gp_bytes(const pb_field_iter_t *it)
{
    return PB_ATYPE(it->type) == PB_ATYPE_CALLBACK && PB_LTYPE(it->type) == PB_LTYPE_BYTES &&
           it->descriptor->field_callback == gp__pb_field_callback;
}

/* Does a gob kind fit a nanopb field's low type (and size)? */
static bool fits(gp_gob_kind k, const pb_field_iter_t *it)
{
    pb_type_t lt = PB_LTYPE(it->type);
    if (PB_ATYPE(it->type) == PB_ATYPE_CALLBACK)
        return k == GP_GOB_BYTES && is_gp_bytes(it) && PB_HTYPE(it->type) != PB_HTYPE_REPEATED;
    switch (k) {
    case GP_GOB_BOOL:
        return lt == PB_LTYPE_BOOL;
    case GP_GOB_INT:
        /* UVARINT: nanopb stores an enum without negative values unsigned,
         * while Go's enum types are int32 (the sign is checked on decode). */
        return lt == PB_LTYPE_VARINT || lt == PB_LTYPE_SVARINT || lt == PB_LTYPE_FIXED32 ||
               lt == PB_LTYPE_FIXED64 || lt == PB_LTYPE_UVARINT;
    case GP_GOB_UINT:
        return lt == PB_LTYPE_UVARINT || lt == PB_LTYPE_FIXED32 || lt == PB_LTYPE_FIXED64;
    case GP_GOB_FLOAT:
        return (lt == PB_LTYPE_FIXED32 && it->data_size == sizeof(float)) ||
               (lt == PB_LTYPE_FIXED64 && it->data_size == sizeof(double));
    case GP_GOB_STRING:
        return lt == PB_LTYPE_STRING;
    case GP_GOB_BYTES:
        return lt == PB_LTYPE_BYTES;
    case GP_GOB_STRUCT:
        return lt == PB_LTYPE_SUBMESSAGE && it->submsg_desc;
    default:
        return false;
    }
}

/* Scalar storage of 1, 2, 4 or 8 bytes. */
static int64_t load_int(const void *p, size_t n)
{
    switch (n) {
    case 1: {
        int8_t v;
        memcpy(&v, p, 1);
        return v;
    }
    case 2: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

static uint64_t load_uint(const void *p, size_t n)
{
    switch (n) {
    case 1: {
        uint8_t v;
        memcpy(&v, p, 1);
        return v;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

static bool store_int(void *p, size_t n, int64_t v)
{
    switch (n) {
    case 1: {
        if (v < INT8_MIN || v > INT8_MAX)
            return false;
        int8_t x = (int8_t)v;
        memcpy(p, &x, 1);
        return true;
    }
    case 2: {
        if (v < INT16_MIN || v > INT16_MAX)
            return false;
        int16_t x = (int16_t)v;
        memcpy(p, &x, 2);
        return true;
    }
    case 4: {
        if (v < INT32_MIN || v > INT32_MAX)
            return false;
        int32_t x = (int32_t)v;
        memcpy(p, &x, 4);
        return true;
    }
    default:
        memcpy(p, &v, 8);
        return true;
    }
}

static bool store_uint(void *p, size_t n, uint64_t v)
{
    switch (n) {
    case 1: {
        if (v > UINT8_MAX)
            return false;
        uint8_t x = (uint8_t)v;
        memcpy(p, &x, 1);
        return true;
    }
    case 2: {
        if (v > UINT16_MAX)
            return false;
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        return true;
    }
    case 4: {
        if (v > UINT32_MAX)
            return false;
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
        return true;
    }
    default:
        memcpy(p, &v, 8);
        return true;
    }
}

/* The field of msg with this tag; false if none. */
static bool find_tag(pb_field_iter_t *it, const pb_msgdesc_t *desc, void *msg, uint32_t tag)
{
    return tag && pb_field_iter_begin(it, desc, msg) && pb_field_iter_find(it, tag);
}

/* Checks that gob type t can describe the message desc: every field's tag
 * exists and its kind fits. */
static gp_err check_field(ctx *c, const gp_gob_type *t, const gp_gob_field *f, pb_field_iter_t *it)
{
    const gp_gob_type *ft = f->type;
    bool rep = PB_HTYPE(it->type) == PB_HTYPE_REPEATED;
    if (!ft)
        return fail(c, GP_EINVAL, "gob: field %s of %s has no type", f->name, tname(t));
    if (rep != (ft->kind == GP_GOB_SLICE) || (rep && !ft->elem))
        return fail(c, GP_EINVAL, "gob: field %s of %s is a %s but nanopb tag %u is %s", f->name,
                    tname(t), kind_name(ft->kind), (unsigned)f->tag,
                    rep ? "repeated" : "not repeated");
    const gp_gob_type *et = rep ? ft->elem : ft;
    if (!fits(et->kind, it))
        return fail(c, GP_EINVAL,
                    "gob: field %s of %s: a gob %s does not fit nanopb tag %u (type 0x%02x)",
                    f->name, tname(t), kind_name(et->kind), (unsigned)f->tag, (unsigned)it->type);
    if (rep && PB_ATYPE(it->type) == PB_ATYPE_CALLBACK)
        return fail(c, GP_EINVAL, "gob: field %s of %s: repeated callback fields are not supported",
                    f->name, tname(t));
    return GP_OK;
}

/* ---- nanopb -> tree ------------------------------------------------------- */

static gp_err msg_to_tree(ctx *c, const gp_gob_type *t, const pb_msgdesc_t *desc, const void *msg,
                          gp__gob_value *out, int depth);

/* One element. p: the string (char *), the pb_bytes_array_t *, the
 * gp_bytes *, the submessage struct or the scalar; NULL is zero. */
static gp_err elem_to_tree(ctx *c, const gp_gob_type *et, const pb_field_iter_t *it, const void *p,
                           gp__gob_value *out, int depth)
{
    out->type = et;
    if (!p)
        return GP_OK;
    switch (et->kind) {
    case GP_GOB_BOOL:
        out->u.b = *(const bool *)p ? 1 : 0;
        return GP_OK;
    case GP_GOB_INT:
        if (PB_LTYPE(it->type) == PB_LTYPE_UVARINT)
            out->u.i = (int64_t)load_uint(p, it->data_size);
        else
            out->u.i = load_int(p, it->data_size);
        return GP_OK;
    case GP_GOB_UINT:
        out->u.u = load_uint(p, it->data_size);
        return GP_OK;
    case GP_GOB_FLOAT:
        if (it->data_size == sizeof(float))
            out->u.f = *(const float *)p;
        else
            out->u.f = *(const double *)p;
        return GP_OK;
    case GP_GOB_STRING:
        out->u.bytes.data = (uint8_t *)(uintptr_t)p;
        out->u.bytes.len = strlen(p);
        return GP_OK;
    case GP_GOB_BYTES:
        if (PB_ATYPE(it->type) == PB_ATYPE_CALLBACK) {
            const gp_bytes *b = p;
            out->u.bytes.data = b->data;
            out->u.bytes.len = b->data ? b->len : 0;
        } else {
            const pb_bytes_array_t *b = p;
            out->u.bytes.data = (uint8_t *)(uintptr_t)b->bytes;
            out->u.bytes.len = b->size;
        }
        return GP_OK;
    case GP_GOB_STRUCT:
        return msg_to_tree(c, et, it->submsg_desc, p, out, depth + 1);
    default:
        return fail(c, GP_EINVAL, "gob: kind %s is not supported for nanopb", kind_name(et->kind));
    }
}

static gp_err field_to_tree(ctx *c, const gp_gob_field *f, const pb_field_iter_t *it,
                            gp__gob_value *out, int depth)
{
    pb_type_t ty = it->type;
    bool ptr = PB_ATYPE(ty) == PB_ATYPE_POINTER;
    out->type = f->type;
    if (PB_HTYPE(ty) == PB_HTYPE_REPEATED) {
        size_t n = *(const pb_size_t *)it->pSize;
        const char *base = it->pData;
        if (n == 0 || !base)
            return GP_OK;
        out->u.list.items = calloc(n, sizeof *out->u.list.items);
        if (!out->u.list.items)
            return fail(c, GP_ENOMEM, "gob: out of memory");
        out->u.list.len = n;
        bool indirect = ptr && (PB_LTYPE(ty) == PB_LTYPE_STRING || PB_LTYPE(ty) == PB_LTYPE_BYTES);
        for (size_t i = 0; i < n; i++) {
            const void *e = base + i * it->data_size;
            if (indirect)
                e = *(const void *const *)e;
            gp_err r = elem_to_tree(c, f->type->elem, it, e, &out->u.list.items[i], depth);
            if (r)
                return r;
        }
        return GP_OK;
    }
    if (PB_HTYPE(ty) == PB_HTYPE_ONEOF && *(const pb_size_t *)it->pSize != it->tag)
        return elem_to_tree(c, f->type, it, NULL, out, depth);
    if (PB_HTYPE(ty) == PB_HTYPE_OPTIONAL && it->pSize && PB_ATYPE(ty) == PB_ATYPE_STATIC &&
        !*(const bool *)it->pSize)
        return elem_to_tree(c, f->type, it, NULL, out, depth);
    const void *p = ptr ? *(const void *const *)it->pField : it->pField;
    return elem_to_tree(c, f->type, it, p, out, depth);
}

static gp_err msg_to_tree(ctx *c, const gp_gob_type *t, const pb_msgdesc_t *desc, const void *msg,
                          gp__gob_value *out, int depth)
{
    out->type = t;
    if (depth > MAX_DEPTH)
        return fail(c, GP_EINVAL, "gob: %s nests deeper than %d", tname(t), MAX_DEPTH);
    if (!t || t->kind != GP_GOB_STRUCT)
        return fail(c, GP_EINVAL, "gob: a nanopb message needs a gob struct type, got %s",
                    t ? kind_name(t->kind) : "none");
    if (t->nfields == 0)
        return GP_OK;
    out->u.list.items = calloc(t->nfields, sizeof *out->u.list.items);
    if (!out->u.list.items)
        return fail(c, GP_ENOMEM, "gob: out of memory");
    out->u.list.len = t->nfields;
    for (size_t i = 0; i < t->nfields; i++) {
        const gp_gob_field *f = &t->fields[i];
        out->u.list.items[i].type = f->type;
        pb_field_iter_t it;
        if (!find_tag(&it, desc, (void *)(uintptr_t)msg, f->tag))
            return fail(c, GP_EINVAL, "gob: field %s of %s: the nanopb message has no tag %u",
                        f->name, tname(t), (unsigned)f->tag);
        gp_err r = check_field(c, t, f, &it);
        if (!r)
            r = field_to_tree(c, f, &it, &out->u.list.items[i], depth);
        if (r)
            return r;
    }
    return GP_OK;
}

void gp__gob_pb_tree_free(gp__gob_value *v)
{
    if (!v || !v->type)
        return;
    gp_gob_kind k = v->type->kind;
    if ((k == GP_GOB_STRUCT || k == GP_GOB_SLICE) && v->u.list.items) {
        for (size_t i = 0; i < v->u.list.len; i++)
            gp__gob_pb_tree_free(&v->u.list.items[i]);
        free(v->u.list.items);
    }
    memset(&v->u, 0, sizeof v->u);
}

gp_err gp__gob_pb_to_tree(const gp_gob_type *t, const pb_msgdesc_t *desc, const void *msg,
                          gp__gob_value *out, char *err, size_t errlen)
{
    ctx c = {err, errlen};
    memset(out, 0, sizeof *out);
    gp_err e = msg_to_tree(&c, t, desc, msg, out, 0);
    if (e)
        gp__gob_pb_tree_free(out);
    return e;
}

/* ---- tree -> nanopb ------------------------------------------------------- */

static gp_err tree_to_msg(ctx *c, gp__gob_value *v, const gp_gob_type *t, const pb_msgdesc_t *desc,
                          void *msg, int depth);

static bool is_zero_value(const gp__gob_value *v)
{
    if (!v || !v->type)
        return true;
    switch (v->type->kind) {
    case GP_GOB_BOOL:
        return !v->u.b;
    case GP_GOB_INT:
        return v->u.i == 0;
    case GP_GOB_UINT:
        return v->u.u == 0;
    case GP_GOB_FLOAT:
        return v->u.f == 0;
    case GP_GOB_BYTES:
    case GP_GOB_STRING:
        return v->u.bytes.len == 0;
    case GP_GOB_SLICE:
        return v->u.list.len == 0;
    case GP_GOB_STRUCT:
        return !v->u.list.items;
    default:
        return true;
    }
}

/* Stores one element into its slot. slot: for `ptr` slots a pointer to
 * the pointer to fill (char **, pb_bytes_array_t **, struct **, T **),
 * else the storage itself. v is the peer's value (its kind checked). */
static gp_err elem_from_tree(ctx *c, gp__gob_value *v, const gp_gob_type *et,
                             const pb_field_iter_t *it, void *slot, bool ptr, const char *fname,
                             int depth)
{
    size_t ds = it->data_size;
    void *p = slot;
    gp_gob_kind k = et->kind;
    if (ptr && (k == GP_GOB_BOOL || k == GP_GOB_INT || k == GP_GOB_UINT || k == GP_GOB_FLOAT ||
                k == GP_GOB_STRUCT)) {
        p = calloc(1, ds ? ds : 1);
        if (!p)
            return fail(c, GP_ENOMEM, "gob: out of memory");
        *(void **)slot = p;
    }
    switch (k) {
    case GP_GOB_BOOL:
        *(bool *)p = v->u.b != 0;
        return GP_OK;
    case GP_GOB_INT:
        if (PB_LTYPE(it->type) == PB_LTYPE_UVARINT && v->u.i < 0)
            return fail(c, GP_EPROTO, "gob: field %s: value %lld for an unsigned enum", fname,
                        (long long)v->u.i);
        if (!store_int(p, ds, v->u.i))
            return fail(c, GP_EPROTO, "gob: field %s: value %lld out of range for a %zu-byte int",
                        fname, (long long)v->u.i, ds);
        return GP_OK;
    case GP_GOB_UINT:
        if (!store_uint(p, ds, v->u.u))
            return fail(c, GP_EPROTO, "gob: field %s: value %llu out of range for a %zu-byte uint",
                        fname, (unsigned long long)v->u.u, ds);
        return GP_OK;
    case GP_GOB_FLOAT:
        if (ds == sizeof(float))
            *(float *)p = (float)v->u.f;
        else
            *(double *)p = v->u.f;
        return GP_OK;
    case GP_GOB_STRING: {
        size_t n = v->u.bytes.len;
        if (n && memchr(v->u.bytes.data, 0, n))
            return fail(c, GP_EPROTO,
                        "gob: field %s: a string with a NUL byte cannot be a C string", fname);
        if (ptr) {
            /* Decoded strings carry a NUL after their length: take it. */
            *(char **)slot = (char *)v->u.bytes.data;
            v->u.bytes.data = NULL;
            v->u.bytes.len = 0;
            return GP_OK;
        }
        if (n >= ds)
            return fail(c, GP_EPROTO, "gob: field %s: string of %zu bytes for a char[%zu]", fname,
                        n, ds);
        memcpy(p, v->u.bytes.data, n);
        ((char *)p)[n] = '\0';
        return GP_OK;
    }
    case GP_GOB_BYTES: {
        size_t n = v->u.bytes.len;
        if (PB_ATYPE(it->type) == PB_ATYPE_CALLBACK) {
            gp_bytes *b = p;
            b->data = v->u.bytes.data;
            b->len = n;
            v->u.bytes.data = NULL;
            v->u.bytes.len = 0;
            return GP_OK;
        }
        pb_bytes_array_t *b;
        if (ptr) {
            if (n > PB_SIZE_MAX)
                return fail(c, GP_EPROTO, "gob: field %s: %zu bytes exceed nanopb's %u", fname, n,
                            (unsigned)PB_SIZE_MAX);
            b = malloc(PB_BYTES_ARRAY_T_ALLOCSIZE(n));
            if (!b)
                return fail(c, GP_ENOMEM, "gob: out of memory");
            *(pb_bytes_array_t **)slot = b;
        } else {
            b = p;
            if (n > ds - offsetof(pb_bytes_array_t, bytes))
                return fail(c, GP_EPROTO, "gob: field %s: %zu bytes for a field of %zu", fname, n,
                            ds - offsetof(pb_bytes_array_t, bytes));
        }
        b->size = (pb_size_t)n;
        if (n)
            memcpy(b->bytes, v->u.bytes.data, n);
        return GP_OK;
    }
    case GP_GOB_STRUCT:
        return tree_to_msg(c, v, et, it->submsg_desc, p, depth + 1);
    default:
        return fail(c, GP_EINVAL, "gob: kind %s is not supported for nanopb", kind_name(k));
    }
}

/* The peer's value must have our kind (Go: ints and uints do not mix). */
static gp_err check_kind(ctx *c, const gp__gob_value *v, const gp_gob_type *want, const char *fname)
{
    gp_gob_kind got = v->type->kind;
    if (got == want->kind)
        return GP_OK;
    return fail(c, GP_EPROTO, "gob: field %s: expected a %s, got a %s (%s)", fname,
                kind_name(want->kind), kind_name(got), tname(v->type));
}

static gp_err field_from_tree(ctx *c, gp__gob_value *v, const gp_gob_field *f, pb_field_iter_t *it,
                              int depth)
{
    pb_type_t ty = it->type;
    bool ptr = PB_ATYPE(ty) == PB_ATYPE_POINTER;
    gp_err e = check_kind(c, v, f->type, f->name);
    if (e)
        return e;
    if (PB_HTYPE(ty) == PB_HTYPE_REPEATED) {
        size_t n = v->u.list.len;
        if (n && (!v->u.list.items))
            return GP_OK;
        for (size_t i = 0; i < n; i++)
            if (v->u.list.items[i].type &&
                (e = check_kind(c, &v->u.list.items[i], f->type->elem, f->name)))
                return e;
        char *base;
        if (ptr) {
            if (n > PB_SIZE_MAX)
                return fail(c, GP_EPROTO, "gob: field %s: %zu elements exceed nanopb's %u", f->name,
                            n, (unsigned)PB_SIZE_MAX);
            base = calloc(n, it->data_size);
            if (!base)
                return fail(c, GP_ENOMEM, "gob: out of memory");
            *(void **)it->pField = base;
        } else {
            if (n > it->array_size)
                return fail(c, GP_EPROTO, "gob: field %s: %zu elements for an array of %u", f->name,
                            n, (unsigned)it->array_size);
            base = it->pField;
        }
        *(pb_size_t *)it->pSize = (pb_size_t)n;
        bool indirect = ptr && (PB_LTYPE(ty) == PB_LTYPE_STRING || PB_LTYPE(ty) == PB_LTYPE_BYTES);
        for (size_t i = 0; i < n; i++) {
            gp__gob_value *ev = &v->u.list.items[i];
            if (is_zero_value(ev) && f->type->elem->kind != GP_GOB_STRUCT)
                continue; /* already zero (a NULL string reads as "") */
            if ((e = elem_from_tree(c, ev, f->type->elem, it, base + i * it->data_size, indirect,
                                    f->name, depth)))
                return e;
        }
        return GP_OK;
    }
    if (is_zero_value(v))
        return GP_OK;
    if (PB_HTYPE(ty) == PB_HTYPE_ONEOF)
        *(pb_size_t *)it->pSize = it->tag;
    else if (PB_HTYPE(ty) == PB_HTYPE_OPTIONAL && it->pSize && PB_ATYPE(ty) == PB_ATYPE_STATIC)
        *(bool *)it->pSize = true;
    return elem_from_tree(c, v, f->type, it, it->pField, ptr, f->name, depth);
}

static gp_err tree_to_msg(ctx *c, gp__gob_value *v, const gp_gob_type *t, const pb_msgdesc_t *desc,
                          void *msg, int depth)
{
    if (depth > MAX_DEPTH)
        return fail(c, GP_EINVAL, "gob: %s nests deeper than %d", tname(t), MAX_DEPTH);
    if (!t || t->kind != GP_GOB_STRUCT)
        return fail(c, GP_EINVAL, "gob: a nanopb message needs a gob struct type, got %s",
                    t ? kind_name(t->kind) : "none");
    if (!v || !v->type)
        return GP_OK;
    if (v->type->kind != GP_GOB_STRUCT)
        return fail(c, GP_EPROTO, "gob: expected a struct %s, got a %s (%s)", tname(t),
                    kind_name(v->type->kind), tname(v->type));
    for (size_t i = 0; i < t->nfields; i++) {
        const gp_gob_field *f = &t->fields[i];
        pb_field_iter_t it;
        if (!find_tag(&it, desc, msg, f->tag))
            return fail(c, GP_EINVAL, "gob: field %s of %s: the nanopb message has no tag %u",
                        f->name, tname(t), (unsigned)f->tag);
        gp_err e = check_field(c, t, f, &it);
        if (e)
            return e;
        /* Exact name, as Go's decoder; a field the peer lacks stays zero. */
        gp__gob_value *fv = (gp__gob_value *)(uintptr_t)gp__gob_field(v, f->name);
        if (!fv || !fv->type)
            continue;
        if ((e = field_from_tree(c, fv, f, &it, depth)))
            return e;
    }
    return GP_OK;
}

gp_err gp__gob_pb_from_tree(gp__gob_value *v, const gp_gob_type *t, const pb_msgdesc_t *desc,
                            void *msg, char *err, size_t errlen)
{
    ctx c = {err, errlen};
    gp_err e = tree_to_msg(&c, v, t, desc, msg, 0);
    if (e)
        gp_msg_release(desc, msg);
    return e;
}
