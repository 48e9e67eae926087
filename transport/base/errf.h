/* Internal: the one way error words are written into a caller's buffer.
 *
 * The FIRST error wins (nanopb's PB_SET_ERROR idea): a message is written
 * only while the buffer is empty, so the words of the root cause survive a
 * caller that adds its own on the way out. Callers' buffers may hold
 * garbage, so a function clears first: an empty message ("%s", "") empties
 * the buffer, and gp__status_clear empties a gp_status.
 */
#ifndef GP_BASE_ERRF_H
#define GP_BASE_ERRF_H

#include <stdarg.h>
#include <stddef.h>

#include <goplugin/err.h>

/* printf into buf[cap] (NULL or 0: nothing), truncating; see above. */
void gp__errf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void gp__verrf(char *buf, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* err GP_OK, grpc_code 0, msg "". NULL: nothing. */
void gp__status_clear(gp_status *st);

/* Unless st already holds an error: set its code (grpc_code 0) and printf
 * its words. NULL st: nothing. Returns err, so `return gp__status_setf(...)`. */
gp_err gp__status_setf(gp_status *st, gp_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
