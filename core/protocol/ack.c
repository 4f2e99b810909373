/*
 * ack.c — received packet numbers as bounded ranges; the ACK frame.
 * Format and constants: ack.h and docs/TRANSPORT.md "ACK frame".
 */
#include "ack.h"

#include <string.h>

#include "wire.h"

void ack_tracker_init(struct ack_tracker *t)
{
	memset(t, 0, sizeof(*t));
	t->deadline_us = UINT64_MAX;
}

/* Make room at index i (shifting older ranges down), dropping the oldest
 * range when the bound is reached. */
static void insert_at(struct ack_tracker *t, size_t i, uint64_t pn)
{
	if (t->count == ACK_MAX_RANGES) {
		if (i == ACK_MAX_RANGES)
			return; /* older than everything we can keep */
		t->count--;
	}
	memmove(&t->r[i + 1], &t->r[i], (t->count - i) * sizeof(t->r[0]));
	memmove(&t->sent[i + 1], &t->sent[i], (t->count - i) * sizeof(t->sent[0]));
	t->r[i].lo = t->r[i].hi = pn;
	t->sent[i] = 0;
	t->count++;
}

static void remove_at(struct ack_tracker *t, size_t i)
{
	memmove(&t->r[i], &t->r[i + 1], (t->count - i - 1) * sizeof(t->r[0]));
	memmove(&t->sent[i], &t->sent[i + 1], (t->count - i - 1) * sizeof(t->sent[0]));
	t->count--;
}

/* Returns 1 if pn was added, 0 if already present or too old to keep. */
static int add_pn(struct ack_tracker *t, uint64_t pn)
{
	size_t i;

	/* r[] is descending: find the first range whose lo <= pn. */
	for (i = 0; i < t->count; i++)
		if (t->r[i].lo <= pn)
			break;
	if (i < t->count && pn <= t->r[i].hi)
		return 0;
	/* pn lies strictly between r[i] (below, may not exist) and
	 * r[i-1] (above, may not exist). */
	bool join_above = i > 0 && t->r[i - 1].lo == pn + 1;
	bool join_below = i < t->count && t->r[i].hi + 1 == pn;
	if (join_above && join_below) {
		t->r[i - 1].lo = t->r[i].lo;
		t->sent[i - 1] = 0;
		remove_at(t, i);
	} else if (join_above) {
		t->r[i - 1].lo = pn;
		t->sent[i - 1] = 0;
	} else if (join_below) {
		t->r[i].hi = pn;
		t->sent[i] = 0;
	} else {
		if (t->count == ACK_MAX_RANGES && i == ACK_MAX_RANGES)
			return 0;
		insert_at(t, i, pn);
	}
	return 1;
}

int ack_tracker_on_packet(struct ack_tracker *t, uint64_t pn, bool ack_eliciting,
			  uint64_t now_us)
{
	bool had = t->count > 0;
	uint64_t largest = had ? t->r[0].hi : 0;

	if (pn > VARINT_MAX)
		return 0; /* cannot be acknowledged on the wire */
	int added = add_pn(t, pn);
	if (!had || pn > largest)
		t->largest_recv_us = now_us;
	if (!added)
		return 0;
	t->pending = true;
	if (!ack_eliciting)
		return 1;
	/* RFC 9000 13.2.1: a packet below the largest (reordering or a
	 * retransmission after loss) or one that opens a gap is reported at
	 * once so the sender's loss detection runs promptly. */
	if (had && (pn < largest || pn > largest + 1))
		t->immediate = true;
	if (t->unacked_eliciting++ == 0)
		t->deadline_us = now_us + ACK_MAX_DELAY_US;
	if (t->unacked_eliciting >= ACK_ELICITING_THRESHOLD)
		t->immediate = true;
	if (t->immediate)
		t->deadline_us = now_us;
	return 1;
}

uint64_t ack_tracker_deadline(const struct ack_tracker *t)
{
	return t->unacked_eliciting ? t->deadline_us : UINT64_MAX;
}

bool ack_tracker_due(const struct ack_tracker *t, uint64_t now_us)
{
	return ack_tracker_deadline(t) <= now_us;
}

bool ack_tracker_pending(const struct ack_tracker *t)
{
	return t->pending;
}

void ack_tracker_forget_below(struct ack_tracker *t, uint64_t pn)
{
	while (t->count > 0 && t->r[t->count - 1].hi < pn)
		t->count--;
	if (t->count > 0 && t->r[t->count - 1].lo < pn)
		t->r[t->count - 1].lo = pn;
}

