/* kv-host: drives a KV plugin (any language, grpc or netrpc).
 *
 *   kv-host --plugin PATH [--proto grpc|netrpc] [--start-timeout SECONDS] [--automtls]
 *           [--multiplex] [--sha256 HEX] [--kill-grace MS] [--] CMD...
 *       CMD: put KEY VALUE | get KEY   (run in order in one plugin session)
 *   kv-host --plugin PATH [--proto P] bench --mode latency|throughput|startup
 *           [-n N] [--size BYTES] [-c THREADS]
 *   kv-host --plugin PATH [--proto P] --detach FILE [--detach-output PREFIX] -- CMD...
 *                                                  (leave it running; its stdout and
 *                                                  stderr go to PREFIX.stdout/.stderr,
 *                                                  PREFIX = FILE by default)
 *   kv-host --reattach FILE -- CMD...                          (use it again)
 *   kv-host --reattach FILE --kill                             (stop it, remove FILE)
 *
 * --kill-grace MS: how long a stopping plugin has to exit after the
 * graceful Shutdown before SIGKILL (default 2000, go-plugin's 2 s; also for
 * --kill).
 * --sha256 HEX: the SHA-256 (64 hex digits) PATH must have, go-plugin's
 * SecureConfig; a script (#!) plugin is checked and run as a sealed copy.
 * The command lines are a contract other tools drive: keep them exact.
 * Exit 0 on success; 1 with a one-line error (then the plugin's stderr tail),
 * also when every command succeeded but the plugin ended badly (a non-zero
 * exit code of its own, or a signal we did not send: a crash, a leak report
 * under ASan): "kv-host: plugin pid N exited unexpectedly: HOW".
 * KV_HOST_LOG_LEVEL = trace|debug|info|warn|error sets our log level. */
#include <goplugin/goplugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/kv/bench.h"
#include "examples/kv/detach.h"
#include "examples/kv/kv.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: kv-host --plugin PATH [--proto grpc|netrpc] [--start-timeout SECONDS]\n"
            "               [--automtls] [--multiplex] [--sha256 HEX] [--kill-grace MS]\n"
            "               [--] CMD...\n"
            "       CMD: put KEY VALUE | get KEY\n"
            "       --kill-grace MS: a stopping plugin's time to exit before SIGKILL\n"
            "               (default 2000)\n"
            "       --sha256 HEX: refuse to run PATH unless its SHA-256 is HEX (64 hex\n"
            "               digits; go-plugin's SecureConfig, scripts included)\n"
            "       kv-host --plugin PATH [--proto P] bench --mode latency|throughput|startup\n"
            "               [-n N] [--size BYTES] [-c THREADS]\n"
            "       kv-host --plugin PATH [--proto P] --detach FILE [--detach-output PREFIX]\n"
            "               -- CMD...   (its stdout/stderr: PREFIX.stdout/.stderr, PREFIX=FILE)\n"
            "       kv-host --reattach FILE -- CMD...\n"
            "       kv-host --reattach FILE --kill\n");
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "kv-host: ");
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
    return GP_LOG_INFO;
}

