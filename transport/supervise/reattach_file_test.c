/* Reattach files: exact text, round trips, atomic writes, strict parsing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <goplugin/supervise.h>

#include "transport/testing/gp_test.h"

static char dir[4096];

static void make_dir(void)
{
    const char *base = getenv("TEST_TMPDIR");
    snprintf(dir, sizeof dir, "%s/reattachXXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir))
        GP_FAILF("mkdtemp %s: %s", dir, strerror(errno));
}

static int count_entries(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(dd);
    return n;
}

GP_TEST(format_is_go_shaped)
{
    gp_reattach_config rc = {.protocol = GP_PROTO_GRPC,
                             .protocol_version = 3,
                             .pid = 4242,
                             .network = "unix",
                             .address = "/tmp/plugin123"};
    char *text;
    gp_status st = {0};
    GP_CHECK_ERR(gp_reattach_format(&rc, &text, &st), GP_OK);
    GP_CHECK_STR(text, "{\n"
                       "  \"Protocol\": \"grpc\",\n"
                       "  \"ProtocolVersion\": 3,\n"
                       "  \"Addr\": {\n"
                       "    \"Network\": \"unix\",\n"
                       "    \"String\": \"/tmp/plugin123\"\n"
                       "  },\n"
                       "  \"Pid\": 4242,\n"
                       "  \"Test\": false\n"
                       "}\n");
    free(text);
}

GP_TEST(write_read_round_trip)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/plugin.json", dir);
    gp_reattach_config cases[] = {
        {GP_PROTO_GRPC, 1, 4242, "unix", "/tmp/plugin123", false, 0},
        {GP_PROTO_NETRPC, 0, 7, "tcp", "127.0.0.1:10001", true, 987654321012},
        {GP_PROTO_NONE, 2, 0, "tcp", "[::1]:65535", false, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gp_status st = {0};
        gp_reattach_config got;
        GP_CHECK_ERR(gp_reattach_file_write(path, &cases[i], &st), GP_OK);
        GP_CHECK_ERR(gp_reattach_file_read(path, &got, &st), GP_OK);
        GP_CHECK_INT(got.protocol, ==, cases[i].protocol);
        GP_CHECK_INT(got.protocol_version, ==, cases[i].protocol_version);
        GP_CHECK_INT(got.pid, ==, cases[i].pid);
        GP_CHECK_INT(got.test, ==, cases[i].test);
        GP_CHECK(got.start_time == cases[i].start_time);
        GP_CHECK_STR(got.network, cases[i].network);
        GP_CHECK_STR(got.address, cases[i].address);
        gp_reattach_config_clear(&got);
    }
    struct stat sb;
    GP_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    /* Only the target: no temp file left behind. */
    GP_CHECK_INT(count_entries(dir), ==, 1);
    unlink(path);
}

GP_TEST(write_replaces_by_rename)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/swap.json", dir);
    gp_reattach_config rc = {GP_PROTO_GRPC, 1, 1, "unix", "/a", false, 0};
    gp_status st = {0};
    GP_CHECK_ERR(gp_reattach_file_write(path, &rc, &st), GP_OK);
    /* A reader holding the old file keeps the old contents: the new one is
     * a different inode, never written in place. */
    int old = open(path, O_RDONLY);
    struct stat a, b;
    fstat(old, &a);
    rc.address = "/b";
    GP_CHECK_ERR(gp_reattach_file_write(path, &rc, &st), GP_OK);
    GP_CHECK(stat(path, &b) == 0);
    GP_CHECK(a.st_ino != b.st_ino);
    char buf[512] = {0};
    GP_CHECK(read(old, buf, sizeof buf - 1) > 0);
    GP_CHECK_CONTAINS(buf, "\"/a\"");
    close(old);
    unlink(path);
}

