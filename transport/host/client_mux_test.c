/* go-plugin 1.6+'s broker multiplexing negotiation, host and plugin: the
 * host always sets PLUGIN_MULTIPLEX_GRPC (true or false, never what its own
 * environment had), refuses a gRPC plugin that does not confirm field 7
 * with go-plugin's words, and the C plugin answers field 7 as go-plugin's
 * server does. This binary re-executes itself as the plugins. */
#include <goplugin/client.h>
#include <goplugin/server.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"

#define COOKIE_KEY "GP_CLIENT_MUX_TEST"
#define COOKIE_VALUE "9c1d"
#define ABSENT_WORDS                                                                      \
    "client requested gRPC broker multiplexing but plugin does not support the feature; " \
    "for Go plugins, you will need to update the github.com/hashicorp/go-plugin "         \
    "dependency and recompile"

static char env_file[4096];

/* Record what the host set, so the test can read it back. */
static void record_env(void)
{
    const char *path = getenv("GP_MUX_TEST_OUT");
    if (!path)
        return;
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    const char *v = getenv("PLUGIN_MULTIPLEX_GRPC");
    fprintf(f, "%s", v ? v : "<unset>");
    fclose(f);
}

static int plugin_main(const char *mode)
{
    const char *cookie = getenv(COOKIE_KEY);
    if (!cookie || strcmp(cookie, COOKIE_VALUE) != 0)
        return 1;
    record_env();
    if (strncmp(mode, "line:", 5) == 0) {
        printf("%s\n", mode + 5);
        fflush(stdout);
        sleep(30);
        return 0;
    }
    static const gp_service noop = {.name = "noop"};
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = &noop,
        .nservices = 1,
    };
    return gp_serve(&cfg);
}

static gp_client_config config(const char *mode, bool mux)
{
    static const char *argv[5];
    static char modebuf[512];
    snprintf(modebuf, sizeof modebuf, "%s", mode);
    argv[0] = gp_test_self_exe();
    argv[1] = GP_TEST_HELPER_FLAG;
    argv[2] = "plugin";
    argv[3] = modebuf;
    argv[4] = NULL;
    static char envv[4200];
    snprintf(envv, sizeof envv, "GP_MUX_TEST_OUT=%s", env_file);
    static const char *env[2];
    env[0] = envv;
    env[1] = NULL;
    gp_client_config cfg = {
        .argv = argv,
        .env = env,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC | GP_PROTO_NETRPC,
        .start_timeout_ms = 5000,
        .kill_grace_ms = 2000,
        .grpc_broker_multiplex = mux,
    };
    return cfg;
}

static const char *seen_env(void)
{
    static char buf[64];
    buf[0] = 0;
    FILE *f = fopen(env_file, "r");
    if (!f)
        return "<no file>";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* Start a fake plugin printing `line`; returns the start result and leaves
 * the error words in errbuf. The client is freed. */
static gp_err start_line(const char *line, bool mux, char *errbuf, size_t cap)
{
    char mode[400];
    snprintf(mode, sizeof mode, "line:%s", line);
    unlink(env_file);
    gp_client_config cfg = config(mode, mux);
    gp_client *c = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    if (!c)
        return GP_EINVAL;
    gp_status st;
    gp_err rc = gp_client_start(c, &st);
    snprintf(errbuf, cap, "%s", rc ? st.msg : "");
    if (rc) /* a refused plugin is killed and reaped before the error returns */
        GP_CHECK(gp_client_exited(c));
    gp_client_free(c);
    return rc;
}

GP_TEST(host_always_sets_the_variable)
{
    char e[8192];
    /* An inherited "true" must not reach the plugin. */
    setenv("PLUGIN_MULTIPLEX_GRPC", "true", 1);
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|netrpc", false, e, sizeof e), ==, GP_OK);
    GP_CHECK_STR(seen_env(), "false");
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|netrpc", true, e, sizeof e), ==, GP_OK);
    GP_CHECK_STR(seen_env(), "true");
    unsetenv("PLUGIN_MULTIPLEX_GRPC");
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|netrpc", false, e, sizeof e), ==, GP_OK);
    GP_CHECK_STR(seen_env(), "false");
}

GP_TEST(host_refuses_unconfirmed_grpc_plugins)
{
    char e[8192];
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|grpc", true, e, sizeof e), ==, GP_EPROTO);
    GP_CHECK_CONTAINS(e, ABSENT_WORDS);
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|grpc|", true, e, sizeof e), ==, GP_EPROTO);
    GP_CHECK_CONTAINS(e, ABSENT_WORDS);
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|grpc||false", true, e, sizeof e), ==, GP_EPROTO);
    GP_CHECK_CONTAINS(e, "client requested gRPC broker multiplexing but plugin does not "
                         "support the feature");
    GP_CHECK(strstr(e, "recompile") == NULL);
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|grpc||maybe", true, e, sizeof e), ==, GP_EPROTO);
    GP_CHECK_CONTAINS(e, "error parsing \"maybe\" as a boolean for gRPC broker multiplexing "
                         "support");
    /* Confirmed (extra fields ignored, as go-plugin 1.8). */
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|grpc||true", true, e, sizeof e), ==, GP_OK);
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|grpc||1|extra", true, e, sizeof e), ==, GP_OK);
}

GP_TEST(field7_ignored_when_not_asked_or_netrpc)
{
    char e[8192];
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|grpc||maybe", false, e, sizeof e), ==, GP_OK);
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|grpc||false", false, e, sizeof e), ==, GP_OK);
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|netrpc", true, e, sizeof e), ==, GP_OK);
    GP_CHECK_INT(start_line("1|1|unix|/tmp/none|netrpc||maybe", true, e, sizeof e), ==, GP_OK);
}

GP_TEST(multiplex_with_reattach_is_a_config_error)
{
    gp_reattach_config ra = {.protocol = GP_PROTO_GRPC, .network = "unix", .address = "/tmp/none"};
    gp_client_config cfg = {
        .reattach = &ra,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC,
        .grpc_broker_multiplex = true,
    };
    gp_client *c = NULL;
    gp_status st;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "gRPC broker multiplexing is not supported with Reattach config");
}

