/*
 * wire.h — every on-the-wire constant and layout in one place.
 * docs/PROTOCOL.md describes the same bytes in prose; keep them in step.
 *
 * Outer packet (UDP payload), every type starts with the same 4 bytes:
 *   u8 type | u8 version | u16 reserved (zero)
 * Multi-byte integers on the wire are little-endian unless said otherwise;
 * variable-length integers inside encrypted frames use the QUIC encoding.
 */
#ifndef SRMUDP_WIRE_H
#define SRMUDP_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WIRE_VERSION 1

enum wire_type {
	WIRE_HANDSHAKE_INIT = 1,
	WIRE_HANDSHAKE_RESP = 2,
	WIRE_COOKIE_REPLY = 3,
	WIRE_DATA = 4,
	WIRE_PUNCH = 5,      /* keeps NAT state open towards a peer; no answer */
	WIRE_RENDEZVOUS = 8, /* peer <-> rendezvous server, see rendezvous.h */
	WIRE_RELAY = 9,      /* a DATA/handshake packet wrapped for the relay */
	WIRE_MESH = 10,      /* the same, between two rendezvous servers sharing a store */
	WIRE_VIA = 11,       /* a DATA/handshake packet forwarded by a mutual peer, see via.h */
};

#define WIRE_HEADER_BYTES 4
#define WIRE_TAG_BYTES 16
/* DATA: header | u32 receiver_index | u64 packet_number | ciphertext | tag.
 * The first 16 bytes are the AEAD associated data; the packet number is
 * the nonce. */
#define WIRE_DATA_HEADER_BYTES 16
#define WIRE_DATA_OVERHEAD (WIRE_DATA_HEADER_BYTES + WIRE_TAG_BYTES)

/* RFC 8899 / QUIC: every IPv4 and IPv6 path carries 1200 bytes of UDP
 * payload (IPv6 minimum MTU 1280 - 40 IP - 8 UDP = 1232). */
#define WIRE_BASE_UDP_PAYLOAD 1200
/* Largest UDP payload we ever probe for (Ethernet 1500 - 20 IPv4 - 8 UDP). */
#define WIRE_MAX_UDP_PAYLOAD 1472

/* Frames inside the decrypted payload of a DATA packet. */
enum wire_frame {
	FRAME_PADDING = 0x00,         /* rest of the packet is padding */
	FRAME_PING = 0x01,            /* ack-eliciting, no body */
	FRAME_ACK = 0x02,             /* see ack.h */
	FRAME_OPEN = 0x03,            /* stream_id, u16 port */
	FRAME_ACCEPT = 0x04,          /* stream_id */
	FRAME_RESET = 0x05,           /* stream_id, reason, final_size */
	FRAME_STREAM = 0x06,          /* stream_id, offset, length, data */
	FRAME_STREAM_FIN = 0x07,      /* same, and the stream ends after it */
	FRAME_MAX_DATA = 0x08,        /* session-wide credit */
	FRAME_MAX_STREAM_DATA = 0x09, /* stream_id, credit */
	FRAME_CLOSE = 0x0a,           /* reason: the peer is going away */
	FRAME_PATH_CHALLENGE = 0x0b,  /* 8 random bytes */
	FRAME_PATH_RESPONSE = 0x0c,   /* the same 8 bytes */
	FRAME_CONTROL = 0x0d,         /* length, msgpack map (control.h) */
};

/* Why a stream was reset; carried in FRAME_RESET. */
enum wire_reset_reason {
	RESET_ABORTED = 0,   /* the application aborted (SO_LINGER 0) */
	RESET_REFUSED = 1,   /* nothing listens on the port */
	RESET_TIMEOUT = 2,   /* the peer stopped answering */
	RESET_INTERNAL = 3,  /* protocol error or resource limit */
	RESET_SHUTDOWN = 4,  /* the engine is stopping */
};

/* ---- QUIC variable-length integers (RFC 9000 section 16) ---------------- */

#define VARINT_MAX ((UINT64_C(1) << 62) - 1)

static inline size_t varint_size(uint64_t v)
{
	return v < 64 ? 1 : v < 16384 ? 2 : v < 1073741824 ? 4 : 8;
}

/* Returns bytes written, or 0 if it does not fit or v > VARINT_MAX. */
static inline size_t varint_put(uint8_t *p, size_t cap, uint64_t v)
{
	size_t n = varint_size(v);
	if (v > VARINT_MAX || n > cap)
		return 0;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	p[0] |= (uint8_t)((n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : 3) << 6);
	return n;
}

/* Returns bytes read, or 0 if the input is truncated. */
static inline size_t varint_get(const uint8_t *p, size_t len, uint64_t *v)
{
	if (len < 1)
		return 0;
	size_t n = (size_t)1 << (p[0] >> 6);
	if (n > len)
		return 0;
	uint64_t x = p[0] & 0x3f;
	for (size_t i = 1; i < n; i++)
		x = (x << 8) | p[i];
	*v = x;
	return n;
}

/* ---- Fixed-width little-endian helpers ---------------------------------- */

static inline void put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put_le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline void wire_put_header(uint8_t *p, enum wire_type type)
{
	p[0] = (uint8_t)type;
	p[1] = WIRE_VERSION;
	p[2] = p[3] = 0;
}

#endif
