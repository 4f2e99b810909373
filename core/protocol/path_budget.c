/*
 * path_budget.c — what goes to an IP that never answered (path_priv.h; the
 * numbers and their reasons are beside UNANSWERED_BUDGET there).
 */
#include "path_priv.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- Addresses that never answered ---------------------------------------- */

static bool ip_key(const struct sockaddr_storage *a, uint8_t key[16])
{
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const void *)a;
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &v4->sin_addr, 4);
		return true;
	}
	if (a->ss_family != AF_INET6)
		return false;
	memcpy(key, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
	return true;
}

static struct ip_slot *ip_find(const struct pathman *pm, const struct sockaddr_storage *a)
{
	uint8_t key[16];
	if (!ip_key(a, key))
		return NULL;
	for (size_t i = 0; i < UNANSWERED_SLOTS; i++)
		if (pm->ips[i].used && memcmp(pm->ips[i].ip, key, 16) == 0)
			return (struct ip_slot *)&pm->ips[i];
	return NULL;
}

/* The IP's entry, made (evicting the least recently used, unanswered
 * first) when there is none; NULL for a non-IP address. */
struct ip_slot *path_ip_get(struct pathman *pm, const struct sockaddr_storage *a, uint64_t now_ms)
{
	struct ip_slot *s = ip_find(pm, a);
	if (s || (a->ss_family != AF_INET && a->ss_family != AF_INET6)) {
		if (s)
			s->last_ms = now_ms;
		return s;
	}
	struct ip_slot *victim = NULL;
	for (size_t i = 0; i < UNANSWERED_SLOTS && !(victim && !victim->used); i++) {
		struct ip_slot *c = &pm->ips[i];
		if (!victim || !c->used || (c->answered == victim->answered ? c->last_ms < victim->last_ms
									    : victim->answered))
			victim = c;
	}
	memset(victim, 0, sizeof(*victim));
	ip_key(a, victim->ip);
	victim->used = true;
	victim->last_ms = now_ms;
	return victim;
}

bool path_same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	uint8_t x[16], y[16];
	return ip_key(a, x) && ip_key(b, y) && memcmp(x, y, 16) == 0;
}

static bool is_home(const struct peer_paths *pp, const struct path_addr *a)
{
	return pp->home.len && a->kind == PATH_UDP &&
	       path_sockaddr_equal(&pp->home.addr, (const struct sockaddr *)&a->addr);
}

/* A packet to `a` now would exceed its IP's budget. */
static bool over_budget(const struct peer_paths *pp, const struct path_addr *a, uint64_t now_ms)
{
	if (a->kind != PATH_UDP || is_home(pp, a))
		return false;
	const struct ip_slot *s = ip_find(pp->pm, &a->addr);
	return s && !s->answered && now_ms < s->window_ms + UNANSWERED_WINDOW_MS &&
	       s->sent >= UNANSWERED_BUDGET;
}

void path_charge(struct peer_paths *pp, const struct path_addr *a, uint64_t now_ms)
{
	if (a->kind != PATH_UDP || is_home(pp, a))
		return;
	struct ip_slot *s = path_ip_get(pp->pm, &a->addr, now_ms);
	if (!s || s->answered)
		return;
	if (!s->sent || now_ms >= s->window_ms + UNANSWERED_WINDOW_MS) {
		s->window_ms = now_ms;
		s->sent = 0;
	}
	s->sent++;
}

/* Drops the targets over budget; returns how many remain. */
size_t path_within_budget(const struct peer_paths *pp, struct path_addr *t, size_t n,
			    uint64_t now_ms)
{
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (!over_budget(pp, &t[i], now_ms))
			t[kept++] = t[i];
	return kept;
}
