/* The store's changes: install, enable/disable/grant, remove. Each is made
 * on disk first (temp, fsync, rename, fsync of the directory), then in
 * memory; the numbered crash points sit between the steps. */
#include "transport/store/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/base/errf.h"

#define MAX_LIST 256
#define MAX_STRING 4096
#define MAX_VERSIONS 16

static gp_err read_only(gp_store *s, const char *what, gp_status *st)
{
    return gp__status_setf(st, GP_ESTATE, "%s: the store %s is open read-only", what, s->root);
}

/* Insert r keeping recs sorted by name. */
static gp_err insert(gp_store *s, gp_store_record *r)
{
    gp_store_record **grown = realloc(s->recs, (s->n + 2) * sizeof *grown);
    if (!grown)
        return GP_ENOMEM;
    s->recs = grown;
    size_t i = s->n;
    while (i > 0 && strcmp(grown[i - 1]->name, r->name) > 0) {
        grown[i] = grown[i - 1];
        i--;
    }
    grown[i] = r;
    grown[++s->n] = NULL;
    return GP_OK;
}

static gp_err check_list(const char *const *v, const char *what, bool (*ok)(const char *),
                         bool unique, gp_status *st)
{
    size_t n = gp__store_strv_len(v);
    if (n > MAX_LIST)
        return gp__status_setf(st, GP_EINVAL, "install: more than %d %s", MAX_LIST, what);
    for (size_t i = 0; i < n; i++) {
        if (strlen(v[i]) > MAX_STRING || (ok && !ok(v[i])))
            return gp__status_setf(st, GP_EINVAL, "install: %s \"%.80s\" is not valid", what, v[i]);
        for (size_t j = 0; unique && j < i; j++)
            if (strcmp(v[i], v[j]) == 0)
                return gp__status_setf(st, GP_EINVAL, "install: %s \"%.80s\" given twice", what,
                                       v[i]);
    }
    return GP_OK;
}

static bool env_ok(const char *kv)
{
    return gp__store_env_valid(kv);
}

static bool priv_ok(const char *p)
{
    return gp_store_privilege_valid(p);
}

/* Check the options and build the record (no id, no digest yet). */
static gp_err make_record(const gp_store_install_opts *o, gp_store_record **out, gp_status *st)
{
    *out = NULL;
    if (!o->path || !o->name)
        return gp__status_setf(st, GP_EINVAL, "install: a path and a name are required");
    char name[GP_STORE_NAME_MAX + GP_STORE_TAG_MAX + 2];
    if (strlen(o->name) >= sizeof name)
        return gp__status_setf(st, GP_EINVAL, "install: name \"%.80s...\" is too long", o->name);
    strcpy(name, o->name);
    char *colon = strchr(name, ':');
    const char *tag = colon ? colon + 1 : "latest";
    if (colon)
        *colon = '\0';
    if (!gp__store_name_valid(name, GP_STORE_NAME_MAX))
        return gp__status_setf(st, GP_EINVAL,
                               "install: name \"%s\" is not valid ([A-Za-z0-9][A-Za-z0-9._-]*, "
                               "at most %d bytes)",
                               name, GP_STORE_NAME_MAX);
    if (!gp__store_name_valid(tag, GP_STORE_TAG_MAX))
        return gp__status_setf(st, GP_EINVAL, "install: tag \"%s\" is not valid", tag);
    gp_err rc;
    if ((rc = check_list(o->args, "argument", NULL, false, st)) ||
        (rc = check_list(o->env, "environment entry (K=V)", env_ok, false, st)) ||
        (rc = check_list(o->required, "required privilege", priv_ok, true, st)) ||
        (rc = check_list(o->granted, "granted privilege", priv_ok, true, st)))
        return rc;
    if ((o->cookie_key && strlen(o->cookie_key) > MAX_STRING) ||
        (o->cookie_value && strlen(o->cookie_value) > MAX_STRING))
        return gp__status_setf(st, GP_EINVAL, "install: cookie longer than %d bytes", MAX_STRING);
    size_t nv = o->versions && o->nversions ? o->nversions : 1;
    if (nv > MAX_VERSIONS)
        return gp__status_setf(st, GP_EINVAL, "install: more than %d protocol versions",
                               MAX_VERSIONS);
    for (size_t i = 0; o->versions && i < o->nversions; i++)
        if (o->versions[i] < 1 || o->versions[i] > 0x7fffffffu)
            return gp__status_setf(st, GP_EINVAL, "install: protocol version %u is not valid",
                                   o->versions[i]);
    if (o->protocols & ~(unsigned)(GP_PROTO_GRPC | GP_PROTO_NETRPC))
        return gp__status_setf(st, GP_EINVAL, "install: unknown protocol bits 0x%x", o->protocols);
    if (o->restart != GP_STORE_RESTART_ALWAYS && o->restart != GP_STORE_RESTART_NO)
        return gp__status_setf(st, GP_EINVAL, "install: unknown restart policy %d",
                               (int)o->restart);
    gp_store_record *r = calloc(1, sizeof *r);
    if (!r)
        return gp__status_setf(st, GP_ENOMEM, "install: out of memory");
    r->name = strdup(name);
    r->tag = strdup(tag);
    r->cookie_key = strdup(o->cookie_key ? o->cookie_key : "");
    r->cookie_value = strdup(o->cookie_value ? o->cookie_value : "");
    r->versions = malloc(nv * sizeof *r->versions);
    r->args = gp__store_strv_dup(o->args);
    r->env = gp__store_strv_dup(o->env);
    r->required = gp__store_strv_dup(o->required);
    r->granted = gp__store_strv_dup(o->granted);
    if (!r->name || !r->tag || !r->cookie_key || !r->cookie_value || !r->versions || !r->args ||
        !r->env || !r->required || !r->granted) {
        gp_store_record_free(r);
        return gp__status_setf(st, GP_ENOMEM, "install: out of memory");
    }
    r->nversions = nv;
    if (o->versions && o->nversions)
        memcpy(r->versions, o->versions, nv * sizeof *r->versions);
    else
        r->versions[0] = 1;
    r->protocols = o->protocols ? o->protocols : (GP_PROTO_GRPC | GP_PROTO_NETRPC);
    r->restart = o->restart;
    r->enabled = false;
    *out = r;
    return GP_OK;
}

