/* gob codec tests: primitives, byte-for-byte against the bytes captured
 * from go-plugin 1.0.1 (spec §2.7), round trips, and hostile input. */
#include "transport/wire/netrpc/gob/gob.h"
#include "transport/wire/netrpc/gob/gob_rpc.h"
#include "transport/wire/netrpc/gob/gob_spec_bytes.h"
#include "transport/testing/gp_test.h"

#include <stdlib.h>
#include <string.h>

static uint8_t spec_buf[4096];

static size_t spec(const char *s)
{
    size_t n = gp_test_spec_bytes(s, spec_buf, sizeof spec_buf);
    if (n == (size_t)-1) {
        GP_FAILF("bad spec notation: %s", s);
        return 0;
    }
    return n;
}

/* Compares out with the spec notation; prints the first difference. */
static void check_bytes(const gp__gob_buf *out, const char *want_notation)
{
    size_t n = spec(want_notation);
    if (out->len != n || memcmp(out->data, spec_buf, n) != 0) {
        size_t i = 0;
        while (i < n && i < out->len && out->data[i] == spec_buf[i])
            i++;
        GP_FAILF("bytes differ at offset %zu (got %zu bytes, want %zu): got 0x%02x want 0x%02x", i,
                 out->len, n, i < out->len ? out->data[i] : 0, i < n ? spec_buf[i] : 0);
    }
}

