/*
 * engine_net.c — the UDP socket: receive, demultiplex, send in batches.
 *
 * Every datagram is classified by its first byte and handed to the
 * session (handshake, decryption) and then to the peer's transport.
 * Nothing unauthenticated ever gets a reply larger than itself: the only
 * reply to an unauthenticated packet is a cookie reply, which the
 * handshake guard keeps smaller than the INIT that caused it.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"

/* Large socket buffers absorb bursts at multi-Gbit/s without drops. */
#define UDP_SOCKET_BUFFER (8 * 1024 * 1024)
/* Receive at most this many batches per wake-up, so timers and streams
 * are served under a flood; epoll is level-triggered and calls again. */
#define RECV_BATCHES_PER_WAKE 8
/* Packets one peer may emit per engine pass before others get a turn. */
#define PEER_PACKETS_PER_PASS 64

static void drop(struct srm_engine *e, enum srm_drop_reason why)
{
	e->stats.drops[why]++;
}

/* A drop we can pin on a peer (its packet, by receiver index or key) also
 * counts in its own row of `srmudp status`. */
static void drop_peer(struct srm_engine *e, struct peer *p, enum srm_drop_reason why)
{
	drop(e, why);
	p->drops[why]++;
}

/* Store addresses in the socket's family (v4-mapped on a dual-stack
 * AF_INET6 socket), so endpoints compare with memcmp-free equality. */
socklen_t engine_addr_for_socket(const struct srm_engine *e, const struct sockaddr_storage *in,
				 socklen_t inlen, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (in->ss_family == AF_INET && e->family == AF_INET6) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)in;
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
		v6->sin6_family = AF_INET6;
		v6->sin6_port = v4->sin_port;
		v6->sin6_addr.s6_addr[10] = 0xff;
		v6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&v6->sin6_addr.s6_addr[12], &v4->sin_addr, 4);
		return sizeof(*v6);
	}
	if (in->ss_family == AF_INET6 && e->family == AF_INET) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)in;
		if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
			return 0; /* unreachable from an IPv4-only socket */
		struct sockaddr_in *v4 = (struct sockaddr_in *)out;
		v4->sin_family = AF_INET;
		v4->sin_port = v6->sin6_port;
		memcpy(&v4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
		return sizeof(*v4);
	}
	if (inlen > sizeof(*out))
		return 0;
	memcpy(out, in, inlen);
	return inlen;
}

/* "198.51.100.7:4000" or "[2001:db8::1]:4000" (v4-mapped shown as v4). */
const char *engine_addr_text(const struct sockaddr_storage *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const void *)a;
		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
		port = ntohs(v4->sin_port);
		snprintf(buf, len, "%s:%d", host, port);
		return buf;
	}
	const struct sockaddr_in6 *v6 = (const void *)a;
	port = ntohs(v6->sin6_port);
	if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
		inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], host, sizeof(host));
		snprintf(buf, len, "%s:%d", host, port);
	} else {
		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%d", host, port);
	}
	return buf;
}

bool engine_path_is_ipv6(const struct peer *p)
{
	const struct path_addr *path = path_active(p->paths);
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&path->addr;
	return path->kind == PATH_UDP && v6->sin6_family == AF_INET6 &&
	       !IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr);
}

static void set_int(int fd, int level, int opt, int v)
{
	setsockopt(fd, level, opt, &v, sizeof(v));
}

