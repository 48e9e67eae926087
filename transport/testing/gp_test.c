/* The case runner: every case in a forked child with a deadline. */
#include "transport/testing/gp_test.h"

#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int gp_test_failed_checks;
int gp_test_cases_passed;
int gp_test_cases_failed;
const char *gp_test_current = "";

static int cases_run;
static int (*fixture_setup)(void);
static void (*fixture_teardown)(void);

void gp_test_fixture(int (*setup)(void), void (*teardown)(void))
{
    fixture_setup = setup;
    fixture_teardown = teardown;
}

/* The case with its fixture, in whichever process runs it. */
static void run_case(void (*fn)(void))
{
    if (fixture_setup && fixture_setup() != 0)
        GP_FAILF("the fixture's setup failed; the case did not run");
    else
        fn();
    if (fixture_teardown)
        fixture_teardown();
}

double gp_test_scale(void)
{
    const char *s = getenv("GP_TEST_SCALE");
    char *end;
    double v = s && *s ? strtod(s, &end) : 1.0;
    if (s && *s && (*end || v <= 0)) {
        fprintf(stderr, "GP_TEST_SCALE=%s is not a positive number; using 1\n", s);
        v = 1.0;
    }
    return v;
}

static bool selected(const char *name)
{
    const char *f = getenv("GP_TEST_FILTER");
    if (!f || !*f)
        return true;
    if (f[0] == '=')
        return strcmp(name, f + 1) == 0;
    return strstr(name, f) != NULL;
}

/* The time is there to show which cases come near their deadline. */
static void record(const char *name, bool ok, double secs)
{
    if (ok)
        gp_test_cases_passed++;
    else
        gp_test_cases_failed++;
    fprintf(stderr, "%s %s (%.2f s)\n", ok ? "ok  " : "FAIL", name, secs);
}

static pid_t parent_of(const char *stat)
{
    /* "pid (comm) state ppid ...": comm may hold spaces and parens. */
    const char *close = strrchr(stat, ')');
    int ppid = 0;
    if (!close || sscanf(close + 1, " %*c %d", &ppid) != 1)
        return 0;
    return (pid_t)ppid;
}

/* Kills and reaps every process left below us. We are a subreaper, so a
 * plugin's own children (in the plugin's process group, out of reach of the
 * case's group kill) come back to us when their parent dies. */
