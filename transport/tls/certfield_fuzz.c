/* Fuzz target: the handshake's certificate field (base64, then DER). */
#include "transport/tls/certfield.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *der = NULL;
    size_t n = 0;
    char err[256];
    gp_err rc = gp__tls_certfield_decode((const char *)data, size, &der, &n, err, sizeof err);
    if (rc == GP_OK) {
        /* whatever decodes must encode back to a field that decodes alike */
        char *again = NULL;
        if (gp__tls_certfield_encode(der, n, &again, err, sizeof err) != GP_OK)
            abort();
        unsigned char *der2 = NULL;
        size_t n2 = 0;
        if (gp__tls_certfield_decode(again, strlen(again), &der2, &n2, err, sizeof err) != GP_OK ||
            n2 != n || memcmp(der, der2, n) != 0)
            abort();
        free(der2);
        free(again);
    } else if (der || n || !err[0]) {
        abort(); /* errors leave nothing behind and always have words */
    }
    free(der);
    return 0;
}
