/*
 * frame.h — encoding and strict decoding of the frames inside a DATA
 * packet's plaintext (all but FRAME_ACK, which ack.h owns).
 *
 * Layouts (varint = QUIC variable-length integer, wire.h):
 *   PADDING          0x00 | zero bytes up to the end of the packet
 *   PING             0x01
 *   OPEN             0x03 | varint stream | u16le port
 *   ACCEPT           0x04 | varint stream
 *   RESET            0x05 | varint stream | varint reason | varint final_size
 *   STREAM           0x06 | varint stream | varint offset | varint length | data
 *   STREAM_FIN       0x07 | same as STREAM; the stream ends at offset+length
 *   MAX_DATA         0x08 | varint max (session bytes the peer may send)
 *   MAX_STREAM_DATA  0x09 | varint stream | varint max
 *   CLOSE            0x0a | varint reason
 *   PATH_CHALLENGE   0x0b | 8 bytes
 *   PATH_RESPONSE    0x0c | 8 bytes
 *   CONTROL          0x0d | varint length | bytes (msgpack, control.h)
 * Decoding rejects truncation, offset+length above VARINT_MAX, non-zero
 * padding and unknown types; the caller then drops the whole packet.
 */
#ifndef SRMUDP_FRAME_H
#define SRMUDP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FRAME_PATH_DATA_BYTES 8
/* Largest header of a STREAM frame: type + three 8-byte varints. */
#define FRAME_STREAM_MAX_HEADER 25
/* Largest CONTROL payload we accept (a control message is small). */
#define FRAME_CONTROL_MAX 1024

struct frame {
	enum wire_frame type;
	uint64_t stream;     /* OPEN ACCEPT RESET STREAM MAX_STREAM_DATA */
	uint64_t offset;     /* STREAM */
	uint64_t value;      /* RESET final_size, MAX_DATA, MAX_STREAM_DATA max */
	uint64_t reason;     /* RESET CLOSE */
	uint16_t port;       /* OPEN */
	int fin;             /* STREAM_FIN */
	const uint8_t *data; /* STREAM, CONTROL (points into the packet) */
	size_t len;
	uint8_t path[FRAME_PATH_DATA_BYTES];
};

/* Decode one frame at p (not an ACK: the caller hands those to ack.h).
 * Returns bytes consumed (> 0) or SRM_ERR_INVALID. */
int frame_decode(const uint8_t *p, size_t len, struct frame *f);

/* Encoders return bytes written, or 0 when the frame does not fit in cap
 * (nothing is written then). */
size_t frame_put_ping(uint8_t *p, size_t cap);
size_t frame_put_padding(uint8_t *p, size_t n); /* exactly n bytes, n >= 1 */
size_t frame_put_open(uint8_t *p, size_t cap, uint64_t stream, uint16_t port);
size_t frame_put_accept(uint8_t *p, size_t cap, uint64_t stream);
size_t frame_put_reset(uint8_t *p, size_t cap, uint64_t stream, uint64_t reason,
		       uint64_t final_size);
/* The header of a STREAM/STREAM_FIN frame carrying len bytes; the caller
 * copies the data right after it.  Returns the header size or 0. */
size_t frame_put_stream_header(uint8_t *p, size_t cap, uint64_t stream, uint64_t offset,
			       size_t len, int fin);
size_t frame_stream_header_size(uint64_t stream, uint64_t offset, size_t len);
size_t frame_put_max_data(uint8_t *p, size_t cap, uint64_t max);
size_t frame_put_max_stream_data(uint8_t *p, size_t cap, uint64_t stream, uint64_t max);
size_t frame_put_close(uint8_t *p, size_t cap, uint64_t reason);
size_t frame_put_path(uint8_t *p, size_t cap, enum wire_frame type,
		      const uint8_t data[FRAME_PATH_DATA_BYTES]);
size_t frame_put_control(uint8_t *p, size_t cap, const uint8_t *msg, size_t len);

#ifdef __cplusplus
}
#endif
#endif
