/*
 * ws.h — the relay's carriage over TCP: RFC 6455 WebSocket framing, the
 * HTTP/1.1 upgrade around it, and the HTTP CONNECT that opens a tunnel
 * through a proxy.  Sans-I/O: plaintext bytes in, bytes out (TLS for wss://
 * is the caller's, over memory BIOs).  docs/PROTOCOL.md, "WebSocket
 * carriage", is the contract; in short:
 *   - the client sends GET /srmudp with Upgrade: websocket, the server
 *     answers 101 or an HTTP error and closes;
 *   - every binary message is exactly one datagram (<= RDV_MAX_PACKET) in
 *     one unfragmented frame.  Text, continuation and fragmented frames are
 *     protocol errors, as are RSV bits (we negotiate no extension), unknown
 *     opcodes, unmasked client frames and masked server frames;
 *   - close, ping and pong are the only control frames.
 *
 * Errors are negative enum srm_error values; each function says which.
 */
#ifndef SRMUDP_WS_H
#define SRMUDP_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An HTTP head (request or response line and headers) larger than this is
 * refused: ours are a few hundred bytes, a browser's under 2 KiB. */
#define WS_MAX_HEAD 8192
#define WS_NONCE_BYTES 16	/* Sec-WebSocket-Key before base64 */
#define WS_ACCEPT_CHARS 28	/* base64 of a SHA-1 */
#define WS_FRAME_HEADER_MAX 14	/* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_MASK_BYTES 4
#define WS_CONTROL_MAX 125	/* RFC 6455 5.5: control payloads fit 7 bits */
/* A close frame with a status code: header and the two code bytes. */
#define WS_CLOSE_FRAME_MAX (WS_FRAME_HEADER_MAX + 2)

