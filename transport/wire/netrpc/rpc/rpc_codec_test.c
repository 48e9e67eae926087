/* net/rpc codec tests: a C client and a C server over a yamux stream on a
 * socketpair; the client's bytes against the go-plugin capture; concurrent
 * calls matched by Seq; Go's error texts; hostile responses. */
#include "transport/wire/netrpc/gob/gob_rpc.h"
#include "transport/wire/netrpc/gob/gob_spec_bytes.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"
#include "transport/yamux/mux_session.h"
#include "transport/testing/gp_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const gp__mux_config quiet = {.keepalive_interval_ms = -1};

typedef struct fixture {
    gp__mux_session *cs, *ss;
    gp__mux_stream *c, *s;
} fixture;

static void fixture_up(fixture *f)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    GP_CHECK_ERR(gp__mux_session_new(sv[0], GP_MUX_CLIENT, &quiet, &f->cs), GP_OK);
    GP_CHECK_ERR(gp__mux_session_new(sv[1], GP_MUX_SERVER, &quiet, &f->ss), GP_OK);
    GP_CHECK_ERR(gp__mux_open(f->cs, &f->c), GP_OK);
    GP_CHECK_ERR(gp__mux_accept(f->ss, 1000, &f->s), GP_OK);
}

static void fixture_down(fixture *f)
{
    gp__mux_stream_free(f->c);
    gp__mux_stream_free(f->s);
    gp__mux_session_free(f->cs);
    gp__mux_session_free(f->ss);
}

/* Control.Ping, Dispenser.Dispense and an echo, as a go-plugin server would. */
static gp_err handler(void *ctx, const char *method, const gp__gob_value *args,
                      gp__gob_value *reply, char *errmsg, size_t errlen)
{
    (void)ctx;
    char err[200];
    if (strcmp(method, "Control.Ping") == 0) {
        int b;
        if (gp__gob_get_bool(args, &b, err, sizeof err) != GP_OK) {
            snprintf(errmsg, errlen, "%s", err);
            return GP_EINVAL;
        }
        reply->type = &gp_gob_empty_struct_type;
        return GP_OK;
    }
    if (strcmp(method, "Dispenser.Dispense") == 0) {
        const char *name;
        if (gp__gob_get_string(args, &name, err, sizeof err) != GP_OK)
            return GP_EINVAL;
        if (strcmp(name, "greeter") != 0) {
            snprintf(errmsg, errlen, "unknown plugin type: %s", name);
            return GP_ENOTFOUND;
        }
        reply->type = &gp_gob_uint_type;
        reply->u.u = 1;
        return GP_OK;
    }
    if (strcmp(method, "Plugin.Echo") == 0) {
        const char *s;
        if (gp__gob_get_string(args, &s, err, sizeof err) != GP_OK)
            return GP_EINVAL;
        usleep((useconds_t)(rand() % 2000));
        reply->type = &gp_gob_string_type;
        reply->u.bytes.data = (uint8_t *)strdup(s);
        reply->u.bytes.len = strlen(s);
        return GP_OK;
    }
    snprintf(errmsg, errlen, "rpc: can't find method %s", method);
    return GP_ENOTFOUND;
}

typedef struct serve_args {
    gp__mux_stream *st;
    gp_err result;
    char err[256];
} serve_args;

static void *serve_main(void *arg)
{
    serve_args *a = arg;
    a->result = gp__rpc_serve(gp__mux_stream_io(a->st), NULL, handler, NULL, a->err, sizeof a->err);
    return NULL;
}

static gp__gob_value str(const char *s)
{
    gp__gob_value v = {.type = &gp_gob_string_type};
    v.u.bytes.data = (uint8_t *)s;
    v.u.bytes.len = strlen(s);
    return v;
}

typedef struct call_args {
    gp__rpc_client *c;
    const char *method;
    gp__gob_value args;
    int timeout_ms;
    gp_err e;
    gp_status st;
    gp__gob_value *reply;
} call_args;

static void *call_main(void *arg)
{
    call_args *a = arg;
    a->e = gp__rpc_call(a->c, a->method, &a->args, &a->reply, a->timeout_ms, &a->st);
    return NULL;
}

