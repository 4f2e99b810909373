/*
 * engine_path.c — carries out what the path manager (core/protocol/path.c)
 * decides: sending on a path (the engine's socket, a probe socket, or
 * wrapped for the relay), handshakes to every path the peer may be at,
 * PUNCH and probe packets, and the probe sockets a hard NAT needs.  No
 * decision about paths is made here.
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
#include "pmtu.h"

/* Probes are small: the PATH_CHALLENGE, acknowledgements, little data. */
#define PROBE_PAYLOAD 160
/* Actions one peer may take per engine pass (the manager has at most a
 * handful due at once; this only bounds a bug). */
#define ACTIONS_PER_PASS 8

int engine_paths_setup(struct srm_engine *e)
{
	int port = srm_engine_udp_port(e);
	struct path_config pc = {
		.servers = e->server_count,
		.ws = e->relay_count != 0,
		.local_port = port > 0 ? (uint16_t)port : 0,
	};
	e->paths = pathman_new(&pc);
	if (!e->paths)
		return SRM_ERR_NOMEM;
	uint64_t now_ms = clock_now_ms();
	for (size_t i = 0; i < e->peer_count; i++) {
		struct peer *p = &e->peers[i];
		struct sockaddr_storage home;
		socklen_t len = 0;
		if (p->cfg.endpoint_len)
			len = engine_addr_for_socket(e, &p->cfg.endpoint, p->cfg.endpoint_len, &home);
		p->paths = path_peer_new(e->paths, p->cfg.name, &home, len, now_ms);
		if (!p->paths)
			return SRM_ERR_NOMEM;
	}
	return 0;
}

/* ---- Probe sockets -------------------------------------------------------- */

static struct probe_socket *probe_find(struct srm_engine *e, uint32_t id)
{
	struct probe_socket *s;
	HASH_FIND(hh, e->probes, &id, sizeof(id), s);
	return s;
}

static void probe_close(struct srm_engine *e, struct probe_socket *s)
{
	HASH_DEL(e->probes, s);
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	engine_fd_close(e, s->fd);
	free(s);
}

static size_t probes_open(struct srm_engine *e, size_t want, uint32_t *ids)
{
	size_t n = 0;
	while (n < want) {
		int fd = socket(e->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break; /* out of fds: try with what we have */
		int off = 0, probe = IP_PMTUDISC_PROBE;
		if (e->family == AF_INET6)
			sys_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
		sys_setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof(probe));
		struct probe_socket *s = calloc(1, sizeof(*s));
		if (!s) {
			sys_close(fd);
			break;
		}
		s->tag.kind = EV_PROBE_SOCKET;
		s->fd = engine_fd_adopt(e, fd);
		s->id = ++e->next_probe_id;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->tag };
		if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
			engine_fd_close(e, s->fd);
			free(s);
			break;
		}
		HASH_ADD(hh, e->probes, id, sizeof(s->id), s);
		ids[n++] = s->id;
	}
	return n;
}

void engine_probes_free(struct srm_engine *e)
{
	struct probe_socket *s, *tmp;
	HASH_ITER(hh, e->probes, s, tmp)
		probe_close(e, s);
}

/* ---- Sending on a path ---------------------------------------------------- */

void engine_send_path(struct srm_engine *e, struct peer *p, const struct path_addr *path,
		      const uint8_t *pkt, size_t len)
{
	switch (path->kind) {
	case PATH_UDP:
		if (path->sock) {
			/* A probe socket: not batched, no GSO. */
			struct probe_socket *s = probe_find(e, path->sock);
			if (s)
				sys_sendto(s->fd, pkt, len, 0, (const struct sockaddr *)&path->addr, path->len);
			return;
		}
		engine_send(e, &path->addr, path->len, pkt, len);
		return;
	case PATH_RDV_RELAY:
	case PATH_WS_RELAY: {
		struct rdv_client *c;
		const struct sockaddr_storage *to;
		socklen_t tolen;
		if (!engine_rdv_relay_link(e, path->sock, &c, &to, &tolen))
			return;
		uint8_t wrapped[RDV_MAX_PACKET];
		size_t n = rdv_client_wrap_relay(c, p->cfg.pubkey, pkt, len, wrapped, sizeof(wrapped));
		if (!n)
			return;
		if (path->kind == PATH_WS_RELAY)
			engine_ws_send(e, wrapped, n);
		else if (tolen)
			engine_send(e, to, tolen, wrapped, n);
		return;
	}
	case PATH_VIA:
		engine_via_send(e, p, path->sock, pkt, len);
		return;
	case PATH_NONE:
		return;
	}
}