/* The real C plugin: an inherited "true" does not switch it, and the host
 * connects. */
static void inherited_session(void)
{
    gp_client_config cfg = config("serve", false);
    gp_client *c = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_conn *conn = NULL;
    gp_status cst;
    gp_err rc = gp_client_connect(c, &conn, &cst);
    if (rc)
        GP_FAILF("connect: %s", cst.msg);
    GP_CHECK_STR(seen_env(), "false");
    gp_client_free(c);
}

GP_TEST(c_plugin_with_inherited_true)
{
    setenv("PLUGIN_MULTIPLEX_GRPC", "true", 1);
    inherited_session(); /* the first one starts gRPC core (its descriptors stay) */
    int fds = gp_test_count_fds();
    inherited_session();
    GP_CHECK_FDS_AT_MOST(fds);
    unsetenv("PLUGIN_MULTIPLEX_GRPC");
}

/* The real C plugin asked to multiplex: it confirms field 7 and the
 * session works over one yamux connection. */
GP_TEST(c_plugin_multiplexed_session)
{
    gp_client_config cfg = config("serve", true);
    gp_client *c = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_conn *conn = NULL;
    gp_status cst;
    gp_err rc = gp_client_connect(c, &conn, &cst);
    if (rc)
        GP_FAILF("connect: %s", cst.msg);
    GP_CHECK_STR(seen_env(), "true");
    gp_status st = {0};
    /* A second health check: a new gRPC call on the multiplexed session. */
    if (conn)
        GP_CHECK_INT(gp_conn_ping(conn, &st), ==, GP_OK);
    gp_client_free(c);
}

/* A multiplexing plugin whose host never connects gives up (go-plugin: 5 s)
 * and exits instead of waiting for ever. */
GP_TEST(c_plugin_gives_up_without_a_host)
{
    gp_client_config cfg = config("serve", true);
    gp_client *c = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_start(c, NULL), GP_OK); /* no connect */
    char why[128] = "";
    GP_CHECK(gp_client_wait_exit(c, 9000, why, sizeof why));
    GP_CHECK_STR(why, "exit status 0");
    gp_client_free(c);
}

/* The plugin: argv[1] is the mode ("serve", or "line:<handshake line>"). */
GP_HELPER(plugin)
{
    return plugin_main(argc > 1 ? argv[1] : "");
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    const char *tmp = getenv("TEST_TMPDIR");
    snprintf(env_file, sizeof env_file, "%s/mux_env.%d", tmp ? tmp : "/tmp", (int)getpid());
    GP_RUN(host_always_sets_the_variable);
    GP_RUN(host_refuses_unconfirmed_grpc_plugins);
    GP_RUN(field7_ignored_when_not_asked_or_netrpc);
    GP_RUN(multiplex_with_reattach_is_a_config_error);
    GP_RUN(c_plugin_with_inherited_true);
    GP_RUN(c_plugin_multiplexed_session);
    /* The plugin waits go-plugin's 5 s for its host before it gives up. */
    GP_RUN_TIMEOUT(c_plugin_gives_up_without_a_host, 15);
    unlink(env_file);
    return gp_test_done();
}
