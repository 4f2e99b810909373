/*
 * stream.c — send ring with retransmission, receive reassembly and
 * per-stream flow control (see stream.h).
 *
 * Both rings map a stream offset o to buf[o & (cap - 1)]: the send ring
 * holds [base, end), the receive ring [read, highest).  So a retransmitted
 * range is read straight from where it was written, and an out-of-order
 * frame is written straight to where the reader will find it.
 */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

#include "srmudp.h"

void stream_init(struct stream *s, uint64_t id, enum stream_state state)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->state = state;
	s->tx.max = STREAM_WINDOW_INITIAL;
	s->rx.max = STREAM_WINDOW_INITIAL;
	s->rx.window = STREAM_WINDOW_INITIAL;
	rangeset_init(&s->tx.acked, STREAM_SEND_RANGES_MAX);
	rangeset_init(&s->tx.lost, STREAM_SEND_RANGES_MAX);
	rangeset_init(&s->rx.got, STREAM_RECV_RANGES_MAX);
}

void stream_free_buffers(struct stream *s)
{
	free(s->tx.buf);
	free(s->rx.buf);
	s->tx.buf = s->rx.buf = NULL;
	s->tx.cap = s->rx.cap = 0;
	rangeset_free(&s->tx.acked);
	rangeset_free(&s->tx.lost);
	rangeset_free(&s->rx.got);
}

size_t stream_memory(const struct stream *s)
{
	return s->tx.cap + s->rx.cap +
	       (s->tx.acked.cap + s->tx.lost.cap + s->rx.got.cap) * sizeof(struct range);
}

/* ---- Rings -------------------------------------------------------------- */

static void ring_put(uint8_t *buf, size_t cap, uint64_t off, const uint8_t *src, size_t n)
{
	size_t at = (size_t)(off & (cap - 1));
	size_t first = cap - at < n ? cap - at : n;
	memcpy(buf + at, src, first);
	memcpy(buf, src + first, n - first);
}

static void ring_get(const uint8_t *buf, size_t cap, uint64_t off, uint8_t *dst, size_t n)
{
	size_t at = (size_t)(off & (cap - 1));
	size_t first = cap - at < n ? cap - at : n;
	memcpy(dst, buf + at, first);
	memcpy(dst + first, buf, n - first);
}

/* Make the ring hold at least need bytes starting at offset from, keeping
 * the bytes of [from, from + keep). */
static int ring_reserve(uint8_t **buf, size_t *cap, uint64_t from, size_t keep, uint64_t need)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : STREAM_IDLE_BUF;
	while (ncap < need)
		ncap *= 2;
	uint8_t *nb = malloc(ncap);
	if (!nb)
		return SRM_ERR_NOMEM;
	if (keep > 0) {
		/* Copy in at most two pieces (the old ring may wrap). */
		size_t at = (size_t)(from & (*cap - 1));
		size_t first = *cap - at < keep ? *cap - at : keep;
		ring_put(nb, ncap, from, *buf + at, first);
		ring_put(nb, ncap, from + first, *buf, keep - first);
	}
	free(*buf);
	*buf = nb;
	*cap = ncap;
	return 0;
}

/* A drained ring shrinks back to nothing if it had grown: a stream that
 * once moved megabytes does not keep them while idle (stream_trim, called
 * periodically, not on every drain: a busy stream would reallocate its
 * ring each time the reader catches up). */
static void ring_release_if_big(uint8_t **buf, size_t *cap)
{
	if (*cap > STREAM_IDLE_BUF) {
		free(*buf);
		*buf = NULL;
		*cap = 0;
	}
}

/* ---- Send side ---------------------------------------------------------- */

int stream_send_write(struct stream *s, const void *p, size_t n)
{
	struct stream_send *t = &s->tx;
	if (t->fin || s->state == STREAM_RESET)
		return SRM_ERR_CLOSED;
	if (n == 0)
		return 0;
	uint64_t used = t->end - t->base;
	if (ring_reserve(&t->buf, &t->cap, t->base, (size_t)used, used + n) < 0)
		return SRM_ERR_NOMEM;
	ring_put(t->buf, t->cap, t->end, p, n);
	t->end += n;
	return 0;
}

void stream_send_shutdown(struct stream *s)
{
	s->tx.fin = true;
}

static bool fin_wanted(const struct stream_send *t)
{
	return t->fin && !t->fin_acked && (!t->fin_sent || t->fin_lost);
}

