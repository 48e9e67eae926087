/* Internal: the go-plugin handshake as pure functions (no I/O).
 *
 * The line: CORE|APPVER|NETWORK|ADDRESS[|PROTOCOL[|CERT[|MUX]]]
 * (spec §1.3). The env contract: PLUGIN_PROTOCOL_VERSIONS, PLUGIN_MIN_PORT,
 * PLUGIN_MAX_PORT, PLUGIN_UNIX_SOCKET_DIR/GROUP, PLUGIN_CLIENT_CERT (§1.1).
 * Errors write a sentence into err[errlen] naming what was expected and what
 * came (the raw text quoted, escaped, truncated).
 */
#ifndef GP_HANDSHAKE_HANDSHAKE_H
#define GP_HANDSHAKE_HANDSHAKE_H

#include <goplugin/client.h>

#include <stdbool.h>
#include <stddef.h>

#define GP_HS_CORE_VERSION 1u
#define GP_HS_ADDR_MAX 256      /* unix paths stay < 108 on Linux */
#define GP_HS_MAX_VERSIONS 64

typedef struct gp_hs_line {
    unsigned core_version;
    unsigned app_version;
    char network[8];            /* "unix" | "tcp" */
    char address[GP_HS_ADDR_MAX];
    gp_protocol protocol;       /* field 5; absent = NETRPC (go-plugin) */
    char *cert_b64;             /* field 6 when non-empty, malloc'd; else NULL */
    bool mux;                   /* field 7 present and "true" */
} gp_hs_line;

/* Parse one handshake line: `len` bytes, a trailing "\n" or "\r\n" and
 * surrounding white space are tolerated. Checks syntax only: field count,
 * integers, network word, protocol word, address shape.
 * Errors: GP_EPROTO. Caller frees with gp__hs_line_free. */
gp_err gp__hs_parse(const char *line, size_t len, gp_hs_line *out, char *err, size_t errlen);
void gp__hs_line_free(gp_hs_line *l);

/* Host-side semantic checks on a parsed line: core version 1 (GP_EVERSION),
 * app version among `versions` (GP_EVERSION, "plugin offered 2, host
 * accepts 1,3"), protocol within `allowed` gp_protocol bits (GP_EPROTO). */
gp_err gp__hs_check(const gp_hs_line *l, const unsigned *versions, size_t nversions,
                    unsigned allowed, char *err, size_t errlen);

/* Format the line a plugin prints, with its trailing "\n". The cert field
 * is printed only when cert_b64 is set, the mux field only when `mux`.
 * Returns the length written, or -1 if it does not fit in `cap`. */
int gp__hs_format(const gp_hs_line *l, char *buf, size_t cap);

/* Parse PLUGIN_PROTOCOL_VERSIONS ("5,3,4", any order, may be empty or
 * NULL). Unparsable entries are skipped and named in `err` (go-plugin does
 * the same); *n gets the count kept (at most `max`). GP_OK even when some
 * were skipped; GP_EINVAL only for NULL out. */
gp_err gp__hs_parse_versions(const char *env, unsigned *out, size_t max, size_t *n,
                             char *err, size_t errlen);

/* Version negotiation, plugin side: the highest of `ours` that is in
 * `theirs`; if none, the lowest of `ours` (the host reports the mismatch).
 * `*common` says whether a common version was found. */
unsigned gp__hs_negotiate(const unsigned *theirs, size_t ntheirs, const unsigned *ours,
                          size_t nours, bool *common);

/* Parse the port range from PLUGIN_MIN_PORT / PLUGIN_MAX_PORT values (NULL
 * or "" = 0, as Go). Errors: GP_EINVAL for non-numbers, > 65535, or min > max. */
gp_err gp__hs_parse_ports(const char *min_s, const char *max_s, unsigned *min, unsigned *max,
                          char *err, size_t errlen);

/* Format the host's PLUGIN_PROTOCOL_VERSIONS value: "1,3". */
int gp__hs_format_versions(const unsigned *v, size_t n, char *buf, size_t cap);

#endif
