/* Crash points: for every numbered point of install, enable, remove and gc,
 * run gpctl with GP_STORE_CRASH_AT=N (SIGKILL there), then load the store
 * and check it needs no repair: every record loads, nothing half-written
 * is left after a locked open, every record's blob exists and hashes to its
 * digest, and the operation either happened or did not. N goes up until
 * gpctl finishes without being killed, so every point is hit. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <goplugin/store.h>

#include "transport/testing/gp_test.h"

static const char *gpctl;
static char base[512], root[600], src_a[600], src_b[600];

static int setup(void)
{
    const char *tmp = getenv("TEST_TMPDIR");
    snprintf(base, sizeof base, "%s/crash_test.XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(base))
        return 1;
    snprintf(root, sizeof root, "%s/root", base);
    snprintf(src_a, sizeof src_a, "%s/plugin-a", base);
    snprintf(src_b, sizeof src_b, "%s/plugin-b", base);
    FILE *a = fopen(src_a, "w"), *b = fopen(src_b, "w");
    if (!a || !b)
        return 1;
    for (int i = 0; i < 20000; i++)
        fprintf(a, "a%d\n", i);
    fputs("the other binary\n", b);
    fclose(a);
    fclose(b);
    return 0;
}

/* Run gpctl --root ROOT args..., crashing at point `at` (0: never). Returns
 * the wait status. */
static int run_gpctl(int at, const char *const *args)
{
    const char *argv[16] = {gpctl, "--root", root};
    int n = 3;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        char num[16];
        snprintf(num, sizeof num, "%d", at);
        if (at > 0)
            setenv("GP_STORE_CRASH_AT", num, 1);
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execv(gpctl, (char *const *)argv);
        _exit(127);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    return status;
}

static void reset_root(void)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    GP_CHECK_INT(system(cmd), ==, 0);
}

static void sha256_hex(const char *path, char out[65])
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *f = popen(cmd, "r");
    out[0] = '\0';
    if (f) {
        if (fscanf(f, "%64s", out) != 1)
            out[0] = '\0';
        pclose(f);
    }
}

typedef struct seen {
    int bad; /* problems that are not a cleanup of a crash's leftovers */
    char all[2048];
} seen;

static void on_problem(void *ctx, const char *file, const char *msg)
{
    seen *s = ctx;
    if (!strstr(msg, "interrupted") && !strstr(msg, "temp file"))
        s->bad++;
    size_t used = strlen(s->all);
    snprintf(s->all + used, sizeof s->all - used, "%s: %s\n", file, msg);
}

/* No ".tmp-*" and no "-removing" under dir (two levels). */
static int leftovers(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strncmp(e->d_name, ".tmp-", 5) == 0 || strstr(e->d_name, "-removing")) {
            GP_FAILF("leftover %s/%s", dir, e->d_name);
            n++;
        }
        char sub[1200];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (depth > 0 && lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
            n += leftovers(sub, depth - 1);
    }
    if (d)
        closedir(d);
    return n;
}

/* Load the store as the next gpctl would, check the invariants, and return
 * it (locked) for the operation's own checks. */
static gp_store *check_store(int at)
{
    seen ro = {0}, rw = {0};
    gp_store_open_opts o = {.root = root, .on_problem = on_problem, .ctx = &ro};
    gp_store *s = NULL;
    gp_status st;
    /* Read-only first: a crash never leaves a record that fails to load. */
    GP_CHECK_ERR(gp_store_open(&o, &s, &st), GP_OK);
    if (ro.bad)
        GP_FAILF("crash point %d: read-only load: %s", at, ro.all);
    gp_store_close(s);
    o.lock = true;
    o.ctx = &rw;
    GP_CHECK_ERR(gp_store_open(&o, &s, &st), GP_OK);
    if (rw.bad)
        GP_FAILF("crash point %d: locked load: %s", at, rw.all);
    if (!s)
        return NULL;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/plugins", root);
    GP_CHECK_INT(leftovers(dir, 1), ==, 0);
    snprintf(dir, sizeof dir, "%s/blobs/sha256", root);
    GP_CHECK_INT(leftovers(dir, 0), ==, 0);
    gp_store_record **list;
    size_t n;
    GP_CHECK_ERR(gp_store_list(s, &list, &n, &st), GP_OK);
    for (size_t i = 0; i < n; i++) {
        char blob[1200], hex[65];
        gp_store_blob_path(s, list[i]->digest, blob, sizeof blob);
        sha256_hex(blob, hex);
        if (strcmp(hex, list[i]->digest) != 0)
            GP_FAILF("crash point %d: %s: blob %s hashes to \"%s\"", at, list[i]->name,
                     list[i]->digest, hex);
    }
    gp_store_record_list_free(list);
    return s;
}

static bool has_plugin(gp_store *s, const char *name, bool *enabled)
{
    gp_store_record *r = NULL;
    bool found = gp_store_get(s, name, &r, NULL) == GP_OK;
    if (found && enabled)
        *enabled = r->enabled;
    gp_store_record_free(r);
    return found;
}

