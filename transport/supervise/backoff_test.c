/* The restart backoff state machine, driven with made-up times. */
#include <goplugin/supervise.h>

#include "transport/testing/gp_test.h"

/* Start at t, exit after `up` ms; return the delay and advance t past it. */
static int64_t cycle(gp_backoff *b, int64_t *t, int64_t up)
{
    gp_backoff_started(b, *t);
    *t += up;
    int64_t d = gp_backoff_exited(b, *t);
    *t += d;
    return d;
}

GP_TEST(defaults_immediate_then_doubling_to_a_minute)
{
    gp_backoff b;
    GP_CHECK_ERR(gp_backoff_init(&b, NULL, NULL), GP_OK);
    int64_t t = 1000000;
    int64_t want[] = {0, 0, 0, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t d = cycle(&b, &t, 50);
        if (d != want[i])
            GP_FAILF("restart %zu: expected delay %lld, got %lld", i + 1, (long long)want[i],
                     (long long)d);
    }
    GP_CHECK_INT(gp_backoff_failures(&b), ==, 12);
}

GP_TEST(healthy_run_resets)
{
    gp_backoff b;
    gp_backoff_init(&b, NULL, NULL);
    int64_t t = 0;
    for (int i = 0; i < 6; i++)
        cycle(&b, &t, 100);
    GP_CHECK_INT(gp_backoff_failures(&b), ==, 6);
    /* Up 9.999 s: still a quick exit. */
    GP_CHECK_INT(cycle(&b, &t, 9999), ==, 8000);
    /* Up exactly 10 s: healthy, the streak starts over. */
    gp_backoff_started(&b, t);
    GP_CHECK(!gp_backoff_healthy(&b, t + 9999));
    GP_CHECK(gp_backoff_healthy(&b, t + 10000));
    GP_CHECK_INT(gp_backoff_exited(&b, t + 10000), ==, 0);
    GP_CHECK_INT(gp_backoff_failures(&b), ==, 1);
    GP_CHECK(!gp_backoff_healthy(&b, t + 20000)); /* not running */
}

GP_TEST(configurable)
{
    gp_backoff_config c = gp_backoff_defaults();
    c.immediate = 0;
    c.first_delay_ms = 300;
    c.max_delay_ms = 1000;
    c.healthy_after_ms = 500;
    gp_backoff b;
    GP_CHECK_ERR(gp_backoff_init(&b, &c, NULL), GP_OK);
    int64_t t = 0;
    GP_CHECK_INT(cycle(&b, &t, 10), ==, 300);
    GP_CHECK_INT(cycle(&b, &t, 10), ==, 600);
    GP_CHECK_INT(cycle(&b, &t, 10), ==, 1000);
    GP_CHECK_INT(cycle(&b, &t, 10), ==, 1000);
    GP_CHECK_INT(cycle(&b, &t, 500), ==, 300);
    gp_backoff_reset(&b);
    GP_CHECK_INT(gp_backoff_failures(&b), ==, 0);
    GP_CHECK_INT(cycle(&b, &t, 10), ==, 300);
}

GP_TEST(exit_without_start_counts_as_quick)
{
    /* A start that failed (exec error) is reported as an exit too. */
    gp_backoff b;
    gp_backoff_init(&b, NULL, NULL);
    GP_CHECK_INT(gp_backoff_exited(&b, 0), ==, 0);
    GP_CHECK_INT(gp_backoff_exited(&b, 100000), ==, 0);
    GP_CHECK_INT(gp_backoff_exited(&b, 200000), ==, 0);
    GP_CHECK_INT(gp_backoff_exited(&b, 300000), ==, 1000);
}

GP_TEST(long_streaks_do_not_overflow)
{
    gp_backoff_config c = gp_backoff_defaults();
    c.max_delay_ms = INT64_MAX / 2 + 7;
    c.first_delay_ms = 3;
    gp_backoff b;
    GP_CHECK_ERR(gp_backoff_init(&b, &c, NULL), GP_OK);
    int64_t t = 0, d = 0, prev = 0;
    for (int i = 0; i < 200; i++) {
        gp_backoff_started(&b, t);
        d = gp_backoff_exited(&b, t + 1);
        GP_CHECK(d >= prev && d <= c.max_delay_ms);
        prev = d;
    }
    GP_CHECK_INT(d, ==, c.max_delay_ms);
    b.failures = 0xfffffffeu;
    GP_CHECK_INT(gp_backoff_exited(&b, 0), ==, c.max_delay_ms);
    GP_CHECK_INT(gp_backoff_exited(&b, 0), ==, c.max_delay_ms);
    GP_CHECK_INT(gp_backoff_failures(&b), ==, 0xffffffffu);
}

GP_TEST(bad_config_refused)
{
    gp_backoff_config c = gp_backoff_defaults();
    c.first_delay_ms = 5000;
    c.max_delay_ms = 1000;
    gp_backoff b;
    GP_CHECK_ERR(gp_backoff_init(&b, &c, NULL), GP_EINVAL);
    GP_CHECK_INT(b.cfg.max_delay_ms, ==, 60000); /* left at the defaults */
    c = gp_backoff_defaults();
    c.healthy_after_ms = -1;
    gp_status st;
    GP_CHECK_ERR(gp_backoff_init(&b, &c, &st), GP_EINVAL);
    GP_CHECK_ERR(st.err, GP_EINVAL);
    GP_CHECK_CONTAINS(st.msg, "healthy after -1");
    GP_CHECK_ERR(gp_backoff_init(&b, NULL, &st), GP_OK);
    GP_CHECK_STR(st.msg, "");
}

int main(void)
{
    GP_RUN(defaults_immediate_then_doubling_to_a_minute);
    GP_RUN(healthy_run_resets);
    GP_RUN(configurable);
    GP_RUN(exit_without_start_counts_as_quick);
    GP_RUN(long_streaks_do_not_overflow);
    GP_RUN(bad_config_refused);
    return gp_test_done();
}
