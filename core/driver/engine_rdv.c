/*
 * engine_rdv.c — the engine's rendezvous client: registering (with our host
 * addresses as candidates), lookups, and the server's answers, which go to
 * the path manager (core/protocol/path.c) and, for relayed packets, to the
 * receive path.  The protocol itself is rdv_client.c (sans-I/O).  The
 * server (a gate of SRMUDP_GATES, or SRMUDP_RENDEZVOUS) is reached over
 * UDP or over the WebSocket relay (SRMUDP_RELAY, engine_ws.c), as the
 * path manager says: the same packets either way.  Beside it, one more
 * registration with each other gate of ours ("Our other gates" below).
 */
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>


#include "engine.h"
#include "log.h"

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
	if (port < 0 || sys_getsockname(e->udp_fd, (struct sockaddr *)&bound, &blen) != 0)
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

void engine_rdv_list_servers(struct srm_engine *e)
{
	e->server_count = 0;
	for (size_t g = 0; g < e->cfg.gate_count; g++)
		for (size_t i = 0; i < e->peer_count; i++) {
			const struct srm_peer_config *p = &e->peers[i].cfg;
			if (strcmp(p->name, e->cfg.gates[g]) != 0 || !p->endpoint_len)
				continue;
			e->server_gate[e->server_count] = true;
			struct srm_rendezvous_config *r = &e->servers[e->server_count++];
			memcpy(&r->addr, &p->endpoint, sizeof(r->addr));
			r->addr_len = p->endpoint_len;
			memcpy(r->key, p->pubkey, SRM_KEY_BYTES);
			r->pinned = 1;
		}
	for (size_t i = 0; i < e->cfg.rendezvous_count; i++) {
		e->server_gate[e->server_count] = false;
		e->servers[e->server_count++] = e->cfg.rendezvous[i];
	}
	engine_gatebook_servers(e);
}

/* ---- Our other gates ------------------------------------------------------
 * A member registers with every gate it has (up to ENGINE_GATE_REGS), not
 * only with the one in use: it is then found and relayed at each, so two
 * members need not share their first working gate; the gate one of them
 * uses need only be one the other reaches.  These registrations go over
 * UDP only, and the one with the gate in use pauses (the main client is
 * registered there).  Lookups stay with the main client. */

static void start_gate_regs(struct srm_engine *e, uint64_t now_ms)
{
	for (size_t s = 0; s < e->server_count && e->gate_reg_count < ENGINE_GATE_REGS; s++) {
		struct gate_reg *g = &e->gate_regs[e->gate_reg_count];
		struct rdv_client_config cc = {
			.id = e->identity,
			.wall_offset_ms = (uint64_t)clock_wall_offset_ms(),
		};
		if (!e->server_gate[s])
			continue;
		g->len = engine_addr_for_socket(e, &e->servers[s].addr, e->servers[s].addr_len, &g->addr);
		if (!g->len || !(g->c = rdv_client_new(&cc, now_ms)))
			continue;
		g->server = s;
		rdv_client_relink(g->c, e->servers[s].key, now_ms);
		e->gate_reg_count++;
	}
}

static bool paused(const struct srm_engine *e, const struct gate_reg *g)
{
	return g->server == e->rdv_at;
}

bool engine_rdv_relay_link(struct srm_engine *e, uint32_t sock, struct rdv_client **c,
			   const struct sockaddr_storage **to, socklen_t *len)
{
	const struct gate_reg *g = sock && sock <= e->gate_reg_count ? &e->gate_regs[sock - 1] : NULL;
	if (g && !paused(e, g)) {
		*c = g->c;
		*to = &g->addr;
		*len = g->len;
		return true;
	}
	*c = e->rdv;
	*to = &e->rdv_server;
	*len = e->rdv_server_len;
	return e->rdv != NULL;
}

/* Server i of e->servers is the one UDP goes to from now on. */
static void aim_at(struct srm_engine *e, size_t i)
{
	const struct srm_rendezvous_config *r = &e->servers[i];
	/* The main client leaves that gate: its own registration there
	 * takes over at once (it paused meanwhile). */
	for (size_t k = 0; k < e->gate_reg_count; k++)
		if (e->gate_regs[k].server == e->rdv_at && e->rdv_at != i)
			rdv_client_relink(e->gate_regs[k].c, e->servers[e->rdv_at].key, clock_now_ms());
	e->rdv_at = i;
	e->rdv_server_len = 0;
	if (i < e->server_count)
		e->rdv_server_len = engine_addr_for_socket(e, &r->addr, r->addr_len, &e->rdv_server);
}

