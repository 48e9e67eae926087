/* The child side of the hand-off: read config and secret, report status. */
#include "transport/supervise/handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/base/errf.h"
#include "transport/supervise/fdutil.h"

#define STATUS_WRITE_MS 5000

struct gp_handoff_child {
    gp__handoff_msg msg;
    int status_fd;
    bool secret_taken;
    bool reported;
};

/* The words a gp__strbuf collected, into st. */
static gp_err fail_words(gp_status *st, gp_err rc, gp__strbuf *words)
{
    gp__status_setf(st, rc, "%s", words->ok && words->data ? words->data : gp_strerror(rc));
    gp__strbuf_free(words);
    return rc;
}

/* The fd number from the environment: plain decimal, open, >= 0. Returns
 * -1 when unset, -2 when bad (words in st). */
static int env_fd(gp_status *st, const char *name)
{
    const char *v = getenv(name);
    if (!v)
        return -1;
    long n = 0;
    const char *p = v;
    if (!*p)
        goto bad;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || n > 1000000)
            goto bad;
        n = n * 10 + (*p - '0');
    }
    if (n > 1000000)
        goto bad;
    if (fcntl((int)n, F_GETFD) < 0) {
        gp__status_setf(st, GP_EINVAL, "hand-off: %s=%ld is not an open file descriptor", name, n);
        return -2;
    }
    return (int)n;
bad:;
    gp__strbuf w;
    gp__strbuf_init(&w);
    gp__strbuf_printf(&w, "hand-off: %s: expected a file descriptor number, got ", name);
    gp__strbuf_quote(&w, v, strlen(v), 40);
    fail_words(st, GP_EINVAL, &w);
    return -2;
}

static gp_err io_error(gp_status *st, const char *what, size_t got, size_t want, int timeout_ms)
{
    if (errno == ETIMEDOUT)
        return gp__status_setf(st, GP_ETIMEDOUT,
                               "hand-off: the %s did not arrive within %d ms (%zu of %zu bytes)",
                               what, timeout_ms, got, want);
    if (errno == EPIPE)
        return gp__status_setf(st, GP_EPROTO,
                               "hand-off: truncated: end of file in the %s after %zu of %zu "
                               "bytes",
                               what, got, want);
    return gp__status_setf(st, GP_EIO, "hand-off: reading the %s: %s", what, strerror(errno));
}

static gp_err read_all(gp_handoff_child *hc, int fd, int timeout_ms, gp_status *st)
{
    int64_t deadline = gp__sup_now_ms() + timeout_ms;
    uint8_t hdr[GP__HANDOFF_HEADER];
    size_t got = 0;
    if (gp__sup_read_full(fd, hdr, sizeof hdr, deadline, &got) < 0)
        return io_error(st, "header", got, sizeof hdr, timeout_ms);
    uint32_t body_len;
    gp__strbuf w;
    gp__strbuf_init(&w);
    gp_err rc = gp__handoff_decode_header(hdr, &body_len, &w);
    if (rc)
        return fail_words(st, rc, &w);
    uint8_t *body = malloc(body_len ? body_len : 1);
    if (!body)
        return gp__status_setf(st, GP_ENOMEM, "hand-off: out of memory for %u bytes",
                               (unsigned)body_len);
    if (gp__sup_read_full(fd, body, body_len, deadline, &got) < 0) {
        rc = io_error(st, "configuration", got, body_len, timeout_ms);
    } else {
        rc = gp__handoff_decode_body(body, body_len, &hc->msg, &w);
        if (rc)
            fail_words(st, rc, &w);
    }
    gp__strbuf_free(&w);
    explicit_bzero(body, body_len);
    free(body);
    return rc;
}

