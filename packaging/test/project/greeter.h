/* The plugin's identity, shared by greeter-host and greeter-plugin. */
#ifndef GREETER_H
#define GREETER_H

#include "proto/greeter.gp.h" /* goplugin-protoc --out gen proto/greeter.proto */

#define GREETER_PLUGIN_NAME "greeter"
#define GREETER_COOKIE_KEY "GREETER_PLUGIN"
#define GREETER_COOKIE_VALUE "8d1f3c"
#define GREETER_PROTOCOL_VERSION 1

#endif
