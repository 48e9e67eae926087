#include <stdio.h>
#include <string.h>

#include "examples/kv/bench.h"
#include "examples/kv/kv.h"

int kv_session_open(const kv_host_opts *o, kv_session *s)
{
    memset(s, 0, sizeof *s);
    const char *argv[] = {o->plugin, NULL};
    char proto_env[64];
    snprintf(proto_env, sizeof proto_env, "KV_PLUGIN_PROTO=%s", gp_protocol_name(o->proto));
    /* The cookie comes from the handshake config; the protocol choice is
     * the KV example's own contract. */
    const char *env[] = {proto_env, NULL};
    gp_client_config cfg = {
        .argv = argv,
        .env = env,
        .handshake = {.protocol_version = KV_PROTOCOL_VERSION,
                      .magic_cookie_key = KV_COOKIE_KEY,
                      .magic_cookie_value = KV_COOKIE_VALUE},
        .allowed_protocols = o->proto,
        .start_timeout_ms = o->start_timeout_s * 1000,
        .kill_grace_ms = o->kill_grace_ms,
        .logger = {.level = o->log_level},
        .auto_mtls = o->automtls,
        .grpc_broker_multiplex = o->multiplex,
        .detached = o->detached,
        .stdout_file = o->stdout_file,
        .stderr_file = o->stderr_file,
        .sha256 = o->sha256,
    };
    s->detached = o->detached;
    gp_status st = {0};
    if (gp_client_new(&cfg, &s->client, &st) != GP_OK) {
        fprintf(stderr, "kv-host: %s\n", st.msg);
        gp_client_free(s->client);
        s->client = NULL;
        return -1;
    }
    if (gp_client_connect(s->client, &s->conn, &st) != GP_OK) {
        fprintf(stderr, "kv-host: %s\n", st.msg);
        kv_session_close(s);
        return -1;
    }
    if (gp_conn_dispense(s->conn, KV_PLUGIN_NAME, &s->kv, &st) != GP_OK) {
        fprintf(stderr, "kv-host: dispense %s: %s\n", KV_PLUGIN_NAME, st.msg);
        kv_session_print_stderr_tail(s);
        kv_session_close(s);
        return -1;
    }
    return 0;
}

void kv_session_print_stderr_tail(const kv_session *s)
{
    char tail[2048];
    if (s->client && gp_client_stderr_tail(s->client, tail, sizeof tail) > 0)
        fprintf(stderr, "plugin stderr (last lines):\n%s%s", tail,
                tail[strlen(tail) - 1] == '\n' ? "" : "\n");
}

int kv_session_close(kv_session *s)
{
    gp_stub_free(s->kv);
    int rc = 0;
    if (s->client) {
        if (!s->detached)
            gp_client_kill(s->client); /* to read its status before free */
        gp_exit_info e;
        if (gp_client_exit_info(s->client, &e, NULL) == GP_OK && gp_exit_info_unexpected(&e)) {
            char how[96];
            gp_exit_info_describe(&e, how, sizeof how);
            fprintf(stderr, "kv-host: plugin pid %d exited unexpectedly: %s\n",
                    (int)gp_client_pid(s->client), how);
            /* Its last words (a sanitizer's or core's report, an abort
             * message) are on its real stderr, which we log only at debug. */
            kv_session_print_stderr_tail(s);
            rc = 1;
        }
    }
    gp_client_free(s->client);
    memset(s, 0, sizeof *s);
    return rc;
}
