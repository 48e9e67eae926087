#include "codegen/protoc-gen-goplugin-c/wide_fixture.h"

#include "transport/testing/gp_test.h"

#include <stdlib.h>
#include <string.h>

pb_bytes_array_t *wide_bytes_array(const char *s)
{
    size_t n = strlen(s);
    pb_bytes_array_t *b = malloc(PB_BYTES_ARRAY_T_ALLOCSIZE(n));
    if (b) {
        b->size = (pb_size_t)n;
        memcpy(b->bytes, s, n);
    }
    return b;
}

void wide_fixture_fill(wide_fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->numbers[0] = 1;
    fx->numbers[1] = -2;
    fx->numbers[2] = 3;
    fx->inners[0] = (gp_test_wide_Wide_Inner){.name = "first", .blob = {(uint8_t *)"\0\1\2", 3}};
    fx->inners[1] =
        (gp_test_wide_Wide_Inner){.name = "second", .numbers_count = 3, .numbers = fx->numbers};
    fx->tags[0] = "x";
    fx->tags[1] = "";
    fx->tags[2] = "z";
    fx->blobs[0] = wide_bytes_array("b1");
    fx->blobs[1] = wide_bytes_array("");
    fx->colors[0] = gp_test_wide_Color_RED;
    fx->colors[1] = gp_test_wide_Color_GREEN;
    fx->counts[0] = (gp_test_wide_Wide_CountsEntry){.key = "a", .value = -7};
    fx->counts[1] = (gp_test_wide_Wide_CountsEntry){.key = "b", .value = 1LL << 40};
    fx->files[0] = (gp_test_wide_Wide_FilesEntry){.key = "f", .value = {(uint8_t *)"data", 4}};
    fx->by_id[0] =
        (gp_test_wide_Wide_ByIdEntry){.key = 9, .has_value = true, .value = {.name = "nine"}};
    fx->path[0] = (gp_test_common_Point){.x = 1, .y = 2, .label = "p"};
    fx->msg = (gp_test_wide_Wide){
        .has_scalars = true,
        .scalars =
            {
                .f_double = 2.5,
                .f_float = -1.25f,
                .f_int32 = -5,
                .f_int64 = -(1LL << 50),
                .f_uint32 = 4000000000u,
                .f_uint64 = 1ULL << 63,
                .f_sint32 = -123,
                .f_sint64 = -(1LL << 40),
                .f_fixed32 = 7,
                .f_fixed64 = 8,
                .f_sfixed32 = -9,
                .f_sfixed64 = -10,
                .f_bool = true,
                .f_string = "str",
                .f_bytes = {(uint8_t *)"by", 2},
                .f_color = gp_test_wide_Color_GREEN,
                .maybe_name = "maybe",
            },
        .has_inner = true,
        .inner = {.name = "in", .blob = {(uint8_t *)"blob", 4}},
        .inners_count = 2,
        .inners = fx->inners,
        .tags_count = 3,
        .tags = fx->tags,
        .blobs_count = 2,
        .blobs = fx->blobs,
        .colors_count = 2,
        .colors = fx->colors,
        .counts_count = 2,
        .counts = fx->counts,
        .files_count = 1,
        .files = fx->files,
        .by_id_count = 1,
        .by_id = fx->by_id,
        .which_choice = gp_test_wide_Wide_nested_tag,
        .choice = {.nested = {.name = "chosen", .blob = {(uint8_t *)"cb", 2}}},
        .has_where = true,
        .where = {.x = 3, .y = 4, .label = "w"},
        .path_count = 1,
        .path = fx->path,
    };
}

void wide_fixture_free(wide_fixture *fx)
{
    free(fx->blobs[0]);
    free(fx->blobs[1]);
    fx->blobs[0] = fx->blobs[1] = NULL;
}

static int bytes_eq(gp_bytes b, const char *s, size_t n)
{
    return b.len == n && (n == 0 || (b.data && memcmp(b.data, s, n) == 0));
}

