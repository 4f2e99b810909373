/*
 * engine_rdv.c — the engine's side of NAT traversal: the rendezvous client,
 * punching towards candidate addresses, the relay fallback and the move
 * back to a direct path.  The protocol itself is rdv_client.c (sans-I/O);
 * this file only feeds it and acts on its events.
 *
 * Path choice, in order (docs/NAT.md):
 *   1. direct to the configured endpoint and every candidate the
 *      rendezvous server gave, all at once (hole punching);
 *   2. if no handshake completed after RELAY_AFTER_MS, the same
 *      handshakes also through the relay; whichever path answers first
 *      carries the session;
 *   3. while relayed, every REPROBE_MS a packet goes straight to the
 *      candidates; an authenticated answer from one moves the session
 *      there (the peer follows the same rule).
 */
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>

#include <sodium.h>

#include "engine.h"
#include "log.h"

/* Punching gets this long on its own before the relay is tried too: a few
 * handshake retransmissions, enough for both sides' punches to cross. */
#define RELAY_AFTER_MS 2500
/* A path is silent when we keep sending and nothing authenticated comes
 * back for this long (several RTTs on any real path): NAT mapping lost,
 * public address changed, or the peer moved. */
#define PATH_SILENT_MS 3000
/* While silent: copies of our packets go to every known address of the
 * peer this often, and we ask the rendezvous server again this often. */
#define SPRAY_INTERVAL_MS 250
#define REPAIR_INTERVAL_MS 2000
/* Re-registration (to learn a new public address) at most this often. */
#define RDV_FORCED_REFRESH_MS 5000
/* A peer the server does not know yet is asked for again this often. */
#define LOOKUP_INTERVAL_MS 2000
/* While relayed, try the direct candidates again this often. */
#define REPROBE_MS 10000
/* A relayed packet does not take the session off a direct path that
 * carried an authenticated packet this recently. */
#define DIRECT_FRESH_MS 3000

/* Same place: both through the relay, or the same address. */
bool engine_same_path(const struct path *a, const struct path *b)
{
	return a->len && a->relayed == b->relayed &&
	       (a->relayed ||
		(a->fd == b->fd && engine_addr_equal(&a->addr, (const struct sockaddr *)&b->addr)));
}

static void to_endpoint(const struct sockaddr_storage *a, socklen_t len, struct rdv_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	memcpy(&ep->addr, a, len);
	ep->len = len;
}

/* Our own addresses with our UDP port: the bound address if the socket
 * is bound to one, else every interface address (not loopback or
 * link-local). */
static size_t host_candidates(struct srm_engine *e, struct rdv_endpoint *out, size_t cap)
{
	struct ifaddrs *ifs, *i;
	size_t n = 0;
	int port = srm_engine_udp_port(e);
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	if (port < 0 || getsockname(e->udp_fd, (struct sockaddr *)&bound, &blen) != 0)
		return 0;
	bool any = bound.ss_family == AF_INET6
			   ? IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&bound)->sin6_addr)
			   : ((struct sockaddr_in *)&bound)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (!any) {
		to_endpoint(&bound, blen, &out[0]);
		return 1;
	}
	if (getifaddrs(&ifs) != 0)
		return 0;
	for (i = ifs; i && n < cap; i = i->ifa_next) {
		if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		socklen_t len;
		if (i->ifa_addr->sa_family == AF_INET && e->family == AF_INET6) {
			/* announced as plain IPv4; peers map it for their socket */
			struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
			*v4 = *(struct sockaddr_in *)i->ifa_addr;
			v4->sin_port = htons((uint16_t)port);
			len = sizeof(*v4);
		} else if (i->ifa_addr->sa_family == e->family) {
			if (e->family == AF_INET6) {
				struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
				*v6 = *(struct sockaddr_in6 *)i->ifa_addr;
				if (IN6_IS_ADDR_LINKLOCAL(&v6->sin6_addr))
					continue;
				v6->sin6_port = htons((uint16_t)port);
				len = sizeof(*v6);
			} else {
				struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
				*v4 = *(struct sockaddr_in *)i->ifa_addr;
				v4->sin_port = htons((uint16_t)port);
				len = sizeof(*v4);
			}
		} else {
			continue;
		}
		to_endpoint(&ss, len, &out[n++]);
	}
	freeifaddrs(ifs);
	return n;
}