GP_TEST(the_first_call_is_the_captured_control_ping_and_a_captured_reply_decodes)
{
    fixture f;
    fixture_up(&f);
    gp__rpc_client *c;
    GP_CHECK_ERR(gp__rpc_client_new(gp__mux_stream_io(f.c), NULL, &c), GP_OK);
    call_args a = {c,   "Control.Ping", {.type = &gp_gob_bool_type, .u.b = 1}, 2000, GP_OK, {0},
                   NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_main, &a);
    /* This thread plays the Go plugin, byte for byte. */
    uint8_t want[512], got[512];
    size_t n = gp_test_spec_bytes(SPEC_PING_REQUEST, want, sizeof want);
    GP_CHECK_ERR(gp__mux_stream_read_full(f.s, got, n, 2000), GP_OK);
    GP_CHECK(memcmp(got, want, n) == 0);
    n = gp_test_spec_bytes(SPEC_PING_RESPONSE, want, sizeof want);
    GP_CHECK_ERR(gp__mux_stream_write(f.s, want, n, 2000), GP_OK);
    pthread_join(th, NULL);
    GP_CHECK_ERR(a.e, GP_OK);
    GP_CHECK(a.reply && a.reply->type->kind == GP_GOB_STRUCT);
    gp__gob_value_free(a.reply);
    /* Second call: Seq 1, no definitions; the captured Dispense reply. */
    a = (call_args){c, "Dispenser.Dispense", str("greeter"), 2000, GP_OK, {0}, NULL};
    pthread_create(&th, NULL, call_main, &a);
    n = gp_test_spec_bytes(SPEC_DISPENSE_REQUEST, want, sizeof want);
    GP_CHECK_ERR(gp__mux_stream_read_full(f.s, got, n, 2000), GP_OK);
    GP_CHECK(memcmp(got, want, n) == 0);
    n = gp_test_spec_bytes(SPEC_DISPENSE_RESPONSE, want, sizeof want);
    GP_CHECK_ERR(gp__mux_stream_write(f.s, want, n, 2000), GP_OK);
    pthread_join(th, NULL);
    GP_CHECK_ERR(a.e, GP_OK);
    uint64_t id = 0;
    char err[200];
    GP_CHECK_ERR(gp__gob_get_uint(a.reply, &id, err, sizeof err), GP_OK);
    GP_CHECK_INT(id, ==, 1);
    gp__gob_value_free(a.reply);
    gp__rpc_client_free(c);
    fixture_down(&f);
}

GP_TEST(concurrent_calls_are_matched_by_seq_and_errors_carry_go_text)
{
    fixture f;
    fixture_up(&f);
    serve_args sa = {f.s, GP_OK, ""};
    pthread_t srv;
    pthread_create(&srv, NULL, serve_main, &sa);
    gp__rpc_client *c;
    GP_CHECK_ERR(gp__rpc_client_new(gp__mux_stream_io(f.c), NULL, &c), GP_OK);
    enum { N = 8 };
    call_args calls[N];
    char words[N][32];
    pthread_t th[N];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(words[i], sizeof words[i], "call %d.%d", round, i);
            calls[i] = (call_args){c, "Plugin.Echo", str(words[i]), 5000, GP_OK, {0}, NULL};
            pthread_create(&th[i], NULL, call_main, &calls[i]);
        }
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            const char *s = NULL;
            char err[200];
            GP_CHECK_ERR(calls[i].e, GP_OK);
            if (calls[i].e == GP_OK &&
                gp__gob_get_string(calls[i].reply, &s, err, sizeof err) == GP_OK)
                GP_CHECK_STR(s, words[i]);
            gp__gob_value_free(calls[i].reply);
        }
    }
    gp_status st;
    gp__gob_value *reply = (gp__gob_value *)1;
    gp__gob_value nope = str("x");
    GP_CHECK_ERR(gp__rpc_call(c, "Dispenser.Dispense", &nope, &reply, 2000, &st), GP_EREMOTE);
    GP_CHECK_STR(st.msg, "unknown plugin type: x");
    GP_CHECK(reply == NULL);
    GP_CHECK_ERR(gp__rpc_call(c, "Plugin.Nope", &nope, NULL, 2000, &st), GP_EREMOTE);
    GP_CHECK_STR(st.msg, "rpc: can't find method Plugin.Nope");
    GP_CHECK_ERR(gp__rpc_call(c, "NoDot", &nope, NULL, 2000, &st), GP_EREMOTE);
    GP_CHECK_STR(st.msg, "rpc: service/method request ill-formed: NoDot");
    /* Still usable after errors. */
    gp__gob_value t = {.type = &gp_gob_bool_type, .u.b = 1};
    GP_CHECK_ERR(gp__rpc_call(c, "Control.Ping", &t, NULL, 2000, &st), GP_OK);
    gp__rpc_client_free(c); /* RST: the server loop ends */
    pthread_join(srv, NULL);
    GP_CHECK(sa.result == GP_OK || sa.result == GP_EPROTO || sa.result == GP_ECLOSED);
    fixture_down(&f);
}

