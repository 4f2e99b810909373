/*
 * compress.c — record framing and adaptive per-record zstd (compress.h).
 */
#include "compress.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "wire.h"

_Static_assert(ZSTD_COMPRESSBOUND(COMPRESS_RECORD_MAX) + 32 <= COMPRESS_PAYLOAD_MAX,
	       "a ZSTD record payload must fit COMPRESS_PAYLOAD_MAX");

enum { RX_KIND, RX_LEN, RX_PAYLOAD };

void compress_ctx_free(struct compress_ctx *z)
{
	ZSTD_freeCCtx(z->cctx);
	ZSTD_freeDCtx(z->dctx);
	z->cctx = z->dctx = NULL;
}

size_t compress_ctx_memory(const struct compress_ctx *z)
{
	return (z->cctx ? ZSTD_sizeof_CCtx(z->cctx) : 0) + (z->dctx ? ZSTD_sizeof_DCtx(z->dctx) : 0);
}

/* ---- Sender ------------------------------------------------------------- */

void compress_tx_init(struct compress_tx *t, enum srm_compress mode)
{
	memset(t, 0, sizeof(*t));
	t->mode = mode;
	t->active = mode != SRM_COMPRESS_OFF;
	t->off_reason = mode == SRM_COMPRESS_OFF ? COMPRESS_OFF_CONFIG : COMPRESS_OFF_NONE;
}

size_t compress_tx_bound(size_t n)
{
	return COMPRESS_HEADER_MAX + ZSTD_compressBound(n);
}

bool compress_tx_wants(const struct compress_tx *t, size_t n)
{
	switch (t->mode) {
	case SRM_COMPRESS_ON:
		return true;
	case SRM_COMPRESS_OFF:
		return false;
	default:
		return t->active && n >= COMPRESS_MIN_RECORD;
	}
}

static void switch_off(struct compress_tx *t, enum compress_off_reason why)
{
	t->active = false;
	t->off_reason = why;
	t->raw_since_off = 0;
	t->sample_in = t->sample_out = 0;
	t->cpu_in = t->cpu_us = 0;
}

static int cctx_make(struct compress_ctx *z)
{
	if (z->cctx)
		return 0;
	ZSTD_CCtx *c = ZSTD_createCCtx();
	if (!c)
		return SRM_ERR_NOMEM;
	/* No checksum: the AEAD guards integrity.  The content size stays in
	 * the frame header: the receiver sizes its output by it. */
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, COMPRESS_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1))) {
		ZSTD_freeCCtx(c);
		return SRM_ERR_NOMEM;
	}
	z->cctx = c;
	return 0;
}

size_t compress_tx_raw_header(struct compress_tx *t, size_t n, uint8_t *hdr)
{
	hdr[0] = COMPRESS_RAW;
	size_t h = 1 + varint_put(hdr + 1, COMPRESS_HEADER_MAX - 1, n);
	t->records_raw++;
	t->bytes_in += n;
	t->bytes_out += h + n;
	if (t->mode == SRM_COMPRESS_AUTO && !t->active && n >= COMPRESS_MIN_RECORD) {
		t->raw_since_off += n;
		if (t->raw_since_off >= COMPRESS_RETRY_BYTES) {
			t->active = true; /* maybe the data changed */
			t->off_reason = COMPRESS_OFF_NONE;
		}
	}
	return h;
}

static ssize_t raw_record(struct compress_tx *t, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t h = compress_tx_raw_header(t, n, out);
	memcpy(out + h, in, n);
	return (ssize_t)(h + n);
}

ssize_t compress_tx_record(struct compress_tx *t, struct compress_ctx *z, const uint8_t *in,
			   size_t n, uint8_t *out, size_t cap)
{
	if (n == 0 || n > COMPRESS_RECORD_MAX || cap < compress_tx_bound(n))
		return SRM_ERR_INVALID;
	if (!compress_tx_wants(t, n))
		return raw_record(t, in, n, out);
	if (cctx_make(z) < 0)
		return SRM_ERR_NOMEM;
	size_t zn = ZSTD_compress2(z->cctx, out + COMPRESS_HEADER_MAX, cap - COMPRESS_HEADER_MAX,
				   in, n);
	if (ZSTD_isError(zn))
		return SRM_ERR_INVALID;
	/* A fixed 4-byte varint: the payload was written before its size
	 * was known. */
	out[0] = COMPRESS_ZSTD;
	out[1] = (uint8_t)(0x80 | (zn >> 24));
	out[2] = (uint8_t)(zn >> 16);
	out[3] = (uint8_t)(zn >> 8);
	out[4] = (uint8_t)zn;
	ssize_t r = (ssize_t)(COMPRESS_HEADER_MAX + zn);
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
	free(r->stage);
	free(r->out);
	r->stage = r->out = NULL;
	r->stage_len = r->stage_cap = r->out_len = r->out_off = 0;
}