int engine_udp_open(struct srm_engine *e, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t len = e->cfg.listen_len;
	memcpy(&addr, &e->cfg.listen, sizeof(addr));
	if (len == 0) {
		struct sockaddr_in6 *any = (struct sockaddr_in6 *)&addr;
		memset(&addr, 0, sizeof(addr));
		any->sin6_family = AF_INET6;
		any->sin6_addr = in6addr_any;
		len = sizeof(*any);
	}
	int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	const struct sockaddr_in6 *want6 = (const struct sockaddr_in6 *)&addr;
	if (fd < 0 && addr.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&want6->sin6_addr)) {
		/* No IPv6 on this host: fall back to IPv4 any. */
		in_port_t port = want6->sin6_port;
		struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
		memset(&addr, 0, sizeof(addr));
		v4->sin_family = AF_INET;
		v4->sin_port = port;
		len = sizeof(*v4);
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0) {
		snprintf(err, errlen, "SRMUDP_LISTEN: cannot create a UDP socket: %s", strerror(errno));
		return SRM_ERR_IO;
	}
	e->family = addr.ss_family;
	if (e->family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&addr;
		set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, !IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr));
		/* DF on, kernel PMTU cache ignored: our own PMTU search decides,
		 * and nothing is ever fragmented. */
		set_int(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE);
		set_int(fd, IPPROTO_IPV6, IPV6_DONTFRAG, 1);
	}
	set_int(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
	int on = 1;
	e->gso_off = e->cfg.gso_off;
	e->gro = !e->cfg.gso_off && setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
	set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, UDP_SOCKET_BUFFER);
	set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, UDP_SOCKET_BUFFER);
	set_int(fd, SOL_SOCKET, SO_RCVBUF, UDP_SOCKET_BUFFER);
	set_int(fd, SOL_SOCKET, SO_SNDBUF, UDP_SOCKET_BUFFER);
	if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
		char text[128] = "?";
		int port = e->family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&addr)->sin6_port)
						 : ntohs(((struct sockaddr_in *)&addr)->sin_port);
		snprintf(text, sizeof(text), "port %d", port);
		snprintf(err, errlen, "SRMUDP_LISTEN: cannot bind %s: %s", text, strerror(errno));
		close(fd);
		return SRM_ERR_IO;
	}
	e->udp_fd = engine_fd_adopt(e, fd);
	e->udp_tag.kind = EV_UDP;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->udp_tag };
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->udp_fd, &ev);
	return 0;
}

/* ---- Sending ------------------------------------------------------------ */

/* The network refuses UDP to there (a firewall, no route): not a loss that
 * retransmission can repair. */
static bool blocked(int err)
{
	return err == EPERM || err == EACCES || err == ENETUNREACH || err == EHOSTUNREACH;
}

static void send_failed(struct srm_engine *e, unsigned slot, int err)
{
	if (blocked(err))
		engine_path_send_failed(e, &e->send_addr[slot], err);
}

/* One datagram per message, from slot `from` on. */
static void flush_plain(struct srm_engine *e, unsigned from)
{
	unsigned done = from;
	while (done < e->send_count) {
		int n = sendmmsg(e->udp_fd, &e->send_msgs[done], e->send_count - done, 0);
		if (n <= 0) {
			/* EAGAIN (socket buffer full) or a per-destination error
			 * such as EMSGSIZE/ECONNREFUSED: drop this datagram; loss
			 * recovery treats it like any lost packet. */
			send_failed(e, done, errno);
			done++;
			continue;
		}
		e->stats.packets_sent += (uint64_t)n;
		done += (unsigned)n;
	}
}

static bool same_dest(const struct srm_engine *e, unsigned a, unsigned b)
{
	socklen_t la = e->send_msgs[a].msg_hdr.msg_namelen;
	return la == e->send_msgs[b].msg_hdr.msg_namelen &&
	       memcmp(&e->send_addr[a], &e->send_addr[b], la) == 0;
}

/* UDP GSO: runs of equal-sized datagrams to one address leave in one
 * message with a UDP_SEGMENT size; the kernel cuts them (in the NIC, or in
 * software late in the stack), which costs a fraction of one syscall path
 * per datagram.  Returns the slot to continue from with plain sends: the
 * batch end, or the first slot of a message GSO refused (the caller then
 * turns GSO off). */