static void sweep_leftovers(const char *name, bool quiet)
{
    pid_t self = getpid(), our_group = getpgrp();
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    for (int round = 0; round < 100; round++) {
        int found = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9')
                continue;
            char path[300], buf[512];
            snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
            FILE *f = fopen(path, "r");
            if (!f)
                continue;
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            if (parent_of(buf) != self)
                continue;
            pid_t pid = (pid_t)atoi(e->d_name);
            found++;
            const char *close = strrchr(buf, ')');
            if (close && close[1] == ' ' && close[2] == 'Z')
                continue; /* dead already; reaped below */
            if (!quiet)
                fprintf(stderr, "note: %s left process %d behind; killing it\n", name, (int)pid);
            pid_t g = getpgid(pid);
            if (g > 0 && g != our_group)
                kill(-g, SIGKILL);
            kill(pid, SIGKILL);
        }
        if (d)
            closedir(d);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (!found)
            return;
        quiet = true; /* said once per case */
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* All threads of this process, gRPC's too (unlike gp_test_count_threads). */
static int parent_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void run_here(const char *name, void (*fn)(void))
{
    int before = gp_test_failed_checks;
    double t0 = gp_test_now_s();
    gp_test_current = name;
    run_case(fn);
    gp_test_current = "";
    record(name, gp_test_failed_checks == before, gp_test_now_s() - t0);
}

/* Waits for the case child `pid` until `deadline_s`, reaping any orphan
 * handed to us meanwhile (they must not linger as zombies: tests poll
 * kill(pid, 0) to see a grandchild gone). 1 and the status when the child
 * ended, 0 at the deadline. */
static int wait_case(pid_t pid, double deadline_s, const sigset_t *chld, int *status)
{
    for (;;) {
        int st;
        pid_t w;
        while ((w = waitpid(-1, &st, WNOHANG)) > 0)
            if (w == pid) {
                *status = st;
                return 1;
            }
        if (w < 0 && errno == ECHILD) {
            *status = 0;
            return 1; /* cannot happen: the case is our child */
        }
        double left = deadline_s - gp_test_now_s();
        if (left <= 0)
            return 0;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        sigtimedwait(chld, NULL, &ts);
    }
}

/* The helpers' leak file (gp_test_helper_dispatch): its path, and how
 * much of it the cases so far have seen. */
static char leak_path[1024];
static off_t leak_seen;

void gp_test_leak_file_init(void)
{
    const char *set = getenv(GP_TEST_LEAK_FILE_ENV);
    if (set && *set) { /* a test started by another test: share its file */
        snprintf(leak_path, sizeof leak_path, "%s", set);
    } else {
        const char *dir = getenv("TEST_TMPDIR");
        snprintf(leak_path, sizeof leak_path, "%s/gp_helper_leaks.%d", dir && *dir ? dir : "/tmp",
                 (int)getpid());
        unlink(leak_path);
        setenv(GP_TEST_LEAK_FILE_ENV, leak_path, 1);
    }
    struct stat sb;
    leak_seen = stat(leak_path, &sb) == 0 ? sb.st_size : 0;
}

/* New lines in the leak file since the last look: printed; true if any. */
static bool helpers_leaked(const char *name)
{
    if (!leak_path[0])
        return false;
    struct stat sb;
    if (stat(leak_path, &sb) != 0 || sb.st_size <= leak_seen)
        return false;
    FILE *f = fopen(leak_path, "r");
    if (f && fseeko(f, leak_seen, SEEK_SET) == 0) {
        char line[512];
        while (fgets(line, sizeof line, f))
            fprintf(stderr, "LEAK %s: %s", name, line);
    }
    if (f)
        fclose(f);
    leak_seen = sb.st_size;
    return true;
}

void gp_test_run(const char *name, void (*fn)(void), double timeout_s)
{
    if (!selected(name))
        return;
    cases_run++;
    const char *nofork = getenv("GP_TEST_NOFORK");
    if (nofork && *nofork && strcmp(nofork, "0") != 0) {
        run_here(name, fn);
        return;
    }
    static bool ready;
    static sigset_t chld, old_mask;
    if (!ready) {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        /* Blocked here so sigtimedwait sees it; the child gets the old mask. */
        sigprocmask(SIG_BLOCK, &chld, &old_mask);
        ready = true;
    }
    /* A thread here means something was set up outside the cases (gRPC
     * core starts threads): after fork the child would have only a copy
     * of this thread and locks held by the others. */
    int threads = parent_threads();
    if (threads > 1) {
        fprintf(stderr,
                "%s: the harness process has %d threads before forking: set up "
                "inside the cases (gp_test_fixture), not in main\n",
                name, threads);
        record(name, false, 0);
        return;
    }
    double limit = timeout_s * gp_test_scale();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        record(name, false, 0);
        return;
    }
    if (pid == 0) {
        setpgid(0, 0);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        gp_test_current = name;
        run_case(fn);
        fflush(stdout);
        /* exit, not _exit: sanitizers' leak checks run at exit. */
        exit(gp_test_failed_checks ? 1 : 0);
    }
    setpgid(pid, pid); /* also here: no window where a kill misses it */
    int st = 0;
    double t0 = gp_test_now_s();
    if (!wait_case(pid, t0 + limit, &chld, &st)) {
        fprintf(stderr, "TIMEOUT %s after %g s\n", name, limit);
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        sweep_leftovers(name, true);
        record(name, false, gp_test_now_s() - t0);
        return;
    }
    double secs = gp_test_now_s() - t0;
    kill(-pid, SIGKILL); /* whatever the case left in its group */
    sweep_leftovers(name, false);
    if (helpers_leaked(name)) {
        record(name, false, secs);
    } else if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        fprintf(stderr, "CRASH %s: killed by signal %d (%s)\n", name, sig, strsignal(sig));
        record(name, false, secs);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) > 1) {
        fprintf(stderr, "%s: exited with %d\n", name, WEXITSTATUS(st));
        record(name, false, secs);
    } else {
        record(name, WIFEXITED(st) && WEXITSTATUS(st) == 0, secs);
    }
}

int gp_test_done(void)
{
    printf("%d passed, %d failed\n", gp_test_cases_passed, gp_test_cases_failed);
    fflush(stdout);
    const char *f = getenv("GP_TEST_FILTER");
    if (f && *f && cases_run == 0) {
        fprintf(stderr, "no case matches GP_TEST_FILTER=%s\n", f);
        return 1;
    }
    /* Checks outside any case (in main) count too, and helpers run from
     * main. */
    bool leaked = helpers_leaked("(outside the cases)");
    return gp_test_cases_failed || gp_test_failed_checks || leaked ? 1 : 0;
}