gp_err gp_handoff_child_open(gp_handoff_child **out, int timeout_ms, gp_status *st)
{
    gp__status_clear(st);
    *out = NULL;
    gp_handoff_child *hc = calloc(1, sizeof *hc);
    if (!hc)
        return gp__status_setf(st, GP_ENOMEM, "hand-off: out of memory");
    hc->status_fd = -1;
    *out = hc;
    if (timeout_ms <= 0)
        timeout_ms = 30000;

    int data = env_fd(st, GP_HANDOFF_ENV_FD);
    int status = env_fd(st, GP_HANDOFF_ENV_STATUS_FD);
    /* Our own children must not take these numbers for theirs. */
    unsetenv(GP_HANDOFF_ENV_FD);
    unsetenv(GP_HANDOFF_ENV_STATUS_FD);
    if (status >= 0) {
        gp__sup_set_cloexec(status, true);
        hc->status_fd = status;
    }
    if (data == -1)
        return gp__status_setf(st, GP_ENOTFOUND,
                               "hand-off: %s is not set: not started with a hand-off",
                               GP_HANDOFF_ENV_FD);
    if (data == -2 || status == -2) {
        if (data >= 0)
            close(data);
        return GP_EINVAL;
    }
    gp__sup_set_cloexec(data, true);
    gp_err rc = read_all(hc, data, timeout_ms, st);
    close(data);
    return rc;
}

const char *gp_handoff_child_get(const gp_handoff_child *hc, const char *key)
{
    for (size_t i = 0; i < hc->msg.n; i++)
        if (strcmp(hc->msg.entries[i].key, key) == 0)
            return hc->msg.entries[i].value;
    return NULL;
}

size_t gp_handoff_child_count(const gp_handoff_child *hc)
{
    return hc->msg.n;
}

const char *gp_handoff_child_key(const gp_handoff_child *hc, size_t i)
{
    return i < hc->msg.n ? hc->msg.entries[i].key : NULL;
}

const char *gp_handoff_child_value(const gp_handoff_child *hc, size_t i)
{
    return i < hc->msg.n ? hc->msg.entries[i].value : NULL;
}

gp_err gp_handoff_child_take_secret(gp_handoff_child *hc, void *buf, size_t cap, size_t *len,
                                    gp_status *st)
{
    gp__status_clear(st);
    *len = 0;
    if (hc->secret_taken)
        return gp__status_setf(st, GP_ESTATE, "hand-off: the secret was already taken");
    if (cap < hc->msg.secret_len)
        return gp__status_setf(st, GP_EMSGSIZE, "hand-off: secret of %zu bytes, buffer of %zu",
                               hc->msg.secret_len, cap);
    if (hc->msg.secret_len)
        memcpy(buf, hc->msg.secret, hc->msg.secret_len);
    *len = hc->msg.secret_len;
    if (hc->msg.secret) {
        explicit_bzero(hc->msg.secret, hc->msg.secret_len);
        free(hc->msg.secret);
        hc->msg.secret = NULL;
    }
    hc->msg.secret_len = 0;
    hc->secret_taken = true;
    return GP_OK;
}

static gp_err report(gp_handoff_child *hc, char kind, const char *reason, gp_status *st)
{
    /* Encoded before st is cleared: the reason may be st->msg. */
    uint8_t msg[GP__HANDOFF_STATUS_HEADER + GP_HANDOFF_MAX_REASON];
    size_t n = gp__handoff_status_encode(kind, reason, msg, sizeof msg);
    gp__status_clear(st);
    if (hc->reported)
        return gp__status_setf(st, GP_ESTATE, "hand-off: status already reported");
    if (hc->status_fd < 0)
        return gp__status_setf(st, GP_ENOTFOUND, "hand-off: %s is not set: no status pipe",
                               GP_HANDOFF_ENV_STATUS_FD);
    hc->reported = true;
    /* Non-blocking so a host that stopped reading cannot hold us forever. */
    gp__sup_set_nonblock(hc->status_fd, true);
    size_t put = 0;
    int r = gp__sup_write_full(hc->status_fd, msg, n, gp__sup_now_ms() + STATUS_WRITE_MS, &put);
    int e = errno;
    gp__sup_close(&hc->status_fd);
    if (r < 0)
        return gp__status_setf(st, GP_EIO, "hand-off: writing status: %s", strerror(e));
    return GP_OK;
}

gp_err gp_handoff_child_ready(gp_handoff_child *hc, gp_status *st)
{
    return report(hc, 'R', NULL, st);
}

gp_err gp_handoff_child_failed(gp_handoff_child *hc, const char *reason, gp_status *st)
{
    return report(hc, 'F', reason ? reason : "", st);
}

void gp_handoff_child_free(gp_handoff_child *hc)
{
    if (!hc)
        return;
    gp__sup_close(&hc->status_fd);
    gp__handoff_msg_free(&hc->msg);
    free(hc);
}
