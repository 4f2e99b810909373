/*
 * frame.c — frame encoding and strict decoding (layouts in frame.h).
 */
#include "frame.h"

#include "srmudp.h"

/* A cursor over the input that fails closed: after the first short read
 * every later read fails too, so one check at the end suffices. */
struct rd {
	const uint8_t *p;
	size_t len, off;
	int bad;
};

static uint64_t rd_varint(struct rd *r)
{
	uint64_t v = 0;
	if (r->bad)
		return 0;
	size_t n = varint_get(r->p + r->off, r->len - r->off, &v);
	if (n == 0) {
		r->bad = 1;
		return 0;
	}
	r->off += n;
	return v;
}

static const uint8_t *rd_bytes(struct rd *r, uint64_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *q = r->p + r->off;
	r->off += (size_t)n;
	return q;
}

int frame_decode(const uint8_t *p, size_t len, struct frame *f)
{
	struct rd r = { .p = p, .len = len, .off = 1 };
	const uint8_t *q;

	if (len < 1)
		return SRM_ERR_INVALID;
	memset(f, 0, sizeof(*f));
	f->type = (enum wire_frame)p[0];
	switch (p[0]) {
	case FRAME_PADDING:
		/* Padding runs to the end; non-zero bytes would be a covert
		 * channel or a parsing confusion, so they are malformed. */
		for (size_t i = 1; i < len; i++)
			if (p[i] != 0)
				return SRM_ERR_INVALID;
		return (int)len;
	case FRAME_PING:
		return 1;
	case FRAME_OPEN:
		f->stream = rd_varint(&r);
		q = rd_bytes(&r, 2);
		if (q)
			f->port = get_le16(q);
		break;
	case FRAME_ACCEPT:
		f->stream = rd_varint(&r);
		break;
	case FRAME_RESET:
		f->stream = rd_varint(&r);
		f->reason = rd_varint(&r);
		f->value = rd_varint(&r);
		break;
	case FRAME_STREAM_FIN:
		f->fin = 1;
		/* fall through */
	case FRAME_STREAM:
		f->stream = rd_varint(&r);
		f->offset = rd_varint(&r);
		f->len = (size_t)rd_varint(&r);
		f->data = rd_bytes(&r, f->len);
		if (!r.bad && f->offset + f->len > VARINT_MAX)
			return SRM_ERR_INVALID;
		break;
	case FRAME_MAX_DATA:
		f->value = rd_varint(&r);
		break;
	case FRAME_MAX_STREAM_DATA:
		f->stream = rd_varint(&r);
		f->value = rd_varint(&r);
		break;
	case FRAME_CLOSE:
		f->reason = rd_varint(&r);
		break;
	case FRAME_PATH_CHALLENGE:
	case FRAME_PATH_RESPONSE:
		q = rd_bytes(&r, FRAME_PATH_DATA_BYTES);
		if (q)
			memcpy(f->path, q, FRAME_PATH_DATA_BYTES);
		break;
	case FRAME_CONTROL:
		f->len = (size_t)rd_varint(&r);
		if (!r.bad && f->len > FRAME_CONTROL_MAX)
			return SRM_ERR_INVALID;
		f->data = rd_bytes(&r, f->len);
		break;
	default: /* FRAME_ACK belongs to ack.h; anything else is unknown */
		return SRM_ERR_INVALID;
	}
	if (r.bad)
		return SRM_ERR_INVALID;
	return (int)r.off;
}

/* ---- Encoding ----------------------------------------------------------- */

/* A writer that measures first, so a frame is written whole or not at all. */
static size_t put_varints(uint8_t *p, size_t cap, uint8_t type, const uint64_t *v, int n)
{
	size_t need = 1;
	for (int i = 0; i < n; i++) {
		if (v[i] > VARINT_MAX)
			return 0;
		need += varint_size(v[i]);
	}
	if (need > cap)
		return 0;
	size_t off = 0;
	p[off++] = type;
	for (int i = 0; i < n; i++)
		off += varint_put(p + off, cap - off, v[i]);
	return off;
}

size_t frame_put_ping(uint8_t *p, size_t cap)
{
	return put_varints(p, cap, FRAME_PING, NULL, 0);
}

size_t frame_put_padding(uint8_t *p, size_t n)
{
	if (n > 0)
		memset(p, 0, n);
	return n;
}

size_t frame_put_open(uint8_t *p, size_t cap, uint64_t stream, uint16_t port)
{
	size_t n = put_varints(p, cap > 2 ? cap - 2 : 0, FRAME_OPEN, &stream, 1);
	if (n == 0)
		return 0;
	put_le16(p + n, port);
	return n + 2;
}

size_t frame_put_accept(uint8_t *p, size_t cap, uint64_t stream)
{
	return put_varints(p, cap, FRAME_ACCEPT, &stream, 1);
}

size_t frame_put_reset(uint8_t *p, size_t cap, uint64_t stream, uint64_t reason,
		       uint64_t final_size)
{
	uint64_t v[3] = { stream, reason, final_size };
	return put_varints(p, cap, FRAME_RESET, v, 3);
}

size_t frame_stream_header_size(uint64_t stream, uint64_t offset, size_t len)
{
	return 1 + varint_size(stream) + varint_size(offset) + varint_size(len);
}

size_t frame_put_stream_header(uint8_t *p, size_t cap, uint64_t stream, uint64_t offset,
			       size_t len, int fin)
{
	if (offset + len > VARINT_MAX)
		return 0;
	size_t h = frame_stream_header_size(stream, offset, len);
	if (h + len > cap)
		return 0;
	uint64_t v[3] = { stream, offset, len };
	return put_varints(p, cap, fin ? FRAME_STREAM_FIN : FRAME_STREAM, v, 3);
}

size_t frame_put_max_data(uint8_t *p, size_t cap, uint64_t max)
{
	return put_varints(p, cap, FRAME_MAX_DATA, &max, 1);
}

size_t frame_put_max_stream_data(uint8_t *p, size_t cap, uint64_t stream, uint64_t max)
{
	uint64_t v[2] = { stream, max };
	return put_varints(p, cap, FRAME_MAX_STREAM_DATA, v, 2);
}

size_t frame_put_close(uint8_t *p, size_t cap, uint64_t reason)
{
	return put_varints(p, cap, FRAME_CLOSE, &reason, 1);
}

size_t frame_put_path(uint8_t *p, size_t cap, enum wire_frame type,
		      const uint8_t data[FRAME_PATH_DATA_BYTES])
{
	if ((type != FRAME_PATH_CHALLENGE && type != FRAME_PATH_RESPONSE) ||
	    cap < 1 + FRAME_PATH_DATA_BYTES)
		return 0;
	p[0] = (uint8_t)type;
	memcpy(p + 1, data, FRAME_PATH_DATA_BYTES);
	return 1 + FRAME_PATH_DATA_BYTES;
}

size_t frame_put_control(uint8_t *p, size_t cap, const uint8_t *msg, size_t len)
{
	uint64_t l = len;
	if (len > FRAME_CONTROL_MAX || cap < 1 + varint_size(l) + len)
		return 0;
	size_t n = put_varints(p, cap, FRAME_CONTROL, &l, 1);
	memcpy(p + n, msg, len);
	return n + len;
}
