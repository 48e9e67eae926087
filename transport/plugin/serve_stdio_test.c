/* A plugin that dies of a signal while its fd 1 and fd 2 are forwarded
 * (serve_stdio.c): what it wrote last, still queued for a stream that never
 * came or still in the pipe, reaches its real stderr, after a line naming
 * the signal, and it still dies of that signal. Before, a CI abort under
 * ASan left no word: its report went into the pipe and died with it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport/plugin/serve_stdio.h"
#include "transport/testing/gp_test.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Redirect, print, then argv[1]: "abort", or "free" (undo the redirect,
 * then report SIGABRT's disposition and exit). */
GP_HELPER(printer)
{
    gp__serve_stdio *s = gp__serve_stdio_new();
    char err[256];
    if (!s || gp__serve_stdio_redirect(s, err, sizeof err) != GP_OK ||
        gp__serve_stdio_start(s, err, sizeof err) != GP_OK)
        return 3;
    fprintf(stderr, "plugin's last words on stderr\n");
    printf("and on stdout\n");
    fflush(stdout);
    sleep_ms(100); /* the reader queues them (no stream: they wait for one) */
    if (argc > 1 && strcmp(argv[1], "abort") == 0)
        abort();
    gp__serve_stdio_free(s);
    struct sigaction cur;
    if (sigaction(SIGABRT, NULL, &cur) != 0 || cur.sa_handler != SIG_DFL) {
        fprintf(stderr, "SIGABRT handler left behind\n");
        return 4;
    }
    return 0;
}

GP_TEST(an_abort_while_forwarding_leaves_the_last_words_on_real_stderr)
{
    int status;
    char *text = gp_test_run_helper_output("printer", "abort", true, &status);
    if (!text)
        return;
    GP_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    GP_CHECK_CONTAINS(text, "plugin: fatal signal 6; its output not yet sent to the host follows");
    GP_CHECK_CONTAINS(text, "plugin's last words on stderr");
    GP_CHECK_CONTAINS(text, "and on stdout");
    free(text);
}

GP_TEST(undoing_the_redirect_restores_the_default_action)
{
    int status;
    char *text = gp_test_run_helper_output("printer", "free", true, &status);
    if (!text)
        return;
    GP_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    GP_CHECK_CONTAINS(text, "plugin's last words on stderr"); /* flushed to the real fd */
    free(text);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN_TIMEOUT(an_abort_while_forwarding_leaves_the_last_words_on_real_stderr, 20);
    GP_RUN_TIMEOUT(undoing_the_redirect_restores_the_default_action, 20);
    return gp_test_done();
}
