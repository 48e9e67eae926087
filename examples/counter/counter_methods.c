#include "examples/counter/counter_methods.h"

#include <goplugin/gob.h>

/* Go's structs on the netrpc wire: GetRequest{Key string},
 * GetResponse{Value int64}, PutRequest{AddServer uint32; Key string;
 * Value int64}, Empty{}, SumRequest{A, B int64}, SumResponse{R int64}. */
static const gp_gob_field get_request_fields[] = {{"Key", &gp_gob_string_type, 1}};
static const gp_gob_type get_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "GetRequest", .fields = get_request_fields, .nfields = 1};

static const gp_gob_field get_response_fields[] = {{"Value", &gp_gob_int_type, 1}};
static const gp_gob_type get_response_gob = {
    .kind = GP_GOB_STRUCT, .name = "GetResponse", .fields = get_response_fields, .nfields = 1};

static const gp_gob_field put_request_fields[] = {{"AddServer", &gp_gob_uint_type, 1},
                                                  {"Key", &gp_gob_string_type, 2},
                                                  {"Value", &gp_gob_int_type, 3}};
static const gp_gob_type put_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "PutRequest", .fields = put_request_fields, .nfields = 3};

static const gp_gob_type empty_gob = {.kind = GP_GOB_STRUCT, .name = "Empty"};

static const gp_gob_field sum_request_fields[] = {{"A", &gp_gob_int_type, 1},
                                                  {"B", &gp_gob_int_type, 2}};
static const gp_gob_type sum_request_gob = {
    .kind = GP_GOB_STRUCT, .name = "SumRequest", .fields = sum_request_fields, .nfields = 2};

static const gp_gob_field sum_response_fields[] = {{"R", &gp_gob_int_type, 1}};
static const gp_gob_type sum_response_gob = {
    .kind = GP_GOB_STRUCT, .name = "SumResponse", .fields = sum_response_fields, .nfields = 1};

const gp_method counter_get_method = {
    .grpc_path = "/proto.Counter/Get",
    .netrpc_name = "Plugin.Get",
    .req_pb = proto_GetRequest_fields,
    .resp_pb = proto_GetResponse_fields,
    .req_gob = &get_request_gob,
    .resp_gob = &get_response_gob,
};

const gp_method counter_put_method = {
    .grpc_path = "/proto.Counter/Put",
    .netrpc_name = "Plugin.Put",
    .req_pb = proto_PutRequest_fields,
    .resp_pb = proto_Empty_fields,
    .req_gob = &put_request_gob,
    .resp_gob = &empty_gob,
};

const gp_method add_helper_sum_method = {
    .grpc_path = "/proto.AddHelper/Sum",
    .netrpc_name = "Plugin.Sum",
    .req_pb = proto_SumRequest_fields,
    .resp_pb = proto_SumResponse_fields,
    .req_gob = &sum_request_gob,
    .resp_gob = &sum_response_gob,
};
