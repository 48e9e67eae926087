/* Keepalive (gp_client_config.keepalive) against a peer that vanishes
 * without a FIN or RST: the plugin process is stopped with SIGSTOP, so its
 * kernel keeps the socket open and acknowledges what we send, but nothing
 * answers. With keepalive {time_ms = 500, timeout_ms = 1000} a call with
 * NO deadline must end within time + timeout (1.5 s), plus the host's
 * 0.5 s wait for an exit status to explain a lost conn with
 * (host/client_exit.c), plus a margin (1 s, times GP_TEST_SCALE), with
 * GP_ECLOSED and words naming the keepalive; on a connection that sat idle while the peer was stopped the
 * next call fails at once. Both wires, against the C kv-plugin and Go's
 * go-kv-plugin (go-plugin 1.0.1): the Go gRPC server must not GOAWAY us
 * for the checks (it does for HTTP/2 pings more often than every 5 min).
 * With keepalive off, a stopped peer is only noticed by a call deadline.
 *
 * argv[1]: the C kv-plugin, argv[2]: go-kv-plugin (or go18-kv-plugin, on
 * go-plugin 1.8); "-" skips one. The stopped plugin is
 * continued before the client is freed, and its end is checked: killed by
 * our SIGKILL (the conn is gone, so no graceful Shutdown reaches it). */
#include "examples/kv/kv.h"

#include "transport/testing/gp_test.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KA_TIME_MS 500
#define KA_TIMEOUT_MS 1000
#define MARGIN_MS 1000
#define REAP_WAIT_MS 500

static const char *plugin_path;
static const char *wire;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long margin_ms(void)
{
    return (long long)(MARGIN_MS * gp_test_scale());
}

typedef struct session {
    gp_client *c;
    gp_stub *kv;
    pid_t pid;
} session;

/* grace_ms: the kill's wait for a graceful exit (short when the conn is
 * lost: no Shutdown reaches the plugin then). */
