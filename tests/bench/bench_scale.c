/*
 * bench_scale — memory per idle stream and per peer, through the public
 * API (core/srmudp.h), all on loopback.
 *
 * The parent runs one engine that knows NPEERS peers and accepts on one
 * port; a forked child runs NPEERS client engines (one identity each) and
 * opens NSTREAMS streams spread over them, each bridged to a socketpair
 * (srm_stream_open), as the preload does for a connect().  The
 * application ends go to a holder process (see holder_run).  Each side reads
 * its own VmRSS (/proc/self/status) at three points:
 *   base     engines started, no session
 *   peers    one session and one open stream per peer
 *   streams  NSTREAMS idle streams
 * per peer   = (peers - base) / NPEERS          (one stream each included)
 * per stream = (streams - peers) / (NSTREAMS - NPEERS)
 *
 *   bench_scale DIR [NPEERS [NSTREAMS]]     prints key value lines
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "srmudp.h"

#define PORT 7000
#define BATCH 100          /* streams opened before waiting: stays under the accept backlog */
#define DEADLINE_S 120     /* everything here must finish within this */

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_scale: %s: %s\n", what, rc < 0 ? srm_strerror(rc) : strerror(errno));
	exit(1);
}

/* The application's ends of the streams live in a holder process: one
 * process may hold at most RLIMIT_NOFILE fds (20000 here, and the hard
 * limit cannot be raised without CAP_SYS_RESOURCE), and with both ends of
 * 10,000 socketpairs in one process it would run out.  The engine process
 * keeps its own end of every stream, which is what is measured. */
static void holder_run(int sock)
{
	for (;;) {
		char b;
		char ctl[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &b, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				    .msg_controllen = sizeof(ctl) };
		if (recvmsg(sock, &m, 0) <= 0)
			_exit(0); /* the owner is gone: every fd closes with us */
	}
}

static int holder_start(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		die("holder socketpair", 0);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", 0);
	if (pid == 0) {
		close(sv[0]);
		holder_run(sv[1]);
	}
	close(sv[1]);
	return sv[0];
}

/* Hand fd to the holder and close it here. */
static void holder_give(int holder, int fd)
{
	char b = 0;
	char ctl[CMSG_SPACE(sizeof(int))];
	memset(ctl, 0, sizeof(ctl));
	struct iovec iov = { &b, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(holder, &m, 0) != 1)
		die("holder sendmsg", 0);
	close(fd);
}

static void loopback(struct srm_config *c, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->listen;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->listen_len = sizeof(*sin);
}

