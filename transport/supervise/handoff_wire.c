#include "transport/supervise/handoff.h"

#include <stdlib.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void gp__handoff_msg_free(gp__handoff_msg *m)
{
    for (size_t i = 0; i < m->n; i++) {
        /* Values are configuration, not secret, but they may still be
         * sensitive; zeroing is cheap next to the pipe I/O. */
        if (m->entries[i].value)
            explicit_bzero(m->entries[i].value, strlen(m->entries[i].value));
        free(m->entries[i].key);
        free(m->entries[i].value);
    }
    free(m->entries);
    if (m->secret) {
        explicit_bzero(m->secret, m->secret_len);
        free(m->secret);
    }
    memset(m, 0, sizeof *m);
}

gp_err gp__handoff_encode(const gp__handoff_entry *entries, size_t n, const uint8_t *secret,
                          size_t secret_len, uint8_t **out, size_t *outlen, gp__strbuf *err)
{
    *out = NULL;
    *outlen = 0;
    if (n > GP_HANDOFF_MAX_ENTRIES) {
        gp__strbuf_printf(err, "hand-off: %zu configuration entries, at most %u allowed", n,
                          (unsigned)GP_HANDOFF_MAX_ENTRIES);
        return GP_EMSGSIZE;
    }
    if (secret_len > GP_HANDOFF_MAX_SECRET) {
        gp__strbuf_printf(err, "hand-off: secret of %zu bytes, at most %u allowed", secret_len,
                          (unsigned)GP_HANDOFF_MAX_SECRET);
        return GP_EMSGSIZE;
    }
    size_t text = 0;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(entries[i].key);
        if (kl == 0 || kl > GP_HANDOFF_MAX_KEY) {
            gp__strbuf_printf(err, "hand-off: key of %zu bytes, expected 1..%u", kl,
                              (unsigned)GP_HANDOFF_MAX_KEY);
            return GP_EINVAL;
        }
        text += kl + strlen(entries[i].value);
        if (text > GP_HANDOFF_MAX_CONFIG) {
            gp__strbuf_printf(err, "hand-off: configuration over %u bytes",
                              (unsigned)GP_HANDOFF_MAX_CONFIG);
            return GP_EMSGSIZE;
        }
    }
    size_t body = 4 + 8 * n + text + 4 + secret_len;
    uint8_t *buf = malloc(GP__HANDOFF_HEADER + body);
    if (!buf)
        return GP_ENOMEM;
    uint8_t *p = buf;
    memcpy(p, GP__HANDOFF_MAGIC, 4);
    put32(p + 4, (uint32_t)body);
    put32(p + 8, (uint32_t)n);
    p += 12;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(entries[i].key), vl = strlen(entries[i].value);
        put32(p, (uint32_t)kl);
        memcpy(p + 4, entries[i].key, kl);
        p += 4 + kl;
        put32(p, (uint32_t)vl);
        memcpy(p + 4, entries[i].value, vl);
        p += 4 + vl;
    }
    put32(p, (uint32_t)secret_len);
    if (secret_len)
        memcpy(p + 4, secret, secret_len);
    *out = buf;
    *outlen = GP__HANDOFF_HEADER + body;
    return GP_OK;
}

gp_err gp__handoff_decode_header(const uint8_t *hdr, uint32_t *body_len, gp__strbuf *err)
{
    if (memcmp(hdr, GP__HANDOFF_MAGIC, 4) != 0) {
        gp__strbuf_append(err, "hand-off: expected magic \"GPH1\", got ");
        gp__strbuf_quote(err, (const char *)hdr, 4, 4);
        return GP_EPROTO;
    }
    *body_len = get32(hdr + 4);
    if (*body_len > GP__HANDOFF_MAX_BODY) {
        gp__strbuf_printf(err, "hand-off: body of %u bytes, at most %u allowed",
                          (unsigned)*body_len, (unsigned)GP__HANDOFF_MAX_BODY);
        return GP_EMSGSIZE;
    }
    return GP_OK;
}

/* A bounds-checked reader over the body. */
typedef struct reader {
    const uint8_t *p;
    size_t left;
    size_t off;
} reader;

static int take32(reader *r, uint32_t *v)
{
    if (r->left < 4)
        return 0;
    *v = get32(r->p);
    r->p += 4;
    r->left -= 4;
    r->off += 4;
    return 1;
}

