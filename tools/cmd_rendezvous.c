/*
 * cmd_rendezvous.c — srmudp rendezvous: the rendezvous and relay server.
 *
 * The thin I/O driver around core/protocol/rdv_server.c: one non-blocking UDP
 * socket per --listen address, one epoll loop, a monotonic clock, a
 * signalfd (SIGINT/SIGTERM stop, SIGUSR1 prints the counters, SIGHUP
 * reopens the log file).  It holds
 * no identity and no session keys; docs/NAT.md describes the protocol
 * and the deployment.
 *
 * Replies to a request leave through the socket it came in on (a NAT
 * only lets in what comes from the address its client talked to).
 * Packets to third parties (punch requests, relayed packets) leave
 * through the first socket of their address family: deploy one listen
 * address per family.
 *
 * With --ws-listen, the same server also answers WebSocket clients
 * (rdv_ws.c: clients whose network blocks UDP); the loop hands their
 * sockets' events to it, and every output of rdv_server goes where its
 * to.via says (route()).
 *
 * Why its own loop and not the engine's (core/driver/engine*.c): the
 * server is a different program with a different socket model.  It binds
 * one socket per address it is told (the engine: one dual-stack socket),
 * answers through the socket a request came in on, holds no identity, no
 * sessions and no streams, runs on the main thread with a signalfd, and
 * polls a shared store.  Driving rdv_server.c from the engine would mean a
 * generic engine or a server that carries the peer machinery it never
 * uses; this loop is about 80 lines, and what the two drivers do alike
 * they share: the clock (clock.h), the status socket (control.c) and the
 * log (log.c).
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "rendezvous.h"
#include "rdv_store_redis.h"
#include "rdv_control.h"
#include "rdv_ws.h"
#include "clock.h"
#include "udp_batch.h"

/* tools/cmd_rendezvous_probe.c: `srmudp rendezvous probe ...`. */
int cmd_rendezvous_probe(int argc, char **argv);

#define MAX_LISTEN 8
#define UDP_BUFFER_BYTES (8 * 1024 * 1024) /* as the engine's socket */
#define RX_BATCH 64 /* datagrams per socket per wakeup: others get a turn */
#define EVENT_BATCH 256
/* Datagrams leave in batches (udp_batch.h: sendmmsg, GSO runs) at the end
 * of each pass over the events: a stream relayed from a WebSocket client
 * made one sendto per datagram the loop's largest cost. */

struct listener {
	int fd;
	int family;
	char text[80];
};

static void help(FILE *f)
{
	fprintf(f,
		"Usage: srmudp rendezvous --listen ADDR:PORT [--listen ADDR:PORT ...]\n"
		"                         [--store redis://HOST:PORT] [--relay-rate BYTES/s]\n"
		"                         [--relay-source-rate BYTES/s] [--max-records N]\n"
		"                         [--key FILE] [--announce ADDR:PORT] [--gso auto|off]\n"
		"                         [--log-level LEVEL] [--log-file FILE]\n"
		"                         [--ws-listen ADDR:PORT [--tls-cert FILE --tls-key FILE]\n"
		"                          [--ws-max-clients N] [--ws-max-per-ip N] [--ws-rate BYTES/s]]\n\n"
		"Run the rendezvous server: peers register under their own key and learn their\n"
		"public address, find each other by public key and are told to punch; when\n"
		"punching fails the server relays their (end-to-end encrypted) packets.\n\n"
		"  --listen ADDR:PORT   UDP address to serve, IPv4 (0.0.0.0:3478) or IPv6\n"
		"                       ([::]:3478); repeat for both families\n"
		"  --store URL          share records with other servers through Redis\n"
		"                       (default: in memory, this process only)\n"
		"  --relay-rate N       relay bandwidth per peer in bytes/s; suffixes k, M, G\n"
		"                       (x1024); default 1M.  Only between two peers that\n"
		"                       list each other (docs/NAT.md, consent)\n"
		"  --relay-source-rate N  relay bandwidth per source address (IPv4 address,\n"
		"                       IPv6 /64), all its peers together; default 4 x the\n"
		"                       relay rate\n"
		"  --max-records N      registrations held at most (default %d)\n"
		"  --key FILE           the server's static key (srmudp keygen FILE): clients\n"
		"                       that pin its public key (SRMUDP_RENDEZVOUS=KEY@HOST:PORT)\n"
		"                       accept only answers made with it\n"
		"  --announce ADDR:PORT with --store: the UDP address the other servers reach\n"
		"                       this one at, so the relay joins peers registered on\n"
		"                       different servers (default: the first --listen address,\n"
		"                       unless it is 0.0.0.0 or [::])\n"
		"  --gso off            one datagram per send, no UDP GSO (as SRMUDP_GSO=off for\n"
		"                       engines: a capture on this host then shows each datagram)\n"
		"  --log-level LEVEL    error, warn, info (default) or debug\n"
		"  --log-file FILE      append log lines to FILE (default stderr)\n\n"
		"For clients whose network blocks UDP (SRMUDP_RELAY=ws://, wss://):\n"
		"  --ws-listen ADDR:PORT  TCP address for WebSocket clients (path /srmudp): the\n"
		"                       same registration, lookups and relay as over UDP;\n"
		"                       repeat for both families\n"
		"  --tls-cert FILE      PEM certificate chain: serve wss:// (with --tls-key)\n"
		"  --tls-key FILE       PEM private key of --tls-cert\n"
		"  --ws-max-clients N   WebSocket connections at most (default %d)\n"
		"  --ws-max-per-ip N    connections per IPv4 address or IPv6 /64 (default %d)\n"
		"  --ws-rate N          inbound bytes/s per connection, suffixes as --relay-rate\n"
		"                       (default 2M)\n\n"
		"SIGUSR1 prints the counters on stdout; they are printed at exit too.  SIGHUP\n"
		"(or `srmudp reload`) opens the log file again; other settings need a restart.\n\n"
		"`srmudp rendezvous probe --help`: a one-shot client, to check a server and\n"
		"see this host's public address.\n",
		RDV_DEFAULT_MAX_RECORDS, RDV_WS_DEFAULT_MAX_CLIENTS, RDV_WS_DEFAULT_MAX_PER_IP);
}

