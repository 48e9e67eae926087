/* Test data: the gob bytes captured from a real go-plugin 1.0.1 session
 * (spec §2.7), written as in the spec: hex tokens ("ff81" is two bytes)
 * and quoted strings. gp_test_spec_bytes parses them. */
#ifndef GP_NETRPC_GOB_SPEC_BYTES_H
#define GP_NETRPC_GOB_SPEC_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* host -> plugin on the control stream: Ping, Dispense("greeter"), Quit */
#define SPEC_PING_REQUEST                                              \
    "2f ff81 03 01 01 07 \"Request\" 01 ff82 00 01 02"                 \
    " 01 0d \"ServiceMethod\" 01 0c 00  01 03 \"Seq\" 01 06 00  00 00" \
    " 11 ff82 01 0c \"Control.Ping\" 00"                               \
    " 03 02 00 01"
#define SPEC_DISPENSE_REQUEST                        \
    " 19 ff82 01 12 \"Dispenser.Dispense\" 01 01 00" \
    " 0a 0c 00 07 \"greeter\""
#define SPEC_QUIT_REQUEST " 13 ff82 01 0c \"Control.Quit\" 01 02 00  03 02 00 01"

/* plugin -> host: the answers */
#define SPEC_PING_RESPONSE                                      \
    "3a ff83 03 01 01 08 \"Response\" 01 ff84 00 01 03"         \
    " 01 0d \"ServiceMethod\" 01 0c 00  01 03 \"Seq\" 01 06 00" \
    " 01 05 \"Error\" 01 0c 00  00 00"                          \
    " 11 ff84 01 0c \"Control.Ping\" 00"                        \
    " 0a ff85 03 01 02 ff86 00 00 00"                           \
    " 03 ff86 00"
#define SPEC_DISPENSE_RESPONSE                       \
    " 19 ff84 01 12 \"Dispenser.Dispense\" 01 01 00" \
    " 03 06 00 01"
#define SPEC_QUIT_RESPONSE " 13 ff84 01 0c \"Control.Quit\" 01 02 00  03 ff86 00"

/* On the dispensed stream, after the Response definition was sent: */
#define SPEC_ERROR_REPLY                                     \
    "19 ff84 01 0c \"Plugin.Greet\" 01 02 01 04 \"boom\" 00" \
    " 0a ff85 03 01 02 ff86 00 00 00  03 ff86 00"
#define SPEC_UNKNOWN_METHOD                                                               \
    "36 ff84 01 0b \"Plugin.Nope\" 01 03 01 22 \"rpc: can't find method Plugin.Nope\" 00" \
    " 03 ff86 00"

/* The value of Args{"x",["a","b"],{"k":"v"},{2},[1,2],-1,17.0,true} (no length) */
#define SPEC_ARGS_VALUE                                                         \
    "ff84 01 01 78 01 02 01 61 01 62 01 01 01 6b 01 76 01 01 04 00 01 02 01 02" \
    " 01 01 01 fe 31 40 01 01 00"

/* Parses the notation into out (cap bytes); returns the length, or
 * (size_t)-1 on a syntax error or overflow. */
static inline size_t gp_test_spec_bytes(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
        } else if (*s == '"') {
            for (s++; *s && *s != '"'; s++) {
                if (n == cap)
                    return (size_t)-1;
                out[n++] = (uint8_t)*s;
            }
            if (*s++ != '"')
                return (size_t)-1;
        } else {
            int v = 0;
            for (int k = 0; k < 2; k++, s++) {
                char c = *s;
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (d < 0)
                    return (size_t)-1;
                v = v * 16 + d;
            }
            if (n == cap)
                return (size_t)-1;
            out[n++] = (uint8_t)v;
        }
    }
    return n;
}

#endif
