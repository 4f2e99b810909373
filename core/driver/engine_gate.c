/*
 * engine_gate.c — SRMUDP_GATE=on: the engine also introduces and relays
 * for its own peers (docs/NAT.md "Gates").  It runs the rendezvous
 * server's state machine (rdv_server.c) on the engine's UDP socket, keyed
 * by the engine's identity and admitting only configured peers that pin
 * that key: a member registers with its gate as with a rendezvous server
 * (SRMUDP_GATES names the gate), learns its public address, finds the
 * members that list it, is told to punch, and falls back to the gate's
 * relay, which carries the members' end-to-end encrypted packets as they
 * are.  Nobody outside the peer list can register, look anyone up or be
 * relayed.  With srm_engine_gate_ws_listen, members whose network blocks
 * UDP reach it over WebSocket (rdv_ws.c, as `srmudp rendezvous
 * --ws-listen` serves them).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "engine.h"
#include "log.h"

/* What one member may have relayed by default (SRMUDP_RATE overrides):
 * members are the gate's own group, so this bounds a misbehaving one
 * rather than sharing a public server's bandwidth (srmudp rendezvous
 * defaults to 1 MiB/s); 256 MiB/s is about 2 Gbit/s. */
#define GATE_RELAY_RATE (256ull * 1024 * 1024)

/* A configured peer (removed ones have no session) may register. */
static bool is_member(void *ctx, const uint8_t pub[RDV_KEY_BYTES])
{
	struct srm_engine *e = ctx;
	for (size_t i = 0; i < e->peer_count; i++)
		if (e->peers[i].session && memcmp(e->peers[i].cfg.pubkey, pub, RDV_KEY_BYTES) == 0)
			return true;
	return false;
}

int engine_gate_start(struct srm_engine *e, char *err, size_t errlen)
{
	if (!e->cfg.gate)
		return 0;
	e->gate_store = rdv_store_memory_new(SRM_MAX_PEERS);
	struct rdv_server_config cfg = {
		.max_records = SRM_MAX_PEERS,
		.relay_rate = e->cfg.rate_bytes ? e->cfg.rate_bytes : GATE_RELAY_RATE,
		.wall_offset_ms = (uint64_t)clock_wall_offset_ms(),
		.static_secret = e->identity->secret,
		.admit = is_member,
		.admit_ctx = e,
	};
	e->gate = e->gate_store ? rdv_server_new(&cfg, e->gate_store, clock_now_ms()) : NULL;
	if (!e->gate) {
		snprintf(err, errlen, "SRMUDP_GATE: cannot start the gate");
		return SRM_ERR_NOMEM;
	}
	LOG_INFO(NULL, "gate: introducing and relaying for %zu peers", e->peer_count);
	engine_gatebook_announce(e);
	return 0;
}

void engine_gate_free(struct srm_engine *e)
{
	if (e->gate_ws)
		rdv_ws_free(e->gate_ws);
	e->gate_ws = NULL;
	engine_fd_close(e, e->gate_ws_epfd);
	e->gate_ws_epfd = -1;
	if (e->gate)
		rdv_server_free(e->gate);
	if (e->gate_store)
		rdv_store_free(e->gate_store);
	e->gate = NULL;
	e->gate_store = NULL;
}

/* One packet of the gate's server: to a member over UDP, or over its
 * WebSocket. */
static void route(void *ctx, const struct rdv_out *o)
{
	struct srm_engine *e = ctx;
	if (o->to.via == RDV_VIA_WS) {
		if (e->gate_ws)
			rdv_ws_send(e->gate_ws, o, clock_now_ms());
		return;
	}
	engine_send(e, &o->to.addr, o->to.len, o->buf, o->len);
}

static void send_out(struct srm_engine *e, const struct rdv_out *o, int n)
{
	for (int i = 0; i < n; i++)
		route(e, &o[i]);
}

