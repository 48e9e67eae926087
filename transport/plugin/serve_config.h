/* Internal: the decisions gp_serve makes before it touches the network,
 * as pure functions so they can be tested without a gRPC server. */
#ifndef GP_TRANSPORT_SERVE_CONFIG_H
#define GP_TRANSPORT_SERVE_CONFIG_H

#include <goplugin/server.h>

#include <stdbool.h>
#include <stddef.h>

/* The magic cookie check (spec §1.2 step 1). `env_value` is
 * getenv(key) (may be NULL). GP_OK when it matches. GP_EINVAL when the
 * config's key or value is empty (a bug in the plugin); GP_ESTATE when the
 * cookie is missing or wrong, i.e. the binary was run by hand. `err` gets
 * the multi-line text to print on stderr, ending in "\n". */
gp_err gp__serve_check_cookie(const gp_handshake_config *hs, const char *env_value, char *err,
                              size_t errlen);

/* The plugin set served at the negotiated version. */
typedef struct gp__serve_choice {
    unsigned version;
    const gp_service *services; /* borrowed from the config */
    size_t nservices;
    bool common; /* false: no version in common, our lowest */
} gp__serve_choice;

/* Negotiate from PLUGIN_PROTOCOL_VERSIONS (`env_versions`, may be NULL):
 * our versions are cfg->versions[] plus handshake.protocol_version for
 * cfg->services (which wins over a versions[] entry of the same number,
 * as in go-plugin). The highest common one wins, else our lowest.
 * `warn` gets a note about skipped env entries ("" if none). Errors:
 * GP_EINVAL when the config offers nothing or is inconsistent. */
gp_err gp__serve_choose(const gp_serve_config *cfg, const char *env_versions, gp__serve_choice *out,
                        char *warn, size_t warnlen, char *err, size_t errlen);

/* The wire and network to serve: protocol NONE = grpc; network NULL or ""
 * = "unix". GP_EINVAL for unknown values. *network points to a static
 * string. (Whether the wire is linked in is gp_serve's check.) */
gp_err gp__serve_transport(const gp_serve_config *cfg, gp_protocol *protocol, const char **network,
                           char *err, size_t errlen);

#endif