static unsigned flush_gso(struct srm_engine *e)
{
	struct mmsghdr msgs[SEND_BATCH];
	unsigned first[SEND_BATCH], segs[SEND_BATCH], n = 0;
	for (unsigned i = 0; i < e->send_count; n++) {
		size_t size = e->send_iov[i].iov_len;
		unsigned j = i + 1;
		while (j < e->send_count && j - i < GSO_MAX_SEGMENTS && same_dest(e, i, j) &&
		       e->send_iov[j - 1].iov_len == size && e->send_iov[j].iov_len <= size &&
		       (j - i + 1) * size <= GSO_MAX_BYTES)
			j++;
		msgs[n].msg_hdr = e->send_msgs[i].msg_hdr;
		msgs[n].msg_hdr.msg_iov = &e->send_iov[i];
		msgs[n].msg_hdr.msg_iovlen = j - i;
		msgs[n].msg_hdr.msg_control = NULL;
		msgs[n].msg_hdr.msg_controllen = 0;
		if (j - i > 1) {
			struct cmsghdr *cm = &e->gso_ctrl[n].align;
			msgs[n].msg_hdr.msg_control = cm;
			msgs[n].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			uint16_t gso = (uint16_t)size;
			memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
		}
		first[n] = i;
		segs[n] = j - i;
		i = j;
	}
	unsigned done = 0;
	while (done < n) {
		int k = sendmmsg(e->udp_fd, &msgs[done], n - done, 0);
		if (k > 0) {
			for (unsigned m = done; m < done + (unsigned)k; m++)
				e->stats.packets_sent += segs[m];
			done += (unsigned)k;
			continue;
		}
		if (errno == EAGAIN || errno == ECONNREFUSED || errno == EMSGSIZE || blocked(errno)) {
			send_failed(e, first[done], errno);
			done++; /* lost, as in flush_plain */
			continue;
		}
		return first[done]; /* EIO, EINVAL...: no GSO on this path */
	}
	return e->send_count;
}

void engine_send_flush(struct srm_engine *e)
{
	unsigned from = 0;
	if (!e->gso_off) {
		from = flush_gso(e);
		if (from < e->send_count) {
			LOG_INFO(NULL, "UDP GSO unavailable here (%s): one datagram per send",
				 strerror(errno));
			e->gso_off = true;
		}
	}
	flush_plain(e, from);
	e->send_count = 0;
}

/* The next free slot of the send batch, flushing when full. */
static uint8_t *send_slot(struct srm_engine *e)
{
	if (e->send_count == SEND_BATCH)
		engine_send_flush(e);
	return e->send_buf[e->send_count];
}

static void send_commit(struct srm_engine *e, const struct sockaddr_storage *to, socklen_t tolen,
			size_t len)
{
	unsigned i = e->send_count++;
	memcpy(&e->send_addr[i], to, tolen);
	e->send_iov[i] = (struct iovec){ e->send_buf[i], len };
	e->send_msgs[i].msg_hdr = (struct msghdr){
		.msg_name = &e->send_addr[i],
		.msg_namelen = tolen,
		.msg_iov = &e->send_iov[i],
		.msg_iovlen = 1,
	};
}

void engine_send(struct srm_engine *e, const struct sockaddr_storage *to, socklen_t tolen,
		 const uint8_t *pkt, size_t len)
{
	if (!tolen || len > PACKET_BUF)
		return;
	memcpy(send_slot(e), pkt, len);
	send_commit(e, to, tolen, len);
}

/* ---- Per-peer output ---------------------------------------------------- */

/* The conn belongs to one run of the peer: a restarted peer (another boot
 * id) has forgotten our streams, so they end.  Otherwise the conn is the
 * peer's run `boot` from now on. */
static void note_peer_boot(struct srm_engine *e, struct peer *p, uint64_t boot)
{
	if (p->conn && p->conn_boot_id && p->conn_boot_id != boot) {
		LOG_INFO(p->cfg.name, "peer restarted; resetting its streams");
		engine_peer_drop_conn(e, p, SRM_ERR_RESET);
	}
	if (p->conn)
		p->conn_boot_id = boot;
}

static void check_peer_restart(struct srm_engine *e, struct peer *p)
{
	if (p->conn && session_established(p->session))
		note_peer_boot(e, p, session_peer_boot_id(p->session));
}

/* SRMUDP_PAD: grow the plaintext so the packet's size says little about
 * its content.  FRAME_PADDING (zero bytes) fills the rest. */
