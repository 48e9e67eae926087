/* Internal to transport/grpc: TCP keepalive on the sockets gRPC core dials
 * itself. A plaintext channel runs over a socket we dialed (keepalive set
 * there, wire.c); a TLS channel must be dialed by core (client_tls.c), and
 * core sets no SO_KEEPALIVE. Its one hook into a socket it dials is a
 * socket mutator (GRPC_ARG_SOCKET_MUTATOR), called for every connection
 * the channel makes, reconnects included. In a server's args it is called
 * for each TCP connection core accepts (TLS, or a TCP listener), as Go's
 * net package turns keepalive on for accepted connections. */
#ifndef GP_GRPC_TCP_KEEPALIVE_H
#define GP_GRPC_TCP_KEEPALIVE_H

#include <grpc/grpc.h>

/* Fills *arg with a socket-mutator channel arg that applies
 * gp__net_keepalive(fd, time_ms, timeout_ms) (gp_keepalive's meaning) to
 * each client socket core opens or server socket it accepts. *arg holds one reference: pass it to the
 * channel (core takes its own), then gp__grpc_tcp_keepalive_release.
 * -1 (arg untouched) when out of memory, or when the running core is not
 * the one whose mutator layout this mirrors (core 29, gRPC 1.51): then the
 * channel goes without. Thread-safe. */
int gp__grpc_tcp_keepalive_arg(int time_ms, int timeout_ms, grpc_arg *arg);

/* Drops the caller's reference taken by gp__grpc_tcp_keepalive_arg. */
void gp__grpc_tcp_keepalive_release(grpc_arg *arg);

#endif
