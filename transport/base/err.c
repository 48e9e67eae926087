/* gp_strerror: one fixed phrase per code; the error-words helpers. */
#include "transport/base/errf.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const names[GP_ERR_COUNT_] = {
    [GP_OK] = "ok",
    [GP_EINVAL] = "invalid argument",
    [GP_ENOMEM] = "out of memory",
    [GP_ESTATE] = "invalid state",
    [GP_ETIMEDOUT] = "timed out",
    [GP_EPROTO] = "protocol error",
    [GP_EVERSION] = "incompatible version",
    [GP_EEXITED] = "plugin exited",
    [GP_ECONNECT] = "connection failed",
    [GP_ECLOSED] = "connection closed",
    [GP_EIO] = "i/o error",
    [GP_EREMOTE] = "remote error",
    [GP_ENOTFOUND] = "not found",
    [GP_EMSGSIZE] = "message too large",
    [GP_ECHECKSUM] = "checksum mismatch",
    [GP_EUNSUPPORTED] = "not supported",
    [GP_ESYS] = "system error",
    [GP_ETLS] = "tls error",
    [GP_EOF] = "end of stream",
    [GP_EBUSY] = "busy",
};

const char *gp_strerror(gp_err err)
{
    if ((unsigned)err >= GP_ERR_COUNT_ || !names[err])
        return "unknown error";
    return names[err];
}

/* ---- gp__errf, gp__status_setf: transport/base/errf.h ---- */

void gp__verrf(char *buf, size_t cap, const char *fmt, va_list ap)
{
    if (!buf || cap == 0)
        return;
    if (buf[0]) {
        /* Holds an error already: only a reset (an empty message) counts. */
        va_list cp;
        va_copy(cp, ap);
        int n = vsnprintf(NULL, 0, fmt, cp);
        va_end(cp);
        if (n == 0)
            buf[0] = 0;
        return;
    }
    vsnprintf(buf, cap, fmt, ap);
}

void gp__errf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp__verrf(buf, cap, fmt, ap);
    va_end(ap);
}

void gp__status_clear(gp_status *st)
{
    if (st) {
        st->err = GP_OK;
        st->grpc_code = 0;
        st->msg[0] = 0;
    }
}

gp_err gp__status_setf(gp_status *st, gp_err err, const char *fmt, ...)
{
    if (!st || st->err != GP_OK)
        return err;
    st->err = err;
    st->grpc_code = 0;
    st->msg[0] = 0;
    va_list ap;
    va_start(ap, fmt);
    gp__verrf(st->msg, sizeof st->msg, fmt, ap);
    va_end(ap);
    return err;
}