static size_t pad_to(const struct srm_engine *e, const struct conn *c, size_t len)
{
	static const size_t buckets[] = { 128, 256, 512, 1024 };
	size_t mtu = conn_mtu_payload(c);
	if (e->cfg.pad == SRM_PAD_OFF || len >= mtu)
		return len; /* off, or a PMTU probe already padded */
	if (e->cfg.pad == SRM_PAD_MTU)
		return mtu;
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		size_t target = buckets[i] - WIRE_DATA_OVERHEAD;
		if (len <= target && target <= mtu)
			return target;
	}
	return mtu;
}

void engine_peer_flush(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	struct path_addr targets[PATH_MAX_TARGETS];
	size_t target_count = path_handshake_targets(p->paths, now_ms, targets, PATH_MAX_TARGETS);
	if (!target_count)
		return; /* no address yet: the path manager looks the peer up */

	/* A fresh transport's first OPEN rides in our INIT: connect() then
	 * costs one round trip, as TCP's does, even for the first stream. */
	uint8_t early[NOISE_EARLY_BYTES];
	size_t early_len = p->conn && !p->conn_boot_id ? conn_early_open(p->conn, early, sizeof(early)) : 0;
	session_set_early(p->session, early, early_len);
	uint8_t hs[PACKET_BUF];
	size_t n = session_handshake_packet(p->session, now_ms, hs, sizeof(hs));
	if (n)
		engine_send_handshake(e, p, hs, n, targets, target_count);

	if (p->conn && session_failed(p->session)) {
		LOG_WARN(p->cfg.name, "handshake failed: peer unreachable");
		engine_peer_drop_conn(e, p, SRM_ERR_UNREACHABLE);
		return;
	}
	if (!p->conn || !session_established(p->session) || path_active(p->paths)->kind == PATH_NONE)
		return;
	check_peer_restart(e, p);
	if (!p->conn)
		return;

	uint8_t plain[PACKET_BUF];
	for (int i = 0; i < PEER_PACKETS_PER_PASS; i++) {
		uint64_t pn;
		const struct path_addr *path = path_active(p->paths);
		size_t len = conn_build_packet(p->conn, now_us, plain, WIRE_MAX_UDP_PAYLOAD, &pn);
		if (!len)
			break;
		size_t padded = pad_to(e, p->conn, len);
		memset(plain + len, FRAME_PADDING, padded - len);
		len = padded;
		uint8_t sealed_buf[PACKET_BUF];
		bool direct = path->kind == PATH_UDP && !path->sock;
		/* Packets for the engine's socket are sealed straight into the
		 * send batch. */
		uint8_t *out = direct ? send_slot(e) : sealed_buf;
		int sealed = session_seal(p->session, pn, plain, len, out, PACKET_BUF, now_ms);
		if (sealed < 0) {
			/* Keys expired: the packet counts as lost and is resent
			 * once the new handshake completes. */
			session_want_handshake(p->session, now_ms);
			break;
		}
		if (direct)
			send_commit(e, &path->addr, path->len, (size_t)sealed);
		else
			engine_send_path(e, p, path, sealed_buf, (size_t)sealed);
		path_on_sent(p->paths, path, now_ms);
	}
}

/* ---- Receiving ---------------------------------------------------------- */

/* SRMUDP_RATE / SRMUDP_RATE_PACKETS: a token bucket per peer holding one
 * second's worth, checked before any decryption. */
static bool rate_allow(struct srm_engine *e, struct peer *p, size_t len, uint64_t now_us)
{
	double byte_rate = (double)e->cfg.rate_bytes, pkt_rate = (double)e->cfg.rate_packets;
	if (byte_rate == 0 && pkt_rate == 0)
		return true;
	double secs = p->rate_refill_us ? (double)(now_us - p->rate_refill_us) / 1e6 : 1.0;
	p->rate_refill_us = now_us;
	p->rate_bytes += secs * byte_rate;
	if (p->rate_bytes > byte_rate)
		p->rate_bytes = byte_rate;
	p->rate_packets += secs * pkt_rate;
	if (p->rate_packets > pkt_rate)
		p->rate_packets = pkt_rate;
	if ((byte_rate && p->rate_bytes < (double)len) || (pkt_rate && p->rate_packets < 1))
		return false;
	p->rate_bytes -= (double)len;
	p->rate_packets -= 1;
	return true;
}

