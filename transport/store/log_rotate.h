/* Keeping a plugin's log files (ROOT/logs/NAME.stdout, .stderr) bounded.
 * The plugin writes them itself, appending through descriptors it holds,
 * so that its output outlives a manager (live restore). Two moves:
 *   - before a launch nobody writes the file: rename it to PATH.1;
 *   - while a plugin runs, a rename would not move its writes (its
 *     descriptor follows the inode): copy the file to PATH.1 and cut it
 *     back to empty in place.
 * Both replace the PATH.1 before; both are no-ops under the cap. */
#ifndef GP_STORE_LOG_ROTATE_H
#define GP_STORE_LOG_ROTATE_H

#include <goplugin/log.h>

/* PATH of cap bytes or more (cap > 0) becomes PATH.1. Failures are logged
 * as warnings on lg (the file keeps growing) and otherwise ignored. */
void gp__log_rotate_rename(const char *path, long long cap, const gp_logger *lg);

/* PATH of cap bytes or more (cap > 0) is copied to PATH.1 (through
 * PATH.1.tmp, renamed into place) and truncated to 0 bytes. What the
 * plugin appends between the copy's last read and the cut, a few
 * microseconds, is lost: the cost of cutting a file another process holds
 * open (logrotate's copytruncate has the same). A writer that keeps ahead
 * of the copy (2 * cap bytes past the size the file had when it began) is
 * not cut this time: PATH.1 then holds a copy of the file's start, and the
 * file is kept whole. Nothing of PATH is lost on a failure either (the
 * previous PATH.1 may have been replaced); failures are logged as on
 * rename. Returns 1 if the file was cut, 0 if there was nothing to do
 * (under the cap, no path, cap <= 0), -1 if it was not cut (a warning
 * said why). */
int gp__log_rotate_cut(const char *path, long long cap, const gp_logger *lg);

#endif
