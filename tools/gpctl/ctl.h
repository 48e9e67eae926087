/* gpctl's control socket: how gpctl commands reach a running `gpctl serve`.
 *
 * ROOT/gpctl.sock, a unix stream socket (mode 0600, in the 0700 root),
 * bound by serve while it holds the store's lock. One connection carries
 * one command, as lines (docs/store.md, "The control socket"):
 *
 *   gpctl -> serve   "gpctl/1 N\n"; a line with gpctl's working directory
 *                    (relative paths in the command are relative to it);
 *                    then N lines: the command's arguments after the
 *                    global options ("enable", "kv"), one per line (an
 *                    argument cannot hold a newline)
 *   serve -> gpctl   any number of "out TEXT\n" and "err TEXT\n" lines
 *                    (gpctl prints TEXT on its stdout or stderr), then
 *                    "exit CODE\n"; then serve closes.
 *
 * The path is reached through /proc/self/fd/<root fd>/gpctl.sock, so a
 * root longer than a sun_path (108 bytes) still works.
 */
#ifndef GPCTL_CTL_H
#define GPCTL_CTL_H

#include <stdio.h>

#include <goplugin/store_manager.h>

#define GPCTL_SOCK_NAME "gpctl.sock"
#define GPCTL_CTL_VERSION "gpctl/1"
#define GPCTL_CTL_MAX_ARGS 256
#define GPCTL_CTL_MAX_LINE 8192

/* Send argv to the serve of `root` and print its answer. Returns -1 when
 * no serve listens there (no socket, or nobody accepts): the caller edits
 * the store directly. Otherwise the command's exit code (1 with a line on
 * stderr when the exchange itself failed). */
int gpctl_forward(const char *root, int argc, char *const *argv);

/* The serve side: runs one forwarded command against the manager, its
 * output into `out` and `err`; returns the exit code. `cwd` is the
 * client's working directory. */
typedef int (*gpctl_ctl_handler)(void *ctx, const char *cwd, int argc, char **argv, FILE *out,
                                 FILE *err);

typedef struct gpctl_ctl gpctl_ctl;

/* Bind ROOT/gpctl.sock (a stale one is replaced: the caller holds the
 * store's lock, so no other serve owns it) and answer connections
 * through `h`, up to 8 at once, each on a thread of its own (so `h` is
 * called concurrently); more wait in the listen queue. Prints its own
 * failure on stderr and returns NULL. */
gpctl_ctl *gpctl_ctl_start(const char *root, gpctl_ctl_handler h, void *ctx);

/* Remove the socket file: no new client reaches this serve (a gpctl from
 * then on edits the store directly, once the lock is free). The commands
 * under way go on. NULL: no-op. */
void gpctl_ctl_unpublish(gpctl_ctl *c);

/* Remove the socket (if not yet), stop answering, wait for the commands
 * under way. NULL: no-op. */
void gpctl_ctl_stop(gpctl_ctl *c);

/* Answer one connection on `fd`: read the request (within 5 s), run `h`
 * when it is well formed (else exit 1 with a line saying what was
 * expected), write the answer. Does not close fd. The control thread's
 * work, and the fuzz target's entry (ctl_fuzz.c). */
void gpctl_ctl_answer(int fd, gpctl_ctl_handler h, void *ctx);

/* `gpctl serve [--live-restore]`: argv[0] is "serve". Returns the exit
 * code. */
int gpctl_serve(const char *root, int argc, char **argv);

#endif
