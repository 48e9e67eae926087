/* Test helper: one testdata/wide.proto message with every field kind set,
 * and the checks that a copy of it arrived field for field. */
#ifndef GP_CODEGEN_WIDE_FIXTURE_H
#define GP_CODEGEN_WIDE_FIXTURE_H

#include "codegen/protoc-gen-goplugin-c/testdata/wide.gp.h"

typedef struct wide_fixture {
    gp_test_wide_Wide msg; /* points into the arrays below and literals */
    int32_t numbers[3];
    gp_test_wide_Wide_Inner inners[2];
    char *tags[3];
    pb_bytes_array_t *blobs[2];
    gp_test_wide_Color colors[2];
    gp_test_wide_Wide_CountsEntry counts[2];
    gp_test_wide_Wide_FilesEntry files[1];
    gp_test_wide_Wide_ByIdEntry by_id[1];
    gp_test_common_Point path[1];
} wide_fixture;

/* A malloc'd pb_bytes_array_t holding s (NULL when out of memory). */
pb_bytes_array_t *wide_bytes_array(const char *s);

void wide_fixture_fill(wide_fixture *fx);
void wide_fixture_free(wide_fixture *fx);
/* GP_CHECKs that `got` equals the fixture's message. */
void wide_fixture_check(const gp_test_wide_Wide *got);

#endif
