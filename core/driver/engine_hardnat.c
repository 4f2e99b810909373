/*
 * engine_hardnat.c — a direct path through a NAT that gives every
 * destination a new random public port ("symmetric", the hard side), when
 * the other side's NAT keeps one port for all destinations (the easy
 * side).  Plain punching fails there: the hard side's packets to the easy
 * side leave from a port nobody told the easy side about, so the easy
 * side's NAT never lets them in, and the easy side cannot aim at it.
 *
 * Birthday probing gets through.  The hard side opens HARDNAT_SOCKETS
 * extra sockets, each sending to the easy side's public address: that
 * opens as many random ports on its NAT, each letting the easy side in.
 * The easy side sends probes to HARDNAT_PROBES ports of the hard side's
 * public IP per round, every port a new one (a random walk through the
 * whole range).  A probe that lands on one of the open ports reaches the
 * hard side's socket and, having left through the easy side's NAT towards
 * that very port, also opens the easy side's NAT for the answer.  Each
 * probe hits with probability HARDNAT_SOCKETS / 64,512, so one round
 * succeeds with 1 - exp(-128 * 1024 / 64512) = 87 %, four rounds with
 * more than 99.9 % (tests/integration/test_nat.sh measures it).
 *
 * This runs only once a session exists through the relay: probes are
 * ordinary authenticated packets carrying a PATH_CHALLENGE, so the one
 * that arrives moves the path as any roaming packet does
 * (engine_path_confirm), and the answer moves the other side's.  Each
 * side learns its role from the rendezvous server: a public port equal to
 * its own UDP port means its NAT keeps ports (easy); the peer's public
 * port is compared with its announced host candidates the same way.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "engine.h"
#include "log.h"

/* Hard side: public ports opened towards the easy side. */
#define HARDNAT_SOCKETS 128
/* Easy side: ports guessed per round, sent in bursts (2,560 probes/s of
 * about 100 bytes: far below any link, and bounded by the rounds). */
#define HARDNAT_PROBES 1024
#define HARDNAT_BURST 128
#define HARDNAT_BURST_MS 50
/* Rounds, and their spacing.  The hard side refreshes its mappings each
 * round; the easy side starts its probes a little into the round, so that
 * the hard side's ports are open by then even if it started later. */
#define HARDNAT_ROUNDS 4
#define HARDNAT_ROUND_MS 2000
#define HARDNAT_EASY_DELAY_MS 500
/* A failed attempt (or a pair of NATs this cannot help) waits this long
 * before the next; the relay carries the session meanwhile. */
#define HARDNAT_RETRY_MS 60000
/* Ports a NAT gives out: 1024-65535. */
#define PORT_FIRST 1024
#define PORT_RANGE 64512u
/* Probes are small: the PATH_CHALLENGE, acknowledgements, little data. */
#define PROBE_PAYLOAD 160

struct hardnat {
	struct peer *peer;
	bool hard;                  /* we open sockets; else we probe */
	struct path target;         /* the peer's public address */
	int round;                  /* rounds started */
	uint64_t round_ms;          /* when the current round started */
	uint64_t next_ms;           /* next action */
	unsigned probes_sent;       /* in this round (easy side) */
	uint32_t walk, step;        /* the random walk through the ports */
	struct probe_socket socks[HARDNAT_SOCKETS];
	size_t sock_count;
};

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

/* The rendezvous server lists the peer's public address first, then the
 * host addresses it announced (with its own UDP port). */
static bool peer_keeps_ports(const struct peer *p)
{
	for (size_t i = 1; i < p->cand_count; i++)
		if (port_of(&p->cands[i].addr) == port_of(&p->cands[0].addr))
			return true;
	return false;
}

static bool we_keep_ports(struct srm_engine *e)
{
	return e->reflexive.len &&
	       port_of(&e->reflexive.addr) == (uint16_t)srm_engine_udp_port(e);
}

/* A sealed packet carrying a PATH_CHALLENGE, sent nowhere else: whichever
 * copy arrives first is fresh there.  0 when conn has nothing to send
 * now (its window is full); the challenge then rides the next packet. */
