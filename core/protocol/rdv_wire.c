/*
 * rdv_wire.c — rendezvous message codec: wire header | one msgpack map
 * with small integer keys (rendezvous.h, enum rdv_field), plus the
 * record encoding the shared store keeps.
 *
 * Every packet is untrusted input from anyone on the Internet, so the
 * decoder first walks the msgpack structure itself (mp_walk): msgpack-c
 * allocates count * 16 bytes as soon as it reads a container header, and
 * a 6-byte packet could otherwise claim an array of 2^28 entries.  Only a
 * packet whose every container fits in its remaining bytes reaches
 * msgpack_unpack_next.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>
#include <sodium.h>

#include "rendezvous.h"

#define MP_MAX_DEPTH 4
#define RECORD_VERSION 1

/* ---- Endpoints ---------------------------------------------------------- */

/* IPv4, or the IPv4 inside an IPv4-mapped IPv6 address: 1 and the bytes. */
static int v4_of(const struct rdv_endpoint *ep, uint8_t a[4], uint16_t *port)
{
	if (ep->addr.ss_family == AF_INET && ep->len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&ep->addr;
		memcpy(a, &s->sin_addr, 4);
		*port = ntohs(s->sin_port);
		return 1;
	}
	if (ep->addr.ss_family == AF_INET6 && ep->len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&ep->addr;
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			memcpy(a, s->sin6_addr.s6_addr + 12, 4);
			*port = ntohs(s->sin6_port);
			return 1;
		}
	}
	return 0;
}

size_t rdv_endpoint_put(uint8_t *p, size_t cap, const struct rdv_endpoint *ep)
{
	uint8_t a[4];
	uint16_t port;

	if (v4_of(ep, a, &port)) {
		if (cap < 6)
			return 0;
		memcpy(p, a, 4);
		p[4] = (uint8_t)(port >> 8);
		p[5] = (uint8_t)port;
		return 6;
	}
	if (ep->addr.ss_family == AF_INET6 && ep->len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&ep->addr;
		if (cap < 18)
			return 0;
		memcpy(p, s->sin6_addr.s6_addr, 16);
		p[16] = (uint8_t)(ntohs(s->sin6_port) >> 8);
		p[17] = (uint8_t)ntohs(s->sin6_port);
		return 18;
	}
	return 0;
}

int rdv_endpoint_get(const uint8_t *p, size_t len, struct rdv_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	if (len == 6) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ep->addr;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, p, 4);
		s->sin_port = htons((uint16_t)(p[4] << 8 | p[5]));
		ep->len = sizeof(*s);
		return 0;
	}
	if (len == 18) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ep->addr;
		s->sin6_family = AF_INET6;
		memcpy(s->sin6_addr.s6_addr, p, 16);
		s->sin6_port = htons((uint16_t)(p[16] << 8 | p[17]));
		ep->len = sizeof(*s);
		return 0;
	}
	return SRM_ERR_INVALID;
}

int rdv_endpoint_equal(const struct rdv_endpoint *a, const struct rdv_endpoint *b)
{
	uint8_t x[18], y[18];
	size_t n = rdv_endpoint_put(x, sizeof(x), a);

	return n != 0 && a->via == b->via && n == rdv_endpoint_put(y, sizeof(y), b) &&
	       memcmp(x, y, n) == 0;
}

const char *rdv_endpoint_str(const struct rdv_endpoint *ep, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	uint8_t a[4];
	uint16_t port;

	if (v4_of(ep, a, &port)) {
		inet_ntop(AF_INET, a, host, sizeof(host));
		snprintf(buf, cap, "%s:%u", host, port);
	} else if (ep->addr.ss_family == AF_INET6 && ep->len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&ep->addr;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		snprintf(buf, cap, "[%s]:%u", host, ntohs(s->sin6_port));
	} else {
		snprintf(buf, cap, "(none)");
	}
	return buf;
}

/* ---- Gate entries ------------------------------------------------------- */

size_t rdv_gate_put(uint8_t *p, size_t cap, const struct rdv_gate *g)
{
	size_t n = 0;
	if (cap < RDV_GATE_MAX_BYTES)
		return 0;
	memcpy(p, g->key, RDV_KEY_BYTES);
	p[RDV_KEY_BYTES] = (uint8_t)(g->ws_port >> 8);
	p[RDV_KEY_BYTES + 1] = (uint8_t)g->ws_port;
	p[RDV_KEY_BYTES + 2] = g->wss ? 1 : 0;
	if (g->udp.len && (n = rdv_endpoint_put(p + RDV_KEY_BYTES + 3, 18, &g->udp)) == 0)
		return 0;
	return RDV_KEY_BYTES + 3 + n;
}

