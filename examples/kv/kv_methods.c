#include "examples/kv/kv_methods.h"

const gp_method kv_get_method = {
    .grpc_path = "/proto.KV/Get",
    .netrpc_name = "Plugin.Get",
    .req_pb = proto_GetRequest_fields,
    .resp_pb = proto_GetResponse_fields,
};

const gp_method kv_put_method = {
    .grpc_path = "/proto.KV/Put",
    .netrpc_name = "Plugin.Put",
    .req_pb = proto_PutRequest_fields,
    .resp_pb = proto_Empty_fields,
};
