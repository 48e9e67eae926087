/* Internal: stop plugins an earlier manager launched and never published
 * (manager_orphans.c says how they are found). */
#ifndef GP_STORE_MANAGER_ORPHANS_H
#define GP_STORE_MANAGER_ORPHANS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The environment entry every launch of the manager of `root` carries. */
#define GP_MANAGER_ROOT_ENV "GP_MANAGER_ROOT"
/* And the one that names the manager (process and open) that launched it:
 * its own launches are not orphans, also while one is not yet published. */
#define GP_MANAGER_SELF_ENV "GP_MANAGER_SELF"

typedef void (*gp__orphan_fn)(void *ctx, pid_t pid);

/* Stop every process (not this one, none in `published`, none whose
 * environment holds `own_mark` when not NULL) whose executable is under
 * blob_dir (absolute, resolved) and whose environment holds the entry
 * `mark`; report(ctx, pid) before each. Returns how many. */
size_t gp__manager_stop_orphans(const char *blob_dir, const char *mark, const char *own_mark,
                                const pid_t *published, size_t npub, int grace_ms,
                                gp__orphan_fn report, void *ctx);

#endif
