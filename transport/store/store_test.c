/* The store through its public API: install, lookups, privileges, enable,
 * remove, gc, the lock, leftovers and corrupt records, the launch config. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <goplugin/store.h>

#include "transport/testing/gp_test.h"

static char root[512];
static char work[512];

/* A fresh root (not created yet) and a folder for source files. */
static int setup(void)
{
    const char *tmp = getenv("TEST_TMPDIR");
    char base[256];
    snprintf(base, sizeof base, "%s/store_test.XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(base))
        return 1;
    snprintf(root, sizeof root, "%s/root", base);
    snprintf(work, sizeof work, "%s/src", base);
    return mkdir(work, 0700);
}

/* A source binary with the given content; returns its path (static). */
static const char *source(const char *name, const char *content)
{
    static char path[4][600];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 600, "%s/%s", work, name);
    FILE *f = fopen(p, "w");
    GP_CHECK(f != NULL);
    if (f) {
        fputs(content, f);
        fclose(f);
    }
    return p;
}

typedef struct problems {
    int n;
    char last_file[600];
    char all[4096];
} problems;

static void on_problem(void *ctx, const char *file, const char *msg)
{
    problems *p = ctx;
    p->n++;
    snprintf(p->last_file, sizeof p->last_file, "%s", file);
    size_t used = strlen(p->all);
    snprintf(p->all + used, sizeof p->all - used, "%s: %s\n", file, msg);
}

static gp_store *open_store(bool lock, problems *p)
{
    gp_store_open_opts o = {
        .root = root, .lock = lock, .on_problem = p ? on_problem : NULL, .ctx = p};
    gp_store *s = NULL;
    gp_status st;
    gp_err rc = gp_store_open(&o, &s, &st);
    if (rc != GP_OK)
        GP_FAILF("open %s: %s", root, st.msg);
    return s;
}

static gp_store_record *install(gp_store *s, const char *name, const char *content,
                                const char *const *required, const char *const *granted)
{
    gp_store_install_opts o = {.path = source(name, content),
                               .name = name,
                               .cookie_key = "BASIC_PLUGIN",
                               .cookie_value = "hello",
                               .required = required,
                               .granted = granted};
    gp_store_record *r = NULL;
    gp_status st;
    gp_err rc = gp_store_install(s, &o, &r, &st);
    if (rc != GP_OK)
        GP_FAILF("install %s: %s", name, st.msg);
    return r;
}

static void sha256_hex_of(const char *content, char out[65])
{
    /* Hash through the store itself would prove nothing: use sha256sum. */
    char cmd[700];
    const char *p = source("hashme", content);
    snprintf(cmd, sizeof cmd, "sha256sum %s", p);
    FILE *f = popen(cmd, "r");
    GP_CHECK(f != NULL);
    out[0] = '\0';
    if (f) {
        GP_CHECK(fscanf(f, "%64s", out) == 1);
        GP_CHECK_INT(pclose(f), ==, 0);
    }
}

