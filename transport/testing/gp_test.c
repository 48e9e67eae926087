#include "transport/testing/gp_test.h"

#include <dirent.h>

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
