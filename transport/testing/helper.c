/* Helper processes: one dispatcher for every test that re-executes itself. */
#include "transport/testing/gp_test.h"

#include <stdlib.h>
#include <unistd.h>

enum { MAX_HELPERS = 64 };

static struct {
    const char *name;
    gp_test_helper_fn fn;
} helpers[MAX_HELPERS];
static int nhelpers;

void gp_test_helper_register(const char *name, gp_test_helper_fn fn)
{
    if (nhelpers == MAX_HELPERS) {
        fprintf(stderr, "gp_test: more than %d helpers\n", MAX_HELPERS);
        abort();
    }
    helpers[nhelpers].name = name;
    helpers[nhelpers].fn = fn;
    nhelpers++;
}

/* Names compare with '-' and '_' as one: GP_HELPER(bad_version) is what
 * go-plugin calls "bad-version". */
static bool same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '_' ? '-' : *a, y = *b == '_' ? '-' : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

void gp_test_helper_dispatch(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], GP_TEST_HELPER_FLAG) != 0)
        return;
    if (argc < 3) {
        fprintf(stderr, "%s: %s needs a name\n", argv[0], GP_TEST_HELPER_FLAG);
        exit(2);
    }
    for (int i = 0; i < nhelpers; i++)
        if (same_name(helpers[i].name, argv[2]))
            exit(helpers[i].fn(argc - 2, argv + 2));
    fprintf(stderr, "%s: no helper named \"%s\"; this binary has:", argv[0], argv[2]);
    for (int i = 0; i < nhelpers; i++)
        fprintf(stderr, " %s", helpers[i].name);
    fputc('\n', stderr);
    exit(2);
}

const char *gp_test_self_exe(void)
{
    static char path[4096];
    if (!path[0]) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0) {
            perror("readlink /proc/self/exe");
            abort();
        }
        path[n] = '\0';
    }
    return path;
}