/* Writes bytes as the server, then expects the pending call to fail with words. */
static void expect_client_failure(const uint8_t *resp, size_t n, const char *words)
{
    fixture f;
    fixture_up(&f);
    gp__rpc_client *c;
    GP_CHECK_ERR(gp__rpc_client_new(gp__mux_stream_io(f.c), NULL, &c), GP_OK);
    call_args a = {c,   "Control.Ping", {.type = &gp_gob_bool_type, .u.b = 1}, 3000, GP_OK, {0},
                   NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_main, &a);
    uint8_t req[512];
    size_t rn = gp_test_spec_bytes(SPEC_PING_REQUEST, req, sizeof req);
    GP_CHECK_ERR(gp__mux_stream_read_full(f.s, req, rn, 2000), GP_OK);
    GP_CHECK_ERR(gp__mux_stream_write(f.s, resp, n, 2000), GP_OK);
    pthread_join(th, NULL);
    GP_CHECK_ERR_NE(a.e, GP_OK);
    GP_CHECK_CONTAINS(a.st.msg, words);
    gp__gob_value_free(a.reply);
    /* The client is dead: later calls fail at once with the same words. */
    gp_status st;
    gp__gob_value t = {.type = &gp_gob_bool_type, .u.b = 1};
    GP_CHECK_ERR_NE(gp__rpc_call(c, "Control.Ping", &t, NULL, 100, &st), GP_OK);
    GP_CHECK_CONTAINS(st.msg, words);
    gp__rpc_client_free(c);
    fixture_down(&f);
}

GP_TEST(hostile_responses_fail_the_client_with_words)
{
    uint8_t b[512];
    /* A response for Seq 7 that nobody asked for. */
    size_t n = gp_test_spec_bytes("3a ff83 03 01 01 08 \"Response\" 01 ff84 00 01 03"
                                  " 01 0d \"ServiceMethod\" 01 0c 00  01 03 \"Seq\" 01 06 00"
                                  " 01 05 \"Error\" 01 0c 00  00 00"
                                  " 13 ff84 01 0c \"Control.Ping\" 01 07 00"
                                  " 0a ff85 03 01 02 ff86 00 00 00  03 ff86 00",
                                  b, sizeof b);
    expect_client_failure(b, n, "response for unknown Seq 7");
    /* A header that is not a struct. */
    n = gp_test_spec_bytes("03 02 00 01", b, sizeof b);
    expect_client_failure(b, n, "expected a response header struct, got a bool");
    /* A value of an undefined type. */
    n = gp_test_spec_bytes("03 ff90 00", b, sizeof b);
    expect_client_failure(b, n, "unknown type id 72");
    /* An oversized message length. */
    n = gp_test_spec_bytes("f8 7fffffffffffffff", b, sizeof b);
    expect_client_failure(b, n, "exceeds the limit");
}

