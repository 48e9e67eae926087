/* mbedTLS over a connected socket: the handshake, then thread-friendly
 * blocking read and write built from non-blocking mbedTLS calls and poll. */
#include "transport/tls/stream.h"

#include "transport/base/strbuf.h"
#include "transport/tls/util.h"

#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_HANDSHAKE_MS 10000

struct gp__tls {
    gp__stream io; /* first: the stream ops receive this pointer */
    int fd;
    gp__tls_role role;
    atomic_int shut;    /* gp__tls_shutdown was called */
    pthread_mutex_t mu; /* held only around mbedTLS calls on ssl */
    int io_errno;       /* last errno from the socket callbacks; under mu */
    gp__tls_rng rng;
    mbedtls_x509_crt own_cert, peer_ca;
    mbedtls_pk_context own_key;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
};

static const char *peer_name(const gp__tls *t)
{
    return t->role == GP_TLS_CLIENT ? "server" : "client";
}

static const char *self_name(const gp__tls *t)
{
    return t->role == GP_TLS_CLIENT ? "client" : "server";
}

/* ---- socket callbacks: never block, never SIGPIPE ---- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    gp__tls *t = ctx;
    for (;;) {
        ssize_t r = send(t->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r >= 0)
            return (int)r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_WRITE;
        t->io_errno = errno;
        return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                     : MBEDTLS_ERR_NET_SEND_FAILED;
    }
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    gp__tls *t = ctx;
    for (;;) {
        ssize_t r = recv(t->fd, buf, len, MSG_DONTWAIT);
        if (r >= 0)
            return (int)r; /* 0: mbedTLS reports MBEDTLS_ERR_SSL_CONN_EOF */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_READ;
        t->io_errno = errno;
        return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
    }
}

/* ---- waiting ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* deadline < 0: none. GP_OK when the socket is ready (or has an error or
 * hang-up for the next mbedTLS call to find), GP_ETIMEDOUT, GP_ECLOSED
 * after gp__tls_shutdown, GP_EIO when poll fails. */
static gp_err wait_fd(gp__tls *t, int want, int64_t deadline)
{
    short events = want == MBEDTLS_ERR_SSL_WANT_WRITE ? POLLOUT : POLLIN;
    for (;;) {
        if (atomic_load(&t->shut))
            return GP_ECLOSED;
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return GP_ETIMEDOUT;
            ms = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        struct pollfd pfd = {.fd = t->fd, .events = events};
        int r = poll(&pfd, 1, ms);
        if (r > 0)
            return GP_OK;
        if (r == 0)
            continue; /* the deadline check above ends it */
        if (errno != EINTR) {
            t->io_errno = errno;
            return GP_EIO;
        }
    }
}

static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* ---- error words ---- */

static const char *alert_name(int a)
{
    switch (a) {
    case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE:
        return "handshake_failure";
    case MBEDTLS_SSL_ALERT_MSG_NO_CERT:
        return "no_certificate";
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT:
        return "bad_certificate";
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT:
        return "unsupported_certificate";
    case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED:
        return "certificate_revoked";
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED:
        return "certificate_expired";
    case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN:
        return "certificate_unknown";
    case MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER:
        return "illegal_parameter";
    case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA:
        return "unknown_ca";
    case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED:
        return "access_denied";
    case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR:
        return "decode_error";
    case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR:
        return "decrypt_error";
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION:
        return "protocol_version";
    case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY:
        return "insufficient_security";
    case MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR:
        return "internal_error";
    case MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE:
        return "unexpected_message";
    case MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC:
        return "bad_record_mac";
    case 116:
        return "certificate_required";
    default:
        return "unknown alert";
    }
}

static int is_cert_alert(int a)
{
    return (a >= MBEDTLS_SSL_ALERT_MSG_NO_CERT && a <= MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN) ||
           a == MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA || a == MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED ||
           a == 116;
}

