#include "examples/kv/kv_methods.h"

#include <goplugin/gob.h>

/* The gob structs of the netrpc wire mirror kv.proto field for field (Go's
 * field names, nanopb's tags): GetRequest{Key string}, GetResponse{Value
 * []byte}, PutRequest{Key string; Value []byte}, Empty{}. */
static const gp_gob_field get_request_fields[] = {{"Key", &gp_gob_string_type, 1}};
static const gp_gob_type get_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "GetRequest", .fields = get_request_fields, .nfields = 1};

static const gp_gob_field get_response_fields[] = {{"Value", &gp_gob_bytes_type, 1}};
static const gp_gob_type get_response_gob = {
    .kind = GP_GOB_STRUCT, .name = "GetResponse", .fields = get_response_fields, .nfields = 1};

static const gp_gob_field put_request_fields[] = {{"Key", &gp_gob_string_type, 1},
                                                  {"Value", &gp_gob_bytes_type, 2}};
static const gp_gob_type put_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "PutRequest", .fields = put_request_fields, .nfields = 2};

static const gp_gob_type empty_gob = {.kind = GP_GOB_STRUCT, .name = "Empty"};

const gp_method kv_get_method = {
    .grpc_path = "/proto.KV/Get",
    .netrpc_name = "Plugin.Get",
    .req_pb = proto_GetRequest_fields,
    .resp_pb = proto_GetResponse_fields,
    .req_gob = &get_request_gob,
    .resp_gob = &get_response_gob,
};

const gp_method kv_put_method = {
    .grpc_path = "/proto.KV/Put",
    .netrpc_name = "Plugin.Put",
    .req_pb = proto_PutRequest_fields,
    .resp_pb = proto_Empty_fields,
    .req_gob = &put_request_gob,
    .resp_gob = &empty_gob,
};