static struct peer *peer_by_session(struct srm_engine *e, const struct session *s)
{
	for (size_t i = 0; i < e->slot_count; i++)
		if (e->peers[i].session == s)
			return &e->peers[i];
	return NULL;
}

/* The peer a RESP, COOKIE_REPLY or DATA packet is addressed to, by the
 * receiver index we gave out; counts the drop when there is none. */
static struct peer *peer_by_index(struct srm_engine *e, const uint8_t *pkt, size_t len)
{
	uint32_t idx;
	int rc = session_receiver_index(pkt, len, &idx);
	if (rc < 0) {
		drop(e, session_drop_reason(rc));
		return NULL;
	}
	struct session *s = index_table_lookup(e->indices, idx);
	struct peer *p = s ? peer_by_session(e, s) : NULL;
	if (!p)
		drop(e, SRM_DROP_UNKNOWN_INDEX);
	return p;
}

/* The slot a handshake from key pub at `from` belongs to: the instance
 * already there, else the configured slot unless another instance keeps
 * it busy, else a new extra instance (see struct peer). */
static struct peer *instance_for_init(struct srm_engine *e, const struct noise_init *in,
				      const struct path_addr *from, uint64_t now_ms, bool *listed)
{
	const uint8_t *pub = in->peer_pub;
	struct peer *configured = NULL;
	for (size_t i = 0; i < e->slot_count; i++) {
		struct peer *p = &e->peers[i];
		if (!p->session || memcmp(p->cfg.pubkey, pub, SRM_KEY_BYTES) != 0)
			continue;
		if (path_same(path_active(p->paths), from)) {
			*listed = true;
			return p;
		}
		if (!p->extra)
			configured = p;
	}
	if (!configured)
		return NULL;
	*listed = true;
	/* Busy: another address spoke for this key recently (a handshake
	 * counts, before its keys are even confirmed). */
	bool busy = path_confirmed(configured->paths) &&
		    now_ms < path_last_rx_ms(configured->paths) + INSTANCE_BUSY_MS;
	if (!busy)
		return configured;
	/* A new session remembers no timestamps: refuse a replayed INIT
	 * before it can take a slot. */
	int rc = session_check_init_fresh(configured->session, in, now_ms);
	if (rc != 0) {
		drop(e, session_drop_reason(rc));
		return NULL;
	}
	return engine_instance_new(e, configured);
}

/* The cheap checks before any Diffie-Hellman (mac1, rate limit, cookie
 * under load).  A cookie reply, never larger than the packet, is the only
 * answer an unauthenticated sender can get. */
static bool guard_passes(struct srm_engine *e, const uint8_t *pkt, size_t len,
			 const struct path_addr *from, uint64_t now_ms)
{
	if (from->kind == PATH_RDV_RELAY) {
		/* The relay already limits each registered sender, every
		 * relayed packet shows the relay's address, and no cookie
		 * could go back through it: mac1 is the check that applies. */
		int rc = cookie_check_mac1(pkt, len, e->identity->mac1_key);
		if (rc != 0)
			drop(e, session_drop_reason(rc));
		return rc == 0;
	}
	uint8_t reply[PACKET_BUF];
	size_t reply_len = 0;
	int rc = handshake_guard_check(e->guard, pkt, len, (const struct sockaddr *)&from->addr,
				       from->len, now_ms, reply, &reply_len);
	if (rc == 0)
		return true;
	if (reply_len && reply_len < len && from->kind == PATH_UDP)
		engine_send(e, &from->addr, from->len, reply, reply_len);
	drop(e, session_drop_reason(rc));
	return false;
}

struct early_init {
	struct srm_engine *e;
	struct peer *p;
	uint64_t now_us;
};

/* session_early_fn: the OPEN an INIT carries, answered in our RESP: the
 * listener takes or refuses it at once (a forwarding target's loopback
 * connect is settled first, listen_settle). */