int rdv_gate_get(const uint8_t *p, size_t len, struct rdv_gate *g)
{
	memset(g, 0, sizeof(*g));
	if (len < RDV_KEY_BYTES + 3 || p[RDV_KEY_BYTES + 2] > 1)
		return SRM_ERR_INVALID;
	memcpy(g->key, p, RDV_KEY_BYTES);
	g->ws_port = (uint16_t)(p[RDV_KEY_BYTES] << 8 | p[RDV_KEY_BYTES + 1]);
	g->wss = p[RDV_KEY_BYTES + 2];
	len -= RDV_KEY_BYTES + 3;
	if (len && rdv_endpoint_get(p + RDV_KEY_BYTES + 3, len, &g->udp) != 0)
		return SRM_ERR_INVALID;
	return 0;
}

/* ---- Encoding ----------------------------------------------------------- */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int overflow;
};

static int wbuf_write(void *data, const char *buf, size_t len)
{
	struct wbuf *w = data;

	if (w->overflow || len > w->cap - w->len) {
		w->overflow = 1;
		return -1;
	}
	memcpy(w->p + w->len, buf, len);
	w->len += len;
	return 0;
}

static void pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, p, n);
}

static int pack_endpoint(msgpack_packer *pk, const struct rdv_endpoint *ep)
{
	uint8_t b[18];
	size_t n = rdv_endpoint_put(b, sizeof(b), ep);

	if (n == 0)
		return -1;
	pack_bin(pk, b, n);
	return 0;
}

/* One encoding pass with pad_len bytes of padding (or none when < 0).
 * The MAC, if any, is left as zeros.  Returns the length or 0. */
static size_t encode_pass(const struct rdv_msg *m, int with_mac, long pad_len, uint8_t *out,
			  size_t cap)
{
	struct wbuf w = { out + WIRE_HEADER_BYTES, 0, cap - WIRE_HEADER_BYTES, 0 };
	static const uint8_t zero_mac[RDV_MAC_BYTES];
	uint8_t pad[RDV_MAX_PACKET] = { 0 };
	msgpack_packer pk;
	uint32_t fields = m->present | 1u << RDV_F_KIND;
	size_t n = 0;

	fields &= ~(1u << RDV_F_PAD | 1u << RDV_F_MAC);
	for (int f = 0; f < RDV_F_COUNT; f++)
		n += (fields >> f) & 1u;
	n += (pad_len >= 0) + (with_mac != 0);
	if (cap < WIRE_HEADER_BYTES || pad_len > (long)sizeof(pad))
		return 0;
	msgpack_packer_init(&pk, &w, wbuf_write);
	msgpack_pack_map(&pk, n);
	for (int f = 0; f < RDV_F_COUNT; f++) {
		if (!((fields >> f) & 1u))
			continue;
		msgpack_pack_uint8(&pk, (uint8_t)f);
		switch ((enum rdv_field)f) {
		case RDV_F_KIND: msgpack_pack_uint8(&pk, m->kind); break;
		case RDV_F_PUB: pack_bin(&pk, m->pub, RDV_KEY_BYTES); break;
		case RDV_F_EPH: pack_bin(&pk, m->eph, RDV_KEY_BYTES); break;
		case RDV_F_PEER: pack_bin(&pk, m->peer, RDV_KEY_BYTES); break;
		case RDV_F_SERVER: pack_bin(&pk, m->server, RDV_KEY_BYTES); break;
		case RDV_F_COOKIE: pack_bin(&pk, m->cookie, RDV_COOKIE_BYTES); break;
		case RDV_F_TIME: msgpack_pack_uint64(&pk, m->time); break;
		case RDV_F_TS: msgpack_pack_uint64(&pk, m->ts); break;
		case RDV_F_TTL: msgpack_pack_uint64(&pk, m->ttl); break;
		case RDV_F_CTR: msgpack_pack_uint64(&pk, m->ctr); break;
		case RDV_F_ADDR:
			if (pack_endpoint(&pk, &m->addr) != 0)
				return 0;
			break;
		case RDV_F_CANDS:
			if (m->cand_count > RDV_MAX_ENDPOINTS)
				return 0;
			msgpack_pack_array(&pk, m->cand_count);
			for (size_t i = 0; i < m->cand_count; i++)
				if (pack_endpoint(&pk, &m->cands[i]) != 0)
					return 0;
			break;
		case RDV_F_ALLOW:
			if (m->allow_count > RDV_MAX_ALLOW)
				return 0;
			pack_bin(&pk, m->allow, m->allow_count * RDV_TAG_BYTES);
			break;
		case RDV_F_GATES:
			if (m->gate_count > RDV_MAX_GATES)
				return 0;
			msgpack_pack_array(&pk, m->gate_count);
			for (size_t i = 0; i < m->gate_count; i++) {
				uint8_t b[RDV_GATE_MAX_BYTES];
				size_t n = rdv_gate_put(b, sizeof(b), &m->gates[i]);
				if (n == 0)
					return 0;
				pack_bin(&pk, b, n);
			}
			break;
		case RDV_F_PAD:
		case RDV_F_MAC:
		case RDV_F_COUNT: break;
		}
	}
	if (pad_len >= 0) {
		msgpack_pack_uint8(&pk, RDV_F_PAD);
		pack_bin(&pk, pad, (size_t)pad_len);
	}
	if (with_mac) {
		msgpack_pack_uint8(&pk, RDV_F_MAC);
		pack_bin(&pk, zero_mac, RDV_MAC_BYTES);
	}
	if (w.overflow)
		return 0;
	wire_put_header(out, WIRE_RENDEZVOUS);
	return WIRE_HEADER_BYTES + w.len;
}

