/* goplugin-c: the plugin store, installed plugins under a root directory.
 *
 *   ROOT/lock                       flock: one writer (gpctl serve, or one gpctl)
 *   ROOT/plugins/<id>/config.json   one record per plugin (docs/store.md)
 *   ROOT/blobs/sha256/<hex>         the binaries, named by their SHA-256, 0755
 *   ROOT/run/<name>.json            the manager's reattach files (not the store's)
 *
 *   gp_store *s;  gp_status st;
 *   gp_store_open_opts o = {.root = "/var/lib/plugins", .lock = true};
 *   if (gp_store_open(&o, &s, &st)) die(st.msg);      // GP_EBUSY: a serve has it
 *   gp_store_install_opts in = {.path = "./kv-plugin", .name = "kv",
 *       .cookie_key = "BASIC_PLUGIN", .cookie_value = "hello"};
 *   gp_store_record *r;
 *   if (gp_store_install(s, &in, &r, &st) || gp_store_enable(s, "kv", &st)) die(st.msg);
 *   gp_store_launch *l;                                 // start it as the manager does
 *   if (gp_store_launch_new(s, r, &l, &st)) die(st.msg);
 *   gp_client_config cfg = *gp_store_launch_config(l);  // add logger etc.
 *   ...  gp_client_new(&cfg, ...) ... gp_store_launch_free(l);
 *   gp_store_record_free(r);  gp_store_close(s);
 *
 * Every change is atomic on disk (a temp file or directory, fsync, rename,
 * fsync of the directory): a crash at any point leaves the old state or the
 * new one, plus garbage the next locked open or gc removes. It is a
 * separate library, //transport/store:store (it links //transport:goplugin).
 * Errors follow docs/errors.md: a gp_err, words in `st` (NULL: not wanted).
 * Thread safety: every call on one gp_store may come from any thread at
 * any time (one mutex inside), except gp_store_close.
 */
#ifndef GOPLUGIN_STORE_H
#define GOPLUGIN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <goplugin/client.h>
#include <goplugin/err.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gp_store gp_store; /* opaque */

/* Names: [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 bytes (a file name in
 * ROOT/run). Tags: the same set, at most 128; default "latest". A name is
 * unique in a store; "NAME:TAG" finds it only with that tag. */
#define GP_STORE_NAME_MAX 64
#define GP_STORE_TAG_MAX 128
#define GP_STORE_RECORD_MAX (256u << 10) /* largest config.json read */

/* Privileges: what a plugin needs beyond a plain child, which gets only its
 * record's env and go-plugin's variables, a unix socket with the default
 * group, and no TCP:
 *   "env:NAME"                 the host's NAME variable passes through
 *   "unix-socket-group:GROUP"  its socket is made with group GROUP
 *   "tcp"                      it may serve on TCP (the manager's check:
 *                              gp_store_record_has_privilege)
 * Enable refuses until the granted set equals the required one. */
typedef enum gp_store_restart {
    GP_STORE_RESTART_ALWAYS = 0, /* "always": the manager restarts on exit */
    GP_STORE_RESTART_NO = 1      /* "no": once stopped it stays stopped */
} gp_store_restart;

/* One installed plugin. Plain data; every pointer is owned by the record
 * (malloc'd, freed by gp_store_record_free); arrays are NULL-terminated. */
typedef struct gp_store_record {
    char *name;
    char *tag;
    char id[65];                     /* 64 hex: 32 random bytes from getrandom, never reused */
    char digest[65];                 /* 64 hex: SHA-256 of the binary (its blob name) */
    char **args;                     /* after the binary: argv[1..] */
    char *cookie_key, *cookie_value; /* handshake magic cookie; may be "" */
    unsigned *versions;              /* app protocol versions, >= 1 of them */
    size_t nversions;                /* versions[0] is handshake.protocol_version */
    unsigned protocols;              /* gp_protocol bits allowed, never 0 */
    char **env;                      /* "K=V" for the child */
    char **required;                 /* privileges the plugin needs */
    char **granted;                  /* privileges the operator granted */
    bool enabled;
    gp_store_restart restart;
} gp_store_record;

/* Called for each record or file that cannot be loaded (it is skipped) and
 * each leftover cleaned up: `file` is its path, `msg` the words. Called
 * after the store's mutex is released, on the thread of the call. */
typedef void (*gp_store_problem_fn)(void *ctx, const char *file, const char *msg);

typedef struct gp_store_open_opts {
    const char *root; /* at most 1024 bytes; created (0700) if missing, when lock */
    /* true: take ROOT/lock (flock, non-blocking; the fd is close-on-exec,
     * so plugins never inherit it) and hold it until gp_store_close; then
     * finish interrupted removals and delete temp files. false: read-only,
     * no lock, no cleanup: every change fails with GP_ESTATE. */
    bool lock;
    gp_store_problem_fn on_problem; /* NULL: problems are dropped */
    void *ctx;
    pid_t *holder; /* non-NULL: on GP_EBUSY, the holder's pid (0 unknown) */
} gp_store_open_opts;

/* Open and load every record. Caller owns *out: gp_store_close.
 * Errors: GP_EBUSY (lock: another process holds ROOT/lock; st names its
 * pid), GP_ENOTFOUND (read-only and no ROOT), GP_EINVAL, GP_ENOMEM,
 * GP_ESYS. Unreadable records are not errors: on_problem, then skipped. */
gp_err gp_store_open(const gp_store_open_opts *o, gp_store **out, gp_status *st);

/* Read the directory again (after another process changed it, or to
 * retry): as at open, problems to on_problem. */
gp_err gp_store_reload(gp_store *s, gp_status *st);