static size_t probe_packet(struct srm_engine *e, struct peer *p, uint64_t now_us, uint8_t *out,
			   size_t cap)
{
	uint8_t challenge[8], plain[PACKET_BUF];
	uint64_t pn;
	randombytes_buf(challenge, sizeof(challenge));
	conn_path_challenge(p->conn, challenge);
	size_t len = conn_build_packet(p->conn, now_us, plain, PROBE_PAYLOAD, &pn);
	if (!len)
		return 0;
	int sealed = session_seal(p->session, pn, plain, len, out, cap, now_us / 1000);
	(void)e;
	return sealed > 0 ? (size_t)sealed : 0;
}

static void close_sockets(struct srm_engine *e, struct hardnat *h, int keep_fd)
{
	for (size_t i = 0; i < h->sock_count; i++) {
		if (h->socks[i].fd == keep_fd)
			continue;
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, h->socks[i].fd, NULL);
		engine_fd_close(e, h->socks[i].fd);
	}
	h->sock_count = 0;
}

static void open_sockets(struct srm_engine *e, struct hardnat *h)
{
	while (h->sock_count < HARDNAT_SOCKETS) {
		int fd = socket(e->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break; /* out of fds: try with what we have */
		int off = 0, probe = IP_PMTUDISC_PROBE;
		if (e->family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
		setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof(probe));
		struct probe_socket *s = &h->socks[h->sock_count];
		s->tag.kind = EV_PROBE_SOCKET;
		s->fd = engine_fd_adopt(e, fd);
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->tag };
		if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
			engine_fd_close(e, s->fd);
			break;
		}
		h->sock_count++;
	}
}

/* Hard side, each round: every socket sends to the easy side, which opens
 * (or keeps open) its port on our NAT. */
static void hard_round(struct srm_engine *e, struct hardnat *h, uint64_t now_us)
{
	uint8_t pkt[PACKET_BUF];
	size_t n = probe_packet(e, h->peer, now_us, pkt, sizeof(pkt));
	if (!n)
		return;
	for (size_t i = 0; i < h->sock_count; i++)
		sendto(h->socks[i].fd, pkt, n, 0, (const struct sockaddr *)&h->target.addr,
		       h->target.len);
}

/* Easy side: the next burst of guesses at the hard side's open ports. */
static void easy_burst(struct srm_engine *e, struct hardnat *h, uint64_t now_us)
{
	uint8_t pkt[PACKET_BUF];
	size_t n = probe_packet(e, h->peer, now_us, pkt, sizeof(pkt));
	if (!n)
		return;
	struct sockaddr_storage to = h->target.addr;
	for (int i = 0; i < HARDNAT_BURST && h->probes_sent < HARDNAT_PROBES; i++) {
		h->walk = (h->walk + h->step) % PORT_RANGE;
		/* sin_port and sin6_port sit at the same offset */
		((struct sockaddr_in *)&to)->sin_port = htons((uint16_t)(PORT_FIRST + h->walk));
		engine_send(e, &to, h->target.len, pkt, n);
		h->probes_sent++;
	}
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

static void start(struct srm_engine *e, struct peer *p, bool hard, uint64_t now_ms)
{
	struct hardnat *h = calloc(1, sizeof(*h));
	if (!h)
		return;
	h->peer = p;
	h->hard = hard;
	h->target = p->cands[0];
	h->next_ms = now_ms;
	/* A step coprime with the range visits every port once. */
	h->walk = randombytes_uniform(PORT_RANGE);
	do
		h->step = 1 + randombytes_uniform(PORT_RANGE - 1);
	while (gcd(h->step, PORT_RANGE) != 1);
	if (hard) {
		open_sockets(e, h);
		LOG_INFO(p->cfg.name, "hard NAT: ours changes ports, the peer's keeps them: "
				      "opening %zu ports towards it", h->sock_count);
	} else {
		LOG_INFO(p->cfg.name, "hard NAT: the peer's changes ports, ours keeps them: "
				      "probing %d of its ports per round", HARDNAT_PROBES);
	}
	e->hardnat = h;
}

static void finish(struct srm_engine *e, struct hardnat *h, bool won, uint64_t now_ms)
{
	struct peer *p = h->peer;
	int keep = won && p->path.fd ? p->path.fd : -1;
	if (keep >= 0) {
		/* The winning socket now carries the path: it stays, with its
		 * epoll registration pointing at the peer's copy of the tag. */
		p->hardnat_won.tag.kind = EV_PROBE_SOCKET;
		p->hardnat_won.fd = keep;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &p->hardnat_won.tag };
		epoll_ctl(e->epfd, EPOLL_CTL_MOD, keep, &ev);
	}
	close_sockets(e, h, keep);
	if (won)
		LOG_INFO(p->cfg.name, "hard NAT: direct path found in round %d", h->round);
	else
		LOG_INFO(p->cfg.name, "hard NAT: no direct path after %d rounds; staying relayed",
			 h->round);
	p->hardnat_next_ms = now_ms + HARDNAT_RETRY_MS;
	free(h);
	e->hardnat = NULL;
}