void engine_send_handshake(struct srm_engine *e, struct peer *p, const uint8_t *pkt, size_t len,
			   const struct path_addr *targets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		engine_send_path(e, p, &targets[i], pkt, len);
		path_on_sent(p->paths, &targets[i], clock_now_ms());
	}
}

/* The ceiling of the path MTU search, for the active path: the relay
 * wraps every packet in RDV_RELAY_OVERHEAD bytes, and its packets must
 * still fit an IPv4 datagram on the server's UDP leg (over the WebSocket,
 * probes never fail: the TCP leg carries anything, so only this ceiling
 * keeps the server from fragmenting, which cost its CPU a quarter of its
 * time in the relay bench); IPv6 carries 20 bytes less than IPv4. */
void engine_path_fit_mtu(struct peer *p, uint64_t now_us)
{
	uint32_t max = path_is_relay(path_active(p->paths)->kind)
			       ? WIRE_MAX_UDP_PAYLOAD - RDV_RELAY_OVERHEAD
		       : engine_path_is_ipv6(p) ? PMTU_MAX_UDP6_PAYLOAD
						: WIRE_MAX_UDP_PAYLOAD;
	if (p->conn)
		conn_set_max_udp_payload(p->conn, max, now_us);
}

void engine_path_received(struct srm_engine *e, struct peer *p, const struct path_addr *from,
			  uint64_t now_ms)
{
	if (!path_on_receive(p->paths, from, now_ms))
		return;
	char text[64];
	engine_path_fit_mtu(p, now_ms * 1000);
	if (from->kind == PATH_VIA) {
		LOG_INFO(p->cfg.name, "path: via %s",
			 from->sock < e->peer_count ? e->peers[from->sock].cfg.name : "a peer");
	} else if (from->kind == PATH_RDV_RELAY && from->sock) {
		LOG_INFO(p->cfg.name, "path: relayed through our gate %s",
			 engine_addr_text(&e->gate_regs[from->sock - 1].addr, text, sizeof(text)));
	} else if (path_is_relay(from->kind)) {
		LOG_INFO(p->cfg.name, "path: relayed through the rendezvous server%s",
			 from->kind == PATH_WS_RELAY ? " over the WebSocket" : "");
	} else {
		LOG_INFO(p->cfg.name, "path: direct to %s", engine_addr_text(&from->addr, text, sizeof(text)));
	}
}

/* A sealed packet carrying a PATH_CHALLENGE, sent to every target: the
 * copy that arrives first is fresh there.  Nothing is sent when the conn
 * has nothing to send now (its window is full); the challenge then rides
 * the next packet. */
static void send_probes(struct srm_engine *e, struct peer *p, const struct path_action *act,
			uint64_t now_us)
{
	if (!p->conn || !session_established(p->session))
		return;
	uint8_t challenge[8], plain[PACKET_BUF], pkt[PACKET_BUF];
	uint64_t pn;
	randombytes_buf(challenge, sizeof(challenge));
	conn_path_challenge(p->conn, challenge);
	size_t len = conn_build_packet(p->conn, now_us, plain, PROBE_PAYLOAD, &pn);
	if (!len)
		return;
	int sealed = session_seal(p->session, pn, plain, len, pkt, sizeof(pkt), now_us / 1000);
	if (sealed <= 0)
		return;
	for (size_t i = 0; i < act->count; i++) {
		engine_send_path(e, p, &act->targets[i], pkt, (size_t)sealed);
		path_on_sent(p->paths, &act->targets[i], now_us / 1000);
	}
}

static void send_punches(struct srm_engine *e, struct peer *p, const struct path_action *act)
{
	uint8_t pkt[PUNCH_BYTES];
	size_t len = session_punch_packet(p->session, pkt, sizeof(pkt));
	for (size_t i = 0; i < act->count && len; i++)
		engine_send_path(e, p, &act->targets[i], pkt, len);
}

