/* gp_client_exit_info against real plugins (this binary re-executed, as a
 * gp_serve gRPC plugin or a bare handshake line): a clean exit after our
 * Shutdown, an exit 3 of its own, a SIGKILL from outside, our own SIGKILL
 * after the grace period, an abort, and a reattached plugin (no status).
 * Only the middle three are "unexpected", which is what kv-host and
 * counter-host report. */
#include <goplugin/client.h>
#include <goplugin/server.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/testing/gp_test.h"

#define COOKIE_KEY "GP_CLIENT_EXIT_TEST"
#define COOKIE_VALUE "e71f"

static const char *then_mode, *then_trigger;

/* The plugin's own end, once the file then_trigger exists (the test makes
 * it after connecting: however slow the machine, the host is connected). */
static void *end_later(void *arg)
{
    (void)arg;
    while (access(then_trigger, F_OK) != 0)
        usleep(10000);
    if (strcmp(then_mode, "exit3") == 0)
        _exit(3); /* no atexit, no leak check: the code is what we test */
    if (strcmp(then_mode, "abort") == 0) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none); /* no core file to write */
        abort();
    }
    return NULL;
}

/* A gp_serve plugin; argv[1]: "serve" (ends when asked), "exit3" or
 * "abort" (ends by itself once the file argv[2] exists). */
