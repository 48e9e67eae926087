/* Typed gob <-> nanopb: exact bytes for the KV shapes, round trips of
 * every supported field shape, Go's matching rules, and peer values that
 * do not fit. */
#include "transport/wire/netrpc/gob/gob_pb.h"
#include "transport/wire/netrpc/gob/gob_spec_bytes.h"
#include "transport/wire/netrpc/gob/gob_pb_test.pb.h"
#include "transport/msg/msg.h"
#include "transport/testing/gp_test.h"

#include <stdlib.h>
#include <string.h>

static const gp_gob_field get_request_fields[] = {{"Key", &gp_gob_string_type, 1}};
static const gp_gob_type get_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "GetRequest", .fields = get_request_fields, .nfields = 1};

static const gp_gob_field put_request_fields[] = {{"Key", &gp_gob_string_type, 1},
                                                  {"Value", &gp_gob_bytes_type, 2}};
static const gp_gob_type put_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "PutRequest", .fields = put_request_fields, .nfields = 2};

static const gp_gob_field inner_fields[] = {{"N", &gp_gob_int_type, 1},
                                            {"S", &gp_gob_string_type, 2}};
static const gp_gob_type inner_gob = {
    .kind = GP_GOB_STRUCT, .name = "Inner", .fields = inner_fields, .nfields = 2};
static const gp_gob_type strings_gob = {
    .kind = GP_GOB_SLICE, .name = "[]string", .elem = &gp_gob_string_type};
static const gp_gob_type inners_gob = {.kind = GP_GOB_SLICE, .name = "[]Inner", .elem = &inner_gob};
static const gp_gob_type ints_gob = {
    .kind = GP_GOB_SLICE, .name = "[]int32", .elem = &gp_gob_int_type};

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

static uint8_t spec_buf[4096];

static void check_bytes(const gp__gob_buf *out, const char *want)
{
    size_t n = gp_test_spec_bytes(want, spec_buf, sizeof spec_buf);
    GP_CHECK(n != (size_t)-1);
    if (n == (size_t)-1)
        return;
    if (out->len != n || memcmp(out->data, spec_buf, n) != 0) {
        size_t i = 0;
        while (i < n && i < out->len && out->data[i] == spec_buf[i])
            i++;
        GP_FAILF("bytes differ at offset %zu (got %zu bytes, want %zu)", i, out->len, n);
    }
}

/* Encodes msg as t on a fresh stream; returns GP_OK and the bytes. */
static gp_err encode(const gp_gob_type *t, const pb_msgdesc_t *desc, const void *msg,
                     gp__gob_buf *out, char *err, size_t errlen)
{
    gp__gob_encoder *e = NULL;
    GP_CHECK_ERR(gp__gob_encoder_new(&e), GP_OK);
    gp__gob_value v;
    gp_err rc = gp__gob_pb_to_tree(t, desc, msg, &v, err, errlen);
    if (rc == GP_OK) {
        rc = gp__gob_encode(e, &v, out, err, errlen);
        gp__gob_pb_tree_free(&v);
    }
    gp__gob_encoder_free(e);
    return rc;
}

/* Decodes every message of buf; the last value in *out. */
static gp__gob_value *decode_all(gp__gob_decoder *d, const gp__gob_buf *buf)
{
    gp__gob_value *last = NULL;
    size_t off = 0;
    char err[256];
    while (off < buf->len) {
        const uint8_t *body;
        size_t blen, used;
        if (gp__gob_frame(buf->data + off, buf->len - off, 1 << 26, &body, &blen, &used, err,
                          sizeof err) != GP_OK ||
            !body) {
            GP_FAILF("framing failed at %zu: %s", off, err);
            break;
        }
        off += used;
        gp__gob_value *v = NULL;
        if (gp__gob_decode_message(d, body, blen, &v, err, sizeof err) != GP_OK) {
            GP_FAILF("decode failed: %s", err);
            break;
        }
        if (v) {
            gp__gob_value_free(last);
            last = v;
        }
    }
    return last;
}