bool stream_send_next(const struct stream *s, size_t maxlen, uint64_t session_credit,
		      uint64_t *off, size_t *len, bool *fin)
{
	const struct stream_send *t = &s->tx;
	struct range r;

	if (s->state != STREAM_OPEN)
		return false;
	if (rangeset_next(&t->lost, t->base, &r)) {
		uint64_t n = r.hi - r.lo;
		*off = r.lo;
		*len = n < maxlen ? (size_t)n : maxlen;
		*fin = t->fin && fin_wanted(t) && r.lo + *len == t->end;
		return *len > 0 || *fin;
	}
	uint64_t limit = t->end;
	if (limit > t->max)
		limit = t->max;
	if (limit > t->next && limit - t->next > session_credit)
		limit = t->next + session_credit;
	if (t->next < limit) {
		uint64_t n = limit - t->next;
		*off = t->next;
		*len = n < maxlen ? (size_t)n : maxlen;
		*fin = t->fin && t->next + *len == t->end;
		return true;
	}
	if (t->next == t->end && fin_wanted(t)) {
		*off = t->end;
		*len = 0;
		*fin = true;
		return true;
	}
	return false;
}

void stream_send_copy(const struct stream *s, uint64_t off, size_t len, void *dst)
{
	if (len > 0)
		ring_get(s->tx.buf, s->tx.cap, off, dst, len);
}

uint64_t stream_send_sent(struct stream *s, uint64_t off, size_t len, bool fin)
{
	struct stream_send *t = &s->tx;
	uint64_t fresh = 0;
	if (off < t->next)
		rangeset_remove(&t->lost, off, off + len);
	if (off + len > t->next) {
		fresh = off + len - t->next;
		t->next = off + len;
	}
	if (fin) {
		t->fin_sent = true;
		t->fin_lost = false;
	}
	return fresh;
}

void stream_send_acked(struct stream *s, uint64_t off, size_t len, bool fin)
{
	struct stream_send *t = &s->tx;
	uint64_t lo = off < t->base ? t->base : off, hi = off + len;

	if (fin && t->fin) {
		t->fin_acked = true;
		t->fin_lost = false;
	}
	if (lo >= hi)
		return;
	rangeset_remove(&t->lost, lo, hi);
	if (lo == t->base) {
		t->base = hi;
	} else if (rangeset_add(&t->acked, lo, hi) < 0) {
		/* No room to remember it: forget the ack; if the range is
		 * ever reported lost it is resent and acknowledged again. */
		return;
	}
	/* Advance base over acknowledged ranges now contiguous with it. */
	struct range r;
	while (rangeset_next(&t->acked, 0, &r) && r.lo <= t->base) {
		if (r.hi > t->base)
			t->base = r.hi;
		rangeset_remove(&t->acked, r.lo, r.hi);
	}
}

void stream_send_lost(struct stream *s, uint64_t off, size_t len, bool fin)
{
	struct stream_send *t = &s->tx;
	uint64_t lo = off < t->base ? t->base : off, hi = off + len;

	if (fin && t->fin && !t->fin_acked)
		t->fin_lost = true;
	if (hi > t->next)
		hi = t->next;
	if (lo >= hi || s->state == STREAM_RESET)
		return;
	if (rangeset_add(&t->lost, lo, hi) < 0) {
		/* Too many holes to track: resend everything outstanding (one
		 * range covering all the others always fits). */
		lo = t->base;
		hi = t->next;
		if (rangeset_add(&t->lost, lo, hi) < 0)
			return;
	}
	/* Parts acknowledged meanwhile (a spurious loss) are not resent. */
	struct range r;
	uint64_t from = lo;
	while (rangeset_next(&t->acked, from, &r) && r.lo < hi) {
		rangeset_remove(&t->lost, r.lo, r.hi < hi ? r.hi : hi);
		from = r.hi;
	}
}

bool stream_send_credit(struct stream *s, uint64_t max)
{
	if (max <= s->tx.max)
		return false;
	s->tx.max = max;
	return true;
}

bool stream_send_pending(const struct stream *s)
{
	const struct stream_send *t = &s->tx;
	if (s->state != STREAM_OPEN)
		return false;
	return !rangeset_empty(&t->lost) || (t->next < t->end && t->next < t->max) ||
	       (t->next == t->end && fin_wanted(t));
}

/* ---- Receive side ------------------------------------------------------- */

