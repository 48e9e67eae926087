/* Building the child's environment before fork, so the child only execs. */
#include "transport/process/env.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t key_len(const char *e)
{
    const char *eq = strchr(e, '=');
    return eq ? (size_t)(eq - e) : 0;
}

const char *gp__env_get(char *const *env, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (key_len(env[i]) == kl && memcmp(env[i], key, kl) == 0)
            return env[i] + kl + 1;
    return NULL;
}

gp_err gp__env_build(const char *const *cfg_env, const char *const *host_env,
                     const char *const *plugin_vars, char ***out)
{
    const char *const *lists[3] = {cfg_env, host_env, plugin_vars};
    size_t n = 0;
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; lists[l] && lists[l][i]; i++)
            n++;
    const char **all = calloc(n ? n : 1, sizeof *all);
    if (!all)
        return GP_ENOMEM;
    /* Slot per distinct key, in first-seen order, holding the last value.
     * Quadratic, but environments are small and this runs once per start. */
    size_t used = 0;
    for (int l = 0; l < 3; l++) {
        for (size_t i = 0; lists[l] && lists[l][i]; i++) {
            const char *e = lists[l][i];
            size_t kl = key_len(e);
            if (kl == 0)
                continue;
            size_t j = 0;
            while (j < used && !(key_len(all[j]) == kl && memcmp(all[j], e, kl) == 0))
                j++;
            all[j] = e;
            if (j == used)
                used++;
        }
    }
    size_t bytes = (used + 1) * sizeof(char *);
    for (size_t j = 0; j < used; j++)
        bytes += strlen(all[j]) + 1;
    char **env = malloc(bytes);
    if (!env) {
        free(all);
        return GP_ENOMEM;
    }
    char *p = (char *)(env + used + 1);
    for (size_t j = 0; j < used; j++) {
        size_t len = strlen(all[j]) + 1;
        memcpy(p, all[j], len);
        env[j] = p;
        p += len;
    }
    env[used] = NULL;
    free(all);
    *out = env;
    return GP_OK;
}