size_t rdv_msg_encode(const struct rdv_msg *m, const uint8_t *mac_key, size_t pad_to,
		      uint8_t *out, size_t cap)
{
	size_t len = encode_pass(m, mac_key != NULL, -1, out, cap);

	if (len == 0)
		return 0;
	if (len < pad_to) {
		/* Key (1) + bin8 header (2) + pad; bin16 past 255 needs one
		 * more, so grow until the length is reached. */
		long pad = (long)(pad_to - len) - 3;
		if (pad < 0)
			pad = 0;
		for (int i = 0; i < 3; i++) {
			len = encode_pass(m, mac_key != NULL, pad, out, cap);
			if (len == 0 || len >= pad_to)
				break;
			pad += (long)(pad_to - len);
		}
		if (len < pad_to)
			return 0;
	}
	if (mac_key != NULL)
		crypto_generichash(out + len - RDV_MAC_BYTES, RDV_MAC_BYTES, out,
				   len - RDV_MAC_BYTES, mac_key, RDV_KEY_BYTES);
	return len;
}

/* ---- Decoding ----------------------------------------------------------- */

static int be(const uint8_t *p, size_t n, size_t *v)
{
	size_t x = 0;
	for (size_t i = 0; i < n; i++)
		x = x << 8 | p[i];
	*v = x;
	return 0;
}

/* Walk one msgpack object at *off without allocating: containers must not
 * claim more elements than bytes remain, nesting is bounded.  0 or -1. */
