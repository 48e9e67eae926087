/* The counter example's plugin identity, shared by counter-host and
 * counter-plugin. The services (nanopb messages, method descriptors for
 * both wires, typed stubs, server vtables) are generated from counter.proto
 * into "examples/counter/counter.gp.h" (BUILD: counter_proto). */
#ifndef GP_EXAMPLES_COUNTER_H
#define GP_EXAMPLES_COUNTER_H

#include "examples/counter/counter.gp.h"

#define COUNTER_PLUGIN_NAME "counter"

/* The handshake both sides use (go-plugin's bidirectional example). */
#define COUNTER_HANDSHAKE                                                                        \
    {                                                                                            \
        .protocol_version = 1, .magic_cookie_key = "BASIC_PLUGIN", .magic_cookie_value = "hello" \
    }

#endif
