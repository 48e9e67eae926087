/* goplugin-c: the whole public API. */
#ifndef GOPLUGIN_GOPLUGIN_H
#define GOPLUGIN_GOPLUGIN_H

#include <goplugin/broker.h>
#include <goplugin/client.h>
#include <goplugin/conn.h>
#include <goplugin/err.h>
#include <goplugin/log.h>
#include <goplugin/method.h>
#include <goplugin/server.h>

#endif
