#include <goplugin/err.h>
#include <goplugin/log.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "transport/base/errf.h"
#include "transport/base/fdcopy.h"
#include "transport/base/strbuf.h"
#include "transport/testing/gp_test.h"

GP_TEST(strerror_covers_every_code)
{
    for (int e = 0; e < GP_ERR_COUNT_; e++)
        GP_CHECK(strcmp(gp_strerror((gp_err)e), "unknown error") != 0);
    GP_CHECK_STR(gp_strerror((gp_err)999), "unknown error");
    GP_CHECK_STR(gp_strerror(GP_ETIMEDOUT), "timed out");
}

GP_TEST(strbuf_json_escapes)
{
    gp__strbuf b;
    gp__strbuf_init(&b);
    gp__strbuf_json_string(&b, "a\"b\\c\n\x01");
    GP_CHECK(b.ok);
    GP_CHECK_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    gp__strbuf_free(&b);
}

GP_TEST(strbuf_quote_truncates_and_escapes)
{
    gp__strbuf b;
    gp__strbuf_init(&b);
    gp__strbuf_quote(&b,
                     "ab\x7f"
                     "cdef",
                     7, 4);
    GP_CHECK_STR(b.data, "\"ab\\x7fc\"... (7 bytes)");
    gp__strbuf_free(&b);
}

GP_TEST(strbuf_cap_latches_failure)
{
    gp__strbuf b;
    gp__strbuf_init(&b);
    b.max = 8;
    gp__strbuf_append(&b, "1234567");
    GP_CHECK(b.ok);
    gp__strbuf_append(&b, "8");
    GP_CHECK(!b.ok);
    gp__strbuf_free(&b);
}

GP_TEST(level_names)
{
    GP_CHECK_STR(gp_log_level_name(GP_LOG_WARN), "warn");
    GP_CHECK_STR(gp_log_level_name(GP_LOG_TRACE), "trace");
}

GP_TEST(errf_keeps_the_first_error)
{
    char buf[16];
    memset(buf, 'x', sizeof buf);        /* garbage, as a caller's stack */
    gp__errf(buf, sizeof buf, "%s", ""); /* the reset every function starts with */
    GP_CHECK_STR(buf, "");
    gp__errf(buf, sizeof buf, "root %d", 1);
    gp__errf(buf, sizeof buf, "context %d", 2);
    GP_CHECK_STR(buf, "root 1");
    gp__errf(buf, sizeof buf, "%s", "");
    gp__errf(buf, sizeof buf, "a long message cut at the end");
    GP_CHECK_STR(buf, "a long message ");
    gp__errf(NULL, 0, "nothing"); /* no buffer: no crash */
    gp__errf(buf, 0, "%s", "");   /* no room: untouched */
    GP_CHECK_STR(buf, "a long message ");
}

GP_TEST(status_setf_keeps_the_first_error)
{
    gp_status st;
    memset(&st, 0x55, sizeof st);
    gp__status_clear(&st);
    GP_CHECK_INT(st.err, ==, GP_OK);
    GP_CHECK_STR(st.msg, "");
    GP_CHECK_INT(gp__status_setf(&st, GP_EIO, "read %s", "pipe"), ==, GP_EIO);
    GP_CHECK_INT(gp__status_setf(&st, GP_ETIMEDOUT, "later"), ==, GP_ETIMEDOUT);
    GP_CHECK_INT(st.err, ==, GP_EIO);
    GP_CHECK_STR(st.msg, "read pipe");
    GP_CHECK_INT(gp__status_setf(NULL, GP_EINVAL, "x"), ==, GP_EINVAL);
    GP_CHECK_INT((int)sizeof st.msg, ==, GP_ERRMSG_MAX);
}

/* A file of n bytes 0, 1, 2, ... (mod 251), read from its start. */
static int pattern_file(size_t n)
{
    FILE *f = tmpfile();
    for (size_t i = 0; f && i < n; i++)
        fputc((int)(i % 251), f);
    if (!f || fflush(f) != 0)
        return -1;
    int fd = dup(fileno(f));
    fclose(f);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static bool is_pattern(int fd, size_t from, size_t n)
{
    unsigned char b[1];
    lseek(fd, 0, SEEK_SET);
    for (size_t i = 0; i < n; i++)
        if (read(fd, b, 1) != 1 || b[0] != (from + i) % 251)
            return false;
    return read(fd, b, 1) == 0;
}

/* File to file (sendfile): up to the limit (0), on to the end (1), both
 * offsets moved on; a pipe (sendfile refuses it as a source) by hand. */
GP_TEST(fd_copy_to_the_limit_and_to_the_end)
{
    const size_t n = 200000;
    int in = pattern_file(n), out = memfd_create("copy", 0);
    GP_CHECK(in >= 0 && out >= 0);
    GP_CHECK_INT(gp__fd_copy(in, out, 70000), ==, 0);
    GP_CHECK_INT(lseek(in, 0, SEEK_CUR), ==, 70000);
    GP_CHECK_INT(gp__fd_copy(in, out, 1LL << 40), ==, 1);
    GP_CHECK(is_pattern(out, 0, n));
    GP_CHECK_INT(gp__fd_copy(in, out, 10), ==, 1); /* at the end already */
    int p[2];
    GP_CHECK_INT(pipe(p), ==, 0);
    unsigned char buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i % 251);
    GP_CHECK_INT(write(p[1], buf, sizeof buf), ==, (long)sizeof buf);
    close(p[1]);
    int out2 = memfd_create("copy2", 0);
    GP_CHECK_INT(gp__fd_copy(p[0], out2, 400), ==, 0);
    GP_CHECK_INT(gp__fd_copy(p[0], out2, 1LL << 40), ==, 1);
    GP_CHECK(is_pattern(out2, 0, sizeof buf));
    /* A destination that cannot be written: -1 and errno. */
    lseek(in, 0, SEEK_SET);
    int ro = open("/dev/null", O_RDONLY);
    errno = 0;
    GP_CHECK_INT(gp__fd_copy(in, ro, 100), ==, -1);
    GP_CHECK(errno != 0);
    close(ro);
    close(p[0]);
    close(in);
    close(out);
    close(out2);
}

int main(void)
{
    GP_RUN(strerror_covers_every_code);
    GP_RUN(strbuf_json_escapes);
    GP_RUN(strbuf_quote_truncates_and_escapes);
    GP_RUN(strbuf_cap_latches_failure);
    GP_RUN(level_names);
    GP_RUN(errf_keeps_the_first_error);
    GP_RUN(status_setf_keeps_the_first_error);
    GP_RUN(fd_copy_to_the_limit_and_to_the_end);
    return gp_test_done();
}
