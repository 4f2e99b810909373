/*
 * impair: the NAT lab's userspace link impairment stage (this kernel has no
 * netem).  It serves one NFQUEUE queue and applies, per packet, loss, delay
 * with jitter, reordering and duplication -- to every IP packet alike, so
 * kernel TCP and srmudp's UDP see the same link.
 *
 *   impair --queue N [--delay MS] [--jitter MS] [--loss PCT] [--reorder PCT]
 *          [--dup PCT --dup-netns PATH --dup-dev DEV] [--limit PKTS] [--seed S]
 *
 * lab.sh feeds it from the *receiving* end of a link, before conntrack:
 *   iptables -t raw -A PREROUTING -i DEV -j NFQUEUE --queue-num N --queue-bypass
 *
 * Why hold verdicts instead of "NF_DROP now, re-inject a copy later":
 * a packet re-injected through a raw socket enters the router as a locally
 * generated packet, so conntrack and NAT see it on the wrong path (a second
 * entry for a flow that already has one, a fresh masquerade port, a reply
 * that is not recognised).  Holding the packet in the kernel queue and
 * issuing NF_ACCEPT at its due time leaves it exactly where it was: in the
 * raw table, before conntrack, as if the wire had been slower.  Verdicts may
 * be issued in any order, which gives reordering for free.
 *
 * Duplication cannot be done with verdicts (one packet, one verdict), so the
 * copy is sent back through the link itself: an AF_PACKET socket opened in
 * the sending namespace transmits it on the peer's end of the veth, and it
 * arrives here again like any packet.  The stage remembers what it sent
 * (length + hash, a few entries, short lifetime) and lets the copy straight
 * through.  If an original that is byte-identical to a pending copy arrives
 * first, the two merely swap roles: the same bytes cross the link.
 *
 * Bounded: at most --limit packets are held (default 4096); beyond that the
 * newcomer is dropped, like a full router buffer.  SIGTERM/SIGINT release
 * every held packet, print counters to stderr and exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#define DEFAULT_LIMIT       4096   /* held packets: about 6 MB of 1500-byte frames */
#define MAX_LIMIT           65536
#define REORDER_DEPTH       3      /* a reordered packet waits for 3 later ones */
#define REORDER_MAX_WAIT_US 50000  /* ...or 50 ms, so a flow's tail is not stuck */
#define EXPECT_SLOTS        64     /* copies in flight back to ourselves */
#define EXPECT_LIFETIME_US  1000000
#define RCVBUF_BYTES        (8 << 20) /* bursts of queued packets between polls */
#define PKT_MAX             65535

struct held {
	uint64_t due_us;
	uint64_t after;     /* reordered: release once `released` reaches this */
	uint32_t id;
	uint16_t proto;     /* ethertype, network order, for the duplicate */
	uint16_t len;
	unsigned char *copy; /* bytes, kept only when a duplicate is due */
};

struct expect {
	uint64_t hash;
	uint64_t expires_us;
	uint32_t len;
};

struct cfg {
	unsigned queue;
	uint64_t delay_us, jitter_us;
	uint32_t loss, reorder, dup; /* probabilities scaled to 2^32 */
	unsigned limit;
	const char *dup_netns, *dup_dev;
};

static struct cfg cfg = { .limit = DEFAULT_LIMIT };
static struct nfq_q_handle *qh;
static struct held *heap;     /* min-heap on due_us: delayed packets */
static size_t nheap;
static struct held *fifo;     /* ring: reordered packets, in arrival order */
static size_t fifo_head, nfifo;
static struct expect expects[EXPECT_SLOTS];
static unsigned nexpect;
static uint64_t released, rng;
static int dup_fd = -1, dup_ifindex;
static volatile sig_atomic_t stop;
static struct {
	uint64_t seen, lost, overflow, delayed, reordered, duplicated, copies_back;
} st;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* xorshift64*: reproducible with --seed, good enough for coin flips. */
static uint32_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}

static int chance(uint32_t p)
{
	return p && rnd() < p;
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	while (n--)
		h = (h ^ *p++) * 1099511628211ull;
	return h;
}

