/* Internal: SecureConfig (spec §5.3). What runs is what was hashed:
 *
 * - An ELF binary is opened once, hashed through that descriptor and run
 *   through it (fexecve): a file renamed or linked over the path after the
 *   hash does not run. It keeps its real identity (/proc/self/exe, so
 *   $ORIGIN rpaths and self re-exec work); the one gap is a rewrite of the
 *   same inode in place between hash and exec, which needs write access to
 *   the binary itself.
 * - A `#!` script cannot run from the real file's descriptor: the kernel
 *   hands the interpreter /dev/fd/N to open, so the descriptor must survive
 *   exec, and an open descriptor of the real file would let the plugin (or
 *   anyone rewriting the inode) change what the interpreter reads. So a
 *   script is copied into a memfd, sealed (no write, grow or shrink, by
 *   anyone, ever), the sealed copy is hashed and that copy runs.
 *
 * Why not a memfd for ELF too: a binary run from a memfd loses its path
 * ($ORIGIN rpaths stop resolving — every dynamically linked Bazel test
 * binary here — and /proc/self/exe names "/memfd:... (deleted)"), and its
 * text lives in the memfd's own memory, not shared with the page cache.
 * Cost, measured for a 20 MB file (best of 5, a loaded 2-core machine):
 * the ELF path is today's (hash only, 120-190 ms with mbedTLS's SHA-256);
 * a script of that size takes 117-405 ms, the in-kernel copy alone 25-110
 * ms, and its pages stay in memory while the plugin runs. A script sees
 * /dev/fd/N as its own path ($0, __file__), and keeps that one descriptor
 * open. */
#ifndef GP_PROCESS_CHECKSUM_H
#define GP_PROCESS_CHECKSUM_H

#include <goplugin/err.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Open `path` (a script: its sealed copy), SHA-256 it and compare with
 * `want` in constant time. On GP_OK *fd is what to fexecve (close-on-exec;
 * caller closes) and *script tells whether it starts with "#!" (spawn must
 * then leave it open across exec). Errors: GP_ECHECKSUM ("checksums did
 * not match: expected <hex>, binary has <hex>"), GP_ESYS (open/copy
 * failed). */
gp_err gp__checksum_open(const char *path, const uint8_t want[32], int *fd, bool *script, char *err,
                         size_t errlen);

/* SHA-256 of everything readable from `fd` (from offset 0). */
gp_err gp__sha256_fd(int fd, uint8_t out[32]);

/* 1 when equal; time depends only on n. */
int gp__ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
