/* gob and net/rpc against Go's encoding/gob and net/rpc (over Go's yamux):
 * values Go encodes decode here, values encoded here decode in Go, a C
 * client calls a Go net/rpc server and a Go client calls a C server.
 * argv[1] is the Go peer (interop/netrpc_peer.go). */
#include "transport/wire/netrpc/gob/gob_rpc.h"
#include "transport/wire/netrpc/rpc/rpc_codec.h"
#include "transport/yamux/mux_session.h"
#include "transport/testing/gp_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *peer_path;

/* ---- the Go test types, described for C ---- */

static const gp_gob_field inner_fields[] = {{"N", &gp_gob_int_type, 0}};
static const gp_gob_type inner_type = {
    .kind = GP_GOB_STRUCT, .name = "Inner", .fields = inner_fields, .nfields = 1};
static const gp_gob_type strings_type = {
    .kind = GP_GOB_SLICE, .name = "[]string", .elem = &gp_gob_string_type};
static const gp_gob_type deep_type = {
    .kind = GP_GOB_SLICE, .name = "[][]string", .elem = &strings_type};
static const gp_gob_type smap_type = {.kind = GP_GOB_MAP,
                                      .name = "map[string]string",
                                      .key = &gp_gob_string_type,
                                      .elem = &gp_gob_string_type};
static const gp_gob_type imap_type = {.kind = GP_GOB_MAP,
                                      .name = "map[string]int",
                                      .key = &gp_gob_string_type,
                                      .elem = &gp_gob_int_type};
static const gp_gob_type arr_type = {
    .kind = GP_GOB_ARRAY, .name = "[3]int", .elem = &gp_gob_int_type, .len = 3};
static const gp_gob_type inners_type = {
    .kind = GP_GOB_SLICE, .name = "[]main.Inner", .elem = &inner_type};
static const gp_gob_field args_fields[] = {
    {"Name", &gp_gob_string_type, 0}, {"Tags", &strings_type, 0},      {"Meta", &smap_type, 0},
    {"In", &inner_type, 0},           {"Data", &gp_gob_bytes_type, 0}, {"Neg", &gp_gob_int_type, 0},
    {"F", &gp_gob_float_type, 0},     {"OK", &gp_gob_bool_type, 0},
};
static const gp_gob_type args_type = {
    .kind = GP_GOB_STRUCT, .name = "Args", .fields = args_fields, .nfields = 8};
static const gp_gob_field rich_fields[] = {
    {"Any", &gp_gob_interface_type, 0},
    {"Nil", &gp_gob_interface_type, 0},
    {"Arr", &arr_type, 0},
    {"C", &gp_gob_complex_type, 0},
    {"F32", &gp_gob_float_type, 0},
    {"U8", &gp_gob_uint_type, 0},
    {"Nested", &inners_type, 0},
    {"M", &imap_type, 0},
    {"Deep", &deep_type, 0},
};
static const gp_gob_type rich_type = {
    .kind = GP_GOB_STRUCT, .name = "Rich", .fields = rich_fields, .nfields = 9};

static gp__gob_value sv(const char *s)
{
    gp__gob_value v = {.type = &gp_gob_string_type};
    v.u.bytes.data = (uint8_t *)s;
    v.u.bytes.len = strlen(s);
    return v;
}

static gp__gob_value iv(int64_t i)
{
    return (gp__gob_value){.type = &gp_gob_int_type, .u.i = i};
}

static gp__gob_value list(const gp_gob_type *t, gp__gob_value *items, size_t n)
{
    gp__gob_value v = {.type = t};
    v.u.list.items = items;
    v.u.list.len = n;
    return v;
}

/* Args{"x",["a","b"],{"k":"v"},{2},[1,2],-1,17.0,true}: storage in *st. */
typedef struct args_storage {
    gp__gob_value tags[2], kv[2], n, items[8], v;
} args_storage;

static const gp__gob_value *make_args(args_storage *s)
{
    s->tags[0] = sv("a");
    s->tags[1] = sv("b");
    s->kv[0] = sv("k");
    s->kv[1] = sv("v");
    s->n = iv(2);
    s->items[0] = sv("x");
    s->items[1] = list(&strings_type, s->tags, 2);
    s->items[2] = list(&smap_type, s->kv, 1);
    s->items[3] = list(&inner_type, &s->n, 1);
    s->items[4] = (gp__gob_value){.type = &gp_gob_bytes_type};
    s->items[4].u.bytes.data = (uint8_t *)"\1\2";
    s->items[4].u.bytes.len = 2;
    s->items[5] = iv(-1);
    s->items[6] = (gp__gob_value){.type = &gp_gob_float_type, .u.f = 17.0};
    s->items[7] = (gp__gob_value){.type = &gp_gob_bool_type, .u.b = 1};
    s->v = list(&args_type, s->items, 8);
    return &s->v;
}