/* "1048576", "512k", "10M", "1G" (x1024).  0 or -1. */
static int parse_rate(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	else if (*end == 'g' || *end == 'G')
		mul = 1024 * 1024 * 1024, end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (strcmp(end, "/s") == 0)
		end += 2;
	if (*end != '\0' || v == 0 || v > UINT64_MAX / mul / 1000)
		return -1;
	*out = v * mul;
	return 0;
}

/* A decimal count 1..max.  0 or -1. */
static int parse_count(const char *s, unsigned long long max, size_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '1' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int open_listener(struct listener *l, const struct sockaddr_storage *ss, socklen_t len,
			 const char *text)
{
	int one = 1;

	l->family = ss->ss_family;
	snprintf(l->text, sizeof(l->text), "%s", text);
	l->fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -1;
	/* An IPv4 and an IPv6 wildcard on the same port must coexist. */
	if (ss->ss_family == AF_INET6)
		(void)setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* A relay forwards bursts for many peers: the kernel's default 208 KiB
	 * dropped 11 % of one fast stream's datagrams (docs/BENCHMARKS.md, the
	 * relay section).  The FORCE variants pass rmem_max when we may. */
	int buf = UDP_BUFFER_BYTES;
	if (setsockopt(l->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) != 0)
		(void)setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(l->fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) != 0)
		(void)setsockopt(l->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (bind(l->fd, (const struct sockaddr *)ss, len) != 0) {
		int e = errno;
		close(l->fd);
		errno = e;
		return -1;
	}
	return 0;
}

