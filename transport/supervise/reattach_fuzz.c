/* Fuzz the reattach file parser. Whatever parses must format and parse
 * back to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <goplugin/supervise.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp_reattach_config a, b;
    gp_status st = {0};
    if (gp_reattach_parse((const char *)data, size, &a, &st) != GP_OK) {
        if (!st.msg[0])
            abort(); /* every failure has words */
        return 0;
    }
    char *text = NULL;
    if (gp_reattach_format(&a, &text, &st) != GP_OK)
        abort();
    if (gp_reattach_parse(text, strlen(text), &b, &st) != GP_OK)
        abort();
    if (a.protocol != b.protocol || a.protocol_version != b.protocol_version || a.pid != b.pid ||
        a.test != b.test || strcmp(a.network, b.network) != 0 || strcmp(a.address, b.address) != 0)
        abort();
    free(text);
    gp_reattach_config_clear(&a);
    gp_reattach_config_clear(&b);
    return 0;
}
