/* Internal: listeners and dialers (tcp and unix), blocking, CLOEXEC.
 * Errors write a sentence into err[errlen]. */
#ifndef GP_NET_NET_H
#define GP_NET_NET_H

#include <goplugin/err.h>

#include <stddef.h>

/* A unix socket path for a new listener: "<dir>/plugin<random>", where dir
 * is `dir` if non-empty, else $TMPDIR, else /tmp (go-plugin on Linux).
 * GP_EINVAL when the path would not fit a sockaddr_un. */
gp_err gp__net_unix_path(const char *dir, char *out, size_t cap, char *err, size_t errlen);

/* Listen on a unix socket at `path` (a stale socket file there is removed).
 * If `group` is non-empty (name or numeric gid): chown to it, chmod 0660.
 * Returns the listening fd in *fd. */
gp_err gp__net_listen_unix(const char *path, const char *group, int *fd, char *err, size_t errlen);

/* Give the existing unix socket at `path` to `group` (name or numeric gid)
 * and make it 0660, as go-plugin does for PLUGIN_UNIX_SOCKET_GROUP; for
 * sockets bound elsewhere (the gRPC server binds its own). Errors:
 * GP_EINVAL (unknown group), GP_ESYS (chown/chmod failed). */
gp_err gp__net_unix_set_group(const char *path, const char *group, char *err, size_t errlen);

/* Listen on 127.0.0.1, trying ports min..max in order (0,0: any port).
 * *port gets the bound port. */
gp_err gp__net_listen_tcp(unsigned min, unsigned max, int *fd, unsigned *port, char *err,
                          size_t errlen);

/* Dial network ("unix" | "tcp") address ("/path" | "host:port" with a
 * numeric IPv4/IPv6 host or "localhost") within timeout_ms. TCP gets
 * SO_KEEPALIVE and TCP_NODELAY. The fd is blocking unless `nonblock`.
 * Errors: GP_ECONNECT ("dial unix /tmp/x: connection refused"),
 * GP_ETIMEDOUT, GP_EINVAL (bad address). */
gp_err gp__net_dial(const char *network, const char *address, int timeout_ms, int nonblock, int *fd,
                    char *err, size_t errlen);

/* TCP keepalive on a connected socket, from gp_keepalive's fields
 * (client.h): time_ms < 0 off; 0 Go's default (first probe after 15 s,
 * then every 15 s); > 0 first probe after time_ms, three probes
 * timeout_ms / 3 apart (timeout_ms 0 = 10000) and TCP_USER_TIMEOUT
 * timeout_ms. Does nothing on a unix socket. 0, or -1 when a setsockopt
 * failed (errno). */
int gp__net_keepalive(int fd, int time_ms, int timeout_ms);

#endif
