/* gp_method descriptors for counter.proto, both wires (hand-written: gob
 * descriptors mirror the Go structs of the netrpc side field for field). */
#ifndef EXAMPLES_COUNTER_COUNTER_METHODS_H
#define EXAMPLES_COUNTER_COUNTER_METHODS_H

#include <goplugin/method.h>

#include "examples/counter/counter.pb.h"

extern const gp_method counter_get_method;   /* /proto.Counter/Get, Plugin.Get */
extern const gp_method counter_put_method;   /* /proto.Counter/Put, Plugin.Put */
extern const gp_method add_helper_sum_method; /* /proto.AddHelper/Sum, Plugin.Sum */

/* The handshake both sides use (go-plugin's bidirectional example). */
#define COUNTER_HANDSHAKE                                                                   \
    {.protocol_version = 1, .magic_cookie_key = "BASIC_PLUGIN", .magic_cookie_value = "hello"}

#endif