GP_TEST(kv_put_request_encodes_as_go_does)
{
    gobpbtest_PutRequest req = {.key = "a", .value = {(uint8_t *)"1", 1}};
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    char err[256] = "";
    GP_CHECK_ERR(encode(&put_request_gob, gobpbtest_PutRequest_fields, &req, &out, err, sizeof err),
                 GP_OK);
    /* Go 1.19: type definition (ids from 65), then the value. */
    check_bytes(&out, "2a ff81 03 01 01 0a \"PutRequest\" 01 ff82 00 01 02 01 03 \"Key\" 01 0c 00 "
                      "01 05 \"Value\" 01 0a 00 00 00 "
                      "09 ff82 01 01 61 01 01 31 00");
    gp__gob_buf_free(&out);

    /* Zero fields are omitted: an empty request is just the terminator. */
    gobpbtest_GetRequest empty = {0};
    gp__gob_buf_init(&out, 0);
    GP_CHECK_ERR(
        encode(&get_request_gob, gobpbtest_GetRequest_fields, &empty, &out, err, sizeof err),
        GP_OK);
    check_bytes(&out,
                "20 ff81 03 01 01 0a \"GetRequest\" 01 ff82 00 01 01 01 03 \"Key\" 01 0c 00 00 00 "
                "03 ff82 00");
    gp__gob_buf_free(&out);
}

static void fill_rich(gobpbtest_Rich *r, char **tags, gobpbtest_Inner *inners)
{
    memset(r, 0, sizeof *r);
    r->name = "x";
    tags[0] = "a";
    tags[1] = "b";
    r->tags = tags;
    r->tags_count = 2;
    r->has_in = true;
    r->in.n = -7;
    r->in.s = "inner";
    r->data = (gp_bytes){(uint8_t *)"\x00\x01\x02", 3};
    r->neg = -1;
    r->f = 17.0;
    r->ok = true;
    r->u32 = 4000000000u;
    r->i32 = -2147483647;
    r->f32 = 0.5f;
    inners[0] = (gobpbtest_Inner){.n = 1, .s = NULL};
    inners[1] = (gobpbtest_Inner){.n = 0, .s = "two"};
    r->inners = inners;
    r->inners_count = 2;
    r->nums_count = 3;
    r->nums[0] = 5;
    r->nums[1] = 0;
    r->nums[2] = -5;
    strcpy(r->fixed, "seven77");
    r->fx = UINT64_MAX;
    r->small.size = 4;
    memcpy(r->small.bytes, "\xff\xfe\xfd\xfc", 4);
}

GP_TEST(every_field_shape_round_trips)
{
    char *tags[2];
    gobpbtest_Inner inners[2];
    gobpbtest_Rich in;
    fill_rich(&in, tags, inners);
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    char err[256] = "";
    GP_CHECK_ERR(encode(&rich_gob, gobpbtest_Rich_fields, &in, &out, err, sizeof err), GP_OK);
    gp__gob_decoder *d = NULL;
    GP_CHECK_ERR(gp__gob_decoder_new(NULL, &d), GP_OK);
    gp__gob_value *v = decode_all(d, &out);
    GP_CHECK(v != NULL);
    gobpbtest_Rich got;
    memset(&got, 0, sizeof got);
    GP_CHECK_ERR(gp__gob_pb_from_tree(v, &rich_gob, gobpbtest_Rich_fields, &got, err, sizeof err),
                 GP_OK);
    GP_CHECK_STR(got.name, "x");
    GP_CHECK_INT(got.tags_count, ==, 2);
    if (got.tags_count == 2) {
        GP_CHECK_STR(got.tags[0], "a");
        GP_CHECK_STR(got.tags[1], "b");
    }
    GP_CHECK(got.has_in);
    GP_CHECK_INT(got.in.n, ==, -7);
    GP_CHECK_STR(got.in.s, "inner");
    GP_CHECK_INT(got.data.len, ==, 3);
    GP_CHECK(got.data.data && memcmp(got.data.data, "\x00\x01\x02", 3) == 0);
    GP_CHECK_INT(got.neg, ==, -1);
    GP_CHECK(got.f == 17.0);
    GP_CHECK(got.ok);
    GP_CHECK_INT(got.u32, ==, 4000000000u);
    GP_CHECK_INT(got.i32, ==, -2147483647);
    GP_CHECK(got.f32 == 0.5f);
    GP_CHECK_INT(got.inners_count, ==, 2);
    if (got.inners_count == 2) {
        GP_CHECK_INT(got.inners[0].n, ==, 1);
        GP_CHECK(got.inners[0].s == NULL);
        GP_CHECK_STR(got.inners[1].s, "two");
    }
    GP_CHECK_INT(got.nums_count, ==, 3);
    GP_CHECK_INT(got.nums[2], ==, -5);
    GP_CHECK_STR(got.fixed, "seven77");
    GP_CHECK(got.fx == UINT64_MAX);
    GP_CHECK_INT(got.small.size, ==, 4);
    gp_msg_release(gobpbtest_Rich_fields, &got);
    gp__gob_value_free(v);
    gp__gob_decoder_free(d);
    gp__gob_buf_free(&out);
}