static gp_err take_text(reader *r, const char *what, size_t i, uint32_t len, char **out,
                        gp__strbuf *err)
{
    if (r->left < len) {
        gp__strbuf_printf(err,
                          "hand-off: truncated: %s %zu needs %u bytes at offset %zu, "
                          "%zu left",
                          what, i, (unsigned)len, r->off, r->left);
        return GP_EPROTO;
    }
    if (memchr(r->p, 0, len)) {
        gp__strbuf_printf(err, "hand-off: %s %zu contains a NUL byte: ", what, i);
        gp__strbuf_quote(err, (const char *)r->p, len, 40);
        return GP_EPROTO;
    }
    char *s = malloc((size_t)len + 1);
    if (!s)
        return GP_ENOMEM;
    memcpy(s, r->p, len);
    s[len] = 0;
    r->p += len;
    r->left -= len;
    r->off += len;
    *out = s;
    return GP_OK;
}

static int cmp_key(const void *a, const void *b)
{
    const gp__handoff_entry *x = *(const gp__handoff_entry *const *)a;
    const gp__handoff_entry *y = *(const gp__handoff_entry *const *)b;
    return strcmp(x->key, y->key);
}

static gp_err check_unique(const gp__handoff_msg *m, gp__strbuf *err)
{
    if (m->n < 2)
        return GP_OK;
    const gp__handoff_entry **v = malloc(m->n * sizeof *v);
    if (!v)
        return GP_ENOMEM;
    for (size_t i = 0; i < m->n; i++)
        v[i] = &m->entries[i];
    qsort(v, m->n, sizeof *v, cmp_key);
    gp_err rc = GP_OK;
    for (size_t i = 1; i < m->n; i++) {
        if (strcmp(v[i - 1]->key, v[i]->key) == 0) {
            gp__strbuf_append(err, "hand-off: duplicate key ");
            gp__strbuf_quote(err, v[i]->key, strlen(v[i]->key), 60);
            rc = GP_EPROTO;
            break;
        }
    }
    free(v);
    return rc;
}

gp_err gp__handoff_decode_body(const uint8_t *body, size_t len, gp__handoff_msg *out,
                               gp__strbuf *err)
{
    memset(out, 0, sizeof *out);
    reader r = {body, len, 0};
    uint32_t count;
    if (!take32(&r, &count)) {
        gp__strbuf_printf(err, "hand-off: truncated: body of %zu bytes has no entry count", len);
        return GP_EPROTO;
    }
    if (count > GP_HANDOFF_MAX_ENTRIES) {
        gp__strbuf_printf(err, "hand-off: %u configuration entries, at most %u allowed",
                          (unsigned)count, (unsigned)GP_HANDOFF_MAX_ENTRIES);
        return GP_EMSGSIZE;
    }
    /* Every entry takes at least 9 bytes; refuse counts the body cannot
     * hold before allocating for them. */
    if ((size_t)count * 9 > r.left) {
        gp__strbuf_printf(err, "hand-off: truncated: %u entries cannot fit in %zu bytes",
                          (unsigned)count, r.left);
        return GP_EPROTO;
    }
    gp_err rc = GP_OK;
    if (count) {
        out->entries = calloc(count, sizeof *out->entries);
        if (!out->entries)
            return GP_ENOMEM;
    }
    size_t text = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t kl, vl;
        if (!take32(&r, &kl)) {
            gp__strbuf_printf(err, "hand-off: truncated: key %zu length missing at offset %zu", i,
                              r.off);
            rc = GP_EPROTO;
            goto fail;
        }
        if (kl == 0 || kl > GP_HANDOFF_MAX_KEY) {
            gp__strbuf_printf(err, "hand-off: key %zu is %u bytes, expected 1..%u", i, (unsigned)kl,
                              (unsigned)GP_HANDOFF_MAX_KEY);
            rc = kl ? GP_EMSGSIZE : GP_EPROTO;
            goto fail;
        }
        if ((rc = take_text(&r, "key", i, kl, &out->entries[i].key, err)))
            goto fail;
        out->n = i + 1; /* so a failure below frees this key too */
        if (!take32(&r, &vl)) {
            gp__strbuf_printf(err, "hand-off: truncated: value %zu length missing at offset %zu", i,
                              r.off);
            rc = GP_EPROTO;
            goto fail;
        }
        text += kl;
        if (vl > GP_HANDOFF_MAX_CONFIG - text) {
            gp__strbuf_printf(err, "hand-off: configuration over %u bytes at value %zu (%u bytes)",
                              (unsigned)GP_HANDOFF_MAX_CONFIG, i, (unsigned)vl);
            rc = GP_EMSGSIZE;
            goto fail;
        }
        text += vl;
        if ((rc = take_text(&r, "value", i, vl, &out->entries[i].value, err)))
            goto fail;
    }
    uint32_t sl;
    if (!take32(&r, &sl)) {
        gp__strbuf_printf(err, "hand-off: truncated: secret length missing at offset %zu", r.off);
        rc = GP_EPROTO;
        goto fail;
    }
    if (sl > GP_HANDOFF_MAX_SECRET) {
        gp__strbuf_printf(err, "hand-off: secret of %u bytes, at most %u allowed", (unsigned)sl,
                          (unsigned)GP_HANDOFF_MAX_SECRET);
        rc = GP_EMSGSIZE;
        goto fail;
    }
    if (r.left < sl) {
        gp__strbuf_printf(err, "hand-off: truncated: secret needs %u bytes, %zu left", (unsigned)sl,
                          r.left);
        rc = GP_EPROTO;
        goto fail;
    }
    if (r.left != sl) {
        gp__strbuf_printf(err, "hand-off: %zu unexpected bytes after the secret", r.left - sl);
        rc = GP_EPROTO;
        goto fail;
    }
    if (sl) {
        out->secret = malloc(sl);
        if (!out->secret) {
            rc = GP_ENOMEM;
            goto fail;
        }
        memcpy(out->secret, r.p, sl);
        out->secret_len = sl;
    }
    if ((rc = check_unique(out, err)))
        goto fail;
    return GP_OK;
