/* gob primitives: see gob_wire.h. */
#include "transport/wire/netrpc/gob/gob_wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gp__gob_rd_init(gp__gob_rd *r, const uint8_t *p, size_t n, char *err, size_t errlen)
{
    r->p = p;
    r->left = n;
    r->failed = 0;
    r->err = err;
    r->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
}

gp_err gp__gob_rd_fail(gp__gob_rd *r, const char *fmt, ...)
{
    if (!r->failed && r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    r->failed = 1;
    return GP_EPROTO;
}

/* Decodes an unsigned from p[0..n): 0 = need more bytes, -1 = bad,
 * else the number of bytes used. */
static int decode_uint(const uint8_t *p, size_t n, uint64_t *v)
{
    if (n == 0)
        return 0;
    if (p[0] < 0x80) {
        *v = p[0];
        return 1;
    }
    int k = 256 - p[0];
    if (k > 8)
        return -1;
    if (n < (size_t)k + 1)
        return 0;
    uint64_t x = 0;
    for (int i = 1; i <= k; i++)
        x = x << 8 | p[i];
    *v = x;
    return k + 1;
}

gp_err gp__gob_read_uint(gp__gob_rd *r, uint64_t *v)
{
    *v = 0;
    if (r->failed)
        return GP_EPROTO;
    int k = decode_uint(r->p, r->left, v);
    if (k < 0)
        return gp__gob_rd_fail(r, "gob: expected an unsigned integer, got byte count %d",
                               256 - r->p[0]);
    if (k == 0)
        return gp__gob_rd_fail(
            r, "gob: unexpected end of message reading an integer (%zu bytes left)", r->left);
    r->p += k;
    r->left -= (size_t)k;
    return GP_OK;
}

gp_err gp__gob_read_int(gp__gob_rd *r, int64_t *v)
{
    uint64_t u;
    gp_err e = gp__gob_read_uint(r, &u);
    /* Bit 0 is the sign; the rest is the value, complemented if negative. */
    *v = (u & 1) ? (int64_t) ~(u >> 1) : (int64_t)(u >> 1);
    return e;
}

uint64_t gp__gob_float_bits(double f)
{
    uint64_t bits, rev = 0;
    memcpy(&bits, &f, sizeof bits);
    for (int i = 0; i < 8; i++) {
        rev = rev << 8 | (bits & 0xff);
        bits >>= 8;
    }
    return rev;
}

double gp__gob_bits_float(uint64_t u)
{
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) {
        bits = bits << 8 | (u & 0xff);
        u >>= 8;
    }
    double f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

gp_err gp__gob_read_float(gp__gob_rd *r, double *v)
{
    uint64_t u;
    gp_err e = gp__gob_read_uint(r, &u);
    *v = gp__gob_bits_float(u);
    return e;
}

gp_err gp__gob_read_bytes(gp__gob_rd *r, const char *what, const uint8_t **p, size_t *n)
{
    uint64_t len;
    *p = NULL;
    *n = 0;
    if (gp__gob_read_uint(r, &len) != GP_OK)
        return GP_EPROTO;
    if (len > r->left)
        return gp__gob_rd_fail(r,
                               "gob: %s of %llu bytes runs past the end of the message (%zu left)",
                               what, (unsigned long long)len, r->left);
    *p = r->p;
    *n = (size_t)len;
    r->p += len;
    r->left -= (size_t)len;
    return GP_OK;
}

void gp__gob_buf_init(gp__gob_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max ? max : (size_t)64 << 20;
    b->ok = 1;
}

void gp__gob_buf_free(gp__gob_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void gp__gob_put_bytes(gp__gob_buf *b, const void *p, size_t n)
{
    if (!b->ok || n == 0)
        return;
    if (n > b->max - b->len) {
        b->ok = 0;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > b->max)
            cap = b->max;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->ok = 0;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void gp__gob_put_uint(gp__gob_buf *b, uint64_t v)
{
    uint8_t t[9];
    if (v < 0x80) {
        t[0] = (uint8_t)v;
        gp__gob_put_bytes(b, t, 1);
        return;
    }
    int k = 0;
    for (uint64_t x = v; x; x >>= 8)
        k++;
    t[0] = (uint8_t)(256 - k);
    for (int i = 0; i < k; i++)
        t[k - i] = (uint8_t)(v >> (8 * i));
    gp__gob_put_bytes(b, t, (size_t)k + 1);
}

void gp__gob_put_int(gp__gob_buf *b, int64_t v)
{
    uint64_t u = v < 0 ? (~(uint64_t)v << 1) | 1 : (uint64_t)v << 1;
    gp__gob_put_uint(b, u);
}

void gp__gob_put_float(gp__gob_buf *b, double f)
{
    gp__gob_put_uint(b, gp__gob_float_bits(f));
}

void gp__gob_put_string(gp__gob_buf *b, const void *p, size_t n)
{
    gp__gob_put_uint(b, n);
    gp__gob_put_bytes(b, p, n);
}

gp_err gp__gob_frame(const uint8_t *in, size_t n, size_t max_message, const uint8_t **body,
                     size_t *body_len, size_t *used, char *err, size_t errlen)
{
    *body = NULL;
    *body_len = 0;
    *used = 0;
    uint64_t len;
    int k = decode_uint(in, n, &len);
    if (k < 0) {
        snprintf(err, errlen, "gob: expected a message length, got byte 0x%02x", in[0]);
        return GP_EPROTO;
    }
    if (k == 0)
        return GP_OK;
    if (len == 0) {
        snprintf(err, errlen, "gob: empty message (length 0)");
        return GP_EPROTO;
    }
    if (len > max_message) {
        snprintf(err, errlen,
                 "gob: a message of %llu bytes exceeds the limit of %zu (max_message_bytes)",
                 (unsigned long long)len, max_message);
        return GP_EMSGSIZE;
    }
    if (n - (size_t)k < len)
        return GP_OK;
    *body = in + k;
    *body_len = (size_t)len;
    *used = (size_t)k + (size_t)len;
    return GP_OK;
}