/* The small mbedTLS-code -> gp_err table, for failures after a handshake. */
static gp_err code_of(int ret)
{
    switch (ret) {
    case MBEDTLS_ERR_SSL_CONN_EOF:
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
    case MBEDTLS_ERR_NET_CONN_RESET:
        return GP_ECLOSED;
    case MBEDTLS_ERR_NET_SEND_FAILED:
    case MBEDTLS_ERR_NET_RECV_FAILED:
        return GP_EIO;
    case MBEDTLS_ERR_SSL_ALLOC_FAILED:
        return GP_ENOMEM;
    case MBEDTLS_ERR_SSL_TIMEOUT:
        return GP_ETIMEDOUT;
    default:
        return GP_ETLS;
    }
}

/* Words for a failed mbedTLS call on an open stream: `op` is "read",
 * "write" or "handshake". io_err is the errno the callbacks saw. */
static gp_err io_error(gp__tls *t, const char *op, int ret, int io_err, char *err, size_t errlen)
{
    char text[256];
    gp_err rc = code_of(ret);
    if (atomic_load(&t->shut) && rc != GP_ENOMEM) {
        gp__tls_seterr(err, errlen, "tls: %s: connection shut down locally", op);
        return GP_ECLOSED;
    }
    switch (ret) {
    case MBEDTLS_ERR_SSL_CONN_EOF:
        gp__tls_seterr(err, errlen, "tls: %s: the %s closed the connection without close_notify",
                       op, peer_name(t));
        break;
    case MBEDTLS_ERR_NET_CONN_RESET:
        gp__tls_seterr(err, errlen, "tls: %s: connection reset by the %s (%s)", op, peer_name(t),
                       strerror(io_err ? io_err : ECONNRESET));
        break;
    case MBEDTLS_ERR_NET_SEND_FAILED:
    case MBEDTLS_ERR_NET_RECV_FAILED:
        gp__tls_seterr(err, errlen, "tls: %s: socket %s failed: %s", op,
                       ret == MBEDTLS_ERR_NET_SEND_FAILED ? "send" : "recv",
                       strerror(io_err ? io_err : EIO));
        break;
    case MBEDTLS_ERR_SSL_BAD_INPUT_DATA: /* also: a record length beyond the buffer */
    case MBEDTLS_ERR_SSL_INVALID_RECORD:
        if (t->ssl.in_hdr && strcmp(op, "write") != 0) { /* quote the bad record header */
            gp__strbuf b;
            gp__strbuf_init(&b);
            gp__strbuf_quote(&b, (const char *)t->ssl.in_hdr, 5, 5);
            gp__tls_seterr(err, errlen,
                           "tls: %s: the %s sent data that is not a TLS record (header %s)", op,
                           peer_name(t), b.ok ? b.data : "?");
            gp__strbuf_free(&b);
            return GP_EPROTO;
        }
        break;
    case MBEDTLS_ERR_SSL_INVALID_MAC:
        gp__tls_seterr(err, errlen,
                       "tls: %s: a record from the %s failed its integrity check (tampered or "
                       "corrupted on the way)",
                       op, peer_name(t));
        break;
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE: {
        int a = t->ssl.in_msg ? t->ssl.in_msg[1] : -1;
        gp__tls_seterr(err, errlen, "tls: %s: the %s sent fatal alert %s (%d)", op, peer_name(t),
                       alert_name(a), a);
        break;
    }
    default:
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "tls: %s: %s", op, text);
    }
    return rc;
}

static gp_err handshake_error_words(gp__tls *t, int ret, int io_err, char *err, size_t errlen);

/* A peer that refuses our certificate sends a plaintext alert and hangs up
 * while we may still be sending our flight, so mbedTLS sees only a send
 * error. The alert may still sit in our receive queue: look for it.
 * Returns the alert description, or -1. */
static int pending_alert(gp__tls *t)
{
    unsigned char rec[7];
    ssize_t n = recv(t->fd, rec, sizeof rec, MSG_DONTWAIT | MSG_PEEK);
    if (n == (ssize_t)sizeof rec && rec[0] == MBEDTLS_SSL_MSG_ALERT && rec[1] == 3 && rec[3] == 0 &&
        rec[4] == 2 && rec[5] == MBEDTLS_SSL_ALERT_LEVEL_FATAL)
        return rec[6];
    return -1;
}

/* After we refused the peer: read what it already sent, so that closing
 * the socket does not turn into a reset that hides our alert from it. */