GP_HELPER(plugin)
{
    then_mode = argc > 1 ? argv[1] : "serve";
    then_trigger = argc > 2 ? argv[2] : "/nonexistent";
    pthread_t t;
    if (strcmp(then_mode, "serve") != 0) {
        if (pthread_create(&t, NULL, end_later, NULL) != 0)
            return 1;
        pthread_detach(t);
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

/* A handshake line, then deaf to SIGTERM: only our SIGKILL ends it. */
GP_HELPER(stubborn)
{
    signal(SIGTERM, SIG_IGN);
    const char line[] = "1|1|tcp|127.0.0.1:1|grpc\n";
    gp_test_write_all(1, line, sizeof line - 1);
    sleep(60);
    return 0;
}

static gp_client_config config(const char *const *argv)
{
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC,
        .start_timeout_ms = 10000,
        .kill_grace_ms = 3000,
        .logger = {.level = GP_LOG_OFF},
    };
    return cfg;
}

static char trigger[600];

/* Let a connected "exit3" / "abort" plugin end. */
static void pull_trigger(void)
{
    FILE *f = fopen(trigger, "w");
    GP_CHECK(f != NULL);
    if (f)
        fclose(f);
}

static gp_client *connected(const char *mode)
{
    const char *base = getenv("TEST_TMPDIR");
    snprintf(trigger, sizeof trigger, "%s/gp_exit_trigger.%d", base ? base : "/tmp", (int)getpid());
    unlink(trigger);
    gp_client_config cfg = config(gp_test_helper_argv("plugin", mode, trigger));
    gp_client *c = NULL;
    gp_conn *conn;
    gp_status st;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    if (gp_client_connect(c, &conn, &st) != GP_OK)
        GP_FAILF("connect: %s", st.msg);
    return c;
}

static gp_exit_info info(gp_client *c)
{
    gp_exit_info e;
    gp_status st;
    memset(&e, 0x5a, sizeof e); /* every field must be written */
    GP_CHECK_ERR(gp_client_exit_info(c, &e, &st), GP_OK);
    GP_CHECK_STR(st.msg, "");
    return e;
}

static void check_words(const gp_exit_info *e, const char *want)
{
    char words[96];
    gp_exit_info_describe(e, words, sizeof words);
    GP_CHECK_STR(words, want);
}

GP_TEST(clean_exit_after_our_shutdown)
{
    gp_client *c = connected("serve");
    gp_exit_info e = info(c);
    GP_CHECK(!e.exited && !e.reattached && e.code == -1 && e.signal == 0 && !e.killed_by_us);
    GP_CHECK(!gp_exit_info_unexpected(&e));
    check_words(&e, "running");
    gp_client_kill(c); /* graceful Shutdown: gp_serve returns 0 */
    e = info(c);
    GP_CHECK(e.exited && !e.reattached && e.code == 0 && e.signal == 0 && !e.killed_by_us);
    GP_CHECK(!gp_exit_info_unexpected(&e));
    check_words(&e, "exit status 0");
    gp_client_free(c);
}

GP_TEST(exit_code_of_its_own)
{
    gp_client *c = connected("exit3");
    pull_trigger();
    GP_CHECK(gp_client_wait_exit(c, 10000, NULL, 0));
    gp_exit_info e = info(c);
    GP_CHECK(e.exited && e.code == 3 && e.signal == 0 && !e.killed_by_us);
    GP_CHECK(gp_exit_info_unexpected(&e));
    check_words(&e, "exit status 3");
    gp_client_kill(c); /* nothing left to kill: the status stays */
    e = info(c);
    GP_CHECK(e.code == 3 && !e.killed_by_us);
    gp_client_free(c);
    unlink(trigger);
}

GP_TEST(sigkill_from_outside)
{
    gp_client *c = connected("serve");
    GP_CHECK_INT(kill(gp_client_pid(c), SIGKILL), ==, 0);
    GP_CHECK(gp_client_wait_exit(c, 10000, NULL, 0));
    gp_client_kill(c);
    gp_exit_info e = info(c);
    GP_CHECK(e.exited && e.code == -1 && e.signal == SIGKILL && !e.killed_by_us);
    GP_CHECK(gp_exit_info_unexpected(&e));
    check_words(&e, "killed by signal 9 (Killed)");
    gp_client_free(c);
}

GP_TEST(our_sigkill_after_the_grace_period)
{
    gp_client_config cfg = config(gp_test_helper_argv("stubborn"));
    cfg.kill_grace_ms = 200;
    gp_client *c;
    gp_status st;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    if (gp_client_start(c, &st) != GP_OK) /* no connect: kill sends SIGTERM first */
        GP_FAILF("start: %s", st.msg);
    gp_client_kill(c);
    gp_exit_info e = info(c);
    GP_CHECK(e.exited && e.code == -1 && e.signal == SIGKILL && e.killed_by_us);
    GP_CHECK(!gp_exit_info_unexpected(&e));
    check_words(&e, "killed by signal 9 (Killed), sent by us");
    gp_client_free(c);
}

GP_TEST(abort_is_a_crash)
{
    gp_client *c = connected("abort");
    pull_trigger();
    GP_CHECK(gp_client_wait_exit(c, 10000, NULL, 0));
    gp_exit_info e = info(c);
    GP_CHECK(e.exited && e.code == -1 && e.signal == SIGABRT && !e.killed_by_us);
    GP_CHECK(gp_exit_info_unexpected(&e));
    check_words(&e, "killed by signal 6 (Aborted)");
    gp_client_free(c);
    unlink(trigger);
}

GP_TEST(reattached_has_no_status)
{
    gp_client_config cfg = config(gp_test_helper_argv("plugin", "serve"));
    cfg.detached = true;
    gp_client *c;
    gp_conn *conn;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_connect(c, &conn, NULL), GP_OK);
    pid_t pid = gp_client_pid(c);
    gp_reattach_config ra;
    GP_CHECK_ERR(gp_client_reattach_config(c, &ra), GP_OK);
    char network[16], address[256];
    snprintf(network, sizeof network, "%s", ra.network);
    snprintf(address, sizeof address, "%s", ra.address);
    ra.network = network;
    ra.address = address;
    gp_client_free(c); /* let go: still running */

    gp_client_config rcfg = {.reattach = &ra,
                             .allowed_protocols = GP_PROTO_GRPC,
                             .kill_grace_ms = 3000,
                             .logger = {.level = GP_LOG_OFF}};
    GP_CHECK_ERR(gp_client_new(&rcfg, &c, NULL), GP_OK);
    GP_CHECK_ERR(gp_client_connect(c, &conn, NULL), GP_OK);
    gp_exit_info e = info(c);
    GP_CHECK(!e.exited && e.reattached && e.code == -1);
    gp_client_kill(c);
    e = info(c);
    GP_CHECK(e.exited && e.reattached && e.code == -1 && e.signal == 0);
    GP_CHECK(!gp_exit_info_unexpected(&e));
    check_words(&e, "exited");
    gp_client_free(c);
    /* Still our child (we forked it): its status, read the plain way. */
    int status = gp_test_wait_child(pid, 5000);
    GP_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

GP_TEST(bad_arguments)
{
    gp_exit_info e;
    gp_status st;
    GP_CHECK_ERR(gp_client_exit_info(NULL, &e, &st), GP_EINVAL);
    GP_CHECK(!e.exited && e.code == -1);
    GP_CHECK_ERR(gp_client_exit_info(NULL, NULL, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "out");
    GP_CHECK(!gp_exit_info_unexpected(NULL));
    /* Made but never started: not running, nothing exited. */
    gp_client_config cfg = config(gp_test_helper_argv("plugin", "serve"));
    gp_client *c;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    e = info(c);
    GP_CHECK(!e.exited && !gp_exit_info_unexpected(&e));
    gp_client_free(c);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(clean_exit_after_our_shutdown);
    GP_RUN(exit_code_of_its_own);
    GP_RUN(sigkill_from_outside);
    GP_RUN(our_sigkill_after_the_grace_period);
    GP_RUN(abort_is_a_crash);
    GP_RUN(reattached_has_no_status);
    GP_RUN(bad_arguments);
    GP_CHECK(gp_test_no_children());
    return gp_test_done();
}
