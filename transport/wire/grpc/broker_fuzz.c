/* libFuzzer target: a ConnInfo message from the peer's broker stream
 * (gp__grpc_broker_received), on arbitrary bytes. */
#include "transport/wire/grpc/broker.h"

#include <stdint.h>
#include <stdlib.h>

#include "transport/wire/grpc/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gp_err drop(void *ctx, grpc_byte_buffer *bb)
{
    (void)ctx;
    grpc_byte_buffer_destroy(bb);
    return GP_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gp__grpc_broker *b;
    if (!b) {
        gp__grpc_core_ref(NULL);
        gp__grpc_broker_opts o = {.send = drop};
        if (gp__grpc_broker_new(&o, &b) != GP_OK)
            abort();
    }
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, size);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    gp__grpc_broker_received(b, bb);
    grpc_byte_buffer_destroy(bb);
    return 0;
}
