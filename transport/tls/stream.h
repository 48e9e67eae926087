/* Internal: mbedTLS over a connected socket, mutual authentication only.
 *
 * go-plugin's AutoMTLS settings (spec §4.3): both sides present their own
 * certificate and require the peer's; the only trust root is the peer's
 * certificate as given; TLS 1.2 (mbedTLS 2.28 has no 1.3; Go accepts 1.2);
 * the client checks the server name "localhost" against the SAN.
 *
 * Threads: after gp__tls_open, one thread may read while another writes
 * (the netrpc multiplexer's reader and writer). A mutex is held only inside
 * mbedTLS calls, never while waiting: the socket is driven with
 * MSG_DONTWAIT and poll, so the fd may be blocking or not. Never SIGPIPE:
 * every send uses MSG_NOSIGNAL.
 *
 * Errors write a sentence into err[errlen]: which side refused what, e.g.
 * "tls: peer certificate not trusted: The certificate is not correctly
 * signed by the trusted CA (the server's certificate, checked by this
 * client)". */
#ifndef GP_TLS_STREAM_H
#define GP_TLS_STREAM_H

#include <goplugin/err.h>

#include "transport/base/stream.h"

#include <stddef.h>

typedef struct gp__tls gp__tls;

typedef enum gp__tls_role {
    GP_TLS_CLIENT = 1, /* dials; the go-plugin host on the netrpc wire */
    GP_TLS_SERVER = 2  /* accepts; the plugin */
} gp__tls_role;

/* All PEM texts are NUL-terminated and copied (parsed) during open. */
typedef struct gp__tls_params {
    gp__tls_role role;
    const char *cert_pem;     /* own certificate (chain) */
    const char *key_pem;      /* own private key, PEM (SEC1, PKCS#8 or PKCS#1) */
    const char *peer_ca_pem;  /* the trust roots: the peer's AutoMTLS cert */
    const char *server_name;  /* client: name to check; NULL = "localhost" */
    int handshake_timeout_ms; /* 0: 10000; < 0: no limit */
} gp__tls_params;

/* Runs the TLS handshake on the connected socket `fd` within the timeout.
 * Takes ownership of fd on success only (gp__tls_close closes it). Caller
 * owns *out. Errors: GP_EINVAL (bad parameters, unparsable PEM: "tls: own
 * private key: ..."), GP_ETLS (handshake refused, by us or by the peer),
 * GP_EPROTO (the peer does not speak TLS), GP_ETIMEDOUT, GP_ECLOSED (peer
 * went away mid-handshake), GP_EIO, GP_ENOMEM. */
gp_err gp__tls_open(int fd, const gp__tls_params *p, gp__tls **out, char *err, size_t errlen);

/* Reads up to cap decrypted bytes. GP_OK with *n > 0; GP_OK with *n == 0
 * is a clean end (the peer's close_notify). timeout_ms < 0 waits forever,
 * 0 does not wait. Errors: GP_ETIMEDOUT, GP_ECLOSED (socket closed without
 * close_notify, or gp__tls_shutdown), GP_EPROTO (bytes that are not a TLS
 * record, e.g. a forged length; the header is quoted), GP_ETLS (a record
 * failed its integrity check, a fatal alert), GP_EIO. After any error the
 * stream is dead. */
gp_err gp__tls_read(gp__tls *t, void *buf, size_t cap, int timeout_ms, size_t *n, char *err,
                    size_t errlen);

/* Writes all len bytes (in records of at most 16 KiB). On GP_ETIMEDOUT
 * part may have been sent; the stream is then unusable for writing.
 * Errors: GP_ETIMEDOUT, GP_ECLOSED, GP_EIO, GP_ETLS. */
gp_err gp__tls_write(gp__tls *t, const void *buf, size_t len, int timeout_ms, char *err,
                     size_t errlen);

/* Wakes every blocked read and write with GP_ECLOSED and makes later ones
 * fail (shutdown(2) on the socket). Thread-safe, idempotent, no blocking. */
void gp__tls_shutdown(gp__tls *t);

/* Sends close_notify (best effort, without waiting), closes the fd and
 * frees. No read or write may be running. NULL is ok. */
void gp__tls_close(gp__tls *t);

/* t as a byte stream (transport/base/stream.h), for the layers above that
 * take any stream (the yamux session). It lives as long as t. read and
 * write are gp__tls_read and gp__tls_write; writev gathers its pieces
 * into records of at most 16 KiB, so a small header and the start of its
 * payload travel as one record; close_write sends close_notify (without
 * waiting); shutdown is gp__tls_shutdown; close is gp__tls_close, so
 * closing the stream frees t and closes its fd. */
gp__stream *gp__tls_stream(gp__tls *t);

/* The socket, still owned by t. */
int gp__tls_fd(const gp__tls *t);

/* "TLSv1.2 TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256": for logs. */
void gp__tls_describe(gp__tls *t, char *buf, size_t cap);

#endif