static void check_args(const gp__gob_value *v, int64_t neg)
{
    GP_CHECK(v && v->type && v->type->kind == GP_GOB_STRUCT);
    const gp__gob_value *f = gp__gob_field(v, "Name");
    GP_CHECK(f && f->u.bytes.len == 1 && f->u.bytes.data[0] == 'x');
    f = gp__gob_field(v, "Tags");
    GP_CHECK(f && f->u.list.len == 2 && strcmp((char *)f->u.list.items[0].u.bytes.data, "a") == 0);
    f = gp__gob_field(v, "Meta");
    GP_CHECK(f && f->u.list.len == 1 && strcmp((char *)f->u.list.items[1].u.bytes.data, "v") == 0);
    f = gp__gob_field(gp__gob_field(v, "In"), "N");
    GP_CHECK(f && f->u.i == 2);
    f = gp__gob_field(v, "Data");
    GP_CHECK(f && f->u.bytes.len == 2 && f->u.bytes.data[0] == 1);
    f = gp__gob_field(v, "Neg");
    GP_CHECK(f && f->u.i == neg);
    f = gp__gob_field(v, "F");
    GP_CHECK(f && f->u.f == 17.0);
    f = gp__gob_field(v, "OK");
    GP_CHECK(f && f->u.b == 1);
}

/* ---- gob both ways through pipes ---- */

GP_TEST(values_encoded_by_go_decode_here)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' gob-emit", peer_path);
    FILE *p = popen(cmd, "r");
    GP_CHECK(p != NULL);
    if (!p)
        return;
    static uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, p);
    GP_CHECK_INT(pclose(p), ==, 0);
    gp__gob_decoder *d;
    gp__gob_decoder_new(NULL, &d);
    gp__gob_value *vals[2] = {NULL, NULL};
    size_t nv = 0, off = 0;
    char err[256];
    while (off < len && nv < 2) {
        const uint8_t *body;
        size_t blen, used;
        if (gp__gob_frame(buf + off, len - off, 1 << 20, &body, &blen, &used, err, sizeof err) !=
                GP_OK ||
            !body) {
            GP_FAILF("framing at %zu: %s", off, err);
            break;
        }
        gp__gob_value *v = NULL;
        if (gp__gob_decode_message(d, body, blen, &v, err, sizeof err) != GP_OK) {
            GP_FAILF("decode at %zu: %s", off, err);
            break;
        }
        if (v)
            vals[nv++] = v;
        off += used;
    }
    GP_CHECK_INT(nv, ==, 2);
    if (nv == 2) {
        check_args(vals[0], -1);
        const gp__gob_value *r = vals[1];
        const gp__gob_value *any = gp__gob_field(r, "Any");
        GP_CHECK(any && any->u.iface.name && strcmp(any->u.iface.name, "main.Inner") == 0);
        GP_CHECK(any && any->u.iface.value && gp__gob_field(any->u.iface.value, "N")->u.i == 5);
        const gp__gob_value *nil = gp__gob_field(r, "Nil");
        GP_CHECK(nil && nil->u.iface.name == NULL);
        const gp__gob_value *arr = gp__gob_field(r, "Arr");
        GP_CHECK(arr && arr->type->kind == GP_GOB_ARRAY && arr->u.list.len == 3 &&
                 arr->u.list.items[1].u.i == -2);
        const gp__gob_value *c = gp__gob_field(r, "C");
        GP_CHECK(c && c->u.c[0] == 1.5 && c->u.c[1] == -2);
        GP_CHECK(gp__gob_field(r, "F32")->u.f == 0.25);
        GP_CHECK(gp__gob_field(r, "U8")->u.u == 200);
        const gp__gob_value *nested = gp__gob_field(r, "Nested");
        GP_CHECK(nested && nested->u.list.len == 3 &&
                 gp__gob_field(&nested->u.list.items[2], "N")->u.i == 3);
        const gp__gob_value *m = gp__gob_field(r, "M");
        GP_CHECK(m && m->u.list.len == 1 && m->u.list.items[1].u.i == 1);
        const gp__gob_value *deep = gp__gob_field(r, "Deep");
        GP_CHECK(deep && deep->u.list.len == 3 && deep->u.list.items[2].u.list.len == 2);
    }
    for (size_t i = 0; i < nv; i++)
        gp__gob_value_free(vals[i]);
    gp__gob_decoder_free(d);
}

