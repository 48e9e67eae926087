/* libFuzzer target: messages on the broker stream of a multiplexing broker
 * (knocks, acks, refusals, old-style ConnInfo, garbage) on arbitrary
 * bytes, with one served id so that knocks for it arm a real session. */
#include "transport/wire/grpc/broker.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "transport/net/net.h"
#include "transport/wire/grpc/core.h"
#include "transport/wire/grpc/mux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gp_err drop(void *ctx, grpc_byte_buffer *bb)
{
    (void)ctx;
    grpc_byte_buffer_destroy(bb);
    return GP_OK;
}

static const gp_service none = {.name = "none"};

static gp__grpc_broker *setup(void)
{
    gp__grpc_core_ref(NULL);
    gp__grpc_broker *b = NULL;
    gp__grpc_broker_opts o = {.send = drop};
    char path[108], err[256];
    int lfd = -1, fd = -1;
    gp__grpc_mux *pm = NULL, *hm = NULL;
    if (gp__grpc_broker_new(&o, &b) != GP_OK ||
        gp__net_unix_path(NULL, path, sizeof path, err, sizeof err) != GP_OK ||
        gp__net_listen_unix(path, NULL, &lfd, err, sizeof err) != GP_OK ||
        gp__grpc_mux_server(lfd, NULL, &pm, err, sizeof err) != GP_OK ||
        gp__net_dial("unix", path, 2000, 0, &fd, err, sizeof err) != GP_OK ||
        gp__grpc_mux_client(fd, NULL, &hm, err, sizeof err) != GP_OK ||
        gp__grpc_broker_use_mux(b, pm) != GP_OK)
        abort();
    unlink(path);
    gp_status st;
    if (gp_broker_accept_and_serve(gp__grpc_broker_base(b), 1, &none, &st) != GP_OK)
        abort();
    (void)hm; /* the peer's end: kept open for the whole run */
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gp__grpc_broker *b;
    if (!b)
        b = setup();
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, size);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    gp__grpc_broker_received(b, bb);
    grpc_byte_buffer_destroy(bb);
    return 0;
}