static bool exists(const char *fmt, const char *a, const char *b)
{
    char path[1200];
    snprintf(path, sizeof path, fmt, a, b);
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Entries in dir, hidden (temp) ones included. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

GP_TEST(install_get_list)
{
    gp_store *s = open_store(true, NULL);
    gp_store_record *a = install(s, "beta", "binary-b\n", NULL, NULL);
    gp_store_install_opts o = {.path = source("alpha", "binary-a\n"), .name = "alpha:1.2"};
    gp_store_record *b = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_store_install(s, &o, &b, &st), GP_OK);
    if (!a || !b)
        return;
    char want[65];
    sha256_hex_of("binary-b\n", want);
    GP_CHECK_STR(a->digest, want);
    GP_CHECK_STR(a->tag, "latest");
    GP_CHECK_STR(b->tag, "1.2");
    GP_CHECK(!a->enabled);
    GP_CHECK_INT(b->protocols, ==, GP_PROTO_GRPC | GP_PROTO_NETRPC);
    GP_CHECK_INT(b->nversions, ==, 1);
    GP_CHECK_INT(b->versions[0], ==, 1);
    GP_CHECK(strcmp(a->id, b->id) != 0);
    /* The blob: named by its digest, mode 0755, the same bytes. */
    char blob[1200];
    GP_CHECK(gp_store_blob_path(s, a->digest, blob, sizeof blob) > 0);
    struct stat sb;
    GP_CHECK_INT(stat(blob, &sb), ==, 0);
    GP_CHECK_INT(sb.st_mode & 0777, ==, 0755);
    size_t len;
    char *data = gp_test_read_file(blob, &len);
    GP_CHECK_STR(data, "binary-b\n");
    free(data);
    GP_CHECK(exists("%s/plugins/%s/config.json", root, a->id));
    /* Lookups: name, name:tag, id; a wrong tag is not found. */
    gp_store_record *g;
    GP_CHECK_ERR(gp_store_get(s, "alpha", &g, &st), GP_OK);
    gp_store_record_free(g);
    GP_CHECK_ERR(gp_store_get(s, "alpha:1.2", &g, &st), GP_OK);
    gp_store_record_free(g);
    GP_CHECK_ERR(gp_store_get(s, b->id, &g, &st), GP_OK);
    if (g)
        GP_CHECK_STR(g->name, "alpha");
    gp_store_record_free(g);
    GP_CHECK_ERR(gp_store_get(s, "alpha:latest", &g, &st), GP_ENOTFOUND);
    GP_CHECK_CONTAINS(st.msg, "alpha:latest");
    GP_CHECK_ERR(gp_store_get(s, "gamma", &g, &st), GP_ENOTFOUND);
    /* Sorted by name, and the same after a reopen. */
    gp_store_close(s);
    s = open_store(false, NULL);
    gp_store_record **list;
    size_t n;
    GP_CHECK_ERR(gp_store_list(s, &list, &n, &st), GP_OK);
    GP_CHECK_INT(n, ==, 2);
    if (n == 2) {
        GP_CHECK_STR(list[0]->name, "alpha");
        GP_CHECK_STR(list[1]->name, "beta");
        GP_CHECK_STR(list[1]->cookie_key, "BASIC_PLUGIN");
        GP_CHECK(list[2] == NULL);
    }
    gp_store_record_list_free(list);
    gp_store_record_free(a);
    gp_store_record_free(b);
    gp_store_close(s);
}

