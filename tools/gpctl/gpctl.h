/* gpctl: the command on the plugin store (docs/store.md). Shared by its
 * command files. */
#ifndef GP_TOOLS_GPCTL_H
#define GP_TOOLS_GPCTL_H

#include <stdio.h>

#include <goplugin/store.h>

/* Where commands write: stdout and stderr unless a caller (a serve
 * answering a forwarded command) points them elsewhere for one command. */
extern FILE *gpctl_out;
extern FILE *gpctl_err;

/* One line "gpctl: ..." on gpctl_err; returns 1, the exit status of a
 * failure (as kv-host: usage errors too). */
int gpctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gpctl_usage(void);

/* Problems found while loading: "gpctl: warning: FILE: MSG" on gpctl_err. */
void gpctl_problem(void *ctx, const char *file, const char *msg);

/* The store commands (store_cmds.c). argv[0] is the command's name. Each
 * returns the exit status. The store is open with the lock, or read-only
 * for ls and inspect; with s NULL a command only checks its arguments
 * (main does that first, so a usage error creates and locks nothing). */
int gpctl_install(gp_store *s, int argc, char **argv);
/* Where install's PATH is in its argv (after the options), or -1: a serve
 * makes a relative one absolute against the client's directory. */
int gpctl_install_path_index(int argc, char *const *argv);
int gpctl_ls(gp_store *s, int argc, char **argv);
int gpctl_inspect(gp_store *s, int argc, char **argv);
int gpctl_enable(gp_store *s, int argc, char **argv);
int gpctl_disable(gp_store *s, int argc, char **argv);
int gpctl_grant(gp_store *s, int argc, char **argv);
int gpctl_rm(gp_store *s, int argc, char **argv);
int gpctl_gc(gp_store *s, int argc, char **argv);

#endif