/* The key pinned for the server in use; NULL: none (or no server over
 * UDP: only WebSocket relays, whose key is not pinned).  Over a gate's
 * WebSocket, that gate's. */
static const uint8_t *pinned_key(const struct srm_engine *e)
{
	int ws = pathman_server(e->paths) == PATH_WS_RELAY ? engine_ws_server(e) : -1;
	const struct srm_rendezvous_config *r = &e->servers[ws >= 0 ? (size_t)ws : e->rdv_at];
	if (ws >= 0)
		return r->key;
	return e->rdv_at < e->server_count && r->pinned ? r->key : NULL;
}

void engine_rdv_relink(struct srm_engine *e, uint64_t now_ms)
{
	e->rdv_refusal_told = false;
	if (e->rdv)
		rdv_client_relink(e->rdv, pinned_key(e), now_ms);
}

void engine_rdv_next_server(struct srm_engine *e, uint64_t now_ms)
{
	char was[64], now[64];
	size_t n = e->server_count;
	if (!e->rdv || n < 2)
		return;
	engine_addr_text(&e->rdv_server, was, sizeof(was));
	aim_at(e, (e->rdv_at + 1) % n);
	LOG_INFO(NULL, "rendezvous: %s does not answer; trying %s", was,
		 engine_addr_text(&e->rdv_server, now, sizeof(now)));
	if (pathman_server(e->paths) == PATH_RDV_RELAY)
		engine_rdv_relink(e, now_ms);
}

int engine_rdv_start(struct srm_engine *e, char *err, size_t errlen)
{
	if (!e->server_count && !e->relay_count)
		return 0;
	int rc = engine_ws_setup(e, err, errlen);
	if (rc != 0)
		return rc;
	struct rdv_client_config cc = {
		.id = e->identity,
		.wall_offset_ms = (uint64_t)clock_wall_offset_ms(),
	};
	uint64_t now_ms = clock_now_us() / 1000;
	e->rdv = rdv_client_new(&cc, now_ms);
	if (!e->rdv) {
		snprintf(err, errlen, "SRMUDP_RENDEZVOUS: cannot start the rendezvous client");
		return SRM_ERR_NOMEM;
	}
	aim_at(e, 0);
	start_gate_regs(e, now_ms);
	engine_rdv_relink(e, now_ms);
	engine_rdv_set_peers(e, now_ms);
	engine_rdv_announce(e, now_ms);
	return 0;
}

/* Consent: the server finds us for, and relays to us from, the keys we
 * list, nobody else (docs/NAT.md).  Every configured peer, up to
 * RDV_MAX_ALLOW (the AUTH must fit a packet); the rest are not listed, and
 * said so. */
void engine_rdv_set_peers(struct srm_engine *e, uint64_t now_ms)
{
	uint8_t keys[RDV_MAX_ALLOW][RDV_KEY_BYTES];
	size_t n = 0;
	if (!e->rdv)
		return;
	for (size_t i = 0; i < e->peer_count && n < RDV_MAX_ALLOW; i++)
		if (e->peers[i].session) /* removed by a reload: no longer */
			memcpy(keys[n++], e->peers[i].cfg.pubkey, RDV_KEY_BYTES);
	if (e->peer_count > RDV_MAX_ALLOW)
		LOG_WARN(NULL, "rendezvous: %zu peers; only the first %d can find us through the "
			       "server", e->peer_count, RDV_MAX_ALLOW);
	(void)rdv_client_set_peers(e->rdv, (const uint8_t(*)[RDV_KEY_BYTES])keys, n, now_ms);
	for (size_t k = 0; k < e->gate_reg_count; k++)
		(void)rdv_client_set_peers(e->gate_regs[k].c, (const uint8_t(*)[RDV_KEY_BYTES])keys,
					   n, now_ms);
}

void engine_rdv_announce(struct srm_engine *e, uint64_t now_ms)
{
	if (!e->rdv)
		return;
	struct rdv_endpoint cands[RDV_MAX_CANDIDATES];
	size_t n = host_candidates(e, cands, RDV_MAX_CANDIDATES);
	if (n && rdv_client_set_candidates(e->rdv, cands, n, now_ms) != 0)
		LOG_WARN(NULL, "rendezvous: could not announce host addresses");
	for (size_t k = 0; k < e->gate_reg_count && n; k++)
		(void)rdv_client_set_candidates(e->gate_regs[k].c, cands, n, now_ms);
}