GP_TEST(install_refusals)
{
    gp_store *s = open_store(true, NULL);
    gp_status st;
    const char *path = source("p", "x");
    const char *bad_priv[] = {"root", NULL}, *dup[] = {"tcp", "tcp", NULL};
    const char *bad_env[] = {"1X=2", NULL};
    struct {
        gp_store_install_opts o;
        gp_err want;
        const char *words;
    } cases[] = {
        {{.path = path, .name = "a/b"}, GP_EINVAL, "not valid"},
        {{.path = path, .name = "../x"}, GP_EINVAL, "not valid"},
        {{.path = path, .name = "ok:bad/tag"}, GP_EINVAL, "tag"},
        {{.path = path, .name = "ok", .required = bad_priv}, GP_EINVAL, "root"},
        {{.path = path, .name = "ok", .granted = dup}, GP_EINVAL, "twice"},
        {{.path = path, .name = "ok", .env = bad_env}, GP_EINVAL, "1X=2"},
        {{.path = "/nonexistent/x", .name = "ok"}, GP_ENOTFOUND, "/nonexistent/x"},
        {{.path = work, .name = "ok"}, GP_EINVAL, "not a regular file"},
        {{.path = path,
          .name = "ok",
          .expect_sha256 = (const uint8_t *)"0123456789abcdef0123456789abcdef"},
         GP_ECHECKSUM,
         "expected"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        GP_CHECK_ERR(gp_store_install(s, &cases[i].o, NULL, &st), cases[i].want);
        GP_CHECK_CONTAINS(st.msg, cases[i].words);
    }
    /* Nothing was recorded, no temp file is left. */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/plugins", root);
    GP_CHECK_INT(count_entries(dir), ==, 0);
    snprintf(dir, sizeof dir, "%s/blobs/sha256", root);
    GP_CHECK_INT(count_entries(dir), ==, 0);
    /* A name is taken once. */
    gp_store_record_free(install(s, "kv", "one", NULL, NULL));
    gp_store_install_opts again = {.path = path, .name = "kv:2"};
    GP_CHECK_ERR(gp_store_install(s, &again, NULL, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "already installed");
    gp_store_close(s);
}

GP_TEST(privileges_gate_enable)
{
    gp_store *s = open_store(true, NULL);
    const char *req[] = {"tcp", "env:HOME", NULL};
    const char *some[] = {"tcp", "unix-socket-group:wheel", NULL};
    gp_store_record_free(install(s, "kv", "bin", req, some));
    gp_status st;
    GP_CHECK_ERR(gp_store_enable(s, "kv", &st), GP_ESTATE);
    GP_CHECK_CONTAINS(st.msg, "required but not granted: [env:HOME]");
    GP_CHECK_CONTAINS(st.msg, "granted but not required: [unix-socket-group:wheel]");
    const char *bad[] = {"nope", NULL};
    GP_CHECK_ERR(gp_store_grant(s, "kv", bad, &st), GP_EINVAL);
    const char *all[] = {"env:HOME", "tcp", NULL};
    GP_CHECK_ERR(gp_store_grant(s, "kv", all, &st), GP_OK);
    GP_CHECK_ERR(gp_store_enable(s, "kv", &st), GP_OK);
    GP_CHECK_ERR(gp_store_enable(s, "kv", &st), GP_OK); /* already: no change */
    GP_CHECK_ERR(gp_store_grant(s, "kv", all, &st), GP_ESTATE);
    gp_store_close(s);
    /* On disk: enabled, both sets. */
    s = open_store(true, NULL);
    gp_store_record *r;
    GP_CHECK_ERR(gp_store_get(s, "kv", &r, &st), GP_OK);
    if (r) {
        GP_CHECK(r->enabled);
        GP_CHECK(gp_store_record_has_privilege(r, "env:HOME"));
        GP_CHECK(!gp_store_record_has_privilege(r, "unix-socket-group:wheel"));
    }
    gp_store_record_free(r);
    GP_CHECK_ERR(gp_store_disable(s, "kv", &st), GP_OK);
    GP_CHECK_ERR(gp_store_get(s, "kv", &r, &st), GP_OK);
    GP_CHECK(r && !r->enabled);
    gp_store_record_free(r);
    GP_CHECK_ERR(gp_store_enable(s, "missing", &st), GP_ENOTFOUND);
    gp_store_close(s);
}

GP_TEST(enable_needs_the_blob)
{
    gp_store *s = open_store(true, NULL);
    gp_store_record *r = install(s, "kv", "bin", NULL, NULL);
    if (!r)
        return;
    char blob[1200];
    gp_store_blob_path(s, r->digest, blob, sizeof blob);
    GP_CHECK_INT(unlink(blob), ==, 0);
    gp_status st;
    GP_CHECK_ERR(gp_store_enable(s, "kv", &st), GP_ENOTFOUND);
    GP_CHECK_CONTAINS(st.msg, r->digest);
    gp_store_record_free(r);
    gp_store_close(s);
}

GP_TEST(remove_refused_while_enabled)
{
    gp_store *s = open_store(true, NULL);
    gp_store_record *r = install(s, "kv", "bin", NULL, NULL);
    if (!r)
        return;
    gp_status st;
    GP_CHECK_ERR(gp_store_enable(s, "kv", &st), GP_OK);
    GP_CHECK_ERR(gp_store_remove(s, "kv", false, &st), GP_ESTATE);
    GP_CHECK_CONTAINS(st.msg, "enabled");
    GP_CHECK(exists("%s/plugins/%s", root, r->id));
    GP_CHECK_ERR(gp_store_remove(s, "kv", true, &st), GP_OK);
    GP_CHECK(!exists("%s/plugins/%s", root, r->id));
    GP_CHECK(!exists("%s/plugins/%s-removing", root, r->id));
    gp_store_record *g;
    GP_CHECK_ERR(gp_store_get(s, "kv", &g, &st), GP_ENOTFOUND);
    GP_CHECK_ERR(gp_store_remove(s, "kv", true, &st), GP_ENOTFOUND);
    /* The name is free again; a new install gets a new id. */
    gp_store_record *again = install(s, "kv", "bin", NULL, NULL);
    GP_CHECK(again && strcmp(again->id, r->id) != 0);
    gp_store_record_free(again);
    gp_store_record_free(r);
    gp_store_close(s);
}

GP_TEST(gc_frees_only_unreferenced)
{
    gp_store *s = open_store(true, NULL);
    gp_store_record *a = install(s, "a", "aaaa", NULL, NULL);
    gp_store_record *b = install(s, "b", "bbbbbbbb", NULL, NULL);
    gp_store_record *c = install(s, "c", "aaaa", NULL, NULL); /* shares a's blob */
    gp_status st;
    size_t blobs = 99;
    uint64_t bytes = 99;
    GP_CHECK_ERR(gp_store_gc(s, &blobs, &bytes, &st), GP_OK);
    GP_CHECK_INT(blobs, ==, 0);
    GP_CHECK_INT(bytes, ==, 0);
    GP_CHECK_ERR(gp_store_remove(s, "a", false, &st), GP_OK);
    GP_CHECK_ERR(gp_store_remove(s, "b", false, &st), GP_OK);
    GP_CHECK_ERR(gp_store_gc(s, &blobs, &bytes, &st), GP_OK);
    GP_CHECK_INT(blobs, ==, 1); /* b's; a's is still c's */
    GP_CHECK_INT(bytes, ==, 8);
    if (a && b && c) {
        GP_CHECK(exists("%s/blobs/sha256/%s", root, c->digest));
        GP_CHECK(!exists("%s/blobs/sha256/%s", root, b->digest));
    }
    /* A record that does not load keeps the blob its text names. */
    char file[1200];
    snprintf(file, sizeof file, "%s/plugins/%s/config.json", root, c ? c->id : "");
    FILE *f = fopen(file, "w");
    if (f) {
        fprintf(f, "{\"digest\": \"sha256:%s\", truncated", c->digest);
        fclose(f);
    }
    GP_CHECK_ERR(gp_store_reload(s, &st), GP_OK);
    GP_CHECK_ERR(gp_store_gc(s, &blobs, &bytes, &st), GP_OK);
    GP_CHECK_INT(blobs, ==, 0);
    unlink(file);
    GP_CHECK_ERR(gp_store_gc(s, &blobs, &bytes, &st), GP_OK);
    GP_CHECK_INT(blobs, ==, 1);
    GP_CHECK_INT(bytes, ==, 4);
    gp_store_record_free(a);
    gp_store_record_free(b);
    gp_store_record_free(c);
    gp_store_close(s);
}

GP_TEST(lock_is_exclusive)
{
    gp_store *s = open_store(true, NULL);
    gp_store_record_free(install(s, "kv", "bin", NULL, NULL));
    pid_t holder = -1;
    gp_store_open_opts o = {.root = root, .lock = true, .holder = &holder};
    gp_store *t = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_store_open(&o, &t, &st), GP_EBUSY);
    GP_CHECK(t == NULL);
    GP_CHECK_INT(holder, ==, getpid());
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    GP_CHECK_CONTAINS(st.msg, pid);
    /* Read-only: no lock, sees the records, changes nothing. */
    gp_store *r = open_store(false, NULL);
    if (r) {
        GP_CHECK(!gp_store_locked(r));
        gp_store_record *g;
        GP_CHECK_ERR(gp_store_get(r, "kv", &g, &st), GP_OK);
        gp_store_record_free(g);
        GP_CHECK_ERR(gp_store_enable(r, "kv", &st), GP_ESTATE);
        GP_CHECK_ERR(gp_store_remove(r, "kv", true, &st), GP_ESTATE);
        GP_CHECK_ERR(gp_store_gc(r, NULL, NULL, &st), GP_ESTATE);
        gp_store_install_opts in = {.path = source("x", "x"), .name = "x"};
        GP_CHECK_ERR(gp_store_install(r, &in, NULL, &st), GP_ESTATE);
    }
    gp_store_close(r);
    /* The lock is not inherited by children (plugins): a shell finds no
     * descriptor of ROOT/lock among its own. */
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "for f in /proc/$$/fd/*; do readlink \"$f\"; done | grep -q '%s/lock$'", root);
    int status = system(cmd);
    GP_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    gp_store_close(s);
    GP_CHECK_ERR(gp_store_open(&o, &t, &st), GP_OK);
    gp_store_close(t);
    /* Read-only on a root that does not exist. */
    gp_store_open_opts none = {.root = "/nonexistent/store"};
    GP_CHECK_ERR(gp_store_open(&none, &t, &st), GP_ENOTFOUND);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    GP_CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

GP_TEST(corrupt_record_is_skipped)
{
    gp_store *s = open_store(true, NULL);
    gp_store_record *a = install(s, "a", "1", NULL, NULL);
    gp_store_record *b = install(s, "b", "2", NULL, NULL);
    gp_store_record *c = install(s, "c", "3", NULL, NULL);
    gp_store_close(s);
    if (!a || !b || !c)
        return;
    char file[1200];
    snprintf(file, sizeof file, "%s/plugins/%s/config.json", root, a->id);
    size_t len;
    char *text = gp_test_read_file(file, &len);
    if (text && len > 10) {
        text[len / 2] = '\0'; /* truncated */
        write_text(file, text);
    }
    free(text);
    snprintf(file, sizeof file, "%s/plugins/%s/config.json", root, b->id);
    write_text(file, "\x01\x02 garbage");
    problems p = {0};
    s = open_store(true, &p);
    GP_CHECK_INT(p.n, ==, 2);
    GP_CHECK_CONTAINS(p.all, a->id);
    GP_CHECK_CONTAINS(p.all, b->id);
    GP_CHECK_CONTAINS(p.all, "corrupt record");
    gp_store_record **list;
    size_t n;
    gp_status st;
    GP_CHECK_ERR(gp_store_list(s, &list, &n, &st), GP_OK);
    GP_CHECK_INT(n, ==, 1);
    if (n == 1)
        GP_CHECK_STR(list[0]->name, "c");
    gp_store_record_list_free(list);
    /* A record moved under another id's folder is refused too. */
    char dst[1200];
    snprintf(file, sizeof file, "%s/plugins/%s", root, c->id);
    snprintf(dst, sizeof dst, "%s/plugins/%s", root, a->id);
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "cp %s/config.json %s/config.json", file, dst);
    GP_CHECK_INT(system(cmd), ==, 0);
    memset(&p, 0, sizeof p);
    gp_store_close(s);
    s = open_store(false, &p);
    GP_CHECK_CONTAINS(p.all, "does not match its folder");
    gp_store_close(s);
    gp_store_record_free(a);
    gp_store_record_free(b);
    gp_store_record_free(c);
}