enum ws_opcode {
	WS_OP_CONTINUATION = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* Close status codes we send (RFC 6455 7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_NO_STATUS 1005 /* reported for a close frame without code */

/* ---- Client handshake ---------------------------------------------------- */

/* The upgrade request for host_header (the Host value: host[:port], IPv6
 * in brackets) and path, keyed by nonce (16 random bytes; keep them for
 * ws_client_response).  Returns its length (no NUL counted; out is
 * NUL-terminated), or 0 when cap is too small or host_header or path holds
 * a space or control byte. */
size_t ws_client_request(const char *host_header, const char *path,
			 const uint8_t nonce[WS_NONCE_BYTES], char *out, size_t cap);

/* The server's answer to that request in buf[0..len).  Returns the bytes of
 * the head consumed (> 0; frames may follow in the same buffer) when it is
 * a valid 101 with Upgrade: websocket, a Connection naming upgrade, the
 * Sec-WebSocket-Accept for nonce and no extension or subprotocol; 0 when
 * the head is incomplete (and under WS_MAX_HEAD).  Failures:
 * SRM_ERR_REFUSED  a well-formed answer other than 101 (*status says which);
 * SRM_ERR_AUTH     101 with a wrong or missing Sec-WebSocket-Accept;
 * SRM_ERR_INVALID  not HTTP, or a 101 without the upgrade headers, or with
 *                  an extension or subprotocol we never asked for;
 * SRM_ERR_NOMEM    no end of head within WS_MAX_HEAD bytes.
 * *status (may be NULL) is the HTTP status once a status line parsed, else 0. */
SRM_MUST_CHECK int ws_client_response(const uint8_t *buf, size_t len, const uint8_t nonce[WS_NONCE_BYTES],
		       int *status);

/* ---- Server handshake ---------------------------------------------------- */

struct ws_handshake {
	/* 101 to accept, else the HTTP error to answer before closing:
	 * 400 not HTTP/1.1, a missing or bad Host, Upgrade, Connection or
	 * Sec-WebSocket-Key, control bytes, obs-fold; 404 a path other than
	 * want_path (the query is ignored); 405 a method other than GET;
	 * 426 Sec-WebSocket-Version missing or not 13; 431 head too large. */
	int status;
	char accept[WS_ACCEPT_CHARS + 1]; /* Sec-WebSocket-Accept when 101 */
};

/* A client's upgrade request in buf[0..len).  Returns the bytes of the
 * head consumed (> 0; h->status says what to answer, frames may follow
 * when it is 101), or 0 when the head is incomplete.  SRM_ERR_NOMEM when
 * no end of head came within WS_MAX_HEAD bytes: h->status is 431, answer it
 * and close without reading more. */
int ws_server_request(const uint8_t *buf, size_t len, const char *want_path,
		      struct ws_handshake *h);

/* The answer for h: 101 with Sec-WebSocket-Accept, or the error with
 * Connection: close and Content-Length: 0 (and Sec-WebSocket-Version: 13
 * for 426, Allow: GET for 405).  Returns its length, 0 when cap is too
 * small. */
size_t ws_server_response(const struct ws_handshake *h, char *out, size_t cap);

/* ---- HTTP CONNECT (proxies) ----------------------------------------------- */

/* CONNECT host:port HTTP/1.1 with the same Host header (IPv6 literals in
 * brackets), and Proxy-Authorization: Basic basic_auth when basic_auth is
 * neither NULL nor empty (already base64 of "user:password").  Returns its
 * length, or 0 when cap is too small or an argument holds a space or
 * control byte. */
size_t http_connect_request(const char *host, uint16_t port, const char *basic_auth, char *out,
			    size_t cap);

/* The proxy's answer in buf[0..len): returns the bytes of the head consumed
 * (> 0) with *status set (2xx: the tunnel is up, and what follows is the
 * server's; anything else: give up, reporting the status), 0 when the head
 * is incomplete, SRM_ERR_INVALID when it is not HTTP, SRM_ERR_NOMEM when no
 * end of head came within WS_MAX_HEAD bytes. */
int http_connect_response(const uint8_t *buf, size_t len, int *status);

/* ---- Frames -------------------------------------------------------------- */

/* One frame parsed by ws_frame_next.  payload points into the caller's
 * buffer, already unmasked. */
struct ws_frame {
	uint8_t opcode;	      /* WS_OP_BINARY, WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG */
	const uint8_t *payload;
	size_t len;
	uint16_t close_code;  /* WS_OP_CLOSE: its status, WS_CLOSE_NO_STATUS if none */
};

/* The header of an unfragmented (FIN) frame carrying payload_len bytes,
 * into out[WS_FRAME_HEADER_MAX], with the shortest length encoding.  mask:
 * 4 bytes for a client frame (the caller then applies ws_mask to the
 * payload with the same key), NULL for a server frame.  Returns 2 to 14. */
size_t ws_frame_header(uint8_t out[WS_FRAME_HEADER_MAX], uint8_t opcode, size_t payload_len,
		       const uint8_t *mask);

/* XORs p[0..n) with the masking key, starting at key byte 0.  Masking twice
 * restores the input. */
void ws_mask(uint8_t *p, size_t n, const uint8_t mask[WS_MASK_BYTES]);

/* A whole close frame carrying code into out: masked with mask for a
 * client, unmasked when mask is NULL.  Returns its length. */
size_t ws_close_frame(uint8_t out[WS_CLOSE_FRAME_MAX], uint16_t code, const uint8_t *mask);

/* The next frame at buf[0..len), sent by a client (from_client: it must be
 * masked) or by a server (it must not be).  Returns the frame's length
 * (> 0): the payload is unmasked in place and *f describes it; or 0 when
 * more bytes are needed (a header's rules are checked as soon as the
 * header is complete, so a bad frame fails before its payload arrives).
 * SRM_ERR_NOMEM: a binary payload over max_payload (close with
 * WS_CLOSE_TOO_BIG); SRM_ERR_INVALID: any other protocol error (close with
 * WS_CLOSE_PROTOCOL): RSV bits, text, continuation or not-FIN frames,
 * unknown opcodes, wrong masking, control payloads over 125 bytes, a
 * 64-bit length with its top bit set, a close payload of one byte or with
 * a code that must not be sent.  Non-minimal length encodings are accepted. */
SRM_MUST_CHECK int ws_frame_next(uint8_t *buf, size_t len, bool from_client, size_t max_payload,
		  struct ws_frame *f);

#ifdef __cplusplus
}
#endif
#endif