static int mp_walk(const uint8_t *p, size_t len, size_t *off, int depth)
{
	size_t o = *off, n = 0, skip = 0, items = 0;
	uint8_t b;

	if (o >= len || depth > MP_MAX_DEPTH)
		return -1;
	b = p[o++];
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
		skip = 0;
	} else if (b >= 0x80 && b <= 0x8f) {
		items = 2u * (b & 0x0f);
	} else if (b >= 0x90 && b <= 0x9f) {
		items = b & 0x0f;
	} else if (b >= 0xa0 && b <= 0xbf) {
		skip = b & 0x1f;
	} else {
		/* Width of the length/value that follows, per type byte. */
		static const struct { uint8_t lo, hi, w, kind; } t[] = {
			{ 0xc4, 0xc6, 0, 1 }, /* bin 8/16/32: length */
			{ 0xc7, 0xc9, 0, 2 }, /* ext 8/16/32: length + type */
			{ 0xca, 0xca, 4, 0 }, { 0xcb, 0xcb, 8, 0 },
			{ 0xcc, 0xcc, 1, 0 }, { 0xcd, 0xcd, 2, 0 }, { 0xce, 0xce, 4, 0 }, { 0xcf, 0xcf, 8, 0 },
			{ 0xd0, 0xd0, 1, 0 }, { 0xd1, 0xd1, 2, 0 }, { 0xd2, 0xd2, 4, 0 }, { 0xd3, 0xd3, 8, 0 },
			{ 0xd4, 0xd8, 0, 3 }, /* fixext 1..16 + type */
			{ 0xd9, 0xdb, 0, 1 }, /* str 8/16/32 */
			{ 0xdc, 0xdd, 0, 4 }, /* array 16/32 */
			{ 0xde, 0xdf, 0, 5 }, /* map 16/32 */
		};
		size_t i, lw;
		for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
			if (b >= t[i].lo && b <= t[i].hi)
				break;
		if (i == sizeof(t) / sizeof(t[0]))
			return -1; /* 0xc1: never used */
		switch (t[i].kind) {
		case 0:
			skip = t[i].w;
			break;
		case 1:
		case 2:
			lw = (size_t)1 << (b - t[i].lo);
			if (lw > len - o)
				return -1;
			be(p + o, lw, &n);
			o += lw;
			skip = n + (t[i].kind == 2);
			break;
		case 3:
			skip = 1 + ((size_t)1 << (b - 0xd4));
			break;
		case 4:
		case 5:
			lw = b & 1 ? 4 : 2;
			if (lw > len - o)
				return -1;
			be(p + o, lw, &n);
			o += lw;
			if (t[i].kind == 5 && n > (len - o) / 2)
				return -1;
			items = t[i].kind == 5 ? 2 * n : n;
			break;
		}
	}
	if (skip > len - o || items > len - o)
		return -1;
	o += skip;
	for (size_t i = 0; i < items; i++)
		if (mp_walk(p, len, &o, depth + 1) != 0)
			return -1;
	*off = o;
	return 0;
}

/* Parse one msgpack map that ends the buffer; the caller destroys res. */
static int mp_parse_map(const uint8_t *p, size_t len, msgpack_unpacked *res)
{
	size_t off = 0;

	if (mp_walk(p, len, &off, 0) != 0 || off != len)
		return -1;
	off = 0;
	if (msgpack_unpack_next(res, (const char *)p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len || res->data.type != MSGPACK_OBJECT_MAP)
		return -1;
	return 0;
}

static int get_bin(const msgpack_object *o, void *dst, size_t n)
{
	if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n)
		return -1;
	memcpy(dst, o->via.bin.ptr, n);
	return 0;
}

static int get_uint(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*v = o->via.u64;
	return 0;
}

static int get_endpoint(const msgpack_object *o, struct rdv_endpoint *ep)
{
	if (o->type != MSGPACK_OBJECT_BIN)
		return -1;
	return rdv_endpoint_get((const uint8_t *)o->via.bin.ptr, o->via.bin.size, ep);
}

static int get_endpoints(const msgpack_object *o, struct rdv_endpoint *eps, size_t max,
			 size_t *count)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > max)
		return -1;
	for (uint32_t i = 0; i < o->via.array.size; i++)
		if (get_endpoint(&o->via.array.ptr[i], &eps[i]) != 0)
			return -1;
	*count = o->via.array.size;
	return 0;
}

static int get_gates(const msgpack_object *o, struct rdv_msg *m)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > RDV_MAX_GATES)
		return -1;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];
		if (e->type != MSGPACK_OBJECT_BIN ||
		    rdv_gate_get((const uint8_t *)e->via.bin.ptr, e->via.bin.size, &m->gates[i]) != 0)
			return -1;
	}
	m->gate_count = o->via.array.size;
	return 0;
}

/* A whole number of tags, at most RDV_MAX_ALLOW. */
static int get_tags(const msgpack_object *o, uint8_t *dst, size_t *count)
{
	if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size % RDV_TAG_BYTES != 0 ||
	    o->via.bin.size > RDV_MAX_ALLOW * RDV_TAG_BYTES)
		return -1;
	memcpy(dst, o->via.bin.ptr, o->via.bin.size);
	*count = o->via.bin.size / RDV_TAG_BYTES;
	return 0;
}

