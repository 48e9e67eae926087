/* The process layer against real misbehaving children: this binary runs
 * itself (a GP_HELPER) as each plugin. Every case also
 * checks that no child, zombie or descriptor is left behind. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/process/checksum.h"
#include "transport/process/proc.h"
#include "transport/testing/gp_test.h"

/* ---- the misbehaving plugins ---- */

/* go-plugin's "mock": a handshake line, then nothing. */
GP_HELPER(mock)
{
    printf("1|1|tcp|127.0.0.1:1234|grpc\n");
    fflush(stdout);
    printf("later stdout\n");
    fflush(stdout);
    sleep(30);
    return 0;
}

/* go-plugin's "start-timeout": never a handshake line. */
GP_HELPER(start_timeout)
{
    sleep(30);
    return 0;
}

GP_HELPER(huge_line)
{
    size_t n = 1 << 20;
    char *b = malloc(n);
    memset(b, 'x', n);
    gp_test_write_all(1, b, n);
    free(b);
    sleep(30);
    return 0;
}

GP_HELPER(exit_msg)
{
    fprintf(stderr, "first words\nfatal: cannot open config file /etc/nope\n");
    return 3;
}

GP_HELPER(grandchild)
{
    pid_t kid = fork();
    if (kid == 0) {
        sleep(60);
        _exit(0);
    }
    printf("%d\n", (int)kid);
    fflush(stdout);
    sleep(30);
    return 0;
}

GP_HELPER(hclog)
{
    fprintf(stderr, "{\"@level\":\"warn\",\"@message\":\"disk low\","
                    "\"@timestamp\":\"2026-11-23T06:46:12.527071Z\",\"free\":12,"
                    "\"unit\":\"MiB\"}\n");
    fprintf(stderr, "[ERROR] plain error\n");
    fprintf(stderr, "just text\n");
    size_t n = 200 * 1024;
    char *b = malloc(n + 1);
    memset(b, 'y', n);
    b[n] = '\n';
    gp_test_write_all(2, b, n + 1);
    free(b);
    fprintf(stderr, "{\"@level\":\"info\",\"@message\":\"after long\"}\n");
    fprintf(stderr, "plain before panic\npanic: oh no\ngoroutine 1 [running]:\n");
    printf("ready\n");
    fflush(stdout);
    sleep(30);
    return 0;
}

/* Prints its blocked-signal mask as the kernel has it. */
GP_HELPER(sigmask)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "SigBlk:", 7) == 0)
            fputs(line, stdout);
    if (f)
        fclose(f);
    fflush(stdout);
    sleep(30);
    return 0;
}

/* ---- a logger that records what arrives ---- */

typedef struct rec {
    gp_log_level level;
    char name[64];
    char msg[128];
    size_t msg_len;
    char kv[256];
} rec;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cv = PTHREAD_COND_INITIALIZER;
static rec logs[64];
static int nlogs;
static size_t ybytes; /* 'y' bytes delivered (the 200 KiB line) */
/* A line that holds the owner thread in the logger until released. */
static const char *hold_at;
static bool holding;

static void capture(void *ctx, gp_log_level level, const char *name, const char *msg,
                    const gp_log_kv *kv, size_t nkv)
{
    (void)ctx;
    pthread_mutex_lock(&log_mu);
    if (msg[0] == 'y')
        ybytes += strlen(msg);
    if (nlogs < 64) {
        rec *r = &logs[nlogs++];
        r->level = level;
        snprintf(r->name, sizeof r->name, "%s", name);
        snprintf(r->msg, sizeof r->msg, "%s", msg);
        r->msg_len = strlen(msg);
        r->kv[0] = '\0';
        for (size_t i = 0; i < nkv; i++) {
            size_t l = strlen(r->kv);
            snprintf(r->kv + l, sizeof r->kv - l, "%s=%s;", kv[i].key, kv[i].value);
        }
    }
    if (hold_at && strcmp(msg, hold_at) == 0) {
        holding = true;
        pthread_cond_broadcast(&log_cv);
        while (hold_at)
            pthread_cond_wait(&log_cv, &log_mu);
        holding = false;
    }
    pthread_mutex_unlock(&log_mu);
}

