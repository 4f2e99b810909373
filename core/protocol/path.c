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
 * And engine-wide, the server's link: UDP while the server answers there;
 * the WebSocket relay after 1.5 s of silence (or a failed send), with UDP
 * tried again every 10 s.  Relayed paths follow the link.
 *
 * Only authenticated packets move the active path (path_on_receive).
 */
#include "path.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The rendezvous server reports at most this many addresses of a peer. */
#define PATH_MAX_CANDIDATES 9
/* Silence: nothing authenticated for 4 RTTs after a packet of ours (a
 * lost packet and its retransmission), within these bounds. */
#define SILENT_MIN_MS 1000
#define SILENT_RTTS 4

/* Hard NAT rounds and their spacing.  The hard side refreshes its
 * mappings each round; the easy side starts its probes a little into the
 * round, so that the hard side's ports are open by then even if it started
 * later.  Bursts of 128 every 50 ms: 2,560 probes/s of about 100 bytes, far
 * below any link, and bounded by the rounds. */
#define HARDNAT_ROUNDS 4
#define HARDNAT_ROUND_MS 2000
#define HARDNAT_EASY_DELAY_MS 500
#define HARDNAT_BURST_MS 50
/* A failed attempt (or a pair of NATs this cannot help) waits this long
 * before the next; the relay carries the session meanwhile. */
#define HARDNAT_RETRY_MS 60000
/* Ports a NAT gives out: 1024-65535. */
#define PORT_FIRST 1024
#define PORT_RANGE 64512u

/* Addresses that never answered (issue 18 item 10).  Candidates come from
 * the rendezvous server, and a server that lies (or one in the middle)
 * can name any address: a bystander's.  Until something authenticated
 * came from an IP, what goes there is bounded:
 *   - a hard-NAT attempt (4 rounds: 4,096 probes from the easy side, 512
 *     from the hard side) at most once per UNANSWERED_HARDNAT_MS per IP,
 *     not every HARDNAT_RETRY_MS: one attempt succeeds in 99.9 % of real
 *     hard NATs, and a peer left on the relay still has its session;
 *   - everything else (handshakes, re-probes, repair sprays) at most
 *     UNANSWERED_BUDGET packets per UNANSWERED_WINDOW_MS per IP: a real
 *     peer's punching (an INIT per address at each retransmission, about
 *     8 per connect, a retry every 15 s), re-probes every 10 s and a 3 s
 *     repair spraying every 250 ms fit in it for a few addresses on one
 *     IP; past it, that IP gets nothing until the window ends.
 * Once an IP answered, the usual rules apply.  The configured endpoint
 * is the user's word, not the server's: it is never limited.  The table
 * is engine-wide (two peers behind one NAT share an IP); when full, the
 * least recently used unanswered entry goes (a server naming more than
 * UNANSWERED_SLOTS victims in turn can reset one's allowance, no sooner
 * than it goes round them all). */
#define UNANSWERED_BUDGET 64
#define UNANSWERED_WINDOW_MS 60000
#define UNANSWERED_HARDNAT_MS (60 * 60 * 1000)
#define UNANSWERED_SLOTS 128

/* Action targets, at most one burst or one socket per hard-NAT port. */
#define OUT_MAX (PATH_HARDNAT_SOCKETS > PATH_HARDNAT_BURST ? PATH_HARDNAT_SOCKETS : PATH_HARDNAT_BURST)

struct hardnat {
	struct peer_paths *pp;      /* NULL: no attempt running */
	bool hard;                  /* we open sockets; else we probe */
	bool sockets_asked;
	struct path_addr target;    /* the peer's public address */
	int round;                  /* rounds started */
	uint64_t round_ms;          /* when the current round started */
	uint64_t next_ms;           /* next step */
	unsigned probes_sent;       /* in this round (easy side) */
	uint32_t walk, step;        /* the random walk through the ports */
	uint32_t socks[PATH_HARDNAT_SOCKETS];
	size_t sock_count;
};

