/*
 * frame_fuzz.c — libFuzzer harness for the frame decoder (core/protocol/frame.c)
 * and, where an ACK appears in the frame sequence, the ACK parser
 * (core/protocol/ack.c): the input is a decrypted DATA payload, walked frame by
 * frame as conn_handle_packet walks it.
 *
 * Checked: a decoder never consumes more than it was given or zero bytes;
 * every decoded frame re-encodes with frame_put_* to bytes that decode to
 * the same fields (the encoder and the strict decoder agree), and no
 * longer than the original (a minimal encoding).
 *
 *   tests/fuzz/run.sh 60 frame_fuzz
 */
#include <stdlib.h>
#include <string.h>

#include "ack.h"
#include "frame.h"
#include "wire.h"

static size_t reencode(const struct frame *f, uint8_t *p, size_t cap)
{
	size_t n;

	switch (f->type) {
	case FRAME_PING:
		return frame_put_ping(p, cap);
	case FRAME_OPEN:
		return frame_put_open(p, cap, f->stream, f->port);
	case FRAME_ACCEPT:
		return frame_put_accept(p, cap, f->stream);
	case FRAME_RESET:
		return frame_put_reset(p, cap, f->stream, f->reason, f->value);
	case FRAME_STREAM:
	case FRAME_STREAM_FIN:
		n = frame_put_stream_header(p, cap, f->stream, f->offset, f->len, f->fin);
		if (n == 0 || n + f->len > cap)
			return 0;
		memcpy(p + n, f->data, f->len);
		return n + f->len;
	case FRAME_MAX_DATA:
		return frame_put_max_data(p, cap, f->value);
	case FRAME_MAX_STREAM_DATA:
		return frame_put_max_stream_data(p, cap, f->stream, f->value);
	case FRAME_CLOSE:
		return frame_put_close(p, cap, f->reason);
	case FRAME_PATH_CHALLENGE:
	case FRAME_PATH_RESPONSE:
		return frame_put_path(p, cap, f->type, f->path);
	case FRAME_CONTROL:
		return frame_put_control(p, cap, f->data, f->len);
	default:
		abort();
	}
}

static int same(const struct frame *a, const struct frame *b)
{
	return a->type == b->type && a->stream == b->stream && a->offset == b->offset &&
	       a->value == b->value && a->reason == b->reason && a->port == b->port &&
	       a->fin == b->fin && a->len == b->len &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0) &&
	       memcmp(a->path, b->path, sizeof(a->path)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[70000];
	size_t off = 0;

	while (off < size) {
		const uint8_t *p = data + off;
		size_t left = size - off;

		if (p[0] == FRAME_ACK) {
			struct ack_ranges a;
			size_t used;
			if (ack_frame_parse(p, left, &a, &used) != 0)
				return 0;
			if (used == 0 || used > left)
				abort();
			off += used;
			continue;
		}
		struct frame f, g;
		int n = frame_decode(p, left, &f);
		if (n < 0)
			return 0;
		if (n == 0 || (size_t)n > left)
			abort();
		if (f.type == FRAME_PADDING) {
			if ((size_t)n != left)
				abort(); /* padding runs to the end */
			for (size_t i = 1; i < left; i++)
				if (p[i])
					abort();
			return 0;
		}
		size_t m = reencode(&f, buf, sizeof(buf));
		if (m == 0 || m > (size_t)n)
			abort();
		if (frame_decode(buf, m, &g) != (int)m || !same(&f, &g))
			abort();
		off += (size_t)n;
	}
	return 0;
}
