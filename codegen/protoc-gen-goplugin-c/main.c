/* protoc-gen-goplugin-c: protoc runs it with a CodeGeneratorRequest on stdin
 * and reads a CodeGeneratorResponse from stdout.
 *
 *   protoc --plugin=protoc-gen-goplugin-c=PATH --goplugin-c_out=DIR x.proto
 *   protoc ... --goplugin-c_out=options:DIR x.proto   (nanopb x.options)
 *
 * A request that does not decode is not something protoc sends: say so on
 * stderr and exit 1. Problems with the .proto go into the response's error,
 * which protoc prints next to the file name. */
#include "codegen/protoc-gen-goplugin-c/codegen.h"

#include <errno.h>
#include <pb_encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gp_err read_all(int fd, uint8_t **out, size_t *len, gp__strbuf *err)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return GP_ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap > GP_CG_REQUEST_MAX) {
                gp__strbuf_printf(err, "request on stdin is over the %u byte limit",
                                  GP_CG_REQUEST_MAX);
                free(buf);
                return GP_EMSGSIZE;
            }
            uint8_t *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return GP_ENOMEM;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            gp__strbuf_printf(err, "reading stdin: %s", strerror(errno));
            free(buf);
            return GP_EIO;
        }
        n += (size_t)r;
    }
    *out = buf;
    *len = n;
    return GP_OK;
}

static bool write_cb(pb_ostream_t *s, const pb_byte_t *buf, size_t count)
{
    FILE *f = s->state;
    return fwrite(buf, 1, count, f) == count;
}

static int fail(const char *what, gp_err e, gp__strbuf *err)
{
    fprintf(stderr, "protoc-gen-goplugin-c: %s: %s\n", what,
            err->ok && err->data ? err->data : gp_strerror(e));
    return 1;
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1 || isatty(STDIN_FILENO)) {
        fprintf(stderr, "protoc-gen-goplugin-c: a protoc plugin; run it as\n"
                        "  protoc --plugin=protoc-gen-goplugin-c=PATH --goplugin-c_out=DIR "
                        "x.proto\n");
        return 2;
    }
    gp__strbuf err;
    gp__strbuf_init(&err);
    uint8_t *buf = NULL;
    size_t len = 0;
    gp_err e = read_all(STDIN_FILENO, &buf, &len, &err);
    if (e)
        return fail("bad request", e, &err);

    gp__cg_request req;
    e = gp__cg_request_decode(buf, len, &req, &err);
    free(buf);
    if (e) {
        int rc = fail("bad request", e, &err);
        gp__strbuf_free(&err);
        return rc;
    }
    gp__cg_response resp;
    e = gp__cg_generate(&req, &resp);
    gp__cg_request_free(&req);
    if (e) {
        gp__cg_response_free(&resp);
        return fail("generating", e, &err);
    }
    pb_ostream_t out = {write_cb, stdout, SIZE_MAX, 0, NULL};
    int ok = pb_encode(&out, google_protobuf_compiler_CodeGeneratorResponse_fields, &resp) &&
             fflush(stdout) == 0;
    gp__cg_response_free(&resp);
    if (!ok) {
        gp__strbuf_printf(&err, "writing the response to stdout: %s", PB_GET_ERROR(&out));
        int rc = fail("output", GP_EIO, &err);
        gp__strbuf_free(&err);
        return rc;
    }
    gp__strbuf_free(&err);
    return 0;
}
