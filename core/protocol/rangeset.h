/*
 * rangeset.h — a sorted set of disjoint half-open byte ranges [lo, hi).
 *
 * Used for stream reassembly (what arrived), the sender's acknowledged and
 * lost ranges, and the set of stream ids the peer has opened.  Adjacent or
 * overlapping ranges merge, so a mostly in-order stream keeps one range.
 * The number of ranges is bounded by max (set at init): an adversary
 * sending one byte in every other position cannot grow it without limit.
 * Storage is allocated on first use and released by rangeset_free (an
 * empty set owns no memory once rangeset_compact has run).
 */
#ifndef SRMUDP_RANGESET_H
#define SRMUDP_RANGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

struct range {
	uint64_t lo, hi; /* [lo, hi) */
};

struct rangeset {
	struct range *r;
	uint32_t n, cap, max;
};

void rangeset_init(struct rangeset *s, uint32_t max);
void rangeset_free(struct rangeset *s);
/* Release the storage of an empty set. */
void rangeset_compact(struct rangeset *s);
/* Add [lo, hi).  Returns 0, or SRM_ERR_NOMEM when it would need more than
 * max ranges or allocation failed (the set is then unchanged). */
int rangeset_add(struct rangeset *s, uint64_t lo, uint64_t hi);
/* Remove [lo, hi) (may split a range: returns SRM_ERR_NOMEM if that split
 * would exceed max; the set is then unchanged). */
int rangeset_remove(struct rangeset *s, uint64_t lo, uint64_t hi);
/* Is all of [lo, hi) in the set? */
bool rangeset_contains(const struct rangeset *s, uint64_t lo, uint64_t hi);
/* Does any of [lo, hi) intersect the set? */
bool rangeset_intersects(const struct rangeset *s, uint64_t lo, uint64_t hi);
/* The first range that ends after from, clipped to start at >= from;
 * false if none. */
bool rangeset_next(const struct rangeset *s, uint64_t from, struct range *out);
static inline bool rangeset_empty(const struct rangeset *s) { return s->n == 0; }

#ifdef __cplusplus
}
#endif
#endif
