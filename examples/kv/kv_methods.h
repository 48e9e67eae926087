/* The KV service's methods, described once for both wires. (The codegen
 * issue generates this from kv.proto; until then it is written by hand.) */
#ifndef GP_EXAMPLES_KV_METHODS_H
#define GP_EXAMPLES_KV_METHODS_H

#include <goplugin/method.h>

#include "examples/kv/kv.pb.h"

#define KV_PLUGIN_NAME "kv"
#define KV_COOKIE_KEY "BASIC_PLUGIN"
#define KV_COOKIE_VALUE "hello"
#define KV_PROTOCOL_VERSION 1

extern const gp_method kv_get_method;   /* proto_GetRequest -> proto_GetResponse */
extern const gp_method kv_put_method;   /* proto_PutRequest -> proto_Empty */

#endif