int engine_rdv_start(struct srm_engine *e, char *err, size_t errlen)
{
	if (!e->cfg.rendezvous_len)
		return 0;
	struct rdv_client_config rc = {
		.id = e->identity,
		.wall_offset_ms = (uint64_t)clock_wall_offset_ms(),
	};
	to_endpoint(&e->cfg.rendezvous, e->cfg.rendezvous_len, &rc.server);
	uint64_t now_ms = clock_now_us() / 1000;
	e->rdv = rdv_client_new(&rc, now_ms);
	if (!e->rdv) {
		snprintf(err, errlen, "SRMUDP_RENDEZVOUS: cannot start the rendezvous client");
		return SRM_ERR_NOMEM;
	}
	e->rdv_server_len = engine_addr_for_socket(e, &e->cfg.rendezvous, e->cfg.rendezvous_len,
						   &e->rdv_server);
	struct rdv_endpoint cands[RDV_MAX_CANDIDATES];
	size_t n = host_candidates(e, cands, RDV_MAX_CANDIDATES);
	if (n && rdv_client_set_candidates(e->rdv, cands, n, now_ms) != 0)
		LOG_WARN(NULL, "rendezvous: could not announce host addresses");
	return 0;
}

void engine_rdv_free(struct srm_engine *e)
{
	if (e->rdv)
		rdv_client_free(e->rdv);
	e->rdv = NULL;
}

uint64_t engine_rdv_deadline(struct srm_engine *e)
{
	uint64_t d = e->rdv ? rdv_client_deadline(e->rdv) : UINT64_MAX;
	return d == UINT64_MAX ? d : d * 1000;
}

void engine_rdv_poll(struct srm_engine *e, uint64_t now_us)
{
	if (!e->rdv)
		return;
	uint8_t pkt[RDV_MAX_PACKET];
	size_t n;
	for (int i = 0; i < 8 && (n = rdv_client_poll(e->rdv, now_us / 1000, pkt, sizeof(pkt))); i++)
		engine_send(e, &e->rdv_server, e->rdv_server_len, pkt, n);
}

/* Ask the rendezvous server where peer is (a stream waits for it). */
void engine_rdv_lookup(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	if (!e->rdv || now_ms < p->next_lookup_ms)
		return;
	p->next_lookup_ms = now_ms + LOOKUP_INTERVAL_MS;
	if (rdv_client_lookup(e->rdv, p->cfg.pubkey, now_ms) == 0)
		LOG_DEBUG(p->cfg.name, "rendezvous: looking the peer up");
}

static struct peer *peer_by_pub(struct srm_engine *e, const uint8_t pub[SRM_KEY_BYTES])
{
	for (size_t i = 0; i < e->peer_count; i++)
		if (memcmp(e->peers[i].cfg.pubkey, pub, SRM_KEY_BYTES) == 0)
			return &e->peers[i];
	return NULL;
}

/* New candidates for p: punch towards all of them from now on. */
static void set_candidates(struct srm_engine *e, struct peer *p, const struct rdv_event *ev,
			   uint64_t now_ms)
{
	p->cand_count = 0;
	for (size_t i = 0; i < ev->endpoint_count && p->cand_count < RDV_MAX_ENDPOINTS; i++) {
		struct path *c = &p->cands[p->cand_count];
		c->len = engine_addr_for_socket(e, &ev->endpoints[i].addr, ev->endpoints[i].len,
						&c->addr);
		c->relayed = false;
		if (c->len)
			p->cand_count++;
	}
	p->punch_started_ms = now_ms;
	p->punch_until_ms = now_ms + PUNCH_PERSIST_MS;
	p->next_punch_ms = now_ms;
	char text[64];
	LOG_INFO(p->cfg.name, "rendezvous: %zu candidate(s), first %s; punching", p->cand_count,
		 p->cand_count ? engine_addr_text(&p->cands[0].addr, text, sizeof(text)) : "-");
	session_want_handshake(p->session, now_ms);
}

