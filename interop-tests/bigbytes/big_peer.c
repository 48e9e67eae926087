/* big-peer: one side of big_interop_test.sh, against go-big-peer.
 *   big-peer plugin        serves gp.interop.big.Big over gRPC
 *   big-peer host PLUGIN   starts PLUGIN (with the argument "plugin"),
 *                          calls Big.Swap once and checks the reply
 * Exit status 0 when everything matched; the first mismatch is printed.
 *
 * PATTERN (the same in gopeer/main.go): byte i of a blob with seed s is
 * (i * 31 + s) & 0xff. The request holds chunks of 1 MiB (seed 1), 5 bytes
 * (seed 2) and 0 bytes, and a 1 MiB + 1 blob (seed 3) in the oneof; the
 * reply holds chunks of 1 MiB + 3 (seed 4) and 1 MiB (seed 5), and a 1 MiB
 * blob (seed 6). With 16-bit nanopb none of the large ones fits. */
#include "interop-tests/bigbytes/big.gp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COOKIE_KEY "GP_BIG_INTEROP"
#define COOKIE_VALUE "big"
#define MIB (1024u * 1024u)

typedef struct {
    size_t len;
    unsigned seed;
} shape;

static const shape req_chunks[] = {{MIB, 1}, {5, 2}, {0, 0}};
static const shape req_blob = {MIB + 1, 3};
static const shape resp_chunks[] = {{MIB + 3, 4}, {MIB, 5}};
static const shape resp_blob = {MIB, 6};

static pb_bytes_array_t *make(shape s)
{
    pb_bytes_array_t *b = malloc(PB_BYTES_ARRAY_T_ALLOCSIZE(s.len));
    if (!b)
        return NULL;
    b->size = (pb_size_t)s.len;
    for (size_t i = 0; i < s.len; i++)
        b->bytes[i] = (uint8_t)((i * 31 + s.seed) & 0xff);
    return b;
}

/* NULL when b has shape s, else the mismatch in words (static storage). */
static const char *mismatch(const char *what, const pb_bytes_array_t *b, shape s)
{
    static char msg[160];
    size_t got = b ? b->size : 0;
    if (got != s.len) {
        snprintf(msg, sizeof msg, "%s: %zu bytes, expected %zu", what, got, s.len);
        return msg;
    }
    for (size_t i = 0; i < got; i++)
        if (b->bytes[i] != (uint8_t)((i * 31 + s.seed) & 0xff)) {
            snprintf(msg, sizeof msg, "%s: byte %zu differs", what, i);
            return msg;
        }
    return NULL;
}

/* NULL when m holds chunks cs[0..n) and blob bl, else the first mismatch. */
static const char *check(const gp_interop_big_Blobs *m, const shape *cs, size_t n, shape bl)
{
    static char msg[160];
    if (m->chunks_count != n) {
        snprintf(msg, sizeof msg, "%u chunks, expected %zu", (unsigned)m->chunks_count, n);
        return msg;
    }
    for (size_t i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "chunk %zu", i);
        const char *bad = mismatch(what, m->chunks[i], cs[i]);
        if (bad)
            return bad;
    }
    if (m->which_payload != gp_interop_big_Blobs_blob_tag)
        return "the oneof does not hold blob";
    return mismatch("blob", m->payload.blob, bl);
}

/* Fills m with chunks cs[0..n) and blob bl (malloc'd; gp_msg_release). */
static gp_err fill(gp_interop_big_Blobs *m, const shape *cs, size_t n, shape bl)
{
    m->chunks = calloc(n, sizeof *m->chunks);
    if (!m->chunks)
        return GP_ENOMEM;
    m->chunks_count = (pb_size_t)n;
    for (size_t i = 0; i < n; i++)
        if (!(m->chunks[i] = make(cs[i])))
            return GP_ENOMEM;
    m->which_payload = gp_interop_big_Blobs_blob_tag;
    m->payload.blob = make(bl);
    return m->payload.blob ? GP_OK : GP_ENOMEM;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static gp_err swap(void *impl, const gp_interop_big_Blobs *req, gp_interop_big_Blobs *resp,
                   gp_status *st)
{
    (void)impl;
    const char *bad = check(req, req_chunks, N(req_chunks), req_blob);
    if (bad) {
        snprintf(st->msg, sizeof st->msg, "C plugin: request %s", bad);
        return GP_EINVAL;
    }
    return fill(resp, resp_chunks, N(resp_chunks), resp_blob);
}

static int serve(void)
{
    static const gp_interop_big_Big_server vt = {.Swap = swap};
    static gp_interop_big_Big_service svc;
    gp_serve_config cfg = {
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .services = gp_interop_big_Big_register(&svc, "big", &vt, NULL),
        .nservices = 1,
        .protocol = GP_PROTO_GRPC,
        .logger = {.level = GP_LOG_ERROR},
    };
    return gp_serve(&cfg);
}

static int host(const char *plugin)
{
    const char *argv[] = {plugin, "plugin", NULL};
    gp_client_config cfg = {
        .argv = argv,
        .handshake = {.protocol_version = 1,
                      .magic_cookie_key = COOKIE_KEY,
                      .magic_cookie_value = COOKIE_VALUE},
        .allowed_protocols = GP_PROTO_GRPC,
        .start_timeout_ms = 30000,
        .logger = {.level = GP_LOG_ERROR},
    };
    gp_client *client = NULL;
    gp_conn *conn = NULL;
    gp_stub *big = NULL;
    gp_status st = {0};
    gp_interop_big_Blobs req = {0}, resp = {0};
    int rc = 1;
    if (fill(&req, req_chunks, N(req_chunks), req_blob) != GP_OK) {
        fprintf(stderr, "big-peer: out of memory\n");
        goto out;
    }
    if (gp_client_new(&cfg, &client, &st) != GP_OK ||
        gp_client_connect(client, &conn, &st) != GP_OK ||
        gp_conn_dispense(conn, "big", &big, &st) != GP_OK ||
        gp_interop_big_Big_Swap(big, &req, &resp, &st) != GP_OK) {
        fprintf(stderr, "big-peer: %s\n", st.msg);
        goto out;
    }
    const char *bad = check(&resp, resp_chunks, N(resp_chunks), resp_blob);
    if (bad) {
        fprintf(stderr, "big-peer: reply %s\n", bad);
        goto out;
    }
    printf("big-peer: swapped %u+%u chunks and two blobs of about 1 MiB\n",
           (unsigned)req.chunks_count, (unsigned)resp.chunks_count);
    rc = 0;
out:
    gp_msg_release(gp_interop_big_Blobs_fields, &req);
    gp_msg_release(gp_interop_big_Blobs_fields, &resp);
    gp_stub_free(big);
    gp_client_free(client);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "plugin") == 0)
        return serve();
    if (argc == 3 && strcmp(argv[1], "host") == 0)
        return host(argv[2]);
    fprintf(stderr, "usage: big-peer plugin | big-peer host PLUGIN\n");
    return 2;
}
