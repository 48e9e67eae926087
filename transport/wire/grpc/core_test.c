/* Process-wide settings of gRPC core (core.c).
 *
 * Core's own assertion failures (GPR_ASSERT, and the debug asserts
 * Debian's build keeps) log one ERROR line and abort. Core's lines reach
 * our logger at DEBUG (core.c route_log), so a plugin logging at INFO lost
 * the only words on why it died: kv-host saw "killed by signal 6" and
 * nothing else. That line must now arrive at ERROR, with or without a
 * logger; core's other lines stay at DEBUG. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>

#include "transport/testing/gp_test.h"
#include "transport/wire/grpc/core.h"

/* Trips a real core assertion: a batch on a call whose queue is shut down
 * (core asserts it can queue the batch's tag). argv[1]: "logger" to log
 * through an INFO-level hclog logger, "none" for no logger at all. */
GP_HELPER(trip_assert)
{
    gp_logger lg = {.fn = gp_log_json_stderr, .level = GP_LOG_INFO};
    int with_logger = argc > 1 && strcmp(argv[1], "logger") == 0;
    gp__grpc_core_ref(with_logger ? &lg : NULL);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create("unix:/nonexistent/gp-core-log-test", creds, NULL);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_slice method = grpc_slice_from_static_string("/x.Y/Z");
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                               gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_completion_queue_shutdown(cq);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    static int tag;
    grpc_call_start_batch(call, &op, 1, &tag, NULL); /* aborts */
    fprintf(stderr, "core did not abort\n");
    return 3;
}

/* Set by the helper below: check, after exit's handlers, whether
 * OpenSSL's atexit cleanup ran. */
static int g_check_openssl_at_exit;

/* Runs after the atexit handlers (ELF destructors of the executable run
 * last): once OPENSSL_cleanup has run, OpenSSL refuses to initialise. */
__attribute__((destructor)) static void openssl_after_exit(void)
{
    if (!g_check_openssl_at_exit)
        return;
    int alive = OPENSSL_init_crypto(0, NULL) == 1;
    static const char yes[] = "openssl alive after exit handlers\n";
    static const char no[] = "openssl cleaned up by an exit handler\n";
    if (write(2, alive ? yes : no, alive ? sizeof yes - 1 : sizeof no - 1) < 0)
        _exit(4);
}

/* Core up, then OpenSSL initialised as core's TLS does it on first use
 * (a plain OPENSSL_init_ssl), then a normal exit. */
GP_HELPER(openssl_exit)
{
    gp__grpc_core_ref(NULL);
    OPENSSL_init_ssl(0, NULL);
    g_check_openssl_at_exit = 1;
    return 0;
}

/* The CI abort itself: a thread with OpenSSL state (its error queue, 904
 * bytes from CRYPTO_zalloc) that ends while the process exits, after
 * OpenSSL's atexit cleanup would have run: its state leaked, LeakSanitizer
 * reported it and abort_on_error made it SIGABRT. Here the thread is told
 * to end from an exit handler that runs after OpenSSL's (registered before
 * it) and before the leak check (gp_test's helper check; under ASan this
 * helper then exits 23, the case fails). */
static pthread_mutex_t g_late_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_late_cv = PTHREAD_COND_INITIALIZER;
static int g_late_state; /* 1: thread has its OpenSSL state; 2: told to end */
static pthread_t g_late;

static void *late_thread(void *arg)
{
    (void)arg;
    ERR_clear_error(); /* as core's TLS does: allocates this thread's queue */
    pthread_mutex_lock(&g_late_mu);
    g_late_state = 1;
    pthread_cond_broadcast(&g_late_cv);
    while (g_late_state != 2)
        pthread_cond_wait(&g_late_cv, &g_late_mu);
    pthread_mutex_unlock(&g_late_mu);
    return NULL;
}

static void end_late_thread(void)
{
    pthread_mutex_lock(&g_late_mu);
    g_late_state = 2;
    pthread_cond_broadcast(&g_late_cv);
    pthread_mutex_unlock(&g_late_mu);
    pthread_join(g_late, NULL);
}