fail:
    gp__handoff_msg_free(out);
    return rc;
}

size_t gp__handoff_status_encode(char kind, const char *reason, uint8_t *buf, size_t cap)
{
    size_t rl = 0;
    if (kind == 'F' && reason)
        rl = strnlen(reason, GP_HANDOFF_MAX_REASON);
    if (cap < GP__HANDOFF_STATUS_HEADER + rl)
        return 0;
    memcpy(buf, GP__HANDOFF_STATUS_MAGIC, 4);
    buf[4] = (uint8_t)kind;
    put32(buf + 5, (uint32_t)rl);
    if (rl)
        memcpy(buf + GP__HANDOFF_STATUS_HEADER, reason, rl);
    return GP__HANDOFF_STATUS_HEADER + rl;
}

int gp__handoff_status_decode(const uint8_t *buf, size_t len, char *kind, char *reason,
                              size_t *used, gp__strbuf *err)
{
    size_t m = len < 4 ? len : 4;
    if (memcmp(buf, GP__HANDOFF_STATUS_MAGIC, m) != 0) {
        gp__strbuf_append(err, "hand-off status: expected magic \"GPS1\", got ");
        gp__strbuf_quote(err, (const char *)buf, len, 40);
        return -1;
    }
    if (len < 5)
        return 0;
    if (buf[4] != 'R' && buf[4] != 'F') {
        gp__strbuf_append(err, "hand-off status: expected kind 'R' or 'F', got ");
        gp__strbuf_quote(err, (const char *)buf + 4, 1, 1);
        return -1;
    }
    if (len < GP__HANDOFF_STATUS_HEADER)
        return 0;
    uint32_t rl = get32(buf + 5);
    if (buf[4] == 'R' && rl != 0) {
        gp__strbuf_printf(err, "hand-off status: ready with a %u-byte reason, expected none",
                          (unsigned)rl);
        return -1;
    }
    if (rl > GP_HANDOFF_MAX_REASON) {
        gp__strbuf_printf(err, "hand-off status: reason of %u bytes, at most %u allowed",
                          (unsigned)rl, (unsigned)GP_HANDOFF_MAX_REASON);
        return -1;
    }
    if (len - GP__HANDOFF_STATUS_HEADER < rl)
        return 0;
    const uint8_t *r = buf + GP__HANDOFF_STATUS_HEADER;
    if (memchr(r, 0, rl)) {
        gp__strbuf_append(err, "hand-off status: reason contains a NUL byte: ");
        gp__strbuf_quote(err, (const char *)r, rl, 60);
        return -1;
    }
    *kind = (char)buf[4];
    memcpy(reason, r, rl);
    reason[rl] = 0;
    *used = GP__HANDOFF_STATUS_HEADER + rl;
    return 1;
}
