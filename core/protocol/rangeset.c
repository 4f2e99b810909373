/*
 * rangeset.c — sorted disjoint ranges in one array (see rangeset.h).
 * Sets are small (bounded by max, usually a handful of ranges), so inserts
 * move memory rather than keep a tree.
 */
#include "rangeset.h"

#include <stdlib.h>
#include <string.h>

#include "srmudp.h"

#define RANGESET_INITIAL 4

void rangeset_init(struct rangeset *s, uint32_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max ? max : 1;
}

void rangeset_free(struct rangeset *s)
{
	free(s->r);
	s->r = NULL;
	s->n = s->cap = 0;
}

void rangeset_compact(struct rangeset *s)
{
	if (s->n == 0)
		rangeset_free(s);
}

/* Index of the first range with hi >= v (ranges that end before v come
 * earlier).  With >=, a range ending exactly at v is found, for merging. */
static uint32_t lower(const struct rangeset *s, uint64_t v)
{
	uint32_t lo = 0, hi = s->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->r[mid].hi < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int reserve(struct rangeset *s, uint32_t n)
{
	if (n > s->max)
		return SRM_ERR_NOMEM;
	if (n <= s->cap)
		return 0;
	uint32_t cap = s->cap ? s->cap * 2 : RANGESET_INITIAL;
	while (cap < n)
		cap *= 2;
	if (cap > s->max)
		cap = s->max;
	struct range *r = realloc(s->r, (size_t)cap * sizeof(*r));
	if (!r)
		return SRM_ERR_NOMEM;
	s->r = r;
	s->cap = cap;
	return 0;
}

int rangeset_add(struct rangeset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return 0;
	uint32_t i = lower(s, lo);
	/* Ranges i..j-1 touch or overlap [lo, hi): merge them all. */
	uint32_t j = i;
	while (j < s->n && s->r[j].lo <= hi)
		j++;
	if (i == j) {
		if (reserve(s, s->n + 1) < 0)
			return SRM_ERR_NOMEM;
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(s->r[0]));
		s->r[i].lo = lo;
		s->r[i].hi = hi;
		s->n++;
		return 0;
	}
	if (s->r[i].lo < lo)
		lo = s->r[i].lo;
	if (s->r[j - 1].hi > hi)
		hi = s->r[j - 1].hi;
	s->r[i].lo = lo;
	s->r[i].hi = hi;
	memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(s->r[0]));
	s->n -= j - i - 1;
	return 0;
}

int rangeset_remove(struct rangeset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return 0;
	uint32_t i = lower(s, lo + 1); /* first range with hi > lo */
	if (i < s->n && s->r[i].lo < lo && s->r[i].hi > hi) {
		/* Strictly inside one range: split it in two. */
		if (reserve(s, s->n + 1) < 0)
			return SRM_ERR_NOMEM;
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(s->r[0]));
		s->r[i].hi = lo;
		s->r[i + 1].lo = hi;
		s->n++;
		return 0;
	}
	uint32_t j = i;
	while (j < s->n && s->r[j].lo < hi)
		j++;
	/* Ranges i..j-1 intersect [lo, hi); keep their outside parts. */
	uint32_t keep = i;
	for (uint32_t k = i; k < j; k++) {
		struct range x = s->r[k];
		if (x.lo < lo)
			s->r[keep++] = (struct range){ x.lo, lo };
		else if (x.hi > hi)
			s->r[keep++] = (struct range){ hi, x.hi };
	}
	if (keep != j) {
		memmove(&s->r[keep], &s->r[j], (s->n - j) * sizeof(s->r[0]));
		s->n -= j - keep;
	}
	return 0;
}

bool rangeset_contains(const struct rangeset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return true;
	uint32_t i = lower(s, lo + 1);
	return i < s->n && s->r[i].lo <= lo && s->r[i].hi >= hi;
}

bool rangeset_intersects(const struct rangeset *s, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return false;
	uint32_t i = lower(s, lo + 1);
	return i < s->n && s->r[i].lo < hi;
}

bool rangeset_next(const struct rangeset *s, uint64_t from, struct range *out)
{
	uint32_t i = lower(s, from + 1);
	if (i >= s->n)
		return false;
	out->lo = s->r[i].lo > from ? s->r[i].lo : from;
	out->hi = s->r[i].hi;
	return true;
}
