/* kv-host: a plugin that outlives the host, and finding it again.
 *
 *   kv-host --plugin PATH [--proto P] --detach FILE [--detach-output PREFIX] -- CMD...
 *   kv-host --reattach FILE -- CMD...
 *   kv-host --reattach FILE --kill
 *
 * A detached plugin's stdout and stderr go to PREFIX.stdout and
 * PREFIX.stderr (appended), PREFIX being FILE unless --detach-output says
 * otherwise, so it can still write (and log) once kv-host has exited.
 * --kill leaves them (they are the plugin's logs).
 */
#ifndef GP_EXAMPLES_KV_DETACH_H
#define GP_EXAMPLES_KV_DETACH_H

#include "examples/kv/bench.h"

typedef struct kv_detach_opts {
    const char *detach_file;   /* --detach FILE */
    const char *output_prefix; /* --detach-output PREFIX; NULL: FILE */
    const char *reattach_file; /* --reattach FILE */
    int kill;                  /* --kill */
} kv_detach_opts;

/* Filled by host.c's option parsing. */
extern kv_detach_opts kv_detach;

/* After option parsing: check how the options combine and run --kill.
 * Returns -1 to go on with the commands (ncmd of them), else the exit
 * status. Sets o->detached for --detach. cmd: the command words. */
int kv_detach_check(kv_host_opts *o, char **cmd, int ncmd);

/* In place of kv_session_open/kv_session_close: for --reattach they attach
 * to the plugin in the file; for --detach close writes the file and lets
 * the plugin go (only if the commands succeeded, rc == 0; else it is
 * killed). Otherwise they are kv_session_open/close. close returns the exit
 * status. */
int kv_detach_open(const kv_host_opts *o, kv_session *s);
int kv_detach_close(kv_session *s, int rc);

#endif
