/* Internal: a tiny test harness. Each check prints what was expected and
 * what came; a test binary returns gp_test_done() from main, which prints
 * "N passed, N failed" for its checks and exits non-zero on any failure.
 *
 *   GP_TEST(parses_five_fields) { ... GP_CHECK_INT(x, ==, 5); }
 *   int main(void) { GP_RUN(parses_five_fields); return gp_test_done(); }
 */
#ifndef GP_TESTING_GP_TEST_H
#define GP_TESTING_GP_TEST_H

#include <stdio.h>
#include <string.h>

extern int gp_test_failed_checks;
extern int gp_test_cases_passed;
extern int gp_test_cases_failed;
extern const char *gp_test_current;

#define GP_TEST(name) static void name(void)

#define GP_FAILF(...)                                                        \
    do {                                                                     \
        gp_test_failed_checks++;                                             \
        fprintf(stderr, "%s:%d: [%s] ", __FILE__, __LINE__, gp_test_current);\
        fprintf(stderr, __VA_ARGS__);                                        \
        fputc('\n', stderr);                                                 \
    } while (0)

#define GP_CHECK(cond)                                                       \
    do {                                                                     \
        if (!(cond))                                                         \
            GP_FAILF("check failed: %s", #cond);                             \
    } while (0)

#define GP_CHECK_INT(a, op, b)                                               \
    do {                                                                     \
        long long gp_a_ = (long long)(a), gp_b_ = (long long)(b);            \
        if (!(gp_a_ op gp_b_))                                               \
            GP_FAILF("expected %s %s %s, got %lld vs %lld", #a, #op, #b,     \
                     gp_a_, gp_b_);                                          \
    } while (0)

#define GP_CHECK_STR(a, b)                                                   \
    do {                                                                     \
        const char *gp_a_ = (a), *gp_b_ = (b);                               \
        if (!gp_a_ || !gp_b_ || strcmp(gp_a_, gp_b_) != 0)                   \
            GP_FAILF("expected %s == \"%s\", got \"%s\"", #a,                \
                     gp_b_ ? gp_b_ : "(null)", gp_a_ ? gp_a_ : "(null)");    \
    } while (0)

/* `hay` contains `needle`. */
#define GP_CHECK_CONTAINS(hay, needle)                                       \
    do {                                                                     \
        const char *gp_h_ = (hay), *gp_n_ = (needle);                        \
        if (!gp_h_ || !strstr(gp_h_, gp_n_))                                 \
            GP_FAILF("expected %s to contain \"%s\", got \"%s\"", #hay,      \
                     gp_n_, gp_h_ ? gp_h_ : "(null)");                       \
    } while (0)

#define GP_RUN(fn) gp_test_run(#fn, fn)

void gp_test_run(const char *name, void (*fn)(void));
int gp_test_done(void);

/* Open file descriptors of this process (counts /proc/self/fd). */
int gp_test_count_fds(void);

/* Threads of this process, not counting gRPC core's own pools (executor,
 * timer and event-engine threads): core is kept up for the process's life
 * and grows those pools on demand, so they are not ours to leak. */
int gp_test_count_threads(void);

#endif