GP_TEST(a_call_times_out_and_its_late_reply_is_dropped)
{
    fixture f;
    fixture_up(&f);
    gp__rpc_client *c;
    GP_CHECK_ERR(gp__rpc_client_new(gp__mux_stream_io(f.c), NULL, &c), GP_OK);
    gp_status st;
    gp__gob_value t = {.type = &gp_gob_bool_type, .u.b = 1};
    GP_CHECK_ERR(gp__rpc_call(c, "Control.Ping", &t, NULL, 100, &st), GP_ETIMEDOUT);
    GP_CHECK_CONTAINS(st.msg, "no reply within 100 ms");
    /* Now the server answers Seq 0 late, then serves normally. */
    uint8_t b[512];
    size_t rn = gp_test_spec_bytes(SPEC_PING_REQUEST, b, sizeof b);
    GP_CHECK_ERR(gp__mux_stream_read_full(f.s, b, rn, 2000), GP_OK);
    size_t n = gp_test_spec_bytes(SPEC_PING_RESPONSE, b, sizeof b);
    GP_CHECK_ERR(gp__mux_stream_write(f.s, b, n, 2000), GP_OK);
    serve_args sa = {NULL, GP_OK, ""};
    (void)sa;
    call_args a = {c, "Dispenser.Dispense", str("greeter"), 2000, GP_OK, {0}, NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_main, &a);
    rn = gp_test_spec_bytes(SPEC_DISPENSE_REQUEST, b, sizeof b);
    GP_CHECK_ERR(gp__mux_stream_read_full(f.s, b, rn, 2000), GP_OK);
    n = gp_test_spec_bytes(SPEC_DISPENSE_RESPONSE, b, sizeof b);
    GP_CHECK_ERR(gp__mux_stream_write(f.s, b, n, 2000), GP_OK);
    pthread_join(th, NULL);
    GP_CHECK_ERR(a.e, GP_OK);
    gp__gob_value_free(a.reply);
    gp__rpc_client_free(c);
    fixture_down(&f);
}

/* ---- the threaded server's batches (gp__rpc_serve_ex with the watch hook) ---- */

/* Plugin.Wait blocks until Plugin.Release ran (at most 5 s); Plugin.Echo
 * answers its string. Each call records the thread that ran it. */
typedef struct batch_srv {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int released;
    int ncalls;
    pthread_t ran_on[64];
} batch_srv;

