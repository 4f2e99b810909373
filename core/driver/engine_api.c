/*
 * engine_api.c — the public API on a running engine (core/srmudp.h):
 * peers, streams, and statistics.  Each call takes the engine's lock
 * briefly; what must be sent leaves at once (engine_peer_push) or wakes
 * the engine thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* Under e->lock: the configured peer at index peer, or NULL (out of range,
 * or removed by a reload). */
static struct peer *configured(struct srm_engine *e, int peer)
{
	if (peer < 0 || (size_t)peer >= e->peer_count || !e->peers[peer].session)
		return NULL;
	return &e->peers[peer];
}

int srm_peer_find(srm_engine *e, const char *name)
{
	int found = SRM_ERR_NOTFOUND;
	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < e->peer_count && found < 0; i++)
		if (e->peers[i].session && strcmp(e->peers[i].cfg.name, name) == 0)
			found = (int)i;
	pthread_mutex_unlock(&e->lock);
	return found;
}

int srm_peer_get(srm_engine *e, int peer, struct srm_peer_config *out)
{
	pthread_mutex_lock(&e->lock);
	struct peer *p = configured(e, peer);
	if (p)
		*out = p->cfg;
	pthread_mutex_unlock(&e->lock);
	return p ? 0 : SRM_ERR_NOTFOUND;
}

/* ---- Streams ------------------------------------------------------------ */

