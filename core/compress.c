/*
 * compress.c — record framing and adaptive stream-level zstd (compress.h).
 */
#include "compress.h"

#include <string.h>
#include <zstd.h>

#include "wire.h"

_Static_assert(ZSTD_COMPRESSBOUND(COMPRESS_RECORD_MAX) + 32 <= COMPRESS_PAYLOAD_MAX,
	       "a ZSTD record payload must fit COMPRESS_PAYLOAD_MAX");

enum { RX_KIND, RX_LEN, RX_PAYLOAD, RX_DRAIN };

/* ---- Sender ------------------------------------------------------------- */

void compress_tx_init(struct compress_tx *t, enum srm_compress mode)
{
	memset(t, 0, sizeof(*t));
	t->mode = mode;
	t->active = mode != SRM_COMPRESS_OFF;
	t->off_reason = mode == SRM_COMPRESS_OFF ? COMPRESS_OFF_CONFIG : COMPRESS_OFF_NONE;
}

void compress_tx_free(struct compress_tx *t)
{
	ZSTD_freeCCtx(t->cctx);
	t->cctx = NULL;
	t->frame_open = false;
}

size_t compress_tx_memory(const struct compress_tx *t)
{
	return t->cctx ? ZSTD_sizeof_CCtx(t->cctx) : 0;
}

bool compress_tx_wants(const struct compress_tx *t, size_t n)
{
	switch (t->mode) {
	case SRM_COMPRESS_ON:
		return t->cctx || !t->no_new_ctx;
	case SRM_COMPRESS_OFF:
		return false;
	default:
		if (!t->cctx && t->no_new_ctx)
			return false;
		return t->active && n >= COMPRESS_MIN_RECORD;
	}
}

size_t compress_tx_bound(size_t n)
{
	/* An optional frame-end record, then the record itself. */
	return 2 * COMPRESS_HEADER_MAX + 32 + ZSTD_compressBound(n);
}

static void switch_off(struct compress_tx *t, enum compress_off_reason why)
{
	t->active = false;
	t->off_reason = why;
	t->raw_since_off = 0;
	t->sample_in = t->sample_out = 0;
	t->cpu_in = t->cpu_us = 0;
}

static size_t put_header(uint8_t *out, enum compress_kind kind, size_t len)
{
	out[0] = (uint8_t)kind;
	return 1 + varint_put(out + 1, COMPRESS_HEADER_MAX - 1, len);
}

static int cctx_make(struct compress_tx *t)
{
	if (t->cctx)
		return 0;
	ZSTD_CCtx *c = ZSTD_createCCtx();
	if (!c)
		return SRM_ERR_NOMEM;
	/* No checksum or content size: the AEAD guards integrity and the
	 * frame has no known end. */
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, COMPRESS_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, COMPRESS_WINDOW_LOG)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0))) {
		ZSTD_freeCCtx(c);
		return SRM_ERR_NOMEM;
	}
	t->cctx = c;
	return 0;
}

/* Run the compressor over in with mode, writing a ZSTD record at out.
 * The length is a fixed 4-byte varint so the payload can be written in
 * place before its size is known. */
static ssize_t zstd_record(struct compress_tx *t, const uint8_t *in, size_t n,
			   ZSTD_EndDirective mode, uint8_t *out, size_t cap)
{
	if (cap < COMPRESS_HEADER_MAX)
		return SRM_ERR_INVALID;
	ZSTD_outBuffer ob = { out + COMPRESS_HEADER_MAX, cap - COMPRESS_HEADER_MAX, 0 };
	ZSTD_inBuffer ib = { in, n, 0 };
	size_t left;
	do {
		left = ZSTD_compressStream2(t->cctx, &ob, &ib, mode);
		if (ZSTD_isError(left))
			return SRM_ERR_INVALID;
		if (left > 0 && ob.pos == ob.size)
			return SRM_ERR_INVALID; /* cap below COMPRESS_TX_BOUND */
	} while (left > 0 || ib.pos < ib.size);
	out[0] = COMPRESS_ZSTD;
	out[1] = (uint8_t)(0x80 | (ob.pos >> 24));
	out[2] = (uint8_t)(ob.pos >> 16);
	out[3] = (uint8_t)(ob.pos >> 8);
	out[4] = (uint8_t)ob.pos;
	t->frame_open = mode != ZSTD_e_end;
	return (ssize_t)(COMPRESS_HEADER_MAX + ob.pos);
}

