/* sec_fake_rdv.c — test_attack.sh part 6: a malicious rendezvous server
 * that names a bystander as every peer's address (issue 18 item 10).
 *
 *   sec_fake_rdv LISTEN_IP PORT VICTIM_IP VICTIM_PORT [KEYFILE]
 *
 * It runs the real server (rdv_server.c), so registration, lookups, punch
 * requests and the relay behave exactly as in `srmudp rendezvous`; only the
 * record store lies: every record it hands back has its reflexive address
 * and every candidate replaced by VICTIM:PORT.  Peers that do not pin the
 * server's key believe it and aim their punching (and hard-NAT probing) at
 * the victim.  KEYFILE (srmudp keygen) makes it a keyed server, as a real
 * attacker's would be: with its own key, not the one the peers pinned.
 *
 * Logs the server's usual lines on stderr; at SIGTERM/SIGINT prints one
 * line of counters on stdout.  Nothing secret is printed (the key's secret
 * half is wiped as soon as the server has its copy).  Only for addresses
 * inside the lab. */
#define _GNU_SOURCE
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "clock.h"
#include "log.h"
#include "rendezvous.h"

#define OUT_CAP 4 /* what `srmudp rendezvous` gives it (receive writes at most 2) */
#define RX_BATCH 64

static const struct rdv_store_ops *inner_ops;
static struct rdv_endpoint victim;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The one lie: the record is real (its key, timestamps and consent tags
 * are untouched, so the server's own checks still pass), its addresses are
 * the victim's.  The count of candidates is kept: every one the peer
 * announced now names VICTIM:PORT. */
static int lying_get(void *ctx, const uint8_t pub[RDV_KEY_BYTES], uint64_t now_ms,
		     struct rdv_record *out)
{
	int rc = inner_ops->get(ctx, pub, now_ms, out);
	if (rc == 0) {
		out->reflexive = victim;
		for (size_t i = 0; i < out->cand_count; i++)
			out->cands[i] = victim;
	}
	return rc;
}

/* A numeric IPv4 or IPv6 address and a port. */
static int endpoint(const char *ip, const char *port, struct rdv_endpoint *ep)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = SOCK_DGRAM };
	struct addrinfo *ai;
	if (getaddrinfo(ip, port, &hints, &ai) != 0)
		return -1;
	memset(ep, 0, sizeof(*ep));
	memcpy(&ep->addr, ai->ai_addr, ai->ai_addrlen);
	ep->len = ai->ai_addrlen;
	ep->via = RDV_VIA_UDP;
	freeaddrinfo(ai);
	return 0;
}

static void send_out(int fd, const struct rdv_out *out, int n)
{
	for (int i = 0; i < n; i++)
		(void)sendto(fd, out[i].buf, out[i].len, 0, (const struct sockaddr *)&out[i].to.addr,
			     out[i].to.len);
}

int main(int argc, char **argv)
{
	struct rdv_endpoint listen_ep;
	struct rdv_server_config cfg = { 0 };
	uint8_t secret[RDV_KEY_BYTES], pub[RDV_KEY_BYTES];
	static struct rdv_out out[OUT_CAP];
	static uint8_t buf[RDV_MAX_PACKET + 1];
	char err[256];

	if ((argc != 5 && argc != 6) || endpoint(argv[1], argv[2], &listen_ep) != 0 ||
	    endpoint(argv[3], argv[4], &victim) != 0) {
		fprintf(stderr, "usage: %s LISTEN_IP PORT VICTIM_IP VICTIM_PORT [KEYFILE]\n", argv[0]);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	log_open(SRM_LOG_INFO, NULL);
	if (argc == 6) {
		if (srm_key_load(argv[5], secret, pub, err, sizeof(err)) != 0) {
			fprintf(stderr, "sec_fake_rdv: %s\n", err[0] ? err : "cannot load the key");
			return 1;
		}
		cfg.static_secret = secret;
	}

	/* The lying store: the memory store with get wrapped.  Copying its
	 * whole ops table forwards every other operation, including any
	 * added to struct rdv_store_ops later. */
	struct rdv_store *inner = rdv_store_memory_new(1024);
	if (inner == NULL)
		return 1;
	inner_ops = inner->ops;
	struct rdv_store_ops lying_ops = *inner->ops;
	lying_ops.get = lying_get;
	struct rdv_store lying = *inner;
	lying.ops = &lying_ops;

	struct rdv_server *srv = rdv_server_new(&cfg, &lying, clock_now_ms());
	sodium_memzero(secret, sizeof(secret)); /* the server keeps its own copy */
	int fd = socket(listen_ep.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv == NULL || fd < 0 ||
	    bind(fd, (const struct sockaddr *)&listen_ep.addr, listen_ep.len) != 0) {
		perror("sec_fake_rdv");
		return 1;
	}
	/* No SA_RESTART: the signal interrupts poll at once. */
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "sec_fake_rdv: on %s:%s (%s), every peer reported at %s:%s\n", argv[1],
		argv[2], argc == 6 ? "keyed" : "no key", argv[3], argv[4]);

	while (!stop) {
		uint64_t now = clock_now_ms(), d = rdv_server_deadline(srv);
		if (d <= now) {
			/* Expiry and key rotation; a lone memory store holds no
			 * punch notes (they are for other servers), so one call
			 * has written everything. */
			send_out(fd, out, rdv_server_tick(srv, now, out, OUT_CAP));
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		/* At most 1 s, so a signal that lands just before poll is seen. */
		if (poll(&p, 1, d - now > 1000 ? 1000 : (int)(d - now)) <= 0)
			continue;
		for (int i = 0; i < RX_BATCH; i++) {
			struct rdv_endpoint src = { .len = sizeof(src.addr), .via = RDV_VIA_UDP };
			ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&src.addr,
					     &src.len);
			if (r < 0)
				break;
			if ((size_t)r > RDV_MAX_PACKET)
				continue; /* truncated: larger than anything the server accepts */
			int n = rdv_server_receive(srv, buf, (size_t)r, &src, clock_now_ms(), out,
						   OUT_CAP);
			if (n > 0)
				send_out(fd, out, n);
		}
	}

	struct rdv_server_stats st;
	rdv_server_get_stats(srv, &st);
	printf("auth_ok=%llu auth_failed=%llu lookups=%llu found=%llu punches=%llu "
	       "relay_packets=%llu\n",
	       (unsigned long long)st.auth_ok, (unsigned long long)st.auth_failed,
	       (unsigned long long)st.lookups, (unsigned long long)st.found,
	       (unsigned long long)st.punches, (unsigned long long)st.relay_packets);
	rdv_server_free(srv);
	rdv_store_free(inner);
	close(fd);
	return 0;
}
