/* nanopb glue: gp_bytes fields, release, and encode/decode with errors that
 * say which message broke and how. */
#include "transport/msg/msg.h"

#include <gp_pb_alloc.h>

#include <stdio.h>
#include <stdlib.h>

static bool is_gp_bytes(const pb_msgdesc_t *desc, pb_type_t type)
{
    return PB_ATYPE(type) == PB_ATYPE_CALLBACK && PB_LTYPE(type) == PB_LTYPE_BYTES &&
           desc->field_callback == gp__pb_field_callback;
}

bool gp__pb_field_callback(pb_istream_t *istream, pb_ostream_t *ostream, const pb_field_t *field)
{
    /* The generator names this callback for every message of a file, so
     * only bytes fields declared with callback_datatype gp_bytes may come. */
    if (PB_LTYPE(field->type) != PB_LTYPE_BYTES || PB_HTYPE(field->type) == PB_HTYPE_REPEATED ||
        PB_HTYPE(field->type) == PB_HTYPE_ONEOF) {
        if (ostream)
            PB_RETURN_ERROR(ostream, "gp_bytes callback on a field that is not singular bytes");
        if (istream)
            PB_RETURN_ERROR(istream, "gp_bytes callback on a field that is not singular bytes");
        return false;
    }
    gp_bytes *b = (gp_bytes *)field->pField;
    if (ostream) {
        if (b->len == 0)
            return true; /* proto3 does not send the default value */
        if (!b->data)
            PB_RETURN_ERROR(ostream, "gp_bytes with len > 0 and data NULL");
        return pb_encode_tag_for_field(ostream, field) &&
               pb_encode_string(ostream, b->data, b->len);
    }
    if (istream) {
        /* bytes_left is the field's length, already checked against the
         * enclosing message, so a hostile length cannot make us allocate
         * more than the input holds. */
        size_t n = istream->bytes_left;
        uint8_t *p = NULL;
        if (n > 0) {
            p = gp__pb_malloc(n); /* charged to the decode's budget */
            if (!p)
                PB_RETURN_ERROR(istream, "out of memory for bytes field");
            if (!pb_read(istream, p, n)) {
                gp__pb_free(p);
                return false;
            }
        }
        gp__pb_free(b->data); /* a repeated occurrence: the last one wins */
        b->data = p;
        b->len = n;
        return true;
    }
    return true;
}

static void release_bytes(const pb_msgdesc_t *desc, void *msg)
{
    pb_field_iter_t it;
    if (!pb_field_iter_begin(&it, desc, msg))
        return;
    do {
        pb_type_t t = it.type;
        if (PB_HTYPE(t) == PB_HTYPE_ONEOF && *(pb_size_t *)it.pSize != it.tag)
            continue;
        if (is_gp_bytes(desc, t)) {
            gp_bytes *b = (gp_bytes *)it.pField;
            gp__pb_free(b->data);
            b->data = NULL;
            b->len = 0;
        } else if (PB_LTYPE_IS_SUBMSG(t) && PB_ATYPE(t) != PB_ATYPE_CALLBACK && it.submsg_desc) {
            char *p = PB_ATYPE(t) == PB_ATYPE_POINTER ? *(char **)it.pField : (char *)it.pField;
            size_t count = PB_HTYPE(t) == PB_HTYPE_REPEATED ? *(pb_size_t *)it.pSize : 1;
            for (size_t i = 0; p && i < count; i++)
                release_bytes(it.submsg_desc, p + i * it.data_size);
        }
    } while (pb_field_iter_next(&it));
}

void gp_msg_release(const struct pb_msgdesc_s *desc, void *msg)
{
    if (!desc || !msg)
        return;
    release_bytes(desc, msg); /* before pb_release frees pointer submessages */
    pb_release(desc, msg);
}

static void say(char *err, size_t errlen, const char *verb, const char *what, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s %s: %s", verb, what ? what : "message", why ? why : "failed");
}

