/* The store: open (lock), load, and every change, each atomic on disk.
 * Memory follows disk: a change is applied to the in-memory records only
 * after its rename (and directory fsync) succeeded. */
#include "transport/store/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/base/errf.h"

char *gp__store_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

void gp__store_note(gp_store *s, const char *file, const char *fmt, ...)
{
    gp__store_problem *grown = realloc(s->probs, (s->nprobs + 1) * sizeof *grown);
    if (!grown)
        return;
    s->probs = grown;
    char msg[GP_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gp__store_problem *p = &s->probs[s->nprobs];
    p->file = strdup(file);
    p->msg = strdup(msg);
    if (!p->file || !p->msg) {
        free(p->file);
        free(p->msg);
        return;
    }
    s->nprobs++;
}

/* Unlock, then report what was collected: the callback may call the store. */
void gp__store_unlock_report(gp_store *s)
{
    gp__store_problem *probs = s->probs;
    size_t n = s->nprobs;
    s->probs = NULL;
    s->nprobs = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        if (s->on_problem)
            s->on_problem(s->ctx, probs[i].file, probs[i].msg);
        free(probs[i].file);
        free(probs[i].msg);
    }
    free(probs);
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[GP__STORE_PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

bool gp__store_has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* A removal's directory: "<64 hex>-removing". */
bool gp__store_is_removing(const char *name)
{
    size_t n = strlen(name);
    if (n != 64 + strlen(GP__STORE_REMOVING) || strcmp(name + 64, GP__STORE_REMOVING) != 0)
        return false;
    char id[65];
    memcpy(id, name, 64);
    id[64] = '\0';
    return gp__store_hex64_valid(id);
}

/* ---- the lock ---- */

static pid_t lock_holder(int fd)
{
    char buf[32] = {0};
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    long pid = r > 0 ? strtol(buf, NULL, 10) : 0;
    return pid > 0 ? (pid_t)pid : 0;
}

static gp_err take_lock(gp_store *s, const gp_store_open_opts *o, gp_status *st)
{
    char *path = gp__store_join(s->root, "lock");
    if (!path)
        return gp__status_setf(st, GP_ENOMEM, "store: out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    int e = errno;
    free(path);
    if (fd < 0)
        return gp__status_setf(st, GP_ESYS, "store: cannot open %s/lock: %s", s->root, strerror(e));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno;
        pid_t holder = e == EWOULDBLOCK ? lock_holder(fd) : 0;
        close(fd);
        if (e != EWOULDBLOCK)
            return gp__status_setf(st, GP_ESYS, "store: cannot lock %s/lock: %s", s->root,
                                   strerror(e));
        if (o->holder)
            *o->holder = holder;
        return gp__status_setf(st, GP_EBUSY, "store %s is locked by pid %ld", s->root,
                               (long)holder);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        e = errno;
        close(fd);
        return gp__status_setf(st, GP_ESYS, "store: cannot write %s/lock: %s", s->root,
                               strerror(e));
    }
    s->lockfd = fd;
    return GP_OK;
}

/* ---- load ---- */

ssize_t gp__store_find(gp_store *s, const char *ref)
{
    if (gp__store_hex64_valid(ref)) {
        for (size_t i = 0; i < s->n; i++)
            if (strcmp(s->recs[i]->id, ref) == 0)
                return (ssize_t)i;
        return -1;
    }
    const char *colon = strchr(ref, ':');
    size_t nlen = colon ? (size_t)(colon - ref) : strlen(ref);
    for (size_t i = 0; i < s->n; i++) {
        const gp_store_record *r = s->recs[i];
        if (strlen(r->name) == nlen && strncmp(r->name, ref, nlen) == 0)
            return !colon || strcmp(r->tag, colon + 1) == 0 ? (ssize_t)i : -1;
    }
    return -1;
}

static void free_recs(gp_store_record **recs)
{
    gp_store_record_list_free(recs);
}

static gp_err push(gp_store_record ***recs, size_t *n, gp_store_record *r)
{
    gp_store_record **grown = realloc(*recs, (*n + 2) * sizeof *grown);
    if (!grown)
        return GP_ENOMEM;
    grown[(*n)++] = r;
    grown[*n] = NULL;
    *recs = grown;
    return GP_OK;
}

/* Delete leftover temp files of an interrupted record write in dir. */
static void clean_temps(gp_store *s, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!gp__store_has_prefix(e->d_name, GP__STORE_TMP_PREFIX))
            continue;
        char path[GP__STORE_PATH_CAP];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            gp__store_note(s, path, "deleted a temp file of an interrupted write");
    }
    if (d)
        closedir(d);
}

