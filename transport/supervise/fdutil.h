/* Internal: small fd and clock helpers shared by the supervise pieces. */
#ifndef GP_SUPERVISE_FDUTIL_H
#define GP_SUPERVISE_FDUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t gp__sup_now_ms(void);

/* Milliseconds left until `deadline_ms` as a poll() timeout (>= 0). */
int gp__sup_left_ms(int64_t deadline_ms);

/* Set or clear O_NONBLOCK / FD_CLOEXEC. 0 or -1 with errno. */
int gp__sup_set_nonblock(int fd, bool on);
int gp__sup_set_cloexec(int fd, bool on);

/* write() that reports a closed reader as EPIPE instead of raising SIGPIPE
 * (the signal is blocked in this thread for the call and, if it was not
 * already pending, consumed). Same return as write(). */
ssize_t gp__sup_write_nosigpipe(int fd, const void *buf, size_t n);

/* Read exactly n bytes before `deadline_ms`, polling. Returns 0, or -1 with
 * errno: ETIMEDOUT, EPIPE (end of file first; *got says how much came), or
 * the read error. The fd may be blocking or not. */
int gp__sup_read_full(int fd, void *buf, size_t n, int64_t deadline_ms, size_t *got);

/* Write all n bytes before `deadline_ms` without SIGPIPE. Same errors. */
int gp__sup_write_full(int fd, const void *buf, size_t n, int64_t deadline_ms, size_t *put);

/* close() that keeps errno and sets *fd to -1; ignores -1. */
void gp__sup_close(int *fd);

#endif