/* Release the lock and free. NULL is a no-op. Once, when no other call on
 * s runs. */
void gp_store_close(gp_store *s);

const char *gp_store_root(const gp_store *s); /* as opened; valid until close */
bool gp_store_locked(const gp_store *s);

/* Find by "NAME", "NAME:TAG" or the full 64-hex id; *out is a copy the
 * caller frees. Errors: GP_ENOTFOUND, GP_ENOMEM. */
gp_err gp_store_get(gp_store *s, const char *ref, gp_store_record **out, gp_status *st);

/* Copies of every record, sorted by name; *out (NULL-terminated array of
 * *n records) is freed with gp_store_record_list_free. */
gp_err gp_store_list(gp_store *s, gp_store_record ***out, size_t *n, gp_status *st);

typedef struct gp_store_install_opts {
    const char *path;             /* the binary, copied into the blob folder */
    const char *name;             /* "NAME" or "NAME:TAG" */
    const char *const *args;      /* NULL-terminated, or NULL */
    const char *cookie_key;       /* NULL = "" */
    const char *cookie_value;     /* NULL = "" */
    const unsigned *versions;     /* NULL/0 = {1} */
    size_t nversions;             /* at most 16 */
    unsigned protocols;           /* 0 = GP_PROTO_GRPC | GP_PROTO_NETRPC */
    const char *const *env;       /* "K=V", NULL-terminated, or NULL */
    const char *const *required;  /* privileges, NULL-terminated, or NULL */
    const char *const *granted;   /* ditto */
    gp_store_restart restart;     /* default ALWAYS */
    const uint8_t *expect_sha256; /* 32 bytes the copy must hash to, or NULL */
} gp_store_install_opts;

/* Copy the binary (hashing as it copies; fsync; rename to its digest;
 * 0755) and write a disabled record. The slow copy runs outside the store's
 * mutex. *out (NULL allowed) gets a copy of the new record.
 * Errors: GP_EINVAL (bad name/tag/privilege/env, name taken, path not a
 * regular file), GP_ECHECKSUM (expect_sha256 differs), GP_ESTATE
 * (read-only), GP_ESYS, GP_ENOMEM. On any error nothing is recorded. */
gp_err gp_store_install(gp_store *s, const gp_store_install_opts *o, gp_store_record **out,
                        gp_status *st);

/* Set the enabled flag (the store's state only: the manager acts on it).
 * Enable refuses with GP_ESTATE, naming the privileges required but not
 * granted and granted but not required, until the two sets are equal, and
 * with GP_ENOTFOUND when the blob is missing. Already in that state: GP_OK.
 * Errors also GP_ENOTFOUND (no such plugin), GP_ESYS. */
gp_err gp_store_enable(gp_store *s, const char *ref, gp_status *st);
gp_err gp_store_disable(gp_store *s, const char *ref, gp_status *st);

/* Replace the granted privileges (NULL-terminated; NULL = none). Errors:
 * GP_EINVAL (unknown privilege), GP_ESTATE (enabled: disable first). */
gp_err gp_store_grant(gp_store *s, const char *ref, const char *const *granted, gp_status *st);

/* Remove a record: refused with GP_ESTATE while enabled unless force. Two
 * phases: rename plugins/<id> to plugins/<id>-removing (the removal is
 * decided), then delete it; a crash in between is finished at the next
 * locked open. The blob stays until gc. */
gp_err gp_store_remove(gp_store *s, const char *ref, bool force, gp_status *st);

/* Delete every blob no record on disk references (a record that does not
 * load keeps every blob its text names), and the blob folder's temp files
 * unless an install is copying. An install renames its blob and writes its
 * record in one hold of the mutex, so gc never sees that blob unreferenced.
 * Counts the blobs and bytes freed. Errors: GP_ESTATE (read-only), GP_ESYS. */
gp_err gp_store_gc(gp_store *s, size_t *blobs, uint64_t *bytes, gp_status *st);

/* The record as its config.json text (malloc'd, NUL-terminated, indented). */
gp_err gp_store_record_json(const gp_store_record *r, char **out, gp_status *st);
/* Parse a config.json text (strict: unknown keys, wrong types, bad names,
 * ids, digests or privileges are GP_EPROTO). *out is the caller's. */
gp_err gp_store_record_parse(const char *data, size_t len, gp_store_record **out, gp_status *st);
gp_store_record *gp_store_record_copy(const gp_store_record *r); /* NULL: ENOMEM */
void gp_store_record_free(gp_store_record *r);                   /* NULL: no-op */
void gp_store_record_list_free(gp_store_record **list);
bool gp_store_record_has_privilege(const gp_store_record *r, const char *priv);
bool gp_store_privilege_valid(const char *priv);

/* How to start a record's plugin: argv = {ROOT/blobs/sha256/<digest>,
 * args...}, env = the record's plus each granted env:NAME the host has,
 * skip_host_env, handshake and versions, allowed_protocols, sha256 =
 * the digest (SecureConfig: checked at every start), unix_socket_group.
 * The rest is zero: copy the struct and add a logger, detached, ...
 * Everything points into l: keep l until the config's last use (a
 * supervisor borrows it). Thread safety: l is read-only, any thread. */
typedef struct gp_store_launch gp_store_launch;
gp_err gp_store_launch_new(gp_store *s, const gp_store_record *r, gp_store_launch **out,
                           gp_status *st);
const gp_client_config *gp_store_launch_config(const gp_store_launch *l);
void gp_store_launch_free(gp_store_launch *l);

/* The blob path of a digest into buf ("ROOT/blobs/sha256/<hex>"); the
 * length, or 0 when it does not fit. */
size_t gp_store_blob_path(const gp_store *s, const char *digest, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