GP_TEST(integers_floats_and_strings_match_the_spec_examples)
{
    gp__gob_buf b;
    gp__gob_buf_init(&b, 0);
    gp__gob_put_uint(&b, 256);
    gp__gob_put_uint(&b, 300);
    gp__gob_put_int(&b, -129);
    gp__gob_put_int(&b, -1);
    gp__gob_put_int(&b, 22);
    gp__gob_put_float(&b, 17.0);
    gp__gob_put_string(&b, "hi", 2);
    gp__gob_put_uint(&b, UINT64_MAX);
    gp__gob_put_int(&b, INT64_MIN);
    check_bytes(
        &b, "fe0100 fe012c fe0101 01 2c fe3140 02 \"hi\" f8ffffffffffffffff f8ffffffffffffffff");
    gp__gob_rd r;
    char err[200];
    gp__gob_rd_init(&r, b.data, b.len, err, sizeof err);
    uint64_t u;
    int64_t i;
    double f;
    const uint8_t *p;
    size_t n;
    GP_CHECK_ERR(gp__gob_read_uint(&r, &u), GP_OK);
    GP_CHECK_INT(u, ==, 256);
    GP_CHECK_ERR(gp__gob_read_uint(&r, &u), GP_OK);
    GP_CHECK_INT(u, ==, 300);
    GP_CHECK_ERR(gp__gob_read_int(&r, &i), GP_OK);
    GP_CHECK_INT(i, ==, -129);
    GP_CHECK_ERR(gp__gob_read_int(&r, &i), GP_OK);
    GP_CHECK_INT(i, ==, -1);
    GP_CHECK_ERR(gp__gob_read_int(&r, &i), GP_OK);
    GP_CHECK_INT(i, ==, 22);
    GP_CHECK_ERR(gp__gob_read_float(&r, &f), GP_OK);
    GP_CHECK(f == 17.0);
    GP_CHECK_ERR(gp__gob_read_bytes(&r, "string", &p, &n), GP_OK);
    GP_CHECK(n == 2 && memcmp(p, "hi", 2) == 0);
    GP_CHECK_ERR(gp__gob_read_uint(&r, &u), GP_OK);
    GP_CHECK(u == UINT64_MAX);
    GP_CHECK_ERR(gp__gob_read_int(&r, &i), GP_OK);
    GP_CHECK(i == INT64_MIN);
    GP_CHECK_INT(r.left, ==, 0);
    GP_CHECK_ERR(gp__gob_read_uint(&r, &u), GP_EPROTO);
    GP_CHECK_CONTAINS(err, "unexpected end of message");
    gp__gob_buf_free(&b);
    /* Round trips over many magnitudes. */
    for (int sh = 0; sh < 64; sh++) {
        uint64_t x = (uint64_t)1 << sh;
        int64_t y = -(int64_t)(x >> 1) - 3;
        gp__gob_buf_init(&b, 0);
        gp__gob_put_uint(&b, x - 1);
        gp__gob_put_int(&b, y);
        gp__gob_rd_init(&r, b.data, b.len, err, sizeof err);
        GP_CHECK(gp__gob_read_uint(&r, &u) == GP_OK && u == x - 1);
        GP_CHECK(gp__gob_read_int(&r, &i) == GP_OK && i == y);
        gp__gob_buf_free(&b);
    }
    const uint8_t bad[] = {0xf7, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    gp__gob_rd_init(&r, bad, sizeof bad, err, sizeof err);
    GP_CHECK_ERR(gp__gob_read_uint(&r, &u), GP_EPROTO);
    GP_CHECK_CONTAINS(err, "byte count 9");
}

GP_TEST(encodes_the_control_ping_call_byte_for_byte)
{
    gp__gob_encoder *e;
    GP_CHECK_ERR(gp__gob_encoder_new(&e), GP_OK);
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    char err[200];
    GP_CHECK_ERR(gp__gob_put_request(e, &out, "Control.Ping", 0, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_bool_value(e, &out, 1, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_request(e, &out, "Dispenser.Dispense", 1, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_string_value(e, &out, "greeter", err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_request(e, &out, "Control.Quit", 2, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_bool_value(e, &out, 1, err, sizeof err), GP_OK);
    check_bytes(&out, SPEC_PING_REQUEST SPEC_DISPENSE_REQUEST SPEC_QUIT_REQUEST);
    gp__gob_buf_free(&out);
    gp__gob_encoder_free(e);
}

GP_TEST(encodes_the_plugin_replies_byte_for_byte)
{
    gp__gob_encoder *e;
    GP_CHECK_ERR(gp__gob_encoder_new(&e), GP_OK);
    gp__gob_encoder_set_next_id(e, 66); /* the Go process had used 65 for Request */
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    char err[200];
    GP_CHECK_ERR(gp__gob_put_response(e, &out, "Control.Ping", 0, "", err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_empty_struct(e, &out, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_response(e, &out, "Dispenser.Dispense", 1, NULL, err, sizeof err),
                 GP_OK);
    GP_CHECK_ERR(gp__gob_put_uint_value(e, &out, 1, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_response(e, &out, "Control.Quit", 2, "", err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_empty_struct(e, &out, err, sizeof err), GP_OK);
    check_bytes(&out, SPEC_PING_RESPONSE SPEC_DISPENSE_RESPONSE SPEC_QUIT_RESPONSE);
    gp__gob_buf_free(&out);
    gp__gob_encoder_free(e);

    /* A dispensed stream: the error reply defines struct{} on first use only. */
    GP_CHECK_ERR(gp__gob_encoder_new(&e), GP_OK);
    gp__gob_encoder_set_next_id(e, 66);
    gp__gob_buf first;
    gp__gob_buf_init(&first, 0);
    GP_CHECK_ERR(gp__gob_put_response(e, &first, "x", 0, "", err, sizeof err), GP_OK);
    gp__gob_buf_free(&first);
    gp__gob_buf_init(&out, 0);
    GP_CHECK_ERR(gp__gob_put_response(e, &out, "Plugin.Greet", 2, "boom", err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_empty_struct(e, &out, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_put_response(e, &out, "Plugin.Nope", 3,
                                      "rpc: can't find method Plugin.Nope", err, sizeof err),
                 GP_OK);
    GP_CHECK_ERR(gp__gob_put_empty_struct(e, &out, err, sizeof err), GP_OK);
    check_bytes(&out, SPEC_ERROR_REPLY " " SPEC_UNKNOWN_METHOD);
    gp__gob_buf_free(&out);
    gp__gob_encoder_free(e);
}

/* Decodes a whole gob stream fed `step` bytes at a time; returns the
 * values (caller frees) in vals, their count in *n. */
static gp_err decode_stream(gp__gob_decoder *d, const uint8_t *in, size_t len, size_t step,
                            gp__gob_value **vals, size_t max, size_t *n, char *err, size_t errlen)
{
    uint8_t *acc = malloc(len + 1);
    size_t have = 0, fed = 0;
    *n = 0;
    gp_err e = GP_OK;
    while (e == GP_OK && (fed < len || have > 0)) {
        size_t k = len - fed < step ? len - fed : step;
        memcpy(acc + have, in + fed, k);
        have += k;
        fed += k;
        for (;;) {
            const uint8_t *body;
            size_t blen, used;
            e = gp__gob_frame(acc, have, gp__gob_decoder_max_message(d), &body, &blen, &used, err,
                              errlen);
            if (e != GP_OK || !body)
                break;
            gp__gob_value *v = NULL;
            e = gp__gob_decode_message(d, body, blen, &v, err, errlen);
            if (e != GP_OK)
                break;
            if (v) {
                if (*n < max)
                    vals[(*n)++] = v;
                else
                    gp__gob_value_free(v);
            }
            memmove(acc, acc + used, have - used);
            have -= used;
        }
        if (e == GP_OK && fed == len && have > 0) {
            snprintf(err, errlen, "truncated: %zu bytes left over", have);
            e = GP_EPROTO;
        }
    }
    free(acc);
    return e;
}

static void free_all(gp__gob_value **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gp__gob_value_free(v[i]);
}

static void check_request_stream(size_t step)
{
    size_t len = spec(SPEC_PING_REQUEST SPEC_DISPENSE_REQUEST SPEC_QUIT_REQUEST);
    uint8_t in[1024];
    memcpy(in, spec_buf, len);
    gp__gob_decoder *d;
    GP_CHECK_ERR(gp__gob_decoder_new(NULL, &d), GP_OK);
    gp__gob_value *v[8];
    size_t n;
    char err[256];
    GP_CHECK_ERR(decode_stream(d, in, len, step, v, 8, &n, err, sizeof err), GP_OK);
    GP_CHECK_INT(n, ==, 6);
    if (n == 6) {
        const char *m;
        uint64_t seq;
        int b;
        const char *s;
        GP_CHECK_ERR(gp__gob_get_request(v[0], &m, &seq, err, sizeof err), GP_OK);
        GP_CHECK_STR(m, "Control.Ping");
        GP_CHECK_INT(seq, ==, 0);
        GP_CHECK_ERR(gp__gob_get_bool(v[1], &b, err, sizeof err), GP_OK);
        GP_CHECK_INT(b, ==, 1);
        GP_CHECK_ERR(gp__gob_get_request(v[2], &m, &seq, err, sizeof err), GP_OK);
        GP_CHECK_STR(m, "Dispenser.Dispense");
        GP_CHECK_INT(seq, ==, 1);
        GP_CHECK_ERR(gp__gob_get_string(v[3], &s, err, sizeof err), GP_OK);
        GP_CHECK_STR(s, "greeter");
        GP_CHECK_ERR(gp__gob_get_request(v[4], &m, &seq, err, sizeof err), GP_OK);
        GP_CHECK_STR(m, "Control.Quit");
        GP_CHECK_INT(seq, ==, 2);
        GP_CHECK_ERR(gp__gob_get_uint(v[5], &seq, err, sizeof err), GP_EPROTO);
        GP_CHECK_CONTAINS(err, "expected a uint value, got a bool");
    }
    free_all(v, n);
    gp__gob_decoder_free(d);
}

GP_TEST(decodes_the_host_requests_one_byte_at_a_time)
{
    check_request_stream(1);
}
GP_TEST(decodes_the_host_requests_in_one_piece)
{
    check_request_stream(100000);
}

GP_TEST(decodes_the_plugin_replies)
{
    size_t len = spec(SPEC_PING_RESPONSE SPEC_DISPENSE_RESPONSE SPEC_QUIT_RESPONSE);
    uint8_t in[1024];
    memcpy(in, spec_buf, len);
    gp__gob_decoder *d;
    GP_CHECK_ERR(gp__gob_decoder_new(NULL, &d), GP_OK);
    gp__gob_value *v[8];
    size_t n;
    char err[256];
    GP_CHECK_ERR(decode_stream(d, in, len, 3, v, 8, &n, err, sizeof err), GP_OK);
    GP_CHECK_INT(n, ==, 6);
    if (n == 6) {
        const char *m, *e;
        uint64_t seq;
        GP_CHECK_ERR(gp__gob_get_response(v[0], &m, &seq, &e, err, sizeof err), GP_OK);
        GP_CHECK_STR(m, "Control.Ping");
        GP_CHECK_STR(e, "");
        GP_CHECK_INT(v[1]->type->kind, ==, GP_GOB_STRUCT);
        GP_CHECK_INT(v[1]->type->nfields, ==, 0);
        GP_CHECK_ERR(gp__gob_get_uint(v[3], &seq, err, sizeof err), GP_OK);
        GP_CHECK_INT(seq, ==, 1);
        GP_CHECK_ERR(gp__gob_get_response(v[4], &m, &seq, &e, err, sizeof err), GP_OK);
        GP_CHECK_INT(seq, ==, 2);
    }
    free_all(v, n);
    gp__gob_decoder_free(d);
}

/* Args{Name string; Tags []string; Meta map[string]string; In Inner{N int};
 *      Data []byte; Neg int64; F float64; OK bool} */
static const gp_gob_field inner_fields[] = {{"N", &gp_gob_int_type, 0}};
static const gp_gob_type inner_type = {
    .kind = GP_GOB_STRUCT, .name = "Inner", .fields = inner_fields, .nfields = 1};
static const gp_gob_type strings_type = {
    .kind = GP_GOB_SLICE, .name = "[]string", .elem = &gp_gob_string_type};
static const gp_gob_type map_type = {.kind = GP_GOB_MAP,
                                     .name = "map[string]string",
                                     .key = &gp_gob_string_type,
                                     .elem = &gp_gob_string_type};
static const gp_gob_field args_fields[] = {
    {"Name", &gp_gob_string_type, 0}, {"Tags", &strings_type, 0},      {"Meta", &map_type, 0},
    {"In", &inner_type, 0},           {"Data", &gp_gob_bytes_type, 0}, {"Neg", &gp_gob_int_type, 0},
    {"F", &gp_gob_float_type, 0},     {"OK", &gp_gob_bool_type, 0},
};
static const gp_gob_type args_type = {
    .kind = GP_GOB_STRUCT, .name = "Args", .fields = args_fields, .nfields = 8};

static gp__gob_value sv(const char *s)
{
    gp__gob_value v = {.type = &gp_gob_string_type};
    v.u.bytes.data = (uint8_t *)s;
    v.u.bytes.len = strlen(s);
    return v;
}

GP_TEST(encodes_and_decodes_the_richer_args_struct)
{
    gp__gob_value tags[2] = {sv("a"), sv("b")};
    gp__gob_value kv[2] = {sv("k"), sv("v")};
    gp__gob_value n = {.type = &gp_gob_int_type, .u.i = 2};
    gp__gob_value items[8] = {sv("x")};
    items[1].type = &strings_type;
    items[1].u.list.items = tags;
    items[1].u.list.len = 2;
    items[2].type = &map_type;
    items[2].u.list.items = kv;
    items[2].u.list.len = 1;
    items[3].type = &inner_type;
    items[3].u.list.items = &n;
    items[3].u.list.len = 1;
    items[4].type = &gp_gob_bytes_type;
    items[4].u.bytes.data = (uint8_t *)"\1\2";
    items[4].u.bytes.len = 2;
    items[5] = (gp__gob_value){.type = &gp_gob_int_type, .u.i = -1};
    items[6] = (gp__gob_value){.type = &gp_gob_float_type, .u.f = 17.0};
    items[7] = (gp__gob_value){.type = &gp_gob_bool_type, .u.b = 1};
    gp__gob_value args = {.type = &args_type};
    args.u.list.items = items;
    args.u.list.len = 8;

    gp__gob_encoder *e;
    GP_CHECK_ERR(gp__gob_encoder_new(&e), GP_OK);
    gp__gob_encoder_set_next_id(e, 66);
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    char err[256];
    GP_CHECK_ERR(gp__gob_encode(e, &args, &out, err, sizeof err), GP_OK);
    /* Four definitions (Args 66, []string 67, map 68, Inner 69), then the value. */
    size_t vlen = spec(SPEC_ARGS_VALUE);
    GP_CHECK(out.len > vlen + 1);
    GP_CHECK_INT(out.data[out.len - vlen - 1], ==, vlen);
    GP_CHECK(memcmp(out.data + out.len - vlen, spec_buf, vlen) == 0);
    size_t slen = spec("ff85 02 01 01 08 \"[]string\" 01 ff86 00 01 0c 00 00");
    GP_CHECK(memmem(out.data, out.len, spec_buf, slen) != NULL);
    size_t mlen = spec("ff87 04 01 01 11 \"map[string]string\" 01 ff88 00 01 0c 01 0c 00 00");
    GP_CHECK(memmem(out.data, out.len, spec_buf, mlen) != NULL);

    /* Decode it back, one byte at a time. */
    gp__gob_decoder *d;
    GP_CHECK_ERR(gp__gob_decoder_new(NULL, &d), GP_OK);
    gp__gob_value *v[2];
    size_t nv;
    GP_CHECK_ERR(decode_stream(d, out.data, out.len, 1, v, 2, &nv, err, sizeof err), GP_OK);
    GP_CHECK_INT(nv, ==, 1);
    if (nv == 1) {
        const gp__gob_value *f = gp__gob_field(v[0], "Name");
        GP_CHECK(f && f->u.bytes.len == 1 && f->u.bytes.data[0] == 'x');
        f = gp__gob_field(v[0], "Tags");
        GP_CHECK(f && f->u.list.len == 2 && f->u.list.items[1].u.bytes.data[0] == 'b');
        f = gp__gob_field(v[0], "Meta");
        GP_CHECK(f && f->u.list.len == 1 && f->u.list.items[1].u.bytes.data[0] == 'v');
        f = gp__gob_field(gp__gob_field(v[0], "In"), "N");
        GP_CHECK(f && f->u.i == 2);
        f = gp__gob_field(v[0], "Data");
        GP_CHECK(f && f->u.bytes.len == 2 && f->u.bytes.data[1] == 2);
        GP_CHECK(gp__gob_field(v[0], "Neg")->u.i == -1);
        GP_CHECK(gp__gob_field(v[0], "F")->u.f == 17.0);
        GP_CHECK(gp__gob_field(v[0], "OK")->u.b == 1);
        GP_CHECK_STR(v[0]->type->name, "Args");
        /* Re-encode the decoded tree on a fresh stream: same value bytes. */
        gp__gob_encoder *e2;
        gp__gob_encoder_new(&e2);
        gp__gob_encoder_set_next_id(e2, 66);
        gp__gob_buf again;
        gp__gob_buf_init(&again, 0);
        GP_CHECK_ERR(gp__gob_encode(e2, v[0], &again, err, sizeof err), GP_OK);
        GP_CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
        gp__gob_buf_free(&again);
        gp__gob_encoder_free(e2);
    }
    free_all(v, nv);
    gp__gob_decoder_free(d);
    /* The same value again on the first stream: no definitions this time. */
    gp__gob_buf second;
    gp__gob_buf_init(&second, 0);
    GP_CHECK_ERR(gp__gob_encode(e, &args, &second, err, sizeof err), GP_OK);
    GP_CHECK_INT(second.len, ==, vlen + 1);
    gp__gob_buf_free(&second);
    gp__gob_buf_free(&out);
    gp__gob_encoder_free(e);
}

GP_TEST(interfaces_round_trip_and_nil_interfaces_are_one_byte)
{
    static const gp_gob_field f[] = {{"Any", &gp_gob_interface_type, 0},
                                     {"Tag", &gp_gob_string_type, 0}};
    static const gp_gob_type holder = {
        .kind = GP_GOB_STRUCT, .name = "Holder", .fields = f, .nfields = 2};
    gp__gob_value inner = sv("hi");
    gp__gob_value items[2] = {{.type = &gp_gob_interface_type}, sv("t")};
    items[0].u.iface.name = "string";
    items[0].u.iface.value = &inner;
    gp__gob_value h = {.type = &holder};
    h.u.list.items = items;
    h.u.list.len = 2;
    gp__gob_encoder *e;
    gp__gob_encoder_new(&e);
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    char err[256];
    GP_CHECK_ERR(gp__gob_encode(e, &h, &out, err, sizeof err), GP_OK);
    /* A nil interface{} as a top-level value, as net/rpc sends new(interface{}). */
    gp__gob_value nil_iface = {.type = &gp_gob_interface_type};
    size_t before = out.len;
    GP_CHECK_ERR(gp__gob_encode(e, &nil_iface, &out, err, sizeof err), GP_OK);
    GP_CHECK_INT(out.len - before, ==, 4);
    GP_CHECK(memcmp(out.data + before, "\x03\x10\x00\x00", 4) == 0);
    gp__gob_decoder *d;
    gp__gob_decoder_new(NULL, &d);
    gp__gob_value *v[2];
    size_t n;
    GP_CHECK_ERR(decode_stream(d, out.data, out.len, 2, v, 2, &n, err, sizeof err), GP_OK);
    GP_CHECK_INT(n, ==, 2);
    if (n == 2) {
        const gp__gob_value *any = gp__gob_field(v[0], "Any");
        GP_CHECK(any && any->u.iface.name && strcmp(any->u.iface.name, "string") == 0);
        GP_CHECK(any && any->u.iface.value &&
                 strcmp((char *)any->u.iface.value->u.bytes.data, "hi") == 0);
        GP_CHECK_INT(v[1]->type->kind, ==, GP_GOB_INTERFACE);
        GP_CHECK(v[1]->u.iface.name == NULL);
    }
    free_all(v, n);
    gp__gob_decoder_free(d);
    gp__gob_buf_free(&out);
    gp__gob_encoder_free(e);
}

/* Decodes the notation as a stream; expects failure with `words`. */
static void expect_bad(const char *notation, const char *words)
{
    size_t len = spec(notation);
    uint8_t in[1024];
    memcpy(in, spec_buf, len);
    gp__gob_limits lim = {.max_message = 512, .max_depth = 16, .max_nodes = 100};
    gp__gob_decoder *d;
    gp__gob_decoder_new(&lim, &d);
    gp__gob_value *v[8];
    size_t n;
    char err[256] = "";
    GP_CHECK_ERR_NE(decode_stream(d, in, len, 1, v, 8, &n, err, sizeof err), GP_OK);
    GP_CHECK_CONTAINS(err, words);
    free_all(v, n);
    gp__gob_decoder_free(d);
}

GP_TEST(hostile_input_fails_with_words)
{
    expect_bad("03 ff90 00", "unknown type id 72");
    expect_bad("02 20 00", "type id 16 is gob's own type description");
    expect_bad("05 0c 00 09 \"hi\"", "string of 9 bytes runs past the end");
    expect_bad("03 02 01 01", "expected field delta 0 before a singleton");
    expect_bad("03 02 00 02", "bool value 2");
    expect_bad("04 02 00 01 07", "1 bytes of extra data after a value");
    expect_bad("01 00", "value with type id 0");
    expect_bad("00", "empty message");
    expect_bad("fe0400", "a message of 1024 bytes exceeds the limit of 512 (max_message_bytes)");
    /* Definitions: id below 64, duplicate, extra bytes, two kinds, no kind. */
    expect_bad("0a 7d 02 01 02 7e 00 01 0c 00 00", "definition of type id 63");
    expect_bad("0c ff81 02 01 02 ff82 00 01 0c 00 00  0c ff81 02 01 02 ff82 00 01 0c 00 00",
               "duplicate definition of type id 65");
    expect_bad("0d ff81 02 01 02 ff82 00 01 0c 00 00 00", "extra data after the definition");
    expect_bad("03 ff81 00", "empty definition of type id 65");
    /* A slice claiming 2^32 elements in 5 bytes: refused before allocating. */
    expect_bad("0c ff81 02 01 02 ff82 00 01 0c 00 00  09 ff82 00 fc ffffffff 00",
               "slice of 4294967295 elements in 1 bytes");
    /* A struct field number past the struct. */
    expect_bad("12 ff81 03 01 02 ff82 00 01 01 01 01 \"A\" 01 0c 00 00 00  06 ff82 02 01 \"x\" 00",
               "field delta 2 after field -1 is out of range");
    /* A definition that refers to an undefined type. */
    expect_bad("0d ff81 02 01 02 ff82 00 01 ff90 00 00  03 ff82 00 00", "unknown type id 72");
    /* 3 structs of 40 zero fields each: 120 nodes from 6 bytes, budget 100. */
    {
        char buf[1024];
        strcpy(buf, "fffc ff81 03 01 02 ff82 00 01 28");
        for (int i = 0; i < 40; i++)
            strcat(buf, " 01 01 \"F\" 01 04 00");
        strcat(buf, " 00 00  0d ff83 02 01 02 ff84 00 01 ff82 00 00  07 ff84 00 03 00 00 00");
        expect_bad(buf, "message decodes into more than 100 values");
    }
    /* type T []T nested 40 deep, depth limit 16. */
    {
        char buf[512];
        strcpy(buf, "0d ff81 02 01 02 ff82 00 01 ff82 00 00  2c ff82 00");
        for (int i = 0; i < 40; i++)
            strcat(buf, " 01");
        strcat(buf, " 00");
        expect_bad(buf, "value nested deeper than 16");
    }
}

GP_TEST(every_truncation_of_the_captured_stream_is_an_error_not_a_crash)
{
    size_t len = spec(SPEC_PING_RESPONSE SPEC_DISPENSE_RESPONSE);
    uint8_t in[1024];
    memcpy(in, spec_buf, len);
    /* Cut each message body short while keeping its length prefix honest. */
    for (size_t cut = 1; cut < len; cut++) {
        gp__gob_decoder *d;
        gp__gob_decoder_new(NULL, &d);
        gp__gob_value *v[8];
        size_t n;
        char err[256];
        gp_err e = decode_stream(d, in, cut, 7, v, 8, &n, err, sizeof err);
        free_all(v, n);
        gp__gob_decoder_free(d);
        (void)e; /* some prefixes end on a message boundary and are fine */
    }
    /* Shrinking one message's declared length truncates its value. */
    size_t mlen = spec("10 ff82 01 0c \"Control.Ping\" 00");
    memcpy(in, spec_buf, mlen);
    gp__gob_decoder *d;
    gp__gob_decoder_new(NULL, &d);
    char err[256];
    gp__gob_value *v = NULL;
    GP_CHECK_ERR(gp__gob_decode_message(d, in + 1, 16, &v, err, sizeof err), GP_EPROTO);
    GP_CHECK_CONTAINS(err, "unknown type id 65");
    gp__gob_decoder_free(d);
}

GP_TEST(the_encoder_refuses_malformed_trees_and_leaves_the_buffer_alone)
{
    gp__gob_encoder *e;
    gp__gob_encoder_new(&e);
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    gp__gob_put_bytes(&out, "keep", 4);
    char err[256];
    gp__gob_value wrong[2] = {{.type = &gp_gob_int_type}, {.type = &gp_gob_uint_type}};
    gp__gob_value v = {.type = &gp__gob_rpc_request_type};
    v.u.list.items = wrong;
    v.u.list.len = 2;
    GP_CHECK_ERR(gp__gob_encode(e, &v, &out, err, sizeof err), GP_EINVAL);
    GP_CHECK_CONTAINS(err, "field ServiceMethod of struct Request holds a int, expected string");
    GP_CHECK_INT(out.len, ==, 4);
    /* The failed attempt defined nothing: the next request carries the definition. */
    GP_CHECK_ERR(gp__gob_put_request(e, &out, "Control.Ping", 0, err, sizeof err), GP_OK);
    GP_CHECK_INT(out.data[4], ==, 0x2f);
    /* Over the buffer cap. */
    gp__gob_buf small;
    gp__gob_buf_init(&small, 8);
    GP_CHECK_ERR(gp__gob_put_string_value(e, &small, "a string longer than eight", err, sizeof err),
                 GP_EMSGSIZE);
    GP_CHECK_INT(small.len, ==, 0);
    gp__gob_buf_free(&small);
    gp__gob_buf_free(&out);
    gp__gob_encoder_free(e);
}

int main(void)
{
    GP_RUN(integers_floats_and_strings_match_the_spec_examples);
    GP_RUN(encodes_the_control_ping_call_byte_for_byte);
    GP_RUN(encodes_the_plugin_replies_byte_for_byte);
    GP_RUN(decodes_the_host_requests_one_byte_at_a_time);
    GP_RUN(decodes_the_host_requests_in_one_piece);
    GP_RUN(decodes_the_plugin_replies);
    GP_RUN(encodes_and_decodes_the_richer_args_struct);
    GP_RUN(interfaces_round_trip_and_nil_interfaces_are_one_byte);
    GP_RUN(hostile_input_fails_with_words);
    GP_RUN(every_truncation_of_the_captured_stream_is_an_error_not_a_crash);
    GP_RUN(the_encoder_refuses_malformed_trees_and_leaves_the_buffer_alone);
    return gp_test_done();
}
