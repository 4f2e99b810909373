/*
 * path.c — the path manager (see path.h).  The rules, per peer (docs/NAT.md):
 *
 *   1. punch: handshakes to the configured endpoint and every candidate at
 *      once, retried every 15 s for 5 minutes;
 *   2. relay: after PATH_RELAY_AFTER_MS without a session (at once if UDP
 *      sends fail outright) the handshakes also go through the relay, and
 *      whichever path answers first carries the session;
 *   3. re-probe: while relayed, every 10 s, look the peer up again (the
 *      server tells it to do the same) and probe every candidate; an
 *      authenticated answer moves the session back to direct;
 *   4. hard NAT: relayed, and exactly one NAT keeps ports: birthday probing;
 *   5. repair: a silent path (we sent, nothing came back) makes us register
 *      and look the peer up again, and probe every address it may be at;
 *      so does incoming data that stopped dead (a receiver's side);
 *   6. pinhole: a peer with a configured endpoint gets a PUNCH whenever
 *      nothing else went to it for 15 s, for as long as the engine runs.
 *   7. bystanders: an IP that never answered (the server's word only)
 *      gets one hard-NAT attempt an hour and 64 other packets a minute.
 *
 * Files: this one (the rules per peer), path_hardnat.c (4), path_budget.c
 * (7), path_server.c (how the server is reached); path_priv.h is what
 * they share.
 *
 * And engine-wide, the server's link: UDP while the server answers there;
 * the WebSocket relay after 1.5 s of silence (or a failed send), with UDP
 * tried again every 10 s.  Relayed paths follow the link.
 *
 * Only authenticated packets move the active path (path_on_receive).
 */
#include "path_priv.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Silence: nothing authenticated for 4 RTTs after a packet of ours (a
 * lost packet and its retransmission), within these bounds. */
#define SILENT_MIN_MS 1000
#define SILENT_RTTS 4

/* ---- Helpers ------------------------------------------------------------ */

bool path_sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family != AF_INET6)
		return false;
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

bool path_same(const struct path_addr *a, const struct path_addr *b)
{
	if (a->kind == PATH_NONE || a->kind != b->kind)
		return false;
	if (a->kind != PATH_UDP)
		return a->sock == b->sock; /* the same relay (or forwarding peer) */
	return a->len && a->sock == b->sock &&
	       path_sockaddr_equal(&a->addr, (const struct sockaddr *)&b->addr);
}

static bool has_address(const struct peer_paths *pp)
{
	return pp->active.kind != PATH_NONE || pp->cand_count;
}

static uint64_t silent_after_ms(const struct peer_paths *pp)
{
	uint64_t ms = (uint64_t)pp->srtt_ms * SILENT_RTTS;
	if (!pp->srtt_ms || ms > PATH_SILENT_MS)
		return PATH_SILENT_MS;
	return ms < SILENT_MIN_MS ? SILENT_MIN_MS : ms;
}

/* ---- Lifecycle ------------------------------------------------------------ */

struct pathman *pathman_new(const struct path_config *cfg)
{
	struct pathman *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return NULL;
	pm->cfg = *cfg;
	pm->server = cfg->servers ? PATH_RDV_RELAY : cfg->ws ? PATH_WS_RELAY : PATH_NONE;
	return pm;
}

void pathman_free(struct pathman *pm)
{
	free(pm);
}

void pathman_set_local_port(struct pathman *pm, uint16_t port)
{
	pm->cfg.local_port = port;
}

void pathman_on_public_address(struct pathman *pm, const struct sockaddr_storage *addr,
			       socklen_t len)
{
	bool changed = pm->public_len &&
		       !path_sockaddr_equal(&pm->public_addr, (const struct sockaddr *)addr);
	memcpy(&pm->public_addr, addr, len);
	pm->public_len = len;
	if (!changed)
		return;
	/* Our NAT moved us: have every peer we talk to told where we are now
	 * (the server sends them a PUNCH when we look them up). */
	LOG_INFO(NULL, "rendezvous: our public address changed; re-punching");
	for (struct peer_paths *pp = pm->peers; pp; pp = pp->next) {
		pp->next_lookup_ms = 0;
		pp->relookup = true;
	}
}

