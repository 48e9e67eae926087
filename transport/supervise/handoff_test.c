/* The hand-off between real processes: this binary re-executes itself
 * (one GP_HELPER per behaviour) to play the child. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <goplugin/supervise.h>

#include "transport/supervise/fdutil.h"
#include "transport/supervise/handoff.h"
#include "transport/testing/gp_test.h"

extern char **environ;

static const uint8_t SECRET[] = {'k', '3', 'y', 0, 0xff, '-', 'Q', 'z'};
#define BIG (1u << 20)

/* The words of the last hand-off call. Every case and every helper runs in
 * a process of its own (transport/testing), so one is enough. */
static gp_status gs;

/* ---- the children ---- */

GP_HELPER(check)
{
    gp_handoff_child *hc;
    gp_err rc = gp_handoff_child_open(&hc, 5000, &gs);
    if (rc) {
        gp_handoff_child_failed(hc, gs.msg, NULL);
        gp_handoff_child_free(hc);
        return 1;
    }
    char why[256] = "";
    const char *n = gp_handoff_child_get(hc, "expect_n");
    const char *big = gp_handoff_child_get(hc, "big");
    uint8_t sec[64];
    size_t seclen = 0;
    if (!n || strtoul(n, NULL, 10) != gp_handoff_child_count(hc))
        snprintf(why, sizeof why, "count %zu, expect_n %s", gp_handoff_child_count(hc),
                 n ? n : "missing");
    else if (big && strlen(big) != BIG)
        snprintf(why, sizeof why, "big is %zu bytes", strlen(big));
    else if (gp_handoff_child_take_secret(hc, sec, sizeof sec, &seclen, &gs))
        snprintf(why, sizeof why, "take_secret: %.200s", gs.msg);
    else if (seclen != sizeof SECRET || memcmp(sec, SECRET, seclen) != 0)
        snprintf(why, sizeof why, "secret mismatch (%zu bytes)", seclen);
    else if (getenv(GP_HANDOFF_ENV_FD))
        snprintf(why, sizeof why, "GP_HANDOFF_FD still in the environment");
    else if (fcntl(3, F_GETFD) >= 0)
        snprintf(why, sizeof why, "data fd 3 still open after open");
    for (size_t i = 0; big && !why[0] && i < BIG; i++)
        if (big[i] != (char)('a' + i % 26))
            snprintf(why, sizeof why, "big differs at %zu", i);
    explicit_bzero(sec, sizeof sec);
    rc = why[0] ? gp_handoff_child_failed(hc, why, NULL) : gp_handoff_child_ready(hc, &gs);
    int status_closed = fcntl(4, F_GETFD) < 0;
    gp_handoff_child_free(hc);
    return rc == GP_OK && status_closed ? 0 : 2;
}

GP_HELPER(never_read)
{
    sleep(30);
    return 0;
}

/* Says why at once, without reading the configuration. */
GP_HELPER(fail_early)
{
    uint8_t msg[64];
    size_t n = gp__handoff_status_encode('F', "cannot open /dev/kvm", msg, sizeof msg);
    int fd = atoi(getenv(GP_HANDOFF_ENV_STATUS_FD));
    if (write(fd, msg, n) != (ssize_t)n)
        return 1;
    sleep(30);
    return 0;
}

/* Gone before reading a byte. */
GP_HELPER(vanish)
{
    return 0;
}

GP_HELPER(garble)
{
    int fd = atoi(getenv(GP_HANDOFF_ENV_STATUS_FD));
    return write(fd, "ready\n", 6) == 6 ? 0 : 1;
}

/* Opens the hand-off, or reports why not; NULL then. */
static gp_handoff_child *child_open(void)
{
    gp_handoff_child *hc;
    if (gp_handoff_child_open(&hc, 5000, &gs)) {
        gp_handoff_child_failed(hc, gs.msg, NULL);
        gp_handoff_child_free(hc);
        return NULL;
    }
    return hc;
}

GP_HELPER(fail)
{
    gp_handoff_child *hc = child_open();
    if (!hc)
        return 1;
    gp_handoff_child_failed(hc, "disk full: /var is read-only", NULL);
    gp_handoff_child_free(hc);
    return 3;
}

GP_HELPER(silent)
{
    gp_handoff_child *hc = child_open();
    if (!hc)
        return 1;
    sleep(30);
    gp_handoff_child_free(hc);
    return 0;
}

