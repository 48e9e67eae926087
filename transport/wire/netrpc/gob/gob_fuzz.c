/* libFuzzer target: a gob stream (length-prefixed messages) into one
 * decoder, then every decoded tree re-encoded on a fresh encoder. */
#include "transport/wire/netrpc/gob/gob.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp__gob_limits lim = {.max_message = 1 << 16, .max_depth = 32, .max_types = 64};
    gp__gob_decoder *d;
    gp__gob_encoder *e;
    if (gp__gob_decoder_new(&lim, &d) != GP_OK)
        return 0;
    if (gp__gob_encoder_new(&e) != GP_OK) {
        gp__gob_decoder_free(d);
        return 0;
    }
    char err[256];
    while (size > 0) {
        const uint8_t *body;
        size_t blen, used;
        if (gp__gob_frame(data, size, lim.max_message, &body, &blen, &used, err, sizeof err) !=
                GP_OK ||
            !body)
            break;
        gp__gob_value *v = NULL;
        if (gp__gob_decode_message(d, body, blen, &v, err, sizeof err) != GP_OK)
            break;
        if (v) {
            gp__gob_buf out;
            gp__gob_buf_init(&out, 1 << 20);
            gp__gob_encode(e, v, &out, err, sizeof err);
            gp__gob_buf_free(&out);
            gp__gob_value_free(v);
        }
        data += used;
        size -= used;
    }
    gp__gob_encoder_free(e);
    gp__gob_decoder_free(d);
    return 0;
}