ssize_t compress_tx_record(struct compress_tx *t, const uint8_t *in, size_t n,
			   uint8_t *out, size_t cap)
{
	if (n == 0 || n > COMPRESS_RECORD_MAX || cap < compress_tx_bound(n))
		return SRM_ERR_INVALID;
	size_t off = 0;

	if (!compress_tx_wants(t, n)) {
		if (t->frame_open) {
			/* Compression just went off: end the frame and drop
			 * the context, so an uncompressible stream holds no
			 * zstd memory on either side. */
			ssize_t e = zstd_record(t, NULL, 0, ZSTD_e_end, out, cap);
			if (e < 0)
				return e;
			off = (size_t)e;
			compress_tx_free(t);
		}
		off += put_header(out + off, COMPRESS_RAW, n);
		memcpy(out + off, in, n);
		off += n;
		t->records_raw++;
		t->bytes_in += n;
		t->bytes_out += off;
		if (t->mode == SRM_COMPRESS_AUTO && !t->active && n >= COMPRESS_MIN_RECORD) {
			t->raw_since_off += n;
			if (t->raw_since_off >= COMPRESS_RETRY_BYTES) {
				t->active = true; /* maybe the data changed */
				t->off_reason = COMPRESS_OFF_NONE;
			}
		}
		return (ssize_t)off;
	}
	if (cctx_make(t) < 0)
		return SRM_ERR_NOMEM;
	ssize_t r = zstd_record(t, in, n, ZSTD_e_flush, out, cap);
	if (r < 0)
		return r;
	t->records_zstd++;
	t->bytes_in += n;
	t->bytes_out += (uint64_t)r;
	if (t->mode == SRM_COMPRESS_AUTO) {
		t->sample_in += n;
		t->sample_out += (uint64_t)r;
		if (t->sample_in >= COMPRESS_SAMPLE_BYTES) {
			if (t->sample_out * 1000 > t->sample_in * COMPRESS_OFF_RATIO_PERMILLE)
				switch_off(t, COMPRESS_OFF_RATIO);
			t->sample_in = t->sample_out = 0;
		}
	}
	return r;
}

ssize_t compress_tx_end(struct compress_tx *t, uint8_t *out, size_t cap)
{
	ssize_t n = 0;
	if (t->frame_open) {
		n = zstd_record(t, NULL, 0, ZSTD_e_end, out, cap);
		if (n < 0)
			return n;
		t->bytes_out += (uint64_t)n;
	}
	compress_tx_free(t);
	return n;
}

void compress_tx_note_cpu(struct compress_tx *t, size_t n, uint64_t cpu_us,
			  uint64_t link_bytes_per_s)
{
	if (t->mode != SRM_COMPRESS_AUTO || !t->active)
		return;
	t->cpu_in += n;
	t->cpu_us += cpu_us;
	if (t->cpu_in < COMPRESS_CPU_SAMPLE_BYTES)
		return;
	/* input bytes/s zstd sustains vs what the link carries: below it,
	 * compression slows the stream down whatever the ratio. */
	uint64_t us = t->cpu_us ? t->cpu_us : 1;
	uint64_t rate = t->cpu_in * 1000000 / us;
	if (link_bytes_per_s > 0 && rate < link_bytes_per_s)
		switch_off(t, COMPRESS_OFF_CPU);
	t->cpu_in = t->cpu_us = 0;
}

/* ---- Receiver ----------------------------------------------------------- */

void compress_rx_init(struct compress_rx *r)
{
	memset(r, 0, sizeof(*r));
	r->phase = RX_KIND;
}

void compress_rx_free(struct compress_rx *r)
{
	ZSTD_freeDCtx(r->dctx);
	r->dctx = NULL;
}

size_t compress_rx_memory(const struct compress_rx *r)
{
	return r->dctx ? ZSTD_sizeof_DCtx(r->dctx) : 0;
}

bool compress_rx_idle(const struct compress_rx *r)
{
	return r->phase == RX_KIND;
}