void pathman_on_local_change(struct pathman *pm)
{
	for (struct peer_paths *pp = pm->peers; pp; pp = pp->next) {
		pp->next_lookup_ms = 0;
		pp->relookup = true;
		pp->probe_cands = true;
	}
}

/* ---- Peers ---------------------------------------------------------------- */

struct peer_paths *path_peer_new(struct pathman *pm, const char *name,
				 const struct sockaddr_storage *home, socklen_t home_len,
				 uint64_t now_ms)
{
	struct peer_paths *pp = calloc(1, sizeof(*pp));
	if (!pp)
		return NULL;
	pp->pm = pm;
	snprintf(pp->name, sizeof(pp->name), "%s", name ? name : "");
	if (home_len) {
		pp->home.kind = PATH_UDP;
		pp->home.len = home_len;
		memcpy(&pp->home.addr, home, home_len);
		pp->active = pp->home;
		pp->next_punch_ms = now_ms + PATH_PUNCH_FIRST_DELAY_MS;
		pp->punch_until_ms = pp->next_punch_ms + PATH_PUNCH_PERSIST_MS;
	}
	pp->home_tx_ms = now_ms;
	pp->next = pm->peers;
	pm->peers = pp;
	return pp;
}

/* A reload changed the configured endpoint (edited, or its host name now
 * resolves elsewhere).  Handshakes and pinhole refreshes go to the new one;
 * so does traffic, unless an authenticated packet confirmed the path in use
 * (a working session stays where the peer answers from: if the peer did
 * move, its packets move the path anyway). */
void path_peer_set_home(struct peer_paths *pp, const struct sockaddr_storage *home,
			socklen_t home_len, uint64_t now_ms)
{
	struct path_addr old = pp->home;
	memset(&pp->home, 0, sizeof(pp->home));
	if (home_len) {
		pp->home.kind = PATH_UDP;
		pp->home.len = home_len;
		memcpy(&pp->home.addr, home, home_len);
	}
	bool on_old = old.len && path_same(&pp->active, &old);
	if ((on_old || pp->active.kind == PATH_NONE) && !pp->confirmed) {
		pp->active = pp->home;
		if (home_len) {
			pp->next_punch_ms = now_ms + PATH_PUNCH_FIRST_DELAY_MS;
			pp->punch_until_ms = pp->next_punch_ms + PATH_PUNCH_PERSIST_MS;
		}
	}
	pp->home_tx_ms = now_ms;
}

void path_peer_free(struct peer_paths *pp)
{
	if (!pp)
		return;
	struct pathman *pm = pp->pm;
	for (struct peer_paths **at = &pm->peers; *at; at = &(*at)->next) {
		if (*at == pp) {
			*at = pp->next;
			break;
		}
	}
	if (pm->hn.pp == pp)
		pm->hn.pp = NULL; /* the driver closes every probe socket it has */
	free(pp);
}

/* ---- Events --------------------------------------------------------------- */

bool path_on_receive(struct peer_paths *pp, const struct path_addr *from, uint64_t now_ms)
{
	pp->last_rx_ms = now_ms;
	pp->unanswered_ms = 0;
	if (from->kind == PATH_UDP) {
		pp->last_direct_rx_ms = now_ms;
		pp->relay_now = false; /* UDP works (again) */
		if (!(pp->confirmed && path_same(&pp->active, from))) {
			struct ip_slot *s = path_ip_get(pp->pm, &from->addr, now_ms);
			if (s)
				s->answered = true;
		}
	}
	else if (pp->active.kind == PATH_UDP && now_ms < pp->last_direct_rx_ms + PATH_DIRECT_FRESH_MS)
		return false; /* the direct path still works: keep it */
	if (pp->confirmed && path_same(&pp->active, from))
		return false;
	pp->active = *from;
	pp->confirmed = true;
	pp->next_reprobe_ms = now_ms + PATH_REPROBE_MS;
	return true;
}

