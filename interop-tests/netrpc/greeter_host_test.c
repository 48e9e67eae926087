/* The C host against a go-plugin 1.0.1 plugin shaped like go-plugin's
 * examples/basic: dispense "greeter" over netrpc and call methods whose
 * argument is an interface{}, with gob value trees (the dynamic API).
 *   greeter_host_test GO_GREETER_PLUGIN */
#include <goplugin/goplugin.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/wire/netrpc/gob/gob.h"
#include "transport/wire/netrpc/gob/gob_rpc.h"
#include "transport/wire/netrpc/netrpc.h"
#include "transport/testing/gp_test.h"

static const char *plugin_path;

/* Records forwarded from the plugin's stdout/stderr streams. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int saw_stdout, saw_stderr;

static void capture(void *ctx, gp_log_level level, const char *name, const char *msg,
                    const gp_log_kv *kv, size_t nkv)
{
    (void)ctx;
    (void)name;
    for (size_t i = 0; i < nkv; i++) {
        if (strcmp(kv[i].key, "stream") != 0)
            continue;
        pthread_mutex_lock(&log_mu);
        if (strcmp(kv[i].value, "stdout") == 0 && level == GP_LOG_DEBUG &&
            strcmp(msg, "greet: a line on stdout") == 0)
            saw_stdout = 1;
        if (strcmp(kv[i].value, "stderr") == 0 && level == GP_LOG_INFO &&
            strcmp(msg, "greet: a line on stderr") == 0)
            saw_stderr = 1;
        pthread_mutex_unlock(&log_mu);
    }
}

static const gp_gob_type ints_type = {
    .kind = GP_GOB_SLICE, .name = "[]int", .elem = &gp_gob_int_type};

GP_TEST(greeter_with_interface_arguments)
{
    const char *argv[] = {plugin_path, NULL};
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = "BASIC_PLUGIN",
                      .magic_cookie_value = "hello"},
        .allowed_protocols = GP_PROTO_NETRPC,
        .logger = {.fn = capture, .level = GP_LOG_DEBUG},
        .call_timeout_ms = 3000,
    };
    gp_client *c = NULL;
    GP_CHECK_ERR(gp_client_new(&cfg, &c, NULL), GP_OK);
    gp_conn *conn = NULL;
    gp_status st;
    if (gp_client_connect(c, &conn, &st) != GP_OK) {
        GP_FAILF("connect: %s", st.msg);
        gp_client_free(c);
        return;
    }
    GP_CHECK_STR(gp_conn_protocol(conn), "netrpc");
    gp_stub *stub = NULL;
    GP_CHECK_ERR(gp_conn_dispense(conn, "greeter", &stub, &st), GP_OK);
    GP_CHECK_ERR(gp_conn_dispense(conn, "nobody", NULL == stub ? &stub : &(gp_stub *){NULL}, &st),
                 GP_ENOTFOUND);
    GP_CHECK_STR(st.msg, "unknown plugin type: nobody");
    if (!stub) {
        gp_client_free(c);
        return;
    }

    /* Greet(new(interface{})): a nil interface, as the basic example sends. */
    gp__gob_value nil_iface = {.type = &gp_gob_interface_type};
    gp__gob_value *reply = NULL;
    const char *s = NULL;
    char err[256];
    GP_CHECK_ERR(gp__netrpc_stub_call(stub, "Plugin.Greet", &nil_iface, &reply, &st), GP_OK);
    GP_CHECK_ERR(gp__gob_get_string(reply, &s, err, sizeof err), GP_OK);
    GP_CHECK_STR(s, "Hello!");
    gp__gob_value_free(reply);

    /* An interface{} holding a string (gob name "string"). */
    gp__gob_value name = {.type = &gp_gob_string_type};
    name.u.bytes.data = (uint8_t *)"C";
    name.u.bytes.len = 1;
    gp__gob_value iface = {.type = &gp_gob_interface_type};
    iface.u.iface.name = "string";
    iface.u.iface.value = &name;
    GP_CHECK_ERR(gp__netrpc_stub_call(stub, "Plugin.GreetName", &iface, &reply, &st), GP_OK);
    GP_CHECK_ERR(gp__gob_get_string(reply, &s, err, sizeof err), GP_OK);
    GP_CHECK_STR(s, "Hello, C!");
    gp__gob_value_free(reply);

    /* An interface{} holding a []int; the reply is an int. */
    gp__gob_value nums[3] = {{.type = &gp_gob_int_type, .u.i = 40},
                             {.type = &gp_gob_int_type, .u.i = 3},
                             {.type = &gp_gob_int_type, .u.i = -1}};
    gp__gob_value slice = {.type = &ints_type};
    slice.u.list.items = nums;
    slice.u.list.len = 3;
    iface.u.iface.name = "[]int";
    iface.u.iface.value = &slice;
    GP_CHECK_ERR(gp__netrpc_stub_call(stub, "Plugin.Sum", &iface, &reply, &st), GP_OK);
    GP_CHECK(reply && reply->type && reply->type->kind == GP_GOB_INT && reply->u.i == 42);
    gp__gob_value_free(reply);

    /* The plugin's own error, and Go's texts for what is not there. */
    GP_CHECK_ERR(gp__netrpc_stub_call(stub, "Plugin.GreetName", &nil_iface, &reply, &st),
                 GP_EREMOTE);
    GP_CHECK_STR(st.msg, "expected a string name, got <nil>");
    /* (Not with a nil interface{} argument: Go's server discards the body
     * of an unknown method with gob's ignoreInterface, which for a nil
     * interface goes on reading the next message and so never answers.) */
    GP_CHECK_ERR(gp__netrpc_stub_call(stub, "Plugin.Nope", &name, &reply, &st), GP_ENOTFOUND);
    GP_CHECK_STR(st.msg, "rpc: can't find method Plugin.Nope");
    GP_CHECK_ERR(gp_conn_ping(conn, &st), GP_OK);

    /* What the plugin wrote on os.Stdout / os.Stderr came over streams 3
     * and 5 to our logger: stdout lines at DEBUG, stderr lines at INFO. */
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&log_mu);
        int both = saw_stdout && saw_stderr;
        pthread_mutex_unlock(&log_mu);
        if (both)
            break;
        usleep(20000);
    }
    GP_CHECK(saw_stdout);
    GP_CHECK(saw_stderr);

    gp_stub_free(stub);
    pid_t pid = gp_client_pid(c);
    gp_client_kill(c);
    GP_CHECK(gp_client_exited(c));
    GP_CHECK(kill(pid, 0) != 0);
    gp_client_free(c);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s GO_GREETER_PLUGIN\n", argv[0]);
        return 2;
    }
    plugin_path = argv[1];
    GP_RUN(greeter_with_interface_arguments);
    return gp_test_done();
}
