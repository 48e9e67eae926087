/* Internal: the yamux wire format in one place (hashicorp/yamux spec.md and
 * const.go, unchanged 2018-2026). See docs/netrpc.md. */
#ifndef GP_NETRPC_MUX_WIRE_H
#define GP_NETRPC_MUX_WIRE_H

/* Every frame: 12-byte header, big-endian:
 *   [0] version  [1] type  [2..3] flags  [4..7] stream id  [8..11] length */
#define GP_MUX_VERSION 0
#define GP_MUX_HEADER_SIZE 12

/* Frame types. `length` means: Data = payload bytes that follow;
 * WindowUpdate = window increment; Ping = opaque value; GoAway = code. */
#define GP_MUX_TYPE_DATA 0
#define GP_MUX_TYPE_WINDOW_UPDATE 1
#define GP_MUX_TYPE_PING 2
#define GP_MUX_TYPE_GO_AWAY 3

/* Flags (bitwise OR). Unknown bits are ignored, as Go does. */
#define GP_MUX_FLAG_SYN 0x1
#define GP_MUX_FLAG_ACK 0x2
#define GP_MUX_FLAG_FIN 0x4
#define GP_MUX_FLAG_RST 0x8

/* GoAway codes. */
#define GP_MUX_GOAWAY_NORMAL 0
#define GP_MUX_GOAWAY_PROTO_ERR 1
#define GP_MUX_GOAWAY_INTERNAL_ERR 2

/* Stream id 0 is the session (Ping, GoAway). */
#define GP_MUX_SESSION_ID 0

/* Go's defaults, used by go-plugin: per-stream window (initial = max),
 * accept backlog, keepalive interval, write timeout (also the ping-answer
 * deadline). */
#define GP_MUX_INITIAL_WINDOW (256u * 1024u)
#define GP_MUX_ACCEPT_BACKLOG 256
#define GP_MUX_KEEPALIVE_INTERVAL_MS 30000
#define GP_MUX_WRITE_TIMEOUT_MS 10000
/* Ours, not Go's: open streams the peer may hold per session. */
#define GP_MUX_MAX_STREAMS 1024

#endif