void wide_fixture_check(const gp_test_wide_Wide *got)
{
    const gp_test_wide_Scalars *s = &got->scalars;
    GP_CHECK(got->has_scalars);
    GP_CHECK(s->f_double == 2.5 && s->f_float == -1.25f);
    GP_CHECK_INT(s->f_int32, ==, -5);
    GP_CHECK_INT(s->f_int64, ==, -(1LL << 50));
    GP_CHECK(s->f_uint32 == 4000000000u && s->f_uint64 == 1ULL << 63);
    GP_CHECK_INT(s->f_sint32, ==, -123);
    GP_CHECK_INT(s->f_sint64, ==, -(1LL << 40));
    GP_CHECK(s->f_fixed32 == 7 && s->f_fixed64 == 8);
    GP_CHECK_INT(s->f_sfixed32, ==, -9);
    GP_CHECK_INT(s->f_sfixed64, ==, -10);
    GP_CHECK(s->f_bool);
    GP_CHECK_STR(s->f_string, "str");
    GP_CHECK(bytes_eq(s->f_bytes, "by", 2));
    GP_CHECK_INT(s->f_color, ==, gp_test_wide_Color_GREEN);
    GP_CHECK_STR(s->maybe_name, "maybe");
    GP_CHECK(got->has_inner);
    GP_CHECK_STR(got->inner.name, "in");
    GP_CHECK(bytes_eq(got->inner.blob, "blob", 4));
    GP_CHECK_INT(got->inners_count, ==, 2);
    if (got->inners_count == 2) {
        GP_CHECK_STR(got->inners[0].name, "first");
        GP_CHECK(bytes_eq(got->inners[0].blob, "\0\1\2", 3));
        GP_CHECK_INT(got->inners[1].numbers_count, ==, 3);
        GP_CHECK(got->inners[1].numbers_count == 3 && got->inners[1].numbers[1] == -2);
    }
    GP_CHECK_INT(got->tags_count, ==, 3);
    if (got->tags_count == 3) {
        GP_CHECK_STR(got->tags[0], "x");
        /* The empty string: "" from nanopb, NULL from gob (both mean empty). */
        GP_CHECK_STR(got->tags[1] ? got->tags[1] : "", "");
        GP_CHECK_STR(got->tags[2], "z");
    }
    GP_CHECK_INT(got->blobs_count, ==, 2);
    if (got->blobs_count == 2) {
        GP_CHECK(got->blobs[0] && got->blobs[0]->size == 2 &&
                 memcmp(got->blobs[0]->bytes, "b1", 2) == 0);
        GP_CHECK(got->blobs[1] == NULL || got->blobs[1]->size == 0);
    }
    GP_CHECK(got->colors_count == 2 && got->colors[1] == gp_test_wide_Color_GREEN);
    GP_CHECK_INT(got->counts_count, ==, 2);
    if (got->counts_count == 2) {
        GP_CHECK_STR(got->counts[1].key, "b");
        GP_CHECK_INT(got->counts[1].value, ==, 1LL << 40);
    }
    GP_CHECK(got->files_count == 1 && bytes_eq(got->files[0].value, "data", 4));
    GP_CHECK(got->by_id_count == 1 && got->by_id[0].key == 9 && got->by_id[0].has_value);
    if (got->by_id_count == 1)
        GP_CHECK_STR(got->by_id[0].value.name, "nine");
    GP_CHECK_INT(got->which_choice, ==, gp_test_wide_Wide_nested_tag);
    if (got->which_choice == gp_test_wide_Wide_nested_tag) {
        GP_CHECK_STR(got->choice.nested.name, "chosen");
        GP_CHECK(bytes_eq(got->choice.nested.blob, "cb", 2));
    }
    GP_CHECK(got->has_where && got->where.x == 3);
    GP_CHECK_STR(got->where.label, "w");
    GP_CHECK(got->path_count == 1 && got->path[0].y == 2);
}
