/* libFuzzer target: a config.json record as the store reads it from disk,
 * where any process may have written it. Checks: an accepted record has
 * valid fields (name, tag, id, digest, privileges, versions, protocols),
 * formats, and parses back to the same text; a refused one says why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goplugin/store.h>

#include "transport/store/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "record_fuzz invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp_store_record *r = NULL;
    gp_status st;
    gp_err e = gp_store_record_parse((const char *)data, size, &r, &st);
    if (e != GP_OK) {
        expect(r == NULL, "no record on failure");
        expect(st.msg[0] != 0, "errors say why");
        expect(e == GP_EPROTO || e == GP_EMSGSIZE || e == GP_ENOMEM, "error code");
        return 0;
    }
    expect(gp__store_name_valid(r->name, GP_STORE_NAME_MAX), "name");
    expect(gp__store_name_valid(r->tag, GP_STORE_TAG_MAX), "tag");
    expect(gp__store_hex64_valid(r->id) && gp__store_hex64_valid(r->digest), "id, digest");
    expect(r->nversions >= 1 && r->versions[0] >= 1, "versions");
    expect(r->protocols && !(r->protocols & ~3u), "protocols");
    for (size_t i = 0; r->required[i]; i++)
        expect(gp_store_privilege_valid(r->required[i]), "required privilege");
    for (size_t i = 0; r->granted[i]; i++)
        expect(gp_store_privilege_valid(r->granted[i]), "granted privilege");
    for (size_t i = 0; r->env[i]; i++)
        expect(gp__store_env_valid(r->env[i]), "env entry");
    char *json = NULL, *again = NULL;
    expect(gp_store_record_json(r, &json, &st) == GP_OK, "formats");
    gp_store_record *back = NULL;
    expect(gp_store_record_parse(json, strlen(json), &back, &st) == GP_OK, "parses back");
    expect(gp_store_record_json(back, &again, &st) == GP_OK, "formats again");
    expect(strcmp(json, again) == 0, "round trip is stable");
    gp_store_record *copy = gp_store_record_copy(r);
    expect(copy && strcmp(copy->name, r->name) == 0, "copy");
    gp_store_record_free(copy);
    free(json);
    free(again);
    gp_store_record_free(back);
    gp_store_record_free(r);
    return 0;
}