bool engine_rdv_receive(struct srm_engine *e, const uint8_t *pkt, size_t len,
			const struct sockaddr_storage *src, uint64_t now_us)
{
	if (!e->rdv || !e->rdv_server_len ||
	    !engine_addr_equal(&e->rdv_server, (const struct sockaddr *)src))
		return false;
	struct rdv_event ev;
	int rc = rdv_client_receive(e->rdv, pkt, len, now_us / 1000, &ev);
	if (rc < 0) {
		e->stats.drops[session_drop_reason(rc)]++;
		return true;
	}
	if (rc == 0)
		return true;
	char text[64];
	struct peer *p = ev.type == RDV_EV_REGISTERED ? NULL : peer_by_pub(e, ev.peer);
	switch (ev.type) {
	case RDV_EV_REGISTERED:
		LOG_INFO(NULL, "rendezvous: registered; our public address is %s",
			 rdv_endpoint_str(&ev.reflexive, text, sizeof(text)));
		if (e->reflexive.len && !rdv_endpoint_equal(&e->reflexive, &ev.reflexive)) {
			/* Our NAT moved us: have every peer we talk to told
			 * where we are now (the server sends them a PUNCH). */
			LOG_INFO(NULL, "rendezvous: our public address changed; re-punching");
			for (size_t i = 0; i < e->peer_count; i++) {
				e->peers[i].next_lookup_ms = 0;
				if (e->peers[i].conn)
					engine_rdv_lookup(e, &e->peers[i], now_us);
			}
		}
		e->reflexive = ev.reflexive;
		break;
	case RDV_EV_PEER_CANDIDATES:
	case RDV_EV_PUNCH_REQUEST:
		if (p)
			set_candidates(e, p, &ev, now_us / 1000);
		break;
	case RDV_EV_PEER_NOTFOUND:
		if (p)
			LOG_WARN(p->cfg.name, "rendezvous: the peer is not registered");
		break;
	case RDV_EV_RELAYED:
		if (p) {
			struct path from = { .len = e->rdv_server_len, .relayed = true };
			memcpy(&from.addr, &e->rdv_server, sizeof(from.addr));
			engine_handle_datagram(e, (uint8_t *)ev.inner, ev.inner_len, &from, p, now_us);
		}
		break;
	default:
		break;
	}
	return true;
}

/* Send a packet for p along path (wrapped for the relay when relayed). */
void engine_send_path(struct srm_engine *e, struct peer *p, const struct path *path,
		      const uint8_t *pkt, size_t len)
{
	if (path->fd) {
		/* A probe socket (engine_hardnat.c): not batched, no GSO. */
		sendto(path->fd, pkt, len, 0, (const struct sockaddr *)&path->addr, path->len);
		return;
	}
	if (!path->relayed) {
		engine_send(e, &path->addr, path->len, pkt, len);
		return;
	}
	if (!e->rdv)
		return;
	uint8_t wrapped[RDV_MAX_PACKET];
	size_t n = rdv_client_wrap_relay(e->rdv, p->cfg.pubkey, pkt, len, wrapped, sizeof(wrapped));
	if (n)
		engine_send(e, &e->rdv_server, e->rdv_server_len, wrapped, n);
}

/* A handshake INIT goes everywhere the peer might be. */
void engine_send_handshake(struct srm_engine *e, struct peer *p, const uint8_t *pkt, size_t len,
			   uint64_t now_ms)
{
	if (p->path.len && !p->path.relayed)
		engine_send_path(e, p, &p->path, pkt, len);
	for (size_t i = 0; i < p->cand_count; i++)
		if (!engine_same_path(&p->path, &p->cands[i]))
			engine_send_path(e, p, &p->cands[i], pkt, len);
	if (p->home.len && !engine_same_path(&p->path, &p->home))
		engine_send_path(e, p, &p->home, pkt, len);
	bool relay_due = e->rdv && (p->path.relayed ||
				    (p->punch_started_ms && now_ms >= p->punch_started_ms + RELAY_AFTER_MS));
	if (relay_due) {
		struct path relay = { .len = e->rdv_server_len, .relayed = true };
		engine_send_path(e, p, &relay, pkt, len);
	}
}

