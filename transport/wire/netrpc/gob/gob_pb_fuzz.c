/* libFuzzer target: a gob stream from a peer into the typed nanopb
 * mapping. Every decoded value is stored into the test messages (the KV
 * shapes and Rich, every supported field kind), then released. */
#include "transport/msg/msg.h"
#include "transport/wire/netrpc/gob/gob.h"
#include "transport/wire/netrpc/gob/gob_pb.h"
#include "transport/wire/netrpc/gob/gob_pb_test.pb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const gp_gob_field inner_fields[] = {{"N", &gp_gob_int_type, 1},
                                            {"S", &gp_gob_string_type, 2}};
static const gp_gob_type inner_gob = {
    .kind = GP_GOB_STRUCT, .name = "Inner", .fields = inner_fields, .nfields = 2};
static const gp_gob_type strings_gob = {.kind = GP_GOB_SLICE, .elem = &gp_gob_string_type};
static const gp_gob_type inners_gob = {.kind = GP_GOB_SLICE, .elem = &inner_gob};
static const gp_gob_type ints_gob = {.kind = GP_GOB_SLICE, .elem = &gp_gob_int_type};
static const gp_gob_field rich_fields[] = {
    {"Name", &gp_gob_string_type, 1},
    {"Tags", &strings_gob, 2},
    {"In", &inner_gob, 3},
    {"Data", &gp_gob_bytes_type, 4},
    {"Neg", &gp_gob_int_type, 5},
    {"F", &gp_gob_float_type, 6},
    {"OK", &gp_gob_bool_type, 7},
    {"U32", &gp_gob_uint_type, 8},
    {"I32", &gp_gob_int_type, 9},
    {"F32", &gp_gob_float_type, 10},
    {"Inners", &inners_gob, 11},
    {"Nums", &ints_gob, 12},
    {"Fixed", &gp_gob_string_type, 13},
    {"Fx", &gp_gob_uint_type, 14},
    {"Small", &gp_gob_bytes_type, 15},
};
static const gp_gob_type rich_gob = {
    .kind = GP_GOB_STRUCT, .name = "Rich", .fields = rich_fields, .nfields = 15};
static const gp_gob_field put_fields[] = {{"Key", &gp_gob_string_type, 1},
                                          {"Value", &gp_gob_bytes_type, 2}};
static const gp_gob_type put_gob = {
    .kind = GP_GOB_STRUCT, .name = "PutRequest", .fields = put_fields, .nfields = 2};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp__gob_limits lim = {.max_message = 1 << 16, .max_depth = 32, .max_types = 64};
    gp__gob_decoder *d;
    if (gp__gob_decoder_new(&lim, &d) != GP_OK)
        return 0;
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
            gobpbtest_Rich r;
            memset(&r, 0, sizeof r);
            if (gp__gob_pb_from_tree(v, &rich_gob, gobpbtest_Rich_fields, &r, err, sizeof err) ==
                GP_OK)
                gp_msg_release(gobpbtest_Rich_fields, &r);
            gobpbtest_PutRequest p;
            memset(&p, 0, sizeof p);
            if (gp__gob_pb_from_tree(v, &put_gob, gobpbtest_PutRequest_fields, &p, err,
                                     sizeof err) == GP_OK)
                gp_msg_release(gobpbtest_PutRequest_fields, &p);
            gp__gob_value_free(v);
        }
        data += used;
        size -= used;
    }
    gp__gob_decoder_free(d);
    return 0;
}
