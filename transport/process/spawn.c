/* fork/exec with a close-on-exec status pipe: the parent learns of an exec
 * failure (and its errno) instead of seeing a child that merely exits 127.
 *
 * The child shares our memory until its exec (clone with CLONE_VM |
 * CLONE_VFORK, as glibc's posix_spawn): a fork would copy the host's page
 * tables only for exec to throw them away, and leave every page we write
 * afterwards to a copy-on-write fault. Measured on the 2-vCPU bench VM,
 * clone to exec of a small program: 44 us against 114-169 us for fork from
 * a process with 1-6 MiB resident (docs/netrpc.md, "Start and
 * footprint"). Sanitizer builds fork: their runtimes keep per-thread state
 * in memory a sharing child would write. */
#include "transport/process/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SPAWN_FORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define SPAWN_FORK 1
#endif
#endif
#ifndef SPAWN_FORK
#define SPAWN_FORK 0
#endif
/* The child's stack until its exec (clone without fork). */
#define CHILD_STACK (64 * 1024)

int gp__pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int gp__pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

gp_err gp__find_exec(const char *cmd, const char *path_env, char *out, size_t cap, char *err,
                     size_t errlen)
{
    if (strchr(cmd, '/')) {
        if ((size_t)snprintf(out, cap, "%s", cmd) >= cap) {
            snprintf(err, errlen, "plugin path is longer than %zu bytes", cap - 1);
            return GP_EINVAL;
        }
        return GP_OK;
    }
    const char *p = path_env && *path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        const char *dir = n ? p : ".";
        int dn = n ? (int)n : 1;
        if ((size_t)snprintf(out, cap, "%.*s/%s", dn, dir, cmd) < cap) {
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return GP_OK;
        }
        p += n;
        if (*p == ':')
            p++;
    }
    snprintf(err, errlen, "plugin command %s: not found in PATH", cmd);
    return GP_ENOTFOUND;
}

/* The child between fork and exec: only async-signal-safe calls, no
 * allocation (it may share our memory). Any failure writes {stage, errno}
 * to the status pipe and exits. */
static void child(const gp__spawn_opts *o, pid_t parent, int out_w, int err_w, int status_w)
{
    int stage = 0;
    if (!SPAWN_FORK) {
        /* Our handlers would run on the memory we share: a signal before
         * the exec takes the default action instead (the table is the
         * child's own copy: no CLONE_SIGHAND). All are blocked until here. */
        for (int sig = 1; sig < NSIG; sig++) {
            struct sigaction sa;
            if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
                sa.sa_handler != SIG_IGN) {
                sa.sa_handler = SIG_DFL;
                sa.sa_flags = 0;
                sigaction(sig, &sa, NULL);
            }
        }
    }
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    /* Own group: killpg reaches the plugin's children too. */
    stage = 1;
    if (setpgid(0, 0) != 0)
        goto fail;
    stage = 2;
    if (!o->detached && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        goto fail;
    /* The parent may have died before prctl took effect. */
    if (!o->detached && getppid() != parent)
        _exit(127);
    stage = 3;
    if (o->detached) {
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd < 0 || dup2(null_fd, 0) < 0)
            goto fail;
        if (null_fd != 0)
            close(null_fd);
    }
    if (dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
        goto fail;
    /* Nothing of ours but 0, 1, 2 (and the status pipe, until exec)
     * reaches the plugin. exec_fd may be close-on-exec: the kernel opens it
     * before closing; a script's must stay open (spawn.h). */
    if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        struct rlimit rl;
        int max = 65536;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            rl.rlim_cur < (rlim_t)max)
            max = (int)rl.rlim_cur;
        for (int fd = 3; fd < max; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (o->exec_fd >= 0 && o->exec_fd_script && fcntl(o->exec_fd, F_SETFD, 0) != 0)
        goto fail;
    stage = 4;
    if (o->exec_fd >= 0)
        fexecve(o->exec_fd, o->argv, o->envp);
    else
        execve(o->path, o->argv, o->envp);
fail:;
    int msg[2] = {stage, errno};
    ssize_t w = write(status_w, msg, sizeof msg);
    (void)w;
    _exit(127);
}

typedef struct child_args {
    const gp__spawn_opts *o;
    pid_t parent;
    int out_w, err_w, status_w;
} child_args;

