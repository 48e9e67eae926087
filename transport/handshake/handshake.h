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
#define GP_HS_ADDR_MAX 256 /* unix paths stay < 108 on Linux */
#define GP_HS_MAX_VERSIONS 64

/* Field 7 (go-plugin 1.6+): does the plugin support gRPC broker
 * multiplexing? Go plugins print it only when the host set
 * PLUGIN_MULTIPLEX_GRPC (to anything non-empty), as "|true". */
typedef enum gp__hs_mux {
    GP_HS_MUX_ABSENT = 0, /* six fields or fewer (plugins before 1.6, or no variable) */
    GP_HS_MUX_TRUE,       /* a Go boolean true: 1 t T true TRUE True */
    GP_HS_MUX_FALSE,      /* a Go boolean false: 0 f F false FALSE False */
    GP_HS_MUX_INVALID,    /* anything else; an error only if the host asked to multiplex */
} gp__hs_mux;

typedef struct gp__hs_line {
    unsigned core_version;
    unsigned app_version;
    char network[8]; /* "unix" | "tcp" */
    char address[GP_HS_ADDR_MAX];
    gp_protocol protocol; /* field 5; absent = NETRPC (go-plugin) */
    char *cert_b64;       /* field 6 when non-empty, malloc'd; else NULL */
    bool mux;             /* field 7 is a Go boolean true; format: print "|true" */
    gp__hs_mux mux_field; /* field 7 as read; format: ABSENT, TRUE or FALSE */
    char *mux_text;       /* field 7 when INVALID, malloc'd (for the error); else NULL */
} gp__hs_line;

/* Parse one handshake line: `len` bytes, a trailing "\n" or "\r\n" and
 * surrounding white space are tolerated. Checks syntax only: field count,
 * integers, network word, protocol word, address shape. Fields after the
 * 7th are ignored and field 7 is only recorded (gp__hs_check_mux judges
 * it), as go-plugin 1.8 hosts do.
 * Errors: GP_EPROTO. Caller frees with gp__hs_line_free. */
gp_err gp__hs_parse(const char *line, size_t len, gp__hs_line *out, char *err, size_t errlen);
void gp__hs_line_free(gp__hs_line *l);

/* Host-side semantic checks on a parsed line: core version 1 (GP_EVERSION),
 * app version among `versions` (GP_EVERSION, "plugin offered 2, host
 * accepts 1,3"), protocol within `allowed` gp_protocol bits (GP_EPROTO). */
gp_err gp__hs_check(const gp__hs_line *l, const unsigned *versions, size_t nversions,
                    unsigned allowed, char *err, size_t errlen);

/* Host side, go-plugin 1.6+ (client.go): when the host asked for gRPC
 * broker multiplexing (`requested`) and the plugin speaks gRPC, field 7 must
 * be a Go boolean true. The errors (GP_EPROTO) are go-plugin's own words:
 *   absent   "client requested gRPC broker multiplexing but plugin does not
 *            support the feature; for Go plugins, you will need to update the
 *            github.com/hashicorp/go-plugin dependency and recompile"
 *   false    the same without the part after ';'
 *   invalid  "error parsing \"maybe\" as a boolean for gRPC broker
 *            multiplexing support"
 * Nothing is checked for netrpc or when not requested (go-plugin ignores
 * field 7 then, garbage included). *use (may be NULL) gets whether the
 * connection multiplexes: requested, gRPC and confirmed. */
gp_err gp__hs_check_mux(const gp__hs_line *l, bool requested, bool *use, char *err, size_t errlen);

/* Format the line a plugin prints, with its trailing "\n". The cert field
 * is printed when cert_b64 is set (empty otherwise); field 7 is "|true"
 * when `mux` or mux_field is TRUE, "|false" when mux_field is FALSE, and
 * left out when ABSENT. Returns the length written, or -1 if it does not fit
 * in `cap` or the line could not be read back as the same value (bad words,
 * '|' or control bytes in a field, mux_field INVALID). */
int gp__hs_format(const gp__hs_line *l, char *buf, size_t cap);

/* Parse PLUGIN_PROTOCOL_VERSIONS ("5,3,4", any order, may be empty or
 * NULL). Unparsable entries are skipped and named in `err` (go-plugin does
 * the same); *n gets the count kept (at most `max`). GP_OK even when some
 * were skipped; GP_EINVAL only for NULL out. */
gp_err gp__hs_parse_versions(const char *env, unsigned *out, size_t max, size_t *n, char *err,
                             size_t errlen);

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

/* PLUGIN_MULTIPLEX_GRPC, plugin side, as go-plugin 1.6+ (server.go) reads
 * it (`value` NULL = unset): *print_field says to print field 7 (the value
 * is non-empty, whatever it says: "false" and "yes" included); *multiplex
 * says the value is a Go boolean true (the plugin then multiplexes, on gRPC
 * only). Either pointer may be NULL. */
void gp__hs_mux_env(const char *value, bool *print_field, bool *multiplex);

/* PLUGIN_MULTIPLEX_GRPC, host side: the value to set, always ("true" or
 * "false"), so that a value inherited from the host's own environment can
 * never switch a plugin to multiplexing. (Go hosts set "true" or nothing.) */
const char *gp__hs_mux_env_value(bool multiplex);

#endif