int srm_engine_gate_ws_listen(srm_engine *e, const struct sockaddr *addr, socklen_t len,
			      const char *text, const char *tls_cert, const char *tls_key,
			      char *err, size_t errlen)
{
	int rc = 0;
	pthread_mutex_lock(&e->lock);
	if (!e->gate) {
		snprintf(err, errlen, "--ws-listen: this engine is no gate (SRMUDP_GATE=on)");
		rc = SRM_ERR_INVALID;
		goto out;
	}
	if (!e->gate_ws) {
		e->gate_ws_epfd = engine_fd_adopt(e, sys_epoll_create1(EPOLL_CLOEXEC));
		if (e->gate_ws_epfd < 0) {
			snprintf(err, errlen, "--ws-listen: epoll: %s", strerror(errno));
			rc = SRM_ERR_IO;
			goto out;
		}
		struct rdv_ws_config wc = {
			.tls_cert = tls_cert,
			.tls_key = tls_key,
			.route = route,
			.route_ctx = e,
		};
		e->gate_ws = rdv_ws_new(&wc, e->gate, e->gate_ws_epfd, err, errlen);
		if (!e->gate_ws) {
			rc = SRM_ERR_IO;
			goto out;
		}
		e->gate_ws_tag.kind = EV_GATE_WS;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->gate_ws_tag };
		epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->gate_ws_epfd, &ev);
	}
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, addr, len < sizeof(ss) ? len : sizeof(ss));
	if (rdv_ws_listen(e->gate_ws, &ss, len, text) != 0) {
		snprintf(err, errlen, "--ws-listen: cannot listen on %s: %s", text, strerror(errno));
		rc = SRM_ERR_IO;
		goto out;
	}
	LOG_INFO(NULL, "gate: WebSocket on %s", text);
	if (!e->gate_ws_port) {
		/* Announced to members (engine_gatebook.c), at the host they
		 * reach our UDP at: the first listener. */
		e->gate_ws_port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
		e->gate_wss = tls_cert != NULL;
		engine_gatebook_announce(e);
	}
out:
	pthread_mutex_unlock(&e->lock);
	engine_wake(e); /* its deadline joins the engine's */
	return rc;
}

void engine_gate_ws_event(struct srm_engine *e, uint64_t now_us)
{
	struct epoll_event evs[32];
	if (!e->gate_ws)
		return;
	int n = epoll_wait(e->gate_ws_epfd, evs, 32, 0);
	for (int i = 0; i < n; i++)
		rdv_ws_event(e->gate_ws, evs[i].data.u64, now_us / 1000);
}

void engine_gate_ws_flush(struct srm_engine *e)
{
	if (e->gate_ws)
		rdv_ws_flush(e->gate_ws);
}

bool engine_gate_receive(struct srm_engine *e, const uint8_t *pkt, size_t len,
			 const struct sockaddr_storage *src, socklen_t srclen, uint64_t now_us)
{
	if (!e->gate)
		return false;
	struct rdv_endpoint from = { .len = srclen, .via = RDV_VIA_UDP };
	memcpy(&from.addr, src, srclen);
	struct rdv_out out[2];
	int n = rdv_server_receive(e->gate, pkt, len, &from, now_us / 1000, out, 2);
	if (n < 0)
		engine_drop(e, session_drop_reason(n));
	else
		send_out(e, out, n);
	return true;
}

void engine_gate_run(struct srm_engine *e, uint64_t now_us)
{
	if (e->gate_ws && rdv_ws_deadline(e->gate_ws) <= now_us / 1000)
		rdv_ws_tick(e->gate_ws, now_us / 1000);
	if (!e->gate || rdv_server_deadline(e->gate) > now_us / 1000)
		return;
	struct rdv_out out[4];
	int n;
	/* Bounded: expiry and key rotation yield a handful at a time. */
	for (int round = 0; round < 16; round++) {
		n = rdv_server_tick(e->gate, now_us / 1000, out, 4);
		if (n <= 0)
			break;
		send_out(e, out, n);
		if (n < 4)
			break;
	}
}

uint64_t engine_gate_deadline(const struct srm_engine *e)
{
	if (!e->gate)
		return UINT64_MAX;
	uint64_t d = rdv_server_deadline(e->gate);
	if (e->gate_ws && rdv_ws_deadline(e->gate_ws) < d)
		d = rdv_ws_deadline(e->gate_ws);
	return d == UINT64_MAX ? d : d * 1000;
}
