/* Internal to transport/handshake: small helpers shared by its files. */
#ifndef GP_HANDSHAKE_UTIL_H
#define GP_HANDSHAKE_UTIL_H

#include <stddef.h>

#include "transport/base/strbuf.h"

/* How many raw bytes of peer text an error message shows. */
#define GP_HS_QUOTE_LIMIT 64

/* A plain decimal number in s[0..n): digits only (leading zeros allowed,
 * no sign, no spaces), at most `max`. Returns 0 on success, -1 when it is
 * not a number, -2 when it is a number above `max`. */
int gp__hs_decimal(const char *s, size_t n, unsigned long max, unsigned long *out);

/* Go's strconv.ParseBool on s[0..n): 1 for 1 t T true TRUE True, 0 for
 * 0 f F false FALSE False, -1 for anything else. */
int gp__hs_parse_bool(const char *s, size_t n);

/* gp__errf (transport/base/errf.h): the first error wins; "" clears. */
void gp__hs_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quote s[0..n) for an error message into `b` (initialised here; the
 * caller frees it with gp__strbuf_free). Returns the quoted text, or a
 * placeholder if memory ran out: never NULL. */
const char *gp__hs_quote(gp__strbuf *b, const char *s, size_t n);

#endif
