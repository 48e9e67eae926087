/* Log files held to a cap: a rename between runs; a copy and a cut in
 * place while a writer holds the file open (appending), whose next write
 * then starts the file again; all of a file far over the cap kept; nothing
 * under the cap; a failure before the cut loses nothing and says why. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/store/log_rotate.h"
#include "transport/testing/gp_test.h"

static char dir[1024], path[1100], old[1200], tmp[1200];
static char warned[1024];

static void on_log(void *ctx, gp_log_level level, const char *name, const char *msg,
                   const gp_log_kv *kv, size_t nkv)
{
    (void)ctx, (void)name, (void)kv, (void)nkv;
    if (level == GP_LOG_WARN)
        snprintf(warned, sizeof warned, "%s", msg);
}

static const gp_logger lg = {.fn = on_log, .level = GP_LOG_TRACE};

static int setup(void)
{
    const char *base = getenv("TEST_TMPDIR");
    snprintf(dir, sizeof dir, "%s/logrotXXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/p.stderr", dir);
    snprintf(old, sizeof old, "%s.1", path);
    snprintf(tmp, sizeof tmp, "%s.1.tmp", path);
    warned[0] = '\0';
    return 0;
}

static void teardown(void)
{
    unlink(path);
    unlink(old);
    rmdir(tmp);
    unlink(tmp);
    rmdir(dir);
}

/* A writer as the plugin is one: O_APPEND, held open. */
static int writer(void)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static void put(int fd, char c, size_t n)
{
    char *b = malloc(n);
    memset(b, c, n);
    GP_CHECK_INT(gp_test_write_all(fd, b, n), ==, 0);
    free(b);
}

static long long size_of(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
}

static int byte_at(const char *p, off_t at)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    unsigned char c = 0;
    bool ok = fd >= 0 && pread(fd, &c, 1, at) == 1;
    if (fd >= 0)
        close(fd);
    return ok ? c : -1;
}

GP_TEST(under_the_cap_nothing_moves)
{
    int fd = writer();
    put(fd, 'a', 100);
    GP_CHECK_INT(gp__log_rotate_cut(path, 4096, &lg), ==, 0);
    gp__log_rotate_rename(path, 4096, &lg);
    GP_CHECK_INT(size_of(path), ==, 100);
    GP_CHECK_INT(size_of(old), ==, -1);
    /* A cap of 0 or less is "never". */
    put(fd, 'a', 5000);
    GP_CHECK_INT(gp__log_rotate_cut(path, 0, &lg), ==, 0);
    GP_CHECK_INT(gp__log_rotate_cut(path, -1, &lg), ==, 0);
    GP_CHECK_INT(size_of(path), ==, 5100);
    GP_CHECK_INT(gp__log_rotate_cut(NULL, 4096, &lg), ==, 0);
    close(fd);
    GP_CHECK_STR(warned, "");
}

GP_TEST(a_cut_keeps_the_writer_writing_from_the_start)
{
    int prev = open(old, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    put(prev, 'z', 10); /* the previous .1: replaced */
    close(prev);
    int fd = writer();
    put(fd, 'a', 5000);
    GP_CHECK_INT(gp__log_rotate_cut(path, 4096, &lg), ==, 1);
    GP_CHECK_INT(size_of(old), ==, 5000);
    GP_CHECK_INT(byte_at(old, 0), ==, 'a');
    GP_CHECK_INT(byte_at(old, 4999), ==, 'a');
    GP_CHECK_INT(size_of(path), ==, 0);
    GP_CHECK_INT(size_of(tmp), ==, -1);
    /* O_APPEND: the next write is at the new end, 0, not at 5000 behind a
     * hole. */
    put(fd, 'b', 10);
    GP_CHECK_INT(size_of(path), ==, 10);
    GP_CHECK_INT(byte_at(path, 0), ==, 'b');
    close(fd);
    GP_CHECK_STR(warned, "");
}

/* A second of a chatty plugin can take a file far past a small cap: all
 * of it is kept. */
GP_TEST(a_file_far_over_the_cap_is_copied_whole)
{
    int fd = writer();
    put(fd, 'a', 50000);
    GP_CHECK_INT(gp__log_rotate_cut(path, 4096, &lg), ==, 1);
    GP_CHECK_INT(size_of(old), ==, 50000);
    GP_CHECK_INT(byte_at(old, 49999), ==, 'a');
    GP_CHECK_INT(size_of(path), ==, 0);
    close(fd);
}

static atomic_bool writing;

static void *write_fast(void *arg)
{
    int fd = *(int *)arg;
    char chunk[4096];
    memset(chunk, 'w', sizeof chunk);
    /* At most 64 MiB: a slow round must not fill the disk. */
    for (int i = 0; i < 16384 && atomic_load(&writing); i++)
        if (write(fd, chunk, sizeof chunk) < 0)
            break;
    return NULL;
}

/* A writer that stays ahead of the copy (a 1-byte cap: any line between
 * the copy's end and its catch-up is "ahead") is not cut that round, and
 * that is said. */
GP_TEST(a_writer_ahead_of_the_copy_is_not_cut)
{
    int fd = writer();
    put(fd, 'a', 100);
    atomic_store(&writing, true);
    pthread_t t;
    GP_CHECK_INT(pthread_create(&t, NULL, write_fast, &fd), ==, 0);
    bool seen = false;
    long long until = gp_test_now_ms() + (long long)(5000 * gp_test_scale());
    while (!seen && gp_test_now_ms() < until) {
        warned[0] = '\0';
        int cut = gp__log_rotate_cut(path, 1, &lg);
        seen = cut == -1 &&
               strstr(warned, "the plugin writes faster than the copy; not cut this time");
    }
    atomic_store(&writing, false);
    pthread_join(t, NULL);
    GP_CHECK(seen);
    close(fd);
}

GP_TEST(a_rename_between_runs)
{
    int fd = writer();
    put(fd, 'a', 4096);
    close(fd);
    gp__log_rotate_rename(path, 4096, &lg);
    GP_CHECK_INT(size_of(path), ==, -1);
    GP_CHECK_INT(size_of(old), ==, 4096);
    GP_CHECK_STR(warned, "");
}

GP_TEST(a_failed_copy_cuts_nothing_and_says_why)
{
    int fd = writer();
    put(fd, 'a', 5000);
    /* The copy's file cannot be made (a directory has its name). */
    GP_CHECK(mkdir(tmp, 0700) == 0);
    GP_CHECK_INT(gp__log_rotate_cut(path, 4096, &lg), ==, -1);
    GP_CHECK_INT(size_of(path), ==, 5000);
    GP_CHECK_INT(size_of(old), ==, -1);
    GP_CHECK_CONTAINS(warned, "rotate ");
    GP_CHECK_CONTAINS(warned, "/p.stderr: open: Is a directory (it keeps growing)");
    close(fd);
}

int main(void)
{
    gp_test_fixture(setup, teardown);
    GP_RUN(under_the_cap_nothing_moves);
    GP_RUN(a_cut_keeps_the_writer_writing_from_the_start);
    GP_RUN(a_file_far_over_the_cap_is_copied_whole);
    GP_RUN(a_writer_ahead_of_the_copy_is_not_cut);
    GP_RUN(a_rename_between_runs);
    GP_RUN(a_failed_copy_cuts_nothing_and_says_why);
    return gp_test_done();
}