static srm_engine *start(struct srm_config *c)
{
	char err[512];
	srm_engine *e;
	c->log_level = SRM_LOG_ERROR;
	c->connect_timeout_ms = 30000;
	if (srm_engine_start(c, &e, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_scale: engine: %s\n", err);
		exit(1);
	}
	return e;
}

static void sync_read(int fd)
{
	char ch;
	if (read(fd, &ch, 1) != 1)
		exit(1);
}

static void sync_write(int fd)
{
	if (write(fd, "x", 1) != 1)
		exit(1);
}

/* The child: NPEERS engines, NSTREAMS streams. */
static int client(const char *dir, int npeers, int nstreams, uint8_t spub[SRM_KEY_BYTES],
		  int port_fd, int up, int down)
{
	uint16_t port;
	if (read(port_fd, &port, sizeof(port)) != sizeof(port))
		return 1;
	srm_engine **eng = calloc((size_t)npeers, sizeof(*eng));
	int *keep = malloc(sizeof(int) * (size_t)nstreams);
	uint64_t *ids = malloc(sizeof(uint64_t) * (size_t)nstreams);
	int hold = holder_start();
	long base = rss_kib();
	for (int i = 0; i < npeers; i++) {
		struct srm_config c;
		srm_config_defaults(&c);
		snprintf(c.key_path, sizeof(c.key_path), "%s/c%d.key", dir, i);
		loopback(&c, 0);
		c.peers = calloc(1, sizeof(*c.peers));
		c.peer_count = 1;
		strcpy(c.peers[0].name, "s");
		memcpy(c.peers[0].pubkey, spub, SRM_KEY_BYTES);
		struct sockaddr_in *sin = (struct sockaddr_in *)&c.peers[0].endpoint;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		c.peers[0].endpoint_len = sizeof(*sin);
		eng[i] = start(&c);
		srm_config_free(&c);
	}
	long engines = rss_kib();
	double t0 = now_s();
	/* Stream k goes to engine k % npeers: the first npeers streams give
	 * every peer its session.  Open in batches, wait for each batch, and
	 * retry the ones the accept backlog refused. */
	for (int k = 0; k < nstreams;) {
		int end = k + BATCH < nstreams ? k + BATCH : nstreams;
		if (k == npeers || (k < npeers && end > npeers))
			end = k < npeers ? npeers : end;
		for (int j = k; j < end; j++) { /* open the whole batch ... */
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
				die("socketpair", 0);
			keep[j] = sv[0];
			if (srm_stream_open(eng[j % npeers], 0, PORT, sv[1], 0, &ids[j]) != 0) {
				close(sv[0]);
				keep[j] = -1;
			}
		}
		for (int j = k; j < end; j++) { /* ... then wait, retrying refusals */
			int tries = 0, rc = keep[j] < 0 ? SRM_ERR_AGAIN
						       : srm_stream_wait(eng[j % npeers], ids[j], 30000);
			while (rc != 0 && ++tries < 20 && now_s() - t0 < DEADLINE_S) {
				if (keep[j] >= 0)
					close(keep[j]);
				usleep(10000);
				int sv[2];
				if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
					die("socketpair", 0);
				keep[j] = sv[0];
				rc = srm_stream_open(eng[j % npeers], 0, PORT, sv[1], 0, &ids[j]);
				if (rc == 0)
					rc = srm_stream_wait(eng[j % npeers], ids[j], 30000);
			}
			if (rc != 0)
				die("stream open", rc);
			holder_give(hold, keep[j]);
		}
		k = end;
		if (k == npeers) {
			sleep(1);
			long peers = rss_kib();
			printf("client_rss_base_kib %ld\nclient_rss_engines_kib %ld\nclient_rss_peers_kib %ld\n",
			       base, engines, peers);
			sync_write(up);
			sync_read(down);
		}
	}
	sleep(1);
	printf("client_rss_streams_kib %ld\n", rss_kib());
	printf("client_open_s %.2f\n", now_s() - t0);
	fflush(stdout);
	sync_write(up);
	sync_read(down);
	for (int i = 0; i < npeers; i++)
		srm_engine_stop(eng[i]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_scale DIR [NPEERS [NSTREAMS]]\n");
		return 2;
	}
	const char *dir = argv[1];
	int npeers = argc > 2 ? atoi(argv[2]) : 200;
	int nstreams = argc > 3 ? atoi(argv[3]) : 10000;
	if (npeers < 1 || npeers > SRM_MAX_PEERS || nstreams < npeers)
		return 2;
	/* Each stream is two fds on each side (a socketpair). */
	/* One fd per stream in the engine process, plus a few per engine. */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_max < (rlim_t)nstreams + 8 * (rlim_t)npeers + 64 || setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("RLIMIT_NOFILE too low for that many streams", 0);
	printf("nofile_limit %llu\n", (unsigned long long)rl.rlim_max);

	char path[4200], pub[SRM_PUBKEY_TEXT_BYTES];
	uint8_t spub[SRM_KEY_BYTES];
	struct srm_config sc;
	srm_config_defaults(&sc);
	snprintf(sc.key_path, sizeof(sc.key_path), "%s/s.key", dir);
	if (srm_key_generate(sc.key_path, pub) != 0 || srm_pubkey_decode(pub, spub) != 0)
		die("server key", SRM_ERR_IO);
	sc.peers = calloc((size_t)npeers, sizeof(*sc.peers));
	sc.peer_count = (size_t)npeers;
	for (int i = 0; i < npeers; i++) {
		snprintf(path, sizeof(path), "%s/c%d.key", dir, i);
		if (srm_key_generate(path, pub) != 0 || srm_pubkey_decode(pub, sc.peers[i].pubkey) != 0)
			die("client key", SRM_ERR_IO);
		snprintf(sc.peers[i].name, sizeof(sc.peers[i].name), "c%d", i);
	}
	loopback(&sc, 0);

	int port_p[2], up_p[2], down_p[2];
	if (pipe(port_p) || pipe(up_p) || pipe(down_p))
		die("pipe", 0);
	fflush(stdout);
	pid_t child = fork();
	if (child < 0)
		die("fork", 0);
	if (child == 0) {
		srm_config_free(&sc);
		exit(client(dir, npeers, nstreams, spub, port_p[0], up_p[1], down_p[0]));
	}
	int hold = holder_start();
	long base0 = rss_kib();
	srm_engine *e = start(&sc);
	srm_config_free(&sc);
	int lfd = srm_listen(e, PORT, NULL, 0);
	if (lfd < 0)
		die("listen", lfd);
	uint16_t port = (uint16_t)srm_engine_udp_port(e);
	if (write(port_p[1], &port, sizeof(port)) != sizeof(port))
		die("pipe write", 0);
	sleep(1);
	long base = rss_kib();
		int accepted = 0, stage = 0;
	double t0 = now_s();
	/* Accept everything until the child has reported both stages. */
	while (stage < 2 && now_s() - t0 < DEADLINE_S) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = up_p[0], .events = POLLIN } };
		if (poll(p, 2, 200) < 0 && errno != EINTR)
			die("poll", 0);
		if (p[0].revents & POLLIN) {
			int peer, fd;
			while (accepted < nstreams && (fd = srm_accept(e, PORT, &peer)) >= 0)
				{ holder_give(hold, fd); accepted++; }
		}
		if (p[1].revents & POLLIN) {
			sync_read(up_p[0]);
			/* Streams the child saw open may still sit in the backlog. */
			int peer, fd;
			while (accepted < nstreams && (fd = srm_accept(e, PORT, &peer)) >= 0)
				{ holder_give(hold, fd); accepted++; }
			sleep(1);
			if (stage++ == 0) {
				printf("server_rss_start_kib %ld\nserver_rss_base_kib %ld\nserver_rss_peers_kib %ld\n",
				       base0, base, rss_kib());
			} else {
				printf("server_rss_streams_kib %ld\n", rss_kib());
			}
			fflush(stdout);
			sync_write(down_p[1]);
		}
	}
	struct srm_engine_stats st;
	srm_engine_stats(e, &st);
	printf("server_accepted %d\nserver_streams %u\nserver_sessions %u\npeers %d\nstreams %d\n",
	       accepted, st.streams, st.sessions, npeers, nstreams);
	fflush(stdout);
	int status = 1;
	if (stage < 2) {
		kill(child, SIGKILL);
		fprintf(stderr, "bench_scale: timed out at stage %d (%d accepted)\n", stage, accepted);
	}
	waitpid(child, &status, 0);
	srm_engine_stop(e);
	return stage == 2 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
