/* Cases that hang, crash and fail on purpose; harness_timeout_test.sh runs
 * them one at a time (GP_TEST_FILTER) and reads what the harness says. */
#include "transport/testing/gp_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "goplugin/err.h"

/* Writes `pid` to $TEST_TMPDIR/name, for the script to check it is gone. */
static void note_pid(const char *name, pid_t pid)
{
    const char *dir = getenv("TEST_TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "/tmp", name);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
}

/* Leaves a process in its own group and one in the case's, then hangs. */
GP_TEST(sleeps_forever)
{
    pid_t a = fork();
    if (a == 0) {
        setpgid(0, 0);
        for (;;)
            pause();
    }
    pid_t b = fork();
    if (b == 0)
        for (;;)
            pause();
    note_pid("own_group.pid", a);
    note_pid("case_group.pid", b);
    for (;;)
        pause();
}

GP_TEST(crashes)
{
    abort();
}

GP_TEST(fails_with_a_named_error)
{
    gp_err rc = GP_ETIMEDOUT;
    GP_CHECK_ERR(rc, GP_OK);
}

GP_TEST(passes)
{
    GP_CHECK_INT(1 + 1, ==, 2);
}

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    /* A thread started in main, as gRPC core would: refused. */
    if (getenv("VICTIM_THREAD_IN_MAIN")) {
        pthread_t t;
        pthread_create(&t, NULL, idle, NULL);
    }
    GP_RUN_TIMEOUT(sleeps_forever, 1);
    GP_RUN(crashes);
    GP_RUN(fails_with_a_named_error);
    GP_RUN(passes);
    return gp_test_done();
}