static void on_early_frames(void *ctx, const uint8_t in[NOISE_EARLY_BYTES], uint64_t peer_boot_id,
			    uint8_t out[NOISE_EARLY_BYTES])
{
	struct early_init *x = ctx;
	struct peer *p = x->p;
	note_peer_boot(x->e, p, peer_boot_id);
	struct conn *c = engine_peer_conn(x->e, p, x->now_us);
	if (!c)
		return;
	p->conn_boot_id = peer_boot_id;
	uint64_t id;
	if (conn_receive_early(c, in, NOISE_EARLY_BYTES, x->now_us, &id) != 0) {
		drop(x->e, SRM_DROP_MALFORMED);
		return;
	}
	if (id == UINT64_MAX)
		return;
	bridge_conn_events(x->e, p, x->now_us); /* the listener takes or refuses it */
	listen_settle(x->e, p, id);
	if (p->conn)
		conn_early_answer(p->conn, id, out, NOISE_EARLY_BYTES);
}

static void on_init(struct srm_engine *e, const uint8_t *pkt, size_t len, const struct path_addr *from,
		    struct peer *relayed_from, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	uint8_t reply[PACKET_BUF];
	if (!guard_passes(e, pkt, len, from, now_ms))
		return;
	struct noise_init in;
	int rc = noise_consume_init(e->identity, pkt, len, &in);
	if (rc != 0) {
		drop(e, session_drop_reason(rc));
		return;
	}
	bool listed = false;
	struct peer *p = instance_for_init(e, &in, from, now_ms, &listed);
	if (!listed || (p && relayed_from && relayed_from->parent != p->parent)) {
		static struct log_ratelimit rl;
		drop(e, SRM_DROP_UNKNOWN_PEER);
		if (log_ratelimit_ok(&rl, now_ms, 10000)) {
			char key[SRM_PUBKEY_TEXT_BYTES];
			srm_pubkey_encode(in.peer_pub, key);
			LOG_WARN(NULL, "refused a handshake from unlisted key %s", key);
		}
		p = NULL;
	}
	if (!p) {
		noise_init_wipe(&in);
		return;
	}
	size_t resp_len = 0;
	struct early_init early = { e, p, now_us };
	rc = session_receive_init(p->session, &in, now_ms, on_early_frames, &early, reply,
				  sizeof(reply), &resp_len);
	noise_init_wipe(&in);
	if (rc == SRM_ERR_VERSION)
		LOG_ERR(p->cfg.name, "protocol version mismatch: no common version with the peer");
	if (resp_len)
		engine_send_path(e, p, from, reply, resp_len);
	if (rc < 0) {
		drop_peer(e, p, session_drop_reason(rc));
		return;
	}
	if (resp_len) {
		char text[64];
		LOG_INFO(p->cfg.name, "handshake answered: session with %s (%s, peer initiated)",
			 from->kind == PATH_RDV_RELAY ? "the relay" : engine_addr_text(&from->addr, text, sizeof(text)),
			 from->kind == PATH_RDV_RELAY ? "relayed" : "direct");
	}
	engine_path_received(e, p, from, now_ms);
}

static void on_resp_or_cookie(struct srm_engine *e, const uint8_t *pkt, size_t len,
			      const struct path_addr *from, struct peer *relayed_from, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	bool is_resp = pkt[0] == WIRE_HANDSHAKE_RESP;
	if (is_resp && !guard_passes(e, pkt, len, from, now_ms))
		return;
	struct peer *p = peer_by_index(e, pkt, len);
	if (!p || (relayed_from && relayed_from->parent != p->parent))
		return;
	uint8_t early[NOISE_EARLY_BYTES] = { 0 };
	int rc = is_resp ? session_receive_resp(p->session, pkt, len, now_ms, early)
			 : session_receive_cookie(p->session, pkt, len, now_ms);
	if (rc < 0) {
		drop_peer(e, p, session_drop_reason(rc));
		if (rc == SRM_ERR_VERSION)
			LOG_ERR(p->cfg.name, "protocol version mismatch: no common version with the peer");
		return;
	}
	if (is_resp) {
		char text[64];
		LOG_INFO(p->cfg.name, "session established with %s (%s, we initiated, %s)",
			 from->kind == PATH_RDV_RELAY ? "the relay" : engine_addr_text(&from->addr, text, sizeof(text)),
			 from->kind == PATH_RDV_RELAY ? "relayed" : "direct", session_cipher_name(p->session));
		engine_path_received(e, p, from, now_ms);
		/* Key confirmation: the responder may not use the new keys
		 * until our first packet arrives; a fresh conn starts with a
		 * PING. */
		struct conn *c = engine_peer_conn(e, p, now_us);
		uint64_t opened;
		if (c && !p->conn_boot_id && conn_receive_early(c, early, sizeof(early), now_us, &opened) != 0)
			drop(e, SRM_DROP_MALFORMED);
	}
}