void path_on_sent(struct peer_paths *pp, const struct path_addr *to, uint64_t now_ms)
{
	if (pp->home.len && path_same(to, &pp->home))
		pp->home_tx_ms = now_ms;
	/* The confirmed active path answered; a hard-NAT attempt's own
	 * packets are bounded by the attempt. */
	const struct hardnat *h = &pp->pm->hn;
	bool hardnat = h->pp == pp && to->kind == PATH_UDP && path_same_ip(&to->addr, &h->target.addr);
	if (!(pp->confirmed && path_same(to, &pp->active)) && !hardnat)
		path_charge(pp, to, now_ms);
	/* Silence is about the active path: probes elsewhere are guesses,
	 * mostly unanswered, and must not keep a repair going forever. */
	if (!path_same(to, &pp->active))
		return;
	if (!pp->unanswered_ms)
		pp->unanswered_ms = now_ms;
	pp->last_tx_ms = now_ms;
}

void path_on_send_failed(struct peer_paths *pp, const struct path_addr *to, uint64_t now_ms)
{
	(void)now_ms;
	if (to->kind == PATH_UDP && !pp->relay_now) {
		LOG_INFO(pp->name, "path: cannot send over UDP; trying the relay at once");
		pp->relay_now = true;
		pp->relay_kicked = false;
	}
}

void path_on_candidates(struct peer_paths *pp, const struct path_addr *cands, size_t n,
			uint64_t now_ms)
{
	pp->cand_count = 0;
	for (size_t i = 0; i < n && pp->cand_count < PATH_MAX_CANDIDATES; i++)
		if (cands[i].kind == PATH_UDP && cands[i].len)
			pp->cands[pp->cand_count++] = cands[i];
	/* The relay clock runs from the first answer of a punching period:
	 * repeated answers (lookups repeat while punching) do not hold the
	 * relay back. */
	if (!pp->punch_started_ms || now_ms >= pp->punch_until_ms) {
		pp->punch_started_ms = now_ms;
		pp->relay_kicked = false;
	}
	pp->punch_until_ms = now_ms + PATH_PUNCH_PERSIST_MS;
	pp->next_punch_ms = now_ms;
	/* With a session running (the peer moved, or asked us to punch), a
	 * handshake is not wanted: probes to the new addresses are. */
	pp->probe_cands = true;
}

void path_set_vias(struct peer_paths *pp, const uint32_t *ids, size_t n)
{
	pp->via_count = n < PATH_MAX_VIAS ? n : PATH_MAX_VIAS;
	memcpy(pp->vias, ids, pp->via_count * sizeof(*ids));
}

void path_sockets_opened(struct peer_paths *pp, const uint32_t *socks, size_t n)
{
	struct hardnat *h = &pp->pm->hn;
	if (h->pp != pp)
		return;
	for (size_t i = 0; i < n && h->sock_count < PATH_HARDNAT_SOCKETS; i++)
		h->socks[h->sock_count++] = socks[i];
}

/* ---- Polling -------------------------------------------------------------- */

static bool punching(const struct peer_paths *pp, const struct path_status *st, uint64_t now_ms)
{
	return has_address(pp) && now_ms < pp->punch_until_ms && !st->session_up;
}

/* Without an address; after our public address changed or the path went
 * silent; and while punching to reported candidates has not worked yet:
 * every answer makes the server tell the peer to punch again, so one lost
 * PUNCH note does not leave its NAT closed. */
static bool lookup_wanted(const struct peer_paths *pp, const struct path_status *st)
{
	return pp->pm->server != PATH_NONE && st->has_conn &&
	       (pp->relookup || !has_address(pp) || (pp->cand_count && !st->session_up));
}

static size_t add_target(struct path_addr *out, size_t n, size_t cap, const struct path_addr *t)
{
	for (size_t i = 0; i < n; i++)
		if (path_same(&out[i], t))
			return n;
	if (n < cap)
		out[n++] = *t;
	return n;
}

/* Punching gets this long alone, less when UDP to the server failed too. */
static uint64_t relay_after_ms(const struct pathman *pm)
{
	return pm->server == PATH_WS_RELAY ? PATH_WS_RELAY_AFTER_MS : PATH_RELAY_AFTER_MS;
}