gp_err gp__msg_decode(const pb_msgdesc_t *desc, pb_istream_t *in, void *msg, const char *what,
                      char *err, size_t errlen)
{
    /* A peer's message may not make us allocate more than a multiple of
     * its own size (bazel/nanopb_alloc.h: issue 13). */
    size_t len = in->bytes_left;
    gp__pb_budget budget;
    gp__pb_budget_begin(&budget, gp__pb_decode_budget(len));
    bool ok = pb_decode(in, desc, msg);
    bool over = gp__pb_budget_end(&budget);
    if (ok)
        return GP_OK;
    if (over) {
        char why[192];
        snprintf(why, sizeof why,
                 "message would take more than %zu MiB to decode (%zu bytes on the wire; the "
                 "limit is %dx that + %zu MiB)",
                 budget.limit >> 20, len, GP__PB_BUDGET_FACTOR, GP__PB_BUDGET_FLOOR >> 20);
        say(err, errlen, "decode", what, why);
        gp_msg_release(desc, msg);
        return GP_EMSGSIZE;
    }
    say(err, errlen, "decode", what, PB_GET_ERROR(in));
    gp_msg_release(desc, msg);
    return GP_EPROTO;
}

gp_err gp__msg_decode_buf(const pb_msgdesc_t *desc, const uint8_t *buf, size_t len, void *msg,
                          const char *what, char *err, size_t errlen)
{
    static const uint8_t none[1];
    pb_istream_t in = pb_istream_from_buffer(buf ? buf : none, buf ? len : 0);
    return gp__msg_decode(desc, &in, msg, what, err, errlen);
}

gp_err gp__msg_size(const pb_msgdesc_t *desc, const void *msg, size_t *size, const char *what,
                    char *err, size_t errlen)
{
    pb_ostream_t sizing = PB_OSTREAM_SIZING;
    if (!pb_encode(&sizing, desc, msg)) {
        say(err, errlen, "encode", what, PB_GET_ERROR(&sizing));
        return GP_EINVAL;
    }
    *size = sizing.bytes_written;
    return GP_OK;
}

gp_err gp__msg_encode_buf(const pb_msgdesc_t *desc, const void *msg, uint8_t *buf, size_t cap,
                          size_t *len, const char *what, char *err, size_t errlen)
{
    pb_ostream_t out = pb_ostream_from_buffer(buf, cap);
    if (!pb_encode(&out, desc, msg)) {
        say(err, errlen, "encode", what, PB_GET_ERROR(&out));
        return GP_EINVAL;
    }
    if (len)
        *len = out.bytes_written;
    return GP_OK;
}

size_t gp__msg_struct_size(const pb_msgdesc_t *desc)
{
    /* The iterator reads pointer fields while it walks, so give it zeroed
     * memory to walk over. */
    static const uint8_t zeros[65536];
    uintptr_t base = (uintptr_t)zeros, top = base + sizeof zeros;
    size_t end = 8;
    pb_field_iter_t it;
    if (!pb_field_iter_begin_const(&it, desc, zeros))
        return end;
    do {
        pb_type_t t = it.type;
        size_t len = it.data_size;
        if (PB_ATYPE(t) == PB_ATYPE_POINTER)
            len = sizeof(void *);
        else if (PB_ATYPE(t) == PB_ATYPE_STATIC && PB_HTYPE(t) == PB_HTYPE_REPEATED)
            len = (size_t)it.data_size * it.array_size;
        uintptr_t f = (uintptr_t)it.pField;
        if (f < base || f + len > top)
            return 0;
        if (f - base + len > end)
            end = f - base + len;
        uintptr_t sz = (uintptr_t)it.pSize;
        if (sz >= base && sz + sizeof(pb_size_t) <= top && sz - base + sizeof(pb_size_t) > end)
            end = sz - base + sizeof(pb_size_t);
    } while (pb_field_iter_next(&it));
    return (end + 7) & ~(size_t)7;
}