static void drain_input(gp__tls *t)
{
    unsigned char buf[4096];
    for (int i = 0; i < 16; i++)
        if (recv(t->fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
            return;
}

static gp_err refused_by_peer(gp__tls *t, int a, char *err, size_t errlen)
{
    gp__tls_seterr(err, errlen, "tls: the %s refused the handshake with alert %s (%d)%s",
                   peer_name(t), alert_name(a), a,
                   is_cert_alert(a) ? t->role == GP_TLS_CLIENT
                                          ? ": it did not accept this client's certificate"
                                          : ": it did not accept this server's certificate"
                                    : "");
    return GP_ETLS;
}

static gp_err handshake_error(gp__tls *t, int ret, int io_err, char *err, size_t errlen)
{
    gp_err rc = handshake_error_words(t, ret, io_err, err, errlen);
    /* Our own refusals went out as alerts; let the peer read them. */
    if (rc == GP_ETLS && ret != MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE)
        drain_input(t);
    return rc;
}

static gp_err handshake_error_words(gp__tls *t, int ret, int io_err, char *err, size_t errlen)
{
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    char text[512];
    int verified = flags != (uint32_t)-1; /* -1: no certificate was checked yet */
    if (t->role == GP_TLS_SERVER && verified && (flags & MBEDTLS_X509_BADCERT_MISSING))
        ret = MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE;
    else if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ||
             (verified && flags != 0 && ret != MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE)) {
        gp__tls_verify_text(flags, text, sizeof text);
        gp__tls_seterr(err, errlen,
                       "tls: peer certificate not trusted: %s (the %s's certificate, checked by "
                       "this %s)",
                       text, peer_name(t), self_name(t));
        return GP_ETLS;
    }
    switch (ret) {
    case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
    case MBEDTLS_ERR_SSL_CERTIFICATE_REQUIRED:
        /* mbedTLS hangs up without a word here; tell the client as Go does
         * (bad_certificate), so it can say why. */
        (void)mbedtls_ssl_send_alert_message(&t->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                             MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
        gp__tls_seterr(err, errlen,
                       "tls: the client presented no certificate; this server requires one");
        return GP_ETLS;
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
        return refused_by_peer(t, t->ssl.in_msg ? t->ssl.in_msg[1] : -1, err, errlen);
    case MBEDTLS_ERR_SSL_CONN_EOF:
    case MBEDTLS_ERR_NET_CONN_RESET:
    case MBEDTLS_ERR_NET_SEND_FAILED: {
        if (atomic_load(&t->shut))
            break;
        int a = pending_alert(t);
        if (a >= 0)
            return refused_by_peer(t, a, err, errlen);
        if (ret == MBEDTLS_ERR_NET_SEND_FAILED)
            break;
        /* A peer that refuses our certificate may hang up without an alert. */
        gp__tls_seterr(
            err, errlen, "tls: the %s closed the connection during the handshake (%s)%s",
            peer_name(t),
            ret == MBEDTLS_ERR_SSL_CONN_EOF ? "EOF" : strerror(io_err ? io_err : ECONNRESET),
            t->role == GP_TLS_CLIENT ? "; it may have refused this client's certificate" : "");
        return GP_ECLOSED;
    }
    case MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION:
        gp__tls_seterr(err, errlen,
                       "tls: no common protocol version with the %s (TLS 1.2 required)",
                       peer_name(t));
        return GP_ETLS;
    case MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE:
        gp__tls_seterr(err, errlen, "tls: no cipher suite in common with the %s", peer_name(t));
        return GP_ETLS;
    default:
        break;
    }
    return io_error(t, "handshake", ret, io_err, err, errlen);
}

/* ---- setup ---- */

static gp_err load(gp__tls *t, const gp__tls_params *p, char *err, size_t errlen)
{
    char text[256];
    int ret;
    if ((ret = mbedtls_x509_crt_parse(&t->own_cert, (const unsigned char *)p->cert_pem,
                                      strlen(p->cert_pem) + 1)) != 0) {
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "tls: own certificate: %s", text);
        return GP_EINVAL;
    }
    if ((ret = mbedtls_pk_parse_key(&t->own_key, (const unsigned char *)p->key_pem,
                                    strlen(p->key_pem) + 1, NULL, 0)) != 0) {
        gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "tls: own private key: %s", text);
        return GP_EINVAL;
    }
    if ((ret = mbedtls_pk_check_pair(&t->own_cert.pk, &t->own_key)) != 0) {
        gp__tls_seterr(err, errlen, "tls: own private key does not match own certificate");
        return GP_EINVAL;
    }
    /* mbedTLS would silently skip an unfit own certificate and fail later
     * with "no cipher suite in common"; say it here instead. */
    int server = p->role == GP_TLS_SERVER;
    if (mbedtls_x509_crt_check_extended_key_usage(
            &t->own_cert, server ? MBEDTLS_OID_SERVER_AUTH : MBEDTLS_OID_CLIENT_AUTH,
            MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) != 0) {
        gp__tls_seterr(err, errlen,
                       "tls: own certificate cannot be used by a TLS %s: its extended key usage "
                       "lacks %s",
                       server ? "server" : "client", server ? "serverAuth" : "clientAuth");
        return GP_EINVAL;
    }
    if (mbedtls_x509_crt_check_key_usage(&t->own_cert, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0) {
        gp__tls_seterr(err, errlen,
                       "tls: own certificate cannot sign TLS handshakes: its key usage lacks "
                       "digitalSignature");
        return GP_EINVAL;
    }
    if ((ret = mbedtls_x509_crt_parse(&t->peer_ca, (const unsigned char *)p->peer_ca_pem,
                                      strlen(p->peer_ca_pem) + 1)) != 0) {
        if (ret > 0)
            snprintf(text, sizeof text, "%d certificate(s) did not parse", ret);
        else
            gp__tls_mbed_text(ret, text, sizeof text);
        gp__tls_seterr(err, errlen, "tls: peer's certificate (trust root): %s", text);
        return GP_EINVAL;
    }
    if ((ret = gp__tls_rng_seed(&t->rng, "goplugin-c tls")) != 0 ||
        (ret = mbedtls_ssl_config_defaults(
             &t->conf, p->role == GP_TLS_CLIENT ? MBEDTLS_SSL_IS_CLIENT : MBEDTLS_SSL_IS_SERVER,
             MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
        goto fail;
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->rng.drbg);
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    /* On a server this means: a client certificate is required. */
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->peer_ca, NULL);
    if ((ret = mbedtls_ssl_conf_own_cert(&t->conf, &t->own_cert, &t->own_key)) != 0 ||
        (ret = mbedtls_ssl_setup(&t->ssl, &t->conf)) != 0)
        goto fail;
    if (p->role == GP_TLS_CLIENT &&
        (ret = mbedtls_ssl_set_hostname(&t->ssl, p->server_name ? p->server_name : "localhost")) !=
            0)
        goto fail;
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    return GP_OK;
fail:
    gp__tls_mbed_text(ret, text, sizeof text);
    gp__tls_seterr(err, errlen, "tls: setting up mbedTLS: %s", text);
    return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? GP_ENOMEM : GP_ETLS;
}

static void destroy(gp__tls *t)
{
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_pk_free(&t->own_key);
    mbedtls_x509_crt_free(&t->own_cert);
    mbedtls_x509_crt_free(&t->peer_ca);
    gp__tls_rng_free(&t->rng);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static const gp__stream_ops tls_stream_ops;

gp_err gp__tls_open(int fd, const gp__tls_params *p, gp__tls **out, char *err, size_t errlen)
{
    if (!out || !p || fd < 0 || !p->cert_pem || !p->key_pem || !p->peer_ca_pem ||
        (p->role != GP_TLS_CLIENT && p->role != GP_TLS_SERVER)) {
        gp__tls_seterr(err, errlen,
                       "tls: open needs a socket, a role, own certificate and key, and the "
                       "peer's certificate");
        return GP_EINVAL;
    }
    *out = NULL;
    gp__tls *t = calloc(1, sizeof *t);
    if (!t) {
        gp__tls_seterr(err, errlen, "tls: out of memory");
        return GP_ENOMEM;
    }
    t->io.ops = &tls_stream_ops;
    t->fd = fd;
    t->role = p->role;
    atomic_init(&t->shut, 0);
    pthread_mutex_init(&t->mu, NULL);
    mbedtls_x509_crt_init(&t->own_cert);
    mbedtls_x509_crt_init(&t->peer_ca);
    mbedtls_pk_init(&t->own_key);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_ssl_init(&t->ssl);
    gp__tls_rng_init(&t->rng);

    gp_err rc = load(t, p, err, errlen);
    if (rc != GP_OK) {
        destroy(t);
        return rc;
    }

    int timeout = p->handshake_timeout_ms ? p->handshake_timeout_ms : DEFAULT_HANDSHAKE_MS;
    int64_t deadline = deadline_of(timeout);
    for (;;) {
        t->io_errno = 0;
        int ret = mbedtls_ssl_handshake(&t->ssl);
        if (ret == 0)
            break;
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE) {
            rc = handshake_error(t, ret, t->io_errno, err, errlen);
            break;
        }
        rc = wait_fd(t, ret, deadline);
        if (rc == GP_ETIMEDOUT)
            gp__tls_seterr(err, errlen, "tls: handshake timed out after %d ms waiting for the %s",
                           timeout, peer_name(t));
        else if (rc == GP_EIO)
            gp__tls_seterr(err, errlen, "tls: handshake: poll failed: %s", strerror(t->io_errno));
        if (rc != GP_OK)
            break;
    }
    if (rc != GP_OK) {
        destroy(t); /* the fd stays the caller's */
        return rc;
    }
    *out = t;
    return GP_OK;
}

/* ---- after the handshake ---- */

gp_err gp__tls_read(gp__tls *t, void *buf, size_t cap, int timeout_ms, size_t *n, char *err,
                    size_t errlen)
{
    if (!t || !buf || !cap || !n) {
        gp__tls_seterr(err, errlen, "tls: read: missing argument or zero-length buffer");
        return GP_EINVAL;
    }
    *n = 0;
    if (cap > INT32_MAX)
        cap = INT32_MAX;
    int64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        if (atomic_load(&t->shut)) {
            gp__tls_seterr(err, errlen, "tls: read: connection shut down locally");
            return GP_ECLOSED;
        }
        pthread_mutex_lock(&t->mu);
        t->io_errno = 0;
        int ret = mbedtls_ssl_read(&t->ssl, buf, cap);
        int io_err = t->io_errno;
        pthread_mutex_unlock(&t->mu);
        if (ret > 0) {
            *n = (size_t)ret;
            return GP_OK;
        }
        if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            return GP_OK; /* clean end */
        if (ret == 0)     /* mbedTLS: the socket ended without close_notify */
            ret = MBEDTLS_ERR_SSL_CONN_EOF;
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
            return io_error(t, "read", ret, io_err, err, errlen);
        if (timeout_ms == 0) {
            gp__tls_seterr(err, errlen, "tls: read: no data ready");
            return GP_ETIMEDOUT;
        }
        gp_err rc = wait_fd(t, ret, deadline);
        if (rc == GP_ETIMEDOUT)
            gp__tls_seterr(err, errlen, "tls: read: timed out after %d ms", timeout_ms);
        else if (rc == GP_ECLOSED)
            gp__tls_seterr(err, errlen, "tls: read: connection shut down locally");
        else if (rc == GP_EIO)
            gp__tls_seterr(err, errlen, "tls: read: poll failed: %s", strerror(t->io_errno));
        if (rc != GP_OK)
            return rc;
    }
}

gp_err gp__tls_write(gp__tls *t, const void *buf, size_t len, int timeout_ms, char *err,
                     size_t errlen)
{
    if (!t || (!buf && len)) {
        gp__tls_seterr(err, errlen, "tls: write: missing argument");
        return GP_EINVAL;
    }
    const unsigned char *p = buf;
    size_t off = 0;
    int64_t deadline = deadline_of(timeout_ms);
    while (off < len) {
        if (atomic_load(&t->shut)) {
            gp__tls_seterr(err, errlen, "tls: write: connection shut down locally");
            return GP_ECLOSED;
        }
        size_t chunk = len - off > INT32_MAX ? INT32_MAX : len - off;
        pthread_mutex_lock(&t->mu);
        t->io_errno = 0;
        /* After WANT_WRITE mbedTLS must be called again with the same
         * buffer; off only moves on success, so it is. */
        int ret = mbedtls_ssl_write(&t->ssl, p + off, chunk);
        int io_err = t->io_errno;
        pthread_mutex_unlock(&t->mu);
        if (ret >= 0) {
            off += (size_t)ret;
            continue;
        }
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
            return io_error(t, "write", ret, io_err, err, errlen);
        gp_err rc = timeout_ms == 0 ? GP_ETIMEDOUT : wait_fd(t, ret, deadline);
        if (rc == GP_ETIMEDOUT)
            gp__tls_seterr(err, errlen,
                           "tls: write: timed out after %d ms with %zu of %zu bytes sent",
                           timeout_ms, off, len);
        else if (rc == GP_ECLOSED)
            gp__tls_seterr(err, errlen, "tls: write: connection shut down locally");
        else if (rc == GP_EIO)
            gp__tls_seterr(err, errlen, "tls: write: poll failed: %s", strerror(t->io_errno));
        if (rc != GP_OK)
            return rc;
    }
    return GP_OK;
}

void gp__tls_shutdown(gp__tls *t)
{
    if (!t || atomic_exchange(&t->shut, 1))
        return;
    shutdown(t->fd, SHUT_RDWR);
}

void gp__tls_close(gp__tls *t)
{
    if (!t)
        return;
    if (!atomic_load(&t->shut)) {
        pthread_mutex_lock(&t->mu);
        (void)mbedtls_ssl_close_notify(&t->ssl); /* WANT_WRITE: the peer misses it */
        pthread_mutex_unlock(&t->mu);
    }
    close(t->fd);
    destroy(t);
}

/* ---- as a gp__stream ---- */

static gp_err st_read(gp__stream *s, void *buf, size_t cap, int timeout_ms, size_t *n, char *why,
                      size_t whylen)
{
    return gp__tls_read((gp__tls *)s, buf, cap, timeout_ms, n, why, whylen);
}

/* Gathered into records of at most 16 KiB: a yamux frame's 12-byte header
 * and (the start of) its payload go out as one record, not two. */
static gp_err st_writev(gp__stream *s, struct iovec *iov, int iovcnt, int timeout_ms, char *why,
                        size_t whylen)
{
    gp__tls *t = (gp__tls *)s;
    unsigned char rec[16384];
    int64_t deadline = deadline_of(timeout_ms);
    while (iovcnt > 0) {
        size_t n = 0;
        while (iovcnt > 0 && n < sizeof rec) {
            size_t k = iov->iov_len < sizeof rec - n ? iov->iov_len : sizeof rec - n;
            if (k)
                memcpy(rec + n, iov->iov_base, k);
            n += k;
            iov->iov_base = (unsigned char *)iov->iov_base + k;
            iov->iov_len -= k;
            if (iov->iov_len == 0) {
                iov++;
                iovcnt--;
            }
        }
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            ms = left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
        }
        gp_err rc = gp__tls_write(t, rec, n, ms, why, whylen);
        if (rc != GP_OK)
            return rc;
    }
    return GP_OK;
}

