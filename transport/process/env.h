/* Internal: the plugin's environment (spec §1.1): the configured entries,
 * then the host's environment (unless skipped), then go-plugin's variables.
 * A later entry for the same key replaces an earlier one, so every key
 * appears once, with its last value, where it was first seen. */
#ifndef GP_PROCESS_ENV_H
#define GP_PROCESS_ENV_H

#include <goplugin/err.h>

#include <stddef.h>

/* Each list is NULL-terminated "KEY=VALUE" strings and may itself be NULL.
 * Entries without "=" or with an empty key are skipped. *out is one
 * malloc'd block (array and strings): free(*out). Errors: GP_ENOMEM. */
gp_err gp__env_build(const char *const *cfg_env, const char *const *host_env,
                     const char *const *plugin_vars, char ***out);

/* The value of `key` in an env list, or NULL. */
const char *gp__env_get(char *const *env, const char *key);

#endif