static void verdict(uint32_t id, uint32_t v)
{
	if (nfq_set_verdict(qh, id, v, 0, NULL) < 0)
		perror("impair: nfq_set_verdict");
}

static void heap_push(struct held h)
{
	size_t i = nheap++;

	while (i && heap[(i - 1) / 2].due_us > h.due_us) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = h;
}

static struct held heap_pop(void)
{
	struct held top = heap[0], last = heap[--nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= nheap)
			break;
		if (c + 1 < nheap && heap[c + 1].due_us < heap[c].due_us)
			c++;
		if (heap[c].due_us >= last.due_us)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (nheap)
		heap[i] = last;
	return top;
}

/* Our end's MAC (the copy's destination): looked up once, in our namespace. */
static int in_mac(uint32_t ifindex, unsigned char mac[ETH_ALEN])
{
	static unsigned char cached[ETH_ALEN];
	static uint32_t cached_ifindex;
	struct ifreq ifr = { 0 };
	int fd, ok;

	if (ifindex && ifindex == cached_ifindex) {
		memcpy(mac, cached, ETH_ALEN);
		return 0;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ok = if_indextoname(ifindex, ifr.ifr_name) && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0;
	close(fd);
	if (!ok)
		return -1;
	memcpy(cached, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	cached_ifindex = ifindex;
	memcpy(mac, cached, ETH_ALEN);
	return 0;
}

/* Send the copy from the sender's end of the link, so it arrives here. */
static void send_copy(const struct held *h, uint32_t ifindex)
{
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET,
		.sll_protocol = h->proto,
		.sll_ifindex = dup_ifindex,
		.sll_halen = ETH_ALEN,
	};

	if (nexpect >= EXPECT_SLOTS || in_mac(ifindex, to.sll_addr) < 0)
		return;
	if (sendto(dup_fd, h->copy, h->len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return;
	expects[nexpect++] = (struct expect){
		.hash = fnv1a(h->copy, h->len),
		.expires_us = now_us() + EXPECT_LIFETIME_US,
		.len = h->len,
	};
	st.duplicated++;
}

static uint32_t last_indev;

static void release(struct held *h)
{
	verdict(h->id, NF_ACCEPT);
	released++;
	if (h->copy) {
		send_copy(h, last_indev);
		free(h->copy);
		h->copy = NULL;
	}
}

/* Is this packet one of our own copies coming back?  Forget stale ones. */
static int is_copy(const unsigned char *p, size_t n, uint64_t now)
{
	uint64_t hash = 0;
	int hashed = 0;

	for (unsigned i = 0; i < nexpect;) {
		if (expects[i].expires_us < now) {
			expects[i] = expects[--nexpect];
			continue;
		}
		if (expects[i].len == n) {
			if (!hashed) {
				hash = fnv1a(p, n);
				hashed = 1;
			}
			if (expects[i].hash == hash) {
				expects[i] = expects[--nexpect];
				return 1;
			}
		}
		i++;
	}
	return 0;
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa, void *data)
{
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	unsigned char *payload = NULL;
	uint64_t now = now_us();
	struct held h = { 0 };
	int len;

	(void)q, (void)msg, (void)data;
	if (!ph)
		return 0;
	h.id = ntohl(ph->packet_id);
	h.proto = ph->hw_protocol;
	len = nfq_get_payload(nfa, &payload);
	if (len < 0 || len > PKT_MAX) {
		verdict(h.id, NF_ACCEPT);
		return 0;
	}
	h.len = (uint16_t)len;
	last_indev = nfq_get_indev(nfa);

	if (nexpect && is_copy(payload, (size_t)len, now)) {
		st.copies_back++;
		verdict(h.id, NF_ACCEPT);
		return 0;
	}
	st.seen++;
	if (chance(cfg.loss)) {
		st.lost++;
		verdict(h.id, NF_DROP);
		return 0;
	}
	if (nheap + nfifo >= cfg.limit) {
		st.overflow++;
		verdict(h.id, NF_DROP);
		return 0;
	}
	if (dup_fd >= 0 && chance(cfg.dup)) {
		h.copy = malloc((size_t)len);
		if (h.copy)
			memcpy(h.copy, payload, (size_t)len);
	}

	if (chance(cfg.reorder)) {
		/* Held back behind later packets; its own delay still applies. */
		h.after = released + nheap + REORDER_DEPTH;
		h.due_us = now + cfg.delay_us + REORDER_MAX_WAIT_US;
		fifo[(fifo_head + nfifo++) % cfg.limit] = h;
		st.reordered++;
		return 0;
	}
	h.due_us = now + cfg.delay_us;
	if (cfg.jitter_us) {
		uint64_t span = 2 * cfg.jitter_us + 1, j = rnd() % span;

		/* uniform in [delay - jitter, delay + jitter], never before now */
		h.due_us = h.due_us + j < cfg.jitter_us ? now : h.due_us + j - cfg.jitter_us;
	}
	if (h.due_us <= now && !nheap) {
		release(&h);
		return 0;
	}
	st.delayed++;
	heap_push(h);
	return 0;
}

/* Release everything due; returns the poll timeout in ms until the next. */
static int release_due(void)
{
	uint64_t now = now_us(), next = UINT64_MAX;

	while (nheap && heap[0].due_us <= now) {
		struct held h = heap_pop();
		release(&h);
	}
	while (nfifo) {
		struct held *h = &fifo[fifo_head];

		if (released < h->after && h->due_us > now)
			break;
		release(h);
		fifo_head = (fifo_head + 1) % cfg.limit;
		nfifo--;
	}
	if (nheap)
		next = heap[0].due_us;
	if (nfifo && fifo[fifo_head].due_us < next)
		next = fifo[fifo_head].due_us;
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)((next - now + 999) / 1000);
}

static void release_all(void)
{
	while (nheap) {
		struct held h = heap_pop();
		release(&h);
	}
	for (; nfifo; nfifo--, fifo_head = (fifo_head + 1) % cfg.limit)
		release(&fifo[fifo_head]);
}

/* The copy socket lives in the sender's namespace, on its end of the veth. */
static int open_dup_socket(void)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int peer = open(cfg.dup_netns, O_RDONLY | O_CLOEXEC);
	int rc = -1;

	if (self < 0 || peer < 0) {
		fprintf(stderr, "impair: cannot open netns '%s': %s\n", cfg.dup_netns, strerror(errno));
		goto out;
	}
	if (setns(peer, CLONE_NEWNET) < 0) {
		perror("impair: setns to the sender's namespace");
		goto out;
	}
	dup_fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	dup_ifindex = (int)if_nametoindex(cfg.dup_dev);
	if (setns(self, CLONE_NEWNET) < 0) {
		perror("impair: setns back");
		goto out;
	}
	if (dup_fd < 0 || !dup_ifindex) {
		fprintf(stderr, "impair: no packet socket on '%s' in '%s'\n", cfg.dup_dev, cfg.dup_netns);
		goto out;
	}
	rc = 0;
out:
	if (self >= 0)
		close(self);
	if (peer >= 0)
		close(peer);
	return rc;
}

static uint32_t pct(const char *s, const char *name)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || v < 0 || v > 100) {
		fprintf(stderr, "impair: %s must be a percentage 0..100, not '%s'\n", name, s);
		exit(2);
	}
	return (uint32_t)(v / 100.0 * 4294967295.0);
}

