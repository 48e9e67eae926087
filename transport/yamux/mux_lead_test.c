/* Who reads the socket (mux_session.c, "who reads the socket"): a waiting
 * caller reads it itself, hands the role over when its reply came or its
 * time ran out, and the background reader serves the session while nobody
 * waits. The client session runs over a spy stream that notes which thread
 * did each read of the socket (a thread-local tag; 0 is the background
 * reader) and counts writev calls. */
#include "transport/yamux/mux_session.h"
#include "transport/yamux/mux_frame.h"
#include "transport/testing/gp_test.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static _Thread_local int who; /* this thread's tag; 0 = not a test thread */

typedef struct spy {
    gp__stream base;
    gp__stream *inner;
    int last_reader; /* tag of the thread whose read last returned bytes */
    int reading;     /* tag of the thread inside read now, -1 none */
    int writevs;
    int reads_by[8]; /* reads that returned bytes, per tag */
} spy;

static gp_err spy_read(gp__stream *io, void *buf, size_t cap, int timeout_ms, size_t *n, char *why,
                       size_t whylen)
{
    spy *s = (spy *)io;
    __atomic_store_n(&s->reading, who, __ATOMIC_SEQ_CST);
    gp_err e = gp__stream_read(s->inner, buf, cap, timeout_ms, n, why, whylen);
    __atomic_store_n(&s->reading, -1, __ATOMIC_SEQ_CST);
    if (e == GP_OK && *n > 0) {
        __atomic_store_n(&s->last_reader, who, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&s->reads_by[who], 1, __ATOMIC_SEQ_CST);
    }
    return e;
}

static gp_err spy_writev(gp__stream *io, struct iovec *iov, int iovcnt, int timeout_ms, char *why,
                         size_t whylen)
{
    spy *s = (spy *)io;
    __atomic_add_fetch(&s->writevs, 1, __ATOMIC_SEQ_CST);
    return gp__stream_writev(s->inner, iov, iovcnt, timeout_ms, why, whylen);
}

static void spy_close_write(gp__stream *io)
{
    gp__stream_close_write(((spy *)io)->inner);
}

static void spy_shutdown(gp__stream *io)
{
    gp__stream_shutdown(((spy *)io)->inner);
}

static void spy_close(gp__stream *io)
{
    gp__stream_close(((spy *)io)->inner);
}

static const gp__stream_ops spy_ops = {spy_read, spy_writev, spy_close_write, spy_shutdown,
                                       spy_close};

static const gp__mux_config quiet = {.keepalive_interval_ms = -1};

/* A client session over a spy on sv[0]; the peer socket in *peer. */
static gp__mux_session *spied_client(spy *sp, int *peer)
{
    int sv[2];
    GP_CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    memset(sp, 0, sizeof *sp);
    sp->base.ops = &spy_ops;
    sp->reading = -1;
    GP_CHECK_ERR(gp__stream_fd_new(sv[0], &sp->inner), GP_OK);
    gp__mux_session *c = NULL;
    GP_CHECK_ERR(gp__mux_session_new_stream(&sp->base, GP_MUX_CLIENT, &quiet, &c), GP_OK);
    *peer = sv[1];
    return c;
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

/* Waits until the thread tagged `tag` is inside the socket read. */
static int wait_reading_ms(spy *sp, int tag, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (__atomic_load_n(&sp->reading, __ATOMIC_SEQ_CST) == tag)
            return 1;
        sleep_ms(1);
    }
    return 0;
}

static int wait_reading(spy *sp, int tag)
{
    return wait_reading_ms(sp, tag, 3000);
}

static void raw_data(int fd, uint32_t id, const char *text)
{
    uint8_t b[12 + 64];
    size_t n = strlen(text);
    gp__mux_header h = {0, GP_MUX_TYPE_DATA, 0, id, (uint32_t)n};
    gp__mux_header_encode(&h, b);
    memcpy(b + 12, text, n);
    GP_CHECK_INT(send(fd, b, 12 + n, MSG_NOSIGNAL), ==, (long long)(12 + n));
}

/* Reads frame headers from the raw side until one of `type`; 0 if none
 * within timeout_ms. Payloads are skipped. */