static gp_err batch_call(void *ctx, const char *method, gp__gob_value *args, gp__rpc_reply *reply,
                         char *errmsg, size_t errlen)
{
    batch_srv *b = ctx;
    pthread_mutex_lock(&b->mu);
    if (b->ncalls < 64)
        b->ran_on[b->ncalls] = pthread_self();
    b->ncalls++;
    if (strcmp(method, "Plugin.Release") == 0) {
        b->released = 1;
        pthread_cond_broadcast(&b->cv);
    } else if (strcmp(method, "Plugin.Wait") == 0) {
        long long until = gp_test_now_ms() + 5000;
        while (!b->released && gp_test_now_ms() < until) {
            pthread_mutex_unlock(&b->mu);
            usleep(1000);
            pthread_mutex_lock(&b->mu);
        }
        if (!b->released) {
            pthread_mutex_unlock(&b->mu);
            snprintf(errmsg, errlen, "Wait ran alone: Release never ran");
            return GP_ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&b->mu);
    const char *s;
    char err[200];
    if (gp__gob_get_string(args, &s, err, sizeof err) != GP_OK)
        return GP_EINVAL;
    reply->value.type = &gp_gob_string_type;
    reply->value.u.bytes.data = (uint8_t *)strdup(s);
    reply->value.u.bytes.len = strlen(s);
    return GP_OK;
}

static void watch_stream(void *ctx, void (*fn)(void *arg), void *arg)
{
    gp__mux_stream_watch(ctx, fn, arg);
}

typedef struct batch_serve_args {
    gp__mux_stream *st;
    batch_srv *b;
    int workers;
    gp_err result;
    char err[256];
} batch_serve_args;

static void *batch_serve_main(void *arg)
{
    batch_serve_args *a = arg;
    gp__rpc_serve_opts o = {.call = batch_call,
                            .ctx = a->b,
                            .workers = a->workers,
                            .watch = watch_stream,
                            .watch_ctx = a->st};
    a->result = gp__rpc_serve_ex(gp__mux_stream_io(a->st), &o, a->err, sizeof a->err);
    return NULL;
}

/* Writes n requests (method[i], Seq i, string argument) in one stream
 * write, so the server reads them in one go: one batch. */
static void write_batch(gp__mux_stream *st, gp__gob_encoder *enc, const char **methods, int n,
                        uint64_t seq0)
{
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    char err[200];
    for (int i = 0; i < n; i++) {
        gp__gob_value v = str(methods[i]);
        GP_CHECK_ERR(
            gp__gob_put_request(enc, &out, methods[i], seq0 + (uint64_t)i, err, sizeof err), GP_OK);
        GP_CHECK_ERR(gp__gob_encode(enc, &v, &out, err, sizeof err), GP_OK);
    }
    GP_CHECK_ERR(gp__mux_stream_write(st, out.data, out.len, 2000), GP_OK);
    gp__gob_buf_free(&out);
}

/* The responses of one stream (one gob stream: types defined once). */
typedef struct resp_reader {
    gp__mux_stream *st;
    gp__gob_decoder *dec;
    uint8_t buf[65536];
    size_t len;
} resp_reader;

/* Reads n responses within timeout_ms: their Seqs in arrival order, and
 * whether each carried an Error. Returns how many came. */
static int read_responses(resp_reader *r, int n, int timeout_ms, uint64_t *seqs, int *failed)
{
    gp__gob_decoder *dec = r->dec;
    gp__mux_stream *st = r->st;
    uint8_t *buf = r->buf;
    size_t len = r->len;
    int got = 0, want_body = 0;
    long long until = gp_test_now_ms() + timeout_ms;
    char err[200];
    while (got < n && gp_test_now_ms() < until) {
        const uint8_t *body;
        size_t blen, used;
        if (gp__gob_frame(buf, len, 1 << 20, &body, &blen, &used, err, sizeof err) != GP_OK) {
            GP_FAILF("bad frame: %s", err);
            break;
        }
        if (!body) {
            size_t k = 0;
            if (gp__mux_stream_read(st, buf + len, sizeof r->buf - len, 100, &k) == GP_ECLOSED)
                break;
            len += k;
            continue;
        }
        gp__gob_value *v = NULL;
        GP_CHECK_ERR(gp__gob_decode_message(dec, body, blen, &v, err, sizeof err), GP_OK);
        memmove(buf, buf + used, len - used);
        len -= used;
        if (!v)
            continue; /* a type definition */
        if (!want_body) {
            const char *m, *e;
            GP_CHECK_ERR(gp__gob_get_response(v, &m, &seqs[got], &e, err, sizeof err), GP_OK);
            failed[got] = e[0] != 0;
            if (e[0])
                fprintf(stderr, "Seq %llu: %s\n", (unsigned long long)seqs[got], e);
        } else {
            got++;
        }
        want_body = !want_body;
        gp__gob_value_free(v);
    }
    r->len = len;
    return got;
}

/* A threaded server (4 workers, with the watch hook) on a fresh fixture,
 * and what writes its requests and reads its replies. */
typedef struct batch_fixture {
    fixture f;
    batch_srv b;
    batch_serve_args sa;
    pthread_t srv;
    gp__gob_encoder *enc;
    resp_reader rr;
} batch_fixture;

static void batch_up(batch_fixture *t)
{
    fixture_up(&t->f);
    t->b = (batch_srv){.ncalls = 0};
    pthread_mutex_init(&t->b.mu, NULL);
    pthread_cond_init(&t->b.cv, NULL);
    t->sa = (batch_serve_args){.st = t->f.s, .b = &t->b, .workers = 4};
    pthread_create(&t->srv, NULL, batch_serve_main, &t->sa);
    GP_CHECK_ERR(gp__gob_encoder_new(&t->enc), GP_OK);
    t->rr.st = t->f.c;
    t->rr.len = 0;
    GP_CHECK_ERR(gp__gob_decoder_new(NULL, &t->rr.dec), GP_OK);
}

/* EOF to the server, which must end cleanly. */
static void batch_down(batch_fixture *t)
{
    gp__gob_encoder_free(t->enc);
    gp__gob_decoder_free(t->rr.dec);
    gp__mux_stream_close(t->f.c);
    pthread_join(t->srv, NULL);
    GP_CHECK_ERR(t->sa.result, GP_OK);
    fixture_down(&t->f);
    pthread_mutex_destroy(&t->b.mu);
    pthread_cond_destroy(&t->b.cv);
}

/* Requests that arrive together run on the thread that read them, one
 * after the other, with their replies as they finish; a call that waits
 * for a later call of its own batch (Go runs each call on a goroutine, so
 * a peer may rely on that) does not deadlock: after TAKEOVER_NS a follower
 * takes the later call. */
GP_TEST(a_batch_runs_on_the_reading_thread_and_a_blocked_call_does_not_hold_up_the_rest)
{
    for (int round = 0; round < 3; round++) {
        static batch_fixture t;
        batch_up(&t);
        /* 16 quick calls in one write: all answered, mostly by one thread. */
        const char *echo[16];
        for (int i = 0; i < 16; i++)
            echo[i] = "Plugin.Echo";
        write_batch(t.f.c, t.enc, echo, 16, 0);
        uint64_t seqs[16];
        int failed[16];
        GP_CHECK_INT(read_responses(&t.rr, 16, 5000, seqs, failed), ==, 16);
        int same = 0;
        for (int i = 0; i < 16 && i < t.b.ncalls; i++)
            same += pthread_equal(t.b.ran_on[i], t.b.ran_on[0]) != 0;
        /* A follower may take a call that waited 2 ms (a preempted runner on a
         * loaded machine), but the batch as a whole runs inline. */
        GP_CHECK_INT(same, >=, 8);
        /* Wait, then Release, in one write: Wait runs first and blocks. */
        const char *pair[2] = {"Plugin.Wait", "Plugin.Release"};
        long long t0 = gp_test_now_ms();
        write_batch(t.f.c, t.enc, pair, 2, 0);
        GP_CHECK_INT(read_responses(&t.rr, 2, 6000, seqs, failed), ==, 2);
        long long took = gp_test_now_ms() - t0;
        /* Both answered, Wait without its error: Release ran while Wait
         * blocked. Their replies may come in either order (Wait polls every
         * ms and may finish before Release's reply is written). */
        GP_CHECK(seqs[0] + seqs[1] == 1 && seqs[0] != seqs[1]);
        GP_CHECK(!failed[0] && !failed[1]);
        if (took > 1000)
            GP_FAILF("round %d: Release behind a blocked Wait took %lld ms", round, took);
        /* Echo, then Wait as the batch's last call: Echo's reply, held
         * while the batch runs, goes out while Wait still blocks. */
        pthread_mutex_lock(&t.b.mu);
        t.b.released = 0;
        pthread_mutex_unlock(&t.b.mu);
        const char *last[2] = {"Plugin.Echo", "Plugin.Wait"};
        write_batch(t.f.c, t.enc, last, 2, 10);
        GP_CHECK_INT(read_responses(&t.rr, 1, 1000, seqs, failed), ==, 1);
        GP_CHECK_INT(seqs[0], ==, 10);
        const char *release[1] = {"Plugin.Release"};
        write_batch(t.f.c, t.enc, release, 1, 12);
        GP_CHECK_INT(read_responses(&t.rr, 2, 6000, seqs, failed), ==, 2);
        GP_CHECK(!failed[0] && !failed[1]);
        batch_down(&t);
    }
}

/* One call at a time starts no thread besides the serving one (a thread
 * is costly to start); a call that comes while a lone call runs gets a
 * follower at once: Release, written while Wait blocks, is served. */
GP_TEST(lone_calls_start_no_follower_and_a_call_meanwhile_gets_one)
{
    static batch_fixture t;
    batch_up(&t);
    const char *echo[1] = {"Plugin.Echo"};
    uint64_t seqs[2];
    int failed[2];
    int before = gp_test_count_threads();
    for (int i = 0; i < 10; i++) {
        write_batch(t.f.c, t.enc, echo, 1, (uint64_t)i);
        GP_CHECK_INT(read_responses(&t.rr, 1, 5000, seqs, failed), ==, 1);
        GP_CHECK_INT(seqs[0], ==, (uint64_t)i);
        /* The server's thread is back reading before the next one (a call
         * that comes while it still writes the reply starts a follower). */
        usleep((useconds_t)(50 * 1000 * gp_test_scale()));
    }
    GP_CHECK_INT(gp_test_count_threads(), ==, before);
    const char *wait[1] = {"Plugin.Wait"}, *release[1] = {"Plugin.Release"};
    write_batch(t.f.c, t.enc, wait, 1, 20);
    for (int i = 0; i < 500; i++) { /* Wait runs (on the serving thread) */
        pthread_mutex_lock(&t.b.mu);
        int n = t.b.ncalls;
        pthread_mutex_unlock(&t.b.mu);
        if (n == 11)
            break;
        usleep(1000);
    }
    long long t0 = gp_test_now_ms();
    write_batch(t.f.c, t.enc, release, 1, 21);
    GP_CHECK_INT(read_responses(&t.rr, 2, 6000, seqs, failed), ==, 2);
    GP_CHECK(seqs[0] + seqs[1] == 41 && !failed[0] && !failed[1]);
    long long took = gp_test_now_ms() - t0;
    if (took > 1000)
        GP_FAILF("Release behind a lone blocked Wait took %lld ms", took);
    GP_CHECK_INT(gp_test_count_threads(), >, before);
    batch_down(&t);
}

/* Many callers on one client, against the threaded server: each one's
 * calls make progress (no caller starves while the others keep the reading
 * and writing roles busy), and every reply reaches its own caller. */
typedef struct hammer {
    gp__rpc_client *c;
    int id;
    atomic_int *stop;
    int done, bad;
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    char word[32];
    while (!atomic_load(h->stop)) {
        snprintf(word, sizeof word, "w%d.%d", h->id, h->done);
        gp__gob_value v = str(word), *reply = NULL;
        gp_status st;
        if (gp__rpc_call(h->c, "Plugin.Echo", &v, &reply, 5000, &st) != GP_OK) {
            h->bad++;
            break;
        }
        const char *s = NULL;
        char err[200];
        if (gp__gob_get_string(reply, &s, err, sizeof err) != GP_OK || strcmp(s, word) != 0)
            h->bad++;
        gp__gob_value_free(reply);
        h->done++;
    }
    return NULL;
}

GP_TEST(sixteen_callers_on_one_client_all_make_progress)
{
    fixture f;
    fixture_up(&f);
    batch_srv b = {.ncalls = 0};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    batch_serve_args sa = {.st = f.s, .b = &b, .workers = 8};
    pthread_t srv;
    pthread_create(&srv, NULL, batch_serve_main, &sa);
    gp__rpc_client *c;
    GP_CHECK_ERR(gp__rpc_client_new(gp__mux_stream_io(f.c), NULL, &c), GP_OK);
    enum { N = 16 };
    atomic_int stop = 0;
    hammer h[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        h[i] = (hammer){.c = c, .id = i, .stop = &stop};
        pthread_create(&th[i], NULL, hammer_main, &h[i]);
    }
    usleep(1000000);
    atomic_store(&stop, 1);
    int min = 1 << 30, max = 0, total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        GP_CHECK_INT(h[i].bad, ==, 0);
        min = h[i].done < min ? h[i].done : min;
        max = h[i].done > max ? h[i].done : max;
        total += h[i].done;
    }
    fprintf(stderr, "16 callers, 1 s: %d calls, per caller %d..%d\n", total, min, max);
    GP_CHECK_INT(min, >=, 1);
    GP_CHECK_INT(min * 20, >=, max); /* nobody gets less than 1/20 of the busiest */
    gp__rpc_client_free(c);
    pthread_join(srv, NULL);
    fixture_down(&f);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
}

int main(void)
{
    GP_RUN(the_first_call_is_the_captured_control_ping_and_a_captured_reply_decodes);
    GP_RUN(concurrent_calls_are_matched_by_seq_and_errors_carry_go_text);
    GP_RUN(hostile_responses_fail_the_client_with_words);
    GP_RUN(a_call_times_out_and_its_late_reply_is_dropped);
    GP_RUN_TIMEOUT(a_batch_runs_on_the_reading_thread_and_a_blocked_call_does_not_hold_up_the_rest,
                   60);
    GP_RUN_TIMEOUT(lone_calls_start_no_follower_and_a_call_meanwhile_gets_one, 60);
    GP_RUN_TIMEOUT(sixteen_callers_on_one_client_all_make_progress, 60);
    return gp_test_done();
}
