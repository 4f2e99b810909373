/*
 * bench_xfer — one process, two engines on loopback, one stream: the
 * sender writes MIB mebibytes of random (incompressible) or JSON log lines
 * into its socketpair, the receiver reads it from the accepted fd.  Small
 * and self-contained, so that callgrind can count every instruction both
 * ends spend (instructions per GB, for regression tracking) and perf can
 * profile the engine without iperf3 or the preload in the picture.
 *
 *   bench_xfer DIR MIB [random|text] [auto|off]     prints key value lines
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "srmudp.h"

#define PORT 7001
#define CHUNK 65536

/* valgrind 3.19 does not know epoll_pwait2 (syscall 441) and fails it with
 * ENOSYS, and the engine, which waits with it, would then spin without
 * ever sleeping.  This definition takes the place of libc's for this
 * program only: the real system call when there is one, else epoll_pwait
 * with the timeout rounded up to a millisecond. */
int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
		 const sigset_t *ss)
{
	long r = syscall(SYS_epoll_pwait2, epfd, ev, max, ts, ss, (size_t)8);
	if (r >= 0 || errno != ENOSYS)
		return (int)r;
	int ms = ts ? (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000) : -1;
	return epoll_pwait(epfd, ev, max, ms, ss);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void loopback(struct sockaddr_storage *ss, socklen_t *len, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*len = sizeof(*sin);
}

static srm_engine *start(const char *dir, const char *me, const char *peer_name,
			 const char *peer_pub, uint16_t peer_port, enum srm_compress comp)
{
	struct srm_config c;
	char err[512];
	srm_engine *e;
	srm_config_defaults(&c);
	snprintf(c.key_path, sizeof(c.key_path), "%s/%s.key", dir, me);
	loopback(&c.listen, &c.listen_len, 0);
	c.log_level = SRM_LOG_ERROR;
	c.compress = comp;
	c.peers = calloc(1, sizeof(*c.peers));
	c.peer_count = 1;
	snprintf(c.peers[0].name, sizeof(c.peers[0].name), "%s", peer_name);
	if (srm_pubkey_decode(peer_pub, c.peers[0].pubkey) != 0)
		exit(1);
	if (peer_port)
		loopback(&c.peers[0].endpoint, &c.peers[0].endpoint_len, peer_port);
	if (srm_engine_start(&c, &e, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_xfer: %s\n", err);
		exit(1);
	}
	srm_config_free(&c);
	return e;
}

struct sender {
	int fd;
	uint64_t total;
	const uint8_t *buf;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;
	for (uint64_t done = 0; done < s->total;) {
		size_t n = s->total - done < CHUNK ? (size_t)(s->total - done) : CHUNK;
		ssize_t w = write(s->fd, s->buf + (done % (1 << 20)), n);
		if (w <= 0)
			break;
		done += (uint64_t)w;
	}
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_xfer DIR MIB [random|text] [auto|off]\n");
		return 2;
	}
	const char *dir = argv[1];
	uint64_t total = (uint64_t)atoi(argv[2]) << 20;
	int text = argc > 3 && !strcmp(argv[3], "text");
	enum srm_compress comp = argc > 4 && !strcmp(argv[4], "auto") ? SRM_COMPRESS_AUTO
								       : SRM_COMPRESS_OFF;
	char ka[512], kb[512], pa[SRM_PUBKEY_TEXT_BYTES], pb[SRM_PUBKEY_TEXT_BYTES];
	snprintf(ka, sizeof(ka), "%s/a.key", dir);
	snprintf(kb, sizeof(kb), "%s/b.key", dir);
	unlink(ka);
	unlink(kb);
	if (srm_key_generate(ka, pa) != 0 || srm_key_generate(kb, pb) != 0)
		return 1;
	/* 2 MiB source buffer so the sender can always write CHUNK past any
	 * 1 MiB offset. */
	uint8_t *buf = malloc(2 << 20);
	FILE *ur = fopen("/dev/urandom", "r");
	if (!ur || fread(buf, 1, 2 << 20, ur) != 2 << 20)
		return 1;
	fclose(ur);
	if (text) { /* JSON log lines with varying fields, as services write them */
		static const char *paths[] = { "/api/v1/items", "/api/v1/users", "/static/app.js",
					       "/healthz", "/api/v2/search" };
		static const char *levels[] = { "info", "info", "info", "warn", "debug" };
		size_t off = 0;
		uint32_t x = 12345;
		while (off < (2u << 20) - 256) {
			x = x * 1103515245u + 12345u; /* a fixed LCG: the same text every run */
			int n = snprintf((char *)buf + off, 256,
					 "{\"ts\":%u,\"level\":\"%s\",\"msg\":\"request served\","
					 "\"path\":\"%s/%u\",\"status\":%d,\"ms\":%u,\"bytes\":%u}\n",
					 1700000000u + (x >> 12) % 86400, levels[(x >> 8) % 5],
					 paths[(x >> 4) % 5], (x >> 16) % 100000,
					 (x >> 3) % 17 ? 200 : 404, (x >> 20) % 500, (x >> 7) % 65536);
			off += (size_t)n;
		}
		memset(buf + off, '\n', (2u << 20) - off);
	}

	srm_engine *b = start(dir, "b", "a", pa, 0, comp);
	srm_engine *a = start(dir, "a", "b", pb, (uint16_t)srm_engine_udp_port(b), comp);
	int lfd = srm_listen(b, PORT, NULL, 0);
	int sv[2];
	uint64_t id;
	double t_open = now_s();
	if (lfd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
	    srm_stream_open(a, 0, PORT, sv[1], 0, &id) != 0 || srm_stream_wait(a, id, 10000) != 0) {
		fprintf(stderr, "bench_xfer: stream setup failed\n");
		return 1;
	}
	t_open = now_s() - t_open; /* first stream to a new peer: handshake + open */
	int peer, rfd = -1;
	for (int i = 0; i < 1000 && rfd < 0; i++) {
		rfd = srm_accept(b, PORT, &peer);
		if (rfd < 0)
			usleep(10000);
	}
	if (rfd < 0)
		return 1;
	double t0 = now_s();
	struct sender s = { sv[0], total, buf };
	pthread_t th;
	pthread_create(&th, NULL, send_all, &s);
	uint64_t got = 0;
	static uint8_t rb[CHUNK];
	for (;;) {
		ssize_t r = read(rfd, rb, sizeof(rb));
		if (r <= 0)
			break;
		got += (uint64_t)r;
	}
	double t = now_s() - t0;
	pthread_join(th, NULL);
	struct srm_peer_stats st;
	srm_peer_stats(a, 0, &st);
	printf("first_open_ms %.3f\n", t_open * 1e3);
	printf("xfer_bytes %llu\nxfer_seconds %.3f\nxfer_MBps %.1f\n", (unsigned long long)got, t,
	       (double)got / t / 1e6);
	printf("wire_bytes_sent %llu\nstream_bytes_sent %llu\npackets_sent %llu\npackets_lost %llu\n"
	       "srtt_us %u\nmin_rtt_us %u\ncwnd_bytes %llu\npmtu %u\n",
	       (unsigned long long)st.bytes_sent, (unsigned long long)st.stream_bytes_sent,
	       (unsigned long long)st.packets_sent, (unsigned long long)st.packets_lost,
	       st.srtt_us, st.min_rtt_us, (unsigned long long)st.cwnd_bytes, st.pmtu);
	close(rfd);
	close(sv[0]);
	srm_engine_stop(a);
	srm_engine_stop(b);
	free(buf);
	return got == total ? 0 : 1;
}
