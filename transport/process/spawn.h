/* Internal: start a plugin process.
 *
 * Our own vfork-style clone + exec (fork in sanitizer builds: spawn.c)
 * rather than posix_spawn, because the child needs three things
 * posix_spawn cannot do: PR_SET_PDEATHSIG, fexecve of an already hashed
 * descriptor, and marking every inherited descriptor close-on-exec.
 * The child gets: its own process group (so a kill reaches its children,
 * go-plugin #136), SIGKILL when the spawning thread dies (PDEATHSIG is tied
 * to the *thread*, see proc.c), the host's stdin, pipes for stdout and
 * stderr, an empty signal mask, and no other descriptor of ours.
 */
#ifndef GP_PROCESS_SPAWN_H
#define GP_PROCESS_SPAWN_H

#include <goplugin/err.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct gp__spawn_opts {
    const char *path;  /* what to exec (already resolved) */
    char *const *argv; /* NULL-terminated */
    char *const *envp; /* NULL-terminated */
    int exec_fd;       /* >= 0: fexecve this (hashed) file instead of path */
    /* exec_fd holds a `#!` script: it stays open across exec, because the
     * kernel hands the interpreter /dev/fd/N to open (closed, that is
     * ENOENT). Only safe for a sealed copy (checksum.h). */
    bool exec_fd_script;
    /* Outlives its host: no parent-death signal, stdin from /dev/null (the
     * host's stdin may be a terminal or pipe that goes away with it). */
    bool detached;
    /* Non-NULL: that stream goes to this file, appended (created 0600),
     * instead of a pipe, so the plugin can still write once we are gone.
     * out_fd / err_fd then read the file from its end at spawn time. */
    const char *out_path, *err_path;
} gp__spawn_opts;

typedef struct gp__spawned {
    pid_t pid;          /* also the process group id */
    int pidfd;          /* -1 when the kernel has no pidfd_open */
    int out_fd, err_fd; /* read ends, O_NONBLOCK | O_CLOEXEC */
    /* That read end is a file (out_path / err_path), not a pipe: a read
     * of 0 bytes means "nothing yet" while the plugin runs, and poll(2)
     * always says readable. */
    bool out_file, err_file;
} gp__spawned;

/* Start and exec. Returns only after exec succeeded or failed: an exec
 * failure (no such file, not executable) is reported here as GP_ESYS with
 * the reason, and that child is already reaped. */
gp_err gp__spawn(const gp__spawn_opts *o, gp__spawned *out, char *err, size_t errlen);

/* pidfd_open(2) via syscall; -1 (errno set) when unavailable. */
int gp__pidfd_open(pid_t pid);

/* pidfd_send_signal(2) via syscall. */
int gp__pidfd_signal(int pidfd, int sig);

/* Find `cmd` like execvp: as is when it contains '/', else in the
 * ':'-separated `path_env` (NULL: "/usr/local/bin:/usr/bin:/bin").
 * Errors: GP_ENOTFOUND. */
gp_err gp__find_exec(const char *cmd, const char *path_env, char *out, size_t cap, char *err,
                     size_t errlen);

#endif