static gp_store_record *load_one(gp_store *s, const char *id, gp_store_record **seen, size_t n)
{
    char dir[GP__STORE_DIR_CAP], file[GP__STORE_PATH_CAP];
    snprintf(dir, sizeof dir, "%s/%s", s->plugins, id);
    snprintf(file, sizeof file, "%s/config.json", dir);
    if (s->lockfd >= 0)
        clean_temps(s, dir);
    char *data;
    size_t len;
    if (gp__store_read_file(file, GP_STORE_RECORD_MAX, &data, &len) != 0) {
        gp__store_note(s, file, "cannot read the record (skipped): %s",
                       errno == EFBIG ? "larger than the limit" : strerror(errno));
        return NULL;
    }
    gp_store_record *r;
    gp_status st;
    gp_err rc = gp_store_record_parse(data, len, &r, &st);
    free(data);
    if (rc != GP_OK) {
        gp__store_note(s, file, "corrupt record (skipped): %s", st.msg);
        return NULL;
    }
    if (strcmp(r->id, id) != 0) {
        gp__store_note(s, file, "record id %s does not match its folder (skipped)", r->id);
        gp_store_record_free(r);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(seen[i]->name, r->name) == 0) {
            gp__store_note(s, file, "name \"%s\" is taken by %s (skipped)", r->name, seen[i]->id);
            gp_store_record_free(r);
            return NULL;
        }
    }
    return r;
}

/* Temp files in the blob folder of crashed installs (not of one running). */
static void clean_blob_temps(gp_store *s)
{
    if (s->installing > 0)
        return;
    clean_temps(s, s->blobs);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(gp_store_record *const *)a)->name, (*(gp_store_record *const *)b)->name);
}

static gp_err load_locked(gp_store *s, gp_status *st)
{
    struct dirent **ents = NULL;
    int n = scandir(s->plugins, &ents, NULL, alphasort);
    if (n < 0) {
        if (errno == ENOENT && s->lockfd < 0) {
            free_recs(s->recs);
            s->recs = calloc(1, sizeof *s->recs);
            s->n = 0;
            return s->recs ? GP_OK : gp__status_setf(st, GP_ENOMEM, "store: out of memory");
        }
        return gp__status_setf(st, GP_ESYS, "store: cannot read %s: %s", s->plugins,
                               strerror(errno));
    }
    gp_store_record **recs = calloc(1, sizeof *recs);
    size_t nrecs = 0;
    gp_err rc = recs ? GP_OK : GP_ENOMEM;
    bool locked = s->lockfd >= 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char path[GP__STORE_PATH_CAP];
        snprintf(path, sizeof path, "%s/%s", s->plugins, name);
        if (rc != GP_OK || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            /* nothing */
        } else if (gp__store_hex64_valid(name)) {
            gp_store_record *r = load_one(s, name, recs, nrecs);
            if (r && (rc = push(&recs, &nrecs, r)) != GP_OK)
                gp_store_record_free(r);
        } else if (gp__store_is_removing(name)) {
            if (locked) {
                gp__store_rmtree(path);
                gp__store_note(s, path, "finished an interrupted removal");
            }
        } else if (gp__store_has_prefix(name, GP__STORE_TMP_PREFIX)) {
            if (locked) {
                gp__store_rmtree(path);
                gp__store_note(s, path, "deleted an interrupted install");
            }
        } else {
            gp__store_note(s, path, "not a plugin record (ignored)");
        }
        free(ents[i]);
    }
    free(ents);
    if (locked) {
        gp__store_fsync_dir(s->plugins);
        clean_blob_temps(s);
    }
    if (rc != GP_OK) {
        free_recs(recs);
        return gp__status_setf(st, rc, "store: out of memory loading %s", s->plugins);
    }
    qsort(recs, nrecs, sizeof *recs, by_name);
    free_recs(s->recs);
    s->recs = recs;
    s->n = nrecs;
    return GP_OK;
}

/* ---- open, close ---- */

void gp_store_close(gp_store *s)
{
    if (!s)
        return;
    if (s->lockfd >= 0)
        close(s->lockfd); /* releases the flock */
    free_recs(s->recs);
    for (size_t i = 0; i < s->nprobs; i++) {
        free(s->probs[i].file);
        free(s->probs[i].msg);
    }
    free(s->probs);
    pthread_mutex_destroy(&s->mu);
    free(s->root);
    free(s->plugins);
    free(s->blobs);
    free(s->run);
    free(s);
}

