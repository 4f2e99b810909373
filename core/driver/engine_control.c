/*
 * engine_control.c — the engine's control socket, for `srmudp status`.
 *
 * Each engine listens on an AF_UNIX socket, RUNDIR/PID.sock, where RUNDIR
 * is $XDG_RUNTIME_DIR/srmudp (else /run/user/UID/srmudp, else
 * /dev/shm/srmudp-UID, else /tmp/srmudp-UID), a directory of mode 0700
 * that must belong to us.  A
 * client that connects (and is the same user, checked with SO_PEERCRED)
 * gets one JSON document describing the engine, and the connection closes.
 * The socket is removed when the engine stops; sockets left by crashed
 * processes are removed by the next engine or status client that finds
 * nobody answering on them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"

/* A status client gets its document within this time or not at all: the
 * engine thread must not wait on a stuck reader. */
#define CONTROL_SEND_TIMEOUT_MS 500
/* The document is cut here (10,000 streams fit). */
#define CONTROL_DOC_MAX (4u << 20)

int srm_runtime_dir(char *out, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	if (xdg && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(out, len, "%s/srmudp", xdg);
	else if (snprintf(out, len, "/run/user/%u", (unsigned)geteuid()) > 0 &&
		 stat(out, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(out, len, "/run/user/%u/srmudp", (unsigned)geteuid());
	else if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode))
		/* tmpfs, like /run/user: creating the ends board on a disk
		 * file system (/tmp) costs a cold connect() up to 0.7 ms. */
		snprintf(out, len, "/dev/shm/srmudp-%u", (unsigned)geteuid());
	else
		snprintf(out, len, "/tmp/srmudp-%u", (unsigned)geteuid());
	if (mkdir(out, 0700) != 0 && errno != EEXIST)
		return SRM_ERR_IO;
	/* Someone else's directory, or one others may write to, is not ours
	 * to put a socket in. */
	if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077))
		return SRM_ERR_PERM;
	return 0;
}

/* ---- A small JSON writer ------------------------------------------------ */

struct doc {
	char *buf;
	size_t len, cap;
};

static void put(struct doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct doc *d, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(d->buf ? d->buf + d->len : NULL, d->buf ? d->cap - d->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (d->buf && d->len + (size_t)n < d->cap) {
			d->len += (size_t)n;
			return;
		}
		size_t want = d->cap ? d->cap * 2 : 4096;
		while (want < d->len + (size_t)n + 1)
			want *= 2;
		if (want > CONTROL_DOC_MAX)
			return;
		char *nb = realloc(d->buf, want);
		if (!nb)
			return;
		d->buf = nb;
		d->cap = want;
	}
}

