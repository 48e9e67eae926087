/* counter-host: drives a Counter plugin (C or Go, grpc or netrpc) and
 * serves it AddHelper through the broker, as go-plugin's bidirectional
 * example.
 *
 *   counter-host --plugin PATH [--proto grpc|netrpc] [--automtls] [--multiplex] [--] CMD...
 *       CMD: put KEY N | get KEY      (in order, one plugin session)
 *
 * put: offers AddHelper on a fresh broker id and calls Counter.Put with it;
 * the plugin calls AddHelper.Sum(count, N) back and stores the sum.
 * get: prints the count. Exit 0 on success, 1 with a one-line error.
 * The plugin gets COUNTER_PLUGIN_PROTO=<proto> in its environment.
 * COUNTER_HOST_LOG_LEVEL = trace|debug|info|warn|error. */
#include <goplugin/goplugin.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "examples/counter/counter.h"

static atomic_int sums; /* AddHelper.Sum calls served */

static gp_err sum(void *impl, const proto_SumRequest *q, proto_SumResponse *r, gp_status *st)
{
    (void)impl;
    (void)st;
    r->r = q->a + q->b;
    atomic_fetch_add(&sums, 1);
    return GP_OK;
}

static const proto_AddHelper_server add_helper_vtable = {.Sum = sum};
static proto_AddHelper_service add_helper; /* registered in main */

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "counter-host: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 1;
}

static gp_log_level parse_level(const char *s)
{
    static const char *const names[] = {"trace", "debug", "info", "warn", "error"};
    for (int i = 0; s && i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return (gp_log_level)(GP_LOG_TRACE + i);
    return GP_LOG_WARN;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int put(gp_conn *conn, gp_stub *counter, const char *key, int64_t n)
{
    gp_status st = {0};
    gp_broker *b = gp_conn_broker(conn);
    uint32_t id = gp_broker_next_id(b);
    if (gp_broker_accept_and_serve(b, id, &add_helper.service, &st) != GP_OK) {
        fprintf(stderr, "counter-host: put %s: serving AddHelper: %s\n", key, st.msg);
        return 1;
    }
    proto_PutRequest req = {.add_server = id, .key = (char *)key, .value = n};
    proto_Empty resp = {0};
    int rc = 0;
    if (proto_Counter_Put(counter, &req, &resp, &st) != GP_OK) {
        fprintf(stderr, "counter-host: put %s: %s\n", key, st.msg);
        rc = 1;
    }
    gp_msg_release(proto_Empty_fields, &resp);
    return rc;
}

static int get(gp_stub *counter, const char *key)
{
    gp_status st = {0};
    proto_GetRequest req = {.key = (char *)key};
    proto_GetResponse resp = {0};
    if (proto_Counter_Get(counter, &req, &resp, &st) != GP_OK) {
        fprintf(stderr, "counter-host: get %s: %s\n", key, st.msg);
        return 1;
    }
    printf("%" PRId64 "\n", (int64_t)resp.value);
    fflush(stdout);
    gp_msg_release(proto_GetResponse_fields, &resp);
    return 0;
}

int main(int argc, char **argv)
{
    const char *plugin = NULL;
    gp_protocol proto = GP_PROTO_GRPC;
    bool automtls = false, multiplex = false;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--plugin") == 0 && i + 1 < argc) {
            plugin = argv[++i];
        } else if (strcmp(argv[i], "--proto") == 0 && i + 1 < argc) {
            proto = gp_protocol_parse(argv[++i]);
            if (proto == GP_PROTO_NONE)
                return fail("unknown protocol \"%s\" (expected grpc or netrpc)", argv[i]);
        } else if (strcmp(argv[i], "--automtls") == 0) {
            automtls = true;
        } else if (strcmp(argv[i], "--multiplex") == 0) {
            multiplex = true;
        } else if (argv[i][0] == '-') {
            return fail("unknown option \"%s\" (usage: counter-host --plugin PATH "
                        "[--proto grpc|netrpc] [--automtls] [--multiplex] -- put KEY N | "
                        "get KEY ...)",
                        argv[i]);
        } else {
            break;
        }
    }
    if (!plugin)
        return fail("%s", "--plugin PATH is required");
    if (i >= argc)
        return fail("%s", "no command given (expected put KEY N or get KEY)");
    for (int j = i; j < argc;) {
        int64_t n;
        if (strcmp(argv[j], "put") == 0 && j + 2 < argc && parse_i64(argv[j + 2], &n) == 0)
            j += 3;
        else if (strcmp(argv[j], "get") == 0 && j + 1 < argc)
            j += 2;
        else
            return fail("bad command at \"%s\" (expected put KEY N or get KEY)", argv[j]);
    }

    proto_AddHelper_register(&add_helper, "add_helper", &add_helper_vtable, NULL);
    char envp[64];
    snprintf(envp, sizeof envp, "COUNTER_PLUGIN_PROTO=%s", gp_protocol_name(proto));
    const char *env[] = {envp, NULL};
    const char *pargv[] = {plugin, NULL};
    gp_client_config cfg = {
        .argv = pargv,
        .env = env,
        .handshake = COUNTER_HANDSHAKE,
        .allowed_protocols = proto,
        .logger = {.level = parse_level(getenv("COUNTER_HOST_LOG_LEVEL"))},
        .auto_mtls = automtls,
        .grpc_broker_multiplex = multiplex,
    };
    gp_client *c = NULL;
    gp_conn *conn = NULL;
    gp_stub *counter = NULL;
    gp_status st = {0};
    if (gp_client_new(&cfg, &c, &st) != GP_OK || gp_client_start(c, &st) != GP_OK ||
        gp_client_connect(c, &conn, &st) != GP_OK) {
        fprintf(stderr, "counter-host: %s\n", st.msg);
        gp_client_free(c);
        return 1;
    }
    if (gp_conn_dispense(conn, COUNTER_PLUGIN_NAME, &counter, &st) != GP_OK) {
        fprintf(stderr, "counter-host: dispense counter: %s\n", st.msg);
        gp_client_free(c);
        return 1;
    }
    int rc = 0, puts = 0;
    for (int j = i; j < argc && rc == 0;) {
        if (strcmp(argv[j], "put") == 0) {
            int64_t n = 0;
            parse_i64(argv[j + 2], &n);
            rc = put(conn, counter, argv[j + 1], n);
            puts++;
            j += 3;
        } else {
            rc = get(counter, argv[j + 1]);
            j += 2;
        }
    }
    /* Each put must have come back to us through the broker. */
    if (rc == 0 && atomic_load(&sums) != puts) {
        fprintf(stderr, "counter-host: expected %d AddHelper.Sum callbacks, served %d\n", puts,
                atomic_load(&sums));
        rc = 1;
    }
    gp_stub_free(counter);
    /* Stop it and look at how it ended: a crash, or a leak report under
     * LeakSanitizer, fails the run even when every call succeeded. */
    gp_client_kill(c);
    gp_exit_info e;
    if (gp_client_exit_info(c, &e, NULL) == GP_OK && gp_exit_info_unexpected(&e)) {
        char how[96];
        gp_exit_info_describe(&e, how, sizeof how);
        fprintf(stderr, "counter-host: plugin pid %d exited unexpectedly: %s\n",
                (int)gp_client_pid(c), how);
        rc = 1;
    }
    gp_client_free(c);
    return rc;
}
