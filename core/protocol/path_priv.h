/*
 * path_priv.h — what the path manager's files share (path.c, path_budget.c,
 * path_hardnat.c, path_server.c): its state and its limits.  Nothing
 * outside core/protocol/path*.c includes it; the interface is path.h.
 */
#ifndef SRMUDP_PATH_PRIV_H
#define SRMUDP_PATH_PRIV_H

#include <netinet/in.h>

#include "path.h"

/* The rendezvous server reports at most this many addresses of a peer. */
#define PATH_MAX_CANDIDATES 9

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
	bool probe_unanswered;      /* ...and the last one got no answer */
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
	uint32_t vias[PATH_MAX_VIAS]; /* path_set_vias */
	size_t via_count;
	uint64_t want_ms;            /* the conn wants a session and has none, since */
	bool via_kicked;             /* the INIT went via peers as they became due */
};

/* ---- Small helpers ---- */

static inline uint16_t port_of(const struct sockaddr_storage *a)
{
	/* sin_port and sin6_port sit at the same offset */
	return ntohs(((const struct sockaddr_in *)a)->sin_port);
}

static inline bool is_ipv4(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return true;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)a;
	return a->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr);
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- path_budget.c: what goes to an IP that never answered ---- */

/* The IP's entry (made, evicting the least recently used unanswered one,
 * when new); NULL for an address of no IP family. */
struct ip_slot *path_ip_get(struct pathman *pm, const struct sockaddr_storage *a, uint64_t now_ms);
bool path_same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* A packet went to a. */
void path_charge(struct peer_paths *pp, const struct path_addr *a, uint64_t now_ms);
/* Keeps the targets t[0..n) still within their budget; returns how many. */
size_t path_within_budget(const struct peer_paths *pp, struct path_addr *t, size_t n,
			  uint64_t now_ms);

/* ---- path_hardnat.c: birthday probing ---- */

bool path_hardnat_eligible(const struct peer_paths *pp, const struct path_status *st);
/* The running attempt's next step (pm->hn.pp == pp), or starting one. */
bool path_hardnat_step(struct peer_paths *pp, const struct path_status *st, uint64_t now_ms,
		       struct path_action *act);
bool path_hardnat_maybe_start(struct peer_paths *pp, const struct path_status *st,
			      uint64_t now_ms, struct path_action *act);

#endif