static void put_string(struct doc *d, const char *s)
{
	put(d, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			put(d, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			put(d, "\\u%04x", ch);
		else
			put(d, "%c", ch);
	}
	put(d, "\"");
}

static const char *bridge_state(const struct bridge *b)
{
	if (b->state == SRM_ERR_AGAIN)
		return "opening";
	if (b->fd_eof && b->peer_fin)
		return "closing";
	if (b->fd_eof)
		return "half-closed-local";
	if (b->peer_fin)
		return "half-closed-remote";
	return "open";
}

static void put_peer(struct srm_engine *e, struct doc *d, struct peer *p, uint64_t now_ms)
{
	struct srm_peer_stats st;
	memset(&st, 0, sizeof(st));
	if (p->conn)
		conn_get_stats(p->conn, &st);
	char key[SRM_PUBKEY_TEXT_BYTES], addr[64] = "";
	srm_pubkey_encode(p->cfg.pubkey, key);
	if (p->path.len)
		engine_addr_text(&p->path.addr, addr, sizeof(addr));
	put(d, "{\"name\":");
	put_string(d, p->cfg.name);
	put(d, ",\"key\":\"%s\",\"fingerprint\":\"%.8s\",\"instance\":%s,\"established\":%s,",
	    key, key, p->extra ? "\"extra\"" : "\"configured\"",
	    session_established(p->session) ? "true" : "false");
	put(d, "\"path\":{\"kind\":\"%s\",\"address\":\"%s\"},",
	    !p->path.len ? "none" : p->path.relayed ? "relayed" : "direct",
	    p->path.relayed ? "" : addr);
	uint64_t age = session_handshake_age_ms(p->session, now_ms);
	put(d, "\"handshake_age_ms\":%lld,", age == UINT64_MAX ? -1LL : (long long)age);
	put(d, "\"cipher\":\"%s\",", session_cipher_name(p->session));
	put(d, "\"rtt_ms\":%.3f,\"rttvar_ms\":%.3f,\"min_rtt_ms\":%.3f,", st.srtt_us / 1000.0,
	    st.rttvar_us / 1000.0, st.min_rtt_us / 1000.0);
	double loss = st.packets_sent ? (double)st.packets_lost / (double)st.packets_sent : 0;
	put(d, "\"loss\":%.5f,\"cwnd_bytes\":%llu,\"pmtu\":%u,", loss,
	    (unsigned long long)st.cwnd_bytes, st.pmtu);
	put(d, "\"bytes_out\":%llu,\"bytes_in\":%llu,\"stream_bytes_out\":%llu,"
	       "\"stream_bytes_in\":%llu,",
	    (unsigned long long)st.bytes_sent, (unsigned long long)st.bytes_received,
	    (unsigned long long)st.stream_bytes_sent, (unsigned long long)st.stream_bytes_received);
	/* Application bytes per wire byte: above 1 when compression wins. */
	double ratio = st.bytes_sent ? (double)st.stream_bytes_sent / (double)st.bytes_sent : 0;
	put(d, "\"compression_ratio\":%.3f,", ratio);
	put(d, "\"drops\":{");
	for (int r = 0; r < SRM_DROP_REASONS; r++)
		put(d, "%s\"%s\":%llu", r ? "," : "", srm_drop_reason_name((enum srm_drop_reason)r),
		    (unsigned long long)p->drops[r]);
	put(d, "},");
	put(d, "\"packets_out\":%llu,\"packets_in\":%llu,\"packets_lost\":%llu,"
	       "\"packets_retransmitted\":%llu,\"early_opens\":%llu,\"streams\":[",
	    (unsigned long long)st.packets_sent, (unsigned long long)st.packets_received,
	    (unsigned long long)st.packets_lost, (unsigned long long)st.packets_retransmitted,
	    (unsigned long long)st.early_opens);
	const char *sep = "";
	struct bridge *b, *tmp;
	HASH_ITER(hh_peer, p->bridges, b, tmp) {
		put(d, "%s{\"id\":%llu,\"port\":%u,\"direction\":\"%s\",\"state\":\"%s\"}", sep,
		    (unsigned long long)b->stream_id, b->listen_port ? b->listen_port : b->open_port,
		    b->listen_port ? "in" : "out", bridge_state(b));
		sep = ",";
	}
	put(d, "]}");
	(void)e;
}

static void put_document(struct srm_engine *e, struct doc *d)
{
	char comm[64] = "?";
	FILE *f = fopen("/proc/self/comm", "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
	uint8_t pub[SRM_KEY_BYTES];
	char key[SRM_PUBKEY_TEXT_BYTES];
	identity_public_key(e->identity, pub);
	srm_pubkey_encode(pub, key);
	uint64_t now_ms = clock_now_us() / 1000;
	put(d, "{\"pid\":%d,\"program\":", (int)getpid());
	put_string(d, comm);
	put(d, ",\"key\":\"%s\",\"udp_port\":%d,\"uptime_ms\":%llu,", key, srm_engine_udp_port(e),
	    (unsigned long long)(now_ms - e->started_ms));
	struct rdv_endpoint reflexive;
	char rtext[64] = "";
	bool registered = e->rdv && rdv_client_registered(e->rdv, now_ms, &reflexive);
	if (registered)
		rdv_endpoint_str(&reflexive, rtext, sizeof(rtext));
	put(d, "\"rendezvous\":{\"configured\":%s,\"registered\":%s,\"public_address\":\"%s\"},",
	    e->rdv ? "true" : "false", registered ? "true" : "false", rtext);
	put(d, "\"packets_in\":%llu,\"packets_out\":%llu,\"drops\":{",
	    (unsigned long long)e->stats.packets_received, (unsigned long long)e->stats.packets_sent);
	for (int r = 0; r < SRM_DROP_REASONS; r++)
		put(d, "%s\"%s\":%llu", r ? "," : "", srm_drop_reason_name((enum srm_drop_reason)r),
		    (unsigned long long)e->stats.drops[r]);
	put(d, "},\"peers\":[");
	const char *sep = "";
	for (size_t i = 0; i < e->slot_count; i++) {
		if (!e->peers[i].session)
			continue;
		put(d, "%s", sep);
		put_peer(e, d, &e->peers[i], now_ms);
		sep = ",";
	}
	put(d, "]}\n");
}

/* ---- The socket --------------------------------------------------------- */

static bool has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	return n > k && strcmp(name + n - k, suffix) == 0;
}

/* Remove what engines that are gone (crashed, killed) left in dir: their
 * sockets (PID.sock or PID-N.sock) and ends boards (PID.ends).  A
 * kill(PID, 0) first spares live engines the wake-up (this runs on the
 * preload's first connect). */
void srm_control_sweep(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	if (!dh)
		return;
	while ((de = readdir(dh))) {
		bool board = has_suffix(de->d_name, ".ends");
		if (!board && !has_suffix(de->d_name, ".sock"))
			continue;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (pid <= 0 || (*end != '.' && *end != '-'))
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* alive, or someone else's */
		if (board) {
			/* Only its holders' reset reports are lost if a process
			 * in another PID namespace still writes it. */
			unlinkat(dirfd(dh), de->d_name, 0);
			continue;
		}
		/* The name's process is gone; remove the socket unless something
		 * still answers on it (a process in another PID namespace). */
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, de->d_name) >=
		    sizeof(sa.sun_path))
			continue;
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno == ECONNREFUSED)
			unlink(sa.sun_path);
		close(fd);
	}
	closedir(dh);
}

