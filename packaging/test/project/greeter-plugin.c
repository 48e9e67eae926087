/* greeter-plugin: serves greeter.Greeter. GREETER_PROTO=grpc (default) or
 * netrpc picks the wire (a netrpc-only build needs netrpc; the hosts set
 * it). */
#include <goplugin/goplugin.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "greeter.h"

static atomic_long greeted;

static gp_err greet(void *impl, const greeter_GreetRequest *req, greeter_GreetReply *resp,
                    gp_status *st)
{
    (void)impl;
    const char *name = req->name ? req->name : "nobody";
    size_t n = strlen(name) + 64;
    resp->message = malloc(n); /* the transport frees it after sending */
    if (!resp->message) {
        snprintf(st->msg, sizeof st->msg, "out of memory");
        return GP_ENOMEM;
    }
    snprintf(resp->message, n, "hello, %s (%zu bytes)", name, req->blob.len);
    resp->count = atomic_fetch_add(&greeted, 1) + 1;
    return GP_OK;
}

static gp_err stats(void *impl, const google_protobuf_Empty *req, greeter_StatsReply *resp,
                    gp_status *st)
{
    (void)impl, (void)req, (void)st;
    resp->greeted = atomic_load(&greeted);
    return GP_OK;
}

int main(void)
{
    const char *p = getenv("GREETER_PROTO");
    gp_protocol proto = p && *p ? gp_protocol_parse(p) : GP_PROTO_GRPC;
    if (proto == GP_PROTO_NONE) {
        fprintf(stderr, "greeter-plugin: unknown GREETER_PROTO %s\n", p);
        return 1;
    }
    static const greeter_Greeter_server impl = {.Greet = greet, .Stats = stats};
    static greeter_Greeter_service svc;
    gp_serve_config cfg = {
        .handshake = {.protocol_version = GREETER_PROTOCOL_VERSION,
                      .magic_cookie_key = GREETER_COOKIE_KEY,
                      .magic_cookie_value = GREETER_COOKIE_VALUE},
        .services = greeter_Greeter_register(&svc, GREETER_PLUGIN_NAME, &impl, NULL),
        .nservices = 1,
        .protocol = proto,
    };
    return gp_serve(&cfg);
}
