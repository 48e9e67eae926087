/* Internal to the store: record checks, disk helpers, crash points. */
#ifndef GP_STORE_INTERNAL_H
#define GP_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pthread.h>

#include <goplugin/store.h>

#define GP__STORE_PATH_CAP 4096
#define GP__STORE_DIR_CAP 2048 /* a folder under ROOT: root is at most 1024 bytes */
#define GP__STORE_ROOT_MAX 1024
#define GP__STORE_REMOVING "-removing"

/* ---- store.c: the handle; ops.c and gc.c work on it under mu ---- */

typedef struct gp__store_problem {
    char *file, *msg;
} gp__store_problem;

struct gp_store {
    char *root, *plugins, *blobs, *run; /* blobs: ROOT/blobs/sha256 */
    int lockfd;                         /* -1: read-only */
    gp_store_problem_fn on_problem;
    void *ctx;
    pthread_mutex_t mu;
    gp_store_record **recs; /* NULL-terminated, n of them, sorted by name */
    size_t n;
    unsigned installing;      /* installs copying a blob now: temp files stay */
    gp__store_problem *probs; /* collected under mu, reported after it */
    size_t nprobs;
};

/* Record a problem for on_problem (called by gp__store_unlock_report). */
void gp__store_note(gp_store *s, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Unlock mu, then report the problems collected: a callback may call in. */
void gp__store_unlock_report(gp_store *s);
/* Index of "NAME", "NAME:TAG" or an id in recs, or -1. Under mu. */
ssize_t gp__store_find(gp_store *s, const char *ref);
char *gp__store_join(const char *a, const char *b); /* "a/b", malloc'd */
bool gp__store_is_removing(const char *name);       /* "<id>-removing" */
bool gp__store_has_prefix(const char *s, const char *p);

/* ---- record.c: checks shared by parse and install ---- */

bool gp__store_name_valid(const char *s, size_t max);
bool gp__store_env_valid(const char *kv);        /* "K=V", K a shell name */
bool gp__store_hex64_valid(const char *s);       /* 64 lowercase hex digits */
char **gp__store_strv_dup(const char *const *v); /* NULL-terminated; NULL v: empty */
void gp__store_strv_free(char **v);
size_t gp__store_strv_len(const char *const *v);
/* The privileges in `a` missing from `b`, ", "-joined into buf. */
void gp__store_strv_minus(const char *const *a, const char *const *b, char *buf, size_t cap);

/* ---- disk.c ---- */

/* The crash point hook: when GP_STORE_CRASH_AT=N is set, the Nth call in
 * this process raises SIGKILL (GP_STORE_CRASH_TRACE=1 prints each point's
 * number and name on stderr). Cheap when unset: one relaxed load. */
void gp__store_crash_point(const char *where);

/* fsync a directory by path. */
int gp__store_fsync_dir(const char *dir);
/* Write len bytes to a new file `path` (O_EXCL, mode), fsync it. -1 + errno. */
int gp__store_write_new(const char *path, const char *data, size_t len, mode_t mode);
/* Write `data` to dir/name atomically: dir/.tmp-NAME-XXXXXX, fsync, rename,
 * fsync dir. Crash points between. -1 + errno. */
int gp__store_write_atomic(const char *dir, const char *name, const char *data, size_t len,
                           mode_t mode);
/* Delete a directory and the files in it (one level: the store makes no
 * deeper ones; a subfolder is removed the same way, recursively). */
int gp__store_rmtree(const char *dir);
/* Read a whole file of at most max bytes (malloc'd, NUL-terminated). -1 +
 * errno (EFBIG when larger). */
int gp__store_read_file(const char *path, size_t max, char **out, size_t *len);
/* 32 random bytes as 64 lowercase hex digits (getrandom). */
int gp__store_random_id(char out[65]);
void gp__store_hex(const uint8_t *b, size_t n, char *out);

/* ---- blob.c ---- */

/* Copy src into a new temp file in blob_dir (its name in tmp_path), hashing
 * as it copies; fsync, mode 0755. On failure nothing is left. */
gp_err gp__store_blob_copy(const char *src, const char *blob_dir, char *tmp_path, size_t cap,
                           uint8_t sha[32], uint64_t *size, gp_status *st);
/* SHA-256 of a file by path. */
gp_err gp__store_sha256_file(const char *path, uint8_t sha[32], gp_status *st);

#define GP__STORE_TMP_PREFIX ".tmp-"

#endif