/* Write a new record: a staging folder plugins/.tmp-<id> with its
 * config.json, synced, renamed to plugins/<id> in one step. Under mu. */
static gp_err write_new_record(gp_store *s, const gp_store_record *r, gp_status *st)
{
    char *json;
    gp_err rc = gp_store_record_json(r, &json, st);
    if (rc != GP_OK)
        return rc;
    char stage[GP__STORE_DIR_CAP], file[GP__STORE_PATH_CAP], dst[GP__STORE_PATH_CAP];
    snprintf(stage, sizeof stage, "%s/" GP__STORE_TMP_PREFIX "%s", s->plugins, r->id);
    snprintf(file, sizeof file, "%s/config.json", stage);
    snprintf(dst, sizeof dst, "%s/%s", s->plugins, r->id);
    const char *what = "mkdir";
    int ok = mkdir(stage, 0700) == 0;
    if (ok) {
        gp__store_crash_point("install: staging folder made");
        what = "write";
        ok = gp__store_write_new(file, json, strlen(json), 0600) == 0;
    }
    if (ok) {
        gp__store_crash_point("install: record written in the staging folder");
        what = "fsync";
        ok = gp__store_fsync_dir(stage) == 0;
    }
    if (ok) {
        what = "rename";
        ok = rename(stage, dst) == 0;
    }
    int e = errno;
    free(json);
    if (!ok) {
        gp__store_rmtree(stage);
        return gp__status_setf(st, GP_ESYS, "install: %s of %s failed: %s", what, stage,
                               strerror(e));
    }
    gp__store_crash_point("install: record renamed into place");
    if (gp__store_fsync_dir(s->plugins) != 0)
        return gp__status_setf(st, GP_ESYS, "install: fsync of %s failed: %s", s->plugins,
                               strerror(errno));
    gp__store_crash_point("install: plugins folder synced");
    return GP_OK;
}

static ssize_t find_name(gp_store *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->recs[i]->name, name) == 0)
            return (ssize_t)i;
    return -1;
}

static gp_err name_taken(gp_store *s, const char *name, gp_status *st)
{
    ssize_t i = find_name(s, name);
    if (i < 0)
        return GP_OK;
    return gp__status_setf(st, GP_EINVAL, "install: plugin \"%s\" is already installed (id %s)",
                           name, s->recs[i]->id);
}

