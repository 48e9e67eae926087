/* The host side of the hand-off: encode, pipes, timed write, status wait. */
#include "transport/supervise/handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/base/errf.h"
#include "transport/supervise/fdutil.h"

typedef enum status_state {
    ST_NONE, /* nothing complete yet */
    ST_READY,
    ST_FAILED,
    ST_EXITED, /* end of file before a whole message */
    ST_GARBLED
} status_state;

struct gp_handoff {
    gp__handoff_entry *entries;
    size_t n, cap;
    size_t text; /* key + value bytes so far */
    uint8_t *secret;
    size_t secret_len;

    uint8_t *wire; /* encoded, zeroed once written */
    size_t wire_len, wire_off;
    bool prepared, started, sent;
    int data_r, data_w, status_r, status_w;
    char env_data[48], env_status[48];

    uint8_t sbuf[GP__HANDOFF_STATUS_HEADER + GP_HANDOFF_MAX_REASON];
    size_t slen;
    status_state st;
    char reason[GP_HANDOFF_MAX_REASON + 1];
    gp__strbuf status_words; /* the words for a final status */
};

gp_err gp_handoff_new(gp_handoff **out, gp_status *st)
{
    gp__status_clear(st);
    *out = NULL;
    gp_handoff *h = calloc(1, sizeof *h);
    if (!h)
        return gp__status_setf(st, GP_ENOMEM, "hand-off: out of memory");
    h->data_r = h->data_w = h->status_r = h->status_w = -1;
    gp__strbuf_init(&h->status_words);
    *out = h;
    return GP_OK;
}

gp_err gp_handoff_set(gp_handoff *h, const char *key, const char *value, gp_status *st)
{
    gp__status_clear(st);
    if (h->prepared)
        return gp__status_setf(st, GP_ESTATE, "hand-off: set after prepare");
    if (!key || !value)
        return gp__status_setf(st, GP_EINVAL, "hand-off: key and value must not be NULL");
    size_t kl = strlen(key), vl = strlen(value);
    if (kl == 0 || kl > GP_HANDOFF_MAX_KEY)
        return gp__status_setf(st, GP_EINVAL, "hand-off: key of %zu bytes, expected 1..%u", kl,
                               (unsigned)GP_HANDOFF_MAX_KEY);
    /* Linear: configurations are small; the child checks uniqueness in
     * O(n log n) where a hostile stream could make it matter. */
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->entries[i].key, key) == 0) {
            size_t old = strlen(h->entries[i].value);
            if (h->text - old + vl > GP_HANDOFF_MAX_CONFIG)
                return gp__status_setf(st, GP_EMSGSIZE, "hand-off: configuration over %u bytes",
                                       (unsigned)GP_HANDOFF_MAX_CONFIG);
            char *v = strdup(value);
            if (!v)
                return gp__status_setf(st, GP_ENOMEM, "hand-off: out of memory");
            explicit_bzero(h->entries[i].value, old);
            free(h->entries[i].value);
            h->entries[i].value = v;
            h->text = h->text - old + vl;
            return GP_OK;
        }
    }
    if (h->n >= GP_HANDOFF_MAX_ENTRIES)
        return gp__status_setf(st, GP_EMSGSIZE, "hand-off: more than %u entries",
                               (unsigned)GP_HANDOFF_MAX_ENTRIES);
    if (kl + vl > GP_HANDOFF_MAX_CONFIG - h->text)
        return gp__status_setf(st, GP_EMSGSIZE, "hand-off: configuration over %u bytes",
                               (unsigned)GP_HANDOFF_MAX_CONFIG);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        gp__handoff_entry *e = realloc(h->entries, cap * sizeof *e);
        if (!e)
            return gp__status_setf(st, GP_ENOMEM, "hand-off: out of memory");
        h->entries = e;
        h->cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return gp__status_setf(st, GP_ENOMEM, "hand-off: out of memory");
    }
    h->entries[h->n].key = k;
    h->entries[h->n].value = v;
    h->n++;
    h->text += kl + vl;
    return GP_OK;
}

gp_err gp_handoff_set_secret(gp_handoff *h, const void *secret, size_t len, gp_status *st)
{
    gp__status_clear(st);
    if (h->prepared)
        return gp__status_setf(st, GP_ESTATE, "hand-off: secret set after prepare");
    if (len > GP_HANDOFF_MAX_SECRET)
        return gp__status_setf(st, GP_EMSGSIZE, "hand-off: secret of %zu bytes, at most %u allowed",
                               len, (unsigned)GP_HANDOFF_MAX_SECRET);
    if (len && !secret)
        return gp__status_setf(st, GP_EINVAL, "hand-off: NULL secret with length %zu", len);
    uint8_t *s = NULL;
    if (len) {
        s = malloc(len);
        if (!s)
            return gp__status_setf(st, GP_ENOMEM, "hand-off: out of memory");
        memcpy(s, secret, len);
    }
    if (h->secret) {
        explicit_bzero(h->secret, h->secret_len);
        free(h->secret);
    }
    h->secret = s;
    h->secret_len = len;
    return GP_OK;
}