static bool eligible(struct srm_engine *e, struct peer *p, uint64_t now_ms)
{
	return e->rdv && !e->hardnat && p->conn && session_established(p->session) &&
	       p->path.relayed && p->path_confirmed && p->cand_count &&
	       is_ipv4(&p->cands[0].addr) && now_ms >= p->hardnat_next_ms && e->reflexive.len;
}

static void close_winner(struct srm_engine *e, struct peer *p)
{
	if (!p->hardnat_won.fd)
		return;
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, p->hardnat_won.fd, NULL);
	engine_fd_close(e, p->hardnat_won.fd);
	p->hardnat_won.fd = 0;
}

void engine_hardnat_tick(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	struct hardnat *h = e->hardnat;
	if (!h) {
		if (!eligible(e, p, now_ms))
			return;
		/* An earlier winner no longer carries the path (its mapping
		 * died and the session fell back to the relay). */
		close_winner(e, p);
		bool ours = we_keep_ports(e), theirs = peer_keeps_ports(p);
		if (ours == theirs) {
			/* Both keep ports: punching failed for another reason
			 * (filtering); both change them: only the relay works. */
			p->hardnat_next_ms = now_ms + HARDNAT_RETRY_MS;
			return;
		}
		start(e, p, !ours, now_ms);
		h = e->hardnat;
		if (!h)
			return;
	}
	if (h->peer != p)
		return;
	if (!p->conn || !session_established(p->session)) {
		finish(e, h, false, now_ms);
		return;
	}
	if (!p->path.relayed) {
		finish(e, h, true, now_ms);
		return;
	}
	if (now_ms < h->next_ms)
		return;
	if (now_ms >= h->round_ms + HARDNAT_ROUND_MS || !h->round) {
		if (h->round == HARDNAT_ROUNDS) {
			finish(e, h, false, now_ms);
			return;
		}
		h->round++;
		h->round_ms = now_ms;
		h->probes_sent = 0;
		if (h->hard)
			hard_round(e, h, now_us);
		h->next_ms = h->hard ? now_ms + HARDNAT_ROUND_MS : now_ms + HARDNAT_EASY_DELAY_MS;
		return;
	}
	if (!h->hard && h->probes_sent < HARDNAT_PROBES) {
		easy_burst(e, h, now_us);
		h->next_ms = now_ms + HARDNAT_BURST_MS;
		return;
	}
	h->next_ms = h->round_ms + HARDNAT_ROUND_MS;
}

uint64_t engine_hardnat_deadline(struct srm_engine *e)
{
	return e->hardnat ? e->hardnat->next_ms * 1000 : UINT64_MAX;
}

void engine_hardnat_free(struct srm_engine *e)
{
	if (e->hardnat) {
		close_sockets(e, e->hardnat, -1);
		free(e->hardnat);
		e->hardnat = NULL;
	}
	for (size_t i = 0; i < e->slot_count; i++)
		close_winner(e, &e->peers[i]);
}