static void on_data(struct srm_engine *e, uint8_t *pkt, size_t len, const struct path_addr *from,
		    struct peer *relayed_from, uint64_t now_us)
{
	if (len < WIRE_DATA_OVERHEAD) {
		drop(e, SRM_DROP_MALFORMED);
		return;
	}
	struct peer *p = peer_by_index(e, pkt, len);
	if (!p || (relayed_from && relayed_from->parent != p->parent))
		return;
	if (!rate_allow(e, p, len, now_us)) {
		drop_peer(e, p, SRM_DROP_RATELIMIT);
		return;
	}
	uint8_t plain[PACKET_BUF];
	uint64_t pn;
	int n = session_open(p->session, pkt, len, plain, sizeof(plain), &pn, now_us / 1000);
	if (n < 0) {
		drop_peer(e, p, session_drop_reason(n));
		return;
	}
	/* Authenticated: the peer is where this came from (roaming, NAT
	 * rebinding, relay). */
	engine_path_received(e, p, from, now_us / 1000);
	engine_peer_conn(e, p, now_us);
	check_peer_restart(e, p); /* may replace the conn */
	struct conn *c = engine_peer_conn(e, p, now_us);
	if (!c)
		return;
	if (conn_handle_packet(c, now_us, pn, plain, (size_t)n) < 0)
		drop_peer(e, p, SRM_DROP_MALFORMED);
}

void engine_handle_datagram(struct srm_engine *e, uint8_t *pkt, size_t len, const struct path_addr *from,
			    struct peer *relayed_from, uint64_t now_us)
{
	if (len < WIRE_HEADER_BYTES) {
		drop(e, SRM_DROP_MALFORMED);
		return;
	}
	if (pkt[1] != WIRE_VERSION) {
		drop(e, SRM_DROP_VERSION);
		return;
	}
	switch (pkt[0]) {
	case WIRE_HANDSHAKE_INIT:
		on_init(e, pkt, len, from, relayed_from, now_us);
		break;
	case WIRE_HANDSHAKE_RESP:
	case WIRE_COOKIE_REPLY:
		on_resp_or_cookie(e, pkt, len, from, relayed_from, now_us);
		break;
	case WIRE_DATA:
		on_data(e, pkt, len, from, relayed_from, now_us);
		break;
	case WIRE_PUNCH:
		/* Opened the sender's NAT towards us; nothing to answer.  Only
		 * someone who knows our public key makes one. */
		if (cookie_check_mac1(pkt, len, e->identity->mac1_key) != 0)
			drop(e, SRM_DROP_MAC);
		break;
	default:
		drop(e, SRM_DROP_MALFORMED);
	}
}

static void receive_one(struct srm_engine *e, uint32_t sock, uint8_t *pkt, size_t len,
			const struct sockaddr_storage *rawsrc, socklen_t rawlen, uint64_t now_us)
{
	struct path_addr from = { .kind = PATH_UDP, .sock = sock };
	from.len = engine_addr_for_socket(e, rawsrc, rawlen, &from.addr);
	e->stats.packets_received++;
	if (!from.len) {
		drop(e, SRM_DROP_MALFORMED);
		return;
	}
	if (len >= WIRE_HEADER_BYTES && (pkt[0] == WIRE_RENDEZVOUS || pkt[0] == WIRE_RELAY) &&
	    engine_rdv_receive(e, pkt, len, &from.addr, now_us))
		return;
	engine_handle_datagram(e, pkt, len, &from, NULL, now_us);
}

