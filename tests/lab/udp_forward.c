/*
 * udp_forward: the cheapest relay there is, for the gate bench
 * (tests/bench/run.sh, section gate): two UDP ports, and every datagram
 * that arrives on one leaves the other towards the last sender seen
 * there.  No parsing, no crypto, no state beyond two addresses, and the
 * kernel's cheapest way to move datagrams: UDP GRO coalesces a run of
 * them into one receive, UDP GSO sends the run again in one call (up to
 * 8 runs of 64 KiB per recvmmsg/sendmmsg).  What it costs on a host is
 * the floor under any user-space relay's, ours included.
 *
 *   udp_forward ADDR PORT_A PORT_B
 *
 * Runs until killed.  IPv4 only (the lab's).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 8
#define RUN 65536 /* one coalesced run */

struct side {
	int fd;
	struct sockaddr_in last; /* the last sender: where the other side's go */
	int known;
};

static int bind_udp(const char *addr, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int size = 4 << 20;
	if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("udp_forward: bind");
		exit(2);
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one));
	return fd;
}

/* The segment size of a coalesced run (0: one datagram). */
static int gro_size(struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO)
			return *(int *)CMSG_DATA(c);
	return 0;
}

/* Everything waiting on `from`, sent on `to` towards to's last sender,
 * each coalesced run as one GSO send. */
static void pump(struct side *from, struct side *to)
{
	static uint8_t buf[BATCH][RUN];
	static union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} rx[BATCH], tx[BATCH];
	struct mmsghdr in[BATCH], out[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in src[BATCH];
	for (;;) {
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ buf[i], RUN };
			in[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &src[i],
							      .msg_namelen = sizeof(src[i]),
							      .msg_iov = &iov[i],
							      .msg_iovlen = 1,
							      .msg_control = rx[i].b,
							      .msg_controllen = sizeof(rx[i].b) } };
		}
		int n = recvmmsg(from->fd, in, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		from->last = src[n - 1];
		from->known = 1;
		if (!to->known)
			continue;
		for (int i = 0; i < n; i++) {
			int seg = gro_size(&in[i].msg_hdr);
			iov[i].iov_len = in[i].msg_len;
			out[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &to->last,
							       .msg_namelen = sizeof(to->last),
							       .msg_iov = &iov[i],
							       .msg_iovlen = 1 } };
			if (seg > 0 && (int)in[i].msg_len > seg) {
				struct msghdr *m = &out[i].msg_hdr;
				m->msg_control = tx[i].b;
				m->msg_controllen = sizeof(tx[i].b);
				struct cmsghdr *c = CMSG_FIRSTHDR(m);
				c->cmsg_level = IPPROTO_UDP;
				c->cmsg_type = UDP_SEGMENT;
				c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
				*(uint16_t *)CMSG_DATA(c) = (uint16_t)seg;
				m->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
			}
		}
		for (int sent = 0, r; sent < n; sent += r)
			if ((r = sendmmsg(to->fd, out + sent, (unsigned)(n - sent), 0)) <= 0)
				break; /* a full buffer drops the rest, as a router would */
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: udp_forward ADDR PORT_A PORT_B\n");
		return 2;
	}
	struct side s[2] = { { .fd = bind_udp(argv[1], atoi(argv[2])) },
			     { .fd = bind_udp(argv[1], atoi(argv[3])) } };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < 2; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		epoll_ctl(ep, EPOLL_CTL_ADD, s[i].fd, &ev);
	}
	for (;;) {
		struct epoll_event evs[2];
		int n = epoll_wait(ep, evs, 2, -1);
		for (int i = 0; i < n; i++) {
			int k = (int)evs[i].data.u32;
			pump(&s[k], &s[!k]);
		}
	}
}
