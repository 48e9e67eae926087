/* SHA-256 with mbedTLS 2.28 (the _ret API); the sealed copy (checksum.h). */
#include "transport/process/checksum.h"

#include "transport/base/fdcopy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int gp__ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

gp_err gp__sha256_fd(int fd, uint8_t out[32])
{
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    gp_err rc = GP_OK;
    if (mbedtls_sha256_starts_ret(&ctx, 0) != 0) {
        rc = GP_ESYS;
        goto done;
    }
    unsigned char buf[16384];
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, sizeof buf, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = GP_ESYS;
            goto done;
        }
        if (r == 0)
            break;
        if (mbedtls_sha256_update_ret(&ctx, buf, (size_t)r) != 0) {
            rc = GP_ESYS;
            goto done;
        }
        off += r;
    }
    if (mbedtls_sha256_finish_ret(&ctx, out) != 0)
        rc = GP_ESYS;
done:
    mbedtls_sha256_free(&ctx);
    return rc;
}

static void hex(const uint8_t *h, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* A memfd we may exec: MFD_EXEC where the kernel knows it (vm.memfd_noexec
 * may otherwise make it non-executable), plain on older kernels. */
static int exec_memfd(void)
{
    int m = memfd_create("gp-plugin", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (m < 0 && errno == EINVAL)
        m = memfd_create("gp-plugin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    /* Above stdio: spawn's child dup2s onto 0..2 before exec. */
    if (m >= 0 && m <= 2) {
        int moved = fcntl(m, F_DUPFD_CLOEXEC, 3);
        close(m);
        m = moved;
    }
    return m;
}

gp_err gp__checksum_open(const char *path, const uint8_t want[32], int *fd, bool *script, char *err,
                         size_t errlen)
{
    *fd = -1;
    *script = false;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        snprintf(err, errlen, "open plugin binary %s for its checksum: %s", path, strerror(errno));
        return GP_ESYS;
    }
    char magic[2];
    bool is_script = pread(f, magic, 2, 0) == 2 && magic[0] == '#' && magic[1] == '!';
    int run = f;
    if (is_script) {
        run = exec_memfd();
        if (run < 0) {
            snprintf(err, errlen, "memfd for plugin script %s: %s", path, strerror(errno));
            close(f);
            return GP_ESYS;
        }
        if (gp__fd_copy(f, run, LLONG_MAX) != 1) {
            snprintf(err, errlen, "read plugin script %s for its checksum: %s", path,
                     strerror(errno));
            close(f);
            close(run);
            return GP_ESYS;
        }
        close(f);
        /* Sealed before hashing: from here on nobody can change these bytes. */
        if (fcntl(run, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) !=
            0) {
            snprintf(err, errlen, "seal the copy of plugin script %s: %s", path, strerror(errno));
            close(run);
            return GP_ESYS;
        }
    }
    uint8_t got[32];
    if (gp__sha256_fd(run, got) != GP_OK) {
        snprintf(err, errlen, "read plugin binary %s for its checksum: %s", path, strerror(errno));
        close(run);
        return GP_ESYS;
    }
    if (!gp__ct_equal(got, want, 32)) {
        char w[65], g[65];
        hex(want, w);
        hex(got, g);
        snprintf(err, errlen, "checksums did not match: expected %s, binary has %s", w, g);
        close(run);
        return GP_ECHECKSUM;
    }
    *fd = run;
    *script = is_script;
    return GP_OK;
}
