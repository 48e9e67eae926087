/* greeter-host PLUGIN [grpc|netrpc] NAME...: starts PLUGIN, greets every
 * NAME, prints the answers and the plugin's count, then stops it; exits 1
 * if any call failed or the plugin ended by itself badly. */
#include <goplugin/goplugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "greeter.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: greeter-host PLUGIN grpc|netrpc NAME...\n");
        return 2;
    }
    gp_protocol proto = gp_protocol_parse(argv[2]);
    if (proto == GP_PROTO_NONE) {
        fprintf(stderr, "greeter-host: unknown protocol %s\n", argv[2]);
        return 2;
    }
    char env[64];
    snprintf(env, sizeof env, "GREETER_PROTO=%s", argv[2]);
    const char *plugin_argv[] = {argv[1], NULL};
    const char *plugin_env[] = {env, NULL};
    gp_client_config cfg = {
        .argv = plugin_argv,
        .env = plugin_env,
        .handshake = {.protocol_version = GREETER_PROTOCOL_VERSION,
                      .magic_cookie_key = GREETER_COOKIE_KEY,
                      .magic_cookie_value = GREETER_COOKIE_VALUE},
        .allowed_protocols = (unsigned)proto,
    };
    gp_client *c = NULL;
    gp_conn *conn = NULL;
    gp_stub *stub = NULL;
    gp_status st = {0};
    int rc = 1;
    if (gp_client_new(&cfg, &c, &st) != GP_OK) {
        fprintf(stderr, "greeter-host: %s\n", st.msg);
        return 1;
    }
    if (gp_client_connect(c, &conn, &st) != GP_OK ||
        gp_conn_dispense(conn, GREETER_PLUGIN_NAME, &stub, &st) != GP_OK) {
        fprintf(stderr, "greeter-host: %s\n", st.msg);
        goto out;
    }
    for (int i = 3; i < argc; i++) {
        greeter_GreetRequest req = {.name = argv[i],
                                    .blob = {.data = (uint8_t *)argv[i], .len = strlen(argv[i])}};
        greeter_GreetReply resp = {0};
        if (greeter_Greeter_Greet(stub, &req, &resp, &st) != GP_OK) {
            fprintf(stderr, "greeter-host: Greet: %s\n", st.msg);
            goto out;
        }
        printf("%s #%lld\n", resp.message ? resp.message : "", (long long)resp.count);
        gp_msg_release(greeter_GreetReply_fields, &resp);
    }
    google_protobuf_Empty empty = {0};
    greeter_StatsReply stats = {0};
    if (greeter_Greeter_Stats(stub, &empty, &stats, &st) != GP_OK) {
        fprintf(stderr, "greeter-host: Stats: %s\n", st.msg);
        goto out;
    }
    printf("greeted %lld over %s\n", (long long)stats.greeted,
           gp_protocol_name(gp_client_protocol(c)));
    rc = 0;
out:
    if (stub)
        gp_stub_free(stub);
    /* A plugin that crashed or leaked (a sanitizer build exits non-zero)
     * fails the run even when every answer came back. */
    gp_client_kill(c);
    gp_exit_info e;
    if (gp_client_exit_info(c, &e, NULL) == GP_OK && gp_exit_info_unexpected(&e)) {
        char how[96];
        gp_exit_info_describe(&e, how, sizeof how);
        fprintf(stderr, "greeter-host: plugin exited unexpectedly: %s\n", how);
        rc = 1;
    }
    gp_client_free(c);
    return rc;
}
