/* libFuzzer target: arbitrary bytes from the peer into a live yamux
 * session (server role) over a socketpair; then every stream the bytes
 * opened is accepted, read and freed, and the session freed. Catches
 * reference, window and teardown mistakes the frame parser cannot see. */
#include "transport/yamux/mux_session.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    gp__mux_config cfg = {
        .keepalive_interval_ms = -1, .accept_backlog = 8, .write_timeout_ms = 1000};
    gp__mux_session *s;
    if (gp__mux_session_new(sv[0], GP_MUX_SERVER, &cfg, &s) != GP_OK)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR); /* EOF ends the session once the bytes are read */
    gp__mux_stream *st;
    while (gp__mux_accept(s, 2000, &st) == GP_OK) {
        uint8_t buf[512];
        size_t n;
        gp__mux_stream_read(st, buf, sizeof buf, 0, &n);
        gp__mux_stream_write(st, "x", 1, 0);
        gp__mux_stream_free(st);
    }
    gp__mux_session_free(s);
    close(sv[1]);
    return 0;
}
