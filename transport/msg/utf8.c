/* proto3 strings must be UTF-8: a walk over a nanopb message (see msg.h). */
#include "transport/msg/msg.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

size_t gp__utf8_invalid_at(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t min, cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2, min = 0x80, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, min = 0x800, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, min = 0x10000, cp = c & 0x07;
        } else {
            return i; /* a continuation byte, C0/C1, or F5..FF */
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        /* overlong, a surrogate half, or past U+10FFFF: Go's utf8.Valid
         * refuses them too */
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return i;
        i += len;
    }
    return n;
}

typedef struct walk {
    char path[96]; /* field numbers from the top, "3.1" */
    char *err;
    size_t errlen;
    const char *what;
    int depth;
} walk;

static bool bad(walk *w, uint32_t tag, size_t at)
{
    if (w->err && w->errlen)
        snprintf(w->err, w->errlen,
                 "invalid UTF-8 in string field %s%s%u of %s (at byte %zu); proto3 strings "
                 "must be UTF-8",
                 w->path, w->path[0] ? "." : "", (unsigned)tag, w->what ? w->what : "message", at);
    return false;
}

static bool check_str(walk *w, uint32_t tag, const char *s, size_t n)
{
    if (!s)
        return true;
    size_t at = gp__utf8_invalid_at((const uint8_t *)s, n);
    return at == n || bad(w, tag, at);
}

static bool walk_msg(walk *w, const pb_msgdesc_t *desc, const void *msg);

/* Count of a repeated field (pointer or static array), 1 otherwise; 0 for
 * an absent optional or an inactive oneof member. */
static size_t count_of(const pb_field_iter_t *it)
{
    pb_type_t t = it->type;
    switch (PB_HTYPE(t)) {
    case PB_HTYPE_REPEATED:
        return *(const pb_size_t *)it->pSize;
    case PB_HTYPE_ONEOF:
        return *(const pb_size_t *)it->pSize == it->tag;
    case PB_HTYPE_OPTIONAL:
        /* static: the has_ flag; pointer: NULL is absent */
        if (PB_ATYPE(t) == PB_ATYPE_STATIC && it->pSize)
            return *(const bool *)it->pSize;
        return 1;
    default:
        return 1;
    }
}

static bool walk_field(walk *w, const pb_field_iter_t *it)
{
    pb_type_t t = it->type;
    if (PB_ATYPE(t) == PB_ATYPE_CALLBACK)
        return true; /* opaque to us (gp_bytes are bytes, not strings) */
    size_t n = count_of(it);
    if (n == 0)
        return true;
    bool repeated = PB_HTYPE(t) == PB_HTYPE_REPEATED;
    bool pointer = PB_ATYPE(t) == PB_ATYPE_POINTER;
    if (PB_LTYPE(t) == PB_LTYPE_STRING) {
        for (size_t i = 0; i < n; i++) {
            const char *s;
            size_t cap;
            if (pointer) {
                /* singular: char *; repeated: char ** (an array of them) */
                const char *const *arr = repeated ? *(const char *const *const *)it->pField
                                                  : (const char *const *)it->pField;
                s = arr ? arr[i] : NULL;
                cap = SIZE_MAX;
            } else {
                s = (const char *)it->pField + i * it->data_size;
                cap = it->data_size;
            }
            if (!s)
                continue;
            size_t len = cap == SIZE_MAX ? strlen(s) : strnlen(s, cap);
            if (!check_str(w, it->tag, s, len))
                return false;
        }
        return true;
    }
    if (PB_LTYPE_IS_SUBMSG(t) && it->submsg_desc) {
        if (w->depth >= 100)
            return true; /* nanopb's own recursion limit is lower */
        const char *base = pointer ? *(const char *const *)it->pField : (const char *)it->pField;
        if (!base)
            return true;
        size_t plen = strlen(w->path);
        snprintf(w->path + plen, sizeof w->path - plen, "%s%u", plen ? "." : "", (unsigned)it->tag);
        w->depth++;
        bool ok = true;
        for (size_t i = 0; ok && i < n; i++)
            ok = walk_msg(w, it->submsg_desc, base + i * it->data_size);
        w->depth--;
        w->path[plen] = '\0';
        return ok;
    }
    return true;
}

static bool walk_msg(walk *w, const pb_msgdesc_t *desc, const void *msg)
{
    pb_field_iter_t it;
    /* The iterator only computes addresses; it does not write. */
    if (!pb_field_iter_begin_const(&it, desc, msg))
        return true; /* no fields */
    do {
        if (!walk_field(w, &it))
            return false;
    } while (pb_field_iter_next(&it));
    return true;
}

gp_err gp__msg_check_utf8(const pb_msgdesc_t *desc, const void *msg, const char *what, char *err,
                          size_t errlen)
{
    if (!desc || !msg)
        return GP_OK;
    walk w = {.err = err, .errlen = errlen, .what = what};
    return walk_msg(&w, desc, msg) ? GP_OK : GP_EPROTO;
}
