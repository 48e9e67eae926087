/* Test helper: the C side of the Go interop test, over a unix socket.
 *   tls_peer_tool server SOCK OWNDIR PEERCERT     accept one, echo until EOF
 *   tls_peer_tool client SOCK OWNDIR PEERCERT N   send N bytes, expect the echo
 * OWNDIR holds cert.pem and key.pem. A PEERCERT ending in ".txt" is a
 * handshake field 6 (base64 DER), decoded as a host does. Prints "tls_peer_tool: ok ..." or
 * "tls_peer_tool: <error>" and exits 1. */
#include "transport/tls/certfield.h"
#include "transport/tls/stream.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char *slurp(const char *dir, const char *name)
{
    char path[4096];
    if (name)
        snprintf(path, sizeof path, "%s/%s", dir, name);
    else
        snprintf(path, sizeof path, "%s", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("tls_peer_tool: cannot open %s\n", path);
        exit(1);
    }
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 131 + (i >> 9)); /* the same as tlspeer.go */
}

typedef struct job {
    gp__tls *t;
    size_t n;
    gp_err rc;
    char err[512];
} job;

static void *send_all(void *arg)
{
    job *j = arg;
    unsigned char *b = malloc(j->n ? j->n : 1);
    for (size_t i = 0; i < j->n; i++)
        b[i] = pattern(i);
    j->rc = gp__tls_write(j->t, b, j->n, 20000, j->err, sizeof j->err);
    free(b);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5 || (strcmp(argv[1], "client") == 0 && argc < 6)) {
        printf("tls_peer_tool: usage: server|client SOCK OWNDIR PEERCERT [N]\n");
        return 2;
    }
    int server = strcmp(argv[1], "server") == 0;
    char *cert = slurp(argv[3], "cert.pem"), *key = slurp(argv[3], "key.pem");
    char *peer = slurp(argv[4], NULL);
    size_t plen = strlen(argv[4]);
    if (plen > 4 && strcmp(argv[4] + plen - 4, ".txt") == 0) {
        /* a handshake field 6, as a host receives it: decode as the host does */
        char err[512], *pem = NULL;
        size_t flen = strlen(peer);
        if (!gp__tls_certfield_present(peer, flen) ||
            gp__tls_certfield_to_pem(peer, flen, &pem, err, sizeof err) != GP_OK) {
            printf("tls_peer_tool: %s\n",
                   gp__tls_certfield_present(peer, flen) ? err : "field too short");
            return 1;
        }
        free(peer);
        peer = pem;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[2]);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (server) {
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 1)) {
            perror("tls_peer_tool: listen");
            return 1;
        }
        printf("tls_peer_tool: listening\n");
        fflush(stdout);
        int c = accept(fd, NULL, NULL);
        close(fd);
        fd = c;
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        perror("tls_peer_tool: connect");
        return 1;
    }

    gp__tls_params p = {.role = server ? GP_TLS_SERVER : GP_TLS_CLIENT,
                        .cert_pem = cert,
                        .key_pem = key,
                        .peer_ca_pem = peer,
                        .handshake_timeout_ms = 10000};
    gp__tls *t = NULL;
    char err[512], desc[128];
    gp_err rc = gp__tls_open(fd, &p, &t, err, sizeof err);
    free(cert);
    free(key);
    free(peer);
    if (rc != GP_OK) {
        printf("tls_peer_tool: %s\n", err);
        close(fd);
        return 1;
    }
    gp__tls_describe(t, desc, sizeof desc);

    size_t total = 0;
    unsigned char buf[16384];
    if (server) {
        for (;;) {
            size_t n = 0;
            if ((rc = gp__tls_read(t, buf, sizeof buf, 20000, &n, err, sizeof err)) != GP_OK)
                break;
            if (n == 0)
                break;
            if ((rc = gp__tls_write(t, buf, n, 20000, err, sizeof err)) != GP_OK)
                break;
            total += n;
        }
    } else {
        job j = {.t = t, .n = strtoul(argv[5], NULL, 10)};
        pthread_t th;
        pthread_create(&th, NULL, send_all, &j);
        while (rc == GP_OK && total < j.n) {
            size_t n = 0;
            rc = gp__tls_read(t, buf, sizeof buf, 20000, &n, err, sizeof err);
            if (rc == GP_OK && n == 0) {
                snprintf(err, sizeof err, "EOF after %zu of %zu bytes", total, j.n);
                rc = GP_ECLOSED;
            }
            for (size_t i = 0; rc == GP_OK && i < n; i++)
                if (buf[i] != pattern(total + i)) {
                    snprintf(err, sizeof err, "echo differs at byte %zu", total + i);
                    rc = GP_EPROTO;
                }
            total += n;
        }
        pthread_join(th, NULL);
        if (rc == GP_OK && j.rc != GP_OK) {
            rc = j.rc;
            snprintf(err, sizeof err, "%s", j.err);
        }
    }
    gp__tls_close(t);
    if (rc != GP_OK) {
        printf("tls_peer_tool: %s\n", err);
        return 1;
    }
    printf("tls_peer_tool: ok %s %zu bytes, %s\n", server ? "server echoed" : "client got back",
           total, desc);
    return 0;
}
