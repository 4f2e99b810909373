/*
 * replay.c — RFC 6479 replay window: a ring of 64-bit words.
 *
 * Bit (pn mod REPLAY_BITS) records pn.  When a higher number arrives, the
 * words between the old top and the new one are cleared first, so they
 * can record the numbers that now enter the window.  One word of slack
 * (REPLAY_WINDOW = REPLAY_BITS - 64) keeps the word being refilled from
 * aliasing numbers still inside the window.
 */
#include "replay.h"

#include <string.h>

void replay_init(struct replay_window *r)
{
	memset(r, 0, sizeof(*r));
}

static int seen(const struct replay_window *r, uint64_t pn)
{
	return (r->bits[(pn / 64) % REPLAY_WORDS] >> (pn % 64)) & 1;
}

int replay_check(const struct replay_window *r, uint64_t pn)
{
	if (pn == UINT64_MAX)
		return -1; /* top = pn + 1 must not wrap */
	if (pn >= r->top)
		return 0;
	if (r->top - pn > REPLAY_WINDOW)
		return -1;
	return seen(r, pn) ? -1 : 0;
}

int replay_accept(struct replay_window *r, uint64_t pn)
{
	if (replay_check(r, pn) != 0)
		return -1;
	if (pn >= r->top) {
		/* Clear the words the window slides over.  Index of the word
		 * holding the old top - 1 (or none yet) to that of pn. */
		uint64_t old_word = r->top ? (r->top - 1) / 64 : 0;
		uint64_t new_word = pn / 64;
		if (r->top == 0 || new_word - old_word >= REPLAY_WORDS) {
			memset(r->bits, 0, sizeof(r->bits));
		} else {
			for (uint64_t w = old_word + 1; w <= new_word; w++)
				r->bits[w % REPLAY_WORDS] = 0;
		}
		r->top = pn + 1;
	}
	r->bits[(pn / 64) % REPLAY_WORDS] |= UINT64_C(1) << (pn % 64);
	return 0;
}
