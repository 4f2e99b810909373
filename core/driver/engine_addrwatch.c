/*
 * engine_addrwatch.c — this host's addresses coming and going (another
 * Wi-Fi, a new DHCP lease, a VPN interface), from the kernel's routing
 * netlink socket.  A change is reported to the path manager, which has
 * every peer with traffic looked up and probed again at once, and our
 * host addresses are announced to the rendezvous server again.  Best
 * effort: without netlink, a silent path is still repaired.
 */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "engine.h"
#include "log.h"

/* Changes come in bursts (an address removed, another added, routes):
 * act once, this long after the last one. */
#define ADDR_SETTLE_MS 300

void engine_addrwatch_open(struct srm_engine *e)
{
	e->addrwatch_fd = -1;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return;
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
	};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		sys_close(fd);
		return;
	}
	e->addrwatch_fd = engine_fd_adopt(e, fd);
	e->addrwatch_tag.kind = EV_ADDRWATCH;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->addrwatch_tag };
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->addrwatch_fd, &ev);
}

void engine_addrwatch_read(struct srm_engine *e, uint64_t now_us)
{
	uint8_t buf[8192];
	ssize_t n;
	/* Bounded: the socket is drained, at most 64 reads a wake-up. */
	for (int i = 0; i < 64 && (n = sys_recv(e->addrwatch_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0; i++) {
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR)
				e->addr_change_ms = now_us / 1000 + ADDR_SETTLE_MS;
		}
	}
}

uint64_t engine_addrwatch_deadline(const struct srm_engine *e)
{
	return e->addr_change_ms ? e->addr_change_ms * 1000 : UINT64_MAX;
}

void engine_addrwatch_run(struct srm_engine *e, uint64_t now_us)
{
	if (!e->addr_change_ms || now_us / 1000 < e->addr_change_ms)
		return;
	e->addr_change_ms = 0;
	LOG_INFO(NULL, "this host's addresses changed: looking for every peer again");
	engine_rdv_announce(e, now_us / 1000);
	pathman_on_local_change(e->paths);
}
