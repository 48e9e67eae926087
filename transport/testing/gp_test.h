/* Internal: a tiny test harness. Each check prints what was expected and
 * what came; a test binary returns gp_test_done() from main, which prints
 * "N passed, N failed" and exits non-zero on any failure.
 *
 *   GP_TEST(parses_five_fields) { ... GP_CHECK_INT(x, ==, 5); }
 *   GP_HELPER(mock) { ...serve a plugin...; return 0; }
 *   int main(int argc, char **argv) {
 *       gp_test_helper_dispatch(argc, argv);   // first: helpers never return
 *       GP_RUN(parses_five_fields);
 *       GP_RUN_TIMEOUT(slow_case, 20);
 *       return gp_test_done();
 *   }
 *
 * Every case runs in a child process of its own (fork), in a process group
 * of its own, with a deadline: GP_RUN gives it GP_TEST_TIMEOUT_S seconds,
 * GP_RUN_TIMEOUT its own; both are multiplied by GP_TEST_SCALE (env, a
 * float, default 1; the sanitizer configs raise it). A case past its
 * deadline is reported as "TIMEOUT <name> after N s" and its whole group is
 * killed; a case killed by a signal is reported with the signal's name. The
 * parent only forks and waits: it must initialise nothing (gRPC core does
 * not survive a fork), so per-binary setup that starts threads or gRPC
 * belongs inside the cases.
 *
 * Environment:
 *   GP_TEST_FILTER=text   run only cases whose name contains `text`
 *                         (=name: only the case with exactly that name)
 *   GP_TEST_NOFORK=1      run cases in this process, no deadline (for gdb)
 *   GP_TEST_SCALE=3       multiply every deadline by 3
 *
 * Helpers: a test binary re-executes itself to play a plugin, a host or a
 * peer. GP_HELPER(name) declares one; gp_test_helper_argv("name", args...)
 * is the argv that starts it: { <this binary>, "--gp-helper", "name",
 * args..., NULL }. The choice is argv, not an environment variable, because
 * the code under test builds plugin environments (and tests check them
 * entry by entry), and because an environment variable would be inherited
 * by every grandchild: a host helper that launches a plugin helper would
 * re-dispatch itself. Names follow go-plugin's helper processes where the
 * behaviour matches ("mock", "bad-version", "start-timeout", ...); write
 * them with '-' or '_', both are accepted.
 */
#ifndef GP_TESTING_GP_TEST_H
#define GP_TESTING_GP_TEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

extern int gp_test_failed_checks;
extern int gp_test_cases_passed;
extern int gp_test_cases_failed;
extern const char *gp_test_current;

/* The deadline of a case run with GP_RUN, before GP_TEST_SCALE. */
#define GP_TEST_TIMEOUT_S 5.0

#define GP_TEST(name) static void name(void)

#define GP_FAILF(...)                                                         \
    do {                                                                      \
        gp_test_failed_checks++;                                              \
        fprintf(stderr, "%s:%d: [%s] ", __FILE__, __LINE__, gp_test_current); \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
    } while (0)

