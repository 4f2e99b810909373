/*
 * path_server.c — how the rendezvous server is reached, engine-wide: UDP
 * while it answers there, the WebSocket relay (SRMUDP_RELAY) after
 * PATH_WS_AFTER_MS of silence or a failed send, UDP again once it answers
 * (path.h, docs/NAT.md "The WebSocket relay"); and which of the servers
 * SRMUDP_RENDEZVOUS lists (failover, PATH_FAILOVER_MS).  Relayed paths
 * follow.
 */
#include "path_priv.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- The server's link ----------------------------------------------------- */

enum path_kind pathman_server(const struct pathman *pm)
{
	return pm->server;
}

/* Sessions relayed through this server follow the link: the same relay,
 * reached another way (not those through another gate or a peer). */
static void set_server(struct pathman *pm, enum path_kind kind, uint64_t now_ms)
{
	pm->server = kind;
	pm->server_switch_ms = now_ms;
	pm->server_wait_ms = 0;
	pm->server_failed = false;
	pm->probe_unanswered = false;
	for (struct peer_paths *pp = pm->peers; pp; pp = pp->next)
		if ((pp->active.kind == PATH_RDV_RELAY || pp->active.kind == PATH_WS_RELAY) &&
		    pp->active.sock == 0)
			pp->active.kind = kind;
}

void pathman_on_server_sent(struct pathman *pm, uint64_t now_ms)
{
	if (pm->server == PATH_RDV_RELAY && !pm->server_wait_ms)
		pm->server_wait_ms = now_ms;
}

void pathman_on_server_heard(struct pathman *pm, enum path_kind over, uint64_t now_ms)
{
	if (over != PATH_RDV_RELAY)
		return;
	pm->server_wait_ms = 0;
	pm->probe_unanswered = false;
	if (pm->server == PATH_WS_RELAY) {
		LOG_INFO(NULL, "rendezvous: the server answers over UDP again; leaving the WebSocket");
		set_server(pm, PATH_RDV_RELAY, now_ms);
		pm->register_due = true;
	}
}

void pathman_on_server_send_failed(struct pathman *pm, uint64_t now_ms)
{
	(void)now_ms;
	if (pm->server == PATH_RDV_RELAY)
		pm->server_failed = true;
}

static bool server_udp_silent(const struct pathman *pm, uint64_t after_ms, uint64_t now_ms)
{
	return pm->server_failed ||
	       (pm->server_wait_ms && now_ms >= pm->server_wait_ms + after_ms);
}

/* Without a WebSocket relay, an unanswered server gives way to the next. */
static bool failover_due(const struct pathman *pm, uint64_t now_ms)
{
	return pm->server == PATH_RDV_RELAY && pm->cfg.servers > 1 && !pm->cfg.ws &&
	       server_udp_silent(pm, PATH_FAILOVER_MS, now_ms);
}

bool pathman_poll(struct pathman *pm, uint64_t now_ms, struct path_action *act)
{
	*act = (struct path_action){ 0 };
	if (failover_due(pm, now_ms)) {
		pm->server_wait_ms = 0;
		pm->server_failed = false;
		act->kind = PATH_DO_NEXT_SERVER;
		return true;
	}
	if (pm->server == PATH_RDV_RELAY && pm->cfg.ws &&
	    server_udp_silent(pm, PATH_WS_AFTER_MS, now_ms)) {
		LOG_INFO(NULL, "rendezvous: %s over UDP; using the WebSocket relay",
			 pm->server_failed ? "cannot send to the server" : "no answer for 1.5 s");
		set_server(pm, PATH_WS_RELAY, now_ms);
		pm->next_udp_try_ms = now_ms + PATH_REPROBE_MS;
	}
	if (pm->server == PATH_WS_RELAY && !pm->ws_open) {
		pm->ws_open = true;
		act->kind = PATH_DO_WS_OPEN;
		return true;
	}
	if (pm->server == PATH_WS_RELAY && pm->cfg.servers && now_ms >= pm->next_udp_try_ms) {
		if (pm->probe_unanswered && pm->cfg.servers > 1) {
			/* This probe goes to the next server (the next poll). */
			pm->probe_unanswered = false;
			act->kind = PATH_DO_NEXT_SERVER;
			return true;
		}
		pm->next_udp_try_ms = now_ms + PATH_REPROBE_MS;
		pm->probe_unanswered = true;
		act->kind = PATH_DO_SERVER_PROBE;
		return true;
	}
	if (pm->register_due) {
		pm->register_due = false;
		pm->registered_ms = now_ms;
		act->kind = PATH_DO_REGISTER;
		return true;
	}
	if (pm->server == PATH_RDV_RELAY && pm->ws_open && !pm->server_wait_ms &&
	    now_ms >= pm->server_switch_ms + PATH_WS_LINGER_MS) {
		pm->ws_open = false;
		act->kind = PATH_DO_WS_CLOSE;
		return true;
	}
	return false;
}

uint64_t pathman_deadline(const struct pathman *pm)
{
	if (pm->register_due || (pm->server == PATH_WS_RELAY && !pm->ws_open))
		return 0;
	if (pm->server == PATH_WS_RELAY)
		return pm->cfg.servers ? pm->next_udp_try_ms : UINT64_MAX;
	if (pm->server != PATH_RDV_RELAY)
		return UINT64_MAX;
	uint64_t d = UINT64_MAX;
	bool gives_way = pm->cfg.ws || pm->cfg.servers > 1;
	if (gives_way && pm->server_failed)
		return 0;
	if (gives_way && pm->server_wait_ms)
		d = pm->server_wait_ms + (pm->cfg.ws ? PATH_WS_AFTER_MS : PATH_FAILOVER_MS);
	if (pm->ws_open && !pm->server_wait_ms)
		d = min_u64(d, pm->server_switch_ms + PATH_WS_LINGER_MS);
	return d;
}
