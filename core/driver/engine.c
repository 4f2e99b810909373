/*
 * engine.c — the engine's lifecycle and its thread; the public API on
 * streams, peers and statistics is engine_api.c.
 *
 * Datagrams in and out: engine_udp.c, engine_receive.c, engine_send.c;
 * paths: engine_path.c (decided by core/protocol/path.c); stream<->fd bridging in
 * engine_bridge.c, listeners in engine_listen.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "engine.h"
#include "log.h"
#include "pmtu.h"

/* Engine fds are moved above the select() range when the fd limit allows,
 * so a program using select() on its own fds never meets ours. */
#define ENGINE_FD_FLOOR FD_SETSIZE

#define EPOLL_BATCH 64
/* How often a conn waiting for its handshake is looked at. */
#define NO_SESSION_TICK_US 50000

static void fd_mark(struct srm_engine *e, int fd, bool owned)
{
	if (fd < 0 || (size_t)fd / 8 >= e->owned_bytes)
		return;
	uint8_t bit = (uint8_t)(1u << (fd % 8));
	if (owned)
		atomic_fetch_or(&e->owned[fd / 8], bit);
	else
		atomic_fetch_and(&e->owned[fd / 8], (uint8_t)~bit);
}

void engine_fd_mark(struct srm_engine *e, int fd)
{
	fd_mark(e, fd, true);
}

int engine_fd_adopt(struct srm_engine *e, int fd)
{
	struct rlimit rl;
	if (fd >= 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > ENGINE_FD_FLOOR + 16) {
		int high = sys_fcntl(fd, F_DUPFD_CLOEXEC, ENGINE_FD_FLOOR);
		if (high >= 0) {
			sys_close(fd);
			fd = high;
		}
	}
	fd_mark(e, fd, true);
	return fd;
}

void engine_fd_close(struct srm_engine *e, int fd)
{
	if (fd < 0)
		return;
	fd_mark(e, fd, false);
	sys_close(fd);
}

int srm_engine_owns_fd(srm_engine *e, int fd)
{
	if (!e || fd < 0 || (size_t)fd / 8 >= e->owned_bytes)
		return 0;
	return (atomic_load(&e->owned[fd / 8]) >> (fd % 8)) & 1;
}

void engine_epoll_set(struct srm_engine *e, struct bridge *b, uint32_t events)
{
	if (b->events == events || b->parked)
		return;
	struct epoll_event ev = { .events = events, .data.ptr = &b->tag };
	epoll_ctl(e->epfd, EPOLL_CTL_MOD, b->fd, &ev);
	b->events = events;
}

void engine_remember_end(struct srm_engine *e, uint64_t handle, int error)
{
	ends_record(e->ends, handle, error);
}

void engine_wake(struct srm_engine *e)
{
	uint64_t one = 1;
	ssize_t n = sys_write(e->wake_fd, &one, sizeof(one));
	(void)n; /* a full counter already means "awake" */
}

/* ---- Per-peer transport ------------------------------------------------- */

void engine_peer_push(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	engine_peer_flush(e, p, now_us);
	engine_send_flush(e);
	engine_wake(e);
}

