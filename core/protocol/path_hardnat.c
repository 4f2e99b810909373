/*
 * path_hardnat.c — birthday probing through a NAT that changes ports
 * (the rules are in the comment below; path.c decides when).
 */
#include "path_priv.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- Hard NAT ------------------------------------------------------------- *
 *
 * A NAT that gives every destination a new random public port (the hard
 * side) defeats plain punching when the other side's NAT keeps one port
 * for all destinations (the easy side): the hard side's packets leave from
 * a port nobody told the easy side about.  Birthday probing gets through.
 * The hard side opens PATH_HARDNAT_SOCKETS sockets, each sending to the
 * easy side's public address: that opens as many random ports on its NAT.
 * The easy side sends PATH_HARDNAT_PROBES probes per round to ports of the
 * hard side's public IP, every port a new one (a random walk through the
 * range).  A probe that lands on an open port reaches the hard side and,
 * having left through the easy side's NAT towards that very port, opened
 * the easy side's NAT for the answer.  Each probe hits with probability
 * 128 / 64,512: one round succeeds with 1 - exp(-128 * 1024 / 64512) =
 * 87 %, four rounds with more than 99.9 %.
 *
 * Probes are authenticated packets carrying a PATH_CHALLENGE, so the one
 * that arrives moves the path as any roaming packet does, and the answer
 * moves the other side's.  Roles come from the rendezvous server: a public
 * port equal to our UDP port means our NAT keeps ports; the peer's public
 * port (listed first) is compared with its announced host addresses.
 */

static bool peer_keeps_ports(const struct peer_paths *pp)
{
	for (size_t i = 1; i < pp->cand_count; i++)
		if (port_of(&pp->cands[i].addr) == port_of(&pp->cands[0].addr))
			return true;
	return false;
}

static bool we_keep_ports(const struct pathman *pm)
{
	return pm->public_len && port_of(&pm->public_addr) == pm->cfg.local_port;
}

