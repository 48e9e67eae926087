/* kv-host bench: latency, throughput and startup, one JSON line out.
 * The Go bench host in bench/ prints the same fields; bench/run.sh puts the
 * two side by side. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "examples/kv/bench.h"
#include "examples/kv/kv.h"

#define BENCH_KEY "bench-key"

typedef struct result {
    double lat_us_p50, lat_us_p99, lat_us_mean, calls_per_s, startup_ms_p50;
    long plugin_rss_peak_kib;
} result;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

long kv_vmhwm_kib(int pid)
{
    char path[64];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/status", pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[256];
    long kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static int put_value(kv_session *s, size_t size)
{
    uint8_t *val = malloc(size ? size : 1);
    if (!val)
        return -1;
    for (size_t i = 0; i < size; i++)
        val[i] = (uint8_t)('a' + i % 26);
    proto_PutRequest req = {.key = BENCH_KEY, .value = {val, size}};
    proto_Empty resp = {0};
    gp_status st = {0};
    gp_err err = proto_KV_Put(s->kv, &req, &resp, &st);
    free(val);
    if (err != GP_OK) {
        fprintf(stderr, "kv-host: bench put: %s\n", st.msg);
        return -1;
    }
    return 0;
}

/* One Get; checks the value's size so a broken transport cannot look fast. */
static int get_once(gp_stub *kv, size_t size)
{
    proto_GetRequest req = {.key = BENCH_KEY};
    proto_GetResponse resp = {0};
    gp_status st = {0};
    gp_err err = proto_KV_Get(kv, &req, &resp, &st);
    int rc = 0;
    if (err != GP_OK) {
        fprintf(stderr, "kv-host: bench get: %s\n", st.msg);
        rc = -1;
    } else if (resp.value.len != size) {
        fprintf(stderr, "kv-host: bench get: expected %zu bytes, got %zu\n", size, resp.value.len);
        rc = -1;
    }
    gp_msg_release(proto_GetResponse_fields, &resp);
    return rc;
}

static void summarize(double *lat, size_t n, double elapsed_us, result *r)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += lat[i];
    qsort(lat, n, sizeof *lat, cmp_double);
    r->lat_us_p50 = percentile(lat, n, 0.50);
    r->lat_us_p99 = percentile(lat, n, 0.99);
    r->lat_us_mean = n ? sum / (double)n : 0;
    r->calls_per_s = elapsed_us > 0 ? (double)n * 1e6 / elapsed_us : 0;
}

static int bench_latency(kv_session *s, long n, size_t size, result *r)
{
    double *lat = malloc((size_t)n * sizeof *lat);
    if (!lat || put_value(s, size) != 0) {
        free(lat);
        return -1;
    }
    long warm = n / 10 < 1000 ? n / 10 : 1000;
    for (long i = 0; i < warm; i++)
        if (get_once(s->kv, size) != 0)
            goto fail;
    double t0 = now_us();
    for (long i = 0; i < n; i++) {
        double a = now_us();
        if (get_once(s->kv, size) != 0)
            goto fail;
        lat[i] = now_us() - a;
    }
    summarize(lat, (size_t)n, now_us() - t0, r);
    free(lat);
    return 0;
fail:
    free(lat);
    return -1;
}

typedef struct worker {
    pthread_t tid;
    gp_stub *kv;
    size_t size;
    long n;
    double *lat;
    int rc;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (long i = 0; i < w->n; i++) {
        double a = now_us();
        if (get_once(w->kv, w->size) != 0) {
            w->rc = -1;
            return NULL;
        }
        w->lat[i] = now_us() - a;
    }
    return NULL;
}