GP_HELPER(hold)
{
    gp_handoff_child *hc = child_open();
    if (!hc)
        return 1;
    uint8_t sec[64];
    size_t n;
    gp_handoff_child_take_secret(hc, sec, sizeof sec, &n, &gs);
    gp_handoff_child_ready(hc, &gs);
    sleep(30);
    gp_handoff_child_free(hc);
    return 0;
}

/* Leaves without a word. */
GP_HELPER(exit)
{
    gp_handoff_child *hc = child_open();
    if (!hc)
        return 1;
    gp_handoff_child_free(hc);
    return 0;
}

/* ---- the host side helpers ---- */

static pid_t spawn(const char *mode, gp_handoff *h)
{
    gp_handoff_spawn sp;
    if (gp_handoff_prepare(h, 0, &sp, &gs) != GP_OK) {
        GP_FAILF("prepare: %s", gs.msg);
        return -1;
    }
    size_t n = 0;
    while (environ[n])
        n++;
    const char **env = calloc(n + 3, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "GP_HANDOFF", 10) != 0)
            env[k++] = environ[i];
    env[k++] = sp.env[0];
    env[k++] = sp.env[1];
    pid_t pid = fork();
    if (pid == 0) {
        if (gp_extra_fds_apply(sp.fds, sp.nfds, NULL) != GP_OK)
            _exit(126);
        execve(gp_test_self_exe(), (char **)gp_test_helper_argv(mode), (char **)env);
        _exit(127);
    }
    free(env);
    gp_handoff_started(h);
    if (pid < 0)
        GP_FAILF("fork: %s", strerror(errno));
    return pid;
}

static int reap(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

static void kill_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    reap(pid);
}

static gp_handoff *make(const char *big_value, unsigned extra)
{
    gp_handoff *h;
    GP_CHECK_ERR(gp_handoff_new(&h, &gs), GP_OK);
    unsigned n = 1 + extra + (big_value ? 1 : 0);
    char buf[32], key[32];
    snprintf(buf, sizeof buf, "%u", n);
    GP_CHECK_ERR(gp_handoff_set(h, "expect_n", buf, &gs), GP_OK);
    for (unsigned i = 0; i < extra; i++) {
        snprintf(key, sizeof key, "key.%u", i);
        snprintf(buf, sizeof buf, "value %u", i);
        GP_CHECK_ERR(gp_handoff_set(h, key, buf, &gs), GP_OK);
    }
    if (big_value)
        GP_CHECK_ERR(gp_handoff_set(h, "big", big_value, &gs), GP_OK);
    GP_CHECK_ERR(gp_handoff_set_secret(h, SECRET, sizeof SECRET, &gs), GP_OK);
    return h;
}

static char *big_value(void)
{
    char *v = malloc(BIG + 1);
    for (size_t i = 0; i < BIG; i++)
        v[i] = (char)('a' + i % 26);
    v[BIG] = 0;
    return v;
}

/* ---- tests ---- */

