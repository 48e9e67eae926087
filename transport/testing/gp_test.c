#include "transport/testing/gp_test.h"

#include <dirent.h>
#include <string.h>

int gp_test_failed_checks;
int gp_test_cases_passed;
int gp_test_cases_failed;
const char *gp_test_current = "";

void gp_test_run(const char *name, void (*fn)(void))
{
    int before = gp_test_failed_checks;
    gp_test_current = name;
    fn();
    if (gp_test_failed_checks == before) {
        gp_test_cases_passed++;
        fprintf(stderr, "ok   %s\n", name);
    } else {
        gp_test_cases_failed++;
        fprintf(stderr, "FAIL %s\n", name);
    }
}

int gp_test_done(void)
{
    printf("%d passed, %d failed\n", gp_test_cases_passed, gp_test_cases_failed);
    fflush(stdout);
    return gp_test_cases_failed ? 1 : 0;
}

int gp_test_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own descriptor */
}

static int is_grpc_pool_thread(const char *comm)
{
    static const char *const pools[] = {"default-executo", "resolver-execut", "event_engine",
                                        "grpc_global_tim", "timer_manager"};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
        if (strncmp(comm, pools[i], strlen(pools[i])) == 0)
            return 1;
    return 0;
}

int gp_test_count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = 0;
            fclose(f);
        }
        n += !is_grpc_pool_thread(comm);
    }
    closedir(d);
    return n;
}