/* Handshakes go through the relay too: relayed already, UDP sends fail,
 * or punching had its time. */
static bool relay_due(const struct peer_paths *pp, uint64_t now_ms)
{
	const struct pathman *pm = pp->pm;
	return pm->server != PATH_NONE &&
	       (path_is_relay(pp->active.kind) || pp->relay_now ||
		(pp->punch_started_ms && now_ms >= pp->punch_started_ms + relay_after_ms(pm)));
}

/* Handshakes go via mutual peers too: forwarded already, UDP sends fail,
 * punching had its time, or there is nothing else to try. */
static bool via_due(const struct peer_paths *pp, uint64_t now_ms)
{
	if (!pp->via_count)
		return false;
	if (pp->active.kind == PATH_VIA || pp->relay_now)
		return true;
	if (!pp->want_ms)
		return false;
	if (pp->pm->server != PATH_NONE)
		return now_ms >= pp->want_ms + PATH_RELAY_AFTER_MS + PATH_VIA_AFTER_RELAY_MS;
	return !has_address(pp) || now_ms >= pp->want_ms + PATH_RELAY_AFTER_MS;
}

/* When via_due becomes true, for path_deadline. */
static uint64_t via_due_at(const struct peer_paths *pp)
{
	return pp->want_ms + PATH_RELAY_AFTER_MS +
	       (pp->pm->server != PATH_NONE ? PATH_VIA_AFTER_RELAY_MS : 0);
}

/* Data was flowing in, stopped, and nothing at all came since. */
static bool rx_stalled(const struct peer_paths *pp, const struct path_status *st, uint64_t now_ms)
{
	uint64_t after = silent_after_ms(pp);
	return st->session_up && st->has_conn && pp->data_in_ms && pp->rx_probes < PATH_RX_PROBES &&
	       pp->last_rx_ms < pp->data_in_ms + after && now_ms >= pp->last_rx_ms + after;
}

static bool relayed_with_traffic(const struct peer_paths *pp, const struct path_status *st)
{
	return path_is_relay(pp->active.kind) && st->session_up && st->has_conn;
}

/* Every direct address of the peer, the active one included: a peer that
 * only acknowledges (it sends nothing while nothing arrives) must reopen
 * its own NAT towards us when both NATs forgot the flow. */
static size_t direct_addresses(const struct peer_paths *pp, struct path_addr *out, size_t cap)
{
	size_t n = 0;
	if (pp->active.kind == PATH_UDP)
		n = add_target(out, n, cap, &pp->active);
	for (size_t i = 0; i < pp->cand_count; i++)
		n = add_target(out, n, cap, &pp->cands[i]);
	if (pp->home.len)
		n = add_target(out, n, cap, &pp->home);
	return n;
}