static void do_action(struct srm_engine *e, struct peer *p, const struct path_action *act,
		      uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	switch (act->kind) {
	case PATH_DO_HANDSHAKE:
		session_handshake_now(p->session, now_ms);
		break;
	case PATH_DO_LOOKUP:
		engine_rdv_lookup(e, p, now_ms);
		break;
	case PATH_DO_REGISTER:
		if (e->rdv)
			rdv_client_refresh(e->rdv, now_ms);
		break;
	case PATH_DO_PUNCH:
		send_punches(e, p, act);
		break;
	case PATH_DO_PROBE:
		send_probes(e, p, act, now_us);
		break;
	case PATH_DO_OPEN_SOCKETS: {
		uint32_t ids[PATH_HARDNAT_SOCKETS];
		size_t want = act->count < PATH_HARDNAT_SOCKETS ? act->count : PATH_HARDNAT_SOCKETS;
		path_sockets_opened(p->paths, ids, probes_open(e, want, ids));
		break;
	}
	case PATH_DO_CLOSE_SOCKETS:
		for (size_t i = 0; i < act->count; i++) {
			struct probe_socket *s = probe_find(e, act->targets[i].sock);
			if (s)
				probe_close(e, s);
		}
		break;
	case PATH_DO_WS_OPEN:
	case PATH_DO_WS_CLOSE:
	case PATH_DO_SERVER_PROBE:
	case PATH_DO_NEXT_SERVER:
		break; /* engine-wide: engine_paths_run */
	}
}

/* The engine-wide decisions: how the rendezvous server is reached. */
void engine_paths_run(struct srm_engine *e, uint64_t now_us)
{
	struct path_action act;
	uint64_t now_ms = now_us / 1000;
	for (int i = 0; i < ACTIONS_PER_PASS && pathman_poll(e->paths, now_ms, &act); i++) {
		switch (act.kind) {
		case PATH_DO_WS_OPEN:
			engine_ws_open(e, now_ms);
			break;
		case PATH_DO_WS_CLOSE:
			engine_ws_close(e);
			break;
		case PATH_DO_SERVER_PROBE: {
			uint8_t pkt[RDV_REGISTER_MIN_BYTES];
			size_t n = rdv_register_packet(pkt, sizeof(pkt));
			if (n && e->rdv_server_len)
				engine_send(e, &e->rdv_server, e->rdv_server_len, pkt, n);
			break;
		}
		case PATH_DO_REGISTER:
			/* Over the new link, pending lookups too. */
			engine_rdv_relink(e, now_ms);
			break;
		case PATH_DO_NEXT_SERVER:
			engine_rdv_next_server(e, now_ms);
			break;
		default:
			break;
		}
	}
}

static struct path_status status(struct peer *p)
{
	struct path_status st = {
		.session_up = session_established(p->session),
		.has_conn = p->conn != NULL,
	};
	if (p->conn) {
		struct srm_peer_stats ps;
		conn_get_stats(p->conn, &ps);
		st.srtt_ms = ps.srtt_us / 1000;
		st.rx_stream_bytes = ps.stream_bytes_received;
	}
	return st;
}

void engine_path_run(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	struct path_status st = status(p);
	struct path_action act;
	for (int i = 0; i < ACTIONS_PER_PASS && path_poll(p->paths, &st, now_us / 1000, &act); i++)
		do_action(e, p, &act, now_us);
}

uint64_t engine_path_deadline(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	(void)e;
	struct path_status st = status(p);
	uint64_t d = path_deadline(p->paths, &st, now_us / 1000);
	return d == UINT64_MAX ? d : d * 1000;
}

/* A send to `to` failed outright: every peer that may be there hears of it,
 * or the path manager, when it is the rendezvous server. */
void engine_path_send_failed(struct srm_engine *e, const struct sockaddr_storage *to, int err)
{
	if (e->rdv_server_len && path_sockaddr_equal(&e->rdv_server, (const struct sockaddr *)to)) {
		LOG_DEBUG(NULL, "sending to the rendezvous server failed: %s", strerror(err));
		pathman_on_server_send_failed(e->paths, clock_now_ms());
		return;
	}
	struct path_addr where = { .kind = PATH_UDP, .len = sizeof(*to) };
	memcpy(&where.addr, to, sizeof(*to));
	for (size_t i = 0; i < engine_slot_count(e); i++) {
		struct peer *p = engine_slot(e, i);
		if (p->paths && path_is_known(p->paths, &where)) {
			LOG_DEBUG(p->cfg.name, "sending to the peer failed: %s", strerror(err));
			path_on_send_failed(p->paths, &where, clock_now_ms());
		}
	}
}
