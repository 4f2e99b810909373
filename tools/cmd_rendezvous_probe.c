/*
 * cmd_rendezvous_probe.c — srmudp rendezvous probe: a one-shot client of
 * a rendezvous server, for operators and tests.
 *
 *   srmudp rendezvous probe --server [KEY@]HOST:PORT --key FILE [--lookup PUBKEY]...
 *          [--candidate ADDR:PORT]... [--relay-to PUBKEY --message TEXT]
 *          [--stay SECONDS]
 *
 * Registers with the key (core/protocol/rdv_client.c over one UDP socket), prints
 * the public address the server sees (STUN-like: "is my NAT in the
 * way?"), looks peers up, and prints every event as one line on stdout:
 *   registered reflexive=ADDR
 *   peer PUBKEY candidates=ADDR,ADDR,...
 *   punch-request PUBKEY candidates=ADDR,...
 *   notfound PUBKEY
 *   relayed PUBKEY bytes=N text=TEXT
 * It does not punch or open sessions: that is the engine's job.  Exit 0
 * when registered and every lookup was answered, 1 otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "noise.h"
#include "rendezvous.h"
#include "clock.h"

#define MAX_LOOKUPS 8
#define DEFAULT_WAIT_MS 5000 /* registration and lookups, without --stay */

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void help(FILE *f)
{
	fprintf(f, "Usage: srmudp rendezvous probe --server [KEY@]HOST:PORT --key FILE [--lookup PUBKEY]...\n"
		   "                               [--candidate ADDR:PORT]... [--stay SECONDS]\n"
		   "                               [--relay-to PUBKEY --message TEXT] [--allow PUBKEY]...\n\n"
		   "Register with a rendezvous server under the key in FILE, print the public\n"
		   "address it sees, look peers up, and print every event as one line.  With\n"
		   "--stay, keep registered (and print punch requests and relayed packets) for\n"
		   "that long.  The registration consents to meet the keys of --lookup,\n"
		   "--relay-to and --allow (the server answers a lookup and relays only when\n"
		   "both sides list each other).  KEY@ pins the server's public key (srmudp\n"
		   "rendezvous --key): only answers made with its secret count.  Exit 0 when\n"
		   "registered and every lookup was answered.\n");
}

/* HOST:PORT or [V6]:PORT, names allowed (resolved once). */
static int resolve(const char *s, struct rdv_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	return cli_parse_hostport(s, 0, &ep->addr, &ep->len);
}

static void print_endpoints(const struct rdv_event *ev)
{
	char a[64];

	printf(" candidates=");
	for (size_t i = 0; i < ev->endpoint_count; i++)
		printf("%s%s", i ? "," : "", rdv_endpoint_str(&ev->endpoints[i], a, sizeof(a)));
	printf("\n");
}