static int parse_num(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* 64 hex digits into 32 bytes. */
static int parse_sha256(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char ch = s[2 * i + j];
            unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                         : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                         : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10)
                                                  : 16u;
            if (d > 15)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* Run put/get commands in one session. */
static int run_commands(kv_host_opts *o, char **cmd, int ncmd)
{
    /* Check the whole command list before launching anything. */
    for (int i = 0; i < ncmd;) {
        if (strcmp(cmd[i], "put") == 0 && i + 2 < ncmd)
            i += 3;
        else if (strcmp(cmd[i], "get") == 0 && i + 1 < ncmd)
            i += 2;
        else
            return fail("bad command at \"%s\" (expected put KEY VALUE or get KEY)", cmd[i]);
    }

    kv_session s;
    if (kv_detach_open(o, &s) != 0)
        return 1;
    int rc = 0;
    for (int i = 0; i < ncmd && rc == 0;) {
        gp_status st = {0};
        if (strcmp(cmd[i], "put") == 0) {
            proto_PutRequest req = {.key = cmd[i + 1],
                                    .value = {(uint8_t *)cmd[i + 2], strlen(cmd[i + 2])}};
            proto_Empty resp = {0};
            if (proto_KV_Put(s.kv, &req, &resp, &st) != GP_OK) {
                fprintf(stderr, "kv-host: put %s: %s\n", cmd[i + 1], st.msg);
                rc = 1;
            }
            gp_msg_release(proto_Empty_fields, &resp);
            i += 3;
        } else {
            proto_GetRequest req = {.key = cmd[i + 1]};
            proto_GetResponse resp = {0};
            if (proto_KV_Get(s.kv, &req, &resp, &st) != GP_OK) {
                fprintf(stderr, "kv-host: get %s: %s\n", cmd[i + 1], st.msg);
                rc = 1;
            } else {
                if (resp.value.len)
                    fwrite(resp.value.data, 1, resp.value.len, stdout);
                fputc('\n', stdout);
                fflush(stdout);
            }
            gp_msg_release(proto_GetResponse_fields, &resp);
            i += 2;
        }
    }
    if (rc)
        kv_session_print_stderr_tail(&s);
    return kv_detach_close(&s, rc);
}

int main(int argc, char **argv)
{
    kv_host_opts o = {.proto = GP_PROTO_GRPC, .start_timeout_s = 60};
    uint8_t sha[32];
    o.log_level = parse_level(getenv("KV_HOST_LOG_LEVEL"));
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--plugin") == 0 && i + 1 < argc) {
            o.plugin = argv[++i];
        } else if (strcmp(a, "--proto") == 0 && i + 1 < argc) {
            o.proto = gp_protocol_parse(argv[++i]);
            if (o.proto == GP_PROTO_NONE)
                return fail("unknown protocol \"%s\" (expected grpc or netrpc)", argv[i]);
        } else if (strcmp(a, "--start-timeout") == 0 && i + 1 < argc) {
            long v;
            if (parse_num(argv[++i], 1, 86400, &v) != 0)
                return fail("bad --start-timeout \"%s\" (expected seconds, 1..86400)", argv[i]);
            o.start_timeout_s = (int)v;
        } else if (strcmp(a, "--kill-grace") == 0 && i + 1 < argc) {
            long v;
            if (parse_num(argv[++i], 1, 600000, &v) != 0)
                return fail("bad --kill-grace \"%s\" (expected milliseconds, 1..600000)", argv[i]);
            o.kill_grace_ms = (int)v;
        } else if (strcmp(a, "--automtls") == 0) {
            o.automtls = 1;
        } else if (strcmp(a, "--sha256") == 0 && i + 1 < argc) {
            if (parse_sha256(argv[++i], sha) != 0)
                return fail("bad --sha256 \"%s\" (expected 64 hex digits)", argv[i]);
            o.sha256 = sha;
        } else if (strcmp(a, "--multiplex") == 0) {
            o.multiplex = 1;
        } else if (strcmp(a, "--detach") == 0 && i + 1 < argc) {
            kv_detach.detach_file = argv[++i];
        } else if (strcmp(a, "--detach-output") == 0 && i + 1 < argc) {
            kv_detach.output_prefix = argv[++i];
        } else if (strcmp(a, "--reattach") == 0 && i + 1 < argc) {
            kv_detach.reattach_file = argv[++i];
        } else if (strcmp(a, "--kill") == 0) {
            kv_detach.kill = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else if (a[0] == '-') {
            usage();
            return fail("unknown option \"%s\"", a);
        } else {
            break;
        }
    }
    int detach_rc = kv_detach_check(&o, argv + i, argc - i);
    if (detach_rc >= 0)
        return detach_rc;
    if (!o.plugin && !kv_detach.reattach_file) {
        usage();
        return fail("%s", "--plugin PATH is required");
    }
    if (i >= argc) {
        usage();
        return fail("%s", "no command given");
    }

    if (strcmp(argv[i], "bench") == 0) {
        kv_bench_opts b = {0};
        for (i++; i < argc; i++) {
            const char *a = argv[i];
            long v;
            if (strcmp(a, "--mode") == 0 && i + 1 < argc) {
                b.mode = argv[++i];
            } else if (strcmp(a, "-n") == 0 && i + 1 < argc) {
                if (parse_num(argv[++i], 1, 100000000, &v) != 0)
                    return fail("bad -n \"%s\"", argv[i]);
                b.n = v;
            } else if (strcmp(a, "--size") == 0 && i + 1 < argc) {
                if (parse_num(argv[++i], 0, 256L << 20, &v) != 0)
                    return fail("bad --size \"%s\" (0..268435456)", argv[i]);
                b.size = (size_t)v;
                b.size_set = 1;
            } else if (strcmp(a, "-c") == 0 && i + 1 < argc) {
                if (parse_num(argv[++i], 1, 1024, &v) != 0)
                    return fail("bad -c \"%s\" (1..1024)", argv[i]);
                b.threads = (int)v;
            } else {
                return fail("unknown bench option \"%s\"", a);
            }
        }
        return kv_bench(&o, &b);
    }
    return run_commands(&o, argv + i, argc - i);
}
