/*
 * cmd_connect.c — srmudp connect NAME PORT: stdin/stdout <-> a stream.
 *
 * Made for `ssh -o ProxyCommand='srmudp connect %h %p' NAME`, and usable
 * like `nc`.  The stream is one end of an AF_UNIX socket pair (the engine
 * owns the other end); a poll loop copies stdin to it and it to stdout.
 * End of stdin half-closes the stream (shutdown SHUT_WR), like TCP; the
 * program ends once the peer's end of stream has reached stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

#define EXIT_OPEN_FAILED 3 /* refused, timed out, unreachable */
#define EXIT_RESET 4       /* the stream was aborted after it opened */
/* Per direction; large enough that the socket pair, not us, sets the pace. */
#define BRIDGE_BUF (64 * 1024)

static void help(FILE *f)
{
	fprintf(f,
		"Usage: srmudp connect NAME PORT\n\n"
		"Open a stream to PORT on peer NAME (from SRMUDP_PEERS; NAME.srmudp works too)\n"
		"and copy stdin to it and it to stdout.  End of stdin half-closes the stream;\n"
		"the command ends when the peer's side has ended and its data is written out.\n"
		"For ssh:\n"
		"  ssh -o ProxyCommand='srmudp connect %%h %%p' NAME\n"
		"or, in ~/.ssh/config, for every NAME.srmudp:\n"
		"  Host *.srmudp\n"
		"      ProxyCommand srmudp connect %%h %%p\n\n"
		"Exit status: 0 clean end, 1 configuration or engine error, 2 usage error,\n"
		"3 the stream could not be opened, 4 the stream was reset, 128+N after\n"
		"signal N (SIGHUP, SIGINT, SIGTERM abort the stream).\n");
}

struct buf {
	char data[BRIDGE_BUF];
	size_t off, len;
};

/* Non-blocking stdin/stdout, restored at exit.  Terminals are left alone:
 * their flags are shared with the shell, and blocking writes to them are
 * harmless. */
static int saved_flags[2] = { -1, -1 };

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || isatty(fd))
		return;
	saved_flags[fd] = fl;
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void restore_flags(void)
{
	for (int fd = 0; fd < 2; fd++)
		if (saved_flags[fd] >= 0)
			fcntl(fd, F_SETFL, saved_flags[fd]);
}

/* SIGHUP (ssh sends it to its ProxyCommand when it is done), SIGINT and
 * SIGTERM end the bridge through this pipe, so the stream is aborted and
 * the peer told, instead of the peer waiting for the idle timeout. */
static int sig_fd = -1;

static int would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* The copy loop.  Returns 0 at a clean end, EXIT_RESET if the stream was
 * reset, 1 on a local error, 128 + N after signal N. */
static int bridge(int sock)
{
	static struct buf up, down; /* stdin->sock, sock->stdout */
	int in_eof = 0, shut = 0, sock_eof = 0;

	for (;;) {
		struct pollfd p[4] = {
			{ .fd = STDIN_FILENO, .events = 0 },
			{ .fd = sock, .events = 0 },
			{ .fd = STDOUT_FILENO, .events = 0 },
			{ .fd = sig_fd, .events = POLLIN },
		};
		ssize_t n;

		if (sock_eof && down.len == 0)
			return 0;
		if (!in_eof && up.len == 0)
			p[0].events = POLLIN;
		if (!sock_eof && down.len == 0)
			p[1].events |= POLLIN;
		if (up.len > 0)
			p[1].events |= POLLOUT;
		if (down.len > 0)
			p[2].events = POLLOUT;
		if (p[0].events == 0)
			p[0].fd = -1;
		if (p[2].events == 0)
			p[2].fd = -1;
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			cli_error("poll: %s", strerror(errno));
			return 1;
		}
		if (p[3].revents & POLLIN) {
			unsigned char sig = 0;

			if (read(sig_fd, &sig, 1) == 1)
				return 128 + sig;
		}
		if (p[0].revents) {
			n = read(STDIN_FILENO, up.data, sizeof(up.data));
			if (n > 0) {
				up.off = 0;
				up.len = (size_t)n;
			} else if (n == 0 || !would_block()) {
				in_eof = 1; /* EOF, or stdin unusable: end our side */
			}
		}
		if (up.len > 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			n = send(sock, up.data + up.off, up.len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				up.off += (size_t)n;
				up.len -= (size_t)n;
			} else if (n < 0 && !would_block()) {
				if (errno == ECONNRESET)
					return EXIT_RESET;
				/* The stream takes no more data; keep reading it. */
				in_eof = shut = 1;
				up.len = 0;
			}
		}
		if (in_eof && up.len == 0 && !shut) {
			shutdown(sock, SHUT_WR);
			shut = 1;
		}
		if (down.len == 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) {
			n = recv(sock, down.data, sizeof(down.data), MSG_DONTWAIT);
			if (n > 0) {
				down.off = 0;
				down.len = (size_t)n;
			} else if (n == 0) {
				sock_eof = 1;
			} else if (!would_block()) {
				return errno == ECONNRESET ? EXIT_RESET : 1;
			}
		}
		if (down.len > 0 && p[2].revents) {
			n = write(STDOUT_FILENO, down.data + down.off, down.len);
			if (n > 0) {
				down.off += (size_t)n;
				down.len -= (size_t)n;
			} else if (n < 0 && !would_block()) {
				/* Nobody reads our output any more: stop. */
				if (errno != EPIPE)
					cli_error("stdout: %s", strerror(errno));
				return 1;
			}
		}
	}
}