static int decode_field(struct rdv_msg *m, uint64_t key, const msgpack_object *v)
{
	uint64_t x;

	switch (key) {
	case RDV_F_KIND:
		if (get_uint(v, &x) != 0 || x > 255)
			return -1;
		m->kind = (uint8_t)x;
		return 0;
	case RDV_F_PUB: return get_bin(v, m->pub, RDV_KEY_BYTES);
	case RDV_F_EPH: return get_bin(v, m->eph, RDV_KEY_BYTES);
	case RDV_F_PEER: return get_bin(v, m->peer, RDV_KEY_BYTES);
	case RDV_F_SERVER: return get_bin(v, m->server, RDV_KEY_BYTES);
	case RDV_F_COOKIE: return get_bin(v, m->cookie, RDV_COOKIE_BYTES);
	case RDV_F_MAC: return get_bin(v, m->mac, RDV_MAC_BYTES);
	case RDV_F_TIME: return get_uint(v, &m->time);
	case RDV_F_TS: return get_uint(v, &m->ts);
	case RDV_F_TTL: return get_uint(v, &m->ttl);
	case RDV_F_CTR: return get_uint(v, &m->ctr);
	case RDV_F_ADDR: return get_endpoint(v, &m->addr);
	case RDV_F_CANDS: return get_endpoints(v, m->cands, RDV_MAX_ENDPOINTS, &m->cand_count);
	case RDV_F_ALLOW: return get_tags(v, m->allow, &m->allow_count);
	case RDV_F_GATES: return get_gates(v, m);
	case RDV_F_PAD: return v->type == MSGPACK_OBJECT_BIN ? 0 : -1;
	default: return 0; /* unknown keys: a newer minor version; skip */
	}
}

int rdv_msg_decode(const uint8_t *pkt, size_t len, struct rdv_msg *m)
{
	msgpack_unpacked res;
	int rc = SRM_DROP_CODE(SRM_DROP_MALFORMED);

	memset(m, 0, sizeof(*m));
	if (len < WIRE_HEADER_BYTES + 1 || len > RDV_MAX_PACKET || pkt[0] != WIRE_RENDEZVOUS)
		return rc;
	if (pkt[1] != WIRE_VERSION)
		return SRM_DROP_CODE(SRM_DROP_VERSION);
	msgpack_unpacked_init(&res);
	if (mp_parse_map(pkt + WIRE_HEADER_BYTES, len - WIRE_HEADER_BYTES, &res) != 0)
		goto out;
	const msgpack_object_map *map = &res.data.via.map;
	for (uint32_t i = 0; i < map->size; i++) {
		const msgpack_object_kv *kv = &map->ptr[i];
		uint64_t key;
		if (get_uint(&kv->key, &key) != 0)
			goto out;
		if (key < RDV_F_COUNT) {
			if (RDV_HAS(m, key))
				goto out; /* duplicate */
			m->present |= 1u << key;
		}
		if (decode_field(m, key, &kv->val) != 0)
			goto out;
		if (key == RDV_F_MAC) {
			/* Last entry, its 16 bytes end the packet: the MAC
			 * covers everything before them and nothing escapes. */
			if (i != map->size - 1 ||
			    memcmp(pkt + len - RDV_MAC_BYTES, m->mac, RDV_MAC_BYTES) != 0)
				goto out;
			m->mac_off = len - RDV_MAC_BYTES;
		}
	}
	if (!RDV_HAS(m, RDV_F_KIND))
		goto out;
	rc = 0;
out:
	msgpack_unpacked_destroy(&res);
	if (rc != 0)
		memset(m, 0, sizeof(*m));
	return rc;
}

int rdv_msg_verify(const uint8_t *pkt, size_t len, const struct rdv_msg *m,
		   const uint8_t key[RDV_KEY_BYTES])
{
	uint8_t mac[RDV_MAC_BYTES];

	if (!RDV_HAS(m, RDV_F_MAC) || m->mac_off == 0 || m->mac_off + RDV_MAC_BYTES != len)
		return SRM_DROP_CODE(SRM_DROP_MAC);
	crypto_generichash(mac, sizeof(mac), pkt, m->mac_off, key, RDV_KEY_BYTES);
	if (sodium_memcmp(mac, pkt + m->mac_off, RDV_MAC_BYTES) != 0)
		return SRM_DROP_CODE(SRM_DROP_MAC);
	return 0;
}

/* ---- Store records ------------------------------------------------------ */