static uint64_t thread_cpu_us(void *arg)
{
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct conn *engine_peer_conn(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	if (p->conn)
		return p->conn;
	uint8_t mine[SRM_KEY_BYTES];
	identity_public_key(e->identity, mine);
	struct conn_config cc = {
		.stream_id_parity = memcmp(mine, p->cfg.pubkey, SRM_KEY_BYTES) < 0 ? 0 : 1,
		.cc = e->cfg.cc,
		.compress = e->cfg.compress,
		.idle_timeout_ms = e->cfg.idle_timeout_ms,
		/* Keepalives well inside the idle timeout, so a short
		 * SRMUDP_IDLE_TIMEOUT does not kill idle streams. */
		.keepalive_ms = e->cfg.idle_timeout_ms && e->cfg.idle_timeout_ms / 3 < CONN_DEFAULT_KEEPALIVE_MS
					? e->cfg.idle_timeout_ms / 3 : CONN_DEFAULT_KEEPALIVE_MS,
		.open_timeout_ms = e->cfg.connect_timeout_ms,
		.max_streams = CONN_DEFAULT_MAX_STREAMS,
		.max_udp_payload = engine_path_is_ipv6(p) ? PMTU_MAX_UDP6_PAYLOAD : WIRE_MAX_UDP_PAYLOAD,
		/* SRMUDP_COMPRESS=auto compares zstd's speed on this thread
		 * with the link's: a CPU-bound sender stops compressing. */
		.cpu_clock_us = thread_cpu_us,
	};
	p->conn = conn_new(&cc, now_us);
	engine_path_fit_mtu(p, now_us);
	p->conn_boot_id = session_established(p->session) ? session_peer_boot_id(p->session) : 0;
	return p->conn;
}

/* The transport is gone (peer dead, restarted or unreachable): every stream
 * on it ends with error. */
void engine_peer_drop_conn(struct srm_engine *e, struct peer *p, int error)
{
	struct bridge *b, *tmp;
	HASH_ITER(hh_peer, p->bridges, b, tmp)
		bridge_fail(e, b, error, false);
	if (p->conn) {
		conn_free(p->conn);
		p->conn = NULL;
	}
	p->conn_boot_id = 0;
	pthread_cond_broadcast(&e->cond);
}

/* The conn belongs to one run of the peer: a restarted peer (another boot
 * id) has forgotten our streams, so they end.  Otherwise the conn is the
 * peer's run `boot` from now on. */
void engine_peer_boot(struct srm_engine *e, struct peer *p, uint64_t boot)
{
	if (p->conn && p->conn_boot_id && p->conn_boot_id != boot) {
		LOG_INFO(p->cfg.name, "peer restarted; resetting its streams");
		engine_peer_drop_conn(e, p, SRM_ERR_RESET);
	}
	if (p->conn)
		p->conn_boot_id = boot;
}

void engine_peer_check_restart(struct srm_engine *e, struct peer *p)
{
	if (p->conn && session_established(p->session))
		engine_peer_boot(e, p, session_peer_boot_id(p->session));
}

/* ---- The thread --------------------------------------------------------- */

static uint64_t next_deadline(struct srm_engine *e, uint64_t now_us)
{
	uint64_t when = engine_rdv_deadline(e);
	uint64_t addr = engine_addrwatch_deadline(e), gate = engine_gate_deadline(e);
	if (addr < when)
		when = addr;
	if (gate < when)
		when = gate;
	for (size_t i = 0; i < engine_slot_count(e); i++) {
		struct peer *p = engine_slot(e, i);
		if (!p->session)
			continue;
		uint64_t path = engine_path_deadline(e, p, now_us);
		if (path < when)
			when = path;
		uint64_t s = session_next_deadline(p->session, now_us / 1000);
		/* A handshake with nowhere to go yet (the lookup is on its
		 * way) waits for an event, looked at now and then: not a spin. */
		if (s != UINT64_MAX && s * 1000 < now_us + NO_SESSION_TICK_US &&
		    !path_can_handshake(p->paths, now_us / 1000))
			s = (now_us + NO_SESSION_TICK_US) / 1000;
		if (s != UINT64_MAX && s * 1000 < when)
			when = s * 1000;
		if (p->conn) {
			uint64_t c = conn_next_deadline(p->conn, now_us);
			/* Without keys the conn cannot send what it wants to;
			 * only its timers (open timeout, idle) matter then, and
			 * they need no precision. */
			if (!session_established(p->session) && c < now_us + NO_SESSION_TICK_US)
				c = now_us + NO_SESSION_TICK_US;
			if (c < when)
				when = c;
		}
	}
	return when;
}

static void handle_events(struct srm_engine *e, struct epoll_event *evs, int n, uint64_t now_us)
{
	for (int i = 0; i < n; i++) {
		struct ev_tag *tag = evs[i].data.ptr;
		switch (tag->kind) {
		case EV_UDP:
			engine_udp_receive(e, e->udp_fd, 0, now_us);
			break;
		case EV_PROBE_SOCKET: {
			struct probe_socket *s = (struct probe_socket *)tag;
			engine_udp_receive(e, s->fd, s->id, now_us);
			break;
		}
		case EV_WAKE: {
			uint64_t v;
			ssize_t r = sys_read(e->wake_fd, &v, sizeof(v));
			(void)r;
			break;
		}
		case EV_BRIDGE:
			if (!((struct bridge *)tag)->dead)
				bridge_on_fd(e, (struct bridge *)tag, evs[i].events, now_us);
			break;
		case EV_ADDRWATCH:
			engine_addrwatch_read(e, now_us);
			break;
		case EV_CONTROL:
			e->control_ready = true; /* served without the lock */
			break;
		case EV_WS:
			engine_ws_event(e, evs[i].events, now_us);
			break;
		case EV_GATE_WS:
			engine_gate_ws_event(e, now_us);
			break;
		}
	}
}

/* The peer closed the session and dropped its keys: DATA under ours would
 * only be dropped there (unknown index) until our keys expire.  A new
 * session wipes them; the next stream handshakes. */
static void fresh_session(struct srm_engine *e, struct peer *p)
{
	/* Keys newer than those the CLOSE came under are the peer's next
	 * session (a reload that renamed us closes one and opens the next
	 * at once; the same batch of packets may hold both): they stay. */
	if (!session_index_is_newest(p->session, p->closed_index)) {
		p->closed_by_peer = false;
		return;
	}
	struct session *s = session_new(e->identity, p->cfg.pubkey, &e->session_cfg, e->indices);
	if (!s)
		return; /* tried again next pass */
	session_free(p->session);
	p->session = s;
	p->closed_by_peer = false;
}

static void run_peers(struct srm_engine *e, uint64_t now_us)
{
	engine_addrwatch_run(e, now_us);
	engine_paths_run(e, now_us);
	engine_ws_run(e, now_us);
	engine_rdv_poll(e, now_us);
	engine_gate_run(e, now_us);
	engine_via_update(e, now_us / 1000);
	for (size_t i = 0; i < engine_slot_count(e); i++) {
		struct peer *p = engine_slot(e, i);
		if (!p->session || engine_instance_reap(e, p, now_us / 1000))
			continue;
		if (p->closed_by_peer)
			fresh_session(e, p);
		engine_path_run(e, p, now_us);
		if (p->conn && conn_next_deadline(p->conn, now_us) <= now_us)
			conn_on_timeout(p->conn, now_us);
		if (p->conn)
			bridge_conn_events(e, p, now_us);
		engine_peer_flush(e, p, now_us);
		if (p->conn)
			bridge_conn_events(e, p, now_us);
	}
	engine_send_flush(e);
	/* Sent: now the key work of INITs that may follow soon (the first
	 * connect() while one is on its way, a retry). */
	for (size_t i = 0; i < engine_slot_count(e); i++)
		if (engine_slot(e, i)->session)
			session_prepare_init(engine_slot(e, i)->session);
}

/* While draining: push every stream towards its end; wake the drainer
 * once all is acknowledged. */
static void drain_step(struct srm_engine *e)
{
	bool done = true;
	struct bridge *b, *tmp;
	HASH_ITER(hh, e->bridges, b, tmp)
		done = bridge_drain(e, b) && done;
	if (done) {
		e->draining = false;
		e->drained = true;
		pthread_cond_broadcast(&e->cond);
	}
}

/* epoll_pwait2 has microsecond timeouts (pacing wants them); kernels
 * before 5.11, seccomp filters and valgrind answer ENOSYS, and then the
 * millisecond epoll_wait does, rounding up so we never wake early. */
static int wait_events(struct srm_engine *e, struct epoll_event *evs, const struct timespec *ts)
{
	static _Atomic bool no_pwait2;
	if (!atomic_load(&no_pwait2)) {
		int n = epoll_pwait2(e->epfd, evs, EPOLL_BATCH, ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		atomic_store(&no_pwait2, true);
	}
	int ms = -1;
	if (ts)
		ms = (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
	return epoll_wait(e->epfd, evs, EPOLL_BATCH, ms);
}

/* SRMUDP_BUSY_POLL: after a wake-up that moved packets, poll without
 * sleeping until busy_poll_until_us (or the next timer), yielding the CPU
 * on every turn so that runnable application threads go first.  An answer
 * that comes back meanwhile costs no scheduler wake-up of this thread. */
static int busy_poll(struct srm_engine *e, struct epoll_event *evs, uint64_t deadline_us)
{
	static const struct timespec zero;
	uint64_t until = e->busy_poll_until_us < deadline_us ? e->busy_poll_until_us : deadline_us;
	int n = 0;
	while (clock_now_us() < until && (n = wait_events(e, evs, &zero)) == 0)
		sched_yield();
	return n;
}

static void *engine_thread(void *arg)
{
	struct srm_engine *e = arg;
	struct epoll_event evs[EPOLL_BATCH];

	/* Here rather than in srm_engine_start, whose caller is often a
	 * connect() waiting: the status socket is a convenience (run without
	 * it), and this thread alone uses it. */
	engine_control_open(e);
	pthread_mutex_lock(&e->lock);
	while (!e->stopping) {
		if (e->control_ready) {
			/* A client may wait for its request, and a reload reads
			 * files and resolves names: application threads keep
			 * the lock meanwhile. */
			e->control_ready = false;
			pthread_mutex_unlock(&e->lock);
			engine_control_serve(e);
			pthread_mutex_lock(&e->lock);
			continue;
		}
		uint64_t now = clock_now_us();
		uint64_t when = next_deadline(e, now);
		bridge_reap(e); /* no event batch is outstanding now */
		pthread_mutex_unlock(&e->lock);

		struct timespec ts, *tsp = NULL;
		if (when != UINT64_MAX) {
			uint64_t wait = when > now ? when - now : 0;
			ts.tv_sec = (time_t)(wait / 1000000u);
			ts.tv_nsec = (long)(wait % 1000000u) * 1000;
			tsp = &ts;
		}
		int n = busy_poll(e, evs, when);
		if (n == 0)
			n = wait_events(e, evs, tsp);

		pthread_mutex_lock(&e->lock);
		now = clock_now_us();
		if (n > 0) {
			handle_events(e, evs, n, now);
			e->busy_poll_until_us = now + e->cfg.busy_poll_us;
		}
		if (e->draining)
			drain_step(e);
		run_peers(e, now);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* ---- Lifecycle ---------------------------------------------------------- */

static int setup_peers(struct srm_engine *e, const struct srm_config *cfg, char *err, size_t errlen)
{
	e->peer_cap = cfg->peer_count ? cfg->peer_count : 1;
	e->peers = calloc(e->peer_cap, sizeof(*e->peers));
	e->extras = calloc(MAX_EXTRA_INSTANCES, sizeof(*e->extras));
	if (!e->peers || !e->extras)
		return SRM_ERR_NOMEM;
	e->session_cfg = (struct session_config){
		.local_caps = session_local_caps(),
		.boot_id = e->boot_id,
		.force_chacha = 0,
		.connect_timeout_ms = cfg->connect_timeout_ms,
		.wall_offset_ms = clock_wall_offset_ms(),
	};
	const struct session_config sc = e->session_cfg;
	for (size_t i = 0; i < cfg->peer_count; i++) {
		struct peer *p = &e->peers[i];
		p->index = p->parent = (int)i;
		p->cfg = cfg->peers[i];
		p->session = session_new(e->identity, p->cfg.pubkey, &sc, e->indices);
		if (!p->session) {
			snprintf(err, errlen, "cannot create a session for peer %s", p->cfg.name);
			return SRM_ERR_NOMEM;
		}
		e->peer_count++;
	}
	return 0;
}

static void *engine_memdup(const void *p, size_t n)
{
	void *q = malloc(n);

	return q ? memcpy(q, p, n) : NULL;
}

static void engine_free(struct srm_engine *e)
{
	listen_free_all(e);
	engine_gate_free(e);
	engine_rdv_free(e);
	engine_probes_free(e);
	engine_control_close(e);
	struct bridge *b, *tmp;
	HASH_ITER(hh, e->bridges, b, tmp)
		bridge_free(e, b);
	bridge_reap(e);
	for (size_t i = 0; i < engine_slot_count(e); i++) {
		struct peer *p = engine_slot(e, i);
		if (p->conn)
			conn_free(p->conn);
		if (p->session)
			session_free(p->session);
		path_peer_free(p->paths);
	}
	free(e->peers);
	free(e->extras);
	if (e->paths)
		pathman_free(e->paths);
	if (e->guard)
		handshake_guard_free(e->guard);
	if (e->indices)
		index_table_free(e->indices);
	if (e->identity)
		identity_free(e->identity);
	engine_fd_close(e, e->udp_fd);
	engine_fd_close(e, e->addrwatch_fd);
	engine_fd_close(e, e->wake_fd);
	engine_fd_close(e, e->epfd);
	free((void *)e->owned);
	free(e->cfg.expose);
	free(e->cfg.allow);
	ends_destroy(e->ends);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

int srm_engine_start(const struct srm_config *cfg, srm_engine **out, char *err, size_t errlen)
{
	if (!cfg || !out)
		return SRM_ERR_INVALID;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return SRM_ERR_IO;
	}
	/* Logging is process-wide; the engine's configuration sets it. */
	log_open(cfg->log_level, cfg->log_file);
	struct srm_engine *e = calloc(1, sizeof(*e));
	if (!e)
		return SRM_ERR_NOMEM;
	e->udp_fd = e->wake_fd = e->epfd = e->control_fd = e->addrwatch_fd = e->gate_ws_epfd = -1;
	e->started_ms = clock_now_us() / 1000;
	e->cfg = *cfg;
	e->cfg.peers = NULL;
	/* The access rules are the engine's own copy: the caller frees its
	 * configuration once the engine runs. */
	e->cfg.expose = NULL;
	e->cfg.allow = NULL;
	if ((cfg->expose_count &&
	     !(e->cfg.expose = engine_memdup(cfg->expose, cfg->expose_count * sizeof(*cfg->expose)))) ||
	    (cfg->allow_count &&
	     !(e->cfg.allow = engine_memdup(cfg->allow, cfg->allow_count * sizeof(*cfg->allow))))) {
		free(e->cfg.expose);
		free(e);
		return SRM_ERR_NOMEM;
	}
	e->next_handle = 1;
	randombytes_buf(&e->boot_id, sizeof(e->boot_id));
	e->boot_id |= 1; /* 0 means "unknown" */

	pthread_mutex_init(&e->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cond, &ca);
	pthread_condattr_destroy(&ca);

	uint8_t secret[SRM_KEY_BYTES], pub[SRM_KEY_BYTES];
	int rc = srm_key_load(cfg->key_path, secret, pub, err, errlen);
	if (rc < 0)
		goto fail;
	e->identity = identity_new(secret);
	sodium_memzero(secret, sizeof(secret));
	e->indices = index_table_new();
	e->guard = e->identity ? handshake_guard_new(e->identity) : NULL;
	if (!e->identity || !e->indices || !e->guard) {
		rc = SRM_ERR_NOMEM;
		goto fail;
	}
	rc = setup_peers(e, cfg, err, errlen);
	if (rc < 0)
		goto fail;

	struct rlimit rl;
	e->owned_bytes = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < OWNED_FD_LIMIT
				 ? (size_t)rl.rlim_max / 8 + 1 : OWNED_FD_LIMIT / 8;
	e->owned = calloc(e->owned_bytes, 1);
	e->ends = ends_create();
	if (!e->owned || !e->ends) {
		rc = SRM_ERR_NOMEM;
		goto fail;
	}
	/* The log file is ours too: a program's closefrom() must spare it. */
	if (log_fd() != STDERR_FILENO)
		fd_mark(e, log_fd(), true);
	e->epfd = engine_fd_adopt(e, sys_epoll_create1(EPOLL_CLOEXEC));
	e->wake_fd = engine_fd_adopt(e, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (e->epfd < 0 || e->wake_fd < 0) {
		snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
		rc = SRM_ERR_IO;
		goto fail;
	}
	rc = engine_udp_open(e, err, errlen);
	if (rc < 0)
		goto fail;
	engine_gatebook_open(e);
	engine_rdv_list_servers(e);
	engine_gatebook_relays(e);
	rc = engine_paths_setup(e);
	if (rc < 0)
		goto fail;
	engine_addrwatch_open(e);
	rc = engine_rdv_start(e, err, errlen);
	if (rc == 0)
		rc = engine_gate_start(e, err, errlen);
	if (rc < 0)
		goto fail;
	e->wake_tag.kind = EV_WAKE;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->wake_tag };
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wake_fd, &ev);

	if (pthread_create(&e->thread, NULL, engine_thread, e) != 0) {
		snprintf(err, errlen, "cannot start the engine thread");
		rc = SRM_ERR_IO;
		goto fail;
	}
	LOG_INFO(NULL, "engine started on UDP port %d with %zu peers", srm_engine_udp_port(e),
		 e->peer_count);
	*out = e;
	return 0;
fail:
	sodium_memzero(secret, sizeof(secret));
	engine_free(e);
	return rc;
}

void srm_engine_stop(srm_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	/* Tell peers their streams end, best effort, before the thread goes.
	 * After a complete drain every stream ended with a FIN, as a TCP
	 * socket closed before exit does; a CLOSE would reset them at the
	 * peer and could discard what its application has not read yet. */
	uint64_t now = clock_now_us();
	for (size_t i = 0; i < engine_slot_count(e) && !e->drained; i++) {
		struct peer *p = engine_slot(e, i);
		if (p->conn) {
			conn_close(p->conn, RESET_SHUTDOWN);
			engine_peer_flush(e, p, now);
		}
	}
	engine_send_flush(e);
	e->stopping = true;
	pthread_mutex_unlock(&e->lock);
	engine_wake(e);
	pthread_join(e->thread, NULL);
	engine_free(e);
}

int srm_engine_drain(srm_engine *e, int timeout_ms)
{
	struct timespec deadline = clock_deadline_in_ms(timeout_ms);
	pthread_mutex_lock(&e->lock);
	e->draining = true;
	engine_wake(e);
	int rc = 0;
	while (e->draining && rc == 0)
		rc = pthread_cond_timedwait(&e->cond, &e->lock, &deadline);
	bool left = e->draining;
	e->draining = false;
	pthread_mutex_unlock(&e->lock);
	return left ? SRM_ERR_TIMEOUT : 0;
}

void srm_engine_abandon(srm_engine *e)
{
	/* After fork the child's copies of our fds would keep the UDP port
	 * bound, and keep each stream's end open so that neither our close
	 * nor its held byte reaches the application (no EOF, no reset).
	 * Close the copies; the parent's engine keeps its own.  The memory
	 * is leaked on purpose: its lock may be held by a thread that does
	 * not exist here. */
	for (size_t byte = 0; byte < e->owned_bytes; byte++) {
		unsigned bits = atomic_load(&e->owned[byte]);
		for (int bit = 0; bits; bit++, bits >>= 1)
			if (bits & 1)
				engine_fd_close(e, (int)(byte * 8 + (size_t)bit));
	}
}

int srm_engine_udp_port(srm_engine *e)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (sys_getsockname(e->udp_fd, (struct sockaddr *)&ss, &len) != 0)
		return SRM_ERR_IO;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}