/* A peer type with a field we lack, a field of ours missing, other order. */
static const gp_gob_field peer_fields[] = {{"Extra", &gp_gob_string_type, 0},
                                           {"Value", &gp_gob_bytes_type, 0},
                                           {"Keys", &gp_gob_string_type, 0}};
static const gp_gob_type peer_gob = {
    .kind = GP_GOB_STRUCT, .name = "PutRequest", .fields = peer_fields, .nfields = 3};

static gp__gob_value str(const char *s)
{
    gp__gob_value v = {.type = &gp_gob_string_type};
    v.u.bytes.data = (uint8_t *)s;
    v.u.bytes.len = strlen(s);
    return v;
}

static gp_err decode_peer(const gp__gob_value *pv, const gp_gob_type *t, const pb_msgdesc_t *desc,
                          void *msg, char *err, size_t errlen)
{
    gp__gob_encoder *e = NULL;
    gp__gob_encoder_new(&e);
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    GP_CHECK_ERR(gp__gob_encode(e, pv, &out, err, errlen), GP_OK);
    gp__gob_decoder *d = NULL;
    gp__gob_decoder_new(NULL, &d);
    gp__gob_value *v = decode_all(d, &out);
    gp_err rc = gp__gob_pb_from_tree(v, t, desc, msg, err, errlen);
    gp__gob_value_free(v);
    gp__gob_decoder_free(d);
    gp__gob_buf_free(&out);
    gp__gob_encoder_free(e);
    return rc;
}

GP_TEST(decoding_matches_fields_by_exact_name_and_skips_unknown_ones)
{
    gp__gob_value items[3] = {str("ignored"), {.type = &gp_gob_bytes_type}, str("not Key")};
    items[1].u.bytes.data = (uint8_t *)"val";
    items[1].u.bytes.len = 3;
    gp__gob_value pv = {.type = &peer_gob};
    pv.u.list.items = items;
    pv.u.list.len = 3;
    gobpbtest_PutRequest got;
    memset(&got, 0, sizeof got);
    char err[256] = "";
    GP_CHECK_ERR(
        decode_peer(&pv, &put_request_gob, gobpbtest_PutRequest_fields, &got, err, sizeof err),
        GP_OK);
    GP_CHECK(got.key == NULL); /* "Keys" is not "Key" */
    GP_CHECK_INT(got.value.len, ==, 3);
    GP_CHECK(got.value.data && memcmp(got.value.data, "val", 3) == 0);
    gp_msg_release(gobpbtest_PutRequest_fields, &got);
}

static const gp_gob_field int_key_fields[] = {{"Key", &gp_gob_int_type, 0}};
static const gp_gob_type int_key_gob = {
    .kind = GP_GOB_STRUCT, .name = "GetRequest", .fields = int_key_fields, .nfields = 1};