static void st_close_write(gp__stream *s)
{
    gp__tls *t = (gp__tls *)s;
    if (atomic_load(&t->shut))
        return;
    pthread_mutex_lock(&t->mu);
    (void)mbedtls_ssl_close_notify(&t->ssl); /* WANT_WRITE: the peer misses it */
    pthread_mutex_unlock(&t->mu);
}

static void st_shutdown(gp__stream *s)
{
    gp__tls_shutdown((gp__tls *)s);
}

static void st_close(gp__stream *s)
{
    gp__tls_close((gp__tls *)s);
}

static const gp__stream_ops tls_stream_ops = {
    .read = st_read,
    .writev = st_writev,
    .close_write = st_close_write,
    .shutdown = st_shutdown,
    .close = st_close,
};

gp__stream *gp__tls_stream(gp__tls *t)
{
    return &t->io;
}

int gp__tls_fd(const gp__tls *t)
{
    return t ? t->fd : -1;
}

void gp__tls_describe(gp__tls *t, char *buf, size_t cap)
{
    pthread_mutex_lock(&t->mu);
    snprintf(buf, cap, "%s %s", mbedtls_ssl_get_version(&t->ssl),
             mbedtls_ssl_get_ciphersuite(&t->ssl));
    pthread_mutex_unlock(&t->mu);
}
