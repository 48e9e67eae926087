/* The wire table of //transport:goplugin: gRPC and netrpc. */
#include "transport/core/wire.h"

const gp__wire *gp__wire_find(gp_protocol p)
{
    if (p == GP_PROTO_GRPC)
        return &gp__wire_grpc;
    if (p == GP_PROTO_NETRPC)
        return &gp__wire_netrpc;
    return NULL;
}
