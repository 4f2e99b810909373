/*
 * via.h — "connect via": a peer both sides are connected to forwards their
 * packets as they are (docs/NAT.md "Connect via").  When a cannot reach b
 * directly or through a gate, but c holds sessions with both, a sends its
 * packets for b to c, and c passes them on:
 *
 *   a -> c   WIRE_VIA | VIA_TO   | b's key (32) | inner packet
 *   c -> b   WIRE_VIA | VIA_FROM | a's key (32) | the same inner packet
 *
 * (the direction sits in the header's first reserved byte).  The inner
 * packet is a handshake or DATA packet of the a-b session, sealed end to
 * end: c sees ciphertext only.  c forwards only from the address of an
 * established session with a listed peer, to a listed peer it holds an
 * established direct session with; b accepts only from such a peer, and
 * only inner packets of a peer it lists.  One hop, never nested: the inner
 * packet must be a handshake or DATA packet.
 *
 * Sans-I/O: the codec only; the driver (engine_via.c) decides.
 */
#ifndef SRMUDP_VIA_H
#define SRMUDP_VIA_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define VIA_KEY_BYTES 32
#define VIA_OVERHEAD (WIRE_HEADER_BYTES + VIA_KEY_BYTES)

enum via_dir {
	VIA_TO = 1,   /* to the forwarding peer: key names the target */
	VIA_FROM = 2, /* from the forwarding peer: key names the origin */
};

/* A parsed WIRE_VIA packet; key and inner point into it. */
struct via_view {
	enum via_dir dir;
	const uint8_t *key;
	const uint8_t *inner;
	size_t inner_len;
};

/* Wrap inner (len bytes) for dir and key into out (cap bytes; out may be
 * inner: it moves up).  Returns the length, or 0 when it does not fit. */
size_t via_wrap(enum via_dir dir, const uint8_t key[VIA_KEY_BYTES], const uint8_t *inner,
		size_t len, uint8_t *out, size_t cap);

/* Strict parse: type WIRE_VIA, version, a known direction, reserved zero,
 * an inner handshake, cookie or DATA packet.  0, or SRM_DROP_CODE(reason). */
int via_parse(const uint8_t *pkt, size_t len, struct via_view *v)
	__attribute__((warn_unused_result));

/* The forwarder turns a parsed VIA_TO packet into the VIA_FROM it sends
 * on, in place: the direction flips and the key becomes the origin's. */
void via_turn(uint8_t *pkt, const uint8_t origin[VIA_KEY_BYTES]);

#endif
