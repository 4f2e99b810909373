/*
 * path_server.c — how the rendezvous server is reached, engine-wide: UDP
 * while it answers there, the WebSocket relay (SRMUDP_RELAY) after
 * PATH_WS_AFTER_MS of silence or a failed send, UDP again once it answers
 * (path.h, docs/NAT.md "The WebSocket relay").  Relayed paths follow.
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

/* Relayed sessions follow the link: the same relay, reached another way. */
static void set_server(struct pathman *pm, enum path_kind kind, uint64_t now_ms)
{
	pm->server = kind;
	pm->server_switch_ms = now_ms;
	pm->server_wait_ms = 0;
	pm->server_failed = false;
	for (struct peer_paths *pp = pm->peers; pp; pp = pp->next)
		if (path_is_relay(pp->active.kind))
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

static bool server_udp_silent(const struct pathman *pm, uint64_t now_ms)
{
	return pm->server_failed ||
	       (pm->server_wait_ms && now_ms >= pm->server_wait_ms + PATH_WS_AFTER_MS);
}

bool pathman_poll(struct pathman *pm, uint64_t now_ms, struct path_action *act)
{
	*act = (struct path_action){ 0 };
	if (pm->server == PATH_RDV_RELAY && pm->cfg.ws && server_udp_silent(pm, now_ms)) {
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
	if (pm->server == PATH_WS_RELAY && pm->cfg.relay && now_ms >= pm->next_udp_try_ms) {
		pm->next_udp_try_ms = now_ms + PATH_REPROBE_MS;
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
		return pm->cfg.relay ? pm->next_udp_try_ms : UINT64_MAX;
	if (pm->server != PATH_RDV_RELAY)
		return UINT64_MAX;
	uint64_t d = UINT64_MAX;
	if (pm->cfg.ws && pm->server_failed)
		return 0;
	if (pm->cfg.ws && pm->server_wait_ms)
		d = pm->server_wait_ms + PATH_WS_AFTER_MS;
	if (pm->ws_open && !pm->server_wait_ms)
		d = min_u64(d, pm->server_switch_ms + PATH_WS_LINGER_MS);
	return d;
}
