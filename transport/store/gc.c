/* gc: delete the blobs no record references.
 *
 * What is referenced is read from disk, not memory, under the mutex: every
 * record that loads, and for a record that does not (corrupt, truncated)
 * every 64-hex run in its raw text, so a blob is never lost to a record
 * someone may still repair. An install renames its blob and writes its
 * record in one hold of the mutex, so gc never sees that blob alone; its
 * temp file (".tmp-blob-*") is left while any install is copying. */
#include "transport/store/internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/base/errf.h"

typedef struct refs {
    char (*hex)[65];
    size_t n;
    bool oom;
} refs;

static void add(refs *rs, const char *hex)
{
    char(*grown)[65] = realloc(rs->hex, (rs->n + 1) * sizeof *grown);
    if (!grown) {
        rs->oom = true;
        return;
    }
    rs->hex = grown;
    memcpy(rs->hex[rs->n++], hex, 64);
    rs->hex[rs->n - 1][64] = '\0';
}

static bool has(const refs *rs, const char *hex)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->hex[i], hex) == 0)
            return true;
    return false;
}

/* Every run of exactly 64 lowercase hex digits in text. */
static void add_hex_runs(refs *rs, const char *text, size_t len)
{
    size_t run = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? text[i] : '\0';
        if (isdigit((unsigned char)c) || (c >= 'a' && c <= 'f')) {
            run++;
            continue;
        }
        if (run == 64)
            add(rs, text + i - 64);
        run = 0;
    }
}

static void collect(gp_store *s, refs *rs)
{
    for (size_t i = 0; i < s->n; i++)
        add(rs, s->recs[i]->digest);
    DIR *d = opendir(s->plugins);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!gp__store_hex64_valid(e->d_name))
            continue;
        char file[GP__STORE_PATH_CAP];
        snprintf(file, sizeof file, "%s/%s/config.json", s->plugins, e->d_name);
        char *data;
        size_t len;
        if (gp__store_read_file(file, GP_STORE_RECORD_MAX, &data, &len) != 0)
            continue;
        gp_store_record *r;
        if (gp_store_record_parse(data, len, &r, NULL) == GP_OK) {
            add(rs, r->digest);
            gp_store_record_free(r);
        } else {
            add_hex_runs(rs, data, len);
        }
        free(data);
    }
    if (d)
        closedir(d);
}

gp_err gp_store_gc(gp_store *s, size_t *blobs, uint64_t *bytes, gp_status *st)
{
    gp__status_clear(st);
    size_t nb = 0;
    uint64_t freed = 0;
    if (blobs)
        *blobs = 0;
    if (bytes)
        *bytes = 0;
    if (s->lockfd < 0)
        return gp__status_setf(st, GP_ESTATE, "gc: the store %s is open read-only", s->root);
    pthread_mutex_lock(&s->mu);
    refs rs = {0};
    collect(s, &rs);
    gp_err rc = GP_OK;
    DIR *d = rs.oom ? NULL : opendir(s->blobs);
    if (rs.oom)
        rc = gp__status_setf(st, GP_ENOMEM, "gc: out of memory");
    else if (!d)
        rc = gp__status_setf(st, GP_ESYS, "gc: cannot read %s: %s", s->blobs, strerror(errno));
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[GP__STORE_PATH_CAP];
        snprintf(path, sizeof path, "%s/%s", s->blobs, e->d_name);
        if (gp__store_has_prefix(e->d_name, GP__STORE_TMP_PREFIX) && s->installing == 0) {
            unlink(path);
            continue;
        }
        if (!gp__store_hex64_valid(e->d_name) || has(&rs, e->d_name))
            continue;
        struct stat sb;
        if (lstat(path, &sb) != 0)
            continue;
        if (unlink(path) != 0) {
            rc = gp__status_setf(st, GP_ESYS, "gc: cannot delete %s: %s", path, strerror(errno));
            break;
        }
        nb++;
        freed += (uint64_t)sb.st_size;
        gp__store_crash_point("gc: one blob deleted");
    }
    if (d) {
        closedir(d);
        gp__store_fsync_dir(s->blobs);
    }
    pthread_mutex_unlock(&s->mu);
    free(rs.hex);
    if (blobs)
        *blobs = nb;
    if (bytes)
        *bytes = freed;
    return rc;
}
