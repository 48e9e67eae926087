/* Fuzz the stderr line parser: any bytes, never a crash or a leak. */
#include <stdint.h>
#include <string.h>

#include "transport/process/hclog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gp__hclog_rec r;
    if (gp__hclog_parse((const char *)data, size, &r) != GP_OK)
        return 0;
    /* Touch every output so sanitizers see bad pointers. */
    size_t sum = strlen(r.msg);
    for (size_t i = 0; i < r.nkv; i++)
        sum += strlen(r.kv[i].key) + strlen(r.kv[i].value);
    (void)sum;
    gp__hclog_rec_free(&r);
    return 0;
}