GP_TEST(small_config_ready)
{
    int fds = gp_test_count_fds();
    gp_handoff *h = make(NULL, 3);
    pid_t pid = spawn("check", h);
    GP_CHECK_ERR(gp_handoff_send(h, 5000, &gs), GP_OK);
    gp_err rc = gp_handoff_wait_ready(h, 5000, &gs);
    GP_CHECK_ERR(rc, GP_OK);
    if (rc)
        GP_FAILF("%s", gs.msg);
    /* The result is latched. */
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 1, &gs), GP_OK);
    int st = reap(pid);
    GP_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    gp_handoff_free(h);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(large_config_1mib)
{
    int fds = gp_test_count_fds();
    char *big = big_value();
    gp_handoff *h = make(big, 1000);
    free(big);
    pid_t pid = spawn("check", h);
    gp_err rc = gp_handoff_send(h, 10000, &gs);
    GP_CHECK_ERR(rc, GP_OK);
    if (rc == GP_OK)
        rc = gp_handoff_wait_ready(h, 10000, &gs);
    GP_CHECK_ERR(rc, GP_OK);
    if (rc)
        GP_FAILF("%s", gs.msg);
    int st = reap(pid);
    GP_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    gp_handoff_free(h);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(wrong_secret_is_noticed)
{
    /* The check child can fail: proves the checks above are real. */
    gp_handoff *h = make(NULL, 0);
    GP_CHECK_ERR(gp_handoff_set_secret(h, "nope", 4, &gs), GP_OK);
    pid_t pid = spawn("check", h);
    GP_CHECK_ERR(gp_handoff_send(h, 5000, &gs), GP_OK);
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 5000, &gs), GP_EREMOTE);
    GP_CHECK_STR(gp_handoff_reason(h), "secret mismatch (4 bytes)");
    reap(pid);
    gp_handoff_free(h);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(child_never_reads_send_times_out)
{
    int fds = gp_test_count_fds();
    char *big = big_value();
    gp_handoff *h = make(big, 0);
    free(big);
    pid_t pid = spawn("never-read", h);
    int64_t t0 = gp__sup_now_ms();
    GP_CHECK_ERR(gp_handoff_send(h, 300, &gs), GP_ETIMEDOUT);
    int64_t took = gp__sup_now_ms() - t0;
    GP_CHECK_INT(took, >=, 250);
    GP_CHECK_INT(took, <, 3000);
    GP_CHECK_CONTAINS(gs.msg, "did not read its configuration within 300 ms");
    kill_reap(pid);
    gp_handoff_free(h);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(child_reports_failure)
{
    gp_handoff *h = make(NULL, 0);
    pid_t pid = spawn("fail", h);
    GP_CHECK_ERR(gp_handoff_send(h, 5000, &gs), GP_OK);
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 5000, &gs), GP_EREMOTE);
    GP_CHECK_STR(gp_handoff_reason(h), "disk full: /var is read-only");
    GP_CHECK_CONTAINS(gs.msg, "child reported failure: \"disk full: /var is read-only\"");
    int st = reap(pid);
    GP_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    gp_handoff_free(h);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(failure_before_reading_ends_send)
{
    char *big = big_value();
    gp_handoff *h = make(big, 0);
    free(big);
    pid_t pid = spawn("fail-early", h);
    GP_CHECK_ERR(gp_handoff_send(h, 5000, &gs), GP_EREMOTE);
    GP_CHECK_STR(gp_handoff_reason(h), "cannot open /dev/kvm");
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 100, &gs), GP_EREMOTE);
    kill_reap(pid);
    gp_handoff_free(h);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(child_gone_before_reading_no_sigpipe)
{
    /* Writing into a pipe nobody reads must be an error, not SIGPIPE
     * killing the host (this test process). */
    int fds = gp_test_count_fds();
    char *big = big_value();
    gp_handoff *h = make(big, 0);
    free(big);
    pid_t pid = spawn("vanish", h);
    reap(pid);
    GP_CHECK_ERR(gp_handoff_send(h, 5000, &gs), GP_EEXITED);
    GP_CHECK_CONTAINS(gs.msg, "child closed its configuration pipe");
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 1000, &gs), GP_EEXITED);
    GP_CHECK_STR(gs.msg, "child exited before reporting ready");
    gp_handoff_free(h);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(ready_wait_times_out)
{
    int fds = gp_test_count_fds();
    gp_handoff *h = make(NULL, 0);
    pid_t pid = spawn("silent", h);
    GP_CHECK_ERR(gp_handoff_send(h, 5000, &gs), GP_OK);
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 200, &gs), GP_ETIMEDOUT);
    GP_CHECK_CONTAINS(gs.msg, "did not report ready within 200 ms");
    /* Not latched: once the child is gone, the next wait says so. */
    kill_reap(pid);
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 1000, &gs), GP_EEXITED);
    gp_handoff_free(h);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(exit_before_ready)
{
    gp_handoff *h = make(NULL, 0);
    pid_t pid = spawn("exit", h);
    GP_CHECK_ERR(gp_handoff_send(h, 5000, &gs), GP_OK);
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 5000, &gs), GP_EEXITED);
    GP_CHECK_STR(gs.msg, "child exited before reporting ready");
    reap(pid);
    gp_handoff_free(h);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(garbled_status)
{
    gp_handoff *h = make(NULL, 0);
    pid_t pid = spawn("garble", h);
    gp_handoff_send(h, 2000, &gs); /* may or may not see the child go */
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 5000, &gs), GP_EPROTO);
    GP_CHECK_CONTAINS(gs.msg, "expected magic \"GPS1\", got \"read");
    reap(pid);
    gp_handoff_free(h);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(secret_not_in_environ_or_cmdline)
{
    gp_handoff *h = make(NULL, 0);
    GP_CHECK_ERR(gp_handoff_set(h, "token_hint", "visible-config", &gs), GP_OK);
    pid_t pid = spawn("hold", h);
    GP_CHECK_ERR(gp_handoff_send(h, 5000, &gs), GP_OK);
    GP_CHECK_ERR(gp_handoff_wait_ready(h, 5000, &gs), GP_OK);
    const char *files[] = {"environ", "cmdline"};
    for (int i = 0; i < 2; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, files[i]);
        size_t len = 0;
        char *data = gp_test_read_file(path, &len);
        GP_CHECK(data != NULL && len > 0);
        if (data) {
            GP_CHECK(memmem(data, len, SECRET, 3) == NULL);
            GP_CHECK(memmem(data, len, "visible-config", 14) == NULL);
            if (i == 0) /* the fd number is there, and that is fine */
                GP_CHECK(memmem(data, len, "GP_HANDOFF_FD=3", 15) != NULL);
        }
        free(data);
    }
    kill_reap(pid);
    gp_handoff_free(h);
    GP_CHECK(gp_test_no_children());
}

