/*
 * pmtu.c — DPLPMTUD search, black-hole fallback and raise timer (RFC 8899).
 * Algorithm and constants: pmtu.h and docs/TRANSPORT.md "Path MTU".
 */
#include "pmtu.h"

#include <string.h>

void pmtu_init(struct pmtu *p, uint32_t max_payload, uint64_t now_us)
{
	memset(p, 0, sizeof(*p));
	p->base = WIRE_BASE_UDP_PAYLOAD;
	p->max = max_payload > p->base ? max_payload : p->base;
	p->current = p->base;
	p->lo = p->base;
	p->hi = p->max + 1;
	p->next_probe_us = now_us;
	p->state = p->max > p->base ? PMTU_SEARCHING : PMTU_SEARCH_DONE;
}

uint32_t pmtu_current(const struct pmtu *p)
{
	return p->current;
}

/* The next size worth probing, 0 when the bracket is narrow enough. */
static uint32_t candidate(const struct pmtu *p)
{
	if (p->state == PMTU_SEARCH_DONE)
		return p->current < p->max ? p->max : 0;
	if (p->hi <= p->lo || p->hi - p->lo <= PMTU_SEARCH_STEP)
		return 0;
	if (p->hi > p->max)
		return p->max; /* one probe settles the common 1500-byte path */
	return p->lo + (p->hi - p->lo) / 2;
}

static void finish_if_done(struct pmtu *p, uint64_t now_us)
{
	if (p->state == PMTU_SEARCHING && candidate(p) == 0) {
		p->state = PMTU_SEARCH_DONE;
		p->next_probe_us = now_us + PMTU_RAISE_INTERVAL_US;
	}
}

bool pmtu_set_max(struct pmtu *p, uint32_t max_payload, uint64_t now_us)
{
	uint32_t old = p->current, max = max_payload > p->base ? max_payload : p->base;

	if (max == p->max)
		return false;
	p->max = max;
	if (p->current > max)
		p->current = max;
	if (p->lo > p->current)
		p->lo = p->current;
	if (p->hi > max + 1)
		p->hi = max + 1;
	if (p->probe_size > max) {
		p->probe_size = 0; /* its answer, if any, is ignored (> max) */
		p->probe_losses = 0;
	}
	p->next_probe_us = now_us; /* below a higher ceiling: probe it now */
	finish_if_done(p, now_us);
	return p->current != old;
}

uint32_t pmtu_probe_size_due(const struct pmtu *p, uint64_t now_us)
{
	if (p->probe_size != 0 || now_us < p->next_probe_us)
		return 0;
	return candidate(p);
}

uint64_t pmtu_deadline(const struct pmtu *p)
{
	if (p->probe_size != 0 || candidate(p) == 0)
		return UINT64_MAX;
	return p->next_probe_us;
}

void pmtu_on_probe_sent(struct pmtu *p, uint32_t size, uint64_t now_us)
{
	(void)now_us;
	if (p->state == PMTU_SEARCH_DONE) {
		/* Raise timer fired: search again above what we have. */
		p->state = PMTU_SEARCHING;
		p->lo = p->current;
		p->hi = p->max + 1;
		p->probe_losses = 0;
	}
	p->probe_size = size;
}

bool pmtu_on_probe_acked(struct pmtu *p, uint32_t size, uint64_t now_us)
{
	bool changed = false;

	if (size == p->probe_size) {
		p->probe_size = 0;
		p->probe_losses = 0;
	}
	if (size > p->max)
		return false;
	if (size > p->current) {
		p->current = size;
		changed = true;
	}
	if (size > p->lo)
		p->lo = size;
	if (p->hi <= p->lo)
		p->hi = p->lo + 1;
	p->bh_losses = 0;
	p->next_probe_us = now_us;
	finish_if_done(p, now_us);
	return changed;
}

bool pmtu_on_probe_lost(struct pmtu *p, uint32_t size, uint64_t now_us)
{
	if (size != p->probe_size)
		return false; /* a stale probe from an earlier search */
	p->probe_size = 0;
	p->next_probe_us = now_us + PMTU_PROBE_INTERVAL_US;
	if (++p->probe_losses < PMTU_MAX_PROBES)
		return false;
	p->probe_losses = 0;
	if (size < p->hi && size > p->lo)
		p->hi = size;
	else if (size <= p->lo)
		p->hi = p->lo + 1; /* the path shrank under us: stop here */
	finish_if_done(p, now_us);
	return false;
}

/* Back to a smaller size and search again from there at once. */
static bool fall_back(struct pmtu *p, uint32_t to, uint32_t failed, uint64_t now_us)
{
	uint32_t old = p->current;

	p->current = to < p->base ? p->base : to;
	p->lo = p->current;
	p->hi = failed > p->lo ? failed : p->lo + 1;
	p->state = PMTU_SEARCHING;
	p->probe_size = 0;
	p->probe_losses = 0;
	p->bh_losses = 0;
	p->bh_small_acked = false;
	p->next_probe_us = now_us;
	finish_if_done(p, now_us);
	return p->current != old;
}

bool pmtu_on_too_big(struct pmtu *p, uint32_t size, uint32_t mtu_hint,
		     uint64_t now_us)
{
	bool hint_ok = mtu_hint >= p->base && mtu_hint < size;

	if (size > p->current) {
		/* A probe that cannot pass: no need to lose it 3 times. */
		if (size == p->probe_size) {
			p->probe_size = 0;
			p->probe_losses = 0;
		}
		if (p->state == PMTU_SEARCH_DONE)
			return false;
		if (size < p->hi)
			p->hi = size > p->lo ? size : p->lo + 1;
		if (hint_ok && mtu_hint + 1 < p->hi && mtu_hint + 1 > p->lo)
			p->hi = mtu_hint + 1;
		p->next_probe_us = now_us;
		finish_if_done(p, now_us);
		return false;
	}
	if (size <= p->base)
		return false; /* nothing smaller to go to */
	p->black_holes++;
	return fall_back(p, hint_ok ? mtu_hint : p->base, size, now_us);
}

bool pmtu_on_packet_acked(struct pmtu *p, uint32_t size, uint64_t now_us)
{
	(void)now_us;
	/* Evidence for a black hole: a small packet was acknowledged more
	 * recently than any large one. */
	if (size > p->base) {
		p->bh_losses = 0;
		p->bh_small_acked = false;
	} else {
		p->bh_small_acked = true;
	}
	return false;
}

bool pmtu_on_packet_lost(struct pmtu *p, uint32_t size, uint64_t now_us)
{
	if (size <= p->base || size > p->current)
		return false;
	p->bh_losses++;
	/* Losses of large packets alone also trigger, at twice the count:
	 * during a total outage falling back costs nothing, and the search
	 * restores the size within a few RTTs once the path is back. */
	if ((p->bh_losses >= PMTU_BLACK_HOLE_LOSSES && p->bh_small_acked) ||
	    p->bh_losses >= 2 * PMTU_BLACK_HOLE_LOSSES) {
		/* Search from the top again: after a false alarm one probe
		 * restores the size; a real black hole fails it 3 times and
		 * the binary search finds the new size. */
		p->black_holes++;
		return fall_back(p, p->base, p->max + 1, now_us);
	}
	return false;
}