GP_TEST(values_encoded_here_decode_in_go)
{
    args_storage as;
    gp__gob_value inner_n = iv(5), inner = list(&inner_type, &inner_n, 1);
    gp__gob_value arr[3] = {iv(1), iv(-2), iv(3)};
    gp__gob_value ns[3] = {iv(1), iv(0), iv(3)};
    gp__gob_value nested[3] = {list(&inner_type, &ns[0], 1), list(&inner_type, &ns[1], 1),
                               list(&inner_type, &ns[2], 1)};
    gp__gob_value m[2] = {sv("one"), iv(1)};
    gp__gob_value d0[1] = {sv("p")}, d2[2] = {sv("q"), sv("r")};
    gp__gob_value deep[3] = {list(&strings_type, d0, 1), list(&strings_type, NULL, 0),
                             list(&strings_type, d2, 2)};
    gp__gob_value ri[9];
    memset(ri, 0, sizeof ri);
    ri[0].type = &gp_gob_interface_type;
    ri[0].u.iface.name = "main.Inner";
    ri[0].u.iface.value = &inner;
    ri[1].type = &gp_gob_interface_type;
    ri[2] = list(&arr_type, arr, 3);
    ri[3] = (gp__gob_value){.type = &gp_gob_complex_type, .u.c = {1.5, -2}};
    ri[4] = (gp__gob_value){.type = &gp_gob_float_type, .u.f = 0.25};
    ri[5] = (gp__gob_value){.type = &gp_gob_uint_type, .u.u = 200};
    ri[6] = list(&inners_type, nested, 3);
    ri[7] = list(&imap_type, m, 1);
    ri[8] = list(&deep_type, deep, 3);
    gp__gob_value rich = list(&rich_type, ri, 9);

    gp__gob_encoder *e;
    gp__gob_encoder_new(&e);
    gp__gob_buf out;
    gp__gob_buf_init(&out, 0);
    char err[256];
    GP_CHECK_ERR(gp__gob_encode(e, make_args(&as), &out, err, sizeof err), GP_OK);
    GP_CHECK_ERR(gp__gob_encode(e, &rich, &out, err, sizeof err), GP_OK);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' gob-check", peer_path);
    FILE *p = popen(cmd, "w");
    GP_CHECK(p != NULL);
    if (p) {
        GP_CHECK_INT(fwrite(out.data, 1, out.len, p), ==, out.len);
        GP_CHECK_INT(pclose(p), ==, 0);
    }
    gp__gob_buf_free(&out);
    gp__gob_encoder_free(e);
}

/* ---- net/rpc over yamux against Go ---- */