static int child_main(void *arg)
{
    const child_args *a = arg;
    child(a->o, a->parent, a->out_w, a->err_w, a->status_w);
    return 127; /* not reached: child() execs or exits */
}

/* The child, started; returns its pid in the parent (-1, errno set, if it
 * could not start). Without SPAWN_FORK we are suspended until its exec (or
 * its exit), so its stack is ours to free when clone returns. */
static pid_t start_child(child_args *a)
{
    if (SPAWN_FORK) {
        pid_t pid = fork();
        if (pid == 0)
            child_main(a);
        return pid;
    }
    void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(child_main, (char *)stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, CHILD_STACK);
    errno = saved;
    return pid;
}

static const char *stage_name(int stage)
{
    switch (stage) {
    case 1:
        return "setpgid";
    case 2:
        return "prctl(PR_SET_PDEATHSIG)";
    case 3:
        return "dup2";
    default:
        return "exec";
    }
}

/* Move a descriptor above 2: if the host closed its stdin/stdout/stderr, a
 * new pipe can land there, and the child's dup2 onto 1 and 2 would then
 * clobber it (or keep its close-on-exec flag). */
static int above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

/* fds[0] reads what the plugin writes on fds[1]: a pipe, or with a path
 * the file (appended; our reader starts at its current end). */
static int stream_fds(const char *path, int fds[2], char *err, size_t errlen)
{
    if (!path) {
        if (pipe2(fds, O_CLOEXEC) == 0)
            return 0;
        snprintf(err, errlen, "pipe for the plugin: %s", strerror(errno));
        return -1;
    }
    fds[1] = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fds[1] >= 0)
        fds[0] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[1] < 0 || fds[0] < 0 || lseek(fds[0], 0, SEEK_END) < 0) {
        snprintf(err, errlen, "plugin output file %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

gp_err gp__spawn(const gp__spawn_opts *o, gp__spawned *out, char *err, size_t errlen)
{
    out->pid = -1;
    out->pidfd = out->out_fd = out->err_fd = -1;
    out->out_file = o->out_path != NULL;
    out->err_file = o->err_path != NULL;
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, st[2] = {-1, -1};
    if (stream_fds(o->out_path, outp, err, errlen) != 0 ||
        stream_fds(o->err_path, errp, err, errlen) != 0)
        goto fail;
    if (pipe2(st, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe for the plugin: %s", strerror(errno));
        goto fail;
    }
    int *all[] = {&outp[0], &outp[1], &errp[0], &errp[1], &st[0], &st[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        *all[i] = above_stdio(*all[i]);
        if (*all[i] < 0) {
            snprintf(err, errlen, "pipe for the plugin: %s", strerror(errno));
            goto fail;
        }
    }
    pid_t parent = getpid();
    pid_t pid = start_child(&(child_args){o, parent, outp[1], errp[1], st[1]});
    if (pid < 0) {
        snprintf(err, errlen, "fork plugin %s: %s", o->path, strerror(errno));
        goto fail;
    }
    /* Also set the group from here: whichever of us runs first, the group
     * exists before we ever signal it. EACCES after exec is harmless. */
    setpgid(pid, pid);
    close(outp[1]);
    close(errp[1]);
    close(st[1]);
    outp[1] = errp[1] = st[1] = -1;
    int msg[2];
    ssize_t r;
    do
        r = read(st[0], msg, sizeof msg);
    while (r < 0 && errno == EINTR);
    close(st[0]);
    st[0] = -1;
    if (r > 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (r == (ssize_t)sizeof msg)
            snprintf(err, errlen, "%s plugin %s: %s", stage_name(msg[0]), o->path,
                     strerror(msg[1]));
        else
            snprintf(err, errlen, "start plugin %s: failed before exec", o->path);
        goto fail;
    }
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);
    out->pid = pid;
    out->pidfd = gp__pidfd_open(pid);
    out->out_fd = outp[0];
    out->err_fd = errp[0];
    return GP_OK;
fail:;
    int save[] = {outp[0], outp[1], errp[0], errp[1], st[0], st[1]};
    for (size_t i = 0; i < sizeof save / sizeof save[0]; i++)
        if (save[i] >= 0)
            close(save[i]);
    return GP_ESYS;
}