/* ---- child side in this process, against hand-made streams ---- */

static gp_err open_from(const void *bytes, size_t n, bool close_after, int timeout_ms, char *words,
                        size_t cap)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return GP_ESYS;
    if (n && write(p[1], bytes, n) != (ssize_t)n)
        return GP_ESYS;
    if (close_after)
        close(p[1]);
    char v[16];
    snprintf(v, sizeof v, "%d", p[0]);
    setenv(GP_HANDOFF_ENV_FD, v, 1);
    unsetenv(GP_HANDOFF_ENV_STATUS_FD);
    gp_handoff_child *hc;
    gp_err rc = gp_handoff_child_open(&hc, timeout_ms, &gs);
    snprintf(words, cap, "%s", gs.msg);
    /* The library closed the read end; nothing must be left behind. */
    if (fcntl(p[0], F_GETFD) >= 0) {
        GP_FAILF("read end %d still open", p[0]);
        close(p[0]);
    }
    if (!close_after)
        close(p[1]);
    GP_CHECK(getenv(GP_HANDOFF_ENV_FD) == NULL);
    GP_CHECK_ERR(gp_handoff_child_ready(hc, &gs), GP_ENOTFOUND);
    gp_handoff_child_free(hc);
    return rc;
}

GP_TEST(child_side_garbage_truncation_timeout)
{
    int fds = gp_test_count_fds();
    char words[512];
    GP_CHECK_ERR(open_from("HELLO WORLD", 11, true, 1000, words, sizeof words), GP_EPROTO);
    GP_CHECK_CONTAINS(words, "expected magic \"GPH1\", got \"HELL\"");

    GP_CHECK_ERR(open_from("GPH1\0\0\0\x64"
                           "0123456789",
                           18, true, 1000, words, sizeof words),
                 GP_EPROTO);
    GP_CHECK_CONTAINS(words, "end of file in the configuration after 10 of 100 bytes");

    GP_CHECK_ERR(open_from("GP", 2, false, 100, words, sizeof words), GP_ETIMEDOUT);
    GP_CHECK_CONTAINS(words, "did not arrive within 100 ms (2 of 8 bytes)");

    GP_CHECK_ERR(open_from("GPH1\xff\xff\xff\xff", 8, true, 1000, words, sizeof words),
                 GP_EMSGSIZE);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(child_side_environment_errors)
{
    int fds = gp_test_count_fds();
    gp_handoff_child *hc;
    unsetenv(GP_HANDOFF_ENV_FD);
    GP_CHECK_ERR(gp_handoff_child_open(&hc, 100, &gs), GP_ENOTFOUND);
    GP_CHECK_CONTAINS(gs.msg, "GP_HANDOFF_FD is not set");
    gp_handoff_child_free(hc);

    setenv(GP_HANDOFF_ENV_FD, "3; rm -rf /", 1);
    GP_CHECK_ERR(gp_handoff_child_open(&hc, 100, &gs), GP_EINVAL);
    GP_CHECK_CONTAINS(gs.msg, "expected a file descriptor number");
    gp_handoff_child_free(hc);

    setenv(GP_HANDOFF_ENV_FD, "999", 1);
    GP_CHECK_ERR(gp_handoff_child_open(&hc, 100, &gs), GP_EINVAL);
    GP_CHECK_CONTAINS(gs.msg, "999 is not an open file descriptor");
    gp_handoff_child_free(hc);

    /* A good data fd with a bad status fd: refused, and the data fd is
     * not left open. */
    int p[2];
    GP_CHECK(pipe2(p, O_CLOEXEC) == 0);
    char v[16];
    snprintf(v, sizeof v, "%d", p[0]);
    setenv(GP_HANDOFF_ENV_FD, v, 1);
    setenv(GP_HANDOFF_ENV_STATUS_FD, "x", 1);
    GP_CHECK_ERR(gp_handoff_child_open(&hc, 100, &gs), GP_EINVAL);
    GP_CHECK_CONTAINS(gs.msg, "GP_HANDOFF_STATUS_FD");
    GP_CHECK(fcntl(p[0], F_GETFD) < 0);
    gp_handoff_child_free(hc);
    close(p[1]);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(host_api_misuse)
{
    gp_handoff *h;
    GP_CHECK_ERR(gp_handoff_new(&h, &gs), GP_OK);
    GP_CHECK_ERR(gp_handoff_set(h, "", "x", &gs), GP_EINVAL);
    GP_CHECK_ERR(gp_handoff_set(h, "k", "1", &gs), GP_OK);
    GP_CHECK_ERR(gp_handoff_set(h, "k", "2", &gs), GP_OK); /* replaces */
    GP_CHECK_ERR(gp_handoff_send(h, 10, &gs), GP_ESTATE);
    gp_handoff_spawn sp;
    GP_CHECK_ERR(gp_handoff_prepare(h, 2, &sp, &gs), GP_EINVAL);
    GP_CHECK_ERR(gp_handoff_prepare(h, 10, &sp, &gs), GP_OK);
    GP_CHECK_STR(sp.env[0], "GP_HANDOFF_FD=10");
    GP_CHECK_STR(sp.env[1], "GP_HANDOFF_STATUS_FD=11");
    GP_CHECK(sp.env[2] == NULL);
    GP_CHECK_ERR(gp_handoff_set(h, "k", "3", &gs), GP_ESTATE);
    GP_CHECK_ERR(gs.err, GP_ESTATE);
    GP_CHECK_STR(gs.msg, "hand-off: set after prepare");
    GP_CHECK_ERR(gp_handoff_prepare(h, 10, &sp, &gs), GP_ESTATE);
    gp_handoff_free(h);
    gp_handoff_free(NULL);
}

GP_TEST(extra_fds_overlapping)
{
    /* Swap two descriptors in a child: a's fd becomes b's number and back. */
    int a[2], b[2];
    GP_CHECK(pipe2(a, O_CLOEXEC) == 0 && pipe2(b, O_CLOEXEC) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        gp_extra_fd fds[] = {{a[1], b[1]}, {b[1], a[1]}};
        if (gp_extra_fds_apply(fds, 2, NULL) != GP_OK)
            _exit(1);
        int ok = fcntl(a[1], F_GETFD) == 0 && fcntl(b[1], F_GETFD) == 0;
        /* a[1] now holds pipe b's write end. */
        if (write(a[1], "B", 1) != 1 || write(b[1], "A", 1) != 1)
            _exit(2);
        _exit(ok ? 0 : 3);
    }
    close(a[1]);
    close(b[1]);
    char ca = 0, cb = 0;
    GP_CHECK(read(a[0], &ca, 1) == 1 && read(b[0], &cb, 1) == 1);
    GP_CHECK_INT(ca, ==, 'A');
    GP_CHECK_INT(cb, ==, 'B');
    int st = reap(pid);
    GP_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(a[0]);
    close(b[0]);
}

GP_TEST(extra_fds_errors_have_words)
{
    /* Words built without stdio (async-signal-safe), errno set as well. */
    gp_extra_fd bad[] = {{-1, 5}};
    GP_CHECK_ERR(gp_extra_fds_apply(bad, 1, &gs), GP_EINVAL);
    GP_CHECK_INT(errno, ==, EBADF);
    GP_CHECK_STR(gs.msg, "extra fds: negative fd -1 -> 5: errno 9 (EBADF)");
    gp_extra_fd closed[] = {{999, 5}};
    GP_CHECK_ERR(gp_extra_fds_apply(closed, 1, &gs), GP_ESYS);
    GP_CHECK_STR(gs.msg, "extra fds: dup 999 -> 1000: errno 9 (EBADF)");
    GP_CHECK_ERR(gp_extra_fds_apply(NULL, 0, &gs), GP_OK);
    GP_CHECK_STR(gs.msg, "");
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(small_config_ready);
    GP_RUN(large_config_1mib);
    GP_RUN(wrong_secret_is_noticed);
    GP_RUN(child_never_reads_send_times_out);
    GP_RUN(child_reports_failure);
    GP_RUN(failure_before_reading_ends_send);
    GP_RUN(child_gone_before_reading_no_sigpipe);
    GP_RUN(ready_wait_times_out);
    GP_RUN(exit_before_ready);
    GP_RUN(garbled_status);
    GP_RUN(secret_not_in_environ_or_cmdline);
    GP_RUN(child_side_garbage_truncation_timeout);
    GP_RUN(child_side_environment_errors);
    GP_RUN(host_api_misuse);
    GP_RUN(extra_fds_overlapping);
    GP_RUN(extra_fds_errors_have_words);
    return gp_test_done();
}