bool path_hardnat_eligible(const struct peer_paths *pp, const struct path_status *st)
{
	const struct pathman *pm = pp->pm;
	return pm->server == PATH_RDV_RELAY && !pm->hn.pp && st->has_conn && st->session_up &&
	       path_is_relay(pp->active.kind) && pp->confirmed && pp->cand_count &&
	       is_ipv4(&pp->cands[0].addr) && pm->public_len;
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static uint32_t random_below(const struct pathman *pm, uint32_t n)
{
	uint32_t r;
	srm_random(pm->cfg.rng, pm->cfg.rng_ctx, &r, sizeof(r));
	return r % n;
}

static void hardnat_start(struct peer_paths *pp, bool hard, uint64_t now_ms)
{
	struct pathman *pm = pp->pm;
	struct hardnat *h = &pm->hn;
	memset(h, 0, sizeof(*h));
	h->pp = pp;
	h->hard = hard;
	h->target = pp->cands[0];
	h->next_ms = now_ms;
	/* A step coprime with the range visits every port once. */
	h->walk = random_below(pm, PORT_RANGE);
	do
		h->step = 1 + random_below(pm, PORT_RANGE - 1);
	while (gcd(h->step, PORT_RANGE) != 1);
	if (hard)
		LOG_INFO(pp->name, "hard NAT: ours changes ports, the peer's keeps them: "
				   "opening %d ports towards it", PATH_HARDNAT_SOCKETS);
	else
		LOG_INFO(pp->name, "hard NAT: the peer's changes ports, ours keeps them: "
				   "probing %d of its ports per round", PATH_HARDNAT_PROBES);
}

/* The attempt ends: every probe socket but the winner closes. */
static bool hardnat_finish(struct peer_paths *pp, bool won, uint64_t now_ms,
			   struct path_action *act)
{
	struct pathman *pm = pp->pm;
	struct hardnat *h = &pm->hn;
	uint32_t keep = won && pp->active.kind == PATH_UDP ? pp->active.sock : 0;
	size_t n = 0;
	for (size_t i = 0; i < h->sock_count; i++) {
		if (h->socks[i] == keep)
			continue;
		pm->out[n] = (struct path_addr){ .kind = PATH_UDP, .sock = h->socks[i] };
		n++;
	}
	if (won)
		LOG_INFO(pp->name, "hard NAT: direct path found in round %d", h->round);
	else
		LOG_INFO(pp->name, "hard NAT: no direct path after %d rounds; staying relayed",
			 h->round);
	pp->won_sock = keep;
	pp->hardnat_next_ms = now_ms + HARDNAT_RETRY_MS;
	h->pp = NULL;
	*act = (struct path_action){ PATH_DO_CLOSE_SOCKETS, n, pm->out };
	return n > 0;
}

bool path_hardnat_step(struct peer_paths *pp, const struct path_status *st, uint64_t now_ms,
			 struct path_action *act)
{
	struct pathman *pm = pp->pm;
	struct hardnat *h = &pm->hn;
	if (!st->has_conn || !st->session_up)
		return hardnat_finish(pp, false, now_ms, act);
	if (!path_is_relay(pp->active.kind))
		return hardnat_finish(pp, true, now_ms, act);
	if (h->hard && !h->sockets_asked) {
		h->sockets_asked = true;
		*act = (struct path_action){ PATH_DO_OPEN_SOCKETS, PATH_HARDNAT_SOCKETS, NULL };
		return true;
	}
	if (now_ms < h->next_ms)
		return false;
	if (now_ms >= h->round_ms + HARDNAT_ROUND_MS || !h->round) {
		if (h->round == HARDNAT_ROUNDS)
			return hardnat_finish(pp, false, now_ms, act);
		h->round++;
		h->round_ms = now_ms;
		h->probes_sent = 0;
		h->next_ms = now_ms + (h->hard ? HARDNAT_ROUND_MS : HARDNAT_EASY_DELAY_MS);
		if (!h->hard || !h->sock_count)
			return false;
		/* Every socket sends to the easy side: that opens (or keeps
		 * open) its port on our NAT. */
		for (size_t i = 0; i < h->sock_count; i++) {
			pm->out[i] = h->target;
			pm->out[i].sock = h->socks[i];
		}
		*act = (struct path_action){ PATH_DO_PROBE, h->sock_count, pm->out };
		return true;
	}
	if (h->hard || h->probes_sent >= PATH_HARDNAT_PROBES) {
		h->next_ms = h->round_ms + HARDNAT_ROUND_MS;
		return false;
	}
	/* Easy side: the next burst of guesses at the hard side's open ports. */
	size_t n = 0;
	while (n < PATH_HARDNAT_BURST && h->probes_sent < PATH_HARDNAT_PROBES) {
		h->walk = (h->walk + h->step) % PORT_RANGE;
		pm->out[n] = h->target;
		pm->out[n].sock = 0;
		/* sin_port and sin6_port sit at the same offset */
		((struct sockaddr_in *)&pm->out[n].addr)->sin_port =
			htons((uint16_t)(PORT_FIRST + h->walk));
		n++;
		h->probes_sent++;
	}
	h->next_ms = now_ms + HARDNAT_BURST_MS;
	*act = (struct path_action){ PATH_DO_PROBE, n, pm->out };
	return true;
}

/* Relayed, with no attempt running: start one when exactly one NAT keeps
 * ports.  First, a socket that won an earlier attempt but no longer carries
 * the path (its mapping died; the session fell back to the relay) closes. */
bool path_hardnat_maybe_start(struct peer_paths *pp, const struct path_status *st,
				uint64_t now_ms, struct path_action *act)
{
	struct pathman *pm = pp->pm;
	if (!path_hardnat_eligible(pp, st) || now_ms < pp->hardnat_next_ms)
		return false;
	if (pp->won_sock) {
		pm->out[0] = (struct path_addr){ .kind = PATH_UDP, .sock = pp->won_sock };
		pp->won_sock = 0;
		*act = (struct path_action){ PATH_DO_CLOSE_SOCKETS, 1, pm->out };
		return true;
	}
	bool ours = we_keep_ports(pm), theirs = peer_keeps_ports(pp);
	if (ours == theirs) {
		/* Both keep ports: punching failed for another reason
		 * (filtering); both change them: only the relay works. */
		pp->hardnat_next_ms = now_ms + HARDNAT_RETRY_MS;
		return false;
	}
	struct ip_slot *s = path_ip_get(pm, &pp->cands[0].addr, now_ms);
	if (s && !s->answered) {
		if (s->hardnat_tried && now_ms < s->hardnat_ms + UNANSWERED_HARDNAT_MS) {
			pp->hardnat_next_ms = now_ms + HARDNAT_RETRY_MS;
			return false;
		}
		s->hardnat_tried = true;
		s->hardnat_ms = now_ms;
	}
	hardnat_start(pp, !ours, now_ms);
	return path_hardnat_step(pp, st, now_ms, act);
}
