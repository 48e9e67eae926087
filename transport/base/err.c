/* gp_strerror: one fixed phrase per code. */
#include <goplugin/err.h>

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
};

const char *gp_strerror(gp_err err)
{
    if ((unsigned)err >= GP_ERR_COUNT_ || !names[err])
        return "unknown error";
    return names[err];
}