bool path_poll(struct peer_paths *pp, const struct path_status *st, uint64_t now_ms,
	       struct path_action *act)
{
	struct pathman *pm = pp->pm;
	pp->srtt_ms = st->srtt_ms;
	if (st->rx_stream_bytes != pp->rx_bytes_seen) {
		pp->rx_bytes_seen = st->rx_stream_bytes;
		pp->data_in_ms = now_ms;
		pp->rx_probes = 0;
		pp->next_rx_probe_ms = 0;
	}
	if (!st->has_conn || st->session_up)
		pp->want_ms = 0, pp->via_kicked = false;
	else if (!pp->want_ms)
		pp->want_ms = now_ms;
	if (pm->hn.pp == pp) {
		if (path_hardnat_step(pp, st, now_ms, act))
			return true;
	} else if (path_hardnat_maybe_start(pp, st, now_ms, act)) {
		return true;
	}
	/* The relay just became due: the INIT goes there now, not at the
	 * handshake's next retransmission (by then up to 3.5 s away). */
	if (!st->session_up && st->has_conn && !pp->relay_kicked && relay_due(pp, now_ms)) {
		pp->relay_kicked = true;
		*act = (struct path_action){ .kind = PATH_DO_HANDSHAKE };
		return true;
	}
	if (!st->session_up && st->has_conn && !pp->via_kicked && via_due(pp, now_ms)) {
		pp->via_kicked = true;
		*act = (struct path_action){ .kind = PATH_DO_HANDSHAKE };
		return true;
	}
	if (punching(pp, st, now_ms) && now_ms >= pp->next_punch_ms) {
		pp->next_punch_ms = now_ms + PATH_PUNCH_RETRY_MS;
		*act = (struct path_action){ .kind = PATH_DO_HANDSHAKE };
		return true;
	}
	if (st->has_conn && path_silent(pp, now_ms) && now_ms >= pp->next_repair_ms) {
		/* Re-register (a changed public address shows up in the
		 * answer) and ask for the peer again: the server then tells
		 * both sides where the other is now, and both punch. */
		pp->next_repair_ms = now_ms + PATH_REPAIR_MS;
		pp->next_spray_ms = now_ms;
		LOG_INFO(pp->name, "path silent for %llu ms: looking for the peer again",
			 (unsigned long long)(now_ms - pp->unanswered_ms));
		if (pm->server != PATH_NONE) {
			pp->relookup = true;
			pp->next_lookup_ms = 0;
			if (now_ms >= pm->registered_ms + PATH_REREGISTER_MS) {
				pm->registered_ms = now_ms;
				*act = (struct path_action){ .kind = PATH_DO_REGISTER };
				return true;
			}
		}
	}
	if (relayed_with_traffic(pp, st) && now_ms >= pp->next_reprobe_ms) {
		/* Both sides' NATs must open towards each other: our lookup
		 * makes the server tell the peer to probe us as we probe it. */
		pp->next_reprobe_ms = now_ms + PATH_REPROBE_MS;
		pp->probe_cands = true;
		if (pm->server != PATH_NONE) {
			pp->relookup = true;
			pp->next_lookup_ms = 0;
		}
	}
	if (lookup_wanted(pp, st) && now_ms >= pp->next_lookup_ms) {
		pp->next_lookup_ms = now_ms + PATH_LOOKUP_MS;
		pp->relookup = false;
		*act = (struct path_action){ .kind = PATH_DO_LOOKUP };
		return true;
	}
	bool spray = path_silent(pp, now_ms) && now_ms >= pp->next_spray_ms;
	if (rx_stalled(pp, st, now_ms) && now_ms >= pp->next_rx_probe_ms) {
		pp->next_rx_probe_ms = now_ms + (silent_after_ms(pp) << ++pp->rx_probes);
		spray = true;
	}
	if (st->session_up && st->has_conn && (pp->probe_cands || spray)) {
		/* New addresses, or a silent path: a probe to every address
		 * the peer may be at.  One getting through opens our NAT
		 * towards it and, authenticated there, moves the peer's path
		 * to us; its answer moves ours. */
		pp->probe_cands = false;
		pp->next_spray_ms = now_ms + PATH_SPRAY_MS;
		size_t n = path_within_budget(pp, pm->out, direct_addresses(pp, pm->out, OUT_MAX), now_ms);
		if (n) {
			*act = (struct path_action){ PATH_DO_PROBE, n, pm->out };
			return true;
		}
	}
	if (pp->home.len && now_ms >= pp->home_tx_ms + PATH_PINHOLE_MS) {
		pp->home_tx_ms = now_ms;
		pm->out[0] = pp->home;
		*act = (struct path_action){ PATH_DO_PUNCH, 1, pm->out };
		return true;
	}
	return false;
}