static int raw_expect(int fd, uint8_t type, gp__mux_header *h, int timeout_ms)
{
    for (;;) {
        uint8_t b[12];
        size_t got = 0;
        while (got < 12) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, timeout_ms) <= 0)
                return 0;
            ssize_t n = recv(fd, b + got, 12 - got, 0);
            if (n <= 0)
                return 0;
            got += (size_t)n;
        }
        gp__mux_header_decode(b, h);
        for (uint32_t left = h->type == GP_MUX_TYPE_DATA ? h->length : 0; left > 0;) {
            char sink[256];
            ssize_t n = recv(fd, sink, left < sizeof sink ? left : sizeof sink, 0);
            if (n <= 0)
                return 0;
            left -= (uint32_t)n;
        }
        if (h->type == type)
            return 1;
    }
}

typedef struct caller {
    gp__mux_stream *st;
    int tag, timeout_ms;
    gp_err err;
    char got[64];
    int reader; /* the spy's last_reader right after this read returned */
} caller;

static void *caller_main(void *arg)
{
    caller *c = arg;
    who = c->tag;
    size_t n = 0;
    c->err = gp__mux_stream_read(c->st, c->got, sizeof c->got - 1, c->timeout_ms, &n);
    c->got[n] = 0;
    return NULL;
}

/* Starts c on its own thread, reading as the socket's leader. An idle
 * session's socket is the background reader's, blocked in its read: a
 * caller arriving then waits as a follower, and the background reader
 * gives the role up once it delivered something. So: until c leads, hand
 * it a warm-up frame and start it again. */
static void start_leading(spy *sp, int peer, caller *c, pthread_t *t)
{
    char saved[64];
    memcpy(saved, c->got, sizeof saved);
    for (int i = 0; i < 50; i++) {
        pthread_create(t, NULL, caller_main, c);
        if (wait_reading_ms(sp, c->tag, 100))
            return;
        raw_data(peer, gp__mux_stream_id(c->st), "w");
        pthread_join(*t, NULL);
        GP_CHECK_ERR(c->err, GP_OK);
        GP_CHECK_STR(c->got, "w");
    }
    GP_CHECK(!"the caller never became the leader");
}

GP_TEST(a_lone_caller_reads_its_own_reply_on_its_own_thread)
{
    spy sp;
    int peer;
    gp__mux_session *c = spied_client(&sp, &peer);
    gp__mux_session *s = NULL;
    GP_CHECK_ERR(gp__mux_session_new(peer, GP_MUX_SERVER, &quiet, &s), GP_OK);
    gp__mux_stream *a, *b;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    gp__mux_stream_set_prompt(a, 1);
    GP_CHECK_ERR(gp__mux_accept(s, 2000, &b), GP_OK);
    who = 1;
    int rounds = 200;
    for (int i = 0; i < rounds; i++) {
        char msg[32], echo[32];
        snprintf(msg, sizeof msg, "ping %03d", i);
        GP_CHECK_ERR(gp__mux_stream_write(a, msg, 8, 2000), GP_OK);
        /* The peer answers from this thread too: its read and write. */
        GP_CHECK_ERR(gp__mux_stream_read_full(b, echo, 8, 2000), GP_OK);
        GP_CHECK_ERR(gp__mux_stream_write(b, echo, 8, 2000), GP_OK);
        GP_CHECK_ERR(gp__mux_stream_read_full(a, echo, 8, 2000), GP_OK);
        GP_CHECK(memcmp(msg, echo, 8) == 0);
    }
    who = 0;
    /* Before leader/follower every read was the background reader's (0).
     * Most are now the caller's own; a slow round trip (over the 2 ms
     * grace, on a loaded machine or under TSan) may let the background
     * reader take one. */
    GP_CHECK_INT(__atomic_load_n(&sp.reads_by[1], __ATOMIC_SEQ_CST), >=, rounds / 2);
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_session_free(c);
    gp__mux_session_free(s);
}