struct ip_slot {
	uint8_t ip[16];             /* IPv4 as v4-mapped */
	bool used, answered;        /* answered: an authenticated packet came from it */
	bool hardnat_tried;
	uint64_t hardnat_ms;        /* the last hard-NAT attempt towards it */
	uint64_t window_ms;         /* the budget's window started */
	unsigned sent;              /* packets in the window */
	uint64_t last_ms;           /* last use, for eviction */
};

struct pathman {
	struct path_config cfg;
	struct sockaddr_storage public_addr; /* ours, as the rendezvous server sees it */
	socklen_t public_len;
	uint64_t registered_ms;     /* last PATH_DO_REGISTER */
	enum path_kind server;      /* how the rendezvous server is reached */
	bool ws_open;               /* PATH_DO_WS_OPEN given, no close since */
	bool server_failed;         /* a UDP send to it failed outright */
	bool register_due;          /* register over a new link */
	uint64_t server_wait_ms;    /* a UDP packet to it unanswered since; 0: none */
	uint64_t server_switch_ms;  /* the link last changed */
	uint64_t next_udp_try_ms;   /* on the WebSocket: the next UDP probe */
	struct peer_paths *peers;   /* every peer's paths, linked */
	struct hardnat hn;          /* one attempt at a time, engine-wide */
	struct ip_slot ips[UNANSWERED_SLOTS];
	struct path_addr out[OUT_MAX];
};

struct peer_paths {
	struct pathman *pm;
	struct peer_paths *next;
	char name[PATH_NAME_BYTES]; /* for log lines (a copy: the peer's slot may move) */
	struct path_addr active;     /* where packets go now */
	bool confirmed;              /* an authenticated packet came over it */
	struct path_addr home;       /* the configured endpoint, if any */
	struct path_addr cands[PATH_MAX_CANDIDATES];
	size_t cand_count;
	uint64_t punch_started_ms;   /* candidates arrived (relay fallback clock) */
	uint64_t next_punch_ms, punch_until_ms;
	bool relay_now;              /* a UDP send failed outright */
	bool relay_kicked;           /* the INIT went to the relay as it became due */
	uint64_t last_rx_ms;         /* last authenticated packet */
	uint64_t last_direct_rx_ms;  /* ...on a direct path */
	uint64_t unanswered_ms;      /* first packet sent since last_rx_ms; 0: none */
	uint64_t last_tx_ms;         /* last packet sent (DATA or probe) */
	uint32_t srtt_ms;            /* from the last status */
	uint64_t rx_bytes_seen;      /* status.rx_stream_bytes, last seen */
	uint64_t data_in_ms;         /* when it last grew */
	unsigned rx_probes;          /* probe rounds since (PATH_RX_PROBES) */
	uint64_t next_rx_probe_ms;
	uint64_t next_reprobe_ms;
	uint64_t next_lookup_ms;
	bool relookup;               /* look up again, regardless of addresses */
	uint64_t next_repair_ms, next_spray_ms;
	bool probe_cands;            /* new candidates while a session runs */
	uint64_t home_tx_ms;         /* last packet to the configured endpoint */
	uint64_t hardnat_next_ms;
	uint32_t won_sock;           /* a probe socket that carries the path */
};

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
		return true; /* the relay, over the same link */
	return a->len && a->sock == b->sock &&
	       path_sockaddr_equal(&a->addr, (const struct sockaddr *)&b->addr);
}

static uint16_t port_of(const struct sockaddr_storage *a)
{
	/* sin_port and sin6_port sit at the same offset */
	return ntohs(((const struct sockaddr_in *)a)->sin_port);
}

static bool is_ipv4(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return true;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)a;
	return a->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr);
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

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

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
static struct ip_slot *ip_get(struct pathman *pm, const struct sockaddr_storage *a, uint64_t now_ms)
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

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
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

static void charge(struct peer_paths *pp, const struct path_addr *a, uint64_t now_ms)
{
	if (a->kind != PATH_UDP || is_home(pp, a))
		return;
	struct ip_slot *s = ip_get(pp->pm, &a->addr, now_ms);
	if (!s || s->answered)
		return;
	if (!s->sent || now_ms >= s->window_ms + UNANSWERED_WINDOW_MS) {
		s->window_ms = now_ms;
		s->sent = 0;
	}
	s->sent++;
}