/* Printable prefix of a relayed inner packet after its wire header. */
static void print_text(const uint8_t *p, size_t len)
{
	printf(" text=");
	for (size_t i = WIRE_HEADER_BYTES; i < len && i < 200; i++)
		putchar(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?');
	printf("\n");
}

int cmd_rendezvous_probe(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },
		{ "lookup", required_argument, NULL, 'l' },
		{ "candidate", required_argument, NULL, 'c' },
		{ "relay-to", required_argument, NULL, 'r' },
		{ "message", required_argument, NULL, 'm' },
		{ "stay", required_argument, NULL, 't' },
		{ "allow", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *server = NULL, *key = NULL, *message = NULL;
	uint8_t lookups[MAX_LOOKUPS][RDV_KEY_BYTES], relay_to[RDV_KEY_BYTES];
	uint8_t allow[RDV_MAX_ALLOW][RDV_KEY_BYTES]; /* consent: every key named */
	size_t na = 0;
	int answered[MAX_LOOKUPS] = { 0 };
	struct rdv_endpoint cands[RDV_MAX_CANDIDATES], srv;
	size_t nl = 0, nc = 0;
	int have_relay = 0, registered = 0, relay_sent = 0, o, fd = -1, rc = EXIT_CONFIG;
	uint64_t stay_ms = 0;
	uint8_t secret[SRM_KEY_BYTES], pub[SRM_KEY_BYTES];
	struct identity id;
	struct rdv_client *c = NULL;
	char q[QUOTE_BUF], err[300], kt[SRM_PUBKEY_TEXT_BYTES];

	if (cli_wants_help(argc, argv)) {
		help(stdout);
		return 0;
	}
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case 's': server = optarg; break;
		case 'k': key = optarg; break;
		case 'm': message = optarg; break;
		case 'l':
		case 'r':
		case 'a': {
			uint8_t *dst = o == 'r' ? relay_to : lookups[nl];
			if (o == 'l' && nl == MAX_LOOKUPS) {
				cli_error("at most %d --lookup", MAX_LOOKUPS);
				return EXIT_USAGE;
			}
			if (na == RDV_MAX_ALLOW) {
				cli_error("at most %d keys in all", RDV_MAX_ALLOW);
				return EXIT_USAGE;
			}
			if (srm_pubkey_decode(optarg, allow[na]) != 0) {
				cli_error("bad public key %s", quote_str(q, optarg));
				return EXIT_USAGE;
			}
			na++;
			if (o == 'a')
				break;
			memcpy(dst, allow[na - 1], RDV_KEY_BYTES);
			if (o == 'l')
				nl++;
			else
				have_relay = 1;
			break;
		}
		case 'c':
			if (nc == RDV_MAX_CANDIDATES || resolve(optarg, &cands[nc]) != 0) {
				cli_error("bad candidate %s", quote_str(q, optarg));
				return EXIT_USAGE;
			}
			nc++;
			break;
		case 't': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end != '\0' || v > 86400) {
				cli_error("bad --stay %s (seconds)", quote_str(q, optarg));
				return EXIT_USAGE;
			}
			stay_ms = v * 1000;
			break;
		}
		default:
			cli_error("unknown option %s", quote_str(q, argv[optind - 1]));
			help(stderr);
			return EXIT_USAGE;
		}
	}
	if (server == NULL || key == NULL || optind < argc || (have_relay && message == NULL)) {
		help(stderr);
		return EXIT_USAGE;
	}
	/* KEY@HOST:PORT pins the server's key, as SRMUDP_RENDEZVOUS does. */
	const char *at = strchr(server, '@');
	char server_key_text[SRM_PUBKEY_TEXT_BYTES + 8];
	uint8_t server_pub[RDV_KEY_BYTES];
	if (at != NULL) {
		size_t kl = (size_t)(at - server);
		if (kl == 0 || kl >= sizeof(server_key_text)) {
			cli_error("bad server key in %s (expected KEY@HOST:PORT)", quote_str(q, server));
			return EXIT_USAGE;
		}
		memcpy(server_key_text, server, kl);
		server_key_text[kl] = '\0';
		if (srm_pubkey_decode(server_key_text, server_pub) != 0) {
			cli_error("bad server key in %s (expected KEY@HOST:PORT)", quote_str(q, server));
			return EXIT_USAGE;
		}
	}
	if (resolve(at ? at + 1 : server, &srv) != 0) {
		cli_error("cannot resolve server %s", quote_str(q, server));
		return EXIT_USAGE;
	}
	if (sodium_init() < 0 || srm_key_load(key, secret, pub, err, sizeof(err)) != 0) {
		cli_error("%s", err);
		return EXIT_CONFIG;
	}
	if (identity_init(&id, secret) != 0) {
		sodium_memzero(secret, sizeof(secret));
		cli_error("unusable key in %s", quote_str(q, key));
		return EXIT_CONFIG;
	}
	sodium_memzero(secret, sizeof(secret));
	fd = socket(srv.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint64_t start = clock_now_ms();
	struct rdv_client_config cc = { .id = &id, .wall_offset_ms = wall_ms() - start };
	c = rdv_client_new(&cc, start);
	if (c != NULL)
		rdv_client_relink(c, at ? server_pub : NULL, start);
	if (fd < 0 || c == NULL || rdv_client_set_candidates(c, cands, nc, start) != 0 ||
	    rdv_client_set_peers(c, (const uint8_t(*)[RDV_KEY_BYTES])allow, na, start) != 0) {
		cli_error("cannot start: %s", fd < 0 ? strerror(errno) : "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nl; i++)
		(void)rdv_client_lookup(c, lookups[i], start);
	uint64_t end = start + (stay_ms ? stay_ms : DEFAULT_WAIT_MS);
	for (;;) {
		uint64_t now = clock_now_ms();
		uint8_t pkt[RDV_MAX_PACKET];
		size_t len;
		int all = registered;
		for (size_t i = 0; i < nl; i++)
			all = all && answered[i];
		if (now >= end || (stay_ms == 0 && all && (!have_relay || relay_sent)))
			break;
		while ((len = rdv_client_poll(c, now, pkt, sizeof(pkt))) > 0)
			(void)sendto(fd, pkt, len, 0, (struct sockaddr *)&srv.addr, srv.len);
		if (registered && have_relay && !relay_sent) {
			uint8_t inner[RDV_MAX_PACKET];
			size_t ml = strlen(message);
			if (ml > 1000)
				ml = 1000;
			wire_put_header(inner, WIRE_DATA);
			memcpy(inner + WIRE_HEADER_BYTES, message, ml);
			len = rdv_client_wrap_relay(c, relay_to, inner, ml + WIRE_HEADER_BYTES, pkt,
						    sizeof(pkt));
			if (len > 0)
				(void)sendto(fd, pkt, len, 0, (struct sockaddr *)&srv.addr, srv.len);
			relay_sent = 1;
		}
		uint64_t d = rdv_client_deadline(c);
		int timeout = d <= now ? 0 : d - now > 200 ? 200 : (int)(d - now);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, timeout) <= 0)
			continue;
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&from, &fl);
		struct rdv_endpoint fe = { .len = fl };
		memcpy(&fe.addr, &from, sizeof(from));
		if (r <= 0 || !rdv_endpoint_equal(&fe, &srv))
			continue; /* only the server speaks this protocol to us */
		struct rdv_event ev;
		if (rdv_client_receive(c, pkt, (size_t)r, clock_now_ms(), &ev) != 1)
			continue;
		char a[64];
		srm_pubkey_encode(ev.peer, kt);
		switch (ev.type) {
		case RDV_EV_REGISTERED:
			if (!registered)
				printf("registered reflexive=%s\n",
				       rdv_endpoint_str(&ev.reflexive, a, sizeof(a)));
			registered = 1;
			break;
		case RDV_EV_PEER_CANDIDATES:
		case RDV_EV_PEER_NOTFOUND:
			for (size_t i = 0; i < nl; i++)
				if (memcmp(lookups[i], ev.peer, RDV_KEY_BYTES) == 0)
					answered[i] = 1;
			if (ev.type == RDV_EV_PEER_NOTFOUND) {
				printf("notfound %s\n", kt);
			} else {
				printf("peer %s", kt);
				print_endpoints(&ev);
			}
			break;
		case RDV_EV_PUNCH_REQUEST:
			printf("punch-request %s", kt);
			print_endpoints(&ev);
			break;
		case RDV_EV_RELAYED:
			printf("relayed %s bytes=%zu", kt, ev.inner_len);
			print_text(ev.inner, ev.inner_len);
			break;
		default:
			break;
		}
		fflush(stdout);
	}
	rc = registered ? 0 : EXIT_CONFIG;
	for (size_t i = 0; i < nl; i++)
		if (!answered[i])
			rc = EXIT_CONFIG;
	if (!registered)
		cli_error("no answer from %s", quote_str(q, server));
out:
	rdv_client_free(c);
	identity_wipe(&id);
	if (fd >= 0)
		close(fd);
	return rc;
}
