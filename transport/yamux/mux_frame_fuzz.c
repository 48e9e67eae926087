/* libFuzzer target: the yamux frame parser on arbitrary bytes, fed in
 * chunks whose sizes come from the first input byte. */
#include "transport/yamux/mux_frame.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)(data[0] % 17) + 1;
    data++;
    size--;
    gp__mux_parser p;
    gp__mux_parser_init(&p, 65536);
    size_t off = 0, payload = 0;
    while (off < size) {
        size_t chunk = size - off < step ? size - off : step;
        size_t left = chunk;
        const uint8_t *cur = data + off;
        while (left > 0) {
            size_t used;
            const uint8_t *d;
            size_t dl;
            gp__mux_event ev = gp__mux_parser_feed(&p, cur, left, &used, &d, &dl);
            if (ev == GP_MUX_EV_ERROR)
                return 0;
            if (ev == GP_MUX_EV_DATA)
                payload += dl;
            if (used > left)
                abort();
            cur += used;
            left -= used;
        }
        off += chunk;
    }
    (void)payload;
    return 0;
}
