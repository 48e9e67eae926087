/* The wire table of //transport:goplugin_netrpc: netrpc only, so neither
 * gRPC core nor its dependencies are linked. */
#include "transport/core/wire.h"

const gp__wire *gp__wire_find(gp_protocol p)
{
    return p == GP_PROTO_NETRPC ? &gp__wire_netrpc : NULL;
}
