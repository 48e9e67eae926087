/* Tests for gp_serve's pure decisions (transport/serve_config.h). */
#include "transport/plugin/serve_config.h"

#include <string.h>

#include "transport/testing/gp_test.h"

static char err[1024], warn[512];

static const gp_service svc_a[] = {{.name = "kv"}};
static const gp_service svc_b[] = {{.name = "kv"}, {.name = "counter"}};
static const gp_service svc_c[] = {{.name = "kv3"}};

GP_TEST(cookie_matches)
{
    gp_handshake_config hs = {1, "BASIC_PLUGIN", "hello"};
    GP_CHECK_ERR(gp__serve_check_cookie(&hs, "hello", err, sizeof err), GP_OK);
    GP_CHECK_STR(err, "");
}

GP_TEST(cookie_missing_or_wrong)
{
    gp_handshake_config hs = {1, "BASIC_PLUGIN", "hello"};
    GP_CHECK_ERR(gp__serve_check_cookie(&hs, NULL, err, sizeof err), GP_ESTATE);
    GP_CHECK_CONTAINS(err, "This program is a plugin: it is not meant to be run directly.\n");
    GP_CHECK(err[strlen(err) - 1] == '\n');
    GP_CHECK_ERR(gp__serve_check_cookie(&hs, "", err, sizeof err), GP_ESTATE);
    GP_CHECK_ERR(gp__serve_check_cookie(&hs, "hello ", err, sizeof err), GP_ESTATE);
    GP_CHECK_ERR(gp__serve_check_cookie(&hs, "HELLO", err, sizeof err), GP_ESTATE);
}