static bool is_wildcard(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

static void print_stats(const struct rdv_server *s, const struct rdv_store *st,
			const struct rdv_ws *ws)
{
	struct rdv_server_stats c;
	struct rdv_ws_stats w;

	rdv_server_get_stats(s, &c);
	printf("rendezvous stats: store=%s records=%llu rx_packets=%llu rx_bytes=%llu "
	       "tx_packets=%llu tx_bytes=%llu registers=%llu challenges=%llu auth_ok=%llu "
	       "auth_failed=%llu replays=%llu cookie_bad=%llu lookups=%llu found=%llu "
	       "not_found=%llu punches=%llu notes_sent=%llu notes_received=%llu "
	       "relay_packets=%llu relay_bytes=%llu relay_limited=%llu relay_unknown=%llu "
	       "lookup_refused=%llu relay_refused=%llu relay_source_limited=%llu "
	       "rate_limited=%llu malformed=%llu expired=%llu evicted=%llu store_errors=%llu "
	       "mesh_out=%llu mesh_in=%llu mesh_bad=%llu",
	       st->name, (unsigned long long)c.records, (unsigned long long)c.rx_packets,
	       (unsigned long long)c.rx_bytes, (unsigned long long)c.tx_packets,
	       (unsigned long long)c.tx_bytes, (unsigned long long)c.registers,
	       (unsigned long long)c.challenges, (unsigned long long)c.auth_ok,
	       (unsigned long long)c.auth_failed, (unsigned long long)c.replays,
	       (unsigned long long)c.cookie_bad, (unsigned long long)c.lookups,
	       (unsigned long long)c.found, (unsigned long long)c.not_found,
	       (unsigned long long)c.punches, (unsigned long long)c.notes_sent,
	       (unsigned long long)c.notes_received, (unsigned long long)c.relay_packets,
	       (unsigned long long)c.relay_bytes, (unsigned long long)c.relay_limited,
	       (unsigned long long)c.relay_unknown, (unsigned long long)c.lookup_refused,
	       (unsigned long long)c.relay_refused, (unsigned long long)c.relay_source_limited,
	       (unsigned long long)c.rate_limited,
	       (unsigned long long)c.malformed, (unsigned long long)c.expired,
	       (unsigned long long)c.evicted, (unsigned long long)c.store_errors,
	       (unsigned long long)c.mesh_out, (unsigned long long)c.mesh_in,
	       (unsigned long long)c.mesh_bad);
	if (ws != NULL) {
		rdv_ws_get_stats(ws, &w);
#define PRINT_WS(name) printf(" " #name "=%llu", (unsigned long long)w.name);
		RDV_WS_COUNTERS(PRINT_WS)
#undef PRINT_WS
	}
	printf("\n");
	fflush(stdout);
}

/* The socket a packet to `to` leaves through: the one the request came in
 * on when the family matches, else the first of that family. */
static int pick_fd(const struct listener *ls, size_t n, size_t in, const struct rdv_endpoint *to)
{
	if (ls[in].family == to->addr.ss_family)
		return ls[in].fd;
	for (size_t i = 0; i < n; i++)
		if (ls[i].family == to->addr.ss_family)
			return ls[i].fd;
	return -1;
}

/* Where the server's packets go: the loop's sockets, and the WebSocket
 * side.  in: the UDP socket the packet being handled came in on. */
struct loop {
	const struct listener *ls;
	size_t n, in;
	struct rdv_ws *ws;
	struct udp_batch tx; /* UDP datagrams waiting for tx_flush */
};

/* Every waiting datagram leaves (a datagram the kernel will not take now
 * is dropped, as a router would), and what waits for WebSocket clients. */
static void tx_flush(struct loop *l)
{
	if (l->ws != NULL)
		rdv_ws_flush(l->ws);
	(void)udp_batch_flush(&l->tx, NULL, NULL);
}

static void route(void *ctx, const struct rdv_out *o)
{
	struct loop *l = ctx;

	if (o->to.via == RDV_VIA_WS) {
		if (l->ws != NULL)
			rdv_ws_send(l->ws, o, clock_now_ms());
		return;
	}
	int fd = pick_fd(l->ls, l->n, l->in, &o->to);
	if (fd < 0 || o->len > UDP_BATCH_BUF || o->to.len > sizeof(o->to.addr))
		return;
	uint8_t *slot = udp_batch_slot(&l->tx);
	if (slot == NULL) {
		tx_flush(l);
		slot = udp_batch_slot(&l->tx);
	}
	memcpy(slot, o->buf, o->len);
	udp_batch_commit(&l->tx, fd, &o->to.addr, o->to.len, o->len);
}

static void send_all(struct loop *l, size_t in, const struct rdv_out *out, int count)
{
	l->in = in;
	for (int i = 0; i < count; i++)
		route(l, &out[i]);
	l->in = 0;
}

static int serve(struct loop *l, int ep, struct rdv_server *srv, struct rdv_store *st, int sfd,
		 int shared)
{
	const struct listener *ls = l->ls;
	size_t n = l->n;
	struct epoll_event evs[EVENT_BATCH];
	static struct rdv_out out[4];
	static uint8_t buf[RDV_MAX_PACKET + 1];
	uint64_t next_note = 0;

	int cfd = rdv_control_open(ep, n + 1, ls[0].fd); /* srmudp status (rdv_control.c) */
	for (size_t i = 0; i <= n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, i < n ? ls[i].fd : sfd, &ev) != 0) {
			rdv_control_close(cfd);
			return -1;
		}
	}
	for (;;) {
		uint64_t t = clock_now_ms(), d = rdv_server_deadline(srv);
		uint64_t wd = l->ws ? rdv_ws_deadline(l->ws) : UINT64_MAX;
		int k, timeout;

		if (shared && next_note < d)
			d = next_note;
		if (wd <= t) {
			rdv_ws_tick(l->ws, t);
			continue;
		}
		if (d <= t) {
			do {
				k = rdv_server_tick(srv, t, out, 4);
				send_all(l, 0, out, k);
			} while (k == 4);
			next_note = t + RDV_NOTE_POLL_MS;
			continue;
		}
		if (wd < d)
			d = wd;
		timeout = d - t > 60000 ? 60000 : (int)(d - t);
		tx_flush(l); /* what this pass routed, before we sleep */
		k = epoll_wait(ep, evs, EVENT_BATCH, timeout);
		if (k < 0 && errno != EINTR)
			break;
		for (int e = 0; e < k; e++) {
			uint64_t tag = evs[e].data.u64;
			if (tag >= RDV_WS_TAG) {
				rdv_ws_event(l->ws, tag, clock_now_ms());
				continue;
			}
			size_t i = (size_t)tag;
			if (i == n + 1) {
				rdv_control_answer(cfd, srv, st->name, l->ws);
				continue;
			}
			if (i == n) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGUSR1) {
					print_stats(srv, st, l->ws);
					continue;
				}
				if (si.ssi_signo == SIGHUP) {
					/* Settings come from the command line: only the
					 * log file can be taken again (logrotate). */
					log_reopen();
					LOG_INFO(NULL, "rendezvous: SIGHUP: log file reopened");
					continue;
				}
				LOG_INFO(NULL, "rendezvous: %s, stopping", strsignal((int)si.ssi_signo));
				rdv_control_close(cfd);
				return 0;
			}
			for (int b = 0; b < RX_BATCH; b++) {
				struct sockaddr_storage src;
				socklen_t sl = sizeof(src);
				ssize_t r = recvfrom(ls[i].fd, buf, sizeof(buf), 0,
						     (struct sockaddr *)&src, &sl);
				if (r < 0)
					break;
				if ((size_t)r > RDV_MAX_PACKET)
					continue; /* truncated: larger than anything we accept */
				struct rdv_endpoint from = { .addr = src, .len = sl };
				int c = rdv_server_receive(srv, buf, (size_t)r, &from, clock_now_ms(),
							   out, 4);
				if (c > 0)
					send_all(l, i, out, c);
			}
		}
	}
	rdv_control_close(cfd);
	return -1;
}

