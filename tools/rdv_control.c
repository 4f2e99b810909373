/*
 * rdv_control.c — the control socket of `srmudp rendezvous`, so that
 * `srmudp status` lists rendezvous servers next to engines.
 *
 * Same place, same rules as an engine's (core/driver/engine_control.c): an
 * AF_UNIX socket RUNDIR/PID.sock, mode 0600 in a 0700 directory, that
 * answers its own user (and root) with one JSON document and closes.  The
 * document has "kind":"rendezvous" and a "counters" object (the server's
 * statistics, as SIGUSR1 prints them) instead of peers.
 *
 * It runs in the server's own event loop (the loop owns the server state;
 * no lock, no thread): rdv_control_open registers the socket in the
 * loop's epoll set under a tag, and the loop calls rdv_control_answer
 * when that tag is ready.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rdv_control.h"
#include "clock.h"

/* A status client gets its document within this time or not at all: the
 * server's loop must not wait on a stuck reader. */
#define CONTROL_SEND_TIMEOUT_MS 500
/* Accepts per wakeup, so a flood of status clients cannot starve the
 * UDP sockets. */
#define CONTROL_ACCEPTS_PER_WAKE 4

static char control_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static uint64_t started_ms;
static int udp_port;

int rdv_control_open(int epfd, uint64_t tag, int udp_fd)
{
	char dir[sizeof(control_path) - 24];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (srm_runtime_dir(dir, sizeof(dir)) != 0)
		return -1;
	srm_control_sweep(dir);
	if (getsockname(udp_fd, (struct sockaddr *)&ss, &sl) == 0)
		udp_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(control_path, sizeof(control_path), "%s/%d.sock", dir, (int)getpid());
	memcpy(sa.sun_path, control_path, sizeof(sa.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(control_path); /* a crashed process had our PID */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 8) != 0) {
		close(fd);
		control_path[0] = '\0';
		return -1;
	}
	chmod(control_path, 0600);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		rdv_control_close(fd);
		return -1;
	}
	started_ms = clock_now_ms();
	return fd;
}

void rdv_control_close(int fd)
{
	if (fd >= 0)
		close(fd);
	if (control_path[0]) {
		unlink(control_path);
		control_path[0] = '\0';
	}
}

static void put_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void put_document(FILE *f, const struct rdv_server *s, const char *store_name)
{
	struct rdv_server_stats c;
	char comm[64] = "?";
	FILE *cf = fopen("/proc/self/comm", "re");

	if (cf) {
		if (fgets(comm, sizeof(comm), cf))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(cf);
	}
	rdv_server_get_stats(s, &c);
	fprintf(f, "{\"pid\":%d,\"program\":", (int)getpid());
	put_json_string(f, comm);
	fprintf(f, ",\"kind\":\"rendezvous\",\"udp_port\":%d,\"uptime_ms\":%llu,\"store\":", udp_port,
		(unsigned long long)(clock_now_ms() - started_ms));
	put_json_string(f, store_name);
	fprintf(f, ",\"server_id\":\"%016llx\",\"counters\":{", (unsigned long long)rdv_server_id(s));
	fprintf(f, "\"records\":%llu", (unsigned long long)c.records);
#define C(name) fprintf(f, ",\"" #name "\":%llu", (unsigned long long)c.name)
	C(rx_packets);
	C(rx_bytes);
	C(tx_packets);
	C(tx_bytes);
	C(registers);
	C(challenges);
	C(auth_ok);
	C(auth_failed);
	C(replays);
	C(cookie_bad);
	C(lookups);
	C(found);
	C(not_found);
	C(punches);
	C(notes_sent);
	C(notes_received);
	C(relay_packets);
	C(relay_bytes);
	C(relay_limited);
	C(relay_unknown);
	C(rate_limited);
	C(malformed);
	C(expired);
	C(evicted);
	C(store_errors);
#undef C
	fprintf(f, "}}\n");
}

void rdv_control_answer(int fd, const struct rdv_server *s, const char *store_name)
{
	for (int i = 0; i < CONTROL_ACCEPTS_PER_WAKE; i++) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return;
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
		    (cred.uid != geteuid() && cred.uid != 0)) {
			close(c);
			continue;
		}
		struct timeval tv = { 0, CONTROL_SEND_TIMEOUT_MS * 1000 };
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		char *doc = NULL;
		size_t dlen = 0;
		FILE *m = open_memstream(&doc, &dlen);
		if (m) {
			put_document(m, s, store_name);
			fclose(m);
			for (size_t off = 0; doc && off < dlen;) {
				ssize_t n = send(c, doc + off, dlen - off, MSG_NOSIGNAL);
				if (n <= 0)
					break;
				off += (size_t)n;
			}
			free(doc);
		}
		close(c);
	}
}