int srm_stream_open(srm_engine *e, int peer, uint16_t port, int fd, size_t prefill, uint64_t *stream)
{
	fd = engine_fd_adopt(e, fd);
	sys_fcntl(fd, F_SETFL, sys_fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
	pthread_mutex_lock(&e->lock);
	struct peer *p = configured(e, peer);
	if (e->stopping || !p) {
		pthread_mutex_unlock(&e->lock);
		engine_fd_close(e, fd);
		return e->stopping ? SRM_ERR_CLOSED : SRM_ERR_NOTFOUND;
	}
	uint64_t now = clock_now_us();
	if (engine_peer_held(p, now / 1000)) {
		pthread_mutex_unlock(&e->lock);
		engine_fd_close(e, fd);
		return SRM_ERR_UNREACHABLE;
	}
	struct conn *c = engine_peer_conn(e, p, now);
	uint64_t id;
	int rc = c ? conn_stream_open(c, port, now, &id) : SRM_ERR_NOMEM;
	struct bridge *b = rc == 0 ? bridge_new(e, p, id, fd) : NULL;
	if (!b) {
		if (rc == 0)
			conn_stream_reset(c, id, RESET_INTERNAL);
		pthread_mutex_unlock(&e->lock);
		engine_fd_close(e, fd);
		return rc < 0 ? rc : SRM_ERR_NOMEM;
	}
	b->state = SRM_ERR_AGAIN;
	b->prefill = prefill;
	b->open_port = port;
	/* A TCP connection (srmudp forward's): a refusal or reset reaches it
	 * as a real RST. */
	int domain = 0;
	socklen_t dl = sizeof(domain);
	b->is_tcp = sys_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) == 0 &&
		    (domain == AF_INET || domain == AF_INET6);
	b->opened_ms = now / 1000;
	*stream = b->handle;
	session_want_handshake(p->session, now / 1000);
	/* The OPEN, or the INIT carrying it, leaves from this thread. */
	engine_peer_push(e, p, now);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

static int stream_state_locked(struct srm_engine *e, uint64_t handle)
{
	struct bridge *b;
	HASH_FIND(hh, e->bridges, &handle, sizeof(handle), b);
	return b ? b->state : ends_lookup(e->ends, handle);
}

srm_ends *srm_engine_ends(srm_engine *e)
{
	return e->ends;
}

srm_ends *srm_ends_attach(pid_t engine_pid)
{
	return ends_attach(engine_pid);
}

int srm_ends_take(srm_ends *ends, uint64_t stream)
{
	return ends_take(ends, stream);
}

void srm_ends_detach(srm_ends *ends)
{
	ends_destroy(ends);
}

int srm_stream_state(srm_engine *e, uint64_t stream)
{
	pthread_mutex_lock(&e->lock);
	int st = stream_state_locked(e, stream);
	pthread_mutex_unlock(&e->lock);
	return st;
}

int srm_stream_wait(srm_engine *e, uint64_t stream, int timeout_ms)
{
	if (timeout_ms < 0)
		timeout_ms = (int)e->cfg.connect_timeout_ms + 1000;
	struct timespec deadline = clock_deadline_in_ms(timeout_ms);
	pthread_mutex_lock(&e->lock);
	int st;
	while ((st = stream_state_locked(e, stream)) == SRM_ERR_AGAIN) {
		if (pthread_cond_timedwait(&e->cond, &e->lock, &deadline) == ETIMEDOUT) {
			st = stream_state_locked(e, stream);
			break;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return st;
}

int srm_stream_stats(srm_engine *e, uint64_t stream, struct srm_stream_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->lock);
	struct bridge *b;
	HASH_FIND(hh, e->bridges, &stream, sizeof(stream), b);
	if (b) {
		out->peer = b->peer->parent;
		out->outgoing = !b->listen_port;
		out->port = b->listen_port ? b->listen_port : b->open_port;
		out->state = b->state;
		if (b->peer->conn)
			conn_stream_buffered(b->peer->conn, b->stream_id, &out->tx_buffered,
					     &out->rx_buffered);
	}
	pthread_mutex_unlock(&e->lock);
	return b ? 0 : SRM_ERR_NOTFOUND;
}

void srm_stream_abort(srm_engine *e, uint64_t stream)
{
	pthread_mutex_lock(&e->lock);
	struct bridge *b;
	HASH_FIND(hh, e->bridges, &stream, sizeof(stream), b);
	if (b)
		bridge_fail(e, b, SRM_ERR_RESET, true);
	pthread_mutex_unlock(&e->lock);
	engine_wake(e);
}

/* ---- Statistics --------------------------------------------------------- */

int srm_peer_stats(srm_engine *e, int peer, struct srm_peer_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->lock);
	struct peer *p = configured(e, peer);
	if (!p) {
		pthread_mutex_unlock(&e->lock);
		return SRM_ERR_NOTFOUND;
	}
	if (p->conn)
		conn_get_stats(p->conn, out);
	out->established = session_established(p->session);
	const struct path_addr *path = path_active(p->paths);
	/* relayed over UDP: the relay's address; over the WebSocket: none */
	if (path->kind == PATH_UDP)
		memcpy(&out->path, &path->addr, sizeof(out->path));
	else if (path->kind == PATH_RDV_RELAY)
		memcpy(&out->path, &e->rdv_server, sizeof(out->path));
	out->relayed = path_is_relay(path->kind);
	memcpy(out->refused, p->refused, sizeof(out->refused));
	out->handshake_age_ms = session_handshake_age_ms(p->session, clock_now_us() / 1000);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

void srm_engine_stats(srm_engine *e, struct srm_engine_stats *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->stats;
	out->peers = 0;
	for (size_t i = 0; i < e->peer_count; i++)
		out->peers += e->peers[i].session != NULL; /* not the removed */
	out->sessions = 0;
	for (size_t i = 0; i < engine_slot_count(e); i++)
		out->sessions += engine_slot(e, i)->session &&
				 session_established(engine_slot(e, i)->session);
	out->streams = HASH_CNT(hh, e->bridges);
	pthread_mutex_unlock(&e->lock);
}

const char *srm_drop_reason_name(enum srm_drop_reason r)
{
	static const char *const names[SRM_DROP_REASONS] = {
		[SRM_DROP_MALFORMED] = "malformed",
		[SRM_DROP_VERSION] = "version",
		[SRM_DROP_MAC] = "mac",
		[SRM_DROP_AUTH] = "auth",
		[SRM_DROP_REPLAY] = "replay",
		[SRM_DROP_UNKNOWN_PEER] = "unknown-peer",
		[SRM_DROP_UNKNOWN_INDEX] = "unknown-index",
		[SRM_DROP_RATELIMIT] = "ratelimit",
		[SRM_DROP_COOKIE] = "cookie",
		[SRM_DROP_STALE] = "stale",
	};
	return (unsigned)r < SRM_DROP_REASONS ? names[r] : "unknown";
}