int cmd_rendezvous(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "store", required_argument, NULL, 's' },
		{ "relay-rate", required_argument, NULL, 'r' },
		{ "relay-source-rate", required_argument, NULL, 'S' },
		{ "max-records", required_argument, NULL, 'm' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-file", required_argument, NULL, 'F' },
		{ "ws-listen", required_argument, NULL, 'w' },
		{ "ws-max-clients", required_argument, NULL, 'W' },
		{ "ws-max-per-ip", required_argument, NULL, 'P' },
		{ "ws-rate", required_argument, NULL, 'R' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "key", required_argument, NULL, 'K' },
		{ "announce", required_argument, NULL, 'A' },
		{ "gso", required_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct listener ls[MAX_LISTEN];
	const char *listen_text[MAX_LISTEN], *store_url = NULL, *log_file = NULL, *key_file = NULL;
	uint8_t key_secret[SRM_KEY_BYTES], key_pub[SRM_KEY_BYTES];
	char key_text[SRM_PUBKEY_TEXT_BYTES];
	struct sockaddr_storage addrs[MAX_LISTEN], announce;
	socklen_t addr_lens[MAX_LISTEN], announce_len = 0;
	struct sockaddr_storage ws_addrs[RDV_WS_MAX_LISTEN];
	socklen_t ws_addr_lens[RDV_WS_MAX_LISTEN];
	const char *ws_text[RDV_WS_MAX_LISTEN];
	size_t nws = 0;
	struct rdv_ws_config wcfg = { 0 };
	struct rdv_ws *ws = NULL;
	static struct loop loop; /* its send batch is 128 KiB: not on the stack */
	int ep = -1;
	struct rdv_server_config cfg = { 0 };
	enum srm_log_level level = SRM_LOG_INFO;
	struct rdv_store *store;
	struct rdv_server *srv = NULL;
	size_t n = 0;
	char q[QUOTE_BUF], err[512];
	sigset_t mask;
	int o, sfd, rc;

	if (argc >= 2 && strcmp(argv[1], "probe") == 0)
		return cmd_rendezvous_probe(argc - 1, argv + 1);
	if (cli_wants_help(argc, argv)) {
		help(stdout);
		return 0;
	}
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			if (n == MAX_LISTEN) {
				cli_error("at most %d --listen addresses", MAX_LISTEN);
				return EXIT_USAGE;
			}
			if (cli_parse_hostport(optarg, 1, &addrs[n], &addr_lens[n]) != 0) {
				cli_error("bad listen address %s (expected A.B.C.D:PORT or [V6]:PORT)",
					  quote_str(q, optarg));
				return EXIT_USAGE;
			}
			listen_text[n++] = optarg;
			break;
		case 's':
			store_url = optarg;
			break;
		case 'r':
		case 'R':
		case 'S':
			if (parse_rate(optarg, o == 'r' ? &cfg.relay_rate :
					       o == 'S' ? &cfg.source_rate : &wcfg.rate) != 0) {
				cli_error("bad %s rate %s (expected bytes/s, e.g. 1M)",
					  o == 'r' ? "relay" : o == 'S' ? "relay source" : "WebSocket",
					  quote_str(q, optarg));
				return EXIT_USAGE;
			}
			break;
		case 'm':
			if (parse_count(optarg, 100000000ULL, &cfg.max_records) != 0) {
				cli_error("bad record limit %s (expected 1 to 100000000)",
					  quote_str(q, optarg));
				return EXIT_USAGE;
			}
			break;
		case 'w':
			if (nws == RDV_WS_MAX_LISTEN) {
				cli_error("at most %d --ws-listen addresses", RDV_WS_MAX_LISTEN);
				return EXIT_USAGE;
			}
			if (cli_parse_hostport(optarg, 1, &ws_addrs[nws], &ws_addr_lens[nws]) != 0) {
				cli_error("bad WebSocket listen address %s (expected A.B.C.D:PORT or "
					  "[V6]:PORT)",
					  quote_str(q, optarg));
				return EXIT_USAGE;
			}
			ws_text[nws++] = optarg;
			break;
		case 'W':
		case 'P':
			if (parse_count(optarg, 1000000ULL,
					o == 'W' ? &wcfg.max_clients : &wcfg.max_per_ip) != 0) {
				cli_error("bad %s limit %s (expected 1 to 1000000)",
					  o == 'W' ? "client" : "per-IP", quote_str(q, optarg));
				return EXIT_USAGE;
			}
			break;
		case 'c':
			wcfg.tls_cert = optarg;
			break;
		case 'k':
			wcfg.tls_key = optarg;
			break;
		case 'K':
			key_file = optarg;
			break;
		case 'G':
			if (strcmp(optarg, "off") != 0 && strcmp(optarg, "auto") != 0) {
				cli_error("bad --gso %s (expected auto or off)", quote_str(q, optarg));
				return EXIT_USAGE;
			}
			loop.tx.gso_off = strcmp(optarg, "off") == 0;
			break;
		case 'A':
			if (cli_parse_hostport(optarg, 0, &announce, &announce_len) != 0) {
				cli_error("bad announce address %s (expected A.B.C.D:PORT or [V6]:PORT)",
					  quote_str(q, optarg));
				return EXIT_USAGE;
			}
			break;
		case 'L':
			if (strcmp(optarg, "error") == 0)
				level = SRM_LOG_ERROR;
			else if (strcmp(optarg, "warn") == 0)
				level = SRM_LOG_WARN;
			else if (strcmp(optarg, "info") == 0)
				level = SRM_LOG_INFO;
			else if (strcmp(optarg, "debug") == 0)
				level = SRM_LOG_DEBUG;
			else {
				cli_error("bad log level %s (expected error, warn, info or debug)",
					  quote_str(q, optarg));
				return EXIT_USAGE;
			}
			break;
		case 'F':
			log_file = optarg;
			break;
		default:
			cli_error("unknown option %s", quote_str(q, argv[optind - 1]));
			help(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("unexpected argument %s", quote_str(q, argv[optind]));
		return EXIT_USAGE;
	}
	if (n == 0) {
		cli_error("--listen ADDR:PORT is required");
		help(stderr);
		return EXIT_USAGE;
	}
	if (announce_len && store_url == NULL) {
		cli_error("--announce needs --store (it tells servers sharing it where this one is)");
		return EXIT_USAGE;
	}
	/* Servers sharing a store relay to each other's registrants: at the
	 * address given, else at the first --listen address if it names one. */
	if (store_url != NULL && !announce_len && !is_wildcard(&addrs[0])) {
		memcpy(&announce, &addrs[0], addr_lens[0]);
		announce_len = addr_lens[0];
	}
	if (announce_len) {
		memcpy(&cfg.mesh_addr.addr, &announce, announce_len);
		cfg.mesh_addr.len = announce_len;
	}
	cfg.wall_offset_ms = (uint64_t)clock_wall_offset_ms();
	if ((wcfg.tls_cert == NULL) != (wcfg.tls_key == NULL)) {
		cli_error("--tls-cert and --tls-key go together");
		return EXIT_USAGE;
	}
	if (nws == 0 && (wcfg.tls_cert != NULL || wcfg.max_clients || wcfg.max_per_ip || wcfg.rate)) {
		cli_error("--tls-cert, --tls-key and --ws-* options need --ws-listen");
		return EXIT_USAGE;
	}
	log_open(level, log_file);
	signal(SIGPIPE, SIG_IGN);

	if (store_url != NULL) {
		store = rdv_store_redis_new(store_url, err, sizeof(err));
		if (store == NULL) {
			cli_error("%s", err);
			return EXIT_CONFIG;
		}
	} else {
		store = rdv_store_memory_new(cfg.max_records ? cfg.max_records
							     : RDV_DEFAULT_MAX_RECORDS);
		if (store == NULL) {
			cli_error("out of memory");
			return EXIT_CONFIG;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (open_listener(&ls[i], &addrs[i], addr_lens[i], listen_text[i]) != 0) {
			cli_error("cannot listen on %s: %s", quote_str(q, listen_text[i]),
				  strerror(errno));
			while (i-- > 0)
				close(ls[i].fd);
			rdv_store_free(store);
			return EXIT_CONFIG;
		}
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (key_file != NULL) {
		err[0] = '\0';
		if (srm_key_load(key_file, key_secret, key_pub, err, sizeof(err)) != 0) {
			explicit_bzero(key_secret, sizeof(key_secret));
			cli_error("--key %s: %s", quote_str(q, key_file), err[0] ? err : "cannot load");
			rc = EXIT_CONFIG;
			goto out;
		}
		cfg.static_secret = key_secret;
		srm_pubkey_encode(key_pub, key_text);
	}
	srv = rdv_server_new(&cfg, store, clock_now_ms());
	explicit_bzero(key_secret, sizeof(key_secret)); /* the server keeps its copy */
	cfg.static_secret = NULL;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0 || srv == NULL) {
		cli_error("cannot start: %s", srv != NULL ? strerror(errno) : "out of memory");
		rc = EXIT_CONFIG;
		goto out;
	}
	loop.ls = ls;
	loop.n = n;
	if (nws > 0) {
		wcfg.route = route;
		wcfg.route_ctx = &loop;
		ws = rdv_ws_new(&wcfg, srv, ep, err, sizeof(err));
		if (ws == NULL) {
			cli_error("%s", err);
			rc = EXIT_CONFIG;
			goto out;
		}
		loop.ws = ws;
		for (size_t i = 0; i < nws; i++) {
			if (rdv_ws_listen(ws, &ws_addrs[i], ws_addr_lens[i], ws_text[i]) != 0) {
				cli_error("cannot listen on %s: %s", quote_str(q, ws_text[i]),
					  strerror(errno));
				rc = EXIT_CONFIG;
				goto out;
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		LOG_INFO(NULL, "rendezvous: listening on %s", ls[i].text);
	LOG_INFO(NULL, "rendezvous: server id %016llx, store %s",
		 (unsigned long long)rdv_server_id(srv), store->name);
	if (key_file != NULL)
		LOG_INFO(NULL, "rendezvous: server key %s (clients pin it: "
			       "SRMUDP_RENDEZVOUS=%s@HOST:PORT)", key_text, key_text);
	rc = serve(&loop, ep, srv, store, sfd, store_url != NULL) == 0 ? 0 : EXIT_CONFIG;
	if (rc != 0)
		cli_error("event loop failed: %s", strerror(errno));
	print_stats(srv, store, ws);
out:
	rdv_ws_free(ws);
	if (ep >= 0)
		close(ep);
	rdv_server_free(srv);
	for (size_t i = 0; i < n; i++)
		close(ls[i].fd);
	if (sfd >= 0)
		close(sfd);
	rdv_store_free(store);
	return rc;
}
