/* Latency of the gRPC wire, C client -> C server in a child process over a
 * unix socket (the numbers in docs/grpc.md):
 *
 *   grpc_bench [-n CALLS] [--size BYTES] [--idle-after-ms MS] [--after-idle N]
 *              [--dial /unix/socket] [--threads T]
 *
 * prints one JSON line: sequential unary Get latency p50/p99/mean in µs and
 * calls/s, then (with --after-idle N) the latency of the first call after
 * each of N idle spells of 1.5 s. --idle-after-ms -1 keeps the idle poller
 * polling during calls (the "thread parked in cq_next" design). --dial runs
 * against a server already listening there (serving /proto.KV/Get and
 * health), e.g. a Go or Python plugin. --threads T adds a throughput run:
 * T threads sharing the connection, n calls each. */
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <goplugin/conn.h>

#include "transport/testing/proto/kv.pb.h"
#include "transport/core/conn.h"
#include "transport/wire/grpc/grpc.h"

static const gp_method get_m = {.grpc_path = "/proto.KV/Get",
                                .req_pb = proto_GetRequest_fields,
                                .resp_pb = proto_GetResponse_fields};
static size_t g_size = 16;

static gp_err get(void *impl, const void *req, void *respp, gp_status *st)
{
    (void)impl;
    (void)req;
    (void)st;
    proto_GetResponse *resp = respp;
    resp->value.data = calloc(1, g_size ? g_size : 1);
    resp->value.len = g_size;
    return GP_OK;
}

static const gp_service_method methods[] = {{&get_m, get}};
static const gp_service svc = {.name = "kv", .methods = methods, .nmethods = 1};

static int serve(const char *path)
{
    char err[256], addr[160];
    snprintf(addr, sizeof addr, "unix:%s", path);
    gp__grpc_server_opts so = {.services = &svc, .nservices = 1};
    gp__grpc_server *s = NULL;
    if (gp__grpc_server_new(&so, &s, err, sizeof err) ||
        gp__grpc_server_listen(s, addr, NULL, err, sizeof err) ||
        gp__grpc_server_start(s, err, sizeof err)) {
        fprintf(stderr, "server: %s\n", err);
        return 1;
    }
    gp__grpc_server_wait(s);
    gp__grpc_server_free(s);
    return 0;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int one_call(gp_stub *stub)
{
    proto_GetRequest req = {.key = "k"};
    proto_GetResponse resp;
    memset(&resp, 0, sizeof resp);
    gp_status st;
    if (gp_invoke(stub, &get_m, &req, &resp, &st) != GP_OK) {
        fprintf(stderr, "call: %s\n", st.msg);
        return -1;
    }
    gp_msg_release(proto_GetResponse_fields, &resp);
    return 0;
}

typedef struct tp_arg {
    gp_stub *stub;
    int n;
} tp_arg;

static void *tp_run(void *p)
{
    tp_arg *a = p;
    for (int i = 0; i < a->n; i++)
        if (one_call(a->stub))
            break;
    return NULL;
}

int main(int argc, char **argv)
{
    int n = 20000, idle_after = 0, after_idle = 0, threads = 0;
    const char *dial = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--serve") == 0 && i + 2 < argc) {
            g_size = (size_t)atol(argv[i + 2]);
            return serve(argv[i + 1]);
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            n = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            g_size = (size_t)atol(argv[++i]);
        } else if (strcmp(argv[i], "--idle-after-ms") == 0 && i + 1 < argc) {
            idle_after = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--dial") == 0 && i + 1 < argc) {
            dial = argv[++i];
        } else if (strcmp(argv[i], "--after-idle") == 0 && i + 1 < argc) {
            after_idle = atoi(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: %s [-n CALLS] [--size BYTES] [--idle-after-ms MS] [--after-idle N]"
                    " [--dial PATH] [--threads T]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 1)
        n = 1;
    char dir[] = "/tmp/gpbenchXXXXXX", path[100], size[32], self[512];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(size, sizeof size, "%zu", g_size);
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    self[sl > 0 ? sl : 0] = '\0';
    char *cargv[] = {self, "--serve", path, size, NULL};
    pid_t pid = -1;
    if (dial)
        snprintf(path, sizeof path, "%s", dial);
    else if (posix_spawn(&pid, self, NULL, NULL, cargv, NULL) != 0)
        return 1;
    int fd = -1;
    for (int i = 0; i < 500 && fd < 0; i++) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fd);
            fd = -1;
            usleep(10000);
        }
    }
    char err[256];
    gp_conn *conn = NULL;
    gp_stub *stub = NULL;
    gp_status st;
    gp__grpc_client_opts co = {.idle_after_ms = idle_after};
    if (fd < 0 || gp__grpc_conn_from_fd(fd, &co, &conn, err, sizeof err) != GP_OK ||
        gp_conn_dispense(conn, "kv", &stub, &st) != GP_OK) {
        fprintf(stderr, "connect failed\n");
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        return 1;
    }
    if (gp_conn_ping(conn, &st) != GP_OK) {
        fprintf(stderr, "ping: %s (%s)\n", st.msg, gp_strerror(st.err));
        return 1;
    }
    for (int i = 0; i < 1000; i++)
        one_call(stub);
    double *lat = malloc(sizeof *lat * (size_t)n), sum = 0, t0 = now_us();
    for (int i = 0; i < n; i++) {
        double a = now_us();
        if (one_call(stub)) {
            n = i > 0 ? i : 1;
            lat[0] = 0;
            break;
        }
        lat[i] = now_us() - a;
        sum += lat[i];
    }
    double total = now_us() - t0;
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("{\"calls\":%d,\"size\":%zu,\"idle_after_ms\":%d,\"lat_us_p50\":%.1f,"
           "\"lat_us_p99\":%.1f,\"lat_us_mean\":%.1f,\"calls_per_s\":%.0f",
           n, g_size, idle_after, lat[n / 2], lat[n * 99 / 100], sum / n, n / (total / 1e6));
    if (threads > 0) {
        pthread_t th[64];
        tp_arg ta = {.stub = stub, .n = n};
        if (threads > 64)
            threads = 64;
        double a = now_us();
        for (int i = 0; i < threads; i++)
            pthread_create(&th[i], NULL, tp_run, &ta);
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        printf(",\"threads\":%d,\"threads_calls_per_s\":%.0f", threads,
               (double)n * threads / ((now_us() - a) / 1e6));
    }
    if (after_idle > 0) {
        printf(",\"after_idle_us\":[");
        for (int i = 0; i < after_idle; i++) {
            usleep(1500 * 1000);
            double a = now_us();
            one_call(stub);
            printf("%s%.1f", i ? "," : "", now_us() - a);
        }
        printf("]");
    }
    printf("}\n");
    if (gp__conn_shutdown(conn, 2000, &st) != GP_OK)
        fprintf(stderr, "shutdown: %s (%s)\n", st.msg, gp_strerror(st.err));
    gp_stub_free(stub);
    gp__conn_close(conn);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    unlink(dir[0] && !dial ? path : "");
    rmdir(dir);
    free(lat);
    return 0;
}