size_t ack_frame_write(struct ack_tracker *t, uint64_t now_us, uint8_t *buf,
		       size_t cap)
{
	struct ack_ranges a;
	size_t n, need;

	if (t->count == 0)
		return 0;
	a.largest = t->r[0].hi;
	a.ack_delay_us = now_us > t->largest_recv_us ? now_us - t->largest_recv_us : 0;
	if (a.ack_delay_us > VARINT_MAX)
		a.ack_delay_us = VARINT_MAX;
	/* Keep the newest ranges that fit: the header with a range_count
	 * varint of the full count is an upper bound, then each extra range
	 * costs its (gap, range_len) pair. */
	need = 1 + varint_size(a.largest) + varint_size(a.ack_delay_us) +
	       varint_size(t->count - 1) + varint_size(t->r[0].hi - t->r[0].lo);
	if (need > cap)
		return 0;
	uint8_t idx[ACK_MAX_RANGES]; /* which tracker range went where */
	a.r[0] = t->r[0];
	idx[0] = 0;
	a.count = 1;
	for (size_t i = 1; i < t->count; i++) {
		if (t->sent[i] >= ACK_RANGE_REPEATS)
			continue;
		const struct ack_range *prev = &a.r[a.count - 1], *cur = &t->r[i];
		size_t pair = varint_size(prev->lo - cur->hi - 2) + varint_size(cur->hi - cur->lo);
		if (need + pair > cap)
			break;
		need += pair;
		idx[a.count] = (uint8_t)i;
		a.r[a.count++] = *cur;
	}
	n = ack_frame_encode(&a, buf, cap);
	if (n == 0)
		return 0;
	for (size_t k = 0; k < a.count; k++)
		if (t->sent[idx[k]] < UINT8_MAX)
			t->sent[idx[k]]++;
	t->pending = false;
	t->immediate = false;
	t->unacked_eliciting = 0;
	t->deadline_us = UINT64_MAX;
	return n;
}

size_t ack_frame_encode(const struct ack_ranges *a, uint8_t *buf, size_t cap)
{
	size_t off = 0, w;

	if (a->count == 0 || a->count > ACK_MAX_RANGES || a->r[0].hi != a->largest)
		return 0;
#define PUT(v)                                              \
	do {                                                \
		w = varint_put(buf + off, cap - off, (v));  \
		if (w == 0)                                 \
			return 0;                           \
		off += w;                                   \
	} while (0)
	if (cap < 1)
		return 0;
	buf[off++] = FRAME_ACK;
	PUT(a->largest);
	PUT(a->ack_delay_us > VARINT_MAX ? VARINT_MAX : a->ack_delay_us);
	PUT(a->count - 1);
	if (a->r[0].lo > a->r[0].hi)
		return 0;
	PUT(a->r[0].hi - a->r[0].lo);
	for (size_t i = 1; i < a->count; i++) {
		const struct ack_range *prev = &a->r[i - 1], *cur = &a->r[i];
		/* Well formed: descending, at least one missing pn between. */
		if (cur->lo > cur->hi || prev->lo < 2 || cur->hi > prev->lo - 2)
			return 0;
		PUT(prev->lo - cur->hi - 2);
		PUT(cur->hi - cur->lo);
	}
#undef PUT
	return off;
}

int ack_frame_parse(const uint8_t *p, size_t len, struct ack_ranges *out,
		    size_t *consumed)
{
	size_t off = 1, n;
	uint64_t count, first, gap, rlen;

	if (len < 1 || p[0] != FRAME_ACK)
		return SRM_ERR_INVALID;
#define GET(v)                                             \
	do {                                               \
		n = varint_get(p + off, len - off, &(v));  \
		if (n == 0)                                \
			return SRM_ERR_INVALID;            \
		off += n;                                  \
	} while (0)
	GET(out->largest);
	GET(out->ack_delay_us);
	GET(count);
	GET(first);
	/* count extra ranges plus the first must fit the struct; a larger
	 * count is hostile or from a different implementation: reject it
	 * before touching the rest. */
	if (count >= ACK_MAX_RANGES || first > out->largest)
		return SRM_ERR_INVALID;
	out->r[0].hi = out->largest;
	out->r[0].lo = out->largest - first;
	out->count = 1;
	for (uint64_t i = 0; i < count; i++) {
		GET(gap);
		GET(rlen);
		uint64_t lo = out->r[out->count - 1].lo;
		/* hi = lo - gap - 2 must stay >= 0, then hi - rlen >= 0. */
		if (lo < 2 || gap > lo - 2)
			return SRM_ERR_INVALID;
		uint64_t hi = lo - gap - 2;
		if (rlen > hi)
			return SRM_ERR_INVALID;
		out->r[out->count].hi = hi;
		out->r[out->count].lo = hi - rlen;
		out->count++;
	}
#undef GET
	*consumed = off;
	return 0;
}
