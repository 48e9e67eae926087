/* libFuzzer target: PLUGIN_UNIX_SOCKET_DIR as a plugin reads it (the rest
 * of the env contract is //transport/handshake:fuzz_env). The input is the
 * value (env values end at a NUL). Checks: an accepted directory gives an
 * absolute "<dir>/plugin<digits>" path that fits a sockaddr_un; a refused
 * one says why. Only stat/lstat/getcwd touch the file system. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/net/errf.h"
#include "transport/net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "unix_dir_fuzz invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *dir = malloc(size + 1);
    expect(dir != NULL, "malloc");
    memcpy(dir, data, size);
    dir[size] = 0;
    char path[GP_NET_UNIX_PATH_MAX + 1], err[512];
    gp_err e = gp__net_unix_path(dir, path, sizeof path, err, sizeof err);
    if (e == GP_OK) {
        size_t n = strlen(path);
        expect(path[0] == '/', "path is absolute");
        expect(n <= GP_NET_UNIX_PATH_MAX, "path fits sockaddr_un");
        const char *base = strrchr(path, '/');
        expect(base && strncmp(base, "/plugin", 7) == 0, "name is plugin<N>");
        expect(base[7] != 0 && strspn(base + 7, "0123456789") == strlen(base + 7), "N is decimal");
    } else {
        expect(err[0] != 0, "errors say why");
    }
    free(dir);
    return 0;
}
