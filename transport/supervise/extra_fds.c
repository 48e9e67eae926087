/* gp_extra_fds_apply: runs between fork and exec, so only async-signal-safe
 * calls and no allocation; even the error words are put together by hand
 * (snprintf and strerror are not async-signal-safe). */
#include <goplugin/handoff.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#define MAX_EXTRA 64
#define NO_FD INT_MIN /* fail(): no "a -> b" part */

typedef struct words {
    char *p, *end; /* room left in a gp_status's msg, keeping the NUL */
} words;

static void put_s(words *w, const char *s)
{
    while (*s && w->p < w->end)
        *w->p++ = *s++;
    *w->p = 0;
}

static void put_i(words *w, int v)
{
    char d[12];
    int n = 0;
    unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
    do
        d[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        put_s(w, "-");
    char one[2] = {0, 0};
    while (n > 0) {
        one[0] = d[--n];
        put_s(w, one);
    }
}

/* "extra fds: <what> <a> -> <b>: errno <e>", set unless st holds an error. */
static gp_err fail(gp_status *st, gp_err rc, const char *what, int a, int b, int e)
{
    if (st && st->err == GP_OK) {
        st->err = rc;
        st->grpc_code = 0;
        words w = {st->msg, st->msg + sizeof st->msg - 1};
        put_s(&w, "extra fds: ");
        put_s(&w, what);
        if (a != NO_FD) {
            put_s(&w, " ");
            put_i(&w, a);
            put_s(&w, " -> ");
            put_i(&w, b);
        }
        if (e) {
            /* strerrorname_np reads a constant table: async-signal-safe. */
            const char *name = strerrorname_np(e);
            put_s(&w, ": errno ");
            put_i(&w, e);
            if (name) {
                put_s(&w, " (");
                put_s(&w, name);
                put_s(&w, ")");
            }
        }
    }
    errno = e ? e : EINVAL;
    return rc;
}

gp_err gp_extra_fds_apply(const gp_extra_fd *fds, size_t n, gp_status *st)
{
    if (st) {
        st->err = GP_OK;
        st->grpc_code = 0;
        st->msg[0] = 0;
    }
    if (n > MAX_EXTRA)
        return fail(st, GP_EINVAL, "more than 64 entries", NO_FD, 0, 0);
    /* First move every source above all targets and sources, so that a
     * dup2 onto a target can never clobber a source still to be moved. */
    int floor = 3;
    for (size_t i = 0; i < n; i++) {
        if (fds[i].fd < 0 || fds[i].child_fd < 0)
            return fail(st, GP_EINVAL, "negative fd", fds[i].fd, fds[i].child_fd, EBADF);
        if (fds[i].fd >= floor)
            floor = fds[i].fd + 1;
        if (fds[i].child_fd >= floor)
            floor = fds[i].child_fd + 1;
    }
    int tmp[MAX_EXTRA];
    for (size_t i = 0; i < n; i++) {
        tmp[i] = fcntl(fds[i].fd, F_DUPFD_CLOEXEC, floor);
        if (tmp[i] < 0) {
            int e = errno;
            for (size_t j = 0; j < i; j++)
                close(tmp[j]);
            return fail(st, GP_ESYS, "dup", fds[i].fd, floor, e);
        }
    }
    gp_err rc = GP_OK;
    for (size_t i = 0; i < n; i++) {
        /* dup2 leaves the new descriptor without FD_CLOEXEC. */
        if (rc == GP_OK && dup2(tmp[i], fds[i].child_fd) < 0)
            rc = fail(st, GP_ESYS, "dup2", fds[i].fd, fds[i].child_fd, errno);
    }
    int e = errno;
    for (size_t i = 0; i < n; i++)
        close(tmp[i]);
    errno = e;
    return rc;
}
