/* TCP keepalive through core's socket mutator; see tcp_keepalive.h.
 *
 * Core 1.51 declares grpc_socket_mutator only as an incomplete type in its
 * public headers; the struct and its vtable are in an internal header that
 * Debian does not install. Core reads them by layout: the mutator starts
 * with its vtable pointer and a gpr_refcount (core takes and drops
 * references with gpr_ref/gpr_unref on it and calls `destroy` at zero),
 * and the vtable holds mutate_fd, compare, destroy, mutate_fd_2 in that
 * order; mutate_fd_2 gets {int fd; enum usage}. We lay ours out the same,
 * and only when the running core is version 29 (gRPC 1.51), the one read:
 * //host:client_tls_test checks the options on the socket. */
#include "transport/wire/grpc/tcp_keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <grpc/support/sync.h>

#include "transport/net/net.h"

#define CORE_VERSION_PREFIX "29."

/* core's grpc_fd_usage: GRPC_FD_CLIENT_CONNECTION_USAGE, _SERVER_LISTENER_,
 * _SERVER_CONNECTION_ (tcp_server_posix.cc calls the mutator with the last
 * on each socket it accepts, through mutate_fd_2 only). */
enum { USAGE_CLIENT_CONNECTION = 0, USAGE_SERVER_LISTENER = 1, USAGE_SERVER_CONNECTION = 2 };

typedef struct sock_info {
    int fd;
    int usage;
} sock_info;

typedef struct mutator_vtable {
    bool (*mutate_fd)(int fd, grpc_socket_mutator *m);
    int (*compare)(grpc_socket_mutator *a, grpc_socket_mutator *b);
    void (*destroy)(grpc_socket_mutator *m);
    bool (*mutate_fd_2)(const sock_info *info, grpc_socket_mutator *m);
} mutator_vtable;

typedef struct ka_mutator {
    const mutator_vtable *vtable; /* core's two leading fields */
    gpr_refcount refs;
    int time_ms, timeout_ms; /* ours */
} ka_mutator;

static bool ka_mutate_2(const sock_info *info, grpc_socket_mutator *gm)
{
    const ka_mutator *m = (const ka_mutator *)gm;
    /* Best effort, as on our own sockets (wire.c): a setsockopt refused by
     * the kernel must not fail the connection. Unix sockets are left as
     * they are by gp__net_keepalive. */
    if (info->usage == USAGE_CLIENT_CONNECTION) {
        (void)gp__net_keepalive(info->fd, m->time_ms, m->timeout_ms);
    } else if (info->usage == USAGE_SERVER_CONNECTION) {
        /* Core's server already bounds unacknowledged data by its HTTP/2
         * keepalive timeout (TCP_USER_TIMEOUT); the default keepalive, which
         * sets none, must not take that away. */
        int user_ms = 0;
        socklen_t l = sizeof user_ms;
        int keep = m->time_ms == 0 &&
                   getsockopt(info->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, &l) == 0;
        (void)gp__net_keepalive(info->fd, m->time_ms, m->timeout_ms);
        if (keep)
            (void)setsockopt(info->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof user_ms);
    }
    return true;
}

static bool ka_mutate(int fd, grpc_socket_mutator *gm)
{
    sock_info i = {.fd = fd, .usage = USAGE_CLIENT_CONNECTION};
    return ka_mutate_2(&i, gm);
}

static int ka_compare(grpc_socket_mutator *ga, grpc_socket_mutator *gb)
{
    const ka_mutator *a = (const ka_mutator *)ga, *b = (const ka_mutator *)gb;
    if (a->time_ms != b->time_ms)
        return a->time_ms < b->time_ms ? -1 : 1;
    if (a->timeout_ms != b->timeout_ms)
        return a->timeout_ms < b->timeout_ms ? -1 : 1;
    return 0;
}

static void ka_destroy(grpc_socket_mutator *gm)
{
    free(gm);
}

static const mutator_vtable ka_vtable = {
    .mutate_fd = ka_mutate,
    .compare = ka_compare,
    .destroy = ka_destroy,
    .mutate_fd_2 = ka_mutate_2,
};

static void unref(ka_mutator *m)
{
    if (gpr_unref(&m->refs))
        ka_destroy((grpc_socket_mutator *)m);
}

/* The channel arg's own vtable: references, and core's ordering of
 * mutators (same vtable, then our settings). */
static void *arg_copy(void *p)
{
    gpr_ref(&((ka_mutator *)p)->refs);
    return p;
}

static void arg_destroy(void *p)
{
    unref(p);
}

static int arg_cmp(void *a, void *b)
{
    if (a == b)
        return 0;
    const ka_mutator *ma = a, *mb = b;
    if (ma->vtable != mb->vtable)
        return (const void *)ma->vtable < (const void *)mb->vtable ? -1 : 1;
    return ka_compare(a, b);
}

static const grpc_arg_pointer_vtable arg_vtable = {
    .copy = arg_copy, .destroy = arg_destroy, .cmp = arg_cmp};

int gp__grpc_tcp_keepalive_arg(int time_ms, int timeout_ms, grpc_arg *arg)
{
    const char *v = grpc_version_string();
    if (!v || strncmp(v, CORE_VERSION_PREFIX, strlen(CORE_VERSION_PREFIX)) != 0)
        return -1;
    ka_mutator *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->vtable = &ka_vtable;
    gpr_ref_init(&m->refs, 1);
    m->time_ms = time_ms;
    m->timeout_ms = timeout_ms;
    *arg = (grpc_arg){.type = GRPC_ARG_POINTER,
                      .key = GRPC_ARG_SOCKET_MUTATOR,
                      .value.pointer = {.p = m, .vtable = &arg_vtable}};
    return 0;
}

void gp__grpc_tcp_keepalive_release(grpc_arg *arg)
{
    if (arg && arg->type == GRPC_ARG_POINTER && arg->value.pointer.p)
        unref(arg->value.pointer.p);
}
