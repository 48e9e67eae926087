/* Fuzz the hand-off decoders. The input is tried as a whole data stream
 * (header + body) and as a status message. A stream that decodes must
 * encode back to the same bytes: the format has one spelling per value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/supervise/handoff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void data_stream(const uint8_t *data, size_t size)
{
    gp__strbuf err;
    gp__strbuf_init(&err);
    uint32_t body_len;
    if (size < GP__HANDOFF_HEADER || gp__handoff_decode_header(data, &body_len, &err) != GP_OK ||
        body_len != size - GP__HANDOFF_HEADER) {
        gp__strbuf_free(&err);
        return;
    }
    gp__handoff_msg m;
    if (gp__handoff_decode_body(data + GP__HANDOFF_HEADER, body_len, &m, &err) == GP_OK) {
        uint8_t *again = NULL;
        size_t again_len = 0;
        gp__strbuf_reset(&err);
        if (gp__handoff_encode(m.entries, m.n, m.secret, m.secret_len, &again, &again_len, &err) !=
                GP_OK ||
            again_len != size || memcmp(again, data, size) != 0)
            abort();
        free(again);
        gp__handoff_msg_free(&m);
    } else if (!err.ok || err.len == 0) {
        abort(); /* every failure has words */
    }
    gp__strbuf_free(&err);
}

static void status(const uint8_t *data, size_t size)
{
    gp__strbuf err;
    gp__strbuf_init(&err);
    char kind = 0, reason[GP_HANDOFF_MAX_REASON + 1];
    size_t used = 0;
    int r = gp__handoff_status_decode(data, size, &kind, reason, &used, &err);
    if (r == 1) {
        uint8_t again[GP__HANDOFF_STATUS_HEADER + GP_HANDOFF_MAX_REASON];
        size_t n = gp__handoff_status_encode(kind, reason, again, sizeof again);
        if (n != used || memcmp(again, data, used) != 0)
            abort();
    } else if (r < 0 && err.len == 0) {
        abort();
    }
    gp__strbuf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    data_stream(data, size);
    if (size)
        status(data, size);
    return 0;
}
