/* goplugin-c: error codes and the words that go with them.
 *
 * Every fallible call returns a gp_err; GP_OK (0) is the only success. The
 * code says what kind of failure it was; the words (what was expected, what
 * came) go into a gp_status the caller passes (NULL: no words wanted).
 * docs/errors.md has the whole rule.
 */
#ifndef GOPLUGIN_ERR_H
#define GOPLUGIN_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gp_err {
    GP_OK = 0,
    GP_EINVAL,       /* bad argument or configuration; nothing changed */
    GP_ENOMEM,       /* allocation failed */
    GP_ESTATE,       /* not valid in the handle's current state */
    GP_ETIMEDOUT,    /* a deadline passed */
    GP_EPROTO,       /* the peer broke the protocol (handshake line, frame, message) */
    GP_EVERSION,     /* no protocol version both sides accept */
    GP_EEXITED,      /* the plugin process exited */
    GP_ECONNECT,     /* could not connect to the plugin's address */
    GP_ECLOSED,      /* the connection is closed */
    GP_EIO,          /* an I/O error on a pipe or socket */
    GP_EREMOTE,      /* the remote side answered with an error (see gp_status) */
    GP_ENOTFOUND,    /* unknown plugin name, method or process */
    GP_EMSGSIZE,     /* a message or line over its size limit */
    GP_ECHECKSUM,    /* the plugin binary's checksum did not match */
    GP_EUNSUPPORTED, /* valid, but not supported by this build or protocol */
    GP_ESYS,         /* an operating system call failed */
    GP_ETLS,         /* TLS or certificate failure */
    GP_EOF,          /* a stream ended: the peer sent its last message (not a failure) */
    GP_EBUSY,        /* held by another process (a lock); st says by whom */
    GP_ERR_COUNT_    /* not an error: the number of codes */
} gp_err;

/* A short fixed description of the code ("timed out"). Never NULL. Static
 * storage. Thread safety: any thread. */
const char *gp_strerror(gp_err err);

/* The longest error message, NUL included; longer words are cut. */
#define GP_ERRMSG_MAX 512
#define GP_STATUS_MSG_MAX GP_ERRMSG_MAX /* the older name */

/* The outcome of one call, owned by the caller (usually on its stack) and
 * filled by the call it is passed to: after a failure, err is the code
 * returned and msg the words; for GP_EREMOTE, msg is the plugin's error
 * text (the gRPC status message or the net/rpc Error string). Read it only
 * after the call failed: on success some calls leave it untouched. Plain
 * data: reading it needs no lock once the call has returned. */
typedef struct gp_status {
    gp_err err;
    int grpc_code; /* gRPC status code on the grpc wire, else 0 */
    char msg[GP_ERRMSG_MAX];
} gp_status;

#ifdef __cplusplus
}
#endif
#endif