static const gp_logger logger = {.fn = capture, .level = GP_LOG_TRACE};

static const rec *find_log(const char *msg)
{
    for (int i = 0; i < nlogs; i++)
        if (strcmp(logs[i].msg, msg) == 0)
            return &logs[i];
    return NULL;
}

/* ---- helpers ---- */

static gp_err start(const char *mode, int exec_fd, gp__proc **p, char *err, size_t errlen)
{
    char *envp[] = {"GP_TEST_CHILD=1", NULL};
    gp__proc_opts o = {.path = gp_test_self_exe(),
                       .argv = (char **)gp_test_helper_argv(mode),
                       .envp = envp,
                       .exec_fd = exec_fd,
                       .logger = &logger,
                       .log_name = "proc_test"};
    return gp__proc_start(&o, p, err, errlen);
}

/* The helper `mode` with its stdout and stderr going to these files (NULL:
 * a pipe), which the owner thread follows. */
static gp_err start_to_files(const char *mode, const char *out_path, const char *err_path,
                             gp__proc **p, char *err, size_t errlen)
{
    char *envp[] = {"GP_TEST_CHILD=1", NULL};
    gp__proc_opts o = {.path = gp_test_self_exe(),
                       .argv = (char **)gp_test_helper_argv(mode),
                       .envp = envp,
                       .exec_fd = -1,
                       .logger = &logger,
                       .log_name = "proc_test",
                       .out_path = out_path,
                       .err_path = err_path};
    return gp__proc_start(&o, p, err, errlen);
}

/* ---- cases ---- */