void engine_rdv_free(struct srm_engine *e)
{
	engine_ws_free(e);
	if (e->rdv)
		rdv_client_free(e->rdv);
	e->rdv = NULL;
	for (size_t k = 0; k < e->gate_reg_count; k++)
		rdv_client_free(e->gate_regs[k].c);
	e->gate_reg_count = 0;
}

void engine_rdv_send(struct srm_engine *e, const uint8_t *pkt, size_t len, bool expects_answer)
{
	if (pathman_server(e->paths) == PATH_WS_RELAY) {
		engine_ws_send(e, pkt, len); /* dropped until the link is up: it re-registers then */
		return;
	}
	if (!e->rdv_server_len)
		return;
	engine_send(e, &e->rdv_server, e->rdv_server_len, pkt, len);
	if (expects_answer)
		pathman_on_server_sent(e->paths, clock_now_ms());
}

void engine_rdv_link_up(struct srm_engine *e, uint64_t now_us)
{
	if (!e->rdv)
		return;
	/* A gate's WebSocket: UDP probes go to that gate too from now on. */
	int ws = engine_ws_server(e);
	if (ws >= 0 && (size_t)ws != e->rdv_at)
		aim_at(e, (size_t)ws);
	engine_rdv_relink(e, now_us / 1000);
	engine_rdv_poll(e, now_us);
}

/* The client's, the server link's (path manager) and the WebSocket's. */
uint64_t engine_rdv_deadline(struct srm_engine *e)
{
	if (!e->rdv)
		return UINT64_MAX;
	uint64_t d = rdv_client_deadline(e->rdv), link = pathman_deadline(e->paths);
	if (link < d)
		d = link;
	for (size_t k = 0; k < e->gate_reg_count; k++)
		if (!paused(e, &e->gate_regs[k]) && rdv_client_deadline(e->gate_regs[k].c) < d)
			d = rdv_client_deadline(e->gate_regs[k].c);
	d = d == UINT64_MAX ? d : d * 1000;
	uint64_t ws = engine_ws_deadline(e);
	return ws < d ? ws : d;
}

/* The server answers REGISTER but never our AUTH: nothing else would say
 * why peers stay unreachable.  Once per server. */
static void tell_refusal(struct srm_engine *e)
{
	char where[64] = "the relay";
	if (e->rdv_refusal_told || rdv_client_auth_failures(e->rdv) == 0)
		return;
	e->rdv_refusal_told = true;
	if (pathman_server(e->paths) == PATH_RDV_RELAY && e->rdv_server_len)
		engine_addr_text(&e->rdv_server, where, sizeof(where));
	LOG_WARN(NULL, "rendezvous: %s answers but does not accept our registration%s", where,
		 pinned_key(e) ? " (is the key pinned for it in SRMUDP_RENDEZVOUS the server's?)" : "");
}

void engine_rdv_poll(struct srm_engine *e, uint64_t now_us)
{
	if (!e->rdv)
		return;
	uint8_t pkt[RDV_MAX_PACKET];
	size_t n;
	for (int i = 0; i < 8 && (n = rdv_client_poll(e->rdv, now_us / 1000, pkt, sizeof(pkt))); i++)
		engine_rdv_send(e, pkt, n, true);
	tell_refusal(e);
	for (size_t k = 0; k < e->gate_reg_count; k++) {
		struct gate_reg *g = &e->gate_regs[k];
		for (int i = 0; i < 8 && !paused(e, g) &&
				(n = rdv_client_poll(g->c, now_us / 1000, pkt, sizeof(pkt)));
		     i++)
			engine_send(e, &g->addr, g->len, pkt, n);
	}
}

/* Ask the rendezvous server where peer is (the path manager spaces these). */
void engine_rdv_lookup(struct srm_engine *e, struct peer *p, uint64_t now_ms)
{
	if (e->rdv && rdv_client_lookup(e->rdv, p->cfg.pubkey, now_ms) == 0)
		LOG_DEBUG(p->cfg.name, "rendezvous: looking the peer up");
}

static struct peer *peer_by_pub(struct srm_engine *e, const uint8_t pub[SRM_KEY_BYTES])
{
	for (size_t i = 0; i < e->peer_count; i++)
		if (e->peers[i].session && memcmp(e->peers[i].cfg.pubkey, pub, SRM_KEY_BYTES) == 0)
			return &e->peers[i];
	return NULL;
}