gp_err gp_store_open(const gp_store_open_opts *o, gp_store **out, gp_status *st)
{
    gp__status_clear(st);
    *out = NULL;
    if (o->holder)
        *o->holder = 0;
    if (!o->root || !o->root[0] || strlen(o->root) > GP__STORE_ROOT_MAX)
        return gp__status_setf(st, GP_EINVAL, "store: root must be a path of 1 to %d bytes",
                               GP__STORE_ROOT_MAX);
    gp_store *s = calloc(1, sizeof *s);
    if (!s)
        return gp__status_setf(st, GP_ENOMEM, "store: out of memory");
    s->lockfd = -1;
    s->on_problem = o->on_problem;
    s->ctx = o->ctx;
    pthread_mutex_init(&s->mu, NULL);
    s->root = strdup(o->root);
    s->plugins = gp__store_join(o->root, "plugins");
    s->blobs = gp__store_join(o->root, "blobs/sha256");
    s->run = gp__store_join(o->root, "run");
    if (!s->root || !s->plugins || !s->blobs || !s->run) {
        gp_store_close(s);
        return gp__status_setf(st, GP_ENOMEM, "store: out of memory");
    }
    gp_err rc = GP_OK;
    if (o->lock) {
        if (mkdir_p(s->root, 0700) != 0)
            rc = gp__status_setf(st, GP_ESYS, "store: cannot create %s: %s", s->root,
                                 strerror(errno));
        if (rc == GP_OK)
            rc = take_lock(s, o, st);
        const char *dirs[] = {s->plugins, s->blobs, s->run};
        for (int i = 0; rc == GP_OK && i < 3; i++)
            if (mkdir_p(dirs[i], 0700) != 0)
                rc = gp__status_setf(st, GP_ESYS, "store: cannot create %s: %s", dirs[i],
                                     strerror(errno));
    } else {
        struct stat sb;
        if (stat(s->root, &sb) != 0 || !S_ISDIR(sb.st_mode))
            rc = gp__status_setf(st, GP_ENOTFOUND, "store: no store at %s", s->root);
    }
    if (rc == GP_OK) {
        pthread_mutex_lock(&s->mu);
        rc = load_locked(s, st);
        gp__store_unlock_report(s);
    }
    if (rc != GP_OK) {
        gp_store_close(s);
        return rc;
    }
    *out = s;
    return GP_OK;
}

gp_err gp_store_reload(gp_store *s, gp_status *st)
{
    gp__status_clear(st);
    pthread_mutex_lock(&s->mu);
    gp_err rc = load_locked(s, st);
    gp__store_unlock_report(s);
    return rc;
}

const char *gp_store_root(const gp_store *s)
{
    return s->root;
}

bool gp_store_locked(const gp_store *s)
{
    return s->lockfd >= 0;
}

size_t gp_store_blob_path(const gp_store *s, const char *digest, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", s->blobs, digest);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ---- read ---- */

gp_err gp_store_get(gp_store *s, const char *ref, gp_store_record **out, gp_status *st)
{
    gp__status_clear(st);
    *out = NULL;
    pthread_mutex_lock(&s->mu);
    ssize_t i = ref ? gp__store_find(s, ref) : -1;
    gp_store_record *c = i >= 0 ? gp_store_record_copy(s->recs[i]) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (i < 0)
        return gp__status_setf(st, GP_ENOTFOUND, "no plugin \"%s\" in %s", ref ? ref : "", s->root);
    if (!c)
        return gp__status_setf(st, GP_ENOMEM, "store: out of memory");
    *out = c;
    return GP_OK;
}

gp_err gp_store_list(gp_store *s, gp_store_record ***out, size_t *n, gp_status *st)
{
    gp__status_clear(st);
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    gp_store_record **list = calloc(s->n + 1, sizeof *list);
    size_t i = 0;
    for (; list && i < s->n; i++)
        if (!(list[i] = gp_store_record_copy(s->recs[i])))
            break;
    size_t total = s->n;
    pthread_mutex_unlock(&s->mu);
    if (!list || i < total) {
        gp_store_record_list_free(list);
        return gp__status_setf(st, GP_ENOMEM, "store: out of memory");
    }
    *out = list;
    *n = total;
    return GP_OK;
}
