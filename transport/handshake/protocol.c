/* gp_protocol names as they appear on the wire (handshake field 5). */
#include <goplugin/client.h>

#include <string.h>

const char *gp_protocol_name(gp_protocol p)
{
    switch (p) {
    case GP_PROTO_NETRPC:
        return "netrpc";
    case GP_PROTO_GRPC:
        return "grpc";
    default:
        return "";
    }
}

gp_protocol gp_protocol_parse(const char *name)
{
    if (!name)
        return GP_PROTO_NONE;
    if (strcmp(name, "netrpc") == 0)
        return GP_PROTO_NETRPC;
    if (strcmp(name, "grpc") == 0)
        return GP_PROTO_GRPC;
    return GP_PROTO_NONE;
}