static int bench_throughput(kv_session *s, long n, size_t size, int threads, result *r)
{
    long per = n / threads;
    if (per < 1)
        per = 1;
    double *lat = malloc((size_t)(per * threads) * sizeof *lat);
    worker *w = calloc((size_t)threads, sizeof *w);
    if (!lat || !w || put_value(s, size) != 0) {
        free(lat);
        free(w);
        return -1;
    }
    for (long i = 0; i < 200; i++) /* warm up the connection */
        if (get_once(s->kv, size) != 0)
            goto fail;
    double t0 = now_us();
    int started = 0;
    for (int t = 0; t < threads; t++) {
        w[t] = (worker){.kv = s->kv, .size = size, .n = per, .lat = lat + per * t};
        if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]) != 0)
            break;
        started++;
    }
    int rc = started == threads ? 0 : -1;
    for (int t = 0; t < started; t++) {
        pthread_join(w[t].tid, NULL);
        rc |= w[t].rc;
    }
    if (rc != 0)
        goto fail;
    summarize(lat, (size_t)(per * threads), now_us() - t0, r);
    free(lat);
    free(w);
    return 0;
fail:
    free(lat);
    free(w);
    return -1;
}

static int bench_startup(const kv_host_opts *o, long n, size_t size, result *r)
{
    double *ms = malloc((size_t)n * sizeof *ms);
    if (!ms)
        return -1;
    for (long i = 0; i < n; i++) {
        kv_session s;
        double a = now_us();
        if (kv_session_open(o, &s) != 0) {
            free(ms);
            return -1;
        }
        /* A key never put reads as empty: the first Get is the point. */
        if (get_once(s.kv, 0) != 0) {
            (void)kv_session_close(&s); /* failing already */
            free(ms);
            return -1;
        }
        ms[i] = (now_us() - a) / 1e3;
        long rss = kv_vmhwm_kib(gp_client_pid(s.client));
        if (rss > r->plugin_rss_peak_kib)
            r->plugin_rss_peak_kib = rss;
        if (kv_session_close(&s) != 0) {
            free(ms);
            return -1;
        }
    }
    (void)size;
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    r->startup_ms_p50 = percentile(ms, (size_t)n, 0.5);
    free(ms);
    return 0;
}

int kv_bench(const kv_host_opts *o, const kv_bench_opts *b)
{
    const char *mode = b->mode ? b->mode : "latency";
    size_t size = b->size_set ? b->size : 16;
    int threads = b->threads ? b->threads : 8;
    result r = {0};
    long n;
    int rc;

    if (strcmp(mode, "startup") == 0) {
        n = b->n ? b->n : 20;
        rc = bench_startup(o, n, size, &r);
    } else if (strcmp(mode, "latency") == 0 || strcmp(mode, "throughput") == 0) {
        int lat = mode[0] == 'l';
        n = b->n ? b->n : (lat ? 10000 : 40000);
        kv_session s;
        if (kv_session_open(o, &s) != 0)
            return 1;
        rc = lat ? bench_latency(&s, n, size, &r) : bench_throughput(&s, n, size, threads, &r);
        r.plugin_rss_peak_kib = kv_vmhwm_kib(gp_client_pid(s.client));
        if (rc != 0)
            kv_session_print_stderr_tail(&s);
        if (kv_session_close(&s) != 0)
            rc = -1;
    } else {
        fprintf(stderr,
                "kv-host: unknown bench mode \"%s\" (expected latency, throughput or startup)\n",
                mode);
        return 1;
    }
    if (rc != 0)
        return 1;
    printf("{\"impl\":\"c\",\"proto\":\"%s\",\"mode\":\"%s\",\"n\":%ld,\"size\":%zu,\"threads\":%d,"
           "\"lat_us_p50\":%.1f,\"lat_us_p99\":%.1f,\"lat_us_mean\":%.1f,\"calls_per_s\":%.0f,"
           "\"startup_ms_p50\":%.2f,\"plugin_rss_peak_kib\":%ld,\"host_rss_peak_kib\":%ld}\n",
           gp_protocol_name(o->proto), mode, n, size, strcmp(mode, "throughput") == 0 ? threads : 1,
           r.lat_us_p50, r.lat_us_p99, r.lat_us_mean, r.calls_per_s, r.startup_ms_p50,
           r.plugin_rss_peak_kib, kv_vmhwm_kib(0));
    return 0;
}
