/*
 * via.c — the WIRE_VIA codec (via.h).
 */
#include <string.h>

#include "srmudp.h"
#include "noise.h" /* SRM_DROP_CODE */
#include "via.h"

size_t via_wrap(enum via_dir dir, const uint8_t key[VIA_KEY_BYTES], const uint8_t *inner,
		size_t len, uint8_t *out, size_t cap)
{
	if (len > cap || cap - len < VIA_OVERHEAD)
		return 0;
	memmove(out + VIA_OVERHEAD, inner, len);
	wire_put_header(out, WIRE_VIA);
	out[2] = (uint8_t)dir;
	memcpy(out + WIRE_HEADER_BYTES, key, VIA_KEY_BYTES);
	return len + VIA_OVERHEAD;
}

int via_parse(const uint8_t *pkt, size_t len, struct via_view *v)
{
	if (len < VIA_OVERHEAD + WIRE_HEADER_BYTES || pkt[0] != WIRE_VIA)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (pkt[1] != WIRE_VERSION)
		return SRM_DROP_CODE(SRM_DROP_VERSION);
	if ((pkt[2] != VIA_TO && pkt[2] != VIA_FROM) || pkt[3] != 0)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	const uint8_t *inner = pkt + VIA_OVERHEAD;
	/* One hop: only what a session sends travels inside. */
	switch (inner[0]) {
	case WIRE_HANDSHAKE_INIT:
	case WIRE_HANDSHAKE_RESP:
	case WIRE_COOKIE_REPLY:
	case WIRE_DATA:
		break;
	default:
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	}
	v->dir = (enum via_dir)pkt[2];
	v->key = pkt + WIRE_HEADER_BYTES;
	v->inner = inner;
	v->inner_len = len - VIA_OVERHEAD;
	return 0;
}

void via_turn(uint8_t *pkt, const uint8_t origin[VIA_KEY_BYTES])
{
	pkt[2] = VIA_FROM;
	memcpy(pkt + WIRE_HEADER_BYTES, origin, VIA_KEY_BYTES);
}
