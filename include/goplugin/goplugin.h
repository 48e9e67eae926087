/* goplugin-c: the whole public API (every header in include/goplugin). */
#ifndef GOPLUGIN_GOPLUGIN_H
#define GOPLUGIN_GOPLUGIN_H

#include <goplugin/action.h>
#include <goplugin/backoff.h>
#include <goplugin/broker.h>
#include <goplugin/client.h>
#include <goplugin/client_exit.h>
#include <goplugin/conn.h>
#include <goplugin/err.h>
#include <goplugin/gob.h>
#include <goplugin/handoff.h>
#include <goplugin/limits.h>
#include <goplugin/log.h>
#include <goplugin/method.h>
#include <goplugin/reattach.h>
#include <goplugin/server.h>
#include <goplugin/store.h>
#include <goplugin/store_manager.h>
#include <goplugin/supervise.h>
#include <goplugin/supervisor.h>
#include <goplugin/tls.h>

#endif