static int dctx_make(struct compress_rx *r)
{
	if (r->dctx)
		return 0;
	ZSTD_DCtx *d = ZSTD_createDCtx();
	if (!d)
		return SRM_ERR_NOMEM;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax,
						COMPRESS_WINDOW_LOG_MAX))) {
		ZSTD_freeDCtx(d);
		return SRM_ERR_NOMEM;
	}
	r->dctx = d;
	return 0;
}

static ssize_t fail(struct compress_rx *r)
{
	r->failed = true;
	return SRM_ERR_INVALID;
}

/* One decompression step into out[0..room); input in[0..n).  Updates
 * produced/remaining; returns output bytes or an error. */
static ssize_t zstd_step(struct compress_rx *r, const uint8_t *in, size_t n, size_t *used,
			 uint8_t *out, size_t room)
{
	size_t budget = COMPRESS_RECORD_MAX - r->produced;
	uint8_t probe;
	ZSTD_outBuffer ob = { out, room < budget ? room : budget, 0 };
	if (ob.size == 0) {
		/* The record already produced its maximum: any further
		 * output means it expands beyond the bound. */
		ob.dst = &probe;
		ob.size = 1;
	}
	ZSTD_inBuffer ib = { in, n, 0 };
	size_t ret = ZSTD_decompressStream(r->dctx, &ob, &ib);
	if (ZSTD_isError(ret))
		return fail(r);
	if (ob.dst == &probe && ob.pos > 0)
		return fail(r); /* decompression bomb */
	*used = ib.pos;
	r->remaining -= ib.pos;
	r->frame_done = ret == 0;
	size_t got = ob.dst == &probe ? 0 : ob.pos;
	r->produced += got;
	/* Done when the input is gone and zstd had output room left over
	 * (it has flushed everything it could). */
	if (r->remaining == 0 && ob.pos < ob.size) {
		r->phase = RX_KIND;
		if (r->frame_done)
			compress_rx_free(r); /* frame over: release its window */
	} else if (r->remaining == 0) {
		r->phase = RX_DRAIN;
	}
	return (ssize_t)got;
}

ssize_t compress_rx_decode(struct compress_rx *r, const uint8_t *in, size_t n, size_t *used,
			   uint8_t *out, size_t cap)
{
	size_t ip = 0, op = 0;

	*used = 0;
	if (r->failed)
		return SRM_ERR_INVALID;
	while (op < cap) {
		if (r->phase == RX_KIND) {
			if (ip == n)
				break;
			r->kind = in[ip++];
			if (r->kind != COMPRESS_RAW && r->kind != COMPRESS_ZSTD)
				return fail(r);
			r->hdr_len = 0;
			r->phase = RX_LEN;
		} else if (r->phase == RX_LEN) {
			if (ip == n)
				break;
			r->hdr[r->hdr_len++] = in[ip++];
			size_t need = (size_t)1 << (r->hdr[0] >> 6);
			if (r->hdr_len < need)
				continue;
			uint64_t len;
			varint_get(r->hdr, r->hdr_len, &len);
			uint64_t lim = r->kind == COMPRESS_RAW ? COMPRESS_RECORD_MAX
							       : COMPRESS_PAYLOAD_MAX;
			if (len == 0 || len > lim)
				return fail(r);
			r->remaining = len;
			r->produced = 0;
			r->phase = RX_PAYLOAD;
			if (r->kind == COMPRESS_ZSTD && !r->dctx &&
			    (r->no_new_ctx || dctx_make(r) < 0))
				return fail(r);
		} else if (r->kind == COMPRESS_RAW) {
			size_t k = n - ip;
			if (k > r->remaining)
				k = (size_t)r->remaining;
			if (k > cap - op)
				k = cap - op;
			if (k == 0)
				break;
			memcpy(out + op, in + ip, k);
			ip += k;
			op += k;
			r->remaining -= k;
			if (r->remaining == 0)
				r->phase = RX_KIND;
		} else {
			size_t k = n - ip, u = 0;
			if (k > r->remaining)
				k = (size_t)r->remaining;
			if (k == 0 && r->phase != RX_DRAIN)
				break;
			int before = r->phase;
			ssize_t got = zstd_step(r, in + ip, k, &u, out + op, cap - op);
			if (got < 0)
				return got;
			ip += u;
			op += (size_t)got;
			if (got == 0 && u == 0 && r->phase == before)
				break; /* zstd needs more input (or more room) */
		}
	}
	*used = ip;
	return (ssize_t)op;
}
