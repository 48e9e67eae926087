/* goplugin-c: keeping plugin processes alive and handing them what they
 * need. An umbrella for pieces that each have their own header and are
 * usable alone:
 *
 *  - goplugin/handoff.h:    configuration and a secret over pipes, a ready
 *                           status back; extra fds for a child
 *  - goplugin/action.h:     self re-exec of named actions
 *  - goplugin/reattach.h:   reattach files (go-plugin's ReattachConfig)
 *  - goplugin/backoff.h:    restart backoff, a pure state machine
 *  - goplugin/supervisor.h: a thread that keeps a plugin running
 *
 * Detaching a plugin from its host is gp_client_config.detached (client.h).
 * docs/supervision.md has an example of each.
 */
#ifndef GOPLUGIN_SUPERVISE_H
#define GOPLUGIN_SUPERVISE_H

#include <goplugin/action.h>
#include <goplugin/backoff.h>
#include <goplugin/handoff.h>
#include <goplugin/reattach.h>
#include <goplugin/supervisor.h>

#endif