GP_TEST(write_errors_leave_nothing)
{
    gp_reattach_config rc = {GP_PROTO_GRPC, 1, 1, "unix", "/a", false, 0};
    gp_status st = {0};
    char path[4200];
    snprintf(path, sizeof path, "%s/no/such/dir/x.json", dir);
    GP_CHECK_ERR(gp_reattach_file_write(path, &rc, &st), GP_ESYS);
    GP_CHECK_CONTAINS(st.msg, "create temp file in");
    GP_CHECK_CONTAINS(st.msg, "No such file or directory");
    snprintf(path, sizeof path, "%s/", dir);
    GP_CHECK_ERR(gp_reattach_file_write(path, &rc, &st), GP_EINVAL);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    rc.network = "udp";
    GP_CHECK_ERR(gp_reattach_file_write(path, &rc, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "network \"udp\", expected unix or tcp");
    rc.network = "tcp";
    rc.address = "localhost";
    GP_CHECK_ERR(gp_reattach_file_write(path, &rc, &st), GP_EINVAL);
    GP_CHECK_INT(count_entries(dir), ==, 0);
}

GP_TEST(read_errors)
{
    gp_reattach_config got;
    gp_status st = {0};
    char path[4200];
    snprintf(path, sizeof path, "%s/missing.json", dir);
    GP_CHECK_ERR(gp_reattach_file_read(path, &got, &st), GP_ENOTFOUND);
    GP_CHECK_CONTAINS(st.msg, "does not exist");
    GP_CHECK_ERR(gp_reattach_file_read(dir, &got, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "not a regular file");
    /* Oversize file. */
    snprintf(path, sizeof path, "%s/big.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"Protocol\":\"grpc\",\"Addr\":{\"Network\":\"unix\",\"String\":\"", f);
    for (int i = 0; i < 70000; i++)
        fputc('a', f);
    fputs("\"},\"Pid\":1}", f);
    fclose(f);
    GP_CHECK_ERR(gp_reattach_file_read(path, &got, &st), GP_EMSGSIZE);
    GP_CHECK_CONTAINS(st.msg, "reattach: ");
    GP_CHECK_CONTAINS(st.msg, "big.json: 65537 bytes, at most 65536 allowed");
    unlink(path);
}

static void expect_bad(const char *json, gp_err want, const char *words)
{
    gp_reattach_config got;
    gp_status st = {0};
    gp_err rc = gp_reattach_parse(json, strlen(json), &got, &st);
    if (rc != want)
        GP_FAILF("%s: expected error %d, got %d (%s)", json, want, rc, st.msg);
    if (!strstr(st.msg, words))
        GP_FAILF("%s: expected words \"%s\", got \"%s\"", json, words, st.msg);
    GP_CHECK(got.network == NULL && got.address == NULL);
}

#define ADDR "\"Addr\":{\"Network\":\"unix\",\"String\":\"/p\"}"

GP_TEST(strict_parsing)
{
    expect_bad("", GP_EPROTO, "not a JSON object");
    expect_bad("nope", GP_EPROTO, "not a JSON object");
    expect_bad("[1]", GP_EPROTO, "top level: expected an object, got \"[1]\"");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":1} trailing", GP_EPROTO, "not a JSON");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":1,\"pid\":2}", GP_EPROTO,
               "unknown key \"pid\"");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":1,\"Pid\":2}", GP_EPROTO, "duplicate");
    expect_bad("{\"Protocol\":\"http\"," ADDR ",\"Pid\":1}", GP_EPROTO,
               "\"Protocol\": expected \"grpc\", \"netrpc\" or \"\", got \"\\\"http\\\"\"");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":\"12\"}", GP_EPROTO,
               "\"Pid\": expected an integer");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":1.5}", GP_EPROTO, "\"Pid\": expected");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":-1}", GP_EPROTO, "\"Pid\": expected");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":99999999999}", GP_EPROTO, "\"Pid\"");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":1,\"ProtocolVersion\":-3}", GP_EPROTO,
               "\"ProtocolVersion\"");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":1,\"Test\":\"yes\"}", GP_EPROTO,
               "\"Test\": expected true or false");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":1,\"PidStartTime\":-1}", GP_EPROTO,
               "\"PidStartTime\": expected an integer");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":1,\"PidStartTime\":\"5\"}", GP_EPROTO,
               "\"PidStartTime\"");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR ",\"Pid\":1,\"PidStartTime\":1e30}", GP_EPROTO,
               "\"PidStartTime\"");
    expect_bad("{\"Protocol\":\"grpc\",\"Pid\":1}", GP_EPROTO, "missing \"Addr\"");
    expect_bad("{" ADDR ",\"Pid\":1}", GP_EPROTO, "missing \"Protocol\"");
    expect_bad("{\"Protocol\":\"grpc\"," ADDR "}", GP_EPROTO, "missing \"Pid\"");
    expect_bad("{\"Protocol\":\"grpc\",\"Addr\":\"/p\",\"Pid\":1}", GP_EPROTO,
               "\"Addr\": expected an object");
    expect_bad("{\"Protocol\":\"grpc\",\"Addr\":{\"Network\":\"unix\"},\"Pid\":1}", GP_EPROTO,
               "\"Addr\" is missing \"String\"");
    expect_bad("{\"Protocol\":\"grpc\",\"Addr\":{\"Name\":\"/p\",\"Net\":\"unix\"},\"Pid\":1}",
               GP_EPROTO, "unknown key \"Name\" in \"Addr\"");
    expect_bad("{\"Protocol\":\"grpc\",\"Addr\":{\"Network\":\"udp\",\"String\":\"x:1\"},"
               "\"Pid\":1}",
               GP_EPROTO, "\"Addr.Network\": expected \"unix\" or \"tcp\"");
    expect_bad("{\"Protocol\":\"grpc\",\"Addr\":{\"Network\":\"tcp\",\"String\":\"host\"},"
               "\"Pid\":1}",
               GP_EPROTO, "\"host:port\" for tcp");
    expect_bad("{\"Protocol\":\"grpc\",\"Addr\":{\"Network\":\"unix\",\"String\":\"\"},"
               "\"Pid\":1}",
               GP_EPROTO, "non-empty address");
    expect_bad("{\"Protocol\":\"grpc\",\"Addr\":{\"Network\":\"unix\",\"String\":\"a\\u0000b\"},"
               "\"Pid\":1}",
               GP_EPROTO, "not a JSON object");
}