GP_TEST(peer_values_that_do_not_fit_are_errors_with_words)
{
    char err[256] = "";
    /* A field of another kind. */
    gp__gob_value item = {.type = &gp_gob_int_type};
    item.u.i = 5;
    gp__gob_value pv = {.type = &int_key_gob};
    pv.u.list.items = &item;
    pv.u.list.len = 1;
    gobpbtest_GetRequest g;
    memset(&g, 0, sizeof g);
    GP_CHECK_ERR(
        decode_peer(&pv, &get_request_gob, gobpbtest_GetRequest_fields, &g, err, sizeof err),
        GP_EPROTO);
    GP_CHECK_CONTAINS(err, "field Key: expected a string, got a int");

    /* Out of range for int32, too many for a fixed array, too long a char[8]. */
    char *tags[2];
    gobpbtest_Inner inners[2];
    gobpbtest_Rich r;
    fill_rich(&r, tags, inners);
    r.neg = (int64_t)1 << 40;
    static const gp_gob_field wide_fields[] = {{"I32", &gp_gob_int_type, 5}};
    static const gp_gob_type wide_gob = {
        .kind = GP_GOB_STRUCT, .name = "W", .fields = wide_fields, .nfields = 1};
    gp__gob_value w;
    GP_CHECK_ERR(gp__gob_pb_to_tree(&wide_gob, gobpbtest_Rich_fields, &r, &w, err, sizeof err),
                 GP_OK);
    gobpbtest_Rich got;
    memset(&got, 0, sizeof got);
    GP_CHECK_ERR(decode_peer(&w, &rich_gob, gobpbtest_Rich_fields, &got, err, sizeof err),
                 GP_EPROTO);
    GP_CHECK_CONTAINS(err, "out of range for a 4-byte int");
    gp__gob_pb_tree_free(&w);

    gp__gob_value nums[5];
    for (int i = 0; i < 5; i++)
        nums[i] = (gp__gob_value){.type = &gp_gob_int_type, .u.i = i + 1};
    static const gp_gob_field nums_fields[] = {{"Nums", &ints_gob, 0}};
    static const gp_gob_type nums_peer = {
        .kind = GP_GOB_STRUCT, .name = "N", .fields = nums_fields, .nfields = 1};
    gp__gob_value slice = {.type = &ints_gob};
    slice.u.list.items = nums;
    slice.u.list.len = 5;
    gp__gob_value nv = {.type = &nums_peer};
    nv.u.list.items = &slice;
    nv.u.list.len = 1;
    memset(&got, 0, sizeof got);
    GP_CHECK_ERR(decode_peer(&nv, &rich_gob, gobpbtest_Rich_fields, &got, err, sizeof err),
                 GP_EPROTO);
    GP_CHECK_CONTAINS(err, "5 elements for an array of 4");

    static const gp_gob_field fixed_fields[] = {{"Fixed", &gp_gob_string_type, 0}};
    static const gp_gob_type fixed_peer = {
        .kind = GP_GOB_STRUCT, .name = "F", .fields = fixed_fields, .nfields = 1};
    gp__gob_value long_str = str("eight888");
    gp__gob_value fv = {.type = &fixed_peer};
    fv.u.list.items = &long_str;
    fv.u.list.len = 1;
    memset(&got, 0, sizeof got);
    GP_CHECK_ERR(decode_peer(&fv, &rich_gob, gobpbtest_Rich_fields, &got, err, sizeof err),
                 GP_EPROTO);
    GP_CHECK_CONTAINS(err, "string of 8 bytes for a char[8]");

    gp__gob_value nul = {.type = &gp_gob_string_type};
    nul.u.bytes.data = (uint8_t *)"a\0b";
    nul.u.bytes.len = 3;
    static const gp_gob_field name_fields[] = {{"Name", &gp_gob_string_type, 0}};
    static const gp_gob_type name_peer = {
        .kind = GP_GOB_STRUCT, .name = "F", .fields = name_fields, .nfields = 1};
    gp__gob_value sv = {.type = &name_peer};
    sv.u.list.items = &nul;
    sv.u.list.len = 1;
    memset(&got, 0, sizeof got);
    GP_CHECK_ERR(decode_peer(&sv, &rich_gob, gobpbtest_Rich_fields, &got, err, sizeof err),
                 GP_EPROTO);
    GP_CHECK_CONTAINS(err, "NUL byte");
}

GP_TEST(descriptors_that_do_not_fit_the_message_are_refused)
{
    char err[256] = "";
    gobpbtest_GetRequest g = {.key = "k"};
    gp__gob_value v;
    static const gp_gob_field bad_tag[] = {{"Key", &gp_gob_string_type, 9}};
    static const gp_gob_type t1 = {
        .kind = GP_GOB_STRUCT, .name = "G", .fields = bad_tag, .nfields = 1};
    GP_CHECK_ERR(gp__gob_pb_to_tree(&t1, gobpbtest_GetRequest_fields, &g, &v, err, sizeof err),
                 GP_EINVAL);
    GP_CHECK_CONTAINS(err, "has no tag 9");
    static const gp_gob_field bad_kind[] = {{"Key", &gp_gob_bytes_type, 1}};
    static const gp_gob_type t2 = {
        .kind = GP_GOB_STRUCT, .name = "G", .fields = bad_kind, .nfields = 1};
    GP_CHECK_ERR(gp__gob_pb_to_tree(&t2, gobpbtest_GetRequest_fields, &g, &v, err, sizeof err),
                 GP_EINVAL);
    GP_CHECK_CONTAINS(err, "a gob []byte does not fit nanopb tag 1");
    GP_CHECK_ERR(gp__gob_pb_to_tree(&gp_gob_string_type, gobpbtest_GetRequest_fields, &g, &v, err,
                                    sizeof err),
                 GP_EINVAL);
}

int main(void)
{
    GP_RUN(kv_put_request_encodes_as_go_does);
    GP_RUN(every_field_shape_round_trips);
    GP_RUN(decoding_matches_fields_by_exact_name_and_skips_unknown_ones);
    GP_RUN(peer_values_that_do_not_fit_are_errors_with_words);
    GP_RUN(descriptors_that_do_not_fit_the_message_are_refused);
    return gp_test_done();
}