/* New candidates for p: the path manager punches towards them. */
static void set_candidates(struct srm_engine *e, struct peer *p, const struct rdv_event *ev,
			   uint64_t now_ms)
{
	struct path_addr cands[RDV_MAX_ENDPOINTS];
	size_t n = 0;
	for (size_t i = 0; i < ev->endpoint_count && n < RDV_MAX_ENDPOINTS; i++) {
		struct path_addr *c = &cands[n];
		memset(c, 0, sizeof(*c));
		c->kind = PATH_UDP;
		c->len = engine_addr_for_socket(e, &ev->endpoints[i].addr, ev->endpoints[i].len, &c->addr);
		if (c->len)
			n++;
	}
	char text[64];
	LOG_INFO(p->cfg.name, "rendezvous: %zu candidate(s), first %s; punching", n,
		 n ? engine_addr_text(&cands[0].addr, text, sizeof(text)) : "-");
	path_on_candidates(p->paths, cands, n, now_ms);
}

/* A packet from a server, to client c (the main one, or the registration
 * with our gate servers[server]), over `over`: PATH_RDV_RELAY (UDP, sock
 * as in gate_regs) or PATH_WS_RELAY. */
static void handle(struct srm_engine *e, struct rdv_client *c, size_t server,
		   const struct path_addr *over, const uint8_t *pkt, size_t len, uint64_t now_us)
{
	struct rdv_event ev;
	bool main = c == e->rdv;
	int rc = rdv_client_receive(c, pkt, len, now_us / 1000, &ev);
	if (rc < 0) {
		e->stats.drops[session_drop_reason(rc)]++;
		return;
	}
	/* The server answered this way (a relayed packet proves nothing
	 * until the peer's own authentication, so it does not count). */
	if (main && (rc == 0 || ev.type != RDV_EV_RELAYED))
		pathman_on_server_heard(e->paths, over->kind, now_us / 1000);
	if (rc == 0)
		return;
	char text[64];
	struct peer *p = ev.type == RDV_EV_REGISTERED ? NULL : peer_by_pub(e, ev.peer);
	switch (ev.type) {
	case RDV_EV_REGISTERED: {
		engine_gatebook_learn(e, server, ev.gates, ev.gate_count);
		if (!main) {
			struct gate_reg *g = &e->gate_regs[over->sock - 1];
			if (!g->told)
				LOG_INFO(NULL, "rendezvous: registered with our gate %s as well",
					 engine_addr_text(&g->addr, text, sizeof(text)));
			g->told = true;
			break;
		}
		if (over->kind == PATH_WS_RELAY) {
			/* Our TCP source says nothing about our UDP mapping. */
			LOG_INFO(NULL, "rendezvous: registered over the WebSocket relay");
			break;
		}
		LOG_INFO(NULL, "rendezvous: registered; our public address is %s",
			 rdv_endpoint_str(&ev.reflexive, text, sizeof(text)));
		struct sockaddr_storage ours;
		socklen_t len = engine_addr_for_socket(e, &ev.reflexive.addr, ev.reflexive.len, &ours);
		if (len)
			pathman_on_public_address(e->paths, &ours, len);
		break;
	}
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
			engine_handle_datagram(e, (uint8_t *)ev.inner, ev.inner_len, over, p, now_us);
		} else {
			/* From a key we do not list: a server that relays
			 * without consent, or a forged packet. */
			engine_drop(e, SRM_DROP_UNKNOWN_PEER);
		}
		break;
	default:
		break;
	}
}

bool engine_rdv_receive(struct srm_engine *e, const uint8_t *pkt, size_t len,
			const struct sockaddr_storage *src, uint64_t now_us)
{
	struct path_addr over = { .kind = PATH_RDV_RELAY };
	if (!e->rdv)
		return false;
	if (e->rdv_server_len && path_sockaddr_equal(&e->rdv_server, (const struct sockaddr *)src)) {
		handle(e, e->rdv, e->rdv_at, &over, pkt, len, now_us);
		return true;
	}
	for (size_t k = 0; k < e->gate_reg_count; k++) {
		struct gate_reg *g = &e->gate_regs[k];
		if (paused(e, g) || !path_sockaddr_equal(&g->addr, (const struct sockaddr *)src))
			continue;
		over.sock = (uint32_t)k + 1;
		handle(e, g->c, g->server, &over, pkt, len, now_us);
		return true;
	}
	return false;
}

void engine_rdv_ws_receive(struct srm_engine *e, const uint8_t *pkt, size_t len, uint64_t now_us)
{
	struct path_addr over = { .kind = PATH_WS_RELAY };
	if (e->rdv)
		handle(e, e->rdv, e->rdv_at, &over, pkt, len, now_us);
}