bool compress_rx_idle(const struct compress_rx *r)
{
	return r->phase == RX_KIND && r->out_off == r->out_len;
}

size_t compress_rx_memory(const struct compress_rx *r)
{
	return r->stage_cap + (r->out ? r->out_len : 0);
}

static ssize_t fail(struct compress_rx *r)
{
	r->failed = true;
	compress_rx_free(r);
	return SRM_ERR_INVALID;
}

static int dctx_make(struct compress_ctx *z)
{
	if (z->dctx)
		return 0;
	ZSTD_DCtx *d = ZSTD_createDCtx();
	if (!d)
		return SRM_ERR_NOMEM;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, COMPRESS_WINDOW_LOG_MAX))) {
		ZSTD_freeDCtx(d);
		return SRM_ERR_NOMEM;
	}
	z->dctx = d;
	return 0;
}

/* Decode one complete ZSTD payload: straight into the caller's buffer if
 * it has room for the whole record, else into r->out.  Returns the bytes
 * placed in dst (0 if they went to r->out) or an error. */
static ssize_t zstd_payload(struct compress_rx *r, struct compress_ctx *z, const uint8_t *p,
			    size_t len, uint8_t *dst, size_t room)
{
	unsigned long long size = ZSTD_getFrameContentSize(p, len);
	if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size == 0 ||
	    size > COMPRESS_RECORD_MAX)
		return fail(r); /* no honest sender makes these: a bomb or junk */
	if (dctx_make(z) < 0)
		return SRM_ERR_NOMEM;
	uint8_t *to = dst;
	if (size > room) {
		r->out = malloc((size_t)size);
		if (!r->out)
			return SRM_ERR_NOMEM;
		to = r->out;
	}
	/* The output buffer is exactly the declared size: a frame that
	 * decodes to more fails with dstSize_tooSmall instead of expanding. */
	size_t got = ZSTD_decompressDCtx(z->dctx, to, (size_t)size, p, len);
	if (ZSTD_isError(got) || got != size)
		return fail(r);
	if (to == dst)
		return (ssize_t)got;
	r->out_len = got;
	r->out_off = 0;
	return 0;
}

static size_t take_out(struct compress_rx *r, uint8_t *dst, size_t room)
{
	size_t k = r->out_len - r->out_off;
	if (k > room)
		k = room;
	memcpy(dst, r->out + r->out_off, k);
	r->out_off += k;
	if (r->out_off == r->out_len) {
		free(r->out);
		r->out = NULL;
		r->out_len = r->out_off = 0;
	}
	return k;
}

ssize_t compress_rx_decode(struct compress_rx *r, struct compress_ctx *z, const uint8_t *in,
			   size_t n, size_t *used, uint8_t *out, size_t cap)
{
	size_t ip = 0, op = 0;

	*used = 0;
	if (r->failed)
		return SRM_ERR_INVALID;
	while (op < cap) {
		if (r->out) {
			op += take_out(r, out + op, cap - op);
			continue;
		}
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
			if (need > 4)
				return fail(r); /* no record length needs 8 bytes */
			if (r->hdr_len < need)
				continue;
			uint64_t len;
			varint_get(r->hdr, r->hdr_len, &len);
			uint64_t lim = r->kind == COMPRESS_RAW ? COMPRESS_RECORD_MAX
							       : COMPRESS_PAYLOAD_MAX;
			if (len == 0 || len > lim)
				return fail(r);
			r->remaining = len;
			r->phase = RX_PAYLOAD;
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
			const uint8_t *p;
			size_t len;
			if (r->stage_len == 0 && n - ip >= r->remaining) {
				p = in + ip; /* whole payload contiguous: no copy */
				len = (size_t)r->remaining;
				ip += len;
			} else {
				if (ip == n)
					break; /* nothing more has arrived */
				size_t want = r->stage_len + (size_t)r->remaining;
				if (r->stage_cap < want) {
					uint8_t *s = realloc(r->stage, want);
					if (!s)
						return SRM_ERR_NOMEM;
					r->stage = s;
					r->stage_cap = want;
				}
				size_t k = n - ip < r->remaining ? n - ip : (size_t)r->remaining;
				memcpy(r->stage + r->stage_len, in + ip, k);
				r->stage_len += k;
				ip += k;
				r->remaining -= k;
				if (r->remaining > 0)
					break; /* the rest has not arrived */
				p = r->stage;
				len = r->stage_len;
			}
			r->remaining = 0;
			r->phase = RX_KIND;
			ssize_t got = zstd_payload(r, z, p, len, out + op, cap - op);
			if (r->stage) {
				free(r->stage);
				r->stage = NULL;
				r->stage_len = r->stage_cap = 0;
			}
			if (got < 0)
				return got;
			op += (size_t)got;
		}
	}
	*used = ip;
	return (ssize_t)op;
}
