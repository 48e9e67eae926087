/* kv-host internals: one plugin session, and the bench modes. */
#ifndef GP_EXAMPLES_KV_BENCH_H
#define GP_EXAMPLES_KV_BENCH_H

#include <goplugin/goplugin.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kv_host_opts {
    const char *plugin;
    gp_protocol proto;
    int start_timeout_s;
    int kill_grace_ms; /* --kill-grace: after Shutdown, before SIGKILL; 0 = 2000 */
    gp_log_level log_level;
    int automtls;  /* --automtls: go-plugin's AutoMTLS */
    int multiplex; /* --multiplex: go-plugin's GRPCBrokerMultiplex */
    int detached;  /* --detach: the plugin outlives kv-host (detach.h) */
    /* --detach: where the plugin's stdout and stderr go (detach.h). */
    const char *stdout_file, *stderr_file;
    const uint8_t *sha256; /* --sha256 HEX: SecureConfig, 32 bytes, or NULL */
} kv_host_opts;

typedef struct kv_session {
    gp_client *client;
    gp_conn *conn;
    gp_stub *kv;
    bool detached; /* close lets the plugin go */
} kv_session;

/* Launch the plugin, connect, dispense "kv". On failure prints the error
 * (and the plugin's stderr tail) and returns -1 with nothing left open. */
int kv_session_open(const kv_host_opts *o, kv_session *s);
void kv_session_print_stderr_tail(const kv_session *s);
/* Graceful kill (unless detached) and free. Returns 0, or 1 when the
 * plugin ended badly (a non-zero exit code of its own, or a signal we did
 * not send: gp_exit_info_unexpected), after one line on stderr saying so.
 * A plugin built with LeakSanitizer that leaks ends that way. */
int kv_session_close(kv_session *s);

typedef struct kv_bench_opts {
    const char *mode; /* latency | throughput | startup */
    long n;           /* calls (or starts); 0 = mode default */
    size_t size;      /* value size in bytes */
    int size_set;
    int threads; /* throughput threads; 0 = 8 */
} kv_bench_opts;

/* Run one bench mode and print its JSON line on stdout. Exit status. */
int kv_bench(const kv_host_opts *o, const kv_bench_opts *b);

/* VmHWM of a process in KiB (pid 0 = ourselves), or 0 if unreadable. */
long kv_vmhwm_kib(int pid);

#endif
