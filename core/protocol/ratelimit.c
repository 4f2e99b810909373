/*
 * ratelimit.c — fixed-size, set-associative table of token buckets, and
 * the engine-wide bucket of failed authentications.
 *
 * Tokens are kept in thousandths so a refill of per_sec tokens a second
 * is exact at millisecond steps.
 */
#include "ratelimit.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define MILLI 1000

struct bucket {
	uint8_t key[17];   /* family byte, then the address (v6: the /64) */
	uint8_t used;
	uint64_t last_ms;
	uint64_t tokens;   /* thousandths */
};

struct ratelimit {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	uint64_t per_sec, burst;
	size_t count;
	struct bucket b[RATELIMIT_SETS][RATELIMIT_WAYS];
};

struct ratelimit *ratelimit_new_keyed(const uint8_t key[16], uint32_t per_sec, uint32_t burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	memcpy(rl->hash_key, key, sizeof(rl->hash_key));
	rl->per_sec = per_sec;
	rl->burst = burst ? burst : 1;
	return rl;
}

struct ratelimit *ratelimit_new(void)
{
	uint8_t key[16];
	randombytes_buf(key, sizeof(key));
	struct ratelimit *rl = ratelimit_new_keyed(key, RATELIMIT_PER_SEC, RATELIMIT_BURST);
	sodium_memzero(key, sizeof(key));
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	free(rl);
}

size_t ratelimit_count(const struct ratelimit *rl)
{
	return rl->count;
}

/* Add what accrued since *last_ms, up to burst tokens. */
static void refill(uint64_t *tokens, uint64_t *last_ms, uint64_t per_sec, uint64_t burst,
		   uint64_t now_ms)
{
	if (now_ms <= *last_ms)
		return;
	uint64_t add = (now_ms - *last_ms) * per_sec; /* thousandths */
	*tokens = add >= burst * MILLI - *tokens ? burst * MILLI : *tokens + add;
	*last_ms = now_ms;
}

static int make_key(uint8_t key[17], const struct sockaddr *src, socklen_t len)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	memset(key, 0, 17);
	if (src->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)src)->sin_addr, 4);
		return 0;
	}
	if (src->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const uint8_t *a = ((const struct sockaddr_in6 *)src)->sin6_addr.s6_addr;
		if (memcmp(a, v4mapped, 12) == 0) { /* dual-stack socket: an IPv4 peer */
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a, 8);
		}
		return 0;
	}
	return -1;
}

int ratelimit_allow(struct ratelimit *rl, const struct sockaddr *src, socklen_t len,
		    uint64_t now_ms)
{
	return ratelimit_allow_cost(rl, src, len, 1, now_ms);
}

int ratelimit_allow_cost(struct ratelimit *rl, const struct sockaddr *src, socklen_t len,
			 uint64_t cost, uint64_t now_ms)
{
	uint8_t key[17];
	uint8_t h[crypto_shorthash_BYTES];
	if (make_key(key, src, len) != 0)
		return 0;
	crypto_shorthash(h, key, sizeof(key), rl->hash_key);
	struct bucket *set = rl->b[(h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16) % RATELIMIT_SETS];
	struct bucket *b = NULL, *victim = &set[0];
	for (int i = 0; i < RATELIMIT_WAYS; i++) {
		if (set[i].used && memcmp(set[i].key, key, sizeof(key)) == 0) {
			b = &set[i];
			break;
		}
		/* Prefer a free way, else the one idle longest. */
		if (victim->used && (!set[i].used || set[i].last_ms < victim->last_ms))
			victim = &set[i];
	}
	if (!b) {
		b = victim;
		if (!b->used)
			rl->count++;
		memcpy(b->key, key, sizeof(key));
		b->used = 1;
		b->last_ms = now_ms;
		b->tokens = rl->burst * MILLI;
	}
	refill(&b->tokens, &b->last_ms, rl->per_sec, rl->burst, now_ms);
	if (b->tokens < cost * MILLI)
		return 0;
	b->tokens -= cost * MILLI;
	return 1;
}

int auth_seen_plausible(const struct auth_seen *s, uint32_t index, uint64_t pn)
{
	uint64_t top = 0;
	for (int i = 0; i < 2; i++)
		if (s->top[i] && s->index[i] == index)
			top = s->top[i];
	return pn < top || pn - top < AUTH_PLAUSIBLE_AHEAD;
}

void auth_seen_note(struct auth_seen *s, uint32_t index, uint64_t pn)
{
	for (int i = 0; i < 2; i++)
		if (s->top[i] && s->index[i] == index) {
			if (pn >= s->top[i])
				s->top[i] = pn + 1;
			return;
		}
	/* New keys replace the older of the two: a late packet under the
	 * previous keys must not make the current ones look new again. */
	s->newest ^= 1;
	s->index[s->newest] = index;
	s->top[s->newest] = pn + 1;
}

int auth_limit_may_open(struct auth_limit *l, int plausible, uint64_t now_ms)
{
	if (plausible)
		return 1;
	if (!l->last_ms)
		return 1; /* full */
	refill(&l->tokens, &l->last_ms, AUTH_FAIL_PER_SEC, AUTH_FAIL_BURST, now_ms);
	return l->tokens >= MILLI;
}

void auth_limit_failed(struct auth_limit *l, uint64_t now_ms)
{
	if (!l->last_ms) {
		l->tokens = (uint64_t)AUTH_FAIL_BURST * MILLI;
		l->last_ms = now_ms ? now_ms : 1;
	}
	refill(&l->tokens, &l->last_ms, AUTH_FAIL_PER_SEC, AUTH_FAIL_BURST, now_ms);
	l->tokens = l->tokens >= MILLI ? l->tokens - MILLI : 0;
}