GP_TEST(a_reply_that_arrives_while_another_caller_leads_is_handed_to_its_caller)
{
    spy sp;
    int peer;
    gp__mux_session *c = spied_client(&sp, &peer);
    gp__mux_stream *a, *b;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    GP_CHECK_ERR(gp__mux_open(c, &b), GP_OK);
    gp__mux_stream_set_prompt(a, 1);
    gp__mux_stream_set_prompt(b, 1);
    caller ca = {a, 1, 5000, GP_OK, "", 0}, cb = {b, 2, 5000, GP_OK, "", 0};
    pthread_t ta, tb;
    start_leading(&sp, peer, &ca, &ta); /* a leads */
    pthread_create(&tb, NULL, caller_main, &cb);
    sleep_ms(50); /* b waits as a follower */
    raw_data(peer, 3, "for b");
    pthread_join(tb, NULL);
    GP_CHECK_ERR(cb.err, GP_OK);
    GP_CHECK_STR(cb.got, "for b");
    GP_CHECK_INT(__atomic_load_n(&sp.last_reader, __ATOMIC_SEQ_CST), ==, 1); /* a read it */
    GP_CHECK(wait_reading(&sp, 1)); /* and still leads for its own */
    raw_data(peer, 1, "for a");
    pthread_join(ta, NULL);
    GP_CHECK_ERR(ca.err, GP_OK);
    GP_CHECK_STR(ca.got, "for a");
    GP_CHECK_INT(__atomic_load_n(&sp.last_reader, __ATOMIC_SEQ_CST), ==, 1);
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_session_free(c);
    close(peer);
}

GP_TEST(a_caller_that_times_out_while_leading_hands_the_socket_to_the_next)
{
    spy sp;
    int peer;
    gp__mux_session *c = spied_client(&sp, &peer);
    gp__mux_stream *a, *b;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    GP_CHECK_ERR(gp__mux_open(c, &b), GP_OK);
    gp__mux_stream_set_prompt(a, 1);
    gp__mux_stream_set_prompt(b, 1);
    caller ca = {a, 1, 2000, GP_OK, "", 0}, cb = {b, 2, 10000, GP_OK, "", 0};
    pthread_t ta, tb;
    start_leading(&sp, peer, &ca, &ta);
    pthread_create(&tb, NULL, caller_main, &cb);
    pthread_join(ta, NULL);
    GP_CHECK_ERR(ca.err, GP_ETIMEDOUT);
    /* b took the socket over at once (not the background reader, 2 ms
     * later): it is the one inside read now. */
    GP_CHECK(wait_reading(&sp, 2));
    raw_data(peer, 3, "late for b");
    pthread_join(tb, NULL);
    GP_CHECK_ERR(cb.err, GP_OK);
    GP_CHECK_STR(cb.got, "late for b");
    GP_CHECK_INT(__atomic_load_n(&sp.last_reader, __ATOMIC_SEQ_CST), ==, 2);
    /* The timed-out stream still works: its data waits for the next read. */
    raw_data(peer, 1, "for a");
    who = 1;
    char buf[8];
    GP_CHECK_ERR(gp__mux_stream_read_full(a, buf, 5, 2000), GP_OK);
    who = 0;
    GP_CHECK(memcmp(buf, "for a", 5) == 0);
    gp__mux_stream_free(a);
    gp__mux_stream_free(b);
    gp__mux_session_free(c);
    close(peer);
}

typedef struct many {
    gp__mux_session *c;
    int tag, ok;
} many;

static void *many_main(void *arg)
{
    many *m = arg;
    who = m->tag;
    gp__mux_stream *st = NULL;
    if (gp__mux_open(m->c, &st) != GP_OK)
        return NULL;
    gp__mux_stream_set_prompt(st, 1);
    int ok = 1;
    for (int i = 0; i < 300 && ok; i++) {
        char msg[24], echo[24];
        int n = snprintf(msg, sizeof msg, "t%d call %d", m->tag, i);
        ok = gp__mux_stream_write(st, msg, (size_t)n, 5000) == GP_OK &&
             gp__mux_stream_read_full(st, echo, (size_t)n, 5000) == GP_OK &&
             memcmp(msg, echo, (size_t)n) == 0;
    }
    gp__mux_stream_free(st);
    m->ok = ok;
    return NULL;
}