/* [version, pub, reflexive, [cands], last_ts, server_id, via, allow] */
size_t rdv_record_encode(const struct rdv_record *r, uint8_t *out, size_t cap)
{
	struct wbuf w = { out, 0, cap, 0 };
	msgpack_packer pk;

	if (r->cand_count > RDV_MAX_CANDIDATES || r->allow_count > RDV_MAX_ALLOW)
		return 0;
	msgpack_packer_init(&pk, &w, wbuf_write);
	msgpack_pack_array(&pk, 8);
	msgpack_pack_uint8(&pk, RECORD_VERSION);
	pack_bin(&pk, r->pub, RDV_KEY_BYTES);
	if (pack_endpoint(&pk, &r->reflexive) != 0)
		return 0;
	msgpack_pack_array(&pk, r->cand_count);
	for (size_t i = 0; i < r->cand_count; i++)
		if (pack_endpoint(&pk, &r->cands[i]) != 0)
			return 0;
	msgpack_pack_uint64(&pk, r->last_ts);
	msgpack_pack_uint64(&pk, r->server_id);
	msgpack_pack_uint8(&pk, r->reflexive.via);
	pack_bin(&pk, r->allow, r->allow_count * RDV_TAG_BYTES);
	return w.overflow ? 0 : w.len;
}