int engine_control_open(struct srm_engine *e)
{
	char dir[sizeof(e->control_path) - 32];
	int rc = srm_runtime_dir(dir, sizeof(dir));
	if (rc < 0) {
		LOG_WARN(NULL, "no control socket: runtime directory %s is unusable", dir);
		return rc;
	}
	srm_control_sweep(dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* PID.sock; a second engine in the same process gets PID-N.sock. */
	static _Atomic unsigned engines_here;
	unsigned nth = atomic_fetch_add(&engines_here, 1);
	if (nth)
		snprintf(e->control_path, sizeof(e->control_path), "%s/%d-%u.sock", dir,
			 (int)getpid(), nth + 1);
	else
		snprintf(e->control_path, sizeof(e->control_path), "%s/%d.sock", dir, (int)getpid());
	if (strlen(e->control_path) >= sizeof(sa.sun_path))
		return SRM_ERR_INVALID;
	memcpy(sa.sun_path, e->control_path, strlen(e->control_path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return SRM_ERR_IO;
	unlink(e->control_path); /* stale: a crashed process had our PID */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 8) != 0) {
		close(fd);
		e->control_path[0] = 0;
		return SRM_ERR_IO;
	}
	chmod(e->control_path, 0600);
	e->control_fd = engine_fd_adopt(e, fd);
	e->control_tag.kind = EV_CONTROL;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->control_tag };
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->control_fd, &ev);
	return 0;
}

void engine_control_close(struct srm_engine *e)
{
	if (e->control_fd >= 0) {
		engine_fd_close(e, e->control_fd);
		e->control_fd = -1;
	}
	if (e->control_path[0]) {
		unlink(e->control_path);
		e->control_path[0] = 0;
	}
}

void engine_control_accept(struct srm_engine *e)
{
	for (int i = 0; i < 4; i++) {
		int fd = accept4(e->control_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
		    (cred.uid != geteuid() && cred.uid != 0)) {
			close(fd);
			continue;
		}
		struct timeval tv = { 0, CONTROL_SEND_TIMEOUT_MS * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		struct doc d = { 0 };
		put_document(e, &d);
		for (size_t off = 0; d.buf && off < d.len;) {
			ssize_t n = send(fd, d.buf + off, d.len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		free(d.buf);
		close(fd);
	}
}