/* The relay wraps every packet: cap the path MTU search below it. */
void engine_path_relay_mtu(struct peer *p, uint64_t now_us)
{
	conn_on_too_big(p->conn, WIRE_MAX_UDP_PAYLOAD, WIRE_MAX_UDP_PAYLOAD - RDV_RELAY_OVERHEAD,
			now_us);
}

/* An authenticated packet from `from`: that is where the peer is now. */
void engine_path_confirm(struct srm_engine *e, struct peer *p, const struct path *from,
			 uint64_t now_ms)
{
	p->last_rx_ms = now_ms;
	if (!from->relayed)
		p->last_direct_rx_ms = now_ms;
	else if (!p->path.relayed && p->path.len && now_ms < p->last_direct_rx_ms + DIRECT_FRESH_MS)
		return; /* the direct path still works: keep it */
	if (p->path_confirmed && engine_same_path(&p->path, from))
		return;
	char text[64];
	if (from->relayed && p->conn)
		engine_path_relay_mtu(p, now_ms * 1000);
	if (from->relayed)
		LOG_INFO(p->cfg.name, "path: relayed through the rendezvous server");
	else
		LOG_INFO(p->cfg.name, "path: direct to %s", engine_addr_text(&from->addr, text, sizeof(text)));
	p->path = *from;
	p->path_confirmed = true;
	p->next_reprobe_ms = now_ms + REPROBE_MS;
	(void)e;
}

/* While relayed, the next packet sometimes goes straight to a candidate,
 * carrying a PATH_CHALLENGE: if it arrives, the peer moves to us directly
 * and its answer moves us. Returns the path for this packet. */
const struct path *engine_path_for_send(struct srm_engine *e, struct peer *p, uint64_t now_ms)
{
	if (!p->path.relayed || !p->cand_count || now_ms < p->next_reprobe_ms || !p->conn)
		return &p->path;
	p->next_reprobe_ms = now_ms + REPROBE_MS;
	uint8_t challenge[8];
	randombytes_buf(challenge, sizeof(challenge));
	conn_path_challenge(p->conn, challenge);
	p->reprobe_next = (p->reprobe_next + 1) % p->cand_count;
	(void)e;
	return &p->cands[p->reprobe_next];
}

/* ---- Repairing a silent path -------------------------------------------- */

bool engine_path_silent(const struct peer *p, uint64_t now_ms)
{
	return p->conn && p->last_rx_ms && now_ms > p->last_rx_ms + PATH_SILENT_MS &&
	       p->last_tx_ms + PATH_SILENT_MS > now_ms;
}

/* Re-register (a changed public address shows up in the answer) and ask
 * for the peer again: the server then tells both sides where the other
 * is now, and both punch. */
void engine_path_repair(struct srm_engine *e, struct peer *p, uint64_t now_ms)
{
	if (!engine_path_silent(p, now_ms) || now_ms < p->next_repair_ms)
		return;
	p->next_repair_ms = now_ms + REPAIR_INTERVAL_MS;
	LOG_INFO(p->cfg.name, "path silent for %llu ms: looking for the peer again",
		 (unsigned long long)(now_ms - p->last_rx_ms));
	if (!e->rdv)
		return;
	if (now_ms >= e->rdv_refreshed_ms + RDV_FORCED_REFRESH_MS) {
		e->rdv_refreshed_ms = now_ms;
		rdv_client_refresh(e->rdv, now_ms);
	}
	p->next_lookup_ms = 0;
	engine_rdv_lookup(e, p, now_ms * 1000);
}

/* Copies of a packet to every other address the peer may be at now: one
 * getting through opens our NAT towards it and, once authenticated there,
 * moves the peer's path to us (and its answer moves ours). */
void engine_path_spray(struct srm_engine *e, struct peer *p, const uint8_t *pkt, size_t len,
		       uint64_t now_ms)
{
	if (now_ms < p->next_spray_ms)
		return;
	p->next_spray_ms = now_ms + SPRAY_INTERVAL_MS;
	for (size_t i = 0; i < p->cand_count; i++)
		if (!engine_same_path(&p->path, &p->cands[i]))
			engine_send_path(e, p, &p->cands[i], pkt, len);
	if (p->home.len && !engine_same_path(&p->path, &p->home))
		engine_send_path(e, p, &p->home, pkt, len);
}