static void prepare_store(bool b_enabled, bool remove_a)
{
    reset_root();
    gp_store_open_opts o = {.root = root, .lock = true};
    gp_store *s;
    gp_status st;
    GP_CHECK_ERR(gp_store_open(&o, &s, &st), GP_OK);
    if (!s)
        return;
    gp_store_install_opts a = {.path = src_a, .name = "a"};
    gp_store_install_opts b = {.path = src_b, .name = "b"};
    GP_CHECK_ERR(gp_store_install(s, &a, NULL, &st), GP_OK);
    GP_CHECK_ERR(gp_store_install(s, &b, NULL, &st), GP_OK);
    if (b_enabled)
        GP_CHECK_ERR(gp_store_enable(s, "b", &st), GP_OK);
    if (remove_a)
        GP_CHECK_ERR(gp_store_remove(s, "a", false, &st), GP_OK);
    gp_store_close(s);
}

typedef enum op { OP_INSTALL, OP_INSTALL_SAME, OP_ENABLE, OP_REMOVE, OP_GC } op;

static void prepare(op which)
{
    switch (which) {
    case OP_INSTALL:
        reset_root();
        break;
    case OP_INSTALL_SAME: /* c has a's bytes: the blob is renamed over a's */
    case OP_ENABLE:
        prepare_store(false, false);
        break;
    case OP_REMOVE:
        prepare_store(true, false);
        break;
    case OP_GC:
        prepare_store(false, true);
        break;
    }
}

/* Either the operation happened or it did not; `done` says which it must
 * be (-1: either). */
static void check_outcome(op which, gp_store *s, int done, int at)
{
    bool enabled = false, happened = false;
    char blob[1200], hex[65];
    switch (which) {
    case OP_INSTALL:
        happened = has_plugin(s, "kv", &enabled);
        GP_CHECK(!enabled);
        break;
    case OP_INSTALL_SAME:
        happened = has_plugin(s, "c", NULL);
        GP_CHECK(has_plugin(s, "a", NULL)); /* and check_store hashed its blob */
        break;
    case OP_ENABLE:
        GP_CHECK(has_plugin(s, "b", &happened));
        break;
    case OP_REMOVE:
        happened = !has_plugin(s, "b", &enabled);
        GP_CHECK(happened || enabled);
        break;
    case OP_GC:
        sha256_hex(src_a, hex);
        gp_store_blob_path(s, hex, blob, sizeof blob);
        happened = access(blob, F_OK) != 0;
        GP_CHECK(has_plugin(s, "b", NULL));
        break;
    }
    if (done >= 0 && happened != (bool)done)
        GP_FAILF("crash point %d: the operation %s", at, done ? "did not happen" : "happened");
}

static void crash_every_point(op which, const char *const *args, int min_points)
{
    int at = 1;
    for (; at < 200; at++) {
        prepare(which);
        int status = run_gpctl(at, args);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            gp_store *s = check_store(at);
            if (s)
                check_outcome(which, s, 1, at);
            gp_store_close(s);
            break;
        }
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            GP_FAILF("%s at crash point %d: wait status 0x%x, want SIGKILL or exit 0", args[0], at,
                     status);
            return;
        }
        gp_store *s = check_store(at);
        if (s)
            check_outcome(which, s, -1, at);
        gp_store_close(s);
        /* The next gpctl reads it too. */
        const char *ls[] = {"ls", NULL};
        int ls_status = run_gpctl(0, ls);
        GP_CHECK(WIFEXITED(ls_status) && WEXITSTATUS(ls_status) == 0);
    }
    printf("     %s: %d crash points\n", args[0], at - 1);
    GP_CHECK_INT(at - 1, >=, min_points);
}

GP_TEST(crash_install)
{
    const char *args[] = {"install", src_a, "kv", NULL};
    crash_every_point(OP_INSTALL, args, 7);
}

GP_TEST(crash_install_same_blob)
{
    const char *args[] = {"install", src_a, "c", NULL};
    crash_every_point(OP_INSTALL_SAME, args, 7);
}

GP_TEST(crash_enable)
{
    const char *args[] = {"enable", "b", NULL};
    crash_every_point(OP_ENABLE, args, 2);
}

GP_TEST(crash_remove)
{
    const char *args[] = {"rm", "-f", "b", NULL};
    crash_every_point(OP_REMOVE, args, 3);
}

GP_TEST(crash_gc)
{
    const char *args[] = {"gc", NULL};
    crash_every_point(OP_GC, args, 1);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "usage: crash_test PATH-OF-GPCTL\n");
        return 2;
    }
    gpctl = argv[1];
    if (gpctl[0] != '/') {
        static char abs_path[1024];
        char cwd[512];
        snprintf(abs_path, sizeof abs_path, "%s/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", gpctl);
        gpctl = abs_path;
    }
    gp_test_fixture(setup, NULL);
    GP_RUN_TIMEOUT(crash_install, 60);
    GP_RUN_TIMEOUT(crash_install_same_blob, 60);
    GP_RUN_TIMEOUT(crash_enable, 60);
    GP_RUN_TIMEOUT(crash_remove, 60);
    GP_RUN_TIMEOUT(crash_gc, 60);
    return gp_test_done();
}
