/* The harness's own parts: helper dispatch, error names, one process (and
 * group) per case, the small process helpers. */
#include "transport/testing/gp_test.h"

#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goplugin/err.h"

extern char **environ;

/* Prints its arguments, one a line. */
GP_HELPER(echo_args)
{
    for (int i = 0; i < argc; i++)
        printf("%s\n", argv[i]);
    return 7;
}

/* Runs argv, returns its exit status; its stdout into out. */
static int run(const char *const *argv, char *out, size_t cap)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return -1;
    }
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(p[0]);
    int st = gp_test_wait_child(pid, 5000);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

GP_TEST(helper_runs_with_its_arguments)
{
    char out[256];
    const char *const *argv = gp_test_helper_argv("echo-args", "a b", "c");
    GP_CHECK_STR(argv[0], gp_test_self_exe());
    GP_CHECK_INT(run(argv, out, sizeof out), ==, 7);
    GP_CHECK_STR(out, "echo-args\na b\nc\n");
    /* The C spelling works as well. */
    GP_CHECK_INT(run(gp_test_helper_argv("echo_args"), out, sizeof out), ==, 7);
    GP_CHECK_STR(out, "echo_args\n");
}

GP_TEST(unknown_helper_exits_2)
{
    char out[256];
    GP_CHECK_INT(run(gp_test_helper_argv("no-such-helper"), out, sizeof out), ==, 2);
    const char *none[] = {gp_test_self_exe(), "--gp-helper", NULL};
    GP_CHECK_INT(run(none, out, sizeof out), ==, 2);
}

GP_TEST(error_names)
{
    char buf[96];
    for (int e = 0; e < GP_ERR_COUNT_; e++) {
        GP_CHECK(gp__err_name(e) != NULL);
        GP_CHECK(strncmp(gp__err_name(e), "GP_", 3) == 0);
    }
    GP_CHECK_STR(gp__err_name(GP_ETIMEDOUT), "GP_ETIMEDOUT");
    GP_CHECK(gp__err_name(GP_ERR_COUNT_) == NULL);
    GP_CHECK(gp__err_name(-1) == NULL);
    GP_CHECK_STR(gp_test_err_text(GP_ETIMEDOUT, buf, sizeof buf), "GP_ETIMEDOUT (timed out)");
    GP_CHECK_STR(gp_test_err_text(-1, buf, sizeof buf), "-1 (not a gp_err)");
    GP_CHECK_ERR(GP_EOF, GP_EOF);
    GP_CHECK_ERR_NE(GP_EIO, GP_OK);
}

static int shared_counter;

/* Two cases: the second must not see the first one's change. */
GP_TEST(case_changes_a_global)
{
    GP_CHECK_INT(shared_counter, ==, 0);
    shared_counter = 42;
}

GP_TEST(case_runs_alone_in_its_group)
{
    GP_CHECK_INT(shared_counter, ==, 0);
    GP_CHECK_INT(getpgrp(), ==, getpid());
    GP_CHECK(gp_test_no_children());
    /* SIGCHLD is not left blocked for the case's own children. */
    sigset_t set;
    sigprocmask(SIG_SETMASK, NULL, &set);
    GP_CHECK(!sigismember(&set, SIGCHLD));
}

GP_TEST(child_helpers)
{
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    GP_CHECK(gp_test_alive(pid));
    GP_CHECK(!gp_test_no_children());
    GP_CHECK_INT(gp_test_wait_child(pid, 50), ==, -1);
    kill(pid, SIGKILL);
    int st = gp_test_wait_child(pid, 2000);
    GP_CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    gp_test_check_gone(pid);
    GP_CHECK(!gp_test_alive(pid));
    GP_CHECK(gp_test_no_children());

    pid = fork();
    if (pid == 0)
        _exit(3);
    GP_CHECK_INT(gp_test_reap(pid, 2000), ==, 3);
    pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    GP_CHECK_INT(gp_test_reap(pid, 50), ==, -1); /* and killed, reaped */
    gp_test_check_gone(pid);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(write_all_to_a_pipe)
{
    int p[2];
    GP_CHECK_INT(pipe(p), ==, 0);
    GP_CHECK_INT(gp_test_write_all(p[1], "abc", 3), ==, 0);
    char b[4] = "";
    GP_CHECK_INT(read(p[0], b, 3), ==, 3);
    GP_CHECK_STR(b, "abc");
    close(p[0]);
    close(p[1]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)getpid());
    size_t len = 0;
    char *cmd = gp_test_read_file(path, &len); /* a /proc file: size 0 */
    GP_CHECK(cmd != NULL && len > 0);
    GP_CHECK(cmd && cmd[len] == '\0');
    free(cmd);
    GP_CHECK(gp_test_read_file("/nonexistent/gp", &len) == NULL);
}

static int fixture_state;

static int fixture_up(void)
{
    fixture_state = 1;
    return 0;
}

static void fixture_down(void)
{
    fixture_state = 2;
}

GP_TEST(fixture_runs_before_the_case)
{
    GP_CHECK_INT(fixture_state, ==, 1);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(helper_runs_with_its_arguments);
    GP_RUN(unknown_helper_exits_2);
    GP_RUN(error_names);
    if (!getenv("GP_TEST_NOFORK")) { /* what the fork gives */
        GP_RUN(case_changes_a_global);
        GP_RUN(case_runs_alone_in_its_group);
    }
    GP_RUN(child_helpers);
    GP_RUN(write_all_to_a_pipe);
    gp_test_fixture(fixture_up, fixture_down);
    GP_RUN(fixture_runs_before_the_case);
    gp_test_fixture(NULL, NULL);
    /* The harness's own process never ran the fixture. */
    if (!getenv("GP_TEST_NOFORK"))
        GP_CHECK_INT(fixture_state, ==, 0);
    return gp_test_done();
}
