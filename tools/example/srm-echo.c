/*
 * srm-echo — a native program using the engine's public API, no preload.
 *
 *   srm-echo serve PORT         echo every stream opened to PORT back to its peer
 *   srm-echo send PEER PORT     send stdin to PEER:PORT, print what comes back
 *
 * Configuration comes from the same SRMUDP_* environment as the preload
 * (docs/CONFIG.md).  Build: make (it is build/srm-echo); or against an
 * installed tree: cc srm-echo.c $(pkg-config --cflags --libs srmudp).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "srmudp.h"

#define MAX_CLIENTS 64

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Echo server: streams arrive as fds through srm_accept(). */
static int serve(srm_engine *e, uint16_t port)
{
	int lfd = srm_listen(e, port, NULL, 0);
	if (lfd < 0) {
		fprintf(stderr, "srm-echo: listen %u: %s\n", port, srm_strerror(lfd));
		return 1;
	}
	struct pollfd fds[1 + MAX_CLIENTS];
	int n = 1;
	fds[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	while (!stop) {
		if (poll(fds, (nfds_t)n, 500) < 0 && errno != EINTR)
			break;
		if ((fds[0].revents & POLLIN) && n < 1 + MAX_CLIENTS) {
			int peer;
			int fd = srm_accept(e, port, &peer);
			if (fd >= 0)
				fds[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		}
		for (int i = 1; i < n; i++) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[65536];
			ssize_t r = read(fds[i].fd, buf, sizeof(buf));
			/* Blocking writes keep it simple: the stream's own
			 * backpressure paces us. */
			if (r > 0 && write(fds[i].fd, buf, (size_t)r) == r)
				continue;
			close(fds[i].fd);
			fds[i--] = fds[--n];
		}
	}
	return 0;
}

/* Client: open a stream, send stdin, half-close, print the echo. */
static int send_stdin(srm_engine *e, const char *name, uint16_t port)
{
	int peer = srm_peer_find(e, name);
	if (peer < 0) {
		fprintf(stderr, "srm-echo: no peer named \"%s\" in SRMUDP_PEERS\n", name);
		return 1;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return 1;
	uint64_t stream;
	int rc = srm_stream_open(e, peer, port, sv[1], 0, &stream);
	if (rc == 0)
		rc = srm_stream_wait(e, stream, -1);
	if (rc != 0) {
		fprintf(stderr, "srm-echo: %s:%u: %s\n", name, port, srm_strerror(rc));
		return 1;
	}
	int fd = sv[0];
	struct pollfd fds[2] = { { .fd = 0, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
	while (!stop) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		char buf[65536];
		if (fds[0].revents) {
			ssize_t r = read(0, buf, sizeof(buf));
			if (r <= 0) {
				shutdown(fd, SHUT_WR);
				fds[0].fd = -1;
			} else if (write(fd, buf, (size_t)r) != r) {
				break;
			}
		}
		if (fds[1].revents) {
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r <= 0)
				break;
			if (fwrite(buf, 1, (size_t)r, stdout) != (size_t)r)
				break;
		}
	}
	fflush(stdout);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[1], "serve") && strcmp(argv[1], "send")) ||
	    (!strcmp(argv[1], "send") && argc < 4)) {
		fprintf(stderr, "usage: srm-echo serve PORT | srm-echo send PEER PORT\n");
		return 2;
	}
	struct srm_config cfg;
	char err[512];
	if (srm_config_from_env(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "srm-echo: %s\n", err);
		return 1;
	}
	srm_engine *e;
	if (srm_engine_start(&cfg, &e, err, sizeof(err)) != 0) {
		fprintf(stderr, "srm-echo: %s\n", err);
		srm_config_free(&cfg);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	int rc = !strcmp(argv[1], "serve") ? serve(e, (uint16_t)atoi(argv[2]))
					   : send_stdin(e, argv[2], (uint16_t)atoi(argv[3]));
	srm_engine_stop(e);
	srm_config_free(&cfg);
	return rc;
}