GP_TEST(good_line_then_kill)
{
    int fds = gp_test_count_fds();
    char err[512] = "";
    gp__proc *p;
    GP_CHECK_ERR(start("mock", -1, &p, err, sizeof err), GP_OK);
    char *line;
    size_t len;
    GP_CHECK_ERR(gp__proc_wait_line(p, 5000, &line, &len, err, sizeof err), GP_OK);
    GP_CHECK_STR(line, "1|1|tcp|127.0.0.1:1234|grpc");
    GP_CHECK_INT(len, ==, strlen("1|1|tcp|127.0.0.1:1234|grpc"));
    free(line);
    GP_CHECK(!gp__proc_exited(p, NULL));
    pid_t pid = gp__proc_pid(p);
    gp__proc_kill(p, 0, NULL, NULL);
    gp__proc_kill(p, 0, NULL, NULL); /* idempotent */
    int status = 0;
    GP_CHECK(gp__proc_exited(p, &status));
    GP_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    gp__proc_free(p);
    gp_test_check_gone(pid);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(no_handshake_times_out)
{
    int fds = gp_test_count_fds();
    char err[512] = "";
    gp__proc *p;
    GP_CHECK_ERR(start("start-timeout", -1, &p, err, sizeof err), GP_OK);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *line;
    size_t len;
    GP_CHECK_ERR(gp__proc_wait_line(p, 300, &line, &len, err, sizeof err), GP_ETIMEDOUT);
    long ms = gp_test_ms_since(&t0);
    GP_CHECK(ms >= 290 && ms < 2000);
    GP_CHECK(line == NULL);
    GP_CHECK_CONTAINS(err, "timeout while waiting for plugin to start");
    GP_CHECK_CONTAINS(err, "within 300 ms");
    pid_t pid = gp__proc_pid(p);
    gp__proc_free(p);
    gp_test_check_gone(pid);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(megabyte_line_is_an_error_quickly)
{
    int fds = gp_test_count_fds();
    char err[512] = "";
    gp__proc *p;
    GP_CHECK_ERR(start("huge_line", -1, &p, err, sizeof err), GP_OK);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *line;
    size_t len;
    GP_CHECK_ERR(gp__proc_wait_line(p, 5000, &line, &len, err, sizeof err), GP_EMSGSIZE);
    GP_CHECK(gp_test_ms_since(&t0) < 4000);
    GP_CHECK_CONTAINS(err, "handshake line longer than 65536 bytes");
    pid_t pid = gp__proc_pid(p);
    gp__proc_free(p);
    gp_test_check_gone(pid);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(early_exit_keeps_stderr)
{
    int fds = gp_test_count_fds();
    char err[512] = "";
    gp__proc *p;
    GP_CHECK_ERR(start("exit_msg", -1, &p, err, sizeof err), GP_OK);
    char *line;
    size_t len;
    GP_CHECK_ERR(gp__proc_wait_line(p, 5000, &line, &len, err, sizeof err), GP_EEXITED);
    GP_CHECK_CONTAINS(err, "plugin exited before we could connect");
    GP_CHECK_CONTAINS(err, "exit status 3");
    char tail[4200];
    gp__proc_stderr_tail(p, tail, sizeof tail);
    GP_CHECK_STR(tail, "first words\nfatal: cannot open config file /etc/nope");
    int status;
    GP_CHECK(gp__proc_exited(p, &status));
    pid_t pid = gp__proc_pid(p);
    /* Exited on its own: reaped already, before any kill. */
    GP_CHECK_INT(waitpid(pid, NULL, WNOHANG), ==, -1);
    gp__proc_free(p);
    gp_test_check_gone(pid);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(kill_reaches_grandchild)
{
    int fds = gp_test_count_fds();
    char err[512] = "";
    gp__proc *p;
    GP_CHECK_ERR(start("grandchild", -1, &p, err, sizeof err), GP_OK);
    char *line = NULL;
    size_t len;
    GP_CHECK_ERR(gp__proc_wait_line(p, 5000, &line, &len, err, sizeof err), GP_OK);
    pid_t kid = line ? (pid_t)atoi(line) : 0;
    free(line);
    GP_CHECK(kid > 0);
    GP_CHECK_INT(kill(kid, 0), ==, 0);
    pid_t pid = gp__proc_pid(p);
    gp__proc_kill(p, 0, NULL, NULL);
    gp_test_check_gone(pid);
    /* The grandchild is not ours to reap: its parent died, init reaps it.
     * Give that a moment. */
    int alive = 1;
    for (int i = 0; i < 200 && alive; i++) {
        alive = kill(kid, 0) == 0;
        if (alive)
            usleep(10000);
    }
    GP_CHECK(!alive);
    gp__proc_free(p);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

typedef struct graceful_ctx {
    pid_t pid;
    int calls;
} graceful_ctx;

static gp_err graceful_term(void *ctx)
{
    graceful_ctx *g = ctx;
    g->calls++;
    kill(g->pid, SIGTERM);
    return GP_OK;
}

GP_TEST(graceful_kill_does_not_wait_the_grace)
{
    int fds = gp_test_count_fds();
    char err[512] = "";
    gp__proc *p;
    GP_CHECK_ERR(start("start-timeout", -1, &p, err, sizeof err), GP_OK);
    graceful_ctx g = {.pid = gp__proc_pid(p)};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gp__proc_kill(p, 5000, graceful_term, &g);
    GP_CHECK(gp_test_ms_since(&t0) < 2500);
    GP_CHECK_INT(g.calls, ==, 1);
    int status = 0;
    GP_CHECK(gp__proc_exited(p, &status));
    GP_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    gp__proc_free(p);
    gp_test_check_gone(g.pid);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(stderr_lines_reach_the_logger)
{
    int fds = gp_test_count_fds();
    pthread_mutex_lock(&log_mu);
    nlogs = 0;
    ybytes = 0;
    pthread_mutex_unlock(&log_mu);
    char err[512] = "";
    gp__proc *p;
    GP_CHECK_ERR(start("hclog", -1, &p, err, sizeof err), GP_OK);
    char *line = NULL;
    size_t len;
    GP_CHECK_ERR(gp__proc_wait_line(p, 5000, &line, &len, err, sizeof err), GP_OK);
    free(line);
    /* stderr may trail stdout a little. */
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&log_mu);
        int done = find_log("goroutine 1 [running]:") != NULL;
        pthread_mutex_unlock(&log_mu);
        if (done)
            break;
        usleep(10000);
    }
    gp__proc_free(p);
    pthread_mutex_lock(&log_mu);
    const rec *r = find_log("disk low");
    GP_CHECK(r != NULL);
    if (r) {
        GP_CHECK_INT(r->level, ==, GP_LOG_WARN);
        GP_CHECK_STR(r->name, "proc_test");
        GP_CHECK_CONTAINS(r->kv, "free=12;");
        GP_CHECK_CONTAINS(r->kv, "unit=MiB;");
    }
    r = find_log("[ERROR] plain error");
    GP_CHECK(r != NULL && r->level == GP_LOG_ERROR);
    r = find_log("just text");
    GP_CHECK(r != NULL && r->level == GP_LOG_DEBUG);
    r = find_log("after long");
    GP_CHECK(r != NULL && r->level == GP_LOG_INFO);
    r = find_log("plain before panic");
    GP_CHECK(r != NULL && r->level == GP_LOG_DEBUG);
    r = find_log("panic: oh no");
    GP_CHECK(r != NULL && r->level == GP_LOG_ERROR);
    r = find_log("goroutine 1 [running]:");
    GP_CHECK(r != NULL && r->level == GP_LOG_ERROR);
    GP_CHECK_INT(ybytes, ==, 200 * 1024);
    pthread_mutex_unlock(&log_mu);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

/* stdout and stderr to files (gp__proc_opts.out_path/err_path): the
 * owner thread follows them as it reads pipes. The 200 KiB line is over
 * one read budget (the "look again at once" path). */
GP_TEST(output_files_are_followed)
{
    int fds = gp_test_count_fds();
    pthread_mutex_lock(&log_mu);
    nlogs = 0;
    ybytes = 0;
    pthread_mutex_unlock(&log_mu);
    char out_path[600], err_path[600];
    const char *base = getenv("TEST_TMPDIR");
    snprintf(out_path, sizeof out_path, "%s/proc_out.%d", base ? base : "/tmp", (int)getpid());
    snprintf(err_path, sizeof err_path, "%s/proc_err.%d", base ? base : "/tmp", (int)getpid());
    unlink(out_path);
    unlink(err_path);
    char err[512] = "";
    gp__proc *p;
    GP_CHECK_ERR(start_to_files("hclog", out_path, err_path, &p, err, sizeof err), GP_OK);
    char *line = NULL;
    size_t len;
    GP_CHECK_ERR(gp__proc_wait_line(p, 5000, &line, &len, err, sizeof err), GP_OK);
    free(line);
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&log_mu);
        int done = find_log("goroutine 1 [running]:") != NULL;
        pthread_mutex_unlock(&log_mu);
        if (done)
            break;
        usleep(10000);
    }
    gp__proc_free(p);
    pthread_mutex_lock(&log_mu);
    const rec *r = find_log("disk low");
    GP_CHECK(r != NULL && r->level == GP_LOG_WARN);
    r = find_log("goroutine 1 [running]:");
    GP_CHECK(r != NULL && r->level == GP_LOG_ERROR);
    GP_CHECK_INT(ybytes, ==, 200 * 1024);
    pthread_mutex_unlock(&log_mu);
    size_t n = 0;
    char *text = gp_test_read_file(err_path, &n);
    GP_CHECK(text && strstr(text, "disk low") && n > 200 * 1024);
    free(text);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);

    /* An exit before the handshake: its words come from the file too. */
    unlink(err_path);
    GP_CHECK_ERR(start_to_files("exit_msg", out_path, err_path, &p, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__proc_wait_line(p, 5000, &line, &len, err, sizeof err), GP_EEXITED);
    GP_CHECK_CONTAINS(err, "exit status 3");
    char tail[4200];
    gp__proc_stderr_tail(p, tail, sizeof tail);
    GP_CHECK_STR(tail, "first words\nfatal: cannot open config file /etc/nope");
    gp__proc_free(p);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
    unlink(out_path);
    unlink(err_path);
}

/* The store's log cap cuts a followed file back to empty, and the plugin
 * writes it past our read offset before we read again (here: while the
 * owner thread is held in the logger). We read on from the file's new
 * start: no line lost, none begun in its middle. */
GP_TEST(a_file_cut_and_regrown_is_read_from_its_start)
{
    pthread_mutex_lock(&log_mu);
    nlogs = 0;
    hold_at = "first line";
    pthread_mutex_unlock(&log_mu);
    char err_path[600];
    const char *base = getenv("TEST_TMPDIR");
    snprintf(err_path, sizeof err_path, "%s/proc_cut.%d", base ? base : "/tmp", (int)getpid());
    unlink(err_path);
    char err[512] = "";
    gp__proc *p;
    GP_CHECK_ERR(start_to_files("mock", NULL, err_path, &p, err, sizeof err), GP_OK);
    char *line = NULL;
    size_t len;
    GP_CHECK_ERR(gp__proc_wait_line(p, (int)(5000 * gp_test_scale()), &line, &len, err, sizeof err),
                 GP_OK);
    free(line);
    int fd = open(err_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    GP_CHECK(fd >= 0);
    GP_CHECK(gp_test_write_all(fd, "first line\n", 11) == 0);
    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < (int)(500 * gp_test_scale()) && !holding; i++) {
        pthread_mutex_unlock(&log_mu);
        usleep(10000);
        pthread_mutex_lock(&log_mu);
    }
    bool held = holding;
    pthread_mutex_unlock(&log_mu);
    GP_CHECK(held);
    /* The cut, and 20 lines (200 bytes, past our 11) before we read. */
    GP_CHECK_INT(ftruncate(fd, 0), ==, 0);
    for (int i = 0; i < 20; i++) {
        char l[32];
        snprintf(l, sizeof l, "second %02d\n", i);
        GP_CHECK(gp_test_write_all(fd, l, strlen(l)) == 0);
    }
    close(fd);
    pthread_mutex_lock(&log_mu);
    hold_at = NULL;
    pthread_cond_broadcast(&log_cv);
    for (int i = 0; i < (int)(500 * gp_test_scale()) && !find_log("second 19"); i++) {
        pthread_mutex_unlock(&log_mu);
        usleep(10000);
        pthread_mutex_lock(&log_mu);
    }
    int missing = 0, middles = 0;
    for (int i = 0; i < 20; i++) {
        char l[32];
        snprintf(l, sizeof l, "second %02d", i);
        missing += find_log(l) == NULL;
    }
    for (int i = 0; i < nlogs; i++)
        middles += strncmp(logs[i].msg, "second", 6) != 0 && strstr(logs[i].msg, "cond") != NULL;
    pthread_mutex_unlock(&log_mu);
    gp__proc_free(p);
    unlink(err_path);
    GP_CHECK_INT(missing, ==, 0);
    GP_CHECK_INT(middles, ==, 0);
}

GP_TEST(exec_failure_is_reported)
{
    int fds = gp_test_count_fds();
    char *argv[] = {"/nonexistent/plugin", NULL};
    char *envp[] = {NULL};
    gp__proc_opts o = {.path = "/nonexistent/plugin",
                       .argv = argv,
                       .envp = envp,
                       .exec_fd = -1,
                       .logger = &logger,
                       .log_name = "x"};
    gp__proc *p = NULL;
    char err[512] = "";
    GP_CHECK_ERR(gp__proc_start(&o, &p, err, sizeof err), GP_ESYS);
    GP_CHECK(p == NULL);
    GP_CHECK_CONTAINS(err, "exec plugin /nonexistent/plugin: No such file or directory");
    GP_CHECK(gp_test_no_children());
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* The child shares our memory until its exec (spawn.c): with our handler
 * installed and signals blocked here, it still starts with an empty mask,
 * and we keep ours. */
GP_TEST(child_starts_with_an_empty_signal_mask)
{
    int fds = gp_test_count_fds();
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    GP_CHECK_INT(sigaction(SIGUSR1, &sa, &old_sa), ==, 0);
    sigset_t blk, old_mask, now;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR2);
    sigaddset(&blk, SIGUSR1);
    GP_CHECK_INT(pthread_sigmask(SIG_BLOCK, &blk, &old_mask), ==, 0);
    char err[512] = "";
    gp__proc *p = NULL;
    GP_CHECK_ERR(start("sigmask", -1, &p, err, sizeof err), GP_OK);
    char *line = NULL;
    size_t len;
    if (p)
        GP_CHECK_ERR(gp__proc_wait_line(p, 5000, &line, &len, err, sizeof err), GP_OK);
    GP_CHECK_STR(line ? line : "", "SigBlk:\t0000000000000000");
    free(line);
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    GP_CHECK(sigismember(&now, SIGUSR2) && sigismember(&now, SIGUSR1));
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGUSR1, &old_sa, NULL);
    if (p) {
        pid_t pid = gp__proc_pid(p);
        gp__proc_free(p);
        gp_test_check_gone(pid);
    }
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

GP_TEST(exec_through_the_hashed_fd)
{
    int fds = gp_test_count_fds();
    int f = open(gp_test_self_exe(), O_RDONLY | O_CLOEXEC);
    uint8_t sum[32];
    GP_CHECK_ERR(gp__sha256_fd(f, sum), GP_OK);
    close(f);
    char err[512] = "";
    int fd = -1;
    bool script = true;
    GP_CHECK_ERR(gp__checksum_open(gp_test_self_exe(), sum, &fd, &script, err, sizeof err), GP_OK);
    GP_CHECK(!script);
    gp__proc *p;
    GP_CHECK_ERR(start("mock", fd, &p, err, sizeof err), GP_OK);
    close(fd);
    char *line = NULL;
    size_t len;
    GP_CHECK_ERR(gp__proc_wait_line(p, 5000, &line, &len, err, sizeof err), GP_OK);
    GP_CHECK_STR(line, "1|1|tcp|127.0.0.1:1234|grpc");
    free(line);
    gp__proc_free(p);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

/* A host that starts a plugin, reports its pid, then waits to be killed. */
GP_HELPER(host)
{
    gp__proc *p;
    char err[512];
    if (start("start-timeout", -1, &p, err, sizeof err) != GP_OK)
        return 1;
    printf("%d\n", (int)gp__proc_pid(p));
    fflush(stdout);
    sleep(30);
    return 0;
}

GP_TEST(plugin_dies_with_its_host)
{
    int fds = gp_test_count_fds();
    int pp[2];
    GP_CHECK_INT(pipe2(pp, O_CLOEXEC), ==, 0);
    pid_t host = fork();
    if (host == 0) {
        dup2(pp[1], 1);
        execv(gp_test_self_exe(), (char **)gp_test_helper_argv("host"));
        _exit(127);
    }
    close(pp[1]);
    char buf[32] = "";
    ssize_t r = read(pp[0], buf, sizeof buf - 1);
    close(pp[0]);
    pid_t plugin = r > 0 ? (pid_t)atoi(buf) : 0;
    GP_CHECK(plugin > 0);
    GP_CHECK(plugin > 0 && gp_test_alive(plugin));
    /* SIGKILL: no cleanup code runs in the host; only PDEATHSIG helps. */
    kill(host, SIGKILL);
    waitpid(host, NULL, 0);
    bool dead = false;
    for (int i = 0; i < 300 && plugin > 0 && !dead; i++) {
        dead = !gp_test_alive(plugin);
        if (!dead)
            usleep(10000);
    }
    GP_CHECK(dead);
    GP_CHECK_INT(gp_test_count_fds(), ==, fds);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN(good_line_then_kill);
    GP_RUN(no_handshake_times_out);
    GP_RUN(megabyte_line_is_an_error_quickly);
    GP_RUN(early_exit_keeps_stderr);
    GP_RUN(kill_reaches_grandchild);
    GP_RUN(graceful_kill_does_not_wait_the_grace);
    GP_RUN(stderr_lines_reach_the_logger);
    GP_RUN(output_files_are_followed);
    GP_RUN(a_file_cut_and_regrown_is_read_from_its_start);
    GP_RUN(exec_failure_is_reported);
    GP_RUN(child_starts_with_an_empty_signal_mask);
    GP_RUN(exec_through_the_hashed_fd);
    GP_RUN(plugin_dies_with_its_host);
    return gp_test_done();
}