/* With UDP GRO the kernel hands over runs of datagrams from one sender as
 * one buffer and tells the segment size; without it, one per buffer. */
static size_t gro_segment_size(struct msghdr *mh, size_t len)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int seg;
			memcpy(&seg, CMSG_DATA(cm), sizeof(seg));
			return seg > 0 ? (size_t)seg : len;
		}
	}
	return len;
}

void engine_udp_receive(struct srm_engine *e, int fd, uint32_t sock, uint64_t now_us)
{
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct sockaddr_storage from[RECV_BATCH];
	/* GRO (the engine's socket only): few large buffers; else many
	 * packet-sized ones, same memory. */
	bool gro = e->gro && fd == e->udp_fd;
	unsigned count = gro ? RECV_GRO_BATCH : RECV_BATCH;
	size_t each = gro ? RECV_GRO_BYTES : PACKET_BUF;

	for (int round = 0; round < RECV_BATCHES_PER_WAKE; round++) {
		for (unsigned i = 0; i < count; i++) {
			iov[i] = (struct iovec){ e->recv_buf + i * each, each };
			msgs[i].msg_hdr = (struct msghdr){
				.msg_name = &from[i],
				.msg_namelen = sizeof(from[i]),
				.msg_iov = &iov[i],
				.msg_iovlen = 1,
				.msg_control = gro ? e->gro_ctrl[i].buf : NULL,
				.msg_controllen = gro ? sizeof(e->gro_ctrl[i].buf) : 0,
			};
		}
		int n = recvmmsg(fd, msgs, count, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				drop(e, SRM_DROP_MALFORMED);
				continue;
			}
			uint8_t *buf = iov[i].iov_base;
			size_t len = msgs[i].msg_len;
			size_t seg = gro ? gro_segment_size(&msgs[i].msg_hdr, len) : len;
			for (size_t off = 0; off < len; off += seg)
				receive_one(e, sock, buf + off, len - off < seg ? len - off : seg, &from[i],
					    msgs[i].msg_hdr.msg_namelen, now_us);
		}
		if ((unsigned)n < count)
			return;
	}
}

/* ---- Extra instances ------------------------------------------------------ */

struct peer *engine_instance_new(struct srm_engine *e, struct peer *configured)
{
	struct peer *p = NULL;
	for (size_t i = e->peer_count; i < e->slot_count && !p; i++)
		if (!e->peers[i].session)
			p = &e->peers[i];
	if (!p && e->slot_count < e->peer_count + MAX_EXTRA_INSTANCES)
		p = &e->peers[e->slot_count++];
	if (!p) {
		drop(e, SRM_DROP_RATELIMIT);
		return NULL;
	}
	memset(p, 0, sizeof(*p));
	p->index = (int)(p - e->peers);
	p->parent = configured->index;
	p->extra = true;
	p->cfg = configured->cfg;
	p->session = session_new(e->identity, p->cfg.pubkey, &e->session_cfg, e->indices);
	p->paths = path_peer_new(e->paths, p->cfg.name, NULL, 0, clock_now_ms());
	if (!p->session || !p->paths) {
		if (p->session)
			session_free(p->session);
		path_peer_free(p->paths);
		memset(p, 0, sizeof(*p));
		return NULL;
	}
	LOG_INFO(p->cfg.name, "another process with this key: tracking it as an extra instance");
	return p;
}

/* An extra instance nobody uses any more gives its slot back.  Returns
 * true when p was reaped. */
bool engine_instance_reap(struct srm_engine *e, struct peer *p, uint64_t now_ms)
{
	uint32_t idle = e->cfg.idle_timeout_ms ? e->cfg.idle_timeout_ms : CONN_DEFAULT_IDLE_TIMEOUT_MS;
	if (!p->extra || p->bridges || now_ms < path_last_rx_ms(p->paths) + idle)
		return false;
	if (p->conn)
		conn_free(p->conn);
	session_free(p->session);
	path_peer_free(p->paths);
	memset(p, 0, sizeof(*p));
	return true;
}
