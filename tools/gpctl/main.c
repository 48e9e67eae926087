/* gpctl: install, list and manage plugins in a store (docs/store.md).
 *
 *   gpctl --root DIR COMMAND [ARGS...]
 *
 * A command that changes the store takes ROOT/lock (non-blocking). When it
 * gets it, gpctl edits the store directly; when a running `gpctl serve`
 * holds it, the command goes to the serve instead (FORWARD below). ls and
 * inspect only read: they open the store without the lock. Errors: one
 * line "gpctl: ..." on stderr and exit status 1 (usage errors too, as
 * kv-host does).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "tools/gpctl/ctl.h"
#include "tools/gpctl/gpctl.h"

FILE *gpctl_out;
FILE *gpctl_err;

void gpctl_usage(void)
{
    fprintf(gpctl_err,
            "usage: gpctl --root DIR COMMAND [ARGS...]\n"
            "  install [--proto grpc|netrpc]... [--cookie KEY=VALUE] [--env K=V]...\n"
            "          [--require PRIV]... [--grant PRIV]... [--version N]...\n"
            "          [--restart always|no] [--sha256 HEX] PATH NAME[:TAG] [-- ARG...]\n"
            "                        copy PATH into the store; prints the plugin id\n"
            "  ls                    NAME:TAG ID STATE PID, one line per plugin\n"
            "  inspect NAME          the plugin's record (JSON)\n"
            "  enable NAME           (refused until granted privileges = required)\n"
            "  disable NAME\n"
            "  grant NAME [PRIV...]  replace the granted privileges (disabled only)\n"
            "  rm [-f] NAME          remove (-f: also when enabled)\n"
            "  gc                    delete binaries no plugin uses\n"
            "  serve [--live-restore] run the enabled plugins, restart them on exit;\n"
            "                        other commands reach it through ROOT/gpctl.sock\n"
            "  PRIV: env:NAME | unix-socket-group:GROUP | tcp\n");
}

int gpctl_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gpctl: ", gpctl_err);
    vfprintf(gpctl_err, fmt, ap);
    fputc('\n', gpctl_err);
    va_end(ap);
    return 1;
}

void gpctl_problem(void *ctx, const char *file, const char *msg)
{
    (void)ctx;
    fprintf(gpctl_err, "gpctl: warning: %s: %s\n", file, msg);
}

typedef int (*command_fn)(gp_store *s, int argc, char **argv);

static const struct command {
    const char *name;
    command_fn fn;
    int read_only; /* opens without the lock */
} commands[] = {
    {"install", gpctl_install, 0}, {"ls", gpctl_ls, 1},           {"inspect", gpctl_inspect, 1},
    {"enable", gpctl_enable, 0},   {"disable", gpctl_disable, 0}, {"grant", gpctl_grant, 0},
    {"rm", gpctl_rm, 0},           {"gc", gpctl_gc, 0},
    /* serve (serve.c) is dispatched before the store is opened. */
};

/* ======================================================================
 * FORWARD: the store is locked by a running `gpctl serve` (pid `holder`).
 * The command (argv[0] its name) goes to the serve over ROOT/gpctl.sock
 * (tools/gpctl/ctl.h) and its answer is printed; its exit status returned.
 * ====================================================================== */
static int forward_to_serve(const char *root, pid_t holder, int argc, char **argv)
{
    int code = gpctl_forward(root, argc, argv);
    if (code >= 0)
        return code;
    /* Locked, but nobody answers: a serve still starting, or another
     * gpctl editing the store directly. */
    return gpctl_fail("store is locked by a running gpctl serve (pid %ld), or another gpctl; "
                      "nothing answers on %s/%s",
                      (long)holder, root, GPCTL_SOCK_NAME);
}

int main(int argc, char **argv)
{
    gpctl_out = stdout;
    gpctl_err = stderr;
    const char *root = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
            root = argv[++i];
        } else if (strncmp(argv[i], "--root=", 7) == 0) {
            root = argv[i] + 7;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            gpctl_usage();
            return 0;
        } else {
            gpctl_usage();
            return gpctl_fail("unknown option \"%s\"", argv[i]);
        }
    }
    if (!root) {
        gpctl_usage();
        return gpctl_fail("--root DIR is required");
    }
    if (i >= argc) {
        gpctl_usage();
        return gpctl_fail("no command given");
    }
    if (strcmp(argv[i], "serve") == 0) /* the manager takes the lock itself */
        return gpctl_serve(root, argc - i, argv + i);
    const struct command *cmd = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(commands[k].name, argv[i]) == 0)
            cmd = &commands[k];
    if (!cmd) {
        gpctl_usage();
        return gpctl_fail("unknown command \"%s\"", argv[i]);
    }
    int bad = cmd->fn(NULL, argc - i, argv + i);
    if (bad)
        return bad;
    pid_t holder = 0;
    gp_store_open_opts o = {
        .root = root, .lock = !cmd->read_only, .on_problem = gpctl_problem, .holder = &holder};
    gp_store *s;
    gp_status st;
    gp_err rc = gp_store_open(&o, &s, &st);
    if (rc == GP_EBUSY)
        return forward_to_serve(root, holder, argc - i, argv + i);
    if (rc != GP_OK)
        return gpctl_fail("%s", st.msg);
    int status = cmd->fn(s, argc - i, argv + i);
    gp_store_close(s);
    return status;
}