static pid_t start_peer(const char *mode, int *fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(sv[1], 3);
        execl(peer_path, "netrpc_peer", mode, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    *fd = sv[0];
    return pid;
}

typedef struct caller {
    gp__rpc_client *c;
    int id, ok;
} caller;

static void *echo_caller(void *arg)
{
    caller *k = arg;
    k->ok = 1;
    for (int i = 0; i < 50; i++) {
        char in[64];
        snprintf(in, sizeof in, "caller %d call %d", k->id, i);
        gp__gob_value a = sv(in), *r = NULL;
        gp_status st;
        const char *s = NULL;
        char err[128];
        if (gp__rpc_call(k->c, "Plugin.Echo", &a, &r, 5000, &st) != GP_OK ||
            gp__gob_get_string(r, &s, err, sizeof err) != GP_OK || strcmp(s, in) != 0)
            k->ok = 0;
        gp__gob_value_free(r);
    }
    return NULL;
}

GP_TEST(c_client_calls_a_go_net_rpc_server)
{
    int fd;
    pid_t pid = start_peer("rpc-server", &fd);
    gp__mux_session *s;
    GP_CHECK_ERR(gp__mux_session_new(fd, GP_MUX_CLIENT, NULL, &s), GP_OK);
    gp__mux_stream *st;
    GP_CHECK_ERR(gp__mux_open(s, &st), GP_OK);
    gp__rpc_client *c;
    GP_CHECK_INT(gp__rpc_client_new(gp__mux_stream_io(st), NULL, &c), ==, GP_OK);

    caller k[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        k[i] = (caller){c, i, 0};
        pthread_create(&t[i], NULL, echo_caller, &k[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        GP_CHECK(k[i].ok);
    }
    gp_status status;
    char err[256];
    gp__gob_value *r = NULL;
    /* 1 MiB through the windows both ways. */
    size_t big = 1 << 20;
    char *b = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        b[i] = (char)('a' + i % 26);
    b[big] = '\0';
    gp__gob_value a = sv(b);
    GP_CHECK_ERR(gp__rpc_call(c, "Plugin.Echo", &a, &r, 10000, &status), GP_OK);
    GP_CHECK(r && r->u.bytes.len == big && memcmp(r->u.bytes.data, b, big) == 0);
    gp__gob_value_free(r);
    free(b);
    a = sv("x");
    GP_CHECK_ERR(gp__rpc_call(c, "Plugin.Fail", &a, &r, 5000, &status), GP_EREMOTE);
    GP_CHECK_STR(status.msg, "boom: x");
    GP_CHECK_ERR(gp__rpc_call(c, "Plugin.Nope", &a, &r, 5000, &status), GP_EREMOTE);
    GP_CHECK_STR(status.msg, "rpc: can't find method Plugin.Nope");
    GP_CHECK_ERR(gp__rpc_call(c, "Nope.Nope", &a, &r, 5000, &status), GP_EREMOTE);
    GP_CHECK_STR(status.msg, "rpc: can't find service Nope.Nope");
    args_storage as;
    GP_CHECK_ERR(gp__rpc_call(c, "Plugin.Args", make_args(&as), &r, 5000, &status), GP_OK);
    check_args(r, -2);
    gp__gob_value_free(r);
    /* The basic example's shape: interface{} argument (nil), string result. */
    gp__gob_value nil_iface = {.type = &gp_gob_interface_type};
    GP_CHECK_ERR(gp__rpc_call(c, "Plugin.Greet", &nil_iface, &r, 5000, &status), GP_OK);
    const char *s_out = NULL;
    GP_CHECK_ERR(gp__gob_get_string(r, &s_out, err, sizeof err), GP_OK);
    GP_CHECK_STR(s_out, "Hello!");
    gp__gob_value_free(r);

    gp__rpc_client_free(c);
    gp__mux_stream_free(st);
    gp__mux_session_free(s);
    GP_CHECK_INT(gp_test_reap(pid, 5000), ==, 0);
}

static gp_err c_plugin(void *ctx, const char *method, const gp__gob_value *args,
                       gp__gob_value *reply, char *errmsg, size_t errlen)
{
    (void)ctx;
    char err[200];
    const char *s;
    if (strcmp(method, "Plugin.Echo") == 0 || strcmp(method, "Plugin.Fail") == 0) {
        if (gp__gob_get_string(args, &s, err, sizeof err) != GP_OK) {
            snprintf(errmsg, errlen, "%s", err);
            return GP_EINVAL;
        }
        if (method[7] == 'F') {
            snprintf(errmsg, errlen, "boom: %s", s);
            return GP_EREMOTE;
        }
        return gp__gob_value_copy(reply, args);
    }
    if (strcmp(method, "Plugin.Args") == 0) {
        gp_err e = gp__gob_value_copy(reply, args);
        gp__gob_value *neg = (gp__gob_value *)gp__gob_field(reply, "Neg");
        if (e == GP_OK && neg)
            neg->u.i--;
        return e;
    }
    if (strcmp(method, "Plugin.Greet") == 0) {
        reply->type = &gp_gob_string_type;
        reply->u.bytes.data = (uint8_t *)strdup("Hello!");
        reply->u.bytes.len = 6;
        return GP_OK;
    }
    snprintf(errmsg, errlen, "rpc: can't find method %s", method);
    return GP_ENOTFOUND;
}

GP_TEST(go_net_rpc_client_calls_a_c_server)
{
    int fd;
    pid_t pid = start_peer("rpc-client", &fd);
    gp__mux_session *s;
    GP_CHECK_ERR(gp__mux_session_new(fd, GP_MUX_SERVER, NULL, &s), GP_OK);
    gp__mux_stream *st;
    GP_CHECK_ERR(gp__mux_accept(s, 10000, &st), GP_OK);
    char err[256];
    gp_err e = gp__rpc_serve(gp__mux_stream_io(st), NULL, c_plugin, NULL, err, sizeof err);
    if (e != GP_OK)
        GP_FAILF("serve: %s: %s", gp_strerror(e), err);
    GP_CHECK_INT(gp_test_reap(pid, 10000), ==, 0);
    gp__mux_stream_free(st);
    gp__mux_session_free(s);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: netrpc_interop_test PATH_TO_NETRPC_PEER\n");
        return 2;
    }
    peer_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    GP_RUN(values_encoded_by_go_decode_here);
    GP_RUN(values_encoded_here_decode_in_go);
    GP_RUN(c_client_calls_a_go_net_rpc_server);
    GP_RUN(go_net_rpc_client_calls_a_c_server);
    return gp_test_done();
}
