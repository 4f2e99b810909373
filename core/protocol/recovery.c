/*
 * recovery.c — RFC 9002 loss detection and RTT estimation, plus the
 * delivery-rate samples BBR needs (draft-cheng-iccrg-delivery-rate-
 * estimation).  Contract and constants: recovery.h.
 */
#include "recovery.h"

#include <stdlib.h>
#include <string.h>

enum { SENT_OUTSTANDING, SENT_ACKED, SENT_LOST };

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* cap is a power of two, so the ring index is a mask. */
static struct sent_packet *at(const struct recovery *r, size_t i)
{
	return &r->ring[(r->head + i) & (r->cap - 1)];
}

int recovery_init(struct recovery *r, enum srm_cc algo, uint32_t mtu,
		  uint64_t now_us)
{
	memset(r, 0, sizeof(*r));
	r->ring = calloc(RECOVERY_RING_INITIAL, sizeof(*r->ring));
	if (!r->ring)
		return SRM_ERR_NOMEM;
	r->cap = RECOVERY_RING_INITIAL;
	r->packet_threshold = RECOVERY_PACKET_THRESHOLD;
	for (size_t i = 0; i < RECOVERY_RECENT_LOST; i++)
		r->recent_lost[i].pn = UINT64_MAX;
	r->rtt.smoothed_us = CC_INITIAL_RTT_US;
	r->rtt.var_us = CC_INITIAL_RTT_US / 2;
	r->delivered_us = now_us;
	r->first_sent_us = now_us;
	cc_init(&r->cc, algo, mtu, now_us);
	return 0;
}

void recovery_free(struct recovery *r)
{
	free(r->ring);
	r->ring = NULL;
	r->cap = r->count = r->head = 0;
}

void recovery_set_mtu(struct recovery *r, uint32_t mtu)
{
	cc_set_mtu(&r->cc, mtu);
}

/* Double the ring (unwrapping it) when it just filled up; on failure or at
 * the cap, recovery_can_send() refuses until ACKs drain it. */
static void grow(struct recovery *r)
{
	if (r->count < r->cap || r->cap >= RECOVERY_RING_MAX)
		return;
	struct sent_packet *n = malloc(2 * r->cap * sizeof(*n));
	if (!n)
		return;
	for (size_t i = 0; i < r->count; i++)
		n[i] = *at(r, i);
	free(r->ring);
	r->ring = n;
	r->cap *= 2;
	r->head = 0;
}

static void pop_resolved(struct recovery *r)
{
	while (r->count > 0 && at(r, 0)->state != SENT_OUTSTANDING) {
		r->head = (r->head + 1) & (r->cap - 1);
		r->count--;
	}
}

static void remove_from_flight(struct recovery *r, const struct sent_packet *p)
{
	if (p->flags & RECOVERY_IN_FLIGHT)
		r->bytes_in_flight -= min_u64(p->bytes, r->bytes_in_flight);
	if ((p->flags & RECOVERY_ACK_ELICITING) && r->eliciting_in_flight > 0)
		r->eliciting_in_flight--;
}

void recovery_on_sent(struct recovery *r, uint64_t pn, uint32_t bytes,
		      unsigned flags, uint32_t meta, uint64_t now_us)
{
	r->largest_sent = pn;
	r->any_sent = true;
	r->stats.packets_sent++;
	r->stats.bytes_sent += bytes;
	if (!(flags & (RECOVERY_ACK_ELICITING | RECOVERY_IN_FLIGHT)))
		return;

	if (r->count == r->cap) {
		/* The caller ignored recovery_can_send: forget the oldest
		 * record rather than corrupt the ring (its data is then
		 * only recovered by the peer's flow-control stall). */
		struct sent_packet *old = at(r, 0);
		if (old->state == SENT_OUTSTANDING) {
			remove_from_flight(r, old);
			r->stats.packets_lost++;
		}
		r->head = (r->head + 1) & (r->cap - 1);
		r->count--;
	}
	if (flags & RECOVERY_IN_FLIGHT) {
		if (r->bytes_in_flight == 0) {
			/* A new flight: rate samples must not span the idle gap. */
			r->first_sent_us = now_us;
			r->delivered_us = now_us;
		}
		cc_on_sent(&r->cc, bytes, r->bytes_in_flight, now_us);
		r->bytes_in_flight += bytes;
	}
	if (flags & RECOVERY_ACK_ELICITING) {
		r->last_eliciting_sent_us = now_us;
		r->eliciting_in_flight++;
		if (r->probes_due > 0)
			r->probes_due--;
	}
	struct sent_packet *p = at(r, r->count);
	p->pn = pn;
	p->sent_us = now_us;
	p->delivered = r->delivered;
	p->delivered_us = r->delivered_us;
	p->first_sent_us = r->first_sent_us;
	p->bytes = bytes;
	p->meta = meta;
	p->flags = (uint8_t)flags;
	p->state = SENT_OUTSTANDING;
	p->app_limited = r->app_limited_until != 0;
	r->count++;
	grow(r);
}

