/* goplugin-c: reattach files, go-plugin's ReattachConfig as JSON.
 *
 *   {"Protocol":"grpc","ProtocolVersion":1,
 *    "Addr":{"Network":"unix","String":"/tmp/plugin123"},
 *    "Pid":4242,"Test":false}
 *
 * Protocol ("grpc" | "netrpc" | ""), Addr and Pid are required;
 * ProtocolVersion and Test are optional (go-plugin 1.0.1 has neither).
 * "PidStartTime" (ours, optional, written when start_time != 0) is the
 * plugin's /proc start time, so a reattach can tell a reused pid; Go's
 * encoding/json ignores it.
 * Unknown or duplicate keys, wrong types, non-integers, and values out of
 * range are errors. At most GP_REATTACH_FILE_MAX bytes.
 *
 * gp_reattach_config itself is in goplugin/client.h (a client attaches
 * with it; gp_client_reattach_config fills one).
 *
 * Errors follow docs/errors.md: each call returns a gp_err and writes its
 * words into `st` (NULL: not wanted). Thread safety: every call here may
 * run on any thread, concurrently, as long as no two use one
 * gp_reattach_config at once while one of them writes it.
 */
#ifndef GOPLUGIN_REATTACH_H
#define GOPLUGIN_REATTACH_H

#include <stddef.h>

#include <goplugin/client.h>
#include <goplugin/err.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GP_REATTACH_FILE_MAX (64u << 10)

/* Parse `len` bytes. Strings in *out are malloc'd and owned by the caller:
 * release them with gp_reattach_config_clear. On failure *out is zeroed
 * and st->msg says what was expected and what came. Errors: GP_EPROTO,
 * GP_EMSGSIZE, GP_ENOMEM. Thread safety: any thread. */
gp_err gp_reattach_parse(const char *data, size_t len, gp_reattach_config *out, gp_status *st);

/* The JSON text for rc (malloc'd, NUL-terminated, the caller frees it).
 * Errors: GP_EINVAL (missing network/address, bad protocol), GP_ENOMEM.
 * Thread safety: any thread. */
gp_err gp_reattach_format(const gp_reattach_config *rc, char **out, gp_status *st);

/* Write atomically: a temp file (a unique name) in the same directory,
 * fsync, rename over `path`, fsync the directory. Mode 0600. Readers see
 * the old file or the whole new one, never a part; of two writers at once,
 * the last rename wins. Errors: GP_EINVAL, GP_ESYS (with the path and the
 * errno words in st). Thread safety: any thread, also on one path. */
gp_err gp_reattach_file_write(const char *path, const gp_reattach_config *rc, gp_status *st);

/* Read and parse, as gp_reattach_parse (the caller owns out's strings);
 * GP_ENOTFOUND when the file does not exist. Thread safety: any thread. */
gp_err gp_reattach_file_read(const char *path, gp_reattach_config *out, gp_status *st);

/* Free the strings of a config filled by gp_reattach_parse/_file_read and
 * zero it. Not for one from gp_client_reattach_config (its strings belong
 * to the client). Thread safety: alone on rc. */
void gp_reattach_config_clear(gp_reattach_config *rc);

#ifdef __cplusplus
}
#endif
#endif