uint64_t path_deadline(const struct peer_paths *pp, const struct path_status *st, uint64_t now_ms)
{
	const struct pathman *pm = pp->pm;
	uint64_t d = UINT64_MAX;
	if (pm->hn.pp == pp)
		d = pm->hn.next_ms;
	else if (path_hardnat_eligible(pp, st))
		d = pp->hardnat_next_ms;
	if (punching(pp, st, now_ms))
		d = min_u64(d, pp->next_punch_ms);
	if (!st->session_up && st->has_conn && !pp->relay_kicked && pm->server != PATH_NONE &&
	    pp->punch_started_ms)
		d = min_u64(d, pp->relay_now ? now_ms : pp->punch_started_ms + relay_after_ms(pm));
	if (!st->session_up && st->has_conn && !pp->via_kicked && pp->via_count)
		d = min_u64(d, !pp->want_ms || via_due(pp, now_ms) ? now_ms : via_due_at(pp));
	if (lookup_wanted(pp, st))
		d = min_u64(d, pp->next_lookup_ms);
	if (relayed_with_traffic(pp, st))
		d = min_u64(d, pp->next_reprobe_ms);
	if (st->has_conn && path_silent(pp, now_ms)) {
		d = min_u64(d, pp->next_repair_ms);
		if (st->session_up)
			d = min_u64(d, pp->next_spray_ms);
	} else if (st->has_conn && pp->last_rx_ms && pp->unanswered_ms) {
		/* It becomes silent then, if we are still sending. */
		uint64_t after = silent_after_ms(pp), at = pp->unanswered_ms + after;
		if (at > now_ms && at < pp->last_tx_ms + after)
			d = min_u64(d, at);
	}
	if (pp->probe_cands && st->session_up && st->has_conn)
		d = now_ms;
	if (st->session_up && st->has_conn && pp->data_in_ms && pp->rx_probes < PATH_RX_PROBES &&
	    pp->last_rx_ms < pp->data_in_ms + silent_after_ms(pp)) {
		uint64_t at = pp->last_rx_ms + silent_after_ms(pp);
		d = min_u64(d, at > pp->next_rx_probe_ms ? at : pp->next_rx_probe_ms);
	}
	if (pp->home.len)
		d = min_u64(d, pp->home_tx_ms + PATH_PINHOLE_MS);
	return d;
}

/* ---- Where packets go ----------------------------------------------------- */

size_t path_handshake_targets(const struct peer_paths *pp, uint64_t now_ms, struct path_addr *out,
			      size_t cap)
{
	size_t n = path_within_budget(pp, out, direct_addresses(pp, out, cap), now_ms);
	if (relay_due(pp, now_ms)) {
		struct path_addr relay = { .kind = pp->pm->server };
		n = add_target(out, n, cap, &relay);
	}
	if (via_due(pp, now_ms))
		for (size_t i = 0; i < pp->via_count; i++) {
			struct path_addr via = { .kind = PATH_VIA, .sock = pp->vias[i] };
			n = add_target(out, n, cap, &via);
		}
	return n;
}

bool path_can_handshake(const struct peer_paths *pp, uint64_t now_ms)
{
	if (pp->home.len || relay_due(pp, now_ms) || via_due(pp, now_ms))
		return true;
	/* Addresses over their budget do not count: the handshake waits. */
	struct path_addr t[PATH_MAX_TARGETS];
	return path_handshake_targets(pp, now_ms, t, PATH_MAX_TARGETS) > 0;
}

/* ---- State ---------------------------------------------------------------- */

const struct path_addr *path_active(const struct peer_paths *pp)
{
	return &pp->active;
}

bool path_confirmed(const struct peer_paths *pp)
{
	return pp->confirmed;
}

uint64_t path_last_rx_ms(const struct peer_paths *pp)
{
	return pp->last_rx_ms;
}

bool path_is_known(const struct peer_paths *pp, const struct path_addr *a)
{
	if (path_same(&pp->active, a) || (pp->home.len && path_same(&pp->home, a)))
		return true;
	for (size_t i = 0; i < pp->cand_count; i++)
		if (path_same(&pp->cands[i], a))
			return true;
	return false;
}

/* We heard from the peer once, keep sending, and nothing came back: not
 * when we simply stopped (a receiver's last ACK needs no answer). */
bool path_silent(const struct peer_paths *pp, uint64_t now_ms)
{
	uint64_t after = silent_after_ms(pp);
	return pp->last_rx_ms && pp->unanswered_ms && now_ms >= pp->unanswered_ms + after &&
	       now_ms < pp->last_tx_ms + after;
}
