/* Self re-exec: this binary registers actions and runs them in copies of
 * itself. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <goplugin/supervise.h>

#include "transport/supervise/fdutil.h"
#include "transport/testing/gp_test.h"

extern char **environ;

/* ---- the actions ---- */

static int act_add(const char *params, char **result)
{
    json_error_t je;
    json_t *v = json_loads(params, JSON_DECODE_ANY, &je);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1))) {
        fprintf(stderr, "add: expected [int, int], got %s\n", params);
        json_decref(v);
        return 2;
    }
    json_int_t s =
        json_integer_value(json_array_get(v, 0)) + json_integer_value(json_array_get(v, 1));
    json_decref(v);
    return asprintf(result, "{\"sum\": %lld}", (long long)s) < 0;
}

static int act_fail(const char *params, char **result)
{
    (void)params;
    (void)result;
    fprintf(stderr, "boom: cannot frobnicate the widget\n");
    return 3;
}

static int act_silent_fail(const char *params, char **result)
{
    (void)params;
    (void)result;
    return 4;
}

static int act_hang(const char *params, char **result)
{
    (void)params;
    (void)result;
    sleep(60);
    return 0;
}

static int act_hang_term(const char *params, char **result)
{
    (void)params;
    (void)result;
    signal(SIGTERM, SIG_IGN);
    sleep(60);
    return 0;
}

static int act_hang_helper(const char *params, char **result)
{
    (void)params;
    (void)result;
    pid_t helper = fork();
    if (helper == 0) {
        sleep(60);
        _exit(0);
    }
    fprintf(stderr, "helper=%d\n", (int)helper);
    fflush(stderr);
    sleep(60);
    return 0;
}

static int act_leave_helper(const char *params, char **result)
{
    (void)params;
    pid_t helper = fork();
    if (helper == 0) {
        sleep(60); /* holds stdout and stderr open */
        _exit(0);
    }
    return asprintf(result, "{\"helper\": %d}", (int)helper) < 0;
}

static int act_bad_json(const char *params, char **result)
{
    (void)params;
    *result = strdup("{\"unterminated\": ");
    return 0;
}

static int act_env(const char *params, char **result)
{
    (void)params;
    const char *m = getenv(GP_ACTION_ENV);
    return asprintf(result, "{\"marker_seen\": %s}", m ? "true" : "false") < 0;
}

static int act_crash(const char *params, char **result)
{
    (void)params;
    (void)result;
    fprintf(stderr, "about to die\n");
    kill(getpid(), SIGKILL);
    return 0;
}

static int act_long_fail(const char *params, char **result)
{
    (void)params;
    (void)result;
    for (int i = 0; i < 100; i++)
        fprintf(stderr, "noise line %03d before the reason\n", i);
    fprintf(stderr, "the real reason\n");
    return 3;
}

static int act_big(const char *params, char **result)
{
    /* Echo a big string parameter back: megabytes both ways. */
    size_t n = strlen(params);
    *result = malloc(n + 1);
    memcpy(*result, params, n + 1);
    return 0;
}

static int act_nested(const char *params, char **result)
{
    (void)params;
    gp_status st;
    gp_err rc = gp_action_run("add", "[40, 2]", 5000, result, &st);
    if (rc)
        fprintf(stderr, "nested: %s\n", st.msg);
    return rc ? 1 : 0;
}

static void register_all(void)
{
    gp_action_register("add", act_add, NULL);
    gp_action_register("fail", act_fail, NULL);
    gp_action_register("silent-fail", act_silent_fail, NULL);
    gp_action_register("hang", act_hang, NULL);
    gp_action_register("hang-term", act_hang_term, NULL);
    gp_action_register("hang-helper", act_hang_helper, NULL);
    gp_action_register("bad-json", act_bad_json, NULL);
    gp_action_register("leave-helper", act_leave_helper, NULL);
    gp_action_register("env", act_env, NULL);
    gp_action_register("crash", act_crash, NULL);
    gp_action_register("big", act_big, NULL);
    gp_action_register("long-fail", act_long_fail, NULL);
    gp_action_register("nested", act_nested, NULL);
}

/* ---- helpers ---- */

typedef struct outcome {
    gp_err rc;
    char *result;
    gp_status st;
    int64_t ms;
} outcome;

static outcome run(const char *name, const char *params, int timeout_ms)
{
    outcome o;
    int64_t t0 = gp__sup_now_ms();
    o.rc = gp_action_run(name, params, timeout_ms, &o.result, &o.st);
    o.ms = gp__sup_now_ms() - t0;
    return o;
}

static void done(outcome *o)
{
    free(o->result);
}

/* ---- tests ---- */

