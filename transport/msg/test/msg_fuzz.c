/* Fuzz: the input decoded as each KV, plugin-service and UTF-8 test
 * message, the UTF-8 walker run over it; whatever decodes must re-encode
 * and release cleanly. */
#include <goplugin/method.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/wire/grpc/proto/grpc_broker.pb.h"
#include "transport/wire/grpc/proto/grpc_controller.pb.h"
#include "transport/wire/grpc/proto/grpc_stdio.pb.h"
#include "transport/wire/grpc/proto/health.pb.h"
#include "transport/testing/proto/kv.pb.h"
#include "transport/msg/test/utf8.pb.h"
#include "transport/msg/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const pb_msgdesc_t *desc, const uint8_t *data, size_t size)
{
    /* Big enough for any of the structs above. */
    union {
        proto_PutRequest put;
        plugin_ConnInfo ci;
        plugin_StdioData sd;
        grpc_health_v1_HealthCheckResponse hr;
        utf8test_Outer outer;
        uint8_t raw[256];
    } msg;
    memset(&msg, 0, sizeof msg);
    char err[128];
    if (gp__msg_decode_buf(desc, data, size, &msg, "fuzz", err, sizeof err) != GP_OK)
        return;
    /* The UTF-8 walker over whatever decoded (every string kind, nested). */
    gp__msg_check_utf8(desc, &msg, "fuzz", err, sizeof err);
    size_t n = 0;
    if (gp__msg_size(desc, &msg, &n, "fuzz", err, sizeof err) == GP_OK) {
        uint8_t *buf = malloc(n ? n : 1);
        if (buf && gp__msg_encode_buf(desc, &msg, buf, n, NULL, "fuzz", err, sizeof err) != GP_OK)
            abort(); /* sizing succeeded, so encoding must too */
        free(buf);
    }
    gp_msg_release(desc, &msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const pb_msgdesc_t *all[] = {
        proto_GetRequest_fields,
        proto_GetResponse_fields,
        proto_PutRequest_fields,
        proto_Empty_fields,
        plugin_ConnInfo_fields,
        plugin_Empty_fields,
        plugin_StdioData_fields,
        grpc_health_v1_HealthCheckRequest_fields,
        grpc_health_v1_HealthCheckResponse_fields,
        utf8test_Outer_fields,
        utf8test_Inner_fields,
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        one(all[i], data, size);
    return 0;
}
