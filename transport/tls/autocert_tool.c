/* Test helper: makes an AutoMTLS certificate and writes OUTDIR/cert.pem,
 * key.pem, cert.der and field.txt (the handshake's 6th field), so shell
 * tests can check them with openssl and Go.
 *   autocert_tool OUTDIR [expired] */
#include "transport/tls/certfield.h"
#include "transport/tls/certgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "autocert_tool: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: autocert_tool OUTDIR [expired]\n");
        return 2;
    }
    gp__tls_certgen_opts opts = {0};
    if (argc > 2 && strcmp(argv[2], "expired") == 0) {
        opts.not_before = time(NULL) - 7200;
        opts.not_after = time(NULL) - 3600;
    }
    char err[512];
    gp__tls_keypair kp;
    if (gp__tls_certgen(&opts, &kp, err, sizeof err) != GP_OK) {
        fprintf(stderr, "autocert_tool: %s\n", err);
        return 1;
    }
    char *field = NULL;
    int rc = 1;
    if (gp__tls_certfield_encode(kp.cert_der, kp.cert_der_len, &field, err, sizeof err) != GP_OK)
        fprintf(stderr, "autocert_tool: %s\n", err);
    else if (write_file(argv[1], "cert.pem", kp.cert_pem, strlen(kp.cert_pem)) == 0 &&
             write_file(argv[1], "key.pem", kp.key_pem, strlen(kp.key_pem)) == 0 &&
             write_file(argv[1], "cert.der", kp.cert_der, kp.cert_der_len) == 0 &&
             write_file(argv[1], "field.txt", field, strlen(field)) == 0)
        rc = 0;
    free(field);
    gp__tls_keypair_free(&kp);
    return rc;
}