/* The server's side: echo every accepted stream on its own thread (these
 * readers are not prompt: they wait for requests). */
static void *echo_stream(void *arg)
{
    gp__mux_stream *st = arg;
    char b[256];
    size_t n;
    while (gp__mux_stream_read(st, b, sizeof b, -1, &n) == GP_OK && n > 0)
        if (gp__mux_stream_write(st, b, n, 5000) != GP_OK)
            break;
    gp__mux_stream_free(st);
    return NULL;
}

static void *echo_server(void *arg)
{
    gp__mux_session *s = arg;
    pthread_t t[16];
    int n = 0;
    gp__mux_stream *st;
    while (n < 16 && gp__mux_accept(s, -1, &st) == GP_OK)
        pthread_create(&t[n++], NULL, echo_stream, st);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return NULL;
}

GP_TEST(many_concurrent_callers_on_their_own_streams_each_get_their_replies)
{
    spy sp;
    int peer;
    gp__mux_session *c = spied_client(&sp, &peer);
    gp__mux_session *s = NULL;
    GP_CHECK_ERR(gp__mux_session_new(peer, GP_MUX_SERVER, &quiet, &s), GP_OK);
    pthread_t srv;
    pthread_create(&srv, NULL, echo_server, s);
    many m[7];
    pthread_t t[7];
    for (int i = 0; i < 7; i++) {
        m[i] = (many){c, i + 1, 0};
        pthread_create(&t[i], NULL, many_main, &m[i]);
    }
    int readers = 0;
    for (int i = 0; i < 7; i++) {
        pthread_join(t[i], NULL);
        GP_CHECK(m[i].ok);
        readers += __atomic_load_n(&sp.reads_by[i + 1], __ATOMIC_SEQ_CST) > 0;
    }
    GP_CHECK_INT(readers, >=, 2); /* the role moved between callers */
    GP_CHECK_STR(gp__mux_session_error(c), "");
    GP_CHECK_STR(gp__mux_session_error(s), "");
    gp__mux_session_close(s); /* ends the accept loop and the echo readers */
    pthread_join(srv, NULL);
    gp__mux_session_free(c);
    gp__mux_session_free(s);
}

GP_TEST(with_no_caller_waiting_the_background_reader_serves_the_session)
{
    spy sp;
    int peer;
    gp__mux_session *c = spied_client(&sp, &peer);
    gp__mux_stream *a;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    gp__mux_header h;
    GP_CHECK(raw_expect(peer, GP_MUX_TYPE_WINDOW_UPDATE, &h, 2000)); /* a's SYN */
    /* A ping, data for a stream nobody reads, a SYN: nobody waits. */
    uint8_t ping[12];
    gp__mux_header_encode(&(gp__mux_header){0, GP_MUX_TYPE_PING, GP_MUX_FLAG_SYN, 0, 77}, ping);
    GP_CHECK_INT(send(peer, ping, 12, MSG_NOSIGNAL), ==, 12);
    GP_CHECK(raw_expect(peer, GP_MUX_TYPE_PING, &h, 2000));
    GP_CHECK_INT(h.flags, ==, GP_MUX_FLAG_ACK);
    GP_CHECK_INT(h.length, ==, 77);
    raw_data(peer, 1, "buffered");
    sleep_ms(100);
    GP_CHECK_INT(__atomic_load_n(&sp.last_reader, __ATOMIC_SEQ_CST), ==, 0);
    char buf[16];
    GP_CHECK_ERR(gp__mux_stream_read_full(a, buf, 8, 0), GP_OK); /* already there */
    GP_CHECK(memcmp(buf, "buffered", 8) == 0);
    gp__mux_stream_free(a);
    gp__mux_session_free(c);
    close(peer);
}