GP_TEST(cookie_misconfigured)
{
    gp_handshake_config hs = {1, "", "hello"};
    GP_CHECK_ERR(gp__serve_check_cookie(&hs, "hello", err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "misconfigured: its magic cookie key or value is empty");
    hs = (gp_handshake_config){1, "K", ""};
    /* An empty value must not match an empty/unset variable. */
    GP_CHECK_ERR(gp__serve_check_cookie(&hs, "", err, sizeof err), GP_EINVAL);
    hs = (gp_handshake_config){1, NULL, "v"};
    GP_CHECK_ERR(gp__serve_check_cookie(&hs, "v", err, sizeof err), GP_EINVAL);
    GP_CHECK_ERR(gp__serve_check_cookie(NULL, "v", err, sizeof err), GP_EINVAL);
}

GP_TEST(choose_single_version)
{
    gp_serve_config cfg = {.handshake = {1, "K", "V"}, .services = svc_a, .nservices = 1};
    gp__serve_choice c;
    GP_CHECK_ERR(gp__serve_choose(&cfg, "1", &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK_INT(c.version, ==, 1);
    GP_CHECK(c.common);
    GP_CHECK(c.services == svc_a && c.nservices == 1);
    /* No env (an old host): still answer with what we have. */
    GP_CHECK_ERR(gp__serve_choose(&cfg, NULL, &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK_INT(c.version, ==, 1);
    GP_CHECK(!c.common);
    GP_CHECK_ERR(gp__serve_choose(&cfg, "2,3", &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK_INT(c.version, ==, 1);
    GP_CHECK(!c.common);
}

GP_TEST(choose_versioned_sets)
{
    const gp_plugin_set sets[] = {{2, svc_b, 2}, {3, svc_c, 1}};
    gp_serve_config cfg = {.handshake = {1, "K", "V"},
                           .services = svc_a,
                           .nservices = 1,
                           .versions = sets,
                           .nversions = 2};
    gp__serve_choice c;
    /* Highest common wins, whatever the env order. */
    GP_CHECK_ERR(gp__serve_choose(&cfg, "5,3,2,1", &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK_INT(c.version, ==, 3);
    GP_CHECK(c.services == svc_c);
    GP_CHECK_ERR(gp__serve_choose(&cfg, "1,2", &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK_INT(c.version, ==, 2);
    GP_CHECK(c.services == svc_b && c.nservices == 2);
    /* None in common: our lowest, which is handshake.protocol_version's set. */
    GP_CHECK_ERR(gp__serve_choose(&cfg, "9", &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK_INT(c.version, ==, 1);
    GP_CHECK(c.services == svc_a);
    GP_CHECK(!c.common);
    /* Bad env entries are skipped with a warning. */
    GP_CHECK_ERR(gp__serve_choose(&cfg, "x,2", &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK_INT(c.version, ==, 2);
    GP_CHECK_CONTAINS(warn, "\"x\"");
}

GP_TEST(choose_main_set_wins_same_version)
{
    const gp_plugin_set sets[] = {{1, svc_b, 2}};
    gp_serve_config cfg = {.handshake = {1, "K", "V"},
                           .services = svc_a,
                           .nservices = 1,
                           .versions = sets,
                           .nversions = 1};
    gp__serve_choice c;
    GP_CHECK_ERR(gp__serve_choose(&cfg, "1", &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK(c.services == svc_a);
}

GP_TEST(choose_only_versions)
{
    const gp_plugin_set sets[] = {{4, svc_b, 2}, {2, svc_c, 1}};
    gp_serve_config cfg = {.handshake = {0, "K", "V"}, .versions = sets, .nversions = 2};
    gp__serve_choice c;
    GP_CHECK_ERR(gp__serve_choose(&cfg, "", &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK_INT(c.version, ==, 2);
    GP_CHECK(c.services == svc_c);
    GP_CHECK_ERR(gp__serve_choose(&cfg, "4", &c, warn, sizeof warn, err, sizeof err), GP_OK);
    GP_CHECK_INT(c.version, ==, 4);
}

GP_TEST(choose_bad_configs)
{
    gp__serve_choice c;
    gp_serve_config none = {.handshake = {1, "K", "V"}};
    GP_CHECK_ERR(gp__serve_choose(&none, "1", &c, warn, sizeof warn, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "nothing to serve");
    gp_serve_config nulls = {.handshake = {1, "K", "V"}, .nservices = 2};
    GP_CHECK_ERR(gp__serve_choose(&nulls, "1", &c, warn, sizeof warn, err, sizeof err), GP_EINVAL);
    const gp_plugin_set bad[] = {{2, NULL, 1}};
    gp_serve_config badset = {.handshake = {1, "K", "V"}, .versions = bad, .nversions = 1};
    GP_CHECK_ERR(gp__serve_choose(&badset, "1", &c, warn, sizeof warn, err, sizeof err), GP_EINVAL);
    GP_CHECK_ERR(gp__serve_choose(NULL, "1", &c, warn, sizeof warn, err, sizeof err), GP_EINVAL);
}

GP_TEST(transport_choice)
{
    gp_serve_config cfg = {.handshake = {1, "K", "V"}};
    gp_protocol p;
    const char *net;
    GP_CHECK_ERR(gp__serve_transport(&cfg, &p, &net, err, sizeof err), GP_OK);
    GP_CHECK_INT(p, ==, GP_PROTO_GRPC);
    GP_CHECK_STR(net, "unix");
    cfg.network = "tcp";
    cfg.protocol = GP_PROTO_GRPC;
    GP_CHECK_ERR(gp__serve_transport(&cfg, &p, &net, err, sizeof err), GP_OK);
    GP_CHECK_STR(net, "tcp");
    cfg.network = "";
    GP_CHECK_ERR(gp__serve_transport(&cfg, &p, &net, err, sizeof err), GP_OK);
    GP_CHECK_STR(net, "unix");
    cfg.network = "udp";
    GP_CHECK_ERR(gp__serve_transport(&cfg, &p, &net, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "gp_serve: unknown network \"udp\" (expected unix or tcp)");
    cfg.network = NULL;
    cfg.limits.broker_wait_ms = -5;
    GP_CHECK_ERR(gp__serve_transport(&cfg, &p, &net, err, sizeof err), GP_EINVAL);
    GP_CHECK_STR(err, "gp_serve: limits: expected fields >= 0 (0 = default)");
    cfg.limits.broker_wait_ms = 0;
    cfg.protocol = GP_PROTO_NETRPC;
    GP_CHECK_ERR(gp__serve_transport(&cfg, &p, &net, err, sizeof err), GP_OK);
    GP_CHECK_INT(p, ==, GP_PROTO_NETRPC);
    GP_CHECK_STR(net, "unix");
    cfg.protocol = (gp_protocol)3;
    GP_CHECK_ERR(gp__serve_transport(&cfg, &p, &net, err, sizeof err), GP_EINVAL);
}

int main(void)
{
    GP_RUN(cookie_matches);
    GP_RUN(cookie_missing_or_wrong);
    GP_RUN(cookie_misconfigured);
    GP_RUN(choose_single_version);
    GP_RUN(choose_versioned_sets);
    GP_RUN(choose_main_set_wins_same_version);
    GP_RUN(choose_only_versions);
    GP_RUN(choose_bad_configs);
    GP_RUN(transport_choice);
    return gp_test_done();
}
