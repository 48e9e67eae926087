/* Internal: SecureConfig (spec §5.3). The binary is opened once, hashed
 * through that descriptor and later executed through it (fexecve), so what
 * runs is what was hashed, not whatever sits at the path a moment later. */
#ifndef GP_PROCESS_CHECKSUM_H
#define GP_PROCESS_CHECKSUM_H

#include <goplugin/err.h>

#include <stddef.h>
#include <stdint.h>

/* Open `path` read-only (O_CLOEXEC), SHA-256 it and compare with `want` in
 * constant time. On GP_OK *fd is the open file (caller closes). Errors:
 * GP_ECHECKSUM ("checksums did not match: expected <hex>, binary has
 * <hex>"), GP_ESYS (open/read failed). */
gp_err gp__checksum_open(const char *path, const uint8_t want[32], int *fd, char *err,
                         size_t errlen);

/* SHA-256 of everything readable from `fd` (from offset 0). */
gp_err gp__sha256_fd(int fd, uint8_t out[32]);

/* 1 when equal; time depends only on n. */
int gp__ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
