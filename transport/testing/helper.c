/* Helper processes: one dispatcher for every test that re-executes itself. */
#include "transport/testing/gp_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define GP_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GP_TEST_LSAN 1
#endif
#endif
#ifdef GP_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

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

#ifdef GP_TEST_LSAN
static const char *helper_name;

/* At a helper's exit (before LeakSanitizer's own check, atexit runs
 * last-registered first): a leak is written to the harness's leak file,
 * which the case that started the helper reads (gp_test_run) — a host
 * reaps its plugin and would never show the exit status. */
static void helper_leak_check(void)
{
    fflush(stdout);
    fflush(stderr);
    if (!__lsan_do_recoverable_leak_check())
        return;
    const char *path = getenv(GP_TEST_LEAK_FILE_ENV);
    int fd = path && *path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (fd >= 0) {
        dprintf(fd, "helper \"%s\" (pid %d) leaked (its LeakSanitizer report went to its stderr)\n",
                helper_name, (int)getpid());
        close(fd);
    }
    _exit(23); /* the report is out; no second one */
}
#endif

void gp_test_helper_dispatch(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], GP_TEST_HELPER_FLAG) != 0) {
        gp_test_leak_file_init();
        return;
    }
    if (argc < 3) {
        fprintf(stderr, "%s: %s needs a name\n", argv[0], GP_TEST_HELPER_FLAG);
        exit(2);
    }
    for (int i = 0; i < nhelpers; i++)
        if (same_name(helpers[i].name, argv[2])) {
#ifdef GP_TEST_LSAN
            helper_name = helpers[i].name;
            atexit(helper_leak_check);
#endif
            exit(helpers[i].fn(argc - 2, argv + 2));
        }
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

char *gp_test_run_helper_output(const char *name, const char *arg, bool with_stdout, int *status)
{
    char path[] = "/tmp/gphelperoutXXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        GP_FAILF("mkstemp: %s", strerror(errno));
        return NULL;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (with_stdout)
            dup2(fd, 1);
        dup2(fd, 2);
        execv(gp_test_self_exe(), (char **)gp_test_helper_argv(name, arg));
        _exit(127);
    }
    close(fd);
    *status = pid < 0 ? -1 : gp_test_wait_child(pid, (int)(10000 * gp_test_scale()));
    if (*status == -1) {
        GP_FAILF("helper %s %s did not end", name, arg ? arg : "");
        if (pid > 0)
            gp_test_reap(pid, 0);
        unlink(path);
        return NULL;
    }
    char *text = gp_test_read_file(path, NULL);
    unlink(path);
    return text;
}