GP_TEST(leftovers_are_finished)
{
    gp_store *s = open_store(true, NULL);
    gp_store_record *a = install(s, "a", "1", NULL, NULL);
    gp_store_close(s);
    if (!a)
        return;
    char path[1200], id2[65];
    memset(id2, 'e', 64);
    id2[64] = '\0';
    snprintf(path, sizeof path, "%s/plugins/%s-removing", root, id2);
    GP_CHECK_INT(mkdir(path, 0700), ==, 0);
    snprintf(path, sizeof path, "%s/plugins/%s-removing/config.json", root, id2);
    write_text(path, "{}");
    snprintf(path, sizeof path, "%s/plugins/.tmp-%s", root, id2);
    GP_CHECK_INT(mkdir(path, 0700), ==, 0);
    snprintf(path, sizeof path, "%s/blobs/sha256/.tmp-blob-abcdef", root);
    write_text(path, "partial");
    snprintf(path, sizeof path, "%s/plugins/%s/.tmp-config.json-123456", root, a->id);
    write_text(path, "{\"half");
    /* Read-only: reported nowhere, removed nowhere. */
    problems p = {0};
    s = open_store(false, &p);
    GP_CHECK_INT(p.n, ==, 0);
    gp_store_close(s);
    GP_CHECK(exists("%s/plugins/%s-removing", root, id2));
    s = open_store(true, &p);
    GP_CHECK_INT(p.n, ==, 4);
    GP_CHECK_CONTAINS(p.all, "interrupted removal");
    GP_CHECK_CONTAINS(p.all, "interrupted install");
    GP_CHECK(!exists("%s/plugins/%s-removing", root, id2));
    GP_CHECK(!exists("%s/plugins/.tmp-%s", root, id2));
    GP_CHECK(!exists("%s/blobs/sha256/%s", root, ".tmp-blob-abcdef"));
    GP_CHECK(!exists("%s/plugins/%s/.tmp-config.json-123456", root, a->id));
    gp_store_record *g;
    gp_status st;
    GP_CHECK_ERR(gp_store_get(s, "a", &g, &st), GP_OK);
    gp_store_record_free(g);
    gp_store_close(s);
    gp_store_record_free(a);
}