GP_TEST(a_reader_that_is_not_prompt_gives_the_socket_to_the_traffic)
{
    spy sp;
    int peer;
    gp__mux_session *c = spied_client(&sp, &peer);
    gp__mux_stream *idle, *a;
    GP_CHECK_ERR(gp__mux_open(c, &idle), GP_OK); /* like a stdio stream: not prompt */
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    gp__mux_stream_set_prompt(a, 1);
    caller ci = {idle, 3, 20000, GP_OK, "", 0};
    pthread_t ti;
    start_leading(&sp, peer, &ci, &ti); /* the idle reader leads */
    /* a's first reply is read by the idle reader, which then steps back:
     * a's later replies are read by a's caller, never by it again. */
    who = 1;
    for (int i = 0; i < 5; i++) {
        caller ca = {a, 1, 5000, GP_OK, "", 0};
        pthread_t ta;
        pthread_create(&ta, NULL, caller_main, &ca);
        sleep_ms(20);
        raw_data(peer, 3, "reply");
        pthread_join(ta, NULL);
        GP_CHECK_ERR(ca.err, GP_OK);
        GP_CHECK_STR(ca.got, "reply");
        if (i == 0)
            GP_CHECK_INT(__atomic_load_n(&sp.last_reader, __ATOMIC_SEQ_CST), ==, 3);
    }
    who = 0;
    GP_CHECK_INT(__atomic_load_n(&sp.reads_by[3], __ATOMIC_SEQ_CST), ==, 1);
    GP_CHECK_INT(__atomic_load_n(&sp.reads_by[1], __ATOMIC_SEQ_CST), >=, 1);
    /* and the idle reader still gets its own data */
    raw_data(peer, 1, "line");
    pthread_join(ti, NULL);
    GP_CHECK_ERR(ci.err, GP_OK);
    GP_CHECK_STR(ci.got, "line");
    gp__mux_stream_free(idle);
    gp__mux_stream_free(a);
    gp__mux_session_free(c);
    close(peer);
}

GP_TEST(freeing_the_session_while_a_caller_leads_wakes_it_and_waits_for_it)
{
    spy sp;
    int peer;
    gp__mux_session *c = spied_client(&sp, &peer);
    gp__mux_stream *a;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    gp__mux_stream_set_prompt(a, 1);
    caller ca = {a, 1, -1, GP_OK, "", 0};
    pthread_t ta;
    start_leading(&sp, peer, &ca, &ta);
    gp__mux_session_free(c);
    pthread_join(ta, NULL);
    GP_CHECK_ERR(ca.err, GP_ECLOSED);
    gp__mux_stream_free(a); /* outlives the session, as documented */
    close(peer);
}

GP_TEST(a_data_frame_goes_out_in_one_writev)
{
    spy sp;
    int peer;
    gp__mux_session *c = spied_client(&sp, &peer);
    gp__mux_stream *a;
    GP_CHECK_ERR(gp__mux_open(c, &a), GP_OK);
    int before = __atomic_load_n(&sp.writevs, __ATOMIC_SEQ_CST);
    char big[1000];
    memset(big, 'x', sizeof big);
    GP_CHECK_ERR(gp__mux_stream_write(a, big, sizeof big, 2000), GP_OK);
    GP_CHECK_INT(__atomic_load_n(&sp.writevs, __ATOMIC_SEQ_CST) - before, ==, 1);
    gp__mux_header h;
    GP_CHECK(raw_expect(peer, GP_MUX_TYPE_DATA, &h, 2000));
    GP_CHECK_INT(h.length, ==, 1000);
    gp__mux_stream_free(a);
    gp__mux_session_free(c);
    close(peer);
}

int main(void)
{
    GP_RUN(a_lone_caller_reads_its_own_reply_on_its_own_thread);
    GP_RUN(a_reply_that_arrives_while_another_caller_leads_is_handed_to_its_caller);
    GP_RUN(a_caller_that_times_out_while_leading_hands_the_socket_to_the_next);
    GP_RUN(many_concurrent_callers_on_their_own_streams_each_get_their_replies);
    GP_RUN(with_no_caller_waiting_the_background_reader_serves_the_session);
    GP_RUN(a_reader_that_is_not_prompt_gives_the_socket_to_the_traffic);
    GP_RUN(freeing_the_session_while_a_caller_leads_wakes_it_and_waits_for_it);
    GP_RUN(a_data_frame_goes_out_in_one_writev);
    return gp_test_done();
}