int64_t stream_recv_data(struct stream *s, uint64_t off, const uint8_t *p, size_t len,
			 bool fin)
{
	struct stream_recv *r = &s->rx;
	uint64_t end = off + len;

	if (end > r->max)
		return SRM_ERR_INVALID; /* beyond the credit we gave */
	if (r->fin_known && (end > r->final_size || (fin && end != r->final_size)))
		return SRM_ERR_INVALID;
	if (fin && end < r->highest)
		return SRM_ERR_INVALID;

	/* A reset stream stores nothing but still counts the bytes, so the
	 * session credit of both sides stays in step. */
	uint64_t lo = off < r->read ? r->read : off;
	if (s->state != STREAM_RESET && lo < end && !rangeset_contains(&r->got, lo, end)) {
		/* What the ring can hold: highest may have moved past the
		 * stored bytes without data (an empty FIN frame beyond a
		 * hole), and an empty ring holds nothing. */
		uint64_t keep = r->highest - r->read;
		if (keep > r->cap)
			keep = r->cap;
		if (ring_reserve(&r->buf, &r->cap, r->read, (size_t)keep, end - r->read) < 0)
			return SRM_ERR_NOMEM;
		if (rangeset_add(&r->got, lo, end) < 0)
			return SRM_ERR_NOMEM;
		ring_put(r->buf, r->cap, lo, p + (lo - off), (size_t)(end - lo));
	}
	int64_t charge = 0;
	if (end > r->highest) {
		charge = (int64_t)(end - r->highest);
		r->highest = end;
	}
	if (fin) {
		r->fin_known = true;
		r->final_size = end;
	}
	return charge;
}

int64_t stream_recv_reset(struct stream *s, uint64_t final_size)
{
	struct stream_recv *r = &s->rx;
	if (final_size < r->highest || final_size > r->max ||
	    (r->fin_known && final_size != r->final_size))
		return SRM_ERR_INVALID;
	int64_t charge = (int64_t)(final_size - r->highest);
	r->highest = final_size;
	r->fin_known = true;
	r->final_size = final_size;
	return charge;
}

uint64_t stream_recv_readable(const struct stream *s)
{
	struct range g;
	if (!rangeset_next(&s->rx.got, s->rx.read, &g) || g.lo > s->rx.read)
		return 0;
	return g.hi - s->rx.read;
}

size_t stream_recv_peek(const struct stream *s, const uint8_t **p)
{
	uint64_t n = stream_recv_readable(s);
	if (n == 0)
		return 0;
	size_t at = (size_t)(s->rx.read & (s->rx.cap - 1));
	if (n > s->rx.cap - at)
		n = s->rx.cap - at;
	*p = s->rx.buf + at;
	return (size_t)n;
}

void stream_recv_consume(struct stream *s, size_t n)
{
	struct stream_recv *r = &s->rx;
	uint64_t avail = stream_recv_readable(s);
	if (n > avail)
		n = (size_t)avail;
	if (n == 0)
		return;
	rangeset_remove(&r->got, r->read, r->read + n);
	r->read += n;
}

void stream_trim(struct stream *s)
{
	if (s->tx.base == s->tx.end) {
		ring_release_if_big(&s->tx.buf, &s->tx.cap);
		rangeset_compact(&s->tx.acked);
		rangeset_compact(&s->tx.lost);
	}
	if (rangeset_empty(&s->rx.got)) {
		ring_release_if_big(&s->rx.buf, &s->rx.cap);
		rangeset_compact(&s->rx.got);
	}
}

bool stream_recv_update(struct stream *s, uint64_t now_us, uint64_t srtt_us, uint64_t bdp)
{
	struct stream_recv *r = &s->rx;
	if (r->fin_known || s->state == STREAM_RESET)
		return false; /* the peer sends nothing beyond the final size */
	uint64_t target = 2 * bdp;
	if (target > r->window)
		r->window = target < STREAM_WINDOW_MAX ? target : STREAM_WINDOW_MAX;
	if (r->max - r->read > r->window / 2)
		return false;
	if (srtt_us > 0 && now_us - r->window_start_us < STREAM_AUTOTUNE_RTTS * srtt_us) {
		r->window *= 2;
		if (r->window > STREAM_WINDOW_MAX)
			r->window = STREAM_WINDOW_MAX;
	}
	r->window_start_us = now_us;
	r->max = r->read + r->window;
	return true;
}