GP_TEST(record_json_round_trip)
{
    gp_store *s = open_store(true, NULL);
    const char *req[] = {"env:PATH", "tcp", NULL};
    gp_store_install_opts o = {.path = source("p", "x"),
                               .name = "kv:v1",
                               .args = (const char *[]){"--flag", "two words", NULL},
                               .cookie_key = "K",
                               .cookie_value = "V\"q",
                               .versions = (const unsigned[]){3, 2},
                               .nversions = 2,
                               .protocols = GP_PROTO_NETRPC,
                               .env = (const char *[]){"A=1", "B=x=y", NULL},
                               .required = req,
                               .granted = req,
                               .restart = GP_STORE_RESTART_NO};
    gp_store_record *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_store_install(s, &o, &r, &st), GP_OK);
    if (!r)
        return;
    char *json = NULL, *again = NULL;
    GP_CHECK_ERR(gp_store_record_json(r, &json, &st), GP_OK);
    gp_store_record *p = NULL;
    GP_CHECK_ERR(gp_store_record_parse(json, strlen(json), &p, &st), GP_OK);
    if (p) {
        GP_CHECK_ERR(gp_store_record_json(p, &again, &st), GP_OK);
        GP_CHECK_STR(again, json);
        GP_CHECK_STR(p->args[1], "two words");
        GP_CHECK_STR(p->cookie_value, "V\"q");
        GP_CHECK_INT(p->versions[1], ==, 2);
        GP_CHECK_INT(p->protocols, ==, GP_PROTO_NETRPC);
        GP_CHECK_INT(p->restart, ==, GP_STORE_RESTART_NO);
    }
    /* The launch config: blob path, args, env plus the granted env:PATH,
     * versions, protocols, the digest as SecureConfig. */
    gp_store_launch *l = NULL;
    GP_CHECK_ERR(gp_store_launch_new(s, r, &l, &st), GP_OK);
    if (l) {
        const gp_client_config *c = gp_store_launch_config(l);
        char blob[1200];
        gp_store_blob_path(s, r->digest, blob, sizeof blob);
        GP_CHECK_STR(c->argv[0], blob);
        GP_CHECK_STR(c->argv[2], "two words");
        GP_CHECK(c->argv[3] == NULL);
        GP_CHECK_STR(c->env[1], "B=x=y");
        GP_CHECK(strncmp(c->env[2], "PATH=", 5) == 0);
        GP_CHECK(c->skip_host_env);
        GP_CHECK_INT(c->handshake.protocol_version, ==, 3);
        GP_CHECK_STR(c->handshake.magic_cookie_key, "K");
        GP_CHECK_INT(c->nversions, ==, 1);
        GP_CHECK_INT(c->versions[0], ==, 2);
        GP_CHECK_INT(c->allowed_protocols, ==, GP_PROTO_NETRPC);
        char hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", c->sha256[i]);
        GP_CHECK_STR(hex, r->digest);
        GP_CHECK(c->unix_socket_group == NULL);
    }
    gp_store_launch_free(l);
    /* The parser refuses what a later step would trust. */
    const char *bad[] = {
        "{\"version\":1,\"bogus\":1}",
        "[]",
        "{\"version\":2}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gp_store_record *x = NULL;
        GP_CHECK_ERR(gp_store_record_parse(bad[i], strlen(bad[i]), &x, &st), GP_EPROTO);
        GP_CHECK(x == NULL);
    }
    const char *swaps[][2] = {
        {"\"name\": \"kv\"", "\"name\": \"../kv\""},
        {"\"digest\": \"sha256:", "\"digest\": \"md5:"},
        {"\"tcp\"", "\"root\""},
        {"\"enabled\": false", "\"enabled\": 0"},
        {"\"restart\": \"no\"", "\"restart\": \"sometimes\""},
        {"\"A=1\"", "\"A\\u0000=1\""},
        {"\"tag\": \"v1\"", "\"tag\": \"v1\", \"tag\": \"v2\""},
        {"\"netrpc\"", "\"netrpc\", \"netrpc\""},
    };
    for (size_t i = 0; i < sizeof swaps / sizeof swaps[0]; i++) {
        const char *at = strstr(json, swaps[i][0]);
        GP_CHECK(at != NULL);
        if (!at)
            continue;
        char text[8192];
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - json), json, swaps[i][1],
                 at + strlen(swaps[i][0]));
        gp_store_record *x = NULL;
        gp_err rc = gp_store_record_parse(text, strlen(text), &x, &st);
        if (rc != GP_EPROTO)
            GP_FAILF("swap %zu (%s) parsed: %d", i, swaps[i][1], rc);
        gp_store_record_free(x);
    }
    free(json);
    free(again);
    gp_store_record_free(p);
    gp_store_record_free(r);
    gp_store_close(s);
}