static const char *open_failure(int rc)
{
	switch (rc) {
	case SRM_ERR_REFUSED:
		return "connection refused (nothing listens on that port at the peer)";
	case SRM_ERR_TIMEOUT:
		return "timed out (the peer did not answer; see SRMUDP_CONNECT_TIMEOUT)";
	case SRM_ERR_UNREACHABLE:
		return "unreachable (no session: check the peer's endpoint and public key)";
	case SRM_ERR_RESET:
		return "reset by the peer";
	default:
		return srm_strerror(rc);
	}
}

int cmd_connect(int argc, char **argv)
{
	char q[QUOTE_BUF], name[SRM_PEER_NAME_MAX + 1];
	srm_engine *e = NULL;
	uint64_t stream = 0;
	uint16_t port;
	int sv[2], peer, rc, status;

	if (cli_wants_help(argc, argv)) {
		help(stdout);
		return 0;
	}
	if (argc != 3) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (cli_parse_port(argv[2], &port) != 0) {
		cli_error("bad port %s (expected 1 to 65535)", quote_str(q, argv[2]));
		return EXIT_USAGE;
	}
	if (cli_peer_name(argv[1], name) != 0) {
		cli_error("no peer named %s in SRMUDP_PEERS", quote_str(q, argv[1]));
		return EXIT_CONFIG;
	}

	uint32_t idle_ms;
	if (cli_start_engine(&e, &idle_ms) != 0)
		return EXIT_CONFIG;
	peer = srm_peer_find(e, name);
	if (peer < 0) {
		cli_error("no peer named %s in SRMUDP_PEERS", quote_str(q, argv[1]));
		srm_engine_stop(e);
		return EXIT_CONFIG;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		cli_error("socketpair: %s", strerror(errno));
		srm_engine_stop(e);
		return EXIT_CONFIG;
	}
	rc = srm_stream_open(e, peer, port, sv[1], 0, &stream);
	if (rc == 0)
		rc = srm_stream_wait(e, stream, -1);
	if (rc != 0) {
		cli_error("%s port %u: %s", quote_str(q, name), port, open_failure(rc));
		close(sv[0]);
		srm_engine_stop(e);
		return rc == SRM_ERR_NOTFOUND || rc == SRM_ERR_NOMEM || rc == SRM_ERR_CLOSED
			       ? EXIT_CONFIG
			       : EXIT_OPEN_FAILED;
	}
	set_nonblock(STDIN_FILENO);
	set_nonblock(STDOUT_FILENO);
	sig_fd = cli_signal_pipe();
	status = bridge(sv[0]);
	restore_flags();
	if (status > 128) {
		srm_stream_abort(e, stream); /* interrupted: tell the peer */
	} else if (status == EXIT_RESET || srm_stream_state(e, stream) == SRM_ERR_RESET) {
		cli_error("%s port %u: stream reset by the peer", quote_str(q, name), port);
		status = EXIT_RESET;
	} else if (status != 0) {
		srm_stream_abort(e, stream);
	}
	close(sv[0]);
	/* Our side ended cleanly: let the engine deliver its last bytes and
	 * the FIN before the process goes (bounded by the idle timeout). */
	if (status == 0)
		srm_engine_drain(e, (int)idle_ms);
	srm_engine_stop(e);
	return status;
}