static uint64_t ms(const char *s, const char *name)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || v < 0 || v > 60000) {
		fprintf(stderr, "impair: %s must be milliseconds 0..60000, not '%s'\n", name, s);
		exit(2);
	}
	return (uint64_t)(v * 1000.0);
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fputs("usage: impair --queue N [--delay MS] [--jitter MS] [--loss PCT] [--reorder PCT]\n"
	      "              [--dup PCT --dup-netns PATH --dup-dev DEV] [--limit PKTS] [--seed S]\n",
	      stderr);
	exit(2);
}

static void parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "delay", required_argument, NULL, 'd' },
		{ "jitter", required_argument, NULL, 'j' },
		{ "loss", required_argument, NULL, 'l' },
		{ "reorder", required_argument, NULL, 'r' },
		{ "dup", required_argument, NULL, 'u' },
		{ "dup-netns", required_argument, NULL, 'N' },
		{ "dup-dev", required_argument, NULL, 'D' },
		{ "limit", required_argument, NULL, 'L' },
		{ "seed", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int c, have_queue = 0;

	rng = (uint64_t)now_us() ^ ((uint64_t)getpid() << 32);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'q': cfg.queue = (unsigned)strtoul(optarg, NULL, 10); have_queue = 1; break;
		case 'd': cfg.delay_us = ms(optarg, "--delay"); break;
		case 'j': cfg.jitter_us = ms(optarg, "--jitter"); break;
		case 'l': cfg.loss = pct(optarg, "--loss"); break;
		case 'r': cfg.reorder = pct(optarg, "--reorder"); break;
		case 'u': cfg.dup = pct(optarg, "--dup"); break;
		case 'N': cfg.dup_netns = optarg; break;
		case 'D': cfg.dup_dev = optarg; break;
		case 'L': cfg.limit = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': rng = strtoull(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (!have_queue || optind != argc || cfg.limit < 1 || cfg.limit > MAX_LIMIT)
		usage();
	if (cfg.dup && (!cfg.dup_netns || !cfg.dup_dev)) {
		fputs("impair: --dup needs --dup-netns and --dup-dev (the sender's end)\n", stderr);
		exit(2);
	}
	if (!rng)
		rng = 0x9e3779b97f4a7c15ull; /* xorshift must not start at 0 */
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct nfq_handle *h;
	static char buf[PKT_MAX + 4096];
	int fd, one = 1, timeout = -1, rcvbuf;

	parse(argc, argv);
	heap = calloc(cfg.limit, sizeof(*heap));
	fifo = calloc(cfg.limit, sizeof(*fifo));
	if (!heap || !fifo)
		return 1;
	if (cfg.dup && open_dup_socket() < 0)
		return 1;

	h = nfq_open();
	if (!h) {
		perror("impair: nfq_open");
		return 1;
	}
	if (nfq_bind_pf(h, AF_INET) < 0 || nfq_bind_pf(h, AF_INET6) < 0)
		perror("impair: nfq_bind_pf (ignored on current kernels)");
	qh = nfq_create_queue(h, (uint16_t)cfg.queue, on_packet, NULL);
	if (!qh) {
		fprintf(stderr, "impair: cannot bind queue %u: %s\n", cfg.queue, strerror(errno));
		return 1;
	}
	if (nfq_set_mode(qh, NFQNL_COPY_PACKET, PKT_MAX) < 0 ||
	    nfq_set_queue_maxlen(qh, cfg.limit + EXPECT_SLOTS + 64) < 0) {
		perror("impair: queue setup");
		return 1;
	}
	fd = nfq_fd(h);
	rcvbuf = RCVBUF_BYTES;
	/* FORCE passes net.core.rmem_max (we are root); plain is the fallback. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* An overflowing netlink socket makes the kernel drop the packet
	 * (counted as loss upstream); ENOBUFS itself is of no use to us. */
	setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "impair: queue %u ready\n", cfg.queue);

	while (!stop) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = poll(&pfd, 1, timeout);

		if (n < 0 && errno != EINTR) {
			perror("impair: poll");
			break;
		}
		/* Drain what is ready without blocking, then release. */
		for (int i = 0; n > 0 && i < 256; i++) {
			ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (r <= 0)
				break;
			nfq_handle_packet(h, buf, (int)r);
		}
		timeout = release_due();
	}
	release_all();
	fprintf(stderr,
		"impair: queue %u seen %llu lost %llu overflow %llu delayed %llu "
		"reordered %llu duplicated %llu copies-back %llu\n",
		cfg.queue, (unsigned long long)st.seen, (unsigned long long)st.lost,
		(unsigned long long)st.overflow, (unsigned long long)st.delayed,
		(unsigned long long)st.reordered, (unsigned long long)st.duplicated,
		(unsigned long long)st.copies_back);
	nfq_destroy_queue(qh);
	nfq_close(h);
	return 0;
}
