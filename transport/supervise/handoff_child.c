/* The child side of the hand-off: read config and secret, report status. */
#include "transport/supervise/handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/supervise/fdutil.h"

#define STATUS_WRITE_MS 5000

struct gp_handoff_child {
    gp__handoff_msg msg;
    int status_fd;
    bool secret_taken;
    bool reported;
    gp_strbuf err;
};

static gp_err fail(gp_handoff_child *hc, gp_err rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static gp_err fail(gp_handoff_child *hc, gp_err rc, const char *fmt, ...)
{
    gp_strbuf_reset(&hc->err);
    va_list ap;
    va_start(ap, fmt);
    gp_strbuf_vprintf(&hc->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* The fd number from the environment: plain decimal, open, >= 0. Returns
 * -1 when unset, -2 when bad (words in err). */
static int env_fd(gp_handoff_child *hc, const char *name)
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
        fail(hc, GP_EINVAL, "hand-off: %s=%ld is not an open file descriptor", name, n);
        return -2;
    }
    return (int)n;
bad:
    gp_strbuf_reset(&hc->err);
    gp_strbuf_printf(&hc->err, "hand-off: %s: expected a file descriptor number, got ", name);
    gp_strbuf_quote(&hc->err, v, strlen(v), 40);
    return -2;
}

static gp_err io_error(gp_handoff_child *hc, const char *what, size_t got, size_t want,
                       int timeout_ms)
{
    if (errno == ETIMEDOUT)
        return fail(hc, GP_ETIMEDOUT,
                    "hand-off: the %s did not arrive within %d ms (%zu of %zu bytes)", what,
                    timeout_ms, got, want);
    if (errno == EPIPE)
        return fail(hc, GP_EPROTO,
                    "hand-off: truncated: end of file in the %s after %zu of %zu bytes", what,
                    got, want);
    return fail(hc, GP_EIO, "hand-off: reading the %s: %s", what, strerror(errno));
}

static gp_err read_all(gp_handoff_child *hc, int fd, int timeout_ms)
{
    int64_t deadline = gp__sup_now_ms() + timeout_ms;
    uint8_t hdr[GP__HANDOFF_HEADER];
    size_t got = 0;
    if (gp__sup_read_full(fd, hdr, sizeof hdr, deadline, &got) < 0)
        return io_error(hc, "header", got, sizeof hdr, timeout_ms);
    uint32_t body_len;
    gp_strbuf_reset(&hc->err);
    gp_err rc = gp__handoff_decode_header(hdr, &body_len, &hc->err);
    if (rc)
        return rc;
    uint8_t *body = malloc(body_len ? body_len : 1);
    if (!body)
        return fail(hc, GP_ENOMEM, "hand-off: out of memory for %u bytes", (unsigned)body_len);
    if (gp__sup_read_full(fd, body, body_len, deadline, &got) < 0) {
        rc = io_error(hc, "configuration", got, body_len, timeout_ms);
    } else {
        gp_strbuf_reset(&hc->err);
        rc = gp__handoff_decode_body(body, body_len, &hc->msg, &hc->err);
    }
    explicit_bzero(body, body_len);
    free(body);
    return rc;
}

gp_err gp_handoff_child_open(gp_handoff_child **out, int timeout_ms)
{
    *out = NULL;
    gp_handoff_child *hc = calloc(1, sizeof *hc);
    if (!hc)
        return GP_ENOMEM;
    hc->status_fd = -1;
    gp_strbuf_init(&hc->err);
    *out = hc;
    if (timeout_ms <= 0)
        timeout_ms = 30000;

    int data = env_fd(hc, GP_HANDOFF_ENV_FD);
    int status = env_fd(hc, GP_HANDOFF_ENV_STATUS_FD);
    /* Our own children must not take these numbers for theirs. */
    unsetenv(GP_HANDOFF_ENV_FD);
    unsetenv(GP_HANDOFF_ENV_STATUS_FD);
    if (status >= 0) {
        gp__sup_set_cloexec(status, true);
        hc->status_fd = status;
    }
    if (data == -1)
        return fail(hc, GP_ENOTFOUND, "hand-off: %s is not set: not started with a hand-off",
                    GP_HANDOFF_ENV_FD);
    if (data == -2 || status == -2) {
        if (data >= 0)
            close(data);
        return GP_EINVAL;
    }
    gp__sup_set_cloexec(data, true);
    gp_err rc = read_all(hc, data, timeout_ms);
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

gp_err gp_handoff_child_take_secret(gp_handoff_child *hc, void *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (hc->secret_taken)
        return fail(hc, GP_ESTATE, "hand-off: the secret was already taken");
    if (cap < hc->msg.secret_len)
        return fail(hc, GP_EMSGSIZE, "hand-off: secret of %zu bytes, buffer of %zu",
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

static gp_err report(gp_handoff_child *hc, char kind, const char *reason)
{
    if (hc->reported)
        return fail(hc, GP_ESTATE, "hand-off: status already reported");
    if (hc->status_fd < 0)
        return fail(hc, GP_ENOTFOUND, "hand-off: %s is not set: no status pipe",
                    GP_HANDOFF_ENV_STATUS_FD);
    hc->reported = true;
    uint8_t msg[GP__HANDOFF_STATUS_HEADER + GP_HANDOFF_MAX_REASON];
    size_t n = gp__handoff_status_encode(kind, reason, msg, sizeof msg);
    /* Non-blocking so a host that stopped reading cannot hold us forever. */
    gp__sup_set_nonblock(hc->status_fd, true);
    size_t put = 0;
    int r = gp__sup_write_full(hc->status_fd, msg, n, gp__sup_now_ms() + STATUS_WRITE_MS, &put);
    int e = errno;
    gp__sup_close(&hc->status_fd);
    if (r < 0)
        return fail(hc, GP_EIO, "hand-off: writing status: %s", strerror(e));
    return GP_OK;
}

gp_err gp_handoff_child_ready(gp_handoff_child *hc)
{
    return report(hc, 'R', NULL);
}

gp_err gp_handoff_child_failed(gp_handoff_child *hc, const char *reason)
{
    return report(hc, 'F', reason ? reason : "");
}

const char *gp_handoff_child_error(const gp_handoff_child *hc)
{
    return hc->err.data && hc->err.ok ? hc->err.data : "";
}

void gp_handoff_child_free(gp_handoff_child *hc)
{
    if (!hc)
        return;
    gp__sup_close(&hc->status_fd);
    gp__handoff_msg_free(&hc->msg);
    gp_strbuf_free(&hc->err);
    free(hc);
}
