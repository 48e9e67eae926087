/* libFuzzer target: a request on gpctl's control socket, as serve reads it
 * (the socket is 0600 in a 0700 root, but serve must still survive
 * whatever a client sends). The bytes go in through a socketpair whose
 * writing end is then closed. Checks: the handler runs only for a well
 * formed request (a version line "gpctl/1 N" with 1 <= N <= 256, an
 * absolute directory, N arguments, no NUL or newline in any), and the
 * answer always ends with one "exit CODE" line: the handler's code, or 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tools/gpctl/ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "ctl_fuzz invariant broken: %s\n", what);
        abort();
    }
}

static int calls;

static int handler(void *ctx, const char *cwd, int argc, char **argv, FILE *out, FILE *err)
{
    (void)ctx;
    calls++;
    expect(cwd[0] == '/', "cwd is absolute");
    expect(argc >= 1 && argc <= GPCTL_CTL_MAX_ARGS, "argc in range");
    for (int i = 0; i < argc; i++)
        expect(argv[i] && !strchr(argv[i], '\n'), "argument is one line");
    expect(argv[argc] == NULL, "argv is NULL-terminated");
    fprintf(out, "%d arguments\n", argc);
    fprintf(err, "first: %s\n", argv[0]);
    return 40 + argc % 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 60000) /* fits the socket buffer: no writer thread needed */
        return 0;
    int sv[2];
    expect(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    int big = 1 << 18;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    expect(write(sv[0], data, size) == (ssize_t)size, "the request is written whole");
    shutdown(sv[0], SHUT_WR);
    calls = 0;
    gpctl_ctl_answer(sv[1], handler, NULL);
    close(sv[1]);
    char *ans = malloc(1 << 20);
    size_t len = 0;
    ssize_t got;
    while ((got = read(sv[0], ans + len, (1 << 20) - 1 - len)) > 0)
        len += (size_t)got;
    close(sv[0]);
    ans[len] = '\0';
    expect(len > 0 && ans[len - 1] == '\n', "the answer ends with a newline");
    char *last = len >= 2 ? ans + len - 2 : ans;
    while (last > ans && last[-1] != '\n')
        last--;
    int code = -1;
    expect(sscanf(last, "exit %d\n", &code) == 1, "the last line is exit CODE");
    expect(calls <= 1, "at most one call");
    expect(calls ? code >= 40 && code <= 42 : code == 1, "the code is the handler's, or 1");
    free(ans);
    return 0;
}