gp_err gp_handoff_prepare(gp_handoff *h, int first_child_fd, gp_handoff_spawn *out, gp_status *st)
{
    gp__status_clear(st);
    memset(out, 0, sizeof *out);
    if (h->prepared)
        return gp__status_setf(st, GP_ESTATE, "hand-off: prepared twice");
    if (first_child_fd == 0)
        first_child_fd = 3;
    if (first_child_fd < 3 || first_child_fd > 1000000)
        return gp__status_setf(st, GP_EINVAL, "hand-off: child fd %d, expected 3..1000000",
                               first_child_fd);

    gp__strbuf words;
    gp__strbuf_init(&words);
    gp_err rc = gp__handoff_encode(h->entries, h->n, h->secret, h->secret_len, &h->wire,
                                   &h->wire_len, &words);
    if (rc)
        gp__status_setf(st, rc, "%s", words.ok && words.data ? words.data : gp_strerror(rc));
    gp__strbuf_free(&words);
    if (rc)
        return rc;
    int d[2], s[2];
    if (pipe2(d, O_CLOEXEC) < 0)
        return gp__status_setf(st, GP_ESYS, "hand-off: pipe: %s", strerror(errno));
    if (pipe2(s, O_CLOEXEC) < 0) {
        int e = errno;
        close(d[0]);
        close(d[1]);
        return gp__status_setf(st, GP_ESYS, "hand-off: pipe: %s", strerror(e));
    }
    h->data_r = d[0];
    h->data_w = d[1];
    h->status_r = s[0];
    h->status_w = s[1];
    /* Only the host's ends are non-blocking; the child's stay blocking. */
    if (gp__sup_set_nonblock(h->data_w, true) < 0 || gp__sup_set_nonblock(h->status_r, true) < 0)
        return gp__status_setf(st, GP_ESYS, "hand-off: fcntl: %s", strerror(errno));
    h->prepared = true;

    snprintf(h->env_data, sizeof h->env_data, "%s=%d", GP_HANDOFF_ENV_FD, first_child_fd);
    snprintf(h->env_status, sizeof h->env_status, "%s=%d", GP_HANDOFF_ENV_STATUS_FD,
             first_child_fd + 1);
    out->fds[0] = (gp_extra_fd){h->data_r, first_child_fd};
    out->fds[1] = (gp_extra_fd){h->status_w, first_child_fd + 1};
    out->nfds = 2;
    out->env[0] = h->env_data;
    out->env[1] = h->env_status;
    out->env[2] = NULL;
    return GP_OK;
}

void gp_handoff_started(gp_handoff *h)
{
    gp__sup_close(&h->data_r);
    gp__sup_close(&h->status_w);
    h->started = h->prepared;
}

static void drop_wire(gp_handoff *h)
{
    if (h->wire) {
        explicit_bzero(h->wire, h->wire_len);
        free(h->wire);
        h->wire = NULL;
    }
}

/* Read what the status pipe has now; move to a final state when a whole
 * message, end of file or garbage arrives. */
static void read_status(gp_handoff *h)
{
    while (h->st == ST_NONE && h->status_r >= 0) {
        size_t room = sizeof h->sbuf - h->slen;
        ssize_t r = read(h->status_r, h->sbuf + h->slen, room);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            h->st = ST_GARBLED;
            gp__strbuf_printf(&h->status_words, "hand-off status: read: %s", strerror(errno));
            break;
        }
        if (r == 0) {
            if (h->slen == 0) {
                h->st = ST_EXITED;
                gp__strbuf_append(&h->status_words, "child exited before reporting ready");
            } else {
                h->st = ST_GARBLED;
                gp__strbuf_printf(
                    &h->status_words,
                    "hand-off status: truncated: end of file after %zu bytes: ", h->slen);
                gp__strbuf_quote(&h->status_words, (const char *)h->sbuf, h->slen, 60);
            }
            break;
        }
        h->slen += (size_t)r;
        char kind = 0;
        size_t used = 0;
        int d =
            gp__handoff_status_decode(h->sbuf, h->slen, &kind, h->reason, &used, &h->status_words);
        if (d < 0) {
            h->st = ST_GARBLED;
        } else if (d > 0) {
            if (kind == 'R') {
                h->st = ST_READY;
            } else {
                h->st = ST_FAILED;
                gp__strbuf_append(&h->status_words, "child reported failure: ");
                gp__strbuf_quote(&h->status_words, h->reason, strlen(h->reason), 1024);
            }
        }
    }
    if (h->st != ST_NONE)
        gp__sup_close(&h->status_r);
}

