/* Internal: which process a pid names right now. A pid number is reused
 * once its process is reaped; the pair (pid, start time) is not. */
#ifndef GP_PROCESS_PIDSTAT_H
#define GP_PROCESS_PIDSTAT_H

#include <goplugin/err.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Field 22 (starttime, clock ticks since boot) of a /proc/<pid>/stat text.
 * The command name (field 2) is in parentheses and may itself contain
 * spaces and ')', so fields are counted after the last ')'.
 * Errors: GP_EPROTO (not that shape). */
gp_err gp__pidstat_parse_start(const char *text, size_t len, uint64_t *out);

/* The start time of `pid` from /proc. Errors: GP_ENOTFOUND (no such
 * process), GP_EPROTO, GP_ESYS. */
gp_err gp__pid_start_time(pid_t pid, uint64_t *out);

#endif