#define GP_CHECK(cond)                           \
    do {                                         \
        if (!(cond))                             \
            GP_FAILF("check failed: %s", #cond); \
    } while (0)

#define GP_CHECK_INT(a, op, b)                                                          \
    do {                                                                                \
        long long gp_a_ = (long long)(a), gp_b_ = (long long)(b);                       \
        if (!(gp_a_ op gp_b_))                                                          \
            GP_FAILF("expected %s %s %s, got %lld vs %lld", #a, #op, #b, gp_a_, gp_b_); \
    } while (0)

/* A gp_err result: `rc` is `want`. A mismatch names both codes:
 * "expected rc == GP_OK, got GP_ETIMEDOUT (timed out)". */
#define GP_CHECK_ERR(rc, want)                                      \
    do {                                                            \
        int gp_a_ = (int)(rc), gp_b_ = (int)(want);                 \
        if (gp_a_ != gp_b_) {                                       \
            char gp_t_[96];                                         \
            GP_FAILF("expected %s == %s, got %s", #rc, #want,       \
                     gp_test_err_text(gp_a_, gp_t_, sizeof gp_t_)); \
        }                                                           \
    } while (0)

/* A gp_err result that is not `unwanted` (usually: any failure). */
#define GP_CHECK_ERR_NE(rc, unwanted)                              \
    do {                                                           \
        int gp_a_ = (int)(rc), gp_b_ = (int)(unwanted);            \
        if (gp_a_ == gp_b_)                                        \
            GP_FAILF("expected %s != %s, got it", #rc, #unwanted); \
    } while (0)

#define GP_CHECK_STR(a, b)                                                              \
    do {                                                                                \
        const char *gp_a_ = (a), *gp_b_ = (b);                                          \
        if (!gp_a_ || !gp_b_ || strcmp(gp_a_, gp_b_) != 0)                              \
            GP_FAILF("expected %s == \"%s\", got \"%s\"", #a, gp_b_ ? gp_b_ : "(null)", \
                     gp_a_ ? gp_a_ : "(null)");                                         \
    } while (0)

/* `hay` contains `needle`. */
#define GP_CHECK_CONTAINS(hay, needle)                                         \
    do {                                                                       \
        const char *gp_h_ = (hay), *gp_n_ = (needle);                          \
        if (!gp_h_ || !strstr(gp_h_, gp_n_))                                   \
            GP_FAILF("expected %s to contain \"%s\", got \"%s\"", #hay, gp_n_, \
                     gp_h_ ? gp_h_ : "(null)");                                \
    } while (0)

#define GP_RUN(fn) gp_test_run(#fn, fn, GP_TEST_TIMEOUT_S)
/* For the cases that legitimately take longer than the default. */
#define GP_RUN_TIMEOUT(fn, seconds) gp_test_run(#fn, fn, (seconds))

/* Runs `fn` as the case `name` (in a child, see above) with a deadline of
 * `timeout_s` * GP_TEST_SCALE seconds. */
void gp_test_run(const char *name, void (*fn)(void), double timeout_s);
int gp_test_done(void);

/* Runs `setup` before and `teardown` after every case from now on, in the
 * case's own process (where gRPC and threads may be started). A setup that
 * returns non-zero fails the case without running it; teardown runs
 * either way. NULL for none. */
void gp_test_fixture(int (*setup)(void), void (*teardown)(void));

/* GP_TEST_SCALE (default 1): for tests that size their own waits. */
double gp_test_scale(void);

/* "GP_ETIMEDOUT (timed out)", or "42 (not a gp_err)"; into buf. */
const char *gp_test_err_text(int err, char *buf, size_t cap);
/* "GP_ETIMEDOUT"; NULL for a value that is no gp_err. */
const char *gp__err_name(int err);

/* ---- helper processes ---- */

typedef int (*gp_test_helper_fn)(int argc, char **argv);
void gp_test_helper_register(const char *name, gp_test_helper_fn fn);

/* Declares helper `name`, registered before main runs. It gets the
 * arguments after its name (argv[0] is the name) and returns the exit code. */
#define GP_HELPER(name)                                                 \
    static int gp_helper_##name(int argc, char **argv);                 \
    __attribute__((constructor)) static void gp_helper_reg_##name(void) \
    {                                                                   \
        gp_test_helper_register(#name, gp_helper_##name);               \
    }                                                                   \
    static int gp_helper_##name(int argc __attribute__((unused)),       \
                                char **argv __attribute__((unused)))

/* When argv is "<binary> --gp-helper NAME [args]", runs helper NAME and
 * exits with its code (2 for an unknown name); otherwise returns (and sets
 * up the leak file below). Under ASan a helper that leaks (checked when it
 * exits normally) writes a line to the file named by GP_TEST_LEAK_FILE
 * (the test process sets it; helpers inherit it) and exits 23; the case
 * that ran it then fails with that line, however its host reaped it. */
void gp_test_helper_dispatch(int argc, char **argv);
#define GP_TEST_LEAK_FILE_ENV "GP_TEST_LEAK_FILE"
void gp_test_leak_file_init(void);

/* This binary's path (/proc/self/exe resolved). Static storage. */
const char *gp_test_self_exe(void);

/* argv[1] of a helper process; argv[2] is the helper's name. */
#define GP_TEST_HELPER_FLAG "--gp-helper"

/* The argv that starts helper `name` with `args`: a NULL-terminated array
 * that lives until the end of the enclosing block. */
#define gp_test_helper_argv(...) \
    ((const char *[]){gp_test_self_exe(), GP_TEST_HELPER_FLAG, __VA_ARGS__, NULL})

/* Runs helper `name` with argument `arg` in a child whose stderr (and its
 * stdout too, with `with_stdout`) goes to a temporary file, and waits up
 * to 10 s x GP_TEST_SCALE. Its wait status goes to *status; returns what
 * it wrote (malloc'd, NUL-terminated), or NULL after a failed check (no
 * file, or it did not end: then it is killed and reaped). */
char *gp_test_run_helper_output(const char *name, const char *arg, bool with_stdout, int *status);

/* ---- things many tests need ---- */

/* Open file descriptors of this process (counts /proc/self/fd). */
int gp_test_count_fds(void);

/* Threads of this process, not counting gRPC core's own pools (executor,
 * timer and event-engine threads): core is kept up for the process's life
 * and grows those pools on demand, so they are not ours to leak. */
int gp_test_count_threads(void);

/* Every thread of this process to stderr, tid and name (for a failed
 * count: which thread stayed). */
void gp_test_print_threads(void);

/* A descriptor a library hands to another thread to close (gRPC core
 * closes released sockets on its own threads) stays open a while after the
 * call that released it, on a loaded machine for long. This polls the
 * count every 10 ms until it is at most `limit` or `timeout_ms` passed, and
 * returns the last count. A leaked fd is never closed, so checking the
 * result against `limit` still catches one. */
int gp_test_wait_fds_at_most(int limit, int timeout_ms);

/* The fd check at the end of a test whose process uses gRPC: no more open
 * than at the baseline `fds`, once closes in flight on core's threads are
 * done (up to 5 s, scaled). The baseline may itself hold a previous test's
 * closes in flight, hence "no more than" rather than "equal". */
#define GP_CHECK_FDS_AT_MOST(fds) \
    GP_CHECK_INT(gp_test_wait_fds_at_most((fds), (int)(5000 * gp_test_scale())), <=, (fds))

/* The same for threads: polls gp_test_count_threads every 10 ms until it
 * is at most `limit` or `timeout_ms` passed, and returns the last count
 * (printing the threads when it is still over). Check that sample, not a
 * fresh count: a gRPC thread just spawned carries our process's name until
 * it names itself, so one more count can see a thread that is not ours. */
int gp_test_wait_threads_at_most(int limit, int timeout_ms);

/* The thread check at the end of a test: no more than `threads` once the
 * ones that are ending are gone (up to 5 s, scaled). */
#define GP_CHECK_THREADS_AT_MOST(threads)                                                    \
    GP_CHECK_INT(gp_test_wait_threads_at_most((threads), (int)(5000 * gp_test_scale())), <=, \
                 (threads))

/* A field of /proc/self/status in its own unit ("Threads", "VmRSS" in
 * kB); -1 when absent. */
long gp_test_status_field(const char *key);

/* This process's threads, VmRSS (kB) and open fds sampled every 2 ms on a
 * thread of its own between start and stop: the figures at start and the
 * peaks (which count the sampler's own thread). */
typedef struct gp_test_sampler {
    pthread_t t;
    atomic_int stop;
    long base_threads, base_rss, base_fds;
    long peak_threads, peak_rss, peak_fds;
} gp_test_sampler;
void gp_test_sampler_start(gp_test_sampler *s);
void gp_test_sampler_stop(gp_test_sampler *s);

/* This process has no child left, running or unreaped. */
bool gp_test_no_children(void);

/* `pid` is gone and reaped (by us or by whoever owns it): checks it. */
void gp_test_check_gone(pid_t pid);

/* `pid` exists and is not a zombie (reads /proc/PID/stat). */
bool gp_test_alive(pid_t pid);

/* Waits up to `timeout_ms` for child `pid` to exit; its wait status, or
 * -1 on timeout (the child is then left alone). */
int gp_test_wait_child(pid_t pid, int timeout_ms);

/* The whole file (also /proc files, whose size says 0), NUL-terminated,
 * malloc'd; its length in *len if len. NULL if it cannot be read. */
char *gp_test_read_file(const char *path, size_t *len);

/* Waits up to `timeout_ms` for child `pid`: its exit code (128 + the
 * signal's number if a signal ended it), or -1 when it had not ended by
 * then (it is then SIGKILLed and reaped). */
int gp_test_reap(pid_t pid, int timeout_ms);

/* The TCP keepalive settings of a socket (getsockopt). */
typedef struct gp_test_tcp_ka {
    int on, idle_s, intvl_s, cnt, user_ms;
} gp_test_tcp_ka;

/* This process's connected sockets whose local port (`local`) or peer port
 * is `port`: their keepalive settings into out, at most cap; how many. */
int gp_test_tcp_ka_of(int port, bool local, gp_test_tcp_ka *out, int cap);

/* Checks each of got[0..n) against want: `on` always, the rest only when
 * want.on is set. */
void gp_test_check_tcp_ka(const gp_test_tcp_ka *got, int n, gp_test_tcp_ka want);

/* Monotonic clock. */
long long gp_test_now_ms(void);
double gp_test_now_s(void);
long gp_test_ms_since(const struct timespec *t0);

/* Writes all of p (send() with MSG_NOSIGNAL on sockets, so a gone peer is
 * an error, not SIGPIPE); 0 or -1. */
int gp_test_write_all(int fd, const void *p, size_t n);

#endif