GP_TEST(every_truncation_fails)
{
    const char *good = "{\"Protocol\":\"grpc\",\"ProtocolVersion\":1," ADDR ",\"Pid\":4242,"
                       "\"Test\":false}";
    size_t n = strlen(good);
    gp_reattach_config got;
    gp_status st = {0};
    GP_CHECK_ERR(gp_reattach_parse(good, n, &got, &st), GP_OK);
    gp_reattach_config_clear(&got);
    for (size_t cut = 0; cut < n; cut++) {
        st.msg[0] = 0;
        if (gp_reattach_parse(good, cut, &got, &st) == GP_OK)
            GP_FAILF("prefix of %zu bytes parsed", cut);
        if (!st.msg[0])
            GP_FAILF("prefix of %zu bytes: no words", cut);
    }
}

GP_TEST(go_plugin_101_minimal_shape)
{
    /* 1.0.1's struct has Protocol, Addr and Pid only. */
    const char *j = "{\"Protocol\":\"netrpc\",\"Addr\":{\"Network\":\"tcp\","
                    "\"String\":\"127.0.0.1:1234\"},\"Pid\":99}";
    gp_reattach_config got;
    gp_status st = {0};
    GP_CHECK_ERR(gp_reattach_parse(j, strlen(j), &got, &st), GP_OK);
    GP_CHECK_INT(got.protocol, ==, GP_PROTO_NETRPC);
    GP_CHECK_INT(got.protocol_version, ==, 0);
    GP_CHECK_INT(got.pid, ==, 99);
    GP_CHECK(!got.test);
    GP_CHECK_STR(got.address, "127.0.0.1:1234");
    gp_reattach_config_clear(&got);
}

int main(void)
{
    make_dir();
    GP_RUN(format_is_go_shaped);
    GP_RUN(write_read_round_trip);
    GP_RUN(write_replaces_by_rename);
    GP_RUN(write_errors_leave_nothing);
    GP_RUN(read_errors);
    GP_RUN(strict_parsing);
    GP_RUN(every_truncation_fails);
    GP_RUN(go_plugin_101_minimal_shape);
    rmdir(dir);
    return gp_test_done();
}
