/* Blobs: copy a binary into the blob folder, hashing as it goes. */
#include "transport/store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/base/errf.h"

static gp_err hash_copy(int in, int out, uint8_t sha[32], uint64_t *size)
{
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    gp_err rc = mbedtls_sha256_starts_ret(&ctx, 0) == 0 ? GP_OK : GP_ESYS;
    unsigned char buf[65536];
    *size = 0;
    while (rc == GP_OK) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r == 0 ? GP_OK : GP_ESYS;
            break;
        }
        if (mbedtls_sha256_update_ret(&ctx, buf, (size_t)r) != 0) {
            rc = GP_ESYS;
            break;
        }
        *size += (uint64_t)r;
        for (ssize_t off = 0; out >= 0 && off < r && rc == GP_OK;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno != EINTR)
                rc = GP_ESYS;
            else if (w > 0)
                off += w;
        }
    }
    if (rc == GP_OK && mbedtls_sha256_finish_ret(&ctx, sha) != 0)
        rc = GP_ESYS;
    mbedtls_sha256_free(&ctx);
    return rc;
}

gp_err gp__store_sha256_file(const char *path, uint8_t sha[32], gp_status *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gp__status_setf(st, errno == ENOENT ? GP_ENOTFOUND : GP_ESYS, "store: open %s: %s",
                               path, strerror(errno));
    uint64_t size;
    gp_err rc = hash_copy(fd, -1, sha, &size);
    int saved = errno;
    close(fd);
    if (rc != GP_OK)
        return gp__status_setf(st, rc, "store: read %s: %s", path, strerror(saved));
    return GP_OK;
}

gp_err gp__store_blob_copy(const char *src, const char *blob_dir, char *tmp_path, size_t cap,
                           uint8_t sha[32], uint64_t *size, gp_status *st)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return gp__status_setf(st, errno == ENOENT ? GP_ENOTFOUND : GP_ESYS,
                               "install: cannot open %s: %s", src, strerror(errno));
    struct stat sb;
    if (fstat(in, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(in);
        return gp__status_setf(st, GP_EINVAL, "install: %s is not a regular file", src);
    }
    if (snprintf(tmp_path, cap, "%s/" GP__STORE_TMP_PREFIX "blob-XXXXXX", blob_dir) >= (int)cap) {
        close(in);
        return gp__status_setf(st, GP_EINVAL, "install: the store's path is too long");
    }
    int out = mkostemp(tmp_path, O_CLOEXEC);
    if (out < 0) {
        int e = errno;
        close(in);
        return gp__status_setf(st, GP_ESYS, "install: cannot create a file in %s: %s", blob_dir,
                               strerror(e));
    }
    gp__store_crash_point("blob temp file created");
    gp_err rc = hash_copy(in, out, sha, size);
    int e = errno;
    const char *what = "copy";
    if (rc == GP_OK && fchmod(out, 0755) != 0) {
        rc = GP_ESYS, e = errno, what = "chmod";
    }
    if (rc == GP_OK && fsync(out) != 0) {
        rc = GP_ESYS, e = errno, what = "fsync";
    }
    if (close(out) != 0 && rc == GP_OK) {
        rc = GP_ESYS, e = errno, what = "close";
    }
    close(in);
    if (rc != GP_OK) {
        unlink(tmp_path);
        return gp__status_setf(st, rc, "install: %s of %s into %s failed: %s", what, src, blob_dir,
                               strerror(e));
    }
    gp__store_crash_point("blob temp file written and synced");
    return GP_OK;
}
