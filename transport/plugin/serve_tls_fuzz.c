/* Fuzz target: the AutoMTLS certificates a peer hands us. The same bytes
 * go through the plugin's check of PLUGIN_CLIENT_CERT (PEM) and through
 * the host's check of handshake field 6 (base64 DER, then fit for server
 * use, then PEM), as client_tls.c does it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/plugin/serve_tls.h"
#include "transport/tls/certfield.h"
#include "transport/tls/pem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char err[1024];
    err[0] = 0;
    char *pem = NULL;
    gp_err rc = gp__serve_tls_host_cert(text, &pem, err, sizeof err);
    if ((rc == GP_OK) != (pem != NULL) || (rc != GP_OK && !err[0]))
        abort(); /* a result or words, never both or neither */
    free(pem);

    unsigned char *der = NULL;
    size_t n = 0;
    err[0] = 0;
    rc = gp__tls_certfield_decode((const char *)data, size, &der, &n, err, sizeof err);
    if (rc == GP_OK)
        rc = gp__tls_autocert_check(der, n, true, "fuzz", err, sizeof err);
    if (rc == GP_OK) {
        char *again = NULL;
        if (gp__tls_der_to_pem(der, n, &again, err, sizeof err) != GP_OK || !again)
            abort();
        free(again);
    } else if (!err[0]) {
        abort();
    }
    free(der);
    free(text);
    return 0;
}