static gp_err status_result(gp_handoff *h, gp_status *st)
{
    static const gp_err codes[] = {
        [ST_NONE] = GP_ESTATE,    [ST_READY] = GP_OK,       [ST_FAILED] = GP_EREMOTE,
        [ST_EXITED] = GP_EEXITED, [ST_GARBLED] = GP_EPROTO,
    };
    if (h->st != ST_READY)
        gp__status_setf(st, codes[h->st], "%s", h->status_words.data ? h->status_words.data : "");
    return codes[h->st];
}

gp_err gp_handoff_send(gp_handoff *h, int timeout_ms, gp_status *st)
{
    gp__status_clear(st);
    if (!h->prepared || !h->started)
        return gp__status_setf(st, GP_ESTATE, "hand-off: send before prepare and started");
    if (h->sent || h->data_w < 0)
        return gp__status_setf(st, GP_ESTATE, "hand-off: already sent");
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    int64_t deadline = gp__sup_now_ms() + timeout_ms;
    gp_err rc = GP_OK;
    while (h->wire_off < h->wire_len) {
        struct pollfd p[2] = {{.fd = h->data_w, .events = POLLOUT},
                              {.fd = h->status_r, .events = POLLIN}};
        int np = h->status_r >= 0 ? 2 : 1;
        int r = poll(p, (nfds_t)np, gp__sup_left_ms(deadline));
        if (r < 0 && errno != EINTR) {
            rc = gp__status_setf(st, GP_ESYS, "hand-off: poll: %s", strerror(errno));
            break;
        }
        if (r == 0) {
            rc = gp__status_setf(st, GP_ETIMEDOUT,
                                 "hand-off: child did not read its configuration within %d ms "
                                 "(%zu of %zu bytes written)",
                                 timeout_ms, h->wire_off, h->wire_len);
            break;
        }
        if (r < 0)
            continue;
        if (np == 2 && p[1].revents) {
            /* A child that gives up early says why; that beats EPIPE. */
            read_status(h);
            if (h->st == ST_FAILED || h->st == ST_GARBLED) {
                rc = status_result(h, st);
                break;
            }
        }
        if (p[0].revents) {
            ssize_t w = gp__sup_write_nosigpipe(h->data_w, h->wire + h->wire_off,
                                                h->wire_len - h->wire_off);
            if (w > 0) {
                h->wire_off += (size_t)w;
            } else if (w < 0 && errno == EPIPE) {
                rc = gp__status_setf(st, GP_EEXITED,
                                     "hand-off: child closed its configuration pipe "
                                     "(exited?) after %zu of %zu bytes",
                                     h->wire_off, h->wire_len);
                break;
            } else if (w < 0 && errno != EAGAIN) {
                rc = gp__status_setf(st, GP_EIO, "hand-off: write: %s", strerror(errno));
                break;
            }
        }
    }
    gp__sup_close(&h->data_w);
    drop_wire(h);
    h->sent = true;
    return rc;
}

gp_err gp_handoff_wait_ready(gp_handoff *h, int timeout_ms, gp_status *st)
{
    gp__status_clear(st);
    if (!h->prepared || !h->started)
        return gp__status_setf(st, GP_ESTATE, "hand-off: wait before prepare and started");
    if (timeout_ms <= 0)
        timeout_ms = 60000;
    int64_t deadline = gp__sup_now_ms() + timeout_ms;
    while (h->st == ST_NONE) {
        struct pollfd p = {.fd = h->status_r, .events = POLLIN};
        int r = poll(&p, 1, gp__sup_left_ms(deadline));
        if (r < 0 && errno != EINTR)
            return gp__status_setf(st, GP_ESYS, "hand-off: poll: %s", strerror(errno));
        if (r == 0)
            return gp__status_setf(st, GP_ETIMEDOUT,
                                   "hand-off: child did not report ready within %d ms", timeout_ms);
        if (r > 0)
            read_status(h);
    }
    return status_result(h, st);
}

const char *gp_handoff_reason(const gp_handoff *h)
{
    return h->st == ST_FAILED ? h->reason : "";
}

void gp_handoff_free(gp_handoff *h)
{
    if (!h)
        return;
    gp__sup_close(&h->data_r);
    gp__sup_close(&h->data_w);
    gp__sup_close(&h->status_r);
    gp__sup_close(&h->status_w);
    drop_wire(h);
    gp__handoff_msg m = {h->entries, h->n, h->secret, h->secret_len};
    gp__handoff_msg_free(&m);
    gp__strbuf_free(&h->status_words);
    free(h);
}