/* Drops the targets over budget; returns how many remain. */
static size_t within_budget(const struct peer_paths *pp, struct path_addr *t, size_t n,
			    uint64_t now_ms)
{
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (!over_budget(pp, &t[i], now_ms))
			t[kept++] = t[i];
	return kept;
}

/* ---- Lifecycle ------------------------------------------------------------ */

struct pathman *pathman_new(const struct path_config *cfg)
{
	struct pathman *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return NULL;
	pm->cfg = *cfg;
	pm->server = cfg->relay ? PATH_RDV_RELAY : cfg->ws ? PATH_WS_RELAY : PATH_NONE;
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

/* ---- The server's link ----------------------------------------------------- */

enum path_kind pathman_server(const struct pathman *pm)
{
	return pm->server;
}

/* Relayed sessions follow the link: the same relay, reached another way. */
static void set_server(struct pathman *pm, enum path_kind kind, uint64_t now_ms)
{
	pm->server = kind;
	pm->server_switch_ms = now_ms;
	pm->server_wait_ms = 0;
	pm->server_failed = false;
	for (struct peer_paths *pp = pm->peers; pp; pp = pp->next)
		if (path_is_relay(pp->active.kind))
			pp->active.kind = kind;
}

void pathman_on_server_sent(struct pathman *pm, uint64_t now_ms)
{
	if (pm->server == PATH_RDV_RELAY && !pm->server_wait_ms)
		pm->server_wait_ms = now_ms;
}

void pathman_on_server_heard(struct pathman *pm, enum path_kind over, uint64_t now_ms)
{
	if (over != PATH_RDV_RELAY)
		return;
	pm->server_wait_ms = 0;
	if (pm->server == PATH_WS_RELAY) {
		LOG_INFO(NULL, "rendezvous: the server answers over UDP again; leaving the WebSocket");
		set_server(pm, PATH_RDV_RELAY, now_ms);
		pm->register_due = true;
	}
}

void pathman_on_server_send_failed(struct pathman *pm, uint64_t now_ms)
{
	(void)now_ms;
	if (pm->server == PATH_RDV_RELAY)
		pm->server_failed = true;
}

static bool server_udp_silent(const struct pathman *pm, uint64_t now_ms)
{
	return pm->server_failed ||
	       (pm->server_wait_ms && now_ms >= pm->server_wait_ms + PATH_WS_AFTER_MS);
}

bool pathman_poll(struct pathman *pm, uint64_t now_ms, struct path_action *act)
{
	*act = (struct path_action){ 0 };
	if (pm->server == PATH_RDV_RELAY && pm->cfg.ws && server_udp_silent(pm, now_ms)) {
		LOG_INFO(NULL, "rendezvous: %s over UDP; using the WebSocket relay",
			 pm->server_failed ? "cannot send to the server" : "no answer for 1.5 s");
		set_server(pm, PATH_WS_RELAY, now_ms);
		pm->next_udp_try_ms = now_ms + PATH_REPROBE_MS;
	}
	if (pm->server == PATH_WS_RELAY && !pm->ws_open) {
		pm->ws_open = true;
		act->kind = PATH_DO_WS_OPEN;
		return true;
	}
	if (pm->server == PATH_WS_RELAY && pm->cfg.relay && now_ms >= pm->next_udp_try_ms) {
		pm->next_udp_try_ms = now_ms + PATH_REPROBE_MS;
		act->kind = PATH_DO_SERVER_PROBE;
		return true;
	}
	if (pm->register_due) {
		pm->register_due = false;
		pm->registered_ms = now_ms;
		act->kind = PATH_DO_REGISTER;
		return true;
	}
	if (pm->server == PATH_RDV_RELAY && pm->ws_open && !pm->server_wait_ms &&
	    now_ms >= pm->server_switch_ms + PATH_WS_LINGER_MS) {
		pm->ws_open = false;
		act->kind = PATH_DO_WS_CLOSE;
		return true;
	}
	return false;
}

uint64_t pathman_deadline(const struct pathman *pm)
{
	if (pm->register_due || (pm->server == PATH_WS_RELAY && !pm->ws_open))
		return 0;
	if (pm->server == PATH_WS_RELAY)
		return pm->cfg.relay ? pm->next_udp_try_ms : UINT64_MAX;
	if (pm->server != PATH_RDV_RELAY)
		return UINT64_MAX;
	uint64_t d = UINT64_MAX;
	if (pm->cfg.ws && pm->server_failed)
		return 0;
	if (pm->cfg.ws && pm->server_wait_ms)
		d = pm->server_wait_ms + PATH_WS_AFTER_MS;
	if (pm->ws_open && !pm->server_wait_ms)
		d = min_u64(d, pm->server_switch_ms + PATH_WS_LINGER_MS);
	return d;
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
			struct ip_slot *s = ip_get(pp->pm, &from->addr, now_ms);
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
	bool hardnat = h->pp == pp && to->kind == PATH_UDP && same_ip(&to->addr, &h->target.addr);
	if (!(pp->confirmed && path_same(to, &pp->active)) && !hardnat)
		charge(pp, to, now_ms);
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

void path_sockets_opened(struct peer_paths *pp, const uint32_t *socks, size_t n)
{
	struct hardnat *h = &pp->pm->hn;
	if (h->pp != pp)
		return;
	for (size_t i = 0; i < n && h->sock_count < PATH_HARDNAT_SOCKETS; i++)
		h->socks[h->sock_count++] = socks[i];
}

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

static bool hardnat_eligible(const struct peer_paths *pp, const struct path_status *st)
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

static bool hardnat_step(struct peer_paths *pp, const struct path_status *st, uint64_t now_ms,
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
static bool hardnat_maybe_start(struct peer_paths *pp, const struct path_status *st,
				uint64_t now_ms, struct path_action *act)
{
	struct pathman *pm = pp->pm;
	if (!hardnat_eligible(pp, st) || now_ms < pp->hardnat_next_ms)
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
	struct ip_slot *s = ip_get(pm, &pp->cands[0].addr, now_ms);
	if (s && !s->answered) {
		if (s->hardnat_tried && now_ms < s->hardnat_ms + UNANSWERED_HARDNAT_MS) {
			pp->hardnat_next_ms = now_ms + HARDNAT_RETRY_MS;
			return false;
		}
		s->hardnat_tried = true;
		s->hardnat_ms = now_ms;
	}
	hardnat_start(pp, !ours, now_ms);
	return hardnat_step(pp, st, now_ms, act);
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
	if (pm->hn.pp == pp) {
		if (hardnat_step(pp, st, now_ms, act))
			return true;
	} else if (hardnat_maybe_start(pp, st, now_ms, act)) {
		return true;
	}
	/* The relay just became due: the INIT goes there now, not at the
	 * handshake's next retransmission (by then up to 3.5 s away). */
	if (!st->session_up && st->has_conn && !pp->relay_kicked && relay_due(pp, now_ms)) {
		pp->relay_kicked = true;
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
		size_t n = within_budget(pp, pm->out, direct_addresses(pp, pm->out, OUT_MAX), now_ms);
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
	else if (hardnat_eligible(pp, st))
		d = pp->hardnat_next_ms;
	if (punching(pp, st, now_ms))
		d = min_u64(d, pp->next_punch_ms);
	if (!st->session_up && st->has_conn && !pp->relay_kicked && pm->server != PATH_NONE &&
	    pp->punch_started_ms)
		d = min_u64(d, pp->relay_now ? now_ms : pp->punch_started_ms + relay_after_ms(pm));
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
	size_t n = within_budget(pp, out, direct_addresses(pp, out, cap), now_ms);
	if (relay_due(pp, now_ms)) {
		struct path_addr relay = { .kind = pp->pm->server };
		n = add_target(out, n, cap, &relay);
	}
	return n;
}

bool path_can_handshake(const struct peer_paths *pp, uint64_t now_ms)
{
	if (pp->home.len || relay_due(pp, now_ms))
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