GP_HELPER(openssl_thread_ends_at_exit)
{
    atexit(end_late_thread); /* runs after OpenSSL's handler, if any */
    gp__grpc_core_ref(NULL);
    OPENSSL_init_ssl(0, NULL); /* as core's TLS on first use */
    if (pthread_create(&g_late, NULL, late_thread, NULL) != 0)
        return 3;
    pthread_mutex_lock(&g_late_mu);
    while (g_late_state != 1)
        pthread_cond_wait(&g_late_cv, &g_late_mu);
    pthread_mutex_unlock(&g_late_mu);
    return 0;
}

/* The trip_assert helper in `mode`: what it wrote to stderr, its wait status. */
static char *run_helper(const char *mode, int *status)
{
    return gp_test_run_helper_output("trip_assert", mode, false, status);
}

/* OpenSSL's atexit cleanup would race threads still ending at exit (core
 * is never shut down): a double free, SIGABRT. Core's init turns it off. */
GP_TEST(openssl_has_no_atexit_cleanup)
{
    int status;
    char *text = gp_test_run_helper_output("openssl_exit", "", false, &status);
    if (!text)
        return;
    GP_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    GP_CHECK_CONTAINS(text, "openssl alive after exit handlers");
    free(text);
}

GP_TEST(a_thread_ending_at_exit_leaks_no_openssl_state)
{
    int status;
    char *text = gp_test_run_helper_output("openssl_thread_ends_at_exit", "", false, &status);
    if (!text)
        return;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        GP_FAILF("helper ended with wait status %#x; its stderr:\n%s", (unsigned)status, text);
    free(text);
}

GP_TEST(core_assert_reaches_an_info_logger_at_error)
{
    int status;
    char *text = run_helper("logger", &status);
    if (!text)
        return;
    GP_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    GP_CHECK_CONTAINS(text, "\"@level\":\"error\"");
    GP_CHECK_CONTAINS(text, "gRPC core is aborting: assertion failed");
    free(text);
}

GP_TEST(core_assert_without_a_logger_goes_to_stderr)
{
    int status;
    char *text = run_helper("none", &status);
    if (!text)
        return;
    GP_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    GP_CHECK_CONTAINS(text, "[ERROR]");
    GP_CHECK_CONTAINS(text, "gRPC core is aborting: assertion failed");
    free(text);
}

/* Records what reaches a logger. */
static char g_seen[4096];
static gp_log_level g_seen_level;
static void keep(void *ctx, gp_log_level level, const char *name, const char *msg,
                 const gp_log_kv *kv, size_t nkv)
{
    (void)ctx, (void)name, (void)kv, (void)nkv;
    g_seen_level = level;
    snprintf(g_seen, sizeof g_seen, "%s", msg);
}

GP_TEST(other_core_errors_stay_at_debug)
{
    gp_logger lg = {.fn = keep, .level = GP_LOG_TRACE};
    gp__grpc_core_ref(&lg);
    g_seen[0] = 0;
    gpr_log(GPR_ERROR, "%s", "Handshake failed with fatal error SSL_ERROR_SSL");
    GP_CHECK_STR(g_seen, "Handshake failed with fatal error SSL_ERROR_SSL");
    GP_CHECK_INT(g_seen_level, ==, GP_LOG_DEBUG);
    gp__grpc_core_unref(&lg);
}

int main(int argc, char **argv)
{
    gp_test_helper_dispatch(argc, argv);
    GP_RUN_TIMEOUT(core_assert_reaches_an_info_logger_at_error, 20);
    GP_RUN_TIMEOUT(core_assert_without_a_logger_goes_to_stderr, 20);
    GP_RUN(other_core_errors_stay_at_debug);
    GP_RUN_TIMEOUT(openssl_has_no_atexit_cleanup, 20);
    GP_RUN_TIMEOUT(a_thread_ending_at_exit_leaks_no_openssl_state, 20);
    return gp_test_done();
}
