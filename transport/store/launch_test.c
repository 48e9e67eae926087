/* A stored plugin started through gp_store_launch_new and the real client:
 * the blob runs, the record's env reaches it and the host's does not
 * unless granted, and a changed blob is refused with both digests.
 * The plugin is examples/kv's kv-plugin (KV_PLUGIN_PROTO picks its wire). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <goplugin/client.h>
#include <goplugin/conn.h>
#include <goplugin/store.h>

#include "transport/testing/gp_test.h"

static char plugin[1024];
static char root[600];

static int setup(void)
{
    const char *tmp = getenv("TEST_TMPDIR");
    char base[512];
    snprintf(base, sizeof base, "%s/launch_test.XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(base))
        return 1;
    snprintf(root, sizeof root, "%s/root", base);
    unsetenv("KV_PLUGIN_PROTO");
    return 0;
}

static gp_store *install_kv(const char *const *env, unsigned protocols, const char *const *req)
{
    gp_store_open_opts o = {.root = root, .lock = true};
    gp_store *s = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_store_open(&o, &s, &st), GP_OK);
    if (!s)
        return NULL;
    gp_store_install_opts in = {.path = plugin,
                                .name = "kv",
                                .cookie_key = "BASIC_PLUGIN",
                                .cookie_value = "hello",
                                .protocols = protocols,
                                .env = env,
                                .required = req};
    GP_CHECK_ERR(gp_store_install(s, &in, NULL, &st), GP_OK);
    return s;
}

/* Start kv from the store; returns the protocol it speaks (NONE on
 * failure, with the code in *err and words in st). */
static gp_protocol start(gp_store *s, gp_err *err, gp_status *st)
{
    gp_store_record *r = NULL;
    gp_store_launch *l = NULL;
    gp_client *c = NULL;
    gp_conn *conn;
    gp_protocol p = GP_PROTO_NONE;
    *err = gp_store_get(s, "kv", &r, st);
    if (*err == GP_OK)
        *err = gp_store_launch_new(s, r, &l, st);
    if (*err == GP_OK) {
        gp_client_config cfg = *gp_store_launch_config(l);
        cfg.start_timeout_ms = (int)(20000 * gp_test_scale());
        *err = gp_client_new(&cfg, &c, st);
    }
    if (*err == GP_OK)
        *err = gp_client_connect(c, &conn, st);
    if (*err == GP_OK)
        *err = gp_conn_ping(conn, st);
    if (*err == GP_OK)
        p = gp_client_protocol(c);
    gp_client_free(c);
    gp_store_launch_free(l);
    gp_store_record_free(r);
    return p;
}

GP_TEST(stored_plugin_starts)
{
    gp_store *s = install_kv(NULL, GP_PROTO_GRPC, NULL);
    gp_err err;
    gp_status st;
    GP_CHECK_INT(start(s, &err, &st), ==, GP_PROTO_GRPC);
    if (err)
        GP_FAILF("start: %s", st.msg);
    gp_store_close(s);
}

GP_TEST(record_env_reaches_the_plugin)
{
    const char *env[] = {"KV_PLUGIN_PROTO=netrpc", NULL};
    gp_store *s = install_kv(env, GP_PROTO_NETRPC, NULL);
    gp_err err;
    gp_status st;
    GP_CHECK_INT(start(s, &err, &st), ==, GP_PROTO_NETRPC);
    if (err)
        GP_FAILF("start: %s", st.msg);
    gp_store_close(s);
}

GP_TEST(host_env_only_when_granted)
{
    const char *req[] = {"env:KV_PLUGIN_PROTO", NULL};
    gp_store *s = install_kv(NULL, GP_PROTO_GRPC | GP_PROTO_NETRPC, req);
    setenv("KV_PLUGIN_PROTO", "netrpc", 1);
    gp_err err;
    gp_status st;
    /* Not granted: the plugin does not see it and serves its default. */
    GP_CHECK_INT(start(s, &err, &st), ==, GP_PROTO_GRPC);
    GP_CHECK_ERR(gp_store_grant(s, "kv", req, &st), GP_OK);
    GP_CHECK_ERR(gp_store_enable(s, "kv", &st), GP_OK);
    GP_CHECK_INT(start(s, &err, &st), ==, GP_PROTO_NETRPC);
    if (err)
        GP_FAILF("start: %s", st.msg);
    gp_store_close(s);
}

GP_TEST(changed_blob_is_refused)
{
    gp_store *s = install_kv(NULL, GP_PROTO_GRPC, NULL);
    gp_store_record *r = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_store_get(s, "kv", &r, &st), GP_OK);
    if (!r)
        return;
    char blob[1200], cmd[1300], now[65] = "";
    gp_store_blob_path(s, r->digest, blob, sizeof blob);
    int fd = open(blob, O_WRONLY | O_APPEND);
    GP_CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    close(fd);
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", blob);
    FILE *f = popen(cmd, "r");
    GP_CHECK(f && fscanf(f, "%64s", now) == 1);
    if (f)
        pclose(f);
    gp_err err;
    GP_CHECK_INT(start(s, &err, &st), ==, GP_PROTO_NONE);
    GP_CHECK_ERR(err, GP_ECHECKSUM);
    GP_CHECK_CONTAINS(st.msg, r->digest);
    GP_CHECK_CONTAINS(st.msg, now);
    gp_store_record_free(r);
    gp_store_close(s);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "usage: launch_test PATH-OF-KV-PLUGIN\n");
        return 2;
    }
    if (argv[1][0] == '/') {
        snprintf(plugin, sizeof plugin, "%s", argv[1]);
    } else {
        char cwd[512];
        snprintf(plugin, sizeof plugin, "%s/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", argv[1]);
    }
    gp_test_fixture(setup, NULL);
    GP_RUN_TIMEOUT(stored_plugin_starts, 30);
    GP_RUN_TIMEOUT(record_env_reaches_the_plugin, 30);
    GP_RUN_TIMEOUT(host_env_only_when_granted, 30);
    GP_RUN_TIMEOUT(changed_blob_is_refused, 30);
    return gp_test_done();
}