/* gc runs while installs copy their blobs: every record keeps its blob. */
static void *installer(void *arg)
{
    gp_store *s = arg;
    static int next;
    int me = __atomic_fetch_add(&next, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 10; i++) {
        char name[32], content[64];
        snprintf(name, sizeof name, "p%d-%d", me, i);
        snprintf(content, sizeof content, "content %d %d", me, i);
        char path[700];
        snprintf(path, sizeof path, "%s/%s", work, name);
        FILE *f = fopen(path, "w");
        if (!f)
            return NULL;
        fputs(content, f);
        fclose(f);
        gp_store_install_opts o = {.path = path, .name = name};
        gp_status st;
        if (gp_store_install(s, &o, NULL, &st) != GP_OK)
            GP_FAILF("install %s: %s", name, st.msg);
    }
    return NULL;
}

GP_TEST(gc_during_installs)
{
    gp_store *s = open_store(true, NULL);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, installer, s);
    gp_status st;
    for (int i = 0; i < 50; i++) {
        size_t blobs;
        GP_CHECK_ERR(gp_store_gc(s, &blobs, NULL, &st), GP_OK);
        GP_CHECK_INT(blobs, ==, 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    gp_store_record **list;
    size_t n;
    GP_CHECK_ERR(gp_store_list(s, &list, &n, &st), GP_OK);
    GP_CHECK_INT(n, ==, 30);
    for (size_t i = 0; i < n; i++)
        GP_CHECK(exists("%s/blobs/sha256/%s", root, list[i]->digest));
    gp_store_record_list_free(list);
    gp_store_close(s);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    gp_test_fixture(setup, NULL);
    GP_RUN(install_get_list);
    GP_RUN(install_refusals);
    GP_RUN(privileges_gate_enable);
    GP_RUN(enable_needs_the_blob);
    GP_RUN(remove_refused_while_enabled);
    GP_RUN(gc_frees_only_unreferenced);
    GP_RUN(lock_is_exclusive);
    GP_RUN(corrupt_record_is_skipped);
    GP_RUN(leftovers_are_finished);
    GP_RUN(record_json_round_trip);
    GP_RUN_TIMEOUT(gc_during_installs, 20);
    return gp_test_done();
}
