/* The KV example's plugin identity, shared by kv-host and kv-plugin. The
 * service itself (nanopb messages, method descriptors for both wires, typed
 * client stubs, the server vtable) is generated from kv.proto into
 * "examples/kv/kv.gp.h" by goplugin_c_proto_library (BUILD: kv_proto). */
#ifndef GP_EXAMPLES_KV_H
#define GP_EXAMPLES_KV_H

#include "examples/kv/kv.gp.h"

#define KV_PLUGIN_NAME "kv"
#define KV_COOKIE_KEY "BASIC_PLUGIN"
#define KV_COOKIE_VALUE "hello"
#define KV_PROTOCOL_VERSION 1

#endif