gp_err gp_store_install(gp_store *s, const gp_store_install_opts *o, gp_store_record **out,
                        gp_status *st)
{
    gp__status_clear(st);
    if (out)
        *out = NULL;
    if (s->lockfd < 0)
        return read_only(s, "install", st);
    gp_store_record *r;
    gp_err rc = make_record(o, &r, st);
    if (rc != GP_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    rc = name_taken(s, r->name, st);
    if (rc == GP_OK)
        s->installing++;
    pthread_mutex_unlock(&s->mu);
    if (rc != GP_OK) {
        gp_store_record_free(r);
        return rc;
    }
    /* The slow part, outside the mutex; gc leaves temp files alone while
     * s->installing > 0. */
    char tmp[GP__STORE_PATH_CAP];
    uint8_t sha[32];
    uint64_t size;
    rc = gp__store_blob_copy(o->path, s->blobs, tmp, sizeof tmp, sha, &size, st);
    gp__store_hex(sha, 32, r->digest);
    if (rc == GP_OK && o->expect_sha256 && memcmp(o->expect_sha256, sha, 32) != 0) {
        char want[65];
        gp__store_hex(o->expect_sha256, 32, want);
        rc = gp__status_setf(st, GP_ECHECKSUM, "install: %s has SHA-256 %s, expected %s", o->path,
                             r->digest, want);
        unlink(tmp);
    }
    pthread_mutex_lock(&s->mu);
    s->installing--;
    if (rc == GP_OK && (rc = name_taken(s, r->name, st)) != GP_OK)
        unlink(tmp);
    if (rc == GP_OK && gp__store_random_id(r->id) != 0) {
        rc = gp__status_setf(st, GP_ESYS, "install: getrandom: %s", strerror(errno));
        unlink(tmp);
    }
    char blob[GP__STORE_PATH_CAP];
    if (rc == GP_OK) {
        /* Over an existing blob of the same digest too: the new copy is
         * known good, and a running plugin keeps its old inode. */
        gp_store_blob_path(s, r->digest, blob, sizeof blob);
        if (rename(tmp, blob) != 0) {
            rc = gp__status_setf(st, GP_ESYS, "install: rename %s to %s: %s", tmp, blob,
                                 strerror(errno));
            unlink(tmp);
        } else {
            gp__store_crash_point("install: blob renamed to its digest");
            if (gp__store_fsync_dir(s->blobs) != 0)
                rc = gp__status_setf(st, GP_ESYS, "install: fsync of %s: %s", s->blobs,
                                     strerror(errno));
        }
    }
    if (rc == GP_OK)
        rc = write_new_record(s, r, st);
    gp_store_record *copy = NULL;
    if (rc == GP_OK && out && !(copy = gp_store_record_copy(r)))
        rc = gp__status_setf(st, GP_ENOMEM, "install: out of memory");
    if (rc == GP_OK && insert(s, r) != GP_OK) {
        /* On disk but not in memory: the next load has it. */
        rc = gp__status_setf(st, GP_ENOMEM, "install: out of memory (installed; reload)");
    } else if (rc == GP_OK) {
        r = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    gp_store_record_free(r);
    if (rc != GP_OK) {
        gp_store_record_free(copy);
        return rc;
    }
    if (out)
        *out = copy;
    return GP_OK;
}

/* ---- updates of one record ---- */

typedef gp_err (*edit_fn)(gp_store *s, gp_store_record *r, const void *arg, gp_status *st);

/* Copy the record, let edit change the copy (or refuse, or say "nothing to
 * do" by returning GP_EOF), write it atomically, swap it in. */
static gp_err update(gp_store *s, const char *what, const char *ref, edit_fn edit, const void *arg,
                     gp_status *st)
{
    gp__status_clear(st);
    if (s->lockfd < 0)
        return read_only(s, what, st);
    pthread_mutex_lock(&s->mu);
    ssize_t i = ref ? gp__store_find(s, ref) : -1;
    gp_err rc = GP_OK;
    gp_store_record *c = NULL;
    char *json = NULL;
    if (i < 0)
        rc = gp__status_setf(st, GP_ENOTFOUND, "%s: no plugin \"%s\" in %s", what, ref ? ref : "",
                             s->root);
    else if (!(c = gp_store_record_copy(s->recs[i])))
        rc = gp__status_setf(st, GP_ENOMEM, "%s: out of memory", what);
    if (rc == GP_OK)
        rc = edit(s, c, arg, st);
    if (rc == GP_OK)
        rc = gp_store_record_json(c, &json, st);
    if (rc == GP_OK) {
        char dir[GP__STORE_PATH_CAP];
        snprintf(dir, sizeof dir, "%s/%s", s->plugins, c->id);
        if (gp__store_write_atomic(dir, "config.json", json, strlen(json), 0600) != 0)
            rc = gp__status_setf(st, GP_ESYS, "%s: cannot write %s/config.json: %s", what, dir,
                                 strerror(errno));
    }
    free(json);
    if (rc == GP_OK) {
        gp_store_record_free(s->recs[i]);
        s->recs[i] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    gp_store_record_free(c);
    return rc == GP_EOF ? GP_OK : rc;
}

static gp_err edit_enable(gp_store *s, gp_store_record *r, const void *arg, gp_status *st)
{
    (void)arg;
    if (r->enabled)
        return GP_EOF;
    char missing[400], extra[400];
    gp__store_strv_minus((const char *const *)r->required, (const char *const *)r->granted, missing,
                         sizeof missing);
    gp__store_strv_minus((const char *const *)r->granted, (const char *const *)r->required, extra,
                         sizeof extra);
    if (missing[0] || extra[0])
        return gp__status_setf(st, GP_ESTATE,
                               "enable %s: privileges do not match: required but not granted: "
                               "[%s]; granted but not required: [%s]",
                               r->name, missing, extra);
    char blob[GP__STORE_PATH_CAP];
    struct stat sb;
    if (!gp_store_blob_path(s, r->digest, blob, sizeof blob) || stat(blob, &sb) != 0)
        return gp__status_setf(st, GP_ENOTFOUND, "enable %s: its binary %s is missing", r->name,
                               blob);
    r->enabled = true;
    return GP_OK;
}

static gp_err edit_disable(gp_store *s, gp_store_record *r, const void *arg, gp_status *st)
{
    (void)s, (void)arg, (void)st;
    if (!r->enabled)
        return GP_EOF;
    r->enabled = false;
    return GP_OK;
}

static gp_err edit_grant(gp_store *s, gp_store_record *r, const void *arg, gp_status *st)
{
    (void)s;
    const char *const *granted = arg;
    if (r->enabled)
        return gp__status_setf(st, GP_ESTATE, "grant %s: it is enabled; disable it first", r->name);
    gp_err rc = check_list(granted, "granted privilege", priv_ok, true, st);
    if (rc != GP_OK)
        return rc;
    char **v = gp__store_strv_dup(granted);
    if (!v)
        return gp__status_setf(st, GP_ENOMEM, "grant: out of memory");
    gp__store_strv_free(r->granted);
    r->granted = v;
    return GP_OK;
}

gp_err gp_store_enable(gp_store *s, const char *ref, gp_status *st)
{
    return update(s, "enable", ref, edit_enable, NULL, st);
}

gp_err gp_store_disable(gp_store *s, const char *ref, gp_status *st)
{
    return update(s, "disable", ref, edit_disable, NULL, st);
}

gp_err gp_store_grant(gp_store *s, const char *ref, const char *const *granted, gp_status *st)
{
    return update(s, "grant", ref, edit_grant, granted, st);
}

/* ---- remove ---- */

gp_err gp_store_remove(gp_store *s, const char *ref, bool force, gp_status *st)
{
    gp__status_clear(st);
    if (s->lockfd < 0)
        return read_only(s, "remove", st);
    pthread_mutex_lock(&s->mu);
    ssize_t i = ref ? gp__store_find(s, ref) : -1;
    if (i < 0) {
        pthread_mutex_unlock(&s->mu);
        return gp__status_setf(st, GP_ENOTFOUND, "remove: no plugin \"%s\" in %s", ref ? ref : "",
                               s->root);
    }
    gp_store_record *r = s->recs[i];
    if (r->enabled && !force) {
        pthread_mutex_unlock(&s->mu);
        return gp__status_setf(st, GP_ESTATE,
                               "remove %s: it is enabled; disable it first or force the removal",
                               r->name);
    }
    char dir[GP__STORE_DIR_CAP], gone[GP__STORE_PATH_CAP];
    snprintf(dir, sizeof dir, "%s/%s", s->plugins, r->id);
    snprintf(gone, sizeof gone, "%s%s", dir, GP__STORE_REMOVING);
    /* Phase one decides: once renamed, the record no longer loads. */
    if (rename(dir, gone) != 0 || gp__store_fsync_dir(s->plugins) != 0) {
        int e = errno;
        pthread_mutex_unlock(&s->mu);
        return gp__status_setf(st, GP_ESYS, "remove %s: cannot rename %s: %s", ref, dir,
                               strerror(e));
    }
    gp__store_crash_point("remove: renamed to -removing");
    memmove(&s->recs[i], &s->recs[i + 1], (s->n - (size_t)i) * sizeof *s->recs);
    s->n--;
    gp_store_record_free(r);
    /* Phase two: a failure here is finished by the next locked open. */
    if (gp__store_rmtree(gone) != 0)
        gp__store_note(s, gone, "remove: could not delete it all now: %s", strerror(errno));
    gp__store_fsync_dir(s->plugins);
    gp__store_crash_point("remove: deleted");
    gp__store_unlock_report(s);
    return GP_OK;
}