int rdv_record_decode(const uint8_t *p, size_t len, struct rdv_record *r)
{
	msgpack_unpacked res;
	size_t off = 0;
	uint64_t ver;
	int rc = SRM_ERR_INVALID;

	memset(r, 0, sizeof(*r));
	if (len > RDV_MAX_PACKET || mp_walk(p, len, &off, 0) != 0 || off != len)
		return rc;
	msgpack_unpacked_init(&res);
	off = 0;
	if (msgpack_unpack_next(&res, (const char *)p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    res.data.type != MSGPACK_OBJECT_ARRAY || res.data.via.array.size < 6 ||
	    res.data.via.array.size > 8)
		goto out;
	const msgpack_object *a = res.data.via.array.ptr;
	if (get_uint(&a[0], &ver) != 0 || ver != RECORD_VERSION ||
	    get_bin(&a[1], r->pub, RDV_KEY_BYTES) != 0 || get_endpoint(&a[2], &r->reflexive) != 0 ||
	    get_endpoints(&a[3], r->cands, RDV_MAX_CANDIDATES, &r->cand_count) != 0 ||
	    get_uint(&a[4], &r->last_ts) != 0 || get_uint(&a[5], &r->server_id) != 0)
		goto out;
	/* The 7th element (the reflexive address's via) is newer: a record
	 * written by an older server has none and came over UDP. */
	uint64_t via = RDV_VIA_UDP;
	if (res.data.via.array.size >= 7 && (get_uint(&a[6], &via) != 0 || via > RDV_VIA_WS))
		goto out;
	r->reflexive.via = (uint8_t)via;
	/* The 8th (consent tags) too: an older server's record consents to
	 * nobody, so its registrant cannot be found until it refreshes with
	 * a new server (at most RDV_REFRESH_MS). */
	if (res.data.via.array.size == 8 && get_tags(&a[7], r->allow, &r->allow_count) != 0)
		goto out;
	rc = 0;
out:
	msgpack_unpacked_destroy(&res);
	if (rc != 0)
		memset(r, 0, sizeof(*r));
	return rc;
}

/* ---- Keys and counters -------------------------------------------------- */

void rdv_pair_tag(const uint8_t a[RDV_KEY_BYTES], const uint8_t b[RDV_KEY_BYTES],
		  uint8_t tag[RDV_TAG_BYTES])
{
	/* 16 bytes with its NUL: BLAKE2b's shortest key. */
	static const char label[] = "srmudp rdv pair";
	uint8_t msg[2 * RDV_KEY_BYTES];
	int a_first = memcmp(a, b, RDV_KEY_BYTES) <= 0;

	memcpy(msg, a_first ? a : b, RDV_KEY_BYTES);
	memcpy(msg + RDV_KEY_BYTES, a_first ? b : a, RDV_KEY_BYTES);
	crypto_generichash(tag, RDV_TAG_BYTES, msg, sizeof(msg), (const uint8_t *)label,
			   sizeof(label));
}

int rdv_tags_have(const uint8_t *list, size_t count, const uint8_t tag[RDV_TAG_BYTES])
{
	for (size_t i = 0; i < count; i++)
		if (memcmp(list + i * RDV_TAG_BYTES, tag, RDV_TAG_BYTES) == 0)
			return 1;
	return 0;
}

int rdv_derive_keys(const uint8_t secret[RDV_KEY_BYTES], const uint8_t public_key[RDV_KEY_BYTES],
		    const uint8_t client_pub[RDV_KEY_BYTES], const uint8_t eph_pub[RDV_KEY_BYTES],
		    uint8_t k_auth[RDV_KEY_BYTES], uint8_t k_c2s[RDV_KEY_BYTES],
		    uint8_t k_s2c[RDV_KEY_BYTES])
{
	static const char labels[3][4] = { { 'a', 'u', 't', 'h' }, { 'c', '2', 's', 0 },
					   { 's', '2', 'c', 0 } };
	uint8_t *outs[3] = { k_auth, k_c2s, k_s2c };
	uint8_t dh[RDV_KEY_BYTES], msg[4 + 2 * RDV_KEY_BYTES];

	if (crypto_scalarmult(dh, secret, public_key) != 0) {
		sodium_memzero(dh, sizeof(dh));
		return SRM_ERR_INVALID;
	}
	memcpy(msg + 4, client_pub, RDV_KEY_BYTES);
	memcpy(msg + 4 + RDV_KEY_BYTES, eph_pub, RDV_KEY_BYTES);
	for (int i = 0; i < 3; i++) {
		memcpy(msg, labels[i], 4);
		crypto_generichash(outs[i], RDV_KEY_BYTES, msg, sizeof(msg), dh, sizeof(dh));
	}
	sodium_memzero(dh, sizeof(dh));
	return 0;
}

int rdv_pin_keys(const uint8_t secret[RDV_KEY_BYTES], const uint8_t public_key[RDV_KEY_BYTES],
		 uint8_t k_auth[RDV_KEY_BYTES], uint8_t k_c2s[RDV_KEY_BYTES],
		 uint8_t k_s2c[RDV_KEY_BYTES])
{
	uint8_t *keys[3] = { k_auth, k_c2s, k_s2c };
	uint8_t pdh[RDV_KEY_BYTES], k[RDV_KEY_BYTES];
	int rc = 0;

	if (crypto_scalarmult(pdh, secret, public_key) != 0)
		rc = SRM_ERR_INVALID;
	for (int i = 0; i < 3; i++) {
		memcpy(k, keys[i], RDV_KEY_BYTES);
		if (rc == 0)
			crypto_generichash(keys[i], RDV_KEY_BYTES, k, RDV_KEY_BYTES, pdh, sizeof(pdh));
		else
			sodium_memzero(keys[i], RDV_KEY_BYTES);
	}
	sodium_memzero(k, sizeof(k));
	sodium_memzero(pdh, sizeof(pdh));
	return rc;
}

int rdv_window_accept(struct rdv_window *w, uint64_t ctr)
{
	if (ctr == 0)
		return 0;
	if (ctr > w->top) {
		uint64_t shift = ctr - w->top;
		w->bits = shift >= 64 ? 0 : w->bits << shift;
		w->bits |= 1;
		w->top = ctr;
		return 1;
	}
	uint64_t back = w->top - ctr;
	if (back >= 64 || (w->bits >> back) & 1)
		return 0;
	w->bits |= UINT64_C(1) << back;
	return 1;
}

/* ---- Server cards ------------------------------------------------------- */

size_t rdv_card_encode(const struct rdv_card *c, uint8_t *out, size_t cap)
{
	size_t n;

	if (cap < 8 + RDV_KEY_BYTES)
		return 0;
	put_le64(out, c->server_id);
	memcpy(out + 8, c->pub, RDV_KEY_BYTES);
	n = rdv_endpoint_put(out + 8 + RDV_KEY_BYTES, cap - 8 - RDV_KEY_BYTES, &c->addr);
	return n ? 8 + RDV_KEY_BYTES + n : 0;
}

int rdv_card_decode(const uint8_t *p, size_t len, struct rdv_card *c)
{
	memset(c, 0, sizeof(*c));
	if (len < 8 + RDV_KEY_BYTES + 6)
		return SRM_ERR_INVALID;
	c->server_id = get_le64(p);
	memcpy(c->pub, p + 8, RDV_KEY_BYTES);
	return rdv_endpoint_get(p + 8 + RDV_KEY_BYTES, len - 8 - RDV_KEY_BYTES, &c->addr);
}