GP_TEST(success)
{
    int fds = gp_test_count_fds();
    outcome o = run("add", "[2, 40]", 5000);
    GP_CHECK_ERR(o.rc, GP_OK);
    GP_CHECK_STR(o.result, "{\"sum\": 42}");
    GP_CHECK_STR(o.st.msg, "");
    done(&o);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(failure_carries_stderr)
{
    int fds = gp_test_count_fds();
    outcome o = run("fail", "{}", 5000);
    GP_CHECK_ERR(o.rc, GP_EREMOTE);
    GP_CHECK(o.result == NULL);
    GP_CHECK_STR(o.st.msg, "boom: cannot frobnicate the widget");
    done(&o);

    o = run("silent-fail", NULL, 5000);
    GP_CHECK_ERR(o.rc, GP_EREMOTE);
    GP_CHECK_STR(o.st.msg, "action \"silent-fail\" exited with status 4");
    done(&o);

    o = run("add", "[\"x\", 1]", 5000);
    GP_CHECK_ERR(o.rc, GP_EREMOTE);
    GP_CHECK_CONTAINS(o.st.msg, "add: expected [int, int], got [\"x\", 1]");
    GP_CHECK_ERR(o.st.err, GP_EREMOTE);
    done(&o);

    /* More stderr than a gp_status holds: its end (the reason) is kept. */
    o = run("long-fail", NULL, 5000);
    GP_CHECK_ERR(o.rc, GP_EREMOTE);
    GP_CHECK_INT(strlen(o.st.msg), ==, GP_ERRMSG_MAX - 2); /* all but the last '\n' */
    GP_CHECK_CONTAINS(o.st.msg, "before the reason\nthe real reason");
    size_t ml = strlen(o.st.msg);
    GP_CHECK(ml > 15 && strcmp(o.st.msg + ml - 15, "the real reason") == 0);
    done(&o);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(timeout_kills_and_reaps)
{
    int fds = gp_test_count_fds();
    /* Scaled: the re-executed child must reach its hang (a sanitizer's
     * start-up) before the timeout, or SIGTERM meets it early. */
    int limit = (int)(300 * gp_test_scale());
    outcome o = run("hang", "null", limit);
    GP_CHECK_ERR(o.rc, GP_ETIMEDOUT);
    char want[128];
    snprintf(want, sizeof want, "action \"hang\" did not finish within %d ms", limit);
    GP_CHECK_STR(o.st.msg, want);
    GP_CHECK_INT(o.ms, >=, limit - 10);
    GP_CHECK_INT(o.ms, <, limit + 900 * gp_test_scale()); /* SIGTERM was enough */
    done(&o);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(timeout_escalates_to_sigkill)
{
    /* Scaled: the child must have ignored SIGTERM before it comes. */
    int limit = (int)(200 * gp_test_scale());
    outcome o = run("hang-term", "null", limit);
    GP_CHECK_ERR(o.rc, GP_ETIMEDOUT);
    GP_CHECK_INT(o.ms, >=, limit + GP_ACTION_KILL_GRACE_MS - 20);
    GP_CHECK_INT(o.ms, <, limit + GP_ACTION_KILL_GRACE_MS + 2000 * gp_test_scale());
    done(&o);
    GP_CHECK(gp_test_no_children());
}

/* Killed: gone, or a zombie waiting for whoever adopted it. */
static void check_dies(pid_t pid)
{
    bool alive = pid > 0;
    for (int i = 0; i < 100 && alive; i++) {
        alive = gp_test_alive(pid);
        if (alive)
            usleep(10000);
    }
    if (alive)
        GP_FAILF("helper %d still alive", (int)pid);
}

GP_TEST(timeout_kills_the_whole_group)
{
    /* Scaled: the child must have started its helper and said so. */
    outcome o = run("hang-helper", "null", (int)(300 * gp_test_scale()));
    GP_CHECK_ERR(o.rc, GP_ETIMEDOUT);
    GP_CHECK_CONTAINS(o.st.msg, "helper=");
    pid_t helper = 0;
    const char *h = strstr(o.st.msg, "helper=");
    if (h)
        helper = (pid_t)atoi(h + 7);
    GP_CHECK_INT(helper, >, 0);
    check_dies(helper);
    done(&o);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(leftover_helper_does_not_stall_the_result)
{
    outcome o = run("leave-helper", "null", 10000);
    GP_CHECK_ERR(o.rc, GP_OK);
    GP_CHECK_INT(o.ms, <, 3000 * gp_test_scale());
    pid_t helper = 0;
    const char *h = o.result ? strstr(o.result, "\"helper\": ") : NULL;
    if (h)
        helper = (pid_t)atoi(h + 10);
    GP_CHECK_INT(helper, >, 0);
    check_dies(helper);
    done(&o);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(invalid_json_result)
{
    outcome o = run("bad-json", "null", 5000);
    GP_CHECK_ERR(o.rc, GP_EPROTO);
    GP_CHECK(o.result == NULL);
    GP_CHECK_CONTAINS(o.st.msg, "action \"bad-json\" returned invalid JSON");
    GP_CHECK_CONTAINS(o.st.msg, "stdout \"{\\\"unterminated\\\":\"");
    done(&o);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(killed_by_signal)
{
    outcome o = run("crash", "null", 5000);
    GP_CHECK_ERR(o.rc, GP_EEXITED);
    GP_CHECK_CONTAINS(o.st.msg, "action \"crash\" killed by signal 9");
    GP_CHECK_CONTAINS(o.st.msg, "about to die");
    done(&o);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(marker_removed_inside_action)
{
    outcome o = run("env", "null", 5000);
    GP_CHECK_ERR(o.rc, GP_OK);
    GP_CHECK_STR(o.result, "{\"marker_seen\": false}");
    done(&o);
    o = run("nested", "null", 10000);
    GP_CHECK_ERR(o.rc, GP_OK);
    GP_CHECK_STR(o.result, "{\"sum\": 42}");
    done(&o);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(big_params_and_result)
{
    size_t n = 3u << 20;
    char *p = malloc(n + 3);
    p[0] = '"';
    memset(p + 1, 'z', n);
    p[n + 1] = '"';
    p[n + 2] = 0;
    outcome o = run("big", p, 20000);
    GP_CHECK_ERR(o.rc, GP_OK);
    GP_CHECK(o.result && strcmp(o.result, p) == 0);
    done(&o);
    free(p);
    GP_CHECK(gp_test_no_children());
}

GP_TEST(host_side_refusals)
{
    outcome o = run("nope", "null", 1000);
    GP_CHECK_ERR(o.rc, GP_ENOTFOUND);
    GP_CHECK_STR(o.st.msg, "action \"nope\" is not registered in this binary");
    done(&o);
    o = run("add", "[1, 2", 1000);
    GP_CHECK_ERR(o.rc, GP_EINVAL);
    GP_CHECK_CONTAINS(o.st.msg, "params are not JSON");
    done(&o);
    GP_CHECK_ERR(gp_action_register("add", act_add, NULL), GP_EINVAL);
    GP_CHECK_ERR(gp_action_register("bad name", act_add, NULL), GP_EINVAL);
    GP_CHECK_ERR(gp_action_register("", act_add, NULL), GP_EINVAL);
    gp_status st;
    GP_CHECK_ERR(gp_action_register("add", act_add, &st), GP_EINVAL);
    GP_CHECK_STR(st.msg, "action \"add\" is already registered");
    GP_CHECK_ERR(gp_action_register("bad name", act_add, &st), GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "expected 1..128 of [A-Za-z0-9._-]");
    GP_CHECK(gp_test_no_children());
}

/* Run this binary directly ("by hand"), optionally with a marker. */
GP_HELPER(by_hand)
{
    printf("no action ran\n");
    return 0;
}

static int by_hand(const char *marker, char *out, size_t cap)
{
    int o[2];
    if (pipe2(o, O_CLOEXEC) < 0)
        return -1;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "GP_ACTION=", 10) != 0)
            env[k++] = environ[i];
    char mk[64];
    if (marker) {
        snprintf(mk, sizeof mk, "GP_ACTION=%s", marker);
        env[k++] = mk;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(o[1], 1);
        dup2(o[1], 2);
        execve(gp_test_self_exe(), (char **)gp_test_helper_argv("by-hand"), env);
        _exit(127);
    }
    free(env);
    close(o[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(o[0], out + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = 0;
    close(o[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

GP_TEST(run_by_hand_without_marker_runs_nothing)
{
    char out[512];
    GP_CHECK_INT(by_hand(NULL, out, sizeof out), ==, 0);
    GP_CHECK_STR(out, "no action ran\n");
    /* With the marker it does run (so the check above can fail). */
    GP_CHECK_INT(by_hand("env", out, sizeof out), ==, 0);
    GP_CHECK_STR(out, "{\"marker_seen\": false}\n");
    GP_CHECK_INT(by_hand("no-such", out, sizeof out), ==, 127);
    GP_CHECK_CONTAINS(out, "no action \"no-such\" is registered");
    GP_CHECK(gp_test_no_children());
}

int main(int argc, char **argv)
{
    register_all();
    gp_action_dispatch(argc, argv); /* the library's own re-exec: first */
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(success);
    GP_RUN(failure_carries_stderr);
    GP_RUN(timeout_kills_and_reaps);
    GP_RUN(timeout_escalates_to_sigkill);
    GP_RUN(timeout_kills_the_whole_group);
    GP_RUN(leftover_helper_does_not_stall_the_result);
    GP_RUN(invalid_json_result);
    GP_RUN(killed_by_signal);
    GP_RUN(marker_removed_inside_action);
    GP_RUN(big_params_and_result);
    GP_RUN(host_side_refusals);
    GP_RUN(run_by_hand_without_marker_runs_nothing);
    return gp_test_done();
}
