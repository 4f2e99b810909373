/*
 * cmd_forward.c — srmudp forward [ADDR:]PORT NAME:PORT: a local TCP port
 * forwarder, like `ssh -L` or kcptun's client.
 *
 * For programs that cannot be wrapped at all, and for users who want a
 * plain port: every TCP connection accepted on ADDR:PORT (127.0.0.1 unless
 * told otherwise: a forwarder open to the LAN would hand the peer to
 * anyone there) becomes one stream to PORT on peer NAME, all over one
 * engine.  The engine bridges the accepted socket itself (srm_stream_open
 * takes any stream socket), so this loop only accepts: no copy, no buffer,
 * no thread per connection.  A stream the peer refuses, or that the peer
 * aborts, resets the local connection, as a refused or reset TCP port
 * would.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

/* Connections accepted per wake-up before the signal pipe gets a look. */
#define ACCEPT_BATCH 64

static void help(FILE *f)
{
	fprintf(f,
		"Usage: srmudp forward [ADDR:]PORT NAME:PORT\n\n"
		"Listen on TCP ADDR:PORT (default 127.0.0.1; [::1] or 0.0.0.0 also work)\n"
		"and carry each connection accepted there as a stream to PORT on peer NAME\n"
		"(from SRMUDP_PEERS), all over one engine.  A refused or reset stream resets\n"
		"the local connection.  For programs that cannot be wrapped by `srmudp run`:\n"
		"  srmudp forward 6380 db:6379 &   redis-cli -p 6380\n\n"
		"SIGHUP, SIGINT or SIGTERM stop accepting, let open streams finish (up to\n"
		"SRMUDP_IDLE_TIMEOUT) and exit 0.  Exit status: 1 configuration or engine\n"
		"error, 2 usage error.\n");
}

/* "PORT", "ADDR:PORT" or "[V6]:PORT"; a bare port means 127.0.0.1. */
static int parse_local(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	uint16_t port;
	if (strchr(s, ':') == NULL) {
		if (cli_parse_port(s, &port) != 0)
			return SRM_ERR_INVALID;
		struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
		memset(ss, 0, sizeof(*ss));
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*v4);
		return 0;
	}
	return cli_parse_hostport(s, 1, ss, len);
}

/* "NAME:PORT" (NAME as `srmudp connect` takes it) into name and port. */
static int parse_target(const char *s, char name[SRM_PEER_NAME_MAX + 1], uint16_t *port)
{
	char typed[SRM_PEER_NAME_MAX + 16];
	const char *colon = strrchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : 0;
	if (!colon || n == 0 || n >= sizeof(typed) || cli_parse_port(colon + 1, port) != 0)
		return SRM_ERR_INVALID;
	memcpy(typed, s, n);
	typed[n] = '\0';
	return cli_peer_name(typed, name) == 0 ? 0 : SRM_ERR_INVALID;
}

static int listen_on(const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Hand every waiting connection to the engine. */
static void accept_all(srm_engine *e, int lfd, int peer, const char *name, uint16_t port)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				LOG_WARN(NULL, "forward: accept: %s", strerror(errno));
			return;
		}
		uint64_t stream;
		/* The engine owns fd from here, even when this fails. */
		int rc = srm_stream_open(e, peer, port, fd, 0, &stream);
		if (rc != 0)
			LOG_INFO(name, "forward: stream to port %u not opened: %s", port,
				 srm_strerror(rc));
		else
			LOG_DEBUG(name, "forward: connection -> port %u", port);
	}
}

int cmd_forward(int argc, char **argv)
{
	struct sockaddr_storage local;
	socklen_t local_len;
	char q[QUOTE_BUF], name[SRM_PEER_NAME_MAX + 1];
	uint16_t port;
	srm_engine *e = NULL;

	if (cli_wants_help(argc, argv)) {
		help(stdout);
		return 0;
	}
	if (argc != 3) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (parse_local(argv[1], &local, &local_len) != 0) {
		cli_error("bad local address %s (expected PORT, ADDR:PORT or [V6]:PORT)",
			  quote_str(q, argv[1]));
		return EXIT_USAGE;
	}
	if (parse_target(argv[2], name, &port) != 0) {
		cli_error("bad target %s (expected NAME:PORT)", quote_str(q, argv[2]));
		return EXIT_USAGE;
	}
	int lfd = listen_on(&local, local_len);
	if (lfd < 0) {
		cli_error("cannot listen on %s: %s", quote_str(q, argv[1]), strerror(errno));
		return EXIT_CONFIG;
	}
	uint32_t idle_ms;
	if (cli_start_engine(&e, &idle_ms) != 0) {
		close(lfd);
		return EXIT_CONFIG;
	}
	int peer = srm_peer_find(e, name), sig_fd = peer < 0 ? -1 : cli_signal_pipe();
	if (sig_fd < 0) {
		if (peer < 0)
			cli_error("no peer named %s in SRMUDP_PEERS", quote_str(q, name));
		else
			cli_error("pipe: %s", strerror(errno));
		srm_engine_stop(e);
		close(lfd);
		return EXIT_CONFIG;
	}
	LOG_INFO(NULL, "forward: %s -> %s port %u", argv[1], name, port);
	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
				       { .fd = sig_fd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents)
			accept_all(e, lfd, peer, name, port);
	}
	close(lfd);
	LOG_INFO(NULL, "forward: stopping; open streams may finish");
	srm_engine_drain(e, (int)idle_ms);
	srm_engine_stop(e);
	return 0;
}
