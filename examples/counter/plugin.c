/* counter-plugin: Counter over gRPC or netrpc (the host picks). Put calls
 * back into the host's AddHelper, served on the broker id in the request,
 * to add the value to the stored count (go-plugin's bidirectional example).
 *
 * COUNTER_PLUGIN_PROTO=netrpc serves netrpc instead of gRPC. */
#include <goplugin/goplugin.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/counter/counter.h"

typedef struct entry {
    char *key;
    int64_t count;
    struct entry *next;
} entry;

typedef struct store {
    pthread_mutex_t mu;
    entry *head;
} store;

static entry *find(store *s, const char *key)
{
    for (entry *e = s->head; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static gp_err get(void *impl, const proto_GetRequest *q, proto_GetResponse *r, gp_status *st)
{
    (void)st;
    store *s = impl;
    pthread_mutex_lock(&s->mu);
    entry *e = find(s, q->key ? q->key : "");
    r->value = e ? e->count : 0;
    pthread_mutex_unlock(&s->mu);
    return GP_OK;
}

static gp_err put(void *impl, const proto_PutRequest *q, proto_Empty *resp, gp_status *st)
{
    (void)resp;
    store *s = impl;
    const char *key = q->key ? q->key : "";
    gp_stub *helper = NULL;
    gp_err rc = gp_broker_dial(gp_serve_broker(), q->add_server, &helper, st);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->mu);
    entry *e = find(s, key);
    proto_SumRequest sq = {.a = e ? e->count : 0, .b = q->value};
    pthread_mutex_unlock(&s->mu);
    proto_SumResponse sr = {0};
    rc = proto_AddHelper_Sum(helper, &sq, &sr, st);
    gp_stub_free(helper);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->mu);
    e = find(s, key);
    if (!e && (e = calloc(1, sizeof *e)) != NULL && (e->key = strdup(key)) != NULL) {
        e->next = s->head;
        s->head = e;
    } else if (e && !e->key) {
        free(e);
        e = NULL;
    }
    if (e)
        e->count = sr.r;
    pthread_mutex_unlock(&s->mu);
    gp_msg_release(proto_SumResponse_fields, &sr);
    if (!e) {
        snprintf(st->msg, sizeof st->msg, "out of memory storing %s", key);
        return GP_ENOMEM;
    }
    return GP_OK;
}

int main(void)
{
    static store s;
    pthread_mutex_init(&s.mu, NULL);
    static const proto_Counter_server vtable = {.Get = get, .Put = put};
    static proto_Counter_service counter;
    const char *p = getenv("COUNTER_PLUGIN_PROTO");
    gp_serve_config cfg = {
        .handshake = COUNTER_HANDSHAKE,
        .services = proto_Counter_register(&counter, COUNTER_PLUGIN_NAME, &vtable, &s),
        .nservices = 1,
        .protocol = p && strcmp(p, "netrpc") == 0 ? GP_PROTO_NETRPC : GP_PROTO_GRPC,
    };
    int rc = gp_serve(&cfg);
    while (s.head) {
        entry *e = s.head;
        s.head = e->next;
        free(e->key);
        free(e);
    }
    return rc;
}
