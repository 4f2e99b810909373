/*
 * engine_udp.c — the UDP socket: opening it, addresses in its family, and
 * datagrams in and out in batches (sendmmsg with UDP GSO, recvmmsg with
 * UDP GRO).  What a datagram means is engine_receive.c's business; what a
 * peer sends, engine_send.c's.
 */
#include <errno.h>
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
	sys_setsockopt(fd, level, opt, &v, sizeof(v));
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
	e->tx.gso_off = e->cfg.gso_off;
	e->gro = !e->cfg.gso_off && sys_setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
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
		sys_close(fd);
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

static void send_failed(void *ctx, const struct sockaddr_storage *to, int err)
{
	if (blocked(err))
		engine_path_send_failed(ctx, to, err);
}

void engine_send_flush(struct srm_engine *e)
{
	engine_ws_flush(e);
	engine_gate_ws_flush(e);
	e->stats.packets_sent += udp_batch_flush(&e->tx, send_failed, e);
}

/* The next free slot of the send batch, flushing when full. */
uint8_t *engine_send_slot(struct srm_engine *e)
{
	_Static_assert(PACKET_BUF <= UDP_BATCH_BUF, "a packet fits a batch slot");
	uint8_t *slot = udp_batch_slot(&e->tx);
	if (!slot) {
		engine_send_flush(e);
		slot = udp_batch_slot(&e->tx);
	}
	return slot;
}

void engine_send_commit(struct srm_engine *e, const struct sockaddr_storage *to, socklen_t tolen,
			size_t len)
{
	udp_batch_commit(&e->tx, e->udp_fd, to, tolen, len);
}

void engine_send(struct srm_engine *e, const struct sockaddr_storage *to, socklen_t tolen,
		 const uint8_t *pkt, size_t len)
{
	if (!tolen || len > PACKET_BUF)
		return;
	memcpy(engine_send_slot(e), pkt, len);
	engine_send_commit(e, to, tolen, len);
}

/* ---- Receiving ---------------------------------------------------------- */

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
				engine_drop(e, SRM_DROP_MALFORMED);
				continue;
			}
			uint8_t *buf = iov[i].iov_base;
			size_t len = msgs[i].msg_len;
			size_t seg = gro ? gro_segment_size(&msgs[i].msg_hdr, len) : len;
			for (size_t off = 0; off < len; off += seg)
				engine_receive(e, sock, buf + off, len - off < seg ? len - off : seg, &from[i],
					    msgs[i].msg_hdr.msg_namelen, now_us);
		}
		if ((unsigned)n < count)
			return;
	}
}
