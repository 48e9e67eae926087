/* Log files at their cap: renamed between runs, copied and cut during one
 * (log_rotate.h says why two ways). */
#include "transport/store/log_rotate.h"

#include "transport/base/fdcopy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool at_cap(const char *path, long long cap)
{
    struct stat sb;
    return path && cap > 0 && stat(path, &sb) == 0 && sb.st_size >= cap;
}

static bool old_name(const char *path, const char *suffix, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s%s", path, suffix);
    return n > 0 && (size_t)n < cap;
}

void gp__log_rotate_rename(const char *path, long long cap, const gp_logger *lg)
{
    char old[4096];
    if (!at_cap(path, cap) || !old_name(path, ".1", old, sizeof old))
        return;
    if (rename(path, old) != 0)
        gp_logf(lg, GP_LOG_WARN, "manager", NULL, 0, "rotate %s: %s (it keeps growing)", path,
                strerror(errno));
}

int gp__log_rotate_cut(const char *path, long long cap, const gp_logger *lg)
{
    char old[4096], tmp[4096];
    if (!at_cap(path, cap) || !old_name(path, ".1", old, sizeof old) ||
        !old_name(path, ".1.tmp", tmp, sizeof tmp))
        return 0;
    const char *step = "open";
    int in = open(path, O_RDWR | O_CLOEXEC);
    int out = in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = out >= 0;
    /* Copy, move the copy into place, then catch up on what came meanwhile
     * (out still names the moved file) and cut at once: the loss window is
     * that last read to the cut, and a failure before the cut loses
     * nothing. */
    struct stat sb;
    if (ok && !(ok = fstat(in, &sb) == 0))
        step = "stat";
    if (ok && !(ok = gp__fd_copy(in, out, (long long)sb.st_size + cap) >= 0))
        step = "copy";
    if (ok && !(ok = rename(tmp, old) == 0))
        step = "rename";
    int end = ok ? gp__fd_copy(in, out, cap) : -1;
    if (ok && !(ok = end >= 0))
        step = "copy";
    /* Still no end: the plugin writes faster than we copy. No cut this
     * time (it would drop what the copy did not reach). */
    bool outpaced = ok && end == 0;
    if (ok && !outpaced && !(ok = ftruncate(in, 0) == 0))
        step = "truncate";
    int err = errno;
    if (out >= 0)
        close(out);
    if (in >= 0)
        close(in);
    if (outpaced)
        gp_logf(lg, GP_LOG_WARN, "manager", NULL, 0,
                "rotate %s: the plugin writes faster than the copy; not cut this time", path);
    else if (!ok)
        gp_logf(lg, GP_LOG_WARN, "manager", NULL, 0, "rotate %s: %s: %s (it keeps growing)", path,
                step, strerror(err));
    if (!ok)
        unlink(tmp);
    return ok && !outpaced ? 1 : -1;
}