void recovery_on_app_limited(struct recovery *r)
{
	r->app_limited_until = max_u64(r->delivered + r->bytes_in_flight, 1);
}

/* First ring index >= from whose pn >= pn (count if none). */
static size_t lower_bound(const struct recovery *r, size_t from, uint64_t pn)
{
	size_t lo = from, hi = r->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (at(r, mid)->pn < pn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void rtt_update(struct recovery *r, uint64_t latest, uint64_t ack_delay,
		       uint64_t now_us)
{
	struct rtt_estimator *e = &r->rtt;

	e->latest_us = latest;
	if (!e->has_sample) {
		e->has_sample = true;
		e->first_sample_us = now_us;
		e->min_us = latest;
		e->smoothed_us = latest;
		e->var_us = latest / 2;
		return;
	}
	e->min_us = min_u64(e->min_us, latest);
	/* The peer promised ACK_MAX_DELAY_US; more is its scheduling noise,
	 * not path delay, and must not shrink the sample below min_rtt. */
	ack_delay = min_u64(ack_delay, ACK_MAX_DELAY_US);
	uint64_t adjusted = latest;
	if (latest >= e->min_us + ack_delay)
		adjusted = latest - ack_delay;
	uint64_t dev = e->smoothed_us > adjusted ? e->smoothed_us - adjusted
						 : adjusted - e->smoothed_us;
	e->var_us = (3 * e->var_us + dev) / 4;
	e->smoothed_us = (7 * e->smoothed_us + adjusted) / 8;
}

uint64_t recovery_pto_base(const struct recovery *r)
{
	return r->rtt.smoothed_us + max_u64(4 * r->rtt.var_us, RECOVERY_GRANULARITY_US) +
	       ACK_MAX_DELAY_US;
}

static uint64_t loss_delay(const struct recovery *r)
{
	uint64_t rtt = max_u64(r->rtt.latest_us, r->rtt.smoothed_us);
	return max_u64(rtt * RECOVERY_TIME_THRESHOLD_NUM / RECOVERY_TIME_THRESHOLD_DEN,
		       RECOVERY_GRANULARITY_US);
}

/* RFC 9002 6.1: declare lost every outstanding packet below the largest
 * acknowledged that is packet_threshold packets or 9/8 RTT older;
 * arm loss_time for the earliest one that is not yet. */
static void detect_lost(struct recovery *r, uint64_t now_us,
			const struct recovery_callbacks *cb)
{
	struct cc_loss loss = { .now_us = now_us };
	uint64_t delay = loss_delay(r);
	uint64_t pc_duration = recovery_pto_base(r) * RECOVERY_PERSISTENT_CONGESTION_THRESHOLD;
	uint64_t run_start = 0, run_end = 0;
	bool in_run = false, persistent = false;

	r->loss_time_us = 0;
	if (!r->any_acked)
		return;
	for (size_t i = 0; i < r->count; i++) {
		struct sent_packet *p = at(r, i);
		if (p->pn > r->largest_acked)
			break;
		if (p->state == SENT_ACKED) {
			in_run = false; /* an acknowledgement between breaks a run */
			continue;
		}
		if (p->state != SENT_OUTSTANDING)
			continue;
		bool by_time = now_us >= p->sent_us && now_us - p->sent_us >= delay;
		bool by_count = r->largest_acked >= p->pn + r->packet_threshold;
		if (!by_time && !by_count) {
			uint64_t t = p->sent_us + delay;
			if (r->loss_time_us == 0 || t < r->loss_time_us)
				r->loss_time_us = t;
			continue;
		}
		p->state = SENT_LOST;
		remove_from_flight(r, p);
		r->recent_lost[r->recent_next].pn = p->pn;
		r->recent_lost[r->recent_next].largest = r->largest_acked;
		r->recent_next = (r->recent_next + 1) % RECOVERY_RECENT_LOST;
		if (r->recent_count < RECOVERY_RECENT_LOST)
			r->recent_count++;
		r->stats.packets_lost++;
		r->stats.bytes_lost += p->bytes;
		if (!(p->flags & RECOVERY_PMTU_PROBE) && (p->flags & RECOVERY_IN_FLIGHT)) {
			loss.lost_bytes += p->bytes;
			loss.lost_packets++;
			loss.newest_lost_sent_us = max_u64(loss.newest_lost_sent_us, p->sent_us);
		}
		/* RFC 9002 7.6: ack-eliciting losses spanning the duration,
		 * all sent after the first RTT sample. */
		if ((p->flags & RECOVERY_ACK_ELICITING) && !(p->flags & RECOVERY_PMTU_PROBE) &&
		    r->rtt.has_sample && p->sent_us > r->rtt.first_sample_us) {
			if (!in_run) {
				in_run = true;
				run_start = p->sent_us;
			}
			run_end = p->sent_us;
			if (run_end - run_start >= pc_duration)
				persistent = true;
		}
		if (cb && cb->lost) {
			struct recovery_event ev = {
				.pn = p->pn, .sent_us = p->sent_us, .bytes = p->bytes,
				.meta = p->meta, .flags = p->flags,
			};
			cb->lost(cb->ctx, &ev);
		}
	}
	if (loss.lost_packets > 0) {
		loss.bytes_in_flight = r->bytes_in_flight;
		cc_on_loss(&r->cc, &loss);
	}
	if (persistent) {
		r->stats.persistent_congestion++;
		cc_on_persistent_congestion(&r->cc, now_us);
	}
	pop_resolved(r);
}

/* The newest packet acknowledged so far gives the delivery-rate sample. */
struct rate_pick {
	const struct sent_packet *p;
	struct sent_packet copy;
};

static void on_acked(struct recovery *r, struct sent_packet *p, uint64_t now_us,
		     struct rate_pick *pick, uint64_t *acked_bytes,
		     const struct recovery_callbacks *cb)
{
	p->state = SENT_ACKED;
	remove_from_flight(r, p);
	r->stats.packets_acked++;
	r->stats.bytes_acked += p->bytes;
	if (p->flags & RECOVERY_IN_FLIGHT) {
		*acked_bytes += p->bytes;
		r->delivered += p->bytes;
		r->delivered_us = now_us;
		if (!pick->p || p->delivered > pick->copy.delivered ||
		    (p->delivered == pick->copy.delivered && p->sent_us >= pick->copy.sent_us)) {
			pick->copy = *p;
			pick->p = &pick->copy;
		}
	}
	if (cb && cb->acked) {
		struct recovery_event ev = {
			.pn = p->pn, .sent_us = p->sent_us, .bytes = p->bytes,
			.meta = p->meta, .flags = p->flags,
		};
		cb->acked(cb->ctx, &ev);
	}
}

/* RFC 9002 6.1.1: an ACK for a packet already declared lost means the
 * path reorders by (largest acked then - pn); make the packet threshold
 * tolerate that from now on (the time threshold still bounds the delay
 * in finding real losses). */
static void check_spurious(struct recovery *r, const struct ack_ranges *a)
{
	size_t live = 0;

	for (size_t i = 0; i < RECOVERY_RECENT_LOST; i++) {
		uint64_t pn = r->recent_lost[i].pn;
		if (pn == UINT64_MAX)
			continue;
		live++;
		if (pn > a->largest || pn < a->r[a->count - 1].lo)
			continue;
		for (size_t k = 0; k < a->count; k++) {
			if (pn > a->r[k].hi)
				break;
			if (pn < a->r[k].lo)
				continue;
			uint64_t dist = r->recent_lost[i].largest - pn;
			r->stats.spurious_losses++;
			if (dist + 1 > r->packet_threshold)
				r->packet_threshold = (uint32_t)(dist + 1 < RECOVERY_MAX_PACKET_THRESHOLD
								 ? dist + 1
								 : RECOVERY_MAX_PACKET_THRESHOLD);
			r->recent_lost[i].pn = UINT64_MAX;
			live--;
			break;
		}
	}
	r->recent_count = live;
}

int recovery_on_ack(struct recovery *r, const struct ack_ranges *a, uint64_t now_us,
		    const struct recovery_callbacks *cb)
{
	struct rate_pick pick = { 0 };
	uint64_t acked_bytes = 0, prior_in_flight = r->bytes_in_flight;
	const struct sent_packet *largest_rec = NULL;
	struct sent_packet largest_copy;
	bool eliciting = false;
	int newly = 0;

	if (a->count == 0 || a->count > ACK_MAX_RANGES || !r->any_sent ||
	    a->largest > r->largest_sent || a->r[0].hi != a->largest)
		return SRM_ERR_INVALID;
	if (r->recent_count > 0)
		check_spurious(r, a);
	if (!r->any_acked || a->largest > r->largest_acked) {
		r->largest_acked = a->largest;
		r->any_acked = true;
	}
	/* Ranges are descending; walk them lowest first so callbacks come
	 * in ascending packet-number order, with one cursor moving forward
	 * through the ring.  Ranges wholly below the oldest record (already
	 * resolved, repeated by the peer) cost one comparison. */
	size_t i = 0;
	for (size_t k = a->count; k-- > 0 && i < r->count;) {
		const struct ack_range *rg = &a->r[k];
		if (rg->hi < at(r, i)->pn)
			continue;
		if (at(r, i)->pn < rg->lo)
			i = lower_bound(r, i, rg->lo);
		for (; i < r->count; i++) {
			struct sent_packet *p = at(r, i);
			if (p->pn > rg->hi)
				break;
			/* Already acked, or declared lost and reported: a late
			 * ACK of a lost packet changes nothing. */
			if (p->state != SENT_OUTSTANDING)
				continue;
			if (p->flags & RECOVERY_ACK_ELICITING)
				eliciting = true;
			if (p->pn == a->largest) {
				largest_copy = *p;
				largest_rec = &largest_copy;
			}
			on_acked(r, p, now_us, &pick, &acked_bytes, cb);
			newly++;
		}
	}
	if (newly == 0) {
		pop_resolved(r);
		return 0;
	}

	struct cc_ack ev = { .now_us = now_us };
	/* RFC 9002 5.1: sample only when the largest is newly acknowledged
	 * and something ack-eliciting was, so ACK-only feedback loops do not
	 * feed delayed samples. */
	if (largest_rec && eliciting && now_us >= largest_rec->sent_us) {
		rtt_update(r, now_us - largest_rec->sent_us, a->ack_delay_us, now_us);
		ev.latest_rtt_us = max_u64(r->rtt.latest_us, 1);
	}
	r->pto_count = 0;
	r->probes_due = 0;

	if (pick.p) {
		const struct sent_packet *p = pick.p;
		uint64_t send_elapsed = p->sent_us - p->first_sent_us;
		uint64_t ack_elapsed = r->delivered_us - p->delivered_us;
		uint64_t interval = max_u64(send_elapsed, ack_elapsed);
		r->first_sent_us = p->sent_us;
		ev.prior_delivered = p->delivered;
		ev.app_limited = p->app_limited;
		/* An interval shorter than min_rtt is an ACK compression
		 * artifact; it would overestimate the rate. */
		if (interval > 0 && (!r->rtt.has_sample || interval >= r->rtt.min_us))
			ev.delivery_rate = (uint64_t)((unsigned __int128)(r->delivered - p->delivered) *
						      1000000 / interval);
		ev.newest_acked_sent_us = p->sent_us;
	}
	if (r->app_limited_until && r->delivered > r->app_limited_until)
		r->app_limited_until = 0;

	if (largest_rec)
		ev.newest_acked_sent_us = max_u64(ev.newest_acked_sent_us, largest_rec->sent_us);
	/* RFC 9002 order: the window grows for what was acknowledged, then
	 * shrinks for what this ACK reveals as lost. */
	ev.acked_bytes = acked_bytes;
	ev.prior_in_flight = prior_in_flight;
	ev.bytes_in_flight = r->bytes_in_flight;
	ev.srtt_us = r->rtt.smoothed_us;
	ev.min_rtt_us = r->rtt.min_us;
	ev.delivered = r->delivered;
	if (acked_bytes > 0)
		cc_on_ack(&r->cc, &ev);
	detect_lost(r, now_us, cb);
	pop_resolved(r);
	return newly;
}

static uint64_t pto_time(const struct recovery *r)
{
	if (r->eliciting_in_flight == 0)
		return UINT64_MAX;
	uint32_t shift = r->pto_count < RECOVERY_MAX_PTO_BACKOFF ? r->pto_count
								 : RECOVERY_MAX_PTO_BACKOFF;
	return r->last_eliciting_sent_us + (recovery_pto_base(r) << shift);
}

uint64_t recovery_deadline(const struct recovery *r)
{
	if (r->loss_time_us)
		return r->loss_time_us;
	return pto_time(r);
}

int recovery_on_timeout(struct recovery *r, uint64_t now_us,
			const struct recovery_callbacks *cb)
{
	if (r->loss_time_us) {
		if (now_us < r->loss_time_us)
			return 0;
		detect_lost(r, now_us, cb);
		return 0;
	}
	if (now_us < pto_time(r))
		return 0;
	r->pto_count++;
	r->stats.pto_count_total++;
	r->probes_due = RECOVERY_PTO_PROBES;
	return (int)r->probes_due;
}

size_t recovery_oldest_outstanding(const struct recovery *r, uint32_t *metas,
				   size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < r->count && n < max; i++) {
		const struct sent_packet *p = at(r, i);
		if (p->state == SENT_OUTSTANDING && (p->flags & RECOVERY_ACK_ELICITING) &&
		    !(p->flags & RECOVERY_PMTU_PROBE))
			metas[n++] = p->meta;
	}
	return n;
}

uint64_t recovery_cwnd_room(const struct recovery *r)
{
	uint64_t cwnd = cc_cwnd(&r->cc);
	return cwnd > r->bytes_in_flight ? cwnd - r->bytes_in_flight : 0;
}

uint64_t recovery_next_send_time(const struct recovery *r, uint32_t bytes,
				 uint64_t now_us)
{
	if (r->count >= r->cap)
		return UINT64_MAX;
	if (r->probes_due > 0)
		return now_us;
	if (r->bytes_in_flight + bytes > cc_cwnd(&r->cc))
		return UINT64_MAX;
	return cc_pacing_next(&r->cc, bytes, now_us);
}

bool recovery_can_send(const struct recovery *r, uint32_t bytes, uint64_t now_us)
{
	return recovery_next_send_time(r, bytes, now_us) <= now_us;
}

uint64_t recovery_bytes_in_flight(const struct recovery *r)
{
	return r->bytes_in_flight;
}

uint64_t recovery_bdp(const struct recovery *r)
{
	uint64_t min_rtt = cc_min_rtt(&r->cc);
	if (min_rtt == 0)
		min_rtt = r->rtt.has_sample ? r->rtt.min_us : r->rtt.smoothed_us;
	uint64_t bdp = (uint64_t)((unsigned __int128)cc_bandwidth(&r->cc) * min_rtt / 1000000);
	return max_u64(bdp, cc_cwnd(&r->cc));
}