static int open_session(session *s, gp_keepalive ka, int call_timeout_ms, int grace_ms)
{
    char env_proto[64];
    snprintf(env_proto, sizeof env_proto, "KV_PLUGIN_PROTO=%s", wire);
    const char *env[] = {env_proto, "KV_PLUGIN_LOG_LEVEL=warn", NULL};
    const char *argv[] = {plugin_path, NULL};
    gp_client_config cfg = {
        .argv = argv,
        .env = env,
        .handshake = {.protocol_version = KV_PROTOCOL_VERSION,
                      .magic_cookie_key = KV_COOKIE_KEY,
                      .magic_cookie_value = KV_COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC | GP_PROTO_NETRPC,
        .start_timeout_ms = 20000,
        .kill_grace_ms = grace_ms,
        .call_timeout_ms = call_timeout_ms,
        .keepalive = ka,
    };
    memset(s, 0, sizeof *s);
    gp_status st;
    if (gp_client_new(&cfg, &s->c, &st) != GP_OK) {
        GP_FAILF("gp_client_new: %s", st.msg);
        return -1;
    }
    gp_conn *conn;
    gp_err rc = gp_client_connect(s->c, &conn, &st);
    if (rc == GP_OK)
        rc = gp_conn_dispense(conn, KV_PLUGIN_NAME, &s->kv, &st);
    if (rc != GP_OK) {
        GP_FAILF("connect: %s: %s", gp_strerror(rc), st.msg);
        gp_client_free(s->c);
        return -1;
    }
    if (gp_client_protocol(s->c) != gp_protocol_parse(wire)) {
        GP_FAILF("plugin speaks %s, expected %s", gp_protocol_name(gp_client_protocol(s->c)), wire);
    }
    s->pid = gp_client_pid(s->c);
    return 0;
}

/* Every thread of pid is in state T (kill returns before a thread running
 * on another core has stopped: it could still answer a call). */
static bool all_stopped(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool all = true;
    struct dirent *e;
    while (all && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char stat[300];
        snprintf(stat, sizeof stat, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        char *text = gp_test_read_file(stat, NULL);
        const char *rp = text ? strrchr(text, ')') : NULL;
        all = rp && rp[1] == ' ' && rp[2] == 'T';
        free(text);
    }
    closedir(d);
    return all;
}

static void stop(pid_t pid)
{
    GP_CHECK_INT(kill(pid, SIGSTOP), ==, 0);
    for (int i = 0; i < 400 && !all_stopped(pid); i++)
        usleep(5000);
    GP_CHECK(all_stopped(pid));
}

static gp_err get(session *s, gp_status *st)
{
    proto_GetRequest req = {.key = "k"};
    proto_GetResponse resp;
    memset(&resp, 0, sizeof resp);
    gp_err rc = proto_KV_Get(s->kv, &req, &resp, st);
    gp_msg_release(proto_GetResponse_fields, &resp);
    return rc;
}

static void put_get_ok(session *s)
{
    gp_status st;
    proto_PutRequest req = {.key = "k", .value = {.data = (uint8_t *)"v", .len = 1}};
    proto_Empty resp;
    GP_CHECK_ERR(proto_KV_Put(s->kv, &req, &resp, &st), GP_OK);
    GP_CHECK_ERR(get(s, &st), GP_OK);
}

/* Continue the plugin, free everything, and check how it ended. */
static void close_session(session *s, bool stopped)
{
    if (stopped)
        GP_CHECK_INT(kill(s->pid, SIGCONT), ==, 0);
    gp_stub_free(s->kv);
    gp_client_kill(s->c);
    char why[128] = "";
    GP_CHECK(gp_client_wait_exit(s->c, 5000, why, sizeof why));
    if (stopped)
        GP_CHECK_CONTAINS(why, "killed by signal 9");
    else
        GP_CHECK_STR(why, "exit status 0");
    gp_client_free(s->c);
    gp_test_check_gone(s->pid);
}

/* The plugin stops; a call with no deadline, made then, ends in bound. */
GP_TEST(call_to_a_stopped_plugin_ends_within_the_keepalive_bound)
{
    session s;
    if (open_session(&s, (gp_keepalive){.time_ms = KA_TIME_MS, .timeout_ms = KA_TIMEOUT_MS}, 0,
                     300))
        return;
    put_get_ok(&s);
    /* Idle for several keepalive rounds first: a live peer is kept (the Go
     * gRPC server sends no GOAWAY for the checks). */
    usleep(6 * KA_TIME_MS * 1000);
    put_get_ok(&s);
    stop(s.pid);
    long long t0 = now_ms();
    gp_status st;
    gp_err rc = get(&s, &st);
    long long took = now_ms() - t0;
    printf("  %s: call to the stopped plugin ended after %lld ms: %s\n", wire, took, st.msg);
    GP_CHECK_ERR(rc, GP_ECLOSED);
    GP_CHECK_CONTAINS(st.msg, "keepalive");
    GP_CHECK_INT(took, <, KA_TIME_MS + KA_TIMEOUT_MS + REAP_WAIT_MS + margin_ms());
    close_session(&s, true);
}

/* No call in flight while the plugin is stopped: the conn is given up all
 * the same, and the next call fails at once (plus up to REAP_WAIT_MS, the
 * host's wait for an exit status to explain a lost conn with:
 * host/client_exit.c). */
GP_TEST(idle_conn_to_a_stopped_plugin_is_given_up)
{
    session s;
    if (open_session(&s, (gp_keepalive){.time_ms = KA_TIME_MS, .timeout_ms = KA_TIMEOUT_MS}, 0,
                     300))
        return;
    put_get_ok(&s);
    stop(s.pid);
    usleep((unsigned)(KA_TIME_MS + KA_TIMEOUT_MS + margin_ms()) * 1000);
    long long t0 = now_ms();
    gp_status st;
    gp_err rc = get(&s, &st);
    long long took = now_ms() - t0;
    printf("  %s: call after an idle spell ended after %lld ms: %s\n", wire, took, st.msg);
    GP_CHECK_ERR(rc, GP_ECLOSED);
    GP_CHECK_CONTAINS(st.msg, "keepalive");
    GP_CHECK_INT(took, <, REAP_WAIT_MS + 300 * gp_test_scale());
    close_session(&s, true);
}

/* Keepalive off: nothing gives the conn up; only the call deadline ends a
 * call to the stopped plugin, and after SIGCONT the conn works again. */
GP_TEST(keepalive_off_waits_for_the_call_deadline)
{
    session s;
    if (open_session(&s, (gp_keepalive){.time_ms = -1}, 2500, (int)(2000 * gp_test_scale())))
        return;
    put_get_ok(&s);
    stop(s.pid);
    long long t0 = now_ms();
    gp_status st;
    GP_CHECK_ERR(get(&s, &st), GP_ETIMEDOUT);
    GP_CHECK_INT(now_ms() - t0, >=, 2400);
    GP_CHECK_INT(kill(s.pid, SIGCONT), ==, 0);
    put_get_ok(&s);
    close_session(&s, false);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: keepalive_test C-PLUGIN|- GO-PLUGIN|-\n");
        return 2;
    }
    static const char *const wires[] = {"grpc", "netrpc"};
    for (int p = 1; p <= 2; p++) {
        plugin_path = argv[p];
        if (strcmp(plugin_path, "-") == 0)
            continue; /* that peer is tested by another target */
        for (size_t i = 0; i < 2; i++) {
            wire = wires[i];
            char name[3][160];
            const char *who = p == 1 ? "C" : "Go";
            snprintf(name[0], sizeof name[0], "%s plugin, %s: call to a stopped plugin ends", who,
                     wire);
            snprintf(name[1], sizeof name[1], "%s plugin, %s: idle conn to a stopped plugin", who,
                     wire);
            snprintf(name[2], sizeof name[2], "%s plugin, %s: keepalive off", who, wire);
            gp_test_run(name[0], call_to_a_stopped_plugin_ends_within_the_keepalive_bound, 15);
            gp_test_run(name[1], idle_conn_to_a_stopped_plugin_is_given_up, 15);
            gp_test_run(name[2], keepalive_off_waits_for_the_call_deadline, 15);
        }
    }
    return gp_test_done();
}
